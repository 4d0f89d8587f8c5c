//! Sigma values and value modifiers: from `field|mod1|mod2: value(s)` to an
//! [`Expr`] over [`Atom`]s.
//!
//! The model follows pySigma's: a value starts as a typed scalar (a string
//! with wildcards, a number, a boolean, null), each modifier in the chain is
//! applied in order to every value (or, for `all`/`neq`, to the item as a
//! whole), and what is left at the end becomes one test per value. Modifiers
//! that expand one value into several (`windash`, `base64offset`) produce an
//! *expansion*: a group that is always OR-linked, even under `all`.
//!
//! Strings are kept as bytes between modifiers because the UTF-16 modifiers
//! produce bytes that are only text again after `base64`/`base64offset`.

use base64::Engine as _;

use crate::event::FieldKey;
use crate::rule::{Atom, Expr, FieldTarget, GlobToken, NumOp, StrOp, Test};

use super::pcre;

/// How many variants one `windash` value may expand to (5 per dash): enough
/// for four expandable dashes, and a bound on what a hostile rule can make the
/// matcher hold.
const WINDASH_MAX_VARIANTS: usize = 625;

/// How many tests one rule may expand to (through `windash`, `base64offset`,
/// lists): far above any real rule (SigmaHQ's largest has ~1,300), and a
/// bound on the memory and matching time a hostile rule can take.
pub(crate) const MAX_RULE_TESTS: usize = 20_000;

/// The characters `windash` puts in place of a `-` or `/`: the two ASCII
/// spellings and the dashes that copy-paste and "smart" editors substitute.
const WINDASH_CHARS: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// One piece of a Sigma string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// Literal bytes (UTF-8 unless an encoding modifier changed them).
    Lit(Vec<u8>),
    /// `*`
    Star,
    /// `?`
    One,
}

/// A Sigma string value: literal runs and wildcards.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SigmaStr {
    parts: Vec<Part>,
}

impl SigmaStr {
    /// Parses a string as written in a rule: `*` and `?` are wildcards; `\*`,
    /// `\?` and `\\` are the literal characters; a backslash before anything
    /// else (or at the end) is a literal backslash, so Windows paths need no
    /// escaping.
    pub(crate) fn parse(s: &str) -> SigmaStr {
        let mut out = SigmaStr::default();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        lit.push(n);
                        chars.next();
                    }
                    _ => lit.push('\\'),
                },
                '*' | '?' => {
                    out.push_lit(std::mem::take(&mut lit).as_bytes());
                    out.parts
                        .push(if c == '*' { Part::Star } else { Part::One });
                }
                _ => lit.push(c),
            }
        }
        out.push_lit(lit.as_bytes());
        out
    }

    /// A string with no wildcards at all.
    fn plain(s: &str) -> SigmaStr {
        let mut out = SigmaStr::default();
        out.push_lit(s.as_bytes());
        out
    }

    /// Appends literal bytes, merging with a literal before them.
    fn push_lit(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Part::Lit(prev)) = self.parts.last_mut() {
            prev.extend_from_slice(bytes);
        } else {
            self.parts.push(Part::Lit(bytes.to_vec()));
        }
    }

    fn push(&mut self, part: Part) {
        match part {
            Part::Lit(b) => self.push_lit(&b),
            other => self.parts.push(other),
        }
    }

    fn has_wildcards(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Lit(_)))
    }

    fn starts_with_star(&self) -> bool {
        matches!(self.parts.first(), Some(Part::Star))
    }

    fn ends_with_star(&self) -> bool {
        matches!(self.parts.last(), Some(Part::Star))
    }

    /// The literal bytes of a string without wildcards.
    fn literal_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.parts {
            if let Part::Lit(b) = p {
                out.extend_from_slice(b);
            }
        }
        out
    }

    /// Re-encodes each literal run (the wildcards stay wildcards).
    fn map_lits(&self, f: impl Fn(&str) -> Vec<u8>) -> Result<SigmaStr, String> {
        let mut out = SigmaStr::default();
        for p in &self.parts {
            match p {
                Part::Lit(b) => {
                    let s = std::str::from_utf8(b).map_err(|_| {
                        "a value that is already binary (after `wide`/`utf16…`) cannot be \
                         re-encoded; apply `base64`/`base64offset` right after the encoding"
                            .to_owned()
                    })?;
                    out.push_lit(&f(s));
                }
                other => out.push(other.clone()),
            }
        }
        Ok(out)
    }
}

