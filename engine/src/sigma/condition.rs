//! Sigma conditions: `selection and not 1 of filter_*`.
//!
//! Grammar (keywords case-insensitive; precedence `not` > `and` > `or`):
//!
//! ```text
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | primary
//! primary := "(" or ")" | ("1" | "any" | "all") "of" pattern | identifier
//! pattern := "them" | a selection name, `*` matching any run of characters
//! ```
//!
//! Parsing yields a [`Cond`] tree; [`Cond::resolve`] substitutes the
//! selections' expressions for their names. Aggregations (the pre-correlation
//! `| count() by …`, `| near …` syntax) are recognised and rejected.

use crate::rule::Expr;

/// How deeply parentheses and `not`s may nest: far beyond any real rule, and
/// small enough that recursion over the tree cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// A selection by name.
    Ident(String),
    /// `1 of pattern` (`all: false`) or `all of pattern`. `them` is the
    /// pattern `None`.
    Of {
        all: bool,
        pattern: Option<String>,
    },
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
}

/// The reason given for every aggregation.
fn aggregation(cond: &str) -> String {
    format!(
        "aggregation conditions (`{}`) are not supported: trawl matches single events; \
         `count()`, `near` and other `|` expressions need a correlation engine",
        cond.trim()
    )
}

/// Parses one condition string.
pub(crate) fn parse(text: &str) -> Result<Cond, String> {
    if text.contains('|') {
        return Err(aggregation(text));
    }
    let toks = tokenize(text);
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        depth: 0,
    };
    let result = p.or().and_then(|c| match p.toks.get(p.pos) {
        None => Ok(c),
        Some(t) => Err(format!(
            "unexpected {} after a complete condition",
            describe(t)
        )),
    });
    result.map_err(|e| {
        // `count(` / `near` without the pipe are aggregations gone wrong, not
        // typos; say so.
        let lower = text.to_ascii_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .collect();
        if lower.contains("count(") || words.contains(&"near") {
            aggregation(text)
        } else {
            format!("condition `{}`: {e}", text.trim())
        }
    })
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() || c == '(' || c == ')' {
            if !word.is_empty() {
                toks.push(Tok::Word(std::mem::take(&mut word)));
            }
            match c {
                '(' => toks.push(Tok::Open),
                ')' => toks.push(Tok::Close),
                _ => {}
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        toks.push(Tok::Word(word));
    }
    toks
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Open => "`(`".to_owned(),
        Tok::Close => "`)`".to_owned(),
        Tok::Word(w) => format!("`{w}`"),
    }
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, String> {
        if is_kw(self.peek(), "not") {
            self.pos += 1;
            let inner = self.nested(Self::not)?;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.primary()
    }

    /// Runs `f` one level deeper, refusing absurd nesting.
    fn nested(&mut self, f: fn(&mut Self) -> Result<Cond, String>) -> Result<Cond, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "nested more than {MAX_DEPTH} levels deep (parentheses and `not`)"
            ));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn primary(&mut self) -> Result<Cond, String> {
        let Some(tok) = self.peek().cloned() else {
            return Err(if self.pos == 0 {
                "the condition is empty".to_owned()
            } else {
                "the condition ends where a selection name was expected".to_owned()
            });
        };
        self.pos += 1;
        match tok {
            Tok::Open => {
                let inner = self.nested(Self::or)?;
                match self.peek() {
                    Some(Tok::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some(t) => Err(format!("expected `)` but found {}", describe(t))),
                    None => Err("a `(` is never closed".to_owned()),
                }
            }
            Tok::Close => Err("unexpected `)`".to_owned()),
            Tok::Word(w) => {
                if is_kw(self.peek(), "of") {
                    let all = if w == "1" || w.eq_ignore_ascii_case("any") {
                        false
                    } else if w.eq_ignore_ascii_case("all") {
                        true
                    } else {
                        return Err(format!(
                            "`{w} of` is not a Sigma quantifier; use `1 of`, `any of` or `all of`"
                        ));
                    };
                    self.pos += 1;
                    return match self.peek().cloned() {
                        Some(Tok::Word(p)) => {
                            self.pos += 1;
                            let pattern = (!p.eq_ignore_ascii_case("them")).then_some(p);
                            Ok(Cond::Of { all, pattern })
                        }
                        _ => Err(format!(
                            "`{w} of` must be followed by `them` or a selection name pattern"
                        )),
                    };
                }
                for kw in ["and", "or", "not", "of"] {
                    if w.eq_ignore_ascii_case(kw) {
                        return Err(format!("`{w}` where a selection name was expected"));
                    }
                }
                Ok(Cond::Ident(w))
            }
        }
    }
}

