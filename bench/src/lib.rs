//! Support for trawl's benchmarks: a deterministic, seeded event corpus, so
//! figures compare across machines and runs.
//!
//! ```
//! let a = trawl_bench::corpus(100, 7);
//! let b = trawl_bench::corpus(100, 7);
//! assert_eq!(a, b);
//! ```

use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp, Value};
use trawl_engine::rule::Rule;
use trawl_engine::{kql, seed, sigma};

/// The seed pack's six Sigma rules written as KQL queries with the same
/// literals (`bench/kql-seed/`), by file name.
pub const KQL_SEED: &[(&str, &str)] = &[
    (
        "01-paexec-remote-execution.kql",
        include_str!("../kql-seed/01-paexec-remote-execution.kql"),
    ),
    (
        "02-tapi-folder-file-staged.kql",
        include_str!("../kql-seed/02-tapi-folder-file-staged.kql"),
    ),
    (
        "03-tapi-folder-process.kql",
        include_str!("../kql-seed/03-tapi-folder-process.kql"),
    ),
    (
        "04-dev-0056-powershell.kql",
        include_str!("../kql-seed/04-dev-0056-powershell.kql"),
    ),
    (
        "05-procdump-lsass.kql",
        include_str!("../kql-seed/05-procdump-lsass.kql"),
    ),
    (
        "06-svchost-runtimebroker-masquerade.kql",
        include_str!("../kql-seed/06-svchost-runtimebroker-masquerade.kql"),
    ),
];

/// The seed pack's six Sigma rules, and the same six as KQL queries: one
/// detection logic in two languages, for comparing what each costs.
///
/// ```
/// let (sigma, kql) = trawl_bench::seed_forms();
/// assert_eq!((sigma.len(), kql.len()), (6, 6));
/// ```
pub fn seed_forms() -> (Vec<Rule>, Vec<Rule>) {
    let sigma_rules = seed::SIGMA_RULES
        .iter()
        .flat_map(|(name, text)| sigma::parse_str(text, name).rules)
        .collect();
    let kql_rules = KQL_SEED
        .iter()
        .flat_map(|(name, text)| {
            let load = kql::parse_str(text, name);
            assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
            load.rules
        })
        .collect();
    (sigma_rules, kql_rules)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::matcher::Ruleset;

    /// The two forms of the seed pack fire on exactly the same events (rule
    /// by rule) over the benchmark corpus and the DEV-0228 trace, so the
    /// benchmark compares equal work.
    #[test]
    fn kql_and_sigma_forms_of_the_seed_pack_agree() {
        let (sigma_rules, kql_rules) = seed_forms();
        let (sigma_set, rej) = Ruleset::compile(sigma_rules);
        assert!(rej.is_empty());
        let (kql_set, rej) = Ruleset::compile(kql_rules);
        assert!(rej.is_empty());
        let trace = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../replay/traces/dev-0228.ndjson"
        ))
        .unwrap();
        let mut host = None;
        let mut events: Vec<Event> = trace
            .lines()
            .map(|l| trawl_replay::ndjson::parse_line(l, &mut host).unwrap())
            .collect();
        events.extend(corpus(5_000, 42));
        let mut fired = 0;
        for (i, ev) in events.iter().enumerate() {
            let index = |rs: &Ruleset| -> Vec<usize> {
                rs.matching_ids(ev)
                    .iter()
                    .map(|id| rs.rules().iter().position(|r| r.id == *id).unwrap())
                    .collect()
            };
            let (s, k) = (index(&sigma_set), index(&kql_set));
            assert_eq!(s, k, "event {i}: {ev:?}");
            fired += s.len();
        }
        assert!(
            fired >= 32,
            "the trace alone raises 32 Sigma alerts: {fired}"
        );
    }
}
