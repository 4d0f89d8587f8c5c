//! KQL hunting queries as rules: a table and its `where` filters, compiled
//! into the same rule IR (and so the same per-field automata) as Sigma rules.
//!
//! A `.kql` file holds one query, as an analyst pastes it from a threat report
//! or from Microsoft Sentinel: optional `let NAME = dynamic([...]);` lists and
//! `let NAME = "...";` values, a table (`DeviceProcessEvents`,
//! `DeviceFileEvents`, or `SecurityEvent`; see [`schema`] for how their
//! columns map onto trawl's events), then `| where` clauses, which are ANDed.
//! The operators are Kusto's, with Kusto's case rules (see [`compile`]); `has`
//! is a whole-term match, terms being maximal runs of ASCII letters and digits
//! (Microsoft, *String operators*,
//! <https://learn.microsoft.com/azure/data-explorer/kusto/query/datatypes-string-operators>),
//! checked on each automaton hit rather than by a second scan.
//!
//! Header comments at the top name the rule: `// title: …`, `// id: …`,
//! `// level: …` (a Sigma level; `medium` when absent). Without them the id is
//! `kql:<file stem>` and the title the file stem.
//!
//! What is outside the subset is reported with its line and column and a
//! plain reason, and the rule is not loaded: a `union` of tables, a stage
//! other than `where` before the filter, unknown or unfillable columns,
//! functions other than `not()`, `isempty()`, `isnotempty()`, `isnull()`,
//! `isnotnull()`, nesting deeper than 64 levels, and a filter that holds for
//! every row (it would alert on every event) or for none. A query whose filter is supported but which goes on with
//! `project`, `extend`, `join`, `summarize`, … loads with a warning (a
//! [`LineProblem`]) that only its filter runs on the endpoint; so does one
//! with `Timestamp > ago(…)`, which is dropped.
//!
//! ```
//! use trawl_engine::kql;
//!
//! let load = kql::parse_str(
//!     "// title: PAExec\nDeviceProcessEvents\n| where FileName =~ \"paexec.exe\"\n| project DeviceName\n",
//!     "rules/paexec.kql",
//! );
//! assert_eq!(load.rules[0].id, "kql:paexec");
//! assert_eq!(load.rules[0].title, "PAExec");
//! assert_eq!(load.problems[0].line, 4);
//! assert!(load.problems[0].reason.contains("only the `where` filter runs"));
//! ```

pub mod compile;
pub mod lexer;
pub mod parser;
pub mod schema;

#[cfg(test)]
mod tests;

use std::path::Path;

use crate::load::{LineProblem, RuleLoad};
use crate::rule::Expr;
use crate::rule::{KindSet, Level, Rule, RuleBody, Scope, Unsupported};

use lexer::Pos;

/// The level of a rule whose header names none.
const DEFAULT_LEVEL: Level = Level::Medium;

/// Header comments: `// title:`, `// id:`, `// level:`.
#[derive(Debug, Default)]
struct Header {
    id: Option<String>,
    title: Option<String>,
    level: Option<Level>,
    /// Lines whose `// level:` is not a level.
    bad_levels: Vec<(usize, String)>,
}

/// Reads the comment lines before the query's first token.
fn header(text: &str) -> Header {
    let mut h = Header::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim().trim_start_matches('\u{FEFF}');
        if t.is_empty() {
            continue;
        }
        let Some(comment) = t.strip_prefix("//") else {
            break;
        };
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "id" if !value.is_empty() => h.id = Some(value.to_owned()),
            "title" if !value.is_empty() => h.title = Some(value.to_owned()),
            "level" => match Level::parse(value) {
                Some(l) => h.level = Some(l),
                None => h.bad_levels.push((i + 1, value.to_owned())),
            },
            _ => {}
        }
    }
    h
}

