//! One audited operation: validate, plan, apply step by step, verify,
//! record; roll back when a step or the verification fails.

use super::automatic::Automatic;
use super::history::{HistoryRecord, Origin};
use super::io::{Event, OperationId, Outcome, Output, RequestError, Token};
use super::QuorumCore;
use crate::quorum::{plan, plan_leaving_last, QuorumConfig};
use concord_transport::NodeId;
use std::collections::VecDeque;

/// Where an operation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing outstanding: propose the next step, or verify when none is left.
    Ready,
    /// The next step waits for a condition.
    Waiting { wait: Wait, since_ms: u64 },
    /// A step is proposed and not yet committed. Raft answers every
    /// proposal, commit or error, so the core waits for that answer however
    /// long it takes: proposing anything else meanwhile could put two
    /// changes in flight. Past `change_timeout_ms` it says so, once.
    Proposed { token: Token, since_ms: u64, overdue: bool },
    /// All steps committed; waiting for the new quorum to commit a no-op.
    Verifying { token: Token, since_ms: u64 },
}

/// What a step waits for before it is proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The step promotes this learner, which must catch up first.
    CatchUp(NodeId),
    /// The voters up now cannot make a quorum of the configuration in force
    /// or of the next one: proposing would only time out.
    Quorum,
}

/// The operation in flight.
#[derive(Clone, Debug)]
pub(crate) struct Operation {
    pub id: OperationId,
    pub origin: Origin,
    /// For an automatic operation, the node and kind: a failure schedules
    /// its retry.
    pub automatic: Option<(NodeId, Automatic)>,
    pub description: String,
    /// The configuration before the first step: what a rollback restores.
    pub from: QuorumConfig,
    pub target: QuorumConfig,
    /// Steps still to propose, in order.
    pub steps: VecDeque<QuorumConfig>,
    /// The configuration after the last committed step.
    pub applied: QuorumConfig,
    pub steps_committed: usize,
    /// Why the operation is being rolled back, once it is.
    pub rolling_back: Option<String>,
    pub phase: Phase,
    pub started_ms: u64,
}

impl QuorumCore {
    /// Validates and plans a move to `target`, then starts it. Refusals
    /// leave no trace but the error: nothing was proposed.
    pub(crate) fn start_operation(
        &mut self,
        origin: Origin,
        automatic: Option<(NodeId, Automatic)>,
        description: String,
        target: QuorumConfig,
    ) -> Result<(), RequestError> {
        assert!(self.operation.is_none(), "one operation at a time");
        let current = self.obs.progress().config.clone();
        if !self.is_leader() {
            return Err(RequestError::NotLeader { leader: self.obs.progress().leader });
        }
        if !current.fault_tolerance(&self.obs.up_voters()).quorum_available {
            return Err(RequestError::QuorumLost);
        }
        target.validate()?;
        let (voters, voters_min) = (target.voting.voters().len(), self.config.voters_min);
        if voters < voters_min && voters < current.voting.voters().len() {
            return Err(RequestError::BelowVotersMin { voters, voters_min });
        }
        let steps = self.plan_steps(&current, &target)?;
        let id = OperationId(self.next_operation);
        self.next_operation += 1;
        let operation = Operation {
            id,
            origin,
            automatic,
            description: description.clone(),
            from: current.clone(),
            target,
            steps: steps.into(),
            applied: current,
            steps_committed: 0,
            rolling_back: None,
            phase: Phase::Ready,
            started_ms: self.now_ms,
        };
        let unchanged = operation.steps.is_empty();
        self.operation = Some(operation);
        self.emit(Output::Event(Event::OperationStarted { operation: id, description }));
        if unchanged {
            self.finish(Outcome::Unchanged);
        } else {
            self.advance_operation();
        }
        Ok(())
    }

