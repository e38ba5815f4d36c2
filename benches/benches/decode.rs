//! Decode throughput on the corpus's frames (packets per second).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowstat_benches::mixed_round;
use flowstat_core::PacketMeta;
use flowstat_decode::{DecodeConfig, decode};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (frames, _) = mixed_round();
    let cfg = DecodeConfig {
        ip_in_ip: true,
        gre: true,
        vxlan: true,
        ..DecodeConfig::default()
    };
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("mixed corpus", |b| {
        b.iter(|| {
            for f in &frames {
                let frame = f.frame();
                let mut pkt = PacketMeta::new(f.ts, f.wire_len);
                let _ = black_box(decode(&frame, &cfg, &mut pkt));
                black_box(&pkt);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
