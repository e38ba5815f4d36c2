//! The flow work of one thread: a flow table per capture source, and the
//! plugins that turn the tables' events into records.
//!
//! Replay with one worker runs it inline; otherwise each of N workers is
//! fed the packets whose flows hash to it. Either way a worker sees every
//! packet of its flows, in order, and hands its records on in batches as
//! it makes them (never one batch per interval end or purge), each with
//! its [`Position`] in the record order, so that the records of several
//! workers can be merged into the order one worker would give.

use std::cmp::Reverse;
use std::sync::Arc;

use flowstat_analytics::Tally;
use flowstat_core::{
    FlowEvent, FlowKey, FlowView, PacketMeta, Plugin, Records, SourceInfo, Timestamp,
};
use flowstat_dpi::{Applications, DnsAnswer, Engine as Dpi};
use flowstat_flow::{FlowConfig, FlowLimit, FlowTable, LocalNetworks};

use crate::interval::{SourceReport, WorkerReport};

/// Records a worker buffers before it hands them on.
const DELIVER_BATCH: usize = 256;

/// A record's place in the record order of one interval (see
/// [`FlowTable`]'s "Record order"): first what packets made, in packet
/// order; then the interval end's purges, least recently seen first; then
/// its reports, most recently seen first; flows seen at the same instant
/// in key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Position {
    /// Made by the capture's packet with this sequence number.
    Packet(u64),
    /// A purge at the interval's (or the source's) end.
    Purge(Timestamp, FlowKey),
    /// A report at the interval's end.
    Stats(Reverse<Timestamp>, FlowKey),
    /// After everything of the interval.
    End,
}

/// Where a worker's records and interval reports go: straight to the
/// sinks and the reducer, or to the merger that puts several workers'
/// records in order.
pub trait Deliver {
    /// Takes the records made so far, leaving `records` and `positions`
    /// (each record's position, in the same order) empty. Every record the
    /// worker delivers later in the interval is at or after `bound`.
    fn deliver(&mut self, records: &mut Records, positions: &mut Vec<Position>, bound: Position);

    /// The end of an interval, after all of its records: the worker's
    /// report.
    fn report(&mut self, report: WorkerReport);
}

/// One capture source as a worker knows it.
struct Source {
    name: String,
    internal: bool,
    table: FlowTable<Dpi>,
    /// Latest packet time seen: the source's packet time never goes
    /// backwards in its table (live, several capture threads may feed it).
    clock: Timestamp,
}

/// Flow tables and plugins of one thread.
pub struct FlowWorker {
    /// Flow table settings.
    flows: FlowConfig,
    /// `max_flows`, shared with the other workers' tables.
    limit: FlowLimit,
    locals: LocalNetworks,
    /// The DPI engine each new source's table gets a clone of (clones
    /// share this worker's DNS cache).
    dpi: Dpi,
    /// Indexed by source id; `None` once closed.
    sources: Vec<Option<Source>>,
    plugins: Vec<Box<dyn Plugin>>,
    tally: Tally,
    records: Records,
    positions: Vec<Position>,
}

impl FlowWorker {
    /// A worker with no source yet; `plugins` make its records, of the
    /// kinds in their `Records`' wanted set, and `tally` counts its share
    /// of the analytics.
    pub fn new(
        flows: FlowConfig,
        limit: FlowLimit,
        locals: LocalNetworks,
        dpi: Dpi,
        plugins: Vec<Box<dyn Plugin>>,
        tally: Tally,
        records: Records,
    ) -> Self {
        FlowWorker {
            flows,
            limit,
            locals,
            dpi,
            sources: Vec::new(),
            plugins,
            tally,
            records,
            positions: Vec::new(),
        }
    }

    /// Adds a source; returns its id.
    pub fn open_source(&mut self, name: &str, internal: bool) -> usize {
        let table = FlowTable::new(
            name,
            self.flows.clone(),
            self.locals.clone(),
            self.dpi.clone(),
        )
        .with_limit(self.limit.clone());
        self.sources.push(Some(Source {
            name: name.to_owned(),
            internal,
            table,
            clock: Timestamp::ZERO,
        }));
        self.sources.len() - 1
    }

    /// Accounts one decoded packet of `source`, the capture's `seq`th. Its
    /// time is raised to the latest the source has seen, so time never
    /// goes backwards for its table.
    pub fn packet(
        &mut self,
        source: usize,
        seq: u64,
        pkt: &mut PacketMeta<'_>,
        out: &mut dyn Deliver,
    ) {
        let Some(Some(s)) = self.sources.get_mut(source) else {
            return;
        };
        pkt.ts = pkt.ts.max(s.clock);
        s.clock = pkt.ts;
        let mut emit = Emit::new(
            &mut self.plugins,
            &mut self.tally,
            &mut self.records,
            &mut self.positions,
            out,
            &s.name,
            s.internal,
        );
        s.table.observe(pkt, &mut |event, view| {
            emit.event(Position::Packet(seq), event, view)
        });
    }

