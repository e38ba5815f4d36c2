//! The capture side of the pipeline: each frame is decoded once, counted
//! in its interface's counters, and handed, decoded, to the flow worker
//! that owns its flow. A DNS response's answers go to every worker, in
//! packet order: each worker keeps its own DNS cache, which then holds,
//! whenever it is read, exactly what one worker's would at that packet.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};
use flowstat_core::{
    DecodeError, Frame, InterfaceCounters, Layers, LinkType, PacketMeta, TcpInfo, Timestamp,
};
use flowstat_decode::{DecodeConfig, decode};
use flowstat_dpi::{DnsAnswer, dns_answer};
use foldhash::fast::FixedState;

use crate::worker::{Deliver, FlowWorker, Position};

/// Decodes frames, counts them, and picks each one's flow worker.
#[derive(Debug)]
pub struct Dispatcher {
    decode: DecodeConfig,
    hasher: FixedState,
    /// Each worker's share of the flows, as the end of its range of the
    /// hash (modulo the total), in worker order.
    shares: Vec<u64>,
    /// What the frames dispatched since the last
    /// [`take_counters`](Self::take_counters) were.
    counters: InterfaceCounters,
    /// Link types met that are not decoded, in the order met, with their
    /// frames so far.
    unsupported: Vec<(u32, u64)>,
}

impl Dispatcher {
    /// A dispatcher to flow workers that take `shares` of the flows
    /// (`[1, 1]`: two workers, half each).
    pub fn new(decode: DecodeConfig, shares: &[u32]) -> Self {
        let shares = shares
            .iter()
            .scan(0u64, |end, &share| {
                *end += u64::from(share.max(1));
                Some(*end)
            })
            .collect::<Vec<_>>();
        Dispatcher {
            decode,
            hasher: FixedState::with_seed(0x7066_6c6f_7773),
            shares: if shares.is_empty() { vec![1] } else { shares },
            counters: InterfaceCounters::default(),
            unsupported: Vec::new(),
        }
    }

    /// Decodes and counts `frame`. Returns where it goes, or `None` when
    /// it belongs to no flow (not IP, or undecodable: counted as
    /// discarded).
    pub fn dispatch<'a>(&mut self, frame: &Frame<'a>) -> Option<Dispatched<'a>> {
        let mut packet = PacketMeta::new(frame.ts, frame.wire_len);
        let decoded = decode(frame, &self.decode, &mut packet);
        count_frame(&mut self.counters, frame, &decoded, &packet);
        if let Err(DecodeError::UnsupportedLink(link)) = decoded {
            match self.unsupported.iter_mut().find(|(l, _)| *l == link) {
                Some((_, frames)) => *frames += 1,
                None => self.unsupported.push((link, 1)),
            }
        }
        decoded.ok()?;
        Some(Dispatched {
            worker: self.worker_of(&packet),
            answer: dns_answer(&packet),
            packet,
        })
    }

    /// The link types met that are not decoded, in the order met, and how
    /// many frames of each were skipped.
    pub fn unsupported_links(&self) -> &[(u32, u64)] {
        &self.unsupported
    }

    /// The counters since the last call.
    pub fn take_counters(&mut self) -> InterfaceCounters {
        std::mem::take(&mut self.counters)
    }

    /// The worker for a packet: a hash of its IP version, protocol, VLAN
    /// and addresses, the same whichever way the packet goes. Ports are
    /// left out so that every fragment of a datagram goes where its first
    /// one went.
    fn worker_of(&self, pkt: &PacketMeta<'_>) -> usize {
        let (&total, more) = (self.shares.last().unwrap_or(&1), self.shares.len() > 1);
        if !more {
            return 0;
        }
        let (a, b) = if pkt.src_ip <= pkt.dst_ip {
            (pkt.src_ip, pkt.dst_ip)
        } else {
            (pkt.dst_ip, pkt.src_ip)
        };
        let hash = self
            .hasher
            .hash_one((pkt.ip_version, pkt.protocol, pkt.vlan_id, a, b));
        // The hash scaled to 0..total by its high bits: a multiplication,
        // where `%` was a division that took a sixth of dispatching.
        let at = ((u128::from(hash) * u128::from(total)) >> 64) as u64;
        self.shares.iter().position(|&end| at < end).unwrap_or(0)
    }
}

