//! Tokens to a query: `let` lists, a table, its `where` filters, and where
//! the part trawl does not run begins.
//!
//! The grammar (the documented subset):
//!
//! ```text
//! file   := let* TABLE ('|' ('where' | 'filter') expr)* ('|' other-stage …)? ';'?
//! let    := 'let' NAME '=' (dynamic([lit, …]) | lit) ';'
//! expr   := and ('or' and)*
//! and    := unary ('and' unary)*
//! unary  := 'not' '(' expr ')' | '(' expr ')' | FUNC '(' COLUMN ')' | COLUMN op rhs
//! rhs    := lit | NAME | '(' item, … ')' | dynamic([lit, …]) | ago(…) | now()
//! ```
//!
//! Everything after the first stage that is not a `where` is only
//! tokenized: its operator and position are kept for the warning, and so are
//! any later `where` stages, which trawl cannot run either.

use std::collections::HashMap;

use super::lexer::{Pos, Tok, Token};

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// A comparison or predicate operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    Has { neg: bool, cs: bool },
    HasAny,
    HasAll,
    Contains { neg: bool, cs: bool },
    StartsWith { neg: bool, cs: bool },
    EndsWith { neg: bool, cs: bool },
    In { neg: bool, ci: bool },
    MatchesRegex,
}

impl Op {
    /// The operator as KQL spells it.
    pub fn as_kql(self) -> &'static str {
        let pick = |neg: bool, cs: bool, names: [&'static str; 4]| {
            names[usize::from(neg) * 2 + usize::from(cs)]
        };
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::EqCi => "=~",
            Op::NeCi => "!~",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Has { neg, cs } => pick(neg, cs, ["has", "has_cs", "!has", "!has_cs"]),
            Op::HasAny => "has_any",
            Op::HasAll => "has_all",
            Op::Contains { neg, cs } => pick(
                neg,
                cs,
                ["contains", "contains_cs", "!contains", "!contains_cs"],
            ),
            Op::StartsWith { neg, cs } => pick(
                neg,
                cs,
                [
                    "startswith",
                    "startswith_cs",
                    "!startswith",
                    "!startswith_cs",
                ],
            ),
            Op::EndsWith { neg, cs } => pick(
                neg,
                cs,
                ["endswith", "endswith_cs", "!endswith", "!endswith_cs"],
            ),
            Op::In { neg, ci } => pick(neg, ci, ["in", "in~", "!in", "!in~"]),
            Op::MatchesRegex => "matches regex",
        }
    }

    /// Whether the right-hand side is a list.
    fn takes_list(self) -> bool {
        matches!(self, Op::HasAny | Op::HasAll | Op::In { .. })
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    One(Lit, Pos),
    List(Vec<(Lit, Pos)>),
    /// `ago(…)` (`ago: true`) or `now()`: a time relative to when the query
    /// runs.
    Time {
        pos: Pos,
        ago: bool,
    },
}

/// A column reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Col {
    pub name: String,
    pub pos: Pos,
}

/// A `where` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp {
        col: Col,
        op: Op,
        op_pos: Pos,
        rhs: Rhs,
    },
    /// `isempty(col)` and its kin.
    Func {
        name: String,
        pos: Pos,
        col: Col,
    },
}

/// The first stage that is not a `where`, where trawl stops.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    /// The operator (`project`, `join`, `project-reorder`, …).
    pub op: String,
    pub pos: Pos,
    /// `where` stages after it: not run either.
    pub later_wheres: Vec<Pos>,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub table: String,
    pub table_pos: Pos,
    /// One condition per `where` stage (they are ANDed).
    pub filters: Vec<Node>,
    pub tail: Option<Tail>,
}

/// Why a query is not in the subset, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub msg: String,
}

type PResult<T> = Result<T, ParseError>;

/// A `let` value.
#[derive(Debug, Clone)]
enum LetVal {
    One(Lit),
    List(Vec<Lit>),
}

/// Operators that combine or replace tables: a query that starts with one
/// is not one table's filter.
const MULTI_TABLE: &[&str] = &[
    "union",
    "search",
    "find",
    "print",
    "datatable",
    "range",
    "externaldata",
    "materialize",
    "evaluate",
];

