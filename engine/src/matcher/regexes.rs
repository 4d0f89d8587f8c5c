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
use regex_syntax::hir::{Class, Hir, HirKind};

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
    /// Empty until [`RegexTable::set_built`].
    pub(super) regexes: Vec<meta::Regex>,
    keys: Vec<RegexKey>,
    /// Per regex: literals one of which every match contains (see
    /// [`required_literals_of`]), `None` when it has none worth gating on.
    pub(super) gates: Vec<Option<Vec<String>>>,
    /// Per regex: a run of one class of characters every match contains
    /// (see [`ClassRun`]), checked before the regex runs.
    pub(super) runs: Vec<Option<ClassRun>>,
    index: HashMap<RegexKey, u32>,
}

impl RegexTable {
    /// Plans the table for `rules`: each distinct regex is parsed (on every
    /// core) and given an id and its gate, but not yet built (see
    /// [`RegexTable::keys`] and [`RegexTable::set_built`]). Keeps the rules
    /// whose regexes all parse; each other rule comes back with the reason of
    /// its first regex that does not (what to change), and nothing of it is
    /// kept. Rules come back with their place in `rules`. Ids follow the
    /// accepted rules' order, whatever the thread count.
    ///
    /// Why built apart: building a regex's automata is most of compiling
    /// SigmaHQ's rules when done one at a time (about a quarter); the views
    /// only need the ids and gates, so the builds can run beside them.
    pub(super) fn plan_for(rules: Vec<Rule>) -> (RegexTable, Placed, Vec<(usize, Rule, String)>) {
        let keys_of: Vec<Vec<RegexKey>> = rules.iter().map(rule_regexes).collect();
        let mut distinct: HashMap<&RegexKey, usize> = HashMap::new();
        let mut keys: Vec<&RegexKey> = Vec::new();
        for key in keys_of.iter().flatten() {
            distinct.entry(key).or_insert_with(|| {
                keys.push(key);
                keys.len() - 1
            });
        }
        let parsed = crate::parallel::map_in_parallel(&keys, 8, |(pattern, flags)| {
            syntax::parse_with(pattern, &syntax_config(*flags))
                .map(|hir| (required_literals_of(&hir), class_run_of(&hir)))
                .map_err(|e| format!("regex `{pattern}` does not compile: {e}"))
        });
        let mut parsed: Vec<Option<Result<_, String>>> = parsed.into_iter().map(Some).collect();
        let mut table = RegexTable::default();
        let (mut accepted, mut rejected) = (Vec::with_capacity(rules.len()), Vec::new());
        for (at, (rule, keys)) in rules.into_iter().zip(&keys_of).enumerate() {
            let failed = keys.iter().find_map(|k| match &parsed[distinct[k]] {
                Some(Err(reason)) => Some(reason.clone()),
                _ => None,
            });
            if let Some(reason) = failed {
                rejected.push((at, rule, reason));
                continue;
            }
            for key in keys {
                if let Some(Ok((gate, run))) = parsed[distinct[key]].take() {
                    table.index.insert(key.clone(), table.keys.len() as u32);
                    table.keys.push(key.clone());
                    table.gates.push(gate);
                    table.runs.push(run);
                }
            }
            accepted.push((at, rule));
        }
        (table, accepted, rejected)
    }

    /// The pattern and flags of each planned regex, by id.
    pub(super) fn keys(&self) -> &[RegexKey] {
        &self.keys
    }

    /// Takes the built regexes, by id (what [`build`] made of
    /// [`RegexTable::keys`]).
    pub(super) fn set_built(&mut self, regexes: Vec<meta::Regex>) {
        debug_assert_eq!(regexes.len(), self.keys.len());
        self.regexes = regexes;
    }

