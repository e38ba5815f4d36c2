//! Records validate against the Netify Agent v5 JSON Schemas (the
//! compatibility contract), checked with Python's `jsonschema`.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::{TempDir, all_tunnels, corpus, fixture, replay_lines};

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

#[test]
fn records_validate_against_the_netify_v5_schemas() {
    // At most 100 records of each type, from the whole corpus.
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in replay_lines(&corpus(), &all_tunnels()) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let t = v["type"].as_str().unwrap().to_owned();
        let list = kept.entry(t).or_default();
        if list.len() < 100 {
            list.push(line);
        }
    }
    assert_eq!(kept.len(), 5, "all five record types: {:?}", kept.keys());
    let tmp = TempDir::new("schema");
    let records = tmp.path("records.jsonl");
    let all: Vec<String> = kept.into_values().flatten().collect();
    std::fs::write(&records, all.join("\n") + "\n").unwrap();
    let schemas = fixture("schemas/netify-v5");
    let out = Command::new("python3")
        .args([
            "-c",
            VALIDATE,
            &schemas.to_string_lossy(),
            &records.to_string_lossy(),
        ])
        .output()
        .expect("python3 with jsonschema is needed; install it with .ci/deps");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schema errors:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("validated: {stdout}");
}
