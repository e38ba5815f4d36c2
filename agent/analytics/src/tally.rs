//! A flow worker's share of the analytics: what its flows added to each
//! definition's keys, which of its flows went above a per-flow threshold,
//! and its largest flows, for one interval. Counted from each flow's
//! `flow_stats` and `flow_purge` (once per flow and interval, never per
//! packet), so a definition's sums equal those records' sums exactly. A
//! flow's keys are made and looked up once, and remembered by its slot
//! until detection changes them: after that, its records cost each
//! definition an addition. The interval's share goes to the reducer by
//! key id (each key's bytes once, when it is new), not by key.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use flowstat_core::analytics::FlowSummary;
use flowstat_core::{AddrClass, FlowEvent, FlowView, SourceInfo, hex};
use flowstat_geo::{GeoDb, GeoInfo, SharedGeo};

use crate::class::{Amounts, ClassPlan};
use crate::field::{Field, FlowCtx};
use crate::keys::{Keys, NewKeys};
use crate::spec::{Metric, Shared, Spec};
use crate::table::Table;

/// A flow whose keys are not known yet (in its first place), or a
/// definition whose filter leaves the flow out.
const UNKNOWN: u32 = u32::MAX;

/// Keys kept beyond twice as many as the flows that remember theirs: past
/// this, at an interval's end, every flow looks its keys up again (keys of
/// flows gone are let go of, and each such reset is paid for by as many
/// new keys).
pub(crate) const SPARE_KEYS: usize = 4096;

/// What a worker remembers of one source's flows, by their slot in its
/// table. Sources are told apart by name: no two open at once share one
/// (an interface is captured once; files are replayed one after another).
#[derive(Debug)]
struct Remembered {
    interface: Box<str>,
    /// Per flow, [`Tally::stride`] ids: its class, then its key in each
    /// definition ([`UNKNOWN`]: filtered out, or counted by class). Kept
    /// until detection changes them (`Detected`) or the flow is purged;
    /// the first is [`UNKNOWN`] while they are not known.
    ids: Vec<u32>,
    /// Each flow's `host_server_name`, kept from its `flow` record while
    /// a definition reads it: detection lets go of its metadata when it
    /// ends.
    hosts: Vec<Option<Box<str>>>,
}

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
    /// The worker's [`Tally`], and the numbering its key ids are of.
    pub(crate) worker: u64,
    pub(crate) numbering: u64,
    /// One per definition of `spec`: amounts by key id, and the keys
    /// given ids since the last share.
    pub(crate) numbered: Vec<Numbered>,
    /// One table per definition of `spec`: amounts by key, of the flows
    /// purged before their keys had ids, of the definitions counted by
    /// class, and of keys whose ids were forgotten within the interval.
    pub(crate) tables: Vec<Table<u64>>,
    /// Per threshold of `spec` on a per-flow rate (others: empty), the
    /// flows above it and their rates.
    pub(crate) above: Vec<Vec<(u64, FlowSummary)>>,
    /// Its largest flows, by `total_rate`.
    pub(crate) top: Vec<(Rank, FlowSummary)>,
}

/// A definition's amounts by key id, for one interval.
#[derive(Debug, Default)]
pub(crate) struct Numbered {
    /// The keys given ids since the last share.
    pub(crate) new: NewKeys,
    /// Each id that counted something, and its amount.
    pub(crate) amounts: Vec<(u32, u64)>,
}

/// Tallies made so far, to tell their shares apart.
static TALLIES: AtomicU64 = AtomicU64::new(0);

/// A worker's analytics.
pub struct Tally {
    shared: Shared,
    generation: u64,
    /// Tells its shares from other tallies' at the reducer.
    id: u64,
    /// Its key ids' numbering: a new one each time it forgets its keys.
    numbering: u64,
    part: TallyPart,
    /// Per source.
    flows: Vec<Remembered>,
    /// Ids a flow remembers: 1 + the definitions.
    stride: usize,
    /// Flows that remember their ids.
    remembering: usize,
    reads_host: bool,
    /// The address databases, whether a definition reads them, and the
    /// one the flows' keys were made with.
    geo: SharedGeo,
    reads_geo: bool,
    keys_geo: Weak<GeoDb>,
    top: BinaryHeap<Reverse<(Rank, Box<FlowSummary>)>>,
    /// The definitions counted by class, and the classes.
    pub(crate) plan: ClassPlan,
    classes: Keys<Amounts>,
    /// Per definition, its keys (none for those counted by class).
    keys: Vec<Keys<u64>>,
    key: Vec<u8>,
    /// A flow's ids, as they are looked up or remembered.
    row: Vec<u32>,
}

