//! Bad and odd input: every capture replays, cut and bogus files are handled
//! with a clear message, and output is reproducible.

use serde_json::Value;

use crate::common::{ALL_TUNNEL_ARGS, PcapWriter, TempDir, corpus, fixture, rel, run_flowstatd};

fn stdout_records(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is a JSON record"))
        .collect()
}

#[test]
fn every_corpus_capture_replays_with_status_zero() {
    for file in corpus() {
        for tunnels in [&[][..], &ALL_TUNNEL_ARGS[..]] {
            let path = file.to_string_lossy();
            let mut args = vec!["replay", &*path];
            args.extend_from_slice(tunnels);
            let out = run_flowstatd(&args);
            assert!(
                out.status.success(),
                "{} {tunnels:?}: {}\n{}",
                rel(&file),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let records = stdout_records(&out);
            assert!(
                records.iter().any(|r| r["type"] == "interface_stats"),
                "{}",
                rel(&file)
            );
        }
    }
}

#[test]
fn two_replays_are_byte_identical() {
    let files: Vec<String> = corpus()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["replay"];
    args.extend(files.iter().map(String::as_str));
    let (a, b) = (run_flowstatd(&args), run_flowstatd(&args));
    assert!(a.status.success() && b.status.success());
    assert!(
        a.stdout.len() > 100_000,
        "the corpus gives plenty of records"
    );
    assert!(
        a.stdout == b.stdout,
        "replay output differs between two runs"
    );
}

/// Cuts `ndpi/443-curl.pcap` (109 frames) in the middle of a record.
fn cut_capture(tmp: &TempDir) -> std::path::PathBuf {
    let bytes = std::fs::read(fixture("ndpi/443-curl.pcap")).unwrap();
    let cut = tmp.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 7]).unwrap();
    cut
}

#[test]
fn a_truncated_capture_warns_purges_what_it_saw_and_exits_zero() {
    let tmp = TempDir::new("truncated");
    let cut = cut_capture(&tmp);
    let out = run_flowstatd(&["replay", &cut.to_string_lossy()]);
    assert!(out.status.success(), "{}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.pcap ends in the middle of a record"),
        "{stderr}"
    );
    let records = stdout_records(&out);
    let purges: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "flow_purge")
        .collect();
    assert_eq!(purges.len(), 1);
    let received = records
        .iter()
        .find(|r| r["type"] == "agent_status")
        .map(|r| r["captures"]["cut.pcap"]["received"].as_u64().unwrap())
        .unwrap();
    assert!(
        received > 10 && received < 109,
        "{received} frames before the cut"
    );
    assert_eq!(purges[0]["flow"]["total_packets"].as_u64(), Some(received));
}

#[test]
fn an_unsupported_link_type_is_warned_once_with_its_frames() {
    let tmp = TempDir::new("linktype");
    let odd = tmp.path("odd.pcap");
    let mut pcap = PcapWriter::new(65_000);
    for i in 0..3 {
        pcap.frame(std::time::Duration::from_secs(i), &[0x45; 40], 40);
    }
    pcap.write(&odd);
    let ethernet = fixture("ndpi/443-curl.pcap");
    let out = run_flowstatd(&[
        "replay",
        &odd.to_string_lossy(),
        &ethernet.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("is not decoded"))
        .collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("odd.pcap: link type 65000 is not decoded (3 frames skipped"),
        "{stderr}"
    );
    let skipped: u64 = stdout_records(&out)
        .iter()
        .filter(|r| r["type"] == "interface_stats")
        .filter_map(|r| r["odd.pcap"]["decode_issues"]["unsupported_link"].as_u64())
        .sum();
    assert_eq!(skipped, 3);
}

/// `flowstatd replay ARGS` with `input` written to its standard input.
fn replay_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::common::flowstatd())
        .arg("replay")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flowstatd");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().expect("write the capture to stdin");
    out
}

#[test]
fn replay_from_a_fifo_or_stdin_equals_replay_from_the_file() {
    let tmp = TempDir::new("streams");
    // Larger than a pipe's buffer, pcap and pcapng.
    for capture in ["ndpi/teams.pcap", "ndpi/sites.pcapng"] {
        let file = fixture(capture);
        let bytes = std::fs::read(&file).unwrap();
        assert!(bytes.len() > 256 * 1024, "{capture}: {} bytes", bytes.len());
        let from_file = run_flowstatd(&["replay", &file.to_string_lossy()]);
        assert!(from_file.status.success());

        // A FIFO of the same name: the same interface name, the same output.
        let fifo = tmp.path(file.file_name().unwrap().to_str().unwrap());
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo {}", fifo.display());
        let mut child = std::process::Command::new(crate::common::flowstatd())
            .arg("replay")
            .arg(&fifo)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run flowstatd");
        // The writer opens once the reader has said it waits for one.
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut lines = std::io::BufRead::lines(stderr);
        let waiting = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("is a FIFO with no writer yet: waiting for one"));
        assert!(waiting, "{capture}: no word of waiting for a writer");
        let rest = std::thread::spawn(move || lines.count());
        std::fs::write(&fifo, &bytes).unwrap();
        let from_fifo = child.wait_with_output().unwrap();
        rest.join().unwrap();
        assert!(
            from_fifo.status.success(),
            "{capture}: {}",
            from_fifo.status
        );
        assert!(from_fifo.stdout == from_file.stdout, "{capture}: FIFO");
        std::fs::remove_file(&fifo).unwrap();

        // Standard input is named "stdin": as a file of that name.
        let named = tmp.path("stdin");
        std::fs::write(&named, &bytes).unwrap();
        let from_named = run_flowstatd(&["replay", &named.to_string_lossy()]);
        let from_stdin = replay_stdin(&["-"], &bytes);
        assert!(
            from_stdin.status.success(),
            "{capture}: {}",
            from_stdin.status
        );
        assert!(from_stdin.stdout == from_named.stdout, "{capture}: stdin");
    }
}

