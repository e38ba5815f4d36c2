//! Flow table throughput on the corpus mix, with an update-interval tick
//! every 15 s of packet time: packets per second without DPI, and the cost
//! of DPI per flow (the same packets with and without it, per flow).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::mixed_round;
use flowstat_core::{Classifier, FlowEvent, FlowView, PacketMeta, PortGuess, Timestamp};
use flowstat_decode::{DecodeConfig, decode};
use flowstat_dpi::{Applications, Engine, SharedDnsCache};
use flowstat_flow::{FlowConfig, FlowTable, LocalNetworks};

/// Runs every packet through a fresh table classified by `C`; returns
/// the `flow` records emitted.
fn run<C: Classifier>(table: &mut FlowTable<C>, packets: &[PacketMeta<'_>]) -> u64 {
    let mut flows = 0u64;
    let mut emit = |e: FlowEvent, v: &FlowView<'_>| {
        if e == FlowEvent::Detected {
            flows += 1;
            black_box(v.detection.meta.host_server_name.len());
        }
    };
    let mut next_tick = Timestamp::from_secs(15);
    for p in packets {
        if p.ts >= next_tick {
            table.expire(next_tick, &mut emit);
            table.report(next_tick, &mut emit);
            next_tick = next_tick.saturating_add(std::time::Duration::from_secs(15));
        }
        table.observe(p, &mut emit);
    }
    table.drain(&mut emit);
    flows
}

fn table<C: Classifier>(classifier: C) -> FlowTable<C> {
    FlowTable::new(
        "bench",
        FlowConfig::default(),
        LocalNetworks::default(),
        classifier,
    )
}

fn bench(c: &mut Criterion) {
    let (frames, _) = mixed_round();
    let cfg = DecodeConfig::default();
    let packets: Vec<PacketMeta<'_>> = frames
        .iter()
        .filter_map(|f| {
            let frame = f.frame();
            let mut pkt = PacketMeta::new(f.ts, f.wire_len);
            decode(&frame, &cfg, &mut pkt).ok().map(|()| pkt)
        })
        .collect();
    let apps = Arc::new(Applications::builtin().expect("built-in application table"));
    let engine = || Engine::new(Arc::clone(&apps), SharedDnsCache::new(65_536));

    let mut g = c.benchmark_group("flow");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("observe mixed corpus", |b| {
        b.iter_batched_ref(
            || table(PortGuess),
            |t| black_box(run(t, &packets)),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Per flow: the difference between the two is what DPI costs a flow.
    let flows = run(&mut table(PortGuess), &packets);
    let mut g = c.benchmark_group("dpi");
    g.throughput(Throughput::Elements(flows));
    g.bench_function("per flow, ports only", |b| {
        b.iter_batched_ref(
            || table(PortGuess),
            |t| black_box(run(t, &packets)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("per flow, with DPI", |b| {
        b.iter_batched_ref(
            || table(engine()),
            |t| black_box(run(t, &packets)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
