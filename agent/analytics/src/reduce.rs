//! The interval's reducer side: merges the workers' shares, keeps each
//! definition's running totals, picks the top keys and flows, and checks
//! the thresholds, in an order that does not depend on how many workers
//! counted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use flowstat_core::analytics::{Analytics, DefinitionTable, Event, FlowSummary, Row, Subject};
use flowstat_core::{InterfaceReport, Timestamp};
use serde_json::Value;

use crate::field::decode_key;
use crate::spec::{Definition, InterfaceMetric, Metric, Shared, Threshold};
use crate::tally::{Table, TallyPart};

/// Merges the workers' shares of each interval into its [`Analytics`].
pub struct Reducer {
    shared: Shared,
    /// Each definition's totals since it began, and their sum.
    totals: Vec<(Arc<Definition>, Table, u64)>,
    /// Each threshold's state, by name.
    states: HashMap<String, Crossing>,
    next_event_id: u64,
}

/// What a threshold remembers between intervals.
#[derive(Debug, Default)]
struct Crossing {
    /// What is above it now (keys, digests or interface names), to fire
    /// again only after a fall below.
    above: HashSet<Vec<u8>>,
    /// Fired with `lock`, not yet acknowledged.
    locked: bool,
}

/// One candidate for an event: what, its value, and its identity for the
/// hysteresis.
struct Candidate {
    id: Vec<u8>,
    value: u64,
    subject: Subject,
}

impl Reducer {
    /// A reducer of the settings in `shared`.
    pub fn new(shared: Shared) -> Reducer {
        Reducer {
            shared,
            totals: Vec::new(),
            states: HashMap::new(),
            next_event_id: 1,
        }
    }

    /// The analytics of the interval that ended at `now`, `interval`
    /// seconds long, from every worker's share and the interfaces'
    /// counters.
    pub fn reduce(
        &mut self,
        parts: Vec<TallyPart>,
        now: Timestamp,
        interval: u64,
        interfaces: &[InterfaceReport],
    ) -> Analytics {
        let spec = self.shared.spec();
        let secs = interval.max(1);
        let mut merged: Vec<Table> = spec.definitions.iter().map(|_| Table::default()).collect();
        let mut above: Vec<Vec<(u64, FlowSummary)>> =
            spec.thresholds.iter().map(|_| Vec::new()).collect();
        let mut top = Vec::new();
        for part in parts {
            for (d, table) in part.spec.definitions.iter().zip(part.tables) {
                if let Some(i) = spec.definitions.iter().position(|x| Arc::ptr_eq(x, d)) {
                    add(&mut merged[i], table);
                }
            }
            for (t, flows) in part.spec.thresholds.iter().zip(part.above) {
                if let Some(i) = spec
                    .thresholds
                    .iter()
                    .position(|x| x.config.name == t.config.name)
                {
                    above[i].extend(flows);
                }
            }
            top.extend(part.top);
        }
        top.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
        top.truncate(spec.top_flows);

        self.totals
            .retain(|(d, _, _)| spec.definitions.iter().any(|x| Arc::ptr_eq(x, d)));
        let mut definitions = Vec::new();
        for (d, table) in spec.definitions.iter().zip(&merged) {
            let i = match self.totals.iter().position(|(x, _, _)| Arc::ptr_eq(x, d)) {
                Some(i) => i,
                None => {
                    self.totals.push((Arc::clone(d), Table::default(), 0));
                    self.totals.len() - 1
                }
            };
            let (_, totals, sum) = &mut self.totals[i];
            for (k, v) in table {
                *sum += v;
                match totals.get_mut(k) {
                    Some(t) => *t += v,
                    None => {
                        totals.insert(k.clone(), *v);
                    }
                }
            }
            definitions.push(DefinitionTable {
                name: d.config.name.clone(),
                emit: d.config.emit,
                interval,
                rows: rows(d, table, totals, *sum, secs),
            });
        }

        for name in self.shared.take_acknowledged() {
            if let Some(s) = self.states.get_mut(&name) {
                s.locked = false;
            }
        }
        let mut events = Vec::new();
        for (t, flows) in spec.thresholds.iter().zip(above) {
            let candidates = match &t.metric {
                Metric::Definition(name) => spec
                    .definitions
                    .iter()
                    .position(|d| d.config.name == *name)
                    .map(|i| key_candidates(&spec.definitions[i], &merged[i], t, secs))
                    .unwrap_or_default(),
                Metric::Flow(_) => flows
                    .into_iter()
                    .map(|(rate, flow)| Candidate {
                        id: flow.digest.clone().into_bytes(),
                        value: rate,
                        subject: Subject::Flow(flow),
                    })
                    .collect(),
                Metric::Interface(m) => interfaces
                    .iter()
                    .map(|i| Candidate {
                        id: i.name.clone().into_bytes(),
                        value: interface_value(*m, i, secs),
                        subject: Subject::Interface(i.name.clone()),
                    })
                    .filter(|c| c.value > t.config.value)
                    .collect(),
            };
            self.check(t, candidates, now, &mut events);
        }
        self.states
            .retain(|name, _| spec.thresholds.iter().any(|t| t.config.name == *name));

        Analytics {
            definitions,
            top_flows: top.into_iter().map(|(_, f)| f).collect(),
            events,
        }
    }

