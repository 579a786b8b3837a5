//! The core's output: one batch of work for the driver, and the rules for
//! carrying it out.

use crate::core::message::Message;
use crate::core::types::{Entry, HardState, Index, Snapshot, Term};
use crate::core::ElectionRecord;
use concord_transport::NodeId;

/// Everything the core asks of its driver since the last batch. Take it with
/// [`crate::core::Raft::ready`], carry it out, and acknowledge it with
/// [`crate::core::Raft::advance`]. Only one batch is outstanding at a time;
/// inputs (`step`, `tick`, `propose`, ...) may continue while it is carried
/// out and land in the next batch.
///
/// Ordering rules (asserted where the core can see them):
/// 1. `messages` may be sent at once, in parallel with persisting: they are
///    a leader's appends, heartbeats and snapshot chunks, which depend only
///    on state already durable (thesis §10.2.1). The core never puts a
///    message here in a batch that changes the term or vote.
/// 2. `snapshot`, then `entries`, then `hard_state` are made durable: the
///    snapshot replaces the log through its index; `entries[0].index` says
///    where the log is cut before the entries are written. One durable
///    transaction for all of it is the intended implementation (group commit).
/// 3. Only then are `persisted_messages` sent: votes, append
///    acknowledgements and a candidate's vote requests depend on the new
///    term, vote and entries.
/// 4. The state machine restores `snapshot` (if any), then applies
///    `committed_entries` in order, each exactly once. The first
///    `committed_entries_durable` of them are already durable in this
///    node's log and may be applied at once, in parallel with persisting
///    (this is what answers a leader's proposer without waiting for a
///    write); the rest only after rule 2. While the batch is written, a
///    leader may apply what its followers commit meanwhile, after these
///    ([`crate::core::Raft::take_committed_early`]).
/// 5. A [`ReadState`] is answered once the state machine has applied its
///    `index`.
/// 6. `advance(number)` tells the core all of the above is done.
#[derive(Debug, Default)]
pub struct Ready {
    /// The batch's number; `advance` must name it.
    pub number: u64,
    /// The new term, vote and commit, if they changed. A changed commit
    /// index alone is not handed out: it is written with the next entries,
    /// term or vote, so a recovered commit index may lag the one applied.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader, to persist and restore.
    pub snapshot: Option<Snapshot>,
    /// Entries to write; the log is cut at `entries[0].index` first.
    pub entries: Vec<Entry>,
    /// Messages that may be sent before persisting (rule 1).
    pub messages: Vec<(NodeId, Message)>,
    /// Messages to send only after persisting (rule 3).
    pub persisted_messages: Vec<(NodeId, Message)>,
    /// Committed entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    /// How many of the first `committed_entries` are durable in this node's
    /// log already, so may be applied before this batch persists (rule 4).
    pub committed_entries_durable: usize,
    /// Linearizable reads confirmed by a quorum.
    pub read_states: Vec<ReadState>,
    /// Things worth telling the driver about.
    pub events: Vec<Event>,
}

impl Ready {
    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.events.is_empty()
    }
}

/// A read confirmed by the leader: it may be answered from a state machine
/// that has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's id for the read.
    pub id: u64,
    /// The commit index when the read arrived.
    pub index: Index,
}

/// A change the driver may want to act on (fail waiting clients, log, count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node became leader.
    BecameLeader(ElectionRecord),
    /// This node stopped being leader.
    SteppedDown {
        /// The term it stepped down in.
        term: Term,
    },
    /// The leader this node follows changed.
    LeaderChanged {
        /// Term.
        term: Term,
        /// The new leader, if known.
        leader: Option<NodeId>,
    },
    /// Reads that cannot be confirmed any more (leadership lost).
    ReadsDropped(Vec<u64>),
    /// A new configuration entered the log at `index`.
    MembershipChanged {
        /// Its index.
        index: Index,
    },
}
