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

use flowstat_benches::write_capture;

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
    let (packets, bytes) =
        write_capture(std::path::Path::new(out), rounds, max_frame, vlan_per_round)?;
    eprintln!("{out}: {packets} packets, {bytes} wire bytes, {rounds} rounds");
    Ok(())
}
