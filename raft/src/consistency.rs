//! Consistency verification: replicas that applied the same index must hold
//! the same state. Compare [`crate::actor::Status`] digests gathered from
//! the replicas; a mismatch is logged at error level and returned.

use crate::core::types::Index;
use concord_transport::NodeId;
use std::collections::BTreeMap;
use thiserror::Error;

/// Replicas that applied the same index hold different states.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("replicas diverge at applied index {index}: digests {digests:?}")]
pub struct DigestMismatch {
    /// The applied index they share.
    pub index: Index,
    /// Each replica's digest at it.
    pub digests: Vec<(NodeId, u64)>,
}

/// Checks `(node, applied index, digest)` reports: equal indexes must have
/// equal digests. Reports at different indexes are not comparable and pass.
pub fn verify_digests(reports: &[(NodeId, Index, u64)]) -> Result<(), DigestMismatch> {
    let mut by_index: BTreeMap<Index, Vec<(NodeId, u64)>> = BTreeMap::new();
    for &(node, index, digest) in reports {
        by_index.entry(index).or_default().push((node, digest));
    }
    for (index, digests) in by_index {
        if digests.windows(2).any(|w| w[0].1 != w[1].1) {
            let mismatch = DigestMismatch { index, digests };
            tracing::error!(%mismatch, "STATE MACHINE DIVERGENCE");
            return Err(mismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_indexes_with_different_digests_are_reported() {
        let ok = [(NodeId(1), 10, 0xaa), (NodeId(2), 10, 0xaa), (NodeId(3), 9, 0xbb)];
        assert_eq!(verify_digests(&ok), Ok(()));
        let bad = [(NodeId(1), 10, 0xaa), (NodeId(2), 10, 0xab)];
        let err = verify_digests(&bad).unwrap_err();
        assert_eq!(err.index, 10);
        assert_eq!(err.digests.len(), 2);
    }
}
