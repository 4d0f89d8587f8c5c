//! Values a rule can test that no single event field holds as they are.
//!
//! Sigma rules name Sysmon fields, which trawl's events carry. Other rule
//! languages describe the same events with other columns: Microsoft 365
//! Defender's `FileName` is the last component of the path Sysmon calls
//! `Image`, its `SHA256` one item of Sysmon's `Hashes`, its `AccountName` the
//! user part of `DOMAIN\user`. A [`Derived`] value names such a column; the
//! matcher reads it with [`Derived::text`], which returns a slice of the event
//! (or a constant), so deriving costs no allocation and the matcher still makes
//! one automaton pass over it, as over any field.
//!
//! ```
//! use trawl_engine::derived::Derived;
//! use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
//! use trawl_engine::ioc::HashAlgo;
//!
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
//! ev.set(fields::IMAGE, "C:\\Windows\\TAPI\\pa.exe".into());
//! ev.set(fields::USER, "LAWFIRM\\itp-admin".into());
//! ev.set(fields::HASHES, "SHA1=AB,SHA256=2A1044E9".into());
//! let mut buf = String::new();
//! assert_eq!(Derived::FileName(fields::IMAGE).text(&ev, &mut buf), Some("pa.exe"));
//! assert_eq!(Derived::AccountName(fields::USER).text(&ev, &mut buf), Some("itp-admin"));
//! assert_eq!(Derived::AccountDomain(fields::USER).text(&ev, &mut buf), Some("LAWFIRM"));
//! assert_eq!(Derived::Hash(HashAlgo::Sha256).text(&ev, &mut buf), Some("2a1044e9"));
//! assert_eq!(Derived::ActionType.text(&ev, &mut buf), Some("ProcessCreated"));
//! ```

use std::fmt;

use crate::event::{Event, EventKind, FieldKey, Value};
use crate::ioc::{event_digest, HashAlgo};

/// A value derived from an event (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Derived {
    /// The last component of a path field: the text after its last `\` or
    /// `/` (all of it when it has neither).
    FileName(FieldKey),
    /// The event's digest of one algorithm: a field named after the algorithm
    /// (`SHA256`, …) if the event has one, else the item of `Hashes` (or
    /// `Hash`) labelled with it, or an unlabelled digest of its length; read
    /// as IOC lists read them, and given in lower case.
    Hash(HashAlgo),
    /// The user part of a `DOMAIN\user` field (all of it when there is no
    /// `\`).
    AccountName(FieldKey),
    /// The domain part of a `DOMAIN\user` field; absent when there is no `\`.
    AccountDomain(FieldKey),
    /// The machine the event comes from (the trace's `host`).
    Host,
    /// Microsoft 365 Defender's `ActionType` for the event's kind:
    /// `ProcessCreated`, `FileCreated`, `FileModified`, `FileRenamed`,
    /// `FileDeleted`; absent for a process exit, which Defender's process
    /// table has no row for.
    ActionType,
}

impl Derived {
    /// The value's text in `event`, or `None` when the event does not carry
    /// what it is derived from (a field that is absent or not a string).
    /// `buf` holds text that has to be made (a digest in upper case is given
    /// in lower case, as Defender stores digests), reusing its memory from
    /// call to call.
    pub fn text<'a>(&self, event: &'a Event, buf: &'a mut String) -> Option<&'a str> {
        let str_field = |key: &FieldKey| match event.get(key) {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        match self {
            Derived::FileName(key) => {
                let path = str_field(key)?;
                Some(path.rsplit(['\\', '/']).next().unwrap_or(path))
            }
            Derived::Hash(algo) => {
                let hex = event_digest(event, *algo)?;
                if !hex.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Some(hex);
                }
                buf.clear();
                buf.extend(hex.chars().map(|c| c.to_ascii_lowercase()));
                Some(buf.as_str())
            }
            Derived::AccountName(key) => {
                let user = str_field(key)?;
                Some(user.split_once('\\').map_or(user, |(_, name)| name))
            }
            Derived::AccountDomain(key) => str_field(key)?.split_once('\\').map(|(d, _)| d),
            Derived::Host => event.host.as_deref(),
            Derived::ActionType => action_type(event.kind),
        }
    }
}

