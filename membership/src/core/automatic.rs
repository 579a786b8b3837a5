//! What the leader's manager does unasked, one operation at a time: remove
//! members that left, replace voters dead past the failure window, promote
//! caught-up learners toward the voter target, and take in new nodes as
//! learners — in that order of urgency.

use super::history::Origin;
use super::io::Event;
use super::{Output, QuorumCore};
use crate::health::Liveness;
use crate::recommend::fault_tolerance::weakest_domain;
use concord_transport::NodeId;
use std::fmt;

/// The kinds of automatic operation. One refused before anything is
/// proposed is not tried again until the node is next seen alive; one that
/// failed once proposed is retried after a backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Automatic {
    Leave,
    Replace,
    Promote,
    Join,
}

/// An automatic operation tried about one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Times it failed once proposed.
    pub failures: u32,
    /// When it may be tried again; `None` while it runs, after it
    /// completed, or after the core refused it.
    pub retry_at_ms: Option<u64>,
}

impl fmt::Display for Automatic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Automatic::Leave => "remove a member that left",
            Automatic::Replace => "replace a failed voter",
            Automatic::Promote => "promote a caught-up learner",
            Automatic::Join => "add a new node as a learner",
        })
    }
}

impl QuorumCore {
    /// Starts the most urgent automatic operation, if any is due. Called only
    /// when the local node leads, nothing is in flight and no request waits.
    pub(crate) fn start_automatic(&mut self) {
        let current = self.obs.progress().config.clone();
        if !current.fault_tolerance(&self.obs.up_voters()).quorum_available {
            // A minority cannot commit anything: report, never propose.
            return;
        }
        let members: Vec<NodeId> =
            current.voting.voters().keys().chain(current.voting.learners()).copied().collect();

        let left = members.iter().copied().find(|&id| {
            id != self.config.local
                && self.obs.liveness(id).liveness == Liveness::Left
                && self.may_attempt(id, Automatic::Leave)
        });
        if let Some(node) = left {
            let mut target = current.clone();
            target.voting.remove(node).expect("a member");
            self.attempt(node, Automatic::Leave, format!("remove {node}, which left"), target);
            return;
        }

        let window = self.config.failed_window_ms;
        let failed = current.voting.voters().keys().copied().find(|&id| {
            let state = self.obs.liveness(id);
            state.liveness == Liveness::Dead
                && self.now_ms.saturating_sub(state.since_ms) >= window
                && !self.replicated_recently(id)
                && self.may_attempt(id, Automatic::Replace)
        });
        if let Some(node) = failed {
            // Reported once per failure, not again on each retry.
            if !self.attempted.contains_key(&(node, Automatic::Replace)) {
                self.emit(Output::Event(Event::VoterFailed { node }));
            }
            let weight = current.voting.weight(node).expect("a voter");
            let mut removed = current.clone();
            removed.voting.remove(node).expect("a voter");
            let replaced_by = |learner: NodeId| {
                let mut target = removed.clone();
                target.voting.promote(learner, weight).expect("a ready learner is a learner");
                target
            };
            // The best learner that keeps every single-domain loss survivable,
            // else the best learner.
            let learners = self.obs.ready_learners(self.config.learner_lag_max);
            let chosen = learners
                .iter()
                .copied()
                .find(|&learner| weakest_domain(&replaced_by(learner), &self.domains).is_none())
                .or(learners.first().copied());
            let (description, target) = match chosen {
                Some(learner) => (
                    format!("replace {node}, dead for {window} ms, by caught-up learner {learner}"),
                    replaced_by(learner),
                ),
                None => (
                    format!("remove {node}, dead for {window} ms; no caught-up learner to replace it"),
                    removed,
                ),
            };
            self.attempt(node, Automatic::Replace, description, target);
            return;
        }

        let voters = current.voting.voters().len();
        let ready: Vec<NodeId> = self
            .obs
            .ready_learners(self.config.learner_lag_max)
            .into_iter()
            .filter(|&id| self.may_attempt(id, Automatic::Promote))
            .collect();
        // Prefer odd counts: from an odd count, promote only when a second
        // learner is ready to follow, since an even count adds no tolerance.
        let promote =
            voters < self.config.voters_target && (ready.len() >= 2 || (ready.len() == 1 && voters % 2 == 0));
        if let Some(&learner) = ready.first().filter(|_| promote) {
            let mut target = current.clone();
            target.voting.promote(learner, crate::quorum::WEIGHT_DEFAULT).expect("a learner");
            let description = format!(
                "promote caught-up learner {learner} ({voters} of {} voters)",
                self.config.voters_target
            );
            self.attempt(learner, Automatic::Promote, description, target);
            return;
        }

        if self.config.join_automatically && current.voting.learners().len() < self.config.learners_max {
            let newcomer = self.obs.known_nodes().into_iter().find(|&id| {
                !current.voting.contains(id)
                    && !self.former_members.contains(&id)
                    && self.obs.liveness(id).liveness == Liveness::Alive
                    && id != self.config.local
                    && self.may_attempt(id, Automatic::Join)
            });
            if let Some(node) = newcomer {
                let mut target = current;
                target.voting.add_learner(node).expect("not a member");
                self.attempt(
                    node,
                    Automatic::Join,
                    format!("add {node}, seen alive through gossip, as a learner"),
                    target,
                );
            }
        }
    }

    /// Whether an automatic operation of `kind` about `node` may start now.
    fn may_attempt(&self, node: NodeId, kind: Automatic) -> bool {
        match self.attempted.get(&(node, kind)) {
            None => true,
            Some(attempt) => attempt.retry_at_ms.is_some_and(|at| self.now_ms >= at),
        }
    }

    /// An automatic operation failed once proposed: the reason may pass (a
    /// leader not ready yet, a leadership change, a timeout), so it is
    /// tried again after `automatic_retry_ms`, doubled per failure up to
    /// `automatic_retry_ms_max`.
    pub(crate) fn automatic_failed(&mut self, node: NodeId, kind: Automatic) {
        let (base, max) = (self.config.automatic_retry_ms, self.config.automatic_retry_ms_max);
        let now = self.now_ms;
        let attempt =
            self.attempted.entry((node, kind)).or_insert(Attempt { failures: 0, retry_at_ms: None });
        attempt.failures = attempt.failures.saturating_add(1);
        let doublings = attempt.failures.saturating_sub(1).min(32);
        let backoff = base.saturating_mul(1u64 << doublings).min(max);
        attempt.retry_at_ms = Some(now.saturating_add(backoff));
    }

    /// Starts one automatic operation about `node`. A refusal is reported
    /// and not retried until the node comes back alive; a failure once
    /// proposed is retried after a backoff (see [`Self::automatic_failed`]).
    fn attempt(
        &mut self,
        node: NodeId,
        kind: Automatic,
        description: String,
        target: crate::quorum::QuorumConfig,
    ) {
        let failures = self.attempted.get(&(node, kind)).map_or(0, |a| a.failures);
        self.attempted.insert((node, kind), Attempt { failures, retry_at_ms: None });
        if let Err(reason) = self.start_operation(Origin::Automatic, Some((node, kind)), description, target)
        {
            self.emit(Output::Event(Event::AutomaticChangeRefused {
                node,
                description: kind.to_string(),
                reason,
            }));
        }
    }
}