impl Tally {
    /// A worker's tally of the settings in `shared`, naming addresses'
    /// ASNs and countries from `geo`.
    pub fn new(shared: Shared, geo: SharedGeo) -> Tally {
        let spec = shared.spec();
        let mut tally = Tally {
            generation: shared.generation(),
            shared,
            id: TALLIES.fetch_add(1, Ordering::Relaxed),
            numbering: 0,
            part: TallyPart::empty(Arc::clone(&spec)),
            flows: Vec::new(),
            stride: 1,
            remembering: 0,
            reads_host: false,
            geo,
            reads_geo: false,
            keys_geo: Weak::new(),
            top: BinaryHeap::new(),
            plan: ClassPlan::default(),
            classes: Keys::default(),
            keys: Vec::new(),
            key: Vec::new(),
            row: Vec::new(),
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
            self.flows.iter_mut().for_each(|f| f.hosts = Vec::new());
        }
        self.plan = ClassPlan::new(spec.definitions());
        self.stride = 1 + spec.definitions.len();
        self.part = TallyPart::empty(spec);
        self.reset_keys();
    }

    /// Forgets every key and class, and every flow's: they are looked up
    /// again. For when what makes them changed, such as the names of the
    /// applications. What they counted so far in the interval is kept, by
    /// key.
    pub fn forget_keys(&mut self) {
        let spec = &self.part.spec;
        self.plan
            .fold(&spec.definitions, &mut self.classes, &mut self.part.tables);
        for (keys, table) in self.keys.iter_mut().zip(&mut self.part.tables) {
            for (key, value) in keys.drain() {
                table.add(key, value);
            }
        }
        self.reset_keys();
    }

    /// Forgets every key and class, and every flow's, and starts a new
    /// numbering of keys.
    fn reset_keys(&mut self) {
        self.numbering += 1;
        self.classes = Keys::default();
        self.keys = self
            .part
            .spec
            .definitions
            .iter()
            .map(|_| Keys::default())
            .collect();
        self.flows.iter_mut().for_each(|f| f.ids.clear());
        self.remembering = 0;
    }

    /// Lets go of the room kept for the flows of `interface`, a source
    /// closed (its flows purged, and so forgotten).
    pub fn close(&mut self, interface: &str) {
        self.flows.retain(|f| *f.interface != *interface);
    }

    /// The ids kept, for every source.
    #[cfg(test)]
    pub(crate) fn ids_kept(&self) -> usize {
        self.flows.iter().map(|f| f.ids.len()).sum()
    }

    /// Forgets the ids of the flow in `slot` of source `s`.
    fn forget(&mut self, s: usize, slot: usize) {
        if let Some(id) = self.flows[s].ids.get_mut(slot * self.stride)
            && *id != UNKNOWN
        {
            *id = UNKNOWN;
            self.remembering -= 1;
        }
    }

    /// Counts a flow event.
    pub fn flow(&mut self, source: &SourceInfo<'_>, event: FlowEvent, view: &FlowView<'_>) {
        if self.part.spec.counts_nothing() {
            return;
        }
        let s = match self
            .flows
            .iter()
            .position(|f| *f.interface == *source.interface)
        {
            Some(s) => s,
            None => {
                self.flows.push(Remembered {
                    interface: source.interface.into(),
                    ids: Vec::new(),
                    hosts: Vec::new(),
                });
                self.flows.len() - 1
            }
        };
        let slot = view.slot as usize;
        match event {
            FlowEvent::Detected => {
                // Detection changed what the flow's keys hold.
                self.forget(s, slot);
                let f = &mut self.flows[s];
                let host = view.detection.meta.host_server_name.as_str();
                if self.reads_host && !host.is_empty() {
                    if f.hosts.len() <= slot {
                        f.hosts.resize(slot + 1, None);
                    }
                    f.hosts[slot] = Some(host.into());
                }
            }
            FlowEvent::Stats => self.count(source, s, view, true),
            FlowEvent::Purged { .. } => {
                self.count(source, s, view, false);
                self.forget(s, slot);
                if let Some(host) = self.flows[s].hosts.get_mut(slot) {
                    *host = None;
                }
            }
        }
    }

