//! Merkle anti-entropy between two nodes: compare roots, descend only into
//! differing branches, then exchange only the keys whose versions differ.
//!
//! The initiator sends its root ([`start`]). Each side answers a
//! [`AntiEntropy::Nodes`] with its hashes of the children of the nodes that
//! differ, until the buckets: there the answer lists the bucket's keys with
//! their version hashes ([`AntiEntropy::Keys`]). The other side then sends
//! the entries the lister lacks or holds differently and requests those it
//! lacks itself. Every message is cut to `message_size_max`.

use crate::core::convergence::Marks;
use crate::core::merkle::{children, version_hash, DEPTH};
use crate::state::Store;
use crate::wire::{chunk, AntiEntropy, WireEntry, MESSAGE_OVERHEAD_BYTES};
use std::collections::{BTreeMap, BTreeSet};

/// The first message of a session: our root.
pub fn start(store: &Store) -> AntiEntropy {
    AntiEntropy::Nodes { level: 0, nodes: vec![(0, store.tree().root())] }
}

/// What answering one anti-entropy message produced.
#[derive(Debug, Default)]
pub struct Answer {
    /// Messages to send back.
    pub replies: Vec<AntiEntropy>,
    /// Entries received, to merge.
    pub received: Vec<WireEntry>,
    /// Entries sent.
    pub entries_sent: usize,
    /// Items dropped because alone they exceed the message budget.
    pub oversized: usize,
}

/// Answers one anti-entropy message from a peer; entries sent carry their
/// tracked `marks`.
pub fn answer(store: &Store, marks: &Marks, message: AntiEntropy, message_size_max: usize) -> Answer {
    let budget = message_size_max.saturating_sub(MESSAGE_OVERHEAD_BYTES);
    let mut answer = Answer::default();
    match message {
        AntiEntropy::Nodes { level, nodes } => {
            let differing: Vec<u32> = nodes
                .into_iter()
                .filter(|(index, hash)| store.tree().node(level, *index).is_some_and(|ours| ours != *hash))
                .map(|(index, _)| index)
                .collect();
            if level < DEPTH {
                let child_hashes: Vec<(u32, u64)> = differing
                    .iter()
                    .flat_map(|index| children(*index))
                    .filter_map(|child| store.tree().node(level + 1, child).map(|hash| (child, hash)))
                    .collect();
                let (chunks, oversized) = chunk(child_hashes, budget);
                answer.oversized += oversized;
                answer
                    .replies
                    .extend(chunks.into_iter().map(|nodes| AntiEntropy::Nodes { level: level + 1, nodes }));
            } else if !differing.is_empty() {
                let buckets: Vec<(u32, Vec<(String, u64)>)> = differing
                    .into_iter()
                    .map(|bucket| {
                        let keys =
                            store.bucket(bucket).map(|(key, e)| (key.clone(), version_hash(key, &e.clock)));
                        (bucket, keys.collect())
                    })
                    .collect();
                let (chunks, oversized) = chunk(buckets, budget);
                answer.oversized += oversized;
                answer.replies.extend(chunks.into_iter().map(|buckets| AntiEntropy::Keys { buckets }));
            }
        }
        AntiEntropy::Keys { buckets } => {
            let theirs: BTreeMap<String, u64> =
                buckets.iter().flat_map(|(_, keys)| keys.iter().cloned()).collect();
            let listed: BTreeSet<u32> = buckets.iter().map(|(bucket, _)| *bucket).collect();
            let send: Vec<WireEntry> = listed
                .iter()
                .flat_map(|bucket| store.bucket(*bucket))
                .filter(|(key, entry)| theirs.get(*key) != Some(&version_hash(key, &entry.clock)))
                .map(|(key, entry)| WireEntry::encode(key, entry).with_tracked(marks.of(key)))
                .collect();
            let request: Vec<String> = theirs
                .into_iter()
                .filter(|(key, hash)| store.get(key).map(|e| version_hash(key, &e.clock)) != Some(*hash))
                .map(|(key, _)| key)
                .collect();
            answer.entries_sent += send.len();
            push_entries(&mut answer, send, budget);
            let (chunks, oversized) = chunk(request, budget);
            answer.oversized += oversized;
            answer.replies.extend(chunks.into_iter().map(|keys| AntiEntropy::Request { keys }));
        }
        AntiEntropy::Request { keys } => {
            let send: Vec<WireEntry> = keys
                .iter()
                .filter_map(|key| {
                    store.get(key).map(|entry| WireEntry::encode(key, entry).with_tracked(marks.of(key)))
                })
                .collect();
            answer.entries_sent += send.len();
            push_entries(&mut answer, send, budget);
        }
        AntiEntropy::Entries { entries } => answer.received = entries,
    }
    answer
}

fn push_entries(answer: &mut Answer, entries: Vec<WireEntry>, budget: usize) {
    let (chunks, oversized) = chunk(entries, budget);
    answer.oversized += oversized;
    answer.entries_sent -= oversized;
    answer.replies.extend(chunks.into_iter().map(|entries| AntiEntropy::Entries { entries }));
}
