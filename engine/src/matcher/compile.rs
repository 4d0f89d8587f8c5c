//! Building a view: the compiled form of the rules one (kind, OS) pair sees.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};

use super::gram::GramScan;
use super::needle::Needle;
use super::needle_set::NeedleSet;
use super::program::Program;
use super::regexes::{regex_flags, RegexTable};
use super::text::{compile_glob, literal_variants, Glob};
use super::trie::AnchoredTrie;
use super::typical;
use super::verdicts::MAX_READS;
use crate::event::FieldKey;
use crate::ioc::IocSet;
use crate::rule::{Atom, Expr, FieldTarget, GlobToken, Rule, RuleBody, StrOp, Test};

#[derive(Debug)]
pub(super) struct View {
    pub(super) rules: Vec<ViewRule>,
    pub(super) atoms: Vec<CAtom>,
    /// Per atom: how alerts show it, made when it first fires. Kept apart
    /// from `atoms`, whose tests the scan reads on every event: inside each
    /// atom it would make that array 1.5 times as large for a field that is
    /// read only when a rule fires.
    pub(super) shown: Vec<OnceLock<super::Shown>>,
    /// For each literal atom, the view rules it wakes.
    pub(super) wakes: Wakes,
    pub(super) scans: Vec<FieldScan>,
    /// The keyword literals, for the fields no scan searches for them (and
    /// the later occurrences of a repeated name).
    pub(super) keyword_scan: Option<LiteralScan>,
    /// Per well-known field (by [`FieldKey::known_id`]): whether its scan
    /// also holds the keyword literals, so that the keyword pass can pass
    /// over the field's first occurrence.
    pub(super) keywords_scanned: Vec<bool>,
    /// Rules that can fire with no literal hit: evaluated on every event.
    pub(super) always: Vec<u32>,
    /// The needle lists conditions OR together ([`Node::AnyOf`]).
    pub(super) needle_sets: Vec<NeedleSet>,
}

#[derive(Debug)]
pub(super) struct ViewRule {
    pub(super) global: usize,
    pub(super) body: CBody,
    /// The fields its verdict depends on, as positions in `View::scans`,
    /// when they are all named fields with a scan (whose texts are
    /// remembered), at most [`MAX_READS`]: its verdicts can then be kept
    /// (see [`super::verdicts`]).
    pub(super) reads: Option<Box<[u32]>>,
    /// Scanned atoms any of which, found, makes the rule false (see
    /// [`vetoes`]): checked before the rule is evaluated or its verdict
    /// looked up.
    pub(super) vetoes: Box<[u32]>,
    /// Sets of scanned literals, one of each of which the rule needs
    /// besides the one that woke it (see [`required_sets`]); none for most.
    /// Checked, like `vetoes`, before the rule is evaluated.
    pub(super) requires: Box<[Box<[u32]>]>,
}

/// Which view rules each atom wakes, flattened into one array: a settled
/// atom reads its range and the rules in it, one load after the other,
/// rather than a list header and then the list.
#[derive(Debug)]
pub(super) struct Wakes {
    /// Atom `a`'s rules are `rules[starts[a]..starts[a + 1]]`.
    starts: Vec<u32>,
    rules: Vec<u32>,
}

impl Wakes {
    /// Flattens per-atom lists of rules.
    fn of(per_atom: &[Vec<u32>]) -> Wakes {
        let mut starts = Vec::with_capacity(per_atom.len() + 1);
        starts.push(0);
        for rules in per_atom {
            starts.push(starts[starts.len() - 1] + rules.len() as u32);
        }
        Wakes {
            starts,
            rules: per_atom.concat(),
        }
    }

    /// The view rules atom `atom` wakes.
    #[inline]
    pub(super) fn of_atom(&self, atom: u32) -> &[u32] {
        let a = atom as usize;
        &self.rules[self.starts[a] as usize..self.starts[a + 1] as usize]
    }
}

#[derive(Debug)]
pub(super) enum CBody {
    /// The condition as written (walked for an alert's `matches`, in the
    /// author's order), and the program that decides it: the same
    /// condition with the children of every AND and OR sorted cheapest
    /// first (a regex only runs when the literals beside it have not
    /// already decided), compiled to steps (see [`Program`]).
    Expr {
        written: Node,
        decide: Program,
    },
    Ioc(IocSet),
}

#[derive(Debug, Clone)]
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
    /// Whether any needle of one [`NeedleSet`] holds: an OR's needles on
    /// one field, searched for together (only in a decision's tree; an
    /// alert's `matches` still come from the atoms as written).
    AnyOf(u32),
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
    /// A glob, compiled.
    Glob(Glob),
    /// Any other test, evaluated on demand.
    Lazy,
    /// A regex (index into the rule set's [`RegexTable`]).
    Regex(u32),
    /// A `contains` literal of a named field that wakes no rule, searched
    /// for directly when a rule asks.
    Needle(Box<Needle>),
}

