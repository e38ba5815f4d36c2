//! flowstat's TCP counters against tshark's sequence analysis, on every
//! capture of the corpus, per conversation: `retrans` against the frames
//! tshark flags as a retransmission, fast retransmission or spurious
//! retransmission, `resets` against the frames with RST, `seq_errors`
//! against the frames flagged "previous segment not captured" or
//! "out-of-order" (`docs/records.md`, "TCP counters"). flowstat's side is
//! `tcp_total` of each flow's `flow_purge`, summed over the flows of a
//! 5-tuple; it must also equal the flow's `tcp` counters summed over its
//! records. Each disagreement is listed with its reason in
//! `fixtures/tcp-disagreements.tsv`, which is kept exact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::{Conv, End, FIELDS, conv, first_digest, innermost_transport};
use crate::common::{all_tunnels, assert_listed, corpus, oracle, rel, replay};

/// Accepted disagreements, each with its reason.
const DISAGREEMENTS: &str = "tcp-disagreements.tsv";

/// A conversation's TCP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Counts {
    retrans: u64,
    resets: u64,
    seq_errors: u64,
}

impl Counts {
    fn of(tcp: &Value) -> Counts {
        let n = |k: &str| tcp[k].as_u64().unwrap_or_else(|| panic!("tcp.{k}: {tcp}"));
        Counts {
            retrans: n("retrans"),
            resets: n("resets"),
            seq_errors: n("seq_errors"),
        }
    }

    fn add(&mut self, b: Counts) {
        self.retrans += b.retrans;
        self.resets += b.resets;
        self.seq_errors += b.seq_errors;
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "retrans={} resets={} seq_errors={}",
            self.retrans, self.resets, self.seq_errors
        )
    }
}

/// An endpoint as the list writes it: `ip:port`, `[ipv6]:port`.
fn endpoint((ip, port): &End) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// flowstat's counters per conversation: `tcp_total` of each
/// `flow_purge`. Fails unless each flow's `tcp` counters, summed over its
/// `flow_stats` and `flow_purge`, equal its `tcp_total`.
fn flowstat_counts(file: &Path) -> BTreeMap<Conv, Counts> {
    let records = replay(&[file.to_owned()], &all_tunnels());
    let mut intervals: BTreeMap<String, Counts> = BTreeMap::new();
    let mut out: BTreeMap<Conv, Counts> = BTreeMap::new();
    for r in &records {
        let f = &r["flow"];
        if (r["type"] != "flow_stats" && r["type"] != "flow_purge") || f.get("tcp").is_none() {
            continue;
        }
        let digest = first_digest(f);
        intervals
            .entry(digest.clone())
            .or_default()
            .add(Counts::of(&f["tcp"]));
        if r["type"] != "flow_purge" {
            continue;
        }
        let total = Counts::of(&f["tcp_total"]);
        assert_eq!(
            intervals.remove(&digest),
            Some(total),
            "{}: flow {digest}: its records' tcp counters add up to its tcp_total",
            rel(file)
        );
        let end = |ip: &str, port: &str| -> End {
            (
                f[ip].as_str().expect("ip").to_owned(),
                f[port].as_u64().expect("port") as u16,
            )
        };
        let c = conv(
            6,
            end("local_ip", "local_port"),
            end("other_ip", "other_port"),
        );
        out.entry(c).or_default().add(total);
    }
    assert!(intervals.is_empty(), "flows without a purge: {intervals:?}");
    out
}

/// tshark's analysis flags per conversation, from each frame's innermost
/// IP header and the TCP header right after it.
fn tshark_counts(file: &Path) -> BTreeMap<Conv, Counts> {
    const ANALYSIS: [&str; 6] = [
        "tcp.analysis.retransmission",
        "tcp.analysis.fast_retransmission",
        "tcp.analysis.spurious_retransmission",
        "tcp.analysis.lost_segment",
        "tcp.analysis.out_of_order",
        "tcp.flags.reset",
    ];
    let path = file.to_string_lossy();
    let mut args = vec!["-r", &path, "--disable-protocol", "teredo", "-T", "fields"];
    for f in FIELDS.iter().chain(&ANALYSIS) {
        args.extend(["-e", f]);
    }
    let text = oracle("tshark", &args);
    let mut out: BTreeMap<Conv, Counts> = BTreeMap::new();
    let width = FIELDS.len() + ANALYSIS.len();
    for line in text.lines() {
        let v: Vec<&str> = line
            .split('\t')
            .chain(std::iter::repeat(""))
            .take(width)
            .collect();
        let Some((c, _)) = innermost_transport(&v) else {
            continue;
        };
        if c.0 != 6 {
            continue;
        }
        let flagged = |i: usize| !v[FIELDS.len() + i].is_empty();
        let reset = v[width - 1].rsplit(',').next().unwrap_or_default();
        out.entry(c).or_default().add(Counts {
            retrans: u64::from(flagged(0) || flagged(1) || flagged(2)),
            resets: u64::from(matches!(reset, "1" | "True")),
            seq_errors: u64::from(flagged(3) || flagged(4)),
        });
    }
    out
}

/// One conversation where flowstat and tshark disagree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Disagreement {
    capture: String,
    conversation: String,
    flowstat: String,
    tshark: String,
}

impl Disagreement {
    /// Its columns in the list.
    fn columns(&self) -> Vec<String> {
        [
            &self.capture,
            &self.conversation,
            &self.flowstat,
            &self.tshark,
        ]
        .map(String::clone)
        .to_vec()
    }
}

/// Every TCP conversation of every capture: flowstat's counters equal
/// tshark's, or the conversation is listed with the reason. An unlisted
/// disagreement fails, and so does a listed one that no longer happens.
#[test]
fn tcp_counters_equal_tshark_analysis_or_are_listed() {
    let mut found = Vec::new();
    let (mut compared, mut retrans, mut resets, mut seq_errors) = (0, 0, 0, 0);
    let mut flagged = Counts::default();
    for file in corpus() {
        let (ours, theirs) = (flowstat_counts(&file), tshark_counts(&file));
        let keys: BTreeSet<&Conv> = ours.keys().chain(theirs.keys()).collect();
        for c in keys {
            let (a, b) = (
                ours.get(c).copied().unwrap_or_default(),
                theirs.get(c).copied().unwrap_or_default(),
            );
            compared += 1;
            retrans += u32::from(a.retrans == b.retrans);
            resets += u32::from(a.resets == b.resets);
            seq_errors += u32::from(a.seq_errors == b.seq_errors);
            flagged.add(b);
            if a != b {
                found.push(Disagreement {
                    capture: rel(&file),
                    conversation: format!("{} {}", endpoint(&c.1), endpoint(&c.2)),
                    flowstat: a.to_string(),
                    tshark: b.to_string(),
                });
            }
        }
    }
    println!(
        "{compared} TCP conversations: retrans equal in {retrans}, resets in {resets}, \
         seq_errors in {seq_errors}; {} disagree (tshark flagged {flagged})",
        found.len()
    );
    assert_listed(
        DISAGREEMENTS,
        &found.iter().map(Disagreement::columns).collect(),
    );
    assert!(compared >= 900, "only {compared} conversations compared");
    // The corpus exercises every counter.
    assert!(
        flagged.retrans >= 100 && flagged.resets >= 100 && flagged.seq_errors >= 100,
        "tshark flagged {flagged}"
    );
}
