//! trawl's own trace format: one JSON object per line.
//!
//! Each line holds `ts` (RFC 3339, required), `kind` (required:
//! `process_start`, `process_exit`, `file_create`, `file_write`, `file_rename`,
//! `file_delete`), `host` (optional), `os` (optional, `windows` by default),
//! then the event's fields at top level under their Sysmon names
//! (`"ProcessId": 4312`, `"Image": "C:\\Windows\\TAPI\\pa.exe"`, …). Keys
//! trawl does not know are kept as they are.
//!
//! A line that does not follow the format is returned as an error naming the
//! reason; the reader goes on with the next line.
//!
//! ```
//! use trawl_replay::ndjson::parse_line;
//! use trawl_engine::event::{EventKind, Value, FieldKey};
//!
//! let ev = parse_line(r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","ProcessId":"0x10e8","Image":"C:\\pa.exe","Extra":[1]}"#, &mut None).unwrap();
//! assert_eq!(ev.kind, EventKind::ProcessStart);
//! assert_eq!(ev.get(&FieldKey::from_name("ProcessId")), Some(&Value::Int(4328)));
//! assert!(parse_line(r#"{"kind":"process_start"}"#, &mut None).unwrap_err().contains("`ts`"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use crate::lines::{LineSource, RawLine};

/// The longest line read; a longer one is skipped and reported, so one broken
/// or hostile trace cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The most fields one record may carry (Sysmon's richest event has ~30).
pub const MAX_FIELDS: usize = 1024;
use serde_json::Value as Json;
use trawl_engine::event::{
    field_type, Event, EventKind, FieldKey, FieldType, Os, Timestamp, Value,
};

/// Parses one trace line into an event. `host_cache` holds the last host seen,
/// so a trace from one machine shares one allocation for its host name.
pub fn parse_line(line: &str, host_cache: &mut Option<Arc<str>>) -> Result<Event, String> {
    // A byte-order mark some editors put at the start of a file.
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let mut de = serde_json::Deserializer::from_str(line);
    let event = LineSeed { host_cache }
        .deserialize(&mut de)
        .map_err(|e| describe_json_error(&e))?;
    de.end()
        .map_err(|e| format!("trailing text after the JSON object ({e})"))?;
    Ok(event)
}

/// A serde_json error as a reason for a problem line: syntax errors keep
/// serde's position, our own messages drop it.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("not valid JSON: {e}"),
        // Our own messages: the column only adds noise.
        _ => {
            let s = e.to_string();
            match s.rfind(" at line ") {
                Some(i) => s[..i].to_owned(),
                None => s,
            }
        }
    }
}

struct LineSeed<'a> {
    host_cache: &'a mut Option<Arc<str>>,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Event;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Event, D::Error> {
        d.deserialize_map(self)
    }
}

