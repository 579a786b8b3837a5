//! Log replication: the leader's per-follower progress with a pipelined
//! inflight window, the follower's consistency check with conflict-term
//! hints, and the commit rule of Figure 8.

use crate::core::message::{AppendOutcome, Body};
use crate::core::types::{Entry, Index, Term};
use crate::core::{Raft, Role};
use concord_transport::NodeId;
use std::collections::VecDeque;

/// How the leader sends to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the logs agree is unknown: one append at a time, resent per heartbeat.
    Probe,
    /// Logs agree up to `match_index`: appends are pipelined up to the window.
    Replicate,
    /// The follower needs a snapshot; chunks go one at a time.
    Snapshot {
        /// The snapshot's index.
        index: Index,
        /// The next byte to send.
        offset: u64,
    },
}

/// The leader's view of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known replicated on the follower.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// How entries are sent.
    pub state: ProgressState,
    /// In Probe or Snapshot state: a message is out, wait for its answer or a heartbeat.
    pub paused: bool,
    /// Last index of each append in flight, with its bytes.
    inflight: VecDeque<(Index, usize)>,
    inflight_bytes: usize,
    /// Heard from since the last check-quorum.
    pub recent_active: bool,
    /// The tick at which the latest heartbeat it answered was sent (for leases).
    pub acked_sent_tick: Option<u64>,
    /// Highest read round it acknowledged.
    pub acked_round: u64,
    /// `match_index` when the last heartbeat was answered, and how many
    /// answers in a row found it unchanged while behind: appends in flight
    /// were lost, so replication falls back to probing.
    match_at_heartbeat: Index,
    stalled_heartbeats: u32,
}

/// Heartbeat answers without replication progress, while the follower is
/// behind, after which the leader assumes its appends were lost.
pub const STALLED_HEARTBEATS_MAX: u32 = 2;

impl Progress {
    fn new(next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            recent_active: true,
            acked_sent_tick: None,
            acked_round: 0,
            match_at_heartbeat: 0,
            stalled_heartbeats: 0,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.stalled_heartbeats = 0;
        self.paused = false;
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// Appends in flight.
    pub fn inflight_messages(&self) -> usize {
        self.inflight.len()
    }

    /// Entry bytes in flight.
    pub fn inflight_bytes(&self) -> usize {
        self.inflight_bytes
    }

    fn free_through(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > index {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
    }
}

impl Raft {
    pub(crate) fn reset_progress(&mut self) {
        let next = self.log.last_index() + 1;
        self.progress.clear();
        let members: Vec<NodeId> = self.log.membership().members().filter(|&m| m != self.id).collect();
        for member in members {
            self.progress.insert(member, Progress::new(next));
        }
    }

    /// Adds progress for new members and drops it for removed ones.
    pub(crate) fn sync_progress(&mut self) {
        let members: Vec<NodeId> = self.log.membership().members().filter(|&m| m != self.id).collect();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index() + 1;
        for member in members {
            self.progress.entry(member).or_insert_with(|| Progress::new(next));
        }
    }

    /// Whether some follower can be sent entries now.
    pub(crate) fn replication_pending(&self) -> bool {
        self.role == Role::Leader && self.progress.keys().any(|&id| self.can_send_entries(id))
    }

    fn can_send_entries(&self, id: NodeId) -> bool {
        let Some(p) = self.progress.get(&id) else { return false };
        match p.state {
            // A probe goes out even without entries: it finds where the logs agree.
            ProgressState::Probe => !p.paused,
            ProgressState::Replicate => {
                p.next_index <= self.log.last_index()
                    && p.inflight.len() < self.config.inflight_messages_max
                    && p.inflight_bytes < self.config.inflight_bytes_max
            }
            ProgressState::Snapshot { .. } => !p.paused,
        }
    }

    /// Sends what each follower's window allows: batches of at most
    /// `batch_size` entries and `batch_bytes_max` bytes.
    pub(crate) fn flush_replication(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            while self.can_send_entries(id) {
                if !self.send_append(id) {
                    break;
                }
            }
        }
    }

    /// Sends one append (or snapshot chunk) to `id`. Returns whether
    /// something was sent.
    fn send_append(&mut self, id: NodeId) -> bool {
        let Some(p) = self.progress.get(&id) else { return false };
        let next = p.next_index;
        let prev_index = next - 1;
        let Some(prev_term) = self.log.term(prev_index) else {
            return self.send_snapshot_chunk(id);
        };
        if matches!(p.state, ProgressState::Snapshot { .. }) {
            return self.send_snapshot_chunk(id);
        }
        let entries = self.log.slice(next, self.config.batch_size, self.config.batch_bytes_max);
        let bytes: usize = entries.iter().map(Entry::size_bytes).sum();
        let last = prev_index + entries.len() as u64;
        let commit = self.log.commit;
        let p = self.progress.get_mut(&id).expect("checked above");
        match p.state {
            ProgressState::Replicate => {
                if !entries.is_empty() {
                    p.inflight.push_back((last, bytes));
                    p.inflight_bytes += bytes;
                    p.next_index = last + 1;
                }
            }
            _ => p.paused = true,
        }
        self.send(id, Body::Append { prev_index, prev_term, entries, commit });
        true
    }

    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    ) {
        if prev_index < self.log.commit {
            // Everything through our commit index matches the leader's log.
            let match_index = self.log.commit;
            let usable: Vec<Entry> = entries.into_iter().filter(|e| e.index > match_index).collect();
            if usable.is_empty() {
                return self.send(from, Body::AppendResponse(AppendOutcome::Accepted { match_index }));
            }
            let prev_term = self.log.term(match_index).expect("the commit index is in the log or snapshot");
            return self.handle_append(from, match_index, prev_term, usable, commit);
        }
        match self.log.term(prev_index) {
            Some(term) if term == prev_term => {
                // The log matches the leader's through `prev_index`: what
                // the leader committed of it is committed here.
                let matched_commit = commit.min(prev_index);
                if matched_commit > self.log.commit {
                    self.log.commit = matched_commit;
                }
                let mut entries = entries;
                let fit = self.entries_that_fit(&entries);
                // Past the bounds only if no snapshot will be due once the
                // committed entries are applied: refused entries come back
                // only once a snapshot compacts the log.
                let full = fit < entries.len() && self.snapshot_due_at(self.log.commit);
                if full {
                    entries.truncate(fit);
                }
                let old_membership_index = self.log.membership_index();
                let last_new = self.log.append_from_leader(prev_index, entries);
                if self.log.membership_index() != old_membership_index {
                    self.events
                        .push(crate::core::Event::MembershipChanged { index: self.log.membership_index() });
                }
                let new_commit = commit.min(last_new);
                if new_commit > self.log.commit {
                    self.log.commit = new_commit;
                }
                let outcome = if full {
                    self.appends_refused_full += 1;
                    AppendOutcome::Full { match_index: last_new }
                } else {
                    AppendOutcome::Accepted { match_index: last_new }
                };
                self.send(from, Body::AppendResponse(outcome));
            }
            found => {
                let (conflict_term, conflict_index) = match found {
                    Some(term) => {
                        let mut first = prev_index;
                        while first > self.log.first_index() && self.log.term(first - 1) == Some(term) {
                            first -= 1;
                        }
                        (Some(term), first)
                    }
                    None => (None, self.log.last_index() + 1),
                };
                let outcome =
                    AppendOutcome::Rejected { rejected_index: prev_index, conflict_term, conflict_index };
                self.send(from, Body::AppendResponse(outcome));
            }
        }
    }

