//! The key-value store: put, delete and compare-and-swap, each stamped with
//! the log index that wrote it (its revision, as etcd's `mod_revision`).

use super::item_hash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A key-value command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` (or removes it when `None`) only if its current
    /// value is `expected` (`None`: the key must be absent).
    CompareAndSwap {
        /// The key.
        key: String,
        /// The value the key must hold.
        expected: Option<String>,
        /// The value to set.
        new: Option<String>,
    },
}

/// A stored value with the revision that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Versioned {
    /// The value.
    pub value: String,
    /// The log index of the write.
    pub revision: u64,
}

/// The answer to a key-value command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResponse {
    /// Whether the command took effect (a failed compare-and-swap did not).
    pub succeeded: bool,
    /// The value before the command.
    pub previous: Option<Versioned>,
    /// The log index of this command.
    pub revision: u64,
}

/// The store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    entries: BTreeMap<String, Versioned>,
    /// Wrapping sum of every entry's [`item_hash`]; rebuilt on restore.
    #[serde(skip)]
    digest: u64,
}

impl KvStore {
    /// Applies the command of log entry `index`.
    pub fn apply(&mut self, index: u64, command: &KvCommand) -> KvResponse {
        let (key, succeeded, new) = match command {
            KvCommand::Put { key, value } => (key, true, Some(value)),
            KvCommand::Delete { key } => (key, true, None),
            KvCommand::CompareAndSwap { key, expected, new } => {
                let current = self.entries.get(key).map(|v| &v.value);
                (key, current == expected.as_ref(), new.as_ref())
            }
        };
        let previous = self.entries.get(key).cloned();
        if succeeded {
            if let Some(old) = &previous {
                self.digest = self.digest.wrapping_sub(item_hash(key, old));
            }
            match new {
                Some(value) => {
                    let versioned = Versioned { value: value.clone(), revision: index };
                    self.digest = self.digest.wrapping_add(item_hash(key, &versioned));
                    self.entries.insert(key.clone(), versioned);
                }
                None => {
                    self.entries.remove(key);
                }
            }
        }
        KvResponse { succeeded, previous, revision: index }
    }

    /// The order-independent digest of every entry, in O(1).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Recomputes the digest from the entries (after a restore).
    pub fn rehash(&mut self) {
        self.digest = self.entries.iter().fold(0u64, |sum, (k, v)| sum.wrapping_add(item_hash(k, v)));
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Versioned> {
        self.entries.get(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> KvCommand {
        KvCommand::Put { key: key.into(), value: value.into() }
    }

    #[test]
    fn put_get_delete_track_revisions() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply(1, &put("a", "1")).previous, None);
        let second = kv.apply(2, &put("a", "2"));
        assert_eq!(second.previous, Some(Versioned { value: "1".into(), revision: 1 }));
        assert_eq!(kv.get("a"), Some(&Versioned { value: "2".into(), revision: 2 }));
        assert!(kv.apply(3, &KvCommand::Delete { key: "a".into() }).succeeded);
        assert_eq!(kv.get("a"), None);
    }

    #[test]
    fn compare_and_swap_applies_only_on_a_match() {
        let mut kv = KvStore::default();
        let create = KvCommand::CompareAndSwap { key: "k".into(), expected: None, new: Some("v1".into()) };
        assert!(kv.apply(1, &create).succeeded);
        assert!(!kv.apply(2, &create).succeeded, "key exists now");
        let swap = KvCommand::CompareAndSwap {
            key: "k".into(),
            expected: Some("v0".into()),
            new: Some("v2".into()),
        };
        assert!(!kv.apply(3, &swap).succeeded);
        assert_eq!(kv.get("k").unwrap().value, "v1");
        let swap = KvCommand::CompareAndSwap { key: "k".into(), expected: Some("v1".into()), new: None };
        assert!(kv.apply(4, &swap).succeeded);
        assert!(kv.is_empty());
    }
}
