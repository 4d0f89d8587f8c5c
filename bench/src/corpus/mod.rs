//! A deterministic, seeded corpus of realistic endpoint events, so benchmark
//! figures compare across machines and runs.
//!
//! The mix, per thousand events: 550 Windows process starts (Sysmon event 1
//! fields: services, browsers, Electron apps, `cmd`, PowerShell — some of it
//! `-EncodedCommand` from management agents — `rundll32`, `msiexec`, Java
//! with class paths of kilobytes, Office, git…), 200 Linux process starts
//! (shell pipelines, `curl`, Python, container shims, JVMs, coreutils…), 240
//! file events (create 120, write 80, delete 40; 70% Windows), and 10 planted
//! intrusion events (`attacks`: the seed pack's DEV-0228 tools and common
//! SigmaHQ detections), which are the ones meant to raise alerts.
//!
//! ```
//! let a = trawl_bench::corpus::generate(1_000, 7);
//! assert_eq!(a.events, trawl_bench::corpus::generate(1_000, 7).events);
//! assert_eq!(a.mix.total(), 1_000);
//! assert_eq!(a.planted.len(), a.mix.planted);
//! ```

mod attacks;
mod files;
mod linux;
mod rng;
mod windows;
mod words;

use std::sync::Arc;

use trawl_engine::event::{fields, Event, EventKind, FieldKey, Os, Timestamp, Value};

pub use rng::Rng;

/// Windows version information of an executable (Sysmon's
/// `OriginalFileName`, `Description`, `Company`, `Product`); empty for a
/// binary without it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeMeta {
    original: &'static str,
    description: &'static str,
    company: &'static str,
    product: &'static str,
}

/// A process start before it becomes an [`Event`].
#[derive(Debug, Clone)]
pub(crate) struct Proc {
    image: String,
    command_line: String,
    parent_image: String,
    parent_command_line: String,
    cwd: String,
    user: String,
    integrity: &'static str,
    meta: Option<PeMeta>,
}

impl PeMeta {
    /// A program of Windows itself.
    const fn windows(original: &'static str, description: &'static str) -> PeMeta {
        PeMeta {
            original,
            description,
            company: "Microsoft Corporation",
            product: "Microsoft® Windows® Operating System",
        }
    }
}

impl Proc {
    /// A Windows process a person started (medium integrity, their profile).
    fn person(
        login: &str,
        image: impl Into<String>,
        command_line: String,
        meta: PeMeta,
        parent: (impl Into<String>, impl Into<String>),
    ) -> Proc {
        Proc {
            cwd: format!(r"C:\Users\{login}\"),
            user: format!(r"{}\{login}", words::DOMAIN),
            integrity: "Medium",
            ..Proc::system(image, command_line, meta, parent)
        }
    }

    /// A Windows process the system started.
    fn system(
        image: impl Into<String>,
        command_line: String,
        meta: PeMeta,
        parent: (impl Into<String>, impl Into<String>),
    ) -> Proc {
        Proc {
            image: image.into(),
            command_line,
            parent_image: parent.0.into(),
            parent_command_line: parent.1.into(),
            cwd: r"C:\Windows\system32\".to_owned(),
            user: r"NT AUTHORITY\SYSTEM".to_owned(),
            integrity: "System",
            meta: Some(meta),
        }
    }

    /// A Linux process.
    fn linux(
        user: &str,
        image: &str,
        command_line: String,
        parent: (&str, &str),
        cwd: impl Into<String>,
    ) -> Proc {
        Proc {
            image: image.to_owned(),
            command_line,
            parent_image: parent.0.to_owned(),
            parent_command_line: parent.1.to_owned(),
            cwd: cwd.into(),
            user: user.to_owned(),
            integrity: "no level",
            meta: None,
        }
    }
}

/// A file event before it becomes an [`Event`].
#[derive(Debug, Clone)]
pub(crate) struct FileOp {
    os: Os,
    kind: EventKind,
    image: String,
    target: String,
    user: String,
}

/// What one generated event describes.
#[derive(Debug, Clone)]
pub(crate) enum Activity {
    Process(Os, Proc),
    File(FileOp),
}

/// How many events of each sort a corpus holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mix {
    /// Ordinary Windows process starts.
    pub windows_process: usize,
    /// Ordinary Linux process starts.
    pub linux_process: usize,
    /// Ordinary file creations, writes and deletions (both systems).
    pub file_create: usize,
    pub file_write: usize,
    pub file_delete: usize,
    /// Planted intrusion events (process starts and file creations).
    pub planted: usize,
}

impl Mix {
    /// All events.
    pub fn total(&self) -> usize {
        self.windows_process
            + self.linux_process
            + self.file_create
            + self.file_write
            + self.file_delete
            + self.planted
    }
}

/// A generated corpus: the events, what they are, and which were planted.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub events: Vec<Event>,
    pub mix: Mix,
    /// Indexes (into `events`) of the planted intrusion events, ascending.
    pub planted: Vec<usize>,
}

/// Planted events per thousand.
pub const PLANTED_PER_MILLE: usize = 10;

