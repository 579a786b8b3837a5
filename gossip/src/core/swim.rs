//! SWIM membership and failure detection, with Lifeguard.
//!
//! Each protocol period a node pings one member (round-robin over a shuffled
//! list). Without an ack within the probe timeout it asks `indirect_probes`
//! members to ping the target for it; each helper answers with the target's
//! ack or, past its own probe timeout, with a nack. Without any ack by the
//! end of the period the target becomes suspect. A suspect that hears of it
//! raises its incarnation and refutes; otherwise it is declared dead after
//! the suspicion timeout. Dead and left members are kept as tombstones for
//! `member_reap_ticks` and then remembered with their incarnation in a
//! bounded list, so stale gossip cannot bring them back.
//!
//! Lifeguard, as in the paper and memberlist:
//! - Dynamic suspicion: a suspicion starts with the maximum timeout, which
//!   falls logarithmically toward the minimum as independent accusations
//!   ([`Suspicion`]s from distinct accusers) arrive; `k` of them reach the
//!   minimum. A member that hears a suspicion probes the suspect next, so a
//!   crashed member collects its accusations within about one period while
//!   a healthy one collects none and refutes.
//! - Local health: a probe answered lowers the multiplier; a probe missed
//!   raises it by the helpers' missing nacks (by one if no helper was
//!   asked), so it rises when this node is the slow one, not when the
//!   target is down. Refuting a suspicion about ourselves raises it too.
//!   Probe periods and timeouts are stretched by it.

use crate::config::GossipConfig;
use crate::core::merkle::mix;
use crate::wire::{MemberMeta, MemberStatus, MemberUpdate, Message, Suspicion};
use concord_transport::NodeId;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::{BTreeMap, VecDeque};

/// A member as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's latest known state.
    pub state: MemberUpdate,
    /// Tick of the last status change.
    pub changed_tick: u64,
    /// While suspect: distinct accusers heard of for this suspicion
    /// (ourselves included if our probe failed), at most
    /// `suspicion_confirmations + 1`.
    pub accusers: Vec<NodeId>,
}

/// A change of a member's status, for the core to spread and report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A member was added or changed status; spread its new state.
    Member(MemberUpdate),
    /// Someone suspected or declared us dead: we raised our incarnation.
    Refuted(MemberUpdate),
    /// A new accusation of a suspect; spread it.
    Accused(Suspicion),
}

impl Change {
    /// Whether the change is about liveness and should be spread at once
    /// rather than at the next gossip round: suspicions, accusations,
    /// deaths, departures and refutations.
    pub fn is_urgent(&self, previous: Option<MemberStatus>) -> bool {
        match self {
            Change::Member(update) => {
                update.status != MemberStatus::Alive
                    || matches!(previous, Some(MemberStatus::Suspect | MemberStatus::Dead))
            }
            Change::Refuted(_) | Change::Accused(_) => true,
        }
    }
}

#[derive(Clone, Debug)]
struct Probe {
    target: NodeId,
    sequence: u64,
    sent_tick: u64,
    indirect_sent: bool,
    helpers: usize,
    nacks: usize,
}

/// An indirect probe run for another member.
#[derive(Clone, Debug)]
struct Relay {
    requester: NodeId,
    sequence: u64,
    tick: u64,
}

/// Ticks after a missed probe during which late nacks still count for
/// local health.
pub const NACK_GRACE_TICKS: u64 = 1;

/// The member list and the failure detector.
#[derive(Clone, Debug)]
pub struct Membership {
    me: MemberUpdate,
    members: BTreeMap<NodeId, Member>,
    reaped: BTreeMap<NodeId, u64>,
    reaped_order: VecDeque<NodeId>,
    probe: Option<Probe>,
    missed: Option<(Probe, u64)>,
    relays: VecDeque<Relay>,
    sequence: u64,
    next_probe_tick: u64,
    probe_order: Vec<NodeId>,
    local_health: u64,
    live_count: usize,
}

fn is_live(status: MemberStatus) -> bool {
    matches!(status, MemberStatus::Alive | MemberStatus::Suspect)
}

