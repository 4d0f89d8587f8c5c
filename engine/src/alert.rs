//! Alerts: what the engine says when a rule fires, as NDJSON or as text.
//!
//! An alert is rendered on the worker thread that found it (so the sink only
//! writes bytes in order), from the event, the rule and the place the event
//! came from. Rendering is a pure function of those, which is what makes
//! replay output byte-identical at any thread count.
//!
//! The JSON keys, in this order: `ts`, `host`, `source`, `seq`, `rule_id`,
//! `rule_title`, `level`, `tags`, `kind`, `event` (the whole event), `matches`
//! (`[{"field", "op", "value"[, "name"]}]`: why the rule fired).
//!
//! ```
//! use trawl_engine::alert::{Alert, Format};
//! use trawl_engine::event::{fields, Event, EventKind, Os};
//! use trawl_engine::matcher::Match;
//! use trawl_engine::rule::{Level, Rule, RuleBody, Scope, Expr};
//!
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, "2021-09-14T10:00:00Z".parse().unwrap());
//! ev.set(fields::IMAGE, "C:\\Windows\\TAPI\\pa.exe".into());
//! let rule = Rule { id: "r1".into(), title: "Run from TAPI".into(), level: Level::High, tags: vec![],
//!                   origin: "x.yml".into(), scope: Scope::ANY, body: RuleBody::Expr(Expr::Const(true)) };
//! let matches = vec![Match { field: "Image".into(), op: "startswith".into(), value: "C:\\Windows\\TAPI\\".into(), name: None }];
//! let alert = Alert { event: &ev, source: "trace.ndjson", seq: 7, rule: &rule, matches: &matches };
//! let mut line = Vec::new();
//! alert.render(Format::Json, &mut line);
//! assert!(String::from_utf8(line).unwrap().starts_with(r#"{"ts":"2021-09-14T10:00:00Z","host":null,"source":"trace.ndjson","seq":7,"rule_id":"r1""#));
//! ```

use std::io::Write as _;

use serde::Serialize;

use crate::event::{Event, Value};
use crate::matcher::Match;
use crate::rule::Rule;

/// How alerts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Json,
    /// One human-readable line per alert.
    Text,
}

/// One rule firing on one event, borrowed from the pipeline's data.
#[derive(Debug, Clone, Copy)]
pub struct Alert<'a> {
    pub event: &'a Event,
    /// Where the event came from: a trace path, or `live`.
    pub source: &'a str,
    /// 1-based position of the event in its source (NDJSON line number, EVTX
    /// record id, live sequence number).
    pub seq: u64,
    pub rule: &'a Rule,
    pub matches: &'a [Match],
}

#[derive(Serialize)]
struct AlertJson<'a> {
    ts: &'a jiff::Timestamp,
    host: Option<&'a str>,
    source: &'a str,
    seq: u64,
    rule_id: &'a str,
    rule_title: &'a str,
    level: &'static str,
    tags: &'a [String],
    kind: &'static str,
    event: &'a Event,
    matches: Vec<MatchJson<'a>>,
}

