//! Quorum arithmetic checked against brute force over all subsets.

use super::intersection::disjoint_quorums;
use super::*;
use concord_transport::NodeId;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<NodeId> {
    range.map(NodeId).collect()
}

fn set(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().map(|&n| NodeId(n)).collect()
}

/// Every subset of `nodes`.
fn subsets(nodes: &BTreeSet<NodeId>) -> Vec<BTreeSet<NodeId>> {
    let nodes: Vec<NodeId> = nodes.iter().copied().collect();
    (0..1u32 << nodes.len())
        .map(|mask| {
            nodes.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, &id)| id).collect()
        })
        .collect()
}

/// Whether some `k1` quorum of `a` and some `k2` quorum of `b` share no node,
/// by trying every pair of subsets.
fn brute_disjoint(a: &QuorumConfig, k1: QuorumKind, b: &QuorumConfig, k2: QuorumKind) -> bool {
    let first: Vec<_> = subsets(&a.voting.voter_ids()).into_iter().filter(|s| a.is_quorum(k1, s)).collect();
    let second: Vec<_> = subsets(&b.voting.voter_ids()).into_iter().filter(|s| b.is_quorum(k2, s)).collect();
    first.iter().any(|x| second.iter().any(|y| x.is_disjoint(y)))
}

fn assert_genuine_witness(
    w: &DisjointQuorums,
    a: &QuorumConfig,
    k1: QuorumKind,
    b: &QuorumConfig,
    k2: QuorumKind,
) {
    assert!(a.is_quorum(k1, &w.first), "{w} first is not a {k1} quorum");
    assert!(b.is_quorum(k2, &w.second), "{w} second is not a {k2} quorum");
    assert!(w.first.is_disjoint(&w.second), "{w} intersect");
}

/// Up to 7 voters of weight 1..=5 under any policy, thresholds included
/// slightly beyond the total so that unreachable quorums are generated.
fn any_config() -> impl Strategy<Value = QuorumConfig> {
    prop::collection::vec(1u32..=5, 1..=7).prop_flat_map(|weights| {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let voting = VotingConfig::with_weighted_voters(
            weights.iter().enumerate().map(|(i, &w)| (NodeId(i as u64 + 1), w)),
        );
        let policy = prop_oneof![
            Just(QuorumPolicy::Majority),
            Just(QuorumPolicy::Weighted),
            (0..=total + 1, 0..=total + 1).prop_map(|(election_weight, commit_weight)| {
                QuorumPolicy::Flexible { election_weight, commit_weight }
            }),
        ];
        policy.prop_map(move |policy| QuorumConfig::new(voting.clone(), policy))
    })
}

/// Up to 7 voters drawn from nodes 1..=9, so two of them overlap partly,
/// under any policy (flexible thresholds up to the total, so mostly valid).
fn overlapping_config() -> impl Strategy<Value = QuorumConfig> {
    prop::collection::btree_map(1u64..=9, 1u32..=5, 1..=7).prop_flat_map(|voters| {
        let total: u64 = voters.values().map(|&w| u64::from(w)).sum();
        let voting = VotingConfig::with_weighted_voters(voters.into_iter().map(|(id, w)| (NodeId(id), w)));
        let policy = prop_oneof![
            Just(QuorumPolicy::Majority),
            Just(QuorumPolicy::Weighted),
            (total / 2 + 1..=total, 1..=total).prop_map(|(election_weight, commit_weight)| {
                QuorumPolicy::Flexible { election_weight, commit_weight }
            }),
        ];
        policy.prop_map(move |policy| QuorumConfig::new(voting.clone(), policy))
    })
}

