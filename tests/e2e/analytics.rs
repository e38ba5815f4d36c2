//! Flow definitions, top-N and thresholds (SPEC 7) on real captures,
//! checked against the flow records of the same replay.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use flowstatd::Config;
use serde_json::{Value, json};

use crate::common::{PcapWriter, TempDir, corpus, replay, replay_workers};

fn config(text: &str) -> Config {
    Config::parse(text, Path::new("(test)")).unwrap_or_else(|e| panic!("{e}"))
}

const BY_APPLICATION: &str = r#"
[[flow_definition]]
name = "apps"
keys = ["application", "protocol"]
n = 100000
emit = true

[[flow_definition]]
name = "top3"
keys = ["application"]
n = 3
emit = true
"#;

/// Bytes per application and protocol in the `flow_stats` and
/// `flow_purge` records between two `aggregate` records of `apps`, next to
/// what the aggregate says, interval by interval; and the top 3
/// applications.
#[test]
fn a_definition_by_application_equals_the_sums_of_the_flow_records() {
    let records = replay(&corpus(), &config(BY_APPLICATION));
    let mut app_of: HashMap<String, (String, String)> = HashMap::new();
    let mut interval: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut top3: BTreeMap<String, u64> = BTreeMap::new();
    let mut totals: BTreeMap<(String, String), u64> = BTreeMap::new();
    let names = |f: &Value| {
        let name = |k: &str| f[k].as_str().unwrap().to_owned();
        (
            name("detected_application_name"),
            name("detected_protocol_name"),
        )
    };
    let (mut checked, mut keys_seen, mut running) = (0, 0, 0);
    for r in &records {
        let f = &r["flow"];
        match r["type"].as_str().unwrap() {
            "flow" => {
                app_of.insert(f["digest"].as_str().unwrap().into(), names(f));
            }
            kind @ ("flow_stats" | "flow_purge") => {
                // A flow_stats names its flow by digest: the `flow` record's,
                // or the first one when detection changed it since.
                let key = match kind {
                    "flow_purge" => names(f),
                    _ => [&f["digest"], &f["digest_prev"][0]]
                        .iter()
                        .find_map(|d| app_of.get(d.as_str()?))
                        .unwrap()
                        .clone(),
                };
                let bytes = f["local_bytes"].as_u64().unwrap() + f["other_bytes"].as_u64().unwrap();
                if bytes > 0 {
                    *top3.entry(key.0.clone()).or_default() += bytes;
                    *interval.entry(key.clone()).or_default() += bytes;
                    *totals.entry(key).or_default() += bytes;
                }
            }
            "aggregate" if r["name"] == "apps" => {
                let rows: BTreeMap<(String, String), (u64, u64)> = r["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| {
                        let key = &row["key"];
                        let name = |k: &str| key[k].as_str().unwrap().to_owned();
                        let values = (
                            row["value"].as_u64().unwrap(),
                            row["total"].as_u64().unwrap(),
                        );
                        ((name("application"), name("protocol")), values)
                    })
                    .collect();
                let expected: BTreeMap<(String, String), (u64, u64)> = interval
                    .iter()
                    .map(|(key, v)| (key.clone(), (*v, totals[key])))
                    .collect();
                assert_eq!(rows, expected, "interval ending at {}", r["at"]);
                // A key idle for a whole interval is forgotten: its total
                // starts again if it comes back.
                totals.retain(|key, _| interval.contains_key(key));
                keys_seen += rows.len();
                running += rows.values().filter(|(value, total)| total > value).count();
                checked += 1;
            }
            "aggregate" => {
                // Top 3: the sums sorted (largest first, ties by name),
                // the rest folded into "other".
                let mut sorted: Vec<(&String, &u64)> = top3.iter().collect();
                sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let mut expected: Vec<Value> = sorted
                    .iter()
                    .take(3)
                    .map(|(app, v)| json!([{"application": app}, v]))
                    .collect();
                if sorted.len() > 3 {
                    let rest: u64 = sorted[3..].iter().map(|(_, v)| **v).sum();
                    expected.push(json!(["other", rest]));
                }
                let rows: Vec<Value> = r["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| json!([row["key"], row["value"]]))
                    .collect();
                assert_eq!(rows, expected, "top 3 at {}", r["at"]);
                // "apps" comes first: this interval is done.
                interval.clear();
                top3.clear();
            }
            _ => {}
        }
    }
    assert!(checked > 100, "only {checked} intervals");
    assert!(keys_seen > 300, "only {keys_seen} rows");
    assert!(
        running > 30,
        "only {running} rows with a total beyond the interval"
    );
}

