//! Offline replay's packet path: frame -> decode -> flow worker -> plugins
//! -> sinks, on one thread, and the update-interval clock, in packet time,
//! that drives `flow_stats`, `agent_status` and `interface_stats`.
//!
//! Intervals end on multiples of `update_interval` since the epoch (with
//! 15 s: at :00, :15, :30, :45). An interval ends when the first packet at
//! or after its end arrives; after a silent gap of several intervals, the
//! engine ends the interval the gap began in and the one just before the
//! new packet, not each empty one between.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flowstat_core::{
    AgentStatus, CaptureStats, CaptureStatus, DecodeError, Frame, InterfaceCounters,
    InterfaceReport, IntervalReport, Layers, LinkType, PacketMeta, Plugin, Records, SinkStatus,
    Timestamp,
};
use flowstat_decode::{DecodeConfig, decode};
use flowstat_flow::{FlowConfig, LocalNetworks};
use flowstat_sinks::SinkRuntime;

use crate::ConfigError;
use crate::config::Config;
use crate::resources;
use crate::worker::{FlowWorker, SourceReport};

/// Records the worker makes between packets before they are handed to
/// the sinks (interval ends and the end of a source hand over the rest).
const DELIVER_BATCH: usize = 256;

/// The longest an interval report waits for the sinks to catch up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the engine needs from the configuration.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Length of an update interval.
    pub update_interval: Duration,
    /// Flow table settings.
    pub flows: FlowConfig,
    /// Decoder settings.
    pub decode: DecodeConfig,
    /// Local networks.
    pub locals: LocalNetworks,
    /// The DPI engine (its application table and DNS cache).
    pub dpi: flowstat_dpi::Engine,
    /// Fill `agent_status`'s host and process fields (`cpu_cores`, CPU
    /// time, RSS) with real readings. Off for replay by default, where they
    /// are 0: they differ between runs and machines, and replay output is
    /// otherwise byte-identical for the same input.
    pub resource_usage: bool,
}

impl EngineConfig {
    /// The engine settings of `cfg` (read from `path`, named in errors);
    /// loads the application table it names.
    pub fn from_config(
        cfg: &Config,
        path: &Path,
        resource_usage: bool,
    ) -> Result<EngineConfig, ConfigError> {
        Ok(EngineConfig {
            update_interval: cfg.update_interval(),
            flows: cfg.flow_config(),
            decode: cfg.decode_config(),
            locals: cfg.local_networks(),
            dpi: cfg.dpi_engine(cfg.applications(path)?),
            resource_usage,
        })
    }
}

/// Makes a fresh set of plugins: one for each flow worker, one for the
/// interval reports.
pub type PluginFactory = dyn Fn() -> Vec<Box<dyn Plugin>> + Send + Sync;

/// Runs sources through decode, a flow worker, the plugins and the sinks.
pub struct Engine {
    cfg: EngineConfig,
    worker: FlowWorker,
    /// Plugins that see interval reports, and their records.
    interval_plugins: Vec<Box<dyn Plugin>>,
    records: Records,
    sinks: SinkRuntime,
    status: StatusBuilder,
    /// Packet time covered by sources already finished.
    uptime_base: Duration,
    /// Counters of finished sources.
    captures: Vec<CaptureStatus>,
}

/// One source being run: created by [`Engine::begin_source`], fed with
/// [`SourceRun::frame`], closed with [`SourceRun::end`].
pub struct SourceRun<'e> {
    engine: &'e mut Engine,
    id: usize,
    name: String,
    counters: InterfaceCounters,
    received: u64,
    /// First packet time, once a packet came.
    start: Option<Timestamp>,
    /// Latest packet time.
    clock: Timestamp,
    next_tick: Timestamp,
}

impl Engine {
    /// An engine writing what `plugins` produce to `sinks`.
    pub fn new(cfg: EngineConfig, plugins: &PluginFactory, sinks: SinkRuntime) -> Self {
        let wanted = sinks.wanted();
        Engine {
            worker: FlowWorker::new(
                cfg.flows.clone(),
                cfg.locals.clone(),
                cfg.dpi.clone(),
                plugins(),
                wanted,
            ),
            interval_plugins: plugins(),
            records: Records::new(wanted),
            sinks,
            status: StatusBuilder::new(cfg.update_interval, cfg.resource_usage),
            uptime_base: Duration::ZERO,
            captures: Vec::new(),
            cfg,
        }
    }

