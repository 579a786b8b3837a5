//! A node's configuration: a TOML file and/or command-line flags, flags
//! winning. Every field has a default so that `concord node --id 1` alone
//! starts a single-node cluster.

use concord_transport::{ClusterId, NodeId};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default Raft group every node runs.
pub const DEFAULT_GROUP: &str = "default";
/// Default bound on an HTTP request body.
pub const HTTP_BODY_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Default number of HTTP worker threads: none, HTTP runs on the node's own
/// thread. On a 2-core machine that cut one-client latency by about a tenth
/// and left 64-client throughput unchanged (bench/compare.sh).
pub const HTTP_WORKERS_DEFAULT: usize = 0;

/// Default `raft.snapshot_entries`: the fewest entries between snapshots.
/// The log-bytes rule decides for a large state; for a small one, a
/// snapshot every 10,000 entries keeps the log (memory, restart replay) and
/// the snapshot's fixed costs (an fsynced file, a state walk) small. Before
/// the log-bytes rule it was 1,000, which for a 19 MB state cost a
/// snapshot every ~300 KB of log and halved puts/s.
pub const SNAPSHOT_ENTRIES_DEFAULT: u64 = 10_000;
/// Default `raft.max_log_entries`: room for the log-bytes rule to defer
/// the snapshot of a state of up to ~100,000 entries' worth of bytes (a
/// tenth of it is the margin for proposals while a forced snapshot is
/// built), at ~40 MB of memory for 300-byte entries.
pub const MAX_LOG_ENTRIES_DEFAULT: u64 = 100_000;
/// Default `raft.max_log_bytes`: the Raft core's, 512 MiB.
pub const MAX_LOG_BYTES_DEFAULT: u64 = concord_raft::core::config::MAX_LOG_BYTES_DEFAULT;

/// A node's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// This node's id (unique in the cluster, never reused).
    pub id: u64,
    /// The cluster; nodes of other clusters are refused.
    pub cluster_id: u64,
    /// Peer-to-peer (transport) listen address.
    pub listen: SocketAddr,
    /// HTTP API listen address.
    pub http: SocketAddr,
    /// Other voters of the initial configuration, as `ID=ADDRESS`.
    pub peers: Vec<Peer>,
    /// Gossip seeds, by transport address.
    pub seeds: Vec<SocketAddr>,
    /// Where the durable Raft log and state live.
    pub data_dir: PathBuf,
    /// The cluster's Raft groups. A group that names its `members` runs
    /// only on them (with them as its initial voters); one that does not
    /// runs on every node of the initial configuration. A node forwards
    /// key-value and task requests for a group it does not run to a member.
    pub groups: Vec<GroupSpec>,
    /// Raft timing.
    pub raft: RaftTiming,
    /// Bound on an HTTP request body.
    pub http_body_bytes_max: usize,
    /// HTTP worker threads. 0 (the default) serves HTTP on the node's own
    /// thread, beside Raft and the transport, with no thread hand-off per
    /// request (see [`crate::http::local`]); N starts N actix-web worker
    /// threads for parsing and JSON, for machines with cores to spare.
    pub http_workers: usize,
}

/// Raft timing, changeable at run time through `config set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTiming {
    /// Heartbeat interval.
    pub heartbeat_ms: u64,
    /// Smallest randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Largest randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Proposals batched into one append.
    pub batch_size: usize,
    /// Entries applied since the last snapshot before the next one is
    /// taken (compare etcd's `--snapshot-count`, 100,000). A snapshot
    /// rewrites the whole state, so it waits, too, until the log since the
    /// last one holds as many bytes as that snapshot (writing snapshots
    /// costs at most about what writing the log does), unless the log nears
    /// `max_log_entries`.
    pub snapshot_entries: u64,
    /// Bound on the entries kept in the log, which is held in memory; more
    /// than `snapshot_entries`. Proposals are refused while the log is full;
    /// a snapshot is taken, whatever its size, once the log is within a
    /// tenth of the bound. The log holds about as many bytes as the last
    /// snapshot (at least `snapshot_entries` entries), and never more than
    /// this many entries: 100,000 entries of 300 bytes are ~40 MB with
    /// their bookkeeping.
    pub max_log_entries: u64,
    /// Bound on the bytes of the entries kept in the log (in memory), for
    /// large values: 10,000 puts of 1 MiB would otherwise be held until the
    /// first snapshot. Proposals that would pass it are refused (and retried
    /// until the write's deadline); a snapshot is taken once the log is
    /// within a tenth of it, before `snapshot_entries` if need be. At least
    /// the largest command, 1 MiB.
    pub max_log_bytes: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            batch_size: 100,
            snapshot_entries: SNAPSHOT_ENTRIES_DEFAULT,
            max_log_entries: MAX_LOG_ENTRIES_DEFAULT,
            max_log_bytes: MAX_LOG_BYTES_DEFAULT,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: 1,
            cluster_id: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            http: SocketAddr::from(([127, 0, 0, 1], 7480)),
            peers: Vec::new(),
            seeds: Vec::new(),
            data_dir: PathBuf::from("concord-data"),
            groups: vec![GroupSpec::everywhere(DEFAULT_GROUP)],
            raft: RaftTiming::default(),
            http_body_bytes_max: HTTP_BODY_BYTES_MAX_DEFAULT,
            http_workers: HTTP_WORKERS_DEFAULT,
        }
    }
}

