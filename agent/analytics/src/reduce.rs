//! The interval's reducer side: merges the workers' shares, keeps each
//! definition's running totals, picks the top keys and flows, and checks
//! the thresholds, in an order that does not depend on how many workers
//! counted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use flowstat_core::analytics::{
    Analytics, DefinitionTable, Event, FlowSummary, KeyJson, Row, Subject,
};
use flowstat_core::{InterfaceReport, Timestamp};

use crate::field::decode_key;
use crate::numbers::Numbers;
use crate::spec::{Definition, InterfaceMetric, Metric, Shared, Threshold};
use crate::table::{Sum, Table, cores};
use crate::tally::{Numbered, SPARE_KEYS, TallyPart};

/// Merges the workers' shares of each interval into its [`Analytics`].
pub struct Reducer {
    shared: Shared,
    /// Each definition's keys, by the definition they count.
    counted: Vec<Counted>,
    /// Each threshold's state, by name.
    states: HashMap<String, Crossing>,
    next_event_id: u64,
}

/// A definition's keys as the reducer keeps them: what each counted in
/// the interval, and its total since it became active (a key idle for a
/// whole interval is forgotten, its total staying in the definition's
/// sum), and the sum of every value since the definition began. A key a
/// worker's id names is numbered (the worker sends its bytes once, then
/// its id); the others (flows purged before their keys had ids,
/// definitions counted by class) are kept by key. A key is kept one way
/// at a time.
struct Counted {
    definition: Arc<Definition>,
    numbers: Numbers,
    /// The numbered keys active in the interval before.
    before: Vec<u32>,
    /// By worker ([`TallyPart::worker`]): the numbering of its ids, and
    /// the number of each.
    workers: HashMap<u64, (u64, Vec<u32>)>,
    by_key: Table<Acc>,
    sum: u64,
}

/// A key's value in the interval, and since it became active.
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
            numbers: Numbers::default(),
            before: Vec::new(),
            workers: HashMap::new(),
            by_key: Table::default(),
            sum: 0,
        }
    }

    /// Adds a worker's amounts of the interval by its key ids (before the
    /// amounts by key, which go to a key's number if a worker's id names
    /// it).
    fn add_numbered(&mut self, worker: u64, numbering: u64, numbered: Numbered) {
        let (seen, ids) = self.workers.entry(worker).or_default();
        if *seen != numbering {
            // It forgot its keys: its ids start again from 0.
            *seen = numbering;
            ids.clear();
        }
        // Its ids come in order, each once (a gap is not sent: the ids in
        // it count nothing here).
        ids.resize(numbered.new.first, u32::MAX);
        for (h, key) in numbered.new.iter() {
            let n = self.numbers.find(h, key).unwrap_or_else(|| {
                let Acc { value, total } = self.by_key.remove(h, key).unwrap_or_default();
                self.numbers.insert(h, key, value, total)
            });
            ids.push(n);
        }
        for (id, amount) in numbered.amounts {
            if let Some(&n) = ids.get(id as usize).filter(|&&n| n != u32::MAX) {
                self.numbers.add(n, amount);
            }
        }
    }

    /// Adds the workers' amounts of the interval by key.
    fn add_by_key(&mut self, tables: &mut [Table<u64>]) {
        let numbers = &self.numbers;
        let numbered = self
            .by_key
            .merge(tables, |h, key, &amount| match numbers.find(h, key) {
                Some(n) => Err((n, amount)),
                None => Ok(Acc {
                    value: amount,
                    total: amount,
                }),
            });
        for (n, amount) in numbered {
            self.numbers.add(n, amount);
        }
    }

    /// The definition, and the keys active in the interval: each key,
    /// its value and its total.
    fn active(&mut self) -> (&Definition, impl Iterator<Item = (&[u8], u64, u64)>) {
        let numbers = &self.numbers;
        let numbered = numbers.counted().iter().map(|&n| numbers.get(n));
        let by_key = self.by_key.iter().filter(|(_, _, a)| a.value > 0);
        let keys = numbered.chain(by_key.map(|(_, k, a)| (k, a.value, a.total)));
        (&self.definition, keys)
    }

    /// Starts the next interval: forgets the keys idle in this one, and
    /// keeps by key those no worker's id names any more, once they are
    /// many.
    fn next_interval(&mut self) {
        self.by_key.retain(|a| {
            let active = a.value > 0;
            a.value = 0;
            active
        });
        self.numbers.end_interval(&mut self.before);
        let named: usize = self.workers.values().map(|(_, ids)| ids.len()).sum();
        if self.numbers.len() <= 2 * named + SPARE_KEYS {
            return;
        }
        let mut keep = vec![false; self.numbers.len()];
        for &n in self.workers.values().flat_map(|(_, ids)| ids) {
            if n != u32::MAX {
                keep[n as usize] = true;
            }
        }
        let by_key = &mut self.by_key;
        let new = self.numbers.retain(
            |n| keep[n as usize],
            // Active in this interval: kept by key from the next one on.
            |h, key, total| by_key.add_hashed(h, key, Acc { value: 0, total }),
        );
        let ids = self.workers.values_mut().flat_map(|(_, ids)| ids);
        for n in ids.filter(|n| **n != u32::MAX) {
            *n = new[*n as usize];
        }
        self.before.retain_mut(|n| {
            *n = new[*n as usize];
            *n != u32::MAX
        });
    }
}

