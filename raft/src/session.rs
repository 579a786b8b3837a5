//! Client sessions for exactly-once commands (thesis §6.3): the state
//! machine side remembers, per client, the last sequence number applied and
//! its response, so that a retried command is answered without applying it
//! again. The table is part of the replicated state (and of snapshots).

use crate::core::types::ClientTag;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default bound on remembered client sessions.
pub const SESSIONS_MAX_DEFAULT: usize = 100_000;

/// What happened to a tagged command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    /// New: apply it, then [`Sessions::record`] its response.
    Apply,
    /// Applied before: here is its response.
    Duplicate(Bytes),
    /// Older than the last command applied for the client, whose response
    /// is gone: the client gave up on it long ago.
    Stale,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    sequence: u64,
    response: Bytes,
    last_index: u64,
}

/// The session table. Deterministic: every replica that applies the same
/// log holds the same table, evictions included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    sessions: BTreeMap<u64, Session>,
    sessions_max: usize,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new(SESSIONS_MAX_DEFAULT)
    }
}

impl Sessions {
    /// An empty table keeping at most `sessions_max` clients; the least
    /// recently active is evicted first.
    pub fn new(sessions_max: usize) -> Sessions {
        assert!(sessions_max > 0, "sessions_max must be positive");
        Sessions { sessions: BTreeMap::new(), sessions_max }
    }

    /// Whether the command tagged `tag` should be applied.
    pub fn check(&self, tag: ClientTag) -> SessionCheck {
        match self.sessions.get(&tag.client_id) {
            Some(s) if tag.sequence == s.sequence => SessionCheck::Duplicate(s.response.clone()),
            Some(s) if tag.sequence < s.sequence => SessionCheck::Stale,
            _ => SessionCheck::Apply,
        }
    }

    /// Records the response of the command tagged `tag`, applied at `index`.
    pub fn record(&mut self, tag: ClientTag, index: u64, response: Bytes) {
        if !self.sessions.contains_key(&tag.client_id) && self.sessions.len() >= self.sessions_max {
            let oldest = self.sessions.iter().min_by_key(|(id, s)| (s.last_index, **id)).map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.sessions.remove(&id);
            }
        }
        self.sessions.insert(tag.client_id, Session { sequence: tag.sequence, response, last_index: index });
    }

    /// Clients remembered.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(client_id: u64, sequence: u64) -> ClientTag {
        ClientTag { client_id, sequence }
    }

    #[test]
    fn a_retried_command_is_answered_not_reapplied() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.check(tag(1, 1)), SessionCheck::Apply);
        sessions.record(tag(1, 1), 5, Bytes::from_static(b"ok"));
        assert_eq!(sessions.check(tag(1, 1)), SessionCheck::Duplicate(Bytes::from_static(b"ok")));
        assert_eq!(sessions.check(tag(1, 2)), SessionCheck::Apply);
        sessions.record(tag(1, 2), 6, Bytes::new());
        assert_eq!(sessions.check(tag(1, 1)), SessionCheck::Stale);
        assert_eq!(sessions.check(tag(2, 1)), SessionCheck::Apply);
    }

    #[test]
    fn the_least_recently_active_client_is_evicted() {
        let mut sessions = Sessions::new(2);
        sessions.record(tag(1, 1), 1, Bytes::new());
        sessions.record(tag(2, 1), 2, Bytes::new());
        sessions.record(tag(1, 2), 3, Bytes::new());
        sessions.record(tag(3, 1), 4, Bytes::new());
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.check(tag(2, 1)), SessionCheck::Apply, "client 2 was evicted");
        assert!(matches!(sessions.check(tag(1, 2)), SessionCheck::Duplicate(_)));
    }
}
