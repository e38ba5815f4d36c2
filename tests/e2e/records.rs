//! `docs/records.md` cannot drift from what the agent writes: every field
//! of every record the agent writes on the test corpus is in its tables,
//! and every field in its tables is written.
//!
//! The agent replays the whole corpus with what makes optional fields
//! appear (local networks, the fixture address databases, decapsulation,
//! a flow definition on every key field, thresholds on a definition, on
//! flows and on interfaces) and writes to a socket sink that asks a token:
//! a client sending the wrong one is sent the `error` record, the other
//! the `agent_hello` record and then every other record.
//!
//! A field is its dotted path from the record's top (`flow.ssl.alpn`);
//! objects and arrays are fields too, and the fields of the objects in an
//! array are under `NAME[]` (`rows[].key`). Keys that name a capture, a
//! sink or an interface are the placeholders `<capture>`, `<sink>` and
//! `<interface>`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TempDir, corpus, fixture, flowstatd, repo_file};

/// A record type and a field's path in it.
type Field = (String, String);

/// The objects whose keys are names (the record type, the object's path,
/// the placeholder the docs write for a key).
const NAMED: [(&str, &str, &str); 3] = [
    ("agent_status", "captures", "<capture>"),
    ("agent_status", "sinks", "<sink>"),
    ("interface_stats", "", "<interface>"),
];

/// Documented fields no replay can write: the kernel's counters of a live
/// capture interface (a capture file has none).
const LIVE_ONLY: [&str; 12] = [
    "rx_bytes",
    "rx_bytes_per_sec",
    "rx_drops",
    "rx_errors",
    "rx_packets",
    "rx_packets_per_sec",
    "tx_bytes",
    "tx_bytes_per_sec",
    "tx_drops",
    "tx_errors",
    "tx_packets",
    "tx_packets_per_sec",
];

const TOKEN: &str = "t0ken";

/// Adds the fields of `value`, found at `path` in a record of `kind`.
fn collect(kind: &str, path: &str, value: &Value, out: &mut BTreeSet<Field>) {
    match value {
        Value::Object(map) => {
            let named = NAMED
                .iter()
                .find(|(k, p, _)| *k == kind && *p == path)
                .map(|n| n.2);
            for (key, v) in map {
                // `type` is every record's, never a name.
                let key = match named {
                    Some(placeholder) if !(path.is_empty() && key == "type") => placeholder,
                    _ => key,
                };
                let field = match path {
                    "" => key.to_owned(),
                    _ => format!("{path}.{key}"),
                };
                out.insert((kind.to_owned(), field.clone()));
                collect(kind, &field, v, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect(kind, &format!("{path}[]"), item, out);
            }
        }
        _ => {}
    }
}

/// The backquoted words of `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The fields `docs/records.md` documents: the backquoted paths in the
/// first column of its tables whose first column is `field`, in the record
/// types named in the row's `in` column or, without one, in the section's
/// heading.
fn documented() -> BTreeSet<Field> {
    let text = std::fs::read_to_string(repo_file("docs/records.md")).unwrap();
    let mut out = BTreeSet::new();
    let (mut section, mut header) = (Vec::new(), None::<Vec<String>>);
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = quoted(heading);
        }
        let Some(row) = line.strip_prefix('|') else {
            header = None;
            continue;
        };
        let cells: Vec<String> = row
            .trim_end_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        let Some(columns) = &header else {
            header = Some(cells);
            continue;
        };
        if columns[0] != "field" || cells[0].starts_with("---") {
            continue;
        }
        let kinds = match columns.iter().position(|c| c == "in") {
            Some(i) => quoted(&cells[i]),
            None => section.clone(),
        };
        assert!(!kinds.is_empty(), "no record type for: {line}");
        for path in quoted(&cells[0]) {
            for kind in &kinds {
                out.insert((kind.clone(), path.clone()));
            }
        }
    }
    out
}

