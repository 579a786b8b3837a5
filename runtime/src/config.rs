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
    /// Raft groups this node serves, by name.
    pub groups: Vec<String>,
    /// Raft timing.
    pub raft: RaftTiming,
    /// Bound on an HTTP request body.
    pub http_body_bytes_max: usize,
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
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            batch_size: 100,
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
            groups: vec![DEFAULT_GROUP.to_string()],
            raft: RaftTiming::default(),
            http_body_bytes_max: HTTP_BODY_BYTES_MAX_DEFAULT,
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

    /// Checks values that cannot work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if self.groups.is_empty() {
            return Err(ConfigError::Invalid("at least one group is needed".into()));
        }
        if self.peers.iter().any(|p| p.id == self.id) {
            return Err(ConfigError::Invalid(format!("peers lists this node's own id {}", self.id)));
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
            "#,
        )
        .unwrap();
        assert_eq!(config.id, 3);
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.raft.heartbeat_ms, 30);
        assert_eq!(config.raft.election_timeout_min_ms, 150);
        assert_eq!(config.groups, vec![DEFAULT_GROUP.to_string()]);
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
        let error = NodeConfig::from_toml(r#"peers = ["2:127.0.0.1:1"]"#).unwrap_err();
        assert!(error.contains("is not ID=ADDRESS"), "{error}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let error = NodeConfig::from_file(Path::new("/nonexistent/concord.toml")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/concord.toml"), "{error}");
    }
}
