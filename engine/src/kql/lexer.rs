//! KQL text to tokens, each with the line and column where it starts.
//!
//! Strings follow Kusto's rules: `"…"` and `'…'` with backslash escapes,
//! verbatim `@"…"` / `@'…'` (no escapes; a doubled quote is one quote), and
//! the obfuscated forms `h"…"`, `h@"…"` (the same text, kept out of Kusto's
//! logs). Numbers followed by a unit (`7d`, `30m`) are timespans. `//` starts
//! a comment to the end of the line. Everything else is an identifier or a
//! punctuation token, so that the part of a query trawl does not run (a
//! `join`, an `extend`) still tokenizes and can be skipped.

use std::fmt;

/// Where a token starts: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.col)
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name: table, column, operator word, function, `let` name.
    Ident(String),
    /// A string literal, escapes resolved.
    Str(String),
    /// A number.
    Num(f64),
    /// A number with a unit (`7d`), as written.
    Timespan(String),
    /// Punctuation: `|`, `(`, `==`, `!`, `~`, …
    Punct(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Str(s) => write!(f, "the string {s:?}"),
            Tok::Num(n) => write!(f, "the number {n}"),
            Tok::Timespan(s) => write!(f, "the timespan {s}"),
            Tok::Punct(p) => write!(f, "`{p}`"),
        }
    }
}

/// One token, with where it starts, where it ends (`after`: the position
/// just past it, for errors about what is missing after the last token)
/// and the byte range it covers (to tell `!has` from `! has`).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    pub after: Pos,
    pub start: usize,
    pub end: usize,
}

/// Text that is not KQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub pos: Pos,
    pub msg: String,
}

/// Two-character punctuation, tried before one-character punctuation.
const PUNCT2: &[&str] = &["==", "!=", "=~", "!~", "<=", ">=", "<>", "..", "=>"];
const PUNCT1: &[&str] = &[
    "|", "(", ")", "[", "]", "{", "}", ",", ";", "=", "<", ">", "!", "~", ".", ":", "+", "-", "*",
    "/", "%", "$", "?", "#", "&", "^", "`", "@", "\\",
];