    /// Single safe steps from `current` to `target`, the local node's own
    /// removal last (Raft lets a leader lead until its removal commits and
    /// then steps it down, so nothing can follow that step), each keeping a
    /// quorum among the voters up now.
    fn plan_steps(
        &self,
        current: &QuorumConfig,
        target: &QuorumConfig,
    ) -> Result<Vec<QuorumConfig>, RequestError> {
        let steps = plan_leaving_last(current, target, self.config.plan_steps_max, Some(self.config.local))?;
        for (index, step) in steps.iter().enumerate() {
            let up = step.voting.voters().keys().copied().filter(|&id| self.obs.is_up(id)).collect();
            if !step.fault_tolerance(&up).quorum_available {
                return Err(RequestError::WouldLoseQuorum { step: index + 1 });
            }
        }
        Ok(steps)
    }

    /// Moves the operation on as far as it can go without an answer.
    pub(crate) fn advance_operation(&mut self) {
        let now = self.now_ms;
        loop {
            let Some(op) = self.operation.as_ref() else { return };
            match op.phase.clone() {
                Phase::Ready => {
                    let Some(next) = op.steps.front().cloned() else {
                        match op.rolling_back.clone() {
                            Some(reason) => self.finish(Outcome::RolledBack { reason }),
                            // The local leader removed itself: Raft counted the
                            // removal's commit with the new configuration's
                            // quorum, which is what a verification would show,
                            // and the node no longer leads to verify anything.
                            None if !op.applied.voting.is_voter(self.config.local) => {
                                let steps = op.steps_committed;
                                self.finish(Outcome::Completed { steps });
                            }
                            None => {
                                let token = self.token();
                                self.set_phase(Phase::Verifying { token, since_ms: now });
                                self.emit(Output::Verify { token });
                            }
                        }
                        return;
                    };
                    if !self.is_leader() {
                        let reason = match &op.rolling_back {
                            Some(first) => {
                                format!("{first}; the rollback stopped: the local node no longer leads")
                            }
                            None => "the local node no longer leads".to_string(),
                        };
                        return self.finish(Outcome::Failed { reason });
                    }
                    if let Some(wait) = self.wait_for(&op.applied, &next) {
                        self.set_phase(Phase::Waiting { wait, since_ms: now });
                        return;
                    }
                    let token = self.token();
                    self.set_phase(Phase::Proposed { token, since_ms: now, overdue: false });
                    self.emit(Output::Propose { token, config: next });
                    return;
                }
                Phase::Waiting { wait, since_ms } => {
                    let (applied, next) = (op.applied.clone(), op.steps.front().cloned());
                    let still = next.and_then(|next| self.wait_for(&applied, &next));
                    let waited = now.saturating_sub(since_ms);
                    match still {
                        None => self.set_phase(Phase::Ready),
                        Some(Wait::CatchUp(node)) if waited > self.config.catch_up_timeout_ms => {
                            let ms = self.config.catch_up_timeout_ms;
                            self.fail(format!("learner {node} did not catch up within {ms} ms"));
                        }
                        Some(Wait::Quorum) if waited > self.config.change_timeout_ms => {
                            let ms = self.config.change_timeout_ms;
                            self.fail(format!("no reachable quorum for {ms} ms"));
                        }
                        Some(current) => {
                            if current != wait {
                                self.set_phase(Phase::Waiting { wait: current, since_ms });
                            }
                            return;
                        }
                    }
                }
                Phase::Proposed { token, since_ms, overdue: false }
                    if now.saturating_sub(since_ms) > self.config.change_timeout_ms =>
                {
                    self.set_phase(Phase::Proposed { token, since_ms, overdue: true });
                    let waited_ms = now - since_ms;
                    self.emit(Output::Event(Event::ChangeOverdue { token, waited_ms }));
                    return;
                }
                Phase::Proposed { .. } => return,
                Phase::Verifying { since_ms, .. } => {
                    if now.saturating_sub(since_ms) > self.config.verify_timeout_ms {
                        let ms = self.config.verify_timeout_ms;
                        self.fail(format!("the new quorum did not verify within {ms} ms"));
                    } else {
                        return;
                    }
                }
            }
        }
    }

