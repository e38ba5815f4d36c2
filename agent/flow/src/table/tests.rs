use super::*;
use flowstat_core::{Fragment, TcpCounters};

fn addr(s: &str) -> [u8; 16] {
    let mut b = [0; 16];
    match s.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => b = a.octets(),
    }
    b
}

/// A packet from `src:sport` to `dst:dport` at `ms` milliseconds.
fn pkt(
    ms: u64,
    proto: u8,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    len: u32,
) -> PacketMeta<'static> {
    PacketMeta {
        ts: Timestamp::from_millis(ms),
        wire_len: len,
        layers: flowstat_core::Layers::empty(),
        vlan_id: 0,
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        ip_version: if src.contains(':') { 6 } else { 4 },
        src_ip: addr(src),
        dst_ip: addr(dst),
        protocol: proto,
        dscp: 0,
        src_port: sport,
        dst_port: dport,
        fragment: None,
        tcp: None,
        payload_len: 0,
        payload: &[],
        issue: None,
    }
}

fn tcp(mut p: PacketMeta<'static>, seq: u32, flags: u8, payload: u32) -> PacketMeta<'static> {
    p.tcp = Some(TcpInfo {
        seq,
        flags,
        ..TcpInfo::default()
    });
    p.payload_len = payload;
    p
}

/// What the table emitted, simplified for assertions.
#[derive(Debug, Clone, PartialEq)]
struct Ev {
    event: FlowEvent,
    slot: u32,
    local: String,
    other: String,
    local_bytes: u64,
    other_bytes: u64,
    local_packets: u64,
    total_packets: u64,
    local_rate: u64,
    local_origin: bool,
    other_type: OtherType,
    tcp: Option<TcpCounters>,
    tcp_total: Option<TcpCounters>,
    /// TCP flags sent by the local side, then the other.
    tcp_flags: (u8, u8),
    protocol: &'static str,
    guessed: bool,
    digest: [u8; 20],
    digest_prev: usize,
    detection_packets: u32,
    /// MAC addresses of the local side, then the other.
    macs: ([u8; 6], [u8; 6]),
}

fn run(
    table: &mut FlowTable,
    f: impl FnOnce(&mut FlowTable, &mut dyn FnMut(FlowEvent, &FlowView<'_>)),
) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut emit = |event: FlowEvent, v: &FlowView<'_>| {
        out.push(Ev {
            event,
            slot: v.slot,
            local: format!("{}:{}", v.local.ip, v.local.port),
            other: format!("{}:{}", v.other.ip, v.other.port),
            local_bytes: v.local_stats.bytes,
            other_bytes: v.other_stats.bytes,
            local_packets: v.local_stats.packets,
            total_packets: v.local_stats.total_packets + v.other_stats.total_packets,
            local_rate: v.local_stats.rate,
            local_origin: v.local_origin,
            other_type: v.other_type,
            tcp: v.tcp,
            tcp_total: v.tcp_total,
            tcp_flags: (v.local_stats.tcp_flags, v.other_stats.tcp_flags),
            protocol: v.detection.protocol.name(),
            guessed: v.detection.guessed,
            digest: v.digest,
            digest_prev: usize::from(v.digest_prev.is_some()),
            detection_packets: v.detection.packets,
            macs: (v.local.mac, v.other.mac),
        })
    };
    f(table, &mut emit);
    out
}

fn table() -> FlowTable {
    FlowTable::new(
        "eth0",
        FlowConfig::default(),
        LocalNetworks::default(),
        PortGuess,
    )
}

fn observe_all(t: &mut FlowTable, pkts: &[PacketMeta<'static>]) -> Vec<Ev> {
    run(t, |t, emit| {
        for p in pkts {
            t.observe(p, &mut |e, v| emit(e, v));
        }
    })
}

fn drain(t: &mut FlowTable) -> Vec<Ev> {
    run(t, |t, emit| t.drain(&mut |e, v| emit(e, v)))
}

/// An interval's end at `ms`: expiry, then the report.
fn tick(t: &mut FlowTable, ms: u64) -> Vec<Ev> {
    run(t, |t, emit| {
        let now = Timestamp::from_millis(ms);
        t.expire(now, &mut |e, v| emit(e, v));
        t.report(now, &mut |e, v| emit(e, v));
    })
}

const PURGE_EXPIRED: FlowEvent = FlowEvent::Purged {
    reason: PurgeReason::Expired,
    evicted: false,
};

#[test]
fn flow_slot_fits_the_memory_budget() {
    // 240 bytes per flow all told: the slot, plus the index (5 to 11.4
    // bytes per flow between its resizes), plus at most one partly used
    // slab chunk. A detection state of one pointer here; the DPI engine's
    // takes 24 bytes too (`agent/dpi/tests/memory.rs`). TCP sequence
    // analysis keeps 64 bytes inline (`TcpState`).
    let size = std::mem::size_of::<Flow<Box<u8>>>();
    assert!(size <= 224, "{size} bytes");
    assert!(FlowTable::<PortGuess>::flow_size() <= size);
}

#[test]
fn both_directions_are_one_flow() {
    let mut t = table();
    observe_all(
        &mut t,
        &[
            pkt(0, 17, "10.0.0.2", 5000, "10.0.0.1", 53, 80),
            pkt(1, 17, "10.0.0.1", 53, "10.0.0.2", 5000, 120),
        ],
    );
    assert_eq!(t.len(), 1);
    let ev = drain(&mut t);
    // Detected then Purged; both private, so the client (port rule) is local.
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].local, "10.0.0.2:5000");
    assert_eq!((ev[1].local_bytes, ev[1].other_bytes), (80, 120));
    assert_eq!(ev[1].other_type, OtherType::Local);
}

