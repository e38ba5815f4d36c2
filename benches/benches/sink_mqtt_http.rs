//! The MQTT and HTTP sinks: flow_stats records encoded by the core
//! plugin, published to the sink runtime and delivered by one sink thread
//! to a local peer that acknowledges them: a mosquitto broker (QoS 1:
//! PUBACK; QoS 0: on the socket) and an HTTP collector answering 200
//! (batches of 1,000, plain and gzip). Records per second, end to end (an
//! iteration ends when the sink has counted every record sent), and the
//! sink thread's CPU per record.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::{SINK_BATCH, publish_flow_stats, thread_cpu_secs};
use flowstat_core::{KindSet, Records, Sink};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::{HttpOptions, HttpSink, MqttOptions, MqttSink, Qos, SinkOptions, SinkRuntime};
use flowstat_tests::collector::Collector;
use flowstat_tests::mosquitto::Broker;

/// Records per iteration.
const BATCH: u64 = SINK_BATCH;

/// A runtime with one sink; an iteration publishes BATCH records and
/// waits until the sink has settled them all.
struct Rig {
    runtime: SinkRuntime,
    published: u64,
}

impl Rig {
    fn new(sink: Box<dyn Sink>) -> Self {
        let mut runtime = SinkRuntime::new();
        let options = SinkOptions {
            queue_records: 1 << 20,
            queue_bytes: 1 << 30,
            ..SinkOptions::new(KindSet::ALL)
        };
        runtime.add(sink, options).expect("sink thread");
        Rig {
            runtime,
            published: 0,
        }
    }

    fn round(&mut self, plugin: &mut CorePlugin, out: &mut Records) {
        publish_flow_stats(plugin, out, &self.runtime);
        self.published += BATCH;
        let start = Instant::now();
        loop {
            let s = &self.runtime.status()[0];
            assert_eq!(s.dropped, 0, "{}: records dropped", s.name);
            if s.sent >= self.published {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "peer stalled");
            // Not a spin: on two cores it would starve the sink thread.
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Prints what the sink thread cost per record (its own CPU time,
    /// which shares the cores with the encoder and the peer).
    fn report(self) {
        let cpu = thread_cpu_secs("flowstat-sink0");
        for s in self.runtime.finish(Duration::from_secs(5)) {
            assert_eq!(s.dropped, 0, "{}: records dropped", s.name);
            eprintln!(
                "{}: {} records sent, 0 dropped; sink thread CPU {cpu:.2} s = {:.2} us per \
                 record, {:.2} M records per CPU second",
                s.name,
                s.sent,
                cpu * 1e6 / s.sent as f64,
                s.sent as f64 / cpu / 1e6
            );
        }
    }
}

fn mqtt_and_http(c: &mut Criterion) {
    let mut g = c.benchmark_group("sink_mqtt_http");
    g.throughput(Throughput::Elements(BATCH));
    let mut plugin = CorePlugin::default();
    let mut out = Records::default();

    let broker = Broker::start("bench");
    for (qos, label) in [
        (Qos::AtLeastOnce, "flow_stats to mosquitto, QoS 1 (PUBACK)"),
        (Qos::AtMostOnce, "flow_stats to mosquitto, QoS 0"),
    ] {
        let mut options = MqttOptions::new("127.0.0.1", broker.port);
        options.qos = qos;
        options.hostname = "bench".into();
        let mut rig = Rig::new(Box::new(MqttSink::new(options)));
        g.bench_function(label, |b| b.iter(|| rig.round(&mut plugin, &mut out)));
        rig.report();
    }

    let collector = Collector::counting();
    for (gzip, label) in [
        (false, "flow_stats to an HTTP collector, batches of 1000"),
        (
            true,
            "flow_stats to an HTTP collector, gzip batches of 1000",
        ),
    ] {
        let mut options = HttpOptions::new(&collector.url("/ingest"));
        options.gzip = gzip;
        let mut rig = Rig::new(Box::new(HttpSink::new(options)));
        g.bench_function(label, |b| b.iter(|| rig.round(&mut plugin, &mut out)));
        rig.report();
    }
    assert!(collector.lines_accepted() > 0);
    g.finish();
}

criterion_group!(benches, mqtt_and_http);
criterion_main!(benches);
