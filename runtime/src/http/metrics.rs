//! `/metrics`: Prometheus' text exposition format.

use super::errors::ApiError;
use crate::node::Node;
use actix_web::HttpResponse;
use concord_gossip::MemberStatus;
use concord_membership::health::HealthStatus;
use concord_membership::messages::Health;
use concord_raft::actor::{ElectionHistory, GetStatus, LogStatus, Metrics};
use concord_raft::core::Role;
use concord_transport::Transport;
use std::fmt::Write;

/// Reads one number out of a Raft status.
type StatusField = fn(&concord_raft::actor::Status) -> u64;
/// Reads one counter of a group's [`concord_raft::actor::MetricsReport`].
type MetricsField = fn(&concord_raft::actor::MetricsReport) -> u64;

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The node's metrics.
pub async fn metrics(node: actix_web::web::Data<Node>) -> Result<HttpResponse, ApiError> {
    let mut out = String::new();
    let mut groups = Vec::new();
    for group in node.groups() {
        let status = group.raft.send(GetStatus).await.ok();
        let metrics = group.raft.send(Metrics).await.ok();
        let elections = group.raft.send(ElectionHistory).await.map(|h| h.len()).unwrap_or(0);
        let log = group.raft.send(LogStatus).await.ok();
        groups.push((group.name.clone(), status, metrics, elections, log));
    }
    let gauges: [(&str, &str, &str, StatusField); 5] = [
        ("concord_raft_term", "gauge", "Current Raft term.", |s| s.term),
        ("concord_raft_commit_index", "gauge", "Raft commit index.", |s| s.commit),
        ("concord_raft_applied_index", "gauge", "Index applied to the state machine.", |s| s.applied),
        ("concord_raft_last_index", "gauge", "Last index in the log.", |s| s.last_index),
        ("concord_raft_is_leader", "gauge", "1 if this node leads the group.", |s| {
            u64::from(s.role == Role::Leader)
        }),
    ];
    for (name, kind, help, value) in gauges {
        family(&mut out, name, kind, help);
        for (group, status, ..) in &groups {
            if let Some(status) = status {
                let _ = writeln!(out, "{name}{{group=\"{group}\"}} {}", value(status));
            }
        }
    }
    family(&mut out, "concord_raft_elections", "gauge", "Elections this node remembers.");
    for (group, _, _, elections, _) in &groups {
        let _ = writeln!(out, "concord_raft_elections{{group=\"{group}\"}} {elections}");
    }
    let counters: [(&str, &str, MetricsField); 7] = [
        ("concord_raft_proposals_total", "Proposals accepted by the core.", |m| m.proposals),
        ("concord_raft_entries_applied_total", "Entries applied to the state machine.", |m| m.applied_entries),
        (
            "concord_raft_entries_applied_early_total",
            "Entries a leader applied before its own write of them ended, its followers having made the quorum.",
            |m| m.applied_early,
        ),
        ("concord_raft_batches_persisted_total", "Batches written to the log (group commits).", |m| {
            m.batches_persisted
        }),
        ("concord_raft_snapshots_taken_total", "Snapshots taken of the state machine.", |m| m.snapshots_taken),
        ("concord_raft_snapshots_installed_total", "Snapshots received from a leader and installed.", |m| {
            m.snapshots_installed
        }),
        (
            "concord_raft_appends_refused_full_total",
            "Appends this node took only in part, its log full while its snapshot was due.",
            |m| m.appends_refused_full,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        for (group, _, metrics, ..) in &groups {
            if let Some(m) = metrics {
                let _ = writeln!(out, "{name}{{group=\"{group}\"}} {}", value(m));
            }
        }
    }
    family(
        &mut out,
        "concord_raft_replication_lag_ms",
        "gauge",
        "Time since a follower last answered (leader only).",
    );
    for (group, _, _, _, log) in &groups {
        for follower in log.iter().flat_map(|l| &l.followers) {
            let _ = writeln!(
                out,
                "concord_raft_replication_lag_ms{{group=\"{group}\",peer=\"{}\"}} {}",
                follower.agent_id.0, follower.replication_lag_ms
            );
        }
    }
    proposal_latency(&mut out, &node);
    quorum_health(&mut out, &node).await;
    gossip(&mut out, &node).await;
    let stats = node.transport().stats();
    for (name, value) in [
        ("concord_transport_sent_total", stats.sent),
        ("concord_transport_delivered_total", stats.delivered),
        ("concord_transport_dropped_queue_full_total", stats.dropped_queue_full),
        ("concord_transport_dropped_unroutable_total", stats.dropped_unroutable),
        ("concord_transport_bytes_sent_total", stats.bytes_sent),
        ("concord_transport_connections_rejected_total", stats.connections_rejected),
    ] {
        family(&mut out, name, "counter", "Transport counter since start.");
        let _ = writeln!(out, "{name} {value}");
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out))
}

