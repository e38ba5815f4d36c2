//! Bytes a flow holds: its DPI state while detection runs, inline in the
//! flow table's slot and on the heap, and the whole flow in a flow table
//! with DPI (slot, index, detection state), counted by a global allocator.
//!
//! The flow table keeps each flow's [`Classifier::State`] from its first
//! payload packet until detection ends, and a flow that never concludes
//! (a UDP flow whose server never replies) keeps it until the flow ends:
//! the agent's memory per flow is bounded only if those states are small.
//! Each heap test drives an [`Engine`] through the `Classifier` API for
//! many flows, as the table does, and counts the bytes their states hold;
//! the last runs packets through a [`FlowTable`] with DPI.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use flowstat_core::{Classifier, FlowInfo, PacketMeta, TcpInfo, Timestamp};
use flowstat_dpi::{Applications, Engine, FlowState, SharedDnsCache};
use flowstat_flow::{FlowConfig, FlowTable, LocalNetworks};

/// The system allocator, counting the bytes each thread holds (tests run
/// on threads of their own).
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // A thread being torn down has no counter left: nothing to count.
    let _ = HELD.try_with(|held| held.set(held.get() + bytes));
}

fn held() -> isize {
    HELD.with(Cell::get)
}

// SAFETY: every call is passed on to `System` unchanged; only the sizes
// are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Flows per test: enough that the states' bytes dwarf anything else.
const FLOWS: usize = 2_000;

type State = <Engine as Classifier>::State;

fn engine() -> Engine {
    let apps = Arc::new(Applications::builtin().unwrap());
    Engine::new(apps, SharedDnsCache::new(16))
}

/// Flow `i`: from 10.x.y.z:(1024 + i) to 203.0.113.n:`server_port`.
fn flow(i: usize, ip_protocol: u8, server_port: u16) -> FlowInfo {
    let mut client_ip = [0; 16];
    client_ip[..4].copy_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
    let mut server_ip = [0; 16];
    server_ip[..4].copy_from_slice(&[203, 0, 113, (i % 250 + 1) as u8]);
    FlowInfo {
        ip_version: 4,
        ip_protocol,
        client_ip,
        client_port: 1024 + (i % 60_000) as u16,
        server_ip,
        server_port,
        tcp_next: [None; 2],
    }
}

fn packet<'a>(payload: &'a [u8], tcp: Option<TcpInfo>) -> PacketMeta<'a> {
    let mut pkt = PacketMeta::new(Timestamp::ZERO, 64 + payload.len() as u32);
    pkt.payload = payload;
    pkt.tcp = tcp;
    pkt
}

/// Runs `FLOWS` flows through a warmed-up engine as the flow table does
/// (`drive` feeds flow `i`'s packets and returns its state, or `None`
/// once detection said it is done and the state was dropped), keeps
/// every state, and returns the heap bytes they hold per flow.
fn bytes_per_flow(drive: impl Fn(&mut Engine, usize) -> Option<State>) -> f64 {
    let mut e = engine();
    // Whatever the engine allocates once (tables, caches) is not per flow.
    drop(drive(&mut e, FLOWS));
    let mut states = Vec::with_capacity(FLOWS);
    let before = held();
    for i in 0..FLOWS {
        states.push(drive(&mut e, i));
    }
    let bytes = held() - before;
    drop(states);
    bytes as f64 / FLOWS as f64
}

/// Feeds `packets` (`from_client`, payload, TCP header) to flow `flow`;
/// the state, unless detection ended (and the table dropped it).
fn run(
    e: &mut Engine,
    flow: &FlowInfo,
    packets: &[(bool, &[u8], Option<TcpInfo>)],
) -> Option<State> {
    let mut st = e.start(flow);
    for &(from_client, payload, tcp) in packets {
        if e.inspect(&mut st, flow, &packet(payload, tcp), from_client) {
            return None;
        }
    }
    Some(st)
}

/// Sequence numbers of flow `i`'s client and server (after their SYNs).
fn isn(i: usize) -> (u32, u32) {
    (1_000 + i as u32 * 7_919, 500_000 + i as u32 * 104_729)
}

fn tcp_flow(i: usize, server_port: u16) -> FlowInfo {
    let (client, server) = isn(i);
    FlowInfo {
        tcp_next: [Some(client), Some(server)],
        ..flow(i, 6, server_port)
    }
}

fn segment(seq: u32, ack: u32) -> Option<TcpInfo> {
    Some(TcpInfo {
        seq,
        ack,
        flags: TcpInfo::ACK | TcpInfo::PSH,
        ..TcpInfo::default()
    })
}

#[test]
fn the_state_the_flow_table_holds_inline_is_a_word_per_64_dissectors_and_one() {
    // Every flow slot holds an `Option<State>`, a SYN's included: the
    // candidates' bit set and one word for the rest.
    assert_eq!(
        std::mem::size_of::<State>(),
        std::mem::size_of::<FlowState>()
    );
    let size = std::mem::size_of::<Option<FlowState>>();
    let words = flowstat_dpi::dissectors().len().div_ceil(64);
    assert!(size <= 8 * (words + 1), "{size} bytes for {words} words");
}