#[test]
fn syn_sender_is_the_client_whatever_the_ports() {
    let mut t = table();
    observe_all(
        &mut t,
        &[tcp(
            pkt(0, 6, "10.0.0.9", 80, "10.0.0.1", 40000, 60),
            1,
            TcpInfo::SYN,
            0,
        )],
    );
    let ev = drain(&mut t);
    assert_eq!(ev[1].local, "10.0.0.9:80");
    assert!(ev[1].local_origin);
}

#[test]
fn syn_ack_receiver_is_the_client() {
    let mut t = table();
    observe_all(
        &mut t,
        &[tcp(
            pkt(0, 6, "10.0.0.1", 443, "10.0.0.9", 50000, 60),
            1,
            TcpInfo::SYN | TcpInfo::ACK,
            0,
        )],
    );
    let ev = drain(&mut t);
    assert_eq!(ev[1].local, "10.0.0.9:50000");
}

#[test]
fn the_private_side_is_local_against_a_public_one() {
    let mut t = table();
    // The public server sends first; the private host is still local.
    observe_all(
        &mut t,
        &[pkt(0, 17, "8.8.8.8", 53, "192.168.1.5", 33000, 90)],
    );
    let ev = drain(&mut t);
    assert_eq!(ev[1].local, "192.168.1.5:33000");
    assert_eq!(ev[1].other_type, OtherType::Remote);
    assert!(
        ev[1].local_origin,
        "the port rule makes the private side the client"
    );
}

#[test]
fn multicast_other_side() {
    let mut t = table();
    observe_all(
        &mut t,
        &[pkt(0, 17, "192.168.1.5", 5353, "224.0.0.251", 5353, 90)],
    );
    let ev = drain(&mut t);
    assert_eq!(ev[1].other_type, OtherType::Multicast);
    assert_eq!(ev[1].protocol, "MDNS");
    assert!(ev[1].guessed);
}

#[test]
fn stats_report_the_interval_and_totals_keep_counting() {
    let mut t = table();
    observe_all(
        &mut t,
        &[
            pkt(100, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 100),
            pkt(200, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 100),
        ],
    );
    let ev = tick(&mut t, 15_000);
    assert_eq!(
        ev.iter().map(|e| e.event).collect::<Vec<_>>(),
        vec![FlowEvent::Detected, FlowEvent::Stats]
    );
    assert_eq!((ev[1].local_bytes, ev[1].local_packets), (200, 2));
    observe_all(
        &mut t,
        &[pkt(15_500, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 50)],
    );
    let ev = tick(&mut t, 30_000);
    assert_eq!(
        (ev[0].local_bytes, ev[0].local_packets, ev[0].total_packets),
        (50, 1, 3)
    );
    // No packet in the next interval: no flow_stats.
    assert!(tick(&mut t, 40_000).is_empty());
}

#[test]
fn rate_is_averaged_over_seconds_with_traffic() {
    let mut t = table();
    // 1000 bytes in second 1, 3000 in second 5: 4000 bytes over 2 slots.
    observe_all(
        &mut t,
        &[
            pkt(1_100, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 1000),
            pkt(5_000, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 1000),
            pkt(5_999, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 2000),
        ],
    );
    let ev = tick(&mut t, 15_000);
    assert_eq!(ev[1].local_rate, 2000);
}

