//! flowstat's benches: criterion benches per room (`benches/`), and the
//! mixed capture the replay harness (`replay-harness.sh`) measures with.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use flowstat_capture::FileSource;
use flowstat_core::{
    AddrClass, Batch, CaptureSource, Category, Detection, DigestPrev, Endpoint, FlowKey, FlowView,
    Frame, LinkType, Metadata, OtherType, Protocol, SideStats, TcpCounters, Timestamp,
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

/// Writes `rounds` of the [mixed round](mixed_round) to `out` as classic
/// pcap (microseconds, which every peer tool reads), 400 s apart so that
/// one round's flows have expired before the next. `max_frame` keeps only
/// frames captured whole and no longer than that; `vlan_per_round` tags
/// every frame of round N with an outer 802.1Q VLAN id N % 4094 + 1, so
/// that each round's flows are new flows to any tool that keys flows by
/// VLAN. Returns the packets and wire bytes written.
pub fn write_capture(
    out: &Path,
    rounds: u64,
    max_frame: Option<usize>,
    vlan_per_round: bool,
) -> std::io::Result<(u64, u64)> {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
        w.write_all(&v.to_le_bytes())?;
    }
    // 2020-01-01, on an interval boundary.
    let mut start = Timestamp::from_secs(1_577_836_800);
    let (mut frames, span) = mixed_round();
    if let Some(max) = max_frame {
        frames.retain(|f| f.data.len() == f.wire_len as usize && f.data.len() <= max);
    }
    let tag_len = if vlan_per_round { 4 } else { 0 };
    let (mut packets, mut bytes) = (0u64, 0u64);
    for round in 0..rounds {
        let tag = [[0x81, 0x00], ((round % 4094 + 1) as u16).to_be_bytes()].concat();
        for f in &frames {
            let us = (start.as_nanos() + f.ts.as_nanos()) / 1_000;
            w.write_all(&((us / 1_000_000) as u32).to_le_bytes())?;
            w.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
            w.write_all(&(f.data.len() as u32 + tag_len).to_le_bytes())?;
            w.write_all(&(f.wire_len + tag_len).to_le_bytes())?;
            if vlan_per_round {
                // After the two MAC addresses, before the EtherType.
                let at = f.data.len().min(12);
                w.write_all(&f.data[..at])?;
                w.write_all(&tag)?;
                w.write_all(&f.data[at..])?;
            } else {
                w.write_all(&f.data)?;
            }
            bytes += u64::from(f.wire_len + tag_len);
        }
        packets += frames.len() as u64;
        start = start.saturating_add(span + Duration::from_secs(400));
    }
    w.flush()?;
    Ok((packets, bytes))
}

/// A typical TCP flow, as the plugins see it: for the record benches.
pub fn sample_flow() -> FlowView<'static> {
    let v4 = |a: [u8; 4]| {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    };
    FlowView {
        key: FlowKey {
            ip_version: 4,
            protocol: 6,
            vlan_id: 0,
            lower_port: 443,
            upper_port: 51234,
            lower: v4([142, 250, 74, 110]),
            upper: v4([192, 168, 1, 20]),
        },
        slot: 0,
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
        digest_prev: Some(DigestPrev {
            first: &|| [1; 20],
            then: None,
        }),
        detection: Detection {
            protocol: Protocol(91),
            application: 0,
            application_name: "Unknown",
            category: Category::UNSPECIFIED,
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
            tcp_flags: 0x18,
        },
        other_stats: SideStats {
            bytes: 1_311_000,
            packets: 901,
            rate: 87_400,
            total_bytes: 91_311_000,
            total_packets: 60_901,
            tcp_flags: 0x18,
        },
        tcp: Some(TcpCounters {
            resets: 0,
            retrans: 3,
            seq_errors: 1,
        }),
        tcp_total: Some(TcpCounters {
            resets: 0,
            retrans: 40,
            seq_errors: 12,
        }),
    }
}

/// `flow_stats` records a sink bench publishes per round.
pub const SINK_BATCH: u64 = 20_000;

/// Encodes [`SINK_BATCH`] `flow_stats` records of [`sample_flow`] with the
/// core plugin and publishes them to `runtime`, 100 at a time (a sink
/// bench's round).
pub fn publish_flow_stats(
    plugin: &mut flowstat_plugins::CorePlugin,
    out: &mut flowstat_core::Records,
    runtime: &flowstat_sinks::SinkRuntime,
) {
    use flowstat_core::Plugin;
    let view = sample_flow();
    let source = flowstat_core::SourceInfo {
        interface: "eth0",
        internal: true,
    };
    for _ in 0..SINK_BATCH / 100 {
        for _ in 0..100 {
            plugin.on_flow(&source, flowstat_core::FlowEvent::Stats, &view, out);
        }
        runtime.publish(out.take());
    }
}

/// User + system CPU seconds of this process's thread called `name`
/// (`flowstat-sink0`, the first sink's): what a bench charges a thread
/// with, at the kernel's 100 ticks per second.
pub fn thread_cpu_secs(name: &str) -> f64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).expect("task stat");
        // Fields after the parenthesised name: utime and stime are the
        // 12th and 13th, in clock ticks (100 per second on Linux).
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let f: Vec<u64> = rest
            .split(' ')
            .skip(11)
            .take(2)
            .map(|v| v.parse().expect("tick count"))
            .collect();
        return (f[0] + f[1]) as f64 / 100.0;
    }
    panic!("no {name} thread")
}
