//! Where the optional real corpora are: SigmaHQ's rules and the
//! EVTX-ATTACK-SAMPLES recordings, checked out in `../shared/corpus` beside
//! the project. They are never copied into the repository; benches and
//! tests that use them say so and skip when they are absent.
//!
//! ```
//! // Either all three SigmaHQ folders, or None.
//! if let Some(paths) = trawl_bench::sources::sigma_scope() {
//!     assert_eq!(paths.len(), 3);
//! }
//! ```

use std::path::PathBuf;

use trawl_engine::load::{LoadError, LoadedRules, RuleSources};

/// `../shared/corpus`, relative to the workspace root.
pub fn shared_corpus() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"))
}

/// The SigmaHQ folders whose Windows and Linux `process_creation` and
/// `file_event` rules trawl runs: `rules`, `rules-emerging-threats`,
/// `rules-threat-hunting`, when all three are present.
pub fn sigma_scope() -> Option<Vec<PathBuf>> {
    let root = shared_corpus().join("sigma");
    let paths: Vec<PathBuf> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    paths.iter().all(|p| p.is_dir()).then_some(paths)
}

/// The EVTX-ATTACK-SAMPLES folder, when present.
pub fn evtx_samples() -> Option<PathBuf> {
    let p = shared_corpus().join("evtx-attack-samples");
    p.is_dir().then_some(p)
}

/// Loads and compiles rules the way `trawl` does: the embedded seed pack
/// when `paths` is empty, else exactly the given files and folders (rules
/// of other log sources are passed over and counted as out of scope, as
/// `trawl rules check` reports them).
pub fn load_rules(paths: &[PathBuf]) -> Result<LoadedRules, LoadError> {
    RuleSources {
        default_rules: paths.is_empty(),
        rules: paths.to_vec(),
        iocs: vec![],
    }
    .load()
}

/// Says why a bench that needs `what` does not run.
pub fn skipped(what: &str) {
    eprintln!(
        "{what}: skipped, {} is absent (check out SigmaHQ and EVTX-ATTACK-SAMPLES there to run it)",
        shared_corpus().display()
    );
}