/// Another node of the initial configuration: `ID=ADDRESS` in files and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Peer {
    /// Its node id.
    pub id: u64,
    /// Its transport address.
    pub address: SocketAddr,
}

impl std::str::FromStr for Peer {
    type Err = String;

    fn from_str(text: &str) -> Result<Peer, String> {
        let (id, address) = text.split_once('=').ok_or_else(|| format!("peer {text:?} is not ID=ADDRESS"))?;
        let id = id.trim().parse().map_err(|_| format!("peer {text:?}: {id:?} is not a node id"))?;
        let address = address
            .trim()
            .parse()
            .map_err(|_| format!("peer {text:?}: {address:?} is not an IP:PORT address"))?;
        Ok(Peer { id, address })
    }
}

impl TryFrom<String> for Peer {
    type Error = String;

    fn try_from(text: String) -> Result<Peer, String> {
        text.parse()
    }
}

impl From<Peer> for String {
    fn from(peer: Peer) -> String {
        format!("{}={}", peer.id, peer.address)
    }
}

/// One Raft group of the cluster: `NAME` (run by every node) or
/// `NAME=ID,ID,...` in flags and string lists, or a table
/// `{ name = "critical", members = [1, 2, 3, 4, 5] }` (`[[groups]]`) in files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GroupEntry")]
pub struct GroupSpec {
    /// The group's name (its wire id is derived from it).
    pub name: String,
    /// The node ids that run the group, its initial voters; `None` for
    /// every node of the initial configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<u64>>,
}

/// The two spellings of a [`GroupSpec`] in files.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a group: \"NAME\", \"NAME=ID,ID,...\" or a table with `name` and `members`")]
enum GroupEntry {
    Text(String),
    Table(GroupTable),
}

/// `{ name = "critical", members = [1, 2, 3] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupTable {
    name: String,
    #[serde(default)]
    members: Option<Vec<u64>>,
}

impl TryFrom<GroupEntry> for GroupSpec {
    type Error = String;

    fn try_from(entry: GroupEntry) -> Result<GroupSpec, String> {
        match entry {
            GroupEntry::Text(text) => text.parse(),
            GroupEntry::Table(GroupTable { name, members }) => Ok(GroupSpec { name, members }),
        }
    }
}

impl GroupSpec {
    /// A group run by every node.
    pub fn everywhere(name: &str) -> GroupSpec {
        GroupSpec { name: name.to_string(), members: None }
    }

    /// A group run by `members` only.
    pub fn on(name: &str, members: impl IntoIterator<Item = u64>) -> GroupSpec {
        GroupSpec { name: name.to_string(), members: Some(members.into_iter().collect()) }
    }

    /// Whether node `id` runs the group.
    pub fn runs_on(&self, id: u64) -> bool {
        self.members.as_ref().is_none_or(|members| members.contains(&id))
    }
}

