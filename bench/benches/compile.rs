//! Time to load and compile the full SigmaHQ Windows + Linux
//! `process_creation` and `file_event` scope (`../shared/corpus/sigma`,
//! skipped when absent): reading, parsing and compiling together
//! (`compile/sigma_full_load`), and compiling already-parsed rules alone
//! (`compile/sigma_full_compile`). The seed pack is timed too.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use trawl_bench::sources::{load_rules, sigma_scope, skipped};
use trawl_engine::matcher::Ruleset;

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.bench_function("seed_pack_load", |b| {
        b.iter(|| load_rules(&[]).expect("embedded"))
    });
    match sigma_scope() {
        Some(paths) => {
            g.sample_size(20).measurement_time(Duration::from_secs(10));
            g.bench_function("sigma_full_load", |b| {
                b.iter(|| load_rules(&paths).expect("the SigmaHQ folders are readable"))
            });
            let rules = load_rules(&paths)
                .expect("the SigmaHQ folders are readable")
                .ruleset
                .rules()
                .to_vec();
            g.bench_function("sigma_full_compile", |b| {
                b.iter_batched(|| rules.clone(), Ruleset::compile, BatchSize::LargeInput)
            });
        }
        None => skipped("compile/sigma_full_*"),
    }
    g.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
