#![warn(missing_docs)]
//! Concord's quorum manager: it watches a Raft group through liveness,
//! round-trip times and replication progress, reports how much failure the
//! group still takes, recommends quorum changes, and plans and drives
//! membership changes as single safe Raft configuration changes.
//!
//! Two layers. The pure core ([`QuorumCore`]) does no IO, reads no clock and
//! runs no actors: time arrives as millisecond timestamps and the work to do
//! leaves as outputs, so that a simulator can replay it. The actix shell
//! ([`actor::QuorumManager`]) runs it beside the local Raft actor.
//!
//! Layout:
//! - [`actor`]: [`actor::QuorumManager`], the actix shell: a timer polls
//!   the Raft actor and ticks the core, gossip-side facts arrive as
//!   messages ([`actor::MemberLiveness`], [`actor::MemberDomain`],
//!   [`actor::RttSample`]), outputs become Raft messages, and the public
//!   messages are answered from the core.
//! - [`quorum`]: voting configurations, policies (majority, weighted,
//!   flexible), validation, single-step change checks and plans.
//! - [`health`]: observations (liveness, RTTs, Raft progress, latencies,
//!   elections) within named bounds, and the [`ClusterHealth`](health::ClusterHealth) report.
//! - [`recommend`]: network, performance and fault-tolerance strategies and
//!   the combiner that picks one recommendation with its reasoning.
//! - [`core`]: [`QuorumCore`], the state machine: inputs (liveness, RTTs,
//!   Raft progress, operator requests, results of proposals), outputs (one
//!   configuration change at a time, verifications, replies, reports,
//!   events, audit records).
//! - [`messages`]: the public request/response types (`Health`,
//!   `Recommend`, `Adjust`, `History`, `AddNode`, `RemoveNode`,
//!   `PromoteLearner`, `SetWeights`, `SetPolicy`, `VerifyQuorum`), sent to
//!   the actor as they are and carried by HTTP or CLI as JSON.
//!
//! Wiring, as [`actor::QuorumManager`] does it:
//! - gossip member events → [`Input::Liveness`] (alive / suspect / dead /
//!   left), node metadata → [`Input::Domain`], probe round trips →
//!   [`Input::Rtt`];
//! - Raft metrics → [`Input::Progress`] (leader, term, commit index, match
//!   indexes, configuration — in Raft's order), [`Input::CommitLatency`],
//!   [`Input::Election`];
//! - a timer → [`QuorumCore::tick`]; then [`QuorumCore::take_outputs`]
//!   after every call;
//! - [`Output::Propose`] → one Raft `ChangeMembership` carrying the whole
//!   [`QuorumConfig`](quorum::QuorumConfig) (voters with weights, learners,
//!   policy); its end → [`Input::Committed`] or [`Input::Failed`], always
//!   exactly one;
//! - [`Output::Verify`] → an empty entry committed through Raft
//!   (`ProposeEmpty`: the state machine never sees it) →
//!   [`Input::Verified`] (a change that removes the local leader is its
//!   own verification: Raft commits it with the new configuration's quorum,
//!   then hands leadership to an up-to-date voter and steps down);
//! - [`Output::Reply`] answers the operator request of the same id;
//!   [`Output::Health`], [`Output::Event`] and [`Output::Audit`] go to
//!   the log and to subscribers ([`actor::Subscribe`]).

pub mod actor;
pub mod core;
pub mod health;
pub mod messages;
pub mod quorum;
pub mod recommend;

pub use crate::core::{CoreConfig, Input, Output, QuorumCore, Request};