struct Cursor<'a> {
    text: &'a str,
    at: usize,
    line: u32,
    col: u32,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.peek_nth(1)
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.text[self.at..].chars().nth(n)
    }

    /// Whether a string literal starts `skip` characters ahead: a quote, or
    /// `@` and a quote.
    fn string_at(&self, skip: usize) -> bool {
        match self.peek_nth(skip) {
            Some('"' | '\'') => true,
            Some('@') => matches!(self.peek_nth(skip + 1), Some('"' | '\'')),
            _ => false,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else if c != '\u{FEFF}' {
            // A byte order mark is invisible in an editor: not a column.
            self.col += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
}

/// Splits a query into tokens, dropping whitespace and comments.
pub fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let mut c = Cursor {
        text,
        at: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    while let Some(ch) = c.peek() {
        if ch.is_whitespace() || ch == '\u{FEFF}' {
            c.bump();
            continue;
        }
        if ch == '/' && c.peek2() == Some('/') {
            while c.peek().is_some_and(|x| x != '\n') {
                c.bump();
            }
            continue;
        }
        let (pos, start) = (c.pos(), c.at);
        let tok = if (ch == 'h' || ch == 'H') && c.string_at(1) {
            c.bump();
            string(&mut c, pos)?
        } else if let Some(fence) = ["```", "~~~"]
            .into_iter()
            .find(|f| c.text[c.at..].starts_with(f))
        {
            multi_line(&mut c, pos, fence)?
        } else if c.string_at(0) {
            string(&mut c, pos)?
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let mut s = String::new();
            while let Some(x) = c.peek().filter(|x| x.is_ascii_alphanumeric() || *x == '_') {
                s.push(x);
                c.bump();
            }
            Tok::Ident(s)
        } else if ch.is_ascii_digit() {
            number(&mut c, pos)?
        } else if let Some(p) = PUNCT2.iter().find(|p| c.text[c.at..].starts_with(**p)) {
            c.bump();
            c.bump();
            Tok::Punct(p)
        } else if let Some(p) = PUNCT1.iter().find(|p| c.text[c.at..].starts_with(**p)) {
            c.bump();
            Tok::Punct(p)
        } else {
            return Err(LexError {
                pos,
                msg: format!("unexpected character {ch:?}"),
            });
        };
        // Adjacent string literals are one string (Kusto's concatenation).
        if let (
            Tok::Str(more),
            Some(Token {
                tok: Tok::Str(s),
                end,
                after,
                ..
            }),
        ) = (&tok, out.last_mut())
        {
            s.push_str(more);
            *end = c.at;
            *after = c.pos();
            continue;
        }
        out.push(Token {
            tok,
            pos,
            after: c.pos(),
            start,
            end: c.at,
        });
    }
    Ok(out)
}

/// A multi-line string literal: the text between two fences (```` ``` ````
/// or `~~~`), newlines included, no escapes.
fn multi_line(c: &mut Cursor<'_>, pos: Pos, fence: &str) -> Result<Tok, LexError> {
    for _ in 0..3 {
        c.bump();
    }
    let Some(len) = c.text[c.at..].find(fence) else {
        return Err(LexError {
            pos,
            msg: format!("multi-line string not closed with {fence}"),
        });
    };
    let stop = c.at + len;
    let s = c.text[c.at..stop].to_owned();
    while c.at < stop {
        c.bump();
    }
    for _ in 0..3 {
        c.bump();
    }
    Ok(Tok::Str(s))
}

/// A string literal starting at the cursor (`@` or a quote; see
/// [`Cursor::string_at`]).
fn string(c: &mut Cursor<'_>, pos: Pos) -> Result<Tok, LexError> {
    let verbatim = c.peek() == Some('@');
    if verbatim {
        c.bump();
    }
    let quote = match c.bump() {
        Some(q @ ('"' | '\'')) => q,
        _ => {
            return Err(LexError {
                pos,
                msg: "expected a quote to start the string".to_owned(),
            })
        }
    };
    let unterminated = || LexError {
        pos,
        msg: format!("string not closed with {quote} on the same line"),
    };
    let mut s = String::new();
    loop {
        let esc_pos = c.pos();
        match c.bump() {
            None | Some('\n') => return Err(unterminated()),
            Some(x) if x == quote => {
                if verbatim && c.peek() == Some(quote) {
                    c.bump();
                    s.push(quote);
                } else {
                    return Ok(Tok::Str(s));
                }
            }
            Some('\\') if !verbatim => match c.bump() {
                Some('\\') => s.push('\\'),
                Some('"') => s.push('"'),
                Some('\'') => s.push('\''),
                Some('n') => s.push('\n'),
                Some('r') => s.push('\r'),
                Some('t') => s.push('\t'),
                Some('0') => s.push('\0'),
                Some('u') => {
                    let hex: String = (0..4).filter_map(|_| c.bump()).collect();
                    let ch = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| LexError {
                            pos: esc_pos,
                            msg: format!("`\\u{hex}` is not a \\uXXXX escape"),
                        })?;
                    s.push(ch);
                }
                None | Some('\n') => return Err(unterminated()),
                Some(other) => {
                    return Err(LexError {
                        pos: esc_pos,
                        msg: format!(
                            "unknown escape `\\{other}`; write `\\\\` for a backslash, or use a verbatim string @\"…\""
                        ),
                    })
                }
            },
            Some(x) => s.push(x),
        }
    }
}

/// A number, or a timespan when a unit follows (`7d`, `1.5h`).
fn number(c: &mut Cursor<'_>, pos: Pos) -> Result<Tok, LexError> {
    let start = c.at;
    if c.peek() == Some('0') && matches!(c.peek2(), Some('x' | 'X')) {
        c.bump();
        c.bump();
        while c.peek().is_some_and(|x| x.is_ascii_hexdigit()) {
            c.bump();
        }
        let text = &c.text[start + 2..c.at];
        return i64::from_str_radix(text, 16)
            .map(|v| Tok::Num(v as f64))
            .map_err(|_| LexError {
                pos,
                msg: format!("`{}` is not a hex number", &c.text[start..c.at]),
            });
    }
    while c.peek().is_some_and(|x| x.is_ascii_digit()) {
        c.bump();
    }
    if c.peek() == Some('.') && c.peek2().is_some_and(|x| x.is_ascii_digit()) {
        c.bump();
        while c.peek().is_some_and(|x| x.is_ascii_digit()) {
            c.bump();
        }
    }
    if matches!(c.peek(), Some('e' | 'E'))
        && (c.peek2().is_some_and(|x| x.is_ascii_digit()) || matches!(c.peek2(), Some('+' | '-')))
    {
        c.bump();
        if matches!(c.peek(), Some('+' | '-')) {
            c.bump();
        }
        while c.peek().is_some_and(|x| x.is_ascii_digit()) {
            c.bump();
        }
    }
    let digits_end = c.at;
    if c.peek().is_some_and(|x| x.is_ascii_alphabetic()) {
        while c.peek().is_some_and(|x| x.is_ascii_alphanumeric()) {
            c.bump();
        }
        return Ok(Tok::Timespan(c.text[start..c.at].to_owned()));
    }
    c.text[start..digits_end]
        .parse::<f64>()
        .map(Tok::Num)
        .map_err(|_| LexError {
            pos,
            msg: format!("`{}` is not a number", &c.text[start..digits_end]),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_follow_kusto_escapes() {
        assert_eq!(
            toks(r#""a\\b\"c", 'it\'s', @"C:\Windows\TAPI", @'x''y', h"hid", h@"C:\x""#)
                .into_iter()
                .filter(|t| *t != Tok::Punct(","))
                .collect::<Vec<_>>(),
            [
                Tok::Str("a\\b\"c".into()),
                Tok::Str("it's".into()),
                Tok::Str("C:\\Windows\\TAPI".into()),
                Tok::Str("x'y".into()),
                Tok::Str("hid".into()),
                Tok::Str("C:\\x".into()),
            ]
        );
        assert_eq!(toks(r#"@"say ""hi""""#), [Tok::Str("say \"hi\"".into())]);
    }

    #[test]
    fn operators_numbers_and_comments() {
        assert_eq!(
            toks("a !has 'x' // comment\n| where b =~ 7d or c==0x10 and d<=1.5e2"),
            [
                Tok::Ident("a".into()),
                Tok::Punct("!"),
                Tok::Ident("has".into()),
                Tok::Str("x".into()),
                Tok::Punct("|"),
                Tok::Ident("where".into()),
                Tok::Ident("b".into()),
                Tok::Punct("=~"),
                Tok::Timespan("7d".into()),
                Tok::Ident("or".into()),
                Tok::Ident("c".into()),
                Tok::Punct("=="),
                Tok::Num(16.0),
                Tok::Ident("and".into()),
                Tok::Ident("d".into()),
                Tok::Punct("<="),
                Tok::Num(150.0),
            ]
        );
    }

    #[test]
    fn errors_say_where() {
        let e = lex("T\n| where x == \"open").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 14 });
        assert!(e.msg.contains("not closed"), "{}", e.msg);
        let e = lex("T | where x == \"C:\\Windows\"").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 19 });
        assert!(e.msg.contains("unknown escape `\\W`"), "{}", e.msg);
        let e = lex("T | where x == ´").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 16 });
    }

    #[test]
    fn h_and_at_start_a_string_only_before_a_quote() {
        assert_eq!(
            toks("h@x h@ @x h"),
            [
                Tok::Ident("h".into()),
                Tok::Punct("@"),
                Tok::Ident("x".into()),
                Tok::Ident("h".into()),
                Tok::Punct("@"),
                Tok::Punct("@"),
                Tok::Ident("x".into()),
                Tok::Ident("h".into()),
            ]
        );
        assert_eq!(toks("H@'a'"), [Tok::Str("a".into())]);
    }

    #[test]
    fn adjacent_strings_join_and_fences_span_lines() {
        // Kusto docs (*The string data type*): "Hello" ', ' @"world!" is one
        // string, with or without whitespace and comments between.
        let t = lex("x == \"Hello\"', '@\"world!\" // c\n 'x' | y").unwrap();
        assert_eq!(t[2].tok, Tok::Str("Hello, world!x".into()));
        assert_eq!(
            (t[2].pos, t[3].tok.clone()),
            (Pos { line: 1, col: 6 }, Tok::Punct("|"))
        );
        let t = lex("a ```C:\\x\n\"y\"``` ~~~z~~~ b").unwrap();
        assert_eq!(t[1].tok, Tok::Str("C:\\x\n\"y\"z".into()));
        assert_eq!(t[2].pos, Pos { line: 2, col: 16 });
        let e = lex("a\n  ```open").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 3 });
    }

    #[test]
    fn positions_count_characters() {
        let t = lex("\"é\" x\n  yy").unwrap();
        assert_eq!(t[1].pos, Pos { line: 1, col: 5 });
        assert_eq!(t[2].pos, Pos { line: 2, col: 3 });
    }
}
