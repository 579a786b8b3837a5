//! Turning one configuration into another as a sequence of single safe steps.

use super::config::{QuorumConfig, QuorumPolicy};
use super::error::{PlanError, QuorumKind, UnsafeChange};
use concord_transport::NodeId;

/// Default bound on a plan's length (`plan_steps_max`).
pub const PLAN_STEPS_MAX_DEFAULT: usize = 32;

/// One elementary edit; a plan step applies exactly one.
#[derive(Clone, Copy, Debug)]
enum Edit {
    AddLearner(NodeId),
    Promote(NodeId),
    Demote(NodeId),
    Remove(NodeId),
    SetWeight(NodeId),
    SetPolicy,
    /// A flexible policy with the larger of the current and target
    /// thresholds: shrinking a quorum in one step lets an old quorum miss a
    /// new one, but raising first and lowering second keeps them meeting.
    StagePolicy,
    /// Promote at weight 1, to be raised step by step: a heavy voter added
    /// at once can complete a quorum that misses an old one.
    PromoteLight(NodeId),
    /// One unit of weight toward the target (toward 1 for a voter that
    /// leaves), when the whole change at once is unsafe.
    WeightStep(NodeId),
}

/// The configurations to pass through from `from` to `to`, one Raft
/// configuration change each, `to` last; empty when they are equal. Every
/// step passes [`QuorumConfig::check_change`] from the one before.
///
/// New nodes enter as learners and are promoted later, so that they never
/// count in a quorum before they hold the log. Voters are added before
/// others are removed while the voter count is at or below the target's, so
/// a rolling replacement goes 5 → 6 → 5 and never drops to 4. When the
/// preferred step is unsafe the next is tried; when none is safe the plan
/// fails with the reason of the preferred one.
pub fn plan(
    from: &QuorumConfig,
    to: &QuorumConfig,
    steps_max: usize,
) -> Result<Vec<QuorumConfig>, PlanError> {
    plan_leaving_last(from, to, steps_max, None)
}

/// [`plan()`], with `last`'s own removal or demotion tried after every other
/// edit: a leader that removes itself leads only until that removal
/// commits, so its manager does all the rest before.
pub fn plan_leaving_last(
    from: &QuorumConfig,
    to: &QuorumConfig,
    steps_max: usize,
    last: Option<NodeId>,
) -> Result<Vec<QuorumConfig>, PlanError> {
    to.validate().map_err(PlanError::UnsafeTarget)?;
    let mut steps = Vec::new();
    let mut current = from.clone();
    while current != *to {
        if steps.len() == steps_max {
            return Err(PlanError::TooManySteps { max: steps_max });
        }
        let mut first_refusal: Option<UnsafeChange> = None;
        let mut chosen = None;
        let mut edits = candidate_edits(&current, to);
        // Stable: the other edits keep their preference order.
        edits.sort_by_key(|edit| matches!(edit, Edit::Demote(id) | Edit::Remove(id) if Some(*id) == last));
        for edit in edits {
            let next = apply(&current, to, edit);
            match current.check_change(&next) {
                Ok(()) => {
                    chosen = Some(next);
                    break;
                }
                Err(reason) => {
                    first_refusal.get_or_insert(reason);
                }
            }
        }
        match chosen {
            Some(next) => {
                steps.push(next.clone());
                current = next;
            }
            None => {
                let reason = first_refusal.expect("configurations differ, so some edit exists");
                return Err(PlanError::NoSafeStep { steps: steps.len(), reason });
            }
        }
    }
    Ok(steps)
}