/// Generates `n` events from `seed`; the same pair always gives the same
/// events.
pub fn generate(n: usize, seed: u64) -> Corpus {
    let mut rng = Rng::new(seed);
    let windows_hosts: Vec<Arc<str>> = words::WINDOWS_HOSTS.iter().map(|h| Arc::from(*h)).collect();
    let linux_hosts: Vec<Arc<str>> = words::LINUX_HOSTS.iter().map(|h| Arc::from(*h)).collect();
    let mut corpus = Corpus {
        events: Vec::with_capacity(n),
        mix: Mix::default(),
        planted: Vec::new(),
    };
    // 2021-09-14T10:00:00Z, the DEV-0228 trace's morning.
    let start_ms = 1_631_613_600_000i64;
    let mut now_ms = start_ms;
    for i in 0..n {
        now_ms += rng.range(1, 60) as i64;
        let person = *rng.pick(words::PEOPLE);
        let linux_user = *rng.pick(words::LINUX_USERS);
        let roll = rng.below(1000);
        let activity = if roll < PLANTED_PER_MILLE {
            corpus.mix.planted += 1;
            corpus.planted.push(i);
            attacks::planted(&mut rng, person)
        } else if roll < 560 {
            corpus.mix.windows_process += 1;
            let template = rng.weighted(windows::TEMPLATES);
            Activity::Process(Os::Windows, template(&mut rng, person))
        } else if roll < 760 {
            corpus.mix.linux_process += 1;
            let template = rng.weighted(linux::TEMPLATES);
            Activity::Process(Os::Linux, template(&mut rng, linux_user))
        } else {
            let kind = if roll < 880 {
                corpus.mix.file_create += 1;
                EventKind::FileCreate
            } else if roll < 960 {
                corpus.mix.file_write += 1;
                EventKind::FileWrite
            } else {
                corpus.mix.file_delete += 1;
                EventKind::FileDelete
            };
            Activity::File(if rng.chance(700) {
                files::windows(&mut rng, kind, person)
            } else {
                files::linux(&mut rng, kind, linux_user)
            })
        };
        let ts = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut event = to_event(&mut rng, activity, ts);
        let hosts = if event.os == Os::Windows {
            &windows_hosts
        } else {
            &linux_hosts
        };
        event.host = Some(Arc::clone(rng.pick(hosts)));
        corpus.events.push(event);
    }
    corpus
}

/// `n` events from `seed` (see [`generate`]).
pub fn corpus(n: usize, seed: u64) -> Vec<Event> {
    generate(n, seed).events
}

fn process_guid(rng: &mut Rng) -> String {
    format!(
        "{{b5d8d56f-{}-6140-{}-{}}}",
        rng.hex(4),
        rng.hex(4),
        rng.hex(12)
    )
}

/// Sysmon's `Hashes` of a binary: derived from its path, so every start of
/// one program carries the same digests, as on a real fleet.
fn hashes(image: &str) -> String {
    let mut r = rng::rng_for(image);
    format!(
        "SHA1={},MD5={},SHA256={},IMPHASH={}",
        r.upper_hex(40),
        r.upper_hex(32),
        r.upper_hex(64),
        r.upper_hex(32)
    )
}