/// Whether selection `name` is picked by the `X of` pattern `pattern`: the
/// whole name must match, `*` matching any run of characters, and names
/// starting with `_` (helpers, by convention) only match a pattern that starts
/// with `_` too.
pub(crate) fn matches_pattern(pattern: &str, name: &str) -> bool {
    glob_match(pattern, name) && (!name.starts_with('_') || pattern.starts_with('_'))
}

/// Whether `name` matches `pattern`, where `*` is any run of characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic iterative wildcard match with one backtrack point: linear in
    // practice, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Cond {
    /// Substitutes the selections (name, expression, in rule order) into the
    /// condition.
    pub(crate) fn resolve(&self, selections: &[(String, Expr)]) -> Result<Expr, String> {
        Ok(match self {
            Cond::Ident(name) => selections
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| e.clone())
                .ok_or_else(|| {
                    format!("the condition names `{name}`, which is not a selection in `detection`")
                })?,
            Cond::Of { all, pattern } => {
                // `them` and patterns skip `_`-prefixed selections (by
                // convention helpers); a pattern that itself starts with `_`
                // asks for them explicitly.
                let matched: Vec<Expr> = selections
                    .iter()
                    .filter(|(n, _)| match pattern {
                        None => !n.starts_with('_'),
                        Some(p) => matches_pattern(p, n),
                    })
                    .map(|(_, e)| e.clone())
                    .collect();
                if matched.is_empty() {
                    let q = if *all { "all" } else { "1" };
                    let p = pattern.as_deref().unwrap_or("them");
                    return Err(format!("`{q} of {p}` matches no selection in `detection`"));
                }
                if *all {
                    Expr::And(matched)
                } else {
                    Expr::Or(matched)
                }
            }
            Cond::Not(c) => Expr::Not(Box::new(c.resolve(selections)?)),
            Cond::And(cs) => Expr::And(
                cs.iter()
                    .map(|c| c.resolve(selections))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Or(cs) => Expr::Or(
                cs.iter()
                    .map(|c| c.resolve(selections))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Cond {
        Cond::Ident(s.to_owned())
    }

    #[test]
    fn precedence_is_not_and_or() {
        assert_eq!(
            parse("a or b and not c").unwrap(),
            Cond::Or(vec![
                id("a"),
                Cond::And(vec![id("b"), Cond::Not(Box::new(id("c")))])
            ])
        );
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Cond::And(vec![Cond::Or(vec![id("a"), id("b")]), id("c")])
        );
        assert_eq!(
            parse("not not a").unwrap(),
            Cond::Not(Box::new(Cond::Not(Box::new(id("a")))))
        );
        assert_eq!(
            parse("A AND NOT B Or c").unwrap(),
            Cond::Or(vec![
                Cond::And(vec![id("A"), Cond::Not(Box::new(id("B")))]),
                id("c")
            ])
        );
    }

    #[test]
    fn quantifiers() {
        assert_eq!(
            parse("1 of sel_* and not all of them").unwrap(),
            Cond::And(vec![
                Cond::Of {
                    all: false,
                    pattern: Some("sel_*".into())
                },
                Cond::Not(Box::new(Cond::Of {
                    all: true,
                    pattern: None
                }))
            ])
        );
        assert_eq!(
            parse("any of them").unwrap(),
            Cond::Of {
                all: false,
                pattern: None
            }
        );
        assert!(parse("2 of them")
            .unwrap_err()
            .contains("not a Sigma quantifier"));
        assert!(parse("1 of").unwrap_err().contains("must be followed"));
    }

    #[test]
    fn syntax_errors_and_aggregations() {
        for bad in ["", "a and", "(a", "a)", "a b", "and", "a or or b"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        for agg in [
            "selection | count() by Host > 5",
            "selection | near other",
            "count(x) > 3",
            "a near b",
        ] {
            assert!(parse(agg).unwrap_err().starts_with("aggregation"), "{agg}");
        }
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).unwrap_err().contains("nested more than"));
        let deep_not = format!("{}a", "not ".repeat(10_000));
        assert!(parse(&deep_not).is_err());
    }

    #[test]
    fn glob_matching_is_whole_name() {
        assert!(glob_match("sel_*", "sel_a"));
        assert!(glob_match("sel_*", "sel_"));
        assert!(glob_match("*_cmd", "sel_cmd"));
        assert!(glob_match("s*l*x", "sel_x"));
        assert!(glob_match("sel", "sel"));
        assert!(!glob_match("sel", "selection"));
        assert!(!glob_match("sel_*", "filter"));
        assert!(glob_match("*", ""));
    }
}
