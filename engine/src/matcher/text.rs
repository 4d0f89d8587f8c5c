//! Text tests, with one case-folding rule for every path.
//!
//! Sigma matches case-insensitively. The automaton folds ASCII only, so a
//! literal with non-ASCII letters is entered once per spelling
//! ([`literal_variants`]); globs, field references and the few literals tested
//! directly use [`fold_eq`]. Both follow the same rule, so a verdict never
//! depends on which path a test took:
//!
//! a literal character `c` matches a text character `t` when `t == c`, when
//! both are ASCII and equal ignoring ASCII case, or when `c` is not ASCII and
//! `t` is its one-character lower- or upper-case form, that form's ASCII
//! case ignored when it is ASCII (the Kelvin sign `K` matches `k` and `K`,
//! as an automaton holding the spelling with `k` finds both).
//!
//! Nothing here allocates per call.

use crate::rule::{GlobToken, StrOp};

/// The one folding rule (see the module docs). `lit` comes from the rule.
#[inline]
pub(crate) fn fold_eq(lit: char, text: char, cased: bool) -> bool {
    if lit == text {
        return true;
    }
    if cased {
        return false;
    }
    if lit.is_ascii() {
        return text.is_ascii() && lit.eq_ignore_ascii_case(&text);
    }
    [single(lit.to_lowercase()), single(lit.to_uppercase())]
        .into_iter()
        .flatten()
        .any(|form| form == text || (form.is_ascii() && form.eq_ignore_ascii_case(&text)))
}

/// The character an iterator yields, if it yields exactly one.
fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    it.next().is_none().then_some(c)
}

/// At most this many spellings of one literal go into an automaton.
pub(crate) const MAX_CASE_VARIANTS: usize = 16;

/// The spellings a case-insensitive literal needs in an automaton that folds
/// ASCII only: one for ASCII and caseless characters (dashes, U+202E, digits),
/// and for each cased non-ASCII letter (Cyrillic look-alikes, accented
/// letters) also its one-character lower- and upper-case forms, as
/// [`fold_eq`] allows. `None` when that would be more than
/// [`MAX_CASE_VARIANTS`] spellings: such a literal is tested directly.
pub(crate) fn literal_variants(value: &str) -> Option<Vec<String>> {
    // Nearly every literal: one spelling, without a look at each character.
    if value.is_ascii() {
        return Some(vec![value.to_owned()]);
    }
    let mut variants = vec![String::with_capacity(value.len())];
    for c in value.chars() {
        let mut forms = vec![c];
        if !c.is_ascii() {
            for f in [single(c.to_lowercase()), single(c.to_uppercase())]
                .into_iter()
                .flatten()
            {
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
            .flat_map(|v| {
                forms.iter().map(move |f| {
                    let mut s = v.clone();
                    s.push(*f);
                    s
                })
            })
            .collect();
    }
    Some(variants)
}

/// KQL term boundaries: an alphanumeric end of the needle must not continue
/// into an alphanumeric character of the text.
#[inline]
pub(crate) fn term_bounded(hay: &[u8], start: usize, end: usize) -> bool {
    let first = hay[start];
    let last = hay[end - 1];
    (!first.is_ascii_alphanumeric() || start == 0 || !hay[start - 1].is_ascii_alphanumeric())
        && (!last.is_ascii_alphanumeric() || end == hay.len() || !hay[end].is_ascii_alphanumeric())
}

/// If `lit` matches `text` starting at byte `at`, the byte where the match ends.
fn match_at(text: &str, at: usize, lit: &str, cased: bool) -> Option<usize> {
    let mut t = text[at..].char_indices();
    for l in lit.chars() {
        let (_, c) = t.next()?;
        if !fold_eq(l, c, cased) {
            return None;
        }
    }
    Some(t.next().map_or(text.len(), |(i, _)| at + i))
}

/// A positioned literal test done character by character: for literals the
/// automaton cannot hold, and for field references (whose "literal" is the
/// other field's text).
pub(crate) fn lit_match(op: StrOp, text: &str, lit: &str, cased: bool) -> bool {
    if lit.is_empty() {
        return match op {
            StrOp::Equals => text.is_empty(),
            _ => true,
        };
    }
    if cased || lit.chars().all(folds_as_bytes) {
        return byte_lit_match(op, text.as_bytes(), lit.as_bytes(), cased);
    }
    let starts = || text.char_indices().map(|(i, _)| i);
    match op {
        StrOp::Equals => match_at(text, 0, lit, cased) == Some(text.len()),
        StrOp::Prefix => match_at(text, 0, lit, cased).is_some(),
        StrOp::Suffix => starts().any(|i| match_at(text, i, lit, cased) == Some(text.len())),
        StrOp::Contains => starts().any(|i| match_at(text, i, lit, cased).is_some()),
        StrOp::Term => starts().any(|i| {
            match_at(text, i, lit, cased).is_some_and(|end| term_bounded(text.as_bytes(), i, end))
        }),
    }
}

/// Whether [`fold_eq`] lets `c` match only itself or an ASCII case twin: true
/// for ASCII and for caseless characters such as the dashes `windash`
/// writes, whose lower- and upper-case forms are themselves.
pub(crate) fn folds_as_bytes(c: char) -> bool {
    c.is_ascii()
        || (single(c.to_lowercase()).is_none_or(|l| l == c)
            && single(c.to_uppercase()).is_none_or(|u| u == c))
}

/// [`lit_match`] on bytes, for a literal whose characters are ASCII or
/// caseless (or for a case-sensitive test): an ASCII byte of the text is
/// always a whole character, a byte of a multi-byte character never equals
/// an ASCII byte even ignoring ASCII case, and a literal's lead byte only
/// matches at a character boundary, so this agrees with the
/// character-by-character rule, without folding a character per position.
fn byte_lit_match(op: StrOp, text: &[u8], lit: &[u8], cased: bool) -> bool {
    let eq = |at: usize| {
        text.get(at..at + lit.len()).is_some_and(|t| {
            if cased {
                t == lit
            } else {
                t.eq_ignore_ascii_case(lit)
            }
        })
    };
    let n = lit.len();
    match op {
        StrOp::Equals => text.len() == n && eq(0),
        StrOp::Prefix => eq(0),
        StrOp::Suffix => text.len() >= n && eq(text.len() - n),
        StrOp::Contains | StrOp::Term => {
            let (lo, up) = if cased {
                (lit[0], lit[0])
            } else {
                (lit[0].to_ascii_lowercase(), lit[0].to_ascii_uppercase())
            };
            memchr::memchr2_iter(lo, up, text)
                .any(|i| eq(i) && (op == StrOp::Contains || term_bounded(text, i, i + n)))
        }
    }
}

/// One element of a compiled wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatItem {
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    Any,
    Char(char),
}

/// A wildcard pattern, compiled once. Most Sigma globs are literals joined
/// by `*` (`*\\AppData\\*\\*.exe`), and for those the literals are looked
/// for one after the other, each with a byte search; any other pattern is
/// matched character by character.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    items: Vec<PatItem>,
    segments: Option<Segments>,
}

