//! Sigma regexes (PCRE flavour) in Rust `regex` syntax.
//!
//! The two syntaxes agree on everything the Sigma spec allows (`.`, anchors,
//! quantifiers, classes, groups, alternation). A few spellings that PCRE reads
//! as literals mean something else, or nothing, in Rust; [`to_rust`] escapes
//! exactly those so that a regex keeps its PCRE meaning. Anything Rust cannot
//! express (look-around, backreferences, possessive quantifiers, …) is left
//! alone and rejected by [`validate`]: this is not a regex translator.

/// Rewrites the PCRE spellings whose meaning differs in Rust's syntax:
///
/// - `\<` and `\>` are literal `<`/`>` in PCRE but word boundaries in Rust;
/// - inside a class, `[` is a literal in PCRE (unless it opens `[:name:]`) but
///   opens a nested class in Rust, and `&&` / `~~` are literals in PCRE but
///   set operators in Rust;
/// - a `{` that does not start a valid `{n}`, `{n,}` or `{n,m}` quantifier is a
///   literal in PCRE and an error in Rust.
pub(crate) fn to_rust(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut in_class = false;
    // Right after `[` or `[^`, where a `]` is a literal.
    let mut class_first = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\\' {
            match next {
                Some(n @ ('<' | '>')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            class_first = false;
            continue;
        }
        if in_class {
            match c {
                '[' if next == Some(':') => match posix_class_end(&chars, i) {
                    Some(end) => {
                        out.extend(&chars[i..=end]);
                        i = end;
                    }
                    None => out.push_str("\\["),
                },
                '[' => out.push_str("\\["),
                ']' if !class_first => {
                    in_class = false;
                    out.push(']');
                }
                '&' | '~' if next == Some(c) => {
                    out.push(c);
                    out.push('\\');
                    out.push(c);
                    i += 1;
                }
                _ => out.push(c),
            }
            class_first = false;
        } else {
            match c {
                '[' => {
                    in_class = true;
                    class_first = true;
                    out.push('[');
                    if next == Some('^') {
                        out.push('^');
                        i += 1;
                    }
                }
                '{' => match quantifier_end(&chars, i) {
                    Some(end) => {
                        out.extend(&chars[i..=end]);
                        i = end;
                    }
                    None => out.push_str("\\{"),
                },
                _ => out.push(c),
            }
        }
        i += 1;
    }
    out
}

/// The index of the `]` closing a `[:name:]` that starts at `start`.
fn posix_class_end(chars: &[char], start: usize) -> Option<usize> {
    let mut j = start + 2;
    if chars.get(j) == Some(&'^') {
        j += 1;
    }
    while chars.get(j).is_some_and(char::is_ascii_alphabetic) {
        j += 1;
    }
    (chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&']')).then_some(j + 1)
}

/// The index of the `}` ending a `{n}`, `{n,}` or `{n,m}` quantifier that
/// starts at `start`.
fn quantifier_end(chars: &[char], start: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        let from = j;
        while chars.get(j).is_some_and(char::is_ascii_digit) {
            j += 1;
        }
        (j, j > from)
    };
    let (j, min) = digits(start + 1);
    if !min {
        return None;
    }
    match chars.get(j) {
        Some('}') => Some(j),
        Some(',') => {
            let (k, _) = digits(j + 1);
            (chars.get(k) == Some(&'}')).then_some(k)
        }
        _ => None,
    }
}

/// Checks that trawl's regex engine accepts `pattern` with these flags (and
/// that it compiles within the engine's size limits), so that a rule that
/// loads is a rule that runs.
pub(crate) fn validate(pattern: &str, i: bool, m: bool, s: bool) -> Result<(), String> {
    let parsed = regex_syntax::ParserBuilder::new()
        .case_insensitive(i)
        .multi_line(m)
        .dot_matches_new_line(s)
        .build()
        .parse(pattern);
    if let Err(e) = parsed {
        let (kind, span) = match &e {
            regex_syntax::Error::Parse(e) => (e.kind().to_string(), *e.span()),
            regex_syntax::Error::Translate(e) => (e.kind().to_string(), *e.span()),
            other => (
                other.to_string(),
                regex_syntax::ast::Span::splat(regex_syntax::ast::Position::new(0, 1, 1)),
            ),
        };
        let at = pattern
            .get(span.start.offset..span.end.offset)
            .unwrap_or("");
        return Err(format!(
            "regex `{pattern}` uses syntax trawl's regex engine (Rust `regex`) does not \
             support: {kind} (at `{at}`, offset {})",
            span.start.offset
        ));
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(i)
        .multi_line(m)
        .dot_matches_new_line(s)
        .build()
        .map(drop)
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "regex `{pattern}` compiles to more than {limit} bytes; simplify it (bounded \
                 repetitions of large classes such as `\\w{{1000}}` are the usual cause)"
            ),
            other => format!("regex `{pattern}` does not compile: {other}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_ordinary_regexes_alone() {
        for p in [
            r"\\[0-9a-f]{8}-[0-9a-f]{4}\.txt$",
            r"(?i)\$\{`?e`?n`?v\}",
            r"[a-z]{2,}",
            r"[]a]",
            r"[^]a]",
            r"[[:alpha:]_]+",
            r"\A(?:x)\z",
        ] {
            assert_eq!(to_rust(p), p, "{p}");
        }
    }

    #[test]
    fn escapes_pcre_literals_that_rust_reads_differently() {
        assert_eq!(to_rust(r"\<script\>"), "<script>");
        assert_eq!(to_rust(r"\\<"), r"\\<");
        assert_eq!(to_rust(r"[a[b]"), r"[a\[b]");
        assert_eq!(to_rust(r"[&&x]"), r"[&\&x]");
        assert_eq!(to_rust(r"[~~]"), r"[~\~]");
        assert_eq!(to_rust(r"a{b}"), r"a\{b}");
        assert_eq!(to_rust(r"{"), r"\{");
        assert_eq!(to_rust(r"x{1,}"), r"x{1,}");
        assert_eq!(to_rust(r"x{,3}"), r"x\{,3}");
        // The rewritten patterns are valid Rust regexes.
        for p in [r"\<script\>", r"[a[b]", r"a{b}", r"x{,3}", "\\"] {
            let r = to_rust(p);
            if p != "\\" {
                assert!(validate(&r, false, false, false).is_ok(), "{r}");
            }
        }
    }

    #[test]
    fn rejects_what_rust_cannot_do_with_a_clear_reason() {
        let e = validate(r"foo(?=bar)", false, false, false).unwrap_err();
        assert!(e.contains("look-around"), "{e}");
        let e = validate(r"(a)\1", false, false, false).unwrap_err();
        assert!(e.contains("backreferences"), "{e}");
        let e = validate(r"\w{5000}", false, false, false).unwrap_err();
        assert!(e.contains("compiles to more than"), "{e}");
        assert!(validate(r"(?i)abc", false, false, false).is_ok());
    }
}
