//! Linearizable reads by ReadIndex (thesis §6.4) and lease reads (§6.4.1).

use crate::core::{PendingRead, Raft, ReadState, Role};
use crate::error::RequestError;
use concord_transport::NodeId;

impl Raft {
    /// Whether the leader has committed an entry of its own term, so that
    /// its commit index is at least every committed index.
    pub(crate) fn committed_in_term(&self) -> bool {
        self.log.term(self.log.commit) == Some(self.term)
    }

    /// Registers a linearizable read `id`. A [`ReadState`] comes out in a
    /// later ready once a commit quorum confirmed this node was still leader
    /// after the read arrived; answer it after applying its index.
    pub fn read_index(&mut self, id: u64) -> Result<(), RequestError> {
        if self.role != Role::Leader {
            return Err(RequestError::NotLeader { leader: self.leader });
        }
        let pending = self.reads_pending.len() + self.reads_waiting_for_term_commit.len();
        if pending >= self.config.read_pending_max {
            return Err(RequestError::TooManyReads(pending));
        }
        if self.committed_in_term() {
            self.push_read(id);
        } else {
            self.reads_waiting_for_term_commit.push(id);
        }
        Ok(())
    }

    pub(crate) fn push_read(&mut self, id: u64) {
        let index = self.log.commit;
        // Reads arriving together share the next heartbeat round.
        let round = self.round + 1;
        self.reads_pending.push_back(PendingRead { id, index, round });
        self.read_round_wanted = true;
        self.confirm_reads();
    }

    /// Starts the heartbeat round pending reads wait for.
    pub(crate) fn flush_read_round(&mut self) {
        if self.read_round_wanted && self.role == Role::Leader {
            self.read_round_wanted = false;
            self.broadcast_heartbeat();
        }
    }

    fn round_confirmed(&self, round: u64) -> bool {
        let membership = self.log.membership();
        let mut acked: Vec<NodeId> =
            self.progress.iter().filter(|(_, p)| p.acked_round >= round).map(|(id, _)| *id).collect();
        acked.push(self.id);
        membership.weight_of(&acked) >= membership.commit_quorum()
    }

    pub(crate) fn confirm_reads(&mut self) {
        while let Some(read) = self.reads_pending.front().copied() {
            if !self.round_confirmed(read.round) {
                break;
            }
            self.reads_pending.pop_front();
            self.read_states.push(ReadState { id: read.id, index: read.index });
        }
    }

    /// Serves a read from the leader lease without a round trip: valid while
    /// `election_ticks_min - lease_drift_ticks` ticks have not passed since
    /// the heartbeat a commit quorum acknowledged was sent. Needs
    /// check-quorum, which keeps followers from electing anyone during that
    /// time.
    pub fn read_lease(&self, id: u64) -> Result<ReadState, RequestError> {
        if self.role != Role::Leader {
            return Err(RequestError::NotLeader { leader: self.leader });
        }
        if !self.config.check_quorum || !self.committed_in_term() || self.transfer.is_some() {
            return Err(RequestError::LeaseNotHeld);
        }
        let membership = self.log.membership();
        let mut acks: Vec<(u64, u64)> = membership
            .voters
            .iter()
            .filter_map(|(id, weight)| {
                let tick =
                    if *id == self.id { Some(self.ticks) } else { self.progress.get(id)?.acked_sent_tick };
                tick.map(|t| (t, *weight))
            })
            .collect();
        acks.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        let mut weight = 0;
        for (tick, w) in acks {
            weight += w;
            if weight >= membership.commit_quorum() {
                let lease = self.config.election_ticks_min - self.config.lease_drift_ticks;
                if self.ticks < tick + lease {
                    return Ok(ReadState { id, index: self.log.commit });
                }
                break;
            }
        }
        Err(RequestError::LeaseNotHeld)
    }

    pub(crate) fn drop_reads(&mut self) {
        let mut ids: Vec<u64> = self.reads_pending.drain(..).map(|r| r.id).collect();
        ids.append(&mut self.reads_waiting_for_term_commit);
        self.read_round_wanted = false;
        if !ids.is_empty() {
            self.events.push(crate::core::Event::ReadsDropped(ids));
        }
    }
}
