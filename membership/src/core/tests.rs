//! Scenarios asserting the exact output batches the core produces, in the
//! style of openraft's engine tests.

use super::*;
use crate::health::{HealthStatus, RaftProgress};
use crate::quorum::{QuorumConfig, QuorumPolicy, UnsafeConfig, VotingConfig};

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn cfg(voters: &[u64], learners: &[u64]) -> QuorumConfig {
    let voting = VotingConfig::with_voters(voters.iter().map(|&id| n(id)))
        .and_learners(learners.iter().map(|&id| n(id)));
    QuorumConfig::new(voting, QuorumPolicy::Majority)
}

/// Raft's view from `leader`: every member's log at the commit index 100.
fn progress(leader: u64, config: &QuorumConfig) -> RaftProgress {
    let voting = &config.voting;
    RaftProgress {
        leader: Some(n(leader)),
        term: 2,
        commit_index: 100,
        match_index: voting.voters().keys().chain(voting.learners()).map(|&id| (id, 100)).collect(),
        config: config.clone(),
    }
}

/// The core of leader `local` over `config`, every member alive, outputs
/// of the set-up taken.
fn leader_core(local: u64, config: &QuorumConfig) -> QuorumCore {
    let mut core = QuorumCore::new(CoreConfig::new(n(local))).expect("valid settings");
    core.step(0, Input::Progress(progress(local, config)));
    for &id in config.voting.voters().keys().chain(config.voting.learners()) {
        core.step(0, Input::Liveness { node: id, liveness: Liveness::Alive });
    }
    core.take_outputs();
    core
}

fn started(id: u64, description: &str) -> Output {
    Output::Event(Event::OperationStarted {
        operation: OperationId(id),
        description: description.to_string(),
    })
}

fn propose(token: u64, config: QuorumConfig) -> Output {
    Output::Propose { token: Token(token), config }
}

#[test]
fn a_voter_dead_past_the_window_is_replaced_exactly_once() {
    let before = cfg(&[1, 2, 3, 4, 5], &[6]);
    let mut core = leader_core(1, &before);
    core.step(1_000, Input::Liveness { node: n(5), liveness: Liveness::Dead });
    assert_eq!(core.take_outputs(), vec![Output::Health(core.health())]);
    assert_eq!(core.health().status, HealthStatus::Degraded);

    core.tick(60_999);
    assert_eq!(core.take_outputs(), vec![]);
    core.tick(61_000);
    let description = "replace n5, dead for 60000 ms, by caught-up learner n6";
    let six_voters = cfg(&[1, 2, 3, 4, 5, 6], &[]);
    let after = cfg(&[1, 2, 3, 4, 6], &[]);
    assert_eq!(
        core.take_outputs(),
        vec![
            Output::Event(Event::VoterFailed { node: n(5) }),
            started(1, description),
            propose(1, six_voters.clone())
        ]
    );
    // Nothing more while the change is in flight.
    core.tick(70_000);
    assert_eq!(core.take_outputs(), vec![]);
    core.step(70_000, Input::Committed(Token(1)));
    core.step(70_000, Input::Progress(progress(1, &six_voters)));
    assert_eq!(core.take_outputs(), vec![propose(2, after.clone())]);
    // The commit puts n5 out of the voters: healthy again.
    core.step(71_000, Input::Committed(Token(2)));
    assert_eq!(core.take_outputs(), vec![Output::Verify { token: Token(3) }, Output::Health(core.health())]);
    assert_eq!(core.health().status, HealthStatus::Healthy);
    core.step(71_000, Input::Progress(progress(1, &after)));
    assert_eq!(core.take_outputs(), vec![]);
    core.step(72_000, Input::Verified { token: Token(3), committed: true });
    let record = HistoryRecord {
        operation: OperationId(1),
        origin: Origin::Automatic,
        description: description.to_string(),
        from: before,
        target: after,
        steps_committed: 2,
        outcome: Outcome::Completed { steps: 2 },
        started_ms: 61_000,
        finished_ms: 72_000,
    };
    assert_eq!(core.take_outputs(), vec![Output::Audit(record.clone())]);
    // Done: never proposed again.
    core.tick(500_000);
    assert_eq!(core.take_outputs(), vec![]);
    assert_eq!(core.history(), vec![record]);
}

