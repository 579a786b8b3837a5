//! Scenario tests named after the sections of the Raft paper (Ongaro &
//! Ousterhout, 2014) and the thesis (Ongaro, 2014) they check.

mod common;

use common::{test_config, Net};
use concord_raft::core::{Body, Config, Membership, Role};
use concord_raft::error::RequestError;
use concord_transport::NodeId;

/// Forces elections at `id` until it wins (terms may need to pass votes cast).
fn elect_until_leader(net: &mut Net, id: u64) {
    for _ in 0..4 {
        net.elect(id);
        if net.raft(id).role() == Role::Leader {
            return;
        }
    }
    panic!("node {id} did not win");
}

fn net(size: u64) -> Net {
    Net::new(size, test_config())
}

#[test]
fn section_5_2_a_candidate_with_a_majority_becomes_leader_and_others_follow() {
    let mut net = net(3);
    net.elect(1);
    assert_eq!(net.raft(1).role(), Role::Leader);
    assert_eq!(net.raft(1).term(), 1);
    for id in [2, 3] {
        assert_eq!(net.raft(id).role(), Role::Follower);
        assert_eq!(net.raft(id).leader(), Some(NodeId(1)));
        assert_eq!(net.raft(id).vote(), Some(NodeId(1)));
    }
    let record = net.raft(1).election_history().last().cloned().unwrap();
    assert!(record.voted_by.len() >= 2 && record.voted_by.contains(&NodeId(1)), "{record:?}");
    assert_eq!(record.leader, NodeId(1));
}

#[test]
fn section_5_2_election_timeouts_elect_exactly_one_leader() {
    let mut net = net(5);
    net.tick_all(60);
    let leaders: Vec<_> = net.nodes.values().filter(|n| n.is_leader()).map(|n| n.id).collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
}

#[test]
fn section_5_2_each_server_votes_at_most_once_per_term() {
    let mut net = net(3);
    net.with(1, |n| n.raft.trigger_election().unwrap());
    net.with(2, |n| n.raft.trigger_election().unwrap());
    // Both campaign in term 1 and voted for themselves: node 3 decides.
    net.deliver_all();
    let leaders: Vec<_> = net.nodes.values().filter(|n| n.is_leader()).collect();
    assert!(leaders.len() <= 1);
    assert_eq!(net.raft(3).term(), 1);
    assert!(net.raft(3).vote().is_some());
}

#[test]
fn section_5_3_followers_replicate_and_apply_committed_entries_in_order() {
    let mut net = net(3);
    net.elect(1);
    for i in 0..10u8 {
        net.propose(1, &[i]).unwrap();
    }
    net.tick_all(6); // a heartbeat carries the final commit index
    for id in 1..=3 {
        let log = net.raft(id).log();
        assert_eq!(log.last_index(), 11, "no-op + 10 entries on {id}");
        assert_eq!(log.commit, 11);
        assert_eq!(net.node(id).kv.applied, 11);
    }
}

#[test]
fn section_5_3_a_follower_with_conflicting_entries_is_overwritten() {
    let mut net = net(3);
    net.elect(1);
    net.propose(1, b"a").unwrap();
    // The old leader, cut off, appends entries that will never commit.
    net.isolate(1);
    for _ in 0..3 {
        let _ = net.propose(1, b"lost");
    }
    assert_eq!(net.raft(1).log().last_index(), 5);
    net.elect(2);
    assert_eq!(net.raft(2).role(), Role::Leader);
    net.propose(2, b"b").unwrap();
    net.heal();
    net.tick_all(12);
    assert_eq!(net.raft(1).role(), Role::Follower);
    assert_eq!(net.terms(1), net.terms(2), "the stale suffix was replaced");
    assert_eq!(net.terms(1), net.terms(3));
    assert_eq!(net.raft(1).log().last_index(), 4);
}

