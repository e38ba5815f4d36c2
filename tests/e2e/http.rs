//! The HTTP sink end to end: flowstatd replays captures to a collector on
//! 127.0.0.1 that refuses its first POSTs with 503; and check-config names
//! the key and the fix of bad values.

use flowstat_tests::collector::{Collector, Request};
use flowstatd::Config;

use crate::common::{TempDir, assert_config_problems};
use crate::sinks::{captures, expected, finish, spawn_replay};

#[test]
fn every_record_arrives_once_in_gzip_batches_past_503s() {
    let collector = Collector::start(|n| if n < 2 { 503 } else { 200 });
    let dir = TempDir::new("sink-http");
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[sink]]\ntype = \"http\"\nurl = \"{}\"\ngzip = true\nbatch_records = 200\n\
             bearer_token = \"t0ken\"\n",
            collector.url("/v1/flows")
        ),
    )
    .unwrap();
    let files = captures();
    let want = expected(&files, &Config::default());
    let (ok, log) = finish(spawn_replay(&cfg, &files, &[]));
    assert!(ok, "{log}");
    assert!(!log.contains("dropped="), "records were dropped: {log}");
    let requests = collector.requests();
    assert_eq!(requests[0].status, 503);
    assert_eq!(requests[1].status, 503);
    assert!(
        requests
            .iter()
            .all(|r| r.header("content-encoding") == Some("gzip")
                && r.header("authorization") == Some("Bearer t0ken")
                && r.line == "POST /v1/flows HTTP/1.1"
                && r.lines().len() <= 200),
        "a request without gzip, its token or its path, or too large"
    );
    let got: Vec<String> = requests
        .iter()
        .filter(|r| r.status == 200)
        .flat_map(Request::lines)
        .filter(|l| !l.starts_with(r#"{"type":"agent_status""#))
        .collect();
    assert!(want.len() > 500, "{} records", want.len());
    assert!(
        got == want,
        "the collector got {} records, the replay made {}",
        got.len(),
        want.len()
    );
}

#[test]
fn check_config_names_the_key_and_the_fix_of_a_bad_url() {
    assert_config_problems(
        "[[sink]]\ntype = \"http\"\nurl = \"collector.example/ingest\"\n\
         [[sink]]\ntype = \"http\"\nurl = \"https://user:pw@collector.example/\"\n\
         batch_records = 0\n",
        &[
            (
                "sink[0].url",
                &["expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH"],
            ),
            ("sink[1].url", &["use the username and password keys"]),
            ("sink[1].batch_records", &["must be at least 1"]),
        ],
    );
}
