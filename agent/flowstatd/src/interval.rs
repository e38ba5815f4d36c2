//! The end of an update interval, the same for replay and live capture:
//! when intervals end ([`IntervalClock`]), what each flow worker hands
//! over ([`SourceReport`]), and the [`Reducer`] that merges every part of
//! an interval into its [`Snapshot`] and runs the interval plugins.
//!
//! Intervals end on multiples of `update_interval` since the epoch (with
//! 15 s: at :00, :15, :30, :45), in the pipeline's clock: packet time in
//! replay, the wall clock live. After a silent gap of several intervals,
//! the interval the gap began in ends, and the one just before the time
//! that ended the gap, not each empty one between.

use std::ops::AddAssign;
use std::sync::Arc;
use std::time::Duration;

use flowstat_analytics::{Shared, TallyPart};
use flowstat_api::ApiState;

use flowstat_core::{
    AgentStatus, CaptureStatus, InterfaceCounters, InterfaceReport, KindSet, Plugin, Record,
    RecordKind, Records, SinkStatus, Snapshot, Timestamp,
};
use flowstat_flow::TableCounters;

use crate::resources;

/// When update intervals end.
#[derive(Clone, Copy, Debug)]
pub struct IntervalClock {
    /// The interval, in nanoseconds.
    step: u64,
    /// The end of the current interval, once the clock has started.
    next: Option<Timestamp>,
}

impl IntervalClock {
    /// A clock of `interval`, not started.
    pub fn new(interval: Duration) -> Self {
        IntervalClock {
            step: u64::try_from(interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            next: None,
        }
    }

    /// A clock of `interval` started at `now`.
    pub fn started_at(interval: Duration, now: Timestamp) -> Self {
        let mut clock = IntervalClock::new(interval);
        clock.next = Some(clock.boundary_after(now));
        clock
    }

    /// The end of the current interval, once started.
    pub fn next(&self) -> Option<Timestamp> {
        self.next
    }

    /// The interval ends that are due at `now` (none if the clock had not
    /// started: it starts here): the current interval's, and after a gap,
    /// the last one ending at or before `now`.
    pub fn due(&mut self, now: Timestamp) -> impl Iterator<Item = Timestamp> + use<> {
        let due = match self.next {
            None => {
                self.next = Some(self.boundary_after(now));
                [None, None]
            }
            Some(next) if now < next => [None, None],
            Some(first) => {
                let last = Timestamp::from_nanos(now.as_nanos() - now.as_nanos() % self.step);
                self.next = Some(Timestamp::from_nanos(
                    last.max(first).as_nanos().saturating_add(self.step),
                ));
                [Some(first), (last > first).then_some(last)]
            }
        };
        due.into_iter().flatten()
    }

    /// The first boundary after `ts`.
    fn boundary_after(&self, ts: Timestamp) -> Timestamp {
        Timestamp::from_nanos(
            (ts.as_nanos() / self.step)
                .saturating_add(1)
                .saturating_mul(self.step),
        )
    }
}

/// What one flow worker's table of one capture source did during an
/// interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// Table activity.
    pub table: TableCounters,
    /// Flows in the table at the end.
    pub flows: u64,
    /// Closed TCP flows waiting to be purged.
    pub closing: u64,
}

impl AddAssign<&SourceReport> for SourceReport {
    /// Adds another worker's part of the same source.
    fn add_assign(&mut self, other: &SourceReport) {
        self.table += &other.table;
        self.flows += other.flows;
        self.closing += other.closing;
    }
}

impl SourceReport {
    /// Adds the flow layer's packet counts to the interface's counters.
    fn count_into(&self, counters: &mut InterfaceCounters) {
        counters.tcp_resets += self.table.tcp_resets;
        counters.tcp_seq_errors += self.table.tcp_seq_errors;
        counters.discarded += self.table.discarded;
        counters.discarded_bytes += self.table.discarded_bytes;
    }
}

/// What a flow worker hands over at an interval's end: its tables'
/// reports, one per source by source id, and its share of the analytics.
#[derive(Debug)]
pub struct WorkerReport {
    /// One per source, by source id.
    pub sources: Vec<SourceReport>,
    /// Its share of the flow definitions, thresholds and top flows.
    pub tally: TallyPart,
}

/// Adds each worker's reports (one per source, by source id) into `total`.
pub fn merge_reports(total: &mut Vec<SourceReport>, worker: &[SourceReport]) {
    if total.len() < worker.len() {
        total.resize(worker.len(), SourceReport::default());
    }
    for (t, w) in total.iter_mut().zip(worker) {
        *t += w;
    }
}

/// The capture side of an interval, for the reducer.
#[derive(Debug)]
pub struct CapturePart {
    /// The end of the interval.
    pub now: Timestamp,
    /// Time since the agent (or replay) started, in its clock.
    pub uptime: Duration,
    /// The interfaces reported, with what their capture side counted.
    pub interfaces: Vec<InterfaceReport>,
    /// The flow workers' reports, merged, one per entry of `interfaces`.
    pub reports: Vec<SourceReport>,
    /// The flow workers' shares of the analytics.
    pub tallies: Vec<TallyPart>,
    /// Per-capture counters since start.
    pub captures: Vec<CaptureStatus>,
}

/// Merges the parts of each interval into its [`Snapshot`], and runs the
/// interval plugins on it.
pub struct Reducer {
    status: StatusBuilder,
    analytics: flowstat_analytics::Reducer,
    /// The HTTP face, told of every interval.
    api: Option<ApiState>,
    /// The kinds the sinks want.
    wanted: KindSet,
    plugins: Vec<Box<dyn Plugin>>,
    records: Records,
}

