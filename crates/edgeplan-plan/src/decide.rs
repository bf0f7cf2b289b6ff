//! Deciding: desired nodes + observations → plan. Pure and deterministic. Every comparison is
//! the one the kind declares ([`edgeplan_model::kinds`]).

use std::collections::BTreeMap;

use edgeplan_model::attr::{self, Attr};
use edgeplan_model::{
    Action, Address, Compare, Expr, Identity, LiveObject, Node, NodeKind, Observation, Observed, Role, Value,
};

use crate::model::{Change, FORMAT_VERSION, Plan, Reason, Shown, fingerprint};

/// Decide every node's change. `nodes` must be in dependency order (a validated graph's
/// topological order), so every reference is resolved after the node it points at. `orphans`
/// are objects the stack owns that the spec no longer names: each is deleted.
pub fn decide(stack: &str, nodes: &[&Node], orphans: &[&Node], observations: &[Observation]) -> Plan {
    let observed: BTreeMap<&Address, &Observation> = observations.iter().map(|o| (&o.address, o)).collect();
    let mut planned_outputs: BTreeMap<Address, BTreeMap<Attr, Shown>> = BTreeMap::new();
    let mut actions: BTreeMap<Address, Action> = BTreeMap::new();
    let mut changes = Vec::with_capacity(nodes.len() + orphans.len());
    for node in nodes {
        let observation = observed.get(&node.address).copied();
        let change = decide_node(node, observation, &planned_outputs, &actions);
        planned_outputs.insert(node.address.clone(), outputs_after(node, observation, &change));
        actions.insert(node.address.clone(), change.action);
        changes.push(change);
    }
    for orphan in orphans {
        changes.push(prune(orphan, observed.get(&orphan.address).copied()));
    }
    // Judged on the observed and on the planned state: only a cause a planned change removes
    // is "fixed by this plan" (crate::rules).
    let diagnostics = crate::rules::live_rules(stack, nodes, &changes, observations);
    Plan { format_version: FORMAT_VERSION, stack: stack.to_string(), changes, diagnostics }
}

fn new_change(node: &Node, observation: Option<&Observation>) -> Change {
    Change {
        address: node.address.clone(),
        kind: node.kind,
        action: Action::NoOp,
        reasons: Vec::new(),
        before: BTreeMap::new(),
        after: BTreeMap::new(),
        observed_fingerprint: observation.map_or_else(|| "unobserved".to_string(), |o| fingerprint(&o.result)),
    }
}

/// An owned object the spec no longer names: delete it (reject it, for a connection).
fn prune(node: &Node, observation: Option<&Observation>) -> Change {
    let mut change = new_change(node, observation);
    match observation.map(|o| &o.result) {
        Some(Ok(Observed::Present(live))) => {
            change.action = Action::Delete;
            change.reasons.push(Reason::RemovedFromSpec);
            change.before.insert(attr::ID.name().to_string(), Shown::Known(Value::str(live.id.as_str())));
        }
        Some(Ok(Observed::Absent)) => change.reasons.push(Reason::NotFound),
        None | Some(Err(_)) => {
            change.action = Action::Read;
            change.reasons.push(Reason::Unobservable);
        }
    }
    change
}

/// Whether the plan makes a new object at `upstream`: anything that must refer to exactly
/// that object (a field that cannot change in place) is replaced with it.
fn renews(actions: &BTreeMap<Address, Action>, upstream: &Address) -> bool {
    matches!(actions.get(upstream), Some(Action::Replace | Action::Create))
}

