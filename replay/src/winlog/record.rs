//! One Windows event record as `evtx_dump` writes it in JSON, read without
//! building a JSON tree.
//!
//! The `evtx` crate renders a binary record into exactly this JSON, so both
//! readers (EVTX files and `evtx_dump` JSON lines) go through this one parser
//! and then the one mapping ([`super::mapping`]).
//!
//! Accepted shapes: `{"Event": {"System": …, "EventData": …}}`, or the inner
//! object alone (`{"System": …, "EventData": …}`); XML attributes either as
//! `{"#attributes": {…}, "#text": v}` (evtx_dump's default) or as
//! `"Name_attributes"` siblings (`--separate-json-attributes`).
//!
//! ```
//! use trawl_replay::winlog::record::{parse_record, DataValue};
//!
//! let line = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},
//!   "EventID":1,"TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:34:25.287720Z"}},
//!   "EventRecordID":42,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS01"},
//!   "EventData":{"Image":"C:\\Windows\\System32\\cmd.exe","ProcessId":4312}}}"##;
//! let rec = parse_record(line.as_bytes(), &|_, _| true).unwrap();
//! assert_eq!(rec.event_id, Some(1));
//! assert_eq!(rec.record_id, Some(42));
//! assert_eq!(rec.channel.as_deref(), Some("Microsoft-Windows-Sysmon/Operational"));
//! assert_eq!(rec.data[0], ("Image".into(), DataValue::Str("C:\\Windows\\System32\\cmd.exe".into())));
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The most `EventData` fields kept from one record (a Sysmon event has ~20).
pub const MAX_DATA_FIELDS: usize = 1024;

/// One `EventData` value: the engine's event value, typed as JSON types it
/// (the mapping then types it as trawl's field table says).
pub use trawl_engine::event::Value as DataValue;

/// The `System` part of a record trawl uses, and the `EventData` fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WinRecord<'a> {
    /// `System/Provider/@Name`.
    pub provider: Option<Cow<'a, str>>,
    /// `System/Channel`; absent or null in logs collected through ETW.
    pub channel: Option<Cow<'a, str>>,
    /// `System/EventID`.
    pub event_id: Option<u32>,
    /// `System/EventRecordID`.
    pub record_id: Option<u64>,
    /// `System/TimeCreated/@SystemTime` as written (RFC 3339, UTC).
    pub time_created: Option<Cow<'a, str>>,
    /// `System/Computer`.
    pub computer: Option<Cow<'a, str>>,
    /// `EventData` fields in record order; empty when the record was not
    /// wanted (see [`parse_record`]) or has none.
    pub data: Vec<(Cow<'a, str>, DataValue)>,
    /// Whether `EventData` was read (false: skipped as unwanted, or absent).
    pub data_read: bool,
}

/// Decides from (channel or provider, event id) whether a record's
/// `EventData` is worth reading; records it turns down are only counted.
pub type Wanted<'w> = &'w dyn Fn(Option<&str>, Option<u32>) -> bool;

/// Parses one record's JSON. `wanted` is asked once `System` has been read;
/// when it says no, `EventData` is skipped without being decoded (it must
/// still be valid JSON). A record whose `EventData` comes before its `System`
/// is read whole.
pub fn parse_record<'a>(json: &'a [u8], wanted: Wanted<'_>) -> Result<WinRecord<'a>, String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let rec = TopSeed { wanted }
        .deserialize(&mut de)
        .map_err(|e| crate::ndjson::describe_json_error(&e))?;
    de.end()
        .map_err(|e| format!("trailing text after the JSON object ({e})"))?;
    Ok(rec)
}

/// A map key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(Key)
    }
}

/// A string, borrowed when it has no escapes.
struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A scalar of the `System` part: text or a number, or an element whose
/// attributes (`#attributes`) hold what we want.
#[derive(Default)]
struct Node<'de> {
    text: Option<Cow<'de, str>>,
    number: Option<u64>,
    /// Attributes trawl reads: `Name` (Provider), `SystemTime` (TimeCreated).
    attr: Option<Cow<'de, str>>,
}

