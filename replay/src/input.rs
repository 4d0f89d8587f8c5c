//! Which files to replay, and in which format: folders are walked, files are
//! recognised by their content, not their name.
//!
//! - `ElfFile\0` at the start: a Windows EVTX file.
//! - A first line that is a JSON object with an `Event` (or `System`) key and
//!   no trawl `ts`/`kind`: Windows records as `evtx_dump` writes them.
//! - Anything else named on the command line: a trawl NDJSON trace (whose
//!   bad lines are then reported one by one).
//! - In a folder, a file that is neither EVTX nor starts with `{` (a README,
//!   a licence) is passed over and counted, not reported as a bad trace.
//!
//! Folders are walked recursively in file-name order, so the replay order is
//! stable; hidden entries are passed over and symbolic links followed.
//!
//! ```
//! use trawl_replay::input::{discover, Format};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("b.log"), "{\"Event\":{\"System\":{\"EventID\":1}}}\n").unwrap();
//! std::fs::write(dir.path().join("a.ndjson"), "{\"ts\":\"2021-01-01T00:00:00Z\",\"kind\":\"process_start\"}\n").unwrap();
//! std::fs::write(dir.path().join("README.md"), "# notes\n").unwrap();
//! let found = discover(&[dir.path().to_owned()]);
//! let formats: Vec<Format> = found.inputs.iter().map(|i| i.format).collect();
//! assert_eq!(formats, [Format::Ndjson, Format::EvtxJson]);
//! assert_eq!(found.passed_over.len(), 1);
//! ```

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::evtx_file::is_evtx;
use crate::ndjson::MAX_LINE_BYTES;
use crate::{Location, Problem};

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// trawl's own NDJSON trace format.
    Ndjson,
    /// Windows records as JSON, one per line (`evtx_dump -o jsonl`).
    EvtxJson,
    /// A binary Windows event log.
    Evtx,
}

impl Format {
    /// The name the summary uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::EvtxJson => "evtx-json",
            Format::Evtx => "evtx",
        }
    }
}

/// One file to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    /// Its size in bytes, for progress.
    pub size: u64,
}

/// The files found under the paths given.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Files to replay, in order: the paths in the order given, a folder's
    /// files in name order.
    pub inputs: Vec<Input>,
    /// Files in folders that are not traces (neither EVTX nor JSON).
    pub passed_over: Vec<PathBuf>,
    /// Paths that could not be read (missing, unreadable folder entries).
    pub problems: Vec<Problem>,
}

impl Discovery {
    /// Bytes of all inputs.
    pub fn total_bytes(&self) -> u64 {
        self.inputs.iter().map(|i| i.size).sum()
    }
}

/// Expands `paths` into the files to replay.
pub fn discover(paths: &[PathBuf]) -> Discovery {
    let mut found = Discovery::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => walk(path, &mut found),
            Ok(m) => {
                let format = sniff(path).unwrap_or(Some(Format::Ndjson));
                found.inputs.push(Input {
                    path: path.clone(),
                    format: format.unwrap_or(Format::Ndjson),
                    size: m.len(),
                });
            }
            // Reported when its turn comes, like any file that cannot be read.
            Err(_) => found.inputs.push(Input {
                path: path.clone(),
                format: Format::Ndjson,
                size: 0,
            }),
        }
    }
    found
}

/// What a folder's walk met, in walk order.
enum Met {
    File(PathBuf, u64),
    Unreadable(Problem),
}

/// Files sniffed on one thread at least, before the sniffing is shared.
const SNIFF_SHARE: usize = 64;

