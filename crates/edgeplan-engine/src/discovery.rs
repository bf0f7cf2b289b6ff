//! Ownership discovery: with no state file, what the stack owns is what carries its ownership.
//! Every scope the spec names, and every scope the stack's inventory remembers, is asked for
//! its owned objects (one tag- or label-filtered call per kind); whatever the spec no longer
//! names is an orphan the plan deletes.

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_diag::{Finding, RuleId};
use edgeplan_graph::GraphBuilder;
use edgeplan_model::attr;
use edgeplan_model::{
    Address, BackendError, Identity, Node, NodeKind, Observation, Observed, OwnedObject, ResourceGraph, Scope,
};
use edgeplan_plan::{NodeDiagnostic, facts};

use crate::clock::join_all;
use crate::router::Router;

/// What discovery found beyond the spec.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Owned objects the spec no longer names, as nodes to delete.
    pub orphans: Vec<Node>,
    /// Their live objects.
    pub observations: Vec<Observation>,
    /// Scopes whose owned objects could not be listed.
    pub unreachable: Vec<(Scope, BackendError)>,
    /// Warnings about what is left behind, and why something was not pruned.
    pub diagnostics: Vec<NodeDiagnostic>,
}

/// The address a scope-level diagnostic is attached to.
pub fn scope_address(scope: &Scope) -> Address {
    Address::from_text(&format!("scope {}", scope.to_record()))
}

/// What every scope answered when asked for the stack's objects.
#[derive(Debug, Default)]
pub struct Listed {
    scopes: Vec<Scope>,
    results: Vec<Result<Vec<OwnedObject>, BackendError>>,
}

/// Ask every scope in `scopes` for what the stack owns, all at once: one listing per API
/// endpoint (scopes that differ only in credentials, two AWS profiles on one account and
/// region, would list the same objects again). Needs nothing observed, so it runs alongside
/// the spec's own reads.
pub async fn list_everywhere(router: &Router, scopes: &[Scope]) -> Listed {
    let mut listed_endpoints = BTreeSet::new();
    let scopes: Vec<Scope> =
        scopes.iter().filter(|s| **s != Scope::Engine && listed_endpoints.insert(s.addressed())).cloned().collect();
    let calls = scopes
        .iter()
        .map(|scope| {
            let future: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
                Box::pin(router.list_owned(scope));
            future
        })
        .collect();
    let results = join_all(calls).await;
    Listed { scopes, results }
}

/// Find what the stack owns (as `listed`) that is not among `spec` nodes. `spec_observations`
/// tell which VPC endpoints are the spec's consumers', so their connections are never taken
/// for orphans.
pub fn discover(stack: &str, spec: &ResourceGraph, listed: Listed, spec_observations: &[Observation]) -> Discovery {
    let Listed { scopes, results: listed } = listed;
    let mut discovery = Discovery::default();
    let mut connections: Vec<(Scope, OwnedObject)> = Vec::new();
    let mut orphan_vpces: BTreeMap<String, Address> = BTreeMap::new();
    let spec_scopes: BTreeSet<&Scope> = spec.iter().map(|(_, n)| &n.scope).collect();
    for (scope, result) in scopes.iter().zip(listed) {
        let objects = match result {
            Ok(objects) => objects,
            Err(error) => {
                if !spec_scopes.contains(scope) {
                    discovery.diagnostics.push(left_behind(scope, &error));
                }
                discovery.unreachable.push(((*scope).clone(), error));
                continue;
            }
        };
        for owned in objects {
            match &owned.address {
                Some(address) if spec.node(address).is_none() => {
                    if owned.kind == NodeKind::Vpce {
                        orphan_vpces.insert(owned.object.id.clone(), address.clone());
                    }
                    discovery.push_orphan(stack, address.clone(), owned.kind, (*scope).clone(), owned.object);
                }
                Some(_) => {}
                None if owned.kind == NodeKind::ConnectionAcceptance => connections.push(((*scope).clone(), owned)),
                None => {}
            }
        }
    }
    prune_connections(&mut discovery, stack, spec, spec_observations, connections, &orphan_vpces);
    discovery
}

impl Discovery {
    fn push_orphan(
        &mut self,
        stack: &str,
        address: Address,
        kind: NodeKind,
        scope: Scope,
        mut object: edgeplan_model::LiveObject,
    ) {
        if self.orphans.iter().any(|o| o.address == address) {
            return;
        }
        let mut node =
            Node { address: address.clone(), kind, scope, identity: Identity::Owned, desired: BTreeMap::new() };
        // Listed as owned: a record that carries no ownership of its own (a connection to the
        // stack's endpoint service) is the stack's through its parent.
        if object.owner.is_none() {
            object.owner = Some(edgeplan_model::Ownership::new(stack, &address));
        }
        facts::derive(stack, &node, &mut object);
        // With no spec to say how to find it again, an orphan is looked up by what discovery saw:
        // its lookup values, and the natural key of a named object.
        for lookup in kind.decl().lookup {
            if let Some(value) = object.get(*lookup).filter(|v| **v != edgeplan_model::Value::Null) {
                node.desired.insert(*lookup, edgeplan_model::Expr::Lit(value.clone()));
            }
        }
        node.identity = match kind {
            NodeKind::PortainerEnvironment => match object.text(attr::NAME) {
                Some(name) => Identity::Named { name: name.to_string() },
                None => Identity::Owned,
            },
            NodeKind::TunnelService | NodeKind::PortainerRestart => {
                let name = object.id.rsplit_once('/').map_or(object.id.as_str(), |(_, name)| name);
                Identity::Named { name: name.to_string() }
            }
            _ => Identity::Owned,
        };
        self.observations.push(Observation { address, result: Ok(Observed::Present(object)) });
        self.orphans.push(node);
    }
}