    /// How many of a leader's `entries` (which follow on from where the
    /// logs match) the log can take within `max_log_entries` and
    /// `max_log_bytes`. Entries it holds already take no room; from the
    /// first one it does not hold (new, or conflicting, which truncates the
    /// rest), each is counted. A follower's log is otherwise bounded only by
    /// its own snapshots, which may lag the leader's (a large state builds
    /// for seconds) while the leader compacts and goes on.
    fn entries_that_fit(&self, entries: &[Entry]) -> usize {
        let snapshot_index = self.log.snapshot().index;
        let held = |e: &Entry| e.index <= snapshot_index || self.log.term(e.index) == Some(e.term);
        let Some(start) = entries.iter().position(|e| !held(e)) else { return entries.len() };
        let at = entries[start].index;
        let mut len = at - self.log.first_index();
        let mut bytes = self.log.bytes() - self.log.bytes_from(at);
        for (i, entry) in entries[start..].iter().enumerate() {
            len += 1;
            bytes += entry.size_bytes() as u64;
            if len > self.config.max_log_entries || bytes > self.config.max_log_bytes {
                return start + i;
            }
        }
        entries.len()
    }

    pub(crate) fn handle_append_response(&mut self, from: NodeId, outcome: AppendOutcome) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let Some(p) = self.progress.get_mut(&from) else { return };
        p.recent_active = true;
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                let match_index = match_index.min(last_index);
                if match_index > p.match_index {
                    p.match_index = match_index;
                }
                p.next_index = p.next_index.max(p.match_index + 1);
                match p.state {
                    ProgressState::Probe => {
                        p.become_probe();
                        p.state = ProgressState::Replicate;
                    }
                    ProgressState::Replicate => p.free_through(match_index),
                    ProgressState::Snapshot { .. } => {}
                }
                self.maybe_commit();
                self.maybe_send_timeout_now(from);
            }
            AppendOutcome::Full { match_index } => {
                let match_index = match_index.min(last_index);
                if match_index < p.match_index || matches!(p.state, ProgressState::Snapshot { .. }) {
                    return; // stale: the follower took more since
                }
                p.match_index = match_index;
                // Appends in flight past it were dropped: probe from there,
                // once the next heartbeat unpauses the probe.
                p.next_index = match_index + 1;
                p.become_probe();
                p.paused = true;
                self.maybe_commit();
            }
            AppendOutcome::Rejected { rejected_index, conflict_term, conflict_index } => {
                if rejected_index < p.match_index {
                    return; // stale: the follower already matched further
                }
                if p.state == ProgressState::Probe && rejected_index + 1 != p.next_index {
                    return; // stale answer to an older probe
                }
                // Skip the follower's whole conflicting term, or the leader's
                // entries of it (thesis §5.3).
                let hinted = match conflict_term {
                    Some(term) => match self.last_index_of_term(term, rejected_index) {
                        Some(index) => index + 1,
                        None => conflict_index,
                    },
                    None => conflict_index,
                };
                let p = self.progress.get_mut(&from).expect("checked above");
                p.next_index = hinted.clamp(p.match_index + 1, rejected_index.max(p.match_index + 1));
                p.become_probe();
            }
        }
    }

    /// The last index ≤ `through` of an entry of `term` in the leader's log.
    fn last_index_of_term(&self, term: Term, through: Index) -> Option<Index> {
        let mut index = through.min(self.log.last_index());
        while index >= self.log.snapshot().index {
            match self.log.term(index) {
                Some(t) if t == term => return Some(index),
                Some(t) if t < term => return None,
                Some(_) => {}
                None => return None,
            }
            if index == 0 {
                break;
            }
            index -= 1;
        }
        None
    }

    /// Advances the commit index to the highest index a commit quorum holds,
    /// but only if that entry is of the current term (paper §5.4.2, Figure 8).
    pub(crate) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let membership = self.log.membership();
        let mut matches: Vec<(Index, u64)> = membership
            .voters
            .iter()
            .map(|(id, weight)| {
                let index = if *id == self.id {
                    self.log.stable_index
                } else {
                    self.progress.get(id).map_or(0, |p| p.match_index)
                };
                (index, *weight)
            })
            .collect();
        matches.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        let quorum = membership.commit_quorum();
        let mut weight = 0;
        let mut quorum_index = 0;
        for (index, w) in matches {
            weight += w;
            if weight >= quorum {
                quorum_index = index;
                break;
            }
        }
        if quorum_index > self.log.commit && self.log.term(quorum_index) == Some(self.term) {
            self.log.commit = quorum_index;
            self.on_commit_advanced();
        }
    }

    /// Sends a heartbeat carrying a new read round to every member.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        self.round += 1;
        let round = self.round;
        // Only rounds young enough to extend a lease are worth remembering:
        // this bounds the map even when a follower never answers.
        let window = self.config.election_ticks_min;
        let now = self.ticks;
        self.round_sent_tick.retain(|_, sent| *sent + window > now);
        self.round_sent_tick.insert(round, now);
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            let p = self.progress.get_mut(&id).expect("listed above");
            let commit = self.log.commit.min(p.match_index);
            // A heartbeat also unblocks a probe whose message may be lost.
            p.paused = false;
            self.send(id, Body::Heartbeat { commit, round });
        }
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: Index, round: u64) {
        // The leader only sends min(its commit, our match), so these entries match.
        let commit = commit.min(self.log.last_index());
        if commit > self.log.commit {
            self.log.commit = commit;
        }
        self.send(from, Body::HeartbeatResponse { round });
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let sent_tick = self.round_sent_tick.get(&round).copied();
        let Some(p) = self.progress.get_mut(&from) else { return };
        p.recent_active = true;
        if round > p.acked_round {
            p.acked_round = round;
            if sent_tick.is_some() {
                p.acked_sent_tick = sent_tick;
            }
            let behind = p.match_index < last_index;
            if p.state == ProgressState::Replicate && behind && p.match_index == p.match_at_heartbeat {
                p.stalled_heartbeats += 1;
                if p.stalled_heartbeats >= STALLED_HEARTBEATS_MAX {
                    p.next_index = p.match_index + 1;
                    p.become_probe();
                }
            } else {
                p.stalled_heartbeats = 0;
            }
            p.match_at_heartbeat = p.match_index;
        }
        // An unanswered probe is resent by the next flush: the heartbeat unpaused it.
        self.confirm_reads();
    }

    /// Whether a commit quorum was heard from since the last check; resets
    /// the marks.
    pub(crate) fn quorum_active(&mut self) -> bool {
        let membership = self.log.membership().clone();
        let mut active: Vec<NodeId> =
            self.progress.iter().filter(|(_, p)| p.recent_active).map(|(id, _)| *id).collect();
        active.push(self.id);
        for p in self.progress.values_mut() {
            p.recent_active = false;
        }
        membership.weight_of(&active) >= membership.commit_quorum()
    }
}
