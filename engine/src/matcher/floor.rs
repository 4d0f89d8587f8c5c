//! The naive baseline the matcher is measured against: one overlapping,
//! ASCII-case-insensitive Aho-Corasick pass per field over *every* literal
//! the rules test on that field, and nothing else (no verification, no rule
//! evaluation). A matcher that evaluates every rule fully should cost no
//! more than merely running this pass; benchmarks report the ratio.
//!
//! ```
//! use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
//! use trawl_engine::matcher::LiteralFloor;
//!
//! let rules = trawl_engine::seed::load().rules;
//! let floor = LiteralFloor::build(&rules);
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
//! ev.set(fields::IMAGE, "C:\\Tools\\PAExec.exe".into());
//! ev.set(fields::COMMAND_LINE, "paexec.exe -service".into());
//! // `\paexec.exe` in Image, `-service` in CommandLine.
//! assert_eq!(floor.scan(&ev), 2);
//! ```

use aho_corasick::{AhoCorasick, MatchKind};

use crate::event::{Event, EventKind, FieldKey, NumBuf, Os};
use crate::rule::{Expr, FieldTarget, GlobToken, Rule, RuleBody, Test};

/// Per (kind, OS) pair, one automaton per named field over every literal
/// (string tests and the literal pieces of globs) of the rules in scope.
#[derive(Debug)]
pub struct LiteralFloor {
    /// (kind, os) -> the automata of that pair's rules.
    views: [[Vec<(FieldKey, AhoCorasick)>; 2]; 6],
}

impl LiteralFloor {
    /// Builds the automata for `rules`.
    pub fn build(rules: &[Rule]) -> LiteralFloor {
        let mut views: [[Vec<(FieldKey, AhoCorasick)>; 2]; 6] = Default::default();
        for kind in EventKind::ALL {
            for os in Os::ALL {
                let mut per_field: Vec<(FieldKey, Vec<String>)> = Vec::new();
                for r in rules.iter().filter(|r| r.scope.admits(kind, os)) {
                    if let RuleBody::Expr(e) = &r.body {
                        literals(e, &mut per_field);
                    }
                }
                views[kind.index()][os.index()] = per_field
                    .into_iter()
                    .map(|(key, mut lits)| {
                        lits.sort_unstable();
                        lits.dedup();
                        let ac = AhoCorasick::builder()
                            .ascii_case_insensitive(true)
                            .match_kind(MatchKind::Standard)
                            .build(&lits)
                            .expect("an automaton over literals always builds");
                        (key, ac)
                    })
                    .collect();
            }
        }
        LiteralFloor { views }
    }

    /// Runs the pass over `event`: every overlapping hit of every literal in
    /// every field it has. Returns the number of hits (so the work cannot be
    /// optimised away).
    pub fn scan(&self, event: &Event) -> usize {
        let mut hits = 0;
        let mut num = NumBuf::new();
        for (key, ac) in &self.views[event.kind.index()][event.os.index()] {
            if let Some(text) = event.get(key).and_then(|v| v.match_text(&mut num)) {
                hits += ac.find_overlapping_iter(text).count();
            }
        }
        hits
    }
}

fn literals(e: &Expr, out: &mut Vec<(FieldKey, Vec<String>)>) {
    match e {
        Expr::Atom(a) => {
            let FieldTarget::Field(key) = &a.target else {
                return;
            };
            let lits: Vec<&str> = match &a.test {
                Test::Str { value, .. } => vec![value.as_str()],
                Test::Glob { tokens, .. } => tokens
                    .iter()
                    .filter_map(|t| match t {
                        GlobToken::Lit(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect(),
                _ => return,
            };
            let slot = match out.iter().position(|(k, _)| k == key) {
                Some(p) => p,
                None => {
                    out.push((key.clone(), Vec::new()));
                    out.len() - 1
                }
            };
            out[slot].1.extend(
                lits.into_iter()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| literals(e, out)),
        Expr::Not(e) => literals(e, out),
        Expr::Const(_) => {}
    }
}
