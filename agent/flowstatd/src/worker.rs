//! The flow work of one thread: a flow table per capture source, and the
//! plugins that turn the tables' events into records.
//!
//! Replay runs one worker inline; the live agent runs one per core, each
//! fed the packets whose flows hash to it. Either way a worker sees every
//! packet of its flows, in order, so its records are the same.

use flowstat_core::{
    FlowEvent, FlowView, InterfaceCounters, KindSet, PacketMeta, Plugin, Records, SourceInfo,
    Timestamp,
};
use flowstat_dpi::{Applications, Engine as Dpi};
use flowstat_flow::{FlowConfig, FlowTable, LocalNetworks, Observed, TableCounters};
use std::sync::Arc;

/// One capture source as a worker knows it.
struct Source {
    name: String,
    internal: bool,
    table: FlowTable<Dpi>,
}

/// Flow tables and plugins of one thread.
pub struct FlowWorker {
    flows: FlowConfig,
    locals: LocalNetworks,
    /// The DPI engine each new source's table gets a clone of.
    dpi: Dpi,
    /// Indexed by source id; `None` once closed.
    sources: Vec<Option<Source>>,
    plugins: Vec<Box<dyn Plugin>>,
    records: Records,
    /// Latest packet time seen: packet time never goes backwards here.
    clock: Timestamp,
}

/// What one source's table did during an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// Table activity.
    pub table: TableCounters,
    /// Flows in the table at the end.
    pub flows: u64,
    /// Closed TCP flows waiting to be purged.
    pub closing: u64,
}

impl SourceReport {
    /// Adds `other` (another worker's part of the same source).
    pub fn add(&mut self, other: &SourceReport) {
        let (t, o) = (&mut self.table, &other.table);
        t.created += o.created;
        t.active += o.active;
        t.purged += o.purged;
        t.expired += o.expired;
        t.closed += o.closed;
        t.evicted += o.evicted;
        t.tcp_seq_errors += o.tcp_seq_errors;
        t.tcp_resets += o.tcp_resets;
        t.discarded += o.discarded;
        t.discarded_bytes += o.discarded_bytes;
        self.flows += other.flows;
        self.closing += other.closing;
    }

    /// Moves the flow layer's packet counts into `counters`.
    pub fn count_into(&self, counters: &mut InterfaceCounters) {
        counters.tcp_resets += self.table.tcp_resets;
        counters.tcp_seq_errors += self.table.tcp_seq_errors;
        counters.discarded += self.table.discarded;
        counters.discarded_bytes += self.table.discarded_bytes;
    }
}

impl FlowWorker {
    /// A worker with no source yet; `wanted` is what the sinks subscribed
    /// to (other record kinds are not encoded).
    pub fn new(
        flows: FlowConfig,
        locals: LocalNetworks,
        dpi: Dpi,
        plugins: Vec<Box<dyn Plugin>>,
        wanted: KindSet,
    ) -> Self {
        FlowWorker {
            flows,
            locals,
            dpi,
            sources: Vec::new(),
            plugins,
            records: Records::new(wanted),
            clock: Timestamp::ZERO,
        }
    }

    /// Adds a source; returns its id.
    pub fn open_source(&mut self, name: &str, internal: bool) -> usize {
        let table = FlowTable::new(
            name,
            self.flows.clone(),
            self.locals.clone(),
            self.dpi.clone(),
        );
        self.sources.push(Some(Source {
            name: name.to_owned(),
            internal,
            table,
        }));
        self.sources.len() - 1
    }

    /// Accounts one decoded packet of `source`. Its time is raised to the
    /// latest seen, so time never goes backwards for the tables.
    pub fn packet(&mut self, source: usize, pkt: &mut PacketMeta<'_>) -> Observed {
        pkt.ts = pkt.ts.max(self.clock);
        self.clock = pkt.ts;
        let Some(Some(s)) = self.sources.get_mut(source) else {
            return Observed::Discarded;
        };
        let info = SourceInfo {
            interface: &s.name,
            internal: s.internal,
        };
        let (plugins, records) = (&mut self.plugins, &mut self.records);
        s.table.observe(pkt, &mut |event, view| {
            to_plugins(plugins, records, &info, event, view)
        })
    }

    /// Ends an interval at `now` for every source: purges what expired and
    /// reports flows that were active. Returns each source's report, by id.
    pub fn tick(&mut self, now: Timestamp) -> Vec<SourceReport> {
        let (plugins, records) = (&mut self.plugins, &mut self.records);
        self.sources
            .iter_mut()
            .map(|s| match s {
                Some(s) => {
                    let info = SourceInfo {
                        interface: &s.name,
                        internal: s.internal,
                    };
                    s.table.tick(now, &mut |event, view| {
                        to_plugins(plugins, records, &info, event, view)
                    });
                    report(&mut s.table)
                }
                None => SourceReport::default(),
            })
            .collect()
    }

    /// Purges every flow of `source` and closes it; returns its last report.
    pub fn close_source(&mut self, source: usize) -> SourceReport {
        let Some(mut s) = self.sources.get_mut(source).and_then(Option::take) else {
            return SourceReport::default();
        };
        let info = SourceInfo {
            interface: &s.name,
            internal: s.internal,
        };
        let (plugins, records) = (&mut self.plugins, &mut self.records);
        s.table
            .drain(&mut |event, view| to_plugins(plugins, records, &info, event, view));
        report(&mut s.table)
    }

    /// Local networks for flows created from now on.
    pub fn set_local_networks(&mut self, locals: LocalNetworks) {
        for s in self.sources.iter_mut().flatten() {
            s.table.set_local_networks(locals.clone());
        }
        self.locals = locals;
    }

    /// The application table for flows detected from now on.
    pub fn set_applications(&mut self, apps: &Arc<Applications>) {
        for s in self.sources.iter_mut().flatten() {
            s.table.classifier_mut().set_applications(Arc::clone(apps));
        }
        self.dpi.set_applications(Arc::clone(apps));
    }

    /// Records made since the last call; the caller delivers them.
    pub fn records(&mut self) -> &mut Records {
        &mut self.records
    }
}

fn report(table: &mut FlowTable<Dpi>) -> SourceReport {
    SourceReport {
        table: table.take_counters(),
        flows: table.len() as u64,
        closing: table.closing() as u64,
    }
}

fn to_plugins(
    plugins: &mut [Box<dyn Plugin>],
    records: &mut Records,
    source: &SourceInfo<'_>,
    event: FlowEvent,
    view: &FlowView<'_>,
) {
    for p in plugins.iter_mut() {
        p.on_flow(source, event, view, records);
    }
}
