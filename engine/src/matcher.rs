//! The compiled rule set: one pass per field, whatever the number of rules.
//!
//! [`Ruleset::compile`] takes the [`Rule`]s of every front end and, for each
//! (event kind, OS) pair, builds a *view*: the rules in scope there, their atoms
//! deduplicated, and for every field one ASCII-case-insensitive Aho-Corasick
//! automaton holding every literal any of those rules tests on that field.
//! Evaluating an event then costs:
//!
//! 1. one overlapping automaton pass per field that has literals (hits are
//!    checked for position: prefix = starts at 0, suffix = ends at the end,
//!    equals = both, term = alphanumeric ends on term boundaries; and, for
//!    case-sensitive literals, exact bytes);
//! 2. the rules touched by a hit, plus the few rules that can match without any
//!    literal (found at compile time by evaluating each condition in three-valued
//!    logic with every literal false), are evaluated over the hit bitset;
//! 3. other tests (globs, regexes, numbers, `exists`, `null`, field references,
//!    CIDR) run lazily, only for those candidate rules, once per event; a
//!    field's regexes run together as one `RegexSet`.
//!
//! A glob with a literal piece is compiled as "contains the longest piece AND
//! the glob", so it, too, only costs work when its literal is seen.
//!
//! ```
//! use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
//! use trawl_engine::matcher::{Ruleset, Scratch};
//! use trawl_engine::sigma;
//!
//! let load = sigma::parse_str(r#"
//! title: procdump on lsass
//! id: 00000000-0000-0000-0000-000000000001
//! logsource: {category: process_creation, product: windows}
//! detection:
//!   sel: {Image|endswith: '\procdump.exe', CommandLine|contains: lsass}
//!   condition: sel
//! "#, "example.yml");
//! let (ruleset, rejected) = Ruleset::compile(load.rules);
//! assert!(rejected.is_empty());
//!
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
//! ev.set(fields::IMAGE, "C:\\Tools\\ProcDump.exe".into());
//! ev.set(fields::COMMAND_LINE, "procdump.exe -ma LSASS.exe out.dmp".into());
//! let mut scratch = Scratch::new(&ruleset);
//! let mut out = Vec::new();
//! ruleset.evaluate(&ev, &mut scratch, &mut out);
//! assert_eq!(ruleset.rule(out[0].rule).id, "00000000-0000-0000-0000-000000000001");
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::event::{Event, EventKind, FieldKey, NumBuf, Os, Value};
use crate::ioc::IocSet;
use crate::rule::{Atom, Expr, FieldTarget, GlobToken, Rule, RuleBody, StrOp, Test, Unsupported};

/// Generous limits: SigmaHQ has a few large alternations, and a rule set is
/// compiled once.
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// One rule's verdict on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Index of the rule in [`Ruleset::rules`].
    pub rule: usize,
    /// Why it fired: the tests that held.
    pub matches: Vec<Match>,
}

/// One test that held for a firing rule, for the analyst reading the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The event field it held on.
    pub field: String,
    /// The test: `contains`, `startswith`, `endswith`, `equals`, `has`, `glob`,
    /// `re`, `lt`…, `exists`, `null`, `fieldref`, `cidr`, `ioc`.
    pub op: String,
    /// The rule's literal, pattern or number; for IOC hits, the hash.
    pub value: String,
    /// For IOC hits: the name the list gives the indicator.
    pub name: Option<String>,
}

/// All loaded rules, compiled for matching. Immutable and shared by every
/// worker thread (it is `Send + Sync`); per-thread state lives in [`Scratch`].
#[derive(Debug)]
pub struct Ruleset {
    rules: Vec<Rule>,
    views: Vec<View>,
    /// (kind, os) -> index into `views`.
    view_of: [[usize; 2]; 6],
    max_atoms: usize,
    max_rules: usize,
    max_regex_fields: usize,
}

