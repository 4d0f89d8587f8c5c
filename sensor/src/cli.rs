//! The command line, declared once for every subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// trawl: endpoint detection with Sigma rules and IOC lists, live or on recorded traces.
#[derive(Debug, Parser)]
#[command(name = "trawl", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay recorded traces (trawl NDJSON, Windows EVTX, evtx_dump JSON; files or folders) through the rules and print the alerts.
    Replay(ReplayArgs),
    /// Work with rule sets.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Watch this machine live (Linux: as root; Windows: elevated) and print alerts as they happen.
    Watch(WatchArgs),
    /// Record this machine's live events (Linux: as root; Windows: elevated) into a trace for `trawl replay`.
    Record(RecordArgs),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rules and report what loaded and what did not, with reasons.
    Check(CheckArgs),
}

/// Which rules to run: the same flags for every command that matches.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Sigma rule file or folder (recursive); repeatable.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// IOC hash list (one MD5/SHA-1/SHA-256 per line, optional name); repeatable.
    /// Its alerts carry the rule id `ioc:<file name>`.
    #[arg(long = "iocs", value_name = "FILE")]
    pub iocs: Vec<PathBuf>,
    /// Do not load the embedded seed pack (by default it is loaded, also beside --rules).
    #[arg(long)]
    pub no_default_rules: bool,
}

impl RuleArgs {
    /// The engine's view of these flags.
    pub fn sources(&self) -> trawl_engine::load::RuleSources {
        trawl_engine::load::RuleSources {
            default_rules: !self.no_default_rules,
            rules: self.rules.clone(),
            iocs: self.iocs.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per alert line.
    Json,
    /// One human-readable line per alert.
    Text,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Worker threads that read and match (default: one per core). The output is the same at any count.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Write alerts to FILE (created or truncated) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Alert format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Trace files or folders (walked recursively), replayed in the order given;
    /// formats are recognised by content.
    #[arg(value_name = "TRACE", required = true)]
    pub traces: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the result as JSON: {"loaded": N, "unsupported": [{"path", "id", "reason", …}]}.
    #[arg(long)]
    pub json: bool,
    /// Rule files or folders to check; `.iocs` files are read as IOC lists.
    /// Without a path, the embedded seed pack is checked.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Append alerts to FILE (one JSON line each, flushed as found) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report file events only under PATH (default: every local filesystem); repeatable.
    #[arg(long = "watch", value_name = "PATH")]
    pub watch: Vec<PathBuf>,
    #[cfg_attr(
        not(windows),
        doc = "Process event source (default: ebpf, falling back to proc-connector when eBPF cannot load)."
    )]
    #[cfg_attr(windows, doc = "Process event source (Windows: etw, the only one).")]
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub source: Option<crate::live::run::ProcessSource>,
    /// Print a stats line every SECS seconds (0: only when stopping).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub stats_interval: u64,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The trace to write (trawl NDJSON; created or truncated).
    #[arg(long, value_name = "FILE", required = true)]
    pub output: PathBuf,
    /// Stop after SECS seconds (default: at SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Record file events only under PATH (default: every local filesystem); repeatable.
    #[arg(long = "watch", value_name = "PATH")]
    pub watch: Vec<PathBuf>,
}