/// A glob of literals joined by `*`, with no `?`, whose characters are
/// ASCII or caseless ([`folds_as_bytes`]): for such literals a byte
/// comparison ignoring ASCII case is the folding rule (see
/// [`byte_lit_match`]).
#[derive(Debug, Clone)]
struct Segments {
    /// The non-empty literals, in order.
    parts: Vec<Box<[u8]>>,
    /// No `*` before the first literal (it must start the text), after the
    /// last (it must end it), or at all (the text must be the literal).
    starts: bool,
    ends: bool,
    no_star: bool,
}

/// Flattens glob tokens into characters once, at compile time.
pub(crate) fn compile_glob(tokens: &[GlobToken]) -> Glob {
    let mut items = Vec::new();
    for t in tokens {
        match t {
            GlobToken::Lit(s) => items.extend(s.chars().map(PatItem::Char)),
            GlobToken::Star => items.push(PatItem::Star),
            GlobToken::Question => items.push(PatItem::Any),
        }
    }
    let plain = items.iter().all(|i| match i {
        PatItem::Star => true,
        PatItem::Any => false,
        PatItem::Char(c) => folds_as_bytes(*c),
    });
    let segments = plain.then(|| {
        let mut parts: Vec<Box<[u8]>> = Vec::new();
        let mut part = String::new();
        for i in &items {
            match i {
                PatItem::Char(c) => part.push(*c),
                _ => {
                    if !part.is_empty() {
                        parts.push(std::mem::take(&mut part).into_bytes().into());
                    }
                }
            }
        }
        if !part.is_empty() {
            parts.push(part.into_bytes().into());
        }
        Segments {
            parts,
            starts: items.first().is_some_and(|i| *i != PatItem::Star),
            ends: items.last().is_some_and(|i| *i != PatItem::Star),
            no_star: !items.contains(&PatItem::Star),
        }
    });
    Glob { items, segments }
}