/// A map key, borrowed from the line when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with `ts` and `kind`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut ts: Option<Timestamp> = None;
        let mut kind: Option<EventKind> = None;
        let mut os = Os::Windows;
        let mut host: Option<Arc<str>> = None;
        let mut fields: Vec<(FieldKey, Value)> = Vec::with_capacity(16);
        let mut seen_special = [false; 4];
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let value: Json = map.next_value()?;
            let special = ["ts", "kind", "os", "host"].iter().position(|k| *k == key);
            if let Some(i) = special {
                if std::mem::replace(&mut seen_special[i], true) {
                    return Err(de::Error::custom(format!("key `{key}` appears twice")));
                }
            }
            match &*key {
                "ts" => {
                    let Json::String(s) = &value else {
                        return Err(de::Error::custom(format!(
                            "`ts` must be an RFC 3339 string, not {}",
                            type_name(&value)
                        )));
                    };
                    ts = Some(s.parse::<Timestamp>().map_err(|e| {
                        de::Error::custom(format!(
                            "`ts` value `{s}` is not an RFC 3339 timestamp with a UTC offset ({e})"
                        ))
                    })?);
                }
                "kind" => {
                    let parsed = value.as_str().and_then(EventKind::parse);
                    kind = Some(parsed.ok_or_else(|| {
                        de::Error::custom(format!(
                            "`kind` must be one of {}, not {value}",
                            EventKind::ALL.map(|k| k.as_str()).join(", ")
                        ))
                    })?);
                }
                "os" if value.is_null() => {}
                "os" => {
                    os = value.as_str().and_then(Os::parse).ok_or_else(|| {
                        de::Error::custom(format!(
                            "`os` must be \"windows\" or \"linux\", not {value}"
                        ))
                    })?;
                }
                "host" => match value {
                    Json::Null => host = None,
                    Json::String(s) => {
                        host = Some(match self.host_cache.as_ref() {
                            Some(h) if **h == *s => Arc::clone(h),
                            _ => {
                                let h: Arc<str> = Arc::from(s);
                                *self.host_cache = Some(Arc::clone(&h));
                                h
                            }
                        });
                    }
                    other => {
                        return Err(de::Error::custom(format!(
                            "`host` must be a string, not {}",
                            type_name(&other)
                        )));
                    }
                },
                name => {
                    let v = convert(name, value).map_err(de::Error::custom)?;
                    let key = FieldKey::from_name(name);
                    // Bounded by MAX_FIELDS, so this scan stays cheap.
                    if fields.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("key `{name}` appears twice")));
                    }
                    if fields.len() == MAX_FIELDS {
                        return Err(de::Error::custom(format!("more than {MAX_FIELDS} fields")));
                    }
                    fields.push((key, v));
                }
            }
        }
        let ts = ts.ok_or_else(|| de::Error::custom("missing the required key `ts`"))?;
        let kind = kind.ok_or_else(|| de::Error::custom("missing the required key `kind`"))?;
        let mut ev = Event::new(kind, os, ts);
        ev.host = host;
        for (k, v) in fields {
            ev.push_unchecked(k, v);
        }
        Ok(ev)
    }
}

fn convert(name: &str, value: Json) -> Result<Value, String> {
    let ty = field_type(name);
    if ty == Some(FieldType::Integer) {
        return match &value {
            Json::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .ok_or_else(|| format!("`{name}` must be an integer, not {n}")),
            Json::String(s) => parse_int(s)
                .map(Value::Int)
                .ok_or_else(|| format!("`{name}` must be an integer, not the string {s:?}")),
            Json::Null => Ok(Value::Null),
            other => Err(format!(
                "`{name}` must be an integer, not {}",
                type_name(other)
            )),
        };
    }
    if ty == Some(FieldType::String) {
        return match value {
            Json::String(s) => Ok(Value::Str(s)),
            Json::Null => Ok(Value::Null),
            other => Err(format!(
                "`{name}` must be a string, not {}",
                type_name(&other)
            )),
        };
    }
    Ok(match value {
        Json::String(s) => Value::Str(s),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Bool(b) => Value::Bool(b),
        Json::Null => Value::Null,
        other => Value::Json(Box::new(other)),
    })
}

/// An integer written in decimal or as `0x` hex, as traces and Windows logs
/// write them.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// One line of a trace that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    pub reason: String,
}

/// Reads a trace line by line. Yields `(line number, event)` or the bad line;
/// blank lines are passed over; a line over [`MAX_LINE_BYTES`] is skipped
/// (and reported) without being held in memory; an I/O error ends the stream
/// with one last `BadLine`.
pub struct NdjsonReader<R> {
    lines: LineSource<R>,
    host_cache: Option<Arc<str>>,
}

impl<R: BufRead> NdjsonReader<R> {
    /// A reader over buffered input.
    pub fn new(input: R) -> Self {
        Self::with_max_line(input, MAX_LINE_BYTES)
    }

    /// A reader with another line-length limit.
    pub fn with_max_line(input: R, max_line: usize) -> Self {
        NdjsonReader {
            lines: LineSource::new(input, max_line),
            host_cache: None,
        }
    }
}

