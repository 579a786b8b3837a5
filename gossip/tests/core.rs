//! The pure core's outputs, asserted exactly where they are small.

use concord_gossip::core::merkle::version_hash;
use concord_gossip::sim::{alive, formed_cluster, steady_state_bytes_per_second, SimGossipNode, TICK_MS};
use concord_gossip::wire::{encoded_len, Exchange, GossipWire};
use concord_gossip::{
    Event, GossipConfig, GossipCore, GossipError, MemberMeta, MemberStatus, Message, Mode, Operation, Output,
    ReadValue,
};
use concord_transport::sim::{SimConfig, Simulation};
use concord_transport::NodeId;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn core(config: GossipConfig, members: u64) -> GossipCore {
    let mut core = GossipCore::new(NodeId(1), MemberMeta::default(), config, StdRng::seed_from_u64(1));
    core.add_members((2..=members).map(|i| alive(NodeId(i))));
    core.take_output();
    core
}

fn gossip(messages: &[(NodeId, Message)]) -> Vec<(NodeId, &Exchange)> {
    messages
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Gossip(exchange) => Some((*to, exchange)),
            _ => None,
        })
        .collect()
}

fn assign(value: &[u8]) -> Operation {
    Operation::Assign { value: value.to_vec(), timestamp: 1 }
}

#[test]
fn a_push_pull_round_sends_the_rumor_and_a_digest_to_fanout_distinct_peers() {
    let mut core = core(GossipConfig::default(), 10);
    core.update("k", assign(b"v")).unwrap();
    core.tick();
    let output = core.take_output();
    let exchanges = gossip(&output.messages);
    assert_eq!(exchanges.len(), 3, "fanout 3");
    let mut targets: Vec<NodeId> = exchanges.iter().map(|(to, _)| *to).collect();
    targets.dedup();
    assert_eq!(targets.len(), 3);
    let id = version_hash("k", &core.store().get("k").unwrap().clock);
    for (_, exchange) in exchanges {
        assert!(exchange.wants_reply);
        assert_eq!(exchange.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), vec!["k"]);
        assert_eq!(exchange.digest, vec![id]);
        assert_eq!(exchange.root, core.store().tree().root());
    }
}

#[test]
fn push_sends_nothing_without_rumors_and_pull_sends_only_a_digest() {
    let mut push = core(GossipConfig { mode: Mode::Push, ..GossipConfig::default() }, 10);
    push.tick();
    assert!(gossip(&push.take_output().messages).is_empty(), "steady-state push is silent");

    let mut pull = core(GossipConfig { mode: Mode::Pull, ..GossipConfig::default() }, 10);
    pull.update("k", assign(b"v")).unwrap();
    pull.tick();
    let output = pull.take_output();
    let exchanges = gossip(&output.messages);
    assert_eq!(exchanges.len(), 3);
    assert!(exchanges.iter().all(|(_, e)| e.wants_reply && e.entries.is_empty() && e.digest.len() == 1));
}

#[test]
fn a_reply_carries_only_the_rumors_the_requester_lacks() {
    let mut core = core(GossipConfig::default(), 3);
    core.update("a", assign(b"1")).unwrap();
    core.update("b", assign(b"2")).unwrap();
    let known = version_hash("a", &core.store().get("a").unwrap().clock);
    core.receive(
        NodeId(2),
        Message::Gossip(Exchange { wants_reply: true, digest: vec![known], ..Exchange::default() }),
    );
    let output = core.take_output();
    let [(to, Message::GossipReply(reply))] = output.messages.as_slice() else {
        panic!("one reply expected: {output:?}")
    };
    assert_eq!(*to, NodeId(2));
    assert_eq!(reply.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), vec!["b"]);
}

#[test]
fn messages_are_cut_to_message_size_max_with_membership_first() {
    let config = GossipConfig { message_size_max: 700, fanout: 1, ..GossipConfig::default() };
    let mut core = core(config.clone(), 2);
    for i in 0..20 {
        core.update(&format!("key-{i:02}"), assign(&[7; 60])).unwrap();
    }
    core.receive(
        NodeId(2),
        Message::Gossip(Exchange { members: vec![alive(NodeId(3))], ..Exchange::default() }),
    );
    core.take_output();
    let mut sent_keys = std::collections::BTreeSet::new();
    for round in 0..20 {
        core.tick();
        let output = core.take_output();
        for (_, message) in &output.messages {
            assert!(encoded_len(&GossipWire::V2(message.clone())) <= config.message_size_max);
        }
        for (_, exchange) in gossip(&output.messages) {
            if round == 0 {
                assert_eq!(
                    exchange.members.first().map(|m| m.node),
                    Some(NodeId(3)),
                    "membership goes first"
                );
                assert!(exchange.entries.len() < 20, "the message was cut");
            }
            sent_keys.extend(exchange.entries.iter().map(|e| e.key.clone()));
        }
    }
    assert_eq!(sent_keys.len(), 20, "the rest went in later rounds, least sent first");
}

