//! Concord's gossip coordinator. To come (issue 4): a pure gossip core
//! (dissemination, anti-entropy, CRDT state, SWIM failure detection) inside a
//! `GossipActor`.
