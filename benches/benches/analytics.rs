//! Analytics at scale (issue: 1M flows and 10 flow definitions): what the
//! workers' tallies cost per flow at an interval's end (counting each
//! flow's `flow_stats`, then handing the interval over; two workers side
//! by side), what the reducer's merge, top-N and threshold checks cost
//! for the whole interval, and the two together: the interval's end. The
//! per-packet path is measured whole-process by
//! `benches/replay-harness.sh` (same capture with and without definitions).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use flowstat_geo::GeoDb;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowstat_analytics::{
    DefinitionConfig, Reducer, Shared, Spec, Tally, TallyPart, ThresholdConfig,
};
use flowstat_benches::sample_flow;
use flowstat_core::{FlowEvent, PurgeReason, SourceInfo, Timestamp};

const FLOWS: u32 = 1_000_000;

/// The agent's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ten definitions, from a handful of keys (protocol) to one per flow
/// (local and other address and port).
const MIXED: [&[&str]; 10] = [
    &["application"],
    &["protocol"],
    &["category"],
    &["application", "protocol"],
    &["other_ip"],
    &["local_ip"],
    &["local_ip", "other_ip"],
    &["other_port"],
    &["other_ip", "other_port"],
    &["local_ip", "local_port", "other_ip", "other_port"],
];

/// Ten definitions of a few keys each (what a dashboard shows).
const FEW_KEYS: [&[&str]; 10] = [
    &["application"],
    &["protocol"],
    &["category"],
    &["application", "protocol"],
    &["other_port"],
    &["vlan_id"],
    &["interface"],
    &["ip_protocol"],
    &["other_type"],
    &["protocol", "other_port"],
];

fn spec(defs: &[&[&str]]) -> Spec {
    let definitions = defs
        .iter()
        .enumerate()
        .map(|(i, keys)| DefinitionConfig {
            name: format!("d{i}"),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            value: "bytes".into(),
            filter: Default::default(),
            n: 20,
            emit: true,
        })
        .collect();
    let threshold = |name: &str, metric: &str| ThresholdConfig {
        name: name.into(),
        metric: metric.into(),
        value: 1_000_000,
        by_flow: true,
        lock: false,
    };
    let thresholds = vec![threshold("d4", "d4"), threshold("flows", "total_rate")];
    Spec::new(definitions, thresholds, 20).expect("bench settings")
}

/// Two workers' tallies.
fn tallies(shared: &Shared) -> [Tally; 2] {
    let geo = Arc::new(ArcSwap::from_pointee(GeoDb::empty()));
    [
        Tally::new(shared.clone(), geo.clone()),
        Tally::new(shared.clone(), geo),
    ]
}

/// Each worker's share of an interval: its half of 1M flows' `flow_stats`
/// (the same flows every interval, as on a network of long flows), or
/// their `flow_purge` (every interval's flows new: each flow is counted
/// once, and its slot in the table goes to the next interval's). The two
/// workers count side by side, on threads of their own, as in the agent.
fn tally(tallies: &mut [Tally; 2], event: FlowEvent) -> Vec<TallyPart> {
    let [first, second] = tallies;
    std::thread::scope(|s| {
        let second = s.spawn(move || count(second, 1, event));
        let first = count(first, 0, event);
        let second = second
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        vec![first, second]
    })
}

/// Worker `w`'s half of the flows, and its share.
fn count(tally: &mut Tally, w: u32, event: FlowEvent) -> TallyPart {
    let source = SourceInfo {
        interface: "eth0",
        internal: true,
    };
    let mut view = sample_flow();
    for i in (w..FLOWS).step_by(2) {
        let [_, a, b, c] = i.to_be_bytes();
        view.local.ip = Ipv4Addr::new(10, a, b, c).into();
        view.other.ip = Ipv4Addr::new(203, 0, (i % 200) as u8, (i % 250) as u8).into();
        view.local.port = 1024 + (i % 60_000) as u16;
        view.digest[..4].copy_from_slice(&i.to_be_bytes());
        view.slot = i / 2;
        view.local_stats.bytes = u64::from(i % 1500);
        tally.flow(&source, event, &view);
    }
    tally.take()
}

/// A flow's end, for every interval's flows new.
const PURGED: FlowEvent = FlowEvent::Purged {
    reason: PurgeReason::Expired,
    evicted: false,
};

fn analytics(c: &mut Criterion) {
    let mut g = c.benchmark_group("analytics");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(FLOWS)));
    for (name, defs) in [
        ("3 with a key per flow", MIXED),
        ("few keys each", FEW_KEYS),
    ] {
        let shared = Shared::new(spec(&defs));
        // The workers' tallies go on from one interval to the next, as in
        // the agent.
        let mut workers = tallies(&shared);
        let mut reducer = Reducer::new(shared.clone());
        let mut at = 0;
        for (flows, event) in [("flows", FlowEvent::Stats), ("new flows", PURGED)] {
            g.bench_function(
                format!("tally 1M {flows}, 10 definitions ({name}), 2 workers side by side"),
                |b| b.iter(|| black_box(tally(&mut workers, event))),
            );
            g.bench_function(
                format!("reduce the interval end of 1M {flows}, 10 definitions ({name})"),
                |b| {
                    b.iter_batched(
                        || tally(&mut workers, event),
                        |parts| {
                            at += 15;
                            black_box(reducer.reduce(parts, Timestamp::from_secs(at), 15, &[]))
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
            g.bench_function(
                format!("interval end of 1M {flows}, 10 definitions ({name}): tallies, reducer"),
                |b| {
                    b.iter(|| {
                        at += 15;
                        let parts = tally(&mut workers, event);
                        black_box(reducer.reduce(parts, Timestamp::from_secs(at), 15, &[]))
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, analytics);
criterion_main!(benches);
