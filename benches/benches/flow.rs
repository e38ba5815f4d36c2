//! Flow table throughput: packets observed per second on the corpus mix,
//! with an update-interval tick every 15 s of packet time.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::mixed_round;
use flowstat_core::{PacketMeta, PortGuess, Timestamp};
use flowstat_decode::{DecodeConfig, decode};
use flowstat_flow::{FlowConfig, FlowTable, LocalNetworks};
use std::hint::black_box;

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
    let mut g = c.benchmark_group("flow");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("observe mixed corpus", |b| {
        b.iter_batched_ref(
            || {
                FlowTable::new(
                    "bench",
                    FlowConfig::default(),
                    LocalNetworks::default(),
                    PortGuess,
                )
            },
            |table| {
                let mut events = 0u64;
                let mut emit =
                    |_: flowstat_core::FlowEvent, _: &flowstat_core::FlowView<'_>| events += 1;
                let mut next_tick = Timestamp::from_secs(15);
                for p in &packets {
                    if p.ts >= next_tick {
                        table.tick(next_tick, &mut emit);
                        next_tick = next_tick.saturating_add(std::time::Duration::from_secs(15));
                    }
                    table.observe(p, &mut emit);
                }
                table.drain(&mut emit);
                black_box(events)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