#[test]
fn a_flow_keeps_its_slot_and_a_purged_flows_slot_goes_to_a_later_flow() {
    let mut t = table();
    let udp = |ms, sport| pkt(ms, 17, "10.0.0.2", sport, "10.0.0.1", 9999, 100);
    observe_all(&mut t, &[udp(0, 5000), udp(0, 5001)]);
    let slots = |ev: &[Ev]| {
        let mut s: Vec<_> = ev.iter().map(|e| (e.local.clone(), e.slot)).collect();
        s.sort();
        s.dedup();
        s
    };
    let first = slots(&tick(&mut t, 15_000));
    assert_eq!(first.len(), 2, "{first:?}");
    assert_ne!(first[0].1, first[1].1, "two live flows, two slots");
    observe_all(&mut t, &[udp(16_000, 5000), udp(16_000, 5001)]);
    assert_eq!(slots(&tick(&mut t, 30_000)), first, "each keeps its own");
    // Both expire; a later flow takes one of their slots.
    assert_eq!(slots(&tick(&mut t, 60_000)), first);
    observe_all(&mut t, &[udp(61_000, 6000)]);
    let later = slots(&drain(&mut t));
    assert_eq!(later.len(), 1);
    assert!(first.iter().any(|(_, s)| *s == later[0].1), "{later:?}");
}

#[test]
fn idle_flows_expire_by_protocol() {
    let mut t = table();
    observe_all(
        &mut t,
        &[
            pkt(0, 17, "10.0.0.2", 5000, "10.0.0.1", 9999, 100),
            tcp(
                pkt(0, 6, "10.0.0.2", 5001, "10.0.0.1", 80, 60),
                1,
                TcpInfo::ACK,
                0,
            ),
        ],
    );
    tick(&mut t, 15_000);
    assert!(tick(&mut t, 29_999).is_empty(), "UDP lasts 30 s");
    let ev = tick(&mut t, 30_000);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event, PURGE_EXPIRED);
    assert_eq!(t.len(), 1, "TCP lasts 300 s");
    let ev = tick(&mut t, 300_000);
    assert_eq!(ev[0].event, PURGE_EXPIRED);
    assert!(t.is_empty());
}

#[test]
fn closed_tcp_flows_purge_after_ttl_closed() {
    let mut t = table();
    let (c, s) = (("10.0.0.2", 40000), ("10.0.0.1", 80));
    observe_all(
        &mut t,
        &[
            tcp(
                pkt(0, 6, c.0, c.1, s.0, s.1, 60),
                1,
                TcpInfo::FIN | TcpInfo::ACK,
                0,
            ),
            tcp(
                pkt(1, 6, s.0, s.1, c.0, c.1, 60),
                9,
                TcpInfo::FIN | TcpInfo::ACK,
                0,
            ),
        ],
    );
    assert_eq!(t.closing(), 1);
    let ev = tick(&mut t, 9_000);
    assert_eq!(
        ev.last().unwrap().event,
        FlowEvent::Stats,
        "not yet 10 s of quiet"
    );
    let ev = tick(&mut t, 10_001);
    assert_eq!(
        ev[0].event,
        FlowEvent::Purged {
            reason: PurgeReason::Closed,
            evicted: false
        }
    );
}

#[test]
fn a_reset_closes_the_flow_and_is_counted() {
    let mut t = table();
    observe_all(
        &mut t,
        &[tcp(
            pkt(0, 6, "10.0.0.2", 40000, "10.0.0.1", 80, 60),
            5,
            TcpInfo::RST,
            0,
        )],
    );
    let ev = drain(&mut t);
    assert_eq!(
        ev[1].event,
        FlowEvent::Purged {
            reason: PurgeReason::Closed,
            evicted: false
        }
    );
    assert_eq!(ev[1].tcp.unwrap().resets, 1);
    assert_eq!(t.take_counters().tcp_resets, 1);
}

const PURGE_CLOSED: FlowEvent = FlowEvent::Purged {
    reason: PurgeReason::Closed,
    evicted: false,
};

#[test]
fn a_lone_reset_counted_in_an_earlier_interval_is_in_the_purge_total() {
    // The RST's interval ends before the flow has been quiet for
    // ttl_closed: its `flow_stats` counts it, the purge's interval is
    // empty, and the purge's totals still hold it.
    let mut t = table();
    let (c, s) = (("10.0.0.2", 40000), ("10.0.0.1", 80));
    observe_all(
        &mut t,
        &[tcp(
            pkt(14_900, 6, c.0, c.1, s.0, s.1, 60),
            5,
            TcpInfo::RST,
            0,
        )],
    );
    let ev = tick(&mut t, 15_000);
    assert_eq!(ev.last().unwrap().event, FlowEvent::Stats);
    assert_eq!(ev.last().unwrap().tcp.unwrap().resets, 1);
    let ev = tick(&mut t, 30_000);
    assert_eq!(ev[0].event, PURGE_CLOSED);
    assert_eq!(ev[0].tcp.unwrap().resets, 0);
    assert_eq!(ev[0].tcp_total.unwrap().resets, 1);
}

