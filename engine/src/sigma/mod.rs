//! The Sigma front end: Sigma rule YAML to trawl's rule IR.
//!
//! [`parse_str`] reads one file's text (one or more YAML documents) and returns
//! the [`Rule`]s it could build plus an [`Unsupported`] entry, with a reason a
//! rule author can act on, for every document it could not. It never panics
//! and never gives up on a whole file because of one bad document.
//!
//! Semantics follow the Sigma specification v2, with pySigma as the reference
//! where the text is silent:
//!
//! - `logsource` becomes a [`Scope`]: `process_creation` is
//!   [`EventKind::ProcessStart`], `file_event` is `FileCreate`/`FileWrite`,
//!   `file_rename` and `file_delete` are their kinds; `product` `windows` or
//!   `linux` pins the OS, no product means either. Anything else is
//!   *out of scope* (`Unsupported::out_of_scope`): a rule for events trawl does
//!   not produce, not a broken rule.
//! - Each `detection` key but `condition` (and `timeframe`) is a selection: a
//!   map is an AND of its `field|modifiers: value(s)` entries, a list of maps
//!   an OR of them, a list of plain values (or one plain value) *keywords*,
//!   looked for in any field.
//! - Values match whole fields case-insensitively, with `*`/`?` wildcards and
//!   `\*`, `\?`, `\\` escapes (any other backslash is literal, so
//!   `C:\Windows\*` is the literal text `C:\Windows*`; a folder prefix is
//!   `C:\Windows\\*`). A value whose only wildcards are a leading and/or
//!   trailing `*` becomes a positional string test (which the matcher
//!   indexes), anything else a glob.
//! - The condition (`and`, `or`, `not`, parentheses, `1 of`/`any of`/`all of`
//!   a pattern or `them`) is resolved into one [`Expr`]; a list of conditions
//!   is their OR. Aggregations (`| count() …`, `| near …`) are not supported.
//! - Old-style collections (`action: global` / `reset` / `repeat`) are merged
//!   as pySigma merges them.
//!
//! Modifiers apply left to right, each to every value:
//!
//! | modifier | effect |
//! | --- | --- |
//! | `contains`, `startswith`, `endswith` | add `*` around / after / before the value |
//! | `all` | AND the values instead of OR |
//! | `neq` | negate the whole entry |
//! | `windash` | each `-`/`/` that starts a word becomes each of `-` `/` `–` `—` `―` (all combinations, OR-linked even under `all`) |
//! | `re` (+ `i`, `m`, `s`) | a regex, case-sensitive unless `i`; it must be valid Rust `regex` syntax (PCRE literals that Rust reads differently, such as `\<`, are escaped) |
//! | `cased` | string tests become case-sensitive |
//! | `exists` | `true`/`false`: the field is present / absent |
//! | `wide` = `utf16le`, `utf16be`, `utf16` (BOM + LE) | re-encode the text as UTF-16 bytes |
//! | `base64` | the standard base64 encoding, padding included |
//! | `base64offset` | the three encodings the value can have inside a base64 stream (pySigma's cut), OR-linked |
//! | `fieldref` | compare with another field (`contains`/`startswith`/`endswith` after it pick the position) |
//! | `lt`, `lte`, `gt`, `gte` | numeric comparison |
//! | `cidr` | the field is an IP address in the IPv4/IPv6 network |
//!
//! `expand` (placeholders), the time modifiers (`hour`, `day`, …) and unknown
//! modifiers make the rule [`Unsupported`], as does a final value that is not
//! UTF-8 text (e.g. `utf16` without `base64`).
//!
//! Choices where the spec leaves room:
//!
//! - Keywords are substring searches: a keyword without wildcards is looked
//!   for anywhere in any field (`*foo*`), also after `all`, `neq`, `cased`,
//!   `windash` and the encoding modifiers. A keyword with wildcards, or with
//!   a positional or typing modifier (`startswith`, `re`, …), is matched as
//!   written.
//! - An empty value list (`Field: []`) means the field is null, as in pySigma.
//! - Numbers match by their decimal text, booleans as `true`/`false`, `null`
//!   by [`Test::Null`](crate::rule::Test::Null) (absent, null or empty).
//!   Numbers and booleans may take string modifiers (`contains` etc.) by that
//!   text, and `lt`/`gt` take numeric strings; pySigma refuses both.
//! - `1 of sel*` patterns match whole selection names (pySigma only anchors
//!   the start), and skip names starting with `_` unless the pattern does too.
//! - `re|startswith` / `re|endswith` anchor the regex (`\A(?:…)`, `(?:…)\z`);
//!   `re|contains` leaves it as is, since trawl's regexes are unanchored.
//! - `base64offset` of a 1-byte value is refused: one of its encodings would
//!   be empty and match everything.
//!
//! ```
//! use trawl_engine::rule::{Expr, RuleBody};
//! use trawl_engine::sigma::parse_str;
//!
//! let load = parse_str(r#"
//! title: PsExec service binary started
//! id: 42c575ea-e41e-41f1-b248-8093c3e82a28
//! level: high
//! tags: [attack.execution]
//! logsource: { product: windows, category: process_creation }
//! detection:
//!     selection:
//!         Image|endswith: '\PSEXESVC.exe'
//!     filter_system:
//!         User|contains: [AUTHORI, AUTORI]
//!     condition: selection and not filter_system
//! "#, "rules/psexec.yml");
//! assert!(load.unsupported.is_empty());
//! let rule = &load.rules[0];
//! assert_eq!(rule.id, "42c575ea-e41e-41f1-b248-8093c3e82a28");
//! assert_eq!(rule.origin, "rules/psexec.yml");
//! let RuleBody::Expr(Expr::And(parts)) = &rule.body else { panic!() };
//! assert_eq!(parts.len(), 2);
//!
//! let load = parse_str("title: x\nlogsource: {category: registry_set, product: windows}\n\
//!                       detection: {sel: {a: b}, condition: sel}", "reg.yml");
//! assert!(load.unsupported[0].out_of_scope);
//! ```