/// The automaton of one named field or derived value (never `AnyField`:
/// keywords ride in the scans of well-known fields, and the keyword scan
/// searches the rest).
#[derive(Debug)]
pub(super) struct FieldScan {
    pub(super) target: FieldTarget,
    /// Its number among every field scan of the rule set: which memo of a
    /// [`super::Scratch`] is its (see [`super::memo`]).
    pub(super) id: u32,
    /// The `contains` (and KQL `has`) literals that wake rules; for a
    /// well-known field, the view's keywords (of any operator) too.
    pub(super) contains: Option<GramScan>,
    /// Every `startswith` and equals literal.
    pub(super) prefix: Option<AnchoredTrie>,
    /// Every `endswith` literal.
    pub(super) suffix: Option<AnchoredTrie>,
    /// How many of `contains`' spellings only the keywords brought (for
    /// counting each literal once).
    pub(super) keyword_spellings: usize,
}

impl FieldScan {
    /// How many anchored literal spellings the tries hold.
    pub(super) fn anchored(&self) -> usize {
        self.prefix.as_ref().map_or(0, AnchoredTrie::len)
            + self.suffix.as_ref().map_or(0, AnchoredTrie::len)
    }
}

/// One automaton over the distinct literals of one field.
#[derive(Debug)]
pub(super) struct LiteralScan {
    pub(super) ac: AhoCorasick,
    /// Pattern id -> the atoms that use it.
    pub(super) uses: Vec<Vec<LitUse>>,
    /// At most three bytes, one of which every literal holds (see
    /// [`anchor_bytes`]): a text holding none of them holds no literal.
    pub(super) anchors: Option<[u8; 3]>,
}

/// At most three bytes, in either case, one of which each of `patterns`
/// (ASCII-folded) holds: each pattern's rarest byte. `None` when that takes
/// more than three bytes (or a pattern is empty).
///
/// Why: the keyword pass searches every field no field scan searched
/// (process and logon ids, GUIDs, times) on every event. SigmaHQ's
/// process-creation rules hold a single keyword (NotPetya's
/// `\perfc.dat`), whose `\` those fields never hold: one `memchr3` per
/// field rules it out, where joining, folding and searching the fields
/// took some 5% of the matcher's time.
fn anchor_bytes(patterns: &[String]) -> Option<[u8; 3]> {
    let mut anchors: Vec<u8> = Vec::with_capacity(3);
    for p in patterns {
        let rarest = (p.bytes()).min_by_key(|&b| regex_syntax::hir::literal::rank(b))?;
        for b in [rarest, rarest.to_ascii_uppercase()] {
            if !anchors.contains(&b) {
                anchors.push(b);
            }
        }
    }
    if anchors.len() > 3 {
        return None;
    }
    let last = *anchors.last()?;
    anchors.resize(3, last);
    <[u8; 3]>::try_from(anchors).ok()
}

#[derive(Debug, Clone)]
pub(super) struct LitUse {
    pub(super) atom: u32,
    pub(super) op: StrOp,
    /// For case-sensitive literals: the exact bytes to verify.
    pub(super) cased: Option<Arc<str>>,
    /// A keyword's: found in any field, and named by the first that holds
    /// it, so a hit on it when it is already true may still name an
    /// earlier field.
    pub(super) keyword: bool,
}

