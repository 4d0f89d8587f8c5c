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
//! let matches = vec![Match { field: "Image".into(), op: "startswith", value: "C:\\Windows\\TAPI\\".into(), name: None }];
//! let alert = Alert { event: &ev, source: "trace.ndjson", seq: 7, rule: &rule, matches: &matches };
//! let mut line = Vec::new();
//! alert.render(Format::Json, &mut line);
//! assert!(String::from_utf8(line).unwrap().starts_with(r#"{"ts":"2021-09-14T10:00:00Z","host":null,"source":"trace.ndjson","seq":7,"rule_id":"r1""#));
//! ```

use std::io::Write as _;

mod json;

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

/// An event written as JSON once, for all the alerts it fires (see
/// [`Alert::render_with`]); its buffer is reused from event to event.
#[derive(Debug, Default)]
pub struct EventJson(Vec<u8>);

/// How the event JSON [`json::event`] writes begins: its timestamp follows.
const EVENT_JSON_HEAD: &[u8] = b"{\"ts\":";

impl EventJson {
    /// Writes `event` (the same bytes as `serde_json::to_writer(event)`),
    /// replacing the event written before.
    pub fn write(&mut self, event: &Event) {
        self.0.clear();
        json::event(event, &mut self.0);
    }

    /// The event's timestamp as written in it: copied into each alert
    /// rather than formatted again (formatting it was about a sixth of
    /// rendering an alert).
    fn ts(&self) -> Option<&[u8]> {
        let rest = self.0.strip_prefix(EVENT_JSON_HEAD)?;
        // A timestamp is a JSON string with no quote inside.
        let end = rest.get(1..)?.iter().position(|&b| b == b'"')? + 2;
        rest.get(..end)
    }
}

impl Alert<'_> {
    /// Appends the alert, newline-terminated, to `out`.
    pub fn render(&self, format: Format, out: &mut Vec<u8>) {
        self.render_with(format, None, out);
    }

    /// [`Alert::render`], given the event already written by
    /// [`EventJson`] when the format is JSON: an event that fires several
    /// rules is serialized once.
    pub fn render_with(&self, format: Format, event_json: Option<&EventJson>, out: &mut Vec<u8>) {
        match format {
            Format::Json => self.render_json(event_json, out),
            Format::Text => self.render_text(out),
        }
        out.push(b'\n');
    }

    fn render_json(&self, event_json: Option<&EventJson>, out: &mut Vec<u8>) {
        let ev = self.event;
        out.extend_from_slice(b"{\"ts\":");
        match event_json.and_then(EventJson::ts) {
            Some(ts) => out.extend_from_slice(ts),
            None => json::serde(&ev.ts, out),
        }
        out.extend_from_slice(b",\"host\":");
        match &ev.host {
            Some(h) => json::string(h, out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"source\":");
        json::string(self.source, out);
        out.extend_from_slice(b",\"seq\":");
        json::serde(&self.seq, out);
        out.extend_from_slice(b",\"rule_id\":");
        json::string(&self.rule.id, out);
        out.extend_from_slice(b",\"rule_title\":");
        json::string(&self.rule.title, out);
        out.extend_from_slice(b",\"level\":");
        json::string(self.rule.level.as_str(), out);
        out.extend_from_slice(b",\"tags\":[");
        for (i, t) in self.rule.tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(t, out);
        }
        out.extend_from_slice(b"],\"kind\":");
        json::string(ev.kind.as_str(), out);
        out.extend_from_slice(b",\"event\":");
        match event_json {
            Some(written) => out.extend_from_slice(&written.0),
            None => json::event(ev, out),
        }
        out.extend_from_slice(b",\"matches\":[");
        for (i, m) in self.matches.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"field\":");
            json::string(&m.field, out);
            out.extend_from_slice(b",\"op\":");
            json::string(m.op, out);
            out.extend_from_slice(b",\"value\":");
            json::string(&m.value, out);
            if let Some(n) = &m.name {
                out.extend_from_slice(b",\"name\":");
                json::string(n, out);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
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
            op: "ioc",
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
    fn an_alert_given_its_event_written_is_the_alert_written_whole() {
        let (mut ev, rule, m) = fixture();
        let stamps = [
            "2021-09-14T10:00:00Z",
            "2021-09-14T10:00:00.5Z",
            "2019-03-19T23:34:25.296123456Z",
            "1601-01-01T00:00:00Z",
            "-000044-03-15T12:00:00.000001Z",
            "9999-12-30T12:59:59.999999999Z",
        ];
        for ts in stamps {
            ev.ts = ts.parse().unwrap();
            let alert = Alert {
                event: &ev,
                source: "t.ndjson",
                seq: 3,
                rule: &rule,
                matches: &m,
            };
            let mut whole = Vec::new();
            alert.render(Format::Json, &mut whole);
            let mut written = EventJson::default();
            written.write(&ev);
            let mut given = Vec::new();
            alert.render_with(Format::Json, Some(&written), &mut given);
            assert_eq!(
                String::from_utf8(given).unwrap(),
                String::from_utf8(whole).unwrap()
            );
            assert_eq!(written.ts(), Some(format!("\"{}\"", ev.ts).as_bytes()));
        }
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