/// Connects to the socket at `path`, sends `token` and reads until the
/// agent closes the connection.
fn client(path: &std::path::Path, token: &str) -> String {
    let start = Instant::now();
    let mut stream = loop {
        match UnixStream::connect(path) {
            Ok(s) => break s,
            Err(e) => assert!(start.elapsed() < Duration::from_secs(20), "{e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writeln!(stream, "{token}").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The fields of every record the agent writes on the corpus.
fn emitted() -> BTreeSet<Field> {
    let tmp = TempDir::new("records");
    let (config, sock) = (tmp.path("flowstatd.toml"), tmp.path("records.sock"));
    let config_text = format!(
        r#"
[agent]
local_networks = ["10.0.0.0/8", "192.168.0.0/16"]

[decode]
decapsulate = ["ip_in_ip", "gre", "vxlan"]

[geo]
asn = {asn:?}
country = {country:?}

[[flow_definition]]
name = "every-key"
keys = ["application", "protocol", "category", "interface", "local_ip", "other_ip",
        "local_port", "other_port", "ip_protocol", "ip_version", "vlan_id", "local_mac",
        "other_mac", "other_type", "host_server_name", "local_asn", "other_asn",
        "local_as_name", "other_as_name", "local_country", "other_country"]
n = 3
emit = true

[[threshold]]
name = "key"
metric = "every-key"
value = 1

[[threshold]]
name = "flow"
metric = "total_rate"
value = 1

[[threshold]]
name = "link"
metric = "rx_bytes_per_sec"
value = 1

[[sink]]
type = "socket"
endpoint = "unix://{sock}"
token = "{TOKEN}"
"#,
        asn = fixture("geo/asn.tsv"),
        country = fixture("geo/country.tsv"),
        sock = sock.display(),
    );
    std::fs::write(&config, config_text).unwrap();
    let agent = Command::new(flowstatd())
        .arg("replay")
        .arg("-c")
        .arg(&config)
        .args(corpus())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let refused = client(&sock, "wrong");
    let text = client(&sock, TOKEN);
    let out = agent.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut fields = BTreeSet::new();
    for line in refused.lines().chain(text.lines()) {
        let record: Value = serde_json::from_str(line).unwrap();
        let kind = record["type"].as_str().unwrap().to_owned();
        collect(&kind, "", &record, &mut fields);
    }
    fields
}

fn lines(fields: &BTreeSet<&Field>) -> String {
    fields
        .iter()
        .map(|(kind, path)| format!("  {kind}: {path}\n"))
        .collect()
}

#[test]
fn docs_records_lists_every_field_the_agent_writes_and_no_other() {
    let (emitted, documented) = (emitted(), documented());
    let live: BTreeSet<Field> = LIVE_ONLY
        .iter()
        .map(|f| ("interface_stats".to_owned(), format!("<interface>.{f}")))
        .collect();
    let undocumented: BTreeSet<&Field> = emitted.difference(&documented).collect();
    let unwritten: BTreeSet<&Field> = documented
        .difference(&emitted)
        .filter(|f| !live.contains(*f))
        .collect();
    assert!(
        undocumented.is_empty() && unwritten.is_empty(),
        "fields written but not in docs/records.md:\n{}\
         fields in docs/records.md never written:\n{}",
        lines(&undocumented),
        lines(&unwritten)
    );
    // The live-only list stays exact: documented, and never written here.
    let stale: BTreeSet<&Field> = live
        .iter()
        .filter(|f| !documented.contains(*f) || emitted.contains(*f))
        .collect();
    assert!(
        stale.is_empty(),
        "live-only fields not documented or written by a replay:\n{}",
        lines(&stale)
    );
    let kinds: BTreeSet<&str> = emitted.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "agent_hello",
            "agent_status",
            "aggregate",
            "error",
            "event",
            "flow",
            "flow_purge",
            "flow_stats",
            "interface_stats",
        ]),
        "every record type"
    );
}