#[test]
fn a_reset_after_the_purge_opens_a_flow_of_its_own() {
    // FINs both ways close the flow; it is purged after 10 s of quiet. A
    // RST 30 s later belongs to no flow left: it opens a new one, of that
    // one packet, closed at once, whose records count it.
    let mut t = table();
    let (c, s) = (("10.0.0.2", 40000), ("10.0.0.1", 80));
    let (fin, ack) = (TcpInfo::FIN | TcpInfo::ACK, TcpInfo::ACK);
    observe_all(
        &mut t,
        &[
            tcp(pkt(0, 6, c.0, c.1, s.0, s.1, 60), 1, fin, 0),
            tcp(pkt(1, 6, s.0, s.1, c.0, c.1, 60), 9, fin, 0),
            tcp(pkt(2, 6, c.0, c.1, s.0, s.1, 60), 2, ack, 0),
        ],
    );
    let ev = tick(&mut t, 15_000);
    let purge = ev.iter().find(|e| e.event == PURGE_CLOSED).unwrap();
    assert_eq!(purge.tcp_total.unwrap(), TcpCounters::default());
    assert!(t.is_empty());
    observe_all(
        &mut t,
        &[tcp(
            pkt(30_000, 6, s.0, s.1, c.0, c.1, 60),
            10,
            TcpInfo::RST,
            0,
        )],
    );
    assert_eq!(t.closing(), 1);
    let ev = drain(&mut t);
    let purge = ev.iter().find(|e| e.event == PURGE_CLOSED).unwrap();
    assert_eq!(purge.total_packets, 1);
    assert_eq!(purge.tcp_total.unwrap().resets, 1);
}

#[test]
fn the_least_recently_seen_flow_is_evicted() {
    let cfg = FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new("eth0", cfg, LocalNetworks::default(), PortGuess);
    let ev = observe_all(
        &mut t,
        &[
            pkt(0, 17, "10.0.0.1", 2000, "10.0.0.9", 9000, 100),
            pkt(1, 17, "10.0.0.2", 2000, "10.0.0.9", 9000, 100),
            pkt(2, 17, "10.0.0.1", 2000, "10.0.0.9", 9000, 100), // touches flow 1
            pkt(3, 17, "10.0.0.3", 2000, "10.0.0.9", 9000, 100), // evicts flow 2
        ],
    );
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        ev[1].event,
        FlowEvent::Purged {
            reason: PurgeReason::Expired,
            evicted: true
        }
    );
    assert_eq!(ev[1].local, "10.0.0.2:2000");
    assert_eq!(t.len(), 2);
    assert_eq!(t.take_counters().evicted, 1);
}

#[test]
fn tables_sharing_a_limit_evict_their_own_flows() {
    let limit = FlowLimit::new(2);
    let shared = || table().with_limit(limit.clone());
    let (mut a, mut b) = (shared(), shared());
    let udp = |ms, host| pkt(ms, 17, host, 2000, "10.0.0.9", 9000, 100);
    let evicted = |ev: Vec<Ev>| -> Vec<String> {
        ev.into_iter()
            .filter(|e| matches!(e.event, FlowEvent::Purged { evicted: true, .. }))
            .map(|e| e.local)
            .collect()
    };
    let ev = observe_all(&mut a, &[udp(0, "10.0.0.1"), udp(1, "10.0.0.2")]);
    assert!(evicted(ev).is_empty());
    // The limit is reached, but b holds no flow to evict: it takes one
    // beyond the limit rather than refuse it, and a keeps its flows.
    assert!(evicted(observe_all(&mut b, &[udp(2, "10.0.0.3")])).is_empty());
    assert_eq!(a.len(), 2);
    // Now b has one, and evicts it for its next.
    let ev = observe_all(&mut b, &[udp(3, "10.0.0.4")]);
    assert_eq!(evicted(ev), ["10.0.0.3:2000"]);
    // a, for a new flow, evicts its own least recently seen ones until
    // the tables are back within the limit.
    let ev = observe_all(&mut a, &[udp(4, "10.0.0.5")]);
    assert_eq!(evicted(ev), ["10.0.0.1:2000", "10.0.0.2:2000"]);
    assert_eq!((a.len(), b.len()), (1, 1));
    // Flows that leave give their room back: purged ones, and those of a
    // table dropped with flows in it.
    drain(&mut a);
    drop(b);
    let mut c = shared();
    let ev = observe_all(&mut c, &[udp(5, "10.0.0.6"), udp(6, "10.0.0.7")]);
    assert!(evicted(ev).is_empty());
    assert_eq!(c.len(), 2);
}

