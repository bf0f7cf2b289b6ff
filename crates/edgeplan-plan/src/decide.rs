//! Deciding: desired nodes + observations → plan. Pure and deterministic.

use std::collections::BTreeMap;

use edgeplan_model::{Action, Address, Expr, Identity, LiveObject, Node, NodeKind, Observation, Observed, Value};

use crate::model::{Change, FORMAT_VERSION, Plan, Reason, Shown, fingerprint};

/// Attributes that hold secrets: shown only as a reference or fingerprint, in every format.
const SENSITIVE: &[&str] = &["EDGE_KEY", "AGENT_SECRET", "api_key", "key", "portainer_key"];

/// Attributes that steer edgeplan rather than describe the object; never diffed.
const NOT_DIFFED: &[&str] = &["api_key", "create_if_missing"];

/// The policy version a policy update deletes first (see [`decide_parameters`]).
pub const DELETE_VERSION: &str = "delete_version";

/// Fields that cannot change in place: a difference forces replacement.
fn immutable(kind: NodeKind, field: &str) -> bool {
    matches!(
        (kind, field),
        (NodeKind::NlbSubnet, "vpc_id" | "cidr_block" | "availability_zone" | "availability_zone_id")
            | (NodeKind::NlbRouteTable | NodeKind::VpceSecurityGroup, "vpc_id")
            | (NodeKind::Vpce, "vpc_id" | "service_name" | "vpc_endpoint_type")
    )
}

/// Decide every node's change. `nodes` must be in dependency order (a validated graph's
/// topological order), so every reference is resolved after the node it points at.
pub fn decide(stack: &str, nodes: &[&Node], observations: &[Observation]) -> Plan {
    let observed: BTreeMap<&Address, &Observation> = observations.iter().map(|o| (&o.address, o)).collect();
    let mut planned_outputs: BTreeMap<Address, BTreeMap<String, Shown>> = BTreeMap::new();
    let mut changes = Vec::with_capacity(nodes.len());
    for node in nodes {
        let observation = observed.get(&node.address);
        let change = decide_node(node, observation.copied(), &planned_outputs);
        planned_outputs.insert(node.address.clone(), outputs_after(node, observation.copied(), &change));
        changes.push(change);
    }
    let mut diagnostics = crate::rules::live_rules(nodes, observations);
    // A trap this plan fixes is reported, not fatal: say so and lower it to a warning.
    for diagnostic in &mut diagnostics {
        let fixed = changes.iter().any(|c: &Change| c.address == diagnostic.address && c.action.mutates());
        if fixed && diagnostic.finding.severity > edgeplan_diag::Severity::Warning {
            diagnostic.finding.severity = edgeplan_diag::Severity::Warning;
            diagnostic.finding.help = format!("fixed by this plan: {}", diagnostic.finding.help);
        }
    }
    Plan { format_version: FORMAT_VERSION, stack: stack.to_string(), changes, diagnostics }
}

fn decide_node(
    node: &Node,
    observation: Option<&Observation>,
    outputs: &BTreeMap<Address, BTreeMap<String, Shown>>,
) -> Change {
    let after = resolve(node, outputs);
    let observed_fingerprint = observation.map_or_else(|| "unobserved".to_string(), |o| fingerprint(&o.result));
    let mut change = Change {
        address: node.address.clone(),
        kind: node.kind,
        action: Action::NoOp,
        reasons: Vec::new(),
        before: BTreeMap::new(),
        after,
        observed_fingerprint,
    };
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
        change.action = Action::Read;
        change.reasons.push(Reason::ManagedElsewhere);
        if let Some(live) = live {
            change.before = before_of(node, live);
        }
        return change;
    }
    let Some(live) = live else {
        if let Identity::Adopted { .. } = node.identity {
            // An adopted resource is never created: it must exist. Rules explain it.
            change.action = Action::Read;
        } else {
            change.action = Action::Create;
        }
        change.reasons.push(Reason::NotFound);
        return change;
    };
    change.before = before_of(node, live);
    for (field, wanted) in &change.after {
        if NOT_DIFFED.contains(&field.as_str()) {
            continue;
        }
        let reason = match wanted {
            Shown::KnownAfterApply => {
                Some(Reason::UpstreamChanging { field: field.clone(), upstream: upstream_of(node, field) })
            }
            // A secret given by reference cannot be compared with the live fingerprint until the
            // reference is read (apply time); an existing value is not reported as drift.
            Shown::Sensitive(label)
                if !label.starts_with("sha256:") && matches!(change.before.get(field), Some(Shown::Sensitive(_))) =>
            {
                None
            }
            _ if change.before.get(field).is_some_and(|before| equivalent(before, wanted)) => None,
            _ if immutable(node.kind, field) && !matches!(node.identity, Identity::Adopted { .. }) => {
                Some(Reason::ForcesReplacement { field: field.clone() })
            }
            _ => Some(Reason::Drift { field: field.clone() }),
        };
        change.reasons.extend(reason);
    }
    change.action = if change.reasons.iter().any(|r| matches!(r, Reason::ForcesReplacement { .. })) {
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
        && live.attributes.get("version_count").and_then(Value::as_int).is_some_and(|n| n >= 5)
        && let Some(oldest) = live.attributes.get("oldest_non_default_version").filter(|v| v.as_str().is_some())
    {
        change.after.insert(DELETE_VERSION.to_string(), Shown::Known(oldest.clone()));
        change.reasons.push(Reason::VersionLimit { field: DELETE_VERSION.to_string() });
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
        // Lists in the spec (principals, CIDRs, subnets) are sets to every API edgeplan drives:
        // AWS returns them in its own order.
        (Shown::Known(Value::List(a)), Shown::Known(Value::List(b))) => {
            let (mut a, mut b) = (a.clone(), b.clone());
            a.sort();
            b.sort();
            a == b
        }
        _ => false,
    }
}