    /// Starts a source named `name` (the records' `interface`); `internal`
    /// is its role (`lan` = true).
    pub fn begin_source(&mut self, name: &str, internal: bool) -> SourceRun<'_> {
        let id = self.worker.open_source(name, internal);
        SourceRun {
            engine: self,
            id,
            name: name.to_owned(),
            counters: InterfaceCounters::default(),
            received: 0,
            start: None,
            clock: Timestamp::ZERO,
            next_tick: Timestamp::ZERO,
        }
    }

    /// Hands the sinks back, every record published to them.
    pub fn finish(mut self) -> SinkRuntime {
        self.deliver();
        self.sinks
    }

    /// Publishes the records the worker and the interval plugins made.
    fn deliver(&mut self) {
        for records in [self.worker.records(), &mut self.records] {
            if !records.is_empty() {
                self.sinks.publish(records.take());
            }
        }
    }
}

impl SourceRun<'_> {
    /// Accounts one frame.
    pub fn frame(&mut self, frame: &Frame<'_>) {
        let ts = frame.ts.max(self.clock);
        if self.start.is_none() {
            self.start = Some(ts);
            self.next_tick = self.boundary_after(ts);
        }
        if ts >= self.next_tick {
            self.end_intervals(ts);
        }
        self.clock = ts;
        self.received += 1;
        let mut pkt = PacketMeta::new(ts, frame.wire_len);
        let decoded = decode(frame, &self.engine.cfg.decode, &mut pkt);
        count_frame(&mut self.counters, frame, &decoded, &pkt);
        if decoded.is_ok() {
            self.engine.worker.packet(self.id, &mut pkt);
            // In batches: each publish wakes the sink threads.
            if self.engine.worker.records().len() >= DELIVER_BATCH {
                self.engine.deliver();
            }
        }
    }

    /// Ends the source: purges every flow, reports the last (partial)
    /// interval. `capture` is the source's own count.
    pub fn end(mut self, capture: CaptureStats) {
        self.counters.capture_dropped += capture.dropped;
        self.counters.capture_filtered += capture.filtered;
        let last = self.engine.worker.close_source(self.id);
        if let Some(start) = self.start {
            self.report(self.clock, last);
            self.engine.uptime_base += self.clock.since(start);
        }
        let status = CaptureStatus {
            name: self.name,
            received: self.received,
            dropped: capture.dropped,
        };
        self.engine.captures.push(status);
    }

    /// The first interval boundary after `ts`.
    fn boundary_after(&self, ts: Timestamp) -> Timestamp {
        let step = self.step();
        Timestamp::from_nanos(
            (ts.as_nanos() / step)
                .saturating_add(1)
                .saturating_mul(step),
        )
    }

    fn step(&self) -> u64 {
        u64::try_from(self.engine.cfg.update_interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Ends the interval at `next_tick` and, after a gap, the last one
    /// ending at or before `ts`.
    fn end_intervals(&mut self, ts: Timestamp) {
        let first = self.next_tick;
        self.tick(first);
        let step = self.step();
        let last = Timestamp::from_nanos(ts.as_nanos() - ts.as_nanos() % step);
        if last > first {
            self.tick(last);
        }
        self.next_tick = Timestamp::from_nanos(last.max(first).as_nanos().saturating_add(step));
    }

    fn tick(&mut self, now: Timestamp) {
        let reports = self.engine.worker.tick(now);
        let report = reports.get(self.id).copied().unwrap_or_default();
        self.report(now, report);
    }

    /// Emits `agent_status` and `interface_stats` for the interval ending at
    /// `now`, then starts a new interval. The sinks' counters in it are
    /// taken once they have written what came before (or cannot now), so
    /// they are the same on every run of the same input.
    fn report(&mut self, now: Timestamp, source: SourceReport) {
        self.engine.deliver();
        self.engine.sinks.settle(SETTLE_TIMEOUT);
        source.count_into(&mut self.counters);
        let engine = &mut *self.engine;
        let uptime = engine.uptime_base + now.since(self.start.unwrap_or(now));
        let mut captures = engine.captures.clone();
        captures.push(CaptureStatus {
            name: self.name.clone(),
            received: self.received,
            dropped: 0,
        });
        let status = engine
            .status
            .build(now, uptime, &[source], captures, engine.sinks.status());
        let interfaces = [InterfaceReport {
            name: self.name.clone(),
            counters: self.counters,
            kernel: None,
        }];
        let report = IntervalReport {
            status: &status,
            interfaces: &interfaces,
        };
        for p in &mut engine.interval_plugins {
            p.on_interval(&report, &mut engine.records);
        }
        engine.deliver();
        self.counters = InterfaceCounters::default();
    }
}

/// Counts one frame in its interface's counters by what decoding gave.
pub(crate) fn count_frame(
    c: &mut InterfaceCounters,
    frame: &Frame<'_>,
    decoded: &Result<(), DecodeError>,
    pkt: &PacketMeta<'_>,
) {
    let len = u64::from(frame.wire_len);
    c.raw += 1;
    c.wire_bytes += len;
    c.largest_bytes = c.largest_bytes.max(len);
    c.ethernet += u64::from(frame.link == LinkType::ETHERNET);
    match decoded {
        Ok(()) => {
            c.vlan += u64::from(pkt.layers.contains(Layers::VLAN));
            c.mpls += u64::from(pkt.layers.contains(Layers::MPLS));
            c.pppoe += u64::from(pkt.layers.contains(Layers::PPPOE));
            c.ip += 1;
            c.ip_bytes += len;
            match pkt.protocol {
                6 => c.tcp += 1,
                17 => c.udp += 1,
                1 | 58 => c.icmp += 1,
                2 => c.igmp += 1,
                _ => {}
            }
            c.fragmented += u64::from(pkt.fragment.is_some());
            if let Some(issue) = pkt.issue {
                c.decode_issues[issue.index()] += 1;
            }
        }
        Err(e) => {
            c.decode_issues[e.index()] += 1;
            c.discarded += 1;
            c.discarded_bytes += len;
        }
    }
}

/// Builds each interval's `agent_status`, remembering the previous one for
/// the `_prev` fields.
pub(crate) struct StatusBuilder {
    prev: Arc<AgentStatus>,
    update_interval: Duration,
    resource_usage: bool,
}

impl StatusBuilder {
    pub(crate) fn new(update_interval: Duration, resource_usage: bool) -> Self {
        StatusBuilder {
            prev: Arc::default(),
            update_interval,
            resource_usage,
        }
    }

    /// The status at the end of an interval, from every source's report.
    pub(crate) fn build(
        &mut self,
        now: Timestamp,
        uptime: Duration,
        sources: &[SourceReport],
        captures: Vec<CaptureStatus>,
        sinks: Vec<SinkStatus>,
    ) -> Arc<AgentStatus> {
        let mut total = SourceReport::default();
        for s in sources {
            total.add(s);
        }
        let t = &total.table;
        let usage = if self.resource_usage {
            resources::read()
        } else {
            resources::Usage::default()
        };
        let prev = &self.prev;
        let status = Arc::new(AgentStatus {
            timestamp: now,
            update_interval: self.update_interval.as_secs(),
            uptime: uptime.as_secs(),
            cpu_cores: usage.cpu_cores,
            cpu_user_ms: usage.cpu_user_ms,
            cpu_system_ms: usage.cpu_system_ms,
            cpu_user_prev_ms: prev.cpu_user_ms,
            cpu_system_prev_ms: prev.cpu_system_ms,
            flow_count: total.flows,
            flow_count_prev: prev.flow_count,
            flows_active: t.active,
            flows_expired: t.expired,
            flows_expiring: total.closing,
            flows_purged: t.purged,
            flows_evicted: t.evicted,
            maxrss_kb: usage.maxrss_kb,
            maxrss_kb_prev: prev.maxrss_kb,
            memrss_kb: usage.memrss_kb,
            memrss_kb_prev: prev.memrss_kb,
            sinks,
            captures,
        });
        self.prev = Arc::clone(&status);
        status
    }
}