#[test]
fn section_5_3_conflict_terms_let_the_leader_skip_a_whole_term_per_round_trip() {
    let config = Config { batch_size: 1, ..test_config() };
    let mut net = Net::new(3, config);
    net.elect(1);
    net.isolate(1);
    for _ in 0..30 {
        let _ = net.propose(1, b"stale");
    }
    net.elect(2);
    net.propose(2, b"new").unwrap();
    net.heal();
    let rejections = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = rejections.clone();
    net.filter = Some(Box::new(move |_, _, m| {
        if matches!(m.body, Body::AppendResponse(concord_raft::core::AppendOutcome::Rejected { .. })) {
            counter.set(counter.get() + 1);
        }
        false
    }));
    net.tick_all(12);
    assert_eq!(net.terms(1), net.terms(2));
    assert!(rejections.get() <= 2, "31 divergent entries of one term cost {} rejections", rejections.get());
}

#[test]
fn section_5_4_1_a_candidate_with_a_stale_log_is_refused() {
    let mut net = net(3);
    net.elect(1);
    net.isolate(3);
    net.propose(1, b"x").unwrap();
    net.heal();
    net.crash(1);
    // Node 3 lacks the committed entry; node 2 must refuse it.
    net.elect(3);
    assert_ne!(net.raft(3).role(), Role::Leader);
    net.elect(2);
    assert_eq!(net.raft(2).role(), Role::Leader);
}

/// Figure 8: an entry of an old term stored on a majority is not committed
/// by counting replicas; it may still be overwritten.
#[test]
fn section_5_4_2_figure_8_old_term_entries_are_not_committed_by_counting() {
    let config = Config { batch_size: 1, ..test_config() };
    let mut net = Net::new(5, config);
    // (a) S1 leads term 1 (our no-op at index 1 commits everywhere).
    net.elect(1);
    net.tick_all(6);
    assert_eq!(net.raft(5).log().commit, 1);
    // S1 appends index 2 in its term; nobody gets it yet.
    net.isolate(1);
    net.propose(1, b"term1").unwrap();
    assert_eq!(net.raft(1).log().last_index(), 2);
    // (b) S1 crashes; S5 is elected by S3, S4, S5 and appends index 2 (its no-op) alone.
    net.crash(1);
    net.heal();
    net.isolate(2);
    net.filter = Some(Box::new(|from, _, m| from == NodeId(5) && matches!(m.body, Body::Append { .. })));
    net.elect(5);
    assert_eq!(net.raft(5).role(), Role::Leader);
    let s5_term = net.raft(5).term();
    assert_eq!(net.raft(5).log().term(2), Some(s5_term));
    // (c) S5 crashes; S1 restarts and is elected with S2 and S3, then
    // replicates its old index 2 to S3 but none of its own entries.
    net.crash(5);
    net.restart(1);
    net.heal();
    net.isolate(4);
    // S2 and S3 each see (and reject: they lack index 2) one append with an
    // entry of S1's new term; after that only the term-1 entry gets through.
    let rejected = std::cell::RefCell::new(std::collections::BTreeSet::new());
    net.filter = Some(Box::new(move |from, to, m| match &m.body {
        Body::Append { entries, .. } if from == NodeId(1) && entries.iter().any(|e| e.term > 1) => {
            !rejected.borrow_mut().insert(to)
        }
        _ => false,
    }));
    elect_until_leader(&mut net, 1);
    net.tick_all(6);
    let holders = [1, 2, 3].iter().filter(|&&id| net.raft(id).log().term(2) == Some(1)).count();
    assert_eq!(holders, 3, "the term-1 entry is on a majority");
    assert_eq!(net.raft(1).progress()[&NodeId(2)].match_index, 2, "and the leader knows it");
    assert_eq!(net.raft(1).progress()[&NodeId(3)].match_index, 2);
    assert_eq!(net.raft(1).log().commit, 1, "yet it is not committed: its term is not the leader's");
    // (d) S1 crashes; S5 restarts and wins with S2, S3, S4 (its last term is
    // higher) and overwrites index 2: this is why (c) must not commit.
    net.crash(1);
    net.restart(5);
    net.filter = None;
    net.heal();
    elect_until_leader(&mut net, 5);
    net.tick_all(6);
    for id in [2, 3, 4, 5] {
        assert_eq!(net.raft(id).log().term(2), Some(s5_term), "S{id} holds S5's entry at index 2");
        assert!(net.raft(id).log().commit >= 2);
    }
}

