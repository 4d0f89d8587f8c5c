//! One module per subcommand.

pub mod live;
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

/// `"1 line"`, `"2 lines"`: counts in summaries read as sentences.
pub fn lines_count(n: usize) -> String {
    format!("{n} {}", if n == 1 { "line" } else { "lines" })
}

/// Leaves a compiled rule set to the operating system when a command ends,
/// instead of freeing it. Why: a SigmaHQ rule set is hundreds of thousands
/// of small allocations, freeing them one by one took about 10 ms of a
/// replay's wall time, and the process is about to exit, which returns all
/// its memory at once. Only for one-shot commands, never for `watch`.
pub fn leave_to_exit<T>(rules: T) {
    std::mem::forget(rules);
}

/// Says on stderr how many rules loaded; names each in-scope rule that could
/// not be used (with its reason) and each skipped line of a rule file that did
/// load, and counts the rules for other log sources.
pub fn report_rules(loaded: &LoadedRules) {
    // One write: stderr is unbuffered.
    let mut text = rules_report(loaded).join("\n");
    text.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
}

/// The lines [`report_rules`] prints, built apart so tests can read them.
fn rules_report(loaded: &LoadedRules) -> Vec<String> {
    let (unusable, out_of_scope) = split_unsupported(loaded);
    let mut lines: Vec<String> = unusable
        .iter()
        .map(|u| format!("trawl: rule skipped: {u}"))
        .collect();
    // A bad line is not a skipped rule: its rule loaded without it.
    lines.extend(
        loaded
            .problems
            .iter()
            .map(|p| format!("trawl: {p} (line skipped)")),
    );
    let mut summary = format!(
        "trawl: {} rules loaded from {} files in {} ms",
        loaded.ruleset.len(),
        loaded.files,
        loaded.elapsed.as_millis()
    );
    if !unusable.is_empty() {
        summary += &format!(", {} skipped as unsupported", unusable.len());
    }
    if !loaded.problems.is_empty() {
        summary += &format!(", {} skipped", lines_count(loaded.problems.len()));
    }
    if out_of_scope > 0 {
        summary += &format!(", {out_of_scope} passed over (log sources trawl does not produce; `trawl rules check` lists them)");
    }
    lines.push(summary);
    lines
}

#[cfg(test)]
pub(crate) mod test_support {
    use trawl_engine::load::{LoadedRules, RuleSources};

    /// Loads one IOC list with the given text (no seed pack). The temporary
    /// folder lives as long as the returned guard.
    pub(crate) fn load_list(text: &str) -> (tempfile::TempDir, String, LoadedRules) {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("l.iocs");
        std::fs::write(&list, text).unwrap();
        let loaded = RuleSources {
            default_rules: false,
            rules: vec![],
            iocs: vec![list.clone()],
        }
        .load()
        .unwrap();
        (dir, list.display().to_string(), loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ioc_lines_are_reported_as_skipped_lines_not_skipped_rules() {
        let (_dir, path, loaded) = test_support::load_list(
            "44d88612fea8a8f36de82e1278abb02f a\nnope\n44D88612FEA8A8F36DE82E1278ABB02F b\n",
        );
        let lines = rules_report(&loaded);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!(
            lines[0],
            format!("trawl: {path}:2: `nope` is not a hex MD5 (32), SHA-1 (40) or SHA-256 (64) digest (line skipped)")
        );
        assert_eq!(
            lines[1],
            format!("trawl: {path}:3: duplicate of line 1 (`a`); the first is kept (line skipped)")
        );
        assert!(
            lines[2].starts_with("trawl: 1 rules loaded from 1 files in "),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(" ms, 2 lines skipped"), "{}", lines[2]);
        assert!(
            !lines.iter().any(|l| l.contains("unsupported")),
            "{lines:#?}"
        );
    }

    #[test]
    fn counts_read_as_sentences() {
        assert_eq!(lines_count(1), "1 line");
        assert_eq!(lines_count(0), "0 lines");
        assert_eq!(lines_count(2), "2 lines");
    }
}
