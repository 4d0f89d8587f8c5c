//! The one normalized event every source produces and every rule matches.
//!
//! Field names follow Sysmon's, because that is what Sigma rules key on: a
//! source that reads ETW, eBPF or an EVTX file renames its fields to these, and
//! the engine never needs to know where an event came from.
//!
//! Field keys are interned: the well-known names are a `u16` index into
//! [`KNOWN_FIELDS`], so building and looking up the usual fields allocates
//! nothing for the name, and a lookup is an integer compare. Any other field a
//! source carries is kept under its own name (a [`FieldKey`] holding the text)
//! and is just as matchable.
//!
//! ```
//! use trawl_engine::event::{Event, EventKind, FieldKey, Os, Value};
//!
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, "2021-09-14T10:00:00Z".parse().unwrap());
//! ev.set(FieldKey::from_name("Image"), Value::from("C:\\Windows\\TAPI\\pa.exe"));
//! ev.set(FieldKey::from_name("ProcessId"), Value::Int(4312));
//! assert_eq!(ev.get_str("Image"), Some("C:\\Windows\\TAPI\\pa.exe"));
//! assert!(matches!(ev.get(&FieldKey::from_name("ProcessId")), Some(Value::Int(4312))));
//! ```

use std::fmt;
use std::sync::Arc;

/// What happened. The names are the trace format's `kind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ProcessStart,
    ProcessExit,
    FileCreate,
    FileWrite,
    FileRename,
    FileDelete,
}

impl EventKind {
    /// Every kind, in a fixed order (the order of [`EventKind::index`]).
    pub const ALL: [EventKind; 6] = [
        EventKind::ProcessStart,
        EventKind::ProcessExit,
        EventKind::FileCreate,
        EventKind::FileWrite,
        EventKind::FileRename,
        EventKind::FileDelete,
    ];

    /// The name used in traces and alerts (`process_start`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProcessStart => "process_start",
            EventKind::ProcessExit => "process_exit",
            EventKind::FileCreate => "file_create",
            EventKind::FileWrite => "file_write",
            EventKind::FileRename => "file_rename",
            EventKind::FileDelete => "file_delete",
        }
    }

    /// Parses a trace `kind` value; `None` for anything else.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A dense index (0..6), for per-kind tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operating system an event comes from (Sigma's `logsource.product`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Os {
    Windows,
    Linux,
}

impl Os {
    /// Both systems, in index order.
    pub const ALL: [Os; 2] = [Os::Windows, Os::Linux];

    /// `windows` or `linux`.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Windows => "windows",
            Os::Linux => "linux",
        }
    }

    /// Parses `windows` / `linux` (ASCII case-insensitive).
    pub fn parse(s: &str) -> Option<Os> {
        if s.eq_ignore_ascii_case("windows") {
            Some(Os::Windows)
        } else if s.eq_ignore_ascii_case("linux") {
            Some(Os::Linux)
        } else {
            None
        }
    }

    /// A dense index (0..2).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON type a well-known field must have in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// An integer (an id); traces may also write it as a decimal or `0x` hex
    /// string, as Windows logs do.
    Integer,
    /// Text (or null).
    String,
    /// Whatever the source carries.
    Any,
}

/// The field names trawl knows by heart, with their types: Sysmon's process
/// and file event fields plus the Security 4688 ones. Their position is their
/// interned id, so this list only ever grows at the end.
pub const KNOWN_FIELDS: &[(&str, FieldType)] = &[
    ("ProcessId", FieldType::Integer),
    ("ParentProcessId", FieldType::Integer),
    ("Image", FieldType::String),
    ("OriginalFileName", FieldType::String),
    ("CommandLine", FieldType::String),
    ("CurrentDirectory", FieldType::String),
    ("User", FieldType::String),
    ("ParentImage", FieldType::String),
    ("ParentCommandLine", FieldType::String),
    ("Hashes", FieldType::String),
    ("TargetFilename", FieldType::String),
    ("SourceFilename", FieldType::String),
    ("IntegrityLevel", FieldType::String),
    ("Company", FieldType::String),
    ("Product", FieldType::String),
    ("Description", FieldType::String),
    ("FileVersion", FieldType::Any),
    ("ProcessGuid", FieldType::Any),
    ("ParentProcessGuid", FieldType::Any),
    ("LogonId", FieldType::Any),
    ("LogonGuid", FieldType::Any),
    ("TerminalSessionId", FieldType::Integer),
    ("ParentUser", FieldType::Any),
    ("RuleName", FieldType::Any),
    ("UtcTime", FieldType::Any),
    ("CreationUtcTime", FieldType::Any),
    ("PreviousCreationUtcTime", FieldType::Any),
    ("IsExecutable", FieldType::Any),
    ("Archived", FieldType::Any),
    ("EventID", FieldType::Integer),
    ("Channel", FieldType::Any),
    ("Provider_Name", FieldType::Any),
    ("NewProcessName", FieldType::Any),
    ("ParentProcessName", FieldType::Any),
    ("NewProcessId", FieldType::Integer),
    ("SubjectUserName", FieldType::Any),
    ("SubjectDomainName", FieldType::Any),
    ("SubjectUserSid", FieldType::Any),
    ("SubjectLogonId", FieldType::Any),
    ("TokenElevationType", FieldType::Any),
    ("MandatoryLabel", FieldType::Any),
    ("Uid", FieldType::Integer),
    ("Gid", FieldType::Integer),
    ("Truncated", FieldType::Any),
];

