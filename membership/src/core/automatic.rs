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

/// The kinds of automatic operation, each attempted at most once per node
/// until the node is next seen alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Automatic {
    Leave,
    Replace,
    Promote,
    Join,
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
                && !self.attempted.contains(&(id, Automatic::Leave))
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
                && !self.attempted.contains(&(id, Automatic::Replace))
        });
        if let Some(node) = failed {
            self.emit(Output::Event(Event::VoterFailed { node }));
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
            .filter(|&id| !self.attempted.contains(&(id, Automatic::Promote)))
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
                    && !self.attempted.contains(&(id, Automatic::Join))
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

    /// Starts one automatic operation about `node`, at most once until the
    /// node comes back alive: a refused or failed attempt is reported, not
    /// retried every tick.
    fn attempt(
        &mut self,
        node: NodeId,
        kind: Automatic,
        description: String,
        target: crate::quorum::QuorumConfig,
    ) {
        self.attempted.insert((node, kind));
        if let Err(reason) = self.start_operation(Origin::Automatic, description, target) {
            self.emit(Output::Event(Event::AutomaticChangeRefused {
                node,
                description: kind.to_string(),
                reason,
            }));
        }
    }
}
