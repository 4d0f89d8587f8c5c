//! The one intermediate form every rule language compiles to.
//!
//! A front end (Sigma YAML, IOC lists, KQL) turns its text into [`Rule`]s: some
//! metadata, a [`Scope`] (which event kinds and which OS the rule looks at) and
//! a [`RuleBody`]. An expression body is a boolean tree ([`Expr`]) whose leaves
//! are [`Atom`]s: one test on one field. The matcher
//! ([`crate::matcher::Ruleset`]) takes the atoms of all rules together and
//! indexes their literals per field, so one pass over a field serves every rule.
//!
//! ```
//! use trawl_engine::rule::{Atom, Expr, StrOp, Test};
//! use trawl_engine::event::fields;
//!
//! // Image|endswith: '\paexec.exe'
//! let atom = Atom::field(fields::IMAGE, Test::Str { op: StrOp::Suffix, value: "\\paexec.exe".into(), cased: false });
//! let expr = Expr::And(vec![Expr::Atom(atom), Expr::Not(Box::new(Expr::Const(false)))]);
//! assert_eq!(expr.atom_count(), 1);
//! ```

use std::fmt;

use crate::derived::Derived;
use crate::event::{EventKind, FieldKey, Os};
use crate::ioc::IocSet;

/// How serious an alert is (Sigma's `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// Every level, least serious first.
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    /// Sigma's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// Parses Sigma's spelling (ASCII case-insensitive; `info` too).
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "informational" | "info" => Some(Level::Informational),
            "low" => Some(Level::Low),
            "medium" => Some(Level::Medium),
            "high" => Some(Level::High),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of event kinds, as a bitmask over [`EventKind::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(u8);

impl KindSet {
    /// No kind.
    pub const EMPTY: KindSet = KindSet(0);
    /// Every kind.
    pub const ALL: KindSet = KindSet(0b11_1111);

    /// A set of the given kinds.
    pub fn of(kinds: &[EventKind]) -> KindSet {
        kinds.iter().fold(KindSet::EMPTY, |s, k| s.with(*k))
    }

    /// This set plus `kind`.
    pub fn with(self, kind: EventKind) -> KindSet {
        KindSet(self.0 | (1 << kind.index()))
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Which events a rule looks at: Sigma's `logsource`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub kinds: KindSet,
    /// `None`: either OS.
    pub os: Option<Os>,
}

impl Scope {
    /// Every event of every OS.
    pub const ANY: Scope = Scope {
        kinds: KindSet::ALL,
        os: None,
    };

    /// Whether an event of this kind and OS is in scope.
    pub fn admits(&self, kind: EventKind, os: Os) -> bool {
        self.kinds.contains(kind) && self.os.is_none_or(|o| o == os)
    }
}

/// One compiled-from-text rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's id (Sigma `id`, `ioc:<file>`, `kql:<stem>`).
    pub id: String,
    pub title: String,
    pub level: Level,
    pub tags: Vec<String>,
    /// Where it was loaded from: a path, or `embedded:<name>` for the seed pack.
    pub origin: String,
    pub scope: Scope,
    pub body: RuleBody,
}

/// What a rule tests.
#[derive(Debug, Clone)]
pub enum RuleBody {
    /// A boolean expression over field tests (Sigma, KQL).
    Expr(Expr),
    /// An indicator list: the rule fires when any hash the event carries is in
    /// the set.
    Ioc(IocSet),
}

/// A boolean expression over atoms.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Atom(Atom),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A constant; what an empty `all of` or `1 of` reduces to.
    Const(bool),
}

impl Expr {
    /// How many atom leaves the tree has.
    pub fn atom_count(&self) -> usize {
        match self {
            Expr::Atom(_) => 1,
            Expr::And(v) | Expr::Or(v) => v.iter().map(Expr::atom_count).sum(),
            Expr::Not(e) => e.atom_count(),
            Expr::Const(_) => 0,
        }
    }
}

/// Which field an atom reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldTarget {
    /// One named field.
    Field(FieldKey),
    /// Any string field of the event: Sigma keyword detections.
    AnyField,
    /// A value derived from the event, such as the file name of a path or
    /// one digest of `Hashes`: KQL columns with no Sysmon field of their own.
    Derived(Derived),
}

/// One test on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    pub target: FieldTarget,
    pub test: Test,
}

impl Atom {
    /// A test on a named field.
    pub fn field(key: FieldKey, test: Test) -> Atom {
        Atom {
            target: FieldTarget::Field(key),
            test,
        }
    }
}

/// Where a literal must sit in the field's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrOp {
    /// The whole text.
    Equals,
    /// Anywhere.
    Contains,
    /// At the start.
    Prefix,
    /// At the end.
    Suffix,
    /// Anywhere, with term boundaries at both alphanumeric ends (KQL `has`):
    /// the character before the literal's first character is not an ASCII
    /// letter or digit when that first character is one, and likewise after.
    Term,
}

impl StrOp {
    /// A short name, shown in alerts' `matches`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrOp::Equals => "equals",
            StrOp::Contains => "contains",
            StrOp::Prefix => "startswith",
            StrOp::Suffix => "endswith",
            StrOp::Term => "has",
        }
    }
}

/// One piece of a wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GlobToken {
    /// Literal text (escapes already resolved).
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    Question,
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumOp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
    Ne,
}

impl NumOp {
    /// Applies the comparison `lhs OP rhs`.
    pub fn apply(self, lhs: f64, rhs: f64) -> bool {
        match self {
            NumOp::Lt => lhs < rhs,
            NumOp::Lte => lhs <= rhs,
            NumOp::Gt => lhs > rhs,
            NumOp::Gte => lhs >= rhs,
            NumOp::Eq => lhs == rhs,
            NumOp::Ne => lhs != rhs,
        }
    }

    /// The operator as written in alerts' `matches`.
    pub fn as_str(self) -> &'static str {
        match self {
            NumOp::Lt => "lt",
            NumOp::Lte => "lte",
            NumOp::Gt => "gt",
            NumOp::Gte => "gte",
            NumOp::Eq => "eq",
            NumOp::Ne => "ne",
        }
    }
}

/// The test an atom applies to its field's text.
///
/// String tests are ASCII case-insensitive unless `cased`; a field that is
/// absent or null never satisfies a string, glob, regex, numeric, field-ref or
/// CIDR test.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// A literal at a position. `value` contains no wildcards.
    Str {
        op: StrOp,
        value: String,
        cased: bool,
    },
    /// A whole-text wildcard match (`*`, `?`).
    Glob { tokens: Vec<GlobToken>, cased: bool },
    /// A regular expression (Rust `regex` syntax), unanchored.
    Regex {
        pattern: String,
        case_insensitive: bool,
        multi_line: bool,
        dot_all: bool,
    },
    /// A numeric comparison of the field's value with `value`.
    Num { op: NumOp, value: f64 },
    /// The field is present (`true`) or absent (`false`).
    Exists(bool),
    /// The field is absent, null or empty (Sigma's `null`).
    Null,
    /// The field's text compared with another field's text.
    FieldRef {
        other: FieldKey,
        op: StrOp,
        cased: bool,
    },
    /// The field is an IP address inside the network.
    Cidr(ipnet::IpNet),
}

/// A rule a front end could not turn into the IR, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The file it came from (with `#N` for the Nth YAML document where a file
    /// holds several).
    pub path: String,
    /// The rule's id, when the text had one.
    pub id: Option<String>,
    /// The rule's title, when the text had one.
    pub title: Option<String>,
    /// Why, in words a rule author can act on.
    pub reason: String,
    /// Whether the rule is simply for events trawl does not produce (another
    /// logsource), as opposed to a detection trawl cannot evaluate.
    pub out_of_scope: bool,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}
