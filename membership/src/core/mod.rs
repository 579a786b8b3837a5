//! [`QuorumCore`]: the quorum manager's deterministic state machine.
//!
//! Inputs go in through [`QuorumCore::step`] and [`QuorumCore::tick`], each
//! with the caller's clock in milliseconds; outputs come out in batches
//! through [`QuorumCore::take_outputs`]. The core never reads a clock, never
//! does IO and holds no randomness, so a test or a simulator replays it
//! exactly.
//!
//! - [`config`]: settings and bounds.
//! - [`io`]: inputs, operator requests, outputs, events, errors.
//! - [`history`]: the audit records of finished operations.
//! - `operation`: one operation's validate → plan → apply → verify → record,
//!   with rollback.
//! - `automatic`: leave, failed-voter replacement, promotion and join.

mod automatic;
pub mod config;
pub mod history;
pub mod io;
mod operation;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod tests;

pub use config::{CoreConfig, CoreConfigError};
pub use history::{HistoryRecord, Origin};
pub use io::{Event, Input, OperationId, Outcome, Output, Request, RequestError, RequestId, Token};

use crate::health::{ClusterHealth, HealthStatus, Liveness, Observations, Window};
use crate::recommend::{combine, CombinedRecommendation, Context};
use automatic::{Attempt, Automatic};
use concord_transport::NodeId;
use operation::Operation;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The quorum manager's core. Every node runs one; only the Raft leader's
/// core proposes changes (others refuse requests with
/// [`RequestError::NotLeader`] and only report).
#[derive(Debug)]
pub struct QuorumCore {
    config: CoreConfig,
    obs: Observations,
    domains: BTreeMap<NodeId, String>,
    now_ms: u64,
    next_token: u64,
    next_operation: u64,
    operation: Option<Operation>,
    queue: VecDeque<(RequestId, Request)>,
    /// Operator verifications awaiting Raft: the request and when it was
    /// asked; unanswered past `verify_timeout_ms`, the answer is "did not
    /// commit", so a lost answer cannot fill the bound for good.
    verifications: BTreeMap<Token, (RequestId, u64)>,
    /// Automatic operations already tried per node: one refused before
    /// anything was proposed waits until the node is next seen alive; one
    /// that failed once proposed is retried after a backoff. Bounded by the
    /// members and the nodes observed.
    attempted: BTreeMap<(NodeId, Automatic), Attempt>,
    /// Every node seen in a configuration: automatic joins are for new
    /// nodes only, so a removed node that gossip still reports alive stays
    /// out until an operator adds it. At most `nodes_max`.
    former_members: BTreeSet<NodeId>,
    /// Per member, the highest match index the leader reported for it and
    /// when it was first reported: a voter whose log still advances is
    /// alive whatever gossip holds (a stale Dead view can outlive the
    /// node's return), so it is not replaced. Members only.
    replicated: BTreeMap<NodeId, (u64, u64)>,
    history: Window<HistoryRecord>,
    outputs: Vec<Output>,
    status: Option<HealthStatus>,
}

impl QuorumCore {
    /// A core with no observations yet.
    pub fn new(config: CoreConfig) -> Result<QuorumCore, CoreConfigError> {
        config.validate()?;
        Ok(QuorumCore {
            obs: Observations::new(config.local, config.observations.clone()),
            history: Window::new(config.history_len_max),
            config,
            domains: BTreeMap::new(),
            now_ms: 0,
            next_token: 1,
            next_operation: 1,
            operation: None,
            queue: VecDeque::new(),
            verifications: BTreeMap::new(),
            attempted: BTreeMap::new(),
            former_members: BTreeSet::new(),
            replicated: BTreeMap::new(),
            outputs: Vec::new(),
            status: None,
        })
    }

