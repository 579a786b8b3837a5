//! Elections: randomized timeouts with split-vote backoff, pre-vote,
//! check-quorum, vote handling, the election history, and the early
//! campaign when the transport finds the leader down ([`Raft::peer_down`]).

use crate::core::types::{Index, Term};
use crate::core::{Body, Event, Payload, Raft, Role};
use concord_transport::NodeId;
use rand::Rng;

/// One election as this node saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionRecord {
    /// The term elected in.
    pub term: Term,
    /// The leader of the previous term, as this node knew it.
    pub old_leader: Option<NodeId>,
    /// The new leader.
    pub leader: NodeId,
    /// Voters that granted their vote (known on the leader only).
    pub voted_by: Vec<NodeId>,
    /// Ticks from the start of the campaign (or, on a follower, from the last
    /// contact with the old leader) to the new leader.
    pub election_duration_ticks: u64,
    /// The tick at which the leader became known.
    pub at_tick: u64,
    /// What started the winning campaign.
    pub trigger: ElectionTrigger,
}

/// What started a campaign, as the winner knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionTrigger {
    /// The randomized election timeout ran out.
    Timeout,
    /// The transport found the leader down ([`Raft::peer_down`]).
    LeaderDown,
    /// An operator's `trigger_election`, or a leadership transfer.
    Forced,
    /// Recorded by a node that did not campaign: it learnt of the new leader.
    Observed,
}

/// After its leader is found down, a follower campaigns this many ticks after
/// its lease has run out, so that the other voters' leases (their clocks
/// tick out of phase with ours, by less than a tick) have run out too.
pub const LEADER_DOWN_MARGIN_TICKS: u64 = 1;

/// After its leader is found down, the surviving voters campaign in turns,
/// by ascending id, this many ticks apart: no split vote, and if the first
/// cannot win (its log is behind) the next one tries soon after.
pub const LEADER_DOWN_TURN_TICKS: u64 = 2;

/// Ceiling on the split-vote backoff: the timeout range grows by half its
/// width per failed election, up to this many times.
pub const ELECTION_BACKOFF_STEPS_MAX: u32 = 4;

impl Raft {
    /// Elections remembered, oldest first.
    pub fn election_history(&self) -> impl Iterator<Item = &ElectionRecord> {
        self.history.iter()
    }

    pub(crate) fn reset_election_timeout(&mut self) {
        self.election_elapsed = 0;
        self.leader_down = false;
        let (min, max) = (self.config.election_ticks_min, self.config.election_ticks_max);
        // Split-vote backoff: after failed elections, draw from a wider range.
        let steps = u64::from(self.elections_failed.min(ELECTION_BACKOFF_STEPS_MAX));
        let widened = max + steps * (max - min) / 2;
        self.randomized_timeout = self.rng.random_range(min..widened);
    }

