//! The capture side of the pipeline: each frame is decoded once, counted
//! in its interface's counters, and handed, decoded, to the flow worker
//! that owns its flow.

use std::hash::BuildHasher;

use flowstat_core::{DecodeError, Frame, InterfaceCounters, Layers, LinkType, PacketMeta};
use flowstat_decode::{DecodeConfig, decode};
use foldhash::fast::FixedState;

use crate::worker::{Deliver, FlowWorker, Position};

/// Decodes frames, counts them, and picks each one's flow worker.
#[derive(Debug)]
pub struct Dispatcher {
    decode: DecodeConfig,
    hasher: FixedState,
    workers: usize,
    /// What the frames dispatched since the last
    /// [`take_counters`](Self::take_counters) were.
    counters: InterfaceCounters,
}

impl Dispatcher {
    /// A dispatcher to `workers` flow workers.
    pub fn new(decode: DecodeConfig, workers: usize) -> Self {
        Dispatcher {
            decode,
            hasher: FixedState::with_seed(0x7066_6c6f_7773),
            workers: workers.max(1),
            counters: InterfaceCounters::default(),
        }
    }

    /// Decodes and counts `frame`. Returns its packet and the worker that
    /// owns its flow, or `None` when it belongs to no flow (not IP, or
    /// undecodable: counted as discarded).
    pub fn dispatch<'a>(&mut self, frame: &Frame<'a>) -> Option<(usize, PacketMeta<'a>)> {
        let mut pkt = PacketMeta::new(frame.ts, frame.wire_len);
        let decoded = decode(frame, &self.decode, &mut pkt);
        count_frame(&mut self.counters, frame, &decoded, &pkt);
        decoded.ok()?;
        Some((self.worker_of(&pkt), pkt))
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
        if self.workers == 1 {
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
        (hash % self.workers as u64) as usize
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
        }
        Err(e) => {
            c.decode_issues[e.index()] += 1;
            c.discarded += 1;
            c.discarded_bytes += len;
        }
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
    packets: Vec<(u64, PacketMeta<'static>, (u32, u32))>,
    payloads: Vec<u8>,
}

impl PacketBatch {
    /// An empty batch of `source`'s packets.
    pub fn new(source: usize) -> Self {
        PacketBatch {
            source,
            upto: 0,
            packets: Vec::new(),
            payloads: Vec::new(),
        }
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Adds `pkt`, the capture's `seq`th packet.
    pub fn push(&mut self, seq: u64, pkt: &PacketMeta<'_>) {
        let at = self.payloads.len() as u32;
        self.payloads.extend_from_slice(pkt.payload);
        let len = pkt.payload.len() as u32;
        self.packets.push((seq, pkt.with_payload(&[]), (at, len)));
    }

    /// The packets with their sequence numbers, in order.
    fn packets(&self) -> impl Iterator<Item = (u64, PacketMeta<'_>)> {
        self.packets.iter().map(|(seq, meta, (at, len))| {
            let payload = &self.payloads[*at as usize..(at + len) as usize];
            (*seq, meta.with_payload(payload))
        })
    }

    /// Runs every packet through `worker`, then hands its records on: the
    /// worker has had every packet of its flows up to `upto`.
    pub fn run(&self, worker: &mut FlowWorker, out: &mut dyn Deliver) {
        for (seq, mut pkt) in self.packets() {
            worker.packet(self.source, seq, &mut pkt, out);
        }
        worker.flush(Position::Packet(self.upto + 1), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::Timestamp;

    #[test]
    fn both_directions_and_every_fragment_pick_the_same_worker() {
        let mut a = PacketMeta::new(Timestamp::ZERO, 60);
        a.ip_version = 4;
        a.protocol = 17;
        a.src_ip[..4].copy_from_slice(&[10, 0, 0, 1]);
        a.dst_ip[..4].copy_from_slice(&[10, 0, 0, 2]);
        a.src_port = 1234;
        a.dst_port = 53;
        let mut b = a;
        (b.src_ip, b.dst_ip, b.src_port, b.dst_port) = (a.dst_ip, a.src_ip, a.dst_port, a.src_port);
        let mut frag = a;
        (frag.src_port, frag.dst_port) = (0, 0);
        for n in 1..9 {
            let d = Dispatcher::new(DecodeConfig::default(), n);
            let w = d.worker_of(&a);
            assert!(w < n);
            assert_eq!(w, d.worker_of(&b));
            assert_eq!(w, d.worker_of(&frag));
        }
    }

    #[test]
    fn batches_carry_each_packet_with_its_own_payload() {
        let mut batch = PacketBatch::new(0);
        for (seq, payload) in [(1, &b"abc"[..]), (2, b""), (5, b"defgh")] {
            let mut p = PacketMeta::new(Timestamp::from_secs(seq), 99);
            p.payload = payload;
            p.payload_len = payload.len() as u32;
            batch.push(seq, &p);
        }
        let seen: Vec<(u64, Vec<u8>)> = batch
            .packets()
            .map(|(seq, p)| (seq, p.payload.to_vec()))
            .collect();
        assert_eq!(
            seen,
            [(1, b"abc".to_vec()), (2, vec![]), (5, b"defgh".to_vec())]
        );
    }
}
