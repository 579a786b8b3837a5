//! Exact-output tests of the core: what one input puts in the ready batch.

use super::*;
use crate::core::message::AppendOutcome;

fn three() -> Recovered {
    let membership = Membership::with_voters([1, 2, 3].map(NodeId));
    Recovered {
        snapshot: Snapshot { meta: SnapshotMeta { index: 0, term: 0, membership }, data: Bytes::new() },
        ..Recovered::default()
    }
}

fn node(config: Config) -> Raft {
    Raft::new(NodeId(1), config, three(), 7).unwrap()
}

/// Makes node 1 leader of term 1 with both followers matched through the no-op.
fn leader(config: Config) -> Raft {
    let mut raft = node(config);
    raft.trigger_election().unwrap();
    let ready = raft.ready();
    raft.advance(ready.number);
    raft.step(NodeId(2), Message { term: 1, body: Body::VoteResponse { pre_vote: false, granted: true } });
    assert_eq!(raft.role(), Role::Leader);
    let ready = raft.ready();
    raft.advance(ready.number);
    for id in [2, 3] {
        raft.step(
            NodeId(id),
            Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: 1 }) },
        );
    }
    let ready = raft.ready();
    raft.advance(ready.number);
    raft
}

#[test]
fn a_candidates_vote_requests_wait_for_its_term_and_vote_to_be_durable() {
    let mut raft = node(Config::default());
    raft.trigger_election().unwrap();
    let ready = raft.ready();
    assert_eq!(ready.hard_state, Some(HardState { term: 1, vote: Some(NodeId(1)), commit: 0 }));
    assert!(ready.messages.is_empty(), "nothing may leave before the vote is durable");
    let to: Vec<NodeId> = ready.persisted_messages.iter().map(|(to, _)| *to).collect();
    assert_eq!(to, vec![NodeId(2), NodeId(3)]);
    for (_, m) in &ready.persisted_messages {
        assert_eq!(
            m.body,
            Body::VoteRequest { pre_vote: false, force: true, last_log_index: 0, last_log_term: 0 }
        );
    }
}

#[test]
fn a_leaders_appends_leave_before_its_own_write_is_durable() {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 1);
    // The no-op's commit was not written alone; it rides with these entries.
    assert_eq!(ready.hard_state, Some(HardState { term: 1, vote: Some(NodeId(1)), commit: 1 }));
    assert_eq!(ready.messages.len(), 2, "sent in parallel with the leader's own write (thesis §10.2.1)");
    assert!(ready.persisted_messages.is_empty());
    // Followers acknowledge before the leader's write finishes: the leader
    // commits with two followers, counting itself only once durable.
    for id in [2, 3] {
        raft.step(
            NodeId(id),
            Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: 2 }) },
        );
    }
    assert_eq!(raft.log().commit, 2);
    raft.advance(ready.number);
}

fn accepted(match_index: Index) -> Message {
    Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index }) }
}

#[test]
fn a_leader_applies_what_its_followers_committed_while_its_own_write_is_in_flight() {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let ready = raft.ready();
    assert!(raft.take_committed_early().is_empty(), "nothing is committed yet");
    raft.step(NodeId(2), accepted(2));
    assert!(raft.take_committed_early().is_empty(), "one follower without the leader is no quorum");
    raft.step(NodeId(3), accepted(2));
    let early = raft.take_committed_early();
    assert_eq!(early.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2], "both followers made the quorum");
    assert_eq!(early[0].payload, Payload::Command { client: None, data: Bytes::from_static(b"x") });
    assert!(raft.take_committed_early().is_empty(), "handed out once");
    raft.advance(ready.number);
    assert_eq!(raft.log().applied, 2);
    assert!(raft.take_committed_early().is_empty(), "everything committed is applied");
    raft.propose(Bytes::from_static(b"y"), None).unwrap();
    let ready = raft.ready();
    assert!(ready.committed_entries.is_empty(), "entry 2 is not handed out again");
    raft.advance(ready.number);
}

#[test]
fn a_leader_whose_driver_takes_no_batch_applies_what_its_followers_committed() {
    // As while a snapshot is saved: the appends leave without a batch
    // (`take_immediate_messages`), and the leader's own write waits.
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    assert_eq!(raft.take_immediate_messages().len(), 2);
    raft.step(NodeId(2), accepted(2));
    assert!(raft.take_committed_early().is_empty(), "one follower without the leader is no quorum");
    raft.step(NodeId(3), accepted(2));
    let early = raft.take_committed_early();
    assert_eq!(early.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2]);
    assert_eq!(raft.log().applied, 2);
    assert!(raft.take_committed_early().is_empty(), "handed out once");
    let ready = raft.ready();
    assert_eq!(
        ready.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![2],
        "still to be written here"
    );
    assert!(ready.committed_entries.is_empty(), "entry 2 is not handed out again");
    raft.advance(ready.number);
    assert_eq!(raft.log().applied, 2);
}

#[test]
fn nothing_is_applied_early_while_the_batchs_own_committed_entries_wait_for_its_write() {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    // The appends leave before the batch that writes entry 2, and both
    // followers acknowledge it first.
    assert_eq!(raft.take_immediate_messages().len(), 2);
    raft.step(NodeId(2), accepted(2));
    raft.step(NodeId(3), accepted(2));
    raft.propose(Bytes::from_static(b"y"), None).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.committed_entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2]);
    assert_eq!(ready.committed_entries_durable, 0, "entry 2 is in this batch's write");
    raft.step(NodeId(2), accepted(3));
    raft.step(NodeId(3), accepted(3));
    assert_eq!(raft.log().commit, 3);
    assert!(raft.take_committed_early().is_empty(), "entry 3 would be applied before entry 2");
    raft.advance(ready.number);
    let ready = raft.ready();
    assert_eq!(ready.committed_entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3]);
    raft.advance(ready.number);
}