/// Connections to the stack's endpoint service that belong to no consumer in the spec are
/// rejected, so a removed consumer loses its tunnel even when its own account cannot be
/// reached. One that may belong to a spec consumer whose endpoint could not be observed is
/// left alone, with a warning.
fn prune_connections(
    discovery: &mut Discovery,
    stack: &str,
    spec: &ResourceGraph,
    spec_observations: &[Observation],
    connections: Vec<(Scope, OwnedObject)>,
    orphan_vpces: &BTreeMap<String, Address>,
) {
    let spec_vpces: BTreeSet<&str> = spec_observations
        .iter()
        .filter(|o| o.address.kind() == Some(NodeKind::Vpce) && spec.node(&o.address).is_some())
        .filter_map(|o| o.result.as_ref().ok().and_then(Observed::live).map(|l| l.id.as_str()))
        .collect();
    let unsure = spec_observations
        .iter()
        .any(|o| o.address.kind() == Some(NodeKind::Vpce) && spec.node(&o.address).is_some() && o.result.is_err());
    for (scope, connection) in connections {
        let vpce = connection.object.id.clone();
        let accepted = connection.object.text(attr::STATE).is_some_and(facts::connection_accepted);
        if spec_vpces.contains(vpce.as_str()) || !accepted {
            continue;
        }
        let address = match orphan_vpces.get(&vpce) {
            Some(vpce_address) => vpce_address.sibling(NodeKind::ConnectionAcceptance),
            // A consumer the spec dropped whose own account is out of reach: named by its endpoint.
            None if !unsure => Address::consumer(&vpce, NodeKind::ConnectionAcceptance.address_name()),
            None => {
                discovery.diagnostics.push(NodeDiagnostic {
                    address: scope_address(&scope),
                    finding: Finding::of(
                        RuleId::LiveLeftBehind,
                        None,
                        format!(
                            "the connection from {vpce} to the stack's endpoint service matches no consumer edgeplan \
                             could observe; it is kept until every consumer's endpoint can be observed"
                        ),
                    ),
                });
                continue;
            }
        };
        discovery.push_orphan(stack, address, NodeKind::ConnectionAcceptance, scope, connection.object);
    }
}

fn left_behind(scope: &Scope, error: &BackendError) -> NodeDiagnostic {
    NodeDiagnostic {
        address: scope_address(scope),
        finding: Finding::of(
            RuleId::LiveLeftBehind,
            None,
            format!(
                "{scope} is in the stack's inventory but the spec no longer names it, and it cannot be reached \
                 ({error}): what the stack created there is left behind; on the provider side its connection is \
                 still rejected and its principal removed"
            ),
        ),
    }
}

/// The graph an apply or destroy walks: the spec's nodes with their references, plus the
/// orphans. An orphan has no spec to take references from, so it is ordered by its kind:
/// after every node of an earlier kind on its side (and, for a consumer's, on the provider's).
pub fn execution_graph(spec: &ResourceGraph, orphans: &[Node]) -> ResourceGraph {
    if orphans.is_empty() {
        return spec.clone();
    }
    let mut builder = GraphBuilder::new();
    let mut edges: Vec<(Address, Address, edgeplan_model::Attr)> = Vec::new();
    for (address, node) in spec.iter() {
        for (attribute, reference) in node.references() {
            edges.push((reference.node.clone(), address.clone(), attribute));
        }
    }
    let all: Vec<&Node> = spec.iter().map(|(_, n)| n).chain(orphans.iter()).collect();
    for orphan in orphans {
        let side = orphan.address.prefix();
        for earlier in all.iter().filter(|n| n.address != orphan.address && n.kind.rank() < orphan.kind.rank()) {
            let earlier_side = earlier.address.prefix();
            if earlier_side == side || (side.starts_with("consumer.") && earlier_side == "provider") {
                edges.push((earlier.address.clone(), orphan.address.clone(), attr::ID));
            }
        }
    }
    for node in all {
        // Addresses are unique: orphans are only what the spec does not name.
        let _ = builder.add_node(node.address.clone(), node.clone());
    }
    for (from, to, why) in edges {
        let _ = builder.add_edge(&from, &to, why);
    }
    // Rank edges only point from lower to higher ranks: no cycle can form.
    match builder.build() {
        Ok(graph) => graph,
        Err(_) => spec.clone(),
    }
}
