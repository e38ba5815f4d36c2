//! The whole packet path, single-threaded: frames in memory through decode,
//! the flow table and the core plugin (JSON encoding included) into a sink
//! that discards; in packets per second. Also the cost of one record.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::{mixed_round, sample_flow};
use flowstat_core::{
    CaptureStats, Delivery, FlowEvent, KindSet, Plugin, PurgeReason, Record, RecordKind, Sink,
    SinkError, SourceInfo,
};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::{SinkOptions, SinkRuntime};
use flowstatd::{Config, Engine, EngineConfig};
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
    let (frames, _) = mixed_round();
    let cfg = Config::default();
    let engine_cfg = EngineConfig::from_config(&cfg, std::path::Path::new("(defaults)"), false)
        .expect("built-in application table");
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(frames.len() as u64));
    for (name, kinds) in [
        ("mixed corpus, all records", KindSet::ALL),
        (
            "mixed corpus, no per-flow records",
            KindSet::of(&[RecordKind::AgentStatus, RecordKind::InterfaceStats]),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut sinks = SinkRuntime::inline(false);
                    sinks
                        .add(Box::new(Discard(0)), SinkOptions::new(kinds))
                        .expect("sink thread");
                    Engine::new(
                        engine_cfg.clone(),
                        &|| vec![Box::new(CorePlugin::default()) as Box<dyn Plugin>],
                        sinks,
                    )
                },
                |mut engine| {
                    let mut run = engine.begin_source("bench", true);
                    for f in &frames {
                        let frame = f.frame();
                        run.frame(&frame);
                    }
                    run.end(CaptureStats::default());
                    black_box(engine.finish().finish(Duration::from_secs(10)))
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
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
