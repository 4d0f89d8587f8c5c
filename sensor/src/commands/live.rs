//! `trawl watch` and `trawl record`: this machine's live events, through the
//! engine or into a trace.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{RecordArgs, WatchArgs};
use crate::live::run::{run, LivePlatform, Mode, RunReport, SourceOptions};

/// The live sources of the platform trawl was built for.
#[cfg(target_os = "linux")]
fn platform() -> anyhow::Result<Box<dyn LivePlatform>> {
    Ok(Box::new(crate::linux::LinuxPlatform))
}

/// The live sources of the platform trawl was built for.
#[cfg(windows)]
fn platform() -> anyhow::Result<Box<dyn LivePlatform>> {
    Ok(Box::new(windows::WindowsPlatform::default()))
}

#[cfg(windows)]
mod windows;

/// No live source is wired on this platform.
#[cfg(not(any(target_os = "linux", windows)))]
fn platform() -> anyhow::Result<Box<dyn LivePlatform>> {
    anyhow::bail!(
        "no live event source is built into trawl for this platform (Linux and Windows only); record there and use `trawl replay`"
    )
}

pub fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let platform = platform()?;
    let loaded = args.rules.sources().load().context("loading rules")?;
    super::report_rules(&loaded);
    let report = run(
        &*platform,
        Mode::Watch {
            ruleset: Arc::new(loaded.ruleset),
            output: args.output,
            stats_interval: Duration::from_secs(args.stats_interval),
        },
        &SourceOptions {
            watch: args.watch,
            process_source: args.source,
        },
    )?;
    finish(report, "alerts")
}

pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let platform = platform()?;
    let report = run(
        &*platform,
        Mode::Record {
            output: args.output,
            duration: args.duration.map(Duration::from_secs),
        },
        &SourceOptions {
            watch: args.watch,
            process_source: None,
        },
    )?;
    finish(report, "the trace")
}

fn finish(report: RunReport, what: &str) -> anyhow::Result<ExitCode> {
    match report.write_error {
        // `trawl watch | head`: the reader has seen enough.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Some(e) => anyhow::bail!("writing {what} failed, later output was lost: {e}"),
        None => Ok(ExitCode::SUCCESS),
    }
}
