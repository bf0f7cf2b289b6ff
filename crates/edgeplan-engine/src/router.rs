//! The engine side of the seam: groups nodes by scope, resolves every reference before a
//! backend sees a node, observes layer by layer where a lookup needs an upstream output,
//! computes the engine's own nodes (the agent key), renders Kubernetes objects, and derives the
//! domain facts every backend's observations get judged by.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use edgeplan_model::attr::{self, Attr};
use edgeplan_model::backend::{HttpResponse, Request};
use edgeplan_model::{
    Action, Address, Backend, BackendError, Clock, Connector, Expr, LiveObject, Node, NodeKind, Observation, Observed,
    Operation, OwnedObject, Ownership, Role, Scope, ScopeKind, Value, short_sha256,
};
use edgeplan_plan::{facts, manifests};

use crate::clock::join_all;

type Attributes = BTreeMap<Attr, Value>;
type Outcome = Result<Observed, BackendError>;
type Connected = Result<Arc<dyn Backend>, BackendError>;

/// Routes nodes to the backend serving their scope; one connection per scope, opened once.
pub struct Router {
    connector: Arc<dyn Connector>,
    stack: String,
    backends: Mutex<BTreeMap<Scope, Connected>>,
}

impl Router {
    pub fn new(connector: Arc<dyn Connector>, stack: &str) -> Router {
        Router { connector, stack: stack.to_string(), backends: Mutex::new(BTreeMap::new()) }
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.connector.clock()
    }

