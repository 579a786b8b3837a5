//! Configuration of the gossip core: every bound and period, with defaults.
//!
//! Time is counted in ticks; the actor turns one `run_interval` of
//! [`GossipConfig::tick_ms`] into one tick.

use serde::{Deserialize, Serialize};

/// How a gossip round exchanges data with each chosen peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Send fresh rumors; the peer does not answer.
    Push,
    /// Send a digest of the rumors held; the peer answers with what is missing.
    Pull,
    /// Both: send fresh rumors and a digest, the peer answers with what is missing.
    PushPull,
}

/// Configuration of a [`GossipCore`](crate::GossipCore).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GossipConfig {
    /// Dissemination mode.
    pub mode: Mode,
    /// Peers contacted per gossip round.
    pub fanout: usize,
    /// Milliseconds per tick; the gossip interval is one tick.
    pub tick_ms: u64,
    /// Rumors are sent `retransmit_multiplier * ceil(log10(members + 1))` times
    /// by each node, then left to anti-entropy.
    pub retransmit_multiplier: u32,
    /// Bound on the encoded size of one message; the most urgent data goes first.
    pub message_size_max: usize,
    /// Bound on rumors waiting to be spread; past it, the most transmitted go first.
    pub rumor_queue_len_max: usize,
    /// Ticks between anti-entropy sessions with a random peer.
    pub anti_entropy_interval_ticks: u64,
    /// Bound on conflicts kept in the history (oldest dropped first).
    pub conflict_history_len_max: usize,
    /// Bound on locally originated updates whose convergence is tracked.
    pub tracked_updates_max: usize,
    /// Fraction of nodes at which an update counts as converged.
    pub convergence_threshold: f64,
    /// Ticks between two probes of the failure detector (times the local
    /// health multiplier).
    pub probe_interval_ticks: u64,
    /// Ticks to wait for a direct ack before asking `indirect_probes` members;
    /// also how long a member probing for another waits before it answers
    /// with a nack.
    pub probe_timeout_ticks: u64,
    /// A member learned (or back alive) less than this many ticks ago is not
    /// accused when a probe of it goes unanswered: a join storm (new
    /// connections, every node busy) is not mistaken for failures.
    pub probe_grace_ticks: u64,
    /// Members asked to probe on our behalf when a direct probe times out.
    pub indirect_probes: usize,
    /// Bound on indirect probes this node runs for others at once (oldest
    /// dropped first, unanswered).
    pub relayed_probes_max: usize,
    /// Lifeguard's minimum suspicion timeout, reached once
    /// `suspicion_confirmations` independent accusations arrive:
    /// `suspicion_multiplier * max(1, log10(members)) * probe_interval_ticks`
    /// ticks, rounded up.
    pub suspicion_multiplier: u64,
    /// Lifeguard's maximum suspicion timeout, the one a suspicion starts
    /// with, as a multiple of the minimum.
    pub suspicion_max_multiplier: u64,
    /// Independent accusations (besides the first) after which the suspicion
    /// timeout has shrunk to its minimum (Lifeguard's `k`).
    pub suspicion_confirmations: usize,
    /// Upper bound of the Lifeguard local health multiplier.
    pub local_health_max: u64,
    /// Ticks a dead or left member is kept (so stale gossip cannot revive it)
    /// before it is reaped.
    pub member_reap_ticks: u64,
    /// Bound on reaped members remembered with their last incarnation.
    pub reaped_len_max: usize,
    /// Every this many ticks, gossip once with a dead member, so that a
    /// partition that heals is noticed by both sides.
    pub dead_gossip_interval_ticks: u64,
    /// At most one member list exchange per this many ticks, when a peer's
    /// member digest differs from ours.
    pub member_sync_interval_ticks: u64,
    /// While no member is known, the join is sent again every this many ticks.
    pub join_retry_interval_ticks: u64,
    /// Enter read-only degraded mode while a partition is suspected.
    pub degraded_mode_on_partition: bool,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            mode: Mode::PushPull,
            fanout: 3,
            tick_ms: 100,
            retransmit_multiplier: 4,
            message_size_max: 16 * 1024,
            rumor_queue_len_max: 1024,
            anti_entropy_interval_ticks: 100,
            conflict_history_len_max: 256,
            tracked_updates_max: 64,
            convergence_threshold: 0.95,
            probe_interval_ticks: 2,
            probe_timeout_ticks: 1,
            probe_grace_ticks: 10,
            indirect_probes: 3,
            relayed_probes_max: 64,
            suspicion_multiplier: 1,
            suspicion_max_multiplier: 6,
            suspicion_confirmations: 3,
            local_health_max: 8,
            member_reap_ticks: 600,
            reaped_len_max: 4096,
            dead_gossip_interval_ticks: 10,
            member_sync_interval_ticks: 10,
            join_retry_interval_ticks: 10,
            degraded_mode_on_partition: false,
        }
    }
}

impl GossipConfig {
    /// How many times each node sends one rumor in a cluster of `members`.
    pub fn transmissions_max(&self, members: usize) -> u32 {
        let log = ((members + 1) as f64).log10().ceil().max(1.0) as u32;
        self.retransmit_multiplier.max(1) * log
    }

    /// The (minimum, maximum) ticks a member stays suspect before it is
    /// declared dead, in a cluster of `members`.
    pub fn suspicion_bounds_ticks(&self, members: usize) -> (u64, u64) {
        let scale = (members.max(1) as f64).log10().max(1.0);
        let min = (self.suspicion_multiplier.max(1) as f64 * scale * self.probe_interval_ticks.max(1) as f64)
            .ceil() as u64;
        (min, min * self.suspicion_max_multiplier.max(1))
    }

    /// Lifeguard's suspicion timeout in ticks after `confirmations`
    /// independent accusations besides the first: it starts at the maximum
    /// and falls logarithmically to the minimum at `suspicion_confirmations`
    /// (memberlist's `suspicion.go`).
    pub fn suspicion_timeout_ticks(&self, members: usize, confirmations: usize) -> u64 {
        let (min, max) = self.suspicion_bounds_ticks(members);
        let k = self.suspicion_confirmations;
        if k == 0 {
            return min;
        }
        let fraction = ((confirmations as f64) + 1.0).ln() / ((k as f64) + 1.0).ln();
        let raw = max as f64 - fraction * (max - min) as f64;
        (raw.floor() as u64).max(min)
    }
}