/// Desired attributes, references resolved through upstream planned outputs.
fn resolve(node: &Node, outputs: &BTreeMap<Address, BTreeMap<String, Shown>>) -> BTreeMap<String, Shown> {
    node.desired
        .iter()
        .map(|(field, expr)| {
            let shown = match expr {
                Expr::Lit(Value::SecretRef(reference)) => Shown::Sensitive(reference.clone()),
                // Read at plan time: compared with the live fingerprint like any value.
                Expr::Lit(Value::Secret(secret)) => Shown::Sensitive(secret.fingerprint()),
                Expr::Lit(value) => Shown::Known(value.clone()),
                Expr::Ref(reference) => outputs
                    .get(&reference.node)
                    .and_then(|o| o.get(reference.output))
                    .cloned()
                    .unwrap_or(Shown::KnownAfterApply),
            };
            let shown = match shown {
                Shown::Known(value) if SENSITIVE.contains(field) => Shown::Sensitive(sensitive_label(&value)),
                other => other,
            };
            (field.to_string(), shown)
        })
        .collect()
}

fn sensitive_label(value: &Value) -> String {
    // Backends report secrets as fingerprints (`sha256:…`), never as text.
    match value {
        Value::Str(text) if text.starts_with("sha256:") => text.clone(),
        Value::Secret(secret) => secret.fingerprint(),
        _ => "value hidden".to_string(),
    }
}

pub(crate) fn before_of(node: &Node, live: &LiveObject) -> BTreeMap<String, Shown> {
    node.desired
        .keys()
        .map(|field| {
            let value = live.attributes.get(*field).cloned().unwrap_or(Value::Null);
            let shown = if SENSITIVE.contains(field) {
                match value {
                    Value::Null => Shown::Known(Value::Null),
                    other => Shown::Sensitive(sensitive_label(&other)),
                }
            } else {
                Shown::Known(value)
            };
            (field.to_string(), shown)
        })
        .collect()
}

fn upstream_of(node: &Node, field: &str) -> Address {
    match node.desired.get(field) {
        Some(Expr::Ref(reference)) => reference.node.clone(),
        _ => node.address.clone(),
    }
}

/// What downstream nodes will see of this node's outputs at plan time.
fn outputs_after(node: &Node, observation: Option<&Observation>, change: &Change) -> BTreeMap<String, Shown> {
    let live = match observation.map(|o| &o.result) {
        Some(Ok(Observed::Present(live))) => Some(live),
        _ => None,
    };
    node.kind
        .outputs()
        .iter()
        .map(|output| {
            // An output the spec sets as a literal is known even before the object exists
            // (a new subnet's CIDR); one that changes in this plan is known only after apply.
            let desired = change.after.get(*output).filter(|s| !matches!(s, Shown::KnownAfterApply));
            let shown = match (change.action, desired, live.and_then(|l| l.outputs.get(*output))) {
                (_, Some(desired), _) => desired.clone(),
                (Action::NoOp | Action::Read, None, Some(value)) => Shown::Known(value.clone()),
                (Action::Update, None, Some(value)) if !changes_output(change, output) => Shown::Known(value.clone()),
                _ => Shown::KnownAfterApply,
            };
            (output.to_string(), shown)
        })
        .collect()
}

/// Outputs that an in-place update alters: revisions, rollouts and policy versions move with
/// any change; a restart does not change the deployment's `--tunnel-port`.
fn changes_output(change: &Change, output: &str) -> bool {
    matches!(output, "revision" | "rollout" | "default_version" | "key")
        || change.reasons.iter().any(|r| matches!(r, Reason::Drift { field } if field == output))
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
