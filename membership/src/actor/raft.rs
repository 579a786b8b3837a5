//! The seam to the local Raft actor: the handful of its messages the manager
//! sends, as [`Recipient`]s (so the manager is not generic over the Raft
//! actor's storage and state machine), and the mapping between the core's
//! [`QuorumConfig`] and Raft's [`Membership`].

use crate::health::RaftProgress;
use crate::quorum::{QuorumConfig, QuorumPolicy, VotingConfig, Weight};
use actix::{Addr, Recipient};
use concord_raft::actor::{
    ChangeMembership, ElectionHistory, GetStatus, LogStatus, LogStatusReport, ProposeEmpty, RaftActor, Status,
};
use concord_raft::core::Membership;
use concord_raft::machine::StateMachine;
use concord_raft::storage::Storage;
use concord_transport::NodeId;

/// The local Raft actor, as the messages the manager sends it.
#[derive(Clone)]
pub struct RaftHandle {
    /// Polled every tick: leader, term, commit index, configuration.
    pub status: Recipient<GetStatus>,
    /// Polled every tick: the followers' match indexes (on the leader).
    pub log_status: Recipient<LogStatus>,
    /// Polled every tick: completed elections.
    pub elections: Recipient<ElectionHistory>,
    /// Carries out [`crate::Output::Propose`].
    pub change_membership: Recipient<ChangeMembership>,
    /// Carries out [`crate::Output::Verify`]: an empty entry, which the
    /// state machine never sees, committed in the leader's term.
    pub propose_empty: Recipient<ProposeEmpty>,
}

impl<S: Storage, M: StateMachine> From<Addr<RaftActor<S, M>>> for RaftHandle {
    fn from(raft: Addr<RaftActor<S, M>>) -> RaftHandle {
        RaftHandle {
            status: raft.clone().recipient(),
            log_status: raft.clone().recipient(),
            elections: raft.clone().recipient(),
            change_membership: raft.clone().recipient(),
            propose_empty: raft.recipient(),
        }
    }
}

/// Why a Raft configuration has no [`QuorumConfig`] equivalent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A voter weight beyond what the core's [`Weight`] holds.
    #[error("voter {node} has weight {weight}, beyond the quorum manager's range")]
    WeightOutOfRange {
        /// The voter.
        node: NodeId,
        /// Its Raft weight.
        weight: u64,
    },
}

/// The Raft configuration that carries `config`.
///
/// Under [`QuorumPolicy::Majority`] every voter gets weight 1: the policy
/// counts one vote each, while Raft's default quorum is a majority of the
/// *weight*, so passing the core's weights through would change the rule.
pub fn to_membership(config: &QuorumConfig) -> Membership {
    let weight = |w: Weight| match config.policy {
        QuorumPolicy::Majority => 1,
        QuorumPolicy::Weighted | QuorumPolicy::Flexible { .. } => u64::from(w),
    };
    let (election, commit) = match config.policy {
        QuorumPolicy::Flexible { election_weight, commit_weight } => {
            (Some(election_weight), Some(commit_weight))
        }
        QuorumPolicy::Majority | QuorumPolicy::Weighted => (None, None),
    };
    Membership {
        voters: config.voting.voters().iter().map(|(&id, &w)| (id, weight(w))).collect(),
        learners: config.voting.learners().clone(),
        election_quorum_weight: election,
        commit_quorum_weight: commit,
    }
}

/// The [`QuorumConfig`] a Raft configuration enforces, the inverse of
/// [`to_membership`] up to equivalence: explicit quorum sizes read as
/// [`QuorumPolicy::Flexible`], equal weights of 1 as
/// [`QuorumPolicy::Majority`], other weights as [`QuorumPolicy::Weighted`]
/// (a weighted configuration of all-1 weights comes back as the majority it
/// is equivalent to).
pub fn from_membership(membership: &Membership) -> Result<QuorumConfig, MappingError> {
    let mut voters = Vec::with_capacity(membership.voters.len());
    for (&node, &weight) in &membership.voters {
        let w = Weight::try_from(weight).map_err(|_| MappingError::WeightOutOfRange { node, weight })?;
        voters.push((node, w));
    }
    let policy = match (membership.election_quorum_weight, membership.commit_quorum_weight) {
        (None, None) if voters.iter().all(|&(_, w)| w == 1) => QuorumPolicy::Majority,
        (None, None) => QuorumPolicy::Weighted,
        _ => QuorumPolicy::Flexible {
            election_weight: membership.election_quorum(),
            commit_weight: membership.commit_quorum(),
        },
    };
    let voting = VotingConfig::with_weighted_voters(voters).and_learners(membership.learners.iter().copied());
    Ok(QuorumConfig::new(voting, policy))
}

/// The core's [`RaftProgress`] from one poll of the Raft actor: `log` is
/// the leader's replication report (match indexes are empty elsewhere); the
/// leader counts its own log as matched.
pub fn progress(status: &Status, log: Option<&LogStatusReport>) -> Result<RaftProgress, MappingError> {
    let mut match_index = std::collections::BTreeMap::new();
    if let Some(log) = log.filter(|_| status.leader == Some(status.id)) {
        match_index.extend(log.followers.iter().map(|f| (f.agent_id, f.match_index)));
        match_index.insert(status.id, status.last_index);
    }
    Ok(RaftProgress {
        leader: status.leader,
        term: status.term,
        commit_index: status.commit,
        match_index,
        config: from_membership(&status.membership)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::RangeInclusive<u64>) -> impl Iterator<Item = NodeId> {
        range.map(NodeId)
    }

    #[test]
    fn every_policy_round_trips_through_raft_membership() {
        let learners = [NodeId(9)];
        let configs = [
            QuorumConfig::new(
                VotingConfig::with_voters(ids(1..=5)).and_learners(learners),
                QuorumPolicy::Majority,
            ),
            QuorumConfig::new(
                VotingConfig::with_weighted_voters([(NodeId(1), 3), (NodeId(2), 1), (NodeId(3), 1)]),
                QuorumPolicy::Weighted,
            ),
            QuorumConfig::new(
                VotingConfig::with_voters(ids(1..=4)),
                QuorumPolicy::Flexible { election_weight: 3, commit_weight: 2 },
            ),
        ];
        for config in configs {
            let membership = to_membership(&config);
            assert_eq!(membership.validate(), Ok(()), "{config:?}");
            assert_eq!(from_membership(&membership), Ok(config));
        }
    }

    #[test]
    fn majority_ignores_weights_as_the_policy_does() {
        let config = QuorumConfig::new(
            VotingConfig::with_weighted_voters([(NodeId(1), 5), (NodeId(2), 1), (NodeId(3), 1)]),
            QuorumPolicy::Majority,
        );
        let membership = to_membership(&config);
        assert!(membership.voters.values().all(|&w| w == 1));
        assert_eq!(membership.commit_quorum(), 2);
    }

    #[test]
    fn an_unrepresentable_weight_is_an_error_not_a_panic() {
        let mut membership = Membership::with_voters(ids(1..=3));
        membership.voters.insert(NodeId(2), u64::MAX);
        assert_eq!(
            from_membership(&membership),
            Err(MappingError::WeightOutOfRange { node: NodeId(2), weight: u64::MAX })
        );
    }
}
