//! [`QuorumManager`]: the actix shell around [`QuorumCore`]. It turns one
//! timer into ticks, polls the local Raft actor into [`Input::Progress`] and
//! [`Input::Election`], takes gossip-side facts as messages, carries out the
//! core's outputs through Raft, and answers the public messages. It holds
//! no protocol logic: every decision is the core's.
//!
//! - [`raft`]: the Raft actor as [`RaftHandle`] and the
//!   `QuorumConfig` ↔ Raft `Membership` mapping.
//! - [`messages`]: the gossip-side facts ([`MemberLiveness`],
//!   [`MemberDomain`], [`RttSample`]) and the actix form of the public
//!   requests.
//! - [`gossip`]: [`gossip::bridge_gossip`], which feeds a gossip actor's
//!   member states to managers as [`MemberLiveness`].
//!
//! Outputs become Raft messages in batch order; sends to one actor keep
//! their order in its mailbox, so Raft sees them as the core emitted them.
//! - `Propose` → `ChangeMembership` → [`Input::Committed`] or
//!   [`Input::Failed`], exactly once (a Raft actor that is gone counts as
//!   failed).
//! - `Verify` → `ProposeEmpty` (an entry the state machine never sees) →
//!   [`Input::Verified`] (plus its latency as [`Input::CommitLatency`]) or
//!   [`Input::Failed`].
//! - `Reply` → the waiting requester. A request that removes the local
//!   leader is answered by this manager too: Raft keeps the leader until
//!   its removal commits, then hands leadership to an up-to-date voter
//!   (TimeoutNow) and steps down, so no election timeout is waited out.
//! - `Health`, `Event`, `Audit` → the log (`tracing`) and every
//!   [`Subscribe`]d recipient, as a [`Notice`].

pub mod gossip;
pub mod messages;
pub mod raft;

pub use messages::{ManagerError, ManagerResult, MemberDomain, MemberLiveness, Notice, RttSample, Subscribe};
pub use raft::RaftHandle;

use crate::core::{CoreConfig, CoreConfigError, Input, Output, QuorumCore, Request, RequestId, Token};
use crate::messages::{
    AddNode, Adjust, Health, History, PromoteLearner, Query, Recommend, RemoveNode, SetPolicy, SetWeights,
    VerifyQuorum,
};
use actix::prelude::*;
use concord_raft::actor::{
    ChangeMembership, ElectionEvent, LogStatus, LogStatusReport, ProposeEmpty, Status,
};
use concord_raft::actor::{ElectionHistory, GetStatus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Default period of the manager's timer: core ticks and Raft polls.
pub const TICK_DEFAULT: Duration = Duration::from_millis(100);

/// Default bound on messages waiting in a manager's mailbox (`send`s beyond
/// it wait; gossip's `do_send`s are not held back by actix).
pub const MAILBOX_CAPACITY_DEFAULT: usize = 1_024;

/// Default bound on [`Subscribe`]d recipients.
pub const SUBSCRIBERS_MAX_DEFAULT: usize = 16;

/// Settings of a [`QuorumManager`].
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// The core's settings and bounds.
    pub core: CoreConfig,
    /// The timer period: each tick polls Raft and ticks the core.
    pub tick: Duration,
    /// Bound on the actor's mailbox.
    pub mailbox_capacity: usize,
    /// Bound on [`Subscribe`]d recipients.
    pub subscribers_max: usize,
    /// How its log lines name the group it manages (default: empty; the
    /// runtime sets the group's configured name).
    pub group_name: String,
}

impl ManagerConfig {
    /// Defaults for node `local`.
    pub fn new(local: concord_transport::NodeId) -> ManagerConfig {
        ManagerConfig {
            core: CoreConfig::new(local),
            tick: TICK_DEFAULT,
            mailbox_capacity: MAILBOX_CAPACITY_DEFAULT,
            subscribers_max: SUBSCRIBERS_MAX_DEFAULT,
            group_name: String::new(),
        }
    }
}

/// The quorum manager of one Raft group on one node.
pub struct QuorumManager {
    config: ManagerConfig,
    core: QuorumCore,
    raft: RaftHandle,
    /// The origin of the core's clock (monotonic).
    started: Instant,
    /// One Raft poll in flight at most: a slow Raft actor is not flooded
    /// with a poll per tick.
    polling: bool,
    /// `ChangeMembership`s answered committed so far. A poll sent before
    /// the latest one and answered after it may carry the older
    /// configuration; the core must see configurations in Raft's order, so
    /// such a poll is dropped.
    commits_answered: u64,
    /// The newest election term fed to the core.
    election_term: u64,
    next_request: u64,
    /// Requesters awaiting the core's reply. Bounded by the core, which
    /// answers at once (refusing) beyond `pending_requests_max` queued
    /// requests and `verifications_max` verifications.
    replies: BTreeMap<RequestId, oneshot::Sender<ManagerResult>>,
    /// At most `subscribers_max`.
    subscribers: Vec<Recipient<Notice>>,
}