impl LitUse {
    /// Each literal used once, by atoms numbered in order: what the scans'
    /// tests build their tables from.
    #[cfg(test)]
    pub(super) fn numbered(lits: &[&str], op: StrOp) -> Vec<(String, LitUse)> {
        (lits.iter().enumerate())
            .map(|(i, l)| {
                let cased = None;
                (
                    l.to_string(),
                    LitUse {
                        atom: i as u32,
                        op,
                        cased,
                        keyword: false,
                    },
                )
            })
            .collect()
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

struct ViewBuilder<'a> {
    regexes: &'a RegexTable,
    atoms: Vec<CAtom>,
    /// Hashed with foldhash: interning every test of every rule with SipHash
    /// took a tenth of compiling SigmaHQ's scope.
    index: HashMap<(FieldTarget, TestKey), u32, foldhash::fast::RandomState>,
}

impl ViewBuilder<'_> {
    fn intern(&mut self, target: &FieldTarget, test: &Test) -> u32 {
        let key = (target.clone(), TestKey::of(test));
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let kind = match test {
            Test::Glob { tokens, .. } => AtomKind::Glob(compile_glob(tokens)),
            // Keywords are scanned over the fields joined by NULs: one
            // holding a NUL is tested field by field instead.
            Test::Str { value, .. }
                if matches!(target, FieldTarget::AnyField) && value.contains('\0') =>
            {
                AtomKind::Lazy
            }
            t if is_literal(t) => AtomKind::Literal,
            t => match regex_flags(t) {
                Some((pattern, flags)) => AtomKind::Regex(self.regexes.id(pattern, flags)),
                None => AtomKind::Lazy,
            },
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

    /// A regex gated on its required literals (`contains`, ignoring case):
    /// it only costs work when one of them is in the text.
    fn regex_gate(&mut self, target: &FieldTarget, re: u32, node: Node) -> Node {
        let Some(lits) = &self.regexes.gates[re as usize] else {
            return node;
        };
        let mut gates: Vec<Node> = Vec::with_capacity(lits.len());
        for lit in lits {
            let gate = Test::Str {
                op: StrOp::Contains,
                value: lit.clone(),
                cased: false,
            };
            if !is_literal(&gate) {
                return node;
            }
            gates.push(Node::Gate(self.intern(target, &gate)));
        }
        let gate = match gates.len() {
            1 => gates.pop().expect("one gate"),
            _ => Node::Or(gates),
        };
        Node::And(vec![gate, node])
    }

    fn lower(&mut self, e: &Expr) -> Node {
        match e {
            Expr::Atom(Atom { target, test }) => {
                let id = self.intern(target, test);
                let node = Node::Atom(id);
                if let AtomKind::Regex(re) = self.atoms[id as usize].kind {
                    return self.regex_gate(target, re, node);
                }
                let Test::Glob { tokens, cased } = test else {
                    return node;
                };
                // Gate a glob on its rarest literal piece, so it only costs
                // work when that piece is in the text: the first piece is a
                // prefix of any text the glob matches, the last a suffix
                // (`7z*.exe`: `7z` at the start, rarer than `.exe`).
                let last = tokens.len().saturating_sub(1);
                let gate = (tokens.iter().enumerate())
                    .filter_map(|(i, t)| match t {
                        GlobToken::Lit(s) if !s.is_empty() => Some((i, s)),
                        _ => None,
                    })
                    .map(|(i, lit)| Test::Str {
                        op: match i {
                            _ if last == 0 => StrOp::Contains,
                            0 => StrOp::Prefix,
                            i if i == last => StrOp::Suffix,
                            _ => StrOp::Contains,
                        },
                        value: lit.clone(),
                        cased: *cased,
                    })
                    .filter(is_literal)
                    .map(|t| (test_cost(target, &t), t))
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, t)| t);
                let Some(gate) = gate else {
                    return node;
                };
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
/// line, long ones are rare, a long one found in typical values of its
/// field (`\Windows\` in `Image`, see [`typical`]) is not, and a placed
/// test (prefix, suffix, equals) holds less often than `contains`. Only ever
/// compared with other costs.
fn gate_cost(atom: &CAtom) -> f64 {
    test_cost(&atom.target, &atom.test)
}

/// [`gate_cost`] of a test on `target`.
fn test_cost(target: &FieldTarget, test: &Test) -> f64 {
    let Test::Str { op, value, .. } = test else {
        return f64::INFINITY;
    };
    let len = value.chars().count().clamp(1, 24) as f64;
    let placed = match op {
        StrOp::Equals => 0.05,
        StrOp::Prefix | StrOp::Suffix => 0.5,
        StrOp::Contains | StrOp::Term => 1.0,
    };
    // Keyword literals are looked for in every field of an event.
    let fields = match target {
        FieldTarget::AnyField => 8.0,
        _ => 1.0,
    };
    let typical = match target {
        FieldTarget::Field(key) => typical::share(key, *op, value),
        _ => 0.0,
    };
    placed * fields * (2f64.powf(-len) + typical)
}

/// A set of literal atoms at least one of which holds whenever a condition
/// holds (a *necessary* set; with `positive` false, whenever it does not
/// hold), chosen to be cheap by [`gate_cost`]: an AND takes its cheapest
/// child's set, an OR the union of its children's, a negation swaps the two,
/// and a negated or non-literal test has none (`None`: the condition can hold
/// with no literal in the text). `Some` with an empty set: it never holds.
fn necessary(
    node: &Node,
    atoms: &[CAtom],
    cost: &[f64],
    positive: bool,
) -> Option<(f64, Vec<u32>)> {
    let (children, is_union) = match node {
        Node::Atom(a) | Node::Gate(a) => {
            return match atoms[*a as usize].kind {
                AtomKind::Literal if positive => Some((cost[*a as usize], vec![*a])),
                _ => None,
            }
        }
        Node::Const(b) => return (*b != positive).then(|| (0.0, Vec::new())),
        // Needles wake nothing.
        Node::AnyOf(_) => return None,
        Node::Not(n) => return necessary(n, atoms, cost, !positive),
        // not (a and b) = (not a) or (not b), and the other way round.
        Node::And(v) if positive => (v, false),
        Node::Or(v) if !positive => (v, false),
        Node::And(v) | Node::Or(v) => (v, true),
    };
    if !is_union {
        // Every child must hold: the cheapest child's set is enough.
        return children
            .iter()
            .filter_map(|n| necessary(n, atoms, cost, positive))
            .min_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut union = (0.0, Vec::new());
    for n in children {
        let (c, set) = necessary(n, atoms, cost, positive)?;
        union.0 += c;
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
    let mut pat_index: HashMap<String, usize, foldhash::fast::RandomState> = HashMap::default();
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
    // Case-sensitive over folded patterns, the text folded by the scan: an
    // automaton that folds case itself can only prefilter on a literal's
    // first byte (often `\` or a blank, every few bytes of a command
    // line); this one can look for its rarest bytes.
    let ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(&patterns)
        .expect("an automaton over literals of bounded total size always builds");
    let anchors = anchor_bytes(&patterns);
    Some(LiteralScan { ac, uses, anchors })
}

impl View {
    pub(super) fn build(rules: &[Rule], members: &[usize], regexes: &RegexTable) -> View {
        let mut b = ViewBuilder {
            regexes,
            atoms: Vec::new(),
            index: HashMap::default(),
        };
        let mut vrules = Vec::with_capacity(members.len());
        // Per view rule: its condition, cheapest first, until its program
        // is compiled (once its needles are grouped, below).
        let mut ordered = Vec::with_capacity(members.len());
        for &g in members {
            let body = match &rules[g].body {
                RuleBody::Expr(e) => {
                    let written = b.lower(e);
                    ordered.push(Some(cheapest_first(&written, &b.atoms).0));
                    CBody::Expr {
                        written,
                        decide: Program::of(&Node::Const(false), &|_| false),
                    }
                }
                RuleBody::Ioc(set) => {
                    ordered.push(None);
                    CBody::Ioc(set.clone())
                }
            };
            vrules.push(ViewRule {
                global: g,
                body,
                reads: None,
                vetoes: Box::default(),
                requires: Box::default(),
            });
        }
        let mut atoms = b.atoms;

        // Which rules each literal atom wakes: a rule is woken only by the
        // literals of its necessary set, so a literal in every command line
        // (` -`, `.exe`) wakes nothing unless some rule needs nothing rarer.
        // Rules with no necessary set are evaluated on every event.
        // A literal many rules test is a common one (`\\powershell.exe`,
        // `Medium`): authors write rules about the programs and values seen
        // most. Its wake cost grows with the rules that test it, so that
        // rules prefer a literal of their own.
        let mut tested_by = vec![0u32; atoms.len()];
        for vr in &vrules {
            if let CBody::Expr { written, .. } = &vr.body {
                let mut seen = Vec::new();
                atoms_of(written, &mut seen);
                seen.sort_unstable();
                seen.dedup();
                for a in seen {
                    tested_by[a as usize] += 1;
                }
            }
        }
        let cost: Vec<f64> = (atoms.iter().zip(&tested_by))
            .map(|(a, &n)| gate_cost(a) * f64::from(n.max(1)))
            .collect();
        let mut atom_rules: Vec<Vec<u32>> = vec![Vec::new(); atoms.len()];
        let mut always = Vec::new();
        let mut wake_of: Vec<Vec<u32>> = vec![Vec::new(); vrules.len()];
        for (ri, vr) in vrules.iter().enumerate() {
            let set = match &vr.body {
                CBody::Ioc(_) => None,
                CBody::Expr { written, .. } => wake_set(written, &atoms, &cost),
            };
            let Some(set) = set else {
                always.push(ri as u32);
                continue;
            };
            for &a in &set {
                atom_rules[a as usize].push(ri as u32);
            }
            wake_of[ri] = set;
        }
        // The other literals are only tested when a woken rule asks for them,
        // directly on the field's text: the automata hold the wake literals
        // alone, fewer, longer and rarer.
        // Anchored literals of a scanned field stay in the scan whether they
        // wake a rule or not: a trie walk from the text's end finds them all
        // for a few steps, so they are known before any rule is evaluated.
        // The literals that rule out a rule evaluated on every event stay in
        // the scan too: found, they spare its evaluation (see `vetoes`).
        // Each rule's vetoes, found once: the literal kinds below decide
        // which of them the scan will find.
        let mut veto_of: Vec<Vec<u32>> = (vrules.iter())
            .map(|vr| {
                let mut found = Vec::new();
                if let CBody::Expr { written, .. } = &vr.body {
                    vetoes(written, &mut found);
                    found.sort_unstable();
                    found.dedup();
                }
                found
            })
            .collect();
        let mut vetoing = vec![false; atoms.len()];
        for &ri in &always {
            for &a in &veto_of[ri as usize] {
                vetoing[a as usize] = true;
            }
        }
        // A named field none of whose literals wakes or vetoes a rule is
        // not scanned at all: the scan would cost a lookup (and, for a new
        // text, a walk and a copy) on every event for literals that are
        // rarely asked for (`FileVersion`, nearly unique per event).
        let mut scanned_fields: Vec<&FieldTarget> = Vec::new();
        for ((a, rules), &vetoing) in atoms.iter().zip(&atom_rules).zip(&vetoing) {
            if matches!(a.kind, AtomKind::Literal)
                && (!rules.is_empty() || vetoing)
                && !scanned_fields.contains(&&a.target)
            {
                scanned_fields.push(&a.target);
            }
        }
        let scanned_fields: Vec<FieldTarget> = scanned_fields.into_iter().cloned().collect();
        for ((a, rules), &vetoing) in atoms.iter_mut().zip(&atom_rules).zip(&vetoing) {
            let kept_for_free = is_anchored(a)
                && (scanned_fields.contains(&a.target)
                    || !matches!(a.target, FieldTarget::Field(_)));
            if matches!(a.kind, AtomKind::Literal) && rules.is_empty() && !kept_for_free && !vetoing
            {
                a.kind = AtomKind::Lazy;
            }
            if matches!(a.kind, AtomKind::Lazy) && matches!(a.target, FieldTarget::Field(_)) {
                if let Some(n) = Needle::for_test(&a.test) {
                    a.kind = AtomKind::Needle(Box::new(n));
                }
            }
        }

        // Each OR's plain needles on one field, searched for together.
        let mut needle_sets = Vec::new();
        let mut set_index = HashMap::new();
        for (vr, ordered) in vrules.iter_mut().zip(&mut ordered) {
            if let (CBody::Expr { decide, .. }, Some(ordered)) = (&mut vr.body, ordered) {
                group_needles(ordered, &atoms, &mut needle_sets, &mut set_index);
                *decide = Program::of(ordered, &|a| {
                    matches!(atoms[a as usize].kind, AtomKind::Literal)
                });
            }
        }

        let (scans, keyword_scan, keywords_scanned) = literal_scans(&atoms);
        for ((vr, wake), found) in vrules.iter_mut().zip(&wake_of).zip(&mut veto_of) {
            if let CBody::Expr { written, .. } = &vr.body {
                vr.requires = required_sets(written, &atoms, &cost, wake).into();
                vr.reads = reads(written, &atoms, &scans);
                found.retain(|&a| matches!(atoms[a as usize].kind, AtomKind::Literal));
                vr.vetoes = std::mem::take(found).into();
            }
        }
        View {
            rules: vrules,
            shown: atoms.iter().map(|_| OnceLock::new()).collect(),
            atoms,
            wakes: Wakes::of(&atom_rules),
            scans,
            keyword_scan,
            keywords_scanned,
            always,
            needle_sets,
        }
    }
}

/// A plain needle (a case-insensitive `contains` searched for directly):
/// its field, atom and lower-cased literal.
fn plain_needle(node: &Node, atoms: &[CAtom]) -> Option<(FieldKey, u32, Vec<u8>)> {
    let Node::Atom(a) = node else { return None };
    let atom = &atoms[*a as usize];
    match (&atom.kind, &atom.target, &atom.test) {
        (
            AtomKind::Needle(_),
            FieldTarget::Field(key),
            Test::Str {
                op: StrOp::Contains,
                value,
                cased: false,
            },
        ) => Some((key.clone(), *a, value.as_bytes().to_ascii_lowercase())),
        _ => None,
    }
}

/// The literals that wake a rule: its cheapest necessary set (one of them
/// in the event makes the rule a candidate). `None`: no literal is
/// necessary.
fn wake_set(written: &Node, atoms: &[CAtom], cost: &[f64]) -> Option<Vec<u32>> {
    necessary(written, atoms, cost, true).map(|(_, set)| set)
}

/// The sets of literals, each of which must have one in the event for a
/// condition to hold, besides its wake set `wake`: the necessary set of
/// each child of its top AND whose literals the scan decides (the anchored
/// ones of a scanned field, which the tries find whether they wake a rule
/// or not, and the wake literals of any rule). A candidate without one of
/// each is not evaluated: `image AND parent image` is woken by the rarer
/// image and passed over unless the other is there too.
///
/// They are checked on candidates rather than waking them too (a rule with
/// two sets was once a candidate when a literal of each had woken it):
/// their literals are common ones, `\cmd.exe` as a parent image, and
/// waking with them marked each of their rules on most events for nothing.
fn required_sets(written: &Node, atoms: &[CAtom], cost: &[f64], wake: &[u32]) -> Vec<Box<[u32]>> {
    let Node::And(children) = written else {
        return Vec::new();
    };
    let mut sets: Vec<Box<[u32]>> = Vec::new();
    for child in children {
        // With the atoms' final kinds: a set of literals the scan decides.
        if let Some((_, set)) = necessary(child, atoms, cost, true) {
            if !set.is_empty() && set != wake && !sets.iter().any(|s| **s == set[..]) {
                sets.push(set.into());
            }
        }
    }
    sets
}

/// The fields a condition reads, as positions in `scans`, each once: `None`
/// if one is not a named field with a scan, or they are more than
/// [`MAX_READS`].
fn reads(written: &Node, atoms: &[CAtom], scans: &[FieldScan]) -> Option<Box<[u32]>> {
    let mut seen = Vec::new();
    atoms_of(written, &mut seen);
    let mut keys: Vec<&FieldKey> = Vec::new();
    for a in seen {
        let atom = &atoms[a as usize];
        let FieldTarget::Field(key) = &atom.target else {
            return None;
        };
        keys.push(key);
        if let Test::FieldRef { other, .. } = &atom.test {
            keys.push(other);
        }
    }
    let mut at: Vec<u32> = Vec::new();
    for key in keys {
        let scan = scans
            .iter()
            .position(|fs| matches!(&fs.target, FieldTarget::Field(k) if k == key))?;
        if !at.contains(&(scan as u32)) {
            at.push(scan as u32);
        }
    }
    (at.len() <= MAX_READS).then(|| at.into_boxed_slice())
}

/// Puts in `out` atoms any of which, true, makes `node` false: those of a
/// negated child of its top AND (a rule's filters, `not 1 of filter_*`),
/// or of its own negation. *Execution Of Non-Existing File* is evaluated
/// on every process start, since it needs no literal; its filter
/// `Image|contains: '\'`, found by the scan, rules it out at once.
fn vetoes(node: &Node, out: &mut Vec<u32>) {
    match node {
        Node::And(v) => v.iter().for_each(|n| vetoes(n, out)),
        Node::Not(n) => making_true(n, out),
        _ => {}
    }
}

/// Puts in `out` atoms any of which, true, makes `node` true. A gate is not
/// one: it holds wherever its glob might.
fn making_true(node: &Node, out: &mut Vec<u32>) {
    match node {
        Node::Atom(a) => out.push(*a),
        Node::Or(v) => v.iter().for_each(|n| making_true(n, out)),
        Node::Not(n) => vetoes(n, out),
        _ => {}
    }
}

/// Every atom `node` tests.
fn atoms_of(node: &Node, out: &mut Vec<u32>) {
    match node {
        Node::Atom(a) | Node::Gate(a) => out.push(*a),
        Node::And(v) | Node::Or(v) => v.iter().for_each(|n| atoms_of(n, out)),
        Node::Not(n) => atoms_of(n, out),
        Node::Const(_) | Node::AnyOf(_) => {}
    }
}

/// Replaces, in every OR of `node`, the plain needles (case-insensitive
/// `contains`) of one field by one [`Node::AnyOf`] at the first one's place,
/// when there are two or more. Identical lists share one set.
fn group_needles(
    node: &mut Node,
    atoms: &[CAtom],
    sets: &mut Vec<NeedleSet>,
    index: &mut HashMap<(FieldKey, Vec<u32>), u32>,
) {
    match node {
        Node::And(v) => v
            .iter_mut()
            .for_each(|n| group_needles(n, atoms, sets, index)),
        Node::Not(n) => group_needles(n, atoms, sets, index),
        Node::Or(v) => {
            v.iter_mut()
                .for_each(|n| group_needles(n, atoms, sets, index));
            let needles: Vec<Option<(FieldKey, u32, Vec<u8>)>> =
                v.iter().map(|n| plain_needle(n, atoms)).collect();
            let mut grouped: Vec<&FieldKey> = Vec::new();
            let mut kept = Vec::with_capacity(v.len());
            for (n, needle) in v.drain(..).zip(&needles) {
                let Some((key, ..)) = needle else {
                    kept.push(n);
                    continue;
                };
                if grouped.contains(&key) {
                    continue;
                }
                let members: Vec<(u32, Vec<u8>)> = (needles.iter().flatten())
                    .filter(|m| &m.0 == key)
                    .map(|m| (m.1, m.2.clone()))
                    .collect();
                if members.len() < 2 {
                    kept.push(n);
                    continue;
                }
                grouped.push(key);
                let ids = members.iter().map(|m| m.0).collect();
                let set = *index.entry((key.clone(), ids)).or_insert_with(|| {
                    sets.push(NeedleSet::new(key.clone(), members));
                    sets.len() as u32 - 1
                });
                kept.push(Node::AnyOf(set));
            }
            *v = group_gated(kept, atoms, sets, index);
        }
        Node::Atom(_) | Node::Gate(_) | Node::Const(_) | Node::AnyOf(_) => {}
    }
}

/// Puts an OR's children gated by a plain needle on one field (a glob or a
/// regex behind its literal, `And(Gate, …)`) behind one search for all
/// their gates, when there are two or more: in *Suspicious SYSTEM User
/// Process Creation*, the glob `' -e* PAA'` and the regex `net\s+user\s+`
/// cost one packed search of `CommandLine` for ` paa` and `user` where
/// neither is, not two (its other globs' gates are literals the scan
/// decides). A miss settles every gate false; a hit leaves the children to
/// be decided one by one, as before.
fn group_gated(
    children: Vec<Node>,
    atoms: &[CAtom],
    sets: &mut Vec<NeedleSet>,
    index: &mut HashMap<(FieldKey, Vec<u32>), u32>,
) -> Vec<Node> {
    let gate_of = |n: &Node| match n {
        Node::And(v) => match v.first() {
            Some(Node::Gate(g)) => plain_needle(&Node::Atom(*g), atoms),
            _ => None,
        },
        _ => None,
    };
    let gates: Vec<Option<(FieldKey, u32, Vec<u8>)>> = children.iter().map(gate_of).collect();
    let mut grouped: Vec<(FieldKey, usize)> = Vec::new();
    let mut out: Vec<Node> = Vec::with_capacity(children.len());
    for (n, gate) in children.into_iter().zip(&gates) {
        let Some((key, ..)) = gate else {
            out.push(n);
            continue;
        };
        if let Some(&(_, at)) = grouped.iter().find(|(k, _)| k == key) {
            if let Node::And(v) = &mut out[at] {
                if let Some(Node::Or(members)) = v.get_mut(1) {
                    members.push(n);
                }
            }
            continue;
        }
        let mut members: Vec<(u32, Vec<u8>)> = Vec::new();
        for (_, atom, lit) in gates.iter().flatten().filter(|g| &g.0 == key) {
            if !members.iter().any(|m| m.0 == *atom) {
                members.push((*atom, lit.clone()));
            }
        }
        if members.len() < 2 {
            out.push(n);
            continue;
        }
        let ids = members.iter().map(|m| m.0).collect();
        let set = *index.entry((key.clone(), ids)).or_insert_with(|| {
            sets.push(NeedleSet::new(key.clone(), members));
            sets.len() as u32 - 1
        });
        grouped.push((key.clone(), out.len()));
        out.push(Node::And(vec![Node::AnyOf(set), Node::Or(vec![n])]));
    }
    out
}

/// Whether a literal atom is tested at a fixed end of a named field.
fn is_anchored(a: &CAtom) -> bool {
    matches!(
        (&a.target, &a.test),
        (
            FieldTarget::Field(_) | FieldTarget::Derived(_),
            Test::Str {
                op: StrOp::Prefix | StrOp::Suffix | StrOp::Equals,
                ..
            }
        )
    )
}

/// Per field: an automaton over its `contains` literals and tries over its
/// anchored ones; one automaton for keywords; and, per well-known field,
/// whether its scan holds the keywords.
///
/// A keyword can be in any field, so the scan of every well-known field
/// holds the keywords too: a remembered text then answers for them as for
/// its own literals, and a new one is searched once, not once by its scan
/// and again by a pass over the whole event (7–10% of the matcher's time
/// when every field went through that pass). The keyword automaton is left
/// the fields without such a scan.
fn literal_scans(atoms: &[CAtom]) -> (Vec<FieldScan>, Option<LiteralScan>, Vec<bool>) {
    type Lits = Vec<(String, LitUse)>;
    // Per field: contains, prefix (and equals), suffix.
    let mut per_field: Vec<(FieldTarget, [Lits; 3])> = Vec::new();
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
            target => {
                let p = match per_field.iter().position(|(t, _)| t == target) {
                    Some(p) => p,
                    None => {
                        per_field.push((target.clone(), Default::default()));
                        per_field.len() - 1
                    }
                };
                let slot = match op {
                    StrOp::Contains | StrOp::Term => 0,
                    StrOp::Prefix | StrOp::Equals => 1,
                    StrOp::Suffix => 2,
                };
                &mut per_field[p].1[slot]
            }
        };
        for spelling in spellings {
            let u = LitUse {
                atom: i as u32,
                op: *op,
                cased: cased.then(|| Arc::from(value.as_str())),
                keyword: a.target == FieldTarget::AnyField,
            };
            lits.push((spelling, u));
        }
    }
    let mut keyword_spellings = vec![0; per_field.len()];
    let mut keywords_scanned = vec![false; crate::event::KNOWN_FIELDS.len()];
    let folded = |lits: &Lits| -> std::collections::HashSet<String> {
        lits.iter().map(|(s, _)| s.to_ascii_lowercase()).collect()
    };
    let keywords = folded(&keyword_lits);
    let named = per_field.iter_mut().zip(&mut keyword_spellings);
    for ((target, [c, _, _]), added) in named.filter(|_| !keywords.is_empty()) {
        if let Some(id) = known_field(target) {
            let own = folded(c);
            *added = keywords.difference(&own).count();
            c.extend(keyword_lits.iter().cloned());
            keywords_scanned[usize::from(id)] = true;
        }
    }
    // One automaton per field, built on every core (the large ones, such as
    // `CommandLine`'s, are most of the time it takes to compile a rule set).
    let keyword = build_scan(keyword_lits);
    let per_field: Vec<_> = per_field.into_iter().zip(keyword_spellings).collect();
    let scans = crate::parallel::map_owned_in_parallel(
        per_field,
        |((target, [c, p, s]), keyword_spellings)| FieldScan {
            target,
            // Numbered once every view is built.
            id: 0,
            contains: (!c.is_empty()).then(|| GramScan::build(c)),
            prefix: (!p.is_empty()).then(|| AnchoredTrie::build(p, false)),
            suffix: (!s.is_empty()).then(|| AnchoredTrie::build(s, true)),
            keyword_spellings,
        },
    );
    (scans, keyword, keywords_scanned)
}

/// The well-known id of a named field's target.
fn known_field(target: &FieldTarget) -> Option<u16> {
    match target {
        FieldTarget::Field(key) => key.known_id(),
        _ => None,
    }
}

/// How much later than its cost a negated child of an AND is tried: after
/// direct text tests, globs and field references, before regexes.
const NEGATED_IN_AND: u32 = 16;

/// A copy of `node` whose AND and OR children are sorted by expected cost,
/// cheapest first, and that cost. Known-after-the-scan literals cost nothing,
/// direct text tests a little, regexes the most. Reordering never changes a
/// verdict (tests have no side effects), only how soon it is reached.
fn cheapest_first(node: &Node, atoms: &[CAtom]) -> (Node, u32) {
    match node {
        Node::Atom(a) | Node::Gate(a) => {
            let atom = &atoms[*a as usize];
            let cost = match (&atom.kind, &atom.target) {
                (AtomKind::Literal, _) => 0,
                (AtomKind::Regex(_), _) => 64,
                (_, FieldTarget::AnyField) => 32,
                (AtomKind::Glob(_), _) => 8,
                (AtomKind::Needle(_), _) => 2,
                (AtomKind::Lazy, _) => match atom.test {
                    Test::Str { .. } => 2,
                    Test::FieldRef { .. } | Test::Cidr(_) => 8,
                    _ => 1,
                },
            };
            (node.clone(), cost)
        }
        Node::Const(_) => (node.clone(), 0),
        Node::AnyOf(_) => (node.clone(), 2),
        Node::Not(n) => {
            let (n, cost) = cheapest_first(n, atoms);
            (Node::Not(Box::new(n)), cost)
        }
        Node::And(v) | Node::Or(v) => {
            let mut children: Vec<(Node, u32)> =
                v.iter().map(|n| cheapest_first(n, atoms)).collect();
            // Stable: equal costs keep the author's order. Within an AND, a
            // negated child (a rule's filters) is nearly always true, so it
            // seldom decides: it goes after tests that cost a little more
            // but usually fail (`Image|fieldref: ParentImage` before a
            // list of 30 filter names).
            let is_and = matches!(node, Node::And(_));
            children.sort_by_key(|(n, c)| match (is_and, n) {
                (true, Node::Not(_)) => c.saturating_add(NEGATED_IN_AND),
                _ => *c,
            });
            let cost = children
                .iter()
                .map(|(_, c)| *c)
                .fold(0u32, u32::saturating_add);
            let children = children.into_iter().map(|(n, _)| n).collect();
            let node = match node {
                Node::And(_) => Node::And(children),
                _ => Node::Or(children),
            };
            (node, cost)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fields;

    fn atom(kind: AtomKind, test: Test) -> CAtom {
        CAtom {
            target: FieldTarget::Field(fields::IMAGE),
            test,
            kind,
        }
    }

    #[test]
    fn anchor_bytes_are_each_patterns_rarest_byte_in_both_cases() {
        let anchors =
            |ps: &[&str]| anchor_bytes(&ps.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        // `\` is rarer than any letter of NotPetya's keyword.
        assert_eq!(anchors(&["\\perfc.dat"]), Some([b'\\'; 3]));
        // A letter stands for both its cases.
        let [a, b, c] = anchors(&["zzz"]).expect("one letter fits");
        assert_eq!(([a, b], c), ([b'z', b'Z'], b'Z'));
        assert_eq!(anchors(&["zzz", "\\"]), Some([b'z', b'Z', b'\\']));
        // More than three bytes, or an empty pattern: no anchors.
        assert_eq!(anchors(&["zzz", "qqq"]), None);
        assert_eq!(anchors(&[""]), None);
    }

    #[test]
    fn an_and_tries_its_negated_children_after_cheap_tests_but_before_regexes() {
        let literal = Test::Str {
            op: StrOp::Equals,
            value: "x".into(),
            cased: false,
        };
        let atoms = [
            atom(AtomKind::Literal, literal),
            atom(
                AtomKind::Lazy,
                Test::FieldRef {
                    other: fields::PARENT_IMAGE,
                    op: StrOp::Equals,
                    cased: false,
                },
            ),
            atom(
                AtomKind::Regex(0),
                Test::Regex {
                    pattern: "y".into(),
                    case_insensitive: false,
                    multi_line: false,
                    dot_all: false,
                },
            ),
        ];
        let order = |n: Node| format!("{:?}", cheapest_first(&n, &atoms).0);
        let filters = || Node::Not(Box::new(Node::Atom(0)));
        assert_eq!(
            order(Node::And(vec![filters(), Node::Atom(1)])),
            format!("{:?}", Node::And(vec![Node::Atom(1), filters()]))
        );
        assert_eq!(
            order(Node::And(vec![Node::Atom(2), filters()])),
            format!("{:?}", Node::And(vec![filters(), Node::Atom(2)]))
        );
        // An OR is decided by a test that holds, which a negation usually
        // does: its cheap negated children stay first.
        assert_eq!(
            order(Node::Or(vec![filters(), Node::Atom(1)])),
            format!("{:?}", Node::Or(vec![filters(), Node::Atom(1)]))
        );
    }
}