fn decide_node(
    node: &Node,
    observation: Option<&Observation>,
    outputs: &BTreeMap<Address, BTreeMap<Attr, Shown>>,
    actions: &BTreeMap<Address, Action>,
) -> Change {
    let mut change = new_change(node, observation);
    change.after = resolve(node, outputs);
    let live = match observation.map(|o| &o.result) {
        None | Some(Err(_)) => {
            change.action = Action::Read;
            change.reasons.push(Reason::Unobservable);
            return change;
        }
        Some(Ok(Observed::Absent)) => None,
        Some(Ok(Observed::Present(live))) => Some(live),
    };
    if node.identity == Identity::ReadOnly {
        // Made by a controller from a node this plan replaces (the NLB from its Service): the
        // controller deletes it and builds another, so it is replaced too, by them.
        let decl = node.kind.decl();
        let recreated = node
            .references()
            .filter(|(attribute, _)| decl.desired_decl(*attribute).is_some_and(|d| d.role != Role::Ordering))
            .map(|(_, reference)| &reference.node)
            .find(|upstream| actions.get(*upstream) == Some(&Action::Replace));
        if let (Some(upstream), Some(live)) = (recreated, live) {
            change.action = Action::Replace;
            change.reasons.push(Reason::RecreatedBy { upstream: upstream.clone() });
            change.before = before_of(node, live);
            return change;
        }
        change.action = Action::Read;
        change.reasons.push(Reason::ManagedElsewhere);
        if let Some(live) = live {
            change.before = before_of(node, live);
        }
        return change;
    }
    let Some(live) = live else {
        // An adopted resource is never created: it must exist. Rules explain it.
        change.action = if matches!(node.identity, Identity::Adopted { .. }) { Action::Read } else { Action::Create };
        change.reasons.push(Reason::NotFound);
        return change;
    };
    change.before = before_of(node, live);
    let decl = node.kind.decl();
    for desired in decl.desired.iter().filter(|d| matches!(d.role, Role::Compared | Role::Immutable)) {
        let field = desired.attr.name();
        let Some(wanted) = change.after.get(field) else { continue };
        let before = change.before.get(field).cloned().unwrap_or(Shown::Known(Value::Null));
        let reason = match (wanted, node.literal(desired.attr)) {
            (Shown::KnownAfterApply, _) => {
                let upstream = node.referenced(desired.attr).cloned().unwrap_or_else(|| node.address.clone());
                let field = field.to_string();
                if desired.role == Role::Immutable
                    && renews(actions, &upstream)
                    && !matches!(node.identity, Identity::Adopted { .. })
                {
                    Some(Reason::UpstreamReplaced { field, upstream })
                } else {
                    Some(Reason::UpstreamChanging { field, upstream })
                }
            }
            // A secret whose reference could not be read is not compared (its diagnostic stops
            // the plan).
            (_, Some(Value::SecretRef(_))) => None,
            // A secret the user chose is compared by value: the plan shows only its reference.
            (_, Some(Value::Secret(secret))) if same_secret(secret, live.get(desired.attr)) => None,
            (_, Some(Value::Secret(_))) => Some(Reason::Drift { field: field.to_string() }),
            _ if in_sync(desired.compare, &before, wanted) => None,
            _ if desired.role == Role::Immutable && !matches!(node.identity, Identity::Adopted { .. }) => {
                Some(Reason::ForcesReplacement { field: field.to_string() })
            }
            _ => Some(Reason::Drift { field: field.to_string() }),
        };
        change.reasons.extend(reason);
    }
    change.action = if change
        .reasons
        .iter()
        .any(|r| matches!(r, Reason::ForcesReplacement { .. } | Reason::UpstreamReplaced { .. }))
    {
        Action::Replace
    } else if change.reasons.is_empty() {
        change.reasons.push(Reason::InSync);
        Action::NoOp
    } else {
        Action::Update
    };
    decide_parameters(node, live, &mut change);
    change
}

/// Operation parameters the plan decides beyond the spec's fields, shown in `after` so apply
/// executes them rather than choosing: at IAM's 5-version limit, which version is deleted to
/// make room for the new default.
fn decide_parameters(node: &Node, live: &LiveObject, change: &mut Change) {
    if node.kind == NodeKind::LbControllerPolicy
        && change.action == Action::Update
        && live.int(attr::VERSION_COUNT).is_some_and(|n| n >= 5)
        && let Some(oldest) = live.get(attr::OLDEST_NON_DEFAULT_VERSION).filter(|v| v.as_str().is_some())
    {
        let field = attr::DELETE_VERSION.name().to_string();
        change.after.insert(field.clone(), Shown::Known(oldest.clone()));
        change.reasons.push(Reason::VersionLimit { field });
    }
}

/// Is the observed value in sync with the desired one, compared as the kind declares?
pub(crate) fn in_sync(compare: Compare, before: &Shown, after: &Shown) -> bool {
    match (compare, before) {
        (Compare::Subset, Shown::Known(Value::Map(live))) => match after {
            Shown::Known(Value::Map(wanted)) => wanted.iter().all(|(k, v)| live.get(k) == Some(v)),
            _ => false,
        },
        _ => equivalent(before, after),
    }
}

/// Equal, equal as JSON documents (an IAM policy pretty-printed in the spec's file and compact
/// in AWS is the same policy), or equal as sets: no perpetual diffs.
pub(crate) fn equivalent(before: &Shown, after: &Shown) -> bool {
    if before == after {
        return true;
    }
    match (before, after) {
        (Shown::Known(Value::Str(a)), Shown::Known(Value::Str(b))) => {
            let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok().filter(|v| v.is_object());
            matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
        }
        (Shown::Known(Value::List(a)), Shown::Known(Value::List(b))) => {
            let (mut a, mut b) = (a.clone(), b.clone());
            a.sort();
            b.sort();
            a == b
        }
        _ => false,
    }
}

/// Is the observed value the secret the spec wants? (Observed as a secret or, from a backend
/// that reports it as text, as text.)
fn same_secret(wanted: &edgeplan_model::SecretText, observed: Option<&Value>) -> bool {
    match observed {
        Some(Value::Secret(live)) => live == wanted,
        Some(Value::Str(text)) => text == wanted.expose(),
        _ => false,
    }
}

