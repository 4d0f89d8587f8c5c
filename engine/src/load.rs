//! Loading rules from disk: Sigma files and folders, IOC lists, the seed pack.
//!
//! Loading never stops at a bad rule: every rule that cannot be used becomes an
//! [`Unsupported`] entry (path, id, reason) and the rest load. Only a path that
//! does not exist at all is an error, since that is a typo the user must fix.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use trawl_engine::load::RuleSources;
//!
//! let sources = RuleSources { default_rules: true, rules: vec![PathBuf::from("sigma/rules")], iocs: vec![] };
//! let loaded = sources.load().expect("paths exist");
//! eprintln!("{} rules, {} unsupported", loaded.ruleset.len(), loaded.unsupported.len());
//! ```

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ioc::IocSet;
use crate::matcher::Ruleset;
use crate::rule::{Level, Rule, RuleBody, Scope, Unsupported};
use crate::{seed, sigma};

/// A rules path that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read rules from {path}: {source} (check the path given to --rules/--iocs)")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Rules read from one or more places, before compilation.
#[derive(Debug, Default)]
pub struct RuleLoad {
    pub rules: Vec<Rule>,
    pub unsupported: Vec<Unsupported>,
    /// Rule files read.
    pub files: usize,
}

impl RuleLoad {
    /// Appends another load's rules and problems.
    pub fn extend(&mut self, other: RuleLoad) {
        self.rules.extend(other.rules);
        self.unsupported.extend(other.unsupported);
        self.files += other.files;
    }
}

/// File extensions read as Sigma rules.
const SIGMA_EXTENSIONS: &[&str] = &["yml", "yaml"];

/// Loads a rule file, or every rule file below a folder (recursively, in
/// file-name order so the load order, and with it the alert order, is stable).
/// Hidden entries (`.git`, …) and files of other types are passed over.
pub fn load_rules_path(path: &Path) -> Result<RuleLoad, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut load = RuleLoad::default();
    if meta.is_file() {
        load.extend(load_rule_file(path));
        return Ok(load);
    }
    let walk = walkdir::WalkDir::new(path)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() && has_extension(e.path(), SIGMA_EXTENSIONS) => {
                load.extend(load_rule_file(e.path()));
            }
            Ok(_) => {}
            Err(err) => load.unsupported.push(Unsupported {
                path: err
                    .path()
                    .map_or_else(|| path.display().to_string(), |p| p.display().to_string()),
                id: None,
                title: None,
                reason: format!("cannot read: {err}"),
                out_of_scope: false,
            }),
        }
    }
    Ok(load)
}

fn has_extension(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn load_rule_file(path: &Path) -> RuleLoad {
    let origin = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => {
                let s = sigma::parse_str(&text, &origin);
                RuleLoad {
                    rules: s.rules,
                    unsupported: s.unsupported,
                    files: 1,
                }
            }
            Err(e) => RuleLoad {
                unsupported: vec![file_problem(&origin, format!("not UTF-8 text: {e}"))],
                files: 1,
                ..Default::default()
            },
        },
        Err(e) => RuleLoad {
            unsupported: vec![file_problem(&origin, format!("cannot read: {e}"))],
            files: 1,
            ..Default::default()
        },
    }
}

fn file_problem(path: &str, reason: String) -> Unsupported {
    Unsupported {
        path: path.to_owned(),
        id: None,
        title: None,
        reason,
        out_of_scope: false,
    }
}

/// Header lines an IOC list may start with: `# title: …`, `# level: …`
/// (and, for the embedded seed list only, `# id: …`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IocHeader {
    pub id: Option<String>,
    pub title: Option<String>,
    pub level: Option<Level>,
}

impl IocHeader {
    /// Reads the header comments at the top of a list.
    pub fn parse(text: &str) -> IocHeader {
        let mut h = IocHeader::default();
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            let Some(comment) = t.strip_prefix('#') else {
                break;
            };
            if let Some((key, value)) = comment.split_once(':') {
                let value = value.trim();
                match key.trim().to_ascii_lowercase().as_str() {
                    "id" => h.id = Some(value.to_owned()),
                    "title" => h.title = Some(value.to_owned()),
                    "level" => h.level = Level::parse(value),
                    _ => {}
                }
            }
        }
        h
    }
}

/// Turns an IOC list into a rule. Lines that are not indicators come back as
/// [`Unsupported`] entries named `file:line`.
pub fn ioc_rule(text: &str, origin: &str, id: String) -> (Rule, Vec<Unsupported>) {
    let header = IocHeader::parse(text);
    let (set, problems) = IocSet::parse(text);
    let file_name = Path::new(origin)
        .file_name()
        .map_or_else(|| origin.to_owned(), |n| n.to_string_lossy().into_owned());
    let rule = Rule {
        title: header
            .title
            .unwrap_or_else(|| format!("Known-bad hash from IOC list {file_name}")),
        level: header.level.unwrap_or(Level::High),
        tags: vec![],
        origin: origin.to_owned(),
        scope: Scope::ANY,
        body: RuleBody::Ioc(set),
        id,
    };
    let problems = problems
        .into_iter()
        .map(|p| Unsupported {
            path: format!("{origin}:{}", p.line),
            id: Some(rule.id.clone()),
            title: Some(rule.title.clone()),
            reason: p.reason,
            out_of_scope: false,
        })
        .collect();
    (rule, problems)
}

