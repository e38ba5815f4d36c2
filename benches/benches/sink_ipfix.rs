//! The IPFIX sink: records per second of the sink's CPU, the bar being
//! 500k per second of its thread.
//!
//! The records are the core plugin's, for flows that each have a `flow`
//! record, eight `flow_stats` 15 s apart and a `flow_purge` (ten records,
//! two data records: one at the 120 s active timeout, one at the purge).
//! Two measures, a collector thread reading the datagrams on loopback:
//! - `write`: `IpfixSink::write` called in a loop on the bench thread,
//!   which is then the sink's thread: records per second of it;
//! - `runtime`: published to the sink runtime, delivered by its sink
//!   thread (an iteration ends when the runtime counts every record
//!   sent); the thread's CPU time per record is printed at the end.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::{sample_flow, thread_cpu_secs};
use flowstat_core::{
    FlowEvent, KindSet, Metadata, Plugin, PurgeReason, Record, RecordKind, Records, Sink,
    SourceInfo, Timestamp,
};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::{IpfixOptions, IpfixSink, SinkOptions, SinkRuntime};

/// Flows per iteration, and records per flow.
const FLOWS: u64 = 2_000;
const RECORDS_PER_FLOW: u64 = 10;

/// The records of [`FLOWS`] flows, in the order an agent sends them: the
/// `flow` records, eight rounds of `flow_stats`, the purges.
fn workload() -> Vec<Record> {
    let mut plugin = CorePlugin::default();
    let mut out = Records::default();
    let source = SourceInfo {
        interface: "eth0",
        internal: true,
    };
    let meta = Metadata {
        host_server_name: "www.example.com".into(),
        ..Metadata::none().clone()
    };
    let base = sample_flow();
    let start = base.first_seen;
    let flow = |i: u64, step: u64| {
        let mut f = sample_flow();
        f.digest[..8].copy_from_slice(&i.to_be_bytes());
        f.local.port = 1024 + (i % 60_000) as u16;
        f.detection.application_name = "Google";
        f.detection.meta = &meta;
        f.last_seen = Timestamp::from_nanos(start.as_nanos() + step * 15_000_000_000);
        f.local_stats.total_packets = 10 * (step + 1);
        f.local_stats.total_bytes = 1000 * (step + 1);
        f.other_stats.total_packets = 20 * (step + 1);
        f.other_stats.total_bytes = 30_000 * (step + 1);
        f
    };
    for i in 0..FLOWS {
        plugin.on_flow(&source, FlowEvent::Detected, &flow(i, 0), &mut out);
    }
    for step in 1..=8 {
        for i in 0..FLOWS {
            plugin.on_flow(&source, FlowEvent::Stats, &flow(i, step), &mut out);
        }
    }
    let purged = FlowEvent::Purged {
        reason: PurgeReason::Closed,
        evicted: false,
    };
    for i in 0..FLOWS {
        plugin.on_flow(&source, purged, &flow(i, 9), &mut out);
    }
    let records = out.take();
    assert_eq!(records.len() as u64, FLOWS * RECORDS_PER_FLOW);
    records
}

/// A collector on loopback counting the datagrams it reads.
fn collector() -> (String, Arc<AtomicU64>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = socket.local_addr().expect("address").to_string();
    let received = Arc::new(AtomicU64::new(0));
    let r = Arc::clone(&received);
    std::thread::spawn(move || {
        let mut buf = vec![0; 65_536];
        while socket.recv(&mut buf).is_ok() {
            r.fetch_add(1, Ordering::Relaxed);
        }
    });
    (address, received)
}

fn ipfix(c: &mut Criterion) {
    let records = workload();
    let kinds = |k: RecordKind| records.iter().filter(|r| r.kind == k).count();
    eprintln!(
        "{} records per iteration: {} flow, {} flow_stats, {} flow_purge; {} bytes of JSON",
        records.len(),
        kinds(RecordKind::Flow),
        kinds(RecordKind::FlowStats),
        kinds(RecordKind::FlowPurge),
        records.iter().map(|r| r.json.len()).sum::<usize>()
    );
    let mut g = c.benchmark_group("sink_ipfix");
    g.throughput(Throughput::Elements(records.len() as u64));

    let (address, received) = collector();
    let mut sink = IpfixSink::new(IpfixOptions::new(&address));
    sink.open().expect("open");
    g.bench_function("write, this thread", |b| {
        b.iter(|| {
            for r in &records {
                sink.write(r).expect("write");
            }
            sink.flush().expect("flush");
        })
    });
    let exported_per_iteration = 2 * FLOWS;
    assert_eq!(
        sink.exported() % exported_per_iteration,
        0,
        "two data records per flow"
    );
    eprintln!(
        "write: {} data records in {} messages; the collector read {} datagrams",
        sink.exported(),
        sink.messages(),
        received.load(Ordering::Relaxed)
    );

    let (address, received) = collector();
    let mut runtime = SinkRuntime::new();
    let options = SinkOptions {
        queue_records: 1 << 20,
        queue_bytes: 1 << 30,
        ..SinkOptions::new(KindSet::ALL)
    };
    runtime
        .add(
            Box::new(IpfixSink::new(IpfixOptions::new(&address))),
            options,
        )
        .expect("sink thread");
    let mut published = 0;
    g.bench_function("runtime, sink thread", |b| {
        b.iter(|| {
            runtime.publish(records.iter().cloned());
            published += records.len() as u64;
            let start = Instant::now();
            while runtime.status()[0].sent < published {
                assert!(start.elapsed() < Duration::from_secs(30), "sink stalled");
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    });
    g.finish();
    let cpu = thread_cpu_secs("flowstat-sink0");
    let status = runtime.finish(Duration::from_secs(5));
    let s = &status[0];
    assert_eq!(s.dropped, 0, "records dropped");
    eprintln!(
        "runtime: {} records sent; sink thread CPU {cpu:.2} s = {:.0} ns per record = {:.2} M \
         records per CPU second; the collector read {} datagrams",
        s.sent,
        cpu * 1e9 / s.sent as f64,
        s.sent as f64 / cpu / 1e6,
        received.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, ipfix);
criterion_main!(benches);
