use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowstat_core::{
    AddrClass, Classifier, Detection, DigestPrev, Endpoint, FlowEvent, FlowInfo, FlowView,
    Metadata, OtherType, PacketMeta, PortGuess, Protocol, PurgeReason, SideStats, TcpInfo,
    Timestamp, ip_addr,
};
use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};
use std::hash::BuildHasher;

use crate::digest;
use crate::frag::{Datagram, DatagramKey, Fragments, MAX_DATAGRAMS};
use crate::locals::LocalNetworks;
use crate::macs::{MacPairs, NO_MACS};
use crate::slab::Slab;
use crate::slot_key::{SlotKey, V6Addrs};
use crate::tcp::{SegmentTime, TcpState};
use flowstat_core::{FlowKey, Side};

/// Flow table limits and timeouts (config section `[flows]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most flows held; a new flow beyond it evicts the least recently seen.
    pub max_flows: usize,
    /// Idle timeout of UDP and other non-TCP flows.
    pub ttl_idle_flow: Duration,
    /// Idle timeout of TCP flows.
    pub ttl_idle_tcp_flow: Duration,
    /// Quiet time after which a closed TCP flow (FIN both ways, or RST) is
    /// purged with reason `closed`.
    pub ttl_closed_tcp_flow: Duration,
    /// Packets examined by detection before it gives up.
    pub max_detection_packets: u8,
    /// How long fragments of one datagram are matched to its first fragment.
    pub fragment_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1_000_000,
            ttl_idle_flow: Duration::from_secs(30),
            ttl_idle_tcp_flow: Duration::from_secs(300),
            ttl_closed_tcp_flow: Duration::from_secs(10),
            max_detection_packets: 32,
            fragment_timeout: Duration::from_secs(30),
        }
    }
}

/// What [`FlowTable::observe`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Counted in a flow.
    Flow,
    /// A fragment whose first fragment has not been seen yet: held, and
    /// credited to the flow when it comes (or reported discarded by a tick).
    Held,
    /// A fragment that could not be attributed or held (counted in
    /// [`TableCounters::discarded`]).
    Discarded,
}

/// The most flows a set of flow tables may hold together (`max_flows`):
/// the agent's limit, shared by the tables of every flow worker and
/// capture source. A table that needs room evicts its own least recently
/// seen flow; one that holds none may take room beyond the limit for one,
/// so no flow is ever refused and the tables hold at most `max_flows`
/// plus one per table.
#[derive(Clone, Debug)]
pub struct FlowLimit {
    max: usize,
    held: Arc<AtomicUsize>,
}

impl FlowLimit {
    /// A limit of `max` flows (at least one).
    pub fn new(max: usize) -> Self {
        FlowLimit {
            max: max.max(1),
            held: Arc::default(),
        }
    }

    /// Takes room for one flow of a table holding `own` flows, if there
    /// is any or the table holds none.
    fn take(&self, own: usize) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held < self.max || own == 0).then_some(held + 1)
            })
            .is_ok()
    }

    /// Gives back the room of `flows` that left.
    fn give_back(&self, flows: usize) {
        self.held.fetch_sub(flows, Ordering::Relaxed);
    }
}

/// Table activity since the previous [`FlowTable::take_counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Flows created.
    pub created: u64,
    /// Flows that saw at least one packet (counted by ticks and drains).
    pub active: u64,
    /// Flows purged, for any reason.
    pub purged: u64,
    /// Flows purged as expired (idle, evicted, or open at drain).
    pub expired: u64,
    /// Flows purged as closed.
    pub closed: u64,
    /// Flows evicted for `max_flows` (also counted in `expired`).
    pub evicted: u64,
    /// TCP sequence errors.
    pub tcp_seq_errors: u64,
    /// TCP segments with RST.
    pub tcp_resets: u64,
    /// Fragments that could not be attributed to a flow: their first
    /// fragment never came (or the flow was gone), or too many datagrams
    /// were pending. Part of the interface's `discarded`.
    pub discarded: u64,
    /// Wire bytes of those fragments.
    pub discarded_bytes: u64,
}

impl std::ops::AddAssign<&TableCounters> for TableCounters {
    /// Adds another table's counters for the same interval.
    fn add_assign(&mut self, b: &TableCounters) {
        let TableCounters {
            created,
            active,
            purged,
            expired,
            closed,
            evicted,
            tcp_seq_errors,
            tcp_resets,
            discarded,
            discarded_bytes,
        } = b;
        // Destructured above so that a new field cannot be forgotten here.
        self.created += created;
        self.active += active;
        self.purged += purged;
        self.expired += expired;
        self.closed += closed;
        self.evicted += evicted;
        self.tcp_seq_errors += tcp_seq_errors;
        self.tcp_resets += tcp_resets;
        self.discarded += discarded;
        self.discarded_bytes += discarded_bytes;
    }
}

const NIL: u32 = u32::MAX;

