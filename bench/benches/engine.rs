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

/// The seed pack's six Sigma rules against the same six written as KQL
/// queries (`bench/kql-seed/`): the same literals in the same automata, so
/// the two should cost the same per event.
fn sigma_and_kql_forms(c: &mut Criterion) {
    let events = trawl_bench::corpus(10_000, 42);
    let (sigma_rules, kql_rules) = trawl_bench::seed_forms();
    let mut g = c.benchmark_group("forms");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, rules) in [("sigma_seed", sigma_rules), ("kql_seed", kql_rules)] {
        let (rs, rejected) = trawl_engine::matcher::Ruleset::compile(rules);
        assert!(rejected.is_empty(), "{rejected:?}");
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                for ev in &events {
                    out.clear();
                    rs.evaluate(ev, &mut scratch, &mut out);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, seed_pack, sigma_and_kql_forms);
criterion_main!(benches);