/// Edits that bring `current` one step closer to `to`, most preferred first.
fn candidate_edits(current: &QuorumConfig, to: &QuorumConfig) -> Vec<Edit> {
    let (cur, target) = (&current.voting, &to.voting);
    let joins = target.voters().keys().chain(target.learners()).filter(|&&id| !cur.contains(id));
    let promotions = target.voters().keys().filter(|&&id| cur.is_learner(id));
    let leaves = cur.voters().keys().filter(|&&id| !target.is_voter(id));
    let weights = target
        .voters()
        .iter()
        .filter(|&(&id, &w)| cur.weight(id).is_some_and(|cur_w| cur_w != w))
        .map(|(&id, _)| id);
    let learner_leaves = cur.learners().iter().filter(|&&id| !target.contains(id));

    let mut edits: Vec<Edit> = joins.map(|&id| Edit::AddLearner(id)).collect();
    let promote: Vec<Edit> = promotions.map(|&id| Edit::Promote(id)).collect();
    let leave: Vec<Edit> =
        leaves.map(|&id| if target.is_learner(id) { Edit::Demote(id) } else { Edit::Remove(id) }).collect();
    if cur.voters().len() <= target.voters().len() {
        edits.extend(promote);
        edits.extend(leave);
    } else {
        edits.extend(leave);
        edits.extend(promote);
    }
    edits.extend(weights.map(Edit::SetWeight));
    if current.policy != to.policy {
        edits.push(Edit::SetPolicy);
        if matches!(to.policy, QuorumPolicy::Flexible { .. }) && staged_policy(current, to) != current.policy
        {
            edits.push(Edit::StagePolicy);
        }
    }
    edits.extend(learner_leaves.map(|&id| Edit::Remove(id)));
    // Fallbacks, tried only when every edit above is unsafe: weight moved
    // one unit at a time (a heavy voter's seat passes to a learner this way).
    let heavy = |id: NodeId| to.voting.weight(id).is_some_and(|w| w > 1);
    edits.extend(
        target
            .voters()
            .keys()
            .filter(|&&id| cur.is_learner(id) && heavy(id))
            .map(|&id| Edit::PromoteLight(id)),
    );
    // A staying voter one unit off is what `SetWeight` tried already.
    let steppable = |id: NodeId| match (cur.weight(id), target.weight(id)) {
        (Some(now), Some(goal)) => now.abs_diff(goal) > 1,
        (Some(now), None) => now > 1,
        (None, _) => false,
    };
    edits.extend(cur.voters().keys().filter(|&&id| steppable(id)).map(|&id| Edit::WeightStep(id)));
    edits
}

/// `current` with one edit toward `to` applied.
fn apply(current: &QuorumConfig, to: &QuorumConfig, edit: Edit) -> QuorumConfig {
    let mut next = current.clone();
    let weight = |id| to.voting.weight(id).expect("edits only target voters of `to` for weights");
    let result = match edit {
        Edit::AddLearner(id) => next.voting.add_learner(id),
        Edit::Promote(id) => next.voting.promote(id, weight(id)),
        Edit::Demote(id) => next.voting.demote(id),
        Edit::Remove(id) => next.voting.remove(id),
        Edit::SetWeight(id) => next.voting.set_weight(id, weight(id)),
        Edit::SetPolicy => {
            next.policy = to.policy;
            Ok(())
        }
        Edit::StagePolicy => {
            next.policy = staged_policy(current, to);
            Ok(())
        }
        Edit::PromoteLight(id) => next.voting.promote(id, 1),
        Edit::WeightStep(id) => {
            let now = current.voting.weight(id).expect("weight steps are for voters");
            let goal = to.voting.weight(id).unwrap_or(1);
            next.voting.set_weight(id, if goal > now { now + 1 } else { now - 1 })
        }
    };
    result.expect("candidate edits are computed from `current`, so they apply");
    next
}

/// The flexible policy requiring, for each quorum, the larger of what
/// `current` and `to` require.
fn staged_policy(current: &QuorumConfig, to: &QuorumConfig) -> QuorumPolicy {
    let larger = |kind| current.threshold(kind).max(to.threshold(kind));
    QuorumPolicy::Flexible {
        election_weight: larger(QuorumKind::Election),
        commit_weight: larger(QuorumKind::Commit),
    }
}