// Flow::flags bits.
const LIVE: u16 = 1;
/// Saw a packet since its previous record.
const ACTIVE: u16 = 1 << 1;
/// The `flow` record was emitted.
const DETECTED: u16 = 1 << 2;
const GUESSED: u16 = 1 << 3;
const RST_SEEN: u16 = 1 << 4;
/// A FIN was sent, per side (lower, upper).
const FIN_SENT: [u16; 2] = [1 << 5, 1 << 6];
/// A second `flow` record went out when detection finished after the first.
const UPDATED: u16 = 1 << 10;
/// The application came from the DNS cache.
const DNS_HIT: u16 = 1 << 11;
/// Detection changed the digest: the first one, recomputed from the key
/// when a record needs it, is the flow's `digest_prev` (with the one in
/// [`FlowTable::then_digests`], if any).
const DIGEST_CHANGED: u16 = 1 << 12;

/// Counters of one side of a flow.
#[derive(Clone, Copy, Debug, Default)]
struct SideState {
    bytes: u64,
    total_bytes: u64,
    total_packets: u64,
    packets: u32,
    /// How many distinct one-second slots (epoch seconds) had traffic
    /// from this side in the interval; the last is `sent`'s.
    slots: u32,
    /// Time of this side's latest packet (the epoch before its first).
    sent: Timestamp,
}

impl SideState {
    fn add(&mut self, packets: u64, bytes: u64, now: Timestamp) {
        self.bytes += bytes;
        self.total_bytes += bytes;
        self.total_packets += packets;
        self.packets = self
            .packets
            .saturating_add(u32::try_from(packets).unwrap_or(u32::MAX));
        if self.slots == 0 || now.as_secs() != self.sent.as_secs() {
            self.slots += 1;
        }
        self.sent = self.sent.max(now);
    }

    fn stats(&self, tcp_flags: u8) -> SideStats {
        SideStats {
            bytes: self.bytes,
            packets: u64::from(self.packets),
            rate: self.bytes.checked_div(u64::from(self.slots)).unwrap_or(0),
            total_bytes: self.total_bytes,
            total_packets: self.total_packets,
            tcp_flags,
        }
    }

    fn end_interval(&mut self) {
        self.bytes = 0;
        self.packets = 0;
        self.slots = 0;
    }
}

/// One flow, with its detection state `S` while detection runs. Kept
/// small: this is the per-flow memory of the agent.
#[derive(Debug)]
struct Flow<S> {
    key: SlotKey,
    /// Least-recently-seen list: `prev` is more recent, `next` older.
    prev: u32,
    next: u32,
    first_seen: Timestamp,
    /// The flow's latest packet is its sides' latest.
    sides: [SideState; 2],
    tcp: TcpState,
    /// The MAC addresses of the sides, in [`FlowTable::macs`]: each is
    /// the source MAC of the side's first packet that had one.
    macs: u32,
    classes: [AddrClass; 2],
    protocol: Protocol,
    application: u32,
    client: Side,
    local: Side,
    other_type: OtherType,
    dscp: u8,
    detection_packets: u8,
    flags: u16,
    /// The timeout class whose list the flow is in.
    class: u8,
    dpi: Dpi<S>,
}

/// Detection of a flow, and its current digest once detection ended:
/// the state and the digest share the slot's bytes, since a flow needs
/// the digest in its slot only when it has no state left.
#[derive(Debug)]
enum Dpi<S> {
    /// Detection runs: the state, from the first packet with payload.
    /// The flow's digest is its first one, recomputed from the key, or
    /// the one in [`FlowTable::changed_digests`].
    Running(Option<S>),
    /// Detection ended, its state dropped: no more packets are examined.
    /// The flow's current digest.
    Ended([u8; 20]),
}

impl<S> Flow<S> {
    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The detection state, while detection runs.
    fn state(&self) -> Option<&S> {
        match &self.dpi {
            Dpi::Running(state) => state.as_ref(),
            Dpi::Ended(_) => None,
        }
    }

    /// Time of the flow's latest packet.
    fn last_seen(&self) -> Timestamp {
        self.sides[0].sent.max(self.sides[1].sent)
    }

    fn closed(&self) -> bool {
        self.has(RST_SEEN) || self.flags & (FIN_SENT[0] | FIN_SENT[1]) == FIN_SENT[0] | FIN_SENT[1]
    }

    /// The timeout class the flow belongs in now.
    fn timeout_class(&self) -> u8 {
        if self.key.protocol != 6 {
            OTHER
        } else if self.closed() {
            TCP_CLOSED
        } else {
            TCP_OPEN
        }
    }