#[test]
fn two_of_five_dead_is_degraded_with_no_failure_to_spare() {
    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[]));
    core.step(1_000, Input::Liveness { node: n(4), liveness: Liveness::Dead });
    core.step(1_000, Input::Liveness { node: n(5), liveness: Liveness::Dead });
    let health = core.health();
    let outputs = core.take_outputs();
    assert!(matches!(&outputs[..], [Output::Health(h)] if h.status == HealthStatus::Degraded), "{outputs:?}");
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!((health.quorum_available, health.failures_tolerated), (true, 0));
    assert_eq!(health.failed_agents, vec![n(4), n(5)]);
    // Past the window, with no learner, the first failed voter is removed:
    // four voters stay above voters_min and three of them are up.
    core.tick(61_000);
    assert_eq!(
        core.take_outputs(),
        vec![
            Output::Event(Event::VoterFailed { node: n(4) }),
            started(1, "remove n4, dead for 60000 ms; no caught-up learner to replace it"),
            propose(1, cfg(&[1, 2, 3, 5], &[])),
        ]
    );
}

#[test]
fn three_of_five_dead_loses_quorum_proposes_nothing_and_heals_alone() {
    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[]));
    for id in 3..=5 {
        core.step(1_000, Input::Liveness { node: n(id), liveness: Liveness::Dead });
    }
    let outputs = core.take_outputs();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(outputs[1], Output::Health(core.health()));
    let health = core.health();
    assert_eq!(
        (health.status, health.quorum_available, health.partitions_detected),
        (HealthStatus::QuorumLost, false, 1)
    );

    core.tick(61_000);
    assert_eq!(core.take_outputs(), vec![]);
    core.step(61_000, Input::Request { id: RequestId(7), request: Request::RemoveNode { node: n(5) } });
    assert_eq!(
        core.take_outputs(),
        vec![Output::Reply { request: RequestId(7), result: Err(RequestError::QuorumLost) }]
    );
    let recommendation = core.recommend();
    assert!(!recommendation.chosen.change);
    assert!(
        recommendation.chosen.reasoning.starts_with("quorum lost"),
        "{}",
        recommendation.chosen.reasoning
    );

    // The same partition healing within the failure window: no change at all.
    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[]));
    for id in 3..=5 {
        core.step(1_000, Input::Liveness { node: n(id), liveness: Liveness::Dead });
    }
    core.take_outputs();
    for id in 3..=5 {
        core.step(30_000, Input::Liveness { node: n(id), liveness: Liveness::Alive });
    }
    let outputs = core.take_outputs();
    assert!(outputs.iter().all(|o| matches!(o, Output::Health(_))), "{outputs:?}");
    assert_eq!(core.health().status, HealthStatus::Healthy);
    core.tick(120_000);
    assert_eq!(core.take_outputs(), vec![]);
}

