//! `trawl rules check`: what a rule set loads, and why the rest does not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use trawl_engine::load::RuleSources;

use crate::cli::CheckArgs;

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
        let doc = serde_json::json!({
            "loaded": loaded.ruleset.len(),
            "files": loaded.files,
            "compile_ms": loaded.elapsed.as_secs_f64() * 1000.0,
            "unsupported": unsupported,
        });
        println!("{doc}");
    } else {
        let (unusable, out_of_scope) = super::split_unsupported(&loaded);
        for u in &unusable {
            println!("unsupported: {u}");
        }
        println!(
            "{} rules loaded from {} files in {} ms; {} unsupported; {} for log sources trawl does not produce",
            loaded.ruleset.len(),
            loaded.files,
            loaded.elapsed.as_millis(),
            unusable.len(),
            out_of_scope
        );
        let in_scope = loaded.ruleset.len() + unusable.len();
        if in_scope > 0 {
            println!(
                "{:.1}% of the in-scope rules compile",
                100.0 * loaded.ruleset.len() as f64 / in_scope as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