impl Ruleset {
    /// Compiles rules, in the order given (alerts of one event come out in this
    /// order). Rules that cannot be compiled (a regex the engine rejects) are
    /// returned with the reason; they never stop the others.
    pub fn compile(rules: Vec<Rule>) -> (Ruleset, Vec<Unsupported>) {
        let mut accepted = Vec::with_capacity(rules.len());
        let mut rejected = Vec::new();
        for rule in rules {
            match validate(&rule) {
                Ok(()) => accepted.push(rule),
                Err(reason) => rejected.push(Unsupported {
                    path: rule.origin.clone(),
                    id: Some(rule.id.clone()),
                    title: Some(rule.title.clone()),
                    reason,
                    out_of_scope: false,
                }),
            }
        }

        // Views shared by every (kind, os) pair that sees the same rules.
        let mut views: Vec<View> = Vec::new();
        let mut by_members: HashMap<Vec<usize>, usize> = HashMap::new();
        let mut view_of = [[0usize; 2]; 6];
        for kind in EventKind::ALL {
            for os in Os::ALL {
                let members: Vec<usize> = accepted
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.scope.admits(kind, os))
                    .map(|(i, _)| i)
                    .collect();
                let idx = *by_members.entry(members.clone()).or_insert_with(|| {
                    views.push(View::build(&accepted, &members));
                    views.len() - 1
                });
                view_of[kind.index()][os.index()] = idx;
            }
        }
        let max_atoms = views.iter().map(|v| v.atoms.len()).max().unwrap_or(0);
        let max_rules = views.iter().map(|v| v.rules.len()).max().unwrap_or(0);
        let max_regex_fields = views
            .iter()
            .map(|v| v.regex_fields.len())
            .max()
            .unwrap_or(0);
        (
            Ruleset {
                rules: accepted,
                views,
                view_of,
                max_atoms,
                max_rules,
                max_regex_fields,
            },
            rejected,
        )
    }

    /// The compiled rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// One rule by its index (as in [`Detection::rule`]).
    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    /// How many rules are compiled.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is compiled.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many distinct literals the automata of one (kind, os) view hold, and
    /// how many rules are evaluated on every event of it (no literal gate).
    pub fn view_stats(&self, kind: EventKind, os: Os) -> ViewStats {
        let v = &self.views[self.view_of[kind.index()][os.index()]];
        ViewStats {
            rules: v.rules.len(),
            atoms: v.atoms.len(),
            literals: v.scans.iter().map(|s| s.scan.uses.len()).sum::<usize>()
                + v.keyword_scan.as_ref().map_or(0, |s| s.uses.len()),
            always_evaluated: v.always.len(),
        }
    }

    /// Evaluates one event against every rule in its scope and appends a
    /// [`Detection`] for each rule that fires, in load order.
    pub fn evaluate(&self, event: &Event, scratch: &mut Scratch, out: &mut Vec<Detection>) {
        scratch.fit(self);
        let view = &self.views[self.view_of[event.kind.index()][event.os.index()]];
        if view.rules.is_empty() {
            return;
        }
        view.scan(event, scratch);
        // Candidates: touched rules (marked during the scan) plus the always list.
        for &r in &view.always {
            if !scratch.rule_mark[r as usize] {
                scratch.rule_mark[r as usize] = true;
                scratch.candidates.push(r);
            }
        }
        scratch.candidates.sort_unstable();
        let candidates = std::mem::take(&mut scratch.candidates);
        for &r in &candidates {
            let vr = &view.rules[r as usize];
            match &vr.body {
                CBody::Expr(node) => {
                    if view.eval(node, event, scratch) {
                        let mut matches = Vec::new();
                        view.collect_matches(node, true, event, scratch, &mut matches);
                        out.push(Detection {
                            rule: vr.global,
                            matches,
                        });
                    }
                }
                CBody::Ioc(set) => {
                    let mut matches = Vec::new();
                    set.hits(event, |entry, key| {
                        matches.push(Match {
                            field: key.as_str().to_owned(),
                            op: "ioc".to_owned(),
                            value: entry.digest.to_string(),
                            name: Some(entry.name.clone()),
                        })
                    });
                    if !matches.is_empty() {
                        out.push(Detection {
                            rule: vr.global,
                            matches,
                        });
                    }
                }
            }
        }
        scratch.candidates = candidates;
        scratch.reset();
    }

    /// The ids of the rules that fire on `event`: a convenience for tests and
    /// one-off checks (it allocates; the pipeline uses [`Ruleset::evaluate`]).
    pub fn matching_ids(&self, event: &Event) -> Vec<&str> {
        let mut scratch = Scratch::new(self);
        let mut out = Vec::new();
        self.evaluate(event, &mut scratch, &mut out);
        out.iter().map(|d| self.rules[d.rule].id.as_str()).collect()
    }
}

/// Sizes of one compiled view, for `trawl rules check` and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewStats {
    pub rules: usize,
    pub atoms: usize,
    pub literals: usize,
    pub always_evaluated: usize,
}

/// Per-thread working memory for [`Ruleset::evaluate`]: reused from event to
/// event so evaluation allocates nothing unless a rule fires.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Per atom: 0 = not (yet) known true, 1 = true, 2 = false.
    state: Vec<u8>,
    dirty: Vec<u32>,
    /// For keyword atoms: the index of the event field the hit was in.
    hit_field: Vec<u32>,
    rule_mark: Vec<bool>,
    candidates: Vec<u32>,
    regex_done: Vec<bool>,
    regex_dirty: Vec<u32>,
    num: NumBuf,
}

const TRUE: u8 = 1;
const FALSE: u8 = 2;

impl Scratch {
    /// Working memory sized for `ruleset`.
    pub fn new(ruleset: &Ruleset) -> Scratch {
        let mut s = Scratch::default();
        s.fit(ruleset);
        s
    }

    fn fit(&mut self, rs: &Ruleset) {
        if self.state.len() < rs.max_atoms {
            self.state.resize(rs.max_atoms, 0);
            self.hit_field.resize(rs.max_atoms, 0);
        }
        if self.rule_mark.len() < rs.max_rules {
            self.rule_mark.resize(rs.max_rules, false);
        }
        if self.regex_done.len() < rs.max_regex_fields {
            self.regex_done.resize(rs.max_regex_fields, false);
        }
    }

    #[inline]
    fn set(&mut self, atom: u32, value: u8) {
        let slot = &mut self.state[atom as usize];
        if *slot == 0 {
            self.dirty.push(atom);
        }
        *slot = value;
    }

    fn reset(&mut self) {
        for &a in &self.dirty {
            self.state[a as usize] = 0;
        }
        self.dirty.clear();
        for &r in &self.candidates {
            self.rule_mark[r as usize] = false;
        }
        self.candidates.clear();
        for &f in &self.regex_dirty {
            self.regex_done[f as usize] = false;
        }
        self.regex_dirty.clear();
    }
}

// ---------------------------------------------------------------------------
// Compiled form

#[derive(Debug)]
struct View {
    rules: Vec<ViewRule>,
    atoms: Vec<CAtom>,
    /// For each literal atom, the view rules that use it.
    atom_rules: Vec<Vec<u32>>,
    scans: Vec<FieldScan>,
    keyword_scan: Option<LiteralScan>,
    regex_fields: Vec<RegexField>,
    always: Vec<u32>,
}

#[derive(Debug)]
struct ViewRule {
    global: usize,
    body: CBody,
}

#[derive(Debug)]
enum CBody {
    Expr(Node),
    Ioc(IocSet),
}

#[derive(Debug)]
enum Node {
    Atom(u32),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Const(bool),
}

#[derive(Debug)]
struct CAtom {
    target: FieldTarget,
    test: Test,
    kind: AtomKind,
}

#[derive(Debug)]
enum AtomKind {
    /// Set by the literal scan; false when not hit.
    Literal,
    /// Evaluated on demand.
    Lazy,
    /// A regex on a named field: answered for all of that field's regexes at
    /// once by the field's `RegexSet` (index into `View::regex_fields`).
    Regex { field: u32 },
    /// A keyword (any-field) regex, run field by field.
    AnyRegex(Box<Regex>),
}

