//! What apply checks before it mutates a node: is the live state still the one the plan was
//! decided from? If not, the node is aborted with a diff instead of doing something the plan
//! did not show (apply never re-decides).

use edgeplan_model::{Action, Address, Attr, Expr, Node, Observed, Value};

use crate::decide::{equivalent, observed_shown};
use crate::model::{Change, Shown};

/// One field whose live value is no longer the one the plan showed as "before".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub field: String,
    pub planned: String,
    pub now: String,
}

/// Compare a fresh observation with the plan's assumptions for `change`. Only fields the plan
/// showed are compared: observed-only facts (target health, a rollout's generation) move on
/// their own and are not what the plan decided from.
///
/// `mutated(upstream)`: this apply changed that upstream node. A field that mirrors a changed
/// upstream moves with it, and a node whose upstream was created may appear with it (a
/// connection with its endpoint, a key with its environment): "absent" was only the
/// parent's absence.
pub fn check_assumptions(
    node: &Node,
    change: &Change,
    fresh: &Observed,
    mutated: impl Fn(&Address) -> bool,
) -> Result<(), Vec<Moved>> {
    let follows_changed_upstream = |field: &str| match Attr::parse(field).and_then(|a| node.desired.get(&a)) {
        Some(Expr::Ref(reference)) => mutated(&reference.node),
        _ => false,
    };
    let upstream_created = node.references().any(|(_, reference)| mutated(&reference.node));
    let exists = |live: &Observed| match live {
        Observed::Absent => "absent".to_string(),
        Observed::Present(object) => format!("exists ({})", object.id),
    };
    match (change.action, fresh) {
        (Action::NoOp | Action::Read, _) => Ok(()),
        (Action::Create, Observed::Absent) => Ok(()),
        (Action::Create, Observed::Present(_)) if upstream_created => Ok(()),
        (Action::Create, present) => {
            Err(vec![Moved { field: "(object)".into(), planned: "absent".into(), now: exists(present) }])
        }
        (_, Observed::Absent) => {
            Err(vec![Moved { field: "(object)".into(), planned: "exists".into(), now: "absent".into() }])
        }
        (_, Observed::Present(live)) => {
            let now: std::collections::BTreeMap<&String, Shown> =
                change.before.keys().map(|field| (field, observed_shown(node, live, field))).collect();
            let moved: Vec<Moved> = change
                .before
                .iter()
                // A field that mirrors an upstream changing in this apply moves with it.
                .filter(|(field, _)| !matches!(change.after.get(*field), Some(Shown::KnownAfterApply)))
                .filter(|(field, _)| !follows_changed_upstream(field))
                .filter(|(field, planned)| {
                    now.get(field).is_none_or(|value| !unchanged(node, change, field, planned, value))
                })
                .map(|(field, planned)| Moved {
                    field: field.clone(),
                    planned: planned.to_string(),
                    now: now.get(&field).map_or_else(|| Shown::Known(Value::Null).to_string(), ToString::to_string),
                })
                .collect();
            if moved.is_empty() { Ok(()) } else { Err(moved) }
        }
    }
}

/// Is the value the plan showed still the one observed? For a map the kind compares as a
/// subset (tags, annotations), only the entries the spec sets matter: someone else's tag added
/// meanwhile does not abort the update.
fn unchanged(node: &Node, change: &Change, field: &str, planned: &Shown, now: &Shown) -> bool {
    let subset = Attr::parse(field)
        .and_then(|a| node.kind.decl().desired_decl(a))
        .is_some_and(|d| d.compare == edgeplan_model::Compare::Subset);
    match (subset, change.after.get(field), planned, now) {
        (
            true,
            Some(Shown::Known(Value::Map(wanted))),
            Shown::Known(Value::Map(before)),
            Shown::Known(Value::Map(after)),
        ) => wanted.keys().all(|k| before.get(k) == after.get(k)),
        _ => equivalent(planned, now),
    }
}

/// Does a value apply resolved from an upstream output match what the plan showed for it?
/// (Semantic equality: JSON documents normalized, lists as sets.)
pub fn matches_planned(planned: &Shown, resolved: &Value) -> bool {
    match planned {
        Shown::Known(_) => equivalent(planned, &Shown::Known(resolved.clone())),
        Shown::KnownAfterApply | Shown::Sensitive(_) => true,
    }
}