#[test]
fn section_5_4_2_a_leader_commits_old_entries_through_an_entry_of_its_term() {
    let mut net = net(3);
    net.elect(1);
    net.cut.insert((NodeId(1), NodeId(3)));
    let _ = net.propose(1, b"old");
    net.crash(1);
    net.elect(2);
    assert_eq!(net.raft(2).role(), Role::Leader);
    net.tick_all(6);
    assert_eq!(net.raft(2).log().term(2), Some(1));
    assert!(net.raft(2).log().commit >= 3, "committed with the term-2 no-op");
    assert_eq!(net.raft(3).log().term(2), Some(1));
}

#[test]
fn section_6_4_read_index_is_confirmed_by_a_quorum_and_refused_off_leader() {
    let mut net = net(3);
    net.elect(1);
    net.propose(1, &common::put(1, 7)).unwrap();
    net.tick_all(6);
    assert!(net.with(1, |n| n.read(100, 1)));
    net.deliver_all();
    assert_eq!(net.node(1).read_results.last().map(|r| (r.0, r.1)), Some((100, Some(7))));
    assert!(!net.with(2, |n| n.read(101, 1)), "a follower refuses");
    // A leader cut off from the quorum cannot confirm the read.
    net.isolate(1);
    assert!(net.with(1, |n| n.read(102, 1)));
    net.deliver_all();
    assert!(!net.node(1).read_results.iter().any(|r| r.0 == 102));
}

#[test]
fn section_6_4_1_lease_reads_need_a_recent_quorum() {
    let mut net = net(3);
    net.elect(1);
    net.tick_all(6);
    assert!(net.raft(1).read_lease(1).is_ok());
    net.isolate(1);
    net.tick_all(14);
    assert_eq!(net.raft(1).read_lease(2), Err(RequestError::LeaseNotHeld));
}

#[test]
fn section_6_2_check_quorum_makes_an_isolated_leader_step_down() {
    let mut net = net(3);
    net.elect(1);
    net.isolate(1);
    net.tick_all(2 * test_config().election_ticks_min + 1);
    assert_ne!(net.raft(1).role(), Role::Leader);
}

#[test]
fn section_9_6_pre_vote_keeps_a_partitioned_node_from_raising_its_term() {
    let mut net = net(3);
    net.elect(1);
    net.isolate(3);
    net.tick_all(100);
    assert_eq!(net.raft(3).term(), 1, "pre-votes fail without changing the term");
    net.heal();
    net.tick_all(10);
    assert_eq!(net.raft(1).role(), Role::Leader, "rejoining does not depose the leader");
}

#[test]
fn section_9_6_a_node_with_a_higher_term_rejoins_under_check_quorum() {
    let mut net = net(3);
    net.elect(1);
    net.isolate(3);
    // Forced elections raise node 3's term while it is alone.
    for _ in 0..3 {
        net.elect(3);
    }
    let high = net.raft(3).term();
    assert!(high > net.raft(1).term());
    net.heal();
    net.tick_all(120);
    let leader = net.leader().expect("a leader after the rejoin");
    assert!(net.raft(leader.0).term() >= high);
    assert_eq!(net.terms(1), net.terms(3));
}

#[test]
fn section_3_10_leadership_transfer_hands_over_with_timeout_now() {
    let mut net = net(3);
    net.elect(1);
    net.propose(1, b"x").unwrap();
    net.with(1, |n| n.raft.transfer_leader(NodeId(3)).unwrap());
    assert!(matches!(
        net.propose(1, b"y"),
        Err(RequestError::TransferInProgress(_)) | Err(RequestError::NotLeader { .. })
    ));
    net.deliver_all();
    net.tick_all(1);
    assert_eq!(net.raft(3).role(), Role::Leader);
    assert_eq!(net.raft(1).leader(), Some(NodeId(3)));
    let record = net.raft(3).election_history().last().cloned().unwrap();
    assert_eq!((record.old_leader, record.leader), (Some(NodeId(1)), NodeId(3)), "{record:?}");
    let seen_by_2 = net.raft(2).election_history().last().cloned().unwrap();
    assert_eq!((seen_by_2.old_leader, seen_by_2.leader), (Some(NodeId(1)), NodeId(3)));
}

