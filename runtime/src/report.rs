//! Raft's reports in the JSON shapes of the reference documents (`leader`,
//! `log-status`, election events, `status`): one place shared by the HTTP
//! API, `concord ctl` and `concord demo`.

use concord_raft::actor::{ElectionEvent, LeaderInfo, LogStatusReport, Status};
use concord_raft::core::ElectionTrigger;
use concord_transport::NodeId;
use serde_json::{json, Value};

fn ids(nodes: &[NodeId]) -> Vec<u64> {
    nodes.iter().map(|n| n.0).collect()
}

/// The `leader` answer.
pub fn leader(info: &LeaderInfo) -> Value {
    json!({
        "leader_id": info.leader_id.map(|n| n.0),
        "term": info.term,
        "voted_by": ids(&info.voted_by),
        "election_duration_ms": info.election_duration_ms,
        "heartbeat_status": ids(&info.heartbeat_status),
    })
}

/// The `log-status` answer.
pub fn log_status(report: &LogStatusReport) -> Value {
    let followers: Vec<Value> = report
        .followers
        .iter()
        .map(|f| {
            json!({
                "agent_id": f.agent_id.0,
                "match_index": f.match_index,
                "next_index": f.next_index,
                "replication_lag_ms": f.replication_lag_ms,
            })
        })
        .collect();
    json!({
        "leader": report.leader.map(|n| n.0),
        "followers": followers,
        "committed_entries": report.committed_entries,
        "uncommitted_entries": report.uncommitted_entries,
    })
}

/// One election event.
pub fn election(event: &ElectionEvent) -> Value {
    json!({
        "old_leader": event.old_leader.map(|n| n.0),
        "new_leader": event.new_leader.0,
        "term": event.term,
        "election_duration_ms": event.election_duration_ms,
        "voted_by": ids(&event.voted_by),
        "trigger": trigger(event.trigger),
    })
}

/// What started an election, as `election-history` names it.
pub fn trigger(trigger: ElectionTrigger) -> &'static str {
    match trigger {
        ElectionTrigger::Timeout => "timeout",
        ElectionTrigger::LeaderDown => "leader_down",
        ElectionTrigger::Forced => "forced",
        ElectionTrigger::Observed => "observed",
    }
}

/// The `status` answer.
pub fn status(status: &Status) -> Value {
    json!({
        "id": status.id.0,
        "role": format!("{:?}", status.role).to_lowercase(),
        "term": status.term,
        "leader": status.leader.map(|n| n.0),
        "commit_index": status.commit,
        "applied_index": status.applied,
        "last_index": status.last_index,
        "snapshot_index": status.snapshot_index,
        "log_bytes": status.log_bytes,
        "voters": status.membership.voters.iter().map(|(id, weight)| json!({"id": id.0, "weight": weight})).collect::<Vec<_>>(),
        "learners": status.membership.learners.iter().map(|n| n.0).collect::<Vec<_>>(),
        "state_digest": format!("{:016x}", status.digest),
    })
}