#[test]
fn a_rolling_replacement_of_all_five_voters_keeps_every_step_intersecting() {
    let before = cfg(&[1, 2, 3, 4, 5], &[6, 7, 8, 9, 10]);
    let target = cfg(&[6, 7, 8, 9, 10], &[]);
    let mut proposed: Vec<QuorumConfig> = vec![before.clone()];

    // Node 1 leads and does it all, its own removal last: one request, one
    // answer, whoever leads afterwards.
    let mut core = leader_core(1, &before);
    core.step(0, Input::Request { id: RequestId(1), request: Request::Adjust { target: target.clone() } });
    let mut outputs = core.take_outputs();
    assert_eq!(outputs.remove(0), started(1, "adjust to a target configuration"));
    while let [Output::Propose { token, config }] = outputs.as_slice() {
        proposed.push(config.clone());
        let (token, config) = (*token, config.clone());
        core.step(0, Input::Committed(token));
        core.step(0, Input::Progress(progress(1, &config)));
        outputs = core.take_outputs();
        outputs.retain(|o| !matches!(o, Output::Health(_)));
    }
    // The last step removed node 1 itself: its commit, counted by the new
    // configuration's quorum, is the verification.
    assert_eq!(proposed.last(), Some(&target));
    assert_eq!(proposed[proposed.len() - 2], cfg(&[1, 6, 7, 8, 9, 10], &[]));
    assert!(matches!(&outputs[..], [Output::Audit(_), Output::Reply { .. }]), "{outputs:?}");
    assert_eq!(
        outputs[1],
        Output::Reply { request: RequestId(1), result: Ok(Outcome::Completed { steps: 10 }) }
    );
    // No longer a voter, node 1's core proposes nothing more.
    core.tick(600_000);
    assert!(!core.take_outputs().iter().any(|o| matches!(o, Output::Propose { .. } | Output::Verify { .. })));

    // Ten single changes, five promotions and five removals, each keeping
    // every old quorum meeting every new one (check_change is exact and
    // agrees with brute force, see quorum::tests), never fewer than 5 voters.
    assert_eq!(proposed.len(), 11);
    for pair in proposed.windows(2) {
        assert_eq!(pair[0].check_change(&pair[1]), Ok(()), "{:?} -> {:?}", pair[0], pair[1]);
        assert!(
            (5..=6).contains(&pair[1].voting.voters().len()),
            "{:?}",
            proposed.iter().map(|c| c.voting.voter_ids()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_member_that_left_is_removed_and_the_leader_removes_itself_in_one_step() {
    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[]));
    core.step(1_000, Input::Liveness { node: n(3), liveness: Liveness::Left });
    let outputs: Vec<Output> =
        core.take_outputs().into_iter().filter(|o| !matches!(o, Output::Health(_))).collect();
    assert_eq!(outputs, vec![started(1, "remove n3, which left"), propose(1, cfg(&[1, 2, 4, 5], &[]))]);

    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[]));
    core.step(1_000, Input::Request { id: RequestId(9), request: Request::RemoveNode { node: n(1) } });
    assert_eq!(core.take_outputs(), vec![started(1, "remove n1"), propose(1, cfg(&[2, 3, 4, 5], &[]))]);
    core.step(1_100, Input::Committed(Token(1)));
    let outputs: Vec<Output> =
        core.take_outputs().into_iter().filter(|o| !matches!(o, Output::Health(_))).collect();
    assert!(matches!(&outputs[..], [Output::Audit(_), Output::Reply { .. }]), "{outputs:?}");
    assert_eq!(
        outputs[1],
        Output::Reply { request: RequestId(9), result: Ok(Outcome::Completed { steps: 1 }) }
    );
}

#[test]
fn new_nodes_join_as_learners_and_are_promoted_toward_an_odd_count() {
    // Three voters and one ready learner: 4 voters would add no tolerance.
    let mut core = leader_core(1, &cfg(&[1, 2, 3], &[4]));
    core.tick(1_000);
    assert_eq!(core.take_outputs(), vec![]);
    // A stranger seen alive joins as a learner.
    core.step(2_000, Input::Liveness { node: n(5), liveness: Liveness::Alive });
    let with_learner = cfg(&[1, 2, 3], &[4, 5]);
    assert_eq!(
        core.take_outputs(),
        vec![started(1, "add n5, seen alive through gossip, as a learner"), propose(1, with_learner.clone())]
    );
    core.step(2_000, Input::Committed(Token(1)));
    core.step(2_000, Input::Verified { token: Token(2), committed: true });
    let mut lagging = progress(1, &with_learner);
    lagging.commit_index = 1_000;
    lagging.match_index.insert(n(5), 500);
    for id in 1..=4 {
        lagging.match_index.insert(n(id), 1_000);
    }
    core.step(3_000, Input::Progress(lagging.clone()));
    core.take_outputs();
    // n4 alone is ready; n5 lags by 500 > learner_lag_max 100.
    core.tick(4_000);
    assert_eq!(core.take_outputs(), vec![]);
    // Once n5 catches up, two learners are ready: promote the first.
    lagging.match_index.insert(n(5), 950);
    core.step(5_000, Input::Progress(lagging));
    assert_eq!(
        core.take_outputs(),
        vec![
            started(2, "promote caught-up learner n4 (3 of 5 voters)"),
            propose(3, cfg(&[1, 2, 3, 4], &[5]))
        ]
    );
}