#[test]
fn rumors_stop_after_a_number_of_transmissions_that_grows_with_log_cluster_size() {
    let config = GossipConfig::default();
    assert!(config.transmissions_max(10) < config.transmissions_max(1_000));
    assert!(
        config.transmissions_max(10_000) <= config.transmissions_max(1_000) + config.retransmit_multiplier
    );
    let mut core = core(config.clone(), 10);
    core.update("k", assign(b"v")).unwrap();
    let mut sent = 0;
    for _ in 0..50 {
        core.tick();
        sent += gossip(&core.take_output().messages).iter().filter(|(_, e)| !e.entries.is_empty()).count();
    }
    assert_eq!(sent as u32, config.transmissions_max(10));
}

#[test]
fn bad_writes_are_refused_with_typed_errors_and_change_nothing() {
    let mut core = core(GossipConfig { message_size_max: 512, ..GossipConfig::default() }, 3);
    core.update("k", Operation::Grow { by: 1 }).unwrap();
    let root = core.store().tree().root();
    assert!(matches!(core.update("k", assign(b"v")), Err(GossipError::KindMismatch { .. })));
    assert!(matches!(core.update("big", assign(&[0; 1_000])), Err(GossipError::TooLarge { .. })));
    core.set_degraded(true);
    assert!(matches!(core.update("k", Operation::Grow { by: 1 }), Err(GossipError::Degraded)));
    assert_eq!(core.store().tree().root(), root);
    assert_eq!(core.read("k"), Some(ReadValue::Counter(1)));
    assert_eq!(core.take_output().events.last(), Some(&Event::Degraded(true)));
}

#[test]
fn a_map_field_write_replaces_what_it_has_seen() {
    let mut core = core(GossipConfig::default(), 1);
    let write = |value: &[u8]| Operation::MapWrite { field: "f".into(), value: value.to_vec() };
    core.update("m", write(b"1")).unwrap();
    core.update("m", write(b"2")).unwrap();
    assert_eq!(core.read("m"), Some(ReadValue::Map(vec![("f".into(), vec![b"2".to_vec()])])));
}

#[test]
fn steady_state_traffic_per_node_does_not_grow_with_cluster_size() {
    let small = steady_state_bytes_per_second(30, 1, 50).unwrap();
    let large = steady_state_bytes_per_second(300, 1, 50).unwrap();
    println!("steady state: 30 nodes {small:.0} B/node/s, 300 nodes {large:.0} B/node/s");
    assert!(large < small * 1.5, "10x the nodes, {small:.0} -> {large:.0} B/node/s");
}

fn lone(id: u64, config: &GossipConfig) -> SimGossipNode {
    let meta = MemberMeta::default();
    SimGossipNode::new(GossipCore::new(NodeId(id), meta, config.clone(), StdRng::seed_from_u64(id)))
}

#[test]
fn nodes_join_through_one_seed_and_learn_every_member() {
    let config = GossipConfig::default();
    let mut sim =
        Simulation::new(5, SimConfig::default(), TICK_MS, (1..=50).map(|i| (NodeId(i), lone(i, &config))));
    for i in 2..=50 {
        sim.with_node(NodeId(i), |n, now, out| n.with_core(now, out, |core| core.join(&[NodeId(1)])));
    }
    let everyone = |sim: &Simulation<SimGossipNode>| {
        sim.nodes()
            .values()
            .all(|n| n.core.members().filter(|m| m.state.status == MemberStatus::Alive).count() == 49)
    };
    let at = sim.run_until_condition(30_000, |_| Ok(()), everyone).unwrap();
    println!("50 nodes joined through one seed: all know all at {at} ms");
}