proptest! {
    /// Howard, Malkhi, Spiegelman, "Flexible Paxos" (2016): election and
    /// commit quorums must meet; commit quorums need not meet each other.
    #[test]
    fn accepted_configurations_have_intersecting_quorums(config in any_config()) {
        if config.validate().is_ok() {
            prop_assert!(!brute_disjoint(&config, QuorumKind::Election, &config, QuorumKind::Election));
            prop_assert!(!brute_disjoint(&config, QuorumKind::Election, &config, QuorumKind::Commit));
        }
    }

    #[test]
    fn rejected_configurations_name_the_broken_rule_and_prove_it_when_they_can(config in any_config()) {
        let total = config.total_votes();
        let (e, c) = (QuorumKind::Election, QuorumKind::Commit);
        match config.validate() {
            Ok(()) => {}
            Err(UnsafeConfig::ZeroQuorum { kind }) => prop_assert_eq!(config.threshold(kind), 0),
            Err(UnsafeConfig::QuorumUnreachable { kind, weight, total_weight }) => {
                prop_assert!(weight > total_weight);
                prop_assert!(!config.is_quorum(kind, &config.voting.voter_ids()));
            }
            Err(UnsafeConfig::ElectionQuorumsMayNotIntersect { election_weight, total_weight, witness }) => {
                prop_assert!(2 * election_weight <= total_weight);
                prop_assert_eq!(witness.is_some(), brute_disjoint(&config, e, &config, e));
                if let Some(w) = witness { assert_genuine_witness(&w, &config, e, &config, e); }
            }
            Err(UnsafeConfig::ElectionCommitMayNotIntersect { election_weight, commit_weight, total_weight, witness }) => {
                prop_assert!(election_weight + commit_weight <= total_weight);
                prop_assert_eq!(witness.is_some(), brute_disjoint(&config, e, &config, c));
                if let Some(w) = witness { assert_genuine_witness(&w, &config, e, &config, c); }
            }
            Err(other) => prop_assert!(false, "unexpected refusal {other} (total {total})"),
        }
    }

    #[test]
    fn exact_cross_check_agrees_with_brute_force(a in overlapping_config(), b in overlapping_config()) {
        for k1 in [QuorumKind::Election, QuorumKind::Commit] {
            for k2 in [QuorumKind::Election, QuorumKind::Commit] {
                let found = disjoint_quorums(&a, k1, &b, k2);
                prop_assert_eq!(found.is_some(), brute_disjoint(&a, k1, &b, k2));
                if let Some(w) = found { assert_genuine_witness(&w, &a, k1, &b, k2); }
            }
        }
        let brute_safe = !brute_disjoint(&a, QuorumKind::Election, &b, QuorumKind::Election)
            && !brute_disjoint(&a, QuorumKind::Election, &b, QuorumKind::Commit)
            && !brute_disjoint(&a, QuorumKind::Commit, &b, QuorumKind::Election);
        if a.validate().is_ok() && b.validate().is_ok() {
            prop_assert_eq!(a.check_change(&b).is_ok(), brute_safe);
        }
    }

    /// Ongaro's dissertation §4.1: a single-server change cannot make the old
    /// and new majorities disjoint, so it needs no joint consensus.
    #[test]
    fn adding_or_removing_one_equal_voter_keeps_majorities_overlapping(
        voters in prop::collection::btree_set(1u64..=9, 1..=7),
        other in 1u64..=9,
    ) {
        let old = QuorumConfig::majority(voters.iter().map(|&n| NodeId(n)));
        let mut new = old.clone();
        if new.voting.is_voter(NodeId(other)) {
            prop_assume!(voters.len() > 1);
            new.voting.remove(NodeId(other)).expect("a voter");
        } else {
            new.voting.add_voter(NodeId(other), WEIGHT_DEFAULT).expect("a stranger");
        }
        prop_assert_eq!(old.check_change(&new), Ok(()));
        prop_assert!(!brute_disjoint(&old, QuorumKind::Election, &new, QuorumKind::Commit));
        prop_assert!(!brute_disjoint(&old, QuorumKind::Commit, &new, QuorumKind::Election));
    }

    #[test]
    fn every_planned_step_keeps_quorums_overlapping(from in overlapping_config(), to in overlapping_config()) {
        let steps = plan(&from, &to, PLAN_STEPS_MAX_DEFAULT);
        if let Ok(steps) = &steps {
            prop_assert_eq!(steps.last().unwrap_or(&from), &to);
            let mut previous = &from;
            for step in steps {
                for (k1, k2) in [(QuorumKind::Election, QuorumKind::Election),
                                 (QuorumKind::Election, QuorumKind::Commit),
                                 (QuorumKind::Commit, QuorumKind::Election)] {
                    prop_assert!(!brute_disjoint(previous, k1, step, k2), "{:?} -> {:?}", previous, step);
                }
                previous = step;
            }
        }
        // Majority to majority always has a plan: one voter at a time.
        if from.policy == QuorumPolicy::Majority && to.policy == QuorumPolicy::Majority {
            prop_assert!(steps.is_ok(), "{:?}", steps);
        }
    }
}