    /// The flow, whose key is `key`, as a classifier sees it: client to
    /// server.
    fn info(&self, key: &FlowKey) -> FlowInfo {
        let (client_ip, client_port) = key.endpoint(self.client);
        let (server_ip, server_port) = key.endpoint(self.client.other());
        let tcp_next = |side: Side| self.tcp.next(side).filter(|_| key.protocol == 6);
        FlowInfo {
            ip_version: key.ip_version,
            ip_protocol: key.protocol,
            client_ip: *client_ip,
            client_port,
            server_ip: *server_ip,
            server_port,
            tcp_next: [tcp_next(self.client), tcp_next(self.client.other())],
        }
    }
}

/// Why a flow of timeout class `class` leaves the table.
fn purge_reason(class: u8) -> PurgeReason {
    if class == TCP_CLOSED {
        PurgeReason::Closed
    } else {
        PurgeReason::Expired
    }
}

/// Timeout classes: each has its own idle timeout, and its own list of
/// flows in order of their latest packet, so a tick finds what expired at
/// the tails and what was active at the heads without visiting the rest.
const OTHER: u8 = 0;
const TCP_OPEN: u8 = 1;
const TCP_CLOSED: u8 = 2;
const CLASSES: usize = 3;

/// Ends of one list: `head` the most recently seen flow, `tail` the least.
#[derive(Clone, Copy, Debug)]
struct Ends {
    head: u32,
    tail: u32,
    len: usize,
}