#[test]
fn a_read_arriving_while_the_leaders_write_is_in_flight_is_confirmed_before_it_ends() {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let ready = raft.ready();
    raft.read_index(7).unwrap();
    let messages = raft.take_heartbeat_messages();
    let rounds: Vec<u64> = messages
        .iter()
        .filter_map(|(_, m)| match m.body {
            Body::Heartbeat { round, .. } => Some(round),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 2, "the read's round starts during the write: {messages:?}");
    assert!(raft.take_read_states().is_empty(), "not confirmed yet");
    raft.step(NodeId(2), Message { term: 1, body: Body::HeartbeatResponse { round: rounds[0] } });
    assert_eq!(
        raft.take_read_states(),
        vec![ReadState { id: 7, index: 1 }],
        "the leader and node 2 confirm it"
    );
    raft.advance(ready.number);
    let ready = raft.ready();
    assert!(ready.read_states.is_empty(), "taken once");
    raft.advance(ready.number);
}

#[test]
fn a_leader_busy_with_a_write_still_sends_heartbeats_and_new_entries() {
    let config = Config::default();
    let mut raft = leader(config.clone());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    // The first batch is being written (not advanced); a proposal and a
    // heartbeat interval later, the store is still busy.
    let first = raft.ready();
    raft.propose(Bytes::from_static(b"y"), None).unwrap();
    for _ in 0..config.heartbeat_ticks {
        raft.tick();
    }
    let messages = raft.take_immediate_messages();
    let appended: Vec<Index> = messages
        .iter()
        .filter_map(|(_, m)| match &m.body {
            Body::Append { entries, .. } => entries.last().map(|e| e.index),
            _ => None,
        })
        .collect();
    assert_eq!(appended, vec![3, 3], "the new entry goes to both followers: {messages:?}");
    let heartbeats = messages.iter().filter(|(_, m)| matches!(m.body, Body::Heartbeat { .. })).count();
    assert_eq!(heartbeats, 2, "{messages:?}");
    // Taken once: the next batch holds the entry to write, and nothing to resend.
    raft.advance(first.number);
    let next = raft.ready();
    assert_eq!(next.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3]);
    assert!(
        next.messages.iter().all(|(_, m)| !matches!(m.body, Body::Heartbeat { .. })),
        "{:?}",
        next.messages
    );
}

/// Node 1 as a follower of node 2 in term 1: entry 1 durable, the batch of
/// entry 2 handed out and not advanced (being written), then a heartbeat
/// (round 4) and entry 3 received. Returns the outstanding batch.
fn follower_writing_entry_2_with_a_heartbeat_and_entry_3_waiting() -> (Raft, Ready) {
    let mut raft = node(Config::default());
    let append = |prev: Index, index: Index| Message {
        term: 1,
        body: Body::Append {
            prev_index: prev,
            prev_term: if prev == 0 { 0 } else { 1 },
            entries: vec![Entry { term: 1, index, payload: Payload::Empty }],
            commit: 0,
        },
    };
    raft.step(NodeId(2), append(0, 1));
    let first = raft.ready(); // the term and entry 1 are being written
    raft.advance(first.number);
    raft.step(NodeId(2), append(1, 2));
    let second = raft.ready(); // entry 2 is being written: not advanced
    raft.step(NodeId(2), Message { term: 1, body: Body::Heartbeat { commit: 1, round: 4 } });
    raft.step(NodeId(2), append(2, 3));
    (raft, second)
}

#[test]
fn a_follower_busy_with_a_write_still_answers_heartbeats_but_not_appends() {
    let (mut raft, _second) = follower_writing_entry_2_with_a_heartbeat_and_entry_3_waiting();
    let messages = raft.take_immediate_messages();
    assert_eq!(
        messages.iter().map(|(to, m)| (*to, m.body.clone())).collect::<Vec<_>>(),
        vec![(NodeId(2), Body::HeartbeatResponse { round: 4 })],
        "the heartbeat is answered; entry 3 is acknowledged only once durable"
    );
}

#[test]
fn a_leader_busy_with_a_write_sends_heartbeats_but_keeps_its_appends_for_the_next_batch() {
    let config = Config::default();
    let mut raft = leader(config.clone());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let first = raft.ready(); // being written, not advanced
    raft.propose(Bytes::from_static(b"y"), None).unwrap();
    for _ in 0..config.heartbeat_ticks {
        raft.tick();
    }
    let messages = raft.take_heartbeat_messages();
    let to: Vec<NodeId> = messages.iter().map(|(to, _)| *to).collect();
    assert_eq!(to, vec![NodeId(2), NodeId(3)], "{messages:?}");
    assert!(messages.iter().all(|(_, m)| matches!(m.body, Body::Heartbeat { .. })), "{messages:?}");
    assert!(raft.take_heartbeat_messages().is_empty(), "taken once");
    raft.advance(first.number);
    let next = raft.ready();
    assert_eq!(next.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3]);
    let appended: Vec<Index> = next
        .messages
        .iter()
        .filter_map(|(_, m)| match &m.body {
            Body::Append { entries, .. } => entries.last().map(|e| e.index),
            _ => None,
        })
        .collect();
    assert_eq!(appended, vec![3, 3], "the entry goes with the next batch: {:?}", next.messages);
}

#[test]
fn a_follower_busy_with_a_write_answers_heartbeats_of_its_durable_term_only() {
    let (mut raft, second) = follower_writing_entry_2_with_a_heartbeat_and_entry_3_waiting();
    assert_eq!(
        raft.take_heartbeat_messages().into_iter().map(|(to, m)| (to, m.body)).collect::<Vec<_>>(),
        vec![(NodeId(2), Body::HeartbeatResponse { round: 4 })],
        "entry 3 is acknowledged only once durable"
    );
    // A leader of a newer term: its term is not durable while the batch is
    // written, so the answer waits for the next batch.
    raft.step(NodeId(3), Message { term: 2, body: Body::Heartbeat { commit: 1, round: 1 } });
    assert!(raft.take_heartbeat_messages().is_empty(), "term 2 is not durable yet");
    raft.advance(second.number);
    let next = raft.ready();
    assert_eq!(next.hard_state.map(|h| h.term), Some(2));
    assert!(
        next.persisted_messages
            .iter()
            .any(|(to, m)| *to == NodeId(3) && m.body == Body::HeartbeatResponse { round: 1 }),
        "{:?}",
        next.persisted_messages
    );
}

