//! The whole packet path, single-threaded: frames in memory through decode,
//! the flow table and the core plugin (JSON encoding included) into a sink
//! that discards; in packets per second. Also the cost of one record.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::mixed_round;
use flowstat_core::{
    AddrClass, CaptureStats, Detection, Endpoint, FlowEvent, FlowView, KindSet, OtherType, Plugin,
    Protocol, PurgeReason, Record, RecordKind, SideStats, Sink, SinkError, SourceInfo, TcpCounters,
    Timestamp,
};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::SinkSet;
use flowstatd::{Config, Engine, EngineConfig};
use std::hint::black_box;

/// Counts bytes and forgets the records.
struct Discard(u64);

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }
    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        self.0 += record.json.len() as u64;
        Ok(())
    }
}

fn replay(c: &mut Criterion) {
    let (frames, _) = mixed_round();
    let cfg = Config::default();
    let engine_cfg = EngineConfig {
        update_interval: cfg.update_interval(),
        flows: cfg.flow_config(),
        decode: cfg.decode_config(),
        locals: cfg.local_networks(),
        resource_usage: false,
    };
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
                    let mut sinks = SinkSet::new();
                    sinks.add(Box::new(Discard(0)), kinds);
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
                        run.frame(&frame).expect("discarding sink never fails");
                    }
                    run.end(CaptureStats::default())
                        .expect("discarding sink never fails");
                    black_box(engine.finish().is_ok())
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn records(c: &mut Criterion) {
    let prev = [[1u8; 20]];
    let view = FlowView {
        ip_version: 4,
        ip_protocol: 6,
        vlan_id: 0,
        ip_dscp: 0,
        local: Endpoint {
            ip: std::net::Ipv4Addr::new(192, 168, 1, 20).into(),
            port: 51234,
            mac: [2, 0, 0, 0, 0, 1],
            class: AddrClass::Private,
        },
        other: Endpoint {
            ip: std::net::Ipv4Addr::new(142, 250, 74, 110).into(),
            port: 443,
            mac: [2, 0, 0, 0, 0, 2],
            class: AddrClass::Public,
        },
        other_type: OtherType::Remote,
        local_origin: true,
        first_seen: Timestamp::from_secs(1_700_000_000),
        last_seen: Timestamp::from_secs(1_700_000_014),
        digest: [0xab; 20],
        digest_prev: &prev,
        detection: Detection {
            protocol: Protocol(91),
            application: 0,
            application_name: "Unknown",
            guessed: true,
            packets: 32,
            host_server_name: "",
        },
        local_stats: SideStats {
            bytes: 52_311,
            packets: 140,
            rate: 3_487,
            total_bytes: 1_052_311,
            total_packets: 4_140,
        },
        other_stats: SideStats {
            bytes: 1_311_000,
            packets: 901,
            rate: 87_400,
            total_bytes: 91_311_000,
            total_packets: 60_901,
        },
        tcp: Some(TcpCounters {
            resets: 0,
            retrans: 3,
            seq_errors: 1,
        }),
    };
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
