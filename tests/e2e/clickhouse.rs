//! The ClickHouse schema of `conf/clickhouse/`, in an embedded ClickHouse
//! (Python's `chdb`): two agents' replayed records go through the schema's
//! views as Kafka blocks would, and every example query's answer must
//! equal totals computed from the records (`clickhouse.py`).

use std::process::Command;

use flowstatd::Config;

use crate::common::{TempDir, fixture, replay_lines, repo_file};

#[test]
fn the_clickhouse_schema_stores_and_answers_what_the_records_say() {
    let mut cfg = Config::default();
    cfg.geo.asn = Some(fixture("geo/asn.tsv"));
    cfg.geo.country = Some(fixture("geo/country.tsv"));
    let tmp = TempDir::new("clickhouse");
    // router1: the captures the ASN table covers (AS pairs); router2:
    // SIP and FTP, whose busiest host spans two minutes (host history).
    let agents = [
        ("router1", ["ndpi/http_ipv6.pcap", "ndpi/443-curl.pcap"]),
        ("router2", ["ndpi/sip.pcap", "ndpi/ftp.pcap"]),
    ];
    let mut args = vec![
        repo_file("tests/e2e/clickhouse.py").display().to_string(),
        repo_file("conf/clickhouse").display().to_string(),
    ];
    for (agent, captures) in agents {
        let files: Vec<_> = captures.iter().map(|c| fixture(c)).collect();
        let path = tmp.path(&format!("{agent}.jsonl"));
        std::fs::write(&path, replay_lines(&files, &cfg).join("\n") + "\n").unwrap();
        args.push(format!("{agent}={}", path.display()));
    }
    let out = Command::new("python3")
        .args(&args)
        .output()
        .expect("python3 with chdb is needed; install it with .ci/deps test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ClickHouse disagrees with the records:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("checked: {stdout}");
}