impl<R: BufRead> Iterator for NdjsonReader<R> {
    type Item = Result<(u64, Event), BadLine>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let max_line = self.lines.max_line();
            let (line, raw) = self.lines.next_line()?;
            let bad = |reason: String| Some(Err(BadLine { line, reason }));
            let raw = match raw {
                RawLine::Text(t) => t,
                RawLine::TooLong => return bad(format!("line longer than {max_line} bytes")),
                RawLine::Failed(e) => {
                    return bad(format!("read error, rest of the file skipped: {e}"))
                }
            };
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let text = match std::str::from_utf8(raw) {
                Ok(t) => t,
                Err(e) => return bad(format!("not UTF-8 text ({e})")),
            };
            return Some(
                parse_line(text, &mut self.host_cache)
                    .map(|ev| (line, ev))
                    .map_err(|reason| BadLine { line, reason }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Result<(u64, Event), BadLine>> {
        NdjsonReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn good_lines_keep_every_field() {
        let ev = parse_line(
            r#"{"ts":"2021-09-14T10:00:00.25+02:00","kind":"file_rename","host":"h","os":"linux","SourceFilename":"/a","TargetFilename":"/b","Custom":{"x":1},"Flag":true,"ParentProcessId":7}"#,
            &mut None,
        )
        .unwrap();
        assert_eq!(ev.kind, EventKind::FileRename);
        assert_eq!(ev.os, Os::Linux);
        assert_eq!(ev.ts.to_string(), "2021-09-14T08:00:00.25Z");
        assert_eq!(ev.host.as_deref(), Some("h"));
        assert_eq!(ev.get_str("TargetFilename"), Some("/b"));
        assert_eq!(
            ev.get(&FieldKey::from_name("Flag")),
            Some(&Value::Bool(true))
        );
        assert!(matches!(
            ev.get(&FieldKey::from_name("Custom")),
            Some(Value::Json(_))
        ));
        // Serialized back, it is the same event.
        let again = parse_line(&serde_json::to_string(&ev).unwrap(), &mut None).unwrap();
        assert_eq!(again, ev);
    }

    #[test]
    fn bad_lines_say_why_and_do_not_stop_the_stream() {
        let text = concat!(
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start"}"#,
            "\n",
            "not json\n",
            "\n",
            r#"{"ts":"yesterday","kind":"process_start"}"#,
            "\n",
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_explode"}"#,
            "\n",
            r#"{"ts":"2021-09-14T10:00:00Z"}"#,
            "\n",
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","ProcessId":"abc"}"#,
            "\n",
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","Image":42}"#,
            "\n",
            r#"[1,2]"#,
            "\n",
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"file_delete","TargetFilename":"x"}"#,
            "\r\n",
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"file_delete"} x"#,
            "\n",
        );
        let got = lines(text);
        let summary: Vec<String> = got
            .iter()
            .map(|r| match r {
                Ok((l, _)) => format!("{l}: ok"),
                Err(b) => format!("{}: {}", b.line, b.reason),
            })
            .collect();
        assert_eq!(summary.len(), 10, "{summary:#?}");
        assert_eq!(summary[0], "1: ok");
        assert!(
            summary[1].starts_with("2: not valid JSON"),
            "{}",
            summary[1]
        );
        assert!(
            summary[2].starts_with("4: `ts` value `yesterday` is not an RFC 3339"),
            "{}",
            summary[2]
        );
        assert!(
            summary[3].starts_with("5: `kind` must be one of process_start"),
            "{}",
            summary[3]
        );
        assert_eq!(summary[4], "6: missing the required key `kind`");
        assert_eq!(
            summary[5],
            "7: `ProcessId` must be an integer, not the string \"abc\""
        );
        assert_eq!(summary[6], "8: `Image` must be a string, not a number");
        assert!(
            summary[7].starts_with("9: invalid type") || summary[7].starts_with("9: "),
            "{}",
            summary[7]
        );
        assert_eq!(summary[8], "10: ok");
        assert!(
            summary[9].starts_with("11: trailing text"),
            "{}",
            summary[9]
        );
    }

    #[test]
    fn limits_duplicates_bom_and_null_os() {
        let long = format!(
            r#"{{"ts":"2021-09-14T10:00:00Z","kind":"process_start","CommandLine":"{}"}}"#,
            "x".repeat(300)
        );
        let text = format!(
            "{}{}\n{long}\n{}\n{}\n{}\n",
            "\u{feff}",
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","os":null}"#,
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","Image":"a","Image":"b"}"#,
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","kind":"process_exit"}"#,
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"file_delete"}"#,
        );
        let got: Vec<_> = NdjsonReader::with_max_line(text.as_bytes(), 200).collect();
        assert!(
            matches!(&got[0], Ok((1, e)) if e.os == Os::Windows),
            "{:?}",
            got[0]
        );
        assert_eq!(
            got[1].as_ref().unwrap_err(),
            &BadLine {
                line: 2,
                reason: "line longer than 200 bytes".into()
            }
        );
        assert_eq!(
            got[2].as_ref().unwrap_err().reason,
            "key `Image` appears twice"
        );
        assert_eq!(
            got[3].as_ref().unwrap_err().reason,
            "key `kind` appears twice"
        );
        assert!(matches!(&got[4], Ok((5, e)) if e.kind == EventKind::FileDelete));

        let wide: String = (0..=MAX_FIELDS).map(|i| format!(r#","f{i}":1"#)).collect();
        let line = format!(r#"{{"ts":"2021-09-14T10:00:00Z","kind":"process_start"{wide}}}"#);
        assert_eq!(
            parse_line(&line, &mut None).unwrap_err(),
            format!("more than {MAX_FIELDS} fields")
        );
    }

    #[test]
    fn invalid_utf8_is_one_bad_line() {
        let mut bytes =
            br#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","Image":""#.to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\"}\n");
        bytes.extend_from_slice(br#"{"ts":"2021-09-14T10:00:00Z","kind":"process_exit"}"#);
        let got: Vec<_> = NdjsonReader::new(&bytes[..]).collect();
        assert!(matches!(&got[0], Err(b) if b.line == 1 && b.reason.starts_with("not UTF-8")));
        assert!(matches!(&got[1], Ok((2, e)) if e.kind == EventKind::ProcessExit));
    }

    #[test]
    fn mutated_lines_never_panic_and_every_line_is_accounted_for() {
        let base = concat!(
            r#"{"ts":"2021-08-17T04:30:04.55Z","kind":"process_start","host":"LF-WS-0142","os":"windows","ProcessId":4312,"#,
            r#""ParentProcessId":"0x10e8","Image":"C:\\Windows\\TAPI\\pa.exe","CommandLine":"pa.exe \\\\LF-FS01 -s cmd.exe /c \"whoami\"","#,
            r#""Hashes":"SHA256=2A10,MD5=00","Extra":{"a":[1,2.5,null,true]},"Π":"ü"}"#
        );
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut text = Vec::new();
        let n = 5000;
        for _ in 0..n {
            let mut line = base.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                if line.is_empty() {
                    line.push(b'{');
                }
                let at = (next() as usize) % line.len();
                match next() % 4 {
                    0 => line[at] = next() as u8,
                    1 => {
                        line.remove(at);
                    }
                    2 => line.insert(at, b"{}[]\":,\\0x-e"[(next() % 12) as usize]),
                    _ => line.truncate(at.max(1)),
                }
            }
            // A line break inside the mutation would split the record; keep one line each.
            line.retain(|b| *b != b'\n');
            if line.iter().all(u8::is_ascii_whitespace) {
                line = b"x".to_vec();
            }
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        let results: Vec<_> = NdjsonReader::new(&text[..]).collect();
        assert_eq!(results.len(), n, "every line yields an event or a reason");
        for (i, r) in results.iter().enumerate() {
            let line = match r {
                Ok((l, _)) => *l,
                Err(b) => {
                    assert!(!b.reason.is_empty());
                    b.line
                }
            };
            assert_eq!(line, i as u64 + 1);
        }
        assert!(results.iter().any(Result::is_ok) && results.iter().any(Result::is_err));
    }
}
