//! The command line: `concord node`, `concord ctl`, `concord demo`.

use clap::{Args, Parser, Subcommand};

/// Concord: Raft, gossip and quorum management in one runtime.
#[derive(Debug, Parser)]
#[command(name = "concord", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Verb,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Runs the reference scenario on a cluster inside this process.
    Demo(DemoArgs),
}

/// Options of `concord demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=15))]
    pub nodes: u64,
    /// Tasks to submit.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub tasks: u64,
    /// Do not kill the leader part-way.
    #[arg(long)]
    pub no_kill: bool,
    /// Print only the final report, as one JSON document.
    #[arg(long)]
    pub json: bool,
}