/// Loads an IOC list given with `--iocs FILE`; its alerts carry the rule id
/// `ioc:<file name>`.
pub fn load_ioc_file(path: &Path) -> Result<RuleLoad, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (rule, unsupported) = ioc_rule(&text, &path.display().to_string(), format!("ioc:{name}"));
    Ok(RuleLoad {
        rules: vec![rule],
        unsupported,
        files: 1,
    })
}

/// Every place rules come from, as the command line gives them.
#[derive(Debug, Clone, Default)]
pub struct RuleSources {
    /// Include the embedded seed pack.
    pub default_rules: bool,
    /// Sigma files or folders (`--rules`).
    pub rules: Vec<PathBuf>,
    /// IOC lists (`--iocs`).
    pub iocs: Vec<PathBuf>,
}

/// Rules loaded and compiled, with everything that could not be used.
#[derive(Debug)]
pub struct LoadedRules {
    pub ruleset: Ruleset,
    pub unsupported: Vec<Unsupported>,
    /// Rule files read (the seed pack counts as its files).
    pub files: usize,
    /// Time to read, parse and compile.
    pub elapsed: Duration,
}

impl RuleSources {
    /// Loads the seed pack (if asked), then each `--rules` path, then each
    /// `--iocs` list, in that order; drops later rules whose id was already
    /// loaded (reported); compiles the rest.
    pub fn load(&self) -> Result<LoadedRules, LoadError> {
        let start = Instant::now();
        let mut load = RuleLoad::default();
        if self.default_rules {
            load.extend(seed::load());
        }
        for p in &self.rules {
            load.extend(load_rules_path(p)?);
        }
        for p in &self.iocs {
            load.extend(load_ioc_file(p)?);
        }
        let (rules, mut unsupported) = dedupe(load.rules);
        unsupported.splice(0..0, load.unsupported);
        let (ruleset, rejected) = Ruleset::compile(rules);
        unsupported.extend(rejected);
        Ok(LoadedRules {
            ruleset,
            unsupported,
            files: load.files,
            elapsed: start.elapsed(),
        })
    }
}

/// Keeps the first rule of each id; a Sigma id is meant to be unique, and two
/// copies of one rule would alert twice on every hit.
fn dedupe(rules: Vec<Rule>) -> (Vec<Rule>, Vec<Unsupported>) {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut kept = Vec::with_capacity(rules.len());
    let mut dropped = Vec::new();
    for r in rules {
        match seen.get(&r.id) {
            Some(first) => dropped.push(Unsupported {
                path: r.origin.clone(),
                id: Some(r.id.clone()),
                title: Some(r.title.clone()),
                reason: format!(
                    "duplicate rule id: already loaded from {first}; this copy is skipped"
                ),
                out_of_scope: false,
            }),
            None => {
                seen.insert(r.id.clone(), r.origin.clone());
                kept.push(r);
            }
        }
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioc_header_and_problems() {
        let text = "# title: Report hashes\n# level: critical\n\n2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7 x\nnope\n";
        let (rule, problems) = ioc_rule(text, "dir/list.txt", "ioc:list.txt".into());
        assert_eq!(rule.title, "Report hashes");
        assert_eq!(rule.level, Level::Critical);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "dir/list.txt:5");
        let (plain, _) = ioc_rule("", "l.txt", "ioc:l.txt".into());
        assert_eq!(plain.level, Level::High);
        assert_eq!(plain.title, "Known-bad hash from IOC list l.txt");
    }

    #[test]
    fn missing_paths_are_errors_and_dirs_walk_sorted() {
        assert!(load_rules_path(Path::new("/definitely/not/here")).is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/x.yml"), "not: [valid").unwrap();
        std::fs::write(dir.path().join("README.md"), "# not a rule").unwrap();
        std::fs::write(dir.path().join("b.yml"), "title: b").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/c.yaml"), "title: c").unwrap();
        let load = load_rules_path(dir.path()).unwrap();
        assert_eq!(
            load.files, 2,
            "hidden folders and non-YAML files are passed over"
        );
    }

    #[test]
    fn duplicate_ids_keep_the_first() {
        let (a, _) = ioc_rule("", "one", "same".into());
        let (b, _) = ioc_rule("", "two", "same".into());
        let (kept, dropped) = dedupe(vec![a, b]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].origin, "one");
        assert!(dropped[0].reason.contains("already loaded from one"));
    }
}
