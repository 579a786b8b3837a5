//! The messages Raft peers exchange, and their versioned wire form.

use crate::core::types::{Entry, Index, SnapshotMeta, Term};
use bytes::Bytes;
use concord_transport::{Protocol, WireMessage};
use serde::{Deserialize, Serialize};

/// One message between two members of a group; `term` is the sender's term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's current term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What it says.
    pub body: Body,
}

/// The kinds of messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// RequestVote (paper §5.2), or a pre-vote (thesis §9.6).
    VoteRequest {
        /// A pre-vote: answer as if the term were `term`, change nothing.
        pre_vote: bool,
        /// Sent on a leadership transfer or an operator's request: ignore the
        /// check-quorum lease (thesis §3.10).
        force: bool,
        /// Index of the candidate's last entry.
        last_log_index: Index,
        /// Term of the candidate's last entry.
        last_log_term: Term,
    },
    /// The answer to a vote request.
    VoteResponse {
        /// Answers a pre-vote.
        pre_vote: bool,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// AppendEntries (paper §5.3).
    Append {
        /// Index just before the first entry.
        prev_index: Index,
        /// Term of that entry.
        prev_term: Term,
        /// The entries, possibly none.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// The answer to an append.
    AppendResponse(AppendOutcome),
    /// Keeps leadership, carries the commit index the follower can use and a
    /// round number that confirms leadership for reads.
    Heartbeat {
        /// min(leader commit, follower match).
        commit: Index,
        /// The leader's read round when it was sent.
        round: u64,
    },
    /// The answer to a heartbeat (also sent with a higher term to a stale
    /// leader so that it steps down).
    HeartbeatResponse {
        /// Echoes the heartbeat's round.
        round: u64,
    },
    /// One chunk of a snapshot (paper §7).
    Snapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Byte offset of the chunk.
        offset: u64,
        /// Size of the whole snapshot.
        total_bytes: u64,
        /// The chunk.
        chunk: Bytes,
    },
    /// The answer to a snapshot chunk.
    SnapshotResponse {
        /// The snapshot's index.
        index: Index,
        /// The next offset wanted; equals the total when installed.
        next_offset: u64,
        /// The snapshot is installed and durable.
        done: bool,
    },
    /// Start an election now, skipping pre-vote (leadership transfer, thesis §3.10).
    TimeoutNow,
}

/// The outcome of an append, seen by the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`.
    Accepted {
        /// Last index known to match.
        match_index: Index,
    },
    /// The follower's log matches the leader's up to `match_index`, and it
    /// took no entry past it: its log is at `max_log_entries` or
    /// `max_log_bytes`, and a snapshot that will compact it is due (or will
    /// be once its committed entries are applied). The leader probes it
    /// again after the next heartbeat.
    Full {
        /// Last index known to match.
        match_index: Index,
    },
    /// The consistency check failed at `rejected_index`. The hint lets the
    /// leader skip a whole term at once (thesis §5.3, "conflict term").
    Rejected {
        /// The append's `prev_index`.
        rejected_index: Index,
        /// Term of the follower's entry at `rejected_index`, if it has one.
        conflict_term: Option<Term>,
        /// First index of `conflict_term` in the follower's log, or its last
        /// index + 1 if its log is shorter.
        conflict_index: Index,
    },
}

/// The versioned wire form of [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftWire {
    /// Version 1.
    V1(Message),
}

impl WireMessage for RaftWire {
    const PROTOCOL: Protocol = Protocol::Raft;
}

impl Message {
    /// Checks what the types cannot: an append's entries follow `prev_index`
    /// one by one, with terms that never decrease and never exceed the
    /// sender's. A peer with a bug must not make this node panic or corrupt
    /// its log, so such a message is refused.
    pub fn validate(&self) -> Result<(), &'static str> {
        if let Body::Append { prev_index, prev_term, entries, .. } = &self.body {
            let mut term = *prev_term;
            for (expected, entry) in (*prev_index + 1..).zip(entries) {
                if entry.index != expected {
                    return Err("append entries are not contiguous after prev_index");
                }
                if entry.term < term || entry.term > self.term {
                    return Err("append entry terms decrease or exceed the sender's term");
                }
                term = entry.term;
            }
        }
        Ok(())
    }

    /// Whether this message comes from a leader of `term` (append, heartbeat, snapshot).
    pub fn is_from_leader(&self) -> bool {
        matches!(self.body, Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. })
    }
}
