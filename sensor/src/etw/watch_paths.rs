//! `--watch PATH` on Windows: which file events to keep.
//!
//! Kernel-File reports creates anywhere on the machine, so the filter runs on
//! the converted event, whose `TargetFilename` is in drive-letter form
//! (`C:\Users\…`). Windows paths compare without regard to case, and a
//! prefix holds only at a path boundary: `C:\Temp` covers `C:\Temp\a.exe`,
//! not `C:\Temporary\a.exe`.
//!
//! ```
//! use trawl_sensor::etw::watch_paths::WatchedPaths;
//!
//! let watched = WatchedPaths::new([r"C:\Users\Public\", "d:/drop"]);
//! assert!(watched.covers(r"c:\users\public\evil.dll"));
//! assert!(watched.covers(r"D:\Drop\x.exe"));
//! assert!(!watched.covers(r"C:\Users\PublicX\evil.dll"));
//! ```

use trawl_engine::event::{fields, Event, EventKind, Value};

/// Path prefixes, folded for comparison; empty means every path.
#[derive(Debug, Clone, Default)]
pub struct WatchedPaths {
    prefixes: Vec<String>,
}

impl WatchedPaths {
    /// Prefixes from absolute Windows paths (`/` is read as `\`, a `\\?\`
    /// prefix and trailing separators are dropped).
    pub fn new<S: AsRef<str>>(paths: impl IntoIterator<Item = S>) -> WatchedPaths {
        let prefixes = paths
            .into_iter()
            .map(|p| {
                let p = p.as_ref();
                let p = p.strip_prefix(r"\\?\").unwrap_or(p);
                let folded: String = fold(p).collect();
                folded.trim_end_matches('\\').to_owned()
            })
            .collect();
        WatchedPaths { prefixes }
    }

    /// Whether every path is watched (no `--watch`).
    pub fn is_everything(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Whether `path` is one of the prefixes or under one.
    pub fn covers(&self, path: &str) -> bool {
        self.is_everything() || self.prefixes.iter().any(|p| under(path, p))
    }

    /// Whether `event` passes: process events always do, file events when
    /// their `TargetFilename` is covered.
    pub fn keeps(&self, event: &Event) -> bool {
        if self.is_everything()
            || matches!(event.kind, EventKind::ProcessStart | EventKind::ProcessExit)
        {
            return true;
        }
        event
            .get(&fields::TARGET_FILENAME)
            .and_then(Value::as_str)
            .is_some_and(|path| self.covers(path))
    }
}

/// Case folded, `/` as `\`.
fn fold(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == '/' { '\\' } else { c })
}

/// `path` equals `prefix` (folded) or continues it with a separator.
fn under(path: &str, prefix: &str) -> bool {
    let mut rest = fold(path);
    prefix.chars().all(|c| rest.next() == Some(c)) && matches!(rest.next(), None | Some('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::event::{Os, Timestamp};

    fn event(kind: EventKind, target: Option<&str>) -> Event {
        let mut ev = Event::new(kind, Os::Windows, Timestamp::UNIX_EPOCH);
        if let Some(t) = target {
            ev.set(fields::TARGET_FILENAME, Value::from(t));
        }
        ev
    }

    #[test]
    fn prefixes_hold_at_path_boundaries_in_any_case() {
        let w = WatchedPaths::new([r"\\?\C:\Windows\Temp\\", r"C:\ProgramData/Drop"]);
        assert!(w.covers(r"C:\Windows\Temp"));
        assert!(w.covers(r"c:\WINDOWS\temp\x\y.ps1"));
        assert!(w.covers(r"C:\programdata\drop\a.exe"));
        assert!(!w.covers(r"C:\Windows\TempX\a.exe"));
        assert!(!w.covers(r"C:\Windows\Tem"));
        assert!(!w.covers(r"D:\Windows\Temp\a.exe"));
        assert!(!w.covers(r"\Device\HarddiskVolume9\Windows\Temp\a.exe"));
        // Beyond ASCII, as NTFS compares names.
        assert!(WatchedPaths::new([r"C:\Users\ÄSA"]).covers(r"c:\users\äsa\x"));
    }

    #[test]
    fn a_drive_root_covers_the_drive() {
        let w = WatchedPaths::new([r"C:\"]);
        assert!(w.covers(r"C:\a.exe") && w.covers(r"c:\x\y"));
        assert!(!w.covers(r"CD:\a.exe") && !w.covers(r"D:\a.exe"));
    }

    #[test]
    fn only_file_events_are_filtered() {
        let w = WatchedPaths::new([r"C:\Temp"]);
        assert!(w.keeps(&event(EventKind::ProcessStart, None)));
        assert!(w.keeps(&event(EventKind::ProcessExit, None)));
        assert!(w.keeps(&event(EventKind::FileCreate, Some(r"C:\TEMP\a.txt"))));
        assert!(!w.keeps(&event(EventKind::FileCreate, Some(r"C:\Users\a.txt"))));
        assert!(!w.keeps(&event(EventKind::FileCreate, None)));
        let all = WatchedPaths::new(Vec::<String>::new());
        assert!(all.keeps(&event(EventKind::FileCreate, None)));
    }
}
