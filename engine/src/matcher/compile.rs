//! Building a view: the compiled form of the rules one (kind, OS) pair sees.

use std::collections::HashMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexBuilder};
use regex_automata::meta;

use super::text::{compile_glob, literal_variants, PatItem};
use crate::event::FieldKey;
use crate::ioc::IocSet;
use crate::rule::{Atom, Expr, FieldTarget, GlobToken, Rule, RuleBody, StrOp, Test};

/// Generous limits: SigmaHQ has a few large alternations, and a rule set is
/// compiled once.
const REGEX_SIZE_LIMIT: usize = 64 << 20;

#[derive(Debug)]
pub(super) struct View {
    pub(super) rules: Vec<ViewRule>,
    pub(super) atoms: Vec<CAtom>,
    /// For each literal atom, the view rules that use it.
    pub(super) atom_rules: Vec<Vec<u32>>,
    pub(super) scans: Vec<FieldScan>,
    pub(super) keyword_scan: Option<LiteralScan>,
    pub(super) regex_groups: Vec<RegexGroup>,
    /// Rules that can fire with no literal hit: evaluated on every event.
    pub(super) always: Vec<u32>,
}

#[derive(Debug)]
pub(super) struct ViewRule {
    pub(super) global: usize,
    pub(super) body: CBody,
}

#[derive(Debug)]
pub(super) enum CBody {
    Expr(Node),
    Ioc(IocSet),
}

#[derive(Debug)]
pub(super) enum Node {
    Atom(u32),
    /// An atom the compiler added (a glob's literal gate): evaluated like any
    /// atom, but not reported in an alert's `matches`, since the rule author
    /// never wrote it.
    Gate(u32),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Const(bool),
}

#[derive(Debug)]
pub(super) struct CAtom {
    pub(super) target: FieldTarget,
    pub(super) test: Test,
    pub(super) kind: AtomKind,
}

#[derive(Debug)]
pub(super) enum AtomKind {
    /// Set by the literal scan; false when not hit.
    Literal,
    /// A glob, compiled to characters.
    Glob(Vec<PatItem>),
    /// Any other test, evaluated on demand.
    Lazy,
    /// A regex on a named field, answered with every regex of its group at
    /// once (index into `View::regex_groups`).
    Regex { group: u32 },
    /// A regex run on its own: a keyword (any-field) regex, or one whose
    /// group was too large to build as one automaton.
    Single(Box<Regex>),
}

/// The automaton of one named field or derived value (never `AnyField`,
/// which has the keyword scan).
#[derive(Debug)]
pub(super) struct FieldScan {
    pub(super) target: FieldTarget,
    pub(super) scan: LiteralScan,
}

/// One automaton over the distinct literals of one field.
#[derive(Debug)]
pub(super) struct LiteralScan {
    pub(super) ac: AhoCorasick,
    /// Pattern id -> the atoms that use it.
    pub(super) uses: Vec<Vec<LitUse>>,
}

#[derive(Debug)]
pub(super) struct LitUse {
    pub(super) atom: u32,
    pub(super) op: StrOp,
    /// For case-sensitive literals: the exact bytes to verify.
    pub(super) cased: Option<Arc<str>>,
}

