//! Per-event matching cost, and the floor it is measured against.
//!
//! - `engine`: [`Ruleset::evaluate`] on one thread over the generated corpus
//!   (`trawl_bench::corpus`, 10,000 events, seed 42), with (a) the embedded
//!   seed pack and (b) the full SigmaHQ Windows + Linux `process_creation`
//!   and `file_event` scope from `../shared/corpus/sigma` (skipped with a
//!   message when absent).
//! - `floor`: on the same events and the same rules, one overlapping
//!   case-insensitive Aho-Corasick pass per field over every literal
//!   (`trawl_bench::floor`). engine/floor is the headline ratio.
//! - `forms`: the seed pack's Sigma and KQL forms, which should cost the same.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trawl_bench::floor::{Floor, FloorScratch};
use trawl_bench::sources::{load_rules, sigma_scope, skipped};
use trawl_engine::event::Event;
use trawl_engine::matcher::{Ruleset, Scratch};

const EVENTS: usize = 10_000;
const SEED: u64 = 42;

/// The rule sets benched: the seed pack, and the SigmaHQ scope when present.
fn rule_sets() -> Vec<(&'static str, Ruleset)> {
    let mut sets = vec![(
        "seed_pack",
        load_rules(&[]).expect("the seed pack is embedded").ruleset,
    )];
    match sigma_scope() {
        Some(paths) => {
            let loaded = load_rules(&paths).expect("the SigmaHQ folders are readable");
            eprintln!(
                "sigma_full: {} rules ({} files)",
                loaded.ruleset.len(),
                loaded.files
            );
            sets.push(("sigma_full", loaded.ruleset));
        }
        None => skipped("engine/sigma_full and floor/sigma_full"),
    }
    sets
}

/// Criterion's minimum of samples for large rule sets, whose passes over
/// the corpus take seconds; its default for small ones.
fn samples(rs: &Ruleset) -> usize {
    if rs.len() > 100 {
        10
    } else {
        100
    }
}

fn evaluate_all(
    rs: &Ruleset,
    events: &[Event],
    scratch: &mut Scratch,
    out: &mut Vec<trawl_engine::matcher::Detection>,
) -> usize {
    // Each pass as a stream of these events, not a second look at them.
    scratch.forget();
    let mut alerted = 0;
    for ev in events {
        out.clear();
        rs.evaluate(ev, scratch, out);
        alerted += usize::from(!out.is_empty());
    }
    alerted
}

fn engine_and_floor(c: &mut Criterion) {
    let events = trawl_bench::corpus(EVENTS, SEED);
    let sets = rule_sets();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, rs) in &sets {
        let mut scratch = Scratch::new(rs);
        let mut out = Vec::new();
        g.sample_size(samples(rs));
        g.bench_function(*name, |b| {
            b.iter(|| evaluate_all(rs, &events, &mut scratch, &mut out))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, rs) in &sets {
        let floor = Floor::build(rs.rules());
        let stats = floor.stats();
        eprintln!(
            "floor/{name}: {} distinct literals on {} fields",
            stats.literals, stats.fields
        );
        let mut scratch = FloorScratch::default();
        g.sample_size(samples(rs));
        g.bench_function(*name, |b| {
            b.iter(|| {
                events
                    .iter()
                    .map(|ev| floor.scan(ev, &mut scratch))
                    .sum::<u64>()
            })
        });
    }
    g.finish();
}

/// The seed pack's six Sigma rules against the same six written as KQL
/// queries (`bench/kql-seed/`): the same literals in the same automata, so
/// the two should cost the same per event.
fn sigma_and_kql_forms(c: &mut Criterion) {
    let events = trawl_bench::corpus(EVENTS, SEED);
    let (sigma_rules, kql_rules) = trawl_bench::seed_forms();
    let mut g = c.benchmark_group("forms");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, rules) in [("sigma_seed", sigma_rules), ("kql_seed", kql_rules)] {
        let (rs, rejected) = Ruleset::compile(rules);
        assert!(rejected.is_empty(), "{rejected:?}");
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        g.bench_function(name, |b| {
            b.iter(|| evaluate_all(&rs, &events, &mut scratch, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, engine_and_floor, sigma_and_kql_forms);
criterion_main!(benches);