fn walk(dir: &Path, found: &mut Discovery) {
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    let mut met = Vec::new();
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let size = e.metadata().map_or(0, |m| m.len());
                met.push(Met::File(e.into_path(), size));
            }
            Ok(_) => {}
            Err(err) => met.push(Met::Unreadable(Problem {
                source: err
                    .path()
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string()),
                location: Location::File,
                reason: format!("cannot read: {err}"),
            })),
        }
    }
    // Sniffing opens and reads every file: the cores share it, each taking
    // a run of files, and the results are taken in walk order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = met.len().div_ceil(threads).max(SNIFF_SHARE);
    let sniff_run = |run: &[Met]| -> Vec<Option<Result<Option<Format>, String>>> {
        (run.iter())
            .map(|m| match m {
                Met::File(path, _) => Some(sniff(path)),
                Met::Unreadable(_) => None,
            })
            .collect()
    };
    let sniffed: Vec<Vec<_>> = if met.len() <= share {
        vec![sniff_run(&met)]
    } else {
        std::thread::scope(|scope| {
            let runs: Vec<_> = (met.chunks(share))
                .map(|run| scope.spawn(move || sniff_run(run)))
                .collect();
            (runs.into_iter())
                // A panic in `sniff` would be a bug; it is passed on as one.
                .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    for (m, format) in met.into_iter().zip(sniffed.into_iter().flatten()) {
        match (m, format) {
            (Met::File(path, size), Some(Ok(Some(format)))) => {
                found.inputs.push(Input { path, format, size })
            }
            (Met::File(path, _), Some(Ok(None))) => found.passed_over.push(path),
            (Met::File(path, _), Some(Err(reason))) => found.problems.push(Problem {
                source: path.display().to_string(),
                location: Location::File,
                reason,
            }),
            (Met::Unreadable(problem), _) => found.problems.push(problem),
            // Every file was sniffed.
            (Met::File(..), None) => {}
        }
    }
}

/// The format of a file by its content; `None` when it is neither EVTX nor
/// starts (after a byte-order mark and blanks) with a JSON object.
pub fn sniff(path: &Path) -> Result<Option<Format>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open trace: {e}"))?;
    let mut head = [0u8; 8];
    let n = read_full(&mut file, &mut head).map_err(|e| format!("cannot read trace: {e}"))?;
    if is_evtx(&head[..n]) {
        return Ok(Some(Format::Evtx));
    }
    let file = File::open(path).map_err(|e| format!("cannot open trace: {e}"))?;
    let mut reader = BufReader::new(file.take(MAX_LINE_BYTES as u64));
    // The first non-blank line.
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read trace: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        let t = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&line);
        if !t.iter().all(u8::is_ascii_whitespace) {
            let t = t.trim_ascii_start();
            if !t.starts_with(b"{") {
                return Ok(None);
            }
            return Ok(Some(if is_windows_record(t) {
                Format::EvtxJson
            } else {
                Format::Ndjson
            }));
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether a JSON line's top-level keys are a Windows record's (`Event` or
/// `System`, and not trawl's `ts` and `kind`).
fn is_windows_record(line: &[u8]) -> bool {
    struct Keys {
        windows: bool,
        trawl: u8,
    }
    impl<'de> Visitor<'de> for &mut Keys {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match &*k {
                    "Event" | "System" => self.windows = true,
                    "ts" | "kind" => self.trawl += 1,
                    _ => {}
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut keys = Keys {
        windows: false,
        trawl: 0,
    };
    let mut de = serde_json::Deserializer::from_slice(line);
    let _ = de::Deserializer::deserialize_map(&mut de, &mut keys);
    keys.windows && keys.trawl < 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_not_name_decides() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("x.json"), b"ElfFile\0rest").unwrap();
        std::fs::write(p("y.evtx"), "\u{feff}\n  {\"System\":{}}\n").unwrap();
        std::fs::write(p("z.txt"), "{\"ts\":1,\"kind\":2,\"Event\":3}\n").unwrap();
        std::fs::write(p("w.evtx"), "hello").unwrap();
        std::fs::write(p("v"), "").unwrap();
        assert_eq!(sniff(&p("x.json")), Ok(Some(Format::Evtx)));
        assert_eq!(sniff(&p("y.evtx")), Ok(Some(Format::EvtxJson)));
        assert_eq!(sniff(&p("z.txt")), Ok(Some(Format::Ndjson)));
        assert_eq!(sniff(&p("w.evtx")), Ok(None));
        assert_eq!(sniff(&p("v")), Ok(None));
        assert!(sniff(&p("missing")).unwrap_err().starts_with("cannot open"));
    }

    #[test]
    fn folders_walk_in_name_order_and_named_files_are_always_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
        std::fs::write(dir.path().join("b/c/2.evtx"), b"ElfFile\0").unwrap();
        std::fs::write(dir.path().join("b/1.evtx"), b"ElfFile\0").unwrap();
        std::fs::write(dir.path().join("a.txt"), b"not json").unwrap();
        std::fs::write(dir.path().join(".hidden/3.evtx"), b"ElfFile\0").unwrap();
        let found = discover(&[dir.path().to_owned(), dir.path().join("a.txt")]);
        let names: Vec<String> = found
            .inputs
            .iter()
            .map(|i| {
                i.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["b/1.evtx", "b/c/2.evtx", "a.txt"]);
        assert_eq!(found.inputs[2].format, Format::Ndjson);
        assert_eq!(found.passed_over, [dir.path().join("a.txt")]);
    }

    #[test]
    fn many_files_are_sniffed_in_parallel_and_kept_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = (Vec::new(), Vec::new());
        for i in 0..300 {
            let sub = dir.path().join(format!("d{}", i % 7));
            std::fs::create_dir_all(&sub).unwrap();
            let path = sub.join(format!("f{i:03}"));
            if i % 5 == 0 {
                std::fs::write(&path, "not a trace").unwrap();
                expected.1.push(path);
            } else {
                std::fs::write(&path, b"ElfFile\0").unwrap();
                expected.0.push(path);
            }
        }
        expected.0.sort();
        expected.1.sort();
        let found = discover(&[dir.path().to_owned()]);
        let inputs: Vec<PathBuf> = found.inputs.iter().map(|i| i.path.clone()).collect();
        assert_eq!(inputs, expected.0);
        assert_eq!(found.passed_over, expected.1);
        assert!(found
            .inputs
            .iter()
            .all(|i| i.format == Format::Evtx && i.size == 8));
    }
}
