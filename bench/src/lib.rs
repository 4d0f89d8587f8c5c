//! Support for trawl's benchmarks and its throughput harness: a
//! deterministic, seeded event corpus ([`corpus`](mod@corpus)), so figures compare across
//! machines and runs; the literal-scan floor the matcher is measured against
//! ([`floor`]); where the optional real corpora live ([`sources`]); and the
//! timing helpers the harness shares with the benches ([`measure`]).
//!
//! ```
//! let a = trawl_bench::corpus(100, 7);
//! let b = trawl_bench::corpus(100, 7);
//! assert_eq!(a, b);
//! ```

pub mod corpus;
pub mod floor;
pub mod measure;
pub mod sources;

pub use corpus::{corpus, Rng};

use trawl_engine::rule::Rule;
use trawl_engine::{kql, seed, sigma};

/// The seed pack's six Sigma rules written as KQL queries with the same
/// literals (`bench/kql-seed/`), by file name.
pub const KQL_SEED: &[(&str, &str)] = &[
    (
        "01-paexec-remote-execution.kql",
        include_str!("../kql-seed/01-paexec-remote-execution.kql"),
    ),
    (
        "02-tapi-folder-file-staged.kql",
        include_str!("../kql-seed/02-tapi-folder-file-staged.kql"),
    ),
    (
        "03-tapi-folder-process.kql",
        include_str!("../kql-seed/03-tapi-folder-process.kql"),
    ),
    (
        "04-dev-0056-powershell.kql",
        include_str!("../kql-seed/04-dev-0056-powershell.kql"),
    ),
    (
        "05-procdump-lsass.kql",
        include_str!("../kql-seed/05-procdump-lsass.kql"),
    ),
    (
        "06-svchost-runtimebroker-masquerade.kql",
        include_str!("../kql-seed/06-svchost-runtimebroker-masquerade.kql"),
    ),
];

/// The seed pack's six Sigma rules, and the same six as KQL queries: one
/// detection logic in two languages, for comparing what each costs.
///
/// ```
/// let (sigma, kql) = trawl_bench::seed_forms();
/// assert_eq!((sigma.len(), kql.len()), (6, 6));
/// ```
pub fn seed_forms() -> (Vec<Rule>, Vec<Rule>) {
    let sigma_rules = seed::SIGMA_RULES
        .iter()
        .flat_map(|(name, text)| sigma::parse_str(text, name).rules)
        .collect();
    let kql_rules = KQL_SEED
        .iter()
        .flat_map(|(name, text)| {
            let load = kql::parse_str(text, name);
            assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
            load.rules
        })
        .collect();
    (sigma_rules, kql_rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::event::Event;
    use trawl_engine::matcher::Ruleset;

    /// The two forms of the seed pack fire on exactly the same events (rule
    /// by rule) over the benchmark corpus and the DEV-0228 trace, so the
    /// benchmark compares equal work.
    #[test]
    fn kql_and_sigma_forms_of_the_seed_pack_agree() {
        let (sigma_rules, kql_rules) = seed_forms();
        let (sigma_set, rej) = Ruleset::compile(sigma_rules);
        assert!(rej.is_empty());
        let (kql_set, rej) = Ruleset::compile(kql_rules);
        assert!(rej.is_empty());
        let trace = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../replay/traces/dev-0228.ndjson"
        ))
        .unwrap();
        let mut host = None;
        let mut events: Vec<Event> = trace
            .lines()
            .map(|l| trawl_replay::ndjson::parse_line(l, &mut host).unwrap())
            .collect();
        events.extend(corpus(5_000, 42));
        let mut fired = 0;
        for (i, ev) in events.iter().enumerate() {
            let index = |rs: &Ruleset| -> Vec<usize> {
                rs.matching_ids(ev)
                    .iter()
                    .map(|id| rs.rules().iter().position(|r| r.id == *id).unwrap())
                    .collect()
            };
            let (s, k) = (index(&sigma_set), index(&kql_set));
            assert_eq!(s, k, "event {i}: {ev:?}");
            fired += s.len();
        }
        assert!(
            fired >= 32,
            "the trace alone raises 32 Sigma alerts: {fired}"
        );
    }
}
