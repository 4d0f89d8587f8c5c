//! `trawl replay`: recorded traces through the same matching and alert rendering the live sensor runs.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use trawl_engine::alert::Format;
use trawl_engine::event::EventKind;
use trawl_engine::matcher::Ruleset;
use trawl_engine::pipeline::{AlertSink, WriterSink};
use trawl_engine::rule::Level;
use trawl_replay::{replay, Observer, Problem, ReplayConfig, ReplaySummary};

use crate::cli::{OutputFormat, ReplayArgs};

/// Exit status when some records could not be read (they were skipped).
const EXIT_BAD_RECORDS: u8 = 2;

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let loaded = args.rules.sources().load().context("loading rules")?;
    super::report_rules(&loaded);
    let ruleset = Arc::new(loaded.ruleset);

    let sink: Box<dyn AlertSink> = match &args.output {
        Some(path) => {
            refuse_overwriting_a_trace(path, &args.traces)?;
            let f = File::create(path)
                .with_context(|| format!("creating alert output {}", path.display()))?;
            Box::new(WriterSink(BufWriter::with_capacity(1 << 16, f)))
        }
        None => Box::new(WriterSink(BufWriter::with_capacity(1 << 16, io::stdout()))),
    };
    let mut config = ReplayConfig {
        format: match args.format {
            OutputFormat::Json => Format::Json,
            OutputFormat::Text => Format::Text,
        },
        ..ReplayConfig::default()
    };
    if let Some(n) = args.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        config.threads = n;
    }

    let mut progress = Progress::new();
    let summary = replay(
        &args.traces,
        Arc::clone(&ruleset),
        &config,
        sink,
        &mut progress,
    );
    progress.bar.finish_and_clear();
    print_summary(&summary, &ruleset);
    super::leave_to_exit(ruleset);

    let p = &summary.pipeline;
    if p.failed_events > 0 {
        anyhow::bail!(
            "{} events in {} parts of the traces were not evaluated because matching panicked; this is a bug in trawl, please report it with the trace",
            p.failed_events,
            p.failed_batches
        );
    }
    match &summary.write_error {
        // `trawl replay … | head`: the reader has seen enough; not an error.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Some(e) => anyhow::bail!("writing alerts failed, later alerts were not written: {e}"),
        None => {}
    }
    Ok(if summary.skipped > 0 {
        ExitCode::from(EXIT_BAD_RECORDS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--output` naming one of the traces would truncate it before it is read.
fn refuse_overwriting_a_trace(output: &Path, traces: &[PathBuf]) -> anyhow::Result<()> {
    let Ok(out) = output.canonicalize() else {
        return Ok(()); // does not exist yet: cannot be an input
    };
    for t in traces {
        if t.canonicalize().is_ok_and(|t| t == out) {
            anyhow::bail!(
                "--output {} is one of the traces to replay; writing alerts there would destroy it",
                output.display()
            );
        }
    }
    Ok(())
}

/// Reports problems on stderr and, when stderr is a terminal and the replay
/// lasts long enough to need one, draws a progress bar there.
struct Progress {
    bar: indicatif::ProgressBar,
    /// Whether stderr is a terminal (otherwise the bar is never drawn).
    terminal: bool,
    shown: bool,
    start: Instant,
}

/// A replay shorter than this finishes before a bar would help.
const PROGRESS_AFTER: Duration = Duration::from_millis(300);

impl Progress {
    fn new() -> Progress {
        let bar = indicatif::ProgressBar::hidden();
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {msg} (ETA {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress {
            bar,
            terminal: io::stderr().is_terminal(),
            shown: false,
            start: Instant::now(),
        }
    }
}

impl Observer for Progress {
    fn problem(&mut self, problem: &Problem) {
        // Printed above the bar, which is redrawn after.
        self.bar.suspend(|| eprintln!("{problem}"));
    }

    fn found(&mut self, files: usize, bytes: u64) {
        self.bar.set_length(bytes);
        self.bar
            .set_message(format!("{files} file{}", if files == 1 { "" } else { "s" }));
    }

    fn progress(&mut self, bytes: u64) {
        self.bar.inc(bytes);
        if self.terminal && !self.shown && self.start.elapsed() > PROGRESS_AFTER {
            self.shown = true;
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }
}

fn print_summary(s: &ReplaySummary, rules: &Ruleset) {
    // One write: stderr is unbuffered, and a summary of a few hundred
    // channel and rule lines written piece by piece took thousands of
    // system calls.
    let mut out = String::new();
    summary_lines(s, rules, &mut out);
    let _ = io::stderr().lock().write_all(out.as_bytes());
}

/// The end-of-replay summary, one `trawl: ` line per fact, appended to `out`.
fn summary_lines(s: &ReplaySummary, rules: &Ruleset, out: &mut String) {
    let p = &s.pipeline;
    let kinds: Vec<String> = EventKind::ALL
        .iter()
        .filter(|k| p.kind(**k) > 0)
        .map(|k| format!("{k} {}", p.kind(*k)))
        .collect();
    let formats: Vec<String> = ["ndjson", "evtx-json", "evtx"]
        .iter()
        .zip(s.files_per_format)
        .filter(|(_, n)| *n > 0)
        .map(|(f, n)| format!("{n} {f}"))
        .collect();
    let _ = writeln!(
        out,
        "trawl: replayed {} file{}{}: {} records, {} events ({}), {} skipped",
        s.files,
        if s.files == 1 { "" } else { "s" },
        if formats.len() > 1 || s.files_per_format[0] == 0 && s.files > 0 {
            format!(" ({})", formats.join(", "))
        } else {
            String::new()
        },
        s.records,
        p.events,
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        s.skipped
    );
    if s.passed_over > 0 {
        let _ = writeln!(
            out,
            "trawl: {} file{} in the folders given passed over (neither EVTX nor JSON)",
            s.passed_over,
            if s.passed_over == 1 { "" } else { "s" }
        );
    }
    if !s.channels.is_empty() {
        let _ = writeln!(
            out,
            "trawl: Windows records per channel (event id ×records):"
        );
        for (channel, ids) in s.channels.channels() {
            let ids: Vec<String> = ids.iter().map(|(id, n)| format!("{id} ×{n}")).collect();
            let _ = writeln!(out, "trawl:   {channel}: {}", ids.join(", "));
        }
    }
    let mut per_level = [0u64; 5];
    for (i, n) in p.per_rule.iter().enumerate() {
        per_level[rules.rule(i).level as usize] += n;
    }
    let levels: Vec<String> = Level::ALL
        .iter()
        .rev()
        .filter(|l| per_level[**l as usize] > 0)
        .map(|l| format!("{l} {}", per_level[*l as usize]))
        .collect();
    let _ = writeln!(
        out,
        "trawl: {} alerts{}",
        p.alerts,
        if levels.is_empty() {
            String::new()
        } else {
            format!(" ({})", levels.join(", "))
        }
    );
    let mut fired: Vec<(usize, u64)> = p
        .per_rule
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .collect();
    fired.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (i, n) in fired {
        let r = rules.rule(i);
        let _ = writeln!(
            out,
            "trawl: {n:>8}  {:<8}  {}  {}",
            r.level.as_str(),
            r.id,
            r.title
        );
    }
    let _ = writeln!(
        out,
        "trawl: {:.3} s, {:.0} events/s, {:.0} records/s",
        s.elapsed.as_secs_f64(),
        s.events_per_sec(),
        s.records_per_sec()
    );
}
