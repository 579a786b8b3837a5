//! Configuration changes and leadership transfer.
//!
//! Changes go one at a time, each taking effect when its entry enters the
//! log (thesis §4.1). One-step changes are chosen over joint consensus
//! because they need no joint state in the log or in quorum counting, and
//! because [`Membership::change_is_safe`] checks the condition that makes
//! them safe — every quorum of the old configuration meets every quorum of
//! the new — directly, for any weights and quorum sizes, instead of relying
//! on "one server at a time" being enough (which it is not with weights).
//! A new leader first commits an entry of its term (the fix for the
//! single-server bug, raft-dev 2015).

use crate::core::quorum::Membership;
use crate::core::types::Index;
use crate::core::{Body, Event, Payload, Raft, Role};
use crate::error::RequestError;
use concord_transport::NodeId;

impl Raft {
    /// Proposes `next` as the configuration. Refused while another change is
    /// uncommitted, before the leader committed in its term, or when the step
    /// is too large to be safe.
    pub fn change_membership(&mut self, next: Membership) -> Result<Index, RequestError> {
        if self.role != Role::Leader {
            return Err(RequestError::NotLeader { leader: self.leader });
        }
        let pending = self.log.membership_index();
        if pending > self.log.commit {
            return Err(RequestError::ChangeInProgress(pending));
        }
        if !self.committed_in_term() {
            return Err(RequestError::LeaderNotReady);
        }
        next.validate()?;
        if !self.log.membership().change_is_safe(&next) {
            return Err(RequestError::UnsafeChange);
        }
        self.append_new(Payload::Membership(next)).map(|(index, _)| index)
    }

    pub(crate) fn on_membership_appended(&mut self) {
        self.sync_progress();
        self.events.push(Event::MembershipChanged { index: self.log.membership_index() });
    }

    pub(crate) fn on_commit_advanced(&mut self) {
        // A leader removed from the configuration leads until the removal
        // commits, without counting itself, then steps down (thesis §4.2.2),
        // handing leadership to an up-to-date voter with TimeoutNow
        // (§3.10) so the group does not wait out an election timeout.
        if !self.is_voter() && self.log.membership_index() <= self.log.commit {
            if self.role == Role::Leader {
                if let Some(successor) = self.caught_up_voter() {
                    self.send(successor, Body::TimeoutNow);
                }
            }
            self.become_follower(self.term, None);
            return;
        }
        if self.committed_in_term() {
            for id in std::mem::take(&mut self.reads_waiting_for_term_commit) {
                self.push_read(id);
            }
        }
    }

    /// The lowest-numbered voter whose log matches the leader's to its last
    /// entry, if any: the successor a removed leader hands over to.
    fn caught_up_voter(&self) -> Option<NodeId> {
        let last = self.log.last_index();
        let membership = self.log.membership();
        self.progress
            .iter()
            .filter(|(id, p)| **id != self.id && membership.is_voter(**id) && p.match_index == last)
            .map(|(id, _)| *id)
            .min()
    }

    /// Hands leadership to `target`: proposals are refused meanwhile; once
    /// the target's log is up to date it gets TimeoutNow (thesis §3.10). The
    /// transfer is abandoned after `election_ticks_max` ticks.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), RequestError> {
        if self.role != Role::Leader {
            return Err(RequestError::NotLeader { leader: self.leader });
        }
        if !self.log.membership().is_voter(target) {
            return Err(RequestError::NotAVoter(target));
        }
        if target == self.id {
            return Ok(());
        }
        self.transfer = Some((target, 0));
        self.maybe_send_timeout_now(target);
        Ok(())
    }

    /// Steps down in favour of the most up-to-date other voter. Returns it.
    pub fn step_down(&mut self) -> Result<NodeId, RequestError> {
        if self.role != Role::Leader {
            return Err(RequestError::NotLeader { leader: self.leader });
        }
        let membership = self.log.membership();
        let target = self
            .progress
            .iter()
            .filter(|(id, _)| membership.is_voter(**id))
            .max_by_key(|(id, p)| (p.match_index, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
            .ok_or(RequestError::NotAVoter(self.id))?;
        self.transfer_leader(target)?;
        Ok(target)
    }

    /// The transfer target, if a transfer is under way.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|(target, _)| target)
    }

    pub(crate) fn maybe_send_timeout_now(&mut self, from: NodeId) {
        let Some((target, _)) = self.transfer else { return };
        if target != from {
            return;
        }
        let caught_up = self.progress.get(&target).is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.send(target, Body::TimeoutNow);
        }
    }
}
