//! Test helpers: the example specs and worlds, a poll-once executor for the backend's ready
//! futures, and a deliberately naive "engine" (create when absent, update when a desired value
//! differs) to drive whole applies.

use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use edgeplan_diag::SourceFile;
use edgeplan_model::backend::{ExecuteError, ObserveError, Operation};
use edgeplan_model::{Action, Backend, Expr, Identity, LiveObject, Node, NodeKind, Observed, Value, compile};
use edgeplan_sim::SimBackend;

pub(crate) const SEED_SPEC: &str = include_str!("../../../../specs/seed.yaml");
pub(crate) const FLEET_SPEC: &str = include_str!("../../../../specs/fleet.yaml");
pub(crate) const SEED_WORLD: &str = include_str!("../../../../testdata/worlds/seed.yaml");
pub(crate) const FLEET_WORLD: &str = include_str!("../../../../testdata/worlds/fleet.yaml");
pub(crate) const UPSTREAM_POLICY: &str =
    include_str!("../../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");

pub(crate) const SEED_STACK: &str = "portainer-edge";
pub(crate) const FLEET_STACK: &str = "portainer-fleet";

/// The backend's futures are ready when returned: one poll gets the value.
pub(crate) fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a simulated backend future was not ready"),
    }
}

pub(crate) fn compile_spec(text: &str) -> Vec<Node> {
    let spec = edgeplan_spec::parse(&SourceFile::new("spec.yaml", text)).expect("example spec parses");
    compile(&spec)
}

pub(crate) fn seed() -> (SimBackend, Vec<Node>) {
    (SimBackend::load(SEED_WORLD).expect("seed world loads"), compile_spec(SEED_SPEC))
}

pub(crate) fn fleet() -> (SimBackend, Vec<Node>) {
    (SimBackend::load(FLEET_WORLD).expect("fleet world loads"), compile_spec(FLEET_SPEC))
}

pub(crate) fn node<'n>(nodes: &'n [Node], address: &str) -> &'n Node {
    nodes.iter().find(|n| n.address.as_str() == address).unwrap_or_else(|| panic!("no node {address}"))
}

/// Observe every node; the result by address.
pub(crate) fn observe_all(
    backend: &SimBackend,
    stack: &str,
    nodes: &[Node],
) -> BTreeMap<String, Result<Observed, ObserveError>> {
    let refs: Vec<&Node> = nodes.iter().collect();
    ready(backend.observe(stack, &refs)).into_iter().map(|o| (o.address.to_string(), o.result)).collect()
}

/// The live object at `address`, which must be present.
pub(crate) fn live(backend: &SimBackend, stack: &str, nodes: &[Node], address: &str) -> LiveObject {
    match observe_all(backend, stack, nodes).remove(address) {
        Some(Ok(Observed::Present(object))) => object,
        other => panic!("{address}: expected a live object, got {other:?}"),
    }
}

pub(crate) fn absent(backend: &SimBackend, stack: &str, nodes: &[Node], address: &str) -> bool {
    matches!(observe_all(backend, stack, nodes).remove(address), Some(Ok(Observed::Absent)))
}

pub(crate) fn attr<'o>(object: &'o LiveObject, key: &str) -> &'o Value {
    object.attributes.get(key).unwrap_or_else(|| panic!("no attribute {key} in {:?}", object.attributes))
}

pub(crate) fn s(value: &str) -> Value {
    Value::str(value)
}

/// Desired attributes with references resolved through the current observations, and the
/// policy document's path replaced by the document (what the engine will do).
pub(crate) fn resolved(backend: &SimBackend, stack: &str, nodes: &[Node], target: &Node) -> BTreeMap<String, Value> {
    let observed = observe_all(backend, stack, nodes);
    let mut attributes = BTreeMap::new();
    for (key, expr) in &target.desired {
        let value = match expr {
            Expr::Lit(value) => Some(value.clone()),
            Expr::Ref(reference) => match observed.get(reference.node.as_str()) {
                Some(Ok(Observed::Present(object))) => object.outputs.get(reference.output).cloned(),
                _ => None,
            },
        };
        if let Some(value) = value {
            attributes.insert(key.to_string(), value);
        }
    }
    if target.kind == NodeKind::LbControllerPolicy {
        attributes.insert("policy_document".to_string(), s(UPSTREAM_POLICY));
    }
    attributes
}