#[test]
fn nothing_leaves_early_while_a_term_or_vote_waits_to_be_durable() {
    let mut raft = node(Config::default());
    raft.trigger_election().unwrap();
    assert!(raft.take_immediate_messages().is_empty(), "the vote is not durable yet");
    let ready = raft.ready();
    assert!(raft.take_immediate_messages().is_empty(), "the vote is being written");
    assert_eq!(ready.persisted_messages.len(), 2, "the vote requests leave after the write");
    raft.advance(ready.number);
}

#[test]
fn a_leader_counts_itself_only_after_its_write_is_durable() {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let ready = raft.ready();
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: 2 }) },
    );
    assert_eq!(raft.log().commit, 1, "one follower is not a majority without the leader's durable copy");
    raft.advance(ready.number);
    assert_eq!(raft.log().commit, 2);
}

#[test]
#[should_panic(expected = "ready() called before advance()")]
fn a_second_ready_before_advance_is_a_broken_contract() {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let _first = raft.ready();
    let _second = raft.ready();
}

#[test]
fn the_inflight_window_bounds_messages_per_follower() {
    let config = Config { batch_size: 1, inflight_messages_max: 4, ..Config::default() };
    let mut raft = leader(config);
    for _ in 0..10 {
        raft.propose(Bytes::from_static(b"x"), None).unwrap();
    }
    let ready = raft.ready();
    let to_two = ready.messages.iter().filter(|(to, _)| *to == NodeId(2)).count();
    assert_eq!(to_two, 4);
    assert_eq!(raft.progress()[&NodeId(2)].inflight_messages(), 4);
    raft.advance(ready.number);
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: 3 }) },
    );
    let ready = raft.ready();
    let to_two = ready.messages.iter().filter(|(to, _)| *to == NodeId(2)).count();
    assert_eq!(to_two, 2, "two acknowledged, two more may go");
}

#[test]
fn the_inflight_window_bounds_bytes_per_follower() {
    let config = Config { batch_size: 1, inflight_bytes_max: 3 * 1024, ..Config::default() };
    let mut raft = leader(config);
    for _ in 0..10 {
        raft.propose(Bytes::from(vec![0u8; 1024]), None).unwrap();
    }
    let ready = raft.ready();
    let to_two = ready.messages.iter().filter(|(to, _)| *to == NodeId(2)).count();
    assert_eq!(to_two, 3, "the third message crosses the byte bound, the fourth waits");
}

#[test]
fn proposals_are_batched_up_to_batch_size() {
    let config = Config { batch_size: 4, ..Config::default() };
    let mut raft = leader(config);
    for _ in 0..10 {
        raft.propose(Bytes::from_static(b"x"), None).unwrap();
    }
    let ready = raft.ready();
    let sizes: Vec<usize> = ready
        .messages
        .iter()
        .filter(|(to, _)| *to == NodeId(2))
        .map(|(_, m)| match &m.body {
            Body::Append { entries, .. } => entries.len(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![4, 4, 2]);
}

#[test]
fn a_conflict_term_hint_moves_next_index_past_the_whole_term() {
    let mut raft = leader(Config::default());
    for _ in 0..10 {
        raft.propose(Bytes::from_static(b"x"), None).unwrap();
    }
    let ready = raft.ready();
    raft.advance(ready.number);
    // Follower 3 has a long run of a term the leader never had.
    let outcome = AppendOutcome::Rejected { rejected_index: 11, conflict_term: Some(9), conflict_index: 2 };
    raft.step(NodeId(3), Message { term: 1, body: Body::AppendResponse(outcome) });
    let p = &raft.progress()[&NodeId(3)];
    assert_eq!((p.next_index, p.state), (2, ProgressState::Probe));
}

#[test]
fn a_full_log_refuses_proposals_with_a_typed_error() {
    let config = Config { snapshot_threshold_entries: 2, max_log_entries: 4, ..Config::default() };
    let mut raft = leader(config);
    for _ in 0..3 {
        raft.propose(Bytes::from_static(b"x"), None).unwrap();
    }
    assert_eq!(
        raft.propose(Bytes::from_static(b"x"), None),
        Err(RequestError::LogFull { entries: 4, max: 4 })
    );
}

#[test]
fn a_log_at_max_log_bytes_refuses_proposals_with_a_typed_error() {
    // The no-op takes 32 bytes (its header), each 100-byte command 132.
    let config = Config { max_log_bytes: 32 + 3 * 132, batch_bytes_max: 100, ..Config::default() };
    let mut raft = leader(config);
    for _ in 0..3 {
        raft.propose(Bytes::from(vec![1u8; 100]), None).unwrap();
    }
    assert_eq!(raft.log().bytes(), 428);
    assert_eq!(
        raft.propose(Bytes::from(vec![1u8; 100]), None),
        Err(RequestError::LogBytesFull { bytes: 428, size: 132, max: 428 })
    );
    assert_eq!(raft.propose_empty(), Err(RequestError::LogBytesFull { bytes: 428, size: 32, max: 428 }));
    assert_eq!(raft.log().len(), 4, "nothing refused was appended");
}

#[test]
fn max_log_bytes_below_the_largest_command_is_refused() {
    let config = Config { max_log_bytes: 1_000, batch_bytes_max: 1_001, ..Config::default() };
    assert!(matches!(
        config.validate(),
        Err(crate::error::ConfigError::Setting { name: "max_log_bytes", .. })
    ));
}

#[test]
fn followers_refuse_proposals_naming_the_leader() {
    let mut raft = node(Config::default());
    raft.step(NodeId(2), Message { term: 1, body: Body::Heartbeat { commit: 0, round: 1 } });
    assert_eq!(
        raft.propose(Bytes::from_static(b"x"), None),
        Err(RequestError::NotLeader { leader: Some(NodeId(2)) })
    );
}

#[test]
fn election_timeouts_are_randomized_within_the_configured_range() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let mut raft = Raft::new(NodeId(1), Config::default(), three(), seed).unwrap();
        let mut ticks = 0;
        while raft.role() == Role::Follower {
            raft.tick();
            ticks += 1;
        }
        assert!((15..30).contains(&ticks), "{ticks}");
        seen.insert(ticks);
    }
    assert!(seen.len() > 5, "timeouts spread: {seen:?}");
}