#[test]
fn five_equal_voters_need_three_and_survive_two_failures() {
    let config = QuorumConfig::majority(ids(1..=5));
    assert_eq!(config.quorum_size(QuorumKind::Commit), Some(3));
    assert_eq!(config.quorum_size(QuorumKind::Election), Some(3));
    let all = config.fault_tolerance_all_up();
    assert_eq!(all.failures_tolerated, 2);
    assert_eq!(all.worst_case, ids(1..=3));
    let three_up = config.fault_tolerance(&set(&[1, 2, 3]));
    assert_eq!((three_up.quorum_available, three_up.failures_tolerated), (true, 0));
    assert!(!config.fault_tolerance(&set(&[1, 2])).quorum_available);
}

#[test]
fn a_heavy_voter_is_the_worst_case_failure() {
    let voting =
        VotingConfig::with_weighted_voters([(NodeId(1), 3), (NodeId(2), 1), (NodeId(3), 1), (NodeId(4), 1)]);
    let config = QuorumConfig::new(voting, QuorumPolicy::Weighted);
    // Total 6, quorum 4: node 1 plus any other.
    assert_eq!(config.threshold(QuorumKind::Commit), 4);
    assert_eq!(config.quorum_size(QuorumKind::Commit), Some(2));
    assert!(config.is_commit_quorum(&set(&[1, 4])));
    assert!(!config.is_commit_quorum(&set(&[2, 3, 4])));
    let tolerance = config.fault_tolerance_all_up();
    assert_eq!((tolerance.failures_tolerated, tolerance.worst_case), (0, vec![NodeId(1)]));
}

#[test]
fn flexible_quorums_below_the_rules_are_refused_with_disjoint_quorums() {
    let voting = VotingConfig::with_voters(ids(1..=5));
    let small_commit =
        QuorumConfig::new(voting.clone(), QuorumPolicy::Flexible { election_weight: 3, commit_weight: 2 });
    match small_commit.validate() {
        Err(UnsafeConfig::ElectionCommitMayNotIntersect { witness: Some(w), .. }) => {
            assert_eq!((w.first.len(), w.second.len()), (3, 2));
            assert!(w.first.is_disjoint(&w.second));
        }
        other => panic!("expected an election/commit refusal, got {other:?}"),
    }
    // Election 4 of 5 lets commits need only 2: 4 + 2 > 5.
    let flexible = QuorumConfig::new(voting, QuorumPolicy::Flexible { election_weight: 4, commit_weight: 2 });
    assert_eq!(flexible.validate(), Ok(()));
    assert_eq!(flexible.fault_tolerance_all_up().failures_tolerated, 1);
}