    /// The backend for `scope`, connected on first use.
    pub async fn backend(&self, scope: &Scope) -> Result<Arc<dyn Backend>, BackendError> {
        if let Some(known) = self.lock().get(scope) {
            return known.clone();
        }
        let connected = self.connector.connect(scope).await;
        self.lock().entry(scope.clone()).or_insert(connected).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Scope, Connected>> {
        self.backends.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Observe every node (any order), layer by layer: a node whose lookup needs another node's
    /// output is observed after it. Within a layer, one batched call per scope, all scopes at
    /// once. Returns one observation per node, in the given order.
    pub async fn observe_all(&self, nodes: &[&Node]) -> Vec<Observation> {
        let by_address: BTreeMap<&Address, &Node> = nodes.iter().map(|n| (&n.address, *n)).collect();
        let layers = layers(nodes, &by_address);
        let mut results: BTreeMap<Address, Outcome> = BTreeMap::new();
        for layer in layers {
            let mut requests: Vec<(&Node, Attributes)> = Vec::new();
            for node in layer {
                match request_attributes(node, &results) {
                    Ok(attributes) => requests.push((node, attributes)),
                    Err(outcome) => {
                        results.insert(node.address.clone(), outcome);
                    }
                }
            }
            for observation in self.observe_resolved(requests).await {
                results.insert(observation.address, observation.result);
            }
        }
        nodes
            .iter()
            .map(|node| Observation {
                address: node.address.clone(),
                result: results.remove(&node.address).unwrap_or(Ok(Observed::Absent)),
            })
            .collect()
    }

    /// Observe nodes whose request attributes the caller resolved (the executor resolves them
    /// from what it has applied). One call per scope; results in the given order.
    pub async fn observe_resolved(&self, requests: Vec<(&Node, Attributes)>) -> Vec<Observation> {
        let mut by_scope: BTreeMap<Scope, Vec<usize>> = BTreeMap::new();
        let mut results: Vec<Option<Outcome>> = vec![None; requests.len()];
        for (index, (node, attributes)) in requests.iter().enumerate() {
            if node.kind.scope() == ScopeKind::Engine {
                results[index] = Some(compute_engine_node(node, attributes));
            } else if let Some(missing) = node.kind.decl().lookup.iter().find(|a| !attributes.contains_key(a)) {
                // A lookup value that does not exist yet: neither can the object.
                let _ = missing;
                results[index] = Some(Ok(Observed::Absent));
            } else {
                by_scope.entry(node.scope.clone()).or_default().push(index);
            }
        }
        let calls: Vec<_> = by_scope
            .iter()
            .map(|(scope, indexes)| {
                let batch: Vec<Request<'_>> = indexes
                    .iter()
                    .map(|i| {
                        let (node, attributes) = &requests[*i];
                        Request { node, attributes: attributes.clone(), objects: manifests::object_refs(node) }
                    })
                    .collect();
                let future: std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Outcome>> + Send + '_>> =
                    Box::pin(async move {
                        match self.backend(scope).await {
                            Ok(backend) => {
                                let mut answers = backend.observe(&self.stack, &batch).await;
                                // A backend answers once per request; anything else is its bug.
                                answers.resize(
                                    batch.len(),
                                    Err(BackendError::unsupported(format!("{scope} returned no observation"))),
                                );
                                answers
                            }
                            Err(error) => vec![Err(error); batch.len()],
                        }
                    });
                future
            })
            .collect();
        let answers = join_all(calls).await;
        for ((_, indexes), outcomes) in by_scope.iter().zip(answers) {
            for (index, outcome) in indexes.iter().zip(outcomes) {
                results[*index] = Some(outcome);
            }
        }
        requests
            .iter()
            .zip(results)
            .map(|((node, _), outcome)| {
                let mut outcome = outcome.unwrap_or(Ok(Observed::Absent));
                if let Ok(Observed::Present(live)) = &mut outcome {
                    facts::derive(&self.stack, node, live);
                }
                Observation { address: node.address.clone(), result: outcome }
            })
            .collect()
    }

    /// Execute one decided action on `node` with its resolved attributes. `live` is the object
    /// as observed just before (what an update or delete acts on).
    pub async fn execute(
        &self,
        node: &Node,
        action: Action,
        attributes: Attributes,
        live: Option<LiveObject>,
    ) -> Result<Observed, BackendError> {
        if node.kind.scope() == ScopeKind::Engine {
            return match action {
                Action::Delete => Ok(Observed::Absent),
                _ => compute_engine_node(node, &attributes),
            };
        }
        let operation = operation(&self.stack, node, action, attributes, live)?;
        let backend = self.backend(&node.scope).await?;
        let mut result = backend.execute(&operation).await;
        if let Ok(Observed::Present(live)) = &mut result {
            facts::derive(&self.stack, node, live);
        }
        result
    }

    /// Every object the stack owns in `scope`.
    pub async fn list_owned(&self, scope: &Scope) -> Result<Vec<OwnedObject>, BackendError> {
        self.backend(scope).await?.list_owned(&self.stack).await
    }

    /// A GET on `scope`'s API (verify's probe through Portainer).
    pub async fn http_get(&self, scope: &Scope, path: &str) -> Result<HttpResponse, BackendError> {
        self.backend(scope).await?.http_get(path).await
    }
}

/// What a backend receives for `action` on `node`: the Kubernetes objects rendered (for a
/// delete, those the live object proves are the stack's), the ownership to stamp, and the
/// idempotency token. The engine builds every operation here; so does the conformance suite.
pub fn operation(
    stack: &str,
    node: &Node,
    action: Action,
    attributes: Attributes,
    live: Option<LiveObject>,
) -> Result<Operation, BackendError> {
    let ownership = Ownership::new(stack, &node.address);
    let manifests = match action {
        Action::Delete => live.as_ref().map(|l| manifests::deletable(l, &ownership)).unwrap_or_default(),
        _ => manifests::render(node, &attributes, &ownership, live.as_ref())
            .map_err(|message| BackendError::invalid("EngineCannotRender", message))?,
    };
    let client_token = client_token(stack, &node.address, action, &attributes);
    Ok(Operation {
        address: node.address.clone(),
        kind: node.kind,
        identity: node.identity.clone(),
        action,
        attributes,
        manifests,
        ownership,
        client_token,
        live,
    })
}

/// Same stack, node, action and attributes (canonical JSON, secrets as fingerprints) → same
/// token: a retried or resumed create finds the object the first attempt made.
pub fn client_token(stack: &str, address: &Address, action: Action, attributes: &Attributes) -> String {
    let canonical: serde_json::Map<String, serde_json::Value> =
        attributes.iter().map(|(k, v)| (k.name().to_string(), v.canonical())).collect();
    let source = serde_json::json!([stack, address.as_str(), action.as_str(), canonical]);
    let digest = short_sha256(source.to_string().as_bytes());
    format!("edgeplan-{}", digest.trim_start_matches("sha256:"))
}

/// Layer of each node: 0 without lookup references, else one more than the deepest node its
/// lookup attributes reference. Nodes come out grouped by layer, in the given order.
fn layers<'n>(nodes: &[&'n Node], by_address: &BTreeMap<&Address, &'n Node>) -> Vec<Vec<&'n Node>> {
    fn layer_of(
        node: &Node,
        by_address: &BTreeMap<&Address, &Node>,
        memo: &mut BTreeMap<Address, usize>,
        depth: usize,
    ) -> usize {
        if let Some(layer) = memo.get(&node.address) {
            return *layer;
        }
        let decl = node.kind.decl();
        let needs = |attribute: &Attr| decl.lookup.contains(attribute) || decl.scope == ScopeKind::Engine;
        let layer = if depth > by_address.len() {
            0 // a cycle; the graph refuses them, so this only bounds the recursion
        } else {
            node.references()
                .filter(|(attribute, _)| needs(attribute))
                .filter_map(|(_, reference)| by_address.get(&reference.node))
                .map(|upstream| layer_of(upstream, by_address, memo, depth + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        memo.insert(node.address.clone(), layer);
        layer
    }
    let mut memo = BTreeMap::new();
    let mut grouped: Vec<Vec<&Node>> = Vec::new();
    for node in nodes {
        let layer = layer_of(node, by_address, &mut memo, 0);
        if grouped.len() <= layer {
            grouped.resize_with(layer + 1, Vec::new);
        }
        grouped[layer].push(node);
    }
    grouped
}

/// A node's request: literals as written, references from what was observed of the upstream
/// node. A lookup reference whose upstream could not be observed makes this node unobservable
/// too (it cannot be looked up), rather than absent.
fn request_attributes(node: &Node, observed: &BTreeMap<Address, Outcome>) -> Result<Attributes, Outcome> {
    let decl = node.kind.decl();
    let mut attributes = Attributes::new();
    for (attribute, expr) in &node.desired {
        if decl.desired_decl(*attribute).is_some_and(|d| d.role == Role::Ordering) {
            continue;
        }
        match expr {
            Expr::Lit(value) => {
                attributes.insert(*attribute, value.clone());
            }
            Expr::Ref(reference) => match observed.get(&reference.node) {
                Some(Ok(Observed::Present(live))) => {
                    if let Some(value) = live.get(reference.output).filter(|v| **v != Value::Null) {
                        attributes.insert(*attribute, value.clone());
                    }
                }
                Some(Err(error)) if decl.lookup.contains(attribute) => {
                    return Err(Err(BackendError::Transport {
                        message: format!("cannot be looked up: {} could not be observed ({error})", reference.node),
                        retryable: false,
                    }));
                }
                _ => {}
            },
        }
    }
    Ok(attributes)
}

/// The agent key, computed: Portainer's key re-pointed at the VPC endpoint, canonically
/// encoded. Absent while an input does not exist yet.
fn compute_engine_node(node: &Node, attributes: &Attributes) -> Outcome {
    debug_assert_eq!(node.kind, NodeKind::AgentKey);
    let portainer_key = attributes.get(&attr::PORTAINER_KEY).and_then(Value::as_secret);
    let host = attributes.get(&attr::TUNNEL_HOST).and_then(Value::as_str);
    let port = attributes.get(&attr::TUNNEL_PORT).and_then(Value::as_int).and_then(|p| u16::try_from(p).ok());
    let (Some(portainer_key), Some(host), Some(port)) = (portainer_key, host, port) else {
        return Ok(Observed::Absent);
    };
    let key = facts::agent_key(portainer_key, host, port).map_err(|m| BackendError::invalid("InvalidEdgeKey", m))?;
    let mut live = LiveObject::new(key.fingerprint())
        .with(attr::PORTAINER_KEY, Value::Secret(portainer_key.clone()))
        .with(attr::TUNNEL_HOST, host)
        .with(attr::TUNNEL_PORT, port)
        .with(attr::KEY_TUNNEL, format!("{host}:{port}"));
    live.set(attr::KEY, Value::Secret(key));
    Ok(Observed::Present(live))
}
