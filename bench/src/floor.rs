//! The floor trawl's matcher is measured against: for each event, one
//! overlapping, ASCII-case-insensitive Aho-Corasick pass per field over
//! *every* literal the rules test on that field, counting the hits, and
//! nothing else: no position checks, no rule evaluation, no regexes.
//!
//! A detector that evaluates every rule fully and is not at least as fast as
//! this pass does more work per event than simply looking for the rules'
//! words; the engine/floor ratio is the benchmarks' headline.
//!
//! The floor scans every field of every event. The engine remembers the
//! literals of field texts it has scanned and does not scan a repeated one
//! again, so its ratio partly reflects how often a corpus repeats values;
//! the harness and `evtx_match` also report the engine with that memory off
//! ([`trawl_engine::matcher::Scratch::remember_texts`]), which scans as the
//! floor does.
//!
//! The literals are read from the rules' IR ([`trawl_engine::rule`]): every
//! string test's value and every literal piece of a glob, per field target,
//! for the rules in scope of each (event kind, OS) pair, as the engine
//! scopes them. Literals are deduplicated per field ignoring ASCII case (the
//! automaton would report a repeat twice); empty ones (a rule testing for an
//! empty value) match everywhere and are left out. Keyword rules (any field)
//! get an automaton that runs over every field of the event.
//!
//! ```
//! use trawl_engine::load::RuleSources;
//! let rules = RuleSources { default_rules: true, ..Default::default() }.load().unwrap();
//! let floor = trawl_bench::floor::Floor::build(rules.ruleset.rules());
//! assert!(floor.stats().literals > 10);
//! ```

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;
use trawl_engine::event::{Event, EventKind, NumBuf, Os};
use trawl_engine::rule::{Expr, FieldTarget, GlobToken, Rule, RuleBody, Test};

/// What the floor scans, for an honest report next to its speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloorStats {
    /// Rules read.
    pub rules: usize,
    /// Distinct (field, literal) pairs over all rules.
    pub literals: usize,
    /// Distinct fields (targets) those literals are on.
    pub fields: usize,
    /// Regex tests, which the floor does not run (the engine does).
    pub regexes: usize,
    /// IOC list rules (hash lookups, no literals).
    pub ioc_rules: usize,
    /// Empty literals left out.
    pub empty_literals: usize,
}

/// The automata of the rules in scope for one (event kind, OS) pair.
#[derive(Debug, Default)]
struct View {
    /// One automaton per field target, in a fixed order.
    scans: Vec<(FieldTarget, AhoCorasick)>,
    /// Keyword literals, scanned over every field.
    any_field: Option<AhoCorasick>,
    literals: usize,
}

/// The per-field literal automata of a rule set (see the module docs).
#[derive(Debug)]
pub struct Floor {
    views: Vec<View>,
    /// (kind, os) -> index into `views`.
    view_of: [[usize; 2]; 6],
    stats: FloorStats,
}

/// Per-thread buffers for [`Floor::scan`], reused from event to event.
#[derive(Debug, Default)]
pub struct FloorScratch {
    num: NumBuf,
    derived: String,
}

/// Literals per field target, targets in order of first appearance.
#[derive(Debug, Default)]
struct Literals(Vec<(FieldTarget, BTreeSet<String>)>);