    /// Remembers a DNS response's answers (every worker learns every
    /// answer, in packet order, before the packets after it).
    pub fn learn(&mut self, answer: &DnsAnswer) {
        self.dpi.learn(answer);
    }

    /// Hands on what is buffered: every record this worker makes later in
    /// the interval is at or after `bound`.
    pub fn flush(&mut self, bound: Position, out: &mut dyn Deliver) {
        out.deliver(&mut self.records, &mut self.positions, bound);
    }

    /// Ends an interval at `now` for every source: purges what expired,
    /// reports flows that were active, and hands every record on, then the
    /// reports.
    pub fn end_interval(&mut self, now: Timestamp, out: &mut dyn Deliver) {
        let reports = (0..self.sources.len())
            .map(|id| {
                self.with_table(id, out, |table, emit| {
                    table.expire(now, &mut |event, view| {
                        emit.event(purge_position(view), event, view)
                    });
                    table.report(now, &mut |event, view| {
                        let at = Position::Stats(Reverse(view.last_seen), view.key);
                        emit.event(at, event, view)
                    });
                })
            })
            .collect();
        self.flush(Position::End, out);
        out.report(WorkerReport {
            sources: reports,
            tally: self.tally.take(),
        });
    }

    /// Purges every flow of `source` (every source: `None`), hands every
    /// record on, closes the source, then hands on the last reports.
    pub fn close(&mut self, source: Option<usize>, out: &mut dyn Deliver) {
        let reports = (0..self.sources.len())
            .map(|id| {
                if source.is_some_and(|s| s != id) {
                    return SourceReport::default();
                }
                let report = self.with_table(id, out, |table, emit| {
                    table.drain(&mut |event, view| emit.event(purge_position(view), event, view));
                });
                if let Some(s) = self.sources[id].take() {
                    self.tally.close(&s.name);
                }
                report
            })
            .collect();
        self.flush(Position::End, out);
        out.report(WorkerReport {
            sources: reports,
            tally: self.tally.take(),
        });
    }

    /// Runs `f` on `source`'s table with an emitter to the plugins; returns
    /// the table's report.
    fn with_table(
        &mut self,
        source: usize,
        out: &mut dyn Deliver,
        f: impl FnOnce(&mut FlowTable<Dpi>, &mut Emit<'_>),
    ) -> SourceReport {
        let Some(Some(s)) = self.sources.get_mut(source) else {
            return SourceReport::default();
        };
        let mut emit = Emit::new(
            &mut self.plugins,
            &mut self.tally,
            &mut self.records,
            &mut self.positions,
            out,
            &s.name,
            s.internal,
        );
        f(&mut s.table, &mut emit);
        SourceReport {
            table: s.table.take_counters(),
            flows: s.table.len() as u64,
            closing: s.table.closing() as u64,
        }
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
        // Flows' application names and categories may have changed.
        self.tally.forget_keys();
    }

    /// The records buffered, to change the kinds encoded.
    pub fn records(&mut self) -> &mut Records {
        &mut self.records
    }
}

/// Where a purge goes in the record order.
fn purge_position(view: &FlowView<'_>) -> Position {
    Position::Purge(view.last_seen, view.key)
}

/// Hands one table's events to the plugins, and their records on in
/// batches.
struct Emit<'a> {
    plugins: &'a mut [Box<dyn Plugin>],
    tally: &'a mut Tally,
    records: &'a mut Records,
    positions: &'a mut Vec<Position>,
    out: &'a mut dyn Deliver,
    name: &'a str,
    internal: bool,
}

impl<'a> Emit<'a> {
    fn new(
        plugins: &'a mut [Box<dyn Plugin>],
        tally: &'a mut Tally,
        records: &'a mut Records,
        positions: &'a mut Vec<Position>,
        out: &'a mut dyn Deliver,
        name: &'a str,
        internal: bool,
    ) -> Self {
        Emit {
            plugins,
            tally,
            records,
            positions,
            out,
            name,
            internal,
        }
    }

    /// Runs the plugins on one event at `at`.
    fn event(&mut self, at: Position, event: FlowEvent, view: &FlowView<'_>) {
        let source = SourceInfo {
            interface: self.name,
            internal: self.internal,
        };
        self.tally.flow(&source, event, view);
        for p in self.plugins.iter_mut() {
            p.on_flow(&source, event, view, self.records);
        }
        self.positions.resize(self.records.len(), at);
        if self.records.len() >= DELIVER_BATCH {
            self.out.deliver(self.records, self.positions, at);
        }
    }
}