mod condition;
#[cfg(test)]
mod corpus;
mod pcre;
mod peek;
mod value;
mod yaml;

use std::panic::{catch_unwind, AssertUnwindSafe};

use yaml_rust2::yaml::Hash;
use yaml_rust2::{ScanError, Yaml};

use crate::event::{EventKind, Os};
use crate::rule::{Expr, KindSet, Level, Rule, RuleBody, Scope, Unsupported};

use value::{Item, Val};

/// What loading one file of Sigma text produced.
#[derive(Debug, Clone, Default)]
pub struct SigmaLoad {
    /// The rules that were built, in document order.
    pub rules: Vec<Rule>,
    /// One entry per document (or per file, for a YAML syntax error) that did
    /// not become a rule, with the reason.
    pub unsupported: Vec<Unsupported>,
}

/// Parses one Sigma file's text, which may hold several `---` documents.
///
/// `origin` names the file: it becomes [`Rule::origin`] and
/// [`Unsupported::path`], with `#N` (the 1-based document number) appended
/// when the file holds more than one document. A rule without an `id` gets
/// `path:<origin>` as its id.
///
/// Never panics: any problem becomes an [`Unsupported`] and the other
/// documents still load. A YAML syntax error makes one [`Unsupported`] for the
/// whole file, with the line and column.
pub fn parse_str(text: &str, origin: &str) -> SigmaLoad {
    let mut load = SigmaLoad::default();
    if let Some(out) = peek::out_of_scope(text) {
        load.unsupported.push(Unsupported {
            path: origin.to_owned(),
            id: out.id,
            title: out.title,
            reason: out.reason,
            out_of_scope: true,
        });
        return load;
    }
    parse_whole(text, origin, load)
}