#[test]
fn a_leave_is_broadcast_and_the_member_is_reaped_without_coming_back() {
    let config = GossipConfig { member_reap_ticks: 50, ..GossipConfig::default() };
    let mut sim = Simulation::new(2, SimConfig::default(), TICK_MS, formed_cluster(30, &config, 2));
    sim.run_until(500, |_| Ok(())).unwrap();
    sim.with_node(NodeId(7), |n, now, out| n.with_core(now, out, |core| core.leave()));
    let left = |sim: &Simulation<SimGossipNode>| {
        sim.nodes().iter().filter(|(id, _)| **id != NodeId(7)).all(|(_, n)| {
            n.core.members().any(|m| m.state.node == NodeId(7) && m.state.status == MemberStatus::Left)
        })
    };
    sim.run_until_condition(10_000, |_| Ok(()), left).unwrap();
    assert!(matches!(
        sim.with_node(NodeId(7), |n, now, out| n.with_core(now, out, |core| core.update("k", assign(b"v")))),
        Some(Err(GossipError::Left))
    ));
    sim.run_for(50 * TICK_MS + 1_000, |_| Ok(())).unwrap();
    for (id, node) in sim.nodes() {
        if *id != NodeId(7) {
            assert!(node.core.members().all(|m| m.state.node != NodeId(7)), "{id} still holds node 7");
        }
    }
    // A stale rumor of node 7 alive (its incarnation before leaving) is ignored.
    sim.with_node(NodeId(1), |n, now, out| {
        n.with_core(now, out, |core| {
            core.receive(
                NodeId(2),
                Message::Gossip(Exchange { members: vec![alive(NodeId(7))], ..Exchange::default() }),
            )
        })
    });
    assert!(sim.nodes()[&NodeId(1)].core.members().all(|m| m.state.node != NodeId(7)));
}

#[test]
fn a_node_acknowledges_a_tracked_update_once_and_the_origin_counts_it_exactly() {
    let config = GossipConfig::default();
    let mut origin = core(config.clone(), 3);
    let dot = origin.update("k", assign(b"v")).unwrap();
    origin.tick();
    let output = origin.take_output();
    let rumors = gossip(&output.messages);
    let entry = rumors.iter().flat_map(|(_, e)| e.entries.iter()).next().expect("a rumor of k").clone();
    assert_eq!(entry.tracked, vec![(NodeId(1), dot.counter)], "the mark travels with the entry");

    let mut peer = GossipCore::new(NodeId(2), MemberMeta::default(), config, StdRng::seed_from_u64(2));
    peer.add_members([alive(NodeId(1)), alive(NodeId(3))]);
    peer.take_output();
    let held = |output: Output| -> Vec<(NodeId, Message)> {
        output.messages.into_iter().filter(|(_, m)| matches!(m, Message::Held { .. })).collect()
    };
    let exchange = Exchange { entries: vec![entry.clone()], ..Exchange::default() };
    peer.receive(NodeId(1), Message::Gossip(exchange.clone()));
    let ack = Message::Held { key: "k".into(), counter: dot.counter };
    assert_eq!(held(peer.take_output()), vec![(NodeId(1), ack.clone())]);
    peer.receive(NodeId(3), Message::Gossip(exchange));
    assert_eq!(held(peer.take_output()), vec![], "once per update");
    assert_eq!(peer.metrics().held_sent, 1);
    // The peer forwards the mark with the entry.
    peer.tick();
    let forwarded = peer.take_output();
    assert!(gossip(&forwarded.messages)
        .iter()
        .flat_map(|(_, e)| e.entries.iter())
        .all(|e| e.tracked == entry.tracked));

    // An unmarked entry is not acknowledged.
    let mut other =
        GossipCore::new(NodeId(3), MemberMeta::default(), GossipConfig::default(), StdRng::seed_from_u64(3));
    let unmarked = Exchange { entries: vec![entry.clone().with_tracked(Vec::new())], ..Exchange::default() };
    other.receive(NodeId(1), Message::Gossip(unmarked));
    assert_eq!(held(other.take_output()), vec![]);

    // The origin counts distinct holders among its 3 live members (itself included).
    let report = origin.convergence("k", &dot).unwrap();
    assert_eq!((report.nodes, report.members, report.ticks_to_threshold), (1, 3, None));
    origin.receive(NodeId(2), ack.clone());
    origin.receive(NodeId(2), ack.clone());
    let report = origin.convergence("k", &dot).unwrap();
    assert_eq!((report.nodes, report.members, report.ticks_to_all), (2, 3, None));
    origin.receive(NodeId(3), ack);
    let report = origin.convergence("k", &dot).unwrap();
    assert_eq!((report.nodes, report.members, report.fraction), (3, 3, 1.0));
    assert_eq!((report.ticks_to_threshold, report.ticks_to_all), (Some(1), Some(1)));
    assert_eq!((report.ms_to_threshold, report.ms_to_all), (Some(TICK_MS), Some(TICK_MS)));
    // Acknowledgements of untracked updates are dropped.
    origin.receive(NodeId(3), Message::Held { key: "other".into(), counter: 1 });
    assert_eq!(origin.metrics().held_dropped, 1);
}

