//! Windows event records to trawl events: the one mapping both Windows log
//! readers (EVTX files, `evtx_dump` JSON) use.
//!
//! | channel | event id | kind |
//! | --- | --- | --- |
//! | `Microsoft-Windows-Sysmon/Operational` | 1 | `process_start` |
//! | | 5 | `process_exit` |
//! | | 11 | `file_create` |
//! | | 2 (file creation time changed) | `file_write` |
//! | | 23, 26 | `file_delete` |
//! | `Security` | 4688 | `process_start` |
//! | | 4689 | `process_exit` |
//!
//! `ts` comes from `TimeCreated`, `host` from `Computer`, the sequence number
//! from `EventRecordID`. Every `EventData` field is kept under its own name
//! (`Hashes` as Sysmon writes it, `SHA1=…,MD5=…,SHA256=…,IMPHASH=…`, which is
//! the form trawl's IOC matcher and SigmaHQ's `Hashes|contains` rules read).
//! Security events get the names Sigma's Windows pipelines give them:
//! 4688's `NewProcessName` → `Image`, `ParentProcessName` → `ParentImage`,
//! hex `NewProcessId` → `ProcessId`, its own `ProcessId` (the creator's) →
//! `ParentProcessId`, `SubjectDomainName\SubjectUserName` → `User` (exactly;
//! SYSTEM is then the machine account, `CORP\WS01$`, not Sysmon's
//! `NT AUTHORITY\SYSTEM`), and, as Hayabusa's 4688
//! conversion maps them, `SubjectLogonId` → `LogonId` and `MandatoryLabel` →
//! `IntegrityLevel` (`S-1-16-12288` as `High`, and so on); 4689's
//! `ProcessName` → `Image` and hex `ProcessId` → `ProcessId`. Integer fields
//! written in hex (`0x1a2c`) become integers.
//!
//! A record of any other channel or id is not an event: the readers count it
//! per channel and id.
//!
//! ```
//! use trawl_replay::winlog::mapping::{map_record, Mapped};
//! use trawl_replay::winlog::record::parse_record;
//! use trawl_engine::event::EventKind;
//!
//! let json = r##"{"Event":{"System":{"EventID":4688,"Channel":"Security","Computer":"WS1",
//!   "EventRecordID":9,"TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:34:25Z"}}},
//!   "EventData":{"SubjectUserName":"bob","SubjectDomainName":"CORP","NewProcessId":"0x10e8",
//!   "NewProcessName":"C:\\Windows\\System32\\cmd.exe","ProcessId":"0x4","ParentProcessName":"C:\\x.exe"}}}"##;
//! let rec = parse_record(json.as_bytes(), &trawl_replay::winlog::mapping::is_mapped).unwrap();
//! let Mapped::Event { seq, event } = map_record(rec, &mut None).unwrap() else { panic!() };
//! assert_eq!((seq, event.kind), (Some(9), EventKind::ProcessStart));
//! assert_eq!(event.get_str("Image"), Some("C:\\Windows\\System32\\cmd.exe"));
//! assert_eq!(event.get_str("User"), Some("CORP\\bob"));
//! assert_eq!(event.host.as_deref(), Some("WS1"));
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use trawl_engine::event::{
    fields, Event, EventKind, FieldKey, FieldType, Os, Timestamp, Value, KNOWN_FIELDS,
};

use super::record::{DataValue, WinRecord};
use crate::ndjson::parse_int;

/// Sysmon's channel (and, for logs without a channel, its provider).
pub const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";
const SYSMON_PROVIDER: &str = "Microsoft-Windows-Sysmon";
/// The Security log (and its provider).
pub const SECURITY_CHANNEL: &str = "Security";
const SECURITY_PROVIDER: &str = "Microsoft-Windows-Security-Auditing";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Log {
    Sysmon,
    Security,
}