/// Defender's `ActionType` for an event kind.
pub fn action_type(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::ProcessStart => Some("ProcessCreated"),
        EventKind::ProcessExit => None,
        EventKind::FileCreate => Some("FileCreated"),
        EventKind::FileWrite => Some("FileModified"),
        EventKind::FileRename => Some("FileRenamed"),
        EventKind::FileDelete => Some("FileDeleted"),
    }
}

/// How an alert's `matches` names the value: the field it comes from and
/// what is taken of it (`Image|filename`, `Hashes|SHA256`, `User|name`,
/// `User|domain`, `host`, `kind|ActionType`).
impl fmt::Display for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Derived::FileName(k) => write!(f, "{k}|filename"),
            Derived::Hash(a) => write!(f, "Hashes|{}", a.as_str()),
            Derived::AccountName(k) => write!(f, "{k}|name"),
            Derived::AccountDomain(k) => write!(f, "{k}|domain"),
            Derived::Host => f.write_str("host"),
            Derived::ActionType => f.write_str("kind|ActionType"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{fields, Os, Timestamp};

    fn text(d: Derived, e: &Event) -> Option<String> {
        d.text(e, &mut String::new()).map(str::to_owned)
    }

    fn ev(kind: EventKind) -> Event {
        Event::new(kind, Os::Windows, Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn file_names_and_accounts_are_slices_of_their_fields() {
        let mut e = ev(EventKind::FileCreate);
        e.set(fields::TARGET_FILENAME, "/tmp/x/evil.sh".into());
        e.set(fields::USER, "root".into());
        e.set(fields::IMAGE, "nodir.exe".into());
        assert_eq!(
            text(Derived::FileName(fields::TARGET_FILENAME), &e).as_deref(),
            Some("evil.sh")
        );
        assert_eq!(
            text(Derived::FileName(fields::IMAGE), &e).as_deref(),
            Some("nodir.exe")
        );
        assert_eq!(
            text(Derived::AccountName(fields::USER), &e).as_deref(),
            Some("root")
        );
        assert_eq!(
            text(Derived::AccountDomain(fields::USER), &e).as_deref(),
            None
        );
        assert_eq!(
            text(Derived::FileName(fields::PARENT_IMAGE), &e).as_deref(),
            None
        );
        e.set(fields::TARGET_FILENAME, "C:\\dir\\".into());
        assert_eq!(
            text(Derived::FileName(fields::TARGET_FILENAME), &e).as_deref(),
            Some(""),
            "a path ending in a separator has an empty file name"
        );
        e.set(fields::PROCESS_ID, Value::Int(4));
        assert_eq!(
            text(Derived::FileName(fields::PROCESS_ID), &e).as_deref(),
            None
        );
    }

    #[test]
    fn action_types_follow_the_event_kind() {
        let names: Vec<Option<String>> = EventKind::ALL
            .iter()
            .map(|k| text(Derived::ActionType, &ev(*k)))
            .collect();
        let names: Vec<Option<&str>> = names.iter().map(|n| n.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("ProcessCreated"),
                None,
                Some("FileCreated"),
                Some("FileModified"),
                Some("FileRenamed"),
                Some("FileDeleted")
            ]
        );
    }

    #[test]
    fn hashes_come_from_a_named_field_first_then_from_hashes() {
        let mut e = ev(EventKind::ProcessStart);
        e.set(
            fields::HASHES,
            "SHA1=1111111111111111111111111111111111111111,MD5=22222222222222222222222222222222,IMPHASH=33333333333333333333333333333333".into(),
        );
        assert_eq!(
            text(Derived::Hash(HashAlgo::Md5), &e).as_deref(),
            Some("22222222222222222222222222222222"),
            "IMPHASH is not the file's MD5"
        );
        assert_eq!(text(Derived::Hash(HashAlgo::Sha256), &e).as_deref(), None);
        e.set(FieldKey::from_name("SHA1"), "abc".into());
        assert_eq!(
            text(Derived::Hash(HashAlgo::Sha1), &e).as_deref(),
            Some("abc")
        );
        let mut bare = ev(EventKind::ProcessStart);
        bare.set(fields::HASHES, "2222222222222222222222222222222a".into());
        assert_eq!(
            text(Derived::Hash(HashAlgo::Md5), &bare).as_deref(),
            Some("2222222222222222222222222222222a")
        );
    }
}