/// An interned field name.
///
/// Equality of two keys is equality of the names they stand for: a
/// well-known name is always held as its index, never as text, because the
/// only way to build one is [`FieldKey::from_name`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldKey(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Known(u16),
    Other(Arc<str>),
}

impl FieldKey {
    /// Interns `name`: a well-known name costs no allocation.
    pub fn from_name(name: &str) -> FieldKey {
        match known_index(name) {
            Some(i) => FieldKey(Repr::Known(i)),
            None => FieldKey(Repr::Other(Arc::from(name))),
        }
    }

    /// The key of a well-known field by its index in [`KNOWN_FIELDS`].
    ///
    /// # Panics
    /// If `index` is out of range: that is a bug in the caller.
    pub const fn known(index: u16) -> FieldKey {
        assert!((index as usize) < KNOWN_FIELDS.len());
        FieldKey(Repr::Known(index))
    }

    /// The number of a well-known name (its place in [`KNOWN_FIELDS`]), for
    /// tables indexed by field; `None` for other names.
    pub fn known_id(&self) -> Option<u16> {
        match &self.0 {
            Repr::Known(i) => Some(*i),
            Repr::Other(_) => None,
        }
    }

    /// The field's name, as written in traces and rules.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Known(i) => KNOWN_FIELDS[*i as usize].0,
            Repr::Other(s) => s,
        }
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn known_index(name: &str) -> Option<u16> {
    // ~45 short names: a linear scan that rejects on length first is as quick
    // as a hash and needs no table built at start-up.
    KNOWN_FIELDS
        .iter()
        .position(|(k, _)| k.len() == name.len() && *k == name)
        .map(|i| i as u16)
}

/// The type a trace must give a well-known field; `None` for other names.
pub fn field_type(name: &str) -> Option<FieldType> {
    known_index(name).map(|i| KNOWN_FIELDS[i as usize].1)
}

/// Keys of the fields the engine and the sources name in code.
pub mod fields {
    use super::FieldKey;

    macro_rules! known {
        ($($name:ident = $idx:expr;)*) => {
            $(
                #[doc = concat!("The `", stringify!($name), "` field.")]
                pub const $name: FieldKey = FieldKey::known($idx);
            )*
        };
    }

    known! {
        PROCESS_ID = 0;
        PARENT_PROCESS_ID = 1;
        IMAGE = 2;
        ORIGINAL_FILE_NAME = 3;
        COMMAND_LINE = 4;
        CURRENT_DIRECTORY = 5;
        USER = 6;
        PARENT_IMAGE = 7;
        PARENT_COMMAND_LINE = 8;
        HASHES = 9;
        TARGET_FILENAME = 10;
        SOURCE_FILENAME = 11;
        TRUNCATED = 43;
    }
}

/// A field's value. Traces carry JSON, so a value is what JSON can hold; the
/// matcher sees every scalar through its text form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An array or object some source carried: kept, shown, not matched.
    /// Boxed: rare, and large, it would otherwise triple the size of every
    /// field of every event.
    Json(Box<serde_json::Value>),
}

impl Value {
    /// The text a rule matches against: strings as they are, numbers in
    /// decimal, booleans as `true`/`false`, arrays and objects as compact
    /// JSON. `None` for null. `buf` holds text that has to be made, reusing its
    /// memory from call to call.
    pub fn match_text<'a>(&'a self, buf: &'a mut NumBuf) -> Option<&'a str> {
        use std::fmt::Write as _;
        match self {
            Value::Str(s) => Some(s),
            Value::Int(i) => Some(buf.int.format(*i)),
            Value::Float(f) => {
                buf.text.clear();
                let _ = write!(buf.text, "{f}");
                Some(&buf.text)
            }
            Value::Bool(true) => Some("true"),
            Value::Bool(false) => Some("false"),
            Value::Null => None,
            Value::Json(v) => {
                buf.text.clear();
                let _ = write!(buf.text, "{v}");
                Some(&buf.text)
            }
        }
    }

    /// The value as a number, for Sigma's `lt`/`gt` and KQL comparisons:
    /// integers, floats, and strings that parse as decimal or `0x` hex.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => parse_number(s),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses a decimal or `0x`-hex number, as Windows logs write ids.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

/// Scratch space for [`Value::match_text`], so numbers can be matched as text
/// without an allocation per field.
#[derive(Default)]
pub struct NumBuf {
    int: itoa::Buffer,
    text: String,
}

impl fmt::Debug for NumBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NumBuf")
    }
}

impl NumBuf {
    /// An empty buffer.
    pub fn new() -> NumBuf {
        NumBuf::default()
    }
}

/// A point in time, UTC.
pub type Timestamp = jiff::Timestamp;

