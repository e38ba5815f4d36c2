//! The packet path: frame -> decode -> flow table -> plugins -> sinks, and
//! the update-interval clock that drives `flow_stats`, `agent_status` and
//! `interface_stats`.
//!
//! Time is packet time. Intervals end on multiples of `update_interval`
//! since the epoch (with 15 s: at :00, :15, :30, :45). An interval ends when
//! the first packet at or after its end arrives; after a silent gap of
//! several intervals, the engine ends the interval the gap began in and the
//! one just before the new packet, not each empty one between.

use std::time::Duration;

use flowstat_core::{
    AgentStatus, CaptureStats, CaptureStatus, FlowEvent, FlowView, Frame, InterfaceCounters,
    InterfaceReport, IntervalReport, Layers, LinkType, PacketMeta, Plugin, Records, SinkError,
    SourceInfo, Timestamp,
};
use flowstat_decode::{DecodeConfig, decode};
use flowstat_flow::{FlowConfig, FlowTable, LocalNetworks, Observed};
use flowstat_sinks::SinkSet;

use crate::resources;

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
    /// Fill `agent_status`'s host and process fields (`cpu_cores`, CPU
    /// time, RSS) with real readings. Off for replay by default, where they
    /// are 0: they differ between runs and machines, and replay output is
    /// otherwise byte-identical for the same input.
    pub resource_usage: bool,
}

/// Runs sources through decode, the flow table, the plugins and the sinks.
pub struct Engine {
    cfg: EngineConfig,
    out: Output,
    /// The previous `agent_status`, for the `_prev` fields.
    status: AgentStatus,
    /// Packet time covered by sources already finished.
    uptime_base: Duration,
    /// Counters of finished sources.
    captures: Vec<CaptureStatus>,
}

/// One source being run: created by [`Engine::begin_source`], fed with
/// [`SourceRun::frame`], closed with [`SourceRun::end`].
pub struct SourceRun<'e> {
    engine: &'e mut Engine,
    name: String,
    internal: bool,
    table: FlowTable,
    counters: InterfaceCounters,
    received: u64,
    /// First packet time, once a packet came.
    start: Option<Timestamp>,
    /// Latest packet time (packet time never goes backwards here).
    clock: Timestamp,
    next_tick: Timestamp,
}

impl Engine {
    /// An engine writing what `plugins` produce to `sinks`.
    pub fn new(cfg: EngineConfig, plugins: Vec<Box<dyn Plugin>>, sinks: SinkSet) -> Self {
        Engine {
            cfg,
            out: Output {
                plugins,
                records: Records::new(sinks.wanted()),
                sinks,
                error: None,
            },
            status: AgentStatus::default(),
            uptime_base: Duration::ZERO,
            captures: Vec::new(),
        }
    }

    /// Starts a source named `name` (the records' `interface`); `internal`
    /// is its role (`lan` = true).
    pub fn begin_source(&mut self, name: &str, internal: bool) -> SourceRun<'_> {
        let table = FlowTable::new(name, self.cfg.flows.clone(), self.cfg.locals.clone());
        SourceRun {
            engine: self,
            name: name.to_owned(),
            internal,
            table,
            counters: InterfaceCounters::default(),
            received: 0,
            start: None,
            clock: Timestamp::ZERO,
            next_tick: Timestamp::ZERO,
        }
    }

    /// Flushes the sinks and hands them back.
    pub fn finish(mut self) -> Result<SinkSet, SinkError> {
        self.out.result()?;
        self.out.sinks.flush()?;
        Ok(self.out.sinks)
    }
}

/// Where flow events and interval reports go: every plugin, then every
/// record they made to the sinks, at once (nothing piles up in memory).
struct Output {
    plugins: Vec<Box<dyn Plugin>>,
    records: Records,
    sinks: SinkSet,
    /// The first sink failure; later records are dropped.
    error: Option<SinkError>,
}

impl Output {
    fn flow_event(&mut self, source: &SourceInfo<'_>, event: FlowEvent, view: &FlowView<'_>) {
        for p in &mut self.plugins {
            p.on_flow(source, event, view, &mut self.records);
        }
        self.deliver();
    }

    fn interval(&mut self, report: &IntervalReport<'_>) {
        for p in &mut self.plugins {
            p.on_interval(report, &mut self.records);
        }
        self.deliver();
    }