pub(crate) fn operation(node: &Node, action: Action, attributes: BTreeMap<String, Value>, token: &str) -> Operation {
    Operation { node: node.clone(), action, attributes, client_token: token.to_string() }
}

pub(crate) fn execute(backend: &SimBackend, stack: &str, op: &Operation) -> Result<Observed, ExecuteError> {
    ready(backend.execute(stack, op))
}

/// Execute `action` on `address` with its resolved desired attributes.
pub(crate) fn apply_node(
    backend: &SimBackend,
    stack: &str,
    nodes: &[Node],
    address: &str,
    action: Action,
) -> Result<Observed, ExecuteError> {
    let target = node(nodes, address);
    let attributes = resolved(backend, stack, nodes, target);
    execute(backend, stack, &operation(target, action, attributes, &format!("{stack}/{address}/1")))
}

fn same(kind: NodeKind, key: &str, wanted: &Value, have: Option<&Value>) -> bool {
    match (kind, key, wanted, have) {
        (NodeKind::LbControllerPolicy, "policy_document", Value::Str(a), Some(Value::Str(b))) => {
            serde_json::from_str::<serde_json::Value>(a).ok() == serde_json::from_str::<serde_json::Value>(b).ok()
        }
        (_, "api_key" | "create_if_missing", _, _) => true,
        _ => have == Some(wanted),
    }
}

/// What the naive engine would do with one node now.
pub(crate) fn naive_action(backend: &SimBackend, stack: &str, nodes: &[Node], target: &Node) -> Action {
    if target.identity == Identity::ReadOnly {
        return Action::Read;
    }
    let observed = observe_all(backend, stack, nodes);
    match observed.get(target.address.as_str()) {
        Some(Ok(Observed::Present(object))) => {
            let wanted = resolved(backend, stack, nodes, target);
            let differs = wanted.iter().any(|(k, v)| !same(target.kind, k, v, object.attributes.get(k)));
            if differs { Action::Update } else { Action::NoOp }
        }
        Some(Ok(Observed::Absent)) => Action::Create,
        other => panic!("{}: cannot decide on {other:?}", target.address),
    }
}

/// Apply every node in compile order (a valid dependency order for the example specs),
/// waiting on the virtual clock where a real apply would wait. Returns the actions taken.
pub(crate) fn apply_all(backend: &SimBackend, stack: &str, nodes: &[Node]) -> Vec<(String, Action)> {
    apply_until(backend, stack, nodes, None)
}

/// [`apply_all`], stopping after `last` (included).
pub(crate) fn apply_until(
    backend: &SimBackend,
    stack: &str,
    nodes: &[Node],
    last: Option<&str>,
) -> Vec<(String, Action)> {
    let mut taken = Vec::new();
    for target in nodes {
        if target.kind == NodeKind::Nlb {
            wait_for_active_nlb(backend, stack, nodes, target);
        }
        let action = naive_action(backend, stack, nodes, target);
        if action.mutates() {
            let mut attributes = resolved(backend, stack, nodes, target);
            // At IAM's 5-version limit the plan names the oldest non-default version to prune.
            if target.kind == NodeKind::LbControllerPolicy {
                let policy = live(backend, stack, nodes, target.address.as_str());
                if policy.attributes.get("version_count") == Some(&Value::Int(5)) {
                    attributes
                        .insert("delete_version".to_string(), policy.attributes["oldest_non_default_version"].clone());
                }
            }
            let token = format!("{stack}/{}/1", target.address);
            execute(backend, stack, &operation(target, action, attributes, &token))
                .unwrap_or_else(|e| panic!("{} {action}: {}", target.address, e.message));
        }
        taken.push((target.address.to_string(), action));
        if last == Some(target.address.as_str()) {
            break;
        }
    }
    taken
}

/// Step the clock until the controller's NLB is active, as the executor will wait.
pub(crate) fn wait_for_active_nlb(backend: &SimBackend, stack: &str, nodes: &[Node], target: &Node) {
    for _ in 0..100 {
        if let Some(Ok(Observed::Present(object))) = observe_all(backend, stack, nodes).remove(target.address.as_str())
            && object.attributes.get("state") == Some(&s("active"))
        {
            return;
        }
        if backend.step().is_none() {
            panic!("the NLB never appeared: {:#?}", backend.snapshot().kubernetes[0].events);
        }
    }
}