/// One normalized event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub os: Os,
    pub ts: Timestamp,
    /// The machine it happened on; shared so a source can stamp the same
    /// host on every event without an allocation each.
    pub host: Option<Arc<str>>,
    fields: Vec<(FieldKey, Value)>,
}

impl Event {
    /// An event with no fields yet.
    pub fn new(kind: EventKind, os: Os, ts: Timestamp) -> Event {
        Event::with_capacity(kind, os, ts, 16)
    }

    /// An event with no fields yet and room for `fields` of them: for a
    /// source that knows how many it will set (a Sysmon process start has
    /// some twenty-five), so the field list is allocated once.
    ///
    /// ```
    /// use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
    ///
    /// let mut ev = Event::with_capacity(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH, 1);
    /// ev.set(fields::IMAGE, "C:\\Windows\\System32\\cmd.exe".into());
    /// assert_eq!(ev.fields().count(), 1);
    /// ```
    pub fn with_capacity(kind: EventKind, os: Os, ts: Timestamp, fields: usize) -> Event {
        Event {
            kind,
            os,
            ts,
            host: None,
            fields: Vec::with_capacity(fields),
        }
    }

    /// Sets a field, replacing any earlier value of the same name (the field
    /// keeps its first position, so output order is stable).
    pub fn set(&mut self, key: FieldKey, value: Value) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// Appends a field without checking for an earlier one of the same name.
    /// For sources that know their keys are distinct (it saves the scan).
    pub fn push_unchecked(&mut self, key: FieldKey, value: Value) {
        self.fields.push((key, value));
    }

    /// Removes a field, returning its value.
    pub fn remove(&mut self, key: &FieldKey) -> Option<Value> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(i).1)
    }

    /// A field's value.
    #[inline]
    pub fn get(&self, key: &FieldKey) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A field's position among the event's fields and its value: the
    /// position names the field in what a keyword matched.
    #[inline]
    pub fn get_indexed(&self, key: &FieldKey) -> Option<(usize, &Value)> {
        self.fields
            .iter()
            .position(|(k, _)| k == key)
            .map(|i| (i, &self.fields[i].1))
    }

    /// The field at `position` (in the order fields were set).
    #[inline]
    pub fn field_at(&self, position: usize) -> Option<(&FieldKey, &Value)> {
        self.fields.get(position).map(|(k, v)| (k, v))
    }

    /// A field's value by name, if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.as_str())
    }

    /// All fields, in the order they were set.
    pub fn fields(&self) -> impl Iterator<Item = (&FieldKey, &Value)> {
        self.fields.iter().map(|(k, v)| (k, v))
    }

    /// How many fields the event carries.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the event carries no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Serializes as trawl's trace format: `ts`, `kind`, `host` (when known),
/// `os`, then every field in order. An event written this way and read back
/// by the NDJSON reader is the same event.
impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(self.fields.len() + 4))?;
        map.serialize_entry("ts", &self.ts)?;
        map.serialize_entry("kind", self.kind.as_str())?;
        if let Some(h) = &self.host {
            map.serialize_entry("host", &**h)?;
        }
        map.serialize_entry("os", self.os.as_str())?;
        for (k, v) in &self.fields {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(s) => ser.serialize_str(s),
            Value::Int(i) => ser.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => ser.serialize_f64(*f),
            Value::Float(_) | Value::Null => ser.serialize_unit(),
            Value::Bool(b) => ser.serialize_bool(*b),
            Value::Json(v) => v.serialize(ser),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_intern_to_the_same_key() {
        assert_eq!(FieldKey::from_name("Image"), fields::IMAGE);
        assert_eq!(FieldKey::from_name("Truncated"), fields::TRUNCATED);
        assert_eq!(fields::TARGET_FILENAME.as_str(), "TargetFilename");
        assert_ne!(FieldKey::from_name("image"), fields::IMAGE);
        assert_eq!(FieldKey::from_name("Custom").as_str(), "Custom");
    }

    #[test]
    fn set_replaces_in_place() {
        let mut ev = Event::new(EventKind::FileCreate, Os::Linux, Timestamp::UNIX_EPOCH);
        ev.set(fields::IMAGE, "a".into());
        ev.set(fields::TARGET_FILENAME, "b".into());
        ev.set(fields::IMAGE, "c".into());
        let names: Vec<_> = ev.fields().map(|(k, _)| k.as_str().to_owned()).collect();
        assert_eq!(names, ["Image", "TargetFilename"]);
        assert_eq!(ev.get_str("Image"), Some("c"));
    }

    #[test]
    fn numbers_match_as_text_and_parse_hex() {
        let mut buf = NumBuf::new();
        assert_eq!(Value::Int(-42).match_text(&mut buf), Some("-42"));
        assert_eq!(Value::Null.match_text(&mut buf), None);
        assert_eq!(Value::Float(1.5).match_text(&mut buf), Some("1.5"));
        assert_eq!(
            Value::Json(Box::new(serde_json::json!(["a", 1]))).match_text(&mut buf),
            Some(r#"["a",1]"#)
        );
        assert_eq!(Value::from("0x10E8").as_f64(), Some(4328.0));
        assert_eq!(Value::from("nope").as_f64(), None);
    }
}
