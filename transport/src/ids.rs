//! Identities shared by every protocol: nodes, clusters and Raft groups.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node of the cluster. Unique within a [`ClusterId`]; never reused for a
/// different machine while the old one may still be talking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

/// A cluster. Two nodes only talk when their cluster ids are equal: the
/// handshake refuses a peer of another cluster, which keeps a misconfigured
/// node from joining the wrong deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterId(pub u64);

/// A Raft group inside one process. Several groups share one connection per
/// peer; the group id routes each message to its group's actor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

impl GroupId {
    /// The id of a group named by a string, stable across processes and
    /// releases (FNV-1a, 64 bits), so that every node maps a group name such as
    /// `"critical"` to the same id without coordination.
    pub fn from_name(name: &str) -> GroupId {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = name.bytes().fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
        GroupId(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_map_to_stable_distinct_ids() {
        assert_eq!(GroupId::from_name("critical"), GroupId::from_name("critical"));
        assert_ne!(GroupId::from_name("critical"), GroupId::from_name("background"));
        // FNV-1a of the empty string is its offset basis: pins the algorithm.
        assert_eq!(GroupId::from_name(""), GroupId(0xcbf2_9ce4_8422_2325));
    }
}