impl Segments {
    fn matches(&self, text: &[u8], cased: bool) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if cased {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        let mut parts = &self.parts[..];
        if self.no_star {
            // Zero or one literal.
            return match parts {
                [] => text.is_empty(),
                [only] => text.len() == only.len() && eq(text, only),
                _ => false,
            };
        }
        let (mut from, mut to) = (0, text.len());
        if self.starts {
            let Some((first, rest)) = parts.split_first() else {
                return true;
            };
            if !text.get(..first.len()).is_some_and(|t| eq(t, first)) {
                return false;
            }
            from = first.len();
            parts = rest;
        }
        if self.ends {
            // A pattern with a `*` that starts and ends with literals has
            // two of them: one is left here.
            let Some((last, rest)) = parts.split_last() else {
                return true;
            };
            if to - from < last.len() || !eq(&text[to - last.len()..], last) {
                return false;
            }
            to -= last.len();
            parts = rest;
        }
        // Leftmost first: the earliest place each literal fits leaves the
        // most room for the ones after it.
        for part in parts {
            match find(&text[from..to], part, cased) {
                Some(at) => from += at + part.len(),
                None => return false,
            }
        }
        true
    }
}

/// Where `needle` first occurs in `hay`, ignoring ASCII case unless `cased`.
fn find(hay: &[u8], needle: &[u8], cased: bool) -> Option<usize> {
    if cased {
        return memchr::memmem::find(hay, needle);
    }
    let last = hay.len().checked_sub(needle.len())?;
    let first = needle[0];
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &hay[..=last],
    )
    .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// Whether `glob` matches all of `text` (see [`Glob`]).
pub(crate) fn glob_match(glob: &Glob, text: &str, cased: bool) -> bool {
    match &glob.segments {
        Some(s) => s.matches(text.as_bytes(), cased),
        None => glob_chars(&glob.items, text, cased),
    }
}

