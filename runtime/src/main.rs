//! The `concord` binary.

use clap::Parser;
use concord_runtime::cli::{Cli, LoadVerb, LogFormat, NodeArgs, Verb};
use concord_runtime::demo::{self, DemoConfig};
use concord_runtime::node::Node;
use concord_runtime::{ctl, http, load, worker};
use std::process::ExitCode;

/// Logs to standard error at `default_level` unless `RUST_LOG` says
/// otherwise; colours only on a terminal, so that a log file holds plain text.
fn init_logging(format: LogFormat, default_level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs a node until SIGTERM or SIGINT, then shuts down cleanly: hands over
/// the leadership of the groups it leads, stops serving HTTP (letting
/// requests in progress finish), then stops the node.
async fn run_node(args: NodeArgs) -> Result<(), String> {
    let config = args.resolve().map_err(|e| e.to_string())?;
    let node = Node::start(config.clone()).await.map_err(|e| e.to_string())?;
    for group in node.groups() {
        worker::spawn(node.clone(), group.name.clone(), worker::WorkerConfig::default());
    }
    enum Http {
        Local(http::local::LocalServer),
        Workers(actix_web::dev::ServerHandle, actix_rt::task::JoinHandle<std::io::Result<()>>),
    }
    let http_error = |e: std::io::Error| format!("http {}: {e}", config.http);
    let (http, http_address) = if config.http_workers == 0 {
        let server = http::local::LocalServer::start(node.clone(), config.http).await.map_err(http_error)?;
        let address = server.address();
        (Http::Local(server), address)
    } else {
        let (server, address) = http::serve(node.clone(), config.http).map_err(http_error)?;
        (Http::Workers(server.handle(), actix_rt::spawn(server)), address)
    };
    tracing::info!(id = config.id, transport = %node.transport().local_addr(), http = %http_address, "node started");
    eprintln!(
        "concord node {} listening: transport {}, http {}",
        config.id,
        node.transport().local_addr(),
        http_address
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("signal handler: {e}"))?;
    // The signals are awaited in a task of their own: this future is polled
    // each time any task of the node's thread wakes (actix's `LocalSet` polls
    // it first), and a oneshot receiver is cheap to poll where the two signal
    // futures are not. With everything on one vCPU, the three nodes' CPU per
    // one-client put went from 282 to 268 µs (means of two pairs of runs).
    let (signalled, stop) = tokio::sync::oneshot::channel::<()>();
    actix_rt::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        let _ = signalled.send(());
    });
    let _ = stop.await;
    // Still serving: requests that arrive meanwhile are forwarded to the new leader.
    node.hand_over_leadership().await;
    match http {
        Http::Local(server) => {
            server.stop().await;
            node.stop();
        }
        Http::Workers(handle, server) => {
            handle.stop(true).await;
            node.stop();
            let _ = server.await;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Verb::Node(args) => {
            // A node logs what an operator follows: its start and stop,
            // elections, leader changes, peers found down.
            init_logging(args.log_format, "info");
            match actix::System::new().block_on(run_node(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("concord node: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Verb::Ctl(args) => ExitCode::from(actix::System::new().block_on(ctl::run(args))),
        Verb::Load(args) => {
            let result = actix::System::new().block_on(async {
                match args.what {
                    LoadVerb::Puts { clients, seconds, value_bytes, client } => {
                        load::puts(&args.endpoints, clients, seconds, value_bytes, client).await
                    }
                    LoadVerb::Reads { clients, seconds, consistency, writers, value_bytes } => {
                        load::reads(&args.endpoints, clients, seconds, consistency, writers, value_bytes)
                            .await
                    }
                    LoadVerb::Failover { pids, signal } => {
                        load::failover(&args.endpoints, &pids, signal).await
                    }
                }
            });
            match result {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("concord load: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Verb::Demo(args) => {
            init_logging(LogFormat::Human, "warn");
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