#[test]
fn failed_elections_widen_the_timeout_range() {
    let mut raft = node(Config::default());
    let mut gaps = Vec::new();
    let mut last_campaign = 0;
    let mut term_before = raft.term();
    // Nobody answers: every election fails and the node tries again.
    for tick in 1..=2_000u64 {
        raft.tick();
        let ready = raft.ready();
        let campaigned =
            ready.persisted_messages.iter().any(|(_, m)| matches!(m.body, Body::VoteRequest { .. }));
        raft.advance(ready.number);
        if campaigned || raft.term() != term_before {
            gaps.push(tick - last_campaign);
            last_campaign = tick;
            term_before = raft.term();
        }
    }
    assert!(gaps.len() > 10, "{gaps:?}");
    assert!(gaps.iter().skip(5).any(|&gap| gap >= 30), "backoff draws beyond election_ticks_max: {gaps:?}");
    assert!(gaps.iter().all(|&gap| gap >= 15), "never below election_ticks_min: {gaps:?}");
    assert_eq!(raft.term(), 0, "pre-votes that fail leave the term alone");
}

#[test]
fn read_round_bookkeeping_stays_bounded_when_followers_are_silent() {
    // Without check-quorum the leader keeps leading a silent cluster.
    let mut raft = leader(Config { check_quorum: false, ..Config::default() });
    for _ in 0..10_000 {
        raft.tick();
        let ready = raft.ready();
        raft.advance(ready.number);
    }
    assert_eq!(raft.role(), Role::Leader);
    let window = (Config::default().election_ticks_min / Config::default().heartbeat_ticks + 1) as usize;
    assert!(raft.round_sent_tick.len() <= window, "{} rounds remembered", raft.round_sent_tick.len());
}

#[test]
fn a_malformed_append_is_refused_without_touching_the_log() {
    let mut raft = node(Config::default());
    let gap = vec![Entry { term: 1, index: 5, payload: Payload::Empty }];
    let bad =
        Message { term: 1, body: Body::Append { prev_index: 0, prev_term: 0, entries: gap, commit: 5 } };
    raft.step(NodeId(2), bad);
    assert_eq!((raft.log().last_index(), raft.log().commit, raft.term()), (0, 0, 0));
    let future_term = vec![Entry { term: 9, index: 1, payload: Payload::Empty }];
    let bad = Message {
        term: 1,
        body: Body::Append { prev_index: 0, prev_term: 0, entries: future_term, commit: 0 },
    };
    raft.step(NodeId(2), bad);
    assert_eq!(raft.log().last_index(), 0);
}

/// A leader that proposed `x` (entry 2), wrote it, and got node 2's
/// acknowledgement of it: entry 2 is committed, the commit not yet written.
fn leader_with_x_written_and_acknowledged() -> Raft {
    let mut raft = leader(Config::default());
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
    let ready = raft.ready();
    raft.advance(ready.number);
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: 2 }) },
    );
    raft
}

#[test]
fn a_commit_index_alone_is_never_a_write_and_rides_with_the_next_entries() {
    let mut raft = leader_with_x_written_and_acknowledged();
    assert_eq!(raft.log().commit, 2);
    let ready = raft.ready();
    assert_eq!(ready.hard_state, None, "a commit alone does not cost an fsync before applying");
    assert!(ready.entries.is_empty());
    assert_eq!(ready.committed_entries.len(), 1);
    raft.advance(ready.number);
    assert!(!raft.has_ready(), "an unwritten commit index is not pending work");
    raft.propose(Bytes::from_static(b"y"), None).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.hard_state.map(|h| h.commit), Some(2), "written with the next entries");
}

#[test]
fn a_leaders_committed_entries_are_durable_and_applied_before_its_next_write() {
    let mut raft = leader_with_x_written_and_acknowledged();
    raft.propose(Bytes::from_static(b"y"), None).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 1, "entry 3 is being written");
    assert_eq!(ready.committed_entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2]);
    assert_eq!(ready.committed_entries_durable, 1, "entry 2 was written by an earlier batch");
}

#[test]
fn a_followers_entries_committed_in_the_same_append_wait_for_their_write() {
    let mut raft = node(Config::default());
    let entries = vec![
        Entry { term: 1, index: 1, payload: Payload::Empty },
        Entry {
            term: 1,
            index: 2,
            payload: Payload::Command { client: None, data: Bytes::from_static(b"x") },
        },
    ];
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::Append { prev_index: 0, prev_term: 0, entries, commit: 2 } },
    );
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 2);
    assert_eq!(ready.committed_entries.len(), 2);
    assert_eq!(ready.committed_entries_durable, 0, "not durable here yet: applied only after the write");
    assert_eq!(ready.hard_state.map(|h| h.commit), Some(2));
    assert!(raft.take_committed_early().is_empty(), "a follower applies nothing before its write");
}

#[test]
fn an_empty_proposal_appends_an_empty_entry_of_the_leaders_term() {
    let mut raft = leader(Config::default());
    let (index, term) = raft.propose_empty().unwrap();
    assert_eq!((index, term), (2, 1));
    let ready = raft.ready();
    assert_eq!(ready.entries, vec![Entry { term: 1, index: 2, payload: Payload::Empty }]);
    let mut follower = node(Config::default());
    assert_eq!(follower.propose_empty(), Err(RequestError::NotLeader { leader: None }));
}