#[test]
fn a_truncated_stream_warns_like_a_truncated_file() {
    let tmp = TempDir::new("truncated-stream");
    let cut = std::fs::read(cut_capture(&tmp)).unwrap();
    let out = replay_stdin(&["-"], &cut);
    assert!(out.status.success(), "{}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("standard input ends in the middle of a record"),
        "{stderr}"
    );
    assert_eq!(
        stdout_records(&out)
            .iter()
            .filter(|r| r["type"] == "flow_purge")
            .count(),
        1
    );
}

#[test]
fn a_capture_truncated_while_replayed_warns_and_keeps_what_came_before() {
    use std::io::BufRead;
    let tmp = TempDir::new("shrinking");
    let file = tmp.path("shrinking.pcap");
    // 20,000 frames of 1,000 bytes over 4 s of packet time.
    let mut pcap = PcapWriter::new(1);
    for i in 0..20_000u32 {
        let [_, _, hi, lo] = i.to_be_bytes();
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 1, hi, lo], 64)
            .udp(40_000, 53)
            .write(&mut frame, &[0; 958])
            .unwrap();
        let at = std::time::Duration::from_secs(1_700_000_000)
            + std::time::Duration::from_micros(u64::from(i) * 200);
        pcap.frame(at, &frame, frame.len());
    }
    pcap.write(&file);
    let mut child = std::process::Command::new(crate::common::flowstatd())
        .args(["replay", "--realtime", "--interval", "1"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run flowstatd");
    // The first interval's records: the replay is past 1 s (5,000 frames,
    // 5 MB) of the file; it is cut behind it, at 2 MB.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(2_000_000)
        .unwrap();
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shrinking.pcap shrank while being read"),
        "{stderr}"
    );
    let records: Vec<Value> = std::iter::once(first)
        .chain(rest)
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let iface = |key: &str| -> u64 {
        records
            .iter()
            .filter(|r| r["type"] == "interface_stats")
            .map(|r| r["shrinking.pcap"][key].as_u64().unwrap())
            .sum()
    };
    let purged: u64 = records
        .iter()
        .filter(|r| r["type"] == "flow_purge")
        .map(|r| r["flow"]["total_packets"].as_u64().unwrap())
        .sum();
    let (raw, ip) = (iface("raw"), iface("ip"));
    assert!((5_000..20_000).contains(&raw), "{raw} frames read");
    assert_eq!(purged, ip, "every decoded frame in a purged flow");
    // Only the frame being paced when the file shrank may read zeros.
    assert!(raw - ip <= 1, "{raw} frames, {ip} decoded");
}

#[test]
fn a_directory_or_an_empty_stream_fails_with_one_line() {
    let tmp = TempDir::new("notfiles");
    let dir = tmp.path("captures");
    std::fs::create_dir(&dir).unwrap();
    for (out, want) in [
        (
            run_flowstatd(&["replay", &dir.to_string_lossy()]),
            "captures: is a directory",
        ),
        (replay_stdin(&["-"], b""), "standard input is empty"),
    ] {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
}

#[test]
fn an_empty_file_fails_with_one_line() {
    let tmp = TempDir::new("empty");
    let empty = tmp.path("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let out = run_flowstatd(&["replay", &empty.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("empty.pcap is empty"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_that_is_not_a_capture_fails_with_one_line() {
    let tmp = TempDir::new("notcap");
    let text = tmp.path("notes.pcap");
    std::fs::write(&text, b"this is not a capture file\n").unwrap();
    let out = run_flowstatd(&["replay", &text.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("notes.pcap is not a pcap or pcapng capture"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_fails_before_any_output() {
    let good = fixture("ndpi/443-curl.pcap");
    let out = run_flowstatd(&["replay", &good.to_string_lossy(), "/nonexistent/x.pcap"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot open /nonexistent/x.pcap"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no file is replayed when one cannot be opened"
    );
}

#[test]
fn truncated_snaplen_frames_still_count_their_wire_length() {
    // Cut every frame to 60 bytes, inside the 32-byte TCP headers' options
    // (as tcpdump -s 60 would): byte totals and TCP counters must not
    // change.
    let tmp = TempDir::new("snaplen");
    let src = fixture("ndpi/443-curl.pcap");
    let cut = tmp.path("cut60.pcap");
    let status = std::process::Command::new("editcap")
        .args([
            "-F",
            "pcap",
            "-s",
            "60",
            &src.to_string_lossy(),
            &cut.to_string_lossy(),
        ])
        .status()
        .expect("editcap (from tshark's wireshark-common) is needed; install it with .ci/deps");
    assert!(status.success());
    let totals = |path: &std::path::Path| {
        let out = run_flowstatd(&["replay", &path.to_string_lossy()]);
        stdout_records(&out)
            .into_iter()
            .filter(|r| r["type"] == "flow_purge")
            .map(|r| {
                let f = &r["flow"];
                (
                    f["local_port"].clone(),
                    f["total_bytes"].clone(),
                    f["total_packets"].clone(),
                    f["tcp"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (full, short) = (totals(&src), totals(&cut));
    assert!(!full.is_empty());
    assert_eq!(full, short);
}