    /// Feeds one input observed or received at `now_ms`.
    pub fn step(&mut self, now_ms: u64, input: Input) {
        self.advance_clock(now_ms);
        let now = self.now_ms;
        match input {
            Input::Liveness { node, liveness } => {
                self.obs.observe_liveness(node, liveness, now);
                if liveness == Liveness::Alive {
                    self.attempted.retain(|&(id, _), _| id != node);
                }
            }
            Input::Domain { node, domain } => {
                if self.domains.contains_key(&node) || self.domains.len() < self.config.observations.nodes_max
                {
                    self.domains.insert(node, domain);
                }
            }
            Input::Rtt { a, b, rtt_ms } => self.obs.observe_rtt(a, b, rtt_ms, now),
            Input::Progress(progress) => {
                let voting = &progress.config.voting;
                for &id in voting.voters().keys().chain(voting.learners()) {
                    if self.former_members.len() < self.config.observations.nodes_max {
                        self.former_members.insert(id);
                    }
                }
                for (&id, &index) in &progress.match_index {
                    let advanced = self.replicated.get(&id).is_none_or(|&(known, _)| index > known);
                    if advanced && voting.contains(id) {
                        self.replicated.insert(id, (index, now));
                    }
                }
                self.replicated.retain(|&id, _| voting.contains(id));
                self.obs.observe_progress(progress);
            }
            Input::CommitLatency { latency_ms } => self.obs.observe_commit_latency(latency_ms),
            Input::Election { term, leader } => self.obs.observe_election(term, leader, now),
            Input::LeaderClaim { term, leader } => self.obs.observe_leader(term, leader),
            Input::Request { id, request } => self.request(id, request),
            Input::Committed(token) => self.on_committed(token),
            Input::Failed { token, reason } => match self.verifications.remove(&token) {
                Some((request, _)) => self.reply(request, Ok(Outcome::Verified { committed: false })),
                None => self.on_failed(token, reason),
            },
            Input::Verified { token, committed } => match self.verifications.remove(&token) {
                Some((request, _)) => self.reply(request, Ok(Outcome::Verified { committed })),
                None => self.on_verified(token, committed),
            },
        }
        self.drive();
    }

    /// Lets time pass: failure windows and timeouts are checked here.
    pub fn tick(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        self.drive();
    }

    /// The outputs produced since the last call, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// The health report now.
    pub fn health(&self) -> ClusterHealth {
        self.obs.health(self.now_ms)
    }

    /// The combined recommendation now.
    pub fn recommend(&self) -> CombinedRecommendation {
        combine(&Context {
            observations: &self.obs,
            domains: &self.domains,
            learner_lag_max: self.config.learner_lag_max,
            latency_gain_min_percent: self.config.latency_gain_min_percent,
            now_ms: self.now_ms,
        })
    }

    /// Finished operations, oldest first, at most `history_len_max`.
    pub fn history(&self) -> Vec<HistoryRecord> {
        self.history.iter().cloned().collect()
    }

    /// What has been observed.
    pub fn observations(&self) -> &Observations {
        &self.obs
    }

    /// Whether an operation is in flight.
    pub fn busy(&self) -> bool {
        self.operation.is_some()
    }

    /// Requests waiting behind the operation in flight.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The caller's clock may stall or step back (another thread's
    /// timestamp); the core's time only moves forward.
    fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Whether this core may propose: Raft says the local node leads, and
    /// it is still a voter (a leader that removed itself leads only until
    /// the removal commits).
    fn is_leader(&self) -> bool {
        let progress = self.obs.progress();
        progress.leader == Some(self.config.local) && progress.config.voting.is_voter(self.config.local)
    }

    /// Whether the leader saw `id`'s log advance within the failure window.
    fn replicated_recently(&self, id: NodeId) -> bool {
        self.replicated
            .get(&id)
            .is_some_and(|&(_, at_ms)| self.now_ms.saturating_sub(at_ms) < self.config.failed_window_ms)
    }

    /// Whether `id`'s log is within `learner_lag_max` of the commit index.
    fn caught_up(&self, id: NodeId) -> bool {
        self.obs.caught_up(id, self.config.learner_lag_max)
    }