    /// Counts the `flow_stats` or `flow_purge` of a flow of source `s`,
    /// and remembers its ids if `remember` (not after its purge).
    fn count(&mut self, source: &SourceInfo<'_>, s: usize, view: &FlowView<'_>, remember: bool) {
        // Read only when a definition reads them; looked up only when the
        // flow's keys are: once per flow, while it keeps them.
        let db = self.reads_geo.then(|| self.geo.load());
        if let Some(db) = &db
            && Weak::as_ptr(&self.keys_geo) != Arc::as_ptr(db)
        {
            // Keys hold what the databases say.
            self.forget_keys();
            self.keys_geo = Arc::downgrade(db);
        }
        // Borrowed, not cloned: two workers cloning one `Arc` for every
        // flow took turns with its count's cache line.
        let spec = &self.part.spec;
        let slot = view.slot as usize;
        let (stride, at) = (self.stride, slot * self.stride);
        let Remembered { ids, hosts, .. } = &mut self.flows[s];
        let amounts = Amounts::of(view);
        self.row.clear();
        match ids.get(at..at + stride) {
            Some(known) if known[0] != UNKNOWN => self.row.extend_from_slice(known),
            _ => {
                let flow = FlowCtx {
                    source,
                    view,
                    host: hosts
                        .get(slot)
                        .and_then(Option::as_deref)
                        .unwrap_or(view.detection.meta.host_server_name.as_str()),
                    geo: db.as_ref().map_or([GeoInfo::default(); 2], |db| {
                        let public = view.local.class == AddrClass::Public;
                        db.flow_sides(view.local.ip, public, view.other.ip)
                    }),
                };
                // The class first (any id when no definition is counted
                // by class: it marks the flow's ids as known).
                let class = if self.plan.is_empty() {
                    0
                } else {
                    self.plan.encode(&flow, &mut self.key);
                    self.classes.id(&self.key)
                };
                self.row.push(class);
                let defs = spec.definitions.iter().zip(&mut self.keys);
                for (i, ((d, keys), table)) in defs.zip(&mut self.part.tables).enumerate() {
                    let id = if self.plan.by_class(i) || !d.key(&flow, &mut self.key) {
                        UNKNOWN
                    } else if remember {
                        keys.id(&self.key)
                    } else {
                        // Counted once: into the interval's table at once,
                        // not through a key id no one looks up again.
                        let amount = d.measure.of(&amounts);
                        if amount != 0 {
                            table.add(&self.key, amount);
                        }
                        UNKNOWN
                    };
                    self.row.push(id);
                }
                if remember {
                    if ids.len() < at + stride {
                        ids.resize(at + stride, UNKNOWN);
                    }
                    ids[at..at + stride].copy_from_slice(&self.row);
                    self.remembering += 1;
                }
            }
        }
        if !self.plan.is_empty() {
            self.classes.add(self.row[0], &amounts);
        }
        for ((d, keys), &id) in spec
            .definitions
            .iter()
            .zip(&mut self.keys)
            .zip(&self.row[1..])
        {
            let amount = d.measure.of(&amounts);
            if id != UNKNOWN && amount != 0 {
                keys.add(id, &amount);
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
        self.part.worker = self.id;
        self.part.numbering = self.numbering;
        self.part.numbered = self
            .keys
            .iter_mut()
            .map(|keys| Numbered {
                new: keys.take_new(),
                amounts: keys.drain_ids(),
            })
            .collect();
        let most = 2 * self.remembering + SPARE_KEYS;
        if self.classes.len() > most || self.keys.iter().any(|k| k.len() > most) {
            self.reset_keys();
        }
        // Summed here, on the worker's thread, not by the reducer.
        self.part.tables.iter_mut().for_each(Table::settle);
        // The next interval's tables start with room for as many keys as
        // these hold (their keys' hashes kept, growing is cheap, but a
        // million keys still counted 10% faster in seven runs of
        // benches/analytics.rs out of seven).
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
            spec,
            ..TallyPart::default()
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