/// Watches the run-to-completion capture threads of one interface (one
/// per RX queue) for what breaks them: a flow whose packets arrive on two
/// queues, which RSS that is not symmetric does. Each TCP SYN and SYN+ACK
/// marks its connection, in a table of recent handshakes, with the socket
/// it came on; one that finds its connection marked by another socket has
/// seen a handshake split. One atomic swap per handshake packet.
#[derive(Debug)]
pub struct SplitWatch {
    marks: Box<[AtomicU64]>,
    hasher: FixedState,
    found: AtomicBool,
}

impl Default for SplitWatch {
    fn default() -> Self {
        SplitWatch {
            marks: (0..Self::SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: FixedState::with_seed(0x0073_706c_6974),
            found: AtomicBool::new(false),
        }
    }
}

impl SplitWatch {
    /// Handshakes remembered (a slot each; a newer one takes the slot).
    const SLOTS: usize = 1 << 14;

    /// Notes `pkt`, which came on socket `socket` (below 65,535). True the
    /// first time a handshake is found split, for the caller to say so.
    pub fn saw(&self, socket: usize, pkt: &PacketMeta<'_>) -> bool {
        if pkt.tcp.is_none_or(|t| t.flags & TcpInfo::SYN == 0) {
            return false;
        }
        let (a, b) = ((pkt.src_ip, pkt.src_port), (pkt.dst_ip, pkt.dst_port));
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        let hash = self.hasher.hash_one((pkt.ip_version, pkt.vlan_id, a, b));
        let tag = hash & !0xffff;
        let mark = tag | (socket as u64 + 1);
        let slot = &self.marks[hash as usize % Self::SLOTS];
        let before = slot.swap(mark, Ordering::Relaxed);
        before & !0xffff == tag
            && before != mark
            && before != 0
            && !self.found.swap(true, Ordering::Relaxed)
    }
}

/// The warning for `frames` frames of link type `link` from `source`
/// (`None`: not counted yet) that were not decoded.
pub fn unsupported_link_warning(source: &str, link: u32, frames: Option<u64>) -> String {
    let skipped = match frames {
        Some(n) => format!("{n} frames skipped"),
        None => "its frames are skipped".to_owned(),
    };
    format!(
        "{source}: link type {link} is not decoded ({skipped}, counted in interface_stats \
         decode_issues.unsupported_link); flowstat decodes Ethernet (1), raw IP (101, 228, 229), \
         Linux cooked (113, 276), loopback (0, 108), PPP (9, 50), Cisco HDLC (104) and PPI \
         (192), numbered as in https://www.tcpdump.org/linktypes.html"
    )
}

/// A frame, decoded, and where it goes.
#[derive(Debug)]
pub struct Dispatched<'a> {
    /// The worker that owns its flow.
    pub worker: usize,
    /// The packet.
    pub packet: PacketMeta<'a>,
    /// A DNS response's answers, for every worker's DNS cache (learnt
    /// before the packet itself is seen).
    pub answer: Option<DnsAnswer>,
}

impl Dispatched<'_> {
    /// Has `worker`, the one for every flow, learn the answers and account
    /// the packet, the capture's `seq`th, at once (no batch).
    pub fn run(&mut self, worker: &mut FlowWorker, source: usize, seq: u64, out: &mut dyn Deliver) {
        if let Some(answer) = &self.answer {
            worker.learn(answer);
        }
        worker.packet(source, seq, &mut self.packet, out);
    }

    /// Adds the packet, the capture's `seq`th, to its worker's batch, and
    /// its answers to every batch.
    pub fn push(self, seq: u64, batches: &mut [PacketBatch]) {
        if let Some(answer) = self.answer {
            for b in batches.iter_mut() {
                b.push_answer(answer.clone());
            }
        }
        if let Some(b) = batches.get_mut(self.worker) {
            b.push(seq, &self.packet);
        }
    }
}