/// Node `id` of three, following leader 1 of term 1 (heard at tick 0).
fn follower_of_1(id: u64, config: Config, seed: u64) -> Raft {
    let mut raft = Raft::new(NodeId(id), config, three(), seed).unwrap();
    raft.step(NodeId(1), Message { term: 1, body: Body::Heartbeat { commit: 0, round: 0 } });
    assert_eq!((raft.role(), raft.leader()), (Role::Follower, Some(NodeId(1))));
    raft
}

/// Ticks until the node campaigns; returns the ticks taken.
fn ticks_to_campaign(raft: &mut Raft) -> u64 {
    let mut ticks = 0;
    while raft.role() == Role::Follower {
        raft.tick();
        ticks += 1;
        assert!(ticks < 1_000, "never campaigned");
    }
    ticks
}

#[test]
fn followers_whose_leader_is_down_campaign_when_their_lease_ends_in_id_order() {
    let min = Config::default().election_ticks_min;
    for seed in 0..20 {
        let mut turns = Vec::new();
        for id in [2, 3] {
            let mut raft = follower_of_1(id, Config::default(), seed);
            raft.peer_down(NodeId(1));
            turns.push(ticks_to_campaign(&mut raft));
            assert_eq!(raft.role(), Role::PreCandidate, "still asks the others first");
        }
        // Never inside the lease promised to the leader; then one at a time.
        assert_eq!(
            turns,
            vec![min + LEADER_DOWN_MARGIN_TICKS, min + LEADER_DOWN_MARGIN_TICKS + LEADER_DOWN_TURN_TICKS]
        );
    }
}

#[test]
fn a_report_on_another_node_or_with_the_setting_off_leaves_the_timeout_random() {
    let (min, max) = (Config::default().election_ticks_min, Config::default().election_ticks_max);
    let off = Config { elect_on_leader_down: false, ..Config::default() };
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..30 {
        let mut other = follower_of_1(2, Config::default(), seed);
        other.peer_down(NodeId(3));
        let mut disabled = follower_of_1(2, off.clone(), seed);
        disabled.peer_down(NodeId(1));
        for raft in [&mut other, &mut disabled] {
            let ticks = ticks_to_campaign(raft);
            assert!((min..max).contains(&ticks), "{ticks}");
            seen.insert(ticks);
        }
    }
    assert!(seen.len() > 5, "still randomized: {seen:?}");
}

#[test]
fn hearing_from_the_leader_again_cancels_the_early_campaign() {
    let min = Config::default().election_ticks_min;
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..30 {
        let mut raft = follower_of_1(2, Config::default(), seed);
        raft.peer_down(NodeId(1));
        for _ in 0..10 {
            raft.tick();
        }
        // The leader was alive after all.
        raft.step(NodeId(1), Message { term: 1, body: Body::Heartbeat { commit: 0, round: 0 } });
        let ticks = ticks_to_campaign(&mut raft);
        assert!(ticks >= min, "a full timeout from the last contact: {ticks}");
        seen.insert(ticks);
    }
    assert!(seen.len() > 5, "randomized again: {seen:?}");
}

#[test]
fn the_winner_records_what_started_its_campaign() {
    for (report, trigger) in [(true, ElectionTrigger::LeaderDown), (false, ElectionTrigger::Timeout)] {
        let mut raft = follower_of_1(2, Config::default(), 3);
        if report {
            raft.peer_down(NodeId(1));
        }
        ticks_to_campaign(&mut raft);
        let ready = raft.ready();
        raft.advance(ready.number);
        raft.step(NodeId(3), Message { term: 2, body: Body::VoteResponse { pre_vote: true, granted: true } });
        let ready = raft.ready();
        raft.advance(ready.number);
        raft.step(
            NodeId(3),
            Message { term: 2, body: Body::VoteResponse { pre_vote: false, granted: true } },
        );
        assert_eq!(raft.role(), Role::Leader);
        let record = raft.election_history().last().unwrap();
        assert_eq!((record.old_leader, record.trigger), (Some(NodeId(1)), trigger));
    }
}

/// The log's byte count recounted from scratch, entry by entry.
fn recount_bytes(raft: &Raft) -> u64 {
    let log = raft.log();
    (log.first_index()..=log.last_index())
        .map(|index| log.entry(index).map_or(0, |e| e.size_bytes() as u64))
        .sum()
}

/// Persists what is pending, has both followers acknowledge everything the
/// leader holds, and applies it.
fn commit_and_apply(raft: &mut Raft) {
    let last = raft.log().last_index();
    let ready = raft.ready();
    raft.advance(ready.number);
    for id in [2, 3] {
        raft.step(
            NodeId(id),
            Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: last }) },
        );
    }
    while raft.has_ready() {
        let ready = raft.ready();
        raft.advance(ready.number);
    }
    assert_eq!(raft.log().applied, last);
}

/// Proposes and applies one command of `size` bytes.
fn put(raft: &mut Raft, size: usize) {
    raft.propose(Bytes::from(vec![7u8; size]), None).unwrap();
    commit_and_apply(raft);
}

fn command(term: Term, index: Index, size: usize) -> Entry {
    Entry { term, index, payload: Payload::Command { client: None, data: Bytes::from(vec![1u8; size]) } }
}

#[test]
fn a_small_state_snapshots_at_the_entry_threshold() {
    let mut raft =
        leader(Config { snapshot_threshold_entries: 10, max_log_entries: 100, ..Config::default() });
    // Applied: the no-op (1) and 8 commands; the bootstrap snapshot is empty.
    for _ in 0..8 {
        put(&mut raft, 1);
    }
    assert!(!raft.snapshot_due(), "9 entries applied, 10 needed");
    put(&mut raft, 1);
    assert!(raft.snapshot_due());
    let snapshot = raft.snapshot_taken(10, Bytes::from_static(b"small"));
    assert_eq!((snapshot.meta.index, raft.log().len(), raft.log().bytes()), (10, 0, 0));
    // The compacted entries go to the driver, to be freed off its loop.
    let compacted: Vec<Index> = raft.take_compacted().iter().map(|e| e.index).collect();
    assert_eq!(compacted, (1..=10).collect::<Vec<_>>());
    assert!(raft.take_compacted().is_empty(), "taken once");
    // So does the data of the snapshot it replaced (the bootstrap one).
    assert_eq!(raft.take_replaced_snapshot(), Some(Bytes::new()));
    assert_eq!(raft.take_replaced_snapshot(), None, "taken once");
    for _ in 0..9 {
        put(&mut raft, 1);
    }
    assert!(!raft.snapshot_due(), "the entry threshold holds for a small state too");
    put(&mut raft, 1);
    assert!(raft.snapshot_due(), "10 entries of 33 bytes outweigh a 5-byte snapshot");
}