    /// Fires `t` for the candidates above it that were not above it
    /// before: each of them (`by_flow`) or the largest.
    fn check(
        &mut self,
        t: &Threshold,
        mut candidates: Vec<Candidate>,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let state = self.states.entry(t.config.name.clone()).or_default();
        candidates.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.id.cmp(&b.id)));
        if !t.config.by_flow {
            candidates.truncate(1);
        }
        let was = std::mem::take(&mut state.above);
        state.above = candidates.iter().map(|c| c.id.clone()).collect();
        if state.locked {
            return;
        }
        for c in candidates {
            // Without `by_flow`, one state for the whole threshold: it was
            // above if anything was.
            let new = if t.config.by_flow {
                !was.contains(&c.id)
            } else {
                was.is_empty()
            };
            if !new {
                continue;
            }
            events.push(Event {
                event_id: self.next_event_id,
                at: now.as_millis(),
                threshold: t.config.name.clone(),
                metric: t.config.metric.clone(),
                value: c.value,
                threshold_value: t.config.value,
                subject: c.subject,
            });
            self.next_event_id += 1;
            if t.config.lock {
                state.locked = true;
                return;
            }
        }
    }
}

/// Adds `part` into `total`.
fn add(total: &mut Table, part: Table) {
    if total.is_empty() {
        *total = part;
        return;
    }
    for (k, v) in part {
        *total.entry(k).or_insert(0) += v;
    }
}

/// A definition's rows: its `n` largest keys of the interval, largest
/// first (ties in key order), then the rest as `"other"`.
fn rows(d: &Definition, table: &Table, totals: &Table, sum: u64, secs: u64) -> Vec<Row> {
    let mut keys: Vec<(&[u8], u64)> = table.iter().map(|(k, v)| (&**k, *v)).collect();
    let by_size = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
    let n = d.config.n;
    if keys.len() > n {
        keys.select_nth_unstable_by(n, by_size);
    }
    let shown = n.min(keys.len());
    let (top, rest) = keys.split_at_mut(shown);
    top.sort_unstable_by(by_size);
    let mut rows: Vec<Row> = top
        .iter()
        .map(|&(k, v)| Row {
            key: Row::key_of(decode_key(&d.keys, k)),
            value: v,
            rate: v / secs,
            total: totals.get(k).copied().unwrap_or(v),
        })
        .collect();
    if !rest.is_empty() {
        let value = rest.iter().map(|(_, v)| v).sum::<u64>();
        let shown = rows.iter().map(|r| r.total).sum::<u64>();
        rows.push(Row {
            key: Row::other_key(),
            value,
            rate: value / secs,
            total: sum - shown,
        });
    }
    rows
}

/// The keys of a definition whose rate is above `t`.
fn key_candidates(d: &Definition, table: &Table, t: &Threshold, secs: u64) -> Vec<Candidate> {
    table
        .iter()
        .map(|(k, v)| (k, *v / secs))
        .filter(|(_, rate)| *rate > t.config.value)
        .map(|(k, rate)| Candidate {
            id: k.to_vec(),
            value: rate,
            subject: Subject::Key(Value::Object(decode_key(&d.keys, k))),
        })
        .collect()
}

/// An interface metric over the interval: the kernel's rates when the
/// interface has them (live), else what the capture saw (received only).
fn interface_value(m: InterfaceMetric, i: &InterfaceReport, secs: u64) -> u64 {
    let c = &i.counters;
    let k = i.kernel.as_ref();
    match m {
        InterfaceMetric::RxBytes => k.map_or(c.wire_bytes / secs, |k| k.rx_bytes_per_sec),
        InterfaceMetric::TxBytes => k.map_or(0, |k| k.tx_bytes_per_sec),
        InterfaceMetric::RxPackets => k.map_or(c.raw / secs, |k| k.rx_packets_per_sec),
        InterfaceMetric::TxPackets => k.map_or(0, |k| k.tx_packets_per_sec),
        InterfaceMetric::CaptureDropped => c.capture_dropped,
        InterfaceMetric::QueueDropped => c.queue_dropped,
    }
}