#[test]
fn a_member_with_metadata_larger_than_a_message_is_not_sent_and_nothing_panics() {
    let config = GossipConfig { message_size_max: 512, ..GossipConfig::default() };
    let mut core = core(config, 3);
    let mut huge = alive(NodeId(9));
    huge.meta.tags.insert("blob".into(), "x".repeat(2_000));
    core.receive(NodeId(2), Message::Join { member: huge });
    for _ in 0..5 {
        core.tick();
    }
    let output = core.take_output();
    assert!(output.messages.iter().all(|(_, m)| encoded_len(&GossipWire::V2(m.clone())) <= 512));
    assert!(core.metrics().oversized_dropped > 0);
}

#[test]
fn a_join_whose_seed_does_not_answer_is_sent_again() {
    let config = GossipConfig::default();
    let mut core =
        GossipCore::new(NodeId(5), MemberMeta::default(), config.clone(), StdRng::seed_from_u64(5));
    core.join(&[NodeId(1)]);
    let joins = |messages: &[(NodeId, Message)]| {
        messages.iter().filter(|(to, m)| *to == NodeId(1) && matches!(m, Message::Join { .. })).count()
    };
    assert_eq!(joins(&core.take_output().messages), 1);
    let mut again = 0;
    for _ in 0..config.join_retry_interval_ticks {
        core.tick();
        again += joins(&core.take_output().messages);
    }
    assert_eq!(again, 1, "one retry per join_retry_interval_ticks");
    core.receive(NodeId(1), Message::JoinReply { members: vec![alive(NodeId(1))] });
    for _ in 0..config.join_retry_interval_ticks {
        core.tick();
        assert_eq!(joins(&core.take_output().messages), 0, "joined: no more retries");
    }
}

#[test]
fn a_stale_accusation_is_answered_with_the_newer_state_so_a_missed_refutation_is_repaired() {
    let mut core = core(GossipConfig::default(), 5);
    let refuted = concord_gossip::MemberUpdate { incarnation: 1, ..alive(NodeId(2)) };
    core.receive(
        NodeId(3),
        Message::Gossip(Exchange { members: vec![refuted.clone()], ..Exchange::default() }),
    );
    core.take_output();
    let stale_dead = concord_gossip::MemberUpdate { status: MemberStatus::Dead, ..alive(NodeId(2)) };
    let stale_me = concord_gossip::MemberUpdate { status: MemberStatus::Suspect, ..alive(NodeId(1)) };
    // We refute the accusation of ourselves first (incarnation 1)...
    core.receive(
        NodeId(4),
        Message::Gossip(Exchange { members: vec![stale_me.clone()], ..Exchange::default() }),
    );
    core.take_output();
    // ...then a late node repeats both old accusations.
    core.receive(
        NodeId(5),
        Message::Gossip(Exchange { members: vec![stale_dead, stale_me], ..Exchange::default() }),
    );
    let output = core.take_output();
    let answers = gossip(&output.messages);
    let to_sender: Vec<&Exchange> =
        answers.iter().filter(|(to, _)| *to == NodeId(5)).map(|(_, e)| *e).collect();
    let Some(answer) = to_sender.first() else { panic!("no answer to the stale sender: {output:?}") };
    assert_eq!(
        answer.members,
        vec![refuted, concord_gossip::MemberUpdate { incarnation: 1, ..alive(NodeId(1)) }]
    );
    assert!(core.members().all(|m| m.state.status == MemberStatus::Alive), "the stale rumor changed nothing");
}

#[test]
fn differing_member_digests_trigger_one_member_list_exchange_that_repairs_a_missed_arrival() {
    let mut a = core(GossipConfig::default(), 3);
    let mut b =
        GossipCore::new(NodeId(2), MemberMeta::default(), GossipConfig::default(), StdRng::seed_from_u64(2));
    b.add_members([alive(NodeId(1))]);
    b.take_output();
    assert_ne!(a.members_digest(), b.members_digest());
    let exchange = Exchange { members_digest: a.members_digest(), ..Exchange::default() };
    b.receive(NodeId(1), Message::Gossip(exchange.clone()));
    let sync: Vec<Message> = b.take_output().messages.into_iter().map(|(_, m)| m).collect();
    let [Message::MemberSync { reply: true, .. }] = sync.as_slice() else {
        panic!("one sync asked: {sync:?}")
    };
    b.receive(NodeId(1), Message::Gossip(exchange));
    assert!(b.take_output().messages.is_empty(), "at most one sync per member_sync_interval_ticks");
    a.receive(NodeId(2), sync[0].clone());
    let answer: Vec<Message> = a.take_output().messages.into_iter().map(|(_, m)| m).collect();
    for message in answer {
        assert!(matches!(message, Message::MemberSync { reply: false, .. }), "{message:?}");
        b.receive(NodeId(1), message);
    }
    assert!(b.members().any(|m| m.state.node == NodeId(3)), "the missed member is learned");
    assert_eq!(a.members_digest(), b.members_digest());
}