/// The workers' shares of a definition for one interval: by key id (with
/// the worker and the numbering of its ids), and by key.
#[derive(Default)]
struct Shares {
    numbered: Vec<((u64, u64), Numbered)>,
    by_key: Vec<Table<u64>>,
}

impl Shares {
    /// Amounts and keys held.
    fn len(&self) -> usize {
        let numbered = self.numbered.iter().map(|(_, n)| n.amounts.len());
        numbered.chain(self.by_key.iter().map(Table::len)).sum()
    }
}

/// The amounts and keys of an interval from which definitions are added
/// up on every core.
const PARALLEL_AT: usize = 1 << 16;

/// `m`'s guard, also after a panic elsewhere (which the scope passes on).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut shares: Vec<Shares> = counted.iter().map(|_| Shares::default()).collect();
        for part in parts {
            let per_definition = part.numbered.into_iter().zip(part.tables);
            for (d, (numbered, table)) in part.spec.definitions.iter().zip(per_definition) {
                if let Some(i) = counted.iter().position(|c| Arc::ptr_eq(&c.definition, d)) {
                    let numbering = (part.worker, part.numbering);
                    shares[i].numbered.push((numbering, numbered));
                    shares[i].by_key.push(table);
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
        top.sort_by_key(|(rank, _)| Reverse(*rank));
        top.truncate(spec.top_flows);

        // Each definition on its own, on every core when they are large
        // (threads for a few keys would cost more than the keys).
        let threads = match shares.iter().map(Shares::len).sum::<usize>() {
            n if n >= PARALLEL_AT => cores(),
            _ => 1,
        };
        let work = Mutex::new(counted.iter_mut().zip(shares).enumerate());
        let tables = Mutex::new(Vec::new());
        let add = || {
            loop {
                // Taken, and the lock let go of, before the work.
                let next = lock(&work).next();
                let Some((i, (c, mut shares))) = next else {
                    break;
                };
                for ((worker, numbering), numbered) in shares.numbered {
                    c.add_numbered(worker, numbering, numbered);
                }
                c.add_by_key(&mut shares.by_key);
                let table = DefinitionTable {
                    name: c.definition.config.name.clone(),
                    emit: c.definition.config.emit,
                    interval,
                    rows: rows(c, secs),
                };
                lock(&tables).push((i, table));
            }
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(add);
            }
            add();
        });
        let mut tables = tables.into_inner().unwrap_or_else(PoisonError::into_inner);
        tables.sort_by_key(|(i, _)| *i);
        let definitions = tables.into_iter().map(|(_, t)| t).collect();

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

    /// The keys numbered, every definition.
    #[cfg(test)]
    pub(crate) fn numbered_keys(&self) -> usize {
        self.counted.iter().map(|c| c.numbers.len()).sum()
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
    for (key, value, total) in active {
        let row = BySize(value, Reverse(key), total);
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
        .map(|(k, value, _)| (k, value / secs))
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