    /// Whether this follower heard from a leader within the minimum election
    /// timeout, so that check-quorum lets it ignore vote requests. A node
    /// that just started counts as having heard from one: it may have, before
    /// a crash, and a leader's lease (lease reads) relies on that promise.
    pub(crate) fn in_lease(&self) -> bool {
        let heard_recently = self.leader.is_some() && self.election_elapsed < self.config.election_ticks_min;
        let just_started = self.ticks < self.config.election_ticks_min;
        self.config.check_quorum && self.role != Role::Leader && (heard_recently || just_started)
    }

    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_timeout {
            if self.role != Role::Follower {
                self.elections_failed += 1;
            }
            let trigger =
                if self.leader_down { ElectionTrigger::LeaderDown } else { ElectionTrigger::Timeout };
            self.reset_election_timeout();
            if self.is_voter() {
                self.campaign_trigger = trigger;
                self.campaign(self.config.pre_vote, false);
            }
        }
    }

    /// The transport found `peer` down: its process is gone (see
    /// `concord_transport::PeerDown`). If `peer` is this follower's leader,
    /// the election timeout is set to the end of the lease this follower
    /// promised it (`election_ticks_min` since the leader was last heard)
    /// plus [`LEADER_DOWN_MARGIN_TICKS`], plus [`LEADER_DOWN_TURN_TICKS`]
    /// per surviving voter of lower id. Only the timing changes: the lease is
    /// kept, so lease reads stay safe even if the report is wrong, and the
    /// pre-vote still asks the others. Ignored unless
    /// [`Config::elect_on_leader_down`](crate::core::Config::elect_on_leader_down).
    pub fn peer_down(&mut self, peer: NodeId) {
        if !self.config.elect_on_leader_down
            || self.role != Role::Follower
            || self.leader != Some(peer)
            || !self.is_voter()
        {
            return;
        }
        let membership = self.log.membership();
        let turn = membership.voters.keys().filter(|&&v| v != peer && v < self.id).count() as u64;
        let timeout =
            self.config.election_ticks_min + LEADER_DOWN_MARGIN_TICKS + turn * LEADER_DOWN_TURN_TICKS;
        // Replaces the random draw either way: a fixed order cannot split the vote.
        self.randomized_timeout = timeout;
        self.leader_down = true;
    }

    /// Starts an election now: an operator's `TriggerElection`. Skips the
    /// pre-vote and the followers' lease, like a leadership transfer.
    pub fn trigger_election(&mut self) -> Result<(), crate::error::RequestError> {
        if !self.is_voter() {
            return Err(crate::error::RequestError::NotAVoter(self.id));
        }
        if self.role != Role::Leader {
            self.campaign_trigger = ElectionTrigger::Forced;
            self.campaign(false, true);
        }
        Ok(())
    }

    pub(crate) fn handle_timeout_now(&mut self) {
        if self.role != Role::Leader && self.is_voter() {
            self.campaign_trigger = ElectionTrigger::Forced;
            self.campaign(false, true);
        }
    }

    /// Campaigns: a pre-vote round first if `pre_vote`, else a real vote.
    /// `force` asks voters to ignore their lease (leadership transfer).
    pub(crate) fn campaign(&mut self, pre_vote: bool, force: bool) {
        if self.election_started_tick.is_none() {
            self.election_started_tick = Some(self.ticks);
        }
        let old_leader = self.leader;
        let term = if pre_vote {
            self.role = Role::PreCandidate;
            self.leader = None;
            self.term + 1
        } else {
            self.term += 1;
            self.vote = Some(self.id);
            self.role = Role::Candidate;
            self.leader = None;
            self.term
        };
        if old_leader.is_some() {
            self.events.push(Event::LeaderChanged { term: self.term, leader: None });
        }
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.reset_election_timeout();
        if self.tally() == Some(true) {
            return self.win(pre_vote);
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<NodeId> =
            self.log.membership().voters.keys().copied().filter(|&v| v != self.id).collect();
        for voter in voters {
            self.outbox.push((
                voter,
                crate::core::Message {
                    term,
                    body: Body::VoteRequest { pre_vote, force, last_log_index, last_log_term },
                },
            ));
        }
    }

    /// `Some(true)` won, `Some(false)` lost, `None` undecided.
    fn tally(&self) -> Option<bool> {
        let membership = self.log.membership();
        let granted = membership.weight_of(self.votes.iter().filter(|(_, g)| **g).map(|(n, _)| n));
        let rejected = membership.weight_of(self.votes.iter().filter(|(_, g)| !**g).map(|(n, _)| n));
        let quorum = membership.election_quorum();
        if granted >= quorum {
            Some(true)
        } else if rejected > membership.total_weight() - quorum {
            Some(false)
        } else {
            None
        }
    }

    fn win(&mut self, pre_vote: bool) {
        if pre_vote {
            self.campaign(false, false);
        } else {
            self.become_leader();
        }
    }

    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && term > self.term);
        let granted = can_vote && self.log.is_up_to_date(last_log_index, last_log_term);
        if granted && !pre_vote {
            self.vote = Some(from);
            self.election_elapsed = 0;
        }
        // A granted pre-vote answers in the candidate's future term.
        let reply_term = if pre_vote && granted { term } else { self.term };
        self.outbox.push((
            from,
            crate::core::Message { term: reply_term, body: Body::VoteResponse { pre_vote, granted } },
        ));
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, pre_vote: bool, granted: bool) {
        let expected = if pre_vote { Role::PreCandidate } else { Role::Candidate };
        if self.role != expected {
            return;
        }
        self.votes.entry(from).or_insert(granted);
        match self.tally() {
            Some(true) => self.win(pre_vote),
            Some(false) => {
                self.elections_failed += 1;
                self.become_follower(self.term, None);
            }
            None => {}
        }
    }

    /// Becomes a follower of `term`; `leader` if known.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let was_leader = self.role == Role::Leader;
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.votes.clear();
        if was_leader {
            self.progress.clear();
            self.transfer = None;
            self.events.push(Event::SteppedDown { term: self.term });
            self.drop_reads();
        }
        self.set_leader(leader);
        self.reset_election_timeout();
    }

    fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader == leader {
            return;
        }
        self.leader = leader;
        self.events.push(Event::LeaderChanged { term: self.term, leader });
        if let Some(leader) = leader {
            let started = self.election_started_tick.take().unwrap_or(self.leader_contact_tick);
            let old_leader = self.last_known_leader.replace(leader).filter(|old| *old != leader);
            let duration = self.ticks - started.min(self.ticks);
            self.record(old_leader, leader, Vec::new(), duration, ElectionTrigger::Observed);
        }
    }

    /// A message from the leader of the current term.
    pub(crate) fn accept_leader(&mut self, from: NodeId) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        if self.leader_down {
            // The report was wrong, or stale: back to a randomized timeout.
            self.reset_election_timeout();
        }
        self.election_elapsed = 0;
        self.elections_failed = 0;
        self.election_started_tick = None;
        self.leader_contact_tick = self.ticks;
    }

    fn record(
        &mut self,
        old_leader: Option<NodeId>,
        leader: NodeId,
        voted_by: Vec<NodeId>,
        duration: u64,
        trigger: ElectionTrigger,
    ) {
        if self.history.len() >= self.config.election_history_len_max {
            self.history.pop_front();
        }
        let record = ElectionRecord {
            term: self.term,
            old_leader,
            leader,
            voted_by,
            election_duration_ticks: duration,
            at_tick: self.ticks,
            trigger,
        };
        self.history.push_back(record);
    }

    fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate, "only a candidate becomes leader");
        assert_eq!(self.vote, Some(self.id), "a leader voted for itself");
        let voted_by: Vec<NodeId> = self.votes.iter().filter(|(_, g)| **g).map(|(n, _)| *n).collect();
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.elections_failed = 0;
        let started = self.election_started_tick.take().unwrap_or(self.ticks);
        let old_leader = self.last_known_leader.replace(self.id).filter(|old| *old != self.id);
        self.record(old_leader, self.id, voted_by, self.ticks - started, self.campaign_trigger);
        if let Some(record) = self.history.back().cloned() {
            self.events.push(Event::BecameLeader(record));
        }
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.reset_progress();
        // The no-op commits entries of earlier terms (paper §5.4.2).
        let index = self.log.last_index() + 1;
        self.log.append_own(crate::core::Entry { term: self.term, index, payload: Payload::Empty });
    }

    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if let Some((_, elapsed)) = &mut self.transfer {
            *elapsed += 1;
            if *elapsed >= self.config.election_ticks_max {
                self.transfer = None;
            }
        }
        if self.election_elapsed >= self.config.election_ticks_min {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.quorum_active() {
                self.become_follower(self.term, None);
                return;
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }
}
