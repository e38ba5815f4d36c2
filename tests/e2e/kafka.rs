//! The Kafka sink against a Kafka-protocol broker (tansu) on loopback,
//! read back by an rdkafka consumer: every record of a replay, in order
//! per key; a broker killed mid-replay and restarted; records the broker
//! refuses counted dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flowstat_core::RecordKind;
use flowstat_tests::tansu::{Broker, Storage};
use flowstatd::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

use crate::common::{TempDir, paced_udp_flows, replay_lines};
use crate::sinks::{finish, spawn_replay};

/// Partitions of each topic.
const PARTITIONS: u32 = 3;

/// The default topic of every record type.
fn topics() -> Vec<String> {
    RecordKind::ALL
        .iter()
        .map(|k| format!("flowstat.{}", k.as_str()))
        .collect()
}

/// One message read back.
#[derive(Debug)]
struct Received {
    topic: String,
    partition: i32,
    key: Vec<u8>,
    /// The `hostname` header.
    host: Option<String>,
    json: String,
}

/// Reads every partition of `topics` from the start until `want`
/// messages came, then for `quiet` more (to see any beyond), or until
/// `timeout`. In partition order.
fn consume(broker: &str, want: usize, timeout: Duration) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "flowstat-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut partitions = TopicPartitionList::new();
    for topic in topics() {
        for p in 0..PARTITIONS as i32 {
            partitions
                .add_partition_offset(&topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&partitions).expect("assign partitions");
    let mut got = Vec::new();
    let start = Instant::now();
    let mut complete_at = None;
    while start.elapsed() < timeout {
        if got.len() >= want && complete_at.get_or_insert_with(Instant::now).elapsed() > QUIET {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => got.push(Received {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                key: m.key().unwrap_or_default().to_vec(),
                host: m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == "hostname")
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                }),
                json: String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            }),
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    got
}

/// How long the consumer goes on reading once it has every record.
const QUIET: Duration = Duration::from_millis(500);

/// The key the sink must give `json`: its flow's first digest for flow
/// records, else `host`.
fn expected_key(json: &str, host: &str) -> Vec<u8> {
    let v: Value = serde_json::from_str(json).unwrap();
    let flow_types = ["flow", "flow_stats", "flow_purge"];
    if !flow_types.contains(&v["type"].as_str().unwrap()) {
        return host.as_bytes().to_vec();
    }
    let flow = &v["flow"];
    let first = flow["digest_prev"]
        .as_array()
        .and_then(|prev| prev.first())
        .unwrap_or(&flow["digest"]);
    first.as_str().unwrap().as_bytes().to_vec()
}

/// This host's name, as the agent reads it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// The records a sink dropped, from flowstatd's final log line
/// (`dropped=N`; none when it did not warn).
fn dropped(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("sink stopped") && l.contains("kafka:"))
        .filter_map(|l| l.split("dropped=").nth(1))
        .map(|n| {
            n.split_whitespace()
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum()
}

/// Whether two records are the same: equal, or both `agent_status`
/// (whose sink counters and CPU figures differ from run to run).
fn same(a: &str, b: &str) -> bool {
    let status = r#"{"type":"agent_status""#;
    a == b || (a.starts_with(status) && b.starts_with(status))
}

/// Checks that `got` holds `want` exactly: each record in the topic of
/// its type under its key, and the records of each (topic, key) in the
/// order the replay made them (they share a partition).
fn check_per_key_order(got: &[Received], want: &[String], host: &str) {
    type Streams<'a> = BTreeMap<(String, Vec<u8>), Vec<&'a str>>;
    let mut want_streams: Streams<'_> = BTreeMap::new();
    for json in want {
        let v: Value = serde_json::from_str(json).unwrap();
        let topic = format!("flowstat.{}", v["type"].as_str().unwrap());
        let key = expected_key(json, host);
        want_streams.entry((topic, key)).or_default().push(json);
    }
    let mut got_streams: Streams<'_> = BTreeMap::new();
    let mut partition_of = BTreeMap::new();
    for r in got {
        assert_eq!(r.host.as_deref(), Some(host), "the hostname header");
        let stream = (r.topic.clone(), r.key.clone());
        let p = *partition_of.entry(stream.clone()).or_insert(r.partition);
        assert_eq!(p, r.partition, "{stream:?} spans partitions");
        got_streams.entry(stream).or_default().push(&r.json);
    }
    assert_eq!(
        got_streams.keys().collect::<Vec<_>>(),
        want_streams.keys().collect::<Vec<_>>(),
        "topics and keys"
    );
    for (stream, want) in &want_streams {
        let got = &got_streams[stream];
        assert_eq!(got.len(), want.len(), "{stream:?}: records");
        let first_difference = got.iter().zip(want).position(|(g, w)| !same(g, w));
        assert_eq!(
            first_difference, None,
            "{stream:?}: out of order or unknown"
        );
    }
}

/// Some corpus captures: a few thousand records.
fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = flowstat_tests::corpus_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/ndpi/"))
        .collect();
    files.truncate(25);
    files
}