#[test]
fn a_failed_verification_rolls_the_change_back() {
    let before = cfg(&[1, 2, 3], &[]);
    let mut core = leader_core(1, &before);
    let add = Request::AddNode { node: n(4), voter: true, weight: None };
    core.step(0, Input::Request { id: RequestId(3), request: add });
    assert_eq!(core.take_outputs(), vec![started(1, "add n4 as a voter"), propose(1, cfg(&[1, 2, 3], &[4]))]);
    core.step(10, Input::Committed(Token(1)));
    // n4's log is unknown: its promotion waits for it to catch up.
    assert_eq!(core.take_outputs(), vec![]);
    core.step(20, Input::Progress(progress(1, &cfg(&[1, 2, 3], &[4]))));
    assert_eq!(core.take_outputs(), vec![propose(2, cfg(&[1, 2, 3, 4], &[]))]);
    core.step(30, Input::Committed(Token(2)));
    assert_eq!(core.take_outputs(), vec![Output::Verify { token: Token(3) }]);
    core.step(40, Input::Verified { token: Token(3), committed: false });
    assert_eq!(core.take_outputs(), vec![propose(4, before.clone())]);
    core.step(50, Input::Committed(Token(4)));
    let rolled_back =
        Outcome::RolledBack { reason: "the new quorum did not commit the verification".to_string() };
    let outputs = core.take_outputs();
    assert!(matches!(&outputs[0], Output::Audit(r) if r.steps_committed == 3 && r.outcome == rolled_back));
    assert_eq!(outputs[1], Output::Reply { request: RequestId(3), result: Ok(rolled_back) });
}

#[test]
fn a_refused_proposal_with_nothing_applied_fails_without_rollback() {
    let mut core = leader_core(1, &cfg(&[1, 2, 3], &[]));
    core.step(
        0,
        Input::Request {
            id: RequestId(1),
            request: Request::AddNode { node: n(4), voter: false, weight: None },
        },
    );
    core.take_outputs();
    core.step(10, Input::Failed { token: Token(1), reason: "not leader".to_string() });
    let failed = Outcome::Failed { reason: "not leader".to_string() };
    let outputs = core.take_outputs();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[1], Output::Reply { request: RequestId(1), result: Ok(failed) });
}

#[test]
fn requests_are_refused_with_typed_reasons() {
    let mut follower = leader_core(2, &cfg(&[1, 2, 3], &[]));
    follower.step(0, Input::Progress(progress(1, &cfg(&[1, 2, 3], &[]))));
    follower.take_outputs();
    follower.step(0, Input::Request { id: RequestId(1), request: Request::RemoveNode { node: n(3) } });
    assert_eq!(
        follower.take_outputs(),
        vec![Output::Reply {
            request: RequestId(1),
            result: Err(RequestError::NotLeader { leader: Some(n(1)) })
        }]
    );

    let mut core = leader_core(1, &cfg(&[1, 2, 3], &[]));
    let refusals = [
        (Request::RemoveNode { node: n(3) }, RequestError::BelowVotersMin { voters: 2, voters_min: 3 }),
        (Request::RemoveNode { node: n(9) }, RequestError::Edit(crate::quorum::EditError::NotMember(n(9)))),
        (
            Request::SetPolicy { policy: QuorumPolicy::Flexible { election_weight: 0, commit_weight: 3 } },
            RequestError::Unsafe(UnsafeConfig::ZeroQuorum { kind: crate::quorum::QuorumKind::Election }),
        ),
    ];
    for (i, (request, error)) in refusals.into_iter().enumerate() {
        let id = RequestId(10 + i as u64);
        core.step(0, Input::Request { id, request });
        assert_eq!(core.take_outputs(), vec![Output::Reply { request: id, result: Err(error) }]);
    }

    // One operation in flight, one request queued (bound 1), the next refused.
    let mut settings = CoreConfig::new(n(1));
    settings.pending_requests_max = 1;
    let mut core = QuorumCore::new(settings).expect("valid settings");
    core.step(0, Input::Progress(progress(1, &cfg(&[1, 2, 3], &[]))));
    let learner = |id| Request::AddNode { node: n(id), voter: false, weight: None };
    for (id, node) in [(1, 7), (2, 8), (3, 9)] {
        core.step(0, Input::Request { id: RequestId(id), request: learner(node) });
    }
    let outputs = core.take_outputs();
    assert_eq!(
        outputs.last(),
        Some(&Output::Reply { request: RequestId(3), result: Err(RequestError::QueueFull { max: 1 }) })
    );
    assert_eq!((core.busy(), core.queued()), (true, 1));
}

