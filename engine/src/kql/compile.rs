//! A parsed query to the rule IR, with Kusto's semantics for each operator.
//!
//! | KQL | IR | case |
//! |---|---|---|
//! | `==`, `!=` | `Str Equals` (`!=`: under `Not`) | sensitive |
//! | `=~`, `!~` | `Str Equals` | insensitive |
//! | `has`, `!has`, `has_cs`, `!has_cs` | `Str Term` | `_cs`: sensitive |
//! | `has_any`, `has_all` | `Or` / `And` of `Str Term` | insensitive |
//! | `contains`, `startswith`, `endswith` (and `!`, `_cs`) | `Str Contains`/`Prefix`/`Suffix` | `_cs`: sensitive |
//! | `in`, `!in` / `in~`, `!in~` | `Or` of `Str Equals` | sensitive / insensitive |
//! | `matches regex` | `Regex` | sensitive |
//! | `<`, `<=`, `>`, `>=`, `==` on a number column | `Num` (`!=`: `Not(Num ==)`) | — |
//! | `isempty`, `isnotempty` | `Null`, `Not(Null)` | — |
//!
//! `not(…)` is pushed down to the comparisons, so that a number the event
//! lacks is null as in Kusto (`not(ProcessId > 5)` does not hold without a
//! `ProcessId`). Kusto strings are never null: a column trawl's event does
//! not carry is the empty string, so `X == ""` is `Null` (absent or empty) and a negated
//! test holds on an absent field. Comparing with the empty string is handled
//! here, as Kusto defines it (`contains ""` always holds, `has ""` is
//! reported). A string literal compared with a number column is read as a
//! number, as Kusto converts it (`EventID == '4688'` in Microsoft's Sentinel
//! queries).

use crate::event::parse_number;
use crate::rule::{Atom, Expr, FieldTarget, NumOp, StrOp, Test};

use super::lexer::Pos;
use super::parser::{Col, Lit, Node, Op, Rhs};
use super::schema::{ColType, Column, Source, Table};

/// A compile error: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub pos: Pos,
    pub msg: String,
}

type CResult<T> = Result<T, CompileError>;

fn err<T>(pos: Pos, msg: impl Into<String>) -> CResult<T> {
    Err(CompileError {
        pos,
        msg: msg.into(),
    })
}

/// Compiles the ANDed `where` conditions of one query. Top-level
/// `Timestamp > ago(…)` (or `>=`) conjuncts, which hold for every event as
/// it happens, are dropped and returned as positions, for a warning; any
/// other time condition is an error.
pub fn compile_filters(table: &Table, filters: &[Node]) -> CResult<(Expr, Vec<Pos>)> {
    let mut conjuncts = Vec::new();
    let mut dropped = Vec::new();
    for f in filters {
        let parts: Vec<&Node> = match f {
            Node::And(v) => v.iter().collect(),
            other => vec![other],
        };
        for n in parts {
            if let Node::Cmp {
                col,
                op: Op::Gt | Op::Ge,
                rhs: Rhs::Time { ago: true, .. },
                ..
            } = n
            {
                if matches!(resolve(table, col)?.source, Source::Time) {
                    dropped.push(col.pos);
                    continue;
                }
            }
            conjuncts.push(node(table, n, false)?);
        }
    }
    Ok((simplify(Expr::And(conjuncts)), dropped))
}