impl Node<'_> {
    fn as_u64(&self) -> Option<u64> {
        self.number.or_else(|| {
            let t = self.text.as_deref()?.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => t.parse().ok(),
            }
        })
    }
}

/// Reads a `System` child: `"v"`, `5`, `null`, or
/// `{"#attributes": {"Name"|"SystemTime": …}, "#text": v}`.
struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a System element")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node {
            text: Some(Cow::Borrowed(v)),
            ..Node::default()
        })
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node {
            text: Some(Cow::Owned(v.to_owned())),
            ..Node::default()
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node {
            number: Some(v),
            ..Node::default()
        })
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node {
            number: u64::try_from(v).ok(),
            ..Node::default()
        })
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node<'de>, E> {
        Ok(Node::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node<'de>, E> {
        Ok(Node::default())
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Node::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut node = Node::default();
        while let Some(Key(k)) = map.next_key()? {
            match &*k {
                "#text" => {
                    let inner = map.next_value_seed(NodeSeed)?;
                    node.text = inner.text;
                    node.number = inner.number;
                }
                "#attributes" => node.attr = map.next_value_seed(AttrSeed)?,
                // `--separate-json-attributes` or a flattened element.
                "Name" | "SystemTime" => node.attr = map.next_value_seed(NodeSeed)?.text,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(node)
    }
}

/// `#attributes` of a System element: the `Name` or `SystemTime` value.
struct AttrSeed;

impl<'de> DeserializeSeed<'de> for AttrSeed {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrSeed {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Key(k)) = map.next_key()? {
            if k == "Name" || k == "SystemTime" {
                found = map.next_value_seed(NodeSeed)?.text;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

struct TopSeed<'w> {
    wanted: Wanted<'w>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = WinRecord<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<WinRecord<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = WinRecord<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r##"a JSON object {"Event": {"System": …, "EventData": …}}"##)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WinRecord<'de>, A::Error> {
        let mut rec = WinRecord::default();
        let mut seen_system = false;
        let mut seen_event = false;
        while let Some(Key(k)) = map.next_key()? {
            match &*k {
                "Event" if !seen_event => {
                    seen_event = true;
                    let inner = map.next_value_seed(TopSeed {
                        wanted: self.wanted,
                    })?;
                    seen_system |= inner.record_id.is_some() || inner.event_id.is_some();
                    rec = inner;
                }
                "System" => {
                    seen_system = true;
                    map.next_value_seed(SystemSeed(&mut rec))?;
                }
                "EventData" => {
                    let want = !seen_system
                        || (self.wanted)(
                            rec.channel.as_deref().or(rec.provider.as_deref()),
                            rec.event_id,
                        );
                    if want {
                        rec.data = map.next_value_seed(DataSeed)?;
                        rec.data_read = true;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !seen_system && !seen_event {
            return Err(de::Error::custom(
                "no `Event` or `System` object: not a Windows event record",
            ));
        }
        Ok(rec)
    }
}

struct SystemSeed<'r, 'de>(&'r mut WinRecord<'de>);

impl<'de> DeserializeSeed<'de> for SystemSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SystemSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the `System` object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let rec = self.0;
        while let Some(Key(k)) = map.next_key()? {
            match &*k {
                "Provider" | "Provider_attributes" => {
                    let n = map.next_value_seed(NodeSeed)?;
                    rec.provider = n.attr.or(n.text);
                }
                "EventID" => {
                    let n = map.next_value_seed(NodeSeed)?;
                    rec.event_id = n.as_u64().and_then(|v| u32::try_from(v).ok());
                }
                "EventRecordID" => rec.record_id = map.next_value_seed(NodeSeed)?.as_u64(),
                "TimeCreated" | "TimeCreated_attributes" => {
                    let n = map.next_value_seed(NodeSeed)?;
                    rec.time_created = n.attr.or(n.text);
                }
                "Channel" => rec.channel = map.next_value_seed(NodeSeed)?.text,
                "Computer" => rec.computer = map.next_value_seed(NodeSeed)?.text,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `EventData`: `{"Name": value, …}`, or null; the `#attributes` of the
/// element itself are passed over.
struct DataSeed;

impl<'de> DeserializeSeed<'de> for DataSeed {
    type Value = Vec<(Cow<'de, str>, DataValue)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed {
    type Value = Vec<(Cow<'de, str>, DataValue)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the `EventData` object")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(Cow<'de, str>, DataValue)> = Vec::with_capacity(24);
        while let Some(Key(k)) = map.next_key()? {
            if k == "#attributes" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let v: serde_json::Value = map.next_value()?;
            if out.len() == MAX_DATA_FIELDS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_DATA_FIELDS} EventData fields"
                )));
            }
            out.push((k, data_value(v)));
        }
        Ok(out)
    }
}

fn data_value(v: serde_json::Value) -> DataValue {
    use serde_json::Value as J;
    match v {
        J::String(s) => DataValue::Str(s),
        J::Number(n) => match n.as_i64() {
            Some(i) => DataValue::Int(i),
            None => match n.as_u64() {
                Some(u) => DataValue::Str(u.to_string()),
                None => DataValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
        },
        J::Bool(b) => DataValue::Bool(b),
        J::Null => DataValue::Null,
        other => DataValue::Json(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: Option<&str>, _: Option<u32>) -> bool {
        true
    }

    #[test]
    fn attributes_in_both_spellings() {
        let a = br##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing","Guid":"{g}"}},"EventID":{"#attributes":{"Qualifiers":0},"#text":4688},"TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:34:25Z"}},"EventRecordID":"0x10","Channel":"Security","Computer":"DC1","Security":null},"EventData":{"NewProcessName":"C:\\a.exe","Empty":null}}}"##;
        let r = parse_record(a, &all).unwrap();
        assert_eq!(
            r.provider.as_deref(),
            Some("Microsoft-Windows-Security-Auditing")
        );
        assert_eq!(r.event_id, Some(4688));
        assert_eq!(r.record_id, Some(16));
        assert_eq!(r.time_created.as_deref(), Some("2019-03-19T23:34:25Z"));
        assert_eq!(r.computer.as_deref(), Some("DC1"));
        assert_eq!(r.data.len(), 2);
        assert_eq!(r.data[1].1, DataValue::Null);

        let b = br##"{"System":{"Provider_attributes":{"Name":"P"},"EventID":5,"TimeCreated_attributes":{"SystemTime":"2020-01-01T00:00:00Z"},"EventRecordID":7,"Channel":null},"EventData":{"Data":["x",1]}}"##;
        let r = parse_record(b, &all).unwrap();
        assert_eq!(r.provider.as_deref(), Some("P"));
        assert_eq!(r.channel, None);
        assert_eq!(r.time_created.as_deref(), Some("2020-01-01T00:00:00Z"));
        assert!(matches!(r.data[0].1, DataValue::Json(_)));
    }

    #[test]
    fn unwanted_event_data_is_skipped_but_checked() {
        let rec = br##"{"Event":{"System":{"EventID":7,"Channel":"C"},"EventData":{"A":"b"}}}"##;
        let r = parse_record(rec, &|c, id| c == Some("C") && id == Some(1)).unwrap();
        assert!(r.data.is_empty() && !r.data_read);
        let broken = br##"{"Event":{"System":{"EventID":7,"Channel":"C"},"EventData":{"A":}}}"##;
        assert!(parse_record(broken, &|_, _| false)
            .unwrap_err()
            .starts_with("not valid JSON"));
    }

    #[test]
    fn not_a_record() {
        assert!(
            parse_record(br##"{"ts":"x","kind":"process_start"}"##, &all)
                .unwrap_err()
                .contains("not a Windows event record")
        );
        assert!(parse_record(br##"[1]"##, &all).is_err());
        assert!(parse_record(br##"{"System":{}} x"##, &all)
            .unwrap_err()
            .starts_with("trailing text"));
    }
}
