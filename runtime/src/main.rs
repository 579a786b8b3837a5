//! The `concord` binary.

use clap::Parser;
use concord_runtime::cli::{Cli, Verb};
use concord_runtime::demo::{self, DemoConfig};
use std::process::ExitCode;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Verb::Demo(args) => {
            let config = DemoConfig {
                nodes: args.nodes,
                tasks: args.tasks,
                kill_leader: !args.no_kill && args.nodes >= 3,
                progress: !args.json,
            };
            match actix::System::new().block_on(demo::run(config)) {
                Ok(report) => {
                    let text = if args.json {
                        serde_json::to_string(&report)
                    } else {
                        serde_json::to_string_pretty(&report)
                    };
                    println!("{}", text.unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("concord demo: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