#[test]
fn a_udp_flow_of_junk_waiting_for_a_reply_holds_no_heap() {
    // genflows.py's flows: two 18-byte datagrams from the client to port
    // 40000, never answered. Some dissectors wait for the server's reply,
    // so detection does not end.
    let junk = [b'x'; 18];
    let per_flow = bytes_per_flow(|e, i| {
        let f = flow(i, 17, 40_000);
        let st = run(e, &f, &[(true, &junk, None), (true, &junk, None)]);
        assert!(st.is_some(), "detection of flow {i} ended");
        st
    });
    println!("pending UDP junk flow: {per_flow} heap bytes");
    assert_eq!(per_flow, 0.0, "{per_flow} bytes per flow");
}

#[test]
fn a_tcp_flow_in_the_middle_of_an_http_request_holds_its_bytes_and_little_more() {
    // The request line and two headers, not the blank line that ends them.
    const REQUEST: &[u8] =
        b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\n";
    let per_flow = bytes_per_flow(|e, i| {
        let f = tcp_flow(i, 80);
        let (client, server) = isn(i);
        let st = run(e, &f, &[(true, REQUEST, segment(client, server))]);
        assert!(st.is_some(), "detection of flow {i} ended");
        st
    });
    println!("pending TCP flow mid-HTTP request: {per_flow} heap bytes");
    // The boxed state (48 bytes), both directions' stream state (112),
    // the 74 bytes of the request, the metadata (136) and the host, URL
    // and user agent found (about 100).
    assert!(per_flow <= 512.0, "{per_flow} bytes per flow");
}

#[test]
fn a_flow_whose_detection_ended_holds_nothing() {
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
    let junk = [0x5a; 64];
    let per_flow = bytes_per_flow(|e, i| {
        let st = if i % 2 == 0 {
            // A whole HTTP request: done.
            let f = tcp_flow(i, 80);
            let (client, server) = isn(i);
            run(e, &f, &[(true, REQUEST, segment(client, server))])
        } else {
            // Junk both ways: every dissector says no.
            let f = flow(i, 17, 40_001);
            let packets: Vec<_> = (0..4).map(|n| (n % 2 == 0, &junk[..], None)).collect();
            run(e, &f, &packets)
        };
        assert!(st.is_none(), "detection of flow {i} goes on");
        st
    });
    assert_eq!(per_flow, 0.0);
}

/// A packet of flow `i` (the flows of [`flow`]), from the client unless
/// `reply`, at `ms` milliseconds.
fn table_packet<'a>(
    i: usize,
    ms: u64,
    ip_protocol: u8,
    server_port: u16,
    reply: bool,
    payload: &'a [u8],
    tcp: Option<TcpInfo>,
) -> PacketMeta<'a> {
    let f = flow(i, ip_protocol, server_port);
    let mut pkt = packet(payload, tcp);
    pkt.ts = Timestamp::from_millis(1_700_000_000_000 + ms);
    pkt.ip_version = 4;
    pkt.protocol = ip_protocol;
    pkt.payload_len = payload.len() as u32;
    let (client, server) = ((f.client_ip, f.client_port), (f.server_ip, f.server_port));
    let ((src_ip, src_port), (dst_ip, dst_port)) = if reply {
        (server, client)
    } else {
        (client, server)
    };
    (pkt.src_ip, pkt.src_port, pkt.dst_ip, pkt.dst_port) = (src_ip, src_port, dst_ip, dst_port);
    pkt
}

#[test]
fn a_flow_in_a_table_with_dpi_holds_at_most_240_bytes() {
    // The agent's budget: slot, index and detection state (about 232
    // bytes, 224 of them the slot: 64 for TCP state, 24 for the detection
    // state or, once detection ended, the digest), for the flows
    // the 1M-flow figures use (two junk datagrams to port 40000 with no
    // reply; one SYN) and for flows whose detection ended (a DNS query
    // and its answer). 100,000 flows: the index at a typical load.
    const N: usize = 100_000;
    let junk = [b'x'; 18];
    let query = hex("bc1f0100000100000000000003777777076578616d706c6503636f6d00001c0001");
    let mut answer = query.clone();
    answer[2] = 0x81; // a response, no answer records: detection is done
    let syn = Some(TcpInfo {
        seq: 1,
        ack: 0,
        flags: TcpInfo::SYN,
        ..TcpInfo::default()
    });
    type Feed<'a> = &'a dyn Fn(usize, &mut dyn FnMut(PacketMeta<'_>));
    let kinds: [(&str, Feed<'_>); 3] = [
        ("2-packet UDP junk", &|i, see| {
            for ms in [0, 1] {
                see(table_packet(i, ms, 17, 40_000, false, &junk, None));
            }
        }),
        ("1-packet SYN", &|i, see| {
            see(table_packet(i, 0, 6, 443, false, &[], syn));
        }),
        ("DNS query and answer", &|i, see| {
            see(table_packet(i, 0, 17, 53, false, &query, None));
            see(table_packet(i, 1, 17, 53, true, &answer, None));
        }),
    ];
    for (name, feed) in kinds {
        let mut table = FlowTable::new(
            "eth0",
            FlowConfig::default(),
            LocalNetworks::default(),
            engine(),
        );
        let before = held();
        for i in 0..N {
            feed(i, &mut |pkt| {
                table.observe(&pkt, &mut |_, _| {});
            });
        }
        assert_eq!(table.len(), N, "{name}");
        let per_flow = (held() - before) as f64 / N as f64;
        println!("{name}: {per_flow:.1} bytes a flow");
        assert!(per_flow <= 240.0, "{name}: {per_flow:.1} bytes a flow");
    }
    let slot = FlowTable::<Engine>::flow_size();
    assert!(slot <= 224, "{slot} bytes a slot");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