#[test]
fn detection_gives_up_after_max_packets_and_changes_the_digest() {
    let cfg = FlowConfig {
        max_detection_packets: 3,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new("eth0", cfg, LocalNetworks::default(), PortGuess);
    let p = pkt(0, 6, "10.0.0.2", 40000, "10.0.0.1", 443, 60);
    let ev = observe_all(&mut t, &[p, p]);
    assert!(ev.is_empty());
    let ev = observe_all(&mut t, &[p]);
    assert_eq!(ev[0].event, FlowEvent::Detected);
    assert_eq!(
        (ev[0].protocol, ev[0].guessed, ev[0].digest_prev),
        ("TLS", true, 1)
    );
}

#[test]
fn unknown_protocols_keep_their_first_digest() {
    let mut t = table();
    observe_all(
        &mut t,
        &[pkt(0, 17, "10.0.0.2", 40000, "10.0.0.1", 40001, 60)],
    );
    let ev = drain(&mut t);
    assert_eq!(
        (ev[0].protocol, ev[0].guessed, ev[0].digest_prev),
        ("Unknown", false, 0)
    );
}

#[test]
fn a_digest_detection_changed_while_it_runs_is_held_aside_until_it_ends() {
    let mut t = table();
    let syn = |ms| {
        let p = pkt(ms, 6, "10.0.0.2", 40000, "192.0.2.1", 443, 60);
        tcp(p, 1, TcpInfo::SYN, 0)
    };
    let unknown = |ms| pkt(ms, 17, "10.0.0.2", 40000, "10.0.0.1", 40001, 60);
    observe_all(&mut t, &[syn(0), unknown(0)]);
    // Reported while detection runs (SYNs carry no payload; ports say
    // TLS): the digest changed is held aside, the unknown flow's is the
    // first one.
    let first = tick(&mut t, 1_000);
    assert_eq!(first.len(), 4, "{first:?}");
    let tls = &first[0];
    assert_eq!((tls.protocol, tls.digest_prev), ("TLS", 1));
    assert_eq!(first[2].protocol, "Unknown");
    let key = |p: &PacketMeta<'_>| FlowKey::of(p).0;
    assert_eq!(first[2].digest, digest::base("eth0", &key(&unknown(0))));
    assert_ne!(tls.digest, digest::base("eth0", &key(&syn(0))));
    assert_eq!(t.changed_digests.len(), 1);
    // Still running: the next records carry the same digests.
    let second = run(&mut t, |t, emit| {
        t.observe(&syn(1_500), &mut |e, v| emit(e, v));
        t.observe(&unknown(1_500), &mut |e, v| emit(e, v));
        t.report(Timestamp::from_millis(2_000), &mut |e, v| emit(e, v));
    });
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(
        (second[0].digest, second[1].digest),
        (tls.digest, first[2].digest)
    );
    assert_eq!(t.changed_digests.len(), 1);
    // A quiet interval ends detection: the digest moves into the slot.
    assert!(tick(&mut t, 3_000).is_empty());
    assert!(t.changed_digests.is_empty());
    let last = drain(&mut t);
    assert_eq!(last.len(), 2, "{last:?}");
    assert_eq!(
        (last[0].digest, last[1].digest),
        (tls.digest, first[2].digest)
    );
    assert_eq!((last[0].digest_prev, last[1].digest_prev), (1, 0));
}

fn fragment(mut p: PacketMeta<'static>, id: u32, offset: u16, more: bool) -> PacketMeta<'static> {
    p.fragment = Some(Fragment { id, offset, more });
    if offset != 0 {
        (p.src_port, p.dst_port) = (0, 0);
    }
    p
}

#[test]
fn later_fragments_join_their_first_fragment_in_any_order() {
    let mut t = table();
    let base = pkt(0, 17, "10.0.0.2", 5000, "10.0.0.1", 53, 1514);
    let seen: Vec<Observed> = [
        fragment(base, 7, 185, false), // arrives first: held
        fragment(base, 7, 0, true),    // first fragment: credits the held one
        fragment(base, 7, 370, false), // after: joins directly
    ]
    .iter()
    .map(|p| t.observe(p, &mut |_, _| {}))
    .collect();
    assert_eq!(seen, [Observed::Held, Observed::Flow, Observed::Flow]);
    let ev = drain(&mut t);
    assert_eq!((ev[1].local_packets, ev[1].local_bytes), (3, 3 * 1514));
    assert_eq!(t.take_counters().discarded, 0);
}

#[test]
fn fragments_without_a_first_fragment_are_reported_lost() {
    let mut t = table();
    let base = pkt(0, 17, "10.0.0.2", 0, "10.0.0.1", 0, 600);
    assert_eq!(
        t.observe(&fragment(base, 9, 100, false), &mut |_, _| {}),
        Observed::Held
    );
    assert!(tick(&mut t, 15_000).is_empty());
    tick(&mut t, 31_000);
    let c = t.take_counters();
    assert_eq!((c.discarded, c.discarded_bytes), (1, 600));
}

#[test]
fn tcp_counters_are_per_interval() {
    let mut t = table();
    let (c, s) = (("10.0.0.2", 40000), ("10.0.0.1", 80));
    observe_all(
        &mut t,
        &[
            tcp(pkt(0, 6, c.0, c.1, s.0, s.1, 100), 1, TcpInfo::ACK, 100),
            tcp(pkt(1, 6, c.0, c.1, s.0, s.1, 100), 1, TcpInfo::ACK, 100),
        ],
    );
    let ev = tick(&mut t, 15_000);
    assert_eq!(ev[1].tcp.unwrap().retrans, 1);
    observe_all(
        &mut t,
        &[tcp(
            pkt(15_001, 6, c.0, c.1, s.0, s.1, 100),
            101,
            TcpInfo::ACK,
            100,
        )],
    );
    let ev = tick(&mut t, 30_000);
    assert_eq!(ev[0].tcp.unwrap(), TcpCounters::default());
    // The purge's interval is quiet; its totals hold the whole flow.
    let ev = drain(&mut t);
    let purge = ev.iter().find(|e| e.event == PURGE_EXPIRED).unwrap();
    assert_eq!(purge.tcp.unwrap(), TcpCounters::default());
    assert_eq!(purge.tcp_total.unwrap().retrans, 1);
}

#[test]
fn tcp_flags_are_per_side_and_per_interval() {
    let mut t = table();
    let (c, s) = (("10.0.0.2", 40000), ("192.0.2.1", 80));
    let (syn, ack, fin, rst) = (TcpInfo::SYN, TcpInfo::ACK, TcpInfo::FIN, TcpInfo::RST);
    observe_all(
        &mut t,
        &[
            tcp(pkt(0, 6, c.0, c.1, s.0, s.1, 60), 1, syn, 0),
            tcp(pkt(1, 6, s.0, s.1, c.0, c.1, 60), 9, syn | ack, 0),
            tcp(pkt(2, 6, c.0, c.1, s.0, s.1, 60), 2, ack, 0),
        ],
    );
    let ev = tick(&mut t, 15_000);
    let stats = ev.iter().find(|e| e.event == FlowEvent::Stats).unwrap();
    // The client (10.0.0.2, a private address) is the local side.
    assert_eq!(stats.local, "10.0.0.2:40000");
    assert_eq!(stats.tcp_flags, (syn | ack, syn | ack));
    observe_all(
        &mut t,
        &[
            tcp(pkt(15_001, 6, c.0, c.1, s.0, s.1, 60), 2, fin | ack, 0),
            tcp(pkt(15_002, 6, s.0, s.1, c.0, c.1, 60), 10, rst, 0),
        ],
    );
    let ev = tick(&mut t, 30_000);
    assert_eq!(ev[0].tcp_flags, (fin | ack, rst));
}

#[test]
fn vlans_separate_flows() {
    let mut t = table();
    let a = pkt(0, 17, "10.0.0.2", 5000, "10.0.0.1", 53, 80);
    let mut b = a;
    b.vlan_id = 10;
    observe_all(&mut t, &[a, b]);
    assert_eq!(t.len(), 2);
}

#[test]
fn an_ipv4_and_an_ipv6_flow_with_the_same_address_bytes_are_two_flows() {
    let mut t = table();
    // a00:1:: and a00:2:: begin with the bytes of 10.0.0.1 and 10.0.0.2.
    let pkts = [
        pkt(0, 17, "10.0.0.2", 5000, "10.0.0.1", 53, 80),
        pkt(1, 17, "a00:2::", 5000, "a00:1::", 53, 90),
        pkt(2, 17, "10.0.0.1", 53, "10.0.0.2", 5000, 100),
        pkt(3, 17, "a00:1::", 53, "a00:2::", 5000, 110),
    ];
    observe_all(&mut t, &pkts);
    assert_eq!(t.len(), 2);
    let ev = drain(&mut t);
    let purged: Vec<_> = ev
        .iter()
        .filter(|e| e.event == PURGE_EXPIRED)
        .map(|e| {
            (
                e.local.as_str(),
                e.other.as_str(),
                e.local_bytes,
                e.other_bytes,
            )
        })
        .collect();
    assert_eq!(
        purged,
        [
            ("10.0.0.2:5000", "10.0.0.1:53", 80, 100),
            ("a00:2:::5000", "a00:1:::53", 90, 110),
        ]
    );
}

#[test]
fn flows_share_mac_pairs_and_give_them_back_when_they_leave() {
    let mut t = table();
    let (host, gateway, other) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]);
    let query = |port| pkt(0, 17, "10.0.0.2", port, "10.0.0.1", 53, 80);
    let answer = |port, mac| {
        let mut p = pkt(1, 17, "10.0.0.1", 53, "10.0.0.2", port, 80);
        p.src_mac = mac;
        p
    };
    let mut pkts: Vec<_> = (0..100).map(|port| query(1000 + port)).collect();
    // Half of them answered from the gateway; one also, later, from another MAC.
    pkts.extend((0..50).map(|port| answer(1000 + port, gateway)));
    pkts.push(answer(1000, other));
    // A packet without MACs sets none.
    let mut no_mac = answer(1099, [0; 6]);
    no_mac.ts = Timestamp::from_millis(2);
    pkts.push(no_mac);
    observe_all(&mut t, &pkts);
    assert_eq!(t.len(), 100);
    assert_eq!(t.macs.len(), 2, "[gateway, host] and [none, host]");
    let ev = drain(&mut t);
    assert_eq!(t.macs.len(), 0);
    let macs = |port: u16| {
        let local = format!("10.0.0.2:{port}");
        ev.iter()
            .find(|e| e.event == PURGE_EXPIRED && e.local == local)
            .unwrap()
            .macs
    };
    assert_eq!(macs(1000), (host, gateway), "the first MAC a side sent");
    assert_eq!(macs(1049), (host, gateway));
    assert_eq!(macs(1050), (host, [0; 6]));
    assert_eq!(macs(1099), (host, [0; 6]));
    // Flows after the store emptied.
    observe_all(&mut t, &[query(2000), answer(2000, other)]);
    assert_eq!(t.macs.len(), 1);
    assert_eq!(drain(&mut t)[1].macs, (host, other));
    assert_eq!(t.macs.len(), 0);
}