impl Literals {
    fn entry(&mut self, target: &FieldTarget) -> &mut BTreeSet<String> {
        let i = match self.0.iter().position(|(t, _)| t == target) {
            Some(i) => i,
            None => {
                self.0.push((target.clone(), BTreeSet::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    fn merge(&mut self, other: &Literals) {
        for (target, set) in &other.0 {
            self.entry(target).extend(set.iter().cloned());
        }
    }

    fn count(&self) -> usize {
        self.0.iter().map(|(_, s)| s.len()).sum()
    }
}

impl Floor {
    /// Builds the automata for `rules` (typically `LoadedRules::ruleset.rules()`,
    /// so the floor reads exactly the rules the engine runs).
    pub fn build(rules: &[Rule]) -> Floor {
        let mut stats = FloorStats {
            rules: rules.len(),
            ..Default::default()
        };
        let mut per_rule: Vec<Literals> = Vec::with_capacity(rules.len());
        let mut all = Literals::default();
        for rule in rules {
            let mut lits = Literals::default();
            match &rule.body {
                RuleBody::Expr(expr) => collect(expr, &mut lits, &mut stats),
                RuleBody::Ioc(_) => stats.ioc_rules += 1,
            }
            all.merge(&lits);
            per_rule.push(lits);
        }
        stats.fields = all.0.len();
        stats.literals = all.count();

        // One view per distinct set of rules in scope, as the engine shares them.
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut views = Vec::new();
        let mut view_of = [[0usize; 2]; 6];
        for kind in EventKind::ALL {
            for os in Os::ALL {
                let in_scope: Vec<usize> = (0..rules.len())
                    .filter(|&i| rules[i].scope.admits(kind, os))
                    .collect();
                let index = match members.iter().position(|m| *m == in_scope) {
                    Some(i) => i,
                    None => {
                        views.push(View::build(in_scope.iter().map(|&i| &per_rule[i])));
                        members.push(in_scope);
                        members.len() - 1
                    }
                };
                view_of[kind.index()][os.index()] = index;
            }
        }
        Floor {
            views,
            view_of,
            stats,
        }
    }

    /// What the floor scans.
    pub fn stats(&self) -> FloorStats {
        self.stats
    }

    /// Distinct literals the automata hold for events of `kind` on `os`.
    pub fn view_literals(&self, kind: EventKind, os: Os) -> usize {
        self.views[self.view_of[kind.index()][os.index()]].literals
    }

    /// Runs every automaton of the event's scope over its field and returns
    /// the number of (overlapping) literal hits.
    pub fn scan(&self, event: &Event, scratch: &mut FloorScratch) -> u64 {
        let view = &self.views[self.view_of[event.kind.index()][event.os.index()]];
        let mut hits = 0u64;
        for (target, ac) in &view.scans {
            let text = match target {
                FieldTarget::Field(key) => {
                    event.get(key).and_then(|v| v.match_text(&mut scratch.num))
                }
                FieldTarget::Derived(d) => d.text(event, &mut scratch.derived),
                FieldTarget::AnyField => None,
            };
            if let Some(text) = text {
                hits += ac.find_overlapping_iter(text).count() as u64;
            }
        }
        if let Some(ac) = &view.any_field {
            for (_, value) in event.fields() {
                if let Some(text) = value.match_text(&mut scratch.num) {
                    hits += ac.find_overlapping_iter(text).count() as u64;
                }
            }
        }
        hits
    }
}

impl View {
    fn build<'a>(rules: impl Iterator<Item = &'a Literals>) -> View {
        let mut merged = Literals::default();
        for lits in rules {
            merged.merge(lits);
        }
        let automaton = |set: &BTreeSet<String>| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(set)
                .expect("literal automata stay far below the crate's size limits")
        };
        let mut view = View {
            literals: merged.count(),
            ..View::default()
        };
        for (target, set) in &merged.0 {
            if *target == FieldTarget::AnyField {
                view.any_field = Some(automaton(set));
            } else {
                view.scans.push((target.clone(), automaton(set)));
            }
        }
        view
    }
}

/// Adds every literal of `expr` to `lits`, ASCII-lower-cased.
fn collect(expr: &Expr, lits: &mut Literals, stats: &mut FloorStats) {
    match expr {
        Expr::Atom(atom) => {
            let mut add = |s: &str| {
                if s.is_empty() {
                    stats.empty_literals += 1;
                } else {
                    lits.entry(&atom.target).insert(s.to_ascii_lowercase());
                }
            };
            match &atom.test {
                Test::Str { value, .. } => add(value),
                Test::Glob { tokens, .. } => {
                    for t in tokens {
                        if let GlobToken::Lit(s) = t {
                            add(s);
                        }
                    }
                }
                Test::Regex { .. } => stats.regexes += 1,
                _ => {}
            }
        }
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| collect(e, lits, stats)),
        Expr::Not(e) => collect(e, lits, stats),
        Expr::Const(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::event::{fields, Timestamp};
    use trawl_engine::rule::{Atom, Level, Scope, StrOp};

    fn rule(id: &str, scope: Scope, expr: Expr) -> Rule {
        Rule {
            id: id.into(),
            title: id.into(),
            level: Level::High,
            tags: vec![],
            origin: "test".into(),
            scope,
            body: RuleBody::Expr(expr),
        }
    }

    fn contains(key: trawl_engine::event::FieldKey, value: &str) -> Expr {
        Expr::Atom(Atom::field(
            key,
            Test::Str {
                op: StrOp::Contains,
                value: value.into(),
                cased: false,
            },
        ))
    }

    /// Overlapping hits are all counted, case is ignored, a literal shared
    /// by two rules is scanned once, a rule out of the event's scope and a
    /// field the event lacks add nothing, and glob pieces are literals too.
    #[test]
    fn counts_every_overlapping_literal_hit() {
        let process = Scope {
            kinds: trawl_engine::rule::KindSet::of(&[EventKind::ProcessStart]),
            os: Some(Os::Windows),
        };
        let files = Scope {
            kinds: trawl_engine::rule::KindSet::of(&[EventKind::FileCreate]),
            os: None,
        };
        let rules = vec![
            rule(
                "a",
                process,
                Expr::Or(vec![
                    contains(fields::COMMAND_LINE, "abc"),
                    contains(fields::COMMAND_LINE, "BC"),
                ]),
            ),
            rule(
                "b",
                process,
                Expr::And(vec![
                    contains(fields::COMMAND_LINE, "c"),
                    Expr::Not(Box::new(contains(fields::COMMAND_LINE, "abc"))),
                    contains(fields::PARENT_IMAGE, "nowhere"),
                    Expr::Atom(Atom::field(
                        fields::IMAGE,
                        Test::Glob {
                            tokens: vec![
                                GlobToken::Lit("c:\\".into()),
                                GlobToken::Star,
                                GlobToken::Lit("\\x.exe".into()),
                            ],
                            cased: false,
                        },
                    )),
                ]),
            ),
            rule("c", files, contains(fields::COMMAND_LINE, "x")),
        ];
        let floor = Floor::build(&rules);
        assert_eq!(
            floor.stats(),
            FloorStats {
                rules: 3,
                literals: 7,
                fields: 3,
                ..Default::default()
            }
        );
        assert_eq!(floor.view_literals(EventKind::ProcessStart, Os::Windows), 6);
        assert_eq!(floor.view_literals(EventKind::ProcessStart, Os::Linux), 0);

        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev.set(fields::COMMAND_LINE, "xABCx abc".into());
        ev.set(fields::IMAGE, "C:\\Tools\\x.exe".into());
        let mut scratch = FloorScratch::default();
        // CommandLine: abc, bc, c twice each (6); Image: `c:\` and `\x.exe` (2).
        assert_eq!(floor.scan(&ev, &mut scratch), 8);
        // The same text on Linux: no rule in scope.
        ev.os = Os::Linux;
        assert_eq!(floor.scan(&ev, &mut scratch), 0);
        // A file event sees only rule c: `x` twice.
        let mut file = Event::new(EventKind::FileCreate, Os::Linux, Timestamp::UNIX_EPOCH);
        file.set(fields::COMMAND_LINE, "xABCx".into());
        assert_eq!(floor.scan(&file, &mut scratch), 2);
    }
}
