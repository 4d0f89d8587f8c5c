//! Events/s through the engine's [`Pipeline`]: batches of 512 through the
//! bounded queue, 1 → N matcher workers (alerts rendered as JSON), the
//! ordered sink, with the SigmaHQ scope when present (else the seed pack).
//! Building the batches (cloning the corpus) is kept out of the timing.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use trawl_bench::measure::{batches, pipeline_pass};
use trawl_bench::sources::{load_rules, sigma_scope, skipped};

fn pipeline(c: &mut Criterion) {
    let (name, paths) = match sigma_scope() {
        Some(p) => ("sigma_full", p),
        None => {
            skipped("pipeline/sigma_full (the seed pack is used instead)");
            ("seed_pack", vec![])
        }
    };
    let ruleset = Arc::new(load_rules(&paths).expect("rules load").ruleset);
    let events = trawl_bench::corpus(10_000, 42);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    let mut counts = vec![1];
    if cores > 1 {
        counts.push(cores);
    }
    for threads in counts {
        g.bench_function(format!("{name}/{threads}_workers"), |b| {
            b.iter_batched(
                || batches(&events, 512),
                |bs| pipeline_pass(&ruleset, bs, threads),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
