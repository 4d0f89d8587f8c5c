//! One module per subcommand.

pub mod replay;
pub mod rules_check;

use trawl_engine::load::LoadedRules;
use trawl_engine::rule::Unsupported;

/// The rules that could not be used, split into detections trawl cannot
/// evaluate (named one by one) and rules for other log sources (counted).
pub fn split_unsupported(loaded: &LoadedRules) -> (Vec<&Unsupported>, usize) {
    let unusable: Vec<&Unsupported> = loaded
        .unsupported
        .iter()
        .filter(|u| !u.out_of_scope)
        .collect();
    let out_of_scope = loaded.unsupported.len() - unusable.len();
    (unusable, out_of_scope)
}

/// Says on stderr how many rules loaded; names each in-scope rule that could
/// not be used (with its reason) and counts the rules for other log sources.
pub fn report_rules(loaded: &LoadedRules) {
    let (unusable, out_of_scope) = split_unsupported(loaded);
    for u in &unusable {
        eprintln!("trawl: rule skipped: {u}");
    }
    eprint!(
        "trawl: {} rules loaded from {} files in {} ms",
        loaded.ruleset.len(),
        loaded.files,
        loaded.elapsed.as_millis()
    );
    if !unusable.is_empty() {
        eprint!(", {} skipped as unsupported", unusable.len());
    }
    if out_of_scope > 0 {
        eprint!(", {out_of_scope} passed over (log sources trawl does not produce; `trawl rules check` lists them)");
    }
    eprintln!();
}
