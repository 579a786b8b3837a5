//! Refusing unsafe configurations and unsafe single-step changes.

use super::config::{QuorumConfig, QuorumPolicy, VOTERS_MAX, WEIGHT_MAX};
use super::error::{QuorumKind, UnsafeChange, UnsafeConfig};
use super::intersection::disjoint_quorums;

impl QuorumConfig {
    /// Refuses a configuration whose quorums may fail to intersect, or that
    /// can never reach a quorum. Majority and weighted quorums are more than
    /// half of the votes, so they always intersect; flexible quorums must
    /// keep 2 × election > total and election + commit > total — the rules
    /// Raft itself checks. The error carries two disjoint quorums when the
    /// weights allow them.
    pub fn validate(&self) -> Result<(), UnsafeConfig> {
        let voters = self.voting.voters();
        if voters.is_empty() {
            return Err(UnsafeConfig::NoVoters);
        }
        if voters.len() > VOTERS_MAX {
            return Err(UnsafeConfig::TooManyVoters { count: voters.len(), max: VOTERS_MAX });
        }
        for (&node, &weight) in voters {
            if weight == 0 {
                return Err(UnsafeConfig::ZeroWeight { node });
            }
            if weight > WEIGHT_MAX {
                return Err(UnsafeConfig::WeightTooLarge { node, weight, max: WEIGHT_MAX });
            }
        }
        if let Some(&node) = self.voting.learners().iter().find(|&&id| self.voting.is_voter(id)) {
            return Err(UnsafeConfig::VoterIsLearner { node });
        }
        let QuorumPolicy::Flexible { election_weight, commit_weight } = self.policy else {
            return Ok(());
        };
        let total_weight = self.total_votes();
        for (kind, weight) in [(QuorumKind::Election, election_weight), (QuorumKind::Commit, commit_weight)] {
            if weight == 0 {
                return Err(UnsafeConfig::ZeroQuorum { kind });
            }
            if weight > total_weight {
                return Err(UnsafeConfig::QuorumUnreachable { kind, weight, total_weight });
            }
        }
        if 2 * election_weight <= total_weight {
            let witness = disjoint_quorums(self, QuorumKind::Election, self, QuorumKind::Election);
            return Err(UnsafeConfig::ElectionQuorumsMayNotIntersect {
                election_weight,
                total_weight,
                witness,
            });
        }
        if election_weight + commit_weight <= total_weight {
            let witness = disjoint_quorums(self, QuorumKind::Election, self, QuorumKind::Commit);
            return Err(UnsafeConfig::ElectionCommitMayNotIntersect {
                election_weight,
                commit_weight,
                total_weight,
                witness,
            });
        }
        Ok(())
    }

    /// Refuses going from `self` to `new` in one Raft configuration change
    /// unless every old quorum that must meet a new one does: old and new
    /// election quorums (no two leaders in one term), an old election quorum
    /// and a new commit quorum, and an old commit quorum and a new election
    /// quorum (a leader of either configuration sees every commit). Adding or
    /// removing one equal voter always passes; several voters at once pass
    /// only when the weights make it safe.
    pub fn check_change(&self, new: &QuorumConfig) -> Result<(), UnsafeChange> {
        self.validate().map_err(UnsafeChange::UnsafeCurrent)?;
        new.validate()?;
        const PAIRS: [(QuorumKind, QuorumKind); 3] = [
            (QuorumKind::Election, QuorumKind::Election),
            (QuorumKind::Election, QuorumKind::Commit),
            (QuorumKind::Commit, QuorumKind::Election),
        ];
        for (old_kind, new_kind) in PAIRS {
            if let Some(witness) = disjoint_quorums(self, old_kind, new, new_kind) {
                return Err(UnsafeChange::QuorumsMayNotIntersect { old_kind, new_kind, witness });
            }
        }
        Ok(())
    }
}