/// How a value is shown: secrets only by reference or fingerprint. A secret the user chose (read
/// from a spec reference) only by that reference: a digest of a weak secret could be
/// brute-forced from a PR comment. Portainer-issued keys are high-entropy: their fingerprints
/// stay, so a plan can show that a key changes.
fn shown(value: &Value, sensitive: bool) -> Shown {
    match value {
        Value::SecretRef(reference) => Shown::Sensitive(reference.clone()),
        Value::Secret(secret) => {
            Shown::Sensitive(secret.reference().map_or_else(|| secret.fingerprint(), str::to_string))
        }
        Value::Null => Shown::Known(Value::Null),
        // A sensitive attribute reported as plain text is still never shown: only its digest.
        other if sensitive => {
            Shown::Sensitive(edgeplan_model::short_sha256(crate::model::canonical_text(other).as_bytes()))
        }
        other => Shown::Known(other.clone()),
    }
}

/// Desired attributes (not ordering-only ones), references resolved through upstream planned
/// outputs.
fn resolve(node: &Node, outputs: &BTreeMap<Address, BTreeMap<Attr, Shown>>) -> BTreeMap<String, Shown> {
    let decl = node.kind.decl();
    node.desired
        .iter()
        .filter(|(attribute, _)| decl.desired_decl(**attribute).is_some_and(|d| d.role != Role::Ordering))
        .map(|(attribute, expr)| {
            let sensitive = decl.is_sensitive(*attribute);
            let value = match expr {
                Expr::Lit(value) => shown(value, sensitive),
                Expr::Ref(reference) => outputs
                    .get(&reference.node)
                    .and_then(|o| o.get(&reference.output))
                    .cloned()
                    .unwrap_or(Shown::KnownAfterApply),
            };
            (attribute.name().to_string(), value)
        })
        .collect()
}

/// The observed values of the attributes the plan compares.
pub(crate) fn before_of(node: &Node, live: &LiveObject) -> BTreeMap<String, Shown> {
    let decl = node.kind.decl();
    decl.desired
        .iter()
        .filter(|d| matches!(d.role, Role::Compared | Role::Immutable))
        .filter(|d| node.desired.contains_key(&d.attr))
        .map(|d| (d.attr.name().to_string(), shown_observed(node, live, d.attr)))
        .collect()
}

/// How the plan shows the observed value of `attribute`. Where the spec wants a secret the
/// user chose, the live value is shown by that secret's reference, or as differing from it:
/// never by a digest.
fn shown_observed(node: &Node, live: &LiveObject, attribute: Attr) -> Shown {
    let value = live.get(attribute).cloned().unwrap_or(Value::Null);
    if let Some(Value::Secret(wanted)) = node.literal(attribute)
        && let Some(reference) = wanted.reference()
        && value != Value::Null
    {
        return Shown::Sensitive(if same_secret(wanted, Some(&value)) {
            reference.to_string()
        } else {
            format!("differs from {reference}")
        });
    }
    shown(&value, node.kind.decl().is_sensitive(attribute))
}

/// How the plan shows the observed value of `field` (any attribute the live object has).
pub(crate) fn observed_shown(node: &Node, live: &LiveObject, field: &str) -> Shown {
    let Some(attribute) = Attr::parse(field) else { return Shown::Known(Value::Null) };
    shown_observed(node, live, attribute)
}

/// What downstream nodes will see of this node's outputs at plan time.
fn outputs_after(node: &Node, observation: Option<&Observation>, change: &Change) -> BTreeMap<Attr, Shown> {
    let decl = node.kind.decl();
    let live = observation.and_then(|o| o.result.as_ref().ok()).and_then(Observed::live);
    decl.outputs
        .iter()
        .map(|output| {
            // An output the spec sets as a literal is known even before the object exists
            // (a new subnet's CIDR); one that changes in this plan is known only after apply.
            let desired = change.after.get(output.name()).filter(|s| !matches!(s, Shown::KnownAfterApply));
            let observed = live.and_then(|l| l.get(*output)).filter(|v| **v != Value::Null);
            let moves = decl.moves_on_update.contains(output)
                || change.reasons.iter().any(|r| matches!(r, Reason::Drift { field } if field == output.name()));
            let value = match (change.action, desired, observed) {
                (_, Some(desired), _) => desired.clone(),
                (Action::NoOp | Action::Read, None, Some(value)) => shown(value, decl.is_sensitive(*output)),
                (Action::Update, None, Some(value)) if !moves => shown(value, decl.is_sensitive(*output)),
                _ => Shown::KnownAfterApply,
            };
            (*output, value)
        })
        .collect()
}

/// Nodes whose live state moved since the plan was computed: a saved plan that names any is
/// stale for those nodes.
pub fn stale_nodes(plan: &Plan, fresh: &[Observation]) -> Vec<Address> {
    moved(plan.changes.iter().map(|c| (&c.address, c.observed_fingerprint.as_str())), fresh)
}

/// The recorded `(address, fingerprint)` pairs whose fresh observation differs or is missing.
pub(crate) fn moved<'a>(recorded: impl Iterator<Item = (&'a Address, &'a str)>, fresh: &[Observation]) -> Vec<Address> {
    let fresh: BTreeMap<&Address, String> = fresh.iter().map(|o| (&o.address, fingerprint(&o.result))).collect();
    recorded
        .filter(|(address, recorded)| fresh.get(address).is_none_or(|now| now != recorded))
        .map(|(address, _)| address.clone())
        .collect()
}
