//! The fault-tolerance strategy: a quorum must survive the loss of any one
//! failure domain.

use super::{list, Context, Recommendation, Strategy};
use crate::quorum::QuorumConfig;
use concord_transport::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// `id`'s failure domain in `domains`; a node without one is a domain of
/// its own, since nothing says it shares a fate with another.
pub fn domain_of(domains: &BTreeMap<NodeId, String>, id: NodeId) -> String {
    domains.get(&id).cloned().unwrap_or_else(|| format!("node {id}"))
}

/// The domain whose loss would leave `config` without quorum (the heaviest
/// such), or `None` when every single-domain loss is survived.
pub fn weakest_domain(config: &QuorumConfig, domains: &BTreeMap<NodeId, String>) -> Option<String> {
    let mut by_domain: BTreeMap<String, BTreeSet<NodeId>> = BTreeMap::new();
    for &id in config.voting.voters().keys() {
        by_domain.entry(domain_of(domains, id)).or_default().insert(id);
    }
    by_domain
        .into_iter()
        .filter(|(_, lost)| {
            let rest: BTreeSet<NodeId> =
                config.voting.voters().keys().copied().filter(|id| !lost.contains(id)).collect();
            !config.fault_tolerance(&rest).quorum_available
        })
        .max_by_key(|(domain, lost)| (config.votes_of(lost), std::cmp::Reverse(domain.clone())))
        .map(|(domain, _)| domain)
}

/// Moves voters out of over-full domains: while some domain's loss loses
/// quorum, swaps one of its voters for a ready learner of the domain with
/// the fewest voters, if that makes the worst domain lighter.
pub fn recommend(ctx: &Context<'_>) -> Recommendation {
    let current = ctx.current().clone();
    let Some(weak) = weakest_domain(&current, ctx.domains) else {
        let domains: BTreeSet<String> = current.voting.voters().keys().map(|&id| ctx.domain(id)).collect();
        let reasoning =
            format!("voters span {} domains and a quorum survives losing any one of them", domains.len());
        return ctx.recommend(Strategy::FaultTolerance, current, reasoning);
    };
    let mut target = current.clone();
    let mut swaps = Vec::new();
    let mut learners = ctx.ready_learners();
    while let Some(domain) = weakest_domain(&target, ctx.domains) {
        let voters_in = |config: &QuorumConfig, d: &str| {
            config.voting.voters().keys().filter(|&&id| ctx.domain(id) == d).count()
        };
        // The learner from the domain holding the fewest voters, ties by id.
        let Some(position) = (0..learners.len())
            .filter(|&i| ctx.domain(learners[i]) != domain)
            .min_by_key(|&i| (voters_in(&target, &ctx.domain(learners[i])), learners[i]))
        else {
            break;
        };
        let inn = learners.remove(position);
        let out = *target
            .voting
            .voters()
            .keys()
            .filter(|&&id| ctx.domain(id) == domain && id != ctx.leader())
            .max()
            .unwrap_or(&inn);
        if out == inn || voters_in(&target, &ctx.domain(inn)) + 1 >= voters_in(&target, &domain) {
            break;
        }
        target = super::swap_voter(&target, out, inn);
        swaps.push((out, inn));
    }
    let survives = weakest_domain(&target, ctx.domains).is_none();
    let reasoning = match (swaps.is_empty(), survives) {
        (true, _) => format!(
            "losing domain {weak} would lose quorum, and no ready learner in another domain can take a voter's place"
        ),
        (false, true) => format!(
            "losing domain {weak} would lose quorum; moving votes from {} to {} spreads voters so that a quorum \
             survives losing any one domain",
            list(swaps.iter().map(|&(out, _)| out)),
            list(swaps.iter().map(|&(_, inn)| inn)),
        ),
        (false, false) => format!(
            "losing domain {weak} would lose quorum; moving votes from {} to {} helps but some domain loss still \
             loses quorum: add nodes in more domains",
            list(swaps.iter().map(|&(out, _)| out)),
            list(swaps.iter().map(|&(_, inn)| inn)),
        ),
    };
    ctx.recommend(Strategy::FaultTolerance, target, reasoning)
}
