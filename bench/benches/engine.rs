//! Per-event matching cost of the engine with the embedded seed pack.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trawl_engine::load::RuleSources;
use trawl_engine::matcher::Scratch;

fn seed_pack(c: &mut Criterion) {
    let loaded = RuleSources {
        default_rules: true,
        ..Default::default()
    }
    .load()
    .expect("the seed pack is embedded");
    let rs = loaded.ruleset;
    let events = trawl_bench::corpus(10_000, 42);
    let mut scratch = Scratch::new(&rs);
    let mut out = Vec::new();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("seed_pack", |b| {
        b.iter(|| {
            for ev in &events {
                out.clear();
                rs.evaluate(ev, &mut scratch, &mut out);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, seed_pack);
criterion_main!(benches);