/// Dissertation §4.1, Figure 4.2's counterexample: 3 → 5 voters at once lets
/// {1, 2} and {3, 4, 5} both be majorities.
#[test]
fn two_voters_added_at_once_are_refused_but_planned_one_at_a_time() {
    let three = QuorumConfig::majority(ids(1..=3));
    let five = QuorumConfig::majority(ids(1..=5));
    match three.check_change(&five) {
        Err(UnsafeChange::QuorumsMayNotIntersect { witness, .. }) => {
            assert_eq!(witness.first, set(&[1, 2]));
            assert_eq!(witness.second, set(&[3, 4, 5]));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let steps = plan(&three, &five, PLAN_STEPS_MAX_DEFAULT).expect("a plan");
    let shapes: Vec<(usize, usize)> =
        steps.iter().map(|s| (s.voting.voters().len(), s.voting.learners().len())).collect();
    // Both join as learners, then each is promoted on its own.
    assert_eq!(shapes, vec![(3, 1), (3, 2), (4, 1), (5, 0)]);
}

#[test]
fn two_weights_changed_at_once_pass_when_safe() {
    let before = QuorumConfig::new(VotingConfig::with_voters(ids(1..=3)), QuorumPolicy::Weighted);
    let mut after = before.clone();
    after.voting.set_weight(NodeId(1), 2).expect("a voter");
    after.voting.set_weight(NodeId(2), 2).expect("a voter");
    // Total 5, quorum 3: every new quorum holds two of the three voters.
    assert_eq!(before.check_change(&after), Ok(()));
    // With five voters the same edit lets {1, 2} (4 of 7) outvote {3, 4, 5}.
    let before = QuorumConfig::new(VotingConfig::with_voters(ids(1..=5)), QuorumPolicy::Weighted);
    let mut after = before.clone();
    after.voting.set_weight(NodeId(1), 2).expect("a voter");
    after.voting.set_weight(NodeId(2), 2).expect("a voter");
    assert!(matches!(
        before.check_change(&after),
        Err(UnsafeChange::QuorumsMayNotIntersect {
            old_kind: QuorumKind::Election,
            new_kind: QuorumKind::Election,
            ..
        })
    ));
}

#[test]
fn a_rolling_replacement_goes_through_six_voters_never_four() {
    let from = QuorumConfig::majority(ids(1..=5));
    let to = QuorumConfig::majority(ids(6..=10));
    let steps = plan(&from, &to, PLAN_STEPS_MAX_DEFAULT).expect("a plan");
    assert!(steps.iter().all(|s| (5..=6).contains(&s.voting.voters().len())), "{steps:?}");
    assert_eq!(steps.last(), Some(&to));
}

#[test]
fn unsafe_targets_and_long_plans_are_refused() {
    let from = QuorumConfig::majority(ids(1..=3));
    let empty = QuorumConfig::default();
    assert_eq!(plan(&from, &empty, 8), Err(PlanError::UnsafeTarget(UnsafeConfig::NoVoters)));
    let to = QuorumConfig::majority(ids(4..=6));
    assert_eq!(plan(&from, &to, 3), Err(PlanError::TooManySteps { max: 3 }));
}

#[test]
fn a_commit_quorum_shrinks_only_after_the_election_quorum_grows() {
    let majority = QuorumConfig::majority(ids(1..=5));
    let flexible = |election_weight, commit_weight| {
        QuorumConfig::new(majority.voting.clone(), QuorumPolicy::Flexible { election_weight, commit_weight })
    };
    // In one step an old election quorum of 3 could miss a new commit quorum of 2.
    assert!(matches!(
        majority.check_change(&flexible(4, 2)),
        Err(UnsafeChange::QuorumsMayNotIntersect {
            old_kind: QuorumKind::Election,
            new_kind: QuorumKind::Commit,
            ..
        })
    ));
    let steps = plan(&majority, &flexible(4, 2), PLAN_STEPS_MAX_DEFAULT).expect("a plan");
    assert_eq!(steps, vec![flexible(4, 3), flexible(4, 2)]);
}

#[test]
fn the_voter_bound_is_rafts_so_every_valid_configuration_is_one_raft_accepts() {
    assert_eq!(VOTERS_MAX, concord_raft::core::quorum::VOTERS_MAX);
    let largest = QuorumConfig::majority(ids(1..=VOTERS_MAX as u64));
    assert_eq!(largest.validate(), Ok(()));
    assert_eq!(crate::actor::raft::to_membership(&largest).validate(), Ok(()));
    let one_more = QuorumConfig::majority(ids(1..=VOTERS_MAX as u64 + 1));
    assert_eq!(
        one_more.validate(),
        Err(UnsafeConfig::TooManyVoters { count: VOTERS_MAX + 1, max: VOTERS_MAX })
    );
}

#[test]
fn a_heavy_voters_seat_passes_to_a_learner_by_weight_steps() {
    let weighted = |voters: &[(u64, Weight)], learners: &[u64]| {
        let voting = VotingConfig::with_weighted_voters(voters.iter().map(|&(id, w)| (NodeId(id), w)))
            .and_learners(learners.iter().map(|&id| NodeId(id)));
        QuorumConfig::new(voting, QuorumPolicy::Weighted)
    };
    let from = weighted(&[(1, 1), (2, 1), (3, 3), (4, 2), (5, 3)], &[6]);
    let to = weighted(&[(1, 1), (2, 1), (3, 3), (4, 2), (6, 3)], &[]);
    // Neither promoting n6 at weight 3 nor removing n5 first is safe alone.
    let mut promoted = from.clone();
    promoted.voting.promote(NodeId(6), 3).expect("a learner");
    assert!(from.check_change(&promoted).is_err());
    let mut removed = from.clone();
    removed.voting.remove(NodeId(5)).expect("a voter");
    assert!(from.check_change(&removed).is_err());
    let steps = plan(&from, &to, PLAN_STEPS_MAX_DEFAULT).expect("a plan by weight steps");
    assert_eq!(steps.last(), Some(&to));
    let mut current = from;
    for step in steps {
        assert_eq!(current.check_change(&step), Ok(()), "{current:?} -> {step:?}");
        current = step;
    }
}
