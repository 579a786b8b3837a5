//! Runs the examples `cargo test` has just built (into `target/*/examples`)
//! and checks what they print: each is a short program that finishes in
//! about a second.

use std::path::PathBuf;
use std::process::Command;

/// The built example `name`, beside this test's own directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/examples_run-HASH → target/<profile>/examples/NAME
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile.join("examples").join(name)
}

/// Runs an example; its standard output, failing on a non-zero exit.
fn run(name: &str) -> String {
    let output = Command::new(example(name)).output().unwrap_or_else(|e| panic!("run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{name} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn gossip_cluster_converges_on_an_update_and_one_value_for_a_conflict() {
    let out = run("gossip_cluster");
    assert!(out.contains("update color=blue reached all 200 nodes in"), "{out}");
    assert!(out.contains("all 200 resolved it to \"node-150\" (last writer wins)"), "{out}");
}

#[test]
fn quorum_replace_swaps_the_dead_voter_for_the_learner() {
    let out = run("quorum_replace");
    let killed = out
        .lines()
        .find_map(|l| l.strip_prefix("killed voter n")?.split(':').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no kill reported:\n{out}"));
    let voters = out
        .lines()
        .find_map(|l| l.split_once("the voters are ").map(|(_, v)| v.to_string()))
        .unwrap_or_else(|| panic!("no final voters:\n{out}"));
    let expected: Vec<String> = (1..=6).filter(|&id| id != killed).map(|id| id.to_string()).collect();
    assert_eq!(voters, format!("[{}]", expected.join(", ")), "{out}");
    assert!(out.contains(&format!("replace n{killed}")), "the replacement is in the history:\n{out}");
    assert!(out.contains("health now: Healthy, 5 voters"), "{out}");
}

#[test]
fn raft_two_groups_runs_each_group_on_its_members_only() {
    let out = run("raft_two_groups");
    assert!(out.contains("group critical   runs on [1, 2, 3, 4, 5]"), "{out}");
    assert!(out.contains("group background runs on [1, 2, 3]"), "{out}");
    assert_eq!(out.matches(": 10 tasks").count(), 2, "{out}");
}
