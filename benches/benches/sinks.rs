//! Encode and fan-out: flow_stats records encoded by the core plugin,
//! published to the sink runtime, and delivered by one sink thread to a
//! consumer reading on loopback: a ZeroMQ subscriber, and a Unix socket
//! client. Records per second, end to end (an iteration ends when the
//! consumer has every record).

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::{SINK_BATCH, publish_flow_stats, thread_cpu_secs};
use flowstat_core::{KindSet, Records, Sink};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::{
    SinkOptions, SinkRuntime, SocketEndpoint, SocketOptions, SocketSink, ZmqOptions, ZmqSink,
};

/// Records per iteration.
const BATCH: u64 = SINK_BATCH;

/// A runtime with `sink` and a consumer thread counting what it receives.
struct Rig {
    runtime: SinkRuntime,
    received: Arc<AtomicU64>,
    published: u64,
}

impl Rig {
    fn new(sink: Box<dyn Sink>, consume: impl FnOnce(Arc<AtomicU64>) + Send + 'static) -> Self {
        let mut runtime = SinkRuntime::new();
        let options = SinkOptions {
            queue_records: 1 << 20,
            queue_bytes: 1 << 30,
            ..SinkOptions::new(KindSet::ALL)
        };
        runtime.add(sink, options).expect("sink thread");
        let received = Arc::new(AtomicU64::new(0));
        let r = Arc::clone(&received);
        std::thread::spawn(move || consume(r));
        Rig {
            runtime,
            received,
            published: 0,
        }
    }

    /// Encodes and publishes BATCH flow_stats records, then waits for the
    /// consumer to have them all.
    fn round(&mut self, plugin: &mut CorePlugin, out: &mut Records) {
        publish_flow_stats(plugin, out, &self.runtime);
        self.published += BATCH;
        let start = Instant::now();
        while self.received.load(Ordering::Relaxed) < self.published {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "consumer stalled"
            );
            // Not a spin: on two cores it would starve the sink thread.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("sinks");
    g.throughput(Throughput::Elements(BATCH));
    let mut plugin = CorePlugin::default();
    let mut out = Records::default();

    let endpoint = format!("ipc:///tmp/flowstat-bench-{}.zmq", std::process::id());
    let mut zmq_rig = Rig::new(Box::new(ZmqSink::new(ZmqOptions::new(&endpoint))), {
        let endpoint = endpoint.clone();
        move |received| {
            let ctx = zmq::Context::new();
            let sub = ctx.socket(zmq::SUB).expect("SUB socket");
            sub.set_rcvhwm(0).expect("hwm");
            sub.set_subscribe(b"").expect("subscribe");
            sub.connect(&endpoint).expect("connect");
            while sub.recv_multipart(0).is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    g.bench_function("flow_stats to zmq PUB, subscriber reading", |b| {
        b.iter(|| zmq_rig.round(&mut plugin, &mut out))
    });
    report(zmq_rig.runtime);

    let path = std::env::temp_dir().join(format!("flowstat-bench-{}.sock", std::process::id()));
    let socket = SocketSink::new(SocketOptions::new(
        SocketEndpoint::Unix(path.clone()),
        Vec::new(),
    ));
    let mut unix_rig = Rig::new(Box::new(socket), move |received| {
        let stream = UnixStream::connect(&path).expect("connect");
        let mut lines = BufReader::with_capacity(1 << 20, stream);
        let mut line = Vec::new();
        while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            received.fetch_add(1, Ordering::Relaxed);
            line.clear();
        }
    });
    g.bench_function("flow_stats to unix socket, client reading", |b| {
        b.iter(|| unix_rig.round(&mut plugin, &mut out))
    });
    report(unix_rig.runtime);
    g.finish();
}

/// Prints what the sink thread cost per record (its own CPU time, which on
/// a small machine shares the cores with the encoder and the consumer).
/// Nothing may have been dropped: the rate is of delivered records.
fn report(runtime: SinkRuntime) {
    let cpu = thread_cpu_secs("flowstat-sink0");
    for s in runtime.finish(Duration::from_secs(5)) {
        assert_eq!(s.dropped, 0, "{}: records dropped", s.name);
        eprintln!(
            "{}: {} records sent, 0 dropped; sink thread CPU {cpu:.2} s = {:.2} M records per CPU second",
            s.name,
            s.sent,
            s.sent as f64 / cpu / 1e6
        );
    }
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