impl Ends {
    const EMPTY: Ends = Ends {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// The flows of one capture interface, classified by `C` (DPI, or only
/// the IP protocol number and ports with [`PortGuess`]).
///
/// # Record order
///
/// Events come out in an order that depends only on the packets, so that
/// tables that split a capture's flows between them give, merged on the
/// same rule, the events of one table that has them all:
///
/// - [`observe`](Self::observe) emits as the packet comes (a flow's
///   `Detected` when detection ends; an eviction's `Purged`);
/// - [`expire`](Self::expire) and [`drain`](Self::drain) purge the least
///   recently seen flow first;
/// - [`report`](Self::report) reports the most recently seen flow first;
///
/// and flows last seen at the same instant go in [`FlowKey`] order. A
/// flow's `Detected` immediately precedes the `Stats` or `Purged` it is
/// emitted with.
#[derive(Debug)]
pub struct FlowTable<C: Classifier = PortGuess> {
    interface: String,
    cfg: FlowConfig,
    locals: LocalNetworks,
    classifier: C,
    flows: Slab<Flow<C::State>>,
    /// Head of the list of free slots, linked through their `next`.
    free: u32,
    /// The IPv6 addresses of the flows' keys.
    v6: V6Addrs,
    /// The flows' MAC addresses.
    macs: MacPairs,
    index: HashTable<u32>,
    hasher: FixedState,
    /// Most recently seen flow, and least recently seen.
    /// Least-recently-seen lists, one per timeout class.
    lists: [Ends; CLASSES],
    /// The flow of the last lookup (a hint; checked before use).
    last: u32,
    live: usize,
    fragments: Fragments,
    /// Digests a `flow` record carried before detection, ending, learnt
    /// more and changed it again: the middle entry of those flows'
    /// `digest_prev`. Rare (a flow reported while still being detected),
    /// so kept here rather than in every slot.
    then_digests: HashMap<u32, [u8; 20], FixedState>,
    /// The current digests of flows whose detection runs but already
    /// changed the digest (flows reported while still being detected):
    /// until detection ends, the slot has no room for it.
    changed_digests: HashMap<u32, [u8; 20], FixedState>,
    counters: TableCounters,
    /// Flows last seen at the same instant, being put in key order.
    run: Vec<u32>,
    /// When the previous interval began and when the current one did (the
    /// two latest reports).
    intervals_began: (Timestamp, Timestamp),
    /// `max_flows`: this table's own, or shared with others.
    limit: FlowLimit,
}

impl<C: Classifier> Drop for FlowTable<C> {
    /// Gives back the room of the flows still held to the shared limit.
    fn drop(&mut self) {
        self.limit.give_back(self.live);
    }
}

fn hash_key(hasher: &FixedState, key: &FlowKey) -> u64 {
    hasher.hash_one(key)
}

impl<C: Classifier> FlowTable<C> {
    /// An empty table for the capture interface named `interface` (the
    /// name is part of every digest).
    pub fn new(interface: &str, cfg: FlowConfig, locals: LocalNetworks, classifier: C) -> Self {
        FlowTable {
            limit: FlowLimit::new(cfg.max_flows),
            classifier,
            interface: interface.to_owned(),
            cfg,
            locals,
            flows: Slab::default(),
            free: NIL,
            v6: V6Addrs::default(),
            macs: MacPairs::default(),
            index: HashTable::new(),
            hasher: FixedState::with_seed(0x666c_6f77_7374_6174),
            lists: [Ends::EMPTY; CLASSES],
            last: NIL,
            live: 0,
            fragments: Fragments::default(),
            then_digests: HashMap::default(),
            changed_digests: HashMap::default(),
            counters: TableCounters::default(),
            run: Vec::new(),
            intervals_began: (Timestamp::ZERO, Timestamp::ZERO),
        }
    }

    /// The table shares `limit` with others instead of holding
    /// `max_flows` flows of its own. Call before the first packet.
    pub fn with_limit(mut self, limit: FlowLimit) -> Self {
        self.limit = limit;
        self
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Closed TCP flows waiting for `ttl_closed_tcp_flow` of quiet.
    pub fn closing(&self) -> usize {
        self.lists[usize::from(TCP_CLOSED)].len
    }

    /// Replaces the local networks; flows already in the table keep the
    /// orientation they were created with.
    pub fn set_local_networks(&mut self, locals: LocalNetworks) {
        self.locals = locals;
    }

    /// The classifier (to reload what it knows, e.g. its application table).
    pub fn classifier_mut(&mut self) -> &mut C {
        &mut self.classifier
    }

    /// Counters since the previous call, which resets them.
    pub fn take_counters(&mut self) -> TableCounters {
        std::mem::take(&mut self.counters)
    }

    /// Heap bytes held by the table: flow slots, their IPv6 and MAC
    /// addresses, digests held aside and index (not counting fragment
    /// tracking, which is bounded separately).
    pub fn memory_bytes(&self) -> usize {
        self.flows.memory_bytes()
            + self.v6.memory_bytes()
            + self.macs.memory_bytes()
            + self.then_digests.allocation_size()
            + self.changed_digests.allocation_size()
            + self.index.allocation_size()
    }

    /// Bytes of one flow slot.
    pub const fn flow_size() -> usize {
        std::mem::size_of::<Flow<C::State>>()
    }

    /// Accounts one packet. `pkt.ts` must not go backwards between calls;
    /// the caller keeps packet time monotonic.
    ///
    /// May emit `Detected` (detection finished, or gave up after
    /// `max_detection_packets`) and, when the table is full, `Purged` for
    /// the evicted flow.
    pub fn observe<F>(&mut self, pkt: &PacketMeta<'_>, emit: &mut F) -> Observed
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        if let Some(frag) = pkt.fragment
            && frag.offset != 0
        {
            return self.observe_later_fragment(pkt, DatagramKey::of(pkt, frag.id));
        }
        let (key, side) = FlowKey::of(pkt);
        let idx = match self.find(&key) {
            Some(idx) => idx,
            None => self.insert(key, side, pkt, emit),
        };
        self.last = idx;
        self.account(idx, side, 1, u64::from(pkt.wire_len), pkt.src_mac, pkt.ts);
        if let Some(tcp) = &pkt.tcp {
            self.analyse_tcp(idx, side, tcp, pkt.payload_len, pkt.ts);
        }
        if let Some(frag) = pkt.fragment {
            self.first_fragment(idx, key, side, DatagramKey::of(pkt, frag.id), pkt.ts);
        }
        if let Dpi::Running(_) = self.flows.get(idx).dpi {
            self.detect(idx, &key, side, pkt, emit);
        }
        Observed::Flow
    }

    /// The first half of an interval's end at `now`: purges every flow
    /// that closed or went idle (`Purged`, preceded by `Detected` if its
    /// `flow` record has not gone out), in [record order](FlowTable#record-order),
    /// and forgets fragments past `fragment_timeout`.
    pub fn expire<F>(&mut self, now: Timestamp, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        self.purge_oldest(
            |table, f| now.since(f.last_seen()) >= table.ttl(f.class),
            emit,
        );
        let deadline = now
            .as_nanos()
            .saturating_sub(self.cfg.fragment_timeout.as_nanos() as u64);
        self.expire_fragments(Timestamp::from_nanos(deadline));
    }

    /// The second half of an interval's end at `now`: emits `Stats` for
    /// every flow that saw packets since its previous record (preceded by
    /// `Detected` if its `flow` record has not gone out yet; detection
    /// then goes on, and a second `flow` record follows if it learns
    /// more), in [record order](FlowTable#record-order), and starts its
    /// next interval. A flow that has sent nothing for a whole interval
    /// while its detection runs gives up detection here (its state is
    /// released; a second `flow` record follows if detection had learnt
    /// more since the first).
    pub fn report<F>(&mut self, now: Timestamp, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        // Flows seen since the previous interval began: this interval's
        // active flows, then those last seen in the previous interval.
        let since = self.intervals_began.0;
        // A cursor per list, from its head (the most recently seen): the
        // lists are in order of last_seen, so merging them gives those
        // flows newest first.
        let mut cursors = self.lists.map(|l| l.head);
        let mut run = std::mem::take(&mut self.run);
        loop {
            let visit = |idx: u32| {
                idx != NIL && {
                    let f = self.flows.get(idx);
                    f.has(ACTIVE) || f.last_seen() >= since
                }
            };
            let Some(newest) = cursors
                .iter()
                .filter(|&&c| visit(c))
                .map(|&c| self.flows.get(c).last_seen())
                .max()
            else {
                break;
            };
            run.clear();
            for c in &mut cursors {
                while visit(*c) && self.flows.get(*c).last_seen() == newest {
                    run.push(*c);
                    *c = self.flows.get(*c).next;
                }
            }
            self.sort_run(&mut run);
            for &idx in &run {
                if !self.flows.get(idx).has(ACTIVE) {
                    // Quiet for this whole interval.
                    self.finish_detection(idx, emit);
                    continue;
                }
                self.counters.active += 1;
                if !self.flows.get(idx).has(DETECTED) {
                    self.classify(idx);
                    self.flows.get_mut(idx).flags |= DETECTED;
                    self.emit(idx, FlowEvent::Detected, emit);
                }
                self.emit(idx, FlowEvent::Stats, emit);
                let f = self.flows.get_mut(idx);
                f.flags &= !ACTIVE;
                f.tcp.end_interval();
                f.sides.iter_mut().for_each(SideState::end_interval);
            }
        }
        self.run = run;
        self.intervals_began = (self.intervals_began.1, now);
    }

    /// Purges every flow (shutdown, end of a replay), in
    /// [record order](FlowTable#record-order): `closed` for closed TCP
    /// flows, `expired` for the rest. Held fragments are reported lost.
    pub fn drain<F>(&mut self, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        self.purge_oldest(|_, _| true, emit);
        self.expire_fragments(Timestamp::from_nanos(u64::MAX));
    }

    /// Purges, least recently seen first, the flows `due` says must go.
    /// The lists' tails are the least recently seen flows of each timeout
    /// class, and a class's due flows make up its tail end, so merging the
    /// tails gives them in order.
    fn purge_oldest<F>(&mut self, due: impl Fn(&Self, &Flow<C::State>) -> bool, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        let mut run = std::mem::take(&mut self.run);
        loop {
            let due_at = |idx: u32| idx != NIL && due(self, self.flows.get(idx));
            let Some(oldest) = self
                .lists
                .iter()
                .filter(|l| due_at(l.tail))
                .map(|l| self.flows.get(l.tail).last_seen())
                .min()
            else {
                break;
            };
            run.clear();
            for list in &self.lists {
                let mut idx = list.tail;
                while due_at(idx) && self.flows.get(idx).last_seen() == oldest {
                    run.push(idx);
                    idx = self.flows.get(idx).prev;
                }
            }
            self.sort_run(&mut run);
            for &idx in &run {
                let reason = purge_reason(self.flows.get(idx).class);
                self.purge(idx, reason, false, emit);
            }
        }
        self.run = run;
    }

    /// Puts flows last seen at the same instant in key order.
    fn sort_run(&self, run: &mut [u32]) {
        if run.len() > 1 {
            run.sort_unstable_by_key(|&idx| self.key_of(idx));
        }
    }

    /// Forgets datagrams not seen since `deadline`, counting held
    /// fragments whose first fragment never came as lost.
    fn expire_fragments(&mut self, deadline: Timestamp) {
        let (packets, bytes) = self.fragments.expire(deadline);
        self.counters.discarded += packets;
        self.counters.discarded_bytes += bytes;
    }

    fn ttl(&self, class: u8) -> Duration {
        match class {
            OTHER => self.cfg.ttl_idle_flow,
            TCP_OPEN => self.cfg.ttl_idle_tcp_flow,
            _ => self.cfg.ttl_closed_tcp_flow,
        }
    }

    /// The whole key of flow `idx`.
    fn key_of(&self, idx: u32) -> FlowKey {
        self.v6.key(&self.flows.get(idx).key)
    }

    fn find(&self, key: &FlowKey) -> Option<u32> {
        // Packets come in bursts of one flow: try the last flow found first.
        if self.last < self.flows.len() {
            let f = self.flows.get(self.last);
            if f.has(LIVE) && self.v6.matches(&f.key, key) {
                return Some(self.last);
            }
        }
        let hash = hash_key(&self.hasher, key);
        self.index
            .find(hash, |&i| self.v6.matches(&self.flows.get(i).key, key))
            .copied()
    }

    /// Adds a flow; when the limit is reached, this table's least recently
    /// seen flows are evicted to make room.
    fn insert<F>(&mut self, key: FlowKey, side: Side, pkt: &PacketMeta<'_>, emit: &mut F) -> u32
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        while !self.limit.take(self.live) {
            let oldest = self
                .least_recently_seen()
                .expect("a table holding flows has a least recently seen one");
            self.counters.evicted += 1;
            self.purge(oldest, PurgeReason::Expired, true, emit);
        }
        let client = client_side(pkt, side);
        let classes = [Side::Lower, Side::Upper].map(|s| {
            let (addr, _) = key.endpoint(s);
            self.locals.classify(ip_addr(key.ip_version, addr))
        });
        let inside = classes.map(AddrClass::is_inside);
        let local = if inside[0] != inside[1] {
            if inside[0] { Side::Lower } else { Side::Upper }
        } else {
            client
        };
        let other_type = if inside[0] && inside[1] {
            OtherType::Local
        } else {
            match classes[local.other().index()] {
                AddrClass::Multicast => OtherType::Multicast,
                AddrClass::Broadcast => OtherType::Broadcast,
                _ => OtherType::Remote,
            }
        };

        let flow = Flow {
            key: self.v6.store(&key),
            prev: NIL,
            next: NIL,
            first_seen: pkt.ts,
            sides: [SideState::default(); 2],
            tcp: TcpState::default(),
            macs: NO_MACS,
            classes,
            protocol: Protocol::UNKNOWN,
            application: 0,
            client,
            local,
            other_type,
            dscp: pkt.dscp,
            detection_packets: 0,
            flags: LIVE,
            class: if key.protocol == 6 { TCP_OPEN } else { OTHER },
            dpi: Dpi::Running(None),
        };
        let idx = match self.free {
            NIL => self.flows.push(flow),
            free => {
                let slot = self.flows.get_mut(free);
                self.free = slot.next;
                *slot = flow;
                free
            }
        };
        let hash = hash_key(&self.hasher, &key);
        let (flows, v6, hasher) = (&self.flows, &self.v6, &self.hasher);
        self.index
            .insert_unique(hash, idx, |&i| hash_key(hasher, &v6.key(&flows.get(i).key)));
        self.live += 1;
        self.counters.created += 1;
        self.push_front(idx);
        idx
    }

    /// The flow whose latest packet is the oldest: the oldest of the lists'
    /// tails (ties go to the first class).
    fn least_recently_seen(&self) -> Option<u32> {
        self.lists
            .iter()
            .map(|l| l.tail)
            .filter(|&t| t != NIL)
            .min_by_key(|&t| self.flows.get(t).last_seen())
    }

    /// Adds packets sent by `side` at `now` and makes the flow the most
    /// recently seen.
    fn account(
        &mut self,
        idx: u32,
        side: Side,
        packets: u64,
        bytes: u64,
        mac: [u8; 6],
        now: Timestamp,
    ) {
        let f = self.flows.get_mut(idx);
        f.sides[side.index()].add(packets, bytes, now);
        if mac != [0; 6] && self.macs.get(f.macs)[side.index()] == [0; 6] {
            f.macs = self.macs.set(f.macs, side, mac);
        }
        f.flags |= ACTIVE;
        if self.lists[usize::from(f.class)].head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Runs a TCP segment sent by `side` at `now` through the flow's
    /// sequence analysis.
    fn analyse_tcp(
        &mut self,
        idx: u32,
        side: Side,
        tcp: &TcpInfo,
        payload_len: u32,
        now: Timestamp,
    ) {
        let f = self.flows.get_mut(idx);
        let before = f.tcp.interval;
        let at = SegmentTime {
            micros: now.since(f.first_seen).as_micros() as u32,
            since_peer: now.since(f.sides[side.other().index()].sent),
        };
        f.tcp.segment(side, tcp, payload_len, at);
        if tcp.has(TcpInfo::FIN) {
            f.flags |= FIN_SENT[side.index()];
        }
        if tcp.has(TcpInfo::RST) {
            f.flags |= RST_SEEN;
        }
        if f.timeout_class() != f.class {
            // Closed now: on to the closed list, as its most recent flow.
            self.unlink(idx);
            self.flows.get_mut(idx).class = TCP_CLOSED;
            self.push_front(idx);
        }
        let after = self.flows.get(idx).tcp.interval;
        self.counters.tcp_resets += u64::from(after.resets - before.resets);
        self.counters.tcp_seq_errors += u64::from(after.seq_errors - before.seq_errors);
    }

    /// Shows a packet sent by `side` to detection (`key` is the flow's).
    /// The state starts with the first packet that carries payload;
    /// detection ends when the classifier has nothing more to learn or
    /// after `max_detection_packets` packets.
    fn detect<F>(&mut self, idx: u32, key: &FlowKey, side: Side, pkt: &PacketMeta<'_>, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        let f = self.flows.get_mut(idx);
        f.detection_packets = f.detection_packets.saturating_add(1);
        let info = f.info(key);
        let from_client = side == f.client;
        let done = match &mut f.dpi {
            Dpi::Running(Some(state)) => self.classifier.inspect(state, &info, pkt, from_client),
            Dpi::Running(state @ None) if !pkt.payload.is_empty() => {
                let state = state.insert(self.classifier.start(&info));
                self.classifier.inspect(state, &info, pkt, from_client)
            }
            _ => false,
        };
        if done || f.detection_packets >= self.cfg.max_detection_packets {
            self.finish_detection(idx, emit);
        }
    }

    /// Ends detection if it is still running and drops its state. Emits
    /// `Detected`: the flow's `flow` record, or a second one (marked
    /// updated) when the first went out earlier and detection has learnt
    /// more since, or the digest changed: a `flow` record always carries
    /// the digest of what it says.
    fn finish_detection<F>(&mut self, idx: u32, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        let f = self.flows.get(idx);
        if let Dpi::Ended(_) = f.dpi {
            return;
        }
        // What detection says of the flow, with the digest it changed, if
        // any (else the digest is the first one).
        let answer = |t: &Self, f: &Flow<C::State>| {
            let changed = t.changed_digests.get(&idx).copied();
            (f.protocol, f.application, f.has(GUESSED), changed)
        };
        let before = answer(self, f);
        self.classify(idx);
        let f = self.flows.get(idx);
        if !f.has(DETECTED) {
            self.flows.get_mut(idx).flags |= DETECTED;
            self.emit(idx, FlowEvent::Detected, emit);
        } else if before != answer(self, f) {
            self.flows.get_mut(idx).flags |= UPDATED;
            self.emit(idx, FlowEvent::Detected, emit);
        }
        let digest = self
            .changed_digests
            .remove(&idx)
            .unwrap_or_else(|| digest::base(&self.interface, &self.key_of(idx)));
        self.flows.get_mut(idx).dpi = Dpi::Ended(digest);
    }

    /// Takes the classifier's current answer for the flow, whose detection
    /// runs: protocol, application, flags and, when they add metadata, the
    /// digest of them (a `flow` record carries the digest of what it says).
    fn classify(&mut self, idx: u32) {
        let key = self.key_of(idx);
        let f = self.flows.get_mut(idx);
        let outcome = self.classifier.outcome(f.state(), &f.info(&key));
        f.protocol = outcome.protocol;
        f.application = outcome.application;
        f.flags &= !(GUESSED | DNS_HIT);
        if outcome.guessed {
            f.flags |= GUESSED;
        }
        if outcome.dns_cache_hit {
            f.flags |= DNS_HIT;
        }
        let host = f.state().map_or("", |s| {
            self.classifier.metadata(s).host_server_name.as_str()
        });
        if f.protocol != Protocol::UNKNOWN || f.application != 0 || !host.is_empty() {
            let digest =
                digest::with_metadata(&self.interface, &key, f.protocol.0, f.application, host);
            if let Some(then) = self.changed_digests.insert(idx, digest)
                && then != digest
            {
                self.then_digests.insert(idx, then);
            }
            f.flags |= DIGEST_CHANGED;
        }
    }

    fn observe_later_fragment(&mut self, pkt: &PacketMeta<'_>, dkey: DatagramKey) -> Observed {
        let bytes = u64::from(pkt.wire_len);
        let full = self.fragments.map.len() >= MAX_DATAGRAMS;
        let observed = match self.fragments.map.get_mut(&dkey) {
            Some(Datagram::Attributed { key, side, seen }) => {
                *seen = pkt.ts;
                let (key, side) = (*key, *side);
                match self.find(&key) {
                    Some(idx) => {
                        self.account(idx, side, 1, bytes, pkt.src_mac, pkt.ts);
                        Observed::Flow
                    }
                    // The flow was purged between the datagram's fragments.
                    None => Observed::Discarded,
                }
            }
            Some(Datagram::Pending {
                packets,
                bytes: held,
                seen,
                ..
            }) => {
                *packets += 1;
                *held += bytes;
                *seen = pkt.ts;
                Observed::Held
            }
            None if !full => {
                self.fragments.map.insert(
                    dkey,
                    Datagram::Pending {
                        packets: 1,
                        bytes,
                        first: pkt.ts,
                        seen: pkt.ts,
                        mac: pkt.src_mac,
                    },
                );
                Observed::Held
            }
            None => Observed::Discarded,
        };
        if observed == Observed::Discarded {
            self.counters.discarded += 1;
            self.counters.discarded_bytes += bytes;
        }
        observed
    }

    /// Records the flow of a datagram's first fragment and credits the
    /// fragments that arrived before it.
    fn first_fragment(
        &mut self,
        idx: u32,
        key: FlowKey,
        side: Side,
        dkey: DatagramKey,
        now: Timestamp,
    ) {
        let attributed = Datagram::Attributed {
            key,
            side,
            seen: now,
        };
        let full = self.fragments.map.len() >= MAX_DATAGRAMS;
        let held = match self.fragments.map.get_mut(&dkey) {
            Some(d) => std::mem::replace(d, attributed),
            None if !full => {
                self.fragments.map.insert(dkey, attributed);
                return;
            }
            None => return,
        };
        if let Datagram::Pending {
            packets,
            bytes,
            first,
            mac,
            ..
        } = held
        {
            self.account(idx, side, packets, bytes, mac, now);
            // The flow began with the earliest fragment it counts.
            let f = self.flows.get_mut(idx);
            f.first_seen = f.first_seen.min(first);
        }
    }

    fn purge<F>(&mut self, idx: u32, reason: PurgeReason, evicted: bool, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        self.finish_detection(idx, emit);
        if self.flows.get(idx).has(ACTIVE) {
            self.counters.active += 1;
        }
        self.emit(idx, FlowEvent::Purged { reason, evicted }, emit);
        self.counters.purged += 1;
        match reason {
            PurgeReason::Closed => self.counters.closed += 1,
            PurgeReason::Expired => self.counters.expired += 1,
        }
        self.then_digests.remove(&idx);
        let hash = hash_key(&self.hasher, &self.key_of(idx));
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        self.unlink(idx);
        let f = self.flows.get_mut(idx);
        self.v6.release(&f.key);
        self.macs.release(f.macs);
        f.flags = 0;
        f.next = self.free;
        self.free = idx;
        self.live -= 1;
        self.limit.give_back(1);
    }

    fn emit<F>(&self, idx: u32, event: FlowEvent, emit: &mut F)
    where
        F: FnMut(FlowEvent, &FlowView<'_>),
    {
        let f = self.flows.get(idx);
        let key = self.key_of(idx);
        let macs = self.macs.get(f.macs);
        // The first digest is recomputed rather than kept: 20 bytes less in
        // every slot, for a SHA-1 block per record encoded of a flow
        // detection named, or of one whose detection runs and has not
        // changed it.
        let first_digest = || digest::base(&self.interface, &key);
        let digest = match &f.dpi {
            Dpi::Running(_) => self
                .changed_digests
                .get(&idx)
                .copied()
                .unwrap_or_else(first_digest),
            Dpi::Ended(digest) => *digest,
        };
        let digest_prev = f.has(DIGEST_CHANGED).then(|| DigestPrev {
            first: &first_digest,
            then: self.then_digests.get(&idx).copied(),
        });
        let endpoint = |side: Side| {
            let (addr, port) = key.endpoint(side);
            Endpoint {
                ip: ip_addr(key.ip_version, addr),
                port,
                mac: macs[side.index()],
                class: f.classes[side.index()],
            }
        };
        let (local, other) = (f.local, f.local.other());
        let view = FlowView {
            key,
            slot: idx,
            ip_version: key.ip_version,
            ip_protocol: key.protocol,
            vlan_id: key.vlan_id,
            ip_dscp: f.dscp,
            local: endpoint(local),
            other: endpoint(other),
            other_type: f.other_type,
            local_origin: f.client == local,
            first_seen: f.first_seen,
            last_seen: f.last_seen(),
            digest,
            digest_prev,
            detection: Detection {
                protocol: f.protocol,
                application: f.application,
                application_name: self.classifier.application_name(f.application),
                category: self.classifier.application_category(f.application),
                guessed: f.has(GUESSED),
                packets: u32::from(f.detection_packets),
                updated: f.has(UPDATED),
                dns_cache_hit: f.has(DNS_HIT),
                meta: f
                    .state()
                    .map_or(Metadata::none(), |s| self.classifier.metadata(s)),
            },
            local_stats: f.sides[local.index()].stats(f.tcp.flags_sent[local.index()]),
            other_stats: f.sides[other.index()].stats(f.tcp.flags_sent[other.index()]),
            tcp: (key.protocol == 6).then_some(f.tcp.interval),
            tcp_total: (key.protocol == 6).then_some(f.tcp.total),
        };
        emit(event, &view);
    }

    /// Puts `idx` at the head of its class's list.
    fn push_front(&mut self, idx: u32) {
        let class = usize::from(self.flows.get(idx).class);
        let old = self.lists[class].head;
        {
            let f = self.flows.get_mut(idx);
            f.prev = NIL;
            f.next = old;
        }
        if old != NIL {
            self.flows.get_mut(old).prev = idx;
        } else {
            self.lists[class].tail = idx;
        }
        self.lists[class].head = idx;
        self.lists[class].len += 1;
    }

    /// Takes `idx` out of its class's list.
    fn unlink(&mut self, idx: u32) {
        let (prev, next, class) = {
            let f = self.flows.get(idx);
            (f.prev, f.next, usize::from(f.class))
        };
        if prev != NIL {
            self.flows.get_mut(prev).next = next;
        } else {
            self.lists[class].head = next;
        }
        if next != NIL {
            self.flows.get_mut(next).prev = prev;
        } else {
            self.lists[class].tail = prev;
        }
        self.lists[class].len -= 1;
        let f = self.flows.get_mut(idx);
        f.prev = NIL;
        f.next = NIL;
    }
}

/// The client (originator) of a new flow from its first packet, sent by
/// `sender` (SPEC section 2).
fn client_side(pkt: &PacketMeta<'_>, sender: Side) -> Side {
    if let Some(tcp) = &pkt.tcp
        && tcp.has(TcpInfo::SYN)
    {
        return if tcp.has(TcpInfo::ACK) {
            sender.other()
        } else {
            sender
        };
    }
    if pkt.src_port < 1024 && pkt.dst_port >= 1024 {
        sender.other()
    } else {
        sender
    }
}

#[cfg(test)]
mod tests;