/// Parses one `.kql` file's text. `origin` is its path (or `embedded:…`);
/// the default id and title come from its file stem. Never fails: a query
/// outside the subset comes back as an [`Unsupported`] entry whose reason
/// starts with `line L, column C:`.
pub fn parse_str(text: &str, origin: &str) -> RuleLoad {
    let stem = Path::new(origin)
        .file_stem()
        .map_or_else(|| origin.to_owned(), |s| s.to_string_lossy().into_owned());
    let h = header(text);
    let id = h.id.clone().unwrap_or_else(|| format!("kql:{stem}"));
    let title = h.title.clone().unwrap_or_else(|| stem.clone());
    let level = h.level.unwrap_or(DEFAULT_LEVEL);
    let mut load = RuleLoad {
        files: 1,
        ..Default::default()
    };
    let problem = |line: usize, reason: String| LineProblem {
        path: origin.to_owned(),
        line,
        reason,
    };
    for (line, value) in &h.bad_levels {
        load.problems.push(problem(
            *line,
            format!(
                "`{value}` is not a Sigma level (informational, low, medium, high, critical); using {}",
                level.as_str()
            ),
        ));
    }
    let unsupported = |pos: Pos, msg: String, out_of_scope: bool| Unsupported {
        path: origin.to_owned(),
        id: Some(id.clone()),
        title: Some(title.clone()),
        reason: format!("{pos}: {msg}"),
        out_of_scope,
    };
    let query = lexer::lex(text)
        .map_err(|e| (e.pos, e.msg))
        .and_then(|toks| {
            // Something missing at the end is reported just after the last
            // token, not past trailing blank lines and comments.
            let end = toks.last().map_or(Pos { line: 1, col: 1 }, |t| t.after);
            parser::parse(&toks, end).map_err(|e| (e.pos, e.msg))
        });
    let query = match query {
        Ok(q) => q,
        Err((pos, msg)) => {
            load.unsupported.push(unsupported(pos, msg, false));
            return load;
        }
    };
    let Some(table) = schema::table(&query.table) else {
        // A known table spelt in another case is a typo, not another source.
        let typo = schema::TABLES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&query.table));
        let (msg, out_of_scope) = match typo {
            Some(t) => (
                format!(
                    "table `{}` is not known: table names are case-sensitive; did you mean `{t}`?",
                    query.table
                ),
                false,
            ),
            None => (
                format!(
                    "table `{}` is not one trawl produces rows for (it has: {})",
                    query.table,
                    schema::TABLES.join(", ")
                ),
                true,
            ),
        };
        load.unsupported
            .push(unsupported(query.table_pos, msg, out_of_scope));
        return load;
    };
    let (expr, dropped) = match compile::compile_filters(&table, &query.filters) {
        Ok(x) => x,
        Err(e) => {
            load.unsupported.push(unsupported(e.pos, e.msg, false));
            return load;
        }
    };
    if let Expr::Const(holds) = expr {
        // `SecurityEvent` rows other than 4688 are another log source; any
        // other constant filter is a query that cannot work as a rule.
        let other_events = table.name == "SecurityEvent" && !holds;
        let msg = match (holds, other_events) {
            (false, true) => "the filter holds for no row trawl produces for SecurityEvent (its `SecurityEvent` rows are process creations, EventID 4688)".to_owned(),
            (false, false) => format!("the filter holds for no {} row (a condition such as `!contains \"\"` is always false)", table.name),
            (true, _) => format!(
                "the filter holds for every {} row{}: as a rule it would alert on every event; add a condition on what to detect",
                table.name,
                if dropped.is_empty() { "" } else { " once its time condition is ignored" }
            ),
        };
        load.unsupported
            .push(unsupported(query.table_pos, msg, other_events));
        return load;
    }
    for pos in dropped {
        load.problems.push(problem(
            pos.line as usize,
            format!(
                "column {}: the time condition is ignored: on the endpoint every event is current (warning; the rule loads)",
                pos.col
            ),
        ));
    }
    if let Some(tail) = &query.tail {
        let mut reason = format!(
            "column {}: only the `where` filter runs on the endpoint; `{}` and everything after it are not evaluated (warning; the rule loads)",
            tail.pos.col, tail.op
        );
        if !tail.later_wheres.is_empty() {
            let at: Vec<String> = tail.later_wheres.iter().map(|p| p.to_string()).collect();
            reason += &format!(
                "; the `where` at {} is skipped too, so the rule can alert on rows the full query drops",
                at.join(" and ")
            );
        }
        load.problems.push(problem(tail.pos.line as usize, reason));
    }
    load.rules.push(Rule {
        id,
        title,
        level,
        tags: vec![],
        origin: origin.to_owned(),
        scope: Scope {
            kinds: KindSet::of(table.kinds),
            os: table.os,
        },
        body: RuleBody::Expr(expr),
    });
    load
}