#[derive(Debug)]
struct FieldScan {
    key: FieldKey,
    scan: LiteralScan,
}

/// One automaton over the distinct literals of one field.
#[derive(Debug)]
struct LiteralScan {
    ac: AhoCorasick,
    /// Pattern id -> the atoms that use it.
    uses: Vec<Vec<LitUse>>,
}

#[derive(Debug)]
struct LitUse {
    atom: u32,
    op: StrOp,
    /// For case-sensitive literals: the exact bytes to verify.
    cased: Option<Arc<str>>,
}

#[derive(Debug)]
struct RegexField {
    key: FieldKey,
    set: RegexSet,
    /// Set pattern index -> atom.
    atoms: Vec<u32>,
}

/// Whether a Str test can be served by the automaton (see [`literal_variants`]).
fn is_literal(test: &Test) -> bool {
    match test {
        Test::Str { value, cased, .. } => {
            !value.is_empty() && (*cased || literal_variants(value).is_some())
        }
        _ => false,
    }
}

/// At most this many spellings of one literal go into an automaton.
const MAX_CASE_VARIANTS: usize = 16;

/// The spellings a case-insensitive literal needs in an automaton that folds
/// ASCII only. ASCII and caseless characters (dashes, U+202E, digits) need one;
/// each cased non-ASCII letter (Cyrillic look-alikes, accented letters) needs
/// its lower- and upper-case forms. `None` when there would be more than
/// [`MAX_CASE_VARIANTS`]: such a literal is tested directly instead.
fn literal_variants(value: &str) -> Option<Vec<String>> {
    let mut variants = vec![String::with_capacity(value.len())];
    for c in value.chars() {
        let mut forms: Vec<String> = vec![c.to_string()];
        if !c.is_ascii() {
            for f in [c.to_lowercase().to_string(), c.to_uppercase().to_string()] {
                if !forms.contains(&f) {
                    forms.push(f);
                }
            }
        }
        if forms.len() == 1 {
            variants.iter_mut().for_each(|v| v.push(c));
            continue;
        }
        if variants.len() * forms.len() > MAX_CASE_VARIANTS {
            return None;
        }
        variants = variants
            .iter()
            .flat_map(|v| forms.iter().map(move |f| format!("{v}{f}")))
            .collect();
    }
    Some(variants)
}

fn build_regex(pattern: &str, ci: bool, ml: bool, dotall: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(ci)
        .multi_line(ml)
        .dot_matches_new_line(dotall)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn validate(rule: &Rule) -> Result<(), String> {
    fn walk(e: &Expr) -> Result<(), String> {
        match e {
            Expr::Atom(Atom {
                test:
                    Test::Regex {
                        pattern,
                        case_insensitive,
                        multi_line,
                        dot_all,
                    },
                ..
            }) => build_regex(pattern, *case_insensitive, *multi_line, *dot_all)
                .map(|_| ())
                .map_err(|e| format!("regex `{pattern}` does not compile: {e}")),
            Expr::Atom(_) | Expr::Const(_) => Ok(()),
            Expr::And(v) | Expr::Or(v) => v.iter().try_for_each(walk),
            Expr::Not(e) => walk(e),
        }
    }
    match &rule.body {
        RuleBody::Expr(e) => walk(e),
        RuleBody::Ioc(_) => Ok(()),
    }
}

/// Three-valued logic, for finding rules that need no literal to fire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tri {
    False,
    True,
    Unknown,
}

struct ViewBuilder {
    atoms: Vec<CAtom>,
    index: HashMap<(FieldTarget, TestKey), u32>,
}

/// A hashable identity for a test (f64 and IpNet compared by their text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TestKey(String);

impl ViewBuilder {
    fn intern(&mut self, target: &FieldTarget, test: &Test) -> u32 {
        let key = (target.clone(), TestKey(format!("{test:?}")));
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let kind = if is_literal(test) {
            AtomKind::Literal
        } else {
            AtomKind::Lazy
        };
        let id = self.atoms.len() as u32;
        self.atoms.push(CAtom {
            target: target.clone(),
            test: test.clone(),
            kind,
        });
        self.index.insert(key, id);
        id
    }

    fn lower(&mut self, e: &Expr) -> Node {
        match e {
            Expr::Atom(atom) => {
                if let Test::Glob { tokens, cased } = &atom.test {
                    // Gate a glob on its longest literal piece, so it only costs
                    // work when that piece is in the text.
                    let longest = tokens
                        .iter()
                        .filter_map(|t| match t {
                            GlobToken::Lit(s) => Some(s),
                            _ => None,
                        })
                        .max_by_key(|s| s.len());
                    let glob = Node::Atom(self.intern(&atom.target, &atom.test));
                    if let Some(lit) = longest.filter(|s| !s.is_empty() && s.is_ascii()) {
                        let gate = Test::Str {
                            op: StrOp::Contains,
                            value: lit.clone(),
                            cased: *cased,
                        };
                        let gate = Node::Atom(self.intern(&atom.target, &gate));
                        return Node::And(vec![gate, glob]);
                    }
                    return glob;
                }
                Node::Atom(self.intern(&atom.target, &atom.test))
            }
            Expr::And(v) => Node::And(v.iter().map(|e| self.lower(e)).collect()),
            Expr::Or(v) => Node::Or(v.iter().map(|e| self.lower(e)).collect()),
            Expr::Not(e) => Node::Not(Box::new(self.lower(e))),
            Expr::Const(b) => Node::Const(*b),
        }
    }
}

fn tri(node: &Node, atoms: &[CAtom]) -> Tri {
    match node {
        Node::Atom(a) => match atoms[*a as usize].kind {
            AtomKind::Literal => Tri::False,
            _ => Tri::Unknown,
        },
        Node::Const(true) => Tri::True,
        Node::Const(false) => Tri::False,
        Node::Not(n) => match tri(n, atoms) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        },
        Node::And(v) => {
            let mut acc = Tri::True;
            for n in v {
                match tri(n, atoms) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => acc = Tri::Unknown,
                    Tri::True => {}
                }
            }
            acc
        }
        Node::Or(v) => {
            let mut acc = Tri::False;
            for n in v {
                match tri(n, atoms) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => acc = Tri::Unknown,
                    Tri::False => {}
                }
            }
            acc
        }
    }
}

