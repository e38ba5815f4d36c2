//! Every record of the corpus validates against the Netify Agent v5 JSON
//! Schemas (the compatibility contract), checked with Python's
//! `jsonschema`, and carries the digests SPEC section 2 defines, checked
//! with Python's `hashlib`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::{all_tunnels, corpus, fixture, replay_lines};

const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schemas, records = sys.argv[1], sys.argv[2]
names = {"flow": "flow", "flow_stats": "flow-stats", "flow_purge": "flow-purge",
         "agent_status": "agent-status", "interface_stats": "interface-stats"}
validators = {t: Draft202012Validator(json.load(open(f"{schemas}/netify-telemetry-{n}.json")))
              for t, n in names.items()}
checked, failed = {}, 0
for line in open(records):
    r = json.loads(line)
    for e in validators[r["type"]].iter_errors(r):
        failed += 1
        print(f"{r['type']}: {e.message} at {list(e.absolute_path)}")
    checked[r["type"]] = checked.get(r["type"], 0) + 1
print(json.dumps(checked))
sys.exit(1 if failed else 0)
"#;

/// Checks the digests of `flow` and `flow_purge` records (which name the
/// flow's endpoints): the first digest, `digest_prev[0]` or `digest` while
/// there is none, is the SHA-1 of the flow's identity; a `flow` record
/// that names a protocol, an application or a host carries the digest
/// that adds them.
const DIGESTS: &str = r#"
import hashlib, ipaddress, json, sys
checked, failed = 0, 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] not in ("flow", "flow_purge"):
        continue
    f = r["flow"]
    ends = sorted([(ipaddress.ip_address(f["local_ip"]).packed, f["local_port"]),
                   (ipaddress.ip_address(f["other_ip"]).packed, f["other_port"])])
    ident = (r["interface"].encode() + bytes([f["ip_version"], f["ip_protocol"]])
             + f["vlan_id"].to_bytes(2, "big") + ends[0][0] + ends[1][0]
             + ends[0][1].to_bytes(2, "big") + ends[1][1].to_bytes(2, "big"))
    first = hashlib.sha1(ident).hexdigest()
    prev = f["digest_prev"]
    want = [(first, (prev or [f["digest"]])[0], "the first digest")]
    host = f.get("host_server_name") or f.get("dns_host_name") or ""
    if r["type"] == "flow" and (f["detected_protocol"] or f["detected_application"] or host):
        detected = (f["detected_protocol"].to_bytes(2, "big")
                    + f["detected_application"].to_bytes(4, "big") + host.encode())
        want.append((hashlib.sha1(ident + detected).hexdigest(), f["digest"], "the digest"))
    for expect, got, what in want:
        if expect != got:
            failed += 1
            print(f"{r['interface']} {r['type']} {f['local_ip']}:{f['local_port']} "
                  f"{f['other_ip']}:{f['other_port']}: {what} is {got}, not {expect}")
    checked += 1
print(f"{checked} records")
sys.exit(1 if failed else 0)
"#;

/// Every record of the corpus replayed, one per line, in a file of
/// Cargo's directory for tests (each run writes it again). Not a
/// `TempDir`: a static is never dropped, and each run left its 13 MB in
/// /tmp.
fn corpus_records() -> &'static PathBuf {
    static RECORDS: OnceLock<PathBuf> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corpus-records.jsonl");
        let lines = replay_lines(&corpus(), &all_tunnels());
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    })
}

fn python(script: &str, args: &[&std::path::Path]) -> Output {
    Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python3 with jsonschema is needed; install it with .ci/deps")
}

#[test]
fn every_record_validates_against_the_netify_v5_schemas() {
    let out = python(VALIDATE, &[&fixture("schemas/netify-v5"), corpus_records()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schema errors:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let total: u64 = checked
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    let lines = std::fs::read_to_string(corpus_records())
        .unwrap()
        .lines()
        .count();
    assert_eq!(total, lines as u64, "every record was checked: {checked}");
    assert_eq!(
        checked.as_object().unwrap().len(),
        5,
        "all five types: {checked}"
    );
}

#[test]
fn every_flow_record_carries_the_digests_of_its_identity_and_detection() {
    let out = python(DIGESTS, &[corpus_records()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "digest errors:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