/// A value on its way through the modifier chain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    /// A string. `raw` is the text as written while no modifier has touched
    /// it, which `re` and `cidr` need (they do not interpret wildcards).
    Str {
        s: SigmaStr,
        cased: bool,
        raw: Option<String>,
    },
    /// A number: its decimal text (as Sigma matches it) and its value.
    Num {
        text: String,
        value: f64,
    },
    Bool(bool),
    Null,
    Regex {
        pattern: String,
        i: bool,
        m: bool,
        s: bool,
    },
    Exists(bool),
    FieldRef {
        field: String,
        op: StrOp,
        cased: bool,
    },
    Cidr(ipnet::IpNet),
    Cmp(NumOp, f64),
    /// Values a single value expanded to; always OR-linked.
    Expansion(Vec<Val>),
}

impl Val {
    /// A string value as written in a rule.
    pub(crate) fn string(s: &str) -> Val {
        Val::Str {
            s: SigmaStr::parse(s),
            cased: false,
            raw: Some(s.to_owned()),
        }
    }

    /// A number from YAML. Integral floats are written as integers, as
    /// pySigma does (`4688.0` matches `4688`).
    pub(crate) fn number(value: f64) -> Result<Val, String> {
        if !value.is_finite() {
            return Err(format!("`{value}` is not a usable number"));
        }
        let text = if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
            format!("{}", value as i64)
        } else {
            format!("{value}")
        };
        Ok(Val::Num { text, value })
    }

    /// An integer from YAML.
    pub(crate) fn integer(i: i64) -> Val {
        Val::Num {
            text: i.to_string(),
            value: i as f64,
        }
    }

    /// A short description for error messages.
    fn kind(&self) -> &'static str {
        match self {
            Val::Str { .. } => "a string",
            Val::Num { .. } => "a number",
            Val::Bool(_) => "a boolean",
            Val::Null => "null",
            Val::Regex { .. } => "a regular expression",
            Val::Exists(_) => "an `exists` test",
            Val::FieldRef { .. } => "a field reference",
            Val::Cidr(_) => "a CIDR network",
            Val::Cmp(..) => "a numeric comparison",
            Val::Expansion(_) => "an expanded value",
        }
    }

    /// The value as a string, for modifiers that work on text: numbers and
    /// booleans are used by their text (pySigma rejects them; being lenient
    /// costs nothing and `CommandLine|contains: 1337` means what it says).
    fn into_str(self, modifier: &str) -> Result<(SigmaStr, bool, Option<String>), String> {
        match self {
            Val::Str { s, cased, raw } => Ok((s, cased, raw)),
            Val::Num { text, .. } => Ok((SigmaStr::plain(&text), false, Some(text))),
            Val::Bool(b) => {
                let t = if b { "true" } else { "false" };
                Ok((SigmaStr::plain(t), false, Some(t.to_owned())))
            }
            other => Err(format!(
                "`{modifier}` applies to strings, not to {}",
                other.kind()
            )),
        }
    }
}

/// A value modifier (`|name` after a field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Neq,
    Windash,
    Re,
    ReIgnoreCase,
    ReMultiLine,
    ReDotAll,
    Cased,
    Exists,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    FieldRef,
    Cmp(NumOp),
    Cidr,
}

