//! What the manager tests share: a counting state machine and a collector
//! of the managers' notices.

use actix::{Actor, Handler, Message, MessageResult};
use bytes::Bytes;
use concord_membership::actor::Notice;
use concord_raft::core::Index;
use concord_raft::machine::StateMachine;

/// Counts applied commands. The manager verifies with Raft's own empty
/// entries, which never reach the machine: an empty command here is a bug.
#[derive(Default)]
pub struct Tally {
    /// Commands applied.
    pub applied: u64,
}

impl StateMachine for Tally {
    fn apply(&mut self, _: Index, command: &[u8]) -> Bytes {
        assert!(!command.is_empty(), "a verification entry reached the state machine");
        self.applied += 1;
        self.snapshot()
    }

    fn query(&self, _: &[u8]) -> Bytes {
        self.snapshot()
    }

    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.applied.to_le_bytes())
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = data.try_into().map_err(|_| format!("{} bytes, not 8", data.len()))?;
        self.applied = u64::from_le_bytes(bytes);
        Ok(())
    }

    fn digest(&self) -> u64 {
        self.applied
    }
}

/// Keeps every notice a manager sends it.
#[derive(Default)]
pub struct Collector {
    /// Every notice, in order.
    pub notices: Vec<Notice>,
}

impl Actor for Collector {
    type Context = actix::Context<Self>;
}

impl Handler<Notice> for Collector {
    type Result = ();

    fn handle(&mut self, notice: Notice, _: &mut Self::Context) {
        self.notices.push(notice);
    }
}

/// Asks a [`Collector`] for what it kept.
#[derive(Message)]
#[rtype(result = "Vec<Notice>")]
pub struct Collected;

impl Handler<Collected> for Collector {
    type Result = MessageResult<Collected>;

    fn handle(&mut self, _: Collected, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.notices.clone())
    }
}
