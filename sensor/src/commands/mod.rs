//! One module per subcommand.

pub mod replay;
pub mod rules_check;

use trawl_engine::load::LoadedRules;

/// Says on stderr how many rules loaded; names each in-scope rule that could
/// not be used (with its reason) and counts the rules for other log sources.
pub fn report_rules(loaded: &LoadedRules) {
    let (out_of_scope, unusable): (Vec<_>, Vec<_>) =
        loaded.unsupported.iter().partition(|u| u.out_of_scope);
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
    if !out_of_scope.is_empty() {
        eprint!(
            ", {} passed over (log sources trawl does not produce; `trawl rules check` lists them)",
            out_of_scope.len()
        );
    }
    eprintln!();
}