impl Reducer {
    /// A reducer of the analytics in `analytics`, running `plugins` at
    /// each interval's end; records of kinds outside `wanted` are not
    /// encoded. `resource_usage`: see [`PipelineConfig`](crate::PipelineConfig).
    pub fn new(
        update_interval: Duration,
        resource_usage: bool,
        analytics: Shared,
        plugins: Vec<Box<dyn Plugin>>,
        wanted: KindSet,
    ) -> Self {
        Reducer {
            status: StatusBuilder::new(update_interval, resource_usage),
            analytics: flowstat_analytics::Reducer::new(analytics),
            api: None,
            wanted,
            plugins,
            records: Records::new(wanted),
        }
    }

    /// Tells `api` of every interval from now on: its snapshot, and its
    /// status records (made whether a sink wants them or not).
    pub fn with_api(mut self, api: Option<ApiState>) -> Self {
        self.api = api;
        self.set_wanted(self.wanted);
        self
    }

    /// Changes the kinds encoded from now on (the sinks changed).
    pub fn set_wanted(&mut self, wanted: KindSet) {
        self.wanted = wanted;
        let served = KindSet::of(&[RecordKind::AgentStatus, RecordKind::InterfaceStats]);
        self.records.set_wanted(match self.api {
            Some(_) => wanted.union(served),
            None => wanted,
        });
    }

    /// A new update interval length (a reload).
    pub fn set_update_interval(&mut self, update_interval: Duration) {
        self.status.update_interval = update_interval;
    }

    /// Ends an interval: builds its snapshot from the capture side's part
    /// and the sinks' counters, runs the interval plugins on it, and
    /// returns their records, for the caller to publish after the
    /// interval's flow records.
    pub fn end_interval(&mut self, part: CapturePart, sinks: Vec<SinkStatus>) -> Vec<Record> {
        let CapturePart {
            now,
            uptime,
            mut interfaces,
            reports,
            tallies,
            captures,
        } = part;
        for (iface, report) in interfaces.iter_mut().zip(&reports) {
            report.count_into(&mut iface.counters);
        }
        let status = self.status.build(now, uptime, &reports, captures, sinks);
        let analytics = self
            .analytics
            .reduce(tallies, now, status.update_interval, &interfaces);
        // Shared with the API, which keeps the latest.
        let snapshot = Arc::new(Snapshot {
            status,
            interfaces,
            analytics: Arc::new(analytics),
        });
        for p in &mut self.plugins {
            p.on_interval(&snapshot, &mut self.records);
        }
        let records = self.records.take();
        if let Some(api) = &self.api {
            api.publish(snapshot, &records);
        }
        records
    }

    /// Flows created since the start, as of the last interval's end.
    pub fn flows(&self) -> u64 {
        self.status.flows
    }
}

/// Builds each interval's `agent_status`, remembering the previous one for
/// the `_prev` fields.
struct StatusBuilder {
    prev: AgentStatus,
    update_interval: Duration,
    resource_usage: bool,
    /// Flows created, all intervals.
    flows: u64,
}

impl StatusBuilder {
    fn new(update_interval: Duration, resource_usage: bool) -> Self {
        StatusBuilder {
            prev: AgentStatus::default(),
            update_interval,
            resource_usage,
            flows: 0,
        }
    }

    /// The status at the end of an interval, from every source's report.
    fn build(
        &mut self,
        now: Timestamp,
        uptime: Duration,
        sources: &[SourceReport],
        captures: Vec<CaptureStatus>,
        sinks: Vec<SinkStatus>,
    ) -> AgentStatus {
        let mut total = SourceReport::default();
        for s in sources {
            total += s;
        }
        let t = &total.table;
        self.flows += t.created;
        let usage = if self.resource_usage {
            resources::read()
        } else {
            resources::Usage::default()
        };
        let prev = &self.prev;
        let status = AgentStatus {
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
        };
        self.prev = status.clone();
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_end_on_multiples_and_a_gap_ends_two() {
        let mut c = IntervalClock::new(Duration::from_secs(15));
        let due = |c: &mut IntervalClock, ms: u64| -> Vec<u64> {
            c.due(Timestamp::from_millis(ms))
                .map(|t| t.as_secs())
                .collect()
        };
        assert!(due(&mut c, 1_700_000_007_500).is_empty(), "starts");
        assert_eq!(c.next(), Some(Timestamp::from_secs(1_700_000_010)));
        assert!(due(&mut c, 1_700_000_009_999).is_empty());
        assert_eq!(due(&mut c, 1_700_000_010_000), [1_700_000_010]);
        // A minute of silence: the interval it began in, and the last one.
        assert_eq!(
            due(&mut c, 1_700_000_087_000),
            [1_700_000_025, 1_700_000_085]
        );
        assert_eq!(c.next(), Some(Timestamp::from_secs(1_700_000_100)));
    }

    #[test]
    fn reports_add_up_field_by_field() {
        let one = SourceReport {
            table: TableCounters {
                created: 1,
                evicted: 2,
                tcp_resets: 3,
                ..TableCounters::default()
            },
            flows: 4,
            closing: 5,
        };
        let mut total = vec![SourceReport::default()];
        merge_reports(&mut total, &[one, one]);
        merge_reports(&mut total, &[one]);
        assert_eq!(total[0].table.created, 2);
        assert_eq!(total[0].table.evicted, 4);
        assert_eq!(total[1].flows, 4);
        assert_eq!((total[0].flows, total[0].closing), (8, 10));
    }
}