impl Modifier {
    /// Looks a modifier up by its name in a rule (names are case-sensitive,
    /// as in pySigma).
    pub(crate) fn parse(name: &str) -> Result<Modifier, String> {
        Ok(match name {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "neq" => Modifier::Neq,
            "windash" => Modifier::Windash,
            "re" => Modifier::Re,
            "i" | "ignorecase" => Modifier::ReIgnoreCase,
            "m" | "multiline" => Modifier::ReMultiLine,
            "s" | "dotall" => Modifier::ReDotAll,
            "cased" => Modifier::Cased,
            "exists" => Modifier::Exists,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "wide" | "utf16le" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "fieldref" => Modifier::FieldRef,
            "lt" => Modifier::Cmp(NumOp::Lt),
            "lte" => Modifier::Cmp(NumOp::Lte),
            "gt" => Modifier::Cmp(NumOp::Gt),
            "gte" => Modifier::Cmp(NumOp::Gte),
            "cidr" => Modifier::Cidr,
            "expand" => {
                return Err(
                    "the `expand` modifier (placeholders such as `%Administrators%`) is \
                     not supported: trawl has no placeholder values to expand it with; write \
                     the values out"
                        .to_owned(),
                )
            }
            "minute" | "hour" | "day" | "week" | "month" | "year" => {
                return Err(format!(
                    "the time modifier `{name}` is not supported: trawl does not extract parts \
                     of timestamps"
                ))
            }
            "" => return Err("empty modifier name (a doubled `|` in the field key?)".to_owned()),
            _ if name.bytes().any(|b| b.is_ascii_uppercase())
                && Modifier::parse(&name.to_ascii_lowercase()).is_ok() =>
            {
                return Err(format!(
                    "unknown modifier `{name}`: modifier names are lower-case (`{}`)",
                    name.to_ascii_lowercase()
                ))
            }
            _ => return Err(format!("unknown modifier `{name}`")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::All => "all",
            Modifier::Neq => "neq",
            Modifier::Windash => "windash",
            Modifier::Re => "re",
            Modifier::ReIgnoreCase => "i",
            Modifier::ReMultiLine => "m",
            Modifier::ReDotAll => "s",
            Modifier::Cased => "cased",
            Modifier::Exists => "exists",
            Modifier::Base64 => "base64",
            Modifier::Base64Offset => "base64offset",
            Modifier::Utf16Le => "utf16le",
            Modifier::Utf16Be => "utf16be",
            Modifier::Utf16 => "utf16",
            Modifier::FieldRef => "fieldref",
            Modifier::Cmp(op) => op.as_str(),
            Modifier::Cidr => "cidr",
        }
    }

    /// Whether the modifier works on the item as a whole rather than on each
    /// value.
    fn is_list_modifier(self) -> bool {
        matches!(self, Modifier::All | Modifier::Neq)
    }
}

/// One `field|modifiers: values` entry (or a keyword list) of a selection.
#[derive(Debug)]
pub(crate) struct Item {
    /// `None` for keywords: the values are looked for in any field.
    pub(crate) field: Option<String>,
    pub(crate) values: Vec<Val>,
    /// `all`: the values are AND-linked.
    pub(crate) all: bool,
    /// `neq`: the item is negated.
    pub(crate) negated: bool,
}

impl Item {
    /// Builds an item from its key (`field|mod|mod`, `None` for a plain
    /// keyword list) and its values, applying the modifiers in order.
    pub(crate) fn new(key: Option<&str>, values: Vec<Val>) -> Result<Item, String> {
        let (field, modifiers) = match key {
            None => (None, Vec::new()),
            Some(key) => {
                let mut pieces = key.split('|');
                let field = pieces.next().unwrap_or_default();
                let mods = pieces.map(Modifier::parse).collect::<Result<Vec<_>, _>>()?;
                ((!field.is_empty()).then(|| field.to_owned()), mods)
            }
        };
        let mut item = Item {
            field,
            values,
            all: false,
            negated: false,
        };
        // Keywords are substring searches unless the chain says where the
        // value goes or makes it something other than text.
        let implicit_contains = item.field.is_none()
            && modifiers.iter().all(|m| {
                m.is_list_modifier()
                    || matches!(
                        m,
                        Modifier::Cased
                            | Modifier::Windash
                            | Modifier::Base64
                            | Modifier::Base64Offset
                            | Modifier::Utf16Le
                            | Modifier::Utf16Be
                            | Modifier::Utf16
                    )
            });
        let mut transformed = false;
        for m in modifiers {
            match m {
                Modifier::All => item.all = true,
                Modifier::Neq => item.negated = true,
                _ => {
                    let field = item.field.as_deref();
                    let mut out = Vec::with_capacity(item.values.len());
                    let mut tests = 0usize;
                    for v in std::mem::take(&mut item.values) {
                        let v = apply(m, v, field, transformed)?;
                        tests += leaves(&v);
                        if tests > MAX_RULE_TESTS {
                            return Err(too_many_tests());
                        }
                        out.push(v);
                    }
                    item.values = out;
                    transformed = true;
                }
            }
        }
        if implicit_contains {
            item.values = item
                .values
                .into_iter()
                .map(keyword_contains)
                .collect::<Result<_, _>>()?;
        }
        Ok(item)
    }

    /// The item as an expression: one atom per value, OR-linked (AND with
    /// `all`), expansions OR-linked inside.
    pub(crate) fn to_expr(&self) -> Result<Expr, String> {
        let target = match &self.field {
            Some(f) => FieldTarget::Field(FieldKey::from_name(f)),
            None => FieldTarget::AnyField,
        };
        if self.values.is_empty() {
            // pySigma: an empty value list means the field is null.
            return match target {
                FieldTarget::AnyField => Err(
                    "an empty list of keywords matches nothing; remove it or add values".to_owned(),
                ),
                FieldTarget::Field(_) | FieldTarget::Derived(_) => Ok(Expr::Atom(Atom {
                    target,
                    test: Test::Null,
                })),
            };
        }
        let exprs = self
            .values
            .iter()
            .map(|v| value_expr(&target, v))
            .collect::<Result<Vec<_>, _>>()?;
        let linked = if self.all {
            Expr::And(exprs)
        } else {
            Expr::Or(exprs)
        };
        Ok(if self.negated {
            Expr::Not(Box::new(linked))
        } else {
            linked
        })
    }
}

/// How many tests a value stands for once expanded.
fn leaves(v: &Val) -> usize {
    match v {
        Val::Expansion(vs) => vs.iter().map(leaves).sum(),
        _ => 1,
    }
}

/// The reason given when a rule expands past [`MAX_RULE_TESTS`].
pub(crate) fn too_many_tests() -> String {
    format!(
        "the rule expands to more than {MAX_RULE_TESTS} tests (modifiers such as `windash` multiply values); split it into smaller rules"
    )
}

/// Keywords without a positional or typing modifier are looked for anywhere
/// in a field (`*value*`), unless the author placed wildcards themselves.
fn keyword_contains(v: Val) -> Result<Val, String> {
    match v {
        Val::Expansion(vs) => Ok(Val::Expansion(
            vs.into_iter()
                .map(keyword_contains)
                .collect::<Result<_, _>>()?,
        )),
        Val::Str { ref s, .. } if s.has_wildcards() => Ok(v),
        Val::Str { .. } | Val::Num { .. } | Val::Bool(_) => {
            let (s, cased, _) = v.into_str("contains")?;
            Ok(Val::Str {
                s: add_stars(s, true, true),
                cased,
                raw: None,
            })
        }
        Val::Null => Err("a keyword cannot be null; null needs a field (`Field: null`)".to_owned()),
        other => Ok(other),
    }
}

fn add_stars(mut s: SigmaStr, front: bool, back: bool) -> SigmaStr {
    if front && !s.starts_with_star() {
        s.parts.insert(0, Part::Star);
    }
    if back && !s.ends_with_star() {
        s.parts.push(Part::Star);
    }
    s
}

/// Applies one per-value modifier. `transformed`: whether an earlier
/// per-value modifier already changed the values.
fn apply(m: Modifier, v: Val, field: Option<&str>, transformed: bool) -> Result<Val, String> {
    if let Val::Expansion(vs) = v {
        let mut out = Vec::with_capacity(vs.len());
        for inner in vs {
            match apply(m, inner, field, transformed)? {
                Val::Expansion(more) => out.extend(more),
                one => out.push(one),
            }
        }
        return Ok(Val::Expansion(out));
    }
    let name = m.name();
    let first_only = |what: &str| {
        format!("`{name}` must come first in the modifier chain: it applies to {what} as written")
    };
    match m {
        Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith => {
            let (front, back) = match m {
                Modifier::Contains => (true, true),
                Modifier::StartsWith => (false, true),
                _ => (true, false),
            };
            match v {
                Val::Regex {
                    pattern,
                    i,
                    m: ml,
                    s,
                } => Ok(Val::Regex {
                    pattern: anchor_regex(&pattern, !front, !back),
                    i,
                    m: ml,
                    s,
                }),
                Val::FieldRef { field, op, cased } => {
                    // pySigma keeps "starts with" and "ends with" flags; both
                    // set means "contains".
                    let (mut st, mut en) = match op {
                        StrOp::Prefix => (true, false),
                        StrOp::Suffix => (false, true),
                        StrOp::Contains | StrOp::Term => (true, true),
                        StrOp::Equals => (false, false),
                    };
                    st |= back;
                    en |= front;
                    let op = match (st, en) {
                        (true, true) => StrOp::Contains,
                        (true, false) => StrOp::Prefix,
                        (false, true) => StrOp::Suffix,
                        (false, false) => StrOp::Equals,
                    };
                    Ok(Val::FieldRef { field, op, cased })
                }
                other => {
                    let (s, cased, _) = other.into_str(name)?;
                    Ok(Val::Str {
                        s: add_stars(s, front, back),
                        cased,
                        raw: None,
                    })
                }
            }
        }
        Modifier::Windash => {
            let (s, cased, _) = v.into_str(name)?;
            Ok(Val::Expansion(
                windash(&s)?
                    .into_iter()
                    .map(|s| Val::Str {
                        s,
                        cased,
                        raw: None,
                    })
                    .collect(),
            ))
        }
        Modifier::Re => {
            let (_, _, raw) = v.into_str(name)?;
            match raw {
                Some(pattern) if !transformed => Ok(Val::Regex {
                    pattern,
                    i: false,
                    m: false,
                    s: false,
                }),
                _ => Err(first_only("the value")),
            }
        }
        Modifier::ReIgnoreCase | Modifier::ReMultiLine | Modifier::ReDotAll => match v {
            Val::Regex {
                pattern,
                mut i,
                mut m,
                mut s,
            } => {
                match name {
                    "i" => i = true,
                    "m" => m = true,
                    _ => s = true,
                }
                Ok(Val::Regex { pattern, i, m, s })
            }
            other => Err(format!(
                "`{name}` is a flag of `re` and must follow it (`|re|{name}`), but the value is {}",
                other.kind()
            )),
        },
        Modifier::Cased => match v {
            Val::FieldRef { field, op, .. } => Ok(Val::FieldRef {
                field,
                op,
                cased: true,
            }),
            other => {
                let (s, _, raw) = other.into_str(name)?;
                Ok(Val::Str {
                    s,
                    cased: true,
                    raw,
                })
            }
        },
        Modifier::Exists => {
            if field.is_none() {
                return Err("`exists` needs a field name (`Field|exists: true`)".to_owned());
            }
            if transformed {
                return Err(first_only("a boolean"));
            }
            match v {
                Val::Bool(b) => Ok(Val::Exists(b)),
                other => Err(format!(
                    "`exists` takes `true` or `false`, not {}",
                    other.kind()
                )),
            }
        }
        Modifier::Base64 | Modifier::Base64Offset => {
            let (s, cased, _) = v.into_str(name)?;
            if s.has_wildcards() {
                return Err(format!(
                    "`{name}` cannot encode wildcards; put `contains`/`startswith`/`endswith` \
                     after it (`|{name}|contains`), not before"
                ));
            }
            let data = s.literal_bytes();
            let b64 = base64::engine::general_purpose::STANDARD;
            let text = |t: String| Val::Str {
                s: SigmaStr::plain(&t),
                cased,
                raw: None,
            };
            if m == Modifier::Base64 {
                return Ok(text(b64.encode(&data)));
            }
            // The value may start at any byte offset of the encoded stream:
            // encode it behind 0, 1 and 2 filler bytes and keep only the
            // characters that do not depend on the neighbouring bytes
            // (pySigma's cut: the leading characters that mix in the filler,
            // and the trailing ones that mix in whatever follows).
            const START: [usize; 3] = [0, 2, 3];
            const END_CUT: [usize; 3] = [0, 3, 2];
            let mut out = Vec::with_capacity(3);
            for shift in 0..3 {
                let mut buf = vec![b' '; shift];
                buf.extend_from_slice(&data);
                let enc = b64.encode(&buf);
                let end = enc.len().saturating_sub(END_CUT[(data.len() + shift) % 3]);
                let piece = enc.get(START[shift]..end).unwrap_or_default();
                if piece.is_empty() {
                    return Err(format!(
                        "`base64offset` needs a value of at least 2 bytes; `{}` is too short to \
                         be recognised inside base64",
                        String::from_utf8_lossy(&data)
                    ));
                }
                out.push(text(piece.to_owned()));
            }
            Ok(Val::Expansion(out))
        }
        Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16 => {
            let (s, cased, _) = v.into_str(name)?;
            let big = m == Modifier::Utf16Be;
            let mut enc = s.map_lits(|t| {
                t.encode_utf16()
                    .flat_map(|u| {
                        if big {
                            u.to_be_bytes()
                        } else {
                            u.to_le_bytes()
                        }
                    })
                    .collect()
            })?;
            if m == Modifier::Utf16 {
                // Byte order mark, then little-endian (as pySigma).
                enc.parts.insert(0, Part::Lit(vec![0xFF, 0xFE]));
                let merged = std::mem::take(&mut enc.parts);
                for p in merged {
                    enc.push(p);
                }
            }
            Ok(Val::Str {
                s: enc,
                cased,
                raw: None,
            })
        }
        Modifier::FieldRef => {
            let (s, cased, _) = v.into_str(name)?;
            if s.has_wildcards() {
                return Err("a field reference (`fieldref`) cannot contain wildcards".to_owned());
            }
            let other = String::from_utf8(s.literal_bytes())
                .map_err(|_| "a field reference must name a field in text".to_owned())?;
            if other.is_empty() {
                return Err("`fieldref` needs the name of the other field".to_owned());
            }
            if field.is_none() {
                return Err(
                    "`fieldref` compares two fields and needs a field name on the left".to_owned(),
                );
            }
            Ok(Val::FieldRef {
                field: other,
                op: StrOp::Equals,
                cased,
            })
        }
        Modifier::Cmp(op) => {
            // Numeric strings (`'0x10'`) are accepted too, read as the
            // matcher reads field values.
            let number = match &v {
                Val::Num { value, .. } => Some(*value),
                Val::Str { raw: Some(t), .. } => crate::event::parse_number(t),
                _ => None,
            };
            number
                .map(|n| Val::Cmp(op, n))
                .ok_or_else(|| format!("`{name}` compares with a number, not {}", v.kind()))
        }
        Modifier::Cidr => {
            if transformed {
                return Err(first_only("the network"));
            }
            let (_, _, raw) = v.into_str(name)?;
            let text = raw.unwrap_or_default();
            parse_cidr(&text).map(Val::Cidr)
        }
        Modifier::All | Modifier::Neq => Ok(v),
    }
}

/// Anchors a regex for `re|startswith` / `re|endswith`. pySigma appends or
/// prepends `.*` for backends whose regexes match the whole value; trawl's
/// regexes are unanchored, so the same intent needs explicit anchors.
/// `\A`/`\z` rather than `^`/`$` so the `m` flag cannot move them.
fn anchor_regex(pattern: &str, start: bool, end: bool) -> String {
    if !start && !end {
        return pattern.to_owned();
    }
    let mut out = String::with_capacity(pattern.len() + 10);
    if start {
        out.push_str(r"\A");
    }
    out.push_str("(?:");
    out.push_str(pattern);
    out.push(')');
    if end {
        out.push_str(r"\z");
    }
    out
}

/// Parses a `cidr` value: `a.b.c.d/n` or an IPv6 network; a bare address is a
/// single-host network. Like Python's `ip_network` (pySigma), host bits set
/// below the prefix are an error, since they usually mean a typo.
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    let net = match t.parse::<ipnet::IpNet>() {
        Ok(n) => n,
        Err(_) => match t.parse::<std::net::IpAddr>() {
            Ok(a) => ipnet::IpNet::from(a),
            Err(_) => {
                return Err(format!(
                    "`{text}` is not a CIDR network (e.g. `10.0.0.0/8`, `fe80::/10`)"
                ))
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set below the /{} prefix; did you mean `{}`?",
            net.prefix_len(),
            net.trunc()
        ));
    }
    Ok(net)
}

/// Whether `c` is a regex word character (Python's `\w` on `str`).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `windash`: every `-` or `/` that starts a word (pySigma's `\B[-/]\b`,
/// applied to each literal run separately) becomes each of
/// [`WINDASH_CHARS`]; returns every combination, in pySigma's order.
fn windash(s: &SigmaStr) -> Result<Vec<SigmaStr>, String> {
    enum Piece {
        Fixed(Part),
        Dash,
    }
    let mut template = Vec::new();
    let mut dashes = 0usize;
    for p in &s.parts {
        let Part::Lit(bytes) = p else {
            template.push(Piece::Fixed(p.clone()));
            continue;
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "`windash` needs text, not an encoded value".to_owned())?;
        let chars: Vec<char> = text.chars().collect();
        let mut run = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let starts_word = (c == '-' || c == '/')
                && (i == 0 || !is_word(chars[i - 1]))
                && chars.get(i + 1).is_some_and(|&n| is_word(n));
            if starts_word {
                if !run.is_empty() {
                    template.push(Piece::Fixed(Part::Lit(
                        std::mem::take(&mut run).into_bytes(),
                    )));
                }
                template.push(Piece::Dash);
                dashes += 1;
            } else {
                run.push(c);
            }
        }
        if !run.is_empty() {
            template.push(Piece::Fixed(Part::Lit(run.into_bytes())));
        }
    }
    let total = u32::try_from(dashes)
        .ok()
        .and_then(|d| WINDASH_CHARS.len().checked_pow(d))
        .filter(|&t| t <= WINDASH_MAX_VARIANTS)
        .ok_or_else(|| {
            format!(
                "`windash` would expand this value to 5^{dashes} variants (at most \
                 {WINDASH_MAX_VARIANTS} are allowed); split the value"
            )
        })?;
    let mut out = Vec::with_capacity(total);
    for n in 0..total {
        // The first dash varies slowest, as in pySigma's expansion.
        let mut digit_div = total;
        let mut v = SigmaStr::default();
        for piece in &template {
            match piece {
                Piece::Fixed(p) => v.push(p.clone()),
                Piece::Dash => {
                    digit_div /= WINDASH_CHARS.len();
                    let c = WINDASH_CHARS[(n / digit_div) % WINDASH_CHARS.len()];
                    v.push_lit(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// The expression for one (possibly expanded) value.
fn value_expr(target: &FieldTarget, v: &Val) -> Result<Expr, String> {
    if let Val::Expansion(vs) = v {
        return Ok(Expr::Or(
            vs.iter()
                .map(|v| value_expr(target, v))
                .collect::<Result<_, _>>()?,
        ));
    }
    let keyword = matches!(target, FieldTarget::AnyField);
    let test = match v {
        Val::Str { s, cased, .. } => str_test(s, *cased)?,
        Val::Num { text, .. } => Test::Str {
            op: StrOp::Equals,
            value: text.clone(),
            cased: false,
        },
        Val::Bool(b) => Test::Str {
            op: StrOp::Equals,
            value: b.to_string(),
            cased: false,
        },
        Val::Null => Test::Null,
        Val::Regex { pattern, i, m, s } => {
            let pattern = pcre::to_rust(pattern)?;
            pcre::validate(&pattern, *i, *m, *s)?;
            Test::Regex {
                pattern,
                case_insensitive: *i,
                multi_line: *m,
                dot_all: *s,
            }
        }
        Val::Exists(b) => Test::Exists(*b),
        Val::FieldRef { field, op, cased } if !keyword => Test::FieldRef {
            other: FieldKey::from_name(field),
            op: *op,
            cased: *cased,
        },
        Val::FieldRef { .. } => {
            return Err("`fieldref` needs a field name on the left".to_owned());
        }
        Val::Cidr(net) => Test::Cidr(*net),
        Val::Cmp(op, n) => Test::Num { op: *op, value: *n },
        // Handled above; an error rather than a panic all the same.
        Val::Expansion(_) => return Err("internal error: nested value expansion".to_owned()),
    };
    Ok(Expr::Atom(Atom {
        target: target.clone(),
        test,
    }))
}

/// A string value as a test: a literal with at most a leading and a trailing
/// `*` is a positional string test (which the matcher indexes); anything
/// else is a glob.
fn str_test(s: &SigmaStr, cased: bool) -> Result<Test, String> {
    let mut tokens: Vec<GlobToken> = Vec::with_capacity(s.parts.len());
    for p in &s.parts {
        match p {
            Part::Lit(b) => {
                let text = String::from_utf8(b.clone()).map_err(|_| {
                    "the value is not text after its encoding modifiers (`wide`/`utf16…` yield \
                     binary); follow them with `base64` or `base64offset`"
                        .to_owned()
                })?;
                tokens.push(GlobToken::Lit(text));
            }
            Part::Star => {
                // `**` is `*`.
                if tokens.last() != Some(&GlobToken::Star) {
                    tokens.push(GlobToken::Star);
                }
            }
            Part::One => tokens.push(GlobToken::Question),
        }
    }
    let str_test = |op, value: &str| Test::Str {
        op,
        value: value.to_owned(),
        cased,
    };
    use GlobToken::{Lit, Star};
    Ok(match tokens.as_slice() {
        [] => str_test(StrOp::Equals, ""),
        [Lit(l)] => str_test(StrOp::Equals, l),
        [Star] => str_test(StrOp::Contains, ""),
        [Star, Lit(l)] => str_test(StrOp::Suffix, l),
        [Lit(l), Star] => str_test(StrOp::Prefix, l),
        [Star, Lit(l), Star] => str_test(StrOp::Contains, l),
        _ => Test::Glob { tokens, cased },
    })
}
