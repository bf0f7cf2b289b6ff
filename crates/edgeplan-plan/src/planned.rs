//! The planned state: the world as the plan leaves it, as far as the plan knows it. Each node's
//! observed object with its change's planned values applied (a created object from its planned
//! values alone, a deleted one gone), and the facts that follow re-derived: a policy's missing
//! actions from the planned document, a subnet's routes from the route table the plan
//! associates it with, the NLB the controller will build from the planned Service and subnet,
//! the agent's key as edgeplan writes it.
//!
//! Live rules judge this state exactly as they judge the observed one ([`crate::rules`]): a
//! cause that is still there is an error apply would hit; one that is gone is fixed by this
//! plan. A value the plan knows only after apply is left out, so a rule reading it cannot tell.

use std::borrow::Cow;
use std::collections::BTreeMap;

use edgeplan_model::attr::{self, Attr, field};
use edgeplan_model::{Action, Address, Compare, Expr, LiveObject, Node, NodeKind, Observation, Observed, Role, Value};

use crate::model::{Change, Shown};

/// One node's object in one state of the world.
#[derive(Debug, Clone)]
pub(crate) enum State<'a> {
    Present(Cow<'a, LiveObject>),
    Absent,
    /// Not observed (an observation error): no rule can tell anything about it.
    Unknown,
}

impl State<'_> {
    pub(crate) fn live(&self) -> Option<&LiveObject> {
        match self {
            State::Present(live) => Some(live),
            State::Absent | State::Unknown => None,
        }
    }
}

fn observed_state(observation: &Observation) -> State<'_> {
    match &observation.result {
        Ok(Observed::Present(live)) => State::Present(Cow::Borrowed(live)),
        Ok(Observed::Absent) => State::Absent,
        Err(_) => State::Unknown,
    }
}

/// The observed state: every observation as it is.
pub(crate) fn observed(observations: &[Observation]) -> BTreeMap<&Address, State<'_>> {
    observations.iter().map(|o| (&o.address, observed_state(o))).collect()
}

/// The planned state of `nodes` (in dependency order). A node without a change keeps its
/// observed state.
pub(crate) fn planned<'a>(
    nodes: &[&'a Node],
    changes: &'a [Change],
    observations: &'a [Observation],
) -> BTreeMap<&'a Address, State<'a>> {
    let mut states = observed(observations);
    let by_address: BTreeMap<&Address, &Change> = changes.iter().map(|c| (&c.address, c)).collect();
    for node in nodes {
        let Some(change) = by_address.get(&node.address) else { continue };
        let before = states.remove(&node.address).unwrap_or(State::Unknown);
        states.insert(&node.address, apply_change(node, change, before));
    }
    // Facts that follow from other nodes' planned state, upstream first.
    let by_node: BTreeMap<&Address, &Node> = nodes.iter().map(|n| (&n.address, *n)).collect();
    for node in nodes {
        derive(node, &by_node, &by_address, &mut states);
    }
    states
}

/// `node`'s desired values as the plan resolved them: literals as written (secrets included,
/// never shown), references where the plan knows them. `None` for a value known only after
/// apply.
fn planned_values(node: &Node, change: &Change) -> Vec<(Attr, Option<Value>)> {
    let decl = node.kind.decl();
    node.desired
        .iter()
        .filter(|(attribute, _)| decl.desired_decl(**attribute).is_some_and(|d| d.role != Role::Ordering))
        .map(|(attribute, expr)| {
            let value = match expr {
                Expr::Lit(value) => Some(value.clone()),
                Expr::Ref(_) => match change.after.get(attribute.name()) {
                    Some(Shown::Known(value)) => Some(value.clone()),
                    _ => None,
                },
            };
            (*attribute, value)
        })
        .collect()
}

fn apply_change<'a>(node: &Node, change: &Change, before: State<'a>) -> State<'a> {
    let base = match (change.action, before) {
        (Action::Delete, _) => return State::Absent,
        (Action::NoOp | Action::Read, before) => return before,
        (Action::Create, _) => LiveObject::new(""),
        (Action::Update | Action::Replace, State::Present(live)) => live.into_owned(),
        // An update of something not observed: nothing to build on.
        (Action::Update | Action::Replace, State::Absent | State::Unknown) => return State::Unknown,
    };
    let mut live = base;
    let decl = node.kind.decl();
    for (attribute, value) in planned_values(node, change) {
        match value {
            // A map compared as a subset keeps others' entries (tags, annotations).
            Some(Value::Map(wanted)) if decl.desired_decl(attribute).is_some_and(|d| d.compare == Compare::Subset) => {
                let mut merged = live.get(attribute).and_then(Value::as_map).cloned().unwrap_or_default();
                merged.extend(wanted);
                live.set(attribute, Value::Map(merged));
            }
            Some(value) => live.set(attribute, value),
            None => {
                live.attributes.remove(&attribute);
            }
        }
    }
    State::Present(Cow::Owned(live))
}

fn sibling<'s, 'a>(
    states: &'s BTreeMap<&'a Address, State<'a>>,
    node: &Node,
    kind: NodeKind,
) -> Option<&'s LiveObject> {
    states.get(&node.address.sibling(kind)).and_then(State::live)
}

/// Change the planned object of `node` with `edit`, if it is present.
fn edit(states: &mut BTreeMap<&Address, State<'_>>, address: &Address, edit: impl FnOnce(&mut LiveObject)) {
    if let Some(State::Present(live)) = states.get_mut(address) {
        edit(live.to_mut());
    }
}