fn to_event(rng: &mut Rng, activity: Activity, ts: Timestamp) -> Event {
    let text = |s: &str| {
        Value::Str(if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        })
    };
    match activity {
        Activity::Process(os, p) => {
            let mut ev = Event::new(EventKind::ProcessStart, os, ts);
            let mut put =
                |key: &str, value: Value| ev.push_unchecked(FieldKey::from_name(key), value);
            put("ProcessGuid", Value::Str(process_guid(rng)));
            put("ProcessId", Value::Int(rng.range(300, 65_000) as i64));
            put("Image", Value::Str(p.image.clone()));
            if let Some(meta) = p.meta {
                put(
                    "FileVersion",
                    Value::Str(format!("10.0.19041.{}", rng.range(1, 3700))),
                );
                put("Description", text(meta.description));
                put("Product", text(meta.product));
                put("Company", text(meta.company));
                put("OriginalFileName", text(meta.original));
            }
            put("CommandLine", Value::Str(p.command_line));
            put("CurrentDirectory", Value::Str(p.cwd));
            put("User", Value::Str(p.user.clone()));
            put("LogonId", Value::Str(format!("0x{}", rng.hex(6))));
            put("TerminalSessionId", Value::Int(rng.below(3) as i64));
            put("IntegrityLevel", Value::Str(p.integrity.to_owned()));
            if os == Os::Windows {
                put("Hashes", Value::Str(hashes(&p.image)));
            }
            put("ParentProcessGuid", Value::Str(process_guid(rng)));
            put("ParentProcessId", Value::Int(rng.range(4, 65_000) as i64));
            put("ParentImage", Value::Str(p.parent_image));
            put("ParentCommandLine", Value::Str(p.parent_command_line));
            put("ParentUser", Value::Str(p.user));
            ev
        }
        Activity::File(f) => {
            let mut ev = Event::new(f.kind, f.os, ts);
            ev.push_unchecked(
                fields::PROCESS_ID,
                Value::Int(rng.range(300, 65_000) as i64),
            );
            ev.push_unchecked(
                FieldKey::from_name("ProcessGuid"),
                Value::Str(process_guid(rng)),
            );
            ev.push_unchecked(fields::IMAGE, Value::Str(f.image));
            ev.push_unchecked(fields::TARGET_FILENAME, Value::Str(f.target));
            ev.push_unchecked(fields::USER, Value::Str(f.user));
            if f.kind == EventKind::FileDelete && f.os == Os::Windows {
                ev.push_unchecked(fields::HASHES, Value::Str(hashes(&process_guid(rng))));
                ev.push_unchecked(FieldKey::from_name("IsExecutable"), Value::Bool(false));
            }
            ev
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::matcher::{Ruleset, Scratch};

    #[test]
    fn a_seed_names_one_corpus() {
        let a = generate(3_000, 42);
        let b = generate(3_000, 42);
        assert_eq!(a.events, b.events);
        assert_eq!((a.mix, &a.planted), (b.mix, &b.planted));
        let c = generate(3_000, 43);
        assert_ne!(a.events, c.events);
        // A shorter corpus is a prefix of a longer one of the same seed.
        assert_eq!(generate(1_000, 42).events[..], a.events[..1_000]);
    }

    /// The shares the module documents, within sampling noise over 20,000
    /// events, and the variety that makes the corpus a fair test: short and
    /// very long command lines, encoded PowerShell, both systems' file events.
    #[test]
    fn the_mix_is_as_documented() {
        let n = 20_000;
        let c = generate(n, 42);
        assert_eq!(c.events.len(), n);
        assert_eq!(c.mix.total(), n);
        let per_mille = |count: usize| count * 1000 / n;
        let near = |count: usize, want: usize, tolerance: usize, what: &str| {
            let got = per_mille(count);
            assert!(
                got.abs_diff(want) <= tolerance,
                "{what}: {got}‰, want {want}‰"
            );
        };
        near(c.mix.windows_process, 550, 15, "Windows process starts");
        near(c.mix.linux_process, 200, 12, "Linux process starts");
        near(c.mix.file_create, 120, 8, "file creations");
        near(c.mix.file_write, 80, 8, "file writes");
        near(c.mix.file_delete, 40, 6, "file deletions");
        near(c.mix.planted, PLANTED_PER_MILLE, 3, "planted events");

        let count = |pred: &dyn Fn(&Event) -> bool| c.events.iter().filter(|e| pred(e)).count();
        let starts = count(&|e| e.kind == EventKind::ProcessStart);
        assert_eq!(
            starts,
            c.mix.windows_process
                + c.mix.linux_process
                + c.planted
                    .iter()
                    .filter(|&&i| c.events[i].kind == EventKind::ProcessStart)
                    .count()
        );
        assert!(count(&|e| e.kind == EventKind::FileDelete && e.os == Os::Linux) > 0);
        assert!(count(&|e| e.kind == EventKind::FileWrite && e.os == Os::Windows) > 0);
        let command_line = |e: &Event| {
            e.get(&fields::COMMAND_LINE)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        assert!(count(&|e| command_line(e).is_some_and(|c| c.contains("-EncodedCommand "))) > 20);
        let mut lengths: Vec<usize> = c
            .events
            .iter()
            .filter_map(|e| command_line(e).map(|c| c.len()))
            .collect();
        lengths.sort_unstable();
        let at = |p: usize| lengths[lengths.len() * p / 100];
        assert!(at(50) < 200, "median command line {} chars", at(50));
        assert!(at(99) > 2_000, "p99 command line {} chars", at(99));
        assert!(lengths[0] < 20 && *lengths.last().unwrap() > 4_000);
        // Every event carries a host of its own system.
        assert!(c.events.iter().all(|e| e
            .host
            .as_deref()
            .is_some_and(|h| { (e.os == Os::Windows) == words::WINDOWS_HOSTS.contains(&h) })));
    }

    /// The seed pack fires on planted events only, and on the planted ones
    /// written for it (6 of the 20 planted sorts).
    #[test]
    fn the_seed_pack_fires_on_planted_events_only() {
        let c = generate(20_000, 42);
        let (rs, rejected) = Ruleset::compile(trawl_engine::seed::load().rules);
        assert!(rejected.is_empty());
        let mut scratch = Scratch::new(&rs);
        let mut out = Vec::new();
        let mut fired = 0;
        for (i, ev) in c.events.iter().enumerate() {
            out.clear();
            rs.evaluate(ev, &mut scratch, &mut out);
            if !out.is_empty() {
                assert!(
                    c.planted.binary_search(&i).is_ok(),
                    "an ordinary event fired: {ev:?}"
                );
                fired += 1;
            }
        }
        assert!(
            fired * 5 >= c.planted.len() && fired * 2 <= c.planted.len(),
            "{fired} of {} planted events fired",
            c.planted.len()
        );
    }
}
