//! `concord demo --json`, run as the real binary: the reference scenario's
//! outcome is checked from its report.

use serde_json::Value;
use std::process::Command;

fn demo(args: &[&str]) -> Value {
    let output =
        Command::new(env!("CARGO_BIN_EXE_concord")).arg("demo").arg("--json").args(args).output().unwrap();
    assert!(output.status.success(), "demo failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_reference_scenario_completes_every_task_exactly_once_across_a_leader_failure() {
    let report = demo(&[]);
    let results = &report["task_results"];
    assert_eq!(results["total_tasks"], 1000, "{report}");
    assert_eq!(results["completed"], 1000, "{report}");
    assert_eq!(results["duplicates"], 0, "{report}");
    assert_eq!(results["failed"], 0, "{report}");
    assert_eq!(results["leader_failures"], 1, "{report}");
    assert!(results["elections"].as_u64().unwrap() >= 2, "a leader change is recorded: {report}");

    let failover = &report["failover"];
    assert_ne!(failover["old_leader"], failover["new_leader"], "{report}");
    assert!(failover["term"].as_u64() > failover["old_term"].as_u64(), "{report}");
    assert!(failover["first_commit_ms"].as_f64().unwrap() >= failover["election_ms"].as_f64().unwrap());

    // Every worker on a surviving node took part, and all survivors agree.
    let by_node = results["completed_by_node"].as_object().unwrap();
    assert!(by_node.len() >= 4, "workers on every node processed tasks: {report}");
    let replicas = report["consistency"]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 4, "{report}");
    assert!(replicas.windows(2).all(|w| w[0]["state_digest"] == w[1]["state_digest"]), "{report}");
    assert_eq!(report["log_status"]["leader"], failover["new_leader"]);
    assert_eq!(report["leader"]["leader_id"], failover["old_leader"]);
}

#[test]
fn without_a_kill_there_is_one_leader_and_no_failover() {
    let report = demo(&["--no-kill", "--nodes", "3", "--tasks", "200"]);
    assert_eq!(report["task_results"]["completed"], 200, "{report}");
    assert_eq!(report["task_results"]["leader_failures"], 0, "{report}");
    assert!(report["failover"].is_null());
    assert_eq!(report["consistency"]["replicas"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_concord")).args(["demo", "--nodes", "0"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--nodes"));
}
