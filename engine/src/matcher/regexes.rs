//! Every distinct regex of a rule set, compiled once and run one at a time.
//!
//! A rule's regex is asked for only when the rest of its rule has not
//! already decided the verdict (cheap tests come first), so on a typical
//! event one or two regexes run, each with its own literal prefilter. Running
//! a whole field's regexes as one multi-pattern automaton on every candidate
//! cost far more: it cannot stop early and its lazy DFA kept rebuilding states.
//! Each worker thread keeps its own search caches (in [`super::Scratch`]), so
//! threads never share a lock.

use std::collections::HashMap;

use regex_automata::meta;
use regex_automata::util::syntax;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use crate::rule::{Expr, Rule, RuleBody, Test};

/// Generous limit: SigmaHQ has a few large alternations, and a rule set is
/// compiled once.
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// The flags a Sigma regex carries besides its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RegexFlags {
    case_insensitive: bool,
    multi_line: bool,
    dot_all: bool,
}

/// The pattern and flags of a regex test.
pub(super) fn regex_flags(test: &Test) -> Option<(&str, RegexFlags)> {
    match test {
        Test::Regex {
            pattern,
            case_insensitive,
            multi_line,
            dot_all,
        } => Some((
            pattern,
            RegexFlags {
                case_insensitive: *case_insensitive,
                multi_line: *multi_line,
                dot_all: *dot_all,
            },
        )),
        _ => None,
    }
}

/// The compiled regexes, by id.
#[derive(Debug, Default)]
pub(super) struct RegexTable {
    pub(super) regexes: Vec<meta::Regex>,
    /// Per regex: literals one of which every match contains (see
    /// [`required_literals`]), `None` when it has none worth gating on.
    pub(super) gates: Vec<Option<Vec<String>>>,
    index: HashMap<(String, RegexFlags), u32>,
}

impl RegexTable {
    /// Compiles every regex of `rule` not seen before. On error nothing of
    /// the rule is kept, and the reason says what to change.
    pub(super) fn add_rule(&mut self, rule: &Rule) -> Result<(), String> {
        let RuleBody::Expr(e) = &rule.body else {
            return Ok(());
        };
        let mut new = Vec::new();
        self.collect(e, &mut new)?;
        for (key, re) in new {
            if !self.index.contains_key(&key) {
                self.gates.push(required_literals(&key.0, key.1));
                self.index.insert(key, self.regexes.len() as u32);
                self.regexes.push(re);
            }
        }
        Ok(())
    }

    fn collect(
        &self,
        e: &Expr,
        new: &mut Vec<((String, RegexFlags), meta::Regex)>,
    ) -> Result<(), String> {
        match e {
            Expr::Atom(a) => {
                let Some((pattern, flags)) = regex_flags(&a.test) else {
                    return Ok(());
                };
                let key = (pattern.to_owned(), flags);
                if self.index.contains_key(&key) || new.iter().any(|(k, _)| *k == key) {
                    return Ok(());
                }
                new.push((key, build(pattern, flags)?));
                Ok(())
            }
            Expr::Const(_) => Ok(()),
            Expr::And(v) | Expr::Or(v) => v.iter().try_for_each(|e| self.collect(e, new)),
            Expr::Not(e) => self.collect(e, new),
        }
    }

    /// The id of a regex of an accepted rule.
    pub(super) fn id(&self, pattern: &str, flags: RegexFlags) -> u32 {
        self.index[&(pattern.to_owned(), flags)]
    }

    pub(super) fn len(&self) -> usize {
        self.regexes.len()
    }
}

/// Builds one regex exactly as `regex::RegexBuilder` would (leftmost-first,
/// UTF-8), so verdicts are those of the `regex` crate.
fn build(pattern: &str, f: RegexFlags) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .hybrid_cache_capacity(2 << 20)
                .match_kind(regex_automata::MatchKind::LeftmostFirst)
                .utf8_empty(true),
        )
        .syntax(
            syntax::Config::new()
                .utf8(true)
                .case_insensitive(f.case_insensitive)
                .multi_line(f.multi_line)
                .dot_matches_new_line(f.dot_all),
        )
        .build(pattern)
        .map_err(|e| match (e.size_limit(), e.syntax_error()) {
            (Some(limit), _) => format!(
                "regex `{pattern}` compiles to more than {limit} bytes; simplify it \
                 (bounded repetitions of large classes such as `\\w{{1000}}` are the \
                 usual cause)"
            ),
            (None, Some(syntax)) => format!("regex `{pattern}` does not compile: {syntax}"),
            (None, None) => format!("regex `{pattern}` does not compile: {e}"),
        })
}

/// At most this many literals gate one regex; more would cost the scan more
/// than running the regex saves.
const MAX_GATE_LITERALS: usize = 64;

/// Literals one of which every match of the regex contains, ASCII-lower-cased
/// and deduplicated, so a regex need only run when its rule's literal scan
/// saw one: every match starts with one of the regex's prefix literals (or
/// ends with one of its suffix literals), whichever set has the longer
/// shortest literal. Compared ignoring ASCII case, a gate may let through
/// text the regex then rejects, never the other way round. `None` when a
/// match can start and end with anything (`\w+x\w+`), or when the set is
/// too large or has an empty literal.
pub(super) fn required_literals(pattern: &str, f: RegexFlags) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(true)
        .case_insensitive(f.case_insensitive)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
        .build()
        .parse(pattern)
        .ok()?;
    let mut best: Option<Vec<String>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let seq = Extractor::new()
            .kind(kind.clone())
            .limit_total(4096)
            .extract(&hir);
        let Some(lits) = seq.literals() else { continue };
        let mut out: Vec<String> = Vec::with_capacity(lits.len());
        for lit in lits {
            let bytes = lit.as_bytes();
            // A literal cut short by the extractor's limits may end (or, for
            // a suffix, start) inside a character: keep its whole characters.
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t.to_owned(),
                Err(e) if kind.is_prefix() => {
                    String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
                }
                Err(_) => {
                    let start = bytes
                        .iter()
                        .position(|b| (b & 0xC0) != 0x80)
                        .unwrap_or(bytes.len());
                    String::from_utf8_lossy(&bytes[start..]).into_owned()
                }
            };
            if text.is_empty() {
                out.clear();
                break;
            }
            out.push(text.to_ascii_lowercase());
        }
        out.sort_unstable();
        out.dedup();
        if out.is_empty() || out.len() > MAX_GATE_LITERALS {
            continue;
        }
        let shortest = |v: &[String]| v.iter().map(String::len).min().unwrap_or(0);
        if best.as_ref().is_none_or(|b| shortest(&out) > shortest(b)) {
            best = Some(out);
        }
    }
    best
}
