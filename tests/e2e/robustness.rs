//! Bad and odd input: every capture replays, cut and bogus files are handled
//! with a clear message, and output is reproducible.

use serde_json::Value;

use crate::common::{PcapWriter, TempDir, corpus, fixture, rel, run_flowstatd};

fn stdout_records(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is a JSON record"))
        .collect()
}

#[test]
fn every_corpus_capture_replays_with_status_zero() {
    for file in corpus() {
        for tunnels in [
            &[][..],
            &[
                "--decapsulate",
                "ip_in_ip",
                "--decapsulate",
                "gre",
                "--decapsulate",
                "vxlan",
            ][..],
        ] {
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