#[test]
fn section_3_10_step_down_picks_an_up_to_date_voter() {
    let mut net = net(3);
    net.elect(1);
    net.tick_all(6);
    let target = net.with(1, |n| n.raft.step_down().unwrap());
    net.deliver_all();
    assert_eq!(net.raft(target.0).role(), Role::Leader);
}

#[test]
fn section_4_1_membership_changes_one_at_a_time_with_learners_and_promotion() {
    let mut net = Net::new(4, test_config());
    // Node 4 starts outside the configuration of 1..=3.
    let three = Membership::with_voters([1, 2, 3].map(NodeId));
    for id in 1..=4 {
        let node = net.nodes.get_mut(&NodeId(id)).unwrap();
        *node = common::TestNode::new(
            NodeId(id),
            if id == 4 { Membership::default() } else { three.clone() },
            test_config(),
            id,
        );
    }
    net.elect(1);
    net.tick_all(6);
    let mut with_learner = three.clone();
    with_learner.learners.insert(NodeId(4));
    net.with(1, |n| n.raft.change_membership(with_learner.clone()).unwrap());
    let mut promoted = three.clone();
    promoted.voters.insert(NodeId(4), 1);
    assert!(matches!(
        net.with(1, |n| n.raft.change_membership(promoted.clone())),
        Err(RequestError::ChangeInProgress(_))
    ));
    net.deliver_all();
    net.tick_all(6);
    assert_eq!(net.raft(4).log().last_index(), net.raft(1).log().last_index(), "the learner caught up");
    assert_eq!(net.raft(4).membership(), &with_learner);
    net.with(1, |n| n.raft.change_membership(promoted.clone()).unwrap());
    net.deliver_all();
    net.tick_all(6);
    assert!(net.raft(4).membership().is_voter(NodeId(4)));
    // Replacing half the voters at once is refused as unsafe.
    let too_big = Membership::with_voters([1, 2, 5, 6].map(NodeId));
    assert_eq!(net.with(1, |n| n.raft.change_membership(too_big)), Err(RequestError::UnsafeChange));
}

#[test]
fn section_4_2_2_a_removed_leader_steps_down_after_the_change_commits() {
    let mut net = net(3);
    net.elect(1);
    net.tick_all(6);
    let without_leader = Membership::with_voters([2, 3].map(NodeId));
    net.with(1, |n| n.raft.change_membership(without_leader).unwrap());
    net.deliver_all();
    net.tick_all(6);
    assert_ne!(net.raft(1).role(), Role::Leader);
    // Handed over with TimeoutNow (§3.10): a successor leads well before
    // any election timeout could have fired.
    assert!(6 < net.raft(2).config().election_ticks_min);
    let leader = net.leader().expect("an up-to-date voter took over at once");
    assert_ne!(leader, NodeId(1));
    net.propose(leader.0, &common::put(1, 1)).unwrap();
    net.tick_all(6);
    assert_eq!(net.raft(2).log().commit, net.raft(3).log().commit);
}

#[test]
fn section_7_a_lagging_follower_catches_up_from_a_chunked_snapshot() {
    let config = Config { snapshot_chunk_bytes_max: 64, ..test_config() };
    let mut net = Net::new(3, config);
    net.elect(1);
    net.isolate(3);
    for i in 0..120u64 {
        net.propose(1, &common::put((i % 5) as u8, i)).unwrap();
    }
    net.tick_all(6);
    assert!(net.raft(1).log().snapshot().index > 0, "the leader compacted");
    net.heal();
    net.tick_all(20);
    assert_eq!(net.node(3).kv.map, net.node(1).kv.map);
    assert_eq!(net.raft(3).log().last_index(), net.raft(1).log().last_index());
    assert!(net.raft(3).log().snapshot().index > 0, "node 3 installed a snapshot");
}

#[test]
fn section_5_6_a_restarted_node_recovers_from_snapshot_and_log() {
    let mut net = net(3);
    net.elect(1);
    for i in 0..80u64 {
        net.propose(1, &common::put(1, i)).unwrap();
    }
    net.tick_all(6);
    let before = net.node(2).kv.map.clone();
    net.crash(2);
    net.restart(2);
    net.tick_all(6);
    assert_eq!(net.node(2).kv.map, before);
    assert_eq!(net.node(2).kv.applied, net.raft(1).log().commit);
}
