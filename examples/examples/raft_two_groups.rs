//! Two Raft groups — `critical` and `background` — on the same three nodes,
//! sharing one TCP connection per peer. Tasks are routed to a group by name;
//! each group elects its own leader and keeps its own log.
//!
//! Run: `cargo run -p concord-examples --example raft_two_groups`

use concord_raft::actor::{GetStatus, ReadKind};
use concord_raft::core::Role;
use concord_runtime::config::{NodeConfig, Peer};
use concord_runtime::machine::{Query, QueryAnswer};
use concord_runtime::node::BoundNode;
use concord_runtime::state::tasks::TaskCommand;
use concord_runtime::state::Command;
use std::time::Duration;

#[actix::main]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let groups = vec!["critical".to_string(), "background".to_string()];
    let mut bound = Vec::new();
    for id in 1..=3 {
        let config = NodeConfig {
            id,
            listen: "127.0.0.1:0".parse().expect("an address"),
            data_dir: dir.path().join(format!("node{id}")),
            groups: groups.clone(),
            ..NodeConfig::default()
        };
        bound.push(BoundNode::bind(config).await.expect("bind"));
    }
    let peers: Vec<Peer> = bound.iter().zip(1..).map(|(b, id)| Peer { id, address: b.address() }).collect();
    let nodes: Vec<_> = bound
        .into_iter()
        .zip(1u64..)
        .map(|(b, id)| {
            b.start(&peers.iter().copied().filter(|p| p.id != id).collect::<Vec<_>>()).expect("start")
        })
        .collect();

    // Route ten tasks to each group by name, through any node.
    for (i, group) in groups.iter().cycle().take(20).enumerate() {
        let command =
            Command::Task(TaskCommand::Submit { task_id: format!("{group}-{i}"), payload: String::new() });
        nodes[i % 3].propose(group, &command, None, Duration::from_secs(5)).await.expect("submitted");
    }
    for group in &groups {
        let mut leader = None;
        for node in &nodes {
            let status = node.group(group).expect("served").raft.send(GetStatus).await.expect("alive");
            if status.role == Role::Leader {
                leader = Some(status.id);
            }
        }
        let totals = match nodes[0].query(group, ReadKind::Linearizable, &Query::TaskTotals).await {
            Ok(QueryAnswer::Totals(totals)) => totals.total_tasks,
            _ => 0,
        };
        println!("group {group:<10} leader {leader:?}: {totals} tasks");
    }
}
