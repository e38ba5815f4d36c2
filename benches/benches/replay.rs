//! The whole replay path: a capture of the mixed corpus, every round's
//! flows new (a VLAN per round), read from the page cache, through decode,
//! the flow workers and the core plugin (JSON encoding included) into a
//! sink that discards; in packets per second, with one worker and with
//! two. Also the cost of one record.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::{sample_flow, write_capture};
use flowstat_core::{
    Delivery, FlowEvent, KindSet, Plugin, PurgeReason, Record, RecordKind, Sink, SinkError,
    SourceInfo,
};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::{SinkOptions, SinkRuntime};
use flowstatd::{Config, PipelineConfig, ReplayOptions};
use std::hint::black_box;
use std::time::Duration;

/// Counts bytes and forgets the records.
struct Discard(u64);

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }
    fn open(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        self.0 += record.json.len() as u64;
        Ok(Delivery::Sent)
    }
}

fn replay(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("flowstat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let capture = dir.join("vlan-rounds.pcap");
    let (packets, _) = write_capture(&capture, 8, None, true).expect("bench capture");
    let cfg = Config::default();
    let pipeline = PipelineConfig::from_config(&cfg, std::path::Path::new("(defaults)"), false)
        .expect("built-in application table");
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(packets));
    g.sample_size(10);
    for workers in [1, 2] {
        for (name, kinds) in [
            ("all records", KindSet::ALL),
            (
                "no per-flow records",
                KindSet::of(&[RecordKind::AgentStatus, RecordKind::InterfaceStats]),
            ),
        ] {
            let opts = ReplayOptions {
                files: vec![capture.clone()],
                workers,
                ..ReplayOptions::default()
            };
            g.bench_function(format!("every flow new, {name}, {workers} workers"), |b| {
                b.iter_batched(
                    || {
                        let mut sinks = SinkRuntime::inline(false);
                        sinks
                            .add(Box::new(Discard(0)), SinkOptions::new(kinds))
                            .expect("sink");
                        sinks
                    },
                    |sinks| {
                        let (_, sinks) =
                            flowstatd::replay(pipeline.clone(), &opts, sinks).expect("replay");
                        black_box(sinks.finish(Duration::from_secs(10)))
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn records(c: &mut Criterion) {
    let view = sample_flow();
    let source = SourceInfo {
        interface: "eth0",
        internal: true,
    };
    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Elements(1));
    for (name, event) in [
        ("flow", FlowEvent::Detected),
        ("flow_stats", FlowEvent::Stats),
        (
            "flow_purge",
            FlowEvent::Purged {
                reason: PurgeReason::Expired,
                evicted: false,
            },
        ),
    ] {
        g.bench_function(name, |b| {
            let mut plugin = CorePlugin::default();
            let mut out = flowstat_core::Records::default();
            b.iter(|| {
                plugin.on_flow(&source, event, black_box(&view), &mut out);
                out.drain(|r| {
                    black_box(r);
                    Ok::<(), ()>(())
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, replay, records);
criterion_main!(benches);
