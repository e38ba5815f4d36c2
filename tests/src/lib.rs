//! flowstat's end-to-end tests live in `e2e/`. This library holds what
//! they share with the benches: the corpus of real captures in `fixtures/`,
//! and the peers that sinks deliver to: a Kafka-protocol broker
//! ([`tansu`]), a mosquitto broker, an HTTP collector.

use std::path::{Path, PathBuf};

pub mod certs;
pub mod collector;
pub mod mosquitto;
pub mod tansu;

/// `tests/fixtures`: the real captures (see its README for their origins).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every capture of the corpus (files named *.pcap or *.pcapng), sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixtures(), &mut out);
    out.sort();
    out
}