fn log_of(channel_or_provider: &str) -> Option<Log> {
    let c = channel_or_provider;
    if c.eq_ignore_ascii_case(SYSMON_CHANNEL) || c.eq_ignore_ascii_case(SYSMON_PROVIDER) {
        Some(Log::Sysmon)
    } else if c.eq_ignore_ascii_case(SECURITY_CHANNEL) || c.eq_ignore_ascii_case(SECURITY_PROVIDER)
    {
        Some(Log::Security)
    } else {
        None
    }
}

fn kind_of(log: Log, id: u32) -> Option<EventKind> {
    Some(match (log, id) {
        (Log::Sysmon, 1) | (Log::Security, 4688) => EventKind::ProcessStart,
        (Log::Sysmon, 5) | (Log::Security, 4689) => EventKind::ProcessExit,
        (Log::Sysmon, 11) => EventKind::FileCreate,
        (Log::Sysmon, 2) => EventKind::FileWrite,
        (Log::Sysmon, 23 | 26) => EventKind::FileDelete,
        _ => return None,
    })
}

/// Whether a record of this channel (or, without one, provider) and event id
/// becomes an event. Pass it to [`parse_record`](super::record::parse_record)
/// so other records are not decoded further than their `System` part.
pub fn is_mapped(channel_or_provider: Option<&str>, event_id: Option<u32>) -> bool {
    match (channel_or_provider.and_then(log_of), event_id) {
        (Some(log), Some(id)) => kind_of(log, id).is_some(),
        _ => false,
    }
}

/// What a record became.
#[derive(Debug)]
pub enum Mapped {
    /// An event, with its `EventRecordID` (when the record has one).
    Event { seq: Option<u64>, event: Event },
    /// A record of another channel or id: counted, not matched.
    Other,
}

/// Maps one record. `host_cache` holds the last host name seen, so a file
/// from one machine shares one allocation for it. An error (a mapped record
/// without a readable `TimeCreated`) names what is missing.
pub fn map_record(rec: WinRecord<'_>, host_cache: &mut Option<Arc<str>>) -> Result<Mapped, String> {
    let head = Head {
        provider: rec.provider.as_deref(),
        channel: rec.channel.as_deref(),
        event_id: rec.event_id,
        record_id: rec.record_id,
        time_created: rec.time_created.as_deref(),
        computer: rec.computer.as_deref(),
        data_read: rec.data_read,
    };
    map_fields(&head, rec.data, host_cache)
}

/// The `System` part of a record, as [`map_fields`] reads it.
pub(crate) struct Head<'a> {
    pub(crate) provider: Option<&'a str>,
    pub(crate) channel: Option<&'a str>,
    pub(crate) event_id: Option<u32>,
    pub(crate) record_id: Option<u64>,
    pub(crate) time_created: Option<&'a str>,
    pub(crate) computer: Option<&'a str>,
    pub(crate) data_read: bool,
}

/// The name of an `EventData` field, and its interned key.
pub(crate) trait DataName {
    /// Whether the names of one record's fields are known to be distinct
    /// (then no field is looked for among the ones already set).
    const DISTINCT: bool;
    /// The field's name as written.
    fn name(&self) -> &str;
    /// The field's key.
    fn key(&self) -> FieldKey;
}

impl DataName for Cow<'_, str> {
    // JSON objects may repeat a key.
    const DISTINCT: bool = false;
    fn name(&self) -> &str {
        self
    }
    fn key(&self) -> FieldKey {
        FieldKey::from_name(self)
    }
}

