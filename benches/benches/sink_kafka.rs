//! The Kafka sink: flow_stats records encoded by the core plugin,
//! published to the sink runtime, and produced by its sink thread to a
//! tansu broker on loopback (started here). Records per second, end to
//! end: an iteration ends when the broker has acknowledged every record.
//! Then the sink thread's CPU time per record, the figure its budget is
//! stated in (at least 500k records per second of that thread's CPU).

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::{SINK_BATCH, publish_flow_stats, thread_cpu_secs};
use flowstat_core::{KindSet, Records};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::{KafkaOptions, KafkaSink, SinkOptions, SinkRuntime};
use flowstat_tests::tansu::{Broker, Storage};

/// Records per iteration.
const BATCH: u64 = SINK_BATCH;

fn kafka(c: &mut Criterion) {
    let broker = Broker::start(
        "bench",
        Storage::Memory,
        &["flowstat.flow_stats".to_owned()],
        3,
    );
    let mut runtime = SinkRuntime::new();
    let options = SinkOptions {
        queue_records: 1 << 20,
        queue_bytes: 1 << 30,
        ..SinkOptions::new(KindSet::ALL)
    };
    let sink = KafkaSink::new(KafkaOptions::new(&[&broker.address()]));
    runtime.add(Box::new(sink), options).expect("sink thread");
    let mut plugin = CorePlugin::default();
    let mut out = Records::default();
    let mut published = 0;

    let mut g = c.benchmark_group("sink_kafka");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(20);
    g.bench_function("flow_stats to tansu, acknowledged", |b| {
        b.iter(|| {
            publish_flow_stats(&mut plugin, &mut out, &runtime);
            published += BATCH;
            let start = Instant::now();
            while runtime.status()[0].sent < published {
                let s = &runtime.status()[0];
                assert_eq!(s.dropped, 0, "records dropped: {}", broker.log());
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "the broker stalled"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    });
    g.finish();

    let cpu = thread_cpu_secs("flowstat-sink0");
    let s = &runtime.finish(Duration::from_secs(5))[0];
    assert_eq!(s.dropped, 0, "{}: records dropped", s.name);
    eprintln!(
        "{}: {} records acknowledged, 0 dropped; sink thread CPU {cpu:.2} s = {:.2} µs per \
         record = {:.2} M records per CPU second",
        s.name,
        s.sent,
        cpu * 1e6 / s.sent as f64,
        s.sent as f64 / cpu / 1e6
    );
}

criterion_group!(benches, kafka);
criterion_main!(benches);