/// How deeply parentheses and `not(` may nest: far beyond any real query
/// (Sigma conditions have the same bound), and small enough that recursion
/// over the tree cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Functions usable as a whole condition.
const PREDICATES: &[&str] = &["isempty", "isnotempty", "isnull", "isnotnull"];

struct Parser<'t> {
    toks: &'t [Token],
    i: usize,
    lets: HashMap<String, LetVal>,
    /// Where the text ends, for errors at the end.
    end: Pos,
    /// How many `(` and `not(` enclose the current condition.
    depth: usize,
}

/// Parses a query from its tokens; `end` is the position just past the text.
pub fn parse(toks: &[Token], end: Pos) -> PResult<Query> {
    let mut p = Parser {
        toks,
        i: 0,
        lets: HashMap::new(),
        end,
        depth: 0,
    };
    p.query()
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }

    fn peek_tok(&self) -> Option<&Tok> {
        self.peek().map(|t| &t.tok)
    }

    fn pos(&self) -> Pos {
        self.peek().map_or(self.end, |t| t.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }

    fn err<T>(&self, pos: Pos, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            pos,
            msg: msg.into(),
        })
    }

    /// What the next token is, for "expected X, found Y" messages.
    fn found(&self) -> String {
        self.peek_tok()
            .map_or_else(|| "the end of the query".to_owned(), |t| t.to_string())
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Ident(w)) if w == word)
    }

    fn expect_punct(&mut self, p: &str, what: &str) -> PResult<Pos> {
        if self.is_punct(p) {
            let pos = self.pos();
            self.i += 1;
            Ok(pos)
        } else {
            self.err(
                self.pos(),
                format!("expected `{p}` {what}, found {}", self.found()),
            )
        }
    }

    fn ident(&mut self, what: &str) -> PResult<(String, Pos)> {
        match self.peek() {
            Some(Token {
                tok: Tok::Ident(s),
                pos,
                ..
            }) => {
                let r = (s.clone(), *pos);
                self.i += 1;
                Ok(r)
            }
            _ => self.err(
                self.pos(),
                format!("expected {what}, found {}", self.found()),
            ),
        }
    }

    fn query(&mut self) -> PResult<Query> {
        while self.is_ident("let") {
            self.let_stmt()?;
        }
        if self.is_punct("(") {
            return self.err(
                self.pos(),
                "a query in parentheses is not supported: start the file with the table name",
            );
        }
        let (table, table_pos) = self.ident("a table name")?;
        if MULTI_TABLE.contains(&table.as_str()) {
            return self.err(
                table_pos,
                format!(
                    "`{table}` is not supported: a .kql rule filters one table; put each table's query in a file of its own"
                ),
            );
        }
        let mut filters = Vec::new();
        let mut tail = None;
        while self.is_punct("|") {
            self.i += 1;
            let (op, op_pos) = self.stage_name()?;
            if op == "where" || op == "filter" {
                filters.push(self.expr()?);
                if !(self.is_punct("|") || self.is_punct(";") || self.peek().is_none()) {
                    return self.err(
                        self.pos(),
                        format!(
                            "unexpected {} after the `where` condition (expected `|`, `and`, `or` or the end)",
                            self.found()
                        ),
                    );
                }
                continue;
            }
            if filters.is_empty() {
                return self.err(
                    op_pos,
                    format!(
                        "`{op}` before any `where` is not supported: trawl runs `where` filters on the table's own columns, so they must come first"
                    ),
                );
            }
            tail = Some(Tail {
                op,
                pos: op_pos,
                later_wheres: self.skip_rest(),
            });
            break;
        }
        if self.is_punct(";") {
            self.i += 1;
        }
        if let Some(t) = self.peek() {
            return self.err(
                t.pos,
                format!(
                    "unexpected {} after the query (one query per .kql file)",
                    t.tok
                ),
            );
        }
        if filters.is_empty() {
            return self.err(
                table_pos,
                format!("`{table}` has no `where` clause: a rule must filter its table"),
            );
        }
        Ok(Query {
            table,
            table_pos,
            filters,
            tail,
        })
    }

    /// A stage operator, hyphenated names joined (`project-reorder`).
    fn stage_name(&mut self) -> PResult<(String, Pos)> {
        let (mut name, pos) = self.ident("a query operator after `|`")?;
        while self.is_punct("-") {
            let dash_end = self.peek().map(|t| t.end);
            match self.toks.get(self.i + 1) {
                Some(Token {
                    tok: Tok::Ident(w),
                    start,
                    ..
                }) if Some(*start) == dash_end => {
                    name.push('-');
                    name.push_str(w);
                    self.i += 2;
                }
                _ => break,
            }
        }
        Ok((name, pos))
    }

    /// Skips to the end; returns where later top-level `where`s start.
    fn skip_rest(&mut self) -> Vec<Pos> {
        let mut depth = 0i32;
        let mut wheres = Vec::new();
        while let Some(t) = self.next() {
            match &t.tok {
                Tok::Punct("(" | "[" | "{") => depth += 1,
                Tok::Punct(")" | "]" | "}") => depth -= 1,
                Tok::Punct("|") if depth == 0 => {
                    if let Some(Token {
                        tok: Tok::Ident(w),
                        pos,
                        ..
                    }) = self.peek()
                    {
                        if w == "where" || w == "filter" {
                            wheres.push(*pos);
                        }
                    }
                }
                _ => {}
            }
        }
        wheres
    }

    fn let_stmt(&mut self) -> PResult<()> {
        self.i += 1;
        let (name, _) = self.ident("a name after `let`")?;
        self.expect_punct("=", "after the `let` name")?;
        let pos = self.pos();
        let value = if self.is_ident("dynamic") {
            LetVal::List(self.dynamic_list()?)
        } else if let Some(lit) = self.literal() {
            LetVal::One(lit)
        } else {
            return self.err(
                pos,
                format!(
                    "`let {name}` must be a `dynamic([...])` list or a literal; tables, functions and expressions in `let` are not supported"
                ),
            );
        };
        self.expect_punct(";", "to end the `let` statement")?;
        self.lets.insert(name, value);
        Ok(())
    }

    /// A literal token (a number may have a `-` sign), consumed if there is
    /// one.
    fn literal(&mut self) -> Option<Lit> {
        if self.is_punct("-") && self.next_is_adjacent() {
            if let Some(Tok::Num(n)) = self.toks.get(self.i + 1).map(|t| &t.tok) {
                let n = -*n;
                self.i += 2;
                return Some(Lit::Num(n));
            }
        }
        let lit = match self.peek_tok()? {
            Tok::Str(s) => Lit::Str(s.clone()),
            Tok::Num(n) => Lit::Num(*n),
            Tok::Ident(w) if w == "true" => Lit::Bool(true),
            Tok::Ident(w) if w == "false" => Lit::Bool(false),
            _ => return None,
        };
        self.i += 1;
        Some(lit)
    }

    /// `dynamic([lit, …])`, after its name.
    fn dynamic_list(&mut self) -> PResult<Vec<Lit>> {
        self.i += 1;
        self.expect_punct("(", "after `dynamic`")?;
        self.expect_punct("[", "in `dynamic(`: only lists are supported")?;
        let mut out = Vec::new();
        if !self.is_punct("]") {
            loop {
                let pos = self.pos();
                match self.literal() {
                    Some(l) => out.push(l),
                    None => {
                        return self.err(
                            pos,
                            format!(
                                "expected a string or number in the list, found {}",
                                self.found()
                            ),
                        )
                    }
                }
                if self.is_punct(",") {
                    self.i += 1;
                    continue;
                }
                break;
            }
        }
        self.expect_punct("]", "to close the list")?;
        self.expect_punct(")", "to close `dynamic(`")?;
        Ok(out)
    }

    fn expr(&mut self) -> PResult<Node> {
        let mut terms = vec![self.and()?];
        while self.is_ident("or") {
            self.i += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Node::Or(terms)
        })
    }

    fn and(&mut self) -> PResult<Node> {
        let mut terms = vec![self.unary()?];
        while self.is_ident("and") {
            self.i += 1;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Node::And(terms)
        })
    }

    /// A condition inside `(` … `)`, the `(` at `open` already consumed.
    fn nested(&mut self, open: Pos, closing: &str) -> PResult<Node> {
        if self.depth >= MAX_DEPTH {
            return self.err(
                open,
                format!("nested more than {MAX_DEPTH} levels deep (parentheses and `not(`)"),
            );
        }
        self.depth += 1;
        let e = self.expr()?;
        self.depth -= 1;
        self.expect_punct(")", closing)?;
        Ok(e)
    }

    fn unary(&mut self) -> PResult<Node> {
        if self.is_punct("(") {
            let open = self.pos();
            self.i += 1;
            return self.nested(open, "to close `(`");
        }
        let pos = self.pos();
        let (name, name_pos) = match self.ident("a column name, `not(`, or `(`") {
            Ok(x) => x,
            Err(e) => {
                return match self.peek_tok() {
                    Some(Tok::Str(_) | Tok::Num(_)) => self.err(
                        pos,
                        "a condition must start with a column: write `Column op value`",
                    ),
                    _ => Err(e),
                }
            }
        };
        if name == "not" {
            if !self.is_punct("(") {
                return self.err(name_pos, "`not` is a function: write `not(condition)`");
            }
            self.i += 1;
            let e = self.nested(name_pos, "to close `not(`")?;
            return Ok(Node::Not(Box::new(e)));
        }
        if self.is_punct("(") {
            if !PREDICATES.contains(&name.as_str()) {
                return self.err(
                    name_pos,
                    format!(
                        "function `{name}` is not supported in a condition (supported: not(), {})",
                        PREDICATES.join(", ")
                    ),
                );
            }
            self.i += 1;
            let (col, col_pos) = self.ident(&format!("a column inside `{name}(`"))?;
            self.expect_punct(")", &format!("to close `{name}(`"))?;
            return Ok(Node::Func {
                name,
                pos: name_pos,
                col: Col {
                    name: col,
                    pos: col_pos,
                },
            });
        }
        let col = Col {
            name,
            pos: name_pos,
        };
        let (op, op_pos) = self.op()?;
        let rhs = if op.takes_list() {
            self.list_rhs(op)?
        } else {
            self.scalar_rhs(op)?
        };
        Ok(Node::Cmp {
            col,
            op,
            op_pos,
            rhs,
        })
    }

    /// Whether the token after the current one starts where the current ends.
    fn next_is_adjacent(&self) -> bool {
        match (self.toks.get(self.i), self.toks.get(self.i + 1)) {
            (Some(a), Some(b)) => a.end == b.start,
            _ => false,
        }
    }

    fn op(&mut self) -> PResult<(Op, Pos)> {
        let pos = self.pos();
        let sym = match self.peek_tok() {
            Some(Tok::Punct("==")) => Some(Op::Eq),
            Some(Tok::Punct("!=" | "<>")) => Some(Op::Ne),
            Some(Tok::Punct("=~")) => Some(Op::EqCi),
            Some(Tok::Punct("!~")) => Some(Op::NeCi),
            Some(Tok::Punct("<")) => Some(Op::Lt),
            Some(Tok::Punct("<=")) => Some(Op::Le),
            Some(Tok::Punct(">")) => Some(Op::Gt),
            Some(Tok::Punct(">=")) => Some(Op::Ge),
            _ => None,
        };
        if let Some(op) = sym {
            self.i += 1;
            return Ok((op, pos));
        }
        if self.is_punct("=") {
            return self.err(
                pos,
                "`=` assigns; compare with `==` (case-sensitive) or `=~` (case-insensitive)",
            );
        }
        let neg = self.is_punct("!") && self.next_is_adjacent();
        if neg {
            self.i += 1;
        }
        let Some(Tok::Ident(word)) = self.peek_tok().cloned() else {
            return self.err(
                pos,
                format!(
                    "expected an operator after the column, found {}",
                    self.found()
                ),
            );
        };
        // `in~`: the `~` is a token of its own, right after the word.
        let tilde = word == "in"
            && matches!(
                self.toks.get(self.i + 1),
                Some(Token {
                    tok: Tok::Punct("~"),
                    ..
                })
            )
            && self.next_is_adjacent();
        let op = match (word.as_str(), neg) {
            ("has", _) => Op::Has { neg, cs: false },
            ("has_cs", _) => Op::Has { neg, cs: true },
            ("has_any", false) => Op::HasAny,
            ("has_all", false) => Op::HasAll,
            ("contains", _) => Op::Contains { neg, cs: false },
            ("contains_cs", _) => Op::Contains { neg, cs: true },
            ("startswith", _) => Op::StartsWith { neg, cs: false },
            ("startswith_cs", _) => Op::StartsWith { neg, cs: true },
            ("endswith", _) => Op::EndsWith { neg, cs: false },
            ("endswith_cs", _) => Op::EndsWith { neg, cs: true },
            ("in", _) => Op::In { neg, ci: tilde },
            ("matches", false) => Op::MatchesRegex,
            _ => {
                let shown = if neg {
                    format!("!{word}")
                } else {
                    word.clone()
                };
                return self.err(
                    pos,
                    format!(
                        "operator `{shown}` is not supported (supported: ==, !=, =~, !~, <, <=, >, >=, has, !has, has_cs, !has_cs, has_any, has_all, contains, !contains, contains_cs, !contains_cs, startswith, !startswith, startswith_cs, !startswith_cs, endswith, !endswith, endswith_cs, !endswith_cs, in, !in, in~, !in~, matches regex)"
                    ),
                );
            }
        };
        self.i += 1;
        if tilde {
            self.i += 1;
        }
        if op == Op::MatchesRegex {
            if !self.is_ident("regex") {
                return self.err(
                    self.pos(),
                    format!("expected `regex` after `matches`, found {}", self.found()),
                );
            }
            self.i += 1;
        }
        Ok((op, pos))
    }

    /// One value: a literal, a `let` name, `ago(…)`/`now()`.
    fn scalar_rhs(&mut self, op: Op) -> PResult<Rhs> {
        let pos = self.pos();
        if let Some(lit) = self.literal() {
            return Ok(Rhs::One(lit, pos));
        }
        if let Some(Tok::Ident(name)) = self.peek_tok().cloned() {
            if (name == "ago" || name == "now")
                && self
                    .toks
                    .get(self.i + 1)
                    .is_some_and(|t| t.tok == Tok::Punct("("))
            {
                self.i += 2;
                let mut depth = 1;
                while depth > 0 {
                    match self.next().map(|t| &t.tok) {
                        Some(Tok::Punct("(")) => depth += 1,
                        Some(Tok::Punct(")")) => depth -= 1,
                        Some(_) => {}
                        None => return self.err(pos, format!("`{name}(` is not closed")),
                    }
                }
                return Ok(Rhs::Time {
                    pos,
                    ago: name == "ago",
                });
            }
            self.i += 1;
            return match self.lets.get(&name) {
                Some(LetVal::One(lit)) => Ok(Rhs::One(lit.clone(), pos)),
                Some(LetVal::List(_)) => self.err(
                    pos,
                    format!("`{name}` is a list; `{}` compares with one value (use `in`, `has_any` or `has_all` for lists)", op.as_kql()),
                ),
                None => self.err(
                    pos,
                    format!("`{name}` is neither a literal nor a `let` name; comparing two columns or calling functions is not supported"),
                ),
            };
        }
        self.err(pos, format!("expected a value, found {}", self.found()))
    }

    /// `( item, … )` where an item is a literal, a `let` name (a list is
    /// spliced in) or `dynamic([…])`.
    fn list_rhs(&mut self, op: Op) -> PResult<Rhs> {
        let open = self.pos();
        if !self.is_punct("(") {
            return self.err(
                open,
                format!(
                    "expected `(` and a list after `{}`, found {}",
                    op.as_kql(),
                    self.found()
                ),
            );
        }
        self.i += 1;
        let mut items = Vec::new();
        if !self.is_punct(")") {
            loop {
                let pos = self.pos();
                if let Some(lit) = self.literal() {
                    items.push((lit, pos));
                } else if self.is_ident("dynamic") {
                    items.extend(self.dynamic_list()?.into_iter().map(|l| (l, pos)));
                } else if let Some(Tok::Ident(name)) = self.peek_tok().cloned() {
                    match self.lets.get(&name) {
                        Some(LetVal::One(l)) => items.push((l.clone(), pos)),
                        Some(LetVal::List(v)) => items.extend(v.iter().map(|l| (l.clone(), pos))),
                        None => {
                            return self.err(
                                pos,
                                format!("`{name}` is not a `let` name; list items must be literals or `let` lists"),
                            )
                        }
                    }
                    self.i += 1;
                } else {
                    return self.err(pos, format!("expected a list item, found {}", self.found()));
                }
                if self.is_punct(",") {
                    self.i += 1;
                    continue;
                }
                break;
            }
        }
        self.expect_punct(")", "to close the list")?;
        if items.is_empty() {
            return self.err(open, "the list is empty");
        }
        Ok(Rhs::List(items))
    }
}