#[test]
fn quorum_verification_answers_beside_operations() {
    let mut follower = leader_core(2, &cfg(&[1, 2, 3], &[]));
    follower.step(0, Input::Progress(progress(1, &cfg(&[1, 2, 3], &[]))));
    follower.take_outputs();
    follower.step(0, Input::Request { id: RequestId(4), request: Request::VerifyQuorum });
    assert_eq!(follower.take_outputs(), vec![Output::Verify { token: Token(1) }]);
    follower.step(5, Input::Verified { token: Token(1), committed: true });
    assert_eq!(
        follower.take_outputs(),
        vec![Output::Reply { request: RequestId(4), result: Ok(Outcome::Verified { committed: true }) }]
    );
    // An answer that never comes is a failed verification after the timeout.
    follower.step(10, Input::Request { id: RequestId(5), request: Request::VerifyQuorum });
    assert_eq!(follower.take_outputs(), vec![Output::Verify { token: Token(2) }]);
    follower.tick(10_010);
    assert_eq!(follower.take_outputs(), vec![]);
    follower.tick(10_011);
    assert_eq!(
        follower.take_outputs(),
        vec![Output::Reply { request: RequestId(5), result: Ok(Outcome::Verified { committed: false }) }]
    );
    follower.step(10_012, Input::Verified { token: Token(2), committed: true });
    assert_eq!(follower.take_outputs(), vec![]);
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let mut settings = CoreConfig::new(n(1));
    settings.voters_target = 4;
    assert_eq!(QuorumCore::new(settings).err(), Some(CoreConfigError::EvenVotersTarget(4)));
    let mut settings = CoreConfig::new(n(1));
    settings.automatic_retry_ms_max = settings.automatic_retry_ms - 1;
    assert!(matches!(QuorumCore::new(settings).err(), Some(CoreConfigError::RetryBound { .. })));
}

#[test]
fn a_flexible_policy_is_reached_in_two_safe_steps_and_an_unsafe_one_refused() {
    let majority = cfg(&[1, 2, 3, 4, 5], &[]);
    let flexible = |election_weight, commit_weight| {
        QuorumConfig::new(majority.voting.clone(), QuorumPolicy::Flexible { election_weight, commit_weight })
    };
    let mut core = leader_core(1, &majority);
    let policy = QuorumPolicy::Flexible { election_weight: 4, commit_weight: 2 };
    core.step(0, Input::Request { id: RequestId(1), request: Request::SetPolicy { policy } });
    let description = "set policy Flexible { election_weight: 4, commit_weight: 2 }";
    assert_eq!(core.take_outputs(), vec![started(1, description), propose(1, flexible(4, 3))]);
    core.step(1, Input::Committed(Token(1)));
    assert_eq!(core.take_outputs(), vec![propose(2, flexible(4, 2))]);
    core.step(2, Input::Committed(Token(2)));
    core.step(3, Input::Verified { token: Token(3), committed: true });
    let outputs = core.take_outputs();
    assert_eq!(
        outputs.last(),
        Some(&Output::Reply { request: RequestId(1), result: Ok(Outcome::Completed { steps: 2 }) })
    );
    // Commits now need 2 of 5 but elections 4: one failure is tolerated.
    assert_eq!((core.health().quorum_size, core.health().failures_tolerated), (2, 1));

    // Election 3 + commit 2 of 5 could miss each other: refused with the rule.
    let unsafe_policy = QuorumPolicy::Flexible { election_weight: 3, commit_weight: 2 };
    core.step(4, Input::Request { id: RequestId(2), request: Request::SetPolicy { policy: unsafe_policy } });
    let outputs = core.take_outputs();
    assert!(
        matches!(
            &outputs[..],
            [Output::Reply {
                request: RequestId(2),
                result: Err(RequestError::Unsafe(UnsafeConfig::ElectionCommitMayNotIntersect {
                    election_weight: 3,
                    commit_weight: 2,
                    total_weight: 5,
                    witness: Some(_)
                }))
            }]
        ),
        "{outputs:?}"
    );
}

#[test]
fn a_replacement_raft_refused_is_retried_after_a_doubling_backoff() {
    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[6]));
    let replaced = cfg(&[1, 2, 3, 4, 5, 6], &[]);
    core.step(1_000, Input::Liveness { node: n(5), liveness: Liveness::Dead });
    core.tick(61_000);
    assert!(core.take_outputs().contains(&propose(1, replaced.clone())));
    // Raft refuses for a reason that passes (a new leader not yet committed
    // in its term): tried again after automatic_retry_ms (1 s), then 2 s.
    let reason = "raft: the leader has not committed an entry of its term yet".to_string();
    core.step(61_500, Input::Failed { token: Token(1), reason: reason.clone() });
    let outputs = core.take_outputs();
    assert!(
        matches!(&outputs[..], [Output::Audit(r)] if r.outcome == Outcome::Failed { reason: reason.clone() }),
        "{outputs:?}"
    );
    core.tick(62_499);
    assert_eq!(core.take_outputs(), vec![]);
    core.tick(62_500);
    let outputs = core.take_outputs();
    assert!(outputs.contains(&propose(2, replaced.clone())), "{outputs:?}");
    assert!(!outputs.contains(&Output::Event(Event::VoterFailed { node: n(5) })), "reported once");
    core.step(62_500, Input::Failed { token: Token(2), reason });
    core.take_outputs();
    core.tick(64_499);
    assert_eq!(core.take_outputs(), vec![]);
    core.tick(64_500);
    assert!(core.take_outputs().contains(&propose(3, replaced)));
}

