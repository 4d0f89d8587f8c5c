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
//! `t` is its one-character lower- or upper-case form.
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
    single(lit.to_lowercase()) == Some(text) || single(lit.to_uppercase()) == Some(text)
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

/// Flattens glob tokens into characters once, at compile time.
pub(crate) fn compile_glob(tokens: &[GlobToken]) -> Vec<PatItem> {
    let mut out = Vec::new();
    for t in tokens {
        match t {
            GlobToken::Lit(s) => out.extend(s.chars().map(PatItem::Char)),
            GlobToken::Star => out.push(PatItem::Star),
            GlobToken::Question => out.push(PatItem::Any),
        }
    }
    out
}

/// Whole-text wildcard match. Iterative with single-star backtracking:
/// linear in practice, never exponential, no allocation.
pub(crate) fn glob_match(pat: &[PatItem], text: &str, cased: bool) -> bool {
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