impl QuorumManager {
    /// A manager over the local Raft actor; start it with `.start()`.
    pub fn new(config: ManagerConfig, raft: impl Into<RaftHandle>) -> Result<QuorumManager, CoreConfigError> {
        Ok(QuorumManager {
            core: QuorumCore::new(config.core.clone())?,
            config,
            raft: raft.into(),
            started: Instant::now(),
            polling: false,
            commits_answered: 0,
            election_term: 0,
            next_request: 1,
            replies: BTreeMap::new(),
            subscribers: Vec::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        elapsed_ms(self.started)
    }

    /// Steps the core with one input and carries out its outputs: the
    /// driver every handler ends with.
    fn drive(&mut self, input: Input, ctx: &mut Context<Self>) {
        let now = self.now_ms();
        self.core.step(now, input);
        self.carry_out(ctx);
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.now_ms();
        self.core.tick(now);
        self.carry_out(ctx);
    }

    /// Polls Raft's status, replication and elections, unless a poll is
    /// still out.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.polling {
            return;
        }
        self.polling = true;
        let commits_before = self.commits_answered;
        let raft = self.raft.clone();
        async move {
            let status = raft.status.send(GetStatus).await?;
            // Match indexes are the leader's alone.
            let log = if status.leader == Some(status.id) {
                Some(raft.log_status.send(LogStatus).await?)
            } else {
                None
            };
            let elections = raft.elections.send(ElectionHistory).await?;
            Ok::<_, MailboxError>((status, log, elections))
        }
        .into_actor(self)
        .map(move |polled, manager, ctx| {
            manager.polling = false;
            match polled {
                Ok((status, log, elections)) => manager.on_poll(commits_before, status, log, elections, ctx),
                Err(error) => tracing::warn!(%error, "the raft actor did not answer the poll"),
            }
        })
        .spawn(ctx);
    }

    fn on_poll(
        &mut self,
        commits_before: u64,
        status: Status,
        log: Option<LogStatusReport>,
        elections: Vec<ElectionEvent>,
        ctx: &mut Context<Self>,
    ) {
        let fed_up_to = self.election_term;
        for election in elections.into_iter().filter(|e| e.term > fed_up_to) {
            self.election_term = self.election_term.max(election.term);
            self.drive(Input::Election { term: election.term, leader: election.new_leader }, ctx);
        }
        if commits_before != self.commits_answered {
            return;
        }
        match raft::progress(&status, log.as_ref()) {
            Ok(progress) => self.drive(Input::Progress(progress), ctx),
            Err(error) => {
                tracing::error!(%error, "raft's configuration cannot be represented; progress dropped")
            }
        }
    }

    /// Carries out the core's outputs in order.
    fn carry_out(&mut self, ctx: &mut Context<Self>) {
        for output in self.core.take_outputs() {
            match output {
                Output::Propose { token, config } => {
                    let change =
                        self.raft.change_membership.send(ChangeMembership(raft::to_membership(&config)));
                    change
                        .into_actor(self)
                        .map(move |answer, manager, ctx| {
                            let input = match answer {
                                Ok(Ok(_)) => {
                                    manager.commits_answered += 1;
                                    Input::Committed(token)
                                }
                                Ok(Err(error)) => failed(token, error),
                                Err(error) => failed(token, error),
                            };
                            manager.drive(input, ctx);
                        })
                        .spawn(ctx);
                }
                Output::Verify { token } => {
                    let asked = Instant::now();
                    let propose = self.raft.propose_empty.clone();
                    // `Propose` answers once the entry is in the leader's log,
                    // which a minority leader still manages: only the applied
                    // entry shows that a quorum commits.
                    let applied = async move {
                        match propose.send(ProposeEmpty).await {
                            Ok(Ok(pending)) => pending.await.map(|_| ()).map_err(|e| e.to_string()),
                            Ok(Err(error)) => Err(error.to_string()),
                            Err(error) => Err(error.to_string()),
                        }
                    };
                    applied
                        .into_actor(self)
                        .map(move |answer, manager, ctx| match answer {
                            Ok(()) => {
                                manager.drive(Input::CommitLatency { latency_ms: elapsed_ms(asked) }, ctx);
                                manager.drive(Input::Verified { token, committed: true }, ctx);
                            }
                            Err(error) => manager.drive(failed(token, error), ctx),
                        })
                        .spawn(ctx);
                }
                Output::Reply { request, result } => {
                    if let Some(requester) = self.replies.remove(&request) {
                        // A requester that stopped waiting is no error.
                        let _ = requester.send(result.map_err(ManagerError::from));
                    }
                }
                Output::Health(health) => self.notify(Notice::Health(health)),
                Output::Event(event) => self.notify(Notice::Event(event)),
                Output::Audit(record) => self.notify(Notice::Audit(record)),
            }
        }
    }