/// Replay output with definitions and thresholds is the same on every
/// run and for any number of workers.
#[test]
fn analytics_are_the_same_for_any_number_of_workers() {
    let cfg = config(&format!(
        "{BY_APPLICATION}{}",
        r#"
[analytics]
top_flows = 5

[[flow_definition]]
name = "hosts"
keys = ["host_server_name", "other_ip", "other_port"]
n = 10
emit = true

[[threshold]]
name = "busy-app"
metric = "apps"
value = 2000
by_flow = true

[[threshold]]
name = "fat-flow"
metric = "total_rate"
value = 5000
by_flow = true
"#
    ));
    let files = corpus();
    let one = replay_workers(&files, &cfg, 1);
    let events = one
        .iter()
        .filter(|l| l.starts_with(r#"{"type":"event""#))
        .count();
    assert!(events > 20, "only {events} events");
    let hosts = one
        .iter()
        .filter(|l| l.contains(r#""name":"hosts""#) && l.contains(r#""host_server_name":"www."#))
        .count();
    assert!(hosts > 0, "no host names in the hosts definition");
    assert_eq!(one, replay_workers(&files, &cfg, 1), "run to run");
    for workers in [2, 3] {
        assert!(
            one == replay_workers(&files, &cfg, workers),
            "{workers} workers"
        );
    }
}

/// One UDP flow that sends `rates[i]` bytes a second through the i-th
/// `secs` seconds, and a second flow that stays quiet (100 bytes a second).
/// It starts on a multiple of 15 s.
pub(crate) fn write_crossing(path: &Path, rates: &[u64], secs: u64) {
    let mut w = PcapWriter::new(1);
    let start = 1_700_000_010; // a multiple of 15
    for (i, &rate) in rates.iter().enumerate() {
        for s in 0..secs {
            let at = Duration::from_secs(start + i as u64 * secs + s);
            for (port, bytes) in [(5000, rate), (5001, 100)] {
                // One 1000-byte frame per 1000 bytes (the rest in one).
                let mut left = bytes;
                let mut n = 0;
                while left > 0 {
                    let len = left.min(1000) as usize;
                    let frame = udp_frame(port, len);
                    w.frame(at + Duration::from_micros(n), &frame, len);
                    left -= len as u64;
                    n += 1;
                }
            }
        }
    }
    w.write(path);
}

/// An Ethernet frame of `len` bytes on the wire, 10.0.0.1:`port` to
/// 198.51.100.7:53.
fn udp_frame(port: u16, len: usize) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [198, 51, 100, 7], 64)
        .udp(port, 53);
    let payload = vec![b'x'; len.saturating_sub(42).max(1)];
    let mut frame = Vec::new();
    builder.write(&mut frame, &payload).unwrap();
    frame
}

#[test]
fn a_threshold_fires_once_per_crossing_and_names_what_crossed() {
    let dir = TempDir::new("analytics-crossing");
    let pcap = dir.path("crossing.pcap");
    // Above 10 kB/s, above, below, above, above: two crossings.
    write_crossing(&pcap, &[20_000, 30_000, 2_000, 20_000, 20_000], 15);
    let cfg = config(
        r#"
[[flow_definition]]
name = "ports"
keys = ["local_port"]

[[threshold]]
name = "busy-port"
metric = "ports"
value = 10000
by_flow = true

[[threshold]]
name = "fat-flow"
metric = "total_rate"
value = 10000
by_flow = true

[[threshold]]
name = "busy-link"
metric = "rx_bytes_per_sec"
value = 15000
"#,
    );
    let records = replay(&[pcap], &cfg);
    let events: Vec<&Value> = records.iter().filter(|r| r["type"] == "event").collect();
    let digest = records
        .iter()
        .find(|r| r["type"] == "flow" && r["flow"]["local_port"] == 5000)
        .map(|r| r["flow"]["digest"].clone())
        .unwrap();
    let seen: Vec<(u64, &str, Value)> = events
        .iter()
        .map(|e| {
            let what = e
                .get("key")
                .or_else(|| e["flow"].get("digest"))
                .or_else(|| e.get("interface"))
                .unwrap()
                .clone();
            (
                e["at"].as_u64().unwrap() / 1000,
                e["threshold"].as_str().unwrap(),
                what,
            )
        })
        .collect();
    let t = |i: u64| 1_700_000_010 + 15 * (i + 1);
    let port = json!({"local_port": 5000});
    assert_eq!(
        seen,
        [
            (t(0), "busy-port", port.clone()),
            (t(0), "fat-flow", digest.clone()),
            (t(0), "busy-link", json!("crossing.pcap")),
            (t(3), "busy-port", port),
            (t(3), "fat-flow", digest),
            (t(3), "busy-link", json!("crossing.pcap")),
        ]
    );
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["event_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    let first = events[0];
    assert_eq!(first["metric"], "ports");
    assert_eq!(first["threshold_value"], 10_000);
    assert_eq!(first["value"], 20_000);
}

/// Live, the interface metrics are the kernel's: a threshold on the
/// receive rate of a veth fires once per burst that tcpreplay pushes
/// above it, and stays quiet while the link is idle; the agent's API
/// serves the event and the rate.
#[test]
fn an_interface_rate_threshold_fires_live_once_per_burst() {
    let dir = TempDir::new("analytics-live");
    let pcap = dir.path("burst.pcap");
    crate::common::udp_flows(&pcap, 6_000);
    let out = dir.path("out.json");
    let status = dir.path("status.json");
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nupdate_interval_secs = 1\nstatus_file = {status:?}\n\
             [[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\n\
             [[sink]]\ntype = \"file\"\npath = {out:?}\n\
             [[threshold]]\nname = \"busy-link\"\nmetric = \"rx_packets_per_sec\"\nvalue = 1000\n",
        ),
    )
    .unwrap();
    let ns = crate::live::Netns::new("threshold");
    // The API listens on the namespace's loopback.
    let up = ns
        .exec("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let mut agent = crate::live::Agent::start(&ns, &cfg, &status, dir.path("agent.log"));
    // Idle, then two bursts of 2 s at 3000 packets a second, 3 s apart.
    std::thread::sleep(Duration::from_secs(2));
    ns.send(&pcap, 3_000);
    // The live agent's API (on by default, inside the namespace) has the
    // first event, and the kernel's rate in /metrics.
    let curl = |path: &str| {
        let out = ns
            .exec("curl")
            .args(["-sf", &format!("http://127.0.0.1:8008{path}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {path}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let served: Value = serde_json::from_str(&curl("/events/json?eventID=0&timeout=5")).unwrap();
    assert_eq!(served[0]["interface"], "vb", "{served}");
    let metrics = curl("/metrics");
    assert!(
        metrics.contains("flowstat_interface_rx_packets_per_second{interface=\"vb\"}"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_secs(3));
    ns.send(&pcap, 3_000);
    std::thread::sleep(Duration::from_millis(1500));
    let code = agent.stop();
    assert!(code.success(), "{code}\n{}", agent.log());
    let records = crate::live::read_records(&out);
    let events: Vec<&Value> = records.iter().filter(|r| r["type"] == "event").collect();
    assert_eq!(events.len(), 2, "{events:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["event_id"], i as u64 + 1);
        assert_eq!(e["interface"], "vb");
        assert_eq!(e["metric"], "rx_packets_per_sec");
        let rate = e["value"].as_u64().unwrap();
        assert!((1_001..=4_000).contains(&rate), "{e}");
    }
    // The first came with the first burst, not while the link was idle
    // (`timestamp` is in seconds, `at` in milliseconds).
    let first = records
        .iter()
        .find(|r| r["type"] == "agent_status")
        .unwrap();
    let first = first["timestamp"].as_u64().unwrap();
    assert!(
        events[0]["at"].as_u64().unwrap() / 1000 > first + 1,
        "{first}"
    );
}
