//! Through the public API only, the way the actor will drive the core: a
//! toy Raft answers every proposal and verification at once. A sixth node
//! found through gossip joins as a learner and catches up; a voter is
//! killed and, after the failure window, replaced by it — once.

use concord_membership::core::{Event, Outcome, RequestId, Token};
use concord_membership::health::{HealthStatus, Liveness, RaftProgress};
use concord_membership::messages::{Health, History, Query, VerifyQuorum};
use concord_membership::quorum::QuorumConfig;
use concord_membership::{CoreConfig, Input, Output, QuorumCore, Request};
use concord_transport::NodeId;

/// The Raft group as the toy sees it.
struct ToyRaft {
    progress: RaftProgress,
    proposals: Vec<QuorumConfig>,
    events: Vec<Event>,
    replies: Vec<(RequestId, Outcome)>,
}

impl ToyRaft {
    /// Feeds outputs back until the core is quiet: proposals commit at once,
    /// verifications succeed.
    fn settle(&mut self, core: &mut QuorumCore, now_ms: u64) {
        loop {
            let outputs = core.take_outputs();
            if outputs.is_empty() {
                return;
            }
            for output in outputs {
                match output {
                    Output::Propose { token, config } => self.commit(core, now_ms, token, config),
                    Output::Verify { token } => core.step(now_ms, Input::Verified { token, committed: true }),
                    Output::Event(event) => self.events.push(event),
                    Output::Reply { request, result } => {
                        self.replies.push((request, result.expect("accepted")))
                    }
                    _ => {}
                }
            }
        }
    }

    fn commit(&mut self, core: &mut QuorumCore, now_ms: u64, token: Token, config: QuorumConfig) {
        assert_eq!(
            self.progress.config.check_change(&config),
            Ok(()),
            "every step keeps quorums intersecting"
        );
        self.proposals.push(config.clone());
        self.progress.config = config;
        core.step(now_ms, Input::Committed(token));
        core.step(now_ms, Input::Progress(self.progress.clone()));
    }
}

fn n(id: u64) -> NodeId {
    NodeId(id)
}

#[test]
fn a_sixth_node_joins_as_learner_then_replaces_a_failed_voter_once() {
    let mut core = QuorumCore::new(CoreConfig::new(n(1))).expect("default settings are valid");
    let five = QuorumConfig::majority((1..=5).map(NodeId));
    let mut raft = ToyRaft {
        progress: RaftProgress {
            leader: Some(n(1)),
            term: 1,
            commit_index: 1_000,
            match_index: (1..=5).map(|id| (n(id), 1_000)).collect(),
            config: five.clone(),
        },
        proposals: Vec::new(),
        events: Vec::new(),
        replies: Vec::new(),
    };
    core.step(0, Input::Progress(raft.progress.clone()));
    for id in 2..=5 {
        core.step(0, Input::Liveness { node: n(id), liveness: Liveness::Alive });
    }
    raft.settle(&mut core, 0);
    assert_eq!(Health.answer(&core).status, HealthStatus::Healthy);

    // Node 6 appears in gossip: it joins as a learner, not yet a voter.
    core.step(1_000, Input::Liveness { node: n(6), liveness: Liveness::Alive });
    raft.settle(&mut core, 1_000);
    assert_eq!(raft.proposals, vec![five.clone().tap(|c| c.voting.add_learner(n(6)).expect("new"))]);

    // It catches up; five voters already meet the target, so it stays a learner.
    raft.progress.match_index.insert(n(6), 990);
    core.step(2_000, Input::Progress(raft.progress.clone()));
    raft.settle(&mut core, 2_000);
    assert_eq!(raft.proposals.len(), 1);

    // Voter 3 dies; after the 60 s window node 6 takes its place.
    core.step(10_000, Input::Liveness { node: n(3), liveness: Liveness::Dead });
    raft.settle(&mut core, 10_000);
    core.tick(69_999);
    raft.settle(&mut core, 69_999);
    assert_eq!(raft.proposals.len(), 1);
    core.tick(70_000);
    raft.settle(&mut core, 70_000);
    let replaced = QuorumConfig::majority([1, 2, 4, 5, 6].map(NodeId));
    assert_eq!(raft.proposals.last(), Some(&replaced));
    assert_eq!(raft.proposals.len(), 3, "promote n6, then remove n3");
    assert_eq!(raft.events.iter().filter(|e| matches!(e, Event::VoterFailed { .. })).count(), 1);

    // Much later, nothing more happens and the group is healthy again.
    core.tick(600_000);
    raft.settle(&mut core, 600_000);
    assert_eq!(raft.proposals.len(), 3);
    let health = Health.answer(&core);
    assert_eq!((health.status, health.voters, health.failures_tolerated), (HealthStatus::Healthy, 5, 2));
    let history = History { limit: None }.answer(&core);
    let outcomes: Vec<&Outcome> = history.iter().map(|r| &r.outcome).collect();
    assert_eq!(outcomes, vec![&Outcome::Completed { steps: 1 }, &Outcome::Completed { steps: 2 }]);

    // An operator check of the quorum goes through Raft and comes back.
    core.step(600_000, Input::Request { id: RequestId(1), request: Request::from(VerifyQuorum) });
    raft.settle(&mut core, 600_000);
    assert_eq!(raft.replies, vec![(RequestId(1), Outcome::Verified { committed: true })]);
}

/// `value` after `edit`, for building expected configurations inline.
trait Tap: Sized {
    fn tap(mut self, edit: impl FnOnce(&mut Self)) -> Self {
        edit(&mut self);
        self
    }
}

impl Tap for QuorumConfig {}