    /// Logs a report and hands it to every subscriber.
    fn notify(&mut self, notice: Notice) {
        tracing::info!(group = %self.config.group_name, "quorum manager: {notice}");
        self.subscribers.retain(|subscriber| match subscriber.try_send(notice.clone()) {
            Ok(()) => true,
            Err(SendError::Full(_)) => {
                tracing::warn!("a quorum manager subscriber is full; a notice is lost to it");
                true
            }
            Err(SendError::Closed(_)) => false,
        });
    }

    /// Hands an operator request to the core; the answer comes with its
    /// reply.
    fn request(&mut self, request: Request, ctx: &mut Context<Self>) -> ResponseFuture<ManagerResult> {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let (sender, receiver) = oneshot::channel();
        self.replies.insert(id, sender);
        self.drive(Input::Request { id, request }, ctx);
        Box::pin(async move { receiver.await.unwrap_or(Err(ManagerError::Stopped)) })
    }
}

/// Milliseconds since `since`, saturating (u64 milliseconds outlast any
/// process).
fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Raft's refusal, or its actor gone, as the core's input: either way the
/// proposal or verification ended without committing.
fn failed(token: Token, error: impl std::fmt::Display) -> Input {
    Input::Failed { token, reason: format!("raft: {error}") }
}

impl Actor for QuorumManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.config.mailbox_capacity);
        ctx.run_interval(self.config.tick, |manager, ctx| {
            manager.poll(ctx);
            manager.tick(ctx);
        });
    }
}

impl Handler<Subscribe> for QuorumManager {
    type Result = Result<(), ManagerError>;

    fn handle(&mut self, Subscribe(subscriber): Subscribe, _: &mut Context<Self>) -> Self::Result {
        self.subscribers.retain(|s| s.connected());
        let max = self.config.subscribers_max;
        if self.subscribers.len() >= max {
            return Err(ManagerError::TooManySubscribers { max });
        }
        self.subscribers.push(subscriber);
        Ok(())
    }
}

impl Handler<MemberLiveness> for QuorumManager {
    type Result = ();

    fn handle(&mut self, message: MemberLiveness, ctx: &mut Context<Self>) {
        self.drive(Input::Liveness { node: message.node, liveness: message.state }, ctx);
    }
}

impl Handler<MemberDomain> for QuorumManager {
    type Result = ();

    fn handle(&mut self, message: MemberDomain, ctx: &mut Context<Self>) {
        self.drive(Input::Domain { node: message.node, domain: message.domain }, ctx);
    }
}

impl Handler<RttSample> for QuorumManager {
    type Result = ();

    fn handle(&mut self, message: RttSample, ctx: &mut Context<Self>) {
        self.drive(Input::Rtt { a: message.from, b: message.to, rtt_ms: message.rtt_ms }, ctx);
    }
}

/// Queries: answered from the core's state, brought up to the present
/// first so that failure windows and timeouts count.
macro_rules! query_handlers {
    ($($message:ident),*) => {$(
        impl Handler<$message> for QuorumManager {
            type Result = MessageResult<$message>;

            fn handle(&mut self, message: $message, ctx: &mut Context<Self>) -> Self::Result {
                self.tick(ctx);
                MessageResult(message.answer(&self.core))
            }
        }
    )*};
}

/// Changes and verifications: one core request each.
macro_rules! operation_handlers {
    ($($message:ident),*) => {$(
        impl Handler<$message> for QuorumManager {
            type Result = ResponseFuture<ManagerResult>;

            fn handle(&mut self, message: $message, ctx: &mut Context<Self>) -> Self::Result {
                self.request(Request::from(message), ctx)
            }
        }
    )*};
}

query_handlers!(Health, Recommend, History);
operation_handlers!(Adjust, AddNode, RemoveNode, PromoteLearner, SetWeights, SetPolicy, VerifyQuorum);
