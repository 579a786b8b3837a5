//! Client sessions for exactly-once commands (thesis §6.3): the state
//! machine side remembers, per client, the last sequence number applied and
//! its response, so that a retried command is answered without applying it
//! again. The table is part of the replicated state (and of snapshots).

use crate::core::types::ClientTag;
use bytes::Bytes;
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

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
///
/// Both collections are persistent (`imbl`): a clone shares them and costs
/// O(1), so a snapshot captures the table on the event loop without copying
/// it, and serializes it elsewhere. Evicting the least recently active
/// client is O(log n) through `by_activity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SessionsImage", into = "SessionsImage")]
pub struct Sessions {
    sessions: OrdMap<u64, Session>,
    /// `(last_index, client_id)` of every session: the first is evicted next.
    by_activity: OrdSet<(u64, u64)>,
    sessions_max: usize,
}

/// How [`Sessions`] is serialized: the map and the bound, as a `BTreeMap`
/// would write them (the activity index is rebuilt when read).
#[derive(Serialize, Deserialize)]
struct SessionsImage {
    sessions: OrdMap<u64, Session>,
    sessions_max: usize,
}

impl From<SessionsImage> for Sessions {
    fn from(image: SessionsImage) -> Sessions {
        let by_activity = image.sessions.iter().map(|(id, s)| (s.last_index, *id)).collect();
        Sessions { sessions: image.sessions, by_activity, sessions_max: image.sessions_max }
    }
}

impl From<Sessions> for SessionsImage {
    fn from(sessions: Sessions) -> SessionsImage {
        SessionsImage { sessions: sessions.sessions, sessions_max: sessions.sessions_max }
    }
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
        Sessions { sessions: OrdMap::new(), by_activity: OrdSet::new(), sessions_max }
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
            if let Some((_, oldest)) = self.by_activity.remove_min() {
                self.sessions.remove(&oldest);
            }
        }
        let session = Session { sequence: tag.sequence, response, last_index: index };
        if let Some(previous) = self.sessions.insert(tag.client_id, session) {
            self.by_activity.remove(&(previous.last_index, tag.client_id));
        }
        self.by_activity.insert((index, tag.client_id));
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

    fn round_trip(sessions: &Sessions) -> Sessions {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(sessions, config).unwrap();
        bincode::serde::decode_from_slice(&bytes, config).unwrap().0
    }

    /// The table encodes as it did with a `BTreeMap` (snapshots written
    /// before still read), and a table read back evicts as the original.
    #[test]
    fn the_encoding_is_a_sorted_map_and_the_activity_index_is_rebuilt() {
        #[derive(Serialize)]
        struct StdImage {
            sessions: std::collections::BTreeMap<u64, Session>,
            sessions_max: usize,
        }
        let mut sessions = Sessions::new(3);
        sessions.record(tag(9, 1), 1, Bytes::from_static(b"a"));
        sessions.record(tag(4, 1), 2, Bytes::from_static(b"b"));
        sessions.record(tag(7, 1), 3, Bytes::from_static(b"c"));
        sessions.record(tag(9, 2), 4, Bytes::from_static(b"d"));
        let session = |sequence, response: &'static [u8], last_index| Session {
            sequence,
            response: Bytes::from_static(response),
            last_index,
        };
        let standard = StdImage {
            sessions: [(4, session(1, b"b", 2)), (7, session(1, b"c", 3)), (9, session(2, b"d", 4))].into(),
            sessions_max: 3,
        };
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&standard, config).unwrap();
        assert_eq!(bincode::serde::encode_to_vec(&sessions, config).unwrap(), bytes);
        let mut read: Sessions = bincode::serde::decode_from_slice(&bytes, config).unwrap().0;
        assert_eq!(read, sessions);
        read.record(tag(5, 1), 5, Bytes::new());
        assert_eq!(
            read.check(tag(4, 1)),
            SessionCheck::Apply,
            "client 4, the least recently active, was evicted"
        );
        assert!(matches!(read.check(tag(7, 1)), SessionCheck::Duplicate(_)));
    }

    proptest::proptest! {
        /// Against the plain model (a map, and a scan for the least recently
        /// active client at each eviction), through serialization round
        /// trips: every client gets the same answer.
        #[test]
        fn the_table_behaves_as_the_scanning_model(
            ops in proptest::collection::vec((0u64..12, 1u64..4, proptest::bool::ANY), 1..200),
        ) {
            const MAX: usize = 4;
            let mut sessions = Sessions::new(MAX);
            let mut model = std::collections::BTreeMap::<u64, (u64, u64)>::new(); // client -> (sequence, last_index)
            for (index, (client, step, reload)) in (1u64..).zip(ops) {
                let sequence = model.get(&client).map_or(0, |&(s, _)| s) + step;
                if !model.contains_key(&client) && model.len() >= MAX {
                    let oldest = model.iter().min_by_key(|(id, (_, last))| (*last, **id)).map(|(id, _)| *id);
                    model.remove(&oldest.unwrap());
                }
                model.insert(client, (sequence, index));
                sessions.record(tag(client, sequence), index, Bytes::from(sequence.to_string()));
                if reload {
                    sessions = round_trip(&sessions);
                }
                proptest::prop_assert_eq!(sessions.len(), model.len());
                for client in 0..12 {
                    let expected = match model.get(&client) {
                        Some(&(sequence, _)) => SessionCheck::Duplicate(Bytes::from(sequence.to_string())),
                        None => SessionCheck::Apply,
                    };
                    let sequence = model.get(&client).map_or(1, |&(s, _)| s);
                    proptest::prop_assert_eq!(sessions.check(tag(client, sequence)), expected);
                }
            }
        }
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