    fn token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        token
    }

    fn emit(&mut self, output: Output) {
        assert!(
            self.outputs.len() < self.config.outputs_max,
            "outputs_max ({}) exceeded: the caller must take outputs after every step",
            self.config.outputs_max
        );
        self.outputs.push(output);
    }

    fn reply(&mut self, request: RequestId, result: Result<Outcome, RequestError>) {
        self.emit(Output::Reply { request, result });
    }

    /// Verification runs beside operations; every other request waits its
    /// turn in the bounded queue.
    fn request(&mut self, id: RequestId, request: Request) {
        if request == Request::VerifyQuorum {
            if self.verifications.len() >= self.config.verifications_max {
                let max = self.config.verifications_max;
                return self.reply(id, Err(RequestError::QueueFull { max }));
            }
            let token = self.token();
            self.verifications.insert(token, (id, self.now_ms));
            return self.emit(Output::Verify { token });
        }
        if !self.is_leader() {
            let leader = self.obs.progress().leader;
            return self.reply(id, Err(RequestError::NotLeader { leader }));
        }
        if self.queue.len() >= self.config.pending_requests_max {
            let max = self.config.pending_requests_max;
            return self.reply(id, Err(RequestError::QueueFull { max }));
        }
        self.queue.push_back((id, request));
    }

    /// After every input: report a health change, move the operation on,
    /// and when idle start the next request or automatic operation.
    fn drive(&mut self) {
        let (now, timeout) = (self.now_ms, self.config.verify_timeout_ms);
        let expired: Vec<Token> = self
            .verifications
            .iter()
            .filter(|(_, &(_, asked_ms))| now.saturating_sub(asked_ms) > timeout)
            .map(|(&token, _)| token)
            .collect();
        for token in expired {
            if let Some((request, _)) = self.verifications.remove(&token) {
                self.reply(request, Ok(Outcome::Verified { committed: false }));
            }
        }
        let health = self.obs.health(self.now_ms);
        if self.status != Some(health.status) {
            self.status = Some(health.status);
            self.emit(Output::Health(health));
        }
        self.advance_operation();
        while self.operation.is_none() {
            let Some((id, request)) = self.queue.pop_front() else { break };
            let started = self.target_of(&request).and_then(|(description, target)| {
                self.start_operation(Origin::Operator(id), None, description, target)
            });
            if let Err(error) = started {
                self.reply(id, Err(error));
            }
        }
        if self.operation.is_none() && self.is_leader() {
            self.start_automatic();
        }
    }

    /// What a request asks for, as a whole target configuration.
    fn target_of(&self, request: &Request) -> Result<(String, crate::quorum::QuorumConfig), RequestError> {
        let mut target = self.obs.progress().config.clone();
        let weight = |w: &Option<crate::quorum::Weight>| w.unwrap_or(crate::quorum::WEIGHT_DEFAULT);
        let description = match request {
            Request::AddNode { node, voter: true, weight: w } => {
                target.voting.add_voter(*node, weight(w))?;
                format!("add {node} as a voter")
            }
            Request::AddNode { node, voter: false, .. } => {
                target.voting.add_learner(*node)?;
                format!("add {node} as a learner")
            }
            Request::RemoveNode { node } => {
                target.voting.remove(*node)?;
                format!("remove {node}")
            }
            Request::PromoteLearner { node, weight: w } => {
                target.voting.promote(*node, weight(w))?;
                format!("promote {node}")
            }
            Request::SetWeights { weights } => {
                for (&node, &w) in weights {
                    target.voting.set_weight(node, w)?;
                }
                "set weights".to_string()
            }
            Request::SetPolicy { policy } => {
                target.policy = *policy;
                format!("set policy {policy:?}")
            }
            Request::Adjust { target: wanted } => {
                target = wanted.clone();
                "adjust to a target configuration".to_string()
            }
            Request::VerifyQuorum => unreachable!("verifications never queue"),
        };
        Ok((description, target))
    }
}
