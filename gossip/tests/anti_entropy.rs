//! Merkle anti-entropy between two nodes: the cost follows the difference.

use concord_gossip::sim::alive;
use concord_gossip::{GossipConfig, GossipCore, MemberMeta, Message, Operation};
use concord_transport::NodeId;
use rand::rngs::StdRng;
use rand::SeedableRng;

const KEYS: usize = 10_000;
const DIFFERING: usize = 10;

fn pair() -> (GossipCore, GossipCore) {
    // Fanout 0: no rumors, so every key that moves is moved by anti-entropy.
    let config =
        GossipConfig { fanout: 0, anti_entropy_interval_ticks: 1_000_000, ..GossipConfig::default() };
    let core = |id: u64, peer: u64| {
        let mut core =
            GossipCore::new(NodeId(id), MemberMeta::default(), config.clone(), StdRng::seed_from_u64(id));
        core.add_members([alive(NodeId(peer))]);
        core
    };
    (core(1, 2), core(2, 1))
}

/// Delivers messages between the two nodes until both are quiet; returns
/// the anti-entropy messages exchanged.
fn pump(a: &mut GossipCore, b: &mut GossipCore) -> usize {
    let mut anti_entropy_messages = 0;
    for _ in 0..1_000 {
        let from_a = a.take_output().messages;
        let from_b = b.take_output().messages;
        if from_a.is_empty() && from_b.is_empty() {
            return anti_entropy_messages;
        }
        for (to, message) in from_a {
            assert_eq!(to, b.id());
            anti_entropy_messages += usize::from(matches!(message, Message::AntiEntropy(_)));
            b.receive(a.id(), message);
        }
        for (to, message) in from_b {
            assert_eq!(to, a.id());
            anti_entropy_messages += usize::from(matches!(message, Message::AntiEntropy(_)));
            a.receive(b.id(), message);
        }
    }
    panic!("anti-entropy did not settle");
}

fn entries_sent(a: &GossipCore, b: &GossipCore) -> u64 {
    a.metrics().anti_entropy_entries_sent + b.metrics().anti_entropy_entries_sent
}

#[test]
fn ten_differing_keys_among_10000_transfer_about_ten_entries() {
    let (mut a, mut b) = pair();
    for i in 0..KEYS {
        a.update(&format!("key-{i}"), Operation::Assign { value: vec![1; 16], timestamp: 1 }).unwrap();
    }
    // The first session copies everything, in chunks of at most message_size_max.
    a.anti_entropy_now();
    a.tick();
    pump(&mut a, &mut b);
    assert_eq!(b.store().len(), KEYS);
    assert_eq!(a.store().tree().root(), b.store().tree().root());
    assert_eq!(entries_sent(&a, &b), KEYS as u64);

    // Half the differences on each side: updates of shared keys and new keys.
    for i in 0..DIFFERING / 2 {
        a.update(&format!("key-{}", i * 997), Operation::Assign { value: vec![2], timestamp: 2 }).unwrap();
        b.update(&format!("new-{i}"), Operation::Assign { value: vec![3], timestamp: 2 }).unwrap();
    }
    assert_ne!(a.store().tree().root(), b.store().tree().root());
    let before = entries_sent(&a, &b);
    let bytes_before = a.metrics().bytes_sent + b.metrics().bytes_sent;
    b.anti_entropy_now();
    b.tick();
    let messages = pump(&mut a, &mut b);
    let transferred = entries_sent(&a, &b) - before;
    let bytes = a.metrics().bytes_sent + b.metrics().bytes_sent - bytes_before;
    println!(
        "{DIFFERING} differing keys of {KEYS}: {transferred} entries, {messages} messages, {bytes} bytes"
    );
    assert_eq!(a.store().tree().root(), b.store().tree().root());
    assert_eq!(a.store().len(), KEYS + DIFFERING / 2);
    assert!(transferred >= DIFFERING as u64, "every difference moves");
    assert!(transferred <= 3 * DIFFERING as u64, "{transferred} entries moved for {DIFFERING} differences");
    assert!(bytes < 64 * 1024, "{bytes} bytes for {DIFFERING} differences");
    for i in 0..DIFFERING / 2 {
        assert_eq!(a.read(&format!("new-{i}")), b.read(&format!("new-{i}")));
        assert_eq!(a.read(&format!("key-{}", i * 997)), b.read(&format!("key-{}", i * 997)));
    }
}

#[test]
fn equal_roots_end_the_session_at_once() {
    let (mut a, mut b) = pair();
    a.update("k", Operation::Grow { by: 1 }).unwrap();
    a.anti_entropy_now();
    a.tick();
    pump(&mut a, &mut b);
    let sent = entries_sent(&a, &b);
    a.anti_entropy_now();
    a.tick();
    assert_eq!(pump(&mut a, &mut b), 1, "only the root travels");
    assert_eq!(entries_sent(&a, &b), sent);
}

#[test]
fn disjoint_writes_on_both_sides_are_exchanged() {
    let (mut a, mut b) = pair();
    a.update("left", Operation::Grow { by: 1 }).unwrap();
    b.update("right", Operation::Grow { by: 1 }).unwrap();
    a.update("both", Operation::Assign { value: vec![1], timestamp: 1 }).unwrap();
    b.update("both", Operation::Assign { value: vec![2], timestamp: 1 }).unwrap();
    for _ in 0..3 {
        a.tick();
        b.tick();
    }
    pump(&mut a, &mut b);
    a.anti_entropy_now();
    a.tick();
    pump(&mut a, &mut b);
    assert_eq!(a.store().len(), 3);
    assert_eq!(a.store().tree().root(), b.store().tree().root());
    assert_eq!(a.read("both"), b.read("both"));
    assert_eq!(a.conflicts().count(), 1);
}
