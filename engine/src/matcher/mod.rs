//! The compiled rule set: one pass per field, whatever the number of rules.
//!
//! [`Ruleset::compile`] takes the [`Rule`]s of every front end and, for each
//! (event kind, OS) pair, builds a *view*: the rules in scope there, their atoms
//! deduplicated, and per field the scans below. Evaluating an event then costs:
//!
//! 1. per scanned field (one some rule's wake literal is on), a walk of its
//!    anchored tries from either end (every `startswith`, `endswith` and
//!    equals literal of the field) and one pass of a small
//!    window filter over the rules' *wake* literals (for each rule, the
//!    cheapest set of literals one of which must be in the text for it to
//!    fire), the view's keywords among them for a well-known field;
//!    keyword literals are looked for in the other fields in one pass;
//! 2. only the rules a wake literal touched, plus the few that can match
//!    without any literal (found at compile time by evaluating each
//!    condition in three-valued logic with every literal false), are
//!    evaluated, cheapest test first;
//! 3. their other tests run lazily, once per event: `contains` literals as
//!    vectorised substring searches over the lower-cased field (an OR's
//!    literals on one field as one packed search), then globs, regexes
//!    (gated on the literals every match must hold), numbers, `exists`,
//!    `null`, field references, CIDR.
//!
//! A glob with a literal piece is compiled as "contains the longest piece AND
//! the glob", so it, too, only costs work when its literal is seen.
//!
//! A [`Scratch`] remembers recent texts per field with the literals they
//! hold (`matcher/memo.rs`), and which rules did not fire on which
//! remembered texts (`matcher/verdicts.rs`): a repeated value is not scanned
//! again, and a rule whose fields all bring texts it has already read
//! together (or are absent), and did not fire on them, is not evaluated
//! again.
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

use std::net::IpAddr;
use std::sync::Arc;

use regex_automata::{meta, Input};

use crate::event::{Event, EventKind, FieldKey, NumBuf, Os, Value};
use crate::rule::{FieldTarget, Rule, Test, Unsupported};

mod compile;
mod gram;
mod memo;
mod needle;
mod needle_set;
mod program;
mod regexes;
mod text;
mod trie;
mod typical;
mod verdicts;

use compile::{AtomKind, CBody, FieldScan, LitUse, LiteralScan, Node, View};
use needle::{LoweredFields, Needle};
use program::Leaf;
use regexes::RegexTable;
use text::{glob_match, lit_match, term_bounded};
use verdicts::{Reading, Verdicts};

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
    pub field: Arc<str>,
    /// The test: `contains`, `startswith`, `endswith`, `equals`, `has`, `glob`,
    /// `re`, `lt`…, `exists`, `null`, `fieldref|…`, `cidr`, `ioc`.
    pub op: &'static str,
    /// The rule's literal, pattern or number; for IOC hits, the hash.
    /// Shared with the compiled rule, so a firing rule copies no text.
    pub value: Arc<str>,
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
    regexes: RegexTable,
    max_atoms: usize,
    max_rules: usize,
    /// Field scans in all views, numbered `0..scans` (see `FieldScan::id`).
    scans: usize,
    /// Tells this rule set from any other, so a [`Scratch`] never takes
    /// another's remembered scans for its own.
    id: u64,
}

/// The distinct sets of rules (indices into `rules`) that the (kind, os)
/// pairs see, and which set each pair sees: pairs that see the same rules
/// share one view.
fn view_members(rules: &[Rule]) -> (Vec<Vec<usize>>, [[usize; 2]; 6]) {
    let mut member_sets: Vec<Vec<usize>> = Vec::new();
    let mut by_members: std::collections::HashMap<Vec<usize>, usize> = Default::default();
    let mut view_of = [[0usize; 2]; 6];
    for kind in EventKind::ALL {
        for os in Os::ALL {
            let members: Vec<usize> = (rules.iter().enumerate())
                .filter(|(_, r)| r.scope.admits(kind, os))
                .map(|(i, _)| i)
                .collect();
            let idx = *by_members.entry(members.clone()).or_insert_with(|| {
                member_sets.push(members);
                member_sets.len() - 1
            });
            view_of[kind.index()][os.index()] = idx;
        }
    }
    (member_sets, view_of)
}

/// A regex that does not build, by its key, with why.
type TooBig<'a> = std::collections::HashMap<&'a regexes::RegexKey, String>;

/// Builds the views of `member_sets` and the planned regexes of `regexes`,
/// all on every core, the largest views first so that the regexes fill in
/// beside them (views need only the regexes' ids and gates). The views come
/// back in `member_sets` order, the regexes by id, or those that failed.
fn build_beside<'a>(
    rules: &[Rule],
    member_sets: &[Vec<usize>],
    regexes: &'a RegexTable,
) -> (Vec<View>, Result<Vec<meta::Regex>, TooBig<'a>>) {
    enum Job<'a> {
        View(usize),
        Regex(&'a regexes::RegexKey),
    }
    enum Built {
        View(Box<View>),
        Regex(Result<meta::Regex, String>),
    }
    let mut by_size: Vec<usize> = (0..member_sets.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(member_sets[i].len()));
    let jobs: Vec<Job> = (by_size.iter().map(|&i| Job::View(i)))
        .chain(regexes.keys().iter().map(Job::Regex))
        .collect();
    let built = crate::parallel::map_in_parallel(&jobs, 1, |job| match job {
        Job::View(i) => Built::View(Box::new(View::build(rules, &member_sets[*i], regexes))),
        Job::Regex(key) => Built::Regex(regexes::build(key)),
    });
    let mut views: Vec<Option<View>> = (0..member_sets.len()).map(|_| None).collect();
    let (mut built_regexes, mut too_big) = (Vec::with_capacity(regexes.len()), TooBig::new());
    for (job, b) in jobs.iter().zip(built) {
        match (job, b) {
            (Job::View(i), Built::View(v)) => views[*i] = Some(*v),
            (Job::Regex(_), Built::Regex(Ok(re))) => built_regexes.push(re),
            (Job::Regex(key), Built::Regex(Err(reason))) => {
                too_big.insert(*key, reason);
            }
            _ => unreachable!("each job gives its own kind"),
        }
    }
    let views = (views.into_iter())
        .map(|v| v.expect("every view was built"))
        .collect();
    (
        views,
        if too_big.is_empty() {
            Ok(built_regexes)
        } else {
            Err(too_big)
        },
    )
}

/// A rule the engine cannot compile, with why.
fn unsupported(rule: Rule, reason: String) -> Unsupported {
    Unsupported {
        path: rule.origin,
        id: Some(rule.id),
        title: Some(rule.title),
        reason,
        out_of_scope: false,
    }
}