/// Folds constants (`EventID == 4688` is true for every row trawl has) and
/// one-element groups.
fn simplify(e: Expr) -> Expr {
    match e {
        Expr::And(v) => {
            let mut out = Vec::new();
            for e in v.into_iter().map(simplify) {
                match e {
                    Expr::Const(true) => {}
                    Expr::Const(false) => return Expr::Const(false),
                    Expr::And(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Expr::Const(true),
                1 => out.pop().expect("one"),
                _ => Expr::And(out),
            }
        }
        Expr::Or(v) => {
            let mut out = Vec::new();
            for e in v.into_iter().map(simplify) {
                match e {
                    Expr::Const(false) => {}
                    Expr::Const(true) => return Expr::Const(true),
                    Expr::Or(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Expr::Const(false),
                1 => out.pop().expect("one"),
                _ => Expr::Or(out),
            }
        }
        Expr::Not(e) => match simplify(*e) {
            Expr::Const(b) => Expr::Const(!b),
            other => Expr::Not(Box::new(other)),
        },
        other => other,
    }
}

fn resolve<'t>(table: &'t Table, col: &Col) -> CResult<&'t Column> {
    table.column(&col.name).ok_or_else(|| CompileError {
        pos: col.pos,
        msg: format!(
            "`{}` is not a column of {} that trawl can fill (it fills: {})",
            col.name,
            table.name,
            table.column_names()
        ),
    })
}

/// One condition, or (`negated`) the condition that it is *false*.
///
/// Kusto's logic has three values: a comparison with a null number (a
/// `ProcessId` the event lacks) is null, except that `==` gives false and
/// `!=` true (Microsoft, *Null values*); `where` keeps a row only when its
/// condition is true, and `not(null)` is null. So `not(ProcessId > 5)` must
/// not hold on a row without `ProcessId`, which the two-valued IR's
/// `Not(ProcessId > 5)` would. Negations are therefore pushed down to the
/// comparisons (De Morgan), where "false" is the complementary comparison
/// (`ProcessId <= 5`), which a missing number fails as Kusto's null does.
/// Strings are never null in Kusto, so a negated string test is `Not`.
fn node(table: &Table, n: &Node, negated: bool) -> CResult<Expr> {
    let all =
        |v: &[Node]| -> CResult<Vec<Expr>> { v.iter().map(|n| node(table, n, negated)).collect() };
    let not_if = |e: Expr| if negated { not(e) } else { e };
    match n {
        Node::And(v) if negated => Ok(Expr::Or(all(v)?)),
        Node::And(v) => Ok(Expr::And(all(v)?)),
        Node::Or(v) if negated => Ok(Expr::And(all(v)?)),
        Node::Or(v) => Ok(Expr::Or(all(v)?)),
        Node::Not(e) => node(table, e, !negated),
        Node::Func { name, col, .. } => func(table, name, col).map(not_if),
        Node::Cmp {
            col,
            op,
            op_pos,
            rhs,
        } => {
            let column = resolve(table, col)?;
            if let Rhs::Time { pos, .. } = rhs {
                return err(
                    *pos,
                    "time conditions are not evaluated on the endpoint; only `Timestamp > ago(…)` as a whole `where` condition is accepted (and ignored)",
                );
            }
            match (&column.source, column.ty) {
                (Source::Time, _) => err(
                    col.pos,
                    format!(
                        "`{}` can only be compared with `ago(…)` as a whole `where` condition (which is ignored: on the endpoint every event is current)",
                        col.name
                    ),
                ),
                (Source::Const(v), _) => Ok(Expr::Const(
                    const_cmp(*v, col, *op, *op_pos, rhs)? != negated,
                )),
                (_, ColType::Long) => number_cmp(column, col, *op, *op_pos, rhs, negated),
                (_, ColType::String) => string_cmp(column, col, *op, *op_pos, rhs).map(not_if),
            }
        }
    }
}

fn target(column: &Column) -> FieldTarget {
    match &column.source {
        Source::Field(k) => FieldTarget::Field(k.clone()),
        Source::Derived(d) => FieldTarget::Derived(d.clone()),
        Source::Const(_) | Source::Time => unreachable!("constants are folded, times dropped"),
    }
}

fn atom(column: &Column, test: Test) -> Expr {
    Expr::Atom(Atom {
        target: target(column),
        test,
    })
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn func(table: &Table, name: &str, col: &Col) -> CResult<Expr> {
    let column = resolve(table, col)?;
    let empty = match (&column.source, column.ty) {
        (Source::Const(_), _) => Expr::Const(false),
        (Source::Time, _) => {
            return err(
                col.pos,
                format!("`{}` is not evaluated on the endpoint", col.name),
            )
        }
        // A Kusto string is never null, only empty.
        (_, ColType::String) if name == "isnull" => return Ok(Expr::Const(false)),
        (_, ColType::String) if name == "isnotnull" => return Ok(Expr::Const(true)),
        _ => atom(column, Test::Null),
    };
    Ok(match name {
        "isempty" | "isnull" => empty,
        _ => not(empty),
    })
}

/// A literal as a number, for number columns (Kusto converts a numeric
/// string).
fn as_number(lit: &Lit, pos: Pos, col: &Col) -> CResult<f64> {
    match lit {
        Lit::Num(n) => Ok(*n),
        Lit::Str(s) => parse_number(s).ok_or_else(|| CompileError {
            pos,
            msg: format!("`{}` is a number; {s:?} is not one", col.name),
        }),
        Lit::Bool(_) => err(pos, format!("`{}` is a number, not a bool", col.name)),
    }
}

fn num_op(op: Op) -> Option<NumOp> {
    Some(match op {
        Op::Eq => NumOp::Eq,
        Op::Ne => NumOp::Ne,
        Op::Lt => NumOp::Lt,
        Op::Le => NumOp::Lte,
        Op::Gt => NumOp::Gt,
        Op::Ge => NumOp::Gte,
        _ => return None,
    })
}

fn number_op_error<T>(col: &Col, op: Op, op_pos: Pos) -> CResult<T> {
    err(
        op_pos,
        format!(
            "`{}` is a number: `{}` needs a string column (use ==, !=, <, <=, >, >=, in, !in)",
            col.name,
            op.as_kql()
        ),
    )
}

fn const_cmp(value: i64, col: &Col, op: Op, op_pos: Pos, rhs: &Rhs) -> CResult<bool> {
    let v = value as f64;
    match (op, rhs) {
        (Op::In { neg, ci: false }, Rhs::List(items)) => {
            let mut any = false;
            for (l, p) in items {
                any |= as_number(l, *p, col)? == v;
            }
            Ok(any != neg)
        }
        (_, Rhs::One(l, p)) => match num_op(op) {
            Some(n) => Ok(n.apply(v, as_number(l, *p, col)?)),
            None => number_op_error(col, op, op_pos),
        },
        _ => number_op_error(col, op, op_pos),
    }
}

/// A comparison on a number column, or (`negated`) the condition that it
/// is false, with Kusto's null rules (see [`node`]): `==` and `in` are false
/// on a missing number, `!=` and `!in` true, and the ordered comparisons
/// neither true nor false.
fn number_cmp(
    column: &Column,
    col: &Col,
    op: Op,
    op_pos: Pos,
    rhs: &Rhs,
    negated: bool,
) -> CResult<Expr> {
    let num = |op: NumOp, l: &Lit, p: Pos| -> CResult<Expr> {
        Ok(atom(
            column,
            Test::Num {
                op,
                value: as_number(l, p, col)?,
            },
        ))
    };
    match (op, rhs) {
        (Op::In { neg, ci: false }, Rhs::List(items)) => {
            let any = Expr::Or(
                items
                    .iter()
                    .map(|(l, p)| num(NumOp::Eq, l, *p))
                    .collect::<CResult<_>>()?,
            );
            Ok(if neg != negated { not(any) } else { any })
        }
        (Op::Eq | Op::Ne, Rhs::One(l, p)) => {
            let eq = num(NumOp::Eq, l, *p)?;
            Ok(if (op == Op::Ne) != negated {
                not(eq)
            } else {
                eq
            })
        }
        (_, Rhs::One(l, p)) => {
            let op = match (op, negated) {
                (Op::Lt, false) | (Op::Ge, true) => NumOp::Lt,
                (Op::Le, false) | (Op::Gt, true) => NumOp::Lte,
                (Op::Gt, false) | (Op::Le, true) => NumOp::Gt,
                (Op::Ge, false) | (Op::Lt, true) => NumOp::Gte,
                _ => return number_op_error(col, op, op_pos),
            };
            num(op, l, *p)
        }
        _ => number_op_error(col, op, op_pos),
    }
}

fn text<'l>(lit: &'l Lit, pos: Pos, col: &Col) -> CResult<&'l str> {
    match lit {
        Lit::Str(s) => Ok(s),
        Lit::Num(n) => err(
            pos,
            format!(
                "`{}` is a string; compare it with a string (\"{n}\"), not a number",
                col.name
            ),
        ),
        Lit::Bool(b) => err(
            pos,
            format!(
                "`{}` is a string; compare it with a string, not `{b}`",
                col.name
            ),
        ),
    }
}

fn string_cmp(column: &Column, col: &Col, op: Op, op_pos: Pos, rhs: &Rhs) -> CResult<Expr> {
    // A positioned literal; the empty needle as Kusto reads it.
    let str_test = |sop: StrOp, cased: bool, value: &str, pos: Pos| -> CResult<Expr> {
        if value.is_empty() {
            return match sop {
                StrOp::Equals => Ok(atom(column, Test::Null)),
                StrOp::Term => err(
                    pos,
                    "`has` needs a term: the empty string is not one (use isempty())",
                ),
                _ => Ok(Expr::Const(true)),
            };
        }
        Ok(atom(
            column,
            Test::Str {
                op: sop,
                value: value.to_owned(),
                cased,
            },
        ))
    };
    let one = |sop: StrOp, cased: bool, neg: bool| -> CResult<Expr> {
        let Rhs::One(l, p) = rhs else {
            return err(op_pos, format!("`{}` compares with one value", op.as_kql()));
        };
        let e = str_test(sop, cased, text(l, *p, col)?, *p)?;
        Ok(if neg { not(e) } else { e })
    };
    let list = |sop: StrOp, cased: bool| -> CResult<Vec<Expr>> {
        let Rhs::List(items) = rhs else {
            return err(op_pos, format!("`{}` needs a list", op.as_kql()));
        };
        items
            .iter()
            .map(|(l, p)| str_test(sop, cased, text(l, *p, col)?, *p))
            .collect()
    };
    match op {
        Op::Eq => one(StrOp::Equals, true, false),
        Op::Ne => one(StrOp::Equals, true, true),
        Op::EqCi => one(StrOp::Equals, false, false),
        Op::NeCi => one(StrOp::Equals, false, true),
        Op::Has { neg, cs } => one(StrOp::Term, cs, neg),
        Op::Contains { neg, cs } => one(StrOp::Contains, cs, neg),
        Op::StartsWith { neg, cs } => one(StrOp::Prefix, cs, neg),
        Op::EndsWith { neg, cs } => one(StrOp::Suffix, cs, neg),
        Op::HasAny => Ok(Expr::Or(list(StrOp::Term, false)?)),
        Op::HasAll => Ok(Expr::And(list(StrOp::Term, false)?)),
        Op::In { neg, ci } => {
            let any = Expr::Or(list(StrOp::Equals, !ci)?);
            Ok(if neg { not(any) } else { any })
        }
        Op::MatchesRegex => {
            let Rhs::One(l, p) = rhs else {
                return err(op_pos, "`matches regex` needs one pattern");
            };
            let pattern = text(l, *p, col)?;
            if let Err(e) = regex_syntax::Parser::new().parse(pattern) {
                return err(
                    *p,
                    format!(
                        "the regex does not parse: {}",
                        e.to_string().replace('\n', " ")
                    ),
                );
            }
            Ok(atom(
                column,
                Test::Regex {
                    pattern: pattern.to_owned(),
                    case_insensitive: false,
                    multi_line: false,
                    dot_all: false,
                },
            ))
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => err(
            op_pos,
            format!(
                "`{}` is a string: `{}` compares numbers",
                col.name,
                op.as_kql()
            ),
        ),
    }
}
