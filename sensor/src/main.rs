//! `trawl`: the endpoint detection sensor's one command.
//!
//! Subcommands: `replay` (recorded traces through the engine) and `rules check`
//! (what a rule set loads, and why the rest does not).

mod cli;
mod commands;

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
    let result = match cli.command {
        cli::Command::Replay(args) => commands::replay::run(args),
        cli::Command::Rules(cli::RulesCommand::Check(args)) => commands::rules_check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trawl: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
