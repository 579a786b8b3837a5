//! SWIM membership and failure detection, with Lifeguard's local health.
//!
//! Each protocol period a node pings one member (round-robin over a shuffled
//! list). Without an ack within the probe timeout it asks `indirect_probes`
//! members to ping the target for it; without any ack by the end of the
//! period the target becomes suspect. A suspect that hears of it raises its
//! incarnation and refutes; otherwise it is declared dead after the
//! suspicion timeout. Dead and left members are kept as tombstones for
//! `member_reap_ticks` and then remembered with their incarnation in a
//! bounded list, so stale gossip cannot bring them back.
//!
//! Lifeguard: every missed ack and every refutation of a suspicion about
//! ourselves raises the local health multiplier; every answered probe lowers
//! it. Probe periods and timeouts are stretched by it, so a slow node probes
//! less eagerly instead of accusing healthy members.

use crate::config::GossipConfig;
use crate::wire::{MemberMeta, MemberStatus, MemberUpdate, Message};
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
}

/// A change of a member's status, for the core to spread and report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A member was added or changed status; spread its new state.
    Member(MemberUpdate),
    /// Someone suspected or declared us dead: we raised our incarnation.
    Refuted(MemberUpdate),
}

#[derive(Clone, Debug)]
struct Probe {
    target: NodeId,
    sequence: u64,
    sent_tick: u64,
    indirect_sent: bool,
}

/// The member list and the failure detector.
#[derive(Clone, Debug)]
pub struct Membership {
    me: MemberUpdate,
    members: BTreeMap<NodeId, Member>,
    reaped: BTreeMap<NodeId, u64>,
    reaped_order: VecDeque<NodeId>,
    probe: Option<Probe>,
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
    pub fn apply(&mut self, update: MemberUpdate, tick: u64) -> Option<Change> {
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
                Some(Change::Member(update))
            }
            None => {
                self.live_count += usize::from(is_live(update.status));
                self.reaped.remove(&update.node);
                self.members.insert(update.node, Member { state: update.clone(), changed_tick: tick });
                Some(Change::Member(update))
            }
        }
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
        Some(Change::Member(member.state.clone()))
    }

    /// Advances the failure detector to `tick`: probe timeouts, new probes,
    /// suspicion timeouts and reaping. Messages go to `out`.
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
        let stretch = self.local_health + 1;
        if let Some(probe) = self.probe.clone() {
            if !probe.indirect_sent && tick >= probe.sent_tick + config.probe_timeout_ticks * stretch {
                let helpers: Vec<NodeId> = self.live().filter(|n| *n != probe.target).collect();
                for helper in helpers.choose_multiple(rng, config.indirect_probes) {
                    out.push((
                        *helper,
                        Message::PingRequest { sequence: probe.sequence, target: probe.target },
                    ));
                }
                if let Some(p) = self.probe.as_mut() {
                    p.indirect_sent = true;
                }
            }
            if tick >= probe.sent_tick + config.probe_interval_ticks * stretch {
                self.probe = None;
                self.local_health = (self.local_health + 1).min(config.local_health_max);
                let still_alive =
                    self.members.get(&probe.target).is_some_and(|m| m.state.status == MemberStatus::Alive);
                if still_alive {
                    changes.extend(self.set_status(probe.target, MemberStatus::Suspect, tick));
                }
            }
        }
        if self.probe.is_none() && tick >= self.next_probe_tick {
            if let Some(target) = self.next_target(rng) {
                self.sequence += 1;
                out.push((target, Message::Ping { sequence: self.sequence, on_behalf_of: None }));
                self.probe =
                    Some(Probe { target, sequence: self.sequence, sent_tick: tick, indirect_sent: false });
            }
            self.next_probe_tick = tick + config.probe_interval_ticks * stretch;
        }
        let suspicion_ticks = config.suspicion_ticks(self.cluster_size());
        let expired: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.state.status == MemberStatus::Suspect && tick >= m.changed_tick + suspicion_ticks)
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
        let change = me.apply(update(1, 0, MemberStatus::Suspect), 5);
        assert_eq!(change, Some(Change::Refuted(update(1, 1, MemberStatus::Alive))));
        assert_eq!(me.local_health(), 1);
        assert_eq!(me.apply(update(1, 0, MemberStatus::Suspect), 6), None, "old accusation already refuted");
    }

    #[test]
    fn reaped_members_are_not_resurrected_by_stale_gossip() {
        let config = GossipConfig { member_reap_ticks: 10, ..GossipConfig::default() };
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        me.apply(update(2, 3, MemberStatus::Alive), 0);
        me.apply(update(2, 3, MemberStatus::Dead), 1);
        let mut out = Vec::new();
        me.tick(20, &config, &mut rng, &mut out);
        assert!(me.members().is_empty(), "reaped after member_reap_ticks");
        assert_eq!(me.apply(update(2, 3, MemberStatus::Alive), 21), None);
        assert!(me.members().is_empty());
        assert!(
            me.apply(update(2, 4, MemberStatus::Alive), 22).is_some(),
            "a real rejoin has a higher incarnation"
        );
    }

    #[test]
    fn unanswered_probe_goes_indirect_then_suspects_and_raises_local_health() {
        let config = GossipConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        let mut me = Membership::new(NodeId(1), MemberMeta::default());
        for node in 2..=5 {
            me.apply(update(node, 0, MemberStatus::Alive), 0);
        }
        let mut out = Vec::new();
        me.tick(1, &config, &mut rng, &mut out);
        let [(target, Message::Ping { sequence, on_behalf_of: None })] = out.as_slice() else {
            panic!("one ping expected: {out:?}")
        };
        let (target, sequence) = (*target, *sequence);
        out.clear();
        me.tick(3, &config, &mut rng, &mut out);
        assert_eq!(out.len(), 3, "indirect probes through k=3 members");
        assert!(out
            .iter()
            .all(|(helper, m)| *helper != target && *m == Message::PingRequest { sequence, target }));
        out.clear();
        me.tick(5, &config, &mut rng, &mut out);
        assert_eq!(me.members()[&target].state.status, MemberStatus::Suspect);
        assert_eq!(me.local_health(), 1);
    }
}
