//! `trawl rules check`: what a rule set loads, and why the rest does not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use trawl_engine::load::{LoadedRules, RuleSources};

use crate::cli::CheckArgs;

/// Loads the paths given (`.iocs` files as IOC lists; the seed pack when none
/// is given) and prints what loaded, what could not be used and which lines
/// were skipped, as text or (`--json`) one JSON document.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let is_ioc = |p: &Path| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("iocs"))
    };
    let (iocs, rules): (Vec<PathBuf>, Vec<PathBuf>) =
        args.paths.iter().cloned().partition(|p| is_ioc(p));
    let sources = RuleSources {
        default_rules: args.paths.is_empty(),
        rules,
        iocs,
    };
    let loaded = sources.load().context("loading rules")?;
    if args.json {
        println!("{}", json_report(&loaded));
    } else {
        // One write: stdout writes each line on its own otherwise.
        let mut text = text_report(&loaded).join("\n");
        text.push('\n');
        std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
            .context("writing the report")?;
    }
    super::leave_to_exit(loaded);
    Ok(ExitCode::SUCCESS)
}

/// The `--json` document. `loaded`, `files`, `compile_ms` and `unsupported`
/// are what scripts already read; `problems` lists skipped lines apart, since
/// their rules did load.
fn json_report(loaded: &LoadedRules) -> serde_json::Value {
    let unsupported: Vec<serde_json::Value> = loaded
        .unsupported
        .iter()
        .map(|u| {
            serde_json::json!({
                "path": u.path,
                "id": u.id,
                "title": u.title,
                "reason": u.reason,
                "out_of_scope": u.out_of_scope,
            })
        })
        .collect();
    let problems: Vec<serde_json::Value> = loaded
        .problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "path": p.path,
                "line": p.line,
                "reason": p.reason,
            })
        })
        .collect();
    serde_json::json!({
        "loaded": loaded.ruleset.len(),
        "files": loaded.files,
        "compile_ms": loaded.elapsed.as_secs_f64() * 1000.0,
        "unsupported": unsupported,
        "problems": problems,
    })
}

/// The text report, one line a finding, then the totals.
fn text_report(loaded: &LoadedRules) -> Vec<String> {
    let (unusable, out_of_scope) = super::split_unsupported(loaded);
    let mut lines: Vec<String> = unusable
        .iter()
        .map(|u| format!("unsupported: {u}"))
        .collect();
    lines.extend(loaded.problems.iter().map(|p| format!("problem: {p}")));
    let mut summary = format!(
        "{} rules loaded from {} files in {} ms; {} unsupported; {} for log sources trawl does not produce",
        loaded.ruleset.len(),
        loaded.files,
        loaded.elapsed.as_millis(),
        unusable.len(),
        out_of_scope
    );
    if !loaded.problems.is_empty() {
        summary += &format!(
            "; {} skipped in files that loaded",
            super::lines_count(loaded.problems.len())
        );
    }
    lines.push(summary);
    let in_scope = loaded.ruleset.len() + unusable.len();
    if in_scope > 0 {
        lines.push(format!(
            "{:.1}% of the in-scope rules compile",
            100.0 * loaded.ruleset.len() as f64 / in_scope as f64
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_lines_are_problems_in_both_reports() {
        let (_dir, path, loaded) = super::super::test_support::load_list(
            "# level: junk\n44d88612fea8a8f36de82e1278abb02f a\n",
        );
        let reason =
            "`junk` is not a Sigma level (informational, low, medium, high, critical); using high";

        let lines = text_report(&loaded);
        assert_eq!(lines[0], format!("problem: {path}:1: {reason}"));
        assert!(
            lines[1].ends_with("; 0 unsupported; 0 for log sources trawl does not produce; 1 line skipped in files that loaded"),
            "{lines:#?}"
        );
        assert_eq!(lines[2], "100.0% of the in-scope rules compile");

        let doc = json_report(&loaded);
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in ["loaded", "files", "compile_ms", "unsupported", "problems"] {
            assert!(keys.contains(&key), "{doc}");
        }
        assert_eq!(keys.len(), 5, "{doc}");
        assert_eq!(doc["loaded"], 1);
        assert_eq!(doc["unsupported"], serde_json::json!([]));
        assert_eq!(
            doc["problems"],
            serde_json::json!([{"path": path, "line": 1, "reason": reason}])
        );
    }

    #[test]
    fn a_clean_load_reports_no_problems() {
        let (_dir, _, loaded) =
            super::super::test_support::load_list("44d88612fea8a8f36de82e1278abb02f a\n");
        assert_eq!(json_report(&loaded)["problems"], serde_json::json!([]));
        assert!(!text_report(&loaded).iter().any(|l| l.contains("skipped")));
    }

    #[test]
    fn a_missing_path_error_names_its_cause_once() {
        let missing = "/definitely/not/here.iocs";
        let os = std::fs::metadata(missing).unwrap_err().to_string();
        let err = RuleSources {
            default_rules: false,
            rules: vec![],
            iocs: vec![PathBuf::from(missing)],
        }
        .load()
        .unwrap_err();
        // As `main` prints it: the whole chain.
        let shown = format!("{:#}", anyhow::Error::from(err).context("loading rules"));
        assert!(
            shown.starts_with("loading rules: cannot read rules from /definitely/not/here.iocs: "),
            "{shown}"
        );
        assert_eq!(shown.matches(&os).count(), 1, "{shown}");
    }
}