#[test]
fn an_automatic_change_the_core_refuses_waits_until_the_node_is_seen_alive() {
    // Three voters, one dead, no learner: removing it would leave two,
    // below voters_min; refused, reported once, never proposed.
    let mut core = leader_core(1, &cfg(&[1, 2, 3], &[]));
    core.step(1_000, Input::Liveness { node: n(3), liveness: Liveness::Dead });
    core.tick(61_000);
    let outputs = core.take_outputs();
    let refusals =
        outputs.iter().filter(|o| matches!(o, Output::Event(Event::AutomaticChangeRefused { .. })));
    assert_eq!(refusals.count(), 1, "{outputs:?}");
    assert!(!outputs.iter().any(|o| matches!(o, Output::Propose { .. })), "{outputs:?}");
    core.tick(600_000);
    assert_eq!(core.take_outputs(), vec![]);
    // Back alive, then dead again for a full window: a new attempt.
    core.step(610_000, Input::Liveness { node: n(3), liveness: Liveness::Alive });
    core.step(620_000, Input::Liveness { node: n(3), liveness: Liveness::Dead });
    core.take_outputs();
    core.tick(679_999);
    assert_eq!(core.take_outputs(), vec![]);
    core.tick(680_000);
    let outputs = core.take_outputs();
    assert_eq!(outputs[0], Output::Event(Event::VoterFailed { node: n(3) }));
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Event(Event::AutomaticChangeRefused { node, .. }) if *node == n(3))),
        "{outputs:?}"
    );
}

#[test]
fn a_failed_voter_is_replaced_by_a_learner_that_keeps_zones_balanced() {
    let mut core = leader_core(1, &cfg(&[1, 2, 3, 4, 5], &[6, 7]));
    for (id, zone) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "a"), (7, "c")] {
        core.step(0, Input::Domain { node: n(id), domain: zone.to_string() });
    }
    core.step(1_000, Input::Liveness { node: n(5), liveness: Liveness::Dead });
    core.tick(61_000);
    // n6 would put three voters in zone a, whose loss would lose quorum.
    let outputs = core.take_outputs();
    assert_eq!(outputs[2], started(1, "replace n5, dead for 60000 ms, by caught-up learner n7"));
    assert_eq!(outputs[3], propose(1, cfg(&[1, 2, 3, 4, 5, 7], &[6])));
}

#[test]
fn a_voter_gossip_holds_dead_but_whose_log_advances_is_not_replaced() {
    let config = cfg(&[1, 2, 3, 4, 5], &[6]);
    let mut core = leader_core(1, &config);
    core.step(1_000, Input::Liveness { node: n(5), liveness: Liveness::Dead });
    // Raft keeps reporting n5's log advancing: gossip's verdict is stale.
    let mut report = progress(1, &config);
    for second in 2..=120u64 {
        report.commit_index = 100 + second;
        report.match_index.values_mut().for_each(|m| *m = 100 + second);
        core.step(second * 1_000, Input::Progress(report.clone()));
    }
    let outputs = core.take_outputs();
    assert!(!outputs.iter().any(|o| matches!(o, Output::Propose { .. })), "{outputs:#?}");
    // Its log stops at 120 s: replaced one window later, not before.
    report.match_index.insert(n(5), 220);
    for second in 121..180u64 {
        report.commit_index = 100 + second;
        for id in [1, 2, 3, 4, 6] {
            report.match_index.insert(n(id), 100 + second);
        }
        core.step(second * 1_000, Input::Progress(report.clone()));
    }
    assert!(!core.take_outputs().iter().any(|o| matches!(o, Output::Propose { .. })));
    core.tick(180_000);
    let outputs = core.take_outputs();
    assert_eq!(outputs[0], Output::Event(Event::VoterFailed { node: n(5) }));
    assert!(outputs.contains(&propose(1, cfg(&[1, 2, 3, 4, 5, 6], &[]))), "{outputs:?}");
}
