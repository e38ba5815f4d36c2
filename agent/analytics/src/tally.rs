//! A flow worker's share of the analytics: what its flows added to each
//! definition's keys, which of its flows went above a per-flow threshold,
//! and its largest flows, for one interval. Counted from each flow's
//! `flow_stats` and `flow_purge` (once per flow and interval, never per
//! packet), so a definition's sums equal those records' sums exactly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use flowstat_core::analytics::FlowSummary;
use flowstat_core::{AddrClass, FlowEvent, FlowKey, FlowView, SourceInfo, hex};
use flowstat_geo::{GeoInfo, SharedGeo};

use crate::class::{Amounts, ClassPlan};
use crate::field::{Field, FlowCtx};
use crate::spec::{Metric, Shared, Spec};
use crate::table::Table;

/// Host names by flow key.
type Hosts = hashbrown::HashMap<FlowKey, Box<str>, foldhash::fast::RandomState>;

/// A flow's place among the largest: by rate, then digest (smaller
/// first), so that the order never depends on the worker. The digest is
/// compared as two integers, in the order of its bytes, not as bytes (a
/// call to memcmp for every flow of a rate equal to the least kept: with
/// ten few-key definitions over 1M flows of one rate, the tally took 5%
/// longer).
type Rank = (u64, Reverse<(u128, u32)>);

/// `view`'s rank among the largest flows.
fn rank(view: &FlowView<'_>) -> Rank {
    let total = view.local_stats.rate + view.other_stats.rate;
    let (mut high, mut low) = ([0; 16], [0; 4]);
    high.copy_from_slice(&view.digest[..16]);
    low.copy_from_slice(&view.digest[16..]);
    (
        total,
        Reverse((u128::from_be_bytes(high), u32::from_be_bytes(low))),
    )
}

/// One worker's share of one interval, for the reducer.
#[derive(Debug, Default)]
pub struct TallyPart {
    /// The settings it was counted under.
    pub(crate) spec: Arc<Spec>,
    /// One table per definition of `spec`: keys and their amounts.
    pub(crate) tables: Vec<Table<u64>>,
    /// Per threshold of `spec` on a per-flow rate (others: empty), the
    /// flows above it and their rates.
    pub(crate) above: Vec<Vec<(u64, FlowSummary)>>,
    /// Its largest flows, by `total_rate`.
    pub(crate) top: Vec<(Rank, FlowSummary)>,
}

/// A worker's analytics.
pub struct Tally {
    shared: Shared,
    generation: u64,
    part: TallyPart,
    /// Host names of flows whose detection is over, per source and flow
    /// key, while some definition reads `host_server_name`.
    hosts: Vec<(Box<str>, Hosts)>,
    reads_host: bool,
    /// The address databases, and whether a definition reads them.
    geo: SharedGeo,
    reads_geo: bool,
    top: BinaryHeap<Reverse<(Rank, Box<FlowSummary>)>>,
    /// The definitions counted by class, and the interval's classes.
    pub(crate) plan: ClassPlan,
    classes: Table<Amounts>,
    key: Vec<u8>,
}

impl Tally {
    /// A worker's tally of the settings in `shared`, naming addresses'
    /// ASNs and countries from `geo`.
    pub fn new(shared: Shared, geo: SharedGeo) -> Tally {
        let spec = shared.spec();
        let mut tally = Tally {
            generation: shared.generation(),
            shared,
            part: TallyPart::empty(Arc::clone(&spec)),
            hosts: Default::default(),
            reads_host: false,
            geo,
            reads_geo: false,
            top: BinaryHeap::new(),
            plan: ClassPlan::default(),
            classes: Table::default(),
            key: Vec::new(),
        };
        tally.adopt(spec);
        tally
    }

    fn adopt(&mut self, spec: Arc<Spec>) {
        self.reads_host = spec
            .definitions()
            .any(|d| d.reads(|f| f == Field::HostServerName));
        self.reads_geo = spec.definitions().any(|d| d.reads(Field::is_geo));
        if !self.reads_host {
            self.hosts = Vec::new();
        }
        self.plan = ClassPlan::new(spec.definitions());
        self.classes = Table::default();
        self.part = TallyPart::empty(spec);
    }

