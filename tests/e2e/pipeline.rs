//! The pipeline: the same records for any number of flow workers, DNS
//! answers that name later flows whichever worker has them, and interval
//! ends and purges larger than a sink's queue delivered whole, and a
//! replay that ends after its largest purge.

use std::path::PathBuf;
use std::time::Duration;

use etherparse::PacketBuilder;
use flowstat_core::KindSet;
use flowstat_sinks::{MemorySink, SinkOptions, SinkRuntime};
use flowstatd::{Config, ReplayOptions};
use serde_json::Value;

use crate::common::{
    PcapWriter, TempDir, corpus, pipeline_config, rel, replay_workers, run_flowstatd, udp_flows,
};

/// The first line where `b` differs from `a`, for messages.
fn first_difference(a: &[String], b: &[String]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("line {}:\n  {}\n  {}", i + 1, a[i], b[i]),
        None => format!("{} lines against {}", a.len(), b.len()),
    }
}

#[test]
fn every_worker_count_gives_the_same_records() {
    // The whole corpus in one replay: sources one after another, flows of
    // every kind, DNS answers and the flows they name.
    let files = corpus();
    let cfg = Config::default();
    let one = replay_workers(&files, &cfg, 1);
    assert!(one.len() > 1_500, "only {} records", one.len());
    for workers in [2, 3] {
        let many = replay_workers(&files, &cfg, workers);
        assert!(
            many == one,
            "{workers} workers differ from one at {}",
            first_difference(&one, &many)
        );
    }
    // And each capture on its own, where interval ends fall elsewhere.
    for file in &files {
        let file = std::slice::from_ref(file);
        let one = replay_workers(file, &cfg, 1);
        let two = replay_workers(file, &cfg, 2);
        assert!(
            one == two,
            "{}: 2 workers differ from one at {}",
            rel(&file[0]),
            first_difference(&one, &two)
        );
    }
}

/// A DNS response from 192.0.2.53 naming `name` at `addr`.
fn dns_response(id: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(id.to_be_bytes());
    m.extend([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend(label.as_bytes());
    }
    m.extend([0, 0, 1, 0, 1]); // end of name, A, IN
    m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]); // the name, A, IN, TTL, length
    m.extend(addr);
    m
}

#[test]
fn dns_answers_name_the_flows_of_every_worker() {
    let dir = TempDir::new("pipeline-dns");
    let path = dir.path("dns-then-flows.pcap");
    let mut w = PcapWriter::new(1);
    let t0 = Duration::from_secs(1_700_000_000);
    const FLOWS: u8 = 32;
    for i in 1..=FLOWS {
        let client = [10, 0, 1, i];
        let server = [198, 51, 100, i];
        let at = t0 + Duration::from_millis(u64::from(i) * 10);
        let answer = dns_response(u16::from(i), &format!("host{i}.netflix.com"), server);
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 53], [2, 0, 0, 0, 0, 1])
            .ipv4([192, 0, 2, 53], client, 64)
            .udp(53, 33_000 + u16::from(i))
            .write(&mut frame, &answer)
            .unwrap();
        w.frame(at, &frame, frame.len());
        // The named server, a millisecond later: a SYN, no payload, so the
        // application can only come from the DNS cache.
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(client, server, 64)
            .tcp(40_000, 443, 1_000, 64_000)
            .syn()
            .write(&mut frame, &[])
            .unwrap();
        w.frame(at + Duration::from_millis(1), &frame, frame.len());
    }
    w.write(&path);

    let files = std::slice::from_ref(&path);
    let one = replay_workers(files, &Config::default(), 1);
    for workers in [2, 4] {
        let many = replay_workers(files, &Config::default(), workers);
        assert!(
            many == one,
            "{workers} workers differ from one at {}",
            first_difference(&one, &many)
        );
    }
    let named: Vec<Value> = one
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "flow" && r["flow"]["other_port"] == 443)
        .collect();
    assert_eq!(named.len(), usize::from(FLOWS));
    for r in &named {
        let f = &r["flow"];
        assert_eq!(f["dhc_hit"], true, "{f}");
        assert_eq!(f["detected_application_name"], "NetFlix", "{f}");
    }
}