#[test]
fn a_consumer_reads_back_every_record_of_a_replay_in_order_per_key() {
    let broker = Broker::start("replay", Storage::Memory, &topics(), PARTITIONS);
    let dir = TempDir::new("kafka-replay");
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[sink]]\ntype = \"kafka\"\nbrokers = [\"{}\"]\ncompression = \"zstd\"\n",
            broker.address()
        ),
    )
    .unwrap();
    let files = captures();
    let want = replay_lines(&files, &Config::default());
    assert!(want.len() > 500, "{} records", want.len());

    let (ok, log) = finish(spawn_replay(&cfg, &files, &[]));
    assert!(ok, "{log}");
    assert_eq!(dropped(&log), 0, "{log}");
    let got = consume(&broker.address(), want.len(), Duration::from_secs(60));
    assert_eq!(got.len(), want.len(), "{}", broker.log());
    check_per_key_order(&got, &want, &host_name());
}

#[test]
fn a_broker_killed_mid_replay_and_restarted_loses_nothing() {
    let mut broker = Broker::start("restart", Storage::Sqlite, &topics(), PARTITIONS);
    let dir = TempDir::new("kafka-restart");
    let pcap = dir.path("paced.pcap");
    paced_udp_flows(&pcap, 7, |_| 50);
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nupdate_interval_secs = 1\n\
             [[sink]]\ntype = \"kafka\"\nbrokers = [\"{}\"]\nqueue_records = 100\n",
            broker.address()
        ),
    )
    .unwrap();
    let mut reference = Config::default();
    reference.agent.update_interval_secs = 1;
    let want = replay_lines(std::slice::from_ref(&pcap), &reference);

    let started = Instant::now();
    let mut child = spawn_replay(&cfg, std::slice::from_ref(&pcap), &["--realtime"]);
    // Bursts come at 0, 1, 2 ... 7 s: the broker is away from 1.5 to
    // 4.5 s, while three of them are produced.
    let at = |ms| {
        std::thread::sleep(
            (started + Duration::from_millis(ms)).saturating_duration_since(Instant::now()),
        )
    };
    at(1500);
    broker.kill();
    at(4500);
    let running = child.try_wait().unwrap().is_none();
    broker.restart();
    let (ok, log) = finish(child);
    assert!(
        running,
        "the replay ended before the broker came back: {log}"
    );
    assert!(ok, "{log}");

    let got = consume(&broker.address(), want.len(), Duration::from_secs(60));
    // Received + dropped = produced, and a broker back within the
    // sink's patience loses nothing.
    assert_eq!(got.len() + dropped(&log), want.len(), "{log}");
    assert_eq!(dropped(&log), 0, "{log}");
    check_per_key_order(&got, &want, &host_name());
}

#[test]
fn records_too_large_for_the_producer_are_counted_dropped_and_the_rest_delivered() {
    let broker = Broker::start("refuse", Storage::Memory, &topics(), PARTITIONS);
    let dir = TempDir::new("kafka-refuse");
    let cfg = dir.path("agent.toml");
    // Many flow records are over 1000 bytes, most flow_stats not.
    std::fs::write(
        &cfg,
        format!(
            "[[sink]]\ntype = \"kafka\"\nbrokers = [\"{}\"]\n\
             types = [\"flow\", \"flow_stats\", \"flow_purge\"]\n\
             [sink.properties]\n\"message.max.bytes\" = 1000\n",
            broker.address()
        ),
    )
    .unwrap();
    let files = captures();
    let want: Vec<String> = replay_lines(&files, &Config::default())
        .into_iter()
        .filter(|l| l.starts_with(r#"{"type":"flow"#))
        .collect();

    let (ok, log) = finish(spawn_replay(&cfg, &files, &[]));
    assert!(!ok, "a replay that dropped records fails: {log}");
    let dropped = dropped(&log);
    let got = consume(
        &broker.address(),
        want.len() - dropped,
        Duration::from_secs(60),
    );
    // Received + dropped = produced.
    assert_eq!(got.len() + dropped, want.len(), "{log}");
    // What was received is what was produced, less records too large
    // (their size on the wire counts the key and framing too).
    let mut unreceived: BTreeMap<&str, usize> = BTreeMap::new();
    for json in &want {
        *unreceived.entry(json).or_default() += 1;
    }
    for r in &got {
        let left = unreceived
            .get_mut(r.json.as_str())
            .expect("a record of the replay");
        *left -= 1;
    }
    let refused: Vec<&str> = unreceived
        .iter()
        .flat_map(|(json, n)| std::iter::repeat_n(*json, *n))
        .collect();
    assert_eq!(refused.len(), dropped);
    assert!(dropped > 50, "{dropped} dropped");
    assert!(
        refused.iter().all(|j| j.len() > 900),
        "small records dropped"
    );
    assert!(
        got.iter().all(|r| r.json.len() <= 1000),
        "large records sent"
    );
    let delivered: Vec<String> = want
        .iter()
        .filter(|j| !refused.contains(&j.as_str()))
        .cloned()
        .collect();
    check_per_key_order(&got, &delivered, &host_name());
}
