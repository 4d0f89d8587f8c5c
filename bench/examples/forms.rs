//! The seed pack's Sigma and KQL forms timed in alternation, for a shared
//! machine where criterion's back-to-back runs drift with the load: each
//! round times one pass of each form over the same corpus, and the minimum
//! and median per form are printed.
//!
//! `cargo run --release -p trawl-bench --example forms [ROUNDS]`

use std::time::{Duration, Instant};

use trawl_engine::matcher::{Ruleset, Scratch};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let events = trawl_bench::corpus(10_000, 42);
    let (sigma_rules, kql_rules) = trawl_bench::seed_forms();
    let forms: Vec<(&str, Ruleset)> = [("sigma_seed", sigma_rules), ("kql_seed", kql_rules)]
        .into_iter()
        .map(|(name, rules)| (name, Ruleset::compile(rules).0))
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); forms.len()];
    let mut out = Vec::new();
    for _ in 0..rounds {
        for (i, (_, rs)) in forms.iter().enumerate() {
            let mut scratch = Scratch::new(rs);
            let start = Instant::now();
            for ev in &events {
                out.clear();
                rs.evaluate(ev, &mut scratch, &mut out);
            }
            times[i].push(start.elapsed());
        }
    }
    for ((name, _), t) in forms.iter().zip(&mut times) {
        t.sort();
        let per_event = |d: Duration| d.as_nanos() as f64 / events.len() as f64;
        println!(
            "{name}: min {:.0} ns/event, median {:.0} ns/event ({rounds} rounds of {} events)",
            per_event(t[0]),
            per_event(t[t.len() / 2]),
            events.len()
        );
    }
}
