//! Fuzz target for the packet-to-detection path: decode (every link type
//! and decapsulation), the flow table and the DPI engine (every dissector
//! under `agent/dpi/src/proto`).
//!
//! Input format: a byte that picks the link type (`LINK_TYPES[byte]`, the
//! link types the decoder reads, 0 being Ethernet; past them the byte is
//! the link type's number), then a sequence of frames, each prefixed by
//! its length as a 2-byte big-endian integer:
//!
//! ```text
//! [link: u8][len: u16 BE][len bytes of frame][len: u16 BE][frame] ...
//! ```
//!
//! A last frame whose length runs past the end of the input is cut to what
//! is left; a lone trailing byte is ignored. Frame `i` gets the timestamp
//! `BASE + i` milliseconds and a wire length equal to its captured length.
//! All frames go to one `FlowTable<flowstat_dpi::Engine>` with a small
//! `max_flows`, so eviction runs too; the table is drained at the end.
//! Each frame is first shown to `dns_answer`, whose answers the engine
//! learns, as the packet dispatcher does.
#![no_main]

use std::hint::black_box;
use std::sync::{Arc, LazyLock};

use flowstat_core::{FlowEvent, FlowView, Frame, LinkType, Metadata, PacketMeta, Timestamp};
use flowstat_decode::{DecodeConfig, LINK_TYPES, decode};
use flowstat_dpi::{Applications, Engine, SharedDnsCache, dns_answer};
use flowstat_flow::{FlowConfig, FlowTable, LocalNetworks};
use libfuzzer_sys::fuzz_target;

/// Time of the first frame: 2023-11-14, in nanoseconds.
const BASE_NS: u64 = 1_700_000_000_000_000_000;
/// Time between frames.
const STEP_NS: u64 = 1_000_000;
/// Flows held before the least recently seen is evicted.
const MAX_FLOWS: usize = 64;

/// The shipped application table, parsed once (it is read-only); the DNS
/// cache and flow table are fresh for every input, so runs reproduce.
static APPS: LazyLock<Arc<Applications>> = LazyLock::new(|| {
    Arc::new(Applications::builtin().expect("the builtin application table parses"))
});

/// Splits the input into length-prefixed frames.
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        data = rest;
        Some(frame)
    })
}

/// Sums the lengths of every string and field of `m`, so that no part of
/// the metadata (nor the work that filled it) can be optimised away.
fn touch_meta(m: &Metadata) -> usize {
    let mut n = m.host_server_name.len();
    if let Some(s) = &m.ssl {
        n += usize::from(s.version) + usize::from(s.cipher_suite);
        n += s.client_sni.len() + s.client_ja4.len() + s.server_cn.len();
        n += s.subject_dn.len() + s.issuer_dn.len() + s.fingerprint.len();
        n += s
            .alpn
            .iter()
            .chain(&s.alpn_server)
            .map(String::len)
            .sum::<usize>();
    }
    if let Some(h) = &m.http {
        n += h.url.len() + h.user_agent.len();
    }
    if let Some(s) = &m.ssh {
        n += s.client.len() + s.server.len();
    }
    if let Some(d) = &m.dhcp {
        n += d.fingerprint.len() + d.class_ident.len();
    }
    if let Some(s) = &m.stun {
        n += s.mapped.len() + s.other.len() + s.peer.len() + s.relayed.len();
        n += s.response.len();
    }
    if let Some(h) = &m.bt_info_hash {
        n += h.iter().map(|&b| usize::from(b)).sum::<usize>();
    }
    n += m.mdns_answer.as_ref().map_or(0, String::len);
    n += m.ssdp_user_agent.as_ref().map_or(0, String::len);
    n
}

/// The flow table's emit callback.
fn emit(event: FlowEvent, v: &FlowView<'_>) {
    let d = &v.detection;
    black_box(event);
    black_box((
        d.protocol.name().len(),
        d.application,
        d.application_name.len(),
        d.guessed,
        d.packets,
        d.updated,
        d.dns_cache_hit,
    ));
    black_box(touch_meta(d.meta));
    black_box((v.local.ip, v.other.ip, v.digest, v.digest_prev.is_some()));
}

fuzz_target!(|data: &[u8]| {
    let Some((&link, data)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES
        .get(usize::from(link))
        .copied()
        .unwrap_or(LinkType(u32::from(link)));
    let engine = Engine::new(Arc::clone(&APPS), SharedDnsCache::new(1024));
    // A clone shares the engine's DNS cache.
    let dns = engine.clone();
    let cfg = FlowConfig {
        max_flows: MAX_FLOWS,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new("fuzz0", cfg, LocalNetworks::default(), engine);
    // Every decapsulation on: tunnelled flows reach the dissectors too.
    let decode_cfg = DecodeConfig {
        ip_in_ip: true,
        gre: true,
        vxlan: true,
        ..DecodeConfig::default()
    };
    for (i, bytes) in frames(data).enumerate() {
        let ts = Timestamp::from_nanos(BASE_NS + i as u64 * STEP_NS);
        let frame = Frame {
            ts,
            wire_len: bytes.len() as u32,
            link,
            data: bytes,
        };
        let mut pkt = PacketMeta::new(ts, frame.wire_len);
        if decode(&frame, &decode_cfg, &mut pkt).is_ok() {
            if let Some(answer) = dns_answer(&pkt) {
                dns.learn(&answer);
            }
            black_box(table.observe(&pkt, &mut emit));
        }
    }
    table.drain(&mut emit);
});
