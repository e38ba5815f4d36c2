//! The interval's reducer side: merges the workers' shares, keeps each
//! definition's running totals, picks the top keys and flows, and checks
//! the thresholds, in an order that does not depend on how many workers
//! counted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use flowstat_core::analytics::{
    Analytics, DefinitionTable, Event, FlowSummary, KeyJson, Row, Subject,
};
use flowstat_core::{InterfaceReport, Timestamp};

use crate::field::decode_key;
use crate::spec::{Definition, InterfaceMetric, Metric, Shared, Threshold};
use crate::table::{Sum, Table};
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

impl Sum for Acc {
    fn add(&mut self, a: &Acc) {
        self.value += a.value;
        self.total += a.total;
    }
}

impl Counted {
    fn new(definition: &Arc<Definition>) -> Counted {
        Counted {
            definition: Arc::clone(definition),
            keys: Default::default(),
            sum: 0,
        }
    }

    /// Adds the workers' shares of the interval.
    fn add(&mut self, shares: &mut [Table<u64>]) {
        self.keys.merge(shares, |&v| Acc { value: v, total: v });
    }

    /// The definition, and the keys active in the interval.
    fn active(&mut self) -> (&Definition, impl Iterator<Item = (&[u8], &Acc)>) {
        let keys = self.keys.iter().filter(|(_, a)| a.value > 0);
        (&self.definition, keys)
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
        let mut shares: Vec<Vec<Table<u64>>> = counted.iter().map(|_| Vec::new()).collect();
        for part in parts {
            for (d, table) in part.spec.definitions.iter().zip(part.tables) {
                if let Some(i) = counted.iter().position(|c| Arc::ptr_eq(&c.definition, d)) {
                    shares[i].push(table);
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
        for (c, mut tables) in counted.iter_mut().zip(shares) {
            c.add(&mut tables);
        }
        top.sort_by_key(|(rank, _)| Reverse(*rank));
        top.truncate(spec.top_flows);

        let definitions = counted
            .iter_mut()
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
                    .iter_mut()
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
fn rows(c: &mut Counted, secs: u64) -> Vec<Row> {
    let (definition, active) = c.active();
    let n = definition.config.n;
    // The n largest so far, the least of them on top; the rest summed.
    let mut top: BinaryHeap<Reverse<BySize>> = BinaryHeap::with_capacity(n + 1);
    let (mut rest, mut others) = (0, false);
    for (key, acc) in active {
        let row = BySize(acc.value, Reverse(key), acc.total);
        if top.len() == n && top.peek().is_none_or(|Reverse(least)| row <= *least) {
            rest += row.0;
            others = true;
            continue;
        }
        top.push(Reverse(row));
        if top.len() > n
            && let Some(Reverse(least)) = top.pop()
        {
            rest += least.0;
            others = true;
        }
    }
    // Largest first.
    let mut rows: Vec<Row> = top
        .into_sorted_vec()
        .into_iter()
        .map(|Reverse(BySize(value, Reverse(key), total))| Row {
            key: decode_key(&definition.keys, key),
            value,
            rate: value / secs,
            total,
        })
        .collect();
    c.sum += rest + rows.iter().map(|r| r.value).sum::<u64>();
    if others {
        let shown = rows.iter().map(|r| r.total).sum::<u64>();
        rows.push(Row {
            key: KeyJson::other(),
            value: rest,
            rate: rest / secs,
            total: c.sum - shown,
        });
    }
    rows
}

/// A key's value, the key and its total, ordered by value, then the key
/// reversed (of equal values, the smaller key is the larger row).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct BySize<'a>(u64, Reverse<&'a [u8]>, u64);

/// The keys of a definition whose rate is above `t`.
fn key_candidates(c: &mut Counted, t: &Threshold, secs: u64) -> Vec<Candidate> {
    let (definition, active) = c.active();
    active
        .map(|(k, a)| (k, a.value / secs))
        .filter(|(_, rate)| *rate > t.config.value)
        .map(|(k, rate)| Candidate {
            id: k.to_vec(),
            value: rate,
            subject: Subject::Key(decode_key(&definition.keys, k)),
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