    /// The id of a regex of an accepted rule.
    pub(super) fn id(&self, pattern: &str, flags: RegexFlags) -> u32 {
        self.index[&(pattern.to_owned(), flags)]
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Rules with their place in the list they came from.
pub(super) type Placed = Vec<(usize, Rule)>;

/// A regex's pattern and flags: what makes two regexes one.
pub(super) type RegexKey = (String, RegexFlags);

/// The distinct regexes of a rule, in the order its expression names them.
pub(super) fn rule_regexes(rule: &Rule) -> Vec<RegexKey> {
    fn walk(e: &Expr, out: &mut Vec<RegexKey>) {
        match e {
            Expr::Atom(a) => {
                if let Some((pattern, flags)) = regex_flags(&a.test) {
                    if !out.iter().any(|(p, f)| p == pattern && *f == flags) {
                        out.push((pattern.to_owned(), flags));
                    }
                }
            }
            Expr::Const(_) => {}
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| walk(e, out)),
            Expr::Not(e) => walk(e, out),
        }
    }
    let mut out = Vec::new();
    if let RuleBody::Expr(e) = &rule.body {
        walk(e, &mut out);
    }
    out
}

/// The syntax a Sigma regex with flags `f` is read with.
fn syntax_config(f: RegexFlags) -> syntax::Config {
    syntax::Config::new()
        .utf8(true)
        .case_insensitive(f.case_insensitive)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
}

/// Builds one regex exactly as `regex::RegexBuilder` would (leftmost-first,
/// UTF-8), so verdicts are those of the `regex` crate.
pub(super) fn build((pattern, f): &RegexKey) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .hybrid_cache_capacity(2 << 20)
                .match_kind(regex_automata::MatchKind::LeftmostFirst)
                .utf8_empty(true),
        )
        .syntax(syntax_config(*f))
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

/// A run of at least `min` bytes, each in one class, that every match of a
/// regex contains: `\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}` (SigmaHQ's
/// SNAKE installer rule) holds 64 hex digits in a row. Such a regex has no
/// literal to gate it, so its rule is evaluated on every event; its lazy DFA
/// tracks every partial count at once and cost about 600 ns a command line,
/// a fifth of all rule evaluation on the bench corpus. Looking for the run
/// first skips the regex wherever the run is absent, which is nearly
/// everywhere, at the cost of a few byte lookups.
#[derive(Debug, Clone)]
pub(super) struct ClassRun {
    /// Which bytes the class's characters are written with.
    class: [bool; 256],
    /// The run's shortest length, at least [`MIN_CLASS_RUN`].
    min: usize,
    /// Whether the regex is this run and nothing else (`.{1000,}`, SigmaHQ's
    /// test for an unusually long PowerShell command line): then finding
    /// the run in ASCII text is the verdict, and the regex need not run. It
    /// cost 73 µs a command line of over 1,000 characters, a sixth of all
    /// rule evaluation on the attack samples.
    whole: bool,
}

/// Shorter runs are too common in command lines to rule much out.
const MIN_CLASS_RUN: u32 = 8;

impl ClassRun {
    /// The regex's verdict on `hay` when the run alone settles it: `false`
    /// without the run; `true` with it when the regex is the run alone and
    /// the text is ASCII (each byte one character, so `min` bytes are `min`
    /// characters); `None` when the regex must run.
    pub(super) fn decides(&self, hay: &[u8]) -> Option<bool> {
        if !self.found_in(hay) {
            Some(false)
        } else if self.whole && hay.is_ascii() {
            Some(true)
        } else {
            None
        }
    }

    /// Whether `hay` holds `min` class bytes in a row. Each window of `min`
    /// bytes is checked from its end back, and a byte outside the class
    /// moves the next window past it, so most bytes are never looked at;
    /// bytes already seen in the class are not looked at again.
    pub(super) fn found_in(&self, hay: &[u8]) -> bool {
        let m = self.min;
        // hay[start..known_end] is known to be in the class.
        let (mut start, mut known_end) = (0, 0);
        while start + m <= hay.len() {
            let floor = known_end.max(start);
            let mut j = start + m;
            while j > floor && self.class[usize::from(hay[j - 1])] {
                j -= 1;
            }
            if j == floor {
                return true;
            }
            // hay[j - 1] is outside the class: no run of `m` holds it.
            known_end = start + m;
            start = j;
        }
        false
    }
}

