//! What replay and the live agent share: the pipeline's settings and how
//! they become flow workers.
//!
//! One pipeline, two drivers: source → decode ([`crate::dispatch`]) → N
//! flow workers, sharded by a hash of the flow's addresses
//! ([`crate::worker`]) → interval end ([`crate::interval`]) → plugins →
//! sinks. [`crate::replay`] drives it on packet time and never drops (it
//! waits for the slowest sink); [`crate::agent`] drives it on the wall
//! clock, and a full queue drops what a sink cannot take.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use flowstat_analytics::{Shared, Tally};
use flowstat_api::ApiState;
use flowstat_core::{KindSet, Plugin, Records};
use flowstat_decode::DecodeConfig;
use flowstat_dpi::{Applications, Engine as Dpi, SharedDnsCache};
use flowstat_flow::{FlowConfig, FlowLimit, LocalNetworks};
use flowstat_geo::GeoDb;
use flowstat_geo::SharedGeo;

use crate::ConfigError;
use crate::config::Config;
use crate::worker::FlowWorker;

/// Makes a fresh set of plugins from the pipeline's settings: one for each
/// flow worker, one for the interval's end.
pub type PluginFactory = dyn Fn(&PipelineConfig) -> Vec<Box<dyn Plugin>> + Send + Sync;

/// What the pipeline needs from the configuration.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Length of an update interval.
    pub update_interval: Duration,
    /// Flow table settings; `max_flows` is the agent's, shared by every
    /// table.
    pub flows: FlowConfig,
    /// Decoder settings.
    pub decode: DecodeConfig,
    /// Local networks.
    pub locals: LocalNetworks,
    /// The application table DPI names applications from.
    pub apps: Arc<Applications>,
    /// The address databases `flow` records' ASNs and countries come from;
    /// the live agent swaps in new ones at SIGHUP.
    pub geo: SharedGeo,
    /// Addresses each worker's DNS cache remembers.
    pub dns_cache_entries: usize,
    /// Fill `agent_status`'s host and process fields (`cpu_cores`, CPU
    /// time, RSS) with real readings. Off for replay by default, where they
    /// are 0: they differ between runs and machines, and replay output is
    /// otherwise byte-identical for the same input.
    pub resource_usage: bool,
    /// The flow definitions, thresholds and top flows, shared by the
    /// workers, the reducer and whatever changes them at run time.
    pub analytics: Shared,
    /// The HTTP face, when it is served: the reducer tells it of every
    /// interval.
    pub api: Option<ApiState>,
}

impl PipelineConfig {
    /// The pipeline settings of `cfg` (read from `path`, named in errors);
    /// loads the application table and the address databases it names.
    pub fn from_config(
        cfg: &Config,
        path: &Path,
        resource_usage: bool,
    ) -> Result<PipelineConfig, ConfigError> {
        Ok(PipelineConfig::new(
            cfg,
            cfg.applications(path)?,
            cfg.geo(path)?,
            resource_usage,
        ))
    }

    /// The pipeline settings of `cfg`, naming applications from `apps` and
    /// looking addresses up in `geo`.
    pub fn new(cfg: &Config, apps: Arc<Applications>, geo: GeoDb, resource_usage: bool) -> Self {
        PipelineConfig {
            update_interval: cfg.update_interval(),
            flows: cfg.flow_config(),
            decode: cfg.decode_config(),
            locals: cfg.local_networks(),
            apps,
            geo: Arc::new(ArcSwap::from_pointee(geo)),
            dns_cache_entries: usize::try_from(cfg.dpi.dns_cache_entries).unwrap_or(usize::MAX),
            resource_usage,
            analytics: Shared::new(cfg.analytics()),
            api: None,
        }
    }

    /// The state an HTTP face serves, told of every interval from now on.
    pub fn serve_api(&mut self) -> ApiState {
        let state = ApiState::new(self.analytics.clone());
        self.api = Some(state.clone());
        state
    }

    /// A flow worker whose tables hold flows within `limit` (the agent's
    /// `max_flows`, shared by every table). `plugins` make the worker's
    /// records, of the kinds in `wanted`.
    pub fn worker(
        &self,
        limit: &FlowLimit,
        plugins: Vec<Box<dyn Plugin>>,
        wanted: KindSet,
    ) -> FlowWorker {
        let dpi = Dpi::new(
            Arc::clone(&self.apps),
            SharedDnsCache::new(self.dns_cache_entries),
        );
        FlowWorker::new(
            self.flows.clone(),
            limit.clone(),
            self.locals.clone(),
            dpi,
            plugins,
            Tally::new(self.analytics.clone(), self.geo.clone()),
            Records::new(wanted),
        )
    }
}