fn rank(status: MemberStatus) -> u8 {
    match status {
        MemberStatus::Alive => 0,
        MemberStatus::Suspect => 1,
        MemberStatus::Dead => 2,
        MemberStatus::Left => 3,
    }
}

/// Whether `update` supersedes a member's `current` state: a higher
/// incarnation wins; at equal incarnations, Left > Dead > Suspect > Alive.
pub fn supersedes(update: &MemberUpdate, current: &MemberUpdate) -> bool {
    (update.incarnation, rank(update.status)) > (current.incarnation, rank(current.status))
}

impl Membership {
    /// A member list holding only ourselves.
    pub fn new(node: NodeId, meta: MemberMeta) -> Membership {
        Membership {
            me: MemberUpdate { node, incarnation: 0, status: MemberStatus::Alive, meta },
            members: BTreeMap::new(),
            reaped: BTreeMap::new(),
            reaped_order: VecDeque::new(),
            probe: None,
            missed: None,
            relays: VecDeque::new(),
            sequence: 0,
            next_probe_tick: 0,
            probe_order: Vec::new(),
            local_health: 0,
            live_count: 0,
        }
    }

    /// Our own state.
    pub fn me(&self) -> &MemberUpdate {
        &self.me
    }

    /// Other members, tombstones included.
    pub fn members(&self) -> &BTreeMap<NodeId, Member> {
        &self.members
    }

    /// The Lifeguard local health multiplier (0 is healthy).
    pub fn local_health(&self) -> u64 {
        self.local_health
    }

    /// Members believed up (alive or suspect), excluding ourselves.
    pub fn live(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.values().filter(|m| is_live(m.state.status)).map(|m| m.state.node)
    }

    /// Cluster size as seen here: live members plus ourselves.
    pub fn cluster_size(&self) -> usize {
        self.live_count + 1
    }

    /// Fraction of the members not known to have left that are alive, ourselves included.
    pub fn reachability(&self) -> f64 {
        let (mut alive, mut total) = (1usize, 1usize);
        for member in self.members.values() {
            match member.state.status {
                MemberStatus::Alive => {
                    alive += 1;
                    total += 1
                }
                MemberStatus::Suspect | MemberStatus::Dead => total += 1,
                MemberStatus::Left => {}
            }
        }
        alive as f64 / total as f64
    }

    /// Marks ourselves as leaving; returns the update to broadcast.
    pub fn leave(&mut self) -> MemberUpdate {
        self.me.status = MemberStatus::Left;
        self.me.clone()
    }

    /// Applies a membership fact heard from anyone (or learned at join).
    pub fn apply(&mut self, update: MemberUpdate, tick: u64, config: &GossipConfig) -> Option<Change> {
        if update.node == self.me.node {
            return self.about_me(update);
        }
        if self.reaped.get(&update.node).is_some_and(|inc| update.incarnation <= *inc) {
            return None;
        }
        match self.members.get_mut(&update.node) {
            Some(member) if !supersedes(&update, &member.state) => None,
            Some(member) => {
                self.live_count = self.live_count + usize::from(is_live(update.status))
                    - usize::from(is_live(member.state.status));
                // Metadata travels with every update; an update that only
                // changes status keeps the latest metadata it carries.
                member.state = update.clone();
                member.changed_tick = tick;
                member.accusers.clear();
                if update.status == MemberStatus::Suspect {
                    self.probe_next(update.node, update.incarnation, config);
                }
                Some(Change::Member(update))
            }
            None => {
                self.live_count += usize::from(is_live(update.status));
                self.reaped.remove(&update.node);
                self.members.insert(
                    update.node,
                    Member { state: update.clone(), changed_tick: tick, accusers: Vec::new() },
                );
                if is_live(update.status) && !self.probe_order.is_empty() {
                    // Into the current probe cycle at a pseudo-random place
                    // (as memberlist does), not only into the next cycle.
                    let at = mix(update.node.0 ^ mix(self.me.node.0)) % (self.probe_order.len() as u64 + 1);
                    self.probe_order.insert(at as usize, update.node);
                }
                Some(Change::Member(update))
            }
        }
    }