/// Replays `files` on `workers` into one sink whose queue holds 100
/// records, on a thread of its own or inline; returns the records it got
/// and the records it dropped.
fn replay_into_small_queue(files: &[PathBuf], workers: usize, threaded: bool) -> (Vec<Value>, u64) {
    let memory = MemorySink::default();
    let mut sinks = if threaded {
        SinkRuntime::new().with_patience(SinkRuntime::REPLAY_PATIENCE)
    } else {
        SinkRuntime::inline(false)
    };
    let options = SinkOptions {
        queue_records: 100,
        ..SinkOptions::new(KindSet::ALL)
    };
    sinks.add(Box::new(memory.clone()), options).unwrap();
    let opts = ReplayOptions {
        files: files.to_vec(),
        workers,
        ..ReplayOptions::default()
    };
    let (_, sinks) = flowstatd::replay(pipeline_config(&Config::default()), &opts, sinks).unwrap();
    let dropped = sinks.finish(Duration::from_secs(10))[0].dropped;
    let values = memory
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (values, dropped)
}

#[test]
fn a_purge_larger_than_the_queue_reaches_the_sink_whole() {
    let dir = TempDir::new("pipeline-burst");
    let path = dir.path("flows.pcap");
    // 5,000 flows within 50 ms: purged together at the end of the file,
    // 50 times what the sink's queue holds.
    udp_flows(&path, 5_000);
    for (workers, threaded) in [(1, false), (2, false), (2, true)] {
        let (records, dropped) =
            replay_into_small_queue(std::slice::from_ref(&path), workers, threaded);
        let purges = records.iter().filter(|r| r["type"] == "flow_purge").count();
        let flows = records.iter().filter(|r| r["type"] == "flow").count();
        let what = format!("{workers} workers, threaded sink: {threaded}");
        assert_eq!((purges, flows, dropped), (5_000, 5_000, 0), "{what}");
        let status = records
            .iter()
            .rfind(|r| r["type"] == "agent_status")
            .unwrap();
        assert_eq!(status["flows_purged"], 5_000, "{what}");
    }
}

#[test]
fn a_replay_on_several_workers_ends_after_a_large_purge() {
    // At the end of the capture the reader's worker purges its flows while
    // the others still purge theirs, sending each an (empty) batch every
    // time it waits for them: messages that reach the merger after the
    // last interval. The replay used to join the workers without taking
    // them, and hung whenever more were left than a channel holds.
    let dir = TempDir::new("pipeline-end");
    let path = dir.path("flows.pcap");
    udp_flows(&path, 100_000);
    for round in 0..3 {
        let (done_tx, done) = std::sync::mpsc::channel();
        let files = vec![path.clone()];
        std::thread::spawn(move || {
            let lines = replay_workers(&files, &Config::default(), 2);
            let purges = lines
                .iter()
                .filter(|l| l.contains("\"flow_purge\""))
                .count();
            let _ = done_tx.send(purges);
        });
        let purges = done
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("round {round}: the replay did not end in 5 minutes"));
        assert_eq!(purges, 100_000, "round {round}");
    }
}

#[test]
fn a_replay_on_several_workers_holds_few_records_of_a_large_purge() {
    // 200k flows purged at the end of the capture: about 200 MB of
    // records. Merged from two workers as they are made, they must not
    // pile up (the merger once held the other worker's whole purge,
    // waiting on the reader's own worker, which waited to hand it a batch:
    // 470 MB more here). The replay's peak RSS writing them stays within
    // 64 MiB of the same replay writing agent_status alone.
    let dir = TempDir::new("pipeline-peak");
    let pcap = dir.path("flows.pcap");
    udp_flows(&pcap, 200_000);
    let peak_kb = |types: &str| {
        let out = dir.path(&format!("{types}.json"));
        let run = run_flowstatd(&[
            "replay",
            "--resource-usage",
            "--workers",
            "2",
            "--types",
            types,
            "-o",
            &out.to_string_lossy(),
            &pcap.to_string_lossy(),
        ]);
        assert!(run.status.success(), "{run:?}");
        let text = std::fs::read_to_string(&out).unwrap();
        let status: Value = text
            .lines()
            .rfind(|l| l.contains("\"agent_status\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("an agent_status record");
        status["maxrss_kb"].as_u64().unwrap()
    };
    let bare = peak_kb("agent_status");
    let all = peak_kb("flow,flow_purge,agent_status");
    assert!(
        all < bare + (64 << 10),
        "peak RSS {all} kB writing every record, {bare} kB writing agent_status alone"
    );
}