    /// Why step `next` after `applied` cannot be proposed yet, if it cannot.
    fn wait_for(&self, applied: &QuorumConfig, next: &QuorumConfig) -> Option<Wait> {
        let reachable = |config: &QuorumConfig| {
            let up = config.voting.voters().keys().copied().filter(|&id| self.obs.is_up(id)).collect();
            config.fault_tolerance(&up).quorum_available
        };
        if !reachable(applied) || !reachable(next) {
            return Some(Wait::Quorum);
        }
        next.voting
            .voters()
            .keys()
            .copied()
            .find(|&id| !applied.voting.is_voter(id) && !self.caught_up(id))
            .map(Wait::CatchUp)
    }

    /// A step committed.
    pub(crate) fn on_committed(&mut self, token: Token) {
        let Some(op) = self.operation.as_mut() else { return };
        if !matches!(op.phase, Phase::Proposed { token: t, .. } if t == token) {
            return;
        }
        let step = op.steps.pop_front().expect("a proposed step is the front step");
        op.applied = step.clone();
        // Raft's next progress report may come after the next decision; the
        // commit already tells what is in force.
        self.obs.set_config(step);
        let Some(op) = self.operation.as_mut() else { return };
        op.steps_committed += 1;
        op.phase = Phase::Ready;
        self.advance_operation();
    }

    /// A verification answered.
    pub(crate) fn on_verified(&mut self, token: Token, committed: bool) {
        let Some(op) = self.operation.as_ref() else { return };
        if !matches!(op.phase, Phase::Verifying { token: t, .. } if t == token) {
            return;
        }
        if committed {
            let steps = op.steps_committed;
            self.finish(Outcome::Completed { steps });
        } else {
            self.fail("the new quorum did not commit the verification".to_string());
        }
    }

    /// A proposal or verification of the operation failed in Raft.
    pub(crate) fn on_failed(&mut self, token: Token, reason: String) {
        let Some(op) = self.operation.as_ref() else { return };
        match op.phase {
            Phase::Proposed { token: t, .. } | Phase::Verifying { token: t, .. } if t == token => {
                self.fail(reason)
            }
            _ => {}
        }
    }

    /// Rolls back the steps applied, or ends the operation when there is
    /// nothing to undo or the rollback itself failed.
    fn fail(&mut self, reason: String) {
        let steps_max = self.config.plan_steps_max;
        let Some(op) = self.operation.as_mut() else { return };
        if let Some(first) = &op.rolling_back {
            let reason = format!("{first}; then the rollback failed: {reason}");
            return self.finish(Outcome::Failed { reason });
        }
        if op.steps_committed == 0 {
            return self.finish(Outcome::Failed { reason });
        }
        match plan(&op.applied, &op.from, steps_max) {
            Ok(steps) => {
                op.steps = steps.into();
                op.rolling_back = Some(reason);
                op.phase = Phase::Ready;
                self.advance_operation();
            }
            Err(error) => {
                let reason = format!("{reason}; no rollback plan: {error}");
                self.finish(Outcome::Failed { reason });
            }
        }
    }

    /// Records the operation, answers its requester, and clears the slot.
    fn finish(&mut self, outcome: Outcome) {
        let op = self.operation.take().expect("finishing the operation in flight");
        let record = HistoryRecord {
            operation: op.id,
            origin: op.origin,
            description: op.description,
            from: op.from,
            target: op.target,
            steps_committed: op.steps_committed,
            outcome: outcome.clone(),
            started_ms: op.started_ms,
            finished_ms: self.now_ms,
        };
        self.history.push(record.clone());
        self.emit(Output::Audit(record));
        if let (Some((node, kind)), Outcome::Failed { .. } | Outcome::RolledBack { .. }) =
            (op.automatic, &outcome)
        {
            self.automatic_failed(node, kind);
        }
        if let Origin::Operator(request) = op.origin {
            self.emit(Output::Reply { request, result: Ok(outcome) });
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if let Some(op) = self.operation.as_mut() {
            op.phase = phase;
        }
    }
}
