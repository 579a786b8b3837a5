//! Two Raft groups with their own members on five nodes sharing one TCP
//! connection per peer: `critical` runs on all five (it survives two
//! failures), `background` on nodes 1–3 only (it survives one). Nodes 4 and
//! 5 do not run `background`; a task sent to them for it is forwarded to a
//! member. Each group elects its own leader and keeps its own log.
//!
//! The same layout in a node's TOML file:
//!
//! ```toml
//! [[groups]]
//! name = "critical"
//! members = [1, 2, 3, 4, 5]
//! [[groups]]
//! name = "background"
//! members = [1, 2, 3]
//! ```
//!
//! Run: `cargo run -p concord-examples --example raft_two_groups`

use concord_raft::actor::{GetStatus, ReadKind};
use concord_raft::core::Role;
use concord_runtime::config::{GroupSpec, NodeConfig, Peer};
use concord_runtime::machine::{Query, QueryAnswer};
use concord_runtime::node::BoundNode;
use concord_runtime::state::tasks::TaskCommand;
use concord_runtime::state::Command;
use std::time::Duration;

#[actix::main]
async fn main() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let groups = vec![GroupSpec::on("critical", 1..=5), GroupSpec::on("background", 1..=3)];
    let mut bound = Vec::new();
    for id in 1..=5 {
        let config = NodeConfig {
            id,
            listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
            data_dir: dir.path().join(format!("node{id}")),
            groups: groups.clone(),
            ..NodeConfig::default()
        };
        bound.push(BoundNode::bind(config).await.map_err(|e| e.to_string())?);
    }
    let peers: Vec<Peer> = bound.iter().zip(1..).map(|(b, id)| Peer { id, address: b.address() }).collect();
    let mut nodes = Vec::new();
    for (b, id) in bound.into_iter().zip(1u64..) {
        let others: Vec<Peer> = peers.iter().copied().filter(|p| p.id != id).collect();
        nodes.push(b.start(&others).map_err(|e| e.to_string())?);
    }

    // Route ten tasks to each group by name, through every node in turn:
    // nodes 4 and 5 forward their `background` tasks to a member.
    for (i, group) in ["critical", "background"].iter().cycle().take(20).enumerate() {
        let command =
            Command::Task(TaskCommand::Submit { task_id: format!("{group}-{i}"), payload: String::new() });
        nodes[i % 5]
            .propose(group, &command, None, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
    }
    for spec in &groups {
        let mut leader = None;
        let mut runs_on = Vec::new();
        for node in &nodes {
            let Some(group) = node.group(&spec.name) else { continue };
            runs_on.push(node.id().0);
            let status = group.raft.send(GetStatus).await.map_err(|e| e.to_string())?;
            if status.role == Role::Leader {
                leader = Some(status.id.0);
            }
        }
        // Asked through node 5, which runs `background` only by forwarding.
        let totals = match nodes[4].query(&spec.name, ReadKind::Linearizable, &Query::TaskTotals).await {
            Ok(QueryAnswer::Totals(totals)) => totals.total_tasks,
            _ => 0,
        };
        println!("group {:<10} runs on {runs_on:?}, leader {leader:?}: {totals} tasks", spec.name);
    }
    for node in &nodes {
        node.stop();
    }
    Ok(())
}
