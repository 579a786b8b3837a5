//! Exact convergence monitoring: the origin's report, built from the
//! acknowledgements of tracked updates, against the simulator's ground truth
//! (it sees every node's store).

use concord_gossip::sim::{holders, simulation, TICK_MS};
use concord_gossip::{GossipConfig, Operation};
use concord_transport::sim::SimConfig;
use concord_transport::NodeId;

/// Rounds allowed for one update to reach every node of 100.
const ROUNDS_MAX: u64 = 40;

#[test]
fn the_origins_exact_report_matches_the_simulators_ground_truth_in_100_nodes() {
    let n = 100u64;
    for seed in [1, 2] {
        let mut sim = simulation(n, &GossipConfig::default(), seed, SimConfig::default());
        let origin = NodeId(1 + seed);
        let dot = sim
            .with_node(origin, |node, now, out| {
                node.with_core(now, out, |core| {
                    core.update("k", Operation::Assign { value: b"v".to_vec(), timestamp: 1 })
                })
            })
            .expect("origin up")
            .expect("update accepted");
        let report = |sim: &concord_transport::sim::Simulation<_>| {
            let sim: &concord_transport::sim::Simulation<concord_gossip::sim::SimGossipNode> = sim;
            sim.nodes()[&origin].core.convergence("k", &dot).expect("tracked")
        };
        let (mut to_threshold, mut to_all) = (None, None);
        for round in 1..=ROUNDS_MAX {
            sim.run_until(round * TICK_MS + TICK_MS / 2, |_| Ok(())).unwrap();
            let have = holders(&sim, "k", &dot) as u64;
            let counted = report(&sim);
            assert!(counted.nodes as u64 <= have, "seed {seed} round {round}: {counted:?} over {have}");
            assert_eq!(counted.members as u64, n, "seed {seed}");
            if to_threshold.is_none() && have * 100 >= n * 95 {
                to_threshold = Some(round);
            }
            if have == n {
                to_all = Some(round);
                break;
            }
        }
        let to_all = to_all.unwrap_or_else(|| panic!("seed {seed}: not everywhere in {ROUNDS_MAX} rounds"));
        // The last acknowledgements land within the round.
        sim.run_for(TICK_MS, |_| Ok(())).unwrap();
        let counted = report(&sim);
        println!("seed {seed}: simulator {to_threshold:?}/{to_all} rounds, origin {counted:?}");
        assert_eq!(counted.nodes, holders(&sim, "k", &dot), "seed {seed}");
        assert_eq!((counted.nodes as u64, counted.members as u64, counted.fraction), (n, n, 1.0));
        let within_one = |counted: Option<u64>, truth: u64| counted.is_some_and(|c| c.abs_diff(truth) <= 1);
        assert!(
            within_one(counted.ticks_to_threshold, to_threshold.unwrap_or(to_all)),
            "seed {seed}: {counted:?}"
        );
        assert!(within_one(counted.ticks_to_all, to_all), "seed {seed}: {counted:?}");
        assert_eq!(counted.ms_to_all, counted.ticks_to_all.map(|t| t * TICK_MS));
        assert_eq!(counted.ms_to_threshold, counted.ticks_to_threshold.map(|t| t * TICK_MS));
    }
}

#[test]
fn a_crashed_member_leaves_the_count_once_it_is_declared_dead() {
    let n = 30u64;
    let mut sim = simulation(n, &GossipConfig::default(), 5, SimConfig::default());
    let victim = NodeId(n);
    sim.crash(victim);
    let dot = sim
        .with_node(NodeId(1), |node, now, out| {
            node.with_core(now, out, |core| {
                core.update("k", Operation::Assign { value: b"v".to_vec(), timestamp: 1 })
            })
        })
        .expect("origin up")
        .expect("update accepted");
    let counted = sim
        .run_until_condition(
            30_000,
            |_| Ok(()),
            |sim| {
                let report = sim.nodes()[&NodeId(1)].core.convergence("k", &dot).expect("tracked");
                report.members as u64 == n - 1 && report.nodes as u64 == n - 1
            },
        )
        .expect("the dead member is not counted and every live one holds the update");
    let report = sim.nodes()[&NodeId(1)].core.convergence("k", &dot).expect("tracked");
    assert!(report.ticks_to_all.is_some_and(|t| t * TICK_MS <= counted), "{report:?}");
    assert_eq!(holders(&sim, "k", &dot), n as usize - 1);
}
