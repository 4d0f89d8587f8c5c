//! Loading rules from disk: Sigma and KQL files and folders, IOC lists, the
//! seed pack.
//!
//! Loading never stops at a bad rule: every rule that cannot be used becomes an
//! [`Unsupported`] entry (path, id, reason) and the rest load. A bad line of a
//! list that did load (an IOC line that is not a digest, a repeated digest, a
//! header `# level:` that is not a level) is a [`LineProblem`] instead: the
//! rule is fine, one line of it was skipped. Only a path that cannot be read at
//! all (missing, no permission) is an error, since that is a mistake the user
//! must fix.
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
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ioc::{IocProblem, IocSet};
use crate::matcher::Ruleset;
use crate::rule::{Level, Rule, RuleBody, Scope, Unsupported};
use crate::{kql, seed, sigma};

/// A rules path that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path is missing or unreadable. The OS error is part of the message
    /// and deliberately not a `source()` as well: error reporters that print
    /// the chain (anyhow's `{:#}`) would otherwise print it twice.
    #[error("cannot read rules from {path}: {cause} (check the path given to --rules/--iocs)")]
    Io {
        /// The path as given.
        path: String,
        /// What the OS said.
        cause: io::Error,
    },
}

/// One line of a rule file that was skipped while the rest of the file loaded
/// (today: IOC list lines). Kept apart from [`Unsupported`], which names whole
/// rules that could not be used, so that a list with one typo is not counted
/// as an unsupported rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// The file, as given (`embedded:seed/…` for the seed pack).
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// Why the line was skipped, in words a list author can act on.
    pub reason: String,
}

impl fmt::Display for LineProblem {
    /// `path:line: reason`, the form editors and terminals jump to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.reason)
    }
}

/// Rules read from one or more places, before compilation.
#[derive(Debug, Default)]
pub struct RuleLoad {
    /// The rules that parsed, in load order.
    pub rules: Vec<Rule>,
    /// Rules (or whole files) that could not be used.
    pub unsupported: Vec<Unsupported>,
    /// Lines skipped in files whose rule did load.
    pub problems: Vec<LineProblem>,
    /// Rule files read.
    pub files: usize,
}

impl RuleLoad {
    /// Appends another load's rules and problems.
    pub fn extend(&mut self, other: RuleLoad) {
        self.rules.extend(other.rules);
        self.unsupported.extend(other.unsupported);
        self.problems.extend(other.problems);
        self.files += other.files;
    }
}

/// File extensions read as KQL queries.
const KQL_EXTENSIONS: &[&str] = &["kql"];

/// The rule files a folder walk reads: Sigma (`.yml`, `.yaml`) and KQL.
const RULE_EXTENSIONS: &[&str] = &["yml", "yaml", "kql"];