/// The next [`Ruleset::id`].
static NEXT_RULESET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Ruleset {
    /// Compiles rules, in the order given (alerts of one event come out in this
    /// order). Rules that cannot be compiled (a regex the engine rejects) are
    /// returned with the reason; they never stop the others.
    pub fn compile(rules: Vec<Rule>) -> (Ruleset, Vec<Unsupported>) {
        let (ruleset, mut rejected) = Ruleset::compile_placed(rules);
        rejected.sort_by_key(|(at, _)| *at);
        (ruleset, rejected.into_iter().map(|(_, u)| u).collect())
    }

    /// [`Ruleset::compile`], each rejected rule with its place in `rules`.
    /// A rule is rejected for its first regex that does not parse or, when
    /// all parse, for its first that is too big to build.
    fn compile_placed(rules: Vec<Rule>) -> (Ruleset, Vec<(usize, Unsupported)>) {
        let (mut regexes, placed, failed) = RegexTable::plan_for(rules);
        let mut rejected: Vec<(usize, Unsupported)> = failed
            .into_iter()
            .map(|(at, rule, reason)| (at, unsupported(rule, reason)))
            .collect();
        let (places, accepted): (Vec<usize>, Vec<Rule>) = placed.into_iter().unzip();

        let (member_sets, view_of) = view_members(&accepted);
        let (mut views, built) = build_beside(&accepted, &member_sets, &regexes);
        let built_regexes = match built {
            Ok(built) => built,
            Err(too_big) => {
                // A regex that parses but does not build (over the size
                // limit): rare, so its rules are rejected and the rest
                // compiled again.
                let (mut keep, mut kept_at) = (Vec::new(), Vec::new());
                for (rule, at) in accepted.into_iter().zip(places) {
                    let first = regexes::rule_regexes(&rule)
                        .iter()
                        .find_map(|k| too_big.get(k).cloned());
                    match first {
                        Some(reason) => rejected.push((at, unsupported(rule, reason))),
                        None => {
                            keep.push(rule);
                            kept_at.push(at);
                        }
                    }
                }
                let (ruleset, again) = Ruleset::compile_placed(keep);
                rejected.extend(again.into_iter().map(|(i, u)| (kept_at[i], u)));
                return (ruleset, rejected);
            }
        };
        regexes.set_built(built_regexes);
        let mut scans = 0;
        for fs in views.iter_mut().flat_map(|v| v.scans.iter_mut()) {
            fs.id = scans as u32;
            scans += 1;
        }
        let max = |f: &dyn Fn(&View) -> usize| views.iter().map(f).max().unwrap_or(0);
        let max_atoms = max(&|v| v.atoms.len());
        let max_rules = max(&|v| v.rules.len());
        (
            Ruleset {
                rules: accepted,
                views,
                view_of,
                max_atoms,
                max_rules,
                regexes,
                scans,
                id: NEXT_RULESET.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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

    /// How many rules, atoms and distinct literal spellings one (kind, os) view
    /// holds, and how many of its rules are evaluated on every event (no
    /// literal gates them).
    pub fn view_stats(&self, kind: EventKind, os: Os) -> ViewStats {
        let v = &self.views[self.view_of[kind.index()][os.index()]];
        ViewStats {
            rules: v.rules.len(),
            atoms: v.atoms.len(),
            literals: v
                .scans
                .iter()
                .map(|s| {
                    s.contains.as_ref().map_or(0, |c| c.len()) - s.keyword_spellings + s.anchored()
                })
                .sum::<usize>()
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
        scratch.place(event);
        let mut ev = Eval {
            view,
            regexes: &self.regexes.regexes,
            runs: &self.regexes.runs,
            event,
            s: scratch,
        };
        ev.scan();
        // Candidates: woken rules (marked during the scan) plus the always list.
        for &r in &view.always {
            ev.s.mark(r);
        }
        ev.s.candidates.sort_unstable();
        let candidates = std::mem::take(&mut ev.s.candidates);
        for &r in &candidates {
            let vr = &view.rules[r as usize];
            if !ev.s.admits(vr) {
                continue;
            }
            match &vr.body {
                CBody::Expr { written, decide } => {
                    // A rule that read these very texts before and did not
                    // fire does not fire now (see `verdicts`).
                    let reading = (vr.reads.as_deref())
                        .filter(|_| ev.s.keep_verdicts)
                        .and_then(|reads| Reading::of(vr.global as u32, reads, &ev.s.text_ids));
                    if reading.is_some_and(|r| ev.s.verdicts.known_false(&r)) {
                        continue;
                    }
                    if decide.run(|leaf| ev.leaf(leaf)) {
                        let mut matches = Vec::new();
                        ev.collect_matches(written, true, &mut matches);
                        out.push(Detection {
                            rule: vr.global,
                            matches,
                        });
                    } else if let Some(reading) = reading {
                        ev.s.verdicts.remember_false(reading);
                    }
                }
                CBody::Ioc(set) => {
                    let mut matches = Vec::new();
                    set.hits(event, |entry, key| {
                        matches.push(Match {
                            field: Arc::from(key.as_str()),
                            op: "ioc",
                            value: Arc::from(entry.digest.to_string()),
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
        ev.s.candidates = candidates;
        ev.s.reset();
        for (key, _) in event.fields() {
            if let Some(id) = key.known_id() {
                scratch.known_slot[usize::from(id)] = 0;
            }
        }
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

/// Asks the CPU to start loading the cache line at `p`.
#[inline]
fn prefetch_at<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, and SSE, which
    // provides it, is part of every x86_64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the CPU to start loading both ends of `text` (where the tries
/// walk from) into its cache. An event's strings are scattered over the
/// heap and, on a busy endpoint, cold: loaded one at a time as the scan
/// reaches them, their misses would wait in line instead of overlapping.
#[inline]
fn prefetch(text: &[u8]) {
    if let (Some(first), Some(last)) = (text.first(), text.last()) {
        prefetch_at(first);
        prefetch_at(last);
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
/// event so that, once warmed up, evaluation allocates nothing unless a rule
/// fires. It also remembers recent field texts and the literals they hold,
/// and which rules did not fire on which of those texts (see
/// [`Scratch::forget`], [`Scratch::remember_texts`] and
/// [`Scratch::remember_verdicts`]).
#[derive(Debug)]
pub struct Scratch {
    /// Per atom: 0 = not (yet) known true, 1 = true, 2 = false.
    state: Vec<u8>,
    dirty: Vec<u32>,
    /// For keyword atoms: the index of the first event field the hit was in
    /// (field scans and the keyword pass may find it in any order).
    hit_field: Vec<u32>,
    rule_mark: Vec<bool>,
    candidates: Vec<u32>,
    /// Per regex id: this thread's search cache, made on first use.
    regex_caches: Vec<Option<meta::Cache>>,
    /// This event's fields, lower-cased for needles.
    lowered: LoweredFields,
    /// Per well-known field name: 1 + its position in this event, 0 when
    /// absent. Filled once per event, so a test finds its field at once
    /// rather than by a walk over the event's fields.
    known_slot: Vec<u32>,
    num: NumBuf,
    /// For keywords: every field's text the field scans did not search for
    /// them (the others left empty), each followed by a NUL, and where each
    /// starts; and the same text with ASCII letters in lower case,
    /// which the keyword automaton searches.
    joined: Vec<u8>,
    joined_lower: Vec<u8>,
    joined_starts: Vec<u32>,
    /// Text derived from an event (a digest in lower case).
    derived: String,
    /// Per field scan: texts seen and the atoms they set; and the rule set
    /// they are of.
    memos: Vec<memo::FieldMemo>,
    memos_of: u64,
    /// Whether texts are remembered at all.
    remember: bool,
    /// The atoms one text sets, as they are found.
    found: Vec<u32>,
    /// Per field scan of this event's view (by position): the id of its
    /// text (see [`verdicts`]).
    text_ids: Vec<memo::TextId>,
    /// The id the next remembered text gets.
    next_text_id: memo::TextId,
    /// Rules' verdicts on remembered texts, and whether they are kept.
    verdicts: Verdicts,
    keep_verdicts: bool,
}

const TRUE: u8 = 1;
const FALSE: u8 = 2;

impl Scratch {
    /// Working memory sized for `ruleset`.
    pub fn new(ruleset: &Ruleset) -> Scratch {
        let mut s = Scratch {
            state: Vec::new(),
            dirty: Vec::new(),
            hit_field: Vec::new(),
            rule_mark: Vec::new(),
            candidates: Vec::new(),
            regex_caches: Vec::new(),
            lowered: LoweredFields::default(),
            known_slot: vec![0; crate::event::KNOWN_FIELDS.len()],
            num: NumBuf::new(),
            joined: Vec::new(),
            joined_lower: Vec::new(),
            joined_starts: Vec::new(),
            derived: String::new(),
            memos: Vec::new(),
            memos_of: 0,
            remember: true,
            found: Vec::new(),
            text_ids: Vec::new(),
            next_text_id: verdicts::ABSENT + 1,
            verdicts: Verdicts::default(),
            keep_verdicts: true,
        };
        s.fit(ruleset);
        s
    }

    /// Forgets the field texts remembered from earlier events (a repeated
    /// value is otherwise not scanned again) and the verdicts kept on them:
    /// for a benchmark that runs the
    /// same events pass after pass, so each pass costs what a stream of
    /// those events would, not what a second look at them does.
    ///
    /// ```
    /// use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
    /// use trawl_engine::matcher::{Ruleset, Scratch};
    ///
    /// let (rs, _) = Ruleset::compile(trawl_engine::seed::load().rules);
    /// let mut scratch = Scratch::new(&rs);
    /// let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
    /// ev.set(fields::IMAGE, "C:\\Windows\\TAPI\\x.exe".into());
    /// let (mut first, mut again) = (Vec::new(), Vec::new());
    /// rs.evaluate(&ev, &mut scratch, &mut first);
    /// scratch.forget();
    /// rs.evaluate(&ev, &mut scratch, &mut again);
    /// assert_eq!(first.len(), again.len());
    /// ```
    pub fn forget(&mut self) {
        self.memos.iter_mut().for_each(memo::FieldMemo::clear);
        self.verdicts.clear();
    }

    /// Turns the memory of field texts on (the default) or off: off, every
    /// field of every event is scanned, as a matcher without it would. For
    /// benchmarks that tell the memory's gain from the rest.
    ///
    /// ```
    /// use trawl_engine::matcher::{Ruleset, Scratch};
    ///
    /// let (rs, _) = Ruleset::compile(trawl_engine::seed::load().rules);
    /// let mut scratch = Scratch::new(&rs);
    /// scratch.remember_texts(false);
    /// ```
    pub fn remember_texts(&mut self, on: bool) {
        self.remember = on;
    }

    /// Turns the memory of rules' verdicts on remembered texts on (the
    /// default) or off: off, every candidate rule is evaluated even when the
    /// texts it reads were all seen, together, before. For benchmarks that
    /// tell this memory's gain from the rest (turning the memory of texts
    /// off turns this one off too: it keeps verdicts by the texts' ids).
    ///
    /// ```
    /// use trawl_engine::matcher::{Ruleset, Scratch};
    ///
    /// let (rs, _) = Ruleset::compile(trawl_engine::seed::load().rules);
    /// let mut scratch = Scratch::new(&rs);
    /// scratch.remember_verdicts(false);
    /// ```
    pub fn remember_verdicts(&mut self, on: bool) {
        self.keep_verdicts = on;
    }

    fn fit(&mut self, rs: &Ruleset) {
        if self.state.len() < rs.max_atoms {
            self.state.resize(rs.max_atoms, 0);
            self.hit_field.resize(rs.max_atoms, 0);
        }
        if self.rule_mark.len() < rs.max_rules {
            self.rule_mark.resize(rs.max_rules, false);
        }
        if self.memos_of != rs.id {
            // A regex's cache is its own: another rule set's regex of the
            // same id must not search with it (regex-automata may panic or
            // answer wrongly).
            self.regex_caches.clear();
            self.memos.clear();
            self.memos.resize_with(rs.scans, Default::default);
            self.memos_of = rs.id;
            self.verdicts.clear();
            let view_scans = rs.views.iter().map(|v| v.scans.len()).max();
            self.text_ids
                .resize(view_scans.unwrap_or(0), verdicts::UNNAMED);
        }
        if self.regex_caches.len() < rs.regexes.len() {
            self.regex_caches.resize_with(rs.regexes.len(), || None);
        }
    }

    /// Notes where the event's well-known fields are (`known_slot`), and
    /// asks for its strings' ends to be loaded (see [`prefetch`]).
    #[inline]
    fn place(&mut self, event: &Event) {
        for (i, (key, value)) in event.fields().enumerate() {
            if let Value::Str(text) = value {
                prefetch(text.as_bytes());
            }
            if let Some(id) = key.known_id() {
                let slot = &mut self.known_slot[usize::from(id)];
                // The first of a repeated name, as `Event::get` finds it.
                if *slot == 0 {
                    *slot = i as u32 + 1;
                }
            }
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

    /// Whether the literal scan leaves candidate `vr` to be evaluated: it
    /// found none of the literals that rule it out, and one of each set it
    /// requires (see [`compile::ViewRule`]).
    #[inline]
    fn admits(&self, vr: &compile::ViewRule) -> bool {
        let found = |a: &u32| self.state[*a as usize] == TRUE;
        !vr.vetoes.iter().any(found) && vr.requires.iter().all(|set| set.iter().any(found))
    }

    /// Atom `atom`, already true, holds in the event's `field_index`th field
    /// too: a keyword's match is shown in the first field that holds it,
    /// whichever scan found it first.
    #[inline]
    fn first_field(&mut self, atom: u32, field_index: u32) {
        let first = &mut self.hit_field[atom as usize];
        *first = (*first).min(field_index);
    }

    /// A literal of a rule's wake set is in the event: the rule is a
    /// candidate.
    #[inline]
    fn mark(&mut self, rule: u32) {
        if !self.rule_mark[rule as usize] {
            self.rule_mark[rule as usize] = true;
            self.candidates.push(rule);
        }
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
        self.lowered.reset();
    }
}

/// One event's evaluation against one view.
struct Eval<'a> {
    view: &'a View,
    regexes: &'a [meta::Regex],
    /// Per regex: the class run every match holds, if any.
    runs: &'a [Option<regexes::ClassRun>],
    event: &'a Event,
    s: &'a mut Scratch,
}

impl<'a> Eval<'a> {
    /// A field of the event and its position: through the per-event table
    /// for well-known names, by a walk for others.
    #[inline]
    fn field(&self, key: &FieldKey) -> Option<(usize, &'a Value)> {
        match key.known_id() {
            Some(id) => {
                let at = (self.s.known_slot[usize::from(id)] as usize).checked_sub(1)?;
                self.event.field_at(at).map(|(_, v)| (at, v))
            }
            None => self.event.get_indexed(key),
        }
    }

    /// The literal pass: per field, a walk of its anchored tries and one
    /// automaton run over its `contains` literals (and the keyword automaton
    /// over the fields those did not search for keywords), marking hit atoms
    /// and the rules they wake.
    fn scan(&mut self) {
        let view = self.view;
        for (at, fs) in view.scans.iter().enumerate() {
            let id = match &fs.target {
                FieldTarget::Derived(d) => {
                    let mut buf = std::mem::take(&mut self.s.derived);
                    if let Some(text) = d.text(self.event, &mut buf) {
                        self.scan_field(fs, text, None);
                    }
                    self.s.derived = buf;
                    verdicts::UNNAMED
                }
                FieldTarget::Field(key) => {
                    let Some((i, value)) = self.field(key) else {
                        self.s.text_ids[at] = verdicts::ABSENT;
                        continue;
                    };
                    // A verdict is kept on a string's text alone: another
                    // type with the same text may test otherwise. Strings,
                    // nearly every field, go straight to the scan.
                    if let Value::Str(text) = value {
                        self.scan_remembered(fs, text, i)
                            .unwrap_or(verdicts::UNNAMED)
                    } else {
                        let mut num = std::mem::take(&mut self.s.num);
                        if let Some(text) = value.match_text(&mut num) {
                            self.scan_remembered(fs, text, i);
                        }
                        self.s.num = num;
                        verdicts::UNNAMED
                    }
                }
                FieldTarget::AnyField => verdicts::UNNAMED,
            };
            self.s.text_ids[at] = id;
        }
        if let Some(ks) = &view.keyword_scan {
            self.scan_keywords(ks);
        }
    }

    /// The keyword literals, looked for in the fields left: one automaton run
    /// over the event's field texts joined by NULs (a literal holds no NUL,
    /// so no hit spans two fields) rather than one run per field, whose
    /// fixed cost, times some twenty fields, was most of the work.
    ///
    /// The first occurrence of a well-known field whose scan holds the
    /// keywords was searched for them there (see `compile::literal_scans`),
    /// so it is left out here (an empty text keeps the fields' positions).
    fn scan_keywords(&mut self, scan: &LiteralScan) {
        let mut num = std::mem::take(&mut self.s.num);
        // Most events hold no keyword's anchor byte in the fields left:
        // then there is nothing to join and search.
        if let Some([a, b, c]) = scan.anchors {
            let anchored = (self.event.fields().enumerate())
                .filter(|&(i, (key, _))| !self.keywords_scanned(key, i))
                .any(|(_, (_, value))| {
                    value
                        .match_text(&mut num)
                        .is_some_and(|t| memchr::memchr3(a, b, c, t.as_bytes()).is_some())
                });
            if !anchored {
                self.s.num = num;
                return;
            }
        }
        let mut joined = std::mem::take(&mut self.s.joined);
        let mut starts = std::mem::take(&mut self.s.joined_starts);
        joined.clear();
        starts.clear();
        let mut any = false;
        for (i, (key, value)) in self.event.fields().enumerate() {
            starts.push(joined.len() as u32);
            if !self.keywords_scanned(key, i) {
                if let Some(text) = value.match_text(&mut num) {
                    joined.extend_from_slice(text.as_bytes());
                    any = true;
                }
            }
            joined.push(0);
        }
        self.s.num = num;
        if !any {
            self.s.joined = joined;
            self.s.joined_starts = starts;
            return;
        }
        // The automaton is over ASCII-folded literals and matches bytes as
        // they are: the text is folded the same way (positions do not move).
        let mut lower = std::mem::take(&mut self.s.joined_lower);
        lower.clear();
        lower.extend_from_slice(&joined);
        lower.make_ascii_lowercase();
        for m in scan.ac.find_overlapping_iter(&lower[..]) {
            // The field the hit is in, and the hit within that field's text.
            let field = starts.partition_point(|&s| s as usize <= m.start()) - 1;
            let from = starts[field] as usize;
            let to = starts.get(field + 1).map_or(joined.len(), |&s| s as usize) - 1;
            let hay = &joined[from..to];
            for u in &scan.uses[m.pattern().as_usize()] {
                self.hit(u, hay, m.start() - from, m.end() - from, field as u32);
            }
        }
        self.s.joined = joined;
        self.s.joined_lower = lower;
        self.s.joined_starts = starts;
    }

    /// Whether the event's `i`th field, named `key`, was searched for the
    /// keywords by its field scan: it is the first occurrence of a
    /// well-known field whose scan holds them.
    #[inline]
    fn keywords_scanned(&self, key: &FieldKey, i: usize) -> bool {
        key.known_id().is_some_and(|id| {
            self.view.keywords_scanned[usize::from(id)]
                && self.s.known_slot[usize::from(id)] as usize == i + 1
        })
    }

    /// One field's literals: its tries walked from either end, its `contains`
    /// filter run over its lower-cased text (kept for the needles when the
    /// text is the event's field at `position`).
    #[inline]
    fn scan_field(&mut self, fs: &FieldScan, text: &str, position: Option<usize>) {
        let hay = text.as_bytes();
        let mut lowered = std::mem::take(&mut self.s.lowered);
        let lower = fs.contains.is_some().then(|| match position {
            Some(i) => lowered.get(i, hay),
            None => lowered.scratch(hay),
        });
        let field_index = position.map_or(u32::MAX, |i| i as u32);
        each_literal(fs, hay, lower, |u, start, end| {
            self.hit(u, hay, start, end, field_index)
        });
        self.s.lowered = lowered;
    }

    /// [`Eval::scan_field`] of a named field (the event's `index`th), unless
    /// this text is remembered for this field: then the atoms it set are
    /// set again (see [`memo`]). A text of up to 512 bytes is remembered
    /// once scanned; a longer one once scanned on its second sighting. The
    /// id of the text, if remembered.
    fn scan_remembered(
        &mut self,
        fs: &FieldScan,
        text: &str,
        index: usize,
    ) -> Option<memo::TextId> {
        let hay = text.as_bytes();
        if hay.len() > memo::MAX_TEXT || !self.s.remember {
            self.scan_field(fs, text, Some(index));
            return None;
        }
        let hash = memo::hash(hay);
        let s = &mut *self.s;
        s.found.clear();
        let memo = &mut s.memos[fs.id as usize];
        let remembered = memo.get(hash, hay).map(|seen| {
            s.found.extend_from_slice(seen.atoms);
            seen.id
        });
        let id = match remembered {
            Some(id) => id,
            // A long text seen for the first time: scanned, not copied.
            None if !memo.admits(hash, hay.len()) => {
                self.scan_field(fs, text, Some(index));
                return None;
            }
            None => {
                self.find_atoms(fs, text, index);
                let s = &mut *self.s;
                let id = s.next_text_id;
                s.next_text_id += 1;
                s.memos[fs.id as usize].put(hash, hay, &s.found, id);
                id
            }
        };
        // By index: settling needs the whole scratch, `found` included.
        for k in 0..self.s.found.len() {
            let atom = self.s.found[k];
            if self.s.state[atom as usize] != TRUE {
                self.settle(atom, index as u32);
            } else {
                self.s.first_field(atom, index as u32);
            }
        }
        Some(id)
    }

    /// Puts in the scratch's `found` every atom `text` sets as field scan
    /// `fs` (the event's `index`th field), whatever the event's other fields
    /// set: in the order found, each once.
    fn find_atoms(&mut self, fs: &FieldScan, text: &str, index: usize) {
        let hay = text.as_bytes();
        let lower = fs
            .contains
            .is_some()
            .then(|| self.s.lowered.get(index, hay));
        let found = &mut self.s.found;
        each_literal(fs, hay, lower, |u, start, end| {
            if placed(u, hay, start, end) && !found.contains(&u.atom) {
                found.push(u.atom);
            }
        });
    }

    /// A literal seen at `hay[start..end]` (ignoring ASCII case): if its
    /// position and case hold, its atom is true and its rules wake.
    #[inline]
    fn hit(&mut self, u: &LitUse, hay: &[u8], start: usize, end: usize, field_index: u32) {
        if self.s.state[u.atom as usize] == TRUE {
            // Only a keyword may yet be named by an earlier field.
            if u.keyword
                && self.s.hit_field[u.atom as usize] > field_index
                && placed(u, hay, start, end)
            {
                self.s.first_field(u.atom, field_index);
            }
            return;
        }
        if placed(u, hay, start, end) {
            self.settle(u.atom, field_index);
        }
    }

    /// Atom `atom` holds (in the event's `field_index`th field, for
    /// keywords): it is true, and its rules wake.
    #[inline(always)]
    fn settle(&mut self, atom: u32, field_index: u32) {
        self.s.set(atom, TRUE);
        self.s.hit_field[atom as usize] = field_index;
        for &rule in self.view.wakes.of_atom(atom) {
            self.s.mark(rule);
        }
    }

    /// One step of a rule's program (see [`program`]).
    #[inline]
    fn leaf(&mut self, leaf: Leaf) -> bool {
        match leaf {
            Leaf::Atom(a) => self.atom(a),
            Leaf::Scanned(a) => self.s.state[a as usize] == TRUE,
            Leaf::AnyOf(set) => self.any_of(set),
        }
    }

    /// Whether any needle of a set holds. A miss settles every one of them
    /// (false); a hit settles the one found.
    fn any_of(&mut self, set: u32) -> bool {
        let set = &self.view.needle_sets[set as usize];
        let mut unknown = false;
        for &a in &set.atoms {
            match self.s.state[a as usize] {
                TRUE => return true,
                FALSE => {}
                _ => unknown = true,
            }
        }
        if !unknown {
            return false;
        }
        match self
            .field_bytes(&set.key, true)
            .and_then(|text| set.find(text))
        {
            Some(k) => {
                self.s.set(set.atoms[k], TRUE);
                true
            }
            None => {
                for &a in &set.atoms {
                    self.s.set(a, FALSE);
                }
                false
            }
        }
    }

    /// Whether atom `a` holds: known after the scan for most, decided on
    /// first use for the rest.
    #[inline]
    fn atom(&mut self, a: u32) -> bool {
        match self.s.state[a as usize] {
            TRUE => true,
            FALSE => false,
            _ => self.decide_atom(a),
        }
    }

    /// An atom not yet known this event: its test, run once (out of line,
    /// so that the known atoms' check stays a few instructions).
    #[inline(never)]
    fn decide_atom(&mut self, a: u32) -> bool {
        let atom = &self.view.atoms[a as usize];
        let result = match (&atom.kind, &atom.target) {
            (AtomKind::Literal, _) => return false,
            (AtomKind::Needle(n), FieldTarget::Field(key)) => self.needle(key, n),
            (_, target) => self.read_and_test(a, target),
        };
        self.s.set(a, if result { TRUE } else { FALSE });
        result
    }

    /// A needle's verdict on its field.
    fn needle(&mut self, key: &crate::event::FieldKey, n: &Needle) -> bool {
        self.field_bytes(key, !n.cased)
            .is_some_and(|text| n.is_in(text))
    }

    /// A named field's text, lower-cased (once per event and field) when
    /// `lower`: what needles search.
    fn field_bytes(&mut self, key: &crate::event::FieldKey, lower: bool) -> Option<&[u8]> {
        let (i, value) = self.field(key)?;
        let s = &mut *self.s;
        let text = value.match_text(&mut s.num)?.as_bytes();
        Some(if lower { s.lowered.get(i, text) } else { text })
    }

    /// Reads the atom's target and runs its test.
    fn read_and_test(&mut self, a: u32, target: &FieldTarget) -> bool {
        match target {
            FieldTarget::Field(key) => {
                let value = self.field(key).map(|(_, v)| Seen::Value(v));
                self.test(a, value)
            }
            FieldTarget::Derived(d) => {
                let mut buf = std::mem::take(&mut self.s.derived);
                let result = self.test(a, d.text(self.event, &mut buf).map(Seen::Text));
                self.s.derived = buf;
                result
            }
            FieldTarget::AnyField => {
                let mut hit = None;
                for (i, (_, v)) in self.event.fields().enumerate() {
                    if self.test(a, Some(Seen::Value(v))) {
                        hit = Some(i as u32);
                        break;
                    }
                }
                if let Some(i) = hit {
                    self.s.hit_field[a as usize] = i;
                }
                hit.is_some()
            }
        }
    }

    /// A non-literal test on one value (`None`: the field is absent).
    fn test(&mut self, a: u32, value: Option<Seen<'_>>) -> bool {
        let atom = &self.view.atoms[a as usize];
        let s = &mut *self.s;
        match (&atom.kind, &atom.test) {
            (_, Test::Exists(want)) => value.is_some_and(|v| !v.is_null()) == *want,
            (_, Test::Null) => match value {
                None | Some(Seen::Value(Value::Null)) => true,
                Some(Seen::Value(Value::Str(t))) => t.is_empty(),
                Some(Seen::Text(t)) => t.is_empty(),
                Some(_) => false,
            },
            (_, Test::Num { op, value: rhs }) => value
                .and_then(Seen::as_f64)
                .is_some_and(|lhs| op.apply(lhs, *rhs)),
            (_, Test::Cidr(net)) => value
                .and_then(Seen::as_str)
                .and_then(|t| t.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| net.contains(&ip)),
            (AtomKind::Glob(pat), Test::Glob { cased, .. }) => value
                .and_then(|v| v.match_text(&mut s.num))
                .is_some_and(|t| glob_match(pat, t, *cased)),
            (AtomKind::Regex(id), _) => {
                let Some(t) = value.and_then(|v| v.match_text(&mut s.num)) else {
                    return false;
                };
                if let Some(verdict) =
                    (self.runs[*id as usize].as_ref()).and_then(|run| run.decides(t.as_bytes()))
                {
                    return verdict;
                }
                let re = &self.regexes[*id as usize];
                let cache = s.regex_caches[*id as usize].get_or_insert_with(|| re.create_cache());
                re.is_match_with(cache, &Input::new(t))
            }
            (
                _,
                Test::Str {
                    op,
                    value: lit,
                    cased,
                },
            ) => value
                .and_then(|v| v.match_text(&mut s.num))
                .is_some_and(|t| lit_match(*op, t, lit, *cased)),
            (_, Test::FieldRef { other, op, cased }) => {
                let Some(t) = value.and_then(|v| v.match_text(&mut s.num)) else {
                    return false;
                };
                // The other field as text, without the shared buffer `t` uses.
                let mut other_num = NumBuf::new();
                self.event
                    .get(other)
                    .and_then(|v| v.match_text(&mut other_num))
                    .is_some_and(|o| lit_match(*op, t, o, *cased))
            }
            // Globs and regexes always carry their compiled form.
            (_, Test::Glob { .. } | Test::Regex { .. }) => false,
        }
    }

    /// The atoms that held in positive position of a firing rule (not the
    /// compiler's own gates).
    fn collect_matches(&mut self, node: &Node, positive: bool, out: &mut Vec<Match>) {
        match node {
            Node::Atom(a) => {
                if positive && self.atom(*a) {
                    let m = self.describe(*a);
                    if !out.contains(&m) {
                        out.push(m);
                    }
                }
            }
            Node::Gate(_) | Node::Const(_) | Node::AnyOf(_) => {}
            Node::And(v) | Node::Or(v) => {
                for n in v {
                    self.collect_matches(n, positive, out);
                }
            }
            Node::Not(n) => self.collect_matches(n, !positive, out),
        }
    }

    fn describe(&self, a: u32) -> Match {
        let atom = &self.view.atoms[a as usize];
        let shown = self.view.shown[a as usize].get_or_init(|| Shown::of(&atom.target, &atom.test));
        let field = match &shown.field {
            Some(f) => Arc::clone(f),
            None => self
                .event
                .fields()
                .nth(self.s.hit_field[a as usize] as usize)
                .map_or_else(|| Arc::from("*"), |(k, _)| Arc::from(k.as_str())),
        };
        Match {
            field,
            op: shown.op,
            value: Arc::clone(&shown.value),
            name: None,
        }
    }
}

/// How an alert's `matches` show one atom, made the first time it fires and
/// shared from then on: a firing rule's `matches` then copy pointers, not
/// strings (on the attack samples a third of the events fire a rule).
#[derive(Debug)]
pub(super) struct Shown {
    /// The field's name; `None` for a keyword, whose field is the event's.
    field: Option<Arc<str>>,
    op: &'static str,
    value: Arc<str>,
}

impl Shown {
    fn of(target: &FieldTarget, test: &Test) -> Shown {
        let field = match target {
            FieldTarget::Field(k) => Some(Arc::from(k.as_str())),
            FieldTarget::Derived(d) => Some(Arc::from(d.to_string())),
            FieldTarget::AnyField => None,
        };
        let (op, value): (&'static str, Arc<str>) = match test {
            Test::Str { op, value, .. } => (op.as_str(), Arc::from(value.as_str())),
            Test::Glob { tokens, .. } => ("glob", Arc::from(glob_text(tokens))),
            Test::Regex { pattern, .. } => ("re", Arc::from(pattern.as_str())),
            Test::Num { op, value } => (op.as_str(), Arc::from(value.to_string())),
            Test::Exists(b) => ("exists", Arc::from(b.to_string())),
            Test::Null => ("null", Arc::from("")),
            Test::FieldRef { other, op, .. } => (fieldref_op(*op), Arc::from(other.as_str())),
            Test::Cidr(net) => ("cidr", Arc::from(net.to_string())),
        };
        Shown { field, op, value }
    }
}

/// `fieldref|` and the comparison, as alerts spell it.
fn fieldref_op(op: crate::rule::StrOp) -> &'static str {
    use crate::rule::StrOp;
    match op {
        StrOp::Equals => "fieldref|equals",
        StrOp::Contains => "fieldref|contains",
        StrOp::Prefix => "fieldref|startswith",
        StrOp::Suffix => "fieldref|endswith",
        StrOp::Term => "fieldref|has",
    }
}

/// Calls `f(use, start, end)` for every literal of field scan `fs` seen in
/// `hay` (ignoring ASCII case): the anchored tries' walks, then the
/// `contains` filter over `lower`, the text lower-cased (given when `fs` has
/// `contains` literals).
fn each_literal(
    fs: &FieldScan,
    hay: &[u8],
    lower: Option<&[u8]>,
    mut f: impl FnMut(&LitUse, usize, usize),
) {
    if let Some(t) = &fs.prefix {
        t.walk(hay, &mut f);
    }
    if let Some(t) = &fs.suffix {
        t.walk(hay, &mut f);
    }
    if let (Some(c), Some(lower)) = (&fs.contains, lower) {
        c.scan(lower, f);
    }
}

/// Whether a literal seen at `hay[start..end]` (ignoring ASCII case) sits
/// where its use says (anywhere, at the start, at the end, the whole text,
/// a KQL term) in the case it asks for.
#[inline]
fn placed(u: &LitUse, hay: &[u8], start: usize, end: usize) -> bool {
    let placed = match u.op {
        crate::rule::StrOp::Contains => true,
        crate::rule::StrOp::Prefix => start == 0,
        crate::rule::StrOp::Suffix => end == hay.len(),
        crate::rule::StrOp::Equals => start == 0 && end == hay.len(),
        crate::rule::StrOp::Term => term_bounded(hay, start, end),
    };
    placed
        && u.cased
            .as_ref()
            .is_none_or(|exact| &hay[start..end] == exact.as_bytes())
}

/// A value a test reads: an event field, or text derived from the event.
#[derive(Clone, Copy)]
enum Seen<'a> {
    Value(&'a Value),
    Text(&'a str),
}

impl<'a> Seen<'a> {
    fn match_text<'b>(self, buf: &'b mut NumBuf) -> Option<&'b str>
    where
        'a: 'b,
    {
        match self {
            Seen::Value(v) => v.match_text(buf),
            Seen::Text(t) => Some(t),
        }
    }

    fn as_f64(self) -> Option<f64> {
        match self {
            Seen::Value(v) => v.as_f64(),
            Seen::Text(t) => crate::event::parse_number(t),
        }
    }

    fn as_str(self) -> Option<&'a str> {
        match self {
            Seen::Value(v) => v.as_str(),
            Seen::Text(t) => Some(t),
        }
    }

    fn is_null(self) -> bool {
        matches!(self, Seen::Value(Value::Null))
    }
}

/// Renders a glob back to Sigma-ish text (`*`, `?`), for alerts.
fn glob_text(tokens: &[crate::rule::GlobToken]) -> String {
    use crate::rule::GlobToken;
    tokens
        .iter()
        .map(|t| match t {
            GlobToken::Lit(s) => s.as_str(),
            GlobToken::Star => "*",
            GlobToken::Question => "?",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FieldKey;
    use crate::event::{fields, Timestamp};
    use crate::rule::{Atom, Expr, GlobToken, KindSet, Level, NumOp, RuleBody, Scope, StrOp};

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

    /// A case-insensitive glob of these tokens.
    fn glob(tokens: Vec<GlobToken>) -> Test {
        Test::Glob {
            tokens,
            cased: false,
        }
    }

    fn s(op: StrOp, v: &str) -> Test {
        Test::Str {
            op,
            value: v.into(),
            cased: false,
        }
    }

    /// `CommandLine|contains: v`.
    fn cmd_contains(v: &str) -> Expr {
        Expr::Atom(Atom::field(fields::COMMAND_LINE, s(StrOp::Contains, v)))
    }

    /// A keyword: `contains` on any field.
    fn keyword(v: &str) -> Expr {
        Expr::Atom(Atom {
            target: FieldTarget::AnyField,
            test: s(StrOp::Contains, v),
        })
    }

    fn proc(image: &str, cmd: &str) -> Event {
        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev.set(fields::IMAGE, image.into());
        ev.set(fields::COMMAND_LINE, cmd.into());
        ev
    }

    fn on(field: FieldKey, op: StrOp, v: &str, cased: bool) -> Expr {
        Expr::Atom(Atom {
            target: FieldTarget::Field(field),
            test: Test::Str {
                op,
                value: v.into(),
                cased,
            },
        })
    }

    /// The rules each event fires, each with a scratch of its own.
    fn fired_afresh(rs: &Ruleset, events: &[Event]) -> Vec<Vec<String>> {
        (events.iter())
            .map(|ev| fired(rs, std::slice::from_ref(ev), &mut Scratch::new(rs)).remove(0))
            .collect()
    }

    /// A rule of its own waking on each of `keys`: a field is scanned only
    /// when some literal of it wakes a rule (or rules one out), so a test
    /// of what scans give uses these to have its fields scanned.
    fn scanned(keys: &[FieldKey]) -> Vec<Rule> {
        (keys.iter())
            .map(|k| {
                let id = format!("scans {}", k.as_str());
                rule(&id, proc_win(), on(k.clone(), StrOp::Equals, &id, false))
            })
            .collect()
    }

    /// Rule ids firing on each event, evaluated with `scratch`.
    fn fired(rs: &Ruleset, events: &[Event], scratch: &mut Scratch) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        events
            .iter()
            .map(|ev| {
                out.clear();
                rs.evaluate(ev, scratch, &mut out);
                out.iter().map(|d| rs.rule(d.rule).id.clone()).collect()
            })
            .collect()
    }

    #[test]
    fn a_scratch_moved_to_another_rule_set_drops_its_regex_caches() {
        let re = |p: &str| {
            Expr::Atom(Atom::field(
                fields::COMMAND_LINE,
                Test::Regex {
                    pattern: p.into(),
                    case_insensitive: false,
                    multi_line: false,
                    dot_all: false,
                },
            ))
        };
        // Both regexes are id 0 of their rule set; a cache made for the
        // first made the second's search panic in regex-automata.
        let (a, _) = Ruleset::compile(vec![rule("a", Scope::ANY, re(r"cmd\.exe\s+/c"))]);
        let (b, _) = Ruleset::compile(vec![rule("b", Scope::ANY, re(r"\\system32\\.*\.exe"))]);
        let ev = [proc("x", r"C:\Windows\system32\cmd.exe /c whoami")];
        let mut scratch = Scratch::new(&a);
        assert_eq!(fired(&a, &ev, &mut scratch), [["a"]]);
        assert_eq!(fired(&b, &ev, &mut scratch), [["b"]]);
        assert_eq!(fired(&a, &ev, &mut scratch), [["a"]]);
    }

    #[test]
    fn a_rule_is_ruled_out_only_by_a_literal_whose_presence_makes_it_false() {
        use StrOp::*;
        let (image, line) = (|| fields::IMAGE, || fields::COMMAND_LINE);
        let not = |e: Expr| Expr::Not(Box::new(e));
        let cmd_exe = || on(image(), Suffix, "\\cmd.exe", false);
        let whoami = || on(line(), Contains, "whoami", false);
        let rules = [
            // Needs no literal, so evaluated on every event; a backslash rules it out.
            ("missing", not(on(image(), Contains, "\\", false))),
            // `cmd.exe` alone does not make the AND true.
            ("not_both", not(Expr::And(vec![cmd_exe(), whoami()]))),
            ("double", not(not(cmd_exe()))),
            ("or_top", Expr::Or(vec![cmd_exe(), not(whoami())])),
            (
                "filtered",
                Expr::And(vec![
                    whoami(),
                    not(Expr::Or(vec![
                        cmd_exe(),
                        on(image(), Contains, "temp", false),
                    ])),
                ]),
            ),
        ];
        let (rs, _) = Ruleset::compile(
            (rules.iter())
                .map(|(id, e)| rule(id, Scope::ANY, e.clone()))
                .collect(),
        );
        let events = [
            proc(r"C:\Windows\System32\cmd.exe", "cmd /c whoami"),
            proc(r"C:\Temp\x.exe", "whoami"),
            proc("System", "Registry"),
            proc(r"C:\x\cmd.exe", "dir"),
            proc(r"C:\Users\a.exe", "whoami /all"),
        ];
        let expected: Vec<Vec<String>> = [
            &["double", "or_top"][..],
            &["not_both"],
            &["missing", "not_both", "or_top"],
            &["not_both", "double", "or_top"],
            &["not_both", "filtered"],
        ]
        .iter()
        .map(|ids| ids.iter().map(|id| id.to_string()).collect())
        .collect();
        let sorted = |mut v: Vec<Vec<String>>| {
            v.iter_mut().for_each(|ids| ids.sort());
            v
        };
        let expected = sorted(expected);
        assert_eq!(sorted(fired_afresh(&rs, &events)), expected);
        // Twice with one scratch: remembered texts and kept verdicts too.
        let mut scratch = Scratch::new(&rs);
        for _ in 0..2 {
            assert_eq!(sorted(fired(&rs, &events, &mut scratch)), expected);
        }
    }

    #[test]
    fn remembered_field_texts_fire_as_scanned_ones() {
        use StrOp::*;
        let (image, line) = (|| fields::IMAGE, || fields::COMMAND_LINE);
        let rules = [
            ("a", on(image(), Suffix, "\\cmd.exe", false)),
            ("b", on(line(), Contains, " /c ", false)),
            (
                "c",
                Expr::And(vec![
                    on(image(), Prefix, "C:\\Windows\\", false),
                    on(line(), Contains, "whoami", false),
                ]),
            ),
            ("d", on(line(), Equals, "cmd.exe", false)),
            ("e", on(line(), Contains, "WHOAMI", true)),
            ("f", on(image(), Contains, "Temp", true)),
            ("g", Expr::Not(Box::new(on(line(), Contains, "/c", false)))),
        ];
        let rules = rules.map(|(id, e)| rule(id, proc_win(), e)).to_vec();
        let (rs, _) = Ruleset::compile(rules);
        // Values repeated across events and across the two fields, in
        // other cases, as the first event of a pair and as the second.
        let images = [
            "C:\\Windows\\System32\\cmd.exe",
            "c:\\temp\\CMD.EXE",
            "C:\\Temp\\x.exe",
            "cmd.exe",
        ];
        let lines = [
            "cmd.exe",
            "cmd.exe /c whoami",
            "CMD.EXE /C WHOAMI",
            "x /c y",
            "C:\\Temp\\x.exe",
            "",
        ];
        let mut events = Vec::new();
        for round in 0..3 {
            for (i, image) in images.iter().enumerate() {
                for (j, line) in lines.iter().enumerate() {
                    if (i + j + round) % 2 == 0 {
                        events.push(proc(image, line));
                    }
                }
            }
        }
        // Each event scanned afresh, against one scratch that remembers.
        let fresh = fired_afresh(&rs, &events);
        let mut shared = Scratch::new(&rs);
        assert_eq!(fired(&rs, &events, &mut shared), fresh);
        let mut off = Scratch::new(&rs);
        off.remember_texts(false);
        assert_eq!(fired(&rs, &events, &mut off), fresh);
        assert!(fresh.iter().any(|f| f.len() >= 3), "{fresh:?}");
        // A scratch moved to another rule set forgets this one's texts.
        let other = vec![rule(
            "z",
            proc_win(),
            on(fields::COMMAND_LINE, Contains, "zzz", false),
        )];
        let (other, _) = Ruleset::compile(other);
        assert_eq!(
            fired(&other, &events, &mut shared),
            vec![Vec::<String>::new(); events.len()]
        );
        assert_eq!(fired(&rs, &events, &mut shared), fresh);
    }

    #[test]
    fn long_texts_are_remembered_from_their_second_sighting() {
        use StrOp::*;
        let line = || fields::COMMAND_LINE;
        let rules = [
            ("b", on(line(), Contains, " /c ", false)),
            ("e", on(line(), Contains, "WHOAMI", true)),
            ("g", Expr::Not(Box::new(on(line(), Contains, "/c", false)))),
            ("s", on(line(), Suffix, "tail", false)),
        ];
        let rules = rules.map(|(id, e)| rule(id, proc_win(), e)).to_vec();
        let (rs, _) = Ruleset::compile(rules);
        let pad = |text: &str, to: usize| format!("{text} {}tail", "x".repeat(to - text.len() - 5));
        // Long (over 512 bytes, up to the 4 KiB still remembered) and too
        // long to be remembered, each three times, with other texts between.
        let long = [
            pad("cmd.exe /c whoami", 600),
            pad("CMD.EXE /C WHOAMI", 4096),
            pad("cmd.exe /c WHOAMI", 5000),
            pad("x", 700),
        ];
        let mut events = Vec::new();
        for _ in 0..3 {
            for text in &long {
                events.push(proc("C:\\Windows\\System32\\cmd.exe", text));
            }
        }
        let fresh = fired_afresh(&rs, &events);
        assert_eq!(fresh[0], ["b", "s"]);
        assert_eq!(fresh[1], ["b", "e", "s"]);
        assert_eq!(fresh[3], ["g", "s"]);
        let mut shared = Scratch::new(&rs);
        let view = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        let scan = (view.scans.iter())
            .find(|fs| matches!(&fs.target, FieldTarget::Field(k) if *k == fields::COMMAND_LINE))
            .expect("the command line is scanned");
        let remembered = |scratch: &Scratch, text: &str| {
            scratch.memos[scan.id as usize]
                .get(memo::hash(text.as_bytes()), text.as_bytes())
                .is_some()
        };
        let mut out = Vec::new();
        for (i, (ev, want)) in events.iter().zip(&fresh).enumerate() {
            out.clear();
            rs.evaluate(ev, &mut shared, &mut out);
            let got: Vec<&str> = out.iter().map(|d| rs.rules[d.rule].id.as_str()).collect();
            assert_eq!(&got, want, "event {i}");
            let text = &long[i % long.len()];
            // Copied on the second sighting (i / 4 == 1), never when over 4 KiB.
            let copied = i / long.len() >= 1 && text.len() <= memo::MAX_TEXT;
            assert_eq!(
                remembered(&shared, text),
                copied,
                "event {i}, {} bytes",
                text.len()
            );
        }
        // Forgetting forgets the sightings too.
        shared.forget();
        rs.evaluate(&events[0], &mut shared, &mut out);
        assert!(!remembered(&shared, &long[0]));
    }

    #[test]
    fn a_field_whose_literals_wake_no_rule_is_not_scanned_and_still_decides() {
        // `image` and not a version test: the negated version test wakes
        // nothing (a rule wakes on what must be there), the image does.
        let unless_version = |id: &str, image: &str, op, v: &str| {
            let version = on(FieldKey::from_name("FileVersion"), op, v, false);
            let image = on(fields::IMAGE, StrOp::Suffix, image, false);
            rule(
                id,
                proc_win(),
                Expr::And(vec![image, Expr::Not(Box::new(version))]),
            )
        };
        let (rs, _) = Ruleset::compile(vec![
            unless_version("old", "\\a.exe", StrOp::Prefix, "10."),
            unless_version("exact", "\\b.exe", StrOp::Equals, "1.0"),
        ]);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        let scanned: Vec<&str> = (v.scans.iter())
            .filter_map(|fs| match &fs.target {
                FieldTarget::Field(k) => Some(k.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(scanned, ["Image"]);
        let mut scratch = Scratch::new(&rs);
        let ids = |image: &str, version: Option<&str>, scratch: &mut Scratch| {
            let mut ev = proc(image, "");
            if let Some(v) = version {
                ev.set(FieldKey::from_name("FileVersion"), v.into());
            }
            fired(&rs, std::slice::from_ref(&ev), scratch).remove(0)
        };
        for _ in 0..2 {
            assert_eq!(
                ids("C:\\a.exe", Some("10.0.1"), &mut scratch),
                Vec::<String>::new()
            );
            assert_eq!(ids("C:\\a.exe", Some("9.1"), &mut scratch), ["old"]);
            assert_eq!(ids("C:\\a.exe", None, &mut scratch), ["old"]);
            assert_eq!(
                ids("C:\\b.exe", Some("1.0"), &mut scratch),
                Vec::<String>::new()
            );
            assert_eq!(ids("C:\\b.exe", Some("1.0.1"), &mut scratch), ["exact"]);
        }
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
    fn a_literal_many_rules_test_wakes_none_that_has_its_own() {
        let image = || Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, "\\x.exe")));
        let lone =
            |id: &str, lit: &str| rule(id, proc_win(), Expr::And(vec![image(), cmd_contains(lit)]));
        // Alone, `\x.exe` (six characters, placed) is rarer than `-aaaaa`.
        let (rs, _) = Ruleset::compile(vec![lone("a", "-aaaaa")]);
        let stats = rs.view_stats(EventKind::ProcessStart, Os::Windows);
        assert_eq!(stats.literals, 1, "the suffix wakes the rule");
        // Tested by three rules, it is taken for a common one.
        let (rs, _) = Ruleset::compile(vec![
            lone("a", "-aaaaa"),
            lone("b", "-bbbbb"),
            lone("c", "-ccccc"),
        ]);
        let stats = rs.view_stats(EventKind::ProcessStart, Os::Windows);
        // The image's suffix, waking none, is no longer scanned for.
        assert_eq!(stats.literals, 3, "each rule wakes on its own literal");
        assert_eq!(rs.matching_ids(&proc("C:\\x.exe", "x -BBBBB")), ["b"]);
    }

    /// The literals that wake rules in the Windows process-start view.
    fn waking(rs: &Ruleset) -> Vec<(StrOp, &str)> {
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        (v.atoms.iter().enumerate())
            .filter(|&(a, _)| !v.wakes.of_atom(a as u32).is_empty())
            .filter_map(|(_, a)| match &a.test {
                Test::Str { op, value, .. } => Some((*op, value.as_str())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_letter_whose_case_form_is_ascii_matches_alike_whatever_wakes_its_rule() {
        // The Kelvin sign's lower case is `k`, dotless ı's upper case `I`,
        // ſ's `S`. Alone, the literal wakes its rule (a scan); beside a
        // rarer one it is tested directly. Both must say the same of every
        // text, and the form's ASCII case is ignored on both.
        let image = Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, "\\zq.exe")));
        for (lit, fire, quiet) in [
            (
                "\u{212a}ill",
                ["kill", "Kill", "\u{212a}ILL"],
                ["xill", "\u{212b}ill"],
            ),
            (
                "k\u{131}ll",
                ["kIll", "KiLL", "k\u{131}ll"],
                ["kjll", "k\u{130}ll"],
            ),
            (
                "sy\u{17f}tem32",
                ["SYSTEM32", "system32", "sy\u{17f}tem32"],
                ["syztem32", "sy\u{15b}tem32"],
            ),
        ] {
            // Compiled apart: in one set they would share the scanned atom.
            let (alone, _) = Ruleset::compile(vec![rule("alone", proc_win(), cmd_contains(lit))]);
            let (beside, _) = Ruleset::compile(vec![rule(
                "beside",
                proc_win(),
                Expr::And(vec![image.clone(), cmd_contains(lit)]),
            )]);
            for text in fire {
                let ev = proc("C:\\zq.exe", text);
                assert_eq!(alone.matching_ids(&ev), ["alone"], "{text}");
                assert_eq!(beside.matching_ids(&ev), ["beside"], "{text}");
            }
            for text in quiet {
                let ev = proc("C:\\zq.exe", text);
                assert!(alone.matching_ids(&ev).is_empty(), "{text}");
                assert!(beside.matching_ids(&ev).is_empty(), "{text}");
            }
        }
    }

    #[test]
    fn a_long_literal_in_most_events_does_not_wake_a_rule() {
        // SigmaHQ's path traversal rule: by length alone `\Windows\` (nine
        // characters) passes for rarer than `\..\..\` (seven), yet it is in
        // most images.
        let image = Expr::Atom(Atom::field(
            fields::IMAGE,
            s(StrOp::Contains, "\\Windows\\"),
        ));
        let cl = Expr::Atom(Atom::field(
            fields::COMMAND_LINE,
            s(StrOp::Contains, "\\..\\..\\"),
        ));
        let (rs, _) = Ruleset::compile(vec![rule(
            "traversal",
            proc_win(),
            Expr::And(vec![image, cl]),
        )]);
        assert_eq!(waking(&rs), [(StrOp::Contains, "\\..\\..\\")]);
        assert_eq!(
            rs.matching_ids(&proc("C:\\Windows\\x.exe", "x ..\\..\\..\\y")),
            ["traversal"]
        );
        assert!(rs.matching_ids(&proc("C:\\Windows\\x.exe", "x")).is_empty());
    }

    #[test]
    fn a_rule_with_two_wake_sets_waits_for_both() {
        let suffix = |key, v: &str| Expr::Atom(Atom::field(key, s(StrOp::Suffix, v)));
        let cl = cmd_contains("-zz");
        let both = Expr::And(vec![
            suffix(fields::IMAGE, "\\a.exe"),
            suffix(fields::PARENT_IMAGE, "\\b.exe"),
            cl,
        ]);
        let mut rules = vec![rule("both", proc_win(), both)];
        rules.extend(scanned(&[fields::IMAGE, fields::PARENT_IMAGE]));
        let (rs, _) = Ruleset::compile(rules);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        // One image wakes the rule; the other is required.
        let waking: Vec<u32> = (0..v.atoms.len() as u32)
            .filter(|&a| v.wakes.of_atom(a) == [0])
            .collect();
        assert_eq!(waking.len(), 1, "one literal wakes it");
        assert_eq!(
            v.rules[0]
                .requires
                .iter()
                .map(|set| set.len())
                .collect::<Vec<_>>(),
            [1],
            "one literal is required (`-zz` is not scanned for)"
        );
        assert_ne!(waking[..], v.rules[0].requires[0][..]);
        for a in waking.iter().chain(&v.rules[0].requires[0][..]) {
            assert!(
                matches!(&v.atoms[*a as usize].target, FieldTarget::Field(k) if *k == fields::IMAGE || *k == fields::PARENT_IMAGE),
                "an image and a parent image"
            );
        }
        // The scan alone: with one set hit, the rule is not a candidate the
        // scan admits (it is not evaluated at all); with both, it is.
        let woken = |event: &Event| {
            let mut scratch = Scratch::new(&rs);
            scratch.place(event);
            let mut ev = Eval {
                view: v,
                regexes: &rs.regexes.regexes,
                runs: &rs.regexes.runs,
                event,
                s: &mut scratch,
            };
            ev.scan();
            let s = &*ev.s;
            (s.candidates.iter().copied())
                .filter(|&r| s.admits(&v.rules[r as usize]))
                .collect::<Vec<u32>>()
        };
        let mut ev = proc("C:\\a.exe", "x -ZZ");
        assert_eq!(woken(&ev), [] as [u32; 0], "an image alone");
        let mut parent = proc("C:\\x.exe", "x -ZZ");
        parent.set(fields::PARENT_IMAGE, "C:\\b.exe".into());
        assert_eq!(woken(&parent), [] as [u32; 0], "a parent image alone");
        assert!(rs.matching_ids(&ev).is_empty(), "no parent image");
        ev.set(fields::PARENT_IMAGE, "C:\\B.EXE".into());
        assert_eq!(woken(&ev), [0], "both");
        assert_eq!(rs.matching_ids(&ev), ["both"]);
        // Every later event starts from no set hit.
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        rs.evaluate(&proc("C:\\a.exe", "-zz"), &mut scratch, &mut out);
        let mut parent_only = proc("C:\\c.exe", "-zz");
        parent_only.set(fields::PARENT_IMAGE, "C:\\b.exe".into());
        rs.evaluate(&parent_only, &mut scratch, &mut out);
        assert!(out.is_empty(), "halves of two events do not add up");
    }

    #[test]
    fn a_candidate_needs_a_literal_of_every_scanned_set_of_its_and() {
        let suffix = |key, v: &str| Expr::Atom(Atom::field(key, s(StrOp::Suffix, v)));
        let all = Expr::And(vec![
            suffix(fields::IMAGE, "\\a.exe"),
            suffix(fields::PARENT_IMAGE, "\\b.exe"),
            Expr::Or(vec![
                suffix(fields::ORIGINAL_FILE_NAME, "a.exe"),
                suffix(fields::ORIGINAL_FILE_NAME, "c.exe"),
            ]),
        ]);
        let mut rules = vec![rule("all", proc_win(), all)];
        rules.extend(scanned(&[
            fields::IMAGE,
            fields::PARENT_IMAGE,
            fields::ORIGINAL_FILE_NAME,
        ]));
        let (rs, _) = Ruleset::compile(rules);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        let mut sizes: Vec<usize> = v.rules[0].requires.iter().map(|set| set.len()).collect();
        sizes.sort_unstable();
        assert!(
            sizes == [1, 1] || sizes == [1, 2],
            "two sets besides the wake set: {sizes:?}"
        );
        let event = |image: &str, parent: &str, original: &str| {
            let mut ev = proc(image, "x");
            ev.set(fields::PARENT_IMAGE, parent.into());
            ev.set(fields::ORIGINAL_FILE_NAME, original.into());
            ev
        };
        let events = [
            event("C:\\a.exe", "C:\\b.exe", "c.exe"),
            event("C:\\a.exe", "C:\\b.exe", "d.exe"),
            event("C:\\a.exe", "C:\\x.exe", "a.exe"),
            event("C:\\x.exe", "C:\\b.exe", "a.exe"),
        ];
        let expected = [vec!["all".to_string()], vec![], vec![], vec![]];
        assert_eq!(fired_afresh(&rs, &events), expected);
        assert_eq!(fired(&rs, &events, &mut Scratch::new(&rs)), expected);
    }

    #[test]
    fn rules_wake_on_their_rarest_necessary_literal_only() {
        let image = |v: &str| Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, v)));
        let rules = vec![
            rule(
                "pd",
                proc_win(),
                Expr::And(vec![cmd_contains(" -"), image("\\procdump.exe")]),
            ),
            // not (not a or not b) = a and b: negations are looked through.
            rule(
                "nn",
                proc_win(),
                Expr::Not(Box::new(Expr::Or(vec![
                    Expr::Not(Box::new(cmd_contains("sekurlsa"))),
                    Expr::Not(Box::new(cmd_contains(" -"))),
                ]))),
            ),
            rule(
                "either",
                proc_win(),
                Expr::Or(vec![cmd_contains("lsass"), image("\\x.exe")]),
            ),
        ];
        let (rs, _) = Ruleset::compile(rules);
        let stats = rs.view_stats(EventKind::ProcessStart, Os::Windows);
        assert_eq!(stats.always_evaluated, 0);
        assert_eq!(stats.literals, 4, "` -` is tested directly, not scanned");
        assert_eq!(
            rs.matching_ids(&proc("C:\\ProcDump.EXE", "procdump -ma")),
            ["pd"]
        );
        assert!(rs
            .matching_ids(&proc("C:\\ProcDump.EXE", "procdump"))
            .is_empty());
        assert!(rs.matching_ids(&proc("C:\\a.exe", "a -b")).is_empty());
        assert_eq!(rs.matching_ids(&proc("C:\\a.exe", "a -SEKURLSA")), ["nn"]);
        assert_eq!(rs.matching_ids(&proc("C:\\X.exe", "")), ["either"]);
        assert_eq!(rs.matching_ids(&proc("", "LSASS")), ["either"]);
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
        let (rs, _) = Ruleset::compile(vec![rule(
            "glob",
            proc_win(),
            Expr::Atom(Atom::field(
                fields::IMAGE,
                glob(vec![
                    GlobToken::Star,
                    GlobToken::Lit("\\temp\\".into()),
                    GlobToken::Star,
                    GlobToken::Lit(".p".into()),
                    GlobToken::Question,
                    GlobToken::Lit("1".into()),
                ]),
            )),
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

    fn re(pattern: &str) -> Test {
        Test::Regex {
            pattern: pattern.into(),
            case_insensitive: false,
            multi_line: false,
            dot_all: false,
        }
    }

    #[test]
    fn extended_mode_regex_with_a_comment_compiles_and_matches() {
        // A `#` comment in `(?x)` mode must not swallow anything the engine adds.
        let (rs, rej) = Ruleset::compile(vec![
            rule(
                "x",
                proc_win(),
                Expr::Atom(Atom::field(
                    fields::COMMAND_LINE,
                    re("(?x) abc # a comment"),
                )),
            ),
            rule(
                "y",
                proc_win(),
                Expr::Atom(Atom::field(fields::COMMAND_LINE, re("zz"))),
            ),
        ]);
        assert!(rej.is_empty(), "{rej:?}");
        assert_eq!(rs.matching_ids(&proc("", "xabcx")), ["x"]);
        assert_eq!(rs.matching_ids(&proc("", "zz")), ["y"]);
    }

    #[test]
    fn regex_groups_too_large_for_one_automaton_fall_back_to_one_by_one() {
        // Each compiles alone; together they exceed the group's size limit.
        let rules: Vec<Rule> = (0..10)
            .map(|i| {
                rule(
                    &format!("w{i}"),
                    proc_win(),
                    Expr::Atom(Atom::field(
                        fields::COMMAND_LINE,
                        re(&format!(r"\w{{{}}}", 200 + i)),
                    )),
                )
            })
            .collect();
        let (rs, rej) = Ruleset::compile(rules);
        assert!(rej.is_empty(), "{rej:?}");
        assert_eq!(rs.matching_ids(&proc("", &"a".repeat(204))).len(), 5);
    }

    #[test]
    fn a_glob_is_gated_on_its_rarest_piece_at_its_place() {
        // `.exe` is the longer piece, but in every original file name.
        let (rs, _) = Ruleset::compile(vec![rule(
            "7z",
            proc_win(),
            Expr::Atom(Atom::field(
                fields::ORIGINAL_FILE_NAME,
                glob(vec![
                    GlobToken::Lit("7z".into()),
                    GlobToken::Star,
                    GlobToken::Lit(".exe".into()),
                ]),
            )),
        )]);
        assert_eq!(waking(&rs), [(StrOp::Prefix, "7z")]);
        let ofn = |name: &str| {
            let mut ev = proc("C:\\x.exe", "");
            ev.set(fields::ORIGINAL_FILE_NAME, name.into());
            rs.matching_ids(&ev)
        };
        assert_eq!(ofn("7z.exe"), ["7z"]);
        assert_eq!(ofn("7ZIP.EXE"), ["7z"]);
        assert!(ofn("a7z.exe").is_empty());
        assert!(ofn("7z.dll").is_empty());
    }

    #[test]
    fn globs_behind_one_search_for_their_gates_decide_as_alone() {
        let spaced = |a: &str, b: &str| {
            glob(vec![
                GlobToken::Star,
                GlobToken::Lit(a.into()),
                GlobToken::Star,
                GlobToken::Lit(b.into()),
                GlobToken::Star,
            ])
        };
        let line = |t: Test| Expr::Atom(Atom::field(fields::COMMAND_LINE, t));
        let image = Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, "\\x.exe")));
        let cond = Expr::And(vec![
            image,
            Expr::Or(vec![
                line(spaced(" -e", " JAB")),
                line(spaced(" -e", " PAA")),
                cmd_contains("zzz-rare"),
            ]),
        ]);
        let (rs, _) = Ruleset::compile(vec![rule("sys", proc_win(), cond)]);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        assert!(
            v.needle_sets
                .iter()
                .any(|set| set.key == fields::COMMAND_LINE && set.atoms.len() == 2),
            "the two gates are searched for together"
        );
        let events: Vec<Event> = [
            "powershell -enc JABx",
            "powershell -e PAAx",
            "powershell -e xjab xpaa",
            "a JAB -ex",
            "zzz-rare",
        ]
        .iter()
        .map(|cmd| proc("C:\\x.exe", cmd))
        .collect();
        let expected: Vec<Vec<String>> = [true, true, false, false, true]
            .iter()
            .map(|&fires| {
                if fires {
                    vec!["sys".to_string()]
                } else {
                    vec![]
                }
            })
            .collect();
        assert_eq!(fired_afresh(&rs, &events), expected);
        assert_eq!(fired(&rs, &events, &mut Scratch::new(&rs)), expected);
    }

    #[test]
    fn glob_gates_agree_with_globs_and_stay_out_of_matches() {
        let g = glob(vec![
            GlobToken::Star,
            GlobToken::Lit("k".into()),
            GlobToken::Question,
            GlobToken::Lit("llxyz".into()),
            GlobToken::Star,
        ]);
        let (rs, _) = Ruleset::compile(vec![
            rule(
                "glob",
                proc_win(),
                Expr::Atom(Atom::field(fields::COMMAND_LINE, g.clone())),
            ),
            rule(
                "not-glob",
                proc_win(),
                Expr::Not(Box::new(Expr::Atom(Atom::field(fields::COMMAND_LINE, g)))),
            ),
        ]);
        // The Kelvin sign is not an ASCII `k` on any path.
        assert_eq!(rs.matching_ids(&proc("", "\u{212a}illxyz")), ["not-glob"]);
        assert_eq!(rs.matching_ids(&proc("", "KILLXYZ")), ["glob"]);

        let exe = glob(vec![
            GlobToken::Lit("C:\\x\\a".into()),
            GlobToken::Question,
            GlobToken::Lit("c.exe".into()),
        ]);
        let (rs, _) = Ruleset::compile(vec![rule(
            "exe",
            proc_win(),
            Expr::Atom(Atom::field(fields::IMAGE, exe)),
        )]);
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        rs.evaluate(&proc("c:\\X\\abc.exe", ""), &mut scratch, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].matches,
            vec![Match {
                field: "Image".into(),
                op: "glob",
                value: "C:\\x\\a?c.exe".into(),
                name: None
            }]
        );
    }

    #[test]
    fn keywords_see_numbers_and_json_values() {
        let (rs, _) = Ruleset::compile(vec![
            rule("pid", proc_win(), keyword("4312")),
            rule("json", proc_win(), keyword("\"inner\"")),
        ]);
        let mut ev = proc("", "");
        ev.set(fields::PROCESS_ID, Value::Int(4312));
        assert_eq!(rs.matching_ids(&ev), ["pid"]);
        ev.set(
            FieldKey::from_name("Extra"),
            Value::Json(Box::new(serde_json::json!({"k": "inner"}))),
        );
        assert_eq!(rs.matching_ids(&ev), ["pid", "json"]);
    }

    #[test]
    fn a_keyword_is_found_in_fields_no_scan_searched_whatever_their_case() {
        // Anchored on `\\` and on `z` (in either case); the image's scan
        // holds the keywords, so only the other fields go through the
        // keyword pass and its anchor check.
        let (rs, _) = Ruleset::compile(vec![
            rule("perfc", proc_win(), keyword("\\perfc.dat")),
            rule("zip", proc_win(), keyword("unzzz")),
            rule(
                "image",
                proc_win(),
                on(fields::IMAGE, StrOp::Suffix, ".exe", false),
            ),
        ]);
        let ids = |key: &str, value: &str| {
            let mut ev = proc("C:\\a.exe", "");
            ev.set(FieldKey::from_name(key), value.into());
            rs.matching_ids(&ev)
                .into_iter()
                .filter(|&id| id != "image")
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("Custom", "C:\\Windows\\PERFC.DAT"), ["perfc"]);
        assert_eq!(ids("ProcessGuid", "x-UNZZZ-y"), ["zip"]);
        assert_eq!(ids("ProcessGuid", "x-unzz-y"), Vec::<&str>::new());
        // The anchor present, the keyword not: nothing fires.
        assert_eq!(ids("Custom", "C:\\perfc.da"), Vec::<&str>::new());
        // The image's own scan still finds a keyword in it.
        let ev = proc("C:\\perfc.dat", "");
        assert_eq!(rs.matching_ids(&ev), ["perfc"]);
    }

    #[test]
    fn keywords_ignore_case_and_cased_ones_keep_it() {
        let any = |v: &str, cased: bool| {
            Expr::Atom(Atom {
                target: FieldTarget::AnyField,
                test: Test::Str {
                    op: StrOp::Contains,
                    value: v.into(),
                    cased,
                },
            })
        };
        let (rs, _) = Ruleset::compile(vec![
            rule("lower", proc_win(), any("\\perfc.dat", false)),
            rule("upper", proc_win(), any("\\PERFC.Dat", false)),
            rule("accent", proc_win(), any("é.dat", false)),
            rule("cased", proc_win(), any("Perfc", true)),
        ]);
        // Both spellings fold to one pattern; either case of the text hits.
        let ids = |cmd: &str| rs.matching_ids(&proc("C:\\x.exe", cmd));
        assert_eq!(ids("c:\\windows\\PerFC.dAT"), ["lower", "upper"]);
        assert_eq!(ids("C:\\WINDOWS\\PERFC.DAT"), ["lower", "upper"]);
        // Other letters are found in either case through the literal's
        // spelled variants, which fold like any pattern.
        assert_eq!(ids("C:\\É.DAT"), ["accent"]);
        assert_eq!(ids("C:\\é.dAt"), ["accent"]);
        assert_eq!(ids("C:\\e.dat"), Vec::<&str>::new());
        // A cased keyword is checked against the text as written.
        assert_eq!(ids("\\Perfc.dat"), ["lower", "upper", "cased"]);
        assert_eq!(ids("\\pERFC"), Vec::<&str>::new());
    }

    #[test]
    fn keywords_are_found_within_one_field_and_named_by_it() {
        let (rs, _) = Ruleset::compile(vec![
            rule("across", proc_win(), keyword("exe\u{0}run")),
            rule("joined", proc_win(), keyword("exerun")),
            rule("cmd", proc_win(), keyword("RUN me")),
        ]);
        // "a.exe" and "run me" are neighbours in the event, never one text.
        let ev = proc("C:\\a.exe", "run me");
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        rs.evaluate(&ev, &mut scratch, &mut out);
        let fired: Vec<&str> = out.iter().map(|d| rs.rule(d.rule).id.as_str()).collect();
        assert_eq!(fired, ["cmd"]);
        assert_eq!(&*out[0].matches[0].field, "CommandLine");
        // A keyword holding a NUL is still tested, field by field.
        assert_eq!(rs.matching_ids(&proc("", "exe\u{0}run")), ["across"]);
    }

    #[test]
    fn keywords_in_scanned_fields_are_found_by_their_scans_and_named_by_the_first_field() {
        // Rules that give `Image`, `CommandLine`, `ParentCommandLine` and
        // `ProcessId` scans (which then hold the keywords too), and two
        // keywords.
        let (rs, _) = Ruleset::compile(vec![
            rule("cmd", proc_win(), cmd_contains("zzz-nowhere")),
            rule(
                "parent",
                proc_win(),
                on(
                    fields::PARENT_COMMAND_LINE,
                    StrOp::Contains,
                    "qqq-nowhere",
                    false,
                ),
            ),
            rule(
                "image",
                proc_win(),
                on(fields::IMAGE, StrOp::Suffix, "\\nothing.exe", false),
            ),
            rule(
                "pid",
                proc_win(),
                on(fields::PROCESS_ID, StrOp::Equals, "99999", false),
            ),
            rule("kw", proc_win(), keyword("\\perfc.dat")),
            rule("kw-num", proc_win(), keyword("4312")),
        ]);
        let view = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        for field in [
            fields::IMAGE,
            fields::COMMAND_LINE,
            fields::PARENT_COMMAND_LINE,
            fields::PROCESS_ID,
        ] {
            let id = field.known_id().expect("a well-known field");
            assert!(view.keywords_scanned[usize::from(id)], "{field:?}");
        }
        assert!(!view.keywords_scanned[usize::from(fields::USER.known_id().expect("known"))]);
        // Each literal counted once, though the keywords sit in four scans.
        assert_eq!(
            rs.view_stats(EventKind::ProcessStart, Os::Windows).literals,
            6
        );

        let event = |fields: &[(FieldKey, Value)]| {
            let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
            for (k, v) in fields {
                ev.push_unchecked(k.clone(), v.clone());
            }
            ev
        };
        let text = |t: &str| Value::Str(t.into());
        let guid = FieldKey::from_name("ProcessGuid");
        let custom = FieldKey::from_name("Custom");
        // (event, the keyword rules that fire with the field each names)
        let cases: Vec<(Event, Vec<(&str, &str)>)> = vec![
            // In a scanned field.
            (
                event(&[
                    (fields::IMAGE, text("C:\\a.exe")),
                    (fields::COMMAND_LINE, text("x \\PERFC.dat y")),
                ]),
                vec![("kw", "CommandLine")],
            ),
            // In two scanned fields: named by the first in the event,
            // whichever was scanned first.
            (
                event(&[
                    (fields::PARENT_COMMAND_LINE, text("\\perfc.dat")),
                    (fields::COMMAND_LINE, text("\\perfc.dat")),
                ]),
                vec![("kw", "ParentCommandLine")],
            ),
            (
                event(&[
                    (fields::COMMAND_LINE, text("\\perfc.dat")),
                    (fields::PARENT_COMMAND_LINE, text("\\perfc.dat")),
                ]),
                vec![("kw", "CommandLine")],
            ),
            // In a field no scan reads, before a scanned one that holds it
            // too, and alone.
            (
                event(&[
                    (guid.clone(), text("{\\perfc.dat}")),
                    (fields::COMMAND_LINE, text("\\perfc.dat")),
                ]),
                vec![("kw", "ProcessGuid")],
            ),
            (
                event(&[
                    (fields::COMMAND_LINE, text("a")),
                    (custom.clone(), text("\\perfc.dat")),
                ]),
                vec![("kw", "Custom")],
            ),
            // In the second of a repeated name, which its scan does not read.
            (
                event(&[
                    (fields::COMMAND_LINE, text("a")),
                    (fields::COMMAND_LINE, text("\\perfc.dat")),
                ]),
                vec![("kw", "CommandLine")],
            ),
            // In a number, in a scanned field and in another.
            (
                event(&[
                    (fields::COMMAND_LINE, text("a")),
                    (fields::PROCESS_ID, Value::Int(4312)),
                ]),
                vec![("kw-num", "ProcessId")],
            ),
            (
                event(&[
                    (fields::PARENT_PROCESS_ID, Value::Int(14312)),
                    (fields::PROCESS_ID, Value::Int(4312)),
                ]),
                vec![("kw-num", "ParentProcessId")],
            ),
            // Nowhere.
            (
                event(&[
                    (fields::IMAGE, text("C:\\perfc.da")),
                    (fields::COMMAND_LINE, text("perfc.dat")),
                ]),
                vec![],
            ),
        ];
        let mut kept = Scratch::new(&rs);
        let mut unremembered = Scratch::new(&rs);
        unremembered.remember_texts(false);
        // Twice with one scratch: the second time from remembered texts.
        for round in 0..2 {
            for (ev, want) in &cases {
                for scratch in [&mut kept, &mut unremembered] {
                    let mut out = Vec::new();
                    rs.evaluate(ev, scratch, &mut out);
                    let got: Vec<(&str, &str)> = out
                        .iter()
                        .map(|d| (rs.rule(d.rule).id.as_str(), &*d.matches[0].field))
                        .collect();
                    assert_eq!(&got, want, "round {round}, {ev:?}");
                }
            }
        }
    }

    #[test]
    fn a_keyword_is_named_by_the_first_field_where_its_case_and_place_hold() {
        // `CommandLine` and `Image` have scans (which hold the keywords too);
        // each keyword's spelling is also in an earlier field where its case
        // or place does not hold: that field must not name the match.
        let kw = |op, v: &str, cased| {
            Expr::Atom(Atom {
                target: FieldTarget::AnyField,
                test: Test::Str {
                    op,
                    value: v.into(),
                    cased,
                },
            })
        };
        let (rs, _) = Ruleset::compile(vec![
            rule("cmd", proc_win(), cmd_contains("zzz-nowhere")),
            rule(
                "image",
                proc_win(),
                on(fields::IMAGE, StrOp::Suffix, "\\nothing.exe", false),
            ),
            rule("cased", proc_win(), kw(StrOp::Contains, "Perfc", true)),
            rule("prefix", proc_win(), kw(StrOp::Prefix, "sekurlsa::", false)),
            rule("has", proc_win(), kw(StrOp::Term, "lsass", false)),
        ]);
        let custom = FieldKey::from_name("Custom");
        let cases = [
            (custom.clone(), "perfc", "Perfc", "cased"),
            (custom.clone(), "x sekurlsa::", "sekurlsa::x", "prefix"),
            (custom, "lsassy.exe", "dump lsass", "has"),
            (fields::IMAGE, "perfc", "Perfc", "cased"),
            (fields::IMAGE, "x sekurlsa::", "sekurlsa::x", "prefix"),
            (fields::IMAGE, "lsassy.exe", "dump lsass", "has"),
        ];
        for remember in [true, false] {
            let mut scratch = Scratch::new(&rs);
            scratch.remember_texts(remember);
            for (first, miss, hit, id) in &cases {
                let mut ev =
                    Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
                ev.push_unchecked(first.clone(), Value::Str((*miss).into()));
                ev.push_unchecked(fields::COMMAND_LINE, Value::Str((*hit).into()));
                let mut out = Vec::new();
                rs.evaluate(&ev, &mut scratch, &mut out);
                let got: Vec<(&str, &str)> = out
                    .iter()
                    .map(|d| (rs.rule(d.rule).id.as_str(), &*d.matches[0].field))
                    .collect();
                assert_eq!(got, [(*id, "CommandLine")], "remember {remember}, {ev:?}");
            }
        }
    }

    /// `Image|fieldref: ParentImage`: a rule with no literal, evaluated on
    /// every event, that reads two fields.
    fn image_is_its_parent() -> Expr {
        Expr::Atom(Atom::field(
            fields::IMAGE,
            Test::FieldRef {
                other: fields::PARENT_IMAGE,
                op: StrOp::Equals,
                cased: false,
            },
        ))
    }

    #[test]
    fn a_rule_reading_more_than_six_fields_keeps_no_verdicts() {
        let named = [
            fields::IMAGE,
            fields::COMMAND_LINE,
            fields::PARENT_IMAGE,
            fields::PARENT_COMMAND_LINE,
            fields::CURRENT_DIRECTORY,
            fields::USER,
            fields::ORIGINAL_FILE_NAME,
        ];
        let all_of = |n: usize| {
            let tests = named[..n]
                .iter()
                .map(|f| on(f.clone(), StrOp::Equals, "x", false));
            Expr::And(tests.collect())
        };
        let mut rules = vec![
            rule("six", proc_win(), all_of(6)),
            rule("seven", proc_win(), all_of(7)),
        ];
        rules.extend(scanned(&named));
        let (rs, _) = Ruleset::compile(rules);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        let reads: Vec<Option<usize>> = v.rules[..2]
            .iter()
            .map(|r| r.reads.as_ref().map(|r| r.len()))
            .collect();
        assert_eq!(reads, [Some(6), None]);
    }

    #[test]
    fn kept_verdicts_answer_only_for_the_texts_a_rule_read() {
        use StrOp::*;
        let (image, parent) = (|| fields::IMAGE, || fields::PARENT_IMAGE);
        let not_cmd = Expr::Not(Box::new(on(image(), Suffix, "\\cmd.exe", false)));
        let rules = vec![
            // Always evaluated (no literal must be present); reads both.
            rule("itself", proc_win(), image_is_its_parent()),
            // Woken by the image; reads the command line too.
            rule(
                "whoami",
                proc_win(),
                Expr::And(vec![
                    on(image(), Suffix, "\\cmd.exe", false),
                    cmd_contains("whoami"),
                ]),
            ),
            // Fires when the parent is absent.
            rule(
                "orphan",
                proc_win(),
                Expr::And(vec![
                    not_cmd,
                    Expr::Atom(Atom::field(parent(), Test::Exists(false))),
                ]),
            ),
            // A keyword reads every field: never kept.
            rule("kw", proc_win(), keyword("evil")),
            // Only fields with a scan have their texts remembered: this
            // literal gives the parent image one.
            rule(
                "svc",
                proc_win(),
                on(parent(), Suffix, "\\svchost.exe", false),
            ),
        ];
        let (rs, _) = Ruleset::compile(rules);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        let reads: Vec<usize> = (v.rules.iter())
            .map(|r| r.reads.as_ref().map_or(0, |r| r.len()))
            .collect();
        assert_eq!(reads, [2, 2, 2, 0, 1]);
        let event = |image: &str, parent: Option<&str>, cmd: &str| {
            let mut ev = proc(image, cmd);
            if let Some(parent) = parent {
                ev.set(fields::PARENT_IMAGE, parent.into());
            }
            ev
        };
        let (a, cmd) = ("C:\\a.exe", "C:\\Windows\\System32\\cmd.exe");
        // Each field's texts come back, in other company.
        let events = [
            event(a, Some(cmd), "x"),
            event(a, Some(a), "x"),
            event(a, Some(cmd), "x"),
            event(a, None, "x"),
            event(a, Some(cmd), "x evil"),
            event(cmd, Some(a), "whoami"),
            event(cmd, Some(a), "x"),
            event(cmd, Some(a), "whoami"),
            event(cmd, None, "whoami"),
            event(a, None, "x"),
            event(a, Some(a), "x"),
        ];
        let fresh = fired_afresh(&rs, &events);
        let ids = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(fresh[1], ids(&["itself"]));
        assert_eq!(fresh[3], ids(&["orphan"]));
        assert_eq!(fresh[4], ids(&["kw"]));
        assert_eq!(fresh[7], ids(&["whoami"]));
        assert_eq!(fresh[10], ids(&["itself"]));
        // Twice over with one scratch: the second time every reading is
        // one seen before.
        let mut kept = Scratch::new(&rs);
        let twice: Vec<Event> = events.iter().chain(&events).cloned().collect();
        let want: Vec<Vec<String>> = fresh.iter().chain(&fresh).cloned().collect();
        assert_eq!(fired(&rs, &twice, &mut kept), want);
        // The last event's reading of "orphan" was kept (so the memory was
        // used, not passed over).
        let orphan = v.rules[2].reads.as_deref().unwrap();
        let last = Reading::of(2, orphan, &kept.text_ids).unwrap();
        assert!(kept.verdicts.known_false(&last));
        let mut off = Scratch::new(&rs);
        off.remember_verdicts(false);
        assert_eq!(fired(&rs, &twice, &mut off), want);
    }

    /// Each event's rules as a fresh scratch fires them, and as one kept
    /// scratch does over the whole sequence.
    fn kept_vs_fresh(rs: &Ruleset, events: &[Event]) {
        let fresh = fired_afresh(rs, events);
        assert_eq!(fired(rs, events, &mut Scratch::new(rs)), fresh);
    }

    #[test]
    fn the_first_remembered_text_is_not_taken_for_an_absent_field() {
        let rules = vec![
            rule(
                "noimg",
                proc_win(),
                Expr::Atom(Atom::field(fields::IMAGE, Test::Exists(false))),
            ),
            rule(
                "lit",
                proc_win(),
                on(fields::IMAGE, StrOp::Suffix, "\\x.exe", false),
            ),
        ];
        let (rs, _) = Ruleset::compile(rules);
        let mut ev0 = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev0.set(fields::IMAGE, "a".into());
        let ev1 = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        kept_vs_fresh(&rs, &[ev0, ev1]);
    }

    #[test]
    fn a_verdict_is_kept_for_string_values_alone() {
        // `ProcessId|gt: 0` (always evaluated) and a literal giving the field a scan.
        let rules = vec![
            rule(
                "big",
                proc_win(),
                Expr::Atom(Atom::field(
                    fields::PROCESS_ID,
                    Test::Num {
                        op: NumOp::Gt,
                        value: 0.0,
                    },
                )),
            ),
            rule(
                "lit",
                proc_win(),
                on(fields::PROCESS_ID, StrOp::Contains, "zz", false),
            ),
        ];
        let (rs, _) = Ruleset::compile(rules);
        let mk = |v: Value| {
            let mut ev = proc("a", "x");
            ev.set(fields::PROCESS_ID, v);
            ev
        };
        let events = [
            mk(Value::Json(Box::new(serde_json::json!(5)))),
            mk(Value::Str("5".into())),
            mk(Value::Float(f64::INFINITY)),
            mk(Value::Str("inf".into())),
            mk(Value::Float(f64::INFINITY)),
        ];
        kept_vs_fresh(&rs, &events);
    }

    #[test]
    fn a_scratch_moved_to_another_rule_set_forgets_its_verdicts() {
        let parent = || fields::PARENT_IMAGE;
        let lit = || {
            rule(
                "lit",
                proc_win(),
                on(parent(), StrOp::Suffix, "\\x.exe", false),
            )
        };
        let (a, _) = Ruleset::compile(vec![
            rule(
                "r",
                proc_win(),
                Expr::Atom(Atom::field(parent(), Test::Exists(true))),
            ),
            lit(),
        ]);
        let (b, _) = Ruleset::compile(vec![
            rule(
                "r",
                proc_win(),
                Expr::Atom(Atom::field(parent(), Test::Exists(false))),
            ),
            lit(),
        ]);
        assert!(a
            .views
            .iter()
            .any(|v| v.rules.iter().any(|r| r.reads.is_some())));
        let ev = proc("a", "x");
        let mut s = Scratch::new(&a);
        assert_eq!(
            fired(&a, std::slice::from_ref(&ev), &mut s),
            [Vec::<String>::new()]
        );
        assert_eq!(
            fired(&b, std::slice::from_ref(&ev), &mut s),
            [vec!["r".to_string()]]
        );
    }

    #[test]
    fn verdicts_hold_over_repeated_names_long_texts_and_the_memory_toggled() {
        let (image, parent) = (|| fields::IMAGE, || fields::PARENT_IMAGE);
        let rules = vec![
            rule("itself", proc_win(), image_is_its_parent()),
            rule(
                "svc",
                proc_win(),
                on(parent(), StrOp::Suffix, "\\svchost.exe", false),
            ),
            rule(
                "img",
                proc_win(),
                on(image(), StrOp::Suffix, "\\cmd.exe", false),
            ),
        ];
        let (rs, _) = Ruleset::compile(rules);
        let ev = |image: &str, parents: &[&str]| {
            let mut ev = proc(image, "x");
            for p in parents {
                ev.push_unchecked(parent(), (*p).into());
            }
            ev
        };
        let long1 = "L".repeat(600);
        let long2 = format!("{}M", "L".repeat(599));
        let events = vec![
            ev("a", &["b", "a"]),
            ev("a", &["a"]),
            ev("a", &["b", "a"]),
            ev("a", &["a", "b"]),
            ev(&long1, &[&long2]),
            ev(&long1, &[&long1]),
            ev(&long1, &[&long2]),
        ];
        kept_vs_fresh(&rs, &events);
        // Memory of texts switched off and on between passes.
        let mut s = Scratch::new(&rs);
        let want = fired(&rs, &events, &mut Scratch::new(&rs));
        assert_eq!(fired(&rs, &events, &mut s), want);
        s.remember_texts(false);
        assert_eq!(fired(&rs, &events, &mut s), want);
        s.remember_texts(true);
        assert_eq!(fired(&rs, &events, &mut s), want);
        s.forget();
        assert_eq!(fired(&rs, &events, &mut s), want);
    }

    #[test]
    fn verdicts_hold_across_views_sharing_a_scratch() {
        let parent = || fields::PARENT_IMAGE;
        let both = Scope {
            kinds: KindSet::of(&[EventKind::ProcessStart, EventKind::FileCreate]),
            os: None,
        };
        let rules = vec![
            rule(
                "noparent",
                both,
                Expr::And(vec![
                    Expr::Not(Box::new(on(
                        fields::IMAGE,
                        StrOp::Suffix,
                        "\\cmd.exe",
                        false,
                    ))),
                    Expr::Atom(Atom::field(parent(), Test::Exists(false))),
                ]),
            ),
            rule("lit", both, on(parent(), StrOp::Suffix, "\\x.exe", false)),
        ];
        let (rs, _) = Ruleset::compile(rules);
        let mut events = Vec::new();
        for kind in [EventKind::ProcessStart, EventKind::FileCreate] {
            for os in [Os::Windows, Os::Linux] {
                for (img, par) in [
                    ("a", Some("b")),
                    ("a", None),
                    ("C:\\cmd.exe", None),
                    ("a", Some("a")),
                ] {
                    let mut ev = Event::new(kind, os, Timestamp::UNIX_EPOCH);
                    ev.set(fields::IMAGE, img.into());
                    if let Some(p) = par {
                        ev.set(parent(), p.into());
                    }
                    events.push(ev);
                }
            }
        }
        let twice: Vec<Event> = events.iter().chain(&events).cloned().collect();
        kept_vs_fresh(&rs, &twice);
    }

    #[test]
    fn an_or_of_needles_is_decided_in_one_search_and_reports_what_held() {
        let image = Expr::Atom(Atom::field(fields::IMAGE, s(StrOp::Suffix, "\\x.exe")));
        let list = || {
            Expr::Or(vec![
                cmd_contains("-aa"),
                cmd_contains("-bb"),
                cmd_contains("-cc"),
            ])
        };
        let (rs, _) = Ruleset::compile(vec![
            rule("any", proc_win(), Expr::And(vec![image.clone(), list()])),
            rule(
                "none",
                proc_win(),
                Expr::And(vec![image.clone(), Expr::Not(Box::new(list()))]),
            ),
        ]);
        let v = &rs.views[rs.view_of[EventKind::ProcessStart.index()][Os::Windows.index()]];
        assert_eq!(v.needle_sets.len(), 1, "both rules share one set");
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        rs.evaluate(&proc("C:\\X.EXE", "x -BB -CC"), &mut scratch, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(rs.rule(out[0].rule).id, "any");
        let values: Vec<&str> = out[0].matches.iter().map(|m| &*m.value).collect();
        assert_eq!(values, ["\\x.exe", "-bb", "-cc"]);
        assert_eq!(rs.matching_ids(&proc("C:\\x.exe", "x -dd")), ["none"]);
        assert!(rs.matching_ids(&proc("C:\\y.exe", "x -aa")).is_empty());
    }

    /// Regexes are built together on every core: a rule is rejected for the
    /// first of its regexes that does not parse (else the first too big to
    /// build), a regex shared with a rejected rule
    /// still serves the accepted ones, and each distinct regex is kept once.
    #[test]
    fn regexes_shared_across_rules_are_built_once_and_judged_per_rule() {
        let atom = |p: &str| Expr::Atom(Atom::field(fields::IMAGE, re(p)));
        let (rs, rej) = Ruleset::compile(vec![
            rule("a", proc_win(), atom("x+y")),
            rule(
                "b",
                proc_win(),
                Expr::And(vec![atom("x+y"), atom("(?<=a)b"), atom("(")]),
            ),
            rule("c", proc_win(), Expr::Or(vec![atom("q\\d"), atom("x+y")])),
            rule("d", proc_win(), Expr::Or(vec![atom("(")])),
            // Parses, but is over the size limit once built.
            rule(
                "e",
                proc_win(),
                Expr::Or(vec![atom("x+y"), atom("\\w{5000}")]),
            ),
        ]);
        let ids: Vec<&str> = rej.iter().map(|u| u.id.as_deref().unwrap()).collect();
        assert_eq!(ids, ["b", "d", "e"]);
        // Rejections are listed in rule order, whatever rejected them.
        let (_, rej2) = Ruleset::compile(vec![
            rule("big", proc_win(), atom("\\w{5000}")),
            rule("ok", proc_win(), atom("x+y")),
            rule("bad", proc_win(), atom("(")),
        ]);
        let ids2: Vec<&str> = rej2.iter().map(|u| u.id.as_deref().unwrap()).collect();
        assert_eq!(ids2, ["big", "bad"]);
        assert!(rej[0].reason.contains("(?<=a)b"), "{}", rej[0].reason);
        assert!(rej[1].reason.contains("`(`"), "{}", rej[1].reason);
        assert!(
            rej[2].reason.contains("compiles to more than"),
            "{}",
            rej[2].reason
        );
        assert_eq!(rs.len(), 2);
        assert_eq!(rs.regexes.len(), 2);
        assert_eq!(rs.matching_ids(&proc("C:\\xxy.exe", "")), ["a", "c"]);
        assert_eq!(rs.matching_ids(&proc("C:\\q7.exe", "")), ["c"]);
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
        // Too big for the engine: rejected, saying what to do about it.
        let huge = Expr::Atom(Atom::field(fields::IMAGE, re(r"\w{5000}")));
        let (_, rej) = Ruleset::compile(vec![rule("huge", proc_win(), huge)]);
        assert!(
            rej[0].reason.contains("compiles to more than"),
            "{}",
            rej[0].reason
        );
    }

    #[test]
    fn alerts_come_in_rule_order_with_matches() {
        let a = rule("first", proc_win(), cmd_contains("zzz"));
        let b = rule("second", proc_win(), cmd_contains("aaa"));
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
                op: "contains",
                value: "aaa".into(),
                name: None
            }]
        );
        // Scratch is reset between events: the same scratch gives a clean answer.
        out.clear();
        rs.evaluate(&proc("", "nothing"), &mut scratch, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_field_reference_is_shown_as_fieldref_and_its_comparison() {
        for op in [
            StrOp::Equals,
            StrOp::Contains,
            StrOp::Prefix,
            StrOp::Suffix,
            StrOp::Term,
        ] {
            assert_eq!(fieldref_op(op), format!("fieldref|{}", op.as_str()));
        }
    }

    #[test]
    fn matches_shown_twice_are_equal_and_share_the_rules_text() {
        let r = rule("r", proc_win(), cmd_contains("aaa"));
        let (rs, _) = Ruleset::compile(vec![r]);
        let mut scratch = Scratch::new(&rs);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        rs.evaluate(&proc("", "aaa"), &mut scratch, &mut first);
        rs.evaluate(&proc("", "xaaay"), &mut scratch, &mut second);
        let (a, b) = (&first[0].matches[0], &second[0].matches[0]);
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(&a.value, &b.value) && Arc::ptr_eq(&a.field, &b.field));
    }
}
