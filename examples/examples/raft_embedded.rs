//! Raft alone, embedded in a host application with its own state machine.
//!
//! Three `RaftActor`s in one process share an in-memory network. The host's
//! state machine is a counter: every committed command adds its value. We
//! propose through the leader and read back linearizably from a follower's
//! point of view (the read goes through the leader's ReadIndex).
//!
//! Run: `cargo run -p concord-examples --example raft_embedded`

use actix::prelude::*;
use bytes::Bytes;
use concord_raft::actor::{bootstrap_snapshot, ActorConfig, GetStatus, Propose, RaftActor, Read, ReadKind};
use concord_raft::core::{Index, Membership, Role};
use concord_raft::machine::StateMachine;
use concord_raft::storage::memory::MemoryStore;
use concord_transport::{GroupId, MemoryNetwork, NodeId, Transport};
use std::sync::Arc;
use std::time::Duration;

/// The host's state machine: a sum of u64 commands.
#[derive(Default)]
struct Counter {
    total: u64,
}

impl StateMachine for Counter {
    fn apply(&mut self, _index: Index, command: &[u8]) -> Bytes {
        // Commands are 8 little-endian bytes; anything else adds nothing.
        let value = command.try_into().map(u64::from_le_bytes).unwrap_or(0);
        self.total += value;
        Bytes::copy_from_slice(&self.total.to_le_bytes())
    }

    fn query(&self, _query: &[u8]) -> Bytes {
        Bytes::copy_from_slice(&self.total.to_le_bytes())
    }

    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.total.to_le_bytes())
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.total = if data.is_empty() {
            0
        } else {
            u64::from_le_bytes(data.try_into().map_err(|_| "bad snapshot")?)
        };
        Ok(())
    }

    fn digest(&self) -> u64 {
        self.total
    }
}

type Node = Addr<RaftActor<MemoryStore, Counter>>;

#[actix::main]
async fn main() {
    let network = MemoryNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let membership = Membership::with_voters(ids.iter().copied());
    let nodes: Vec<Node> = ids
        .iter()
        .map(|&id| {
            let transport: Arc<dyn Transport> = Arc::new(network.join(id));
            let store = MemoryStore::new(bootstrap_snapshot(membership.clone()));
            RaftActor::new(ActorConfig::new(GroupId(1)), transport, store, Counter::default())
                .expect("a valid bootstrap")
                .start()
        })
        .collect();

    // Wait for a leader: poll the nodes' status with a deadline.
    let leader = loop {
        let mut found = None;
        for node in &nodes {
            if node.send(GetStatus).await.map(|s| s.role == Role::Leader).unwrap_or(false) {
                found = Some(node.clone());
            }
        }
        if let Some(leader) = found {
            break leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    for value in 1..=10u64 {
        let proposed = leader
            .send(Propose { data: Bytes::copy_from_slice(&value.to_le_bytes()), client: None })
            .await
            .expect("actor alive")
            .expect("committed");
        println!("added {value:>2} at index {:>2}", proposed.index);
    }
    let total = leader
        .send(Read { kind: ReadKind::Linearizable, query: Bytes::new() })
        .await
        .expect("alive")
        .expect("read");
    println!("linearizable total: {}", u64::from_le_bytes(total.as_ref().try_into().unwrap_or([0; 8])));
}