/// The longest [`ClassRun`] every match of `h` contains, if any: a counted
/// repetition of a class, at least [`MIN_CLASS_RUN`] long, that no match
/// can skip (inside a group or concatenation, not an alternation or an
/// optional part).
fn class_run_of(h: &Hir) -> Option<ClassRun> {
    let mut run = run_inside(h)?;
    let mut whole = h;
    while let HirKind::Capture(c) = whole.kind() {
        whole = &c.sub;
    }
    // An unanchored search for `[class]{n,m}` alone matches wherever `n`
    // class characters stand in a row, whatever `m`.
    run.whole =
        matches!(whole.kind(), HirKind::Repetition(r) if matches!(r.sub.kind(), HirKind::Class(_)));
    Some(run)
}

/// [`class_run_of`] without its `whole` flag.
fn run_inside(h: &Hir) -> Option<ClassRun> {
    match h.kind() {
        HirKind::Capture(c) => run_inside(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => match (r.sub.kind(), r.min >= MIN_CLASS_RUN) {
            (HirKind::Class(c), true) => Some(ClassRun {
                class: byte_class(c),
                min: r.min as usize,
                whole: false,
            }),
            _ => run_inside(&r.sub),
        },
        HirKind::Concat(v) => v.iter().filter_map(run_inside).max_by_key(|r| r.min),
        _ => None,
    }
}

/// The bytes a run of class `c` can be made of in UTF-8 text: its ASCII
/// characters, and every byte from 0x80 up when it holds any other
/// character (`\s`, or `k` folded to the Kelvin sign), since such a
/// character is written with those bytes only. A run of `n` characters of
/// the class is then at least `n` such bytes in a row.
fn byte_class(c: &Class) -> [bool; 256] {
    let ranges: Vec<(u32, u32)> = match c {
        Class::Unicode(u) => (u.ranges().iter())
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        Class::Bytes(b) => (b.ranges().iter())
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
    };
    let mut class = [false; 256];
    for (lo, hi) in ranges {
        for b in lo..=hi.min(0x7f) {
            class[b as usize] = true;
        }
        if hi > 0x7f {
            class[0x80..].fill(true);
        }
    }
    class
}

/// At most this many spellings gate one regex; more would cost the scan
/// more than running the regex saves.
const MAX_GATE_LITERALS: usize = 64;

/// A class of at most this many characters counts as a set of literals.
const MAX_CLASS_CHARS: u32 = 4;

/// Alternative strings, ASCII-lower-cased: what a piece of a regex matches.
type Alternatives = Vec<Vec<u8>>;

/// Literals one of which every match of the regex contains, ASCII-lower-cased
/// and deduplicated, so a regex need only run when its rule's literal scan
/// saw one of them (`\$PSHome\[\s*\d` needs `$pshome[`, ``\w+`\w+`` needs
/// `` ` ``). Compared ignoring ASCII case, a gate may let through text the
/// regex then rejects, never the other way round. `None` when no piece of
/// every match is a short list of literals.
fn required_literals_of(hir: &Hir) -> Option<Vec<String>> {
    required(hir)?
        .into_iter()
        .map(|b| String::from_utf8(b).ok())
        .collect()
}

/// [`required_literals_of`] a pattern, for tests.
#[cfg(test)]
pub(super) fn required_literals(pattern: &str, f: RegexFlags) -> Option<Vec<String>> {
    required_literals_of(&syntax::parse_with(pattern, &syntax_config(f)).ok()?)
}

/// Every string `h` can match, when that is a short list (zero-width
/// assertions count as the empty string: a gate may be looser, never
/// stricter, than the regex).
fn exact(h: &Hir) -> Option<Alternatives> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(lit) => Some(vec![lit.0.to_ascii_lowercase()]),
        HirKind::Class(Class::Unicode(c)) => {
            let size: u32 = c
                .ranges()
                .iter()
                .map(|r| r.end() as u32 - r.start() as u32 + 1)
                .sum();
            if size > MAX_CLASS_CHARS {
                return None;
            }
            let mut set: Alternatives = c
                .ranges()
                .iter()
                .flat_map(|r| r.start()..=r.end())
                .map(|ch| ch.to_string().into_bytes().to_ascii_lowercase())
                .collect();
            set.sort_unstable();
            set.dedup();
            Some(set)
        }
        HirKind::Class(Class::Bytes(c)) => {
            let size: u32 = c
                .ranges()
                .iter()
                .map(|r| r.end() as u32 - r.start() as u32 + 1)
                .sum();
            // A lone non-ASCII byte is not text a literal can hold.
            if size > MAX_CLASS_CHARS || c.ranges().iter().any(|r| r.end() >= 0x80) {
                return None;
            }
            let mut set: Alternatives = c
                .ranges()
                .iter()
                .flat_map(|r| r.start()..=r.end())
                .map(|b| vec![b.to_ascii_lowercase()])
                .collect();
            set.sort_unstable();
            set.dedup();
            Some(set)
        }
        HirKind::Capture(c) => exact(&c.sub),
        HirKind::Repetition(r) if Some(r.min) == r.max && r.min <= 8 => {
            let sub = exact(&r.sub)?;
            let mut out = vec![Vec::new()];
            for _ in 0..r.min {
                out = cross(&out, &sub)?;
            }
            Some(out)
        }
        HirKind::Repetition(_) => None,
        HirKind::Concat(v) => v
            .iter()
            .try_fold(vec![Vec::new()], |acc, h| cross(&acc, &exact(h)?)),
        HirKind::Alternation(v) => {
            let mut out = Vec::new();
            for h in v {
                out.extend(exact(h)?);
                if out.len() > MAX_GATE_LITERALS {
                    return None;
                }
            }
            out.sort_unstable();
            out.dedup();
            Some(out)
        }
    }
}