/// [`map_record`] of a record's `System` part and its `EventData` fields.
pub(crate) fn map_fields<N: DataName>(
    rec: &Head<'_>,
    data: Vec<(N, DataValue)>,
    host_cache: &mut Option<Arc<str>>,
) -> Result<Mapped, String> {
    let log = rec.channel.or(rec.provider).and_then(log_of);
    let (Some(log), Some(id)) = (log, rec.event_id) else {
        return Ok(Mapped::Other);
    };
    let Some(kind) = kind_of(log, id) else {
        return Ok(Mapped::Other);
    };
    if !rec.data_read {
        return Err("the record's EventData was not read".to_owned());
    }
    let ts = match rec.time_created {
        Some(t) => t.parse::<Timestamp>().map_err(|e| {
            format!("TimeCreated `{t}` is not an RFC 3339 timestamp ({e}); record skipped")
        })?,
        None => return Err("the record has no TimeCreated; record skipped".to_owned()),
    };
    // Security's mapping adds up to six fields of its own.
    let mut event = Event::with_capacity(kind, Os::Windows, ts, data.len() + 6);
    event.host = rec.computer.map(|c| match host_cache {
        Some(h) if **h == *c => Arc::clone(h),
        _ => {
            let h: Arc<str> = Arc::from(c);
            *host_cache = Some(Arc::clone(&h));
            h
        }
    });
    if log == Log::Security {
        security_fields(id, &data, &mut event);
    }
    // Sysmon fields are set on an empty event: with distinct names, none can
    // be there already.
    let distinct = N::DISTINCT && log == Log::Sysmon;
    for (name, value) in data {
        let key = match (log, id, name.name()) {
            // 4688's `ProcessId` is the creator's; `ProcessId` is the new one.
            (Log::Security, 4688, "ProcessId") => fields::PARENT_PROCESS_ID,
            _ => name.key(),
        };
        if distinct || event.get(&key).is_none() {
            let value = convert(&key, value);
            event.push_unchecked(key, value);
        }
    }
    Ok(Mapped::Event {
        seq: rec.record_id,
        event,
    })
}