fn node_atoms(node: &Node, out: &mut Vec<u32>) {
    match node {
        Node::Atom(a) => out.push(*a),
        Node::And(v) | Node::Or(v) => v.iter().for_each(|n| node_atoms(n, out)),
        Node::Not(n) => node_atoms(n, out),
        Node::Const(_) => {}
    }
}

fn build_scan(lits: Vec<(String, LitUse)>) -> Option<LiteralScan> {
    if lits.is_empty() {
        return None;
    }
    // One pattern per distinct lower-cased literal.
    let mut pat_index: HashMap<String, usize> = HashMap::new();
    let mut patterns: Vec<String> = Vec::new();
    let mut uses: Vec<Vec<LitUse>> = Vec::new();
    for (lit, u) in lits {
        let folded = lit.to_ascii_lowercase();
        let p = *pat_index.entry(folded.clone()).or_insert_with(|| {
            patterns.push(folded);
            uses.push(Vec::new());
            patterns.len() - 1
        });
        uses[p].push(u);
    }
    let ac = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(&patterns)
        .expect("an automaton over literals of bounded total size always builds");
    Some(LiteralScan { ac, uses })
}

impl View {
    fn build(rules: &[Rule], members: &[usize]) -> View {
        let mut b = ViewBuilder {
            atoms: Vec::new(),
            index: HashMap::new(),
        };
        let mut vrules = Vec::with_capacity(members.len());
        for &g in members {
            let body = match &rules[g].body {
                RuleBody::Expr(e) => CBody::Expr(b.lower(e)),
                RuleBody::Ioc(set) => CBody::Ioc(set.clone()),
            };
            vrules.push(ViewRule { global: g, body });
        }
        let mut atoms = b.atoms;

        // Which rules each literal atom can wake, and which rules need no literal.
        let mut atom_rules: Vec<Vec<u32>> = vec![Vec::new(); atoms.len()];
        let mut always = Vec::new();
        let mut buf = Vec::new();
        for (ri, vr) in vrules.iter().enumerate() {
            match &vr.body {
                CBody::Ioc(_) => always.push(ri as u32),
                CBody::Expr(node) => {
                    if tri(node, &atoms) != Tri::False {
                        always.push(ri as u32);
                    } else {
                        buf.clear();
                        node_atoms(node, &mut buf);
                        buf.sort_unstable();
                        buf.dedup();
                        for &a in &buf {
                            if matches!(atoms[a as usize].kind, AtomKind::Literal) {
                                atom_rules[a as usize].push(ri as u32);
                            }
                        }
                    }
                }
            }
        }

        // Literal automata, per field and for keywords.
        let mut per_field: Vec<(FieldKey, Vec<(String, LitUse)>)> = Vec::new();
        let mut keyword_lits = Vec::new();
        for (i, a) in atoms.iter().enumerate() {
            if !matches!(a.kind, AtomKind::Literal) {
                continue;
            }
            let Test::Str { op, value, cased } = &a.test else {
                continue;
            };
            let spellings = if *cased {
                vec![value.clone()]
            } else {
                literal_variants(value).unwrap_or_default()
            };
            let lits = match &a.target {
                FieldTarget::AnyField => &mut keyword_lits,
                FieldTarget::Field(k) => match per_field.iter().position(|(fk, _)| fk == k) {
                    Some(p) => &mut per_field[p].1,
                    None => {
                        per_field.push((k.clone(), Vec::new()));
                        &mut per_field.last_mut().expect("just pushed").1
                    }
                },
            };
            for spelling in spellings {
                let u = LitUse {
                    atom: i as u32,
                    op: *op,
                    cased: cased.then(|| Arc::from(value.as_str())),
                };
                lits.push((spelling, u));
            }
        }
        let scans = per_field
            .into_iter()
            .filter_map(|(key, lits)| build_scan(lits).map(|scan| FieldScan { key, scan }))
            .collect();
        let keyword_scan = build_scan(keyword_lits);

        // Regexes: one set per named field.
        let mut regex_fields: Vec<RegexField> = Vec::new();
        let mut pending: Vec<(FieldKey, Vec<(u32, String)>)> = Vec::new();
        for (i, a) in atoms.iter_mut().enumerate() {
            let Test::Regex {
                pattern,
                case_insensitive,
                multi_line,
                dot_all,
            } = &a.test
            else {
                continue;
            };
            // Flags scoped to this pattern inside the shared set; the set's own
            // defaults (case-sensitive, single-line) apply otherwise.
            let flags: String = [
                (*case_insensitive, 'i'),
                (*multi_line, 'm'),
                (*dot_all, 's'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
            let flagged = format!("(?{flags}:{pattern})");
            match &a.target {
                FieldTarget::AnyField => {
                    let re = build_regex(pattern, *case_insensitive, *multi_line, *dot_all)
                        .expect("validated at compile");
                    a.kind = AtomKind::AnyRegex(Box::new(re));
                }
                FieldTarget::Field(k) => match pending.iter_mut().find(|(fk, _)| fk == k) {
                    Some((_, v)) => v.push((i as u32, flagged)),
                    None => pending.push((k.clone(), vec![(i as u32, flagged)])),
                },
            }
        }
        for (key, pats) in pending {
            let set = RegexSetBuilder::new(pats.iter().map(|(_, p)| p.as_str()))
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .expect("every pattern was validated on its own");
            let field = regex_fields.len() as u32;
            for (atom, _) in &pats {
                atoms[*atom as usize].kind = AtomKind::Regex { field };
            }
            regex_fields.push(RegexField {
                key,
                set,
                atoms: pats.into_iter().map(|(a, _)| a).collect(),
            });
        }

        View {
            rules: vrules,
            atoms,
            atom_rules,
            scans,
            keyword_scan,
            regex_fields,
            always,
        }
    }

    /// The literal pass: one automaton run per field (and keyword run per
    /// string field), marking hit atoms and the rules they wake.
    fn scan(&self, event: &Event, s: &mut Scratch) {
        for fs in &self.scans {
            let Some(value) = event.get(&fs.key) else {
                continue;
            };
            let mut num = std::mem::take(&mut s.num);
            if let Some(text) = value.match_text(&mut num) {
                self.scan_text(&fs.scan, text, u32::MAX, s);
            }
            s.num = num;
        }
        if let Some(ks) = &self.keyword_scan {
            for (i, (_, value)) in event.fields().enumerate() {
                if let Value::Str(text) = value {
                    self.scan_text(ks, text, i as u32, s);
                }
            }
        }
    }

    #[inline]
    fn scan_text(&self, scan: &LiteralScan, text: &str, field_index: u32, s: &mut Scratch) {
        let hay = text.as_bytes();
        for m in scan.ac.find_overlapping_iter(hay) {
            for u in &scan.uses[m.pattern().as_usize()] {
                if s.state[u.atom as usize] == TRUE {
                    continue;
                }
                let (start, end) = (m.start(), m.end());
                let placed = match u.op {
                    StrOp::Contains => true,
                    StrOp::Prefix => start == 0,
                    StrOp::Suffix => end == hay.len(),
                    StrOp::Equals => start == 0 && end == hay.len(),
                    StrOp::Term => term_bounded(hay, start, end),
                };
                if !placed {
                    continue;
                }
                if let Some(exact) = &u.cased {
                    if &hay[start..end] != exact.as_bytes() {
                        continue;
                    }
                }
                s.set(u.atom, TRUE);
                s.hit_field[u.atom as usize] = field_index;
                for &r in &self.atom_rules[u.atom as usize] {
                    if !s.rule_mark[r as usize] {
                        s.rule_mark[r as usize] = true;
                        s.candidates.push(r);
                    }
                }
            }
        }
    }

    fn eval(&self, node: &Node, event: &Event, s: &mut Scratch) -> bool {
        match node {
            Node::Atom(a) => self.atom(*a, event, s),
            Node::And(v) => v.iter().all(|n| self.eval(n, event, s)),
            Node::Or(v) => v.iter().any(|n| self.eval(n, event, s)),
            Node::Not(n) => !self.eval(n, event, s),
            Node::Const(b) => *b,
        }
    }

    fn atom(&self, a: u32, event: &Event, s: &mut Scratch) -> bool {
        match s.state[a as usize] {
            TRUE => return true,
            FALSE => return false,
            _ => {}
        }
        let atom = &self.atoms[a as usize];
        let result = match &atom.kind {
            AtomKind::Literal => return false,
            AtomKind::Regex { field } => {
                self.run_regex_field(*field, event, s);
                return s.state[a as usize] == TRUE;
            }
            AtomKind::AnyRegex(re) => {
                let mut hit = None;
                for (i, (_, v)) in event.fields().enumerate() {
                    if let Value::Str(t) = v {
                        if re.is_match(t) {
                            hit = Some(i as u32);
                            break;
                        }
                    }
                }
                if let Some(i) = hit {
                    s.hit_field[a as usize] = i;
                }
                hit.is_some()
            }
            AtomKind::Lazy => match &atom.target {
                FieldTarget::Field(key) => eval_lazy(&atom.test, event.get(key), event, &mut s.num),
                FieldTarget::AnyField => {
                    let mut hit = None;
                    for (i, (_, v)) in event.fields().enumerate() {
                        if matches!(v, Value::Str(_))
                            && eval_lazy(&atom.test, Some(v), event, &mut s.num)
                        {
                            hit = Some(i as u32);
                            break;
                        }
                    }
                    if let Some(i) = hit {
                        s.hit_field[a as usize] = i;
                    }
                    hit.is_some()
                }
            },
        };
        s.set(a, if result { TRUE } else { FALSE });
        result
    }

    fn run_regex_field(&self, field: u32, event: &Event, s: &mut Scratch) {
        if s.regex_done[field as usize] {
            return;
        }
        s.regex_done[field as usize] = true;
        s.regex_dirty.push(field);
        let rf = &self.regex_fields[field as usize];
        let mut num = std::mem::take(&mut s.num);
        let text = event.get(&rf.key).and_then(|v| v.match_text(&mut num));
        match text {
            Some(t) => {
                let hits = rf.set.matches(t);
                for (i, &atom) in rf.atoms.iter().enumerate() {
                    s.set(atom, if hits.matched(i) { TRUE } else { FALSE });
                }
            }
            None => {
                for &atom in &rf.atoms {
                    s.set(atom, FALSE);
                }
            }
        }
        s.num = num;
    }

    /// The atoms that held in positive position of a firing rule.
    fn collect_matches(
        &self,
        node: &Node,
        positive: bool,
        event: &Event,
        s: &mut Scratch,
        out: &mut Vec<Match>,
    ) {
        match node {
            Node::Atom(a) => {
                if positive && self.atom(*a, event, s) {
                    let m = self.describe(*a, event, s);
                    if !out.contains(&m) {
                        out.push(m);
                    }
                }
            }
            Node::And(v) | Node::Or(v) => {
                for n in v {
                    self.collect_matches(n, positive, event, s, out);
                }
            }
            Node::Not(n) => self.collect_matches(n, !positive, event, s, out),
            Node::Const(_) => {}
        }
    }

    fn describe(&self, a: u32, event: &Event, s: &Scratch) -> Match {
        let atom = &self.atoms[a as usize];
        let field = match &atom.target {
            FieldTarget::Field(k) => k.as_str().to_owned(),
            FieldTarget::AnyField => event
                .fields()
                .nth(s.hit_field[a as usize] as usize)
                .map_or_else(|| "*".to_owned(), |(k, _)| k.as_str().to_owned()),
        };
        let (op, value) = match &atom.test {
            Test::Str { op, value, .. } => (op.as_str().to_owned(), value.clone()),
            Test::Glob { tokens, .. } => ("glob".to_owned(), glob_text(tokens)),
            Test::Regex { pattern, .. } => ("re".to_owned(), pattern.clone()),
            Test::Num { op, value } => (op.as_str().to_owned(), value.to_string()),
            Test::Exists(b) => ("exists".to_owned(), b.to_string()),
            Test::Null => ("null".to_owned(), String::new()),
            Test::FieldRef { other, op, .. } => (
                format!("fieldref|{}", op.as_str()),
                other.as_str().to_owned(),
            ),
            Test::Cidr(net) => ("cidr".to_owned(), net.to_string()),
        };
        Match {
            field,
            op,
            value,
            name: None,
        }
    }
}

/// Renders a glob back to Sigma-ish text (`*`, `?`), for alerts.
fn glob_text(tokens: &[GlobToken]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            GlobToken::Lit(s) => s.as_str(),
            GlobToken::Star => "*",
            GlobToken::Question => "?",
        })
        .collect()
}