/// Whole-text wildcard match, character by character. Iterative with
/// single-star backtracking: linear in practice, never exponential, no
/// allocation.
fn glob_chars(pat: &[PatItem], text: &str, cased: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // After a star: the pattern position after it, and the text position it
    // has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = text[t..].chars().next() {
        match pat.get(p) {
            Some(PatItem::Star) => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(PatItem::Any) => {
                p += 1;
                t += c.len_utf8();
            }
            Some(PatItem::Char(l)) if fold_eq(*l, c, cased) => {
                p += 1;
                t += c.len_utf8();
            }
            _ => match star {
                Some((sp, st)) => {
                    let skipped = text[st..].chars().next().map_or(1, char::len_utf8);
                    star = Some((sp, st + skipped));
                    p = sp;
                    t = st + skipped;
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|i| *i == PatItem::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use GlobToken::*;

    fn glob(tokens: &[GlobToken], text: &str) -> bool {
        glob_match(&compile_glob(tokens), text, false)
    }

    #[test]
    fn globs() {
        assert!(glob(&[Lit("a".into()), Star, Lit("b".into())], "aXXb"));
        assert!(glob(&[Lit("a".into()), Star, Lit("b".into())], "ab"));
        assert!(!glob(&[Lit("a".into()), Star, Lit("b".into())], "abc"));
        assert!(glob(&[Star, Lit("b".into()), Star, Lit("b".into())], "bbb"));
        assert!(glob(&[Question, Question], "éa"));
        assert!(!glob(&[Question], ""));
        assert!(glob(&[Lit("ÉTÉ".into())], "été"));
        assert!(glob(&[Star, Lit("é".into()), Star], "ééé"));
        assert!(!glob_match(&compile_glob(&[Lit("A".into())]), "a", true));
    }

    #[test]
    fn literal_segments_match_as_the_character_walk_does() {
        // Pattern characters: ASCII in both cases, a caseless dash (byte
        // path), `é` (character path), stars and `?`; text characters also
        // take the other case of each letter.
        let pat_chars = ['a', 'B', '\\', '.', '\u{2013}', 'é', '*', '*', '?'];
        let text_chars = ['a', 'A', 'b', 'B', '\\', '.', '\u{2013}', 'é', 'É', 'x'];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut fast, mut total) = (0, 0);
        for _ in 0..40_000 {
            let pat: String = (0..next(7))
                .map(|_| pat_chars[next(pat_chars.len())])
                .collect();
            let text: String = (0..next(12))
                .map(|_| text_chars[next(text_chars.len())])
                .collect();
            let mut tokens = Vec::new();
            for c in pat.chars() {
                tokens.push(match c {
                    '*' => Star,
                    '?' => Question,
                    c => Lit(c.to_string()),
                });
            }
            let g = compile_glob(&tokens);
            fast += usize::from(g.segments.is_some());
            total += 1;
            for cased in [false, true] {
                assert_eq!(
                    glob_match(&g, &text, cased),
                    glob_chars(&g.items, &text, cased),
                    "{pat:?} {text:?} cased={cased}"
                );
            }
        }
        // Both paths were taken, the byte path often.
        assert!(fast > total / 4 && fast < total, "{fast} of {total}");
    }

    #[test]
    fn one_folding_rule_everywhere() {
        // The Kelvin sign lower-cases to ASCII `k`, but an ASCII literal only
        // folds ASCII: no path may treat them as equal.
        assert!(!fold_eq('k', '\u{212a}', false));
        assert!(!lit_match(StrOp::Contains, "\u{212a}ill", "kill", false));
        assert!(!glob(
            &[Star, Lit("k".into()), Question, Lit("ll".into())],
            "\u{212a}ill"
        ));
        // A non-ASCII literal matches its own case forms on every path.
        assert!(fold_eq('Ж', 'ж', false));
        assert!(lit_match(StrOp::Suffix, "x\\жук.exe", "ЖУК.EXE", false));
        assert_eq!(literal_variants("xЖ").unwrap(), ["xЖ", "xж"]);
        assert_eq!(literal_variants("–Post").unwrap(), ["–Post"]);
        assert!(
            literal_variants("ДЖЗИЙ").is_none(),
            "2^5 spellings is too many"
        );
    }

    #[test]
    fn byte_tests_agree_with_characters() {
        // ASCII and caseless literals (the windash dashes) take the byte
        // path; literals with cased non-ASCII letters (Cyrillic, the Kelvin
        // sign whose lower case is ASCII `k`) stay on the character path.
        // Every verdict must equal the character-by-character rule.
        let lits = [
            "aB",
            "\u{2013}p",
            "x\u{2015}",
            "\u{2014}",
            "\u{212a}b",
            "жB",
        ];
        let texts = [
            "",
            "a",
            "xAbx",
            "ab",
            "é-ab-é",
            "\u{212a}ab",
            "kab",
            "ab ab",
            "b",
            "\u{2013}P",
            "x\u{2015}",
            "-\u{2014}-",
            "ЖB",
            "жb",
            "x\u{2013}px",
        ];
        let ops = [
            StrOp::Equals,
            StrOp::Prefix,
            StrOp::Suffix,
            StrOp::Contains,
            StrOp::Term,
        ];
        for lit in lits {
            for text in texts {
                for op in ops {
                    for cased in [false, true] {
                        let chars = text.char_indices().map(|(i, _)| i);
                        let slow = match op {
                            StrOp::Equals => match_at(text, 0, lit, cased) == Some(text.len()),
                            StrOp::Prefix => match_at(text, 0, lit, cased).is_some(),
                            StrOp::Suffix => chars
                                .clone()
                                .any(|i| match_at(text, i, lit, cased) == Some(text.len())),
                            StrOp::Contains => chars
                                .clone()
                                .any(|i| match_at(text, i, lit, cased).is_some()),
                            StrOp::Term => chars.clone().any(|i| {
                                match_at(text, i, lit, cased)
                                    .is_some_and(|e| term_bounded(text.as_bytes(), i, e))
                            }),
                        };
                        assert_eq!(
                            lit_match(op, text, lit, cased),
                            slow,
                            "{op:?} {lit:?} in {text:?} cased={cased}"
                        );
                    }
                }
            }
        }
        assert!(folds_as_bytes('\u{2013}') && folds_as_bytes('A'));
        assert!(!folds_as_bytes('\u{212a}') && !folds_as_bytes('ж'));
    }

    #[test]
    fn positioned_literals() {
        assert!(lit_match(StrOp::Equals, "AbC", "abc", false));
        assert!(!lit_match(StrOp::Equals, "AbC", "abc", true));
        assert!(lit_match(StrOp::Prefix, "abcd", "AB", false));
        assert!(!lit_match(StrOp::Prefix, "xabcd", "AB", false));
        assert!(lit_match(StrOp::Suffix, "abab", "ab", false));
        assert!(!lit_match(StrOp::Suffix, "abax", "ab", false));
        assert!(lit_match(StrOp::Contains, "xxabxx", "ab", false));
        assert!(lit_match(
            StrOp::Term,
            "run explorer.exe",
            "explorer",
            false
        ));
        assert!(!lit_match(
            StrOp::Term,
            "KustoExplorerQueryRun",
            "explorer",
            false
        ));
        assert!(lit_match(StrOp::Equals, "", "", false));
        assert!(!lit_match(StrOp::Equals, "x", "", false));
    }
}
