//! Random runs of the core against a toy Raft: whatever the inputs, at most
//! one change is outstanding, a failed voter is handled once until seen
//! alive again, every proposal is a valid configuration that
//! keeps every needed quorum intersection with the configuration in force
//! (exact check, itself checked against brute force in `quorum::tests`), and
//! neither the core nor its reports and recommendations panic on extreme
//! measurements.

use super::*;
use crate::health::RaftProgress;
use crate::quorum::{QuorumConfig, QuorumPolicy, VotingConfig};
use proptest::prelude::*;

/// One thing that may happen next.
#[derive(Clone, Debug)]
enum Action {
    Liveness(u64, Liveness),
    Tick(u64),
    Commit,
    Fail,
    Verify(bool),
    Lead(bool),
    CatchUp(u64),
    Request(Request),
    Measure(Input),
}

fn node() -> impl Strategy<Value = u64> {
    1u64..=8
}

fn liveness() -> impl Strategy<Value = Liveness> {
    prop_oneof![Just(Liveness::Alive), Just(Liveness::Suspect), Just(Liveness::Dead), Just(Liveness::Left)]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (node(), any::<bool>(), prop::option::of(1u32..=3))
            .prop_map(|(id, voter, weight)| Request::AddNode { node: NodeId(id), voter, weight }),
        node().prop_map(|id| Request::RemoveNode { node: NodeId(id) }),
        node().prop_map(|id| Request::PromoteLearner { node: NodeId(id), weight: None }),
        (node(), 1u32..=3).prop_map(|(id, w)| Request::SetWeights { weights: [(NodeId(id), w)].into() }),
        prop_oneof![
            Just(QuorumPolicy::Majority),
            Just(QuorumPolicy::Weighted),
            (1u64..=6, 1u64..=6)
                .prop_map(|(e, c)| QuorumPolicy::Flexible { election_weight: e, commit_weight: c }),
        ]
        .prop_map(|policy| Request::SetPolicy { policy }),
        prop::collection::btree_set(node(), 1..=6).prop_map(|voters| Request::Adjust {
            target: QuorumConfig::majority(voters.into_iter().map(NodeId)),
        }),
        Just(Request::VerifyQuorum),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (node(), liveness()).prop_map(|(id, l)| Action::Liveness(id, l)),
        3 => (0u64..=70_000).prop_map(Action::Tick),
        4 => Just(Action::Commit),
        1 => Just(Action::Fail),
        2 => any::<bool>().prop_map(Action::Verify),
        1 => any::<bool>().prop_map(Action::Lead),
        2 => node().prop_map(Action::CatchUp),
        3 => request().prop_map(Action::Request),
        2 => prop_oneof![
            (node(), node(), any::<u64>()).prop_map(|(a, b, rtt_ms)| Input::Rtt { a: NodeId(a), b: NodeId(b), rtt_ms }),
            any::<u64>().prop_map(|latency_ms| Input::CommitLatency { latency_ms }),
            (any::<u64>(), node()).prop_map(|(term, id)| Input::Election { term, leader: NodeId(id) }),
            (any::<u64>(), node()).prop_map(|(term, id)| Input::LeaderClaim { term, leader: NodeId(id) }),
            (node(), "[a-c]").prop_map(|(id, domain)| Input::Domain { node: NodeId(id), domain }),
        ]
        .prop_map(Action::Measure),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn proposals_are_single_valid_and_intersecting(actions in prop::collection::vec(action(), 1..120)) {
        let mut core = QuorumCore::new(CoreConfig::new(NodeId(1))).expect("valid settings");
        let voting = VotingConfig::with_voters((1..=5).map(NodeId)).and_learners([NodeId(6)]);
        let mut raft = RaftProgress {
            leader: Some(NodeId(1)),
            term: 1,
            commit_index: 100,
            match_index: (1..=6).map(|id| (NodeId(id), 100)).collect(),
            config: QuorumConfig::new(voting, QuorumPolicy::Majority),
        };
        core.step(0, Input::Progress(raft.clone()));
        let mut now = 0;
        let mut outstanding: Option<(Token, QuorumConfig)> = None;
        let mut verifications: Vec<Token> = Vec::new();
        let mut next_request = 1;
        // Voters declared failed since they were last seen alive.
        let mut declared_failed: std::collections::BTreeSet<NodeId> = Default::default();
        for action in actions {
            match action {
                Action::Liveness(id, l) => {
                    if l == Liveness::Alive {
                        declared_failed.remove(&NodeId(id));
                    }
                    core.step(now, Input::Liveness { node: NodeId(id), liveness: l });
                }
                Action::Tick(ms) => {
                    now += ms;
                    core.tick(now);
                }
                Action::Commit => {
                    if let Some((token, config)) = outstanding.take() {
                        raft.config = config;
                        core.step(now, Input::Committed(token));
                        core.step(now, Input::Progress(raft.clone()));
                    }
                }
                Action::Fail => {
                    if let Some((token, _)) = outstanding.take() {
                        core.step(now, Input::Failed { token, reason: "refused".to_string() });
                    }
                }
                Action::Verify(committed) => {
                    if let Some(token) = verifications.pop() {
                        core.step(now, Input::Verified { token, committed });
                    }
                }
                Action::Lead(local) => {
                    raft.leader = Some(NodeId(if local { 1 } else { 2 }));
                    raft.term += 1;
                    core.step(now, Input::Progress(raft.clone()));
                }
                Action::CatchUp(id) => {
                    raft.match_index.insert(NodeId(id), raft.commit_index);
                    core.step(now, Input::Progress(raft.clone()));
                }
                Action::Measure(input) => core.step(now, input),
                Action::Request(request) => {
                    core.step(now, Input::Request { id: RequestId(next_request), request });
                    next_request += 1;
                }
            }
            // Reports and recommendations hold whatever was measured.
            let health = core.health();
            prop_assert!(health.failures_tolerated < health.voters.max(1));
            core.recommend();
            for output in core.take_outputs() {
                match output {
                    Output::Propose { token, config } => {
                        prop_assert!(outstanding.is_none(), "a second proposal while one is outstanding");
                        prop_assert_eq!(config.validate(), Ok(()));
                        prop_assert_eq!(raft.config.check_change(&config), Ok(()), "{:?} -> {:?}", raft.config, config);
                        prop_assert_eq!(raft.leader, Some(NodeId(1)), "only the leader proposes");
                        outstanding = Some((token, config));
                    }
                    Output::Verify { token } => verifications.push(token),
                    Output::Event(Event::VoterFailed { node }) => {
                        prop_assert!(declared_failed.insert(node), "{} handled twice", node);
                    }
                    _ => {}
                }
            }
        }
    }
}