#[test]
fn ipv6_flows_give_their_addresses_back_when_they_leave() {
    let cfg = FlowConfig {
        max_flows: 500,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new("eth0", cfg, LocalNetworks::default(), PortGuess);
    let v6 = |ms, port| pkt(ms, 17, "2001:db8::1", port, "2001:db8::2", 53, 80);
    for round in 0..3 {
        let ms = round * 100_000;
        // 1,000 flows: the first 500 evicted by the last 500.
        let pkts: Vec<_> = (0..1_000).map(|port| v6(ms, 1_000 + port)).collect();
        observe_all(&mut t, &pkts);
        assert_eq!((t.len(), t.v6.len()), (500, 500));
        // A second packet finds each flow by its stored addresses.
        observe_all(&mut t, &pkts[500..]);
        assert_eq!((t.len(), t.v6.len()), (500, 500));
        if round == 2 {
            drain(&mut t);
        } else {
            let ev = tick(&mut t, ms + 60_000);
            let purged: Vec<_> = ev.iter().filter(|e| e.event == PURGE_EXPIRED).collect();
            assert_eq!(purged.len(), 500);
            assert_eq!(purged[0].local, "2001:db8::1:1500");
            assert_eq!(purged[0].other, "2001:db8::2:53");
        }
        assert_eq!((t.len(), t.v6.len()), (0, 0));
    }
}

#[test]
fn memory_per_flow_stays_in_budget() {
    // 57,345 flows is the index's worst load (just past a doubling); 100,000
    // a typical one.
    for n in [57_345u32, 100_000] {
        let mut t = table();
        for i in 0..n {
            let p = pkt(
                0,
                17,
                "10.0.0.2",
                (i % 60000) as u16,
                "10.0.0.1",
                1 + (i / 60000) as u16,
                80,
            );
            t.observe(&p, &mut |_, _| {});
        }
        assert_eq!(t.len(), n as usize);
        let per_flow = t.memory_bytes() / n as usize;
        println!("{n} flows: {per_flow} bytes per flow");
        assert!(per_flow <= 240, "{n} flows: {per_flow} bytes per flow");
    }
}

#[test]
fn interval_ends_follow_record_order_across_classes_and_ties() {
    let mut t = table();
    // At 1 s: a TCP flow that closes (RST), and two UDP flows; at 2 s, two
    // more UDP flows, the larger address first. Arrival order is not key
    // order among the flows seen at the same instant.
    let rst = tcp(
        pkt(1_000, 6, "10.0.0.5", 4000, "10.0.0.9", 80, 60),
        1,
        TcpInfo::RST,
        0,
    );
    observe_all(
        &mut t,
        &[
            pkt(1_000, 17, "10.0.0.3", 2000, "10.0.0.9", 9000, 100),
            rst,
            pkt(1_000, 17, "10.0.0.1", 2000, "10.0.0.9", 9000, 100),
            pkt(2_000, 17, "10.0.0.4", 2000, "10.0.0.9", 9000, 100),
            pkt(2_000, 17, "10.0.0.2", 2000, "10.0.0.9", 9000, 100),
        ],
    );
    let locals = |ev: &[Ev]| -> Vec<String> {
        ev.iter()
            .filter(|e| e.event != FlowEvent::Detected)
            .map(|e| e.local.clone())
            .collect()
    };
    // Stats: newest first; the same instant in key order (TCP before UDP:
    // the protocol number comes first in the key).
    let ev = tick(&mut t, 5_000);
    assert_eq!(
        locals(&ev),
        [
            "10.0.0.2:2000",
            "10.0.0.4:2000",
            "10.0.0.5:4000",
            "10.0.0.1:2000",
            "10.0.0.3:2000"
        ]
    );
    // Each flow's `flow` record comes right before its `flow_stats`.
    assert!(ev.chunks(2).all(|p| p[0].event == FlowEvent::Detected
        && p[1].event == FlowEvent::Stats
        && p[0].local == p[1].local));
    // Purges, from the closed TCP list and the UDP list merged: oldest
    // first, the same instant in key order.
    let ev = tick(&mut t, 32_000);
    assert_eq!(
        locals(&ev),
        [
            "10.0.0.5:4000",
            "10.0.0.1:2000",
            "10.0.0.3:2000",
            "10.0.0.2:2000",
            "10.0.0.4:2000"
        ]
    );
    assert_eq!(
        ev[0].event,
        FlowEvent::Purged {
            reason: PurgeReason::Closed,
            evicted: false
        }
    );
}

#[test]
fn drain_purges_the_least_recently_seen_first() {
    let mut t = table();
    observe_all(
        &mut t,
        &[
            pkt(1, 17, "10.0.0.3", 2000, "10.0.0.9", 9000, 100),
            pkt(5, 6, "10.0.0.1", 2000, "10.0.0.9", 80, 60),
            pkt(7, 17, "10.0.0.2", 2000, "10.0.0.9", 9000, 100),
            pkt(7, 17, "10.0.0.1", 2000, "10.0.0.9", 9000, 100),
        ],
    );
    let purged: Vec<String> = drain(&mut t)
        .into_iter()
        .filter(|e| e.event != FlowEvent::Detected)
        .map(|e| e.local)
        .collect();
    assert_eq!(
        purged,
        [
            "10.0.0.3:2000",
            "10.0.0.1:2000",
            "10.0.0.1:2000",
            "10.0.0.2:2000"
        ]
    );
    assert!(t.is_empty());
}

#[test]
fn detection_gives_up_on_a_flow_quiet_for_a_whole_interval() {
    let mut t = table();
    let with_payload = |ms| {
        let mut p = pkt(ms, 17, "10.0.0.1", 40_000, "10.0.0.2", 40_001, 100);
        p.payload = b"junk";
        p.payload_len = 4;
        p
    };
    observe_all(&mut t, &[with_payload(1_000)]);
    let ev = tick(&mut t, 15_000);
    assert_eq!(ev[0].detection_packets, 1);
    // Quiet from 15 s to 30 s: detection ends there; the packet after it
    // is counted in the flow but not examined.
    assert!(tick(&mut t, 30_000).is_empty());
    observe_all(&mut t, &[with_payload(31_000)]);
    let ev = tick(&mut t, 45_000);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(
        (ev[0].event, ev[0].detection_packets),
        (FlowEvent::Stats, 1)
    );

    // A flow that goes on sending keeps its detection.
    let mut t = table();
    for (ms, until) in [(1_000, 15_000), (16_000, 30_000), (31_000, 45_000)] {
        observe_all(&mut t, &[with_payload(ms)]);
        tick(&mut t, until);
    }
    observe_all(&mut t, &[with_payload(46_000)]);
    let ev = tick(&mut t, 60_000);
    assert_eq!(ev[0].detection_packets, 4);
}