/// Counts one frame in its interface's counters by what decoding gave.
fn count_frame(
    c: &mut InterfaceCounters,
    frame: &Frame<'_>,
    decoded: &Result<(), DecodeError>,
    pkt: &PacketMeta<'_>,
) {
    let len = u64::from(frame.wire_len);
    c.raw += 1;
    c.wire_bytes += len;
    c.largest_bytes = c.largest_bytes.max(len);
    c.ethernet += u64::from(frame.link == LinkType::ETHERNET);
    match decoded {
        Ok(()) => {
            c.vlan += u64::from(pkt.layers.contains(Layers::VLAN));
            c.mpls += u64::from(pkt.layers.contains(Layers::MPLS));
            c.pppoe += u64::from(pkt.layers.contains(Layers::PPPOE));
            c.ip += 1;
            c.ip_bytes += len;
            // Only a packet that carries the transport header counts as
            // TCP, UDP...: not a fragment after the first.
            let transport = pkt.fragment.is_none_or(|f| f.offset == 0);
            match pkt.protocol {
                _ if !transport => {}
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
        }
        Err(e) => {
            c.decode_issues[e.index()] += 1;
            c.discarded += 1;
            c.discarded_bytes += len;
        }
    }
}

/// Emptied batches on their way back from the flow workers to the thread
/// that fills them: a batch keeps its buffers, so handing frames over
/// allocates, grows and frees nothing (across threads, that costs
/// allocator work and fresh pages for every batch).
#[derive(Clone)]
pub struct Spares {
    tx: Sender<PacketBatch>,
    rx: Receiver<PacketBatch>,
    /// A batch when none is spare.
    make: fn() -> PacketBatch,
}

impl Spares {
    /// Keeps at most `n` batches; `make` makes one when none is spare.
    pub fn new(n: usize, make: fn() -> PacketBatch) -> Self {
        let (tx, rx) = bounded(n);
        Spares { tx, rx, make }
    }

    /// An empty batch for `source`'s packets.
    pub fn take(&self, source: usize) -> PacketBatch {
        let mut batch = self.rx.try_recv().unwrap_or_else(|_| (self.make)());
        batch.source = source;
        batch
    }

    /// Gives `batch` back, emptied (or frees it when enough are kept).
    pub fn give(&self, mut batch: PacketBatch) {
        batch.clear();
        let _ = self.tx.try_send(batch);
    }
}

/// Decoded packets of one source bound for one worker, in capture order,
/// their payloads copied (the frames they came from are gone by the time
/// the worker runs).
#[derive(Debug)]
pub struct PacketBatch {
    /// The source (capture interface or file) the packets came from.
    pub source: usize,
    /// The sequence number of the last packet the capture had dispatched,
    /// to any worker, when this batch was sent: the worker has every one
    /// of its packets up to it.
    pub upto: u64,
    items: Vec<Item>,
    /// Packets among the items.
    packets: usize,
    payloads: Vec<u8>,
}

/// What a batch carries, in capture order.
#[derive(Debug)]
enum Item {
    /// The capture's `seq`th packet, its payload at `payload` (start,
    /// length) in the batch's payloads.
    Packet {
        seq: u64,
        meta: PacketMeta<'static>,
        payload: (u32, u32),
    },
    /// A DNS response's answers.
    Answer(DnsAnswer),
    /// The end of an interval at this time; with a source, that source's
    /// end (its flows purged).
    End(Timestamp, Option<usize>),
}

impl PacketBatch {
    /// An empty batch of `source`'s packets.
    pub fn new(source: usize) -> Self {
        PacketBatch {
            source,
            upto: 0,
            items: Vec::new(),
            packets: 0,
            payloads: Vec::new(),
        }
    }

    /// An empty batch with room for `packets` packets and `bytes` bytes
    /// of payload.
    pub fn with_capacity(packets: usize, bytes: usize) -> Self {
        PacketBatch {
            items: Vec::with_capacity(packets),
            payloads: Vec::with_capacity(bytes),
            ..PacketBatch::new(0)
        }
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.packets
    }

    /// Bytes of payload in the batch.
    pub fn payload_bytes(&self) -> usize {
        self.payloads.len()
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds the end of an interval at `now` (with `close`, of the source).
    pub fn push_end(&mut self, now: Timestamp, close: Option<usize>) {
        self.items.push(Item::End(now, close));
    }

    /// Adds a DNS response's answers.
    pub fn push_answer(&mut self, answer: DnsAnswer) {
        self.items.push(Item::Answer(answer));
    }

    /// Adds `pkt`, the capture's `seq`th packet.
    pub fn push(&mut self, seq: u64, pkt: &PacketMeta<'_>) {
        let at = self.payloads.len() as u32;
        self.payloads.extend_from_slice(pkt.payload);
        let payload = (at, pkt.payload.len() as u32);
        let meta = pkt.with_payload(&[]);
        self.items.push(Item::Packet { seq, meta, payload });
        self.packets += 1;
    }

    /// Empties the batch, keeping its buffers, to be filled again.
    pub fn clear(&mut self) {
        self.items.clear();
        self.packets = 0;
        self.payloads.clear();
    }

    /// Has `worker` learn every answer, account every packet and end every
    /// interval, in order, then hand its records on: the worker has had
    /// every packet of its flows up to `upto`.
    pub fn run(&self, worker: &mut FlowWorker, out: &mut dyn Deliver) {
        for item in &self.items {
            match item {
                Item::Packet { seq, meta, payload } => {
                    let (at, len) = (payload.0 as usize, payload.1 as usize);
                    let mut pkt = meta.with_payload(&self.payloads[at..at + len]);
                    worker.packet(self.source, *seq, &mut pkt, out);
                }
                Item::Answer(answer) => worker.learn(answer),
                Item::End(now, None) => worker.end_interval(*now, out),
                Item::End(_, Some(source)) => worker.close(Some(*source), out),
            }
        }
        worker.flush(Position::Packet(self.upto + 1), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::Timestamp;

    /// An IPv4 packet of IP protocol `protocol` from 10.0.0.1:`from` to
    /// 10.0.0.2:`to`.
    fn packet(protocol: u8, from: u16, to: u16) -> PacketMeta<'static> {
        let mut p = PacketMeta::new(Timestamp::ZERO, 60);
        p.ip_version = 4;
        p.protocol = protocol;
        p.src_ip[..4].copy_from_slice(&[10, 0, 0, 1]);
        p.dst_ip[..4].copy_from_slice(&[10, 0, 0, 2]);
        (p.src_port, p.dst_port) = (from, to);
        p
    }

    /// `p` the other way.
    fn reversed(p: PacketMeta<'static>) -> PacketMeta<'static> {
        let mut r = p;
        (r.src_ip, r.dst_ip, r.src_port, r.dst_port) = (p.dst_ip, p.src_ip, p.dst_port, p.src_port);
        r
    }

    #[test]
    fn both_directions_and_every_fragment_pick_the_same_worker() {
        let a = packet(17, 1234, 53);
        let b = reversed(a);
        let mut frag = a;
        (frag.src_port, frag.dst_port) = (0, 0);
        for n in 1..9 {
            let d = Dispatcher::new(DecodeConfig::default(), &vec![1; n]);
            let w = d.worker_of(&a);
            assert!(w < n);
            assert_eq!(w, d.worker_of(&b));
            assert_eq!(w, d.worker_of(&frag));
        }
    }

    #[test]
    fn a_handshake_across_two_sockets_is_found_once() {
        let mut syn = packet(6, 40_000, 443);
        syn.tcp = Some(TcpInfo {
            seq: 1,
            ack: 0,
            flags: TcpInfo::SYN,
            window: 0,
        });
        let mut syn_ack = reversed(syn);
        syn_ack.tcp = Some(TcpInfo {
            flags: TcpInfo::SYN | TcpInfo::ACK,
            ..syn.tcp.unwrap()
        });
        let mut ack = syn;
        ack.tcp = Some(TcpInfo {
            flags: TcpInfo::ACK,
            ..syn.tcp.unwrap()
        });

        // Both halves on one socket, and a SYN sent again: no split.
        let watch = SplitWatch::default();
        assert!(!watch.saw(0, &syn));
        assert!(!watch.saw(0, &syn_ack));
        assert!(!watch.saw(0, &syn));
        // An ACK is not looked at.
        assert!(!watch.saw(1, &ack));

        // The answer on another socket: found, and said once.
        let watch = SplitWatch::default();
        assert!(!watch.saw(0, &syn));
        assert!(watch.saw(1, &syn_ack));
        assert!(!watch.saw(0, &syn));
    }

    #[test]
    fn workers_get_flows_in_proportion_to_their_shares() {
        let d = Dispatcher::new(DecodeConfig::default(), &[1, 2]);
        let mut counts = [0u32; 2];
        for i in 0..30_000u32 {
            let mut p = PacketMeta::new(Timestamp::ZERO, 60);
            p.ip_version = 4;
            p.protocol = 17;
            p.src_ip[..4].copy_from_slice(&i.to_be_bytes());
            p.dst_ip[..4].copy_from_slice(&[192, 0, 2, 1]);
            counts[d.worker_of(&p)] += 1;
        }
        // A third and two thirds, give or take.
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
    }
}
