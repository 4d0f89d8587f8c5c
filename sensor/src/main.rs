//! `trawl`: the endpoint detection sensor's one command.
//!
//! Subcommands: `replay` (recorded traces through the engine), `rules check`
//! (what a rule set loads, and why the rest does not), `watch` and `record`
//! (this machine, live).

#[cfg(target_os = "linux")]
mod allocator;
mod cli;
mod commands;
#[cfg(target_os = "linux")]
mod linux;
mod live;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAWL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = cli::Cli::parse();
    #[cfg(target_os = "linux")]
    if matches!(
        cli.command,
        cli::Command::Watch(_) | cli::Command::Record(_)
    ) {
        allocator::return_freed_memory_at_once();
    }
    let result = match cli.command {
        cli::Command::Replay(args) => commands::replay::run(args),
        cli::Command::Rules(cli::RulesCommand::Check(args)) => commands::rules_check::run(args),
        cli::Command::Watch(args) => commands::live::watch(args),
        cli::Command::Record(args) => commands::live::record(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trawl: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
