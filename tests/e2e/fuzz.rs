//! Inputs the fuzz targets (`fuzz/`) were given that must not crash
//! flowstatd: each file of `fixtures/fuzz/TARGET/` (where `fuzz/run.sh`
//! copies what crashes, leaks or hangs a target), run through the
//! flowstatd command that reads that kind of input. An error is fine; a
//! panic, a signal or a hang is not.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use flowstat_core::LinkType;
use flowstat_decode::LINK_TYPES;

use crate::common::{ALL_TUNNEL_ARGS, PcapWriter, TempDir, fixture, run_flowstatd};

/// The inputs kept for `target`, at least one.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = fixture(&format!("fuzz/{target}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

/// Fails unless flowstatd ended by itself, with its own status, and
/// without a panic.
fn assert_no_crash(input: &Path, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code.is_some() && code != Some(101) && !stderr.contains("panicked"),
        "{}: {} {stderr}",
        input.display(),
        out.status
    );
}

#[test]
fn capture_inputs_replay_or_fail_cleanly() {
    for input in inputs("capture") {
        let out = run_flowstatd(&["replay", "-o", "/dev/null", &input.to_string_lossy()]);
        assert_no_crash(&input, &out);
    }
}

#[test]
fn config_inputs_are_checked_or_refused_cleanly() {
    for input in inputs("config") {
        let out = run_flowstatd(&["check-config", &input.to_string_lossy()]);
        assert_no_crash(&input, &out);
    }
}

/// A `detect` input as a capture: its first byte picks the link type as
/// the target does, then length-prefixed frames, 1 ms apart.
fn detect_capture(input: &[u8], path: &Path) {
    let Some((&link, mut rest)) = input.split_first() else {
        return PcapWriter::new(1).write(path);
    };
    let link = LINK_TYPES
        .get(usize::from(link))
        .copied()
        .unwrap_or(LinkType(u32::from(link)));
    let mut pcap = PcapWriter::new(link.0);
    let mut at = Duration::from_secs(1_700_000_000);
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        pcap.frame(at, frame, frame.len());
        at += Duration::from_millis(1);
        rest = tail;
    }
    pcap.write(path);
}

#[test]
fn detect_inputs_replay_cleanly_with_every_tunnel_open() {
    let tmp = TempDir::new("fuzz-detect");
    for input in inputs("detect") {
        let capture = tmp.path("input.pcap");
        detect_capture(&std::fs::read(&input).unwrap(), &capture);
        let path = capture.to_string_lossy();
        let mut args = vec!["replay", "-o", "/dev/null", &*path];
        args.extend(ALL_TUNNEL_ARGS);
        let out = run_flowstatd(&args);
        assert_no_crash(&input, &out);
    }
}