    /// Applies an accusation heard from anyone. Returns what to spread: the
    /// member's new suspect state if it was alive, and the accusation if it
    /// is new and the suspicion still wants confirmations.
    pub fn accuse(&mut self, accusation: Suspicion, tick: u64, config: &GossipConfig) -> Vec<Change> {
        if accusation.node == self.me.node {
            let update = MemberUpdate {
                node: self.me.node,
                incarnation: accusation.incarnation,
                status: MemberStatus::Suspect,
                meta: self.me.meta.clone(),
            };
            return self.about_me(update).into_iter().collect();
        }
        let mut changes = Vec::new();
        let Some(member) = self.members.get(&accusation.node) else { return changes };
        if member.state.incarnation > accusation.incarnation {
            return changes;
        }
        if member.state.status == MemberStatus::Alive || member.state.incarnation < accusation.incarnation {
            if !is_live(member.state.status) {
                return changes;
            }
            let update = MemberUpdate {
                status: MemberStatus::Suspect,
                incarnation: accusation.incarnation,
                ..member.state.clone()
            };
            changes.extend(self.apply(update, tick, config));
        }
        changes.extend(self.confirm(accusation, config));
        changes
    }

    /// Records `accusation` on a member suspect at its incarnation; the
    /// change to spread if it is a new accuser and more are wanted.
    fn confirm(&mut self, accusation: Suspicion, config: &GossipConfig) -> Option<Change> {
        let member = self.members.get_mut(&accusation.node)?;
        let current = member.state.status == MemberStatus::Suspect
            && member.state.incarnation == accusation.incarnation;
        let wanted = member.accusers.len() <= config.suspicion_confirmations;
        if !current || !wanted || member.accusers.contains(&accusation.accuser) {
            return None;
        }
        member.accusers.push(accusation.accuser);
        Some(Change::Accused(accusation))
    }

    /// Puts a new suspect first in our probe order if we are one of about
    /// `2 * (k + 1)` members picked by a hash of (suspect, incarnation, us):
    /// a crash then gathers its `k` independent accusations within about one
    /// period, without every member re-probing every suspect (which, in a
    /// partition, would stall the probing of the rest).
    fn probe_next(&mut self, node: NodeId, incarnation: u64, config: &GossipConfig) {
        if self.probe.as_ref().is_some_and(|p| p.target == node) {
            return;
        }
        let wanted = 2 * (config.suspicion_confirmations as u64 + 1);
        let draw = mix(mix(node.0 ^ 0x646f_6770) ^ mix(incarnation) ^ mix(self.me.node.0));
        if draw % (self.cluster_size() as u64).max(1) >= wanted {
            return;
        }
        self.probe_order.retain(|n| *n != node);
        self.probe_order.push(node);
    }

    fn about_me(&mut self, update: MemberUpdate) -> Option<Change> {
        if self.me.status == MemberStatus::Left {
            return None;
        }
        let accused = update.status != MemberStatus::Alive && update.incarnation >= self.me.incarnation;
        let outdated = update.incarnation > self.me.incarnation;
        if !accused && !outdated {
            // Told we are dead at an older incarnation (`tell_dead`): the
            // sender never heard our refutation, whose spreading ended, and
            // nothing else would correct it. Spread our state again, without
            // raising the incarnation.
            if update.status == MemberStatus::Dead {
                return Some(Change::Refuted(self.me.clone()));
            }
            return None;
        }
        self.me.incarnation = update.incarnation + 1;
        if accused {
            self.local_health += 1;
        }
        Some(Change::Refuted(self.me.clone()))
    }

    fn set_status(&mut self, node: NodeId, status: MemberStatus, tick: u64) -> Option<Change> {
        let member = self.members.get_mut(&node)?;
        if member.state.status == status {
            return None;
        }
        self.live_count =
            self.live_count + usize::from(is_live(status)) - usize::from(is_live(member.state.status));
        member.state.status = status;
        member.changed_tick = tick;
        member.accusers.clear();
        Some(Change::Member(member.state.clone()))
    }

