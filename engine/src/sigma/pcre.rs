//! Sigma regexes (PCRE flavour) in Rust `regex` syntax.
//!
//! The two syntaxes agree on most of what the Sigma spec allows (`.`, anchors,
//! quantifiers, classes, groups, alternation). Where a spelling means
//! something else in Rust, [`to_rust`] rewrites it so that the regex keeps its
//! PCRE meaning; what Rust cannot express (look-around, backreferences) is
//! rejected by [`validate`], and possessive quantifiers by [`to_rust`], each
//! with the reason. This is not a general regex translator.
//!
//! One difference is left as it is: without the `m` flag, PCRE's `$` also
//! matches before a final newline and Rust's does not; command lines and
//! paths do not end in a newline.

/// Rewrites the PCRE spellings whose meaning differs in Rust's syntax:
///
/// - `\d`, `\w`, `\s` (and `\D`, `\W`, `\S`) are ASCII classes in PCRE but
///   Unicode classes in Rust: they become `[[:digit:]]`, `[[:word:]]`,
///   `[[:space:]]` (`[:digit:]` … inside a class); `\b` and `\B` become
///   ASCII word boundaries;
/// - inside a class, a `-` right after such a class escape is a literal in
///   PCRE and an error in Rust;
/// - `\<` and `\>` are literal `<`/`>` in PCRE but word boundaries in Rust;
/// - inside a class, `[` is a literal in PCRE (unless it opens `[:name:]`) but
///   opens a nested class in Rust, and `&&` / `~~` are literals in PCRE but
///   set operators in Rust;
/// - a `{` that does not start a valid `{n}`, `{n,}` or `{n,m}` quantifier is a
///   literal in PCRE and an error in Rust.
///
/// A possessive quantifier (`a++`, `a*+`, `a?+`, `a{2}+`) is an error: Rust
/// would read it as a nested greedy repetition, which matches text PCRE's
/// never does.
pub(crate) fn to_rust(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut in_class = false;
    // Right after `[` or `[^`, where a `]` is a literal.
    let mut class_first = false;
    // Right after a class escape inside a class, where `-` is a literal.
    let mut after_class_escape = false;
    // Right after a quantifier, where `+` would make it possessive.
    let mut after_quantifier = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\\' {
            let class_escape = matches!(next, Some('d' | 'D' | 'w' | 'W' | 's' | 'S'));
            match next {
                Some(n @ ('<' | '>')) => out.push(n),
                Some(n) if class_escape => {
                    let name = match n.to_ascii_lowercase() {
                        'd' => "digit",
                        'w' => "word",
                        _ => "space",
                    };
                    let neg = if n.is_ascii_uppercase() { "^" } else { "" };
                    if in_class {
                        out.push_str(&format!("[:{neg}{name}:]"));
                    } else {
                        out.push_str(&format!("[[:{neg}{name}:]]"));
                    }
                }
                Some(n @ ('b' | 'B')) if !in_class => {
                    out.push_str("(?-u:\\");
                    out.push(n);
                    out.push(')');
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            class_first = false;
            after_class_escape = in_class && class_escape;
            after_quantifier = false;
            continue;
        }
        if in_class {
            match c {
                '-' if after_class_escape && next != Some(']') => out.push_str("\\-"),
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
            after_class_escape = false;
            after_quantifier = false;
        } else {
            let was_quantifier = after_quantifier;
            after_quantifier = false;
            match c {
                '+' if was_quantifier => {
                    return Err(format!(
                        "regex `{pattern}` uses a possessive quantifier (`{}+`, offset {i}), which \
                         trawl's regex engine (Rust `regex`) cannot express; drop the `+` after \
                         the quantifier if backtracking is acceptable",
                        chars[i - 1]
                    ));
                }
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
                        after_quantifier = true;
                    }
                    None => out.push_str("\\{"),
                },
                '*' | '+' => {
                    out.push(c);
                    after_quantifier = true;
                }
                // `?` quantifies unless it opens a group (`(?:`) or makes the
                // quantifier before it lazy.
                '?' => {
                    out.push(c);
                    after_quantifier = !was_quantifier && i > 0 && chars[i - 1] != '(';
                }
                _ => out.push(c),
            }
        }
        i += 1;
    }
    Ok(out)
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

/// Checks that trawl's regex engine accepts `pattern`'s syntax with these
/// flags, naming the construct and its offset when it does not. Whether the
/// compiled regex fits the engine's size limits is checked once, by the
/// matcher, for rules of every language.
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(p: &str) -> String {
        to_rust(p).unwrap()
    }

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
            r"a+?b*?c??(?:d)?",
            r"\++",
        ] {
            assert_eq!(rust(p), p, "{p}");
        }
    }

    #[test]
    fn class_escapes_and_word_boundaries_are_ascii_as_in_pcre() {
        assert_eq!(rust(r"^\d+$"), r"^[[:digit:]]+$");
        assert_eq!(rust(r"[\w.-]"), r"[[:word:].-]");
        assert_eq!(rust(r"[\w-.]"), r"[[:word:]\-.]");
        assert_eq!(rust(r"[\d-z]"), r"[[:digit:]\-z]");
        assert_eq!(rust(r"\W\S\D"), r"[[:^word:]][[:^space:]][[:^digit:]]");
        assert_eq!(rust(r"\bx\B"), r"(?-u:\b)x(?-u:\B)");
        let re = |p: &str| regex::Regex::new(&rust(p)).unwrap();
        assert!(
            !re(r"^\d$").is_match("\u{663}"),
            "an Arabic-Indic digit is not \\d in PCRE"
        );
        assert!(re(r"^\d$").is_match("7"));
        assert!(re(r"^[\w-.]+$").is_match("a-b.c"));
        assert!(re(r"\bcmd\b").is_match("run cmd.exe"));
        assert!(
            !re(r"^\s$").is_match("\u{a0}"),
            "no-break space is not \\s in PCRE"
        );
    }

    #[test]
    fn possessive_quantifiers_are_refused() {
        for p in [r"a++", r"a*+b", r"a?+", r"a{2}+", r"(ab)++"] {
            let e = to_rust(p).unwrap_err();
            assert!(e.contains("possessive quantifier"), "{p}: {e}");
        }
    }

    #[test]
    fn escapes_pcre_literals_that_rust_reads_differently() {
        assert_eq!(rust(r"\<script\>"), "<script>");
        assert_eq!(rust(r"\\<"), r"\\<");
        assert_eq!(rust(r"[a[b]"), r"[a\[b]");
        assert_eq!(rust(r"[&&x]"), r"[&\&x]");
        assert_eq!(rust(r"[~~]"), r"[~\~]");
        assert_eq!(rust(r"a{b}"), r"a\{b}");
        assert_eq!(rust(r"{"), r"\{");
        assert_eq!(rust(r"x{1,}"), r"x{1,}");
        assert_eq!(rust(r"x{,3}"), r"x\{,3}");
        // The rewritten patterns are valid Rust regexes.
        for p in [r"\<script\>", r"[a[b]", r"a{b}", r"x{,3}", "\\"] {
            let r = rust(p);
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
        assert!(validate(r"(?i)abc", false, false, false).is_ok());
    }
}