/// What every match of `h` starts with and ends with, each when a short
/// list of strings.
fn affixes(h: &Hir) -> (Option<Alternatives>, Option<Alternatives>) {
    match h.kind() {
        HirKind::Capture(c) => affixes(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => affixes(&r.sub),
        HirKind::Concat(v) => {
            let end = |piece: Option<&Hir>, start: bool| {
                let piece = piece?;
                exact(piece).or_else(|| {
                    let (s, e) = affixes(piece);
                    if start {
                        s
                    } else {
                        e
                    }
                })
            };
            (end(v.first(), true), end(v.last(), false))
        }
        _ => {
            let s = exact(h);
            (s.clone(), s)
        }
    }
}

/// How common a string's bytes are in text, summed (the byte ranks
/// regex-syntax's own literal search uses).
fn commonness(s: &[u8]) -> u32 {
    s.iter()
        .map(|&b| u32::from(regex_syntax::hir::literal::rank(b)))
        .sum()
}

/// Every `a` followed by every `b`, unless that is too many.
fn cross(a: &Alternatives, b: &Alternatives) -> Option<Alternatives> {
    if a.len() * b.len() > MAX_GATE_LITERALS {
        return None;
    }
    let mut out: Alternatives = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat()))
        .collect();
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Non-empty strings one of which every match of `h` contains: `h`'s own
/// strings when few; for a concatenation, the best run of adjacent exact
/// pieces or the best required set of one piece; for an alternation, the
/// union of every branch's.
fn required(h: &Hir) -> Option<Alternatives> {
    let usable = |s: &Alternatives| !s.is_empty() && s.iter().all(|x| !x.is_empty());
    if let Some(s) = exact(h).filter(usable) {
        return Some(s);
    }
    match h.kind() {
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        HirKind::Alternation(v) => {
            let mut out = Vec::new();
            for h in v {
                out.extend(required(h)?);
                if out.len() > MAX_GATE_LITERALS {
                    return None;
                }
            }
            out.sort_unstable();
            out.dedup();
            Some(out)
        }
        HirKind::Concat(v) => {
            let mut candidates: Vec<Alternatives> = Vec::new();
            let mut run: Alternatives = vec![Vec::new()];
            for h in v {
                match exact(h) {
                    Some(s) => match cross(&run, &s) {
                        Some(longer) => run = longer,
                        None => candidates.push(std::mem::replace(&mut run, s)),
                    },
                    None => {
                        // The run goes on into what every match of `h`
                        // starts with, and on from what it ends with:
                        // `"(\{\d\}){2,}"` holds `"{` and `}"`.
                        let (starts, ends) = affixes(h);
                        let ended = starts.and_then(|p| cross(&run, &p)).unwrap_or(run);
                        candidates.push(ended);
                        candidates.extend(required(h));
                        run = ends.unwrap_or_else(|| vec![Vec::new()]);
                    }
                }
            }
            candidates.push(run);
            // The longest, then the rarest: `"{` rather than `-f`, which
            // is in most Chromium command lines.
            candidates.into_iter().filter(usable).max_by_key(|s| {
                let shortest = s.iter().map(Vec::len).min().unwrap_or(0);
                let commonest = s.iter().map(|x| commonness(x)).max().unwrap_or(0);
                (
                    shortest.min(16),
                    std::cmp::Reverse(commonest),
                    std::cmp::Reverse(s.len()),
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(pattern: &str, case_insensitive: bool) -> Option<Vec<String>> {
        required_literals(
            pattern,
            RegexFlags {
                case_insensitive,
                multi_line: false,
                dot_all: false,
            },
        )
    }

    #[test]
    fn required_pieces_are_found_inside_the_pattern() {
        assert_eq!(
            gates(r"\$PSHome\[\s*\d{1,3}\s*\]", false).unwrap(),
            ["$pshome["]
        );
        // Neither a prefix nor a suffix: the backtick in the middle.
        assert_eq!(gates(r"\w+`(?:\w+|-|.)`[\w+|\s]", false).unwrap(), ["`"]);
        assert_eq!(gates(r"ipconfig\s+/all", false).unwrap(), ["ipconfig"]);
        assert_eq!(gates("net(1)?\\s+stop", false).unwrap(), ["stop"]);
        // Across a repetition's edges, and the rarer of equally long ones:
        // not `-f`, which most Chromium command lines hold.
        let quoted = gates(r#""(\{\d\}){2,}"\s*-f"#, false).unwrap();
        assert!(quoted == [r#""{"#] || quoted == [r#"}""#], "{quoted:?}");
        let mut alts = gates("(?:foo|barx)\\d+", false).unwrap();
        alts.sort();
        assert_eq!(alts, ["barx", "foo"]);
        // Case-insensitive: one spelling, plus the Kelvin sign's.
        assert_eq!(gates("(?i)kill", true).unwrap(), ["kill", "\u{212a}ill"]);
        assert!(gates(r"\w+", false).is_none());
        assert!(gates("(?:abc)?x*", false).is_none());
        assert!(gates("a|\\d", false).is_none(), "a branch with no literal");
    }

    #[test]
    fn gates_never_reject_a_match() {
        let patterns = [
            r"\$PSHome\[\s*\d{1,3}\s*\]\s*\+\s*\$PSHome\[",
            r"\w+`(?:\w+|-|.)`[\w+|\s]",
            r#""(?:\{\d\})+"\s*-f"#,
            r"(?i)\$\{`?e`?n`?v`?:`?p`?a`?t`?h`?\}",
            r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe"#,
            r"ping\s+-n.{6,64}echo EEEE\s?>\s?",
            r"[a-z]{3}\.(?:dll|exe)$",
        ];
        let texts = [
            "x $PSHome[ 4 ]+$PSHome[30]",
            "IN`V`o`Ke-eXp",
            r#"&("{2}{3}{0}"-f 'e')"#,
            "${E`NV:PaTh}",
            "wsass.EXE \"C:\\x\\WerFaultSecure.exe\" 1234",
            "ping -n 1 127.0.0.1 & echo EEEE > x",
            "C:\\abc.DLL",
            "abc.dll",
            "nothing here",
        ];
        for p in patterns {
            for ci in [false, true] {
                let f = RegexFlags {
                    case_insensitive: ci,
                    multi_line: false,
                    dot_all: false,
                };
                let re = build(&(p.to_owned(), f)).unwrap();
                let Some(lits) = required_literals(p, f) else {
                    continue;
                };
                for t in texts {
                    if re.is_match(t) {
                        let lower = t.to_ascii_lowercase();
                        assert!(
                            lits.iter().any(|l| lower.contains(l.as_str())),
                            "{p} (ci={ci}) matches {t:?} but no gate {lits:?} is in it"
                        );
                    }
                }
            }
        }
    }

    /// A pseudo-random sequence, the same on every run.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    fn run_of(pattern: &str, case_insensitive: bool) -> Option<ClassRun> {
        let f = RegexFlags {
            case_insensitive,
            multi_line: false,
            dot_all: false,
        };
        class_run_of(&syntax::parse_with(pattern, &syntax_config(f)).unwrap())
    }

    #[test]
    fn a_class_run_is_found_exactly_where_a_naive_search_finds_one() {
        let mut class = [false; 256];
        class[usize::from(b'a')] = true;
        // Every text of up to 12 bytes over `a` and `x`, every run length
        // from 1 to 6.
        for len in 0..=12u32 {
            for bits in 0..(1u32 << len) {
                let hay: Vec<u8> = (0..len)
                    .map(|i| if bits >> i & 1 == 1 { b'a' } else { b'x' })
                    .collect();
                for min in 1..=6 {
                    let run = ClassRun {
                        class,
                        min,
                        whole: false,
                    };
                    let naive = hay.windows(min).any(|w| w.iter().all(|&b| b == b'a'));
                    assert_eq!(
                        run.found_in(&hay),
                        naive,
                        "{:?} min {min}",
                        String::from_utf8_lossy(&hay)
                    );
                }
            }
        }
    }

    #[test]
    fn class_runs_come_only_from_parts_every_match_holds() {
        let snake = run_of(r"\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}", false).unwrap();
        assert_eq!(snake.min, 64);
        assert!(snake.class[usize::from(b'F')] && snake.class[usize::from(b'7')]);
        assert!(!snake.class[usize::from(b'g')] && !snake.class[usize::from(b' ')]);
        assert!(!snake.class[0x80]);
        // Case folding widens the class; a character outside ASCII (the
        // Kelvin sign that `k` folds to, the spaces of `\s`) lets in every
        // byte it can be written with.
        let folded = run_of("[a-f]{8}", true).unwrap();
        assert!(folded.class[usize::from(b'A')] && !folded.class[0x80]);
        let kelvin = run_of("[k]{8}", true).unwrap();
        assert!(kelvin.class[usize::from(b'K')] && kelvin.class[0x80] && kelvin.class[0xff]);
        assert!(!kelvin.class[usize::from(b'j')]);
        assert!(run_of(r"\s{8}", false).unwrap().class[0xe2]);
        assert!(
            run_of("[a-f]{7}", false).is_none(),
            "too short to rule much out"
        );
        assert!(
            run_of("x|[a-f]{8}", false).is_none(),
            "an alternation can skip it"
        );
        assert!(run_of("([a-f]{8})?y", false).is_none(), "optional");
        assert_eq!(run_of("(?:z[0-9]{9,}){2}", false).unwrap().min, 9);
        assert_eq!(run_of("[0-9]{9}-[a-z]{12,20}", false).unwrap().min, 12);
    }

    #[test]
    fn a_regex_that_is_one_run_alone_is_decided_by_it() {
        assert!(run_of(".{1000,}", false).unwrap().whole);
        assert!(run_of("(?:[a-f]{8,12})", false).unwrap().whole);
        assert!(!run_of(r"\s[a-f]{8}", false).unwrap().whole);
        assert!(!run_of("^[a-f]{8}", false).unwrap().whole, "anchored");
        let patterns = [
            ".{12,}",
            "(?s).{9,20}",
            "[a-f]{8}",
            r"(\S{10,})",
            "(?i)[k]{8}",
        ];
        let chars: Vec<char> = "abcfkK \n\u{212a}é€x".chars().collect();
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let mut decided = 0;
        for p in patterns {
            let f = RegexFlags {
                case_insensitive: false,
                multi_line: false,
                dot_all: false,
            };
            let re = build(&(p.to_owned(), f)).unwrap();
            let run = run_of(p, false).unwrap();
            assert!(run.whole, "{p}");
            for _ in 0..2000 {
                // Texts of runs of one character, so long runs are common.
                let mut t = String::new();
                for _ in 0..next() % 6 {
                    let c = chars[(next() % chars.len() as u64) as usize];
                    t.extend(std::iter::repeat_n(c, (next() % 16) as usize));
                }
                if let Some(verdict) = run.decides(t.as_bytes()) {
                    decided += 1;
                    assert_eq!(verdict, re.is_match(&t), "{p} on {t:?}");
                }
            }
        }
        assert!(decided > 5000, "{decided}");
    }

    #[test]
    fn a_class_run_never_rejects_a_match() {
        let patterns = [
            r"\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}",
            r"[A-Za-z0-9+/]{20,}={0,2}",
            r"(?:-e|-enc)\s+[a-z0-9]{8}",
            r"\s{8,}x",
            r"[k\d]{9}",
        ];
        // Pseudo-random texts over hex digits, letters, spaces, `=` and
        // characters written with several bytes (the Kelvin sign, a
        // no-break space, `é`), with long hex runs planted in some.
        let chars: Vec<char> = "0123456789abcdefABCDEFxyzkK+/= \t\u{212a}\u{a0}é"
            .chars()
            .collect();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let compiled: Vec<(meta::Regex, ClassRun, &str, bool)> = (patterns.iter())
            .flat_map(|p| [false, true].map(|ci| (p, ci)))
            .map(|(p, ci)| {
                let f = RegexFlags {
                    case_insensitive: ci,
                    multi_line: false,
                    dot_all: false,
                };
                (
                    build(&(p.to_string(), f)).unwrap(),
                    run_of(p, ci).unwrap(),
                    *p,
                    ci,
                )
            })
            .collect();
        let (mut matched, mut rejected) = (0, 0);
        for _ in 0..3000 {
            let mut t: String = (0..next() % 200)
                .map(|_| chars[(next() % chars.len() as u64) as usize])
                .collect();
            if next().is_multiple_of(3) {
                let at = t
                    .char_indices()
                    .nth(t.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                let piece: String = (0..8 + next() % 80)
                    .map(|_| char::from(b"0123456789abcdef"[(next() % 16) as usize]))
                    .collect();
                t.insert_str(at, &piece);
            }
            for (re, run, p, ci) in &compiled {
                if re.is_match(&t) {
                    matched += 1;
                    assert!(run.found_in(t.as_bytes()), "{p} (ci={ci}) matches {t:?}");
                } else if !run.found_in(t.as_bytes()) {
                    rejected += 1;
                }
            }
        }
        // Both sides were exercised: texts that match, and texts the run
        // alone turns away.
        assert!(matched > 500 && rejected > 5000, "{matched} {rejected}");
    }
}