    /// Counts a flow event.
    pub fn flow(&mut self, source: &SourceInfo<'_>, event: FlowEvent, view: &FlowView<'_>) {
        let spec = Arc::clone(&self.part.spec);
        if spec.counts_nothing() {
            return;
        }
        if !self.reads_host {
            if event != FlowEvent::Detected {
                self.count(&spec, source, view, "");
            }
            return;
        }
        // The host name is kept from the `flow` record: detection lets go
        // of its metadata when it ends.
        let meta = view.detection.meta.host_server_name.as_str();
        let i = match self
            .hosts
            .iter()
            .position(|(s, _)| **s == *source.interface)
        {
            Some(i) => i,
            None => {
                self.hosts.push((source.interface.into(), Hosts::default()));
                self.hosts.len() - 1
            }
        };
        match event {
            FlowEvent::Detected => {
                if !meta.is_empty() {
                    self.hosts[i].1.insert(view.key, meta.into());
                }
            }
            FlowEvent::Stats | FlowEvent::Purged { .. } => {
                let kept = self.hosts[i].1.remove(&view.key);
                self.count(&spec, source, view, kept.as_deref().unwrap_or(meta));
                if let (Some(host), FlowEvent::Stats) = (kept, event) {
                    self.hosts[i].1.insert(view.key, host);
                }
            }
        }
    }

    /// Counts a flow's `flow_stats` or `flow_purge`.
    fn count(&mut self, spec: &Spec, source: &SourceInfo<'_>, view: &FlowView<'_>, host: &str) {
        // Looked up once per flow and interval, and only when read.
        let db = self.reads_geo.then(|| self.geo.load());
        let geo = db.as_ref().map_or([GeoInfo::default(); 2], |db| {
            let public = view.local.class == AddrClass::Public;
            db.flow_sides(view.local.ip, public, view.other.ip)
        });
        let flow = FlowCtx {
            source,
            view,
            host,
            geo,
        };
        let amounts = Amounts::of(view);
        if !self.plan.is_empty() {
            self.plan.encode(&flow, &mut self.key);
            self.classes.add(&self.key, amounts);
        }
        for (i, (d, table)) in spec
            .definitions
            .iter()
            .zip(&mut self.part.tables)
            .enumerate()
        {
            if self.plan.by_class(i) {
                continue;
            }
            if let Some(amount) = d.count(&flow, &amounts, &mut self.key) {
                table.add(&self.key, amount);
            }
        }
        for (t, above) in spec.thresholds.iter().zip(&mut self.part.above) {
            if let Metric::Flow(rate) = t.metric {
                let r = rate.of(view);
                if r > t.config.value {
                    above.push((r, summary(source, view)));
                }
            }
        }
        let rank = rank(view);
        if spec.top_flows == 0 || rank.0 == 0 {
            return;
        }
        if self.top.len() < spec.top_flows {
            self.top
                .push(Reverse((rank, Box::new(summary(source, view)))));
        } else if self
            .top
            .peek()
            .is_some_and(|Reverse((least, _))| rank > *least)
        {
            self.top.pop();
            self.top
                .push(Reverse((rank, Box::new(summary(source, view)))));
        }
    }

    /// Takes the interval's share, and picks up changed settings for the
    /// next one.
    pub fn take(&mut self) -> TallyPart {
        self.plan.fold(
            &self.part.spec.definitions,
            &mut self.classes,
            &mut self.part.tables,
        );
        // Summed here, on the worker's thread, not by the reducer.
        self.part.tables.iter_mut().for_each(Table::settle);
        // The next interval's tables start with room for as many keys as
        // these hold (their keys' hashes kept, growing is cheap, but a
        // million keys still counted 10% faster in seven runs of
        // benches/analytics.rs out of seven).
        self.classes = Table::default();
        let spec = Arc::clone(&self.part.spec);
        let next = TallyPart {
            tables: self.part.tables.iter().map(Table::shaped_like).collect(),
            ..TallyPart::empty(spec)
        };
        let mut part = std::mem::replace(&mut self.part, next);
        part.top = self
            .top
            .drain()
            .map(|Reverse((rank, flow))| (rank, *flow))
            .collect();
        let generation = self.shared.generation();
        if generation != self.generation {
            self.generation = generation;
            self.adopt(self.shared.spec());
        }
        part
    }
}

impl TallyPart {
    /// An empty share.
    fn empty(spec: Arc<Spec>) -> TallyPart {
        TallyPart {
            tables: spec.definitions.iter().map(|_| Table::default()).collect(),
            above: spec.thresholds.iter().map(|_| Vec::new()).collect(),
            top: Vec::new(),
            spec,
        }
    }
}

/// A flow as top lists and events name it.
fn summary(source: &SourceInfo<'_>, f: &FlowView<'_>) -> FlowSummary {
    FlowSummary {
        digest: hex(&f.digest),
        interface: source.interface.to_owned(),
        ip_protocol: f.ip_protocol,
        local_ip: f.local.ip,
        local_port: f.local.port,
        other_ip: f.other.ip,
        other_port: f.other.port,
        detected_protocol_name: f.detection.protocol.name().to_owned(),
        detected_application_name: f.detection.application_name.to_owned(),
        local_rate: f.local_stats.rate,
        other_rate: f.other_stats.rate,
        total_rate: f.local_stats.rate + f.other_stats.rate,
        total_bytes: f.local_stats.total_bytes + f.other_stats.total_bytes,
    }
}
