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

/// Expands `paths` into the files to replay, every one sniffed.
pub fn discover(paths: &[PathBuf]) -> Discovery {
    let mut found = Discovery::default();
    walk(paths, None, &mut |met| {
        match met {
            Found::Input(input) => found.inputs.push(input),
            Found::Unsniffed { .. } => {
                unreachable!("a walk that reads nothing whole sniffs every file")
            }
            Found::PassedOver(path) => found.passed_over.push(path),
            Found::Problem(problem) => found.problems.push(problem),
        }
        true
    });
    found
}

/// One thing a walk of the paths meets.
#[derive(Debug)]
pub enum Found {
    /// A trace of a known format: a file named as a path (read as NDJSON
    /// when it is nothing else), or one in a folder, sniffed.
    Input(Input),
    /// A file in a folder small enough to be read whole, left unopened: its
    /// reader tells its format from its bytes ([`format_of`]), so the file
    /// is opened once, not twice.
    Unsniffed { path: PathBuf, size: u64 },
    /// A file in a folder that is not a trace (neither EVTX nor JSON).
    PassedOver(PathBuf),
    /// A path that could not be read.
    Problem(Problem),
}

/// Walks `paths` in order (a folder's files in name order), handing each
/// thing met to `found` until it returns `false`. Files in folders of at
/// most `read_whole` bytes are not opened: see [`Found::Unsniffed`].
///
/// ```
/// use trawl_replay::input::{walk, Found};
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a.evtx"), b"ElfFile\0").unwrap();
/// let mut met = Vec::new();
/// walk(&[dir.path().to_owned()], Some(1 << 20), &mut |f| {
///     met.push(f);
///     true
/// });
/// assert!(matches!(&met[..], [Found::Unsniffed { size: 8, .. }]));
/// ```
pub fn walk(paths: &[PathBuf], read_whole: Option<u64>, found: &mut dyn FnMut(Found) -> bool) {
    for path in paths {
        let more = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => walk_folder(path, read_whole, found),
            Ok(m) => {
                let format = sniff(path).unwrap_or(Some(Format::Ndjson));
                found(Found::Input(Input {
                    path: path.clone(),
                    format: format.unwrap_or(Format::Ndjson),
                    size: m.len(),
                }))
            }
            // Reported when its turn comes, like any file that cannot be read.
            Err(_) => found(Found::Input(Input {
                path: path.clone(),
                format: Format::Ndjson,
                size: 0,
            })),
        };
        if !more {
            return;
        }
    }
}

/// [`walk`] of one folder; `false` once `found` said to stop.
fn walk_folder(dir: &Path, read_whole: Option<u64>, found: &mut dyn FnMut(Found) -> bool) -> bool {
    for entry in trawl_engine::walk::sorted(dir) {
        let met = match entry {
            Ok(e) if e.file_type().is_file() => {
                let size = e.metadata().map_or(0, |m| m.len());
                let path = e.into_path();
                if read_whole.is_some_and(|limit| size <= limit) {
                    Found::Unsniffed { path, size }
                } else {
                    match sniff(&path) {
                        Ok(Some(format)) => Found::Input(Input { path, format, size }),
                        Ok(None) => Found::PassedOver(path),
                        Err(reason) => Found::Problem(Problem {
                            source: path.display().to_string(),
                            location: Location::File,
                            reason,
                        }),
                    }
                }
            }
            Ok(_) => continue,
            Err(err) => Found::Problem(Problem {
                source: err
                    .path()
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string()),
                location: Location::File,
                reason: format!("cannot read: {err}"),
            }),
        };
        if !found(met) {
            return false;
        }
    }
    true
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
        if let Some(format) = line_format(&line) {
            return Ok(format);
        }
    }
}

/// [`sniff`] of a file's bytes (all of them, or at least its first
/// [`MAX_LINE_BYTES`]).
///
/// ```
/// use trawl_replay::input::{format_of, Format};
///
/// assert_eq!(format_of(b"ElfFile\0..."), Some(Format::Evtx));
/// assert_eq!(format_of(b"\n {\"Event\":{}}\n"), Some(Format::EvtxJson));
/// assert_eq!(format_of(b"# notes\n"), None);
/// ```
pub fn format_of(bytes: &[u8]) -> Option<Format> {
    if is_evtx(bytes) {
        return Some(Format::Evtx);
    }
    let head = &bytes[..bytes.len().min(MAX_LINE_BYTES)];
    head.split_inclusive(|&b| b == b'\n')
        .find_map(line_format)?
}

/// The format a file's line says, `None` for a blank line (the next one
/// says).
fn line_format(line: &[u8]) -> Option<Option<Format>> {
    let t = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
    let t = t.trim_ascii_start();
    if t.is_empty() {
        return None;
    }
    if !t.starts_with(b"{") {
        return Some(None);
    }
    Some(Some(if is_windows_record(t) {
        Format::EvtxJson
    } else {
        Format::Ndjson
    }))
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
        // A file's bytes say the same as the file.
        for name in ["x.json", "y.evtx", "z.txt", "w.evtx", "v"] {
            let bytes = std::fs::read(p(name)).unwrap();
            assert_eq!(Ok(format_of(&bytes)), sniff(&p(name)), "{name}");
        }
    }

    #[test]
    fn small_files_in_folders_are_left_to_their_reader_and_named_files_sniffed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("f")).unwrap();
        std::fs::write(dir.path().join("f/big.json"), "{\"Event\":{}}\n".repeat(10)).unwrap();
        std::fs::write(dir.path().join("f/small.evtx"), b"ElfFile\0").unwrap();
        std::fs::write(
            dir.path().join("f/notes.md"),
            "# notes, long enough to be sniffed",
        )
        .unwrap();
        std::fs::write(dir.path().join("named.txt"), b"x").unwrap();
        let mut met = Vec::new();
        let paths = [dir.path().join("f"), dir.path().join("named.txt")];
        walk(&paths, Some(8), &mut |f| {
            met.push(match f {
                Found::Input(i) => format!("input {:?} {}", i.format, i.size),
                Found::Unsniffed { size, .. } => format!("unsniffed {size}"),
                Found::PassedOver(p) => {
                    format!("passed over {}", p.file_name().unwrap().to_string_lossy())
                }
                Found::Problem(p) => format!("problem {}", p.reason),
            });
            true
        });
        assert_eq!(
            met,
            [
                "input EvtxJson 130",
                "passed over notes.md",
                "unsniffed 8",
                "input Ndjson 1"
            ]
        );
        // Stopping is heard at once.
        let mut n = 0;
        walk(&paths, None, &mut |_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
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
    fn many_files_keep_walk_order() {
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