    /// Our probe of `target` went unanswered: suspect it, or add our
    /// accusation to an existing suspicion.
    fn probe_missed(&mut self, target: NodeId, tick: u64, config: &GossipConfig) -> Vec<Change> {
        let Some(member) = self.members.get(&target) else { return Vec::new() };
        let fresh = member.state.status == MemberStatus::Alive
            && tick < member.changed_tick + config.probe_grace_ticks;
        if !is_live(member.state.status) || fresh {
            return Vec::new();
        }
        let accusation =
            Suspicion { node: target, incarnation: member.state.incarnation, accuser: self.me.node };
        let mut changes = Vec::new();
        if member.state.status == MemberStatus::Alive {
            changes.extend(self.set_status(target, MemberStatus::Suspect, tick));
        }
        changes.extend(self.confirm(accusation, config));
        changes
    }

    /// Advances the failure detector to `tick`: probe timeouts, nacks owed,
    /// new probes, suspicion timeouts and reaping. Messages go to `out`.
    pub fn tick(
        &mut self,
        tick: u64,
        config: &GossipConfig,
        rng: &mut StdRng,
        out: &mut Vec<(NodeId, Message)>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.me.status == MemberStatus::Left {
            return changes;
        }
        while self.relays.front().is_some_and(|r| tick >= r.tick + config.probe_timeout_ticks.max(1)) {
            if let Some(relay) = self.relays.pop_front() {
                out.push((relay.requester, Message::Nack { sequence: relay.sequence }));
            }
        }
        if let Some((missed, until)) = self.missed.take() {
            if tick < until {
                self.missed = Some((missed, until));
            } else {
                // Helpers that nacked were reachable and saw the target
                // silent too; each missing nack hints that we are slow.
                let raise =
                    if missed.helpers == 0 { 1 } else { missed.helpers - missed.nacks.min(missed.helpers) };
                self.local_health = (self.local_health + raise as u64).min(config.local_health_max);
            }
        }
        let stretch = self.local_health + 1;
        if let Some(probe) = self.probe.clone() {
            if !probe.indirect_sent && tick >= probe.sent_tick + config.probe_timeout_ticks * stretch {
                let helpers: Vec<NodeId> = self.live().filter(|n| *n != probe.target).collect();
                let chosen: Vec<NodeId> =
                    helpers.choose_multiple(rng, config.indirect_probes).copied().collect();
                for helper in &chosen {
                    out.push((
                        *helper,
                        Message::PingRequest { sequence: probe.sequence, target: probe.target },
                    ));
                }
                if let Some(p) = self.probe.as_mut() {
                    p.indirect_sent = true;
                    p.helpers = chosen.len();
                }
            }
            if tick >= probe.sent_tick + config.probe_interval_ticks * stretch {
                let fresh = self.members.get(&probe.target).is_some_and(|m| {
                    m.state.status == MemberStatus::Alive && tick < m.changed_tick + config.probe_grace_ticks
                });
                if let Some(missed) = self.probe.take() {
                    // A miss on a member in its grace says little about us
                    // either (a join storm): local health is left alone.
                    if !fresh {
                        self.missed = Some((missed, tick + NACK_GRACE_TICKS));
                    }
                }
                changes.extend(self.probe_missed(probe.target, tick, config));
                if fresh {
                    // Probed again next, so that a member that died just
                    // after it arrived is accused as soon as its grace ends.
                    self.probe_order.retain(|n| *n != probe.target);
                    self.probe_order.push(probe.target);
                }
            }
        }
        if self.probe.is_none() && tick >= self.next_probe_tick {
            if let Some(target) = self.next_target(rng) {
                self.sequence += 1;
                out.push((target, Message::Ping { sequence: self.sequence, on_behalf_of: None }));
                self.probe = Some(Probe {
                    target,
                    sequence: self.sequence,
                    sent_tick: tick,
                    indirect_sent: false,
                    helpers: 0,
                    nacks: 0,
                });
            }
            self.next_probe_tick = tick + config.probe_interval_ticks * stretch;
        }
        let size = self.cluster_size();
        let expired: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.state.status == MemberStatus::Suspect)
            .filter(|m| {
                let confirmations = m.accusers.len().saturating_sub(1);
                tick >= m.changed_tick + config.suspicion_timeout_ticks(size, confirmations)
            })
            .map(|m| m.state.node)
            .collect();
        for node in expired {
            changes.extend(self.set_status(node, MemberStatus::Dead, tick));
        }
        self.reap(tick, config);
        // tick already walks every member; the cached count is checked here.
        debug_assert_eq!(self.live_count, self.live().count(), "live_count out of step");
        changes
    }

    fn reap(&mut self, tick: u64, config: &GossipConfig) {
        let reapable: Vec<(NodeId, u64)> = self
            .members
            .values()
            .filter(|m| matches!(m.state.status, MemberStatus::Dead | MemberStatus::Left))
            .filter(|m| tick >= m.changed_tick + config.member_reap_ticks)
            .map(|m| (m.state.node, m.state.incarnation))
            .collect();
        for (node, incarnation) in reapable {
            self.members.remove(&node);
            if self.reaped.insert(node, incarnation).is_none() {
                self.reaped_order.push_back(node);
            }
            while self.reaped_order.len() > config.reaped_len_max {
                if let Some(oldest) = self.reaped_order.pop_front() {
                    self.reaped.remove(&oldest);
                }
            }
        }
    }

    fn next_target(&mut self, rng: &mut StdRng) -> Option<NodeId> {
        loop {
            let Some(node) = self.probe_order.pop() else {
                self.probe_order = self.live().collect();
                if self.probe_order.is_empty() {
                    return None;
                }
                self.probe_order.shuffle(rng);
                continue;
            };
            if self.members.get(&node).is_some_and(|m| is_live(m.state.status)) {
                return Some(node);
            }
        }
    }

    /// Handles an ack for one of our probes (direct or relayed).
    pub fn acked(&mut self, sequence: u64) {
        if self.probe.as_ref().is_some_and(|p| p.sequence == sequence) {
            self.probe = None;
            self.local_health = self.local_health.saturating_sub(1);
        }
    }

    /// Handles a helper's nack for one of our probes.
    pub fn nacked(&mut self, sequence: u64) {
        let probe = match (self.probe.as_mut(), self.missed.as_mut()) {
            (Some(p), _) if p.sequence == sequence => p,
            (_, Some((p, _))) if p.sequence == sequence => p,
            _ => return,
        };
        probe.nacks += 1;
    }

    /// Records an indirect probe we run for `requester`; a nack is owed
    /// unless the target's ack comes first. Past `relayed_probes_max`,
    /// the oldest is forgotten.
    pub fn relay(&mut self, requester: NodeId, sequence: u64, tick: u64, config: &GossipConfig) {
        if self.relays.len() >= config.relayed_probes_max.max(1) {
            self.relays.pop_front();
        }
        self.relays.push_back(Relay { requester, sequence, tick });
    }

    /// The target answered a probe we ran for `requester`: no nack is owed.
    pub fn relay_answered(&mut self, requester: NodeId, sequence: u64) {
        self.relays.retain(|r| !(r.requester == requester && r.sequence == sequence));
    }

    /// The incarnation a reaped member had when it was forgotten.
    pub fn reaped_incarnation(&self, node: NodeId) -> Option<u64> {
        self.reaped.get(&node).copied()
    }

    /// Whether we hold `node` dead.
    pub fn holds_dead(&self, node: NodeId) -> bool {
        self.members.get(&node).is_some_and(|m| m.state.status == MemberStatus::Dead)
    }

    /// Members held dead (not left), for gossip to the dead.
    pub fn dead(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.values().filter(|m| m.state.status == MemberStatus::Dead).map(|m| m.state.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    impl Membership {
        fn apply_test(&mut self, update: MemberUpdate, tick: u64) -> Option<Change> {
            self.apply(update, tick, &GossipConfig::default())
        }
    }

    fn update(node: u64, incarnation: u64, status: MemberStatus) -> MemberUpdate {
        MemberUpdate { node: NodeId(node), incarnation, status, meta: MemberMeta::default() }
    }

    #[test]
    fn precedence_follows_incarnation_then_status() {
        use MemberStatus::*;
        assert!(supersedes(&update(2, 0, Suspect), &update(2, 0, Alive)));
        assert!(
            !supersedes(&update(2, 0, Alive), &update(2, 0, Suspect)),
            "refutation needs a higher incarnation"
        );
        assert!(supersedes(&update(2, 1, Alive), &update(2, 0, Suspect)));
        assert!(supersedes(&update(2, 0, Dead), &update(2, 0, Suspect)));
        assert!(!supersedes(&update(2, 0, Alive), &update(2, 0, Dead)), "stale alive cannot resurrect");
        assert!(supersedes(&update(2, 0, Left), &update(2, 0, Dead)));
    }

    #[test]
    fn a_suspected_member_refutes_with_a_higher_incarnation_and_loses_health() {
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        let change = me.apply_test(update(1, 0, MemberStatus::Suspect), 5);
        assert_eq!(change, Some(Change::Refuted(update(1, 1, MemberStatus::Alive))));
        assert_eq!(me.local_health(), 1);
        assert_eq!(
            me.apply_test(update(1, 0, MemberStatus::Suspect), 6),
            None,
            "old accusation already refuted"
        );
    }

    #[test]
    fn reaped_members_are_not_resurrected_by_stale_gossip() {
        let config = GossipConfig { member_reap_ticks: 10, ..GossipConfig::default() };
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        me.apply_test(update(2, 3, MemberStatus::Alive), 0);
        me.apply_test(update(2, 3, MemberStatus::Dead), 1);
        let mut out = Vec::new();
        me.tick(20, &config, &mut rng, &mut out);
        assert!(me.members().is_empty(), "reaped after member_reap_ticks");
        assert_eq!(me.apply_test(update(2, 3, MemberStatus::Alive), 21), None);
        assert!(me.members().is_empty());
        assert!(
            me.apply_test(update(2, 4, MemberStatus::Alive), 22).is_some(),
            "a real rejoin has a higher incarnation"
        );
    }

    #[test]
    fn unanswered_probe_goes_indirect_then_suspects_and_missing_nacks_raise_local_health() {
        let config = GossipConfig { probe_grace_ticks: 0, ..GossipConfig::default() };
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        for node in 2..=5 {
            me.apply_test(update(node, 0, MemberStatus::Alive), 0);
        }
        let mut out = Vec::new();
        me.tick(1, &config, &mut rng, &mut out);
        let [(target, Message::Ping { sequence, on_behalf_of: None })] = out.as_slice() else {
            panic!("one ping expected: {out:?}")
        };
        let (target, sequence) = (*target, *sequence);
        out.clear();
        me.tick(2, &config, &mut rng, &mut out);
        assert_eq!(out.len(), 3, "indirect probes through k=3 members");
        assert!(out
            .iter()
            .all(|(helper, m)| *helper != target && *m == Message::PingRequest { sequence, target }));
        out.clear();
        me.tick(3, &config, &mut rng, &mut out);
        assert_eq!(me.members()[&target].state.status, MemberStatus::Suspect);
        assert_eq!(me.members()[&target].accusers, vec![NodeId(1)], "our own accusation");
        assert_eq!(me.local_health(), 0, "nacks may still arrive");
        me.nacked(sequence);
        me.nacked(sequence);
        me.tick(4, &config, &mut rng, &mut out);
        assert_eq!(me.local_health(), 1, "two of three helpers nacked: one missing nack");
    }

    #[test]
    fn every_helper_nacking_means_the_target_is_down_not_us() {
        let config = GossipConfig { probe_grace_ticks: 0, ..GossipConfig::default() };
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        for node in 2..=5 {
            me.apply_test(update(node, 0, MemberStatus::Alive), 0);
        }
        let mut out = Vec::new();
        me.tick(1, &config, &mut rng, &mut out);
        let Some((_, Message::Ping { sequence, .. })) = out.first().cloned() else { panic!("{out:?}") };
        me.tick(2, &config, &mut rng, &mut out);
        me.tick(3, &config, &mut rng, &mut out);
        for _ in 0..3 {
            me.nacked(sequence);
        }
        me.tick(4, &config, &mut rng, &mut out);
        assert_eq!(me.local_health(), 0);
    }

    #[test]
    fn suspicion_timeout_falls_from_max_to_min_with_independent_accusations() {
        let config = GossipConfig::default();
        let (min, max) = config.suspicion_bounds_ticks(64);
        assert_eq!((min, max), (4, 24), "1 * log10(64) * 2 ticks rounded up, times 6");
        let timeouts: Vec<u64> = (0..=4).map(|c| config.suspicion_timeout_ticks(64, c)).collect();
        assert_eq!(timeouts[0], max);
        assert!(timeouts.windows(2).all(|w| w[0] > w[1] || w[1] == min), "{timeouts:?}");
        assert_eq!(timeouts[3], min, "k = 3 confirmations reach the minimum");
        assert_eq!(timeouts[4], min);
    }

    #[test]
    fn accusations_from_distinct_members_shorten_the_suspicion_and_are_spread_once() {
        let config = GossipConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        for node in 2..=8 {
            me.apply_test(update(node, 0, MemberStatus::Alive), 0);
        }
        assert_eq!(config.suspicion_bounds_ticks(8), (2, 12));
        let accuse = |accuser: u64| Suspicion { node: NodeId(2), incarnation: 0, accuser: NodeId(accuser) };
        let changes = me.accuse(accuse(3), 10, &config);
        assert_eq!(changes.len(), 2, "suspect state and the accusation: {changes:?}");
        assert_eq!(me.accuse(accuse(3), 10, &config), vec![], "the same accuser counts once");
        let mut out = Vec::new();
        me.tick(11, &config, &mut rng, &mut out);
        let Some(sequence) = out.iter().find_map(|(to, m)| match m {
            Message::Ping { sequence, .. } if *to == NodeId(2) => Some(*sequence),
            _ => None,
        }) else {
            panic!("in a small cluster every member probes a new suspect next: {out:?}")
        };
        // Answered (a late ack does not refute; only the suspect's new
        // incarnation does), so we add no accusation of our own.
        me.acked(sequence);
        me.tick(12, &config, &mut rng, &mut out);
        assert_eq!(me.members()[&NodeId(2)].state.status, MemberStatus::Suspect, "one accuser: max timeout");
        for accuser in 4..=6 {
            assert_eq!(me.accuse(accuse(accuser), 12, &config).len(), 1);
        }
        assert_eq!(me.accuse(accuse(7), 12, &config), vec![], "k + 1 accusers are enough");
        me.tick(13, &config, &mut rng, &mut out);
        assert_eq!(me.members()[&NodeId(2)].state.status, MemberStatus::Dead, "k confirmations: min timeout");
    }

    #[test]
    fn a_member_just_learned_is_not_accused_by_a_missed_probe() {
        let config = GossipConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        me.apply_test(update(2, 0, MemberStatus::Alive), 0);
        let mut out = Vec::new();
        for tick in 1..config.probe_grace_ticks {
            me.tick(tick, &config, &mut rng, &mut out);
        }
        assert!(out.iter().any(|(_, m)| matches!(m, Message::Ping { .. })), "probed: {out:?}");
        assert_eq!(me.members()[&NodeId(2)].state.status, MemberStatus::Alive, "within the grace");
        for tick in config.probe_grace_ticks..config.probe_grace_ticks + 4 {
            me.tick(tick, &config, &mut rng, &mut out);
        }
        assert_eq!(me.members()[&NodeId(2)].state.status, MemberStatus::Suspect, "after the grace");
    }

    #[test]
    fn a_helper_nacks_after_its_probe_timeout_unless_the_target_answers() {
        let config = GossipConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        me.relay(NodeId(7), 40, 5, &config);
        me.relay(NodeId(8), 41, 5, &config);
        me.relay_answered(NodeId(8), 41);
        let mut out = Vec::new();
        me.tick(5, &config, &mut rng, &mut out);
        assert!(out.is_empty(), "{out:?}");
        me.tick(6, &config, &mut rng, &mut out);
        assert_eq!(out, vec![(NodeId(7), Message::Nack { sequence: 40 })]);
    }
}