impl std::str::FromStr for GroupSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<GroupSpec, String> {
        let Some((name, members)) = text.split_once('=') else {
            return Ok(GroupSpec::everywhere(text.trim()));
        };
        let members = members
            .split(',')
            .map(|id| id.trim().parse().map_err(|_| format!("group {text:?}: {id:?} is not a node id")))
            .collect::<Result<Vec<u64>, String>>()?;
        Ok(GroupSpec::on(name.trim(), members))
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node configuration.
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its position.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads a TOML file; missing fields take their defaults.
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        NodeConfig::from_toml(&text)
            .map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<NodeConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks values that cannot work together, group members against the
    /// peers included.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_settings()?;
        self.validate_members()
    }

    /// Checks everything [`NodeConfig::validate`] does except whether
    /// groups' members are this node or its peers: for a node bound before
    /// its peers are known ([`crate::node::BoundNode`]).
    pub fn validate_settings(&self) -> Result<(), ConfigError> {
        let timing = &self.raft;
        if timing.heartbeat_ms == 0 {
            return Err(ConfigError::Invalid("raft.heartbeat_ms must be positive".into()));
        }
        if timing.election_timeout_min_ms <= timing.heartbeat_ms {
            return Err(ConfigError::Invalid(format!(
                "raft.election_timeout_min_ms ({}) must exceed raft.heartbeat_ms ({})",
                timing.election_timeout_min_ms, timing.heartbeat_ms
            )));
        }
        if timing.election_timeout_max_ms < timing.election_timeout_min_ms {
            return Err(ConfigError::Invalid(format!(
                "raft.election_timeout_max_ms ({}) is below raft.election_timeout_min_ms ({})",
                timing.election_timeout_max_ms, timing.election_timeout_min_ms
            )));
        }
        if timing.batch_size == 0 {
            return Err(ConfigError::Invalid("raft.batch_size must be positive".into()));
        }
        if timing.snapshot_entries == 0 || timing.max_log_entries <= timing.snapshot_entries {
            return Err(ConfigError::Invalid(format!(
                "raft.snapshot_entries ({}) must be positive and below raft.max_log_entries ({})",
                timing.snapshot_entries, timing.max_log_entries
            )));
        }
        let largest = concord_raft::core::Config::default().batch_bytes_max as u64;
        if timing.max_log_bytes < largest {
            return Err(ConfigError::Invalid(format!(
                "raft.max_log_bytes ({}) must be at least {largest}, the largest command",
                timing.max_log_bytes
            )));
        }
        if self.groups.is_empty() {
            return Err(ConfigError::Invalid("at least one group is needed".into()));
        }
        if self.peers.iter().any(|p| p.id == self.id) {
            return Err(ConfigError::Invalid(format!("peers lists this node's own id {}", self.id)));
        }
        self.validate_groups()
    }

    /// Group names are non-empty and unique; a group's members are distinct.
    fn validate_groups(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for group in &self.groups {
            if group.name.is_empty() {
                return Err(ConfigError::Invalid("a group needs a name".into()));
            }
            if !names.insert(group.name.as_str()) {
                return Err(ConfigError::Invalid(format!("group {:?} is listed twice", group.name)));
            }
            let Some(members) = &group.members else { continue };
            if members.is_empty() {
                return Err(ConfigError::Invalid(format!("group {:?} has no members", group.name)));
            }
            let mut seen = std::collections::BTreeSet::new();
            for &member in members {
                if !seen.insert(member) {
                    return Err(ConfigError::Invalid(format!(
                        "group {:?} lists member {member} twice",
                        group.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// A group's members are nodes of the initial configuration (this node
    /// or a peer).
    fn validate_members(&self) -> Result<(), ConfigError> {
        for group in &self.groups {
            for &member in group.members.iter().flatten() {
                if member != self.id && !self.peers.iter().any(|p| p.id == member) {
                    return Err(ConfigError::Invalid(format!(
                        "group {:?}: member {member} is neither this node ({}) nor a peer",
                        group.name, self.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.id)
    }

    /// The cluster id.
    pub fn cluster(&self) -> ClusterId {
        ClusterId(self.cluster_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_some_fields_and_the_rest_default() {
        let config = NodeConfig::from_toml(
            r#"
            id = 3
            peers = ["1=127.0.0.1:7401", "2=127.0.0.1:7402"]
            [raft]
            heartbeat_ms = 30
            snapshot_entries = 100000
            max_log_entries = 200000
            max_log_bytes = 268435456
            "#,
        )
        .unwrap();
        assert_eq!((config.raft.snapshot_entries, config.raft.max_log_entries), (100_000, 200_000));
        assert_eq!(config.raft.max_log_bytes, 256 << 20);
        assert_eq!(config.id, 3);
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.raft.heartbeat_ms, 30);
        assert_eq!(config.raft.election_timeout_min_ms, 150);
        assert_eq!(config.groups, vec![GroupSpec::everywhere(DEFAULT_GROUP)]);
        config.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_the_reason() {
        let error = NodeConfig::from_toml("idd = 3").unwrap_err();
        assert!(error.contains("unknown field `idd`"), "{error}");
        let mut config = NodeConfig::default();
        config.raft.election_timeout_max_ms = 100;
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("election_timeout_min_ms (150) must exceed") || error.contains("below"),
            "{error}"
        );
        let config = NodeConfig { peers: vec!["1=127.0.0.1:1".parse().unwrap()], ..NodeConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("own id 1"));
        let mut config = NodeConfig::default();
        config.raft.snapshot_entries = config.raft.max_log_entries;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("raft.snapshot_entries (100000) must be positive and below"), "{error}");
        let mut config = NodeConfig::default();
        config.raft.max_log_bytes = 1_000;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("raft.max_log_bytes (1000) must be at least 1048576"), "{error}");
        let error = NodeConfig::from_toml(r#"peers = ["2:127.0.0.1:1"]"#).unwrap_err();
        assert!(error.contains("is not ID=ADDRESS"), "{error}");
    }

    #[test]
    fn groups_name_their_members_in_tables_strings_or_not_at_all() {
        let config = NodeConfig::from_toml(
            r#"
            id = 4
            peers = ["1=127.0.0.1:7401", "2=127.0.0.1:7402", "3=127.0.0.1:7403", "5=127.0.0.1:7405"]
            [[groups]]
            name = "critical"
            members = [1, 2, 3, 4, 5]
            [[groups]]
            name = "background"
            members = [1, 2, 3]
            [[groups]]
            name = "default"
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.groups,
            vec![
                GroupSpec::on("critical", [1, 2, 3, 4, 5]),
                GroupSpec::on("background", [1, 2, 3]),
                GroupSpec::everywhere("default"),
            ]
        );
        assert!(config.groups[0].runs_on(4) && !config.groups[1].runs_on(4) && config.groups[2].runs_on(4));
        let strings = NodeConfig::from_toml(r#"groups = ["background=1, 2,3", "default"]"#).unwrap();
        assert_eq!(
            strings.groups,
            vec![GroupSpec::on("background", [1, 2, 3]), GroupSpec::everywhere("default")]
        );
    }

    #[test]
    fn group_members_must_be_known_nodes_listed_once() {
        let peers: Vec<Peer> = vec!["2=127.0.0.1:2".parse().unwrap()];
        let with =
            |groups: Vec<GroupSpec>| NodeConfig { peers: peers.clone(), groups, ..NodeConfig::default() };
        let error = with(vec![GroupSpec::on("a", [1, 7])]).validate().unwrap_err().to_string();
        assert!(error.contains("member 7 is neither this node (1) nor a peer"), "{error}");
        let error = with(vec![GroupSpec::on("a", [1, 1])]).validate().unwrap_err().to_string();
        assert!(error.contains("lists member 1 twice"), "{error}");
        let error = with(vec![GroupSpec::on("a", [])]).validate().unwrap_err().to_string();
        assert!(error.contains("no members"), "{error}");
        let error = with(vec![GroupSpec::everywhere("a"), GroupSpec::on("a", [2])]).validate().unwrap_err();
        assert!(error.to_string().contains("listed twice"), "{error}");
        let error = "a=1,x".parse::<GroupSpec>().unwrap_err();
        assert!(error.contains("\"x\" is not a node id"), "{error}");
        let error = NodeConfig::from_toml("[[groups]]\nname = \"a\"\nmemberz = [1]").unwrap_err();
        assert!(error.contains("a group: \"NAME\""), "a misspelt field is refused: {error}");
        // A node may run none of the groups: it forwards.
        with(vec![GroupSpec::on("a", [2])]).validate().unwrap();
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let error = NodeConfig::from_file(Path::new("/nonexistent/concord.toml")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/concord.toml"), "{error}");
    }
}
