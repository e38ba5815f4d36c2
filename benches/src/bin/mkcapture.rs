//! Writes the replay harness's mixed capture:
//! `mkcapture OUT ROUNDS [--max-frame BYTES] [--vlan-per-round]`.
//!
//! Each round is every Ethernet capture of the test corpus, file after file
//! ([`flowstat_benches::mixed_round`]); rounds follow each other in time,
//! 400 s apart so that one round's flows have expired before the next.
//! Output is classic pcap (microseconds), which every peer tool reads.
//! `--max-frame` keeps only frames captured whole and no longer than BYTES
//! (1514 for a capture to send over a 1500-byte MTU link).
//! `--vlan-per-round` tags every frame of round N with an outer 802.1Q
//! VLAN id N % 4094 + 1, so that each round's flows are new flows to any
//! tool that keys flows by VLAN, as flowstatd and ndpiReader do.

use std::io::{BufWriter, Write};
use std::time::Duration;

use flowstat_benches::mixed_round;
use flowstat_core::Timestamp;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: mkcapture OUT.pcap ROUNDS [--max-frame BYTES] [--vlan-per-round]");
        std::process::exit(2);
    };
    let (Some(out), Some(rounds)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        usage()
    };
    let (mut max_frame, mut vlan_per_round) = (None, false);
    let mut rest = args.iter().skip(3);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--max-frame" => {
                max_frame = Some(
                    rest.next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .unwrap_or_else(|| usage()),
                );
            }
            "--vlan-per-round" => vlan_per_round = true,
            _ => usage(),
        }
    }
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
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
    eprintln!("{out}: {packets} packets, {bytes} wire bytes, {rounds} rounds");
    Ok(())
}