#[test]
fn a_large_state_defers_its_snapshot_until_the_log_holds_as_many_bytes() {
    let mut raft =
        leader(Config { snapshot_threshold_entries: 10, max_log_entries: 1_000, ..Config::default() });
    for _ in 0..9 {
        put(&mut raft, 1);
    }
    raft.snapshot_taken(10, Bytes::from(vec![0u8; 10_000]));
    let mut entries = 0;
    while raft.log().bytes() * 100 < 10_000 * snapshot::SNAPSHOT_LOG_BYTES_PERCENT {
        assert!(!raft.snapshot_due(), "due after {entries} entries of {} bytes", raft.log().bytes());
        put(&mut raft, 100);
        entries += 1;
    }
    // 132 bytes an entry (100 of data, 32 of header): 76 entries reach 10,000.
    assert_eq!((entries, raft.log().bytes()), (76, 76 * 132));
    assert!(raft.snapshot_due());
}

#[test]
fn a_log_near_max_log_entries_forces_a_snapshot_of_even_a_huge_state() {
    let config = Config { snapshot_threshold_entries: 10, max_log_entries: 100, ..Config::default() };
    let margin = config.max_log_entries.div_ceil(snapshot::SNAPSHOT_LOG_FULL_MARGIN_DIVISOR);
    let mut raft = leader(config);
    for _ in 0..9 {
        put(&mut raft, 1);
    }
    raft.snapshot_taken(10, Bytes::from(vec![0u8; 1 << 20]));
    while raft.log().len() + margin < 100 {
        assert!(!raft.snapshot_due(), "due at {} entries", raft.log().len());
        put(&mut raft, 1);
    }
    assert_eq!(raft.log().len(), 90);
    assert!(raft.snapshot_due(), "a snapshot is due with the margin still free");
    // The margin is room for the proposals accepted while it is built.
    for _ in 0..margin {
        raft.propose(Bytes::from_static(b"x"), None).unwrap();
    }
    let applied = raft.log().applied;
    raft.snapshot_taken(applied, Bytes::from(vec![0u8; 1 << 20]));
    assert_eq!(raft.log().len(), margin);
    raft.propose(Bytes::from_static(b"x"), None).unwrap();
}

/// A leader whose log may hold 10,000 bytes, with an entry threshold far
/// above what fits in them.
fn leader_with_10_kb_of_log() -> Raft {
    leader(Config {
        snapshot_threshold_entries: 1_000,
        max_log_entries: 10_000,
        max_log_bytes: 10_000,
        batch_bytes_max: 1_000,
        ..Config::default()
    })
}

#[test]
fn a_log_near_max_log_bytes_makes_a_snapshot_due_before_the_entry_threshold() {
    let mut raft = leader_with_10_kb_of_log();
    let margin = 10_000u64.div_ceil(snapshot::SNAPSHOT_LOG_FULL_MARGIN_DIVISOR);
    while raft.log().bytes() + margin < 10_000 {
        assert!(!raft.snapshot_due(), "due at {} bytes", raft.log().bytes());
        put(&mut raft, 968); // 1,000 bytes with the header
    }
    // The no-op and 9 commands: 9,032 bytes, 10 entries of the 1,000 the
    // entry threshold asks for.
    assert_eq!((raft.log().len(), raft.log().bytes()), (10, 9_032));
    assert!(raft.snapshot_due());
    let applied = raft.log().applied;
    raft.snapshot_taken(applied, Bytes::from_static(b"state"));
    assert_eq!(raft.log().bytes(), 0);
    assert!(!raft.snapshot_due());
    // The margin is room for the proposals accepted while it is built.
    for _ in 0..9 {
        put(&mut raft, 968);
    }
    assert!(raft.snapshot_due());
    raft.propose(Bytes::from(vec![1u8; 968]), None).unwrap();
}

#[test]
fn a_log_full_of_entries_not_yet_applied_asks_for_no_snapshot_until_half_are() {
    let mut raft = leader_with_10_kb_of_log();
    put(&mut raft, 968);
    put(&mut raft, 968);
    // 7 more that no quorum acknowledges: 3 of the 10 entries are applied.
    for _ in 0..7 {
        raft.propose(Bytes::from(vec![1u8; 968]), None).unwrap();
    }
    assert_eq!((raft.log().len(), raft.log().applied, raft.log().bytes()), (10, 3, 9_032));
    assert!(!raft.snapshot_due(), "a snapshot of 3 applied entries would free a third of the log");
    commit_and_apply(&mut raft);
    assert!(raft.snapshot_due(), "all 10 applied");
}