/// The Sigma names of Security 4688/4689 fields, set before the raw fields.
fn security_fields<N: DataName>(id: u32, data: &[(N, DataValue)], event: &mut Event) {
    let get = |name: &str| data.iter().find(|(k, _)| k.name() == name).map(|(_, v)| v);
    let text = |name: &str| match get(name) {
        Some(DataValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let (image, pid) = if id == 4688 {
        if let Some(p) = text("ParentProcessName") {
            event.push_unchecked(fields::PARENT_IMAGE, Value::Str(p));
        }
        ("NewProcessName", "NewProcessId")
    } else {
        ("ProcessName", "ProcessId")
    };
    if let Some(i) = text(image) {
        event.push_unchecked(fields::IMAGE, Value::Str(i));
    }
    if let Some(v) = get(pid) {
        event.push_unchecked(fields::PROCESS_ID, convert(&fields::PROCESS_ID, v.clone()));
    }
    if let Some(user) = text("SubjectUserName") {
        let user = match text("SubjectDomainName") {
            Some(d) if !d.is_empty() && d != "-" => format!("{d}\\{user}"),
            _ => user,
        };
        event.push_unchecked(fields::USER, Value::Str(user));
    }
    if id == 4688 {
        if let Some(label) = text("MandatoryLabel") {
            let level = integrity_level(&label).map_or(label, str::to_owned);
            event.push_unchecked(FieldKey::from_name("IntegrityLevel"), Value::Str(level));
        }
        if let Some(logon) = text("SubjectLogonId") {
            event.push_unchecked(FieldKey::from_name("LogonId"), Value::Str(logon));
        }
    }
}

/// Sysmon's `IntegrityLevel` name for a 4688 `MandatoryLabel` SID (other
/// labels stay as written). SigmaHQ's rules list both forms.
fn integrity_level(label: &str) -> Option<&'static str> {
    Some(match label {
        "S-1-16-4096" => "Low",
        "S-1-16-8192" => "Medium",
        "S-1-16-12288" => "High",
        "S-1-16-16384" => "System",
        _ => return None,
    })
}

/// A value typed as trawl's event model types the field: integers from
/// decimal or hex text, text from numbers where a string is expected.
fn convert(key: &FieldKey, v: DataValue) -> Value {
    // Only well-known names have a type (`field_type`), and a well-known
    // name's key is always its index in the table.
    let ty = key.known_id().map(|i| KNOWN_FIELDS[usize::from(i)].1);
    match (ty, v) {
        (Some(FieldType::Integer), Value::Str(s)) => {
            parse_int(&s).map_or(Value::Str(s), Value::Int)
        }
        (Some(FieldType::String), Value::Int(i)) => Value::Str(i.to_string()),
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winlog::record::parse_record;

    fn map(json: &str) -> Result<Mapped, String> {
        map_record(
            parse_record(json.as_bytes(), &is_mapped).unwrap(),
            &mut None,
        )
    }

    fn event(json: &str) -> (Option<u64>, Event) {
        match map(json).unwrap() {
            Mapped::Event { seq, event } => (seq, event),
            Mapped::Other => panic!("not mapped: {json}"),
        }
    }

    fn sys(channel: &str, id: u32, data: &str) -> String {
        format!(
            r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"P"}}}},"EventID":{id},"TimeCreated":{{"#attributes":{{"SystemTime":"2019-03-19T23:34:25.287720Z"}}}},"EventRecordID":77,"Channel":"{channel}","Computer":"WS01.corp"}},"EventData":{data}}}}}"##
        )
    }

    #[test]
    fn sysmon_ids_map_to_kinds() {
        for (id, kind) in [
            (1, EventKind::ProcessStart),
            (5, EventKind::ProcessExit),
            (11, EventKind::FileCreate),
            (2, EventKind::FileWrite),
            (23, EventKind::FileDelete),
            (26, EventKind::FileDelete),
        ] {
            let (seq, ev) = event(&sys(SYSMON_CHANNEL, id, r##"{"Image":"C:\\a.exe"}"##));
            assert_eq!((seq, ev.kind), (Some(77), kind), "id {id}");
            assert_eq!(ev.ts.to_string(), "2019-03-19T23:34:25.28772Z");
            assert_eq!(ev.host.as_deref(), Some("WS01.corp"));
        }
        for id in [3, 7, 13, 4624] {
            assert!(matches!(
                map(&sys(SYSMON_CHANNEL, id, "{}")).unwrap(),
                Mapped::Other
            ));
        }
        assert!(matches!(
            map(&sys("Application", 1, "{}")).unwrap(),
            Mapped::Other
        ));
    }

    #[test]
    fn sysmon_fields_keep_their_names_and_types() {
        let (_, ev) = event(&sys(
            SYSMON_CHANNEL,
            1,
            r##"{"RuleName":"-","ProcessId":4312,"ParentProcessId":"812","Image":"C:\\Windows\\System32\\cmd.exe","Hashes":"SHA1=AA,MD5=BB,SHA256=CC,IMPHASH=DD","TerminalSessionId":"1","Custom":"x"}"##,
        ));
        assert_eq!(ev.get(&fields::PROCESS_ID), Some(&Value::Int(4312)));
        assert_eq!(ev.get(&fields::PARENT_PROCESS_ID), Some(&Value::Int(812)));
        assert_eq!(
            ev.get_str("Hashes"),
            Some("SHA1=AA,MD5=BB,SHA256=CC,IMPHASH=DD")
        );
        assert_eq!(ev.get_str("Custom"), Some("x"));
        let names: Vec<&str> = ev.fields().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "RuleName",
                "ProcessId",
                "ParentProcessId",
                "Image",
                "Hashes",
                "TerminalSessionId",
                "Custom"
            ]
        );
    }

    #[test]
    fn security_4688_and_4689_get_sigma_names() {
        let (_, ev) = event(&sys(
            "Security",
            4688,
            r##"{"SubjectUserSid":"S-1-5-18","SubjectUserName":"WS01$","SubjectDomainName":"CORP","SubjectLogonId":"0x3e7","NewProcessId":"0x10e8","NewProcessName":"C:\\Windows\\PSEXESVC.exe","TokenElevationType":"%%1936","ProcessId":"0x26c","CommandLine":"","ParentProcessName":"C:\\Windows\\System32\\services.exe"}"##,
        ));
        assert_eq!(ev.kind, EventKind::ProcessStart);
        assert_eq!(ev.get_str("Image"), Some("C:\\Windows\\PSEXESVC.exe"));
        assert_eq!(
            ev.get_str("ParentImage"),
            Some("C:\\Windows\\System32\\services.exe")
        );
        assert_eq!(ev.get(&fields::PROCESS_ID), Some(&Value::Int(0x10e8)));
        assert_eq!(ev.get(&fields::PARENT_PROCESS_ID), Some(&Value::Int(0x26c)));
        // The issue's mapping, exactly: SYSTEM is named by the machine account.
        assert_eq!(ev.get_str("User"), Some("CORP\\WS01$"));
        assert_eq!(ev.get_str("LogonId"), Some("0x3e7"));
        assert_eq!(ev.get_str("IntegrityLevel"), None);
        assert_eq!(ev.get_str("CommandLine"), Some(""));
        // The raw names stay too.
        assert_eq!(
            ev.get_str("NewProcessName"),
            Some("C:\\Windows\\PSEXESVC.exe")
        );
        assert_eq!(
            ev.get(&FieldKey::from_name("NewProcessId")),
            Some(&Value::Int(0x10e8))
        );

        let (_, ev) = event(&sys(
            "Security",
            4689,
            r##"{"SubjectUserName":"bob","SubjectDomainName":"-","Status":"0x0","ProcessId":"0x1f0","ProcessName":"C:\\x.exe"}"##,
        ));
        assert_eq!(ev.kind, EventKind::ProcessExit);
        assert_eq!(ev.get_str("Image"), Some("C:\\x.exe"));
        assert_eq!(ev.get(&fields::PROCESS_ID), Some(&Value::Int(0x1f0)));
        assert_eq!(ev.get_str("User"), Some("bob"));
    }

    #[test]
    fn security_4688_version_2_fields_get_sysmon_names_and_values() {
        let with = |sid: &str, label: &str| {
            event(&sys(
                "Security",
                4688,
                &format!(
                    r##"{{"SubjectUserSid":"{sid}","SubjectUserName":"IEUser","SubjectDomainName":"IEWIN7","SubjectLogonId":"0xf4be","NewProcessId":"0x1","NewProcessName":"C:\\a.exe","ProcessId":"0x2","MandatoryLabel":"{label}","TargetUserName":"-"}}"##
                ),
            ))
            .1
        };
        for (label, level) in [
            ("S-1-16-4096", "Low"),
            ("S-1-16-8192", "Medium"),
            ("S-1-16-12288", "High"),
            ("S-1-16-16384", "System"),
            ("S-1-16-8448", "S-1-16-8448"),
        ] {
            let ev = with("S-1-5-21-1-2-3-1000", label);
            assert_eq!(ev.get_str("IntegrityLevel"), Some(level), "{label}");
            assert_eq!(ev.get_str("MandatoryLabel"), Some(label));
            assert_eq!(ev.get_str("LogonId"), Some("0xf4be"));
            assert_eq!(ev.get_str("User"), Some("IEWIN7\\IEUser"));
        }
    }

    #[test]
    fn provider_stands_in_for_a_missing_channel() {
        let json = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":11,"TimeCreated":{"#attributes":{"SystemTime":"2020-01-01T00:00:00Z"}},"Channel":null},"EventData":{"TargetFilename":"C:\\t.txt"}}}"##;
        let (seq, ev) = event(json);
        assert_eq!(seq, None);
        assert_eq!(ev.kind, EventKind::FileCreate);
        assert_eq!(ev.host, None);
    }

    #[test]
    fn a_mapped_record_needs_a_time() {
        let json = r##"{"Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational"},"EventData":{}}}"##;
        assert!(map(json).unwrap_err().contains("no TimeCreated"));
        let json = r##"{"Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","TimeCreated":{"#attributes":{"SystemTime":"yesterday"}}},"EventData":{}}}"##;
        assert!(map(json).unwrap_err().contains("`yesterday`"));
    }
}
