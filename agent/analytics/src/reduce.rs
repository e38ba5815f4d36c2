//! The interval's reducer side: merges the workers' shares, keeps each
//! definition's running totals, picks the top keys and flows, and checks
//! the thresholds, in an order that does not depend on how many workers
//! counted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use flowstat_core::analytics::{
    Analytics, DefinitionTable, Event, FlowSummary, KeyJson, Row, Subject,
};
use flowstat_core::{InterfaceReport, Timestamp};

use crate::field::decode_key;
use crate::spec::{Definition, InterfaceMetric, Metric, Shared, Threshold};
use crate::table::Table;
use crate::tally::TallyPart;

/// Merges the workers' shares of each interval into its [`Analytics`].
pub struct Reducer {
    shared: Shared,
    /// Each definition's keys, by the definition they count.
    counted: Vec<Counted>,
    /// Each threshold's state, by name.
    states: HashMap<String, Crossing>,
    next_event_id: u64,
}

/// A definition's keys as the reducer keeps them: those of the interval
/// and of the one before (a key idle for a whole interval is forgotten,
/// its total staying in the definition's sum), and the sum of every value
/// since the definition began.
struct Counted {
    definition: Arc<Definition>,
    keys: Table<Acc>,
    sum: u64,
}

/// One key's value in the interval, and since it became active.
#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    value: u64,
    total: u64,
}

impl Counted {
    fn new(definition: &Arc<Definition>) -> Counted {
        Counted {
            definition: Arc::clone(definition),
            keys: Default::default(),
            sum: 0,
        }
    }

    /// Adds a worker's share of the interval.
    fn add(&mut self, part: &Table<u64>) {
        for (k, v) in part.iter() {
            let acc = self.keys.get(k);
            acc.value += v;
            acc.total += v;
            self.sum += v;
        }
    }

    /// The keys active in the interval.
    fn active(&self) -> impl Iterator<Item = (&[u8], &Acc)> {
        self.keys.iter().filter(|(_, a)| a.value > 0)
    }

    /// Starts the next interval: forgets the keys idle in this one.
    fn next_interval(&mut self) {
        self.keys.retain(|a| {
            let active = a.value > 0;
            a.value = 0;
            active
        });
    }
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
            counted: Vec::new(),
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
        let mut counted: Vec<Counted> = spec
            .definitions
            .iter()
            .map(|d| {
                match self
                    .counted
                    .iter()
                    .position(|c| Arc::ptr_eq(&c.definition, d))
                {
                    Some(i) => self.counted.swap_remove(i),
                    None => Counted::new(d),
                }
            })
            .collect();
        let mut above: Vec<Vec<(u64, FlowSummary)>> =
            spec.thresholds.iter().map(|_| Vec::new()).collect();
        let mut top = Vec::new();
        for part in parts {
            for (d, table) in part.spec.definitions.iter().zip(part.tables) {
                if let Some(c) = counted.iter_mut().find(|c| Arc::ptr_eq(&c.definition, d)) {
                    c.add(&table);
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

        let definitions = counted
            .iter()
            .map(|c| DefinitionTable {
                name: c.definition.config.name.clone(),
                emit: c.definition.config.emit,
                interval,
                rows: rows(c, secs),
            })
            .collect();

        for name in self.shared.take_acknowledged() {
            if let Some(s) = self.states.get_mut(&name) {
                s.locked = false;
            }
        }
        let mut events = Vec::new();
        for (t, flows) in spec.thresholds.iter().zip(above) {
            let candidates = match &t.metric {
                Metric::Definition(name) => counted
                    .iter()
                    .find(|c| c.definition.config.name == *name)
                    .map(|c| key_candidates(c, t, secs))
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
        counted.iter_mut().for_each(Counted::next_interval);
        self.counted = counted;

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

/// A definition's rows: its `n` largest keys of the interval, largest
/// first (ties in key order), then the rest as `"other"`.
fn rows(c: &Counted, secs: u64) -> Vec<Row> {
    let mut keys: Vec<(&[u8], &Acc)> = c.active().collect();
    let by_size =
        |a: &(&[u8], &Acc), b: &(&[u8], &Acc)| b.1.value.cmp(&a.1.value).then_with(|| a.0.cmp(b.0));
    let n = c.definition.config.n;
    if keys.len() > n {
        keys.select_nth_unstable_by(n, by_size);
    }
    let shown = n.min(keys.len());
    let (top, rest) = keys.split_at_mut(shown);
    top.sort_unstable_by(by_size);
    let mut rows: Vec<Row> = top
        .iter()
        .map(|&(k, a)| Row {
            key: decode_key(&c.definition.keys, k),
            value: a.value,
            rate: a.value / secs,
            total: a.total,
        })
        .collect();
    if !rest.is_empty() {
        let value = rest.iter().map(|(_, a)| a.value).sum::<u64>();
        let shown = rows.iter().map(|r| r.total).sum::<u64>();
        rows.push(Row {
            key: KeyJson::other(),
            value,
            rate: value / secs,
            total: c.sum - shown,
        });
    }
    rows
}

/// The keys of a definition whose rate is above `t`.
fn key_candidates(c: &Counted, t: &Threshold, secs: u64) -> Vec<Candidate> {
    c.active()
        .map(|(k, a)| (k, a.value / secs))
        .filter(|(_, rate)| *rate > t.config.value)
        .map(|(k, rate)| Candidate {
            id: k.to_vec(),
            value: rate,
            subject: Subject::Key(decode_key(&c.definition.keys, k)),
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
