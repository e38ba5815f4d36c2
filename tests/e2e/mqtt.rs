//! The MQTT sink end to end: flowstatd replays captures to a mosquitto
//! broker on 127.0.0.1, a mosquitto_sub subscriber per record type reads
//! them; and check-config names the key and the fix of bad values.

use flowstat_tests::mosquitto::Broker;
use flowstatd::Config;

use crate::common::{TempDir, assert_config_problems};
use crate::sinks::{captures, expected, finish, spawn_replay};

/// The host name the agent puts in `{hostname}`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn a_subscriber_per_type_gets_exactly_that_types_records() {
    let broker = Broker::start("e2e");
    let host = hostname();
    let types = ["flow", "flow_stats", "flow_purge"];
    // One subscriber names the host: the topic carries the agent's name.
    let subscribers: Vec<_> = types
        .iter()
        .map(|t| {
            let topic = if *t == "flow" {
                format!("flowstat/{host}/flow")
            } else {
                format!("flowstat/+/{t}")
            };
            broker.subscribe(&format!("e2e-{t}"), &topic)
        })
        .collect();
    let dir = TempDir::new("sink-mqtt");
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[sink]]\ntype = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{}\"\n\
             types = [\"flow\", \"flow_stats\", \"flow_purge\"]\n",
            broker.port
        ),
    )
    .unwrap();
    let files = captures();
    let all = expected(&files, &Config::default());
    let (ok, log) = finish(spawn_replay(&cfg, &files, &[]));
    assert!(ok, "{log}");
    assert!(!log.contains("dropped="), "records were dropped: {log}");
    for (t, sub) in types.iter().zip(&subscribers) {
        let prefix = format!("{{\"type\":\"{t}\",");
        let want: Vec<&String> = all.iter().filter(|l| l.starts_with(&prefix)).collect();
        assert!(want.len() > 20, "{t}: {} records", want.len());
        let got = sub.wait_for(|l| l.len() >= want.len());
        assert!(
            got.iter().collect::<Vec<_>>() == want,
            "{t}: the subscriber got {} records, the replay made {}",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn check_config_names_the_key_and_the_fix_of_a_bad_url_or_qos() {
    assert_config_problems(
        "[[sink]]\ntype = \"mqtt\"\nurl = \"tcp://broker:1883\"\nqos = 2\n\
         [[sink]]\ntype = \"mqtt\"\nurl = \"mqtt://broker:0\"\ntopic = \"flows/#\"\n",
        &[
            (
                "sink[0].url",
                &["unknown scheme \"tcp\", expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"],
            ),
            (
                "sink[0].qos",
                &["must be 0 (at most once) or 1 (at least once), not 2"],
            ),
            (
                "sink[1].url",
                &["the port must be a number from 1 to 65535"],
            ),
            ("sink[1].topic", &["+ and # are wildcards for subscribers"]),
        ],
    );
}