fn mutates(changes: &BTreeMap<&Address, &Change>, address: &Address) -> bool {
    changes.get(address).is_some_and(|c| c.action.mutates())
}

fn derive(
    node: &Node,
    nodes: &BTreeMap<&Address, &Node>,
    changes: &BTreeMap<&Address, &Change>,
    states: &mut BTreeMap<&Address, State<'_>>,
) {
    let changed = mutates(changes, &node.address);
    match node.kind {
        NodeKind::LbControllerPolicy if changed => edit(states, &node.address, crate::facts::policy),
        NodeKind::NlbSubnet => subnet(node, nodes, changes, states),
        NodeKind::Nlb => nlb(node, states),
        NodeKind::AgentObjects if changed => agent(node, states),
        _ => {}
    }
}

/// The subnet's effective routes once the plan is applied: the route table the plan associates
/// it with, else (a new subnet) the VPC's main route table. And a new subnet's AZ ID, from its
/// AZ name in this account.
fn subnet(
    node: &Node,
    nodes: &BTreeMap<&Address, &Node>,
    changes: &BTreeMap<&Address, &Change>,
    states: &mut BTreeMap<&Address, State<'_>>,
) {
    // The association the spec makes between this subnet and its own table, if the planned
    // state keeps it: then that table's planned routes are the subnet's.
    let association = node.address.sibling(NodeKind::NlbRouteTableAssociation);
    let table = nodes
        .get(&association)
        .filter(|a| a.referenced(attr::SUBNET_ID) == Some(&node.address))
        .filter(|_| states.get(&association).and_then(State::live).is_some())
        .and_then(|a| a.referenced(attr::ROUTE_TABLE_ID));
    let table_routes =
        table.and_then(|t| states.get(t)).and_then(State::live).and_then(|t| t.get(attr::ROUTES).cloned());
    let created = changes.get(&node.address).is_some_and(|c| c.action == Action::Create);
    let vpc = sibling(states, node, NodeKind::Vpc).cloned();
    let routes = match (table_routes, created) {
        (Some(routes), _) => Some((routes, "explicit")),
        (None, true) => vpc.as_ref().and_then(|v| v.get(attr::ROUTES).cloned()).map(|r| (r, "main")),
        (None, false) => None,
    };
    edit(states, &node.address, |live| {
        if let Some((routes, association)) = routes {
            live.set(attr::ROUTES, routes);
            live.set(attr::ROUTE_TABLE_ASSOCIATION, association);
            crate::facts::routes(live);
        }
        if live.text(attr::AVAILABILITY_ZONE_ID).is_none()
            && let Some(name) = live.text(attr::AVAILABILITY_ZONE).map(str::to_string)
            && let Some(id) = vpc.as_ref().and_then(|v| zone_id(v, &name))
        {
            live.set(attr::AVAILABILITY_ZONE_ID, id);
        }
    });
}

/// The AZ ID of the zone called `name` in the VPC's region (this account's mapping).
pub(crate) fn zone_id(vpc: &LiveObject, name: &str) -> Option<String> {
    vpc.get(attr::AVAILABILITY_ZONES)?.as_list().iter().find_map(|zone| {
        let zone = zone.string_map();
        (zone.get(field::NAME).map(String::as_str) == Some(name)).then(|| zone.get(field::ID).cloned()).flatten()
    })
}

/// The NLB the controller will build, while it does not exist: internal (as the spec wants) and
/// in the AZ of the subnet the tunnel Service pins it to.
fn nlb(node: &Node, states: &mut BTreeMap<&Address, State<'_>>) {
    if !matches!(states.get(&node.address), Some(State::Absent)) {
        return;
    }
    let service = sibling(states, node, NodeKind::TunnelService).is_some();
    let zone =
        sibling(states, node, NodeKind::NlbSubnet).and_then(|s| s.text(attr::AVAILABILITY_ZONE_ID)).map(str::to_string);
    if !service {
        return;
    }
    let mut live = LiveObject::new("");
    if let Some(scheme) = node.literal(attr::SCHEME) {
        live.set(attr::SCHEME, scheme.clone());
    }
    if let Some(zone) = zone {
        live.set(attr::AVAILABILITY_ZONE_IDS, vec![zone]);
    }
    live.set(attr::ENDPOINT_SERVICE_IDS, Value::List(Vec::new()));
    if let Some(state) = states.get_mut(&node.address) {
        *state = State::Present(Cow::Owned(live));
    }
}

/// The agent's key as edgeplan writes it: derived from Portainer's key, canonical by
/// construction, field 2 the VPC endpoint's name on the listener port (known after apply while
/// the endpoint does not exist: then the rules that read it cannot tell, and need not: edgeplan
/// never writes another tunnel).
fn agent(node: &Node, states: &mut BTreeMap<&Address, State<'_>>) {
    let Some(key_node) = node.referenced(attr::AGENT_EDGE_KEY) else { return };
    let key = states.get(key_node).and_then(State::live);
    let tunnel = key.and_then(|k| Some(format!("{}:{}", k.text(attr::TUNNEL_HOST)?, k.int(attr::TUNNEL_PORT)?)));
    edit(states, &node.address, |live| {
        live.set(attr::KEY_PRESENT, true);
        live.set(attr::KEY_VALID, true);
        live.set(attr::KEY_CANONICAL, true);
        live.set(attr::KEY_AGENT_ERROR, Value::Null);
        match tunnel {
            Some(tunnel) => live.set(attr::KEY_TUNNEL, tunnel),
            None => {
                live.attributes.remove(&attr::KEY_TUNNEL);
            }
        }
    });
}