/// The regexes of one field that share flags, as one multi-pattern automaton.
#[derive(Debug)]
pub(super) struct RegexGroup {
    pub(super) key: FieldKey,
    pub(super) re: meta::Regex,
    /// Pattern index -> atom.
    pub(super) atoms: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RegexFlags {
    case_insensitive: bool,
    multi_line: bool,
    dot_all: bool,
}

fn build_regex(pattern: &str, f: RegexFlags) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(f.case_insensitive)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn build_group(
    patterns: &[&str],
    f: RegexFlags,
) -> Result<meta::Regex, Box<dyn std::error::Error>> {
    // Flags are set for the whole group (never by wrapping a pattern in a
    // flag group, which a `(?x)` comment in the pattern could break).
    let re = meta::Regex::builder()
        .configure(
            meta::Config::new()
                .match_kind(regex_automata::MatchKind::All)
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                // The lazy DFA is what makes a large group fast; with the
                // default 2 MB cache it is switched off for SigmaHQ-sized
                // groups and the slow PikeVM runs instead.
                .hybrid_cache_capacity(REGEX_SIZE_LIMIT),
        )
        .syntax(
            regex_automata::util::syntax::Config::new()
                .case_insensitive(f.case_insensitive)
                .multi_line(f.multi_line)
                .dot_matches_new_line(f.dot_all),
        )
        .build_many(patterns)?;
    Ok(re)
}

fn regex_flags(test: &Test) -> Option<(&str, RegexFlags)> {
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

/// Checks what only compilation can check: every regex builds.
pub(super) fn validate(rule: &Rule) -> Result<(), String> {
    fn walk(e: &Expr) -> Result<(), String> {
        match e {
            Expr::Atom(a) => match regex_flags(&a.test) {
                Some((pattern, f)) => build_regex(pattern, f).map(|_| ()).map_err(|e| match e {
                    regex::Error::CompiledTooBig(limit) => format!(
                        "regex `{pattern}` compiles to more than {limit} bytes; simplify it \
                         (bounded repetitions of large classes such as `\\w{{1000}}` are the \
                         usual cause)"
                    ),
                    other => format!("regex `{pattern}` does not compile: {other}"),
                }),
                None => Ok(()),
            },
            Expr::Const(_) => Ok(()),
            Expr::And(v) | Expr::Or(v) => v.iter().try_for_each(walk),
            Expr::Not(e) => walk(e),
        }
    }
    match &rule.body {
        RuleBody::Expr(e) => walk(e),
        RuleBody::Ioc(_) => Ok(()),
    }
}

/// Whether a Str test can be served by the automaton.
fn is_literal(test: &Test) -> bool {
    match test {
        Test::Str { value, cased, .. } => {
            !value.is_empty() && (*cased || literal_variants(value).is_some())
        }
        _ => false,
    }
}

/// What makes two tests the same atom. Most tests are literals, keyed as
/// they are; the rest hold floats and networks, so they are keyed by their
/// debug text: exact, and only built at compile time.
#[derive(PartialEq, Eq, Hash)]
enum TestKey {
    Str(StrOp, String, bool),
    Other(String),
}

impl TestKey {
    fn of(test: &Test) -> TestKey {
        match test {
            Test::Str { op, value, cased } => TestKey::Str(*op, value.clone(), *cased),
            other => TestKey::Other(format!("{other:?}")),
        }
    }
}

struct ViewBuilder {
    atoms: Vec<CAtom>,
    index: HashMap<(FieldTarget, TestKey), u32>,
}

impl ViewBuilder {
    fn intern(&mut self, target: &FieldTarget, test: &Test) -> u32 {
        let key = (target.clone(), TestKey::of(test));
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let kind = match test {
            Test::Glob { tokens, .. } => AtomKind::Glob(compile_glob(tokens)),
            t if is_literal(t) => AtomKind::Literal,
            _ => AtomKind::Lazy,
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
            Expr::Atom(Atom { target, test }) => {
                let node = Node::Atom(self.intern(target, test));
                let Test::Glob { tokens, cased } = test else {
                    return node;
                };
                // Gate a glob on its longest literal piece, so it only costs
                // work when that piece is in the text.
                let longest = tokens
                    .iter()
                    .filter_map(|t| match t {
                        GlobToken::Lit(s) => Some(s),
                        _ => None,
                    })
                    .max_by_key(|s| s.chars().count());
                let Some(lit) = longest.filter(|s| !s.is_empty()) else {
                    return node;
                };
                let gate = Test::Str {
                    op: StrOp::Contains,
                    value: lit.clone(),
                    cased: *cased,
                };
                if !is_literal(&gate) {
                    return node;
                }
                Node::And(vec![Node::Gate(self.intern(target, &gate)), node])
            }
            Expr::And(v) => Node::And(v.iter().map(|e| self.lower(e)).collect()),
            Expr::Or(v) => Node::Or(v.iter().map(|e| self.lower(e)).collect()),
            Expr::Not(e) => Node::Not(Box::new(self.lower(e))),
            Expr::Const(b) => Node::Const(*b),
        }
    }
}

/// How often a literal atom is expected to wake its rules, relative to the
/// others: short literals (` -`, `.exe`, `\\`) are in nearly every command
/// line, long ones are rare, and a placed test (prefix, suffix, equals) holds
/// less often than `contains`. Only ever compared with other costs.
fn gate_cost(atom: &CAtom) -> f64 {
    let Test::Str { op, value, .. } = &atom.test else {
        return f64::INFINITY;
    };
    let len = value.chars().count().clamp(1, 24) as f64;
    let placed = match op {
        StrOp::Equals => 0.05,
        StrOp::Prefix | StrOp::Suffix => 0.5,
        StrOp::Contains | StrOp::Term => 1.0,
    };
    // Keyword literals are looked for in every field of an event.
    let fields = match atom.target {
        FieldTarget::AnyField => 8.0,
        _ => 1.0,
    };
    placed * fields * 2f64.powf(-len)
}

/// A set of literal atoms at least one of which holds whenever a condition
/// holds (a *necessary* set; with `positive` false, whenever it does not
/// hold), chosen to be cheap by [`gate_cost`]: an AND takes its cheapest
/// child's set, an OR the union of its children's, a negation swaps the two,
/// and a negated or non-literal test has none (`None`: the condition can hold
/// with no literal in the text). `Some` with an empty set: it never holds.
fn necessary(node: &Node, atoms: &[CAtom], positive: bool) -> Option<(f64, Vec<u32>)> {
    let (children, is_union) = match node {
        Node::Atom(a) | Node::Gate(a) => {
            return match atoms[*a as usize].kind {
                AtomKind::Literal if positive => Some((gate_cost(&atoms[*a as usize]), vec![*a])),
                _ => None,
            }
        }
        Node::Const(b) => return (*b != positive).then(|| (0.0, Vec::new())),
        Node::Not(n) => return necessary(n, atoms, !positive),
        // not (a and b) = (not a) or (not b), and the other way round.
        Node::And(v) if positive => (v, false),
        Node::Or(v) if !positive => (v, false),
        Node::And(v) | Node::Or(v) => (v, true),
    };
    if !is_union {
        // Every child must hold: the cheapest child's set is enough.
        return children
            .iter()
            .filter_map(|n| necessary(n, atoms, positive))
            .min_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut union = (0.0, Vec::new());
    for n in children {
        let (cost, set) = necessary(n, atoms, positive)?;
        union.0 += cost;
        union.1.extend(set);
    }
    union.1.sort_unstable();
    union.1.dedup();
    Some(union)
}

fn build_scan(lits: Vec<(String, LitUse)>) -> Option<LiteralScan> {
    if lits.is_empty() {
        return None;
    }
    // One pattern per distinct ASCII-folded spelling.
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
    pub(super) fn build(rules: &[Rule], members: &[usize]) -> View {
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

        // Which rules each literal atom wakes: a rule is woken only by the
        // literals of its necessary set, so a literal in every command line
        // (` -`, `.exe`) wakes nothing unless some rule needs nothing rarer.
        // Rules with no necessary set are evaluated on every event.
        let mut atom_rules: Vec<Vec<u32>> = vec![Vec::new(); atoms.len()];
        let mut always = Vec::new();
        for (ri, vr) in vrules.iter().enumerate() {
            match &vr.body {
                CBody::Ioc(_) => always.push(ri as u32),
                CBody::Expr(node) => match necessary(node, &atoms, true) {
                    Some((_, set)) => {
                        for a in set {
                            atom_rules[a as usize].push(ri as u32);
                        }
                    }
                    None => always.push(ri as u32),
                },
            }
        }
        // The other literals are only tested when a woken rule asks for them,
        // directly on the field's text: the automata hold the wake literals
        // alone, fewer, longer and rarer.
        for (a, rules) in atoms.iter_mut().zip(&atom_rules) {
            if matches!(a.kind, AtomKind::Literal) && rules.is_empty() {
                a.kind = AtomKind::Lazy;
            }
        }

        let (scans, keyword_scan) = literal_scans(&atoms);
        let regex_groups = regex_groups(&mut atoms);
        View {
            rules: vrules,
            atoms,
            atom_rules,
            scans,
            keyword_scan,
            regex_groups,
            always,
        }
    }
}

/// One automaton per field over its literal atoms, and one for keywords.
fn literal_scans(atoms: &[CAtom]) -> (Vec<FieldScan>, Option<LiteralScan>) {
    let mut per_field: Vec<(FieldTarget, Vec<(String, LitUse)>)> = Vec::new();
    let mut keyword_lits = Vec::new();
    for (i, a) in atoms.iter().enumerate() {
        let (AtomKind::Literal, Test::Str { op, value, cased }) = (&a.kind, &a.test) else {
            continue;
        };
        let spellings = if *cased {
            vec![value.clone()]
        } else {
            literal_variants(value).unwrap_or_default()
        };
        let lits = match &a.target {
            FieldTarget::AnyField => &mut keyword_lits,
            target => match per_field.iter().position(|(t, _)| t == target) {
                Some(p) => &mut per_field[p].1,
                None => {
                    per_field.push((target.clone(), Vec::new()));
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
    // One automaton per field, built on every core (the large ones, such as
    // `CommandLine`'s, are most of the time it takes to compile a rule set).
    per_field.push((FieldTarget::AnyField, keyword_lits));
    let mut built =
        crate::parallel::map_owned_in_parallel(per_field, |(key, lits)| (key, build_scan(lits)));
    let keyword = built.pop().and_then(|(_, scan)| scan);
    let scans = built
        .into_iter()
        .filter_map(|(target, scan)| scan.map(|scan| FieldScan { target, scan }))
        .collect();
    (scans, keyword)
}

/// Groups the regexes of each named field by flags into one automaton each;
/// keyword regexes, regexes on derived values, and groups too large to build,
/// run one regex at a time.
fn regex_groups(atoms: &mut [CAtom]) -> Vec<RegexGroup> {
    let mut pending: Vec<((FieldKey, RegexFlags), Vec<u32>)> = Vec::new();
    for (i, a) in atoms.iter_mut().enumerate() {
        let Some((pattern, flags)) = regex_flags(&a.test) else {
            continue;
        };
        match &a.target {
            FieldTarget::AnyField | FieldTarget::Derived(_) => {
                let re = build_regex(pattern, flags).expect("validated at compile");
                a.kind = AtomKind::Single(Box::new(re));
            }
            FieldTarget::Field(k) => {
                let key = (k.clone(), flags);
                match pending.iter_mut().find(|(pk, _)| *pk == key) {
                    Some((_, v)) => v.push(i as u32),
                    None => pending.push((key, vec![i as u32])),
                }
            }
        }
    }
    let mut groups = Vec::new();
    for ((key, flags), members) in pending {
        let patterns: Vec<&str> = members
            .iter()
            .filter_map(|&a| regex_flags(&atoms[a as usize].test).map(|(p, _)| p))
            .collect();
        match build_group(&patterns, flags) {
            Ok(re) => {
                let group = groups.len() as u32;
                for &a in &members {
                    atoms[a as usize].kind = AtomKind::Regex { group };
                }
                groups.push(RegexGroup {
                    key,
                    re,
                    atoms: members,
                });
            }
            Err(e) => {
                tracing::debug!("regexes of field {key} run one by one: {e}");
                for &a in &members {
                    let (p, f) = regex_flags(&atoms[a as usize].test).expect("a regex atom");
                    let re = build_regex(p, f).expect("validated at compile");
                    atoms[a as usize].kind = AtomKind::Single(Box::new(re));
                }
            }
        }
    }
    groups
}