#[test]
fn the_log_byte_count_stays_exact_across_truncation_compaction_install_and_restart() {
    let mut raft = node(Config::default());
    let check = |raft: &Raft, expected: u64| {
        assert_eq!(raft.log().bytes(), recount_bytes(raft));
        assert_eq!(raft.log().bytes(), expected);
    };
    let append = |raft: &mut Raft, term: Term, prev: (Index, Term), entries: Vec<Entry>, commit: Index| {
        let (prev_index, prev_term) = prev;
        raft.step(NodeId(2), Message { term, body: Body::Append { prev_index, prev_term, entries, commit } });
        while raft.has_ready() {
            let ready = raft.ready();
            raft.advance(ready.number);
        }
    };
    // Entries 1-5 of term 1 (sizes 32 + 0, 10, 20, 30, 40); 2 committed.
    let first = vec![
        Entry { term: 1, index: 1, payload: Payload::Empty },
        command(1, 2, 10),
        command(1, 3, 20),
        command(1, 4, 30),
        command(1, 5, 40),
    ];
    append(&mut raft, 1, (0, 0), first, 2);
    check(&raft, 5 * 32 + 100);
    // A leader of term 2 replaces 4-5 with a 7-byte entry 4.
    append(&mut raft, 2, (3, 1), vec![command(2, 4, 7)], 2);
    assert_eq!(raft.log().last_index(), 4);
    check(&raft, 4 * 32 + 37);
    // Duplicates change nothing.
    append(&mut raft, 2, (1, 1), vec![command(1, 2, 10), command(1, 3, 20)], 2);
    check(&raft, 4 * 32 + 37);
    // Compaction through the applied entry 2.
    assert_eq!(raft.log().applied, 2);
    raft.snapshot_taken(2, Bytes::from_static(b"state"));
    check(&raft, 2 * 32 + 27);
    // A snapshot the log agrees with keeps the suffix after it.
    let membership = Membership::with_voters([1, 2, 3].map(NodeId));
    let install = |raft: &mut Raft, index: Index, term: Term| {
        let meta = SnapshotMeta { index, term, membership: membership.clone() };
        let chunk = Bytes::from_static(b"image");
        let body = Body::Snapshot { meta, offset: 0, total_bytes: chunk.len() as u64, chunk };
        raft.step(NodeId(2), Message { term: 2, body });
        while raft.has_ready() {
            let ready = raft.ready();
            raft.advance(ready.number);
        }
    };
    install(&mut raft, 3, 1);
    assert_eq!(raft.log().snapshot().index, 3);
    check(&raft, 32 + 7);
    // More entries, then a snapshot the log disagrees with: it empties the log.
    append(&mut raft, 2, (4, 2), vec![command(2, 5, 50), command(2, 6, 60)], 4);
    check(&raft, 3 * 32 + 117);
    // A snapshot past the log's end (so not agreeing with it) empties the log.
    install(&mut raft, 7, 2);
    assert_eq!(raft.log().snapshot().index, 7);
    check(&raft, 0);
    // The received snapshot's data it replaced goes to the driver, to be
    // freed off its loop.
    assert_eq!(raft.take_replaced_snapshot(), Some(Bytes::from_static(b"image")));
    // A restart counts the recovered entries.
    let recovered = Recovered {
        hard_state: raft.hard_state(),
        snapshot: raft.snapshot().clone(),
        entries: vec![command(2, 8, 80), command(2, 9, 90)],
        applied: 7,
    };
    let restarted = Raft::new(NodeId(1), Config::default(), recovered, 7).unwrap();
    assert_eq!(restarted.log().last_index(), 9);
    check(&restarted, 2 * 32 + 170);
}

/// Entries `from..=to` of term 1, each a one-byte command.
fn commands(from: Index, to: Index) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Payload::Command { client: None, data: Bytes::from_static(b"x") },
        })
        .collect()
}

/// Node 1, a follower of node 2 in term 1, takes an append and writes it;
/// returns the outcome it answered.
fn append_to_follower(
    raft: &mut Raft,
    prev_index: Index,
    entries: Vec<Entry>,
    commit: Index,
) -> AppendOutcome {
    let prev_term = raft.log().term(prev_index).unwrap();
    raft.step(NodeId(2), Message { term: 1, body: Body::Append { prev_index, prev_term, entries, commit } });
    append_answer(raft)
}

