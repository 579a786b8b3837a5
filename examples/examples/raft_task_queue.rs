//! The task queue of the reference scenario on three nodes over loopback
//! TCP: tasks are submitted, workers on every node claim and complete them
//! through the Raft log, the leader is stopped part-way, and every task still
//! completes exactly once. (`concord demo` runs the full-size version.)
//!
//! Run: `cargo run -p concord-examples --example raft_task_queue`

use concord_runtime::demo::{self, DemoConfig};

#[actix::main]
async fn main() {
    let report = demo::run(DemoConfig { nodes: 3, tasks: 300, kill_leader: true, progress: true })
        .await
        .expect("the scenario completes");
    let results = &report["task_results"];
    println!(
        "completed {} of {}, duplicates {}",
        results["completed"], results["total_tasks"], results["duplicates"]
    );
    println!("failover: {}", report["failover"]);
}
