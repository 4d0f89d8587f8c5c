//! Adds the version strings of a process's image (`OriginalFileName`,
//! `Company`, `Product`, `Description`, `FileVersion`) to its start event.
//!
//! Reading the image is file I/O, so this runs on the live pipeline's hash
//! workers beside SHA-256 hashing, never on an ETW callback thread.
//! [`enrich_from_image`] is the hook to register there.
//!
//! ```
//! use trawl_engine::event::{Event, EventKind, Os, Timestamp};
//! use trawl_sensor::etw::enrich::{add_version_fields, Enriched};
//! use trawl_sensor::etw::pe::VersionStrings;
//!
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
//! let strings = VersionStrings { original_file_name: Some("procdump".into()), ..Default::default() };
//! add_version_fields(&mut ev, &strings);
//! assert_eq!(ev.get_str("OriginalFileName"), Some("procdump"));
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use trawl_engine::event::{fields, Event, EventKind, FieldKey, Os, Value};

use super::pe::{read_version_strings, PeError, VersionStrings};

const COMPANY: FieldKey = FieldKey::known(13);
const PRODUCT: FieldKey = FieldKey::known(14);
const DESCRIPTION: FieldKey = FieldKey::known(15);
const FILE_VERSION: FieldKey = FieldKey::known(16);

/// What [`enrich_from_image`] did; the caller counts the outcomes.
#[derive(Debug)]
pub enum Enriched {
    /// Version fields were added.
    Added,
    /// The image has no version resource (many small tools and much malware
    /// ship without one), so there is nothing to add.
    NoVersionInfo,
    /// Not a Windows process start with an `Image`, or the fields are there.
    NotApplicable,
    /// The image could not be read or parsed; the event goes on without.
    Failed(PeError),
}

/// How often each [`Enriched`] outcome happened, for the live stats line
/// (`pe.*`); shared by the hash workers.
#[derive(Debug, Default)]
pub struct EnrichOutcomes {
    added: AtomicU64,
    no_version_info: AtomicU64,
    not_applicable: AtomicU64,
    failed: AtomicU64,
}

impl EnrichOutcomes {
    /// Counts one outcome.
    pub fn count(&self, outcome: &Enriched) {
        let n = match outcome {
            Enriched::Added => &self.added,
            Enriched::NoVersionInfo => &self.no_version_info,
            Enriched::NotApplicable => &self.not_applicable,
            Enriched::Failed(_) => &self.failed,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as `key=value` pairs. None is a loss: the event goes on
    /// either way, only without version fields.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("added", load(&self.added)),
            ("no_version_info", load(&self.no_version_info)),
            ("not_applicable", load(&self.not_applicable)),
            ("unreadable", load(&self.failed)),
        ]
    }
}

/// Reads the version resource of the event's `Image` and adds its strings.
/// Only Windows process starts are touched; fields already present (from a
/// trace, say) are kept.
pub fn enrich_from_image(event: &mut Event) -> Enriched {
    if event.kind != EventKind::ProcessStart
        || event.os != Os::Windows
        || event.get(&fields::ORIGINAL_FILE_NAME).is_some()
    {
        return Enriched::NotApplicable;
    }
    let Some(image) = event.get(&fields::IMAGE).and_then(Value::as_str) else {
        return Enriched::NotApplicable;
    };
    // `System`, `Registry`, … have no file.
    if !image.contains('\\') {
        return Enriched::NotApplicable;
    }
    match read_version_strings(Path::new(image)) {
        Ok(Some(strings)) => {
            add_version_fields(event, &strings);
            Enriched::Added
        }
        Ok(None) => Enriched::NoVersionInfo,
        Err(e) => Enriched::Failed(e),
    }
}

/// Adds the present version strings to `event`, keeping fields it has.
pub fn add_version_fields(event: &mut Event, strings: &VersionStrings) {
    for (key, value) in [
        (fields::ORIGINAL_FILE_NAME, &strings.original_file_name),
        (COMPANY, &strings.company),
        (PRODUCT, &strings.product),
        (DESCRIPTION, &strings.description),
        (FILE_VERSION, &strings.file_version),
    ] {
        if let Some(v) = value {
            if event.get(&key).is_none() {
                event.push_unchecked(key, Value::from(v.as_str()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::event::Timestamp;

    fn start(image: &str) -> Event {
        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev.set(fields::IMAGE, Value::from(image));
        ev
    }

    #[test]
    fn local_field_keys_name_the_engine_fields() {
        let keys = [COMPANY, PRODUCT, DESCRIPTION, FILE_VERSION];
        let names: Vec<&str> = keys.iter().map(FieldKey::as_str).collect();
        assert_eq!(names, ["Company", "Product", "Description", "FileVersion"]);
    }

    #[test]
    fn fields_already_present_are_kept() {
        let mut ev = start(r"C:\x\pd.exe");
        ev.set(fields::ORIGINAL_FILE_NAME, Value::from("from-trace"));
        add_version_fields(
            &mut ev,
            &VersionStrings {
                original_file_name: Some("procdump".into()),
                company: Some("Sysinternals".into()),
                ..Default::default()
            },
        );
        assert_eq!(ev.get_str("OriginalFileName"), Some("from-trace"));
        assert_eq!(ev.get_str("Company"), Some("Sysinternals"));
        assert_eq!(ev.get_str("Product"), None);
    }

    #[test]
    fn outcomes_are_counted_by_kind() {
        // `Image` must hold a backslash: on Linux `x\pd.exe` is one file
        // name, on Windows a file in folder `x`; the same path reads both.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let procdump = dir.path().join("x\\pd.exe");
        std::fs::write(&procdump, crate::etw::pe::tests::procdump_image(true)).unwrap();
        let not_pe = dir.path().join("x\\notes.exe");
        std::fs::write(&not_pe, b"MZ, and then nothing").unwrap();
        let outcomes = EnrichOutcomes::default();
        let mut ev = start(procdump.to_str().unwrap());
        outcomes.count(&enrich_from_image(&mut ev));
        assert_eq!(ev.get_str("OriginalFileName"), Some("procdump"));
        for image in ["System", not_pe.to_str().unwrap(), "Registry"] {
            outcomes.count(&enrich_from_image(&mut start(image)));
        }
        assert_eq!(
            outcomes.counters(),
            [
                ("added", 1),
                ("no_version_info", 0),
                ("not_applicable", 2),
                ("unreadable", 1)
            ]
        );
    }

    #[test]
    fn only_windows_starts_with_a_file_are_read() {
        assert!(matches!(
            enrich_from_image(&mut start("System")),
            Enriched::NotApplicable
        ));
        let mut exit = start(r"C:\x.exe");
        exit.kind = EventKind::ProcessExit;
        assert!(matches!(
            enrich_from_image(&mut exit),
            Enriched::NotApplicable
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a\\b.exe");
        assert!(matches!(
            enrich_from_image(&mut start(path.to_str().unwrap())),
            Enriched::Failed(PeError::Io { .. })
        ));
    }
}
