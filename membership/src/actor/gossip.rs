//! The feed from a gossip actor to quorum managers: gossip's view of each
//! member, sent as [`MemberLiveness`] on every change of state.

use super::{MemberLiveness, QuorumManager};
use crate::health::Liveness;
use actix::Addr;
use concord_gossip::actor::Members;
use concord_gossip::{GossipActor, MemberStatus};
use concord_transport::NodeId;
use std::collections::HashMap;
use std::time::Duration;

/// Gossip's member status as the quorum manager's liveness.
pub fn liveness_of(status: MemberStatus) -> Liveness {
    match status {
        MemberStatus::Alive => Liveness::Alive,
        MemberStatus::Suspect => Liveness::Suspect,
        MemberStatus::Dead => Liveness::Dead,
        MemberStatus::Left => Liveness::Left,
    }
}

/// Reads `gossip`'s member list every `poll` and sends each change of a
/// member's state to every manager, until the gossip actor stops or no
/// manager is left running.
pub fn bridge_gossip(gossip: Addr<GossipActor>, mut managers: Vec<Addr<QuorumManager>>, poll: Duration) {
    actix::spawn(async move {
        let mut known: HashMap<NodeId, MemberStatus> = HashMap::new();
        while let Ok(members) = gossip.send(Members).await {
            managers.retain(Addr::connected);
            if managers.is_empty() {
                return;
            }
            for member in members {
                if known.insert(member.node, member.status) == Some(member.status) {
                    continue;
                }
                let state = liveness_of(member.status);
                for manager in &managers {
                    manager.do_send(MemberLiveness { node: member.node, state });
                }
            }
            tokio::time::sleep(poll).await;
        }
    });
}