#[derive(Serialize)]
struct MatchJson<'a> {
    field: &'a str,
    op: &'a str,
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl Alert<'_> {
    /// Appends the alert, newline-terminated, to `out`.
    pub fn render(&self, format: Format, out: &mut Vec<u8>) {
        match format {
            Format::Json => self.render_json(out),
            Format::Text => self.render_text(out),
        }
        out.push(b'\n');
    }

    fn render_json(&self, out: &mut Vec<u8>) {
        let doc = AlertJson {
            ts: &self.event.ts,
            host: self.event.host.as_deref(),
            source: self.source,
            seq: self.seq,
            rule_id: &self.rule.id,
            rule_title: &self.rule.title,
            level: self.rule.level.as_str(),
            tags: &self.rule.tags,
            kind: self.event.kind.as_str(),
            event: self.event,
            matches: self
                .matches
                .iter()
                .map(|m| MatchJson {
                    field: &m.field,
                    op: &m.op,
                    value: &m.value,
                    name: m.name.as_deref(),
                })
                .collect(),
        };
        // Serializing plain data into memory cannot fail (no I/O, string keys).
        let _ = serde_json::to_writer(&mut *out, &doc);
    }

    fn render_text(&self, out: &mut Vec<u8>) {
        let ev = self.event;
        let _ = write!(
            out,
            "{:.3} {:<8} {} [{}] host={} {} {}:{}",
            ev.ts,
            self.rule.level.as_str().to_uppercase(),
            self.rule.title,
            self.rule.id,
            ev.host.as_deref().unwrap_or("-"),
            ev.kind,
            self.source,
            self.seq,
        );
        for name in ["Image", "CommandLine", "SourceFilename", "TargetFilename"] {
            if let Some(v) = ev
                .fields()
                .find(|(k, _)| k.as_str() == name)
                .map(|(_, v)| v)
            {
                match v {
                    Value::Str(s) => {
                        let _ = write!(out, " {name}=");
                        quote(s, out);
                    }
                    other => {
                        let _ = write!(
                            out,
                            " {name}={}",
                            serde_json::to_string(other).unwrap_or_default()
                        );
                    }
                }
            }
        }
        out.extend_from_slice(b" | matched:");
        for (i, m) in self.matches.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            let _ = write!(out, "{sep}{} {} ", m.field, m.op);
            quote(&m.value, out);
            if let Some(n) = &m.name {
                let _ = write!(out, " ({n})");
            }
        }
    }
}

/// Writes `s` in double quotes for the text format. Windows paths stay
/// readable (backslashes are not doubled); quotes and control characters are
/// escaped so one alert stays one line.
fn quote(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{fields, EventKind, Os};
    use crate::rule::{Expr, Level, RuleBody, Scope};

    fn fixture() -> (Event, Rule, Vec<Match>) {
        let mut ev = Event::new(
            EventKind::ProcessStart,
            Os::Windows,
            "2021-09-14T10:00:00.5Z".parse().unwrap(),
        );
        ev.host = Some("LF-WS-0142".into());
        ev.set(fields::PROCESS_ID, Value::Int(4312));
        ev.set(fields::IMAGE, "C:\\Windows\\TAPI\\pa.exe".into());
        let rule = Rule {
            id: "rid".into(),
            title: "T".into(),
            level: Level::Critical,
            tags: vec!["attack.t1569.002".into()],
            origin: "x.yml".into(),
            scope: Scope::ANY,
            body: RuleBody::Expr(Expr::Const(true)),
        };
        let m = vec![Match {
            field: "Hashes".into(),
            op: "ioc".into(),
            value: "ab".into(),
            name: Some("lsa.exe".into()),
        }];
        (ev, rule, m)
    }

    fn render(format: Format) -> String {
        let (ev, rule, m) = fixture();
        let mut out = Vec::new();
        Alert {
            event: &ev,
            source: "t.ndjson",
            seq: 3,
            rule: &rule,
            matches: &m,
        }
        .render(format, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_has_every_key_in_order() {
        let s = render(Format::Json);
        assert_eq!(
            s,
            concat!(
                r#"{"ts":"2021-09-14T10:00:00.5Z","host":"LF-WS-0142","source":"t.ndjson","seq":3,"rule_id":"rid","rule_title":"T","#,
                r#""level":"critical","tags":["attack.t1569.002"],"kind":"process_start","#,
                r#""event":{"ts":"2021-09-14T10:00:00.5Z","kind":"process_start","host":"LF-WS-0142","os":"windows","ProcessId":4312,"Image":"C:\\Windows\\TAPI\\pa.exe"},"#,
                r#""matches":[{"field":"Hashes","op":"ioc","value":"ab","name":"lsa.exe"}]}"#,
                "\n"
            )
        );
    }

    #[test]
    fn text_is_one_line() {
        let s = render(Format::Text);
        assert_eq!(s.lines().count(), 1);
        assert!(s.contains("CRITICAL"), "{s}");
        assert!(s.contains("t.ndjson:3"), "{s}");
        assert!(s.contains(r#"Hashes ioc "ab" (lsa.exe)"#), "{s}");
        assert!(s.starts_with("2021-09-14T10:00:00.500Z CRITICAL"), "{s}");
        assert!(
            s.contains(r#"Image="C:\Windows\TAPI\pa.exe""#),
            "paths keep single backslashes: {s}"
        );
    }
}