/// [`parse_str`] without the peek at the log source: every document parsed.
fn parse_whole(text: &str, origin: &str, mut load: SigmaLoad) -> SigmaLoad {
    let docs = match load_yaml(text) {
        Ok(docs) => docs,
        Err(reason) => {
            load.unsupported.push(Unsupported {
                path: origin.to_owned(),
                id: None,
                title: None,
                reason,
                out_of_scope: false,
            });
            return load;
        }
    };
    // A trailing `---` leaves an empty document behind; it does not make a
    // single rule a collection.
    let multi = docs.iter().filter(|d| !matches!(d, Yaml::Null)).count() > 1;
    let mut global: Option<Hash> = None;
    let mut previous: Option<Hash> = None;
    for (i, doc) in docs.into_iter().enumerate() {
        let path = if multi {
            format!("{origin}#{}", i + 1)
        } else {
            origin.to_owned()
        };
        let fail = |doc: Option<&Hash>, reason: String| Unsupported {
            path: path.clone(),
            id: doc.and_then(|d| scalar_text(d.get(&key("id"))?)),
            title: doc.and_then(|d| scalar_text(d.get(&key("title"))?)),
            reason,
            out_of_scope: false,
        };
        let mut map = match doc {
            Yaml::Hash(h) => h,
            // An empty document (a trailing `---`) holds no rule.
            Yaml::Null => continue,
            _ => {
                load.unsupported.push(fail(
                    None,
                    "the YAML document is not a mapping of Sigma attributes".to_owned(),
                ));
                continue;
            }
        };
        // Old-style rule collections (Sigma 1.0), as pySigma's
        // `SigmaCollection.from_dicts` handles them.
        let action = map.remove(&key("action"));
        let merged = match action {
            None => {
                if let Some(g) = &global {
                    deep_update(&mut map, g);
                }
                map
            }
            Some(Yaml::String(a)) if a == "global" => {
                global = Some(map.clone());
                previous = Some(map);
                continue;
            }
            Some(Yaml::String(a)) if a == "reset" => {
                global = None;
                continue;
            }
            Some(Yaml::String(a)) if a == "repeat" => match &previous {
                Some(prev) => {
                    let mut base = prev.clone();
                    deep_update(&mut base, &map);
                    base
                }
                None => {
                    load.unsupported.push(fail(
                        Some(&map),
                        "`action: repeat` has no earlier document to repeat".to_owned(),
                    ));
                    continue;
                }
            },
            Some(other) => {
                let shown = scalar_text(&other).unwrap_or_else(|| "(not a string)".to_owned());
                load.unsupported.push(fail(
                    Some(&map),
                    format!(
                        "unknown collection `action: {shown}` (expected `global`, `reset` or \
                         `repeat`)"
                    ),
                ));
                continue;
            }
        };
        match build_rule(&merged, &path) {
            Ok(rule) => load.rules.push(rule),
            Err(problem) => {
                let mut u = fail(Some(&merged), problem.reason);
                u.out_of_scope = problem.out_of_scope;
                load.unsupported.push(u);
            }
        }
        previous = Some(merged);
    }
    load
}

/// Why one document did not become a rule.
struct Problem {
    reason: String,
    out_of_scope: bool,
}

impl From<String> for Problem {
    fn from(reason: String) -> Problem {
        Problem {
            reason,
            out_of_scope: false,
        }
    }
}

fn key(s: &str) -> Yaml {
    Yaml::String(s.to_owned())
}

