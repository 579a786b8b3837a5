//! The Merkle tree over the key space used by anti-entropy.
//!
//! Fixed shape: `BRANCHING` children per node and `DEPTH` levels below the
//! root, so the leaves are `BRANCHING^DEPTH` buckets chosen by a key's hash.
//! A node's hash is the wrapping sum of the mixed hashes of the keys below
//! it: an update changes one leaf and its ancestors in `O(DEPTH)`, and equal
//! key sets with equal versions give equal roots whatever the insertion order.
//! Two trees are compared top-down, descending only into nodes whose hashes
//! differ, so the cost follows the size of the difference.

use concord_transport::NodeId;
use crdts::VClock;

/// Children per node.
pub const BRANCHING: usize = 16;
/// Levels below the root; the leaves (buckets) are at this level.
pub const DEPTH: u8 = 3;
/// Number of buckets.
pub const BUCKETS: usize = BRANCHING * BRANCHING * BRANCHING;
const _: () = assert!(BUCKETS == BRANCHING.pow(DEPTH as u32));

/// FNV-1a over bytes: stable across processes and releases, unlike std's hasher.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A 64-bit finaliser (splitmix64) that spreads FNV's output before it is
/// summed, so sums of different sets rarely collide.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of a key's version. Only the vector clock is hashed: replicas
/// that have applied the same set of updates to a key (equal clocks) hold
/// equal values, because every update advances the clock and values only
/// change by joins.
pub fn version_hash(key: &str, clock: &VClock<NodeId>) -> u64 {
    let mut hash = hash_bytes(key.as_bytes());
    for (actor, counter) in &clock.dots {
        hash = mix(hash ^ actor.0);
        hash = mix(hash ^ *counter);
    }
    hash
}

/// The bucket (leaf index) of a key.
pub fn bucket_of(key: &str) -> u32 {
    (mix(hash_bytes(key.as_bytes())) % BUCKETS as u64) as u32
}

/// Number of nodes at `level` (0 is the root).
pub fn level_width(level: u8) -> usize {
    BRANCHING.pow(u32::from(level))
}

/// The children of node `index` at `level`, as indices at `level + 1`.
pub fn children(index: u32) -> impl Iterator<Item = u32> {
    let first = index * BRANCHING as u32;
    first..first + BRANCHING as u32
}

/// Hashes of every node, kept up to date on each key change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<u64>>,
}

impl Default for MerkleTree {
    fn default() -> Self {
        MerkleTree { levels: (0..=DEPTH).map(|level| vec![0; level_width(level)]).collect() }
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> MerkleTree {
        MerkleTree::default()
    }

    /// Replaces a key's version hash `old` (None if the key was absent) by `new`.
    pub fn update(&mut self, key: &str, old: Option<u64>, new: u64) {
        let delta = mix(new).wrapping_sub(old.map(mix).unwrap_or(0));
        let mut index = bucket_of(key) as usize;
        for level in (0..=DEPTH as usize).rev() {
            self.levels[level][index] = self.levels[level][index].wrapping_add(delta);
            index /= BRANCHING;
        }
    }

    /// The root hash.
    pub fn root(&self) -> u64 {
        self.levels[0][0]
    }

    /// The hash of node `index` at `level`, or `None` if out of range.
    pub fn node(&self, level: u8, index: u32) -> Option<u64> {
        self.levels.get(usize::from(level))?.get(index as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(counter: u64) -> VClock<NodeId> {
        let mut clock = VClock::new();
        clock.dots.insert(NodeId(1), counter);
        clock
    }

    #[test]
    fn root_depends_on_content_not_order() {
        let mut a = MerkleTree::new();
        let mut b = MerkleTree::new();
        for i in 0..100 {
            let key = format!("k{i}");
            a.update(&key, None, version_hash(&key, &clock(1)));
        }
        for i in (0..100).rev() {
            let key = format!("k{i}");
            b.update(&key, None, version_hash(&key, &clock(1)));
        }
        assert_eq!(a, b);
        let old = version_hash("k7", &clock(1));
        b.update("k7", Some(old), version_hash("k7", &clock(2)));
        assert_ne!(a.root(), b.root());
        let differing_buckets =
            (0..BUCKETS as u32).filter(|&i| a.node(DEPTH, i) != b.node(DEPTH, i)).collect::<Vec<_>>();
        assert_eq!(differing_buckets, vec![bucket_of("k7")]);
        b.update("k7", Some(version_hash("k7", &clock(2))), old);
        assert_eq!(a, b, "undoing a change restores every hash");
    }
}
