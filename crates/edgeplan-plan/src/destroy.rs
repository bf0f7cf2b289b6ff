//! Deciding a destroy: delete exactly what this stack owns, in reverse dependency order (the
//! executor walks the graph backwards). Ownership is proven by the live object itself (tags,
//! labels, field manager), never by a state file, so adopted and hand-made resources survive.

use std::collections::BTreeMap;

use edgeplan_model::{Action, Address, Identity, Node, NodeKind, Observation, Observed};

use crate::decide::before_of;
use crate::model::{Change, FORMAT_VERSION, Plan, Reason, fingerprint};

/// Kinds a destroy never deletes: settings and policies edgeplan only updated, the NLB the
/// controller owns (it goes with the Service), read-only data, and the key, which exists only
/// in the agent's Secret.
fn kept_kind(kind: NodeKind) -> Option<Reason> {
    match kind {
        NodeKind::LbControllerPolicy | NodeKind::EdgeComputeSetting | NodeKind::PortainerRestart => {
            Some(Reason::NeverDeleted)
        }
        NodeKind::Nlb => Some(Reason::ManagedElsewhere),
        NodeKind::ConsumerSubnets | NodeKind::Vpc => Some(Reason::NotOwned),
        NodeKind::AgentKey => Some(Reason::GoesWithParent),
        _ => None,
    }
}

/// The destroy plan for `nodes` (any order; changes come out in the given order): spec nodes
/// and owned objects the spec no longer names alike. A connection is rejected before its
/// endpoint goes (the executor deletes in reverse dependency order).
pub fn decide_destroy(stack: &str, nodes: &[&Node], observations: &[Observation]) -> Plan {
    let observed: BTreeMap<&Address, &Observation> = observations.iter().map(|o| (&o.address, o)).collect();
    let changes = nodes
        .iter()
        .map(|node| {
            let observation = observed.get(&node.address).copied();
            let mut change = Change {
                address: node.address.clone(),
                kind: node.kind,
                action: Action::NoOp,
                reasons: Vec::new(),
                before: BTreeMap::new(),
                after: BTreeMap::new(),
                observed_fingerprint: observation.map_or_else(|| "unobserved".to_string(), |o| fingerprint(&o.result)),
            };
            let reason = match observation.map(|o| &o.result) {
                None | Some(Err(_)) => Reason::Unobservable,
                Some(Ok(Observed::Absent)) => Reason::NotFound,
                Some(Ok(Observed::Present(live))) => {
                    change.before = before_of(node, live);
                    match (kept_kind(node.kind), &node.identity, live.owned_by(stack, &node.address)) {
                        (Some(reason), _, _) => reason,
                        (None, Identity::Adopted { .. } | Identity::ReadOnly | Identity::Singleton, _) => {
                            Reason::NotOwned
                        }
                        (None, _, false) => Reason::NotOwned,
                        (None, Identity::Owned | Identity::Named { .. }, true) => {
                            change.action = Action::Delete;
                            Reason::OwnedByStack
                        }
                    }
                }
            };
            change.reasons.push(reason);
            change
        })
        .collect();
    Plan { format_version: FORMAT_VERSION, stack: stack.to_string(), changes, diagnostics: Vec::new() }
}