/// Takes and acknowledges the next batch; the one answer to an append in it.
fn append_answer(raft: &mut Raft) -> AppendOutcome {
    let ready = raft.ready();
    raft.advance(ready.number);
    let answers: Vec<AppendOutcome> = ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .filter_map(|(_, m)| match m.body {
            Body::AppendResponse(outcome) => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 1, "one answer per append: {answers:?}");
    answers[0]
}

#[test]
fn a_follower_at_max_log_entries_takes_only_what_fits_while_its_snapshot_is_due() {
    let config = Config { snapshot_threshold_entries: 4, max_log_entries: 10, ..Config::default() };
    let mut raft = node(config);
    assert_eq!(
        append_to_follower(&mut raft, 0, commands(1, 8), 8),
        AppendOutcome::Accepted { match_index: 8 }
    );
    assert_eq!(raft.log().applied, 8);
    assert!(raft.snapshot_due(), "8 entries applied, the threshold is 4");
    // Its snapshot lags: of 6 more entries, 2 fit.
    assert_eq!(append_to_follower(&mut raft, 8, commands(9, 14), 8), AppendOutcome::Full { match_index: 10 });
    assert_eq!((raft.log().len(), raft.log().last_index()), (10, 10));
    assert_eq!(raft.appends_refused_full(), 1);
    // A resent append of entries it holds changes nothing and is answered as before.
    assert_eq!(append_to_follower(&mut raft, 8, commands(9, 14), 8), AppendOutcome::Full { match_index: 10 });
    // Once the snapshot compacts the log, the rest is taken.
    raft.snapshot_taken(8, Bytes::from_static(b"state"));
    assert_eq!(
        append_to_follower(&mut raft, 10, commands(11, 14), 8),
        AppendOutcome::Accepted { match_index: 14 }
    );
    assert_eq!(raft.log().len(), 6);
}

#[test]
fn a_follower_at_max_log_bytes_takes_only_what_fits_while_its_snapshot_is_due() {
    // Each one-byte command counts 33 bytes (its header estimate and payload).
    let size = commands(1, 1)[0].size_bytes() as u64;
    let config = Config {
        snapshot_threshold_entries: 4,
        max_log_bytes: 10 * size,
        batch_bytes_max: 1,
        ..Config::default()
    };
    let mut raft = node(config);
    assert_eq!(
        append_to_follower(&mut raft, 0, commands(1, 9), 9),
        AppendOutcome::Accepted { match_index: 9 }
    );
    assert!(raft.snapshot_due());
    assert_eq!(
        append_to_follower(&mut raft, 9, commands(10, 12), 9),
        AppendOutcome::Full { match_index: 10 }
    );
    assert_eq!(raft.log().bytes(), 10 * size);
}

#[test]
fn a_follower_whose_log_is_full_of_entries_it_cannot_compact_takes_entries_past_the_bound() {
    // Nothing is committed, so no snapshot would ever make room: refusing
    // could leave the cluster without the quorum that commits them.
    let config = Config { snapshot_threshold_entries: 4, max_log_entries: 10, ..Config::default() };
    let mut raft = node(config);
    assert_eq!(
        append_to_follower(&mut raft, 0, commands(1, 12), 0),
        AppendOutcome::Accepted { match_index: 12 }
    );
    assert!(!raft.snapshot_due());
    assert_eq!(raft.log().len(), 12);
    assert_eq!(raft.appends_refused_full(), 0);
}

#[test]
fn a_conflicting_suffix_of_a_full_follower_is_replaced_within_the_bound() {
    let config = Config { snapshot_threshold_entries: 2, max_log_entries: 6, ..Config::default() };
    let mut raft = node(config);
    assert_eq!(
        append_to_follower(&mut raft, 0, commands(1, 6), 3),
        AppendOutcome::Accepted { match_index: 6 }
    );
    assert!(raft.snapshot_due());
    // A leader of term 2 holds other entries from 5 on: they replace 5 and
    // 6, and its entry 7 finds no room.
    raft.step(NodeId(3), Message { term: 2, body: Body::Heartbeat { commit: 0, round: 1 } });
    let ready = raft.ready();
    raft.advance(ready.number);
    let newer: Vec<Entry> = (5..=7).map(|index| Entry { term: 2, index, payload: Payload::Empty }).collect();
    raft.step(
        NodeId(3),
        Message { term: 2, body: Body::Append { prev_index: 4, prev_term: 1, entries: newer, commit: 3 } },
    );
    assert_eq!(append_answer(&mut raft), AppendOutcome::Full { match_index: 6 });
    assert_eq!((raft.log().term(5), raft.log().term(6), raft.log().last_index()), (Some(2), Some(2), 6));
}

#[test]
fn a_leader_told_a_follower_is_full_probes_it_again_only_after_a_heartbeat() {
    let config = Config { batch_size: 2, ..Config::default() };
    let mut raft = leader(config);
    for _ in 0..6 {
        raft.propose(Bytes::from_static(b"x"), None).unwrap();
    }
    let ready = raft.ready();
    raft.advance(ready.number);
    let to_two = |ready: &Ready| {
        ready
            .messages
            .iter()
            .filter(|(to, m)| *to == NodeId(2) && matches!(m.body, Body::Append { .. }))
            .count()
    };
    assert_eq!(to_two(&ready), 3, "entries 2-7 in appends of two");
    // Node 2 took entry 2 only.
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::AppendResponse(AppendOutcome::Full { match_index: 2 }) },
    );
    let p = &raft.progress()[&NodeId(2)];
    assert_eq!((p.match_index, p.next_index, p.state, p.paused), (2, 3, ProgressState::Probe, true));
    // Its rejections of the appends it dropped are stale.
    let stale = AppendOutcome::Rejected { rejected_index: 3, conflict_term: None, conflict_index: 3 };
    raft.step(NodeId(2), Message { term: 1, body: Body::AppendResponse(stale) });
    let ready = raft.ready();
    raft.advance(ready.number);
    assert_eq!(to_two(&ready), 0, "nothing is sent to a full follower before a heartbeat");
    while raft.progress()[&NodeId(2)].paused {
        raft.tick();
    }
    let ready = raft.ready();
    assert_eq!(to_two(&ready), 1, "one probe after the heartbeat");
    // A stale Full answer after it took more is ignored.
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::AppendResponse(AppendOutcome::Accepted { match_index: 4 }) },
    );
    raft.step(
        NodeId(2),
        Message { term: 1, body: Body::AppendResponse(AppendOutcome::Full { match_index: 2 }) },
    );
    assert_eq!(raft.progress()[&NodeId(2)].state, ProgressState::Replicate);
}

#[test]
fn a_full_follower_counts_the_commit_its_append_brings_before_taking_entries_past_the_bound() {
    let config = Config { snapshot_threshold_entries: 4, max_log_entries: 10, ..Config::default() };
    let mut raft = node(config);
    assert_eq!(
        append_to_follower(&mut raft, 0, commands(1, 10), 0),
        AppendOutcome::Accepted { match_index: 10 }
    );
    assert!(!raft.snapshot_due(), "nothing is committed yet");
    // The next append tells it 1-10 are committed: a snapshot will be due
    // once they are applied, so it takes nothing past the bound.
    assert_eq!(
        append_to_follower(&mut raft, 10, commands(11, 12), 10),
        AppendOutcome::Full { match_index: 10 }
    );
    assert_eq!((raft.log().len(), raft.log().commit, raft.log().applied), (10, 10, 10));
    assert!(raft.snapshot_due());
}

/// Committed entries are handed out in batches of at most
/// `apply_bytes_max` bytes; an entry larger than that goes alone.
#[test]
fn committed_entries_are_handed_out_in_batches_bounded_by_their_bytes() {
    let entry_bytes = crate::core::types::ENTRY_HEADER_BYTES + 100;
    let mut raft = leader(Config { apply_bytes_max: 2 * entry_bytes, ..Config::default() });
    for size in [100, 100, 100, 100, 100, 1_000, 100] {
        raft.propose(Bytes::from(vec![0u8; size]), None).unwrap();
    }
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 7);
    raft.advance(ready.number);
    raft.step(NodeId(2), accepted(8));
    assert_eq!(raft.log().commit, 8);
    let mut batches = Vec::new();
    for _ in 0..10 {
        let ready = raft.ready();
        if !ready.committed_entries.is_empty() {
            batches.push(ready.committed_entries.iter().map(|e| e.index).collect::<Vec<_>>());
        }
        raft.advance(ready.number);
    }
    assert_eq!(batches, [vec![2, 3], vec![4, 5], vec![6], vec![7], vec![8]]);
    assert_eq!(raft.log().applied, 8);
}