/// KQL term boundaries: an alphanumeric end of the needle must not continue
/// into an alphanumeric character of the text.
#[inline]
fn term_bounded(hay: &[u8], start: usize, end: usize) -> bool {
    let first = hay[start];
    let last = hay[end - 1];
    (!first.is_ascii_alphanumeric() || start == 0 || !hay[start - 1].is_ascii_alphanumeric())
        && (!last.is_ascii_alphanumeric() || end == hay.len() || !hay[end].is_ascii_alphanumeric())
}

fn eval_lazy(test: &Test, value: Option<&Value>, event: &Event, num: &mut NumBuf) -> bool {
    match test {
        Test::Exists(want) => value.is_some_and(|v| !matches!(v, Value::Null)) == *want,
        Test::Null => match value {
            None | Some(Value::Null) => true,
            Some(Value::Str(s)) => s.is_empty(),
            Some(_) => false,
        },
        Test::Num { op, value: rhs } => value
            .and_then(Value::as_f64)
            .is_some_and(|lhs| op.apply(lhs, *rhs)),
        Test::Cidr(net) => value
            .and_then(Value::as_str)
            .and_then(|t| t.trim().parse::<IpAddr>().ok())
            .is_some_and(|ip| net.contains(&ip)),
        Test::Str {
            op,
            value: lit,
            cased,
        } => {
            let Some(text) = value.and_then(|v| v.match_text(num)) else {
                return false;
            };
            str_test(text, *op, lit, *cased)
        }
        Test::Glob { tokens, cased } => value
            .and_then(|v| v.match_text(num))
            .is_some_and(|t| glob_match(tokens, t, *cased)),
        Test::FieldRef { other, op, cased } => {
            let mut num2 = NumBuf::new();
            let (Some(a), Some(b)) = (
                value.and_then(|v| v.match_text(num)),
                event.get(other).and_then(|v| v.match_text(&mut num2)),
            ) else {
                return false;
            };
            str_test(a, *op, b, *cased)
        }
        // Regexes are compiled into sets and never reach here.
        Test::Regex { .. } => false,
    }
}