/// A scalar's text (strings as they are, numbers and booleans spelled out).
fn scalar_text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// pySigma's `deep_dict_update`: `src`'s entries replace `dest`'s, except that
/// mappings present in both are merged recursively.
fn deep_update(dest: &mut Hash, src: &Hash) {
    for (k, v) in src {
        match (v, dest.get_mut(k)) {
            (Yaml::Hash(s), Some(Yaml::Hash(d))) => deep_update(d, s),
            _ => {
                dest.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Loads YAML text into documents ([`yaml::load`]: one pass, bounded).
fn load_yaml(text: &str) -> Result<Vec<Yaml>, String> {
    let syntax = |e: &ScanError| {
        format!(
            "YAML syntax error at line {} column {}: {}",
            e.marker().line(),
            e.marker().col() + 1,
            e.info()
        )
    };
    // yaml-rust2 is not known to panic, but it is third-party code handed
    // arbitrary input; one broken file must not take the loader down.
    catch_unwind(AssertUnwindSafe(|| {
        yaml::load(text).map_err(|e| syntax(&e))
    }))
    .unwrap_or_else(|_| Err("the YAML parser failed on this file (internal error)".to_owned()))
}

/// Builds one rule from a (merged) document.
fn build_rule(doc: &Hash, path: &str) -> Result<Rule, Problem> {
    for kind in ["correlation", "filter"] {
        if doc.contains_key(&key(kind)) {
            return Err(format!(
                "Sigma {kind} rules (documents with a top-level `{kind}`) are not supported; \
                 trawl loads detection rules only"
            )
            .into());
        }
    }
    let scope = scope(doc.get(&key("logsource")))?;
    let detection = doc
        .get(&key("detection"))
        .ok_or_else(|| "the rule has no `detection`".to_owned())?;
    let expr = detection_expr(detection)?;

    let id = match doc.get(&key("id")).and_then(scalar_text) {
        Some(id) if !id.trim().is_empty() => id,
        _ => format!("path:{path}"),
    };
    let title = doc
        .get(&key("title"))
        .and_then(scalar_text)
        .unwrap_or_default();
    let level = doc
        .get(&key("level"))
        .and_then(Yaml::as_str)
        .and_then(Level::parse)
        .unwrap_or(Level::Medium);
    let tags = match doc.get(&key("tags")) {
        Some(Yaml::Array(a)) => a.iter().filter_map(scalar_text).collect(),
        Some(other) => scalar_text(other).into_iter().collect(),
        None => Vec::new(),
    };
    Ok(Rule {
        id,
        title,
        level,
        tags,
        origin: path.to_owned(),
        scope,
        body: RuleBody::Expr(expr),
    })
}

/// `logsource` to the events trawl produces.
fn scope(logsource: Option<&Yaml>) -> Result<Scope, Problem> {
    let out_of_scope = |reason: String| Problem {
        reason,
        out_of_scope: true,
    };
    // A rule without a log source is malformed (pySigma rejects it too), not
    // merely for other events: say so, rather than count it out of scope.
    let ls = match logsource {
        Some(Yaml::Hash(h)) if !h.is_empty() => h,
        Some(Yaml::Hash(_)) => {
            return Err(
                "`logsource` is empty; name at least a `category` (e.g. process_creation) \
                        and a `product`"
                    .to_owned()
                    .into(),
            )
        }
        None | Some(Yaml::Null) => {
            return Err(
                "the rule has no `logsource`; add one with a `category` (e.g. \
                        process_creation) and a `product`"
                    .to_owned()
                    .into(),
            )
        }
        Some(_) => return Err("`logsource` must be a mapping".to_owned().into()),
    };
    let field = |name: &str| -> Result<Option<String>, Problem> {
        match ls.get(&key(name)) {
            None | Some(Yaml::Null) => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`logsource.{name}` must be a string").into()),
        }
    };
    let category = field("category")?;
    let product = field("product")?;
    let product_text = match &product {
        Some(p) => format!("product {p}"),
        None => "any product".to_owned(),
    };
    let kinds = match category.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("process_creation") => KindSet::of(&[EventKind::ProcessStart]),
        Some("file_event") => KindSet::of(&[EventKind::FileCreate, EventKind::FileWrite]),
        Some("file_rename") => KindSet::of(&[EventKind::FileRename]),
        Some("file_delete") => KindSet::of(&[EventKind::FileDelete]),
        Some(_) => {
            return Err(out_of_scope(format!(
                "logsource category `{}` ({product_text}) is not an event kind trawl produces",
                category.unwrap_or_default()
            )))
        }
        None => {
            let service = field("service")?
                .map(|s| format!(" (service `{s}`)"))
                .unwrap_or_default();
            return Err(out_of_scope(format!(
                "logsource has no category{service} ({product_text}); trawl produces only \
                 process_creation, file_event, file_rename and file_delete events"
            )));
        }
    };
    let os = match &product {
        None => None,
        Some(p) => match Os::parse(p) {
            Some(os) => Some(os),
            None => {
                return Err(out_of_scope(format!(
                    "logsource product `{p}` is not an OS trawl runs on (windows, linux)"
                )))
            }
        },
    };
    Ok(Scope { kinds, os })
}

/// The `detection` section to one expression.
fn detection_expr(detection: &Yaml) -> Result<Expr, String> {
    let Yaml::Hash(map) = detection else {
        return Err("`detection` must be a mapping of selections and a `condition`".to_owned());
    };
    let mut definitions: Vec<(String, &Yaml)> = Vec::new();
    let mut condition = None;
    for (k, v) in map {
        let name =
            scalar_text(k).ok_or_else(|| "a `detection` key is not a plain name".to_owned())?;
        match name.as_str() {
            "condition" => condition = Some(v),
            // Only meaningful with aggregations, which the condition rejects.
            "timeframe" => {}
            _ => definitions.push((name, v)),
        }
    }
    let condition = condition.ok_or_else(|| "`detection` has no `condition`".to_owned())?;
    let conditions: Vec<&str> = match condition {
        Yaml::String(s) => vec![s.as_str()],
        Yaml::Array(items) if !items.is_empty() => items
            .iter()
            .map(|c| {
                c.as_str()
                    .ok_or_else(|| "each entry of a `condition` list must be a string".to_owned())
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(
                "`condition` must be a string or a list of strings (quote a \
                        condition that YAML would read as a number or boolean)"
                    .to_owned(),
            )
        }
    };
    // Parse the condition first: an aggregation is the more useful reason.
    let parsed = conditions
        .iter()
        .map(|c| condition::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tests = 0usize;
    let mut selections = Vec::with_capacity(definitions.len());
    for (name, def) in definitions {
        let expr = selection_expr(def).map_err(|e| format!("selection `{name}`: {e}"))?;
        tests += expr.atom_count();
        if tests > value::MAX_RULE_TESTS {
            return Err(value::too_many_tests());
        }
        selections.push((name, expr));
    }
    let resolved = parsed
        .iter()
        .map(|c| c.resolve(&selections))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(simplify(Expr::Or(resolved)))
}

/// A selection (search identifier) to an expression, as pySigma's
/// `SigmaDetection.from_definition`.
fn selection_expr(def: &Yaml) -> Result<Expr, String> {
    match def {
        Yaml::Hash(map) => {
            if map.is_empty() {
                return Err("the selection is empty".to_owned());
            }
            let mut items = Vec::with_capacity(map.len());
            let mut tests = 0usize;
            for (k, v) in map {
                let field_key = scalar_text(k).ok_or_else(|| {
                    "a field name (the key before `:`) is not a plain string".to_owned()
                })?;
                let values = field_values(v).map_err(|e| format!("`{field_key}`: {e}"))?;
                let item = Item::new(Some(&field_key), values)
                    .map_err(|e| format!("`{field_key}`: {e}"))?;
                let expr = item.to_expr().map_err(|e| format!("`{field_key}`: {e}"))?;
                tests += expr.atom_count();
                if tests > value::MAX_RULE_TESTS {
                    return Err(value::too_many_tests());
                }
                items.push(expr);
            }
            Ok(Expr::And(items))
        }
        Yaml::Array(list) => {
            if list.is_empty() {
                return Err("the selection is an empty list".to_owned());
            }
            if list.iter().all(is_scalar) {
                let values = list.iter().map(scalar_val).collect::<Result<_, _>>()?;
                return Item::new(None, values)?.to_expr();
            }
            Ok(Expr::Or(
                list.iter().map(selection_expr).collect::<Result<_, _>>()?,
            ))
        }
        scalar if is_scalar(scalar) => Item::new(None, vec![scalar_val(scalar)?])?.to_expr(),
        _ => Err("a selection must be a mapping, a list, or a keyword".to_owned()),
    }
}

fn is_scalar(y: &Yaml) -> bool {
    matches!(
        y,
        Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_) | Yaml::Boolean(_) | Yaml::Null
    )
}

/// The values of one `field: value(s)` entry.
fn field_values(v: &Yaml) -> Result<Vec<Val>, String> {
    match v {
        Yaml::Array(items) => items
            .iter()
            .map(|i| {
                if is_scalar(i) {
                    scalar_val(i)
                } else {
                    Err("a value list may hold only plain values, not lists or mappings".to_owned())
                }
            })
            .collect(),
        Yaml::Hash(_) => Err(
            "the value is a mapping; a field takes one value or a list of values (is the \
             indentation off?)"
                .to_owned(),
        ),
        other => Ok(vec![scalar_val(other)?]),
    }
}

fn scalar_val(y: &Yaml) -> Result<Val, String> {
    match y {
        Yaml::String(s) => Ok(Val::string(s)),
        Yaml::Integer(i) => Ok(Val::integer(*i)),
        Yaml::Real(s) => match s.parse::<f64>() {
            Ok(f) => Val::number(f),
            Err(_) => Err(format!("`{s}` is not a usable number")),
        },
        Yaml::Boolean(b) => Ok(Val::Bool(*b)),
        Yaml::Null => Ok(Val::Null),
        _ => Err("a value is not a plain scalar (a bad YAML tag such as `!!int abc`?)".to_owned()),
    }
}

/// Flattens nested ANDs and ORs and unwraps one-element ones, so the tree
/// says what the rule says and no more.
fn simplify(e: Expr) -> Expr {
    match e {
        Expr::And(items) | Expr::Or(items) if items.len() == 1 => {
            simplify(items.into_iter().next().unwrap_or(Expr::Const(false)))
        }
        Expr::And(items) => flatten(items, true),
        Expr::Or(items) => flatten(items, false),
        Expr::Not(inner) => Expr::Not(Box::new(simplify(*inner))),
        other => other,
    }
}

fn flatten(items: Vec<Expr>, and: bool) -> Expr {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match simplify(item) {
            Expr::And(inner) if and => out.extend(inner),
            Expr::Or(inner) if !and => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        // An empty AND is true, an empty OR false (not produced today).
        0 => Expr::Const(and),
        1 => out.pop().unwrap_or(Expr::Const(and)),
        _ if and => Expr::And(out),
        _ => Expr::Or(out),
    }
}

#[cfg(test)]
mod tests;
