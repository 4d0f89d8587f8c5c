//! Support for trawl's benchmarks: a deterministic, seeded event corpus, so
//! figures compare across machines and runs.
//!
//! ```
//! let a = trawl_bench::corpus(100, 7);
//! let b = trawl_bench::corpus(100, 7);
//! assert_eq!(a, b);
//! ```

use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp, Value};

/// A small xorshift generator: deterministic and dependency-free.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (zero is replaced, xorshift needs a set bit).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const IMAGES: &[&str] = &[
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
    "C:\\Windows\\explorer.exe",
    "C:\\Windows\\System32\\conhost.exe",
    "C:\\Windows\\System32\\RuntimeBroker.exe",
    "C:\\Windows\\TAPI\\pa.exe",
];

const ARGS: &[&str] = &[
    "-k netsvcs -p -s Schedule",
    "/c echo hello > nul",
    "-nop -w hidden -c Get-Process",
    "--type=renderer --field-trial-handle=1234,i,5678 --lang=en-US --enable-features=x,y,z",
    "/n \"C:\\Users\\jdoe\\Documents\\Q3 report.docx\"",
    "",
    "0xffffffff -ForceV1",
    "-Embedding",
    "\\\\LF-FS01 -s -d cmd.exe /c whoami",
];

/// `n` events, mostly process starts with varied command lines and some file
/// events, from `seed`.
pub fn corpus(n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let ts =
                Timestamp::from_second(1_631_613_600 + i as i64).unwrap_or(Timestamp::UNIX_EPOCH);
            let image = *rng.pick(IMAGES);
            if rng.below(5) == 0 {
                let mut ev = Event::new(EventKind::FileCreate, Os::Windows, ts);
                ev.set(fields::IMAGE, image.into());
                ev.set(
                    fields::TARGET_FILENAME,
                    format!(
                        "C:\\Users\\jdoe\\AppData\\Local\\Temp\\tmp{:x}.tmp",
                        rng.next_u64() & 0xffff
                    )
                    .into(),
                );
                ev
            } else {
                let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, ts);
                ev.set(
                    fields::PROCESS_ID,
                    Value::Int(1000 + rng.below(60_000) as i64),
                );
                ev.set(fields::IMAGE, image.into());
                let exe = image.rsplit('\\').next().unwrap_or(image);
                ev.set(
                    fields::COMMAND_LINE,
                    format!("\"{exe}\" {}", rng.pick(ARGS)).into(),
                );
                ev.set(fields::PARENT_IMAGE, (*rng.pick(IMAGES)).into());
                ev
            }
        })
        .collect()
}
