//! flowstat's benches: criterion benches per room (`benches/`), and the
//! mixed capture the replay harness (`replay-harness.sh`) measures with.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use flowstat_capture::FileSource;
use flowstat_core::{
    AddrClass, Batch, CaptureSource, Detection, Endpoint, FlowView, Frame, LinkType, Metadata,
    OtherType, Protocol, SideStats, TcpCounters, Timestamp,
};
use flowstat_tests::corpus_files;

/// One frame, owned.
#[derive(Clone, Debug)]
pub struct OwnedFrame {
    /// Capture time.
    pub ts: Timestamp,
    /// Wire length.
    pub wire_len: u32,
    /// Link type.
    pub link: LinkType,
    /// Captured bytes.
    pub data: Vec<u8>,
}

impl OwnedFrame {
    /// The frame, lent.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            wire_len: self.wire_len,
            link: self.link,
            data: &self.data,
        }
    }
}

/// Every frame of `path`, owned (reading stops at the first error).
pub fn read_frames(path: &Path) -> Vec<OwnedFrame> {
    let mut frames = Vec::new();
    let Ok(mut source) = FileSource::open(path) else {
        return frames;
    };
    while let Ok(Batch::Frames(_)) = source.poll_batch(4096, &mut |f| {
        frames.push(OwnedFrame {
            ts: f.ts,
            wire_len: f.wire_len,
            link: f.link,
            data: f.data.to_vec(),
        })
    }) {}
    frames
}

/// The corpus's Ethernet frames as one mixed capture: file after file, each
/// file's packets keeping their order and spacing (gaps over a second are
/// cut to a second), a second between files. Times start at 0; returns the
/// frames and the round's length.
pub fn mixed_round() -> (Vec<OwnedFrame>, Duration) {
    let mut out = Vec::new();
    let mut cursor = 0u64;
    for path in corpus_files() {
        let frames = read_frames(&path);
        if frames.iter().any(|f| f.link != LinkType::ETHERNET) {
            continue;
        }
        let mut prev: Option<Timestamp> = None;
        for mut f in frames {
            let gap = prev.map_or(0, |p| {
                f.ts.as_nanos()
                    .saturating_sub(p.as_nanos())
                    .min(1_000_000_000)
            });
            prev = Some(f.ts);
            cursor += gap;
            f.ts = Timestamp::from_nanos(cursor);
            out.push(f);
        }
        cursor += 1_000_000_000;
    }
    (out, Duration::from_nanos(cursor))
}

/// A typical TCP flow, as the plugins see it: for the record benches.
pub fn sample_flow() -> FlowView<'static> {
    FlowView {
        ip_version: 4,
        ip_protocol: 6,
        vlan_id: 0,
        ip_dscp: 0,
        local: Endpoint {
            ip: std::net::Ipv4Addr::new(192, 168, 1, 20).into(),
            port: 51234,
            mac: [2, 0, 0, 0, 0, 1],
            class: AddrClass::Private,
        },
        other: Endpoint {
            ip: std::net::Ipv4Addr::new(142, 250, 74, 110).into(),
            port: 443,
            mac: [2, 0, 0, 0, 0, 2],
            class: AddrClass::Public,
        },
        other_type: OtherType::Remote,
        local_origin: true,
        first_seen: Timestamp::from_secs(1_700_000_000),
        last_seen: Timestamp::from_secs(1_700_000_014),
        digest: [0xab; 20],
        digest_prev: &[[1; 20]],
        detection: Detection {
            protocol: Protocol(91),
            application: 0,
            application_name: "Unknown",
            guessed: true,
            packets: 32,
            updated: false,
            dns_cache_hit: false,
            meta: Metadata::none(),
        },
        local_stats: SideStats {
            bytes: 52_311,
            packets: 140,
            rate: 3_487,
            total_bytes: 1_052_311,
            total_packets: 4_140,
        },
        other_stats: SideStats {
            bytes: 1_311_000,
            packets: 901,
            rate: 87_400,
            total_bytes: 91_311_000,
            total_packets: 60_901,
        },
        tcp: Some(TcpCounters {
            resets: 0,
            retrans: 3,
            seq_errors: 1,
        }),
    }
}
