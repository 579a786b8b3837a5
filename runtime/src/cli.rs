//! The command line: `concord node`, `concord ctl`, `concord demo`.

use crate::config::{NodeConfig, Peer};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Runs one node: Raft groups over TCP, task workers and the HTTP API.
    Node(NodeArgs),
    /// Talks to a node's HTTP API and prints its JSON answer.
    Ctl(CtlArgs),
    /// Runs the reference scenario on a cluster inside this process.
    Demo(DemoArgs),
    /// Load generator for benchmarks (see bench/compare.sh).
    Load(LoadArgs),
}

/// Options of `concord load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The nodes' HTTP addresses, comma-separated (HOST:PORT).
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// What to measure.
    #[command(subcommand)]
    pub what: LoadVerb,
}

/// Measurements of `concord load`.
#[derive(Debug, Subcommand)]
pub enum LoadVerb {
    /// Closed-loop puts for a fixed time: puts/s, p50 and p99 latency.
    Puts {
        /// Concurrent clients, each with its own connection.
        #[arg(long, default_value_t = 1)]
        clients: u64,
        /// Duration.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Size of each value.
        #[arg(long, default_value_t = 256)]
        value_bytes: usize,
        /// How to speak HTTP: `wire` (each request written whole, the answer
        /// parsed with httparse; `wire-threads` while there are no more
        /// clients than CPUs, `wire-loop` beyond), `wire-threads` (a thread
        /// and a blocking socket per client), `wire-loop` (every client on
        /// one event loop, as wrk) or `awc` (actix's HTTP client).
        #[arg(long, value_enum, default_value_t = crate::load::LoadClient::Wire)]
        client: crate::load::LoadClient,
    },
    /// Closed-loop reads of keys put first, for a fixed time, alone or
    /// beside closed-loop writers: reads/s, p50 and p99 read latency.
    Reads {
        /// Concurrent readers, each with its own connection.
        #[arg(long, default_value_t = 1)]
        clients: u64,
        /// Duration.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// `linearizable` (a quorum round per read batch), `lease` or `stale`.
        #[arg(long, value_enum, default_value_t = crate::load::ReadConsistency::Linearizable)]
        consistency: crate::load::ReadConsistency,
        /// Concurrent writers putting beside the readers, as `puts` does.
        #[arg(long, default_value_t = 0)]
        writers: u64,
        /// Size of each value put.
        #[arg(long, default_value_t = 256)]
        value_bytes: usize,
    },
    /// Stop the leader's process; time to a new leader and a first write.
    Failover {
        /// The nodes' process ids, in the order of --endpoints.
        #[arg(long, value_delimiter = ',', required = true)]
        pids: Vec<u32>,
        /// `kill` (SIGKILL, a crash) or `term` (SIGTERM: the node hands its
        /// leadership over, then stops).
        #[arg(long, value_enum, default_value_t = crate::load::StopSignal::Kill)]
        signal: crate::load::StopSignal,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Options of `concord node`. Flags override the file; both override the defaults.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// TOML configuration file (fields as the flags below, `[raft]` for timing).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// This node's id [default: 1].
    #[arg(long)]
    pub id: Option<u64>,
    /// The cluster id; peers of other clusters are refused [default: 1].
    #[arg(long)]
    pub cluster_id: Option<u64>,
    /// Transport listen address [default: 127.0.0.1:7400].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// HTTP API listen address [default: 127.0.0.1:7480].
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Another voter of the initial configuration, `ID=ADDRESS` (repeat for each).
    #[arg(long = "peer")]
    pub peers: Vec<Peer>,
    /// A gossip seed address (repeat for each).
    #[arg(long = "seed")]
    pub seeds: Vec<SocketAddr>,
    /// Data directory; survives restarts [default: concord-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A Raft group of the cluster, `NAME` (run by every node) or
    /// `NAME=ID,ID,...` (run by those nodes only); repeat for each
    /// [default: default].
    #[arg(long = "group")]
    pub groups: Vec<crate::config::GroupSpec>,
    /// Raft heartbeat interval in ms [default: 50].
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Smallest randomized election timeout in ms [default: 150].
    #[arg(long)]
    pub election_timeout_min_ms: Option<u64>,
    /// Largest randomized election timeout in ms [default: 300].
    #[arg(long)]
    pub election_timeout_max_ms: Option<u64>,
    /// Proposals batched into one append [default: 100].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Entries applied before a snapshot is taken; it then also waits until
    /// the log since the last one holds as many bytes as it, unless the log
    /// is within a tenth of --max-log-entries [default: 10000].
    #[arg(long)]
    pub snapshot_entries: Option<u64>,
    /// Bound on the entries kept in the log (in memory); proposals are
    /// refused while it is full [default: 100000].
    #[arg(long)]
    pub max_log_entries: Option<u64>,
    /// Bound on the bytes of the entries kept in the log (in memory);
    /// proposals past it are refused, and a snapshot is taken once the log
    /// is within a tenth of it [default: 536870912].
    #[arg(long)]
    pub max_log_bytes: Option<u64>,
    /// Log format; the level comes from RUST_LOG (default `info`) [default: human].
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

impl NodeArgs {
    /// The configuration: the file (if any), then each flag given.
    pub fn resolve(&self) -> Result<NodeConfig, crate::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        fn set<T: Clone>(field: &mut T, flag: &Option<T>) {
            if let Some(value) = flag {
                *field = value.clone();
            }
        }
        set(&mut config.id, &self.id);
        set(&mut config.cluster_id, &self.cluster_id);
        set(&mut config.listen, &self.listen);
        set(&mut config.http, &self.http);
        set(&mut config.data_dir, &self.data_dir);
        set(&mut config.raft.heartbeat_ms, &self.heartbeat_ms);
        set(&mut config.raft.election_timeout_min_ms, &self.election_timeout_min_ms);
        set(&mut config.raft.election_timeout_max_ms, &self.election_timeout_max_ms);
        set(&mut config.raft.batch_size, &self.batch_size);
        set(&mut config.raft.snapshot_entries, &self.snapshot_entries);
        set(&mut config.raft.max_log_entries, &self.max_log_entries);
        set(&mut config.raft.max_log_bytes, &self.max_log_bytes);
        if !self.peers.is_empty() {
            config.peers = self.peers.clone();
        }
        if !self.seeds.is_empty() {
            config.seeds = self.seeds.clone();
        }
        if !self.groups.is_empty() {
            config.groups = self.groups.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

/// Options of `concord ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The node's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:7480")]
    pub endpoint: String,
    /// Print compact JSON instead of pretty JSON.
    #[arg(long)]
    pub json: bool,
    /// The Raft group to address.
    #[arg(long, default_value = crate::config::DEFAULT_GROUP)]
    pub group: String,
    /// The request.
    #[command(subcommand)]
    pub verb: CtlVerb,
}

/// Requests of `concord ctl`.
#[derive(Debug, Subcommand)]
pub enum CtlVerb {
    /// The node's Raft state.
    Status,
    /// The leader, its term and voters.
    Leader,
    /// Replication per follower (ask the leader).
    LogStatus,
    /// Elections this node remembers.
    ElectionHistory,
    /// Hand leadership to the most up-to-date voter.
    StepDown,
    /// Make this node campaign now.
    TriggerElection,
    /// Check that a quorum confirms the leader.
    VerifyQuorum,
    /// Raft timing: `config get`, or `config set --heartbeat-ms 30 ...`.
    Config {
        /// get or set.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Write a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Answer with the value the put replaced, if any.
        #[arg(long)]
        prev_kv: bool,
    },
    /// Read a key (linearizable unless --stale or --lease).
    Get {
        /// The key.
        key: String,
        /// Read this node's replica without confirming leadership.
        #[arg(long)]
        stale: bool,
        /// Read under the leader lease.
        #[arg(long, conflicts_with = "stale")]
        lease: bool,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Compare-and-swap: set `new` if the key holds `expected`.
    Cas {
        /// The key.
        key: String,
        /// Expected current value; omit for "absent".
        #[arg(long)]
        expected: Option<String>,
        /// New value; omit to delete.
        #[arg(long)]
        new: Option<String>,
    },
    /// The task queue.
    Task {
        /// submit, status or results.
        #[command(subcommand)]
        action: TaskAction,
    },
    /// Prometheus metrics (text).
    Metrics,
    /// Quorum health of the group (the reference cluster-health fields).
    Health,
    /// The quorum manager: recommend, history, verify.
    Quorum {
        /// What to do.
        #[command(subcommand)]
        action: QuorumAction,
    },
    /// Gossip members, or a change of the group's members.
    Members {
        /// What to do (the member list when absent).
        #[command(subcommand)]
        action: Option<MembersAction>,
    },
    /// The gossip coordinator.
    Gossip {
        /// What to do.
        #[command(subcommand)]
        action: GossipAction,
    },
}

/// `quorum` actions.
#[derive(Debug, Subcommand)]
pub enum QuorumAction {
    /// The recommended quorum, with its strategy and reasoning.
    Recommend,
    /// Audited changes so far.
    History,
    /// Commit a no-op through the configuration in force.
    Verify,
    /// Move to a target configuration, planned as safe steps (ask the leader).
    Adjust {
        /// A voter of the target, `ID` or `ID=WEIGHT` (repeat for each).
        #[arg(long = "voter", required = true)]
        voters: Vec<WeightArg>,
        /// A learner of the target (repeat for each).
        #[arg(long = "learner")]
        learners: Vec<u64>,
        /// `majority`, `weighted` or `flexible:ELECTION_WEIGHT:COMMIT_WEIGHT`.
        #[arg(long, default_value = "majority")]
        policy: PolicyArg,
    },
    /// Set voters' weights, `ID=WEIGHT` each (ask the leader).
    Weights {
        /// The voters named and their new weights.
        #[arg(required = true)]
        weights: Vec<WeightArg>,
    },
    /// Set the quorum policy (ask the leader).
    Policy {
        /// `majority`, `weighted` or `flexible:ELECTION_WEIGHT:COMMIT_WEIGHT`.
        policy: PolicyArg,
    },
}

/// A voter and its weight on the command line: `ID` (weight 1) or `ID=WEIGHT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightArg {
    /// The node id.
    pub node: u64,
    /// Its weight.
    pub weight: u32,
}

impl std::str::FromStr for WeightArg {
    type Err = String;

    fn from_str(text: &str) -> Result<WeightArg, String> {
        let (node, weight) = text.split_once('=').unwrap_or((text, "1"));
        let node = node.trim().parse().map_err(|_| format!("{text:?}: {node:?} is not a node id"))?;
        let weight = weight.trim().parse().map_err(|_| format!("{text:?}: {weight:?} is not a weight"))?;
        Ok(WeightArg { node, weight })
    }
}

/// A quorum policy on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyArg(pub concord_membership::quorum::QuorumPolicy);

impl std::str::FromStr for PolicyArg {
    type Err = String;

    fn from_str(text: &str) -> Result<PolicyArg, String> {
        use concord_membership::quorum::QuorumPolicy;
        let mut parts = text.split(':');
        let policy = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("majority"), None, ..) => QuorumPolicy::Majority,
            (Some("weighted"), None, ..) => QuorumPolicy::Weighted,
            (Some("flexible"), Some(election), Some(commit), None) => QuorumPolicy::Flexible {
                election_weight: election.parse().map_err(|_| format!("{election:?} is not a weight"))?,
                commit_weight: commit.parse().map_err(|_| format!("{commit:?} is not a weight"))?,
            },
            _ => {
                return Err(format!(
                    "{text:?} is not majority, weighted or flexible:ELECTION_WEIGHT:COMMIT_WEIGHT"
                ))
            }
        };
        Ok(PolicyArg(policy))
    }
}

/// `members` changes.
#[derive(Debug, Subcommand)]
pub enum MembersAction {
    /// Add a node as a learner (and promote it once caught up with --voter).
    Add {
        /// The node id.
        node: u64,
        /// End as a voter.
        #[arg(long)]
        voter: bool,
    },
    /// Remove a node (a leader hands over first).
    Remove {
        /// The node id.
        node: u64,
    },
    /// Promote a caught-up learner.
    Promote {
        /// The node id.
        node: u64,
    },
}

/// `gossip` actions.
#[derive(Debug, Subcommand)]
pub enum GossipAction {
    /// Write a key (last writer wins).
    StateUpdate {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Read a key from this node's state.
    QueryState {
        /// The key.
        key: String,
    },
    /// Members and their states.
    Members,
    /// How far recent updates have spread.
    Convergence,
    /// Concurrent updates detected and how they were resolved.
    Conflicts,
    /// Reconcile with a random peer now.
    AntiEntropy,
    /// Refuse (on) or accept (off) writes.
    DegradedMode {
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
    /// Gossip counters.
    Metrics,
}

/// `config` actions.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the timing in force.
    Get,
    /// Change some fields.
    Set {
        /// Heartbeat interval in ms.
        #[arg(long)]
        heartbeat_ms: Option<u64>,
        /// Smallest election timeout in ms.
        #[arg(long)]
        election_timeout_min_ms: Option<u64>,
        /// Largest election timeout in ms.
        #[arg(long)]
        election_timeout_max_ms: Option<u64>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<usize>,
    },
}

/// `task` actions.
#[derive(Debug, Subcommand)]
pub enum TaskAction {
    /// Submit a task (idempotent by id).
    Submit {
        /// Its id.
        task_id: String,
        /// Its payload.
        payload: String,
    },
    /// One task's state.
    Status {
        /// Its id.
        task_id: String,
    },
    /// Totals in the reference shape.
    Results,
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