/// A string test done directly (empty or non-ASCII literals, field refs).
fn str_test(text: &str, op: StrOp, lit: &str, cased: bool) -> bool {
    if lit.is_empty() {
        return match op {
            StrOp::Equals => text.is_empty(),
            _ => true,
        };
    }
    let (t, l);
    let (text, lit) = if cased {
        (text, lit)
    } else {
        t = text.to_lowercase();
        l = lit.to_lowercase();
        (t.as_str(), l.as_str())
    };
    match op {
        StrOp::Equals => text == lit,
        StrOp::Contains => text.contains(lit),
        StrOp::Prefix => text.starts_with(lit),
        StrOp::Suffix => text.ends_with(lit),
        StrOp::Term => text
            .match_indices(lit)
            .any(|(i, m)| term_bounded(text.as_bytes(), i, i + m.len())),
    }
}

fn chars_eq(a: char, b: char, cased: bool) -> bool {
    if cased {
        a == b
    } else if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b || a.to_lowercase().eq(b.to_lowercase())
    }
}

/// Whole-text wildcard match: `*` any run (possibly empty), `?` exactly one
/// character. Iterative with single-star backtracking: linear in practice,
/// never exponential.
pub fn glob_match(tokens: &[GlobToken], text: &str, cased: bool) -> bool {
    // Flatten to a char pattern: None = star, Some(None) = question.
    let mut pat: Vec<Option<Option<char>>> = Vec::new();
    for t in tokens {
        match t {
            GlobToken::Lit(s) => pat.extend(s.chars().map(|c| Some(Some(c)))),
            GlobToken::Star => pat.push(None),
            GlobToken::Question => pat.push(Some(None)),
        }
    }
    let txt: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < txt.len() {
        match pat.get(p) {
            Some(None) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Some(None)) => {
                p += 1;
                t += 1;
            }
            Some(Some(Some(c))) if chars_eq(*c, txt[t], cased) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(Option::is_none)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{fields, Timestamp};
    use crate::rule::{KindSet, Level, NumOp, Scope};

    fn rule(id: &str, scope: Scope, e: Expr) -> Rule {
        Rule {
            id: id.into(),
            title: id.into(),
            level: Level::High,
            tags: vec![],
            origin: "test".into(),
            scope,
            body: RuleBody::Expr(e),
        }
    }

    fn s(op: StrOp, v: &str) -> Test {
        Test::Str {
            op,
            value: v.into(),
            cased: false,
        }
    }

    fn proc(image: &str, cmd: &str) -> Event {
        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev.set(fields::IMAGE, image.into());
        ev.set(fields::COMMAND_LINE, cmd.into());
        ev
    }

    const PROC_WIN: Scope = Scope {
        kinds: KindSet::EMPTY,
        os: Some(Os::Windows),
    };

    fn proc_win() -> Scope {
        Scope {
            kinds: KindSet::of(&[EventKind::ProcessStart]),
            ..PROC_WIN
        }
    }

    #[test]
    fn positions_are_checked_on_every_occurrence() {
        let rules = vec![
            rule(
                "suffix",
                proc_win(),
                Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, "\\a.exe"))),
            ),
            rule(
                "prefix",
                proc_win(),
                Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Prefix, "c:\\x\\"))),
            ),
            rule(
                "equals",
                proc_win(),
                Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Equals, "C:\\X\\A.EXE"))),
            ),
            rule(
                "term",
                proc_win(),
                Expr::Atom(Atom::field(
                    fields::COMMAND_LINE,
                    s(StrOp::Term, "explorer"),
                )),
            ),
        ];
        let (rs, rej) = Ruleset::compile(rules);
        assert!(rej.is_empty());
        // The suffix literal occurs twice; only the last one is at the end.
        assert_eq!(
            rs.matching_ids(&proc("C:\\x\\a.exe\\a.exe", "")),
            ["suffix", "prefix"]
        );
        assert_eq!(
            rs.matching_ids(&proc("c:\\X\\a.EXE", "")),
            ["suffix", "prefix", "equals"]
        );
        assert_eq!(
            rs.matching_ids(&proc("D:\\a.exe.bak", "KustoExplorerQueryRun")),
            Vec::<&str>::new()
        );
        assert_eq!(rs.matching_ids(&proc("", "run explorer.exe")), ["term"]);
    }

    #[test]
    fn non_ascii_literals_use_the_automaton_with_their_case_forms() {
        assert_eq!(literal_variants("–Post").unwrap(), ["–Post"]);
        assert_eq!(literal_variants("xА").unwrap(), ["xА", "xа"]);
        assert!(
            literal_variants("ДЖЗИЙ").is_none(),
            "2^5 spellings is too many"
        );
        let rules = vec![
            rule(
                "dash",
                proc_win(),
                Expr::Atom(Atom::field(
                    fields::COMMAND_LINE,
                    s(StrOp::Contains, "–post"),
                )),
            ),
            rule(
                "cyr",
                proc_win(),
                Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, "А.exe"))),
            ),
            rule(
                "many",
                proc_win(),
                Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Contains, "ДЖЗИЙ"))),
            ),
        ];
        let (rs, _) = Ruleset::compile(rules);
        assert_eq!(
            rs.view_stats(EventKind::ProcessStart, Os::Windows)
                .always_evaluated,
            1,
            "only the 32-spelling literal is tested directly"
        );
        assert_eq!(rs.matching_ids(&proc("", "certreq –POST x")), ["dash"]);
        assert!(rs.matching_ids(&proc("", "certreq -post x")).is_empty());
        assert_eq!(rs.matching_ids(&proc("C:\\а.EXE", "")), ["cyr"]);
        assert!(
            rs.matching_ids(&proc("C:\\a.exe", "")).is_empty(),
            "Latin a is not Cyrillic а"
        );
        assert_eq!(rs.matching_ids(&proc("x джзий", "")), ["many"]);
    }

    #[test]
    fn cased_literals_verify_bytes() {
        let rules = vec![rule(
            "cased",
            proc_win(),
            Expr::Atom(Atom::field(
                fields::COMMAND_LINE,
                Test::Str {
                    op: StrOp::Contains,
                    value: "FromBase64".into(),
                    cased: true,
                },
            )),
        )];
        let (rs, _) = Ruleset::compile(rules);
        assert_eq!(rs.matching_ids(&proc("", "x FromBase64 y")), ["cased"]);
        assert!(rs.matching_ids(&proc("", "x frombase64 y")).is_empty());
    }

    #[test]
    fn negations_and_scope() {
        // not Image endswith \svchost.exe: needs no literal, always evaluated.
        let rules = vec![rule(
            "not-svchost",
            proc_win(),
            Expr::Not(Box::new(Expr::Atom(Atom::field(
                fields::IMAGE,
                s(StrOp::Suffix, "\\svchost.exe"),
            )))),
        )];
        let (rs, _) = Ruleset::compile(rules);
        assert_eq!(
            rs.view_stats(EventKind::ProcessStart, Os::Windows)
                .always_evaluated,
            1
        );
        assert_eq!(rs.matching_ids(&proc("C:\\a.exe", "")), ["not-svchost"]);
        assert!(rs.matching_ids(&proc("C:\\svchost.exe", "")).is_empty());
        let mut linux = proc("C:\\a.exe", "");
        linux.os = Os::Linux;
        assert!(
            rs.matching_ids(&linux).is_empty(),
            "a windows rule must not see linux events"
        );
        let mut file = proc("C:\\a.exe", "");
        file.kind = EventKind::FileCreate;
        assert!(
            rs.matching_ids(&file).is_empty(),
            "a process rule must not see file events"
        );
    }

    #[test]
    fn globs_are_gated_and_exact() {
        let glob = Test::Glob {
            tokens: vec![
                GlobToken::Star,
                GlobToken::Lit("\\temp\\".into()),
                GlobToken::Star,
                GlobToken::Lit(".p".into()),
                GlobToken::Question,
                GlobToken::Lit("1".into()),
            ],
            cased: false,
        };
        let (rs, _) = Ruleset::compile(vec![rule(
            "glob",
            proc_win(),
            Expr::Atom(Atom::field(fields::IMAGE, glob)),
        )]);
        assert_eq!(
            rs.view_stats(EventKind::ProcessStart, Os::Windows)
                .always_evaluated,
            0
        );
        assert_eq!(rs.matching_ids(&proc("C:\\TEMP\\x\\a.ps1", "")), ["glob"]);
        assert!(rs.matching_ids(&proc("C:\\TEMP\\x\\a.ps12", "")).is_empty());
        assert!(rs.matching_ids(&proc("C:\\tmp\\x\\a.ps1", "")).is_empty());
    }

    #[test]
    fn glob_matcher() {
        let t = |p: &[GlobToken], s: &str| glob_match(p, s, false);
        use GlobToken::*;
        assert!(t(&[Lit("a".into()), Star, Lit("b".into())], "aXXb"));
        assert!(t(&[Lit("a".into()), Star, Lit("b".into())], "ab"));
        assert!(!t(&[Lit("a".into()), Star, Lit("b".into())], "abc"));
        assert!(t(&[Star, Lit("b".into()), Star, Lit("b".into())], "bbb"));
        assert!(t(&[Question, Question], "éa"));
        assert!(!t(&[Question], ""));
        assert!(t(&[Lit("ÉTÉ".into())], "été"));
        assert!(!glob_match(&[Lit("A".into())], "a", true));
    }

    #[test]
    fn lazy_tests() {
        let mut ev = proc("C:\\a.exe", "a");
        ev.set(fields::PROCESS_ID, Value::Int(4312));
        ev.set(FieldKey::from_name("DestinationIp"), "10.1.2.3".into());
        ev.set(fields::PARENT_IMAGE, "c:\\A.exe".into());
        ev.set(fields::CURRENT_DIRECTORY, "".into());
        let cases: Vec<(Atom, bool)> = vec![
            (
                Atom::field(
                    fields::PROCESS_ID,
                    Test::Num {
                        op: NumOp::Gt,
                        value: 4000.0,
                    },
                ),
                true,
            ),
            (
                Atom::field(
                    fields::PROCESS_ID,
                    Test::Num {
                        op: NumOp::Lt,
                        value: 4000.0,
                    },
                ),
                false,
            ),
            (
                Atom::field(fields::PROCESS_ID, s(StrOp::Equals, "4312")),
                true,
            ),
            (Atom::field(fields::USER, Test::Exists(false)), true),
            (Atom::field(fields::IMAGE, Test::Exists(true)), true),
            (Atom::field(fields::USER, Test::Null), true),
            (Atom::field(fields::CURRENT_DIRECTORY, Test::Null), true),
            (Atom::field(fields::IMAGE, Test::Null), false),
            (
                Atom::field(
                    FieldKey::from_name("DestinationIp"),
                    Test::Cidr("10.0.0.0/8".parse().unwrap()),
                ),
                true,
            ),
            (
                Atom::field(
                    FieldKey::from_name("DestinationIp"),
                    Test::Cidr("192.168.0.0/16".parse().unwrap()),
                ),
                false,
            ),
            (
                Atom::field(
                    fields::IMAGE,
                    Test::FieldRef {
                        other: fields::PARENT_IMAGE,
                        op: StrOp::Equals,
                        cased: false,
                    },
                ),
                true,
            ),
            (
                Atom::field(
                    fields::IMAGE,
                    Test::FieldRef {
                        other: fields::PARENT_IMAGE,
                        op: StrOp::Equals,
                        cased: true,
                    },
                ),
                false,
            ),
            (
                Atom::field(
                    fields::COMMAND_LINE,
                    Test::Regex {
                        pattern: "^A$".into(),
                        case_insensitive: false,
                        multi_line: false,
                        dot_all: false,
                    },
                ),
                false,
            ),
            (
                Atom::field(
                    fields::COMMAND_LINE,
                    Test::Regex {
                        pattern: "^A$".into(),
                        case_insensitive: true,
                        multi_line: false,
                        dot_all: false,
                    },
                ),
                true,
            ),
            (
                Atom {
                    target: FieldTarget::AnyField,
                    test: s(StrOp::Contains, "10.1.2"),
                },
                true,
            ),
            (Atom::field(fields::IMAGE, s(StrOp::Equals, "")), false),
            (
                Atom::field(fields::CURRENT_DIRECTORY, s(StrOp::Equals, "")),
                true,
            ),
        ];
        for (i, (atom, want)) in cases.into_iter().enumerate() {
            let (rs, rej) = Ruleset::compile(vec![rule(
                &format!("r{i}"),
                proc_win(),
                Expr::Atom(atom.clone()),
            )]);
            assert!(rej.is_empty());
            assert_eq!(!rs.matching_ids(&ev).is_empty(), want, "case {i}: {atom:?}");
        }
    }

    #[test]
    fn bad_regex_is_rejected_not_fatal() {
        let bad = Expr::Atom(Atom::field(
            fields::IMAGE,
            Test::Regex {
                pattern: "(?<=a)b".into(),
                case_insensitive: false,
                multi_line: false,
                dot_all: false,
            },
        ));
        let good = Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Contains, "a")));
        let (rs, rej) = Ruleset::compile(vec![
            rule("bad", proc_win(), bad),
            rule("good", proc_win(), good),
        ]);
        assert_eq!(rs.len(), 1);
        assert_eq!(rej.len(), 1);
        assert!(
            rej[0].reason.contains("does not compile"),
            "{}",
            rej[0].reason
        );
    }

    #[test]
    fn alerts_come_in_rule_order_with_matches() {
        let a = rule(
            "first",
            proc_win(),
            Expr::Atom(Atom::field(fields::COMMAND_LINE, s(StrOp::Contains, "zzz"))),
        );
        let b = rule(
            "second",
            proc_win(),
            Expr::Atom(Atom::field(fields::COMMAND_LINE, s(StrOp::Contains, "aaa"))),
        );
        let (rs, _) = Ruleset::compile(vec![a, b]);
        let ev = proc("", "aaa zzz");
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        rs.evaluate(&ev, &mut scratch, &mut out);
        assert_eq!(out.iter().map(|d| d.rule).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(
            out[1].matches,
            vec![Match {
                field: "CommandLine".into(),
                op: "contains".into(),
                value: "aaa".into(),
                name: None
            }]
        );
        // Scratch is reset between events: the same scratch gives a clean answer.
        out.clear();
        rs.evaluate(&proc("", "nothing"), &mut scratch, &mut out);
        assert!(out.is_empty());
    }
}