/// `concord_proposal_latency_seconds`: a histogram per group, buckets
/// [`crate::latency::PROPOSAL_LATENCY_BUCKETS_US`].
fn proposal_latency(out: &mut String, node: &Node) {
    let name = "concord_proposal_latency_seconds";
    family(out, name, "histogram", "Proposals made through this node, submitted to applied.");
    for group in node.groups() {
        let snapshot = group.proposal_latency.snapshot();
        let g = &group.name;
        for (bound_us, count) in &snapshot.cumulative {
            let le = *bound_us as f64 / 1_000_000.0;
            let _ = writeln!(out, "{name}_bucket{{group=\"{g}\",le=\"{le}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{group=\"{g}\",le=\"+Inf\"}} {}", snapshot.count);
        let _ = writeln!(out, "{name}_sum{{group=\"{g}\"}} {}", snapshot.sum_us as f64 / 1_000_000.0);
        let _ = writeln!(out, "{name}_count{{group=\"{g}\"}} {}", snapshot.count);
    }
}

/// Quorum health per group, as the group's quorum manager on this node sees it.
async fn quorum_health(out: &mut String, node: &Node) {
    let mut reports = Vec::new();
    for group in node.groups() {
        if let Ok(health) = group.manager.send(Health).await {
            reports.push((group.name.clone(), health));
        }
    }
    family(out, "concord_quorum_status", "gauge", "1 for the group's health verdict, 0 for the others.");
    for (group, health) in &reports {
        for (status, label) in [
            (HealthStatus::Healthy, "healthy"),
            (HealthStatus::Degraded, "degraded"),
            (HealthStatus::QuorumLost, "quorum_lost"),
        ] {
            let value = u8::from(health.status == status);
            let _ = writeln!(out, "concord_quorum_status{{group=\"{group}\",status=\"{label}\"}} {value}");
        }
    }
    type HealthField = fn(&concord_membership::health::ClusterHealth) -> u64;
    let gauges: [(&str, &str, HealthField); 5] = [
        ("concord_quorum_available", "1 if the reachable voters can elect and commit.", |h| {
            u64::from(h.quorum_available)
        }),
        ("concord_quorum_voters", "Voters in the configuration.", |h| h.voters as u64),
        ("concord_quorum_reachable_voters", "Voters alive or suspect.", |h| h.reachable_voters as u64),
        ("concord_quorum_size", "The fewest voters that can commit.", |h| h.quorum_size as u64),
        ("concord_quorum_failures_tolerated", "Further voter failures quorum survives.", |h| {
            h.failures_tolerated as u64
        }),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        for (group, health) in &reports {
            let _ = writeln!(out, "{name}{{group=\"{group}\"}} {}", value(health));
        }
    }
}

/// Gossip rounds and members by state.
async fn gossip(out: &mut String, node: &Node) {
    if let Ok(metrics) = node.gossip().send(concord_gossip::actor::Metrics).await {
        family(out, "concord_gossip_rounds_total", "counter", "Gossip rounds run since start.");
        let _ = writeln!(out, "concord_gossip_rounds_total {}", metrics.rounds);
    }
    if let Ok(members) = node.gossip().send(concord_gossip::actor::Members).await {
        family(
            out,
            "concord_gossip_members",
            "gauge",
            "Members this node knows, by state (itself included).",
        );
        for (status, label) in [
            (MemberStatus::Alive, "alive"),
            (MemberStatus::Suspect, "suspect"),
            (MemberStatus::Dead, "dead"),
            (MemberStatus::Left, "left"),
        ] {
            let count = members.iter().filter(|m| m.status == status).count();
            let _ = writeln!(out, "concord_gossip_members{{state=\"{label}\"}} {count}");
        }
    }
}