    fn deliver(&mut self) {
        let sinks = &mut self.sinks;
        let failed = self.error.is_some();
        let result = self
            .records
            .drain(|r| if failed { Ok(()) } else { sinks.write(r) });
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// The first sink failure, if any.
    fn result(&mut self) -> Result<(), SinkError> {
        self.error.take().map_or(Ok(()), Err)
    }
}

impl SourceRun<'_> {
    /// Accounts one frame.
    pub fn frame(&mut self, frame: &Frame<'_>) -> Result<(), SinkError> {
        let ts = frame.ts.max(self.clock);
        if self.start.is_none() {
            self.start = Some(ts);
            self.next_tick = self.boundary_after(ts);
        }
        if ts >= self.next_tick {
            self.end_intervals(ts)?;
        }
        self.clock = ts;
        self.received += 1;

        let len = u64::from(frame.wire_len);
        let c = &mut self.counters;
        c.raw += 1;
        c.wire_bytes += len;
        c.largest_bytes = c.largest_bytes.max(len);
        if frame.link == LinkType::ETHERNET {
            c.ethernet += 1;
        }
        let mut pkt = PacketMeta::new(ts, frame.wire_len);
        let observed = match decode(frame, &self.engine.cfg.decode, &mut pkt) {
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
                let source = SourceInfo {
                    interface: &self.name,
                    internal: self.internal,
                };
                let out = &mut self.engine.out;
                self.table.observe(&pkt, &mut |event, view| {
                    out.flow_event(&source, event, view)
                })
            }
            Err(e) => {
                c.decode_issues[e.index()] += 1;
                Observed::Discarded
            }
        };
        if observed == Observed::Discarded {
            self.counters.discarded += 1;
            self.counters.discarded_bytes += len;
        }
        self.engine.out.result()
    }

    /// Ends the source: purges every flow, reports the last (partial)
    /// interval, flushes the sinks. `capture` is the source's own count.
    pub fn end(mut self, capture: CaptureStats) -> Result<(), SinkError> {
        self.counters.capture_dropped += capture.dropped;
        self.counters.capture_filtered += capture.filtered;
        if let Some(start) = self.start {
            let source = SourceInfo {
                interface: &self.name,
                internal: self.internal,
            };
            let out = &mut self.engine.out;
            self.table
                .drain(&mut |event, view| out.flow_event(&source, event, view));
            self.report(self.clock)?;
            self.engine.uptime_base += self.clock.since(start);
        }
        let status = CaptureStatus {
            name: self.name,
            received: self.received,
            dropped: capture.dropped,
        };
        self.engine.captures.push(status);
        self.engine.out.result()?;
        self.engine.out.sinks.flush()
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
    fn end_intervals(&mut self, ts: Timestamp) -> Result<(), SinkError> {
        let first = self.next_tick;
        self.tick(first)?;
        let step = self.step();
        let last = Timestamp::from_nanos(ts.as_nanos() - ts.as_nanos() % step);
        if last > first {
            self.tick(last)?;
        }
        self.next_tick = Timestamp::from_nanos(last.max(first).as_nanos().saturating_add(step));
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> Result<(), SinkError> {
        let source = SourceInfo {
            interface: &self.name,
            internal: self.internal,
        };
        let out = &mut self.engine.out;
        self.table
            .tick(now, &mut |event, view| out.flow_event(&source, event, view));
        self.report(now)?;
        self.engine.out.sinks.flush()
    }

    /// Emits `agent_status` and `interface_stats` for the interval ending at
    /// `now`, then starts a new interval.
    fn report(&mut self, now: Timestamp) -> Result<(), SinkError> {
        let t = self.table.take_counters();
        self.counters.tcp_resets += t.tcp_resets;
        self.counters.tcp_seq_errors += t.tcp_seq_errors;
        self.counters.discarded += t.fragments_lost;
        self.counters.discarded_bytes += t.fragments_lost_bytes;

        let engine = &mut *self.engine;
        let prev = &engine.status;
        let usage = if engine.cfg.resource_usage {
            resources::read()
        } else {
            resources::Usage::default()
        };
        let start = self.start.unwrap_or(now);
        let mut captures = engine.captures.clone();
        captures.push(CaptureStatus {
            name: self.name.clone(),
            received: self.received,
            dropped: 0,
        });
        let status = AgentStatus {
            timestamp: now,
            update_interval: engine.cfg.update_interval.as_secs(),
            uptime: (engine.uptime_base + now.since(start)).as_secs(),
            cpu_cores: usage.cpu_cores,
            cpu_user_ms: usage.cpu_user_ms,
            cpu_system_ms: usage.cpu_system_ms,
            cpu_user_prev_ms: prev.cpu_user_ms,
            cpu_system_prev_ms: prev.cpu_system_ms,
            flow_count: self.table.len() as u64,
            flow_count_prev: prev.flow_count,
            flows_active: t.active,
            flows_expired: t.expired,
            flows_expiring: self.table.closing() as u64,
            flows_purged: t.purged,
            flows_evicted: t.evicted,
            maxrss_kb: usage.maxrss_kb,
            maxrss_kb_prev: prev.maxrss_kb,
            memrss_kb: usage.memrss_kb,
            memrss_kb_prev: prev.memrss_kb,
            sinks: engine.out.sinks.status(),
            captures,
        };
        let interfaces = [InterfaceReport {
            name: self.name.clone(),
            counters: self.counters,
        }];
        engine.out.interval(&IntervalReport {
            status: &status,
            interfaces: &interfaces,
        });
        engine.status = status;
        self.counters = InterfaceCounters::default();
        engine.out.result()
    }
}