/// Loads a rule file, or every rule file below a folder (recursively, in
/// file-name order so the load order, and with it the alert order, is stable).
/// Hidden entries (`.git`, …) and files of other types are passed over.
/// Symbolic links are followed, since rule collections are often assembled
/// from links; a link that is broken or loops back to a folder above it is
/// reported as an [`Unsupported`] entry with its path.
pub fn load_rules_path(path: &Path) -> Result<RuleLoad, LoadError> {
    let meta = std::fs::metadata(path).map_err(|cause| LoadError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    let mut load = RuleLoad::default();
    if meta.is_file() {
        load.extend(load_rule_file(path));
        return Ok(load);
    }
    // The walk fixes the order; each file is parsed on a free core as soon
    // as the walk finds it, and the rules are put back in walk order, so the
    // load order (and with it the alert order) does not depend on the thread
    // count. Walking the SigmaHQ folders alone takes about 10 ms.
    let found = crate::walk::sorted(path).filter_map(|entry| match entry {
        Ok(e) if e.file_type().is_file() && has_extension(e.path(), RULE_EXTENSIONS) => {
            Some(Ok(e.into_path()))
        }
        Ok(_) => None,
        Err(err) => Some(Err(Unsupported {
            path: err
                .path()
                .map_or_else(|| path.display().to_string(), |p| p.display().to_string()),
            id: None,
            title: None,
            reason: format!("cannot read: {err}"),
            out_of_scope: false,
        })),
    });
    let read = crate::parallel::map_iter_in_parallel(found, |entry| match entry {
        Ok(file) => load_rule_file(&file),
        Err(u) => RuleLoad {
            unsupported: vec![u],
            ..RuleLoad::default()
        },
    });
    for one in read {
        load.extend(one);
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
            Ok(text) if has_extension(path, KQL_EXTENSIONS) => kql::parse_str(&text, &origin),
            Ok(text) => {
                let s = sigma::parse_str(&text, &origin);
                RuleLoad {
                    rules: s.rules,
                    unsupported: s.unsupported,
                    problems: vec![],
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

/// The level of an IOC list rule whose header names none (or none that parses).
const IOC_DEFAULT_LEVEL: Level = Level::High;

/// Header lines an IOC list may start with: `# title: …`, `# level: …`
/// (and, for the embedded seed list only, `# id: …`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IocHeader {
    /// The rule id (`# id:`).
    pub id: Option<String>,
    /// The rule title (`# title:`).
    pub title: Option<String>,
    /// The alert level (`# level:`), when one parsed.
    pub level: Option<Level>,
}

impl IocHeader {
    /// Reads the header comments at the top of a list, which end at its first
    /// line that is neither blank nor a comment. A `# level:` that is not a
    /// Sigma level is returned as a problem and leaves the level as it was, so
    /// a typo never changes a level given on an earlier line.
    pub fn parse(text: &str) -> (IocHeader, Vec<IocProblem>) {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut h = IocHeader::default();
        let mut bad_levels = Vec::new();
        for (i, line) in text.lines().enumerate() {
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
                    "level" => match Level::parse(value) {
                        Some(level) => h.level = Some(level),
                        None => bad_levels.push((i + 1, value)),
                    },
                    _ => {}
                }
            }
        }
        // Said after the whole header is read, so the level named is the one
        // the rule really gets.
        let using = h.level.unwrap_or(IOC_DEFAULT_LEVEL).as_str();
        let names: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
        let problems = bad_levels
            .into_iter()
            .map(|(line, value)| IocProblem {
                line,
                reason: format!(
                    "`{value}` is not a Sigma level ({}); using {using}",
                    names.join(", ")
                ),
            })
            .collect();
        (h, problems)
    }
}

/// Turns an IOC list into a rule, with the lines that were skipped (not a
/// digest, a digest repeated under another name, a bad header level) as
/// [`LineProblem`]s of `origin`.
pub fn ioc_list(text: &str, origin: &str, id: String) -> (Rule, Vec<LineProblem>) {
    let (header, mut problems) = IocHeader::parse(text);
    let (set, set_problems) = IocSet::parse(text);
    problems.extend(set_problems);
    let file_name = Path::new(origin)
        .file_name()
        .map_or_else(|| origin.to_owned(), |n| n.to_string_lossy().into_owned());
    let rule = Rule {
        title: header
            .title
            .unwrap_or_else(|| format!("Known-bad hash from IOC list {file_name}")),
        level: header.level.unwrap_or(IOC_DEFAULT_LEVEL),
        tags: vec![],
        origin: origin.to_owned(),
        scope: Scope::ANY,
        body: RuleBody::Ioc(set),
        id,
    };
    let problems = problems
        .into_iter()
        .map(|p| LineProblem {
            path: origin.to_owned(),
            line: p.line,
            reason: p.reason,
        })
        .collect();
    (rule, problems)
}

/// Loads an IOC list given with `--iocs FILE`; its alerts carry the rule id
/// `ioc:<file name>`. The file is read as bytes and decoded lossily, so a list
/// that is not all UTF-8 still loads: its bad lines come back as problems like
/// any other bad line. Only a file that cannot be read at all is an error.
pub fn load_ioc_file(path: &Path) -> Result<RuleLoad, LoadError> {
    let bytes = std::fs::read(path).map_err(|cause| LoadError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (rule, problems) = ioc_list(&text, &path.display().to_string(), format!("ioc:{name}"));
    Ok(RuleLoad {
        rules: vec![rule],
        unsupported: vec![],
        problems,
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
    /// The compiled rules.
    pub ruleset: Ruleset,
    /// Rules that could not be used, with why.
    pub unsupported: Vec<Unsupported>,
    /// Lines skipped in files whose rule did load, in load order.
    pub problems: Vec<LineProblem>,
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
        let parsed_at = start.elapsed();
        let (rules, mut unsupported) = dedupe(load.rules);
        unsupported.splice(0..0, load.unsupported);
        let (ruleset, rejected) = Ruleset::compile(rules);
        tracing::debug!(
            "rules read and parsed in {parsed_at:?}, compiled in {:?}",
            start.elapsed() - parsed_at
        );
        unsupported.extend(rejected);
        Ok(LoadedRules {
            ruleset,
            unsupported,
            problems: load.problems,
            files: load.files,
            elapsed: start.elapsed(),
        })
    }
}

/// Keeps the first rule of each id; a Sigma id is meant to be unique, and two
/// copies of one rule would alert twice on every hit. Documents of one
/// multi-document file (an old-style `action: global` collection) share
/// their id by design and are all kept.
fn dedupe(rules: Vec<Rule>) -> (Vec<Rule>, Vec<Unsupported>) {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut kept = Vec::with_capacity(rules.len());
    let mut dropped = Vec::new();
    for r in rules {
        match seen.get(&r.id) {
            Some(first) if source_file(first) != source_file(&r.origin) => {
                dropped.push(Unsupported {
                    path: r.origin.clone(),
                    id: Some(r.id.clone()),
                    title: Some(r.title.clone()),
                    reason: format!(
                        "duplicate rule id: already loaded from {first}; this copy is skipped"
                    ),
                    out_of_scope: false,
                })
            }
            Some(_) => kept.push(r),
            None => {
                seen.insert(r.id.clone(), r.origin.clone());
                kept.push(r);
            }
        }
    }
    (kept, dropped)
}

/// The file a rule's origin names, without the `#N` document number.
fn source_file(origin: &str) -> &str {
    match origin.rsplit_once('#') {
        Some((file, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => file,
        _ => origin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7";

    #[test]
    fn ioc_header_and_problems() {
        let text = format!("# title: Report hashes\n# level: critical\n\n{SHA} x\nnope\n{SHA} y\n");
        let (rule, problems) = ioc_list(&text, "dir/list.txt", "ioc:list.txt".into());
        assert_eq!(rule.title, "Report hashes");
        assert_eq!(rule.level, Level::Critical);
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "dir/list.txt:5: `nope` is not a hex MD5 (32), SHA-1 (40) or SHA-256 (64) digest",
                "dir/list.txt:6: duplicate of line 4 (`x`); the first is kept",
            ]
        );
        let (plain, _) = ioc_list("", "l.txt", "ioc:l.txt".into());
        assert_eq!(plain.level, Level::High);
        assert_eq!(plain.title, "Known-bad hash from IOC list l.txt");
    }

    #[test]
    fn a_bad_header_level_is_a_problem_and_keeps_the_level_before_it() {
        let (h, problems) = IocHeader::parse("# level: low\n# level: junk\n# title: t\n");
        assert_eq!(h.level, Some(Level::Low));
        assert_eq!(h.title.as_deref(), Some("t"));
        assert_eq!(
            problems,
            [IocProblem {
                line: 2,
                reason: "`junk` is not a Sigma level (informational, low, medium, high, critical); using low".into()
            }]
        );

        let (rule, problems) = ioc_list(&format!("# level: junk\n{SHA}\n"), "l.iocs", "i".into());
        assert_eq!(rule.level, Level::High);
        assert_eq!(
            problems[0].to_string(),
            "l.iocs:1: `junk` is not a Sigma level (informational, low, medium, high, critical); using high"
        );
        assert_eq!(problems.len(), 1);

        // The header ends at the first indicator: a later `# level:` is only a
        // comment.
        let (h, problems) = IocHeader::parse(&format!(
            "# level: low\n{SHA}\n# level: junk\n# level: critical\n"
        ));
        assert_eq!((h.level, problems.len()), (Some(Level::Low), 0));
    }

    #[test]
    fn ioc_list_problems_are_line_problems_not_unsupported_rules() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("l.iocs");
        std::fs::write(&list, format!("{SHA} a\nnope\n")).unwrap();
        let loaded = RuleSources {
            default_rules: false,
            rules: vec![],
            iocs: vec![list.clone()],
        }
        .load()
        .unwrap();
        assert_eq!(loaded.ruleset.len(), 1);
        assert!(loaded.unsupported.is_empty(), "{:?}", loaded.unsupported);
        assert_eq!(
            loaded.problems,
            [LineProblem {
                path: list.display().to_string(),
                line: 2,
                reason: "`nope` is not a hex MD5 (32), SHA-1 (40) or SHA-256 (64) digest".into()
            }]
        );
    }

    #[test]
    fn an_ioc_file_that_is_not_utf8_loads_with_its_bad_lines_reported() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("latin1.iocs");
        let mut bytes = b"# title: caf\xe9\n".to_vec();
        bytes.extend_from_slice(SHA.as_bytes());
        bytes.extend_from_slice(b" dropper\n\xe9\xe9\n");
        std::fs::write(&list, bytes).unwrap();
        let load = load_ioc_file(&list).unwrap();
        assert_eq!(load.rules.len(), 1);
        assert_eq!(load.rules[0].title, "caf\u{FFFD}");
        match &load.rules[0].body {
            RuleBody::Ioc(set) => assert_eq!(set.lookup_hex(SHA).unwrap().name, "dropper"),
            other => panic!("not an IOC rule: {other:?}"),
        }
        assert_eq!(load.problems.len(), 1, "{:?}", load.problems);
        assert_eq!(load.problems[0].line, 3);
        assert!(load.problems[0].reason.starts_with("not UTF-8 text"));
        assert!(load.unsupported.is_empty());

        // Only a file that cannot be read at all is an error.
        let missing = load_ioc_file(&dir.path().join("missing.iocs")).unwrap_err();
        assert!(missing.to_string().contains("missing.iocs"), "{missing}");
    }

    #[test]
    fn a_load_error_says_its_cause_once() {
        let os = std::fs::metadata("/definitely/not/here")
            .unwrap_err()
            .to_string();
        let err = load_rules_path(Path::new("/definitely/not/here")).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("/definitely/not/here"), "{shown}");
        assert_eq!(shown.matches(&os).count(), 1, "{shown}");
        // The cause is in the message, so it must not be a `source()` too:
        // chain printers would repeat it.
        assert!(std::error::Error::source(&err).is_none());
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
    fn documents_of_one_collection_share_their_id() {
        let text = "action: global\ntitle: t\nid: g1\ndetection:\n  s: {CommandLine|contains: x}\n  condition: s\n---\nlogsource: {category: process_creation, product: windows}\n---\naction: repeat\nlogsource: {category: process_creation, product: linux}\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.yml"), text).unwrap();
        std::fs::write(dir.path().join("d.yml"), text).unwrap();
        let loaded = RuleSources {
            default_rules: false,
            rules: vec![dir.path().to_owned()],
            iocs: vec![],
        }
        .load()
        .unwrap();
        let origins: Vec<&str> = loaded
            .ruleset
            .rules()
            .iter()
            .map(|r| r.origin.as_str())
            .collect();
        assert_eq!(
            origins.len(),
            2,
            "both documents of c.yml load: {origins:?}"
        );
        assert!(origins.iter().all(|o| o.contains("c.yml")));
        assert_eq!(
            loaded.unsupported.len(),
            2,
            "the copies in d.yml are duplicates"
        );
        assert_eq!(source_file("a/b.yml#3"), "a/b.yml");
        assert_eq!(source_file("a/#b.yml"), "a/#b.yml");
    }

    #[test]
    fn duplicate_ids_keep_the_first() {
        let (a, _) = ioc_list("", "one", "same".into());
        let (b, _) = ioc_list("", "two", "same".into());
        let (kept, dropped) = dedupe(vec![a, b]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].origin, "one");
        assert!(dropped[0].reason.contains("already loaded from one"));
    }

    #[cfg(unix)]
    const RULE: &str = "title: linked\nid: 7\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s: {Image|endswith: x.exe}\n  condition: s\n";

    #[cfg(unix)]
    #[test]
    fn symlinked_rule_files_are_loaded() {
        let store = tempfile::tempdir().unwrap();
        let target = store.path().join("real.yml");
        std::fs::write(&target, RULE).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link.yml")).unwrap();
        std::os::unix::fs::symlink(store.path(), dir.path().join("linked-folder")).unwrap();
        let load = load_rules_path(dir.path()).unwrap();
        assert_eq!(
            load.files, 2,
            "the linked file and the file in the linked folder"
        );
        assert_eq!(load.rules.len(), 2);
        assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_and_broken_links_are_reported_not_followed_forever() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), RULE).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.yml"), dir.path().join("broken.yml"))
            .unwrap();
        let load = load_rules_path(dir.path()).unwrap();
        assert_eq!(load.rules.len(), 1);
        let paths: Vec<&str> = load.unsupported.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths.len(), 2, "{:?}", load.unsupported);
        assert!(paths[0].ends_with("broken.yml"), "{paths:?}");
        assert!(paths[1].ends_with("loop"), "{paths:?}");
        assert!(load
            .unsupported
            .iter()
            .all(|u| u.reason.starts_with("cannot read")));
    }
}
