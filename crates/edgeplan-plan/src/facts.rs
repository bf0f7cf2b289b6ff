//! Domain facts, derived by the engine from what backends observed: every backend reports raw
//! API facts (a policy document, a route table's routes, a Deployment, an EdgeKey as a secret
//! value, an agent pod's log lines) and gets the same judgement of them from here.
//!
//! - Missing IAM actions, from the controller policy's default version document (trap 1).
//! - Whether a subnet is public: its effective route table routes to an `igw-` (as the LB
//!   controller decides, aws.md §1b).
//! - The settings checksum a restart stamps on Portainer's pod template (trap 4).
//! - Key validity and field 2, from a key's value, never shown (traps 5 and 6).
//! - The EDGE_ID an agent must present, and what its log lines say.

use edgeplan_edgekey::{AgentVerdict, EdgeKey, check};
use edgeplan_lint::iam;
use edgeplan_model::attr::{self, Attr};
use edgeplan_model::{LiveObject, Node, NodeKind, SecretText, Value, short_sha256};

use crate::logs;

/// Add the derived facts of `node`'s kind to `live` (and, for Kubernetes nodes, read its
/// attributes from its live objects).
pub fn derive(stack: &str, node: &Node, live: &mut LiveObject) {
    let id = live.id.clone();
    live.set(attr::ID, id);
    crate::manifests::read(node, live);
    match node.kind {
        NodeKind::LbControllerPolicy => policy(live),
        // A VPC's routes are its main route table's: what routes a subnet with no table of its own.
        NodeKind::NlbSubnet | NodeKind::NlbRouteTable | NodeKind::Vpc => routes(live),
        NodeKind::EdgeComputeSetting => {
            let enabled = live.flag(attr::ENABLE_EDGE_COMPUTE);
            live.set(attr::SETTINGS_CHECKSUM, settings_checksum(enabled));
        }
        NodeKind::ConnectionAcceptance => {
            let accepted = live.text(attr::STATE).is_some_and(connection_accepted);
            live.set(attr::ACCEPTED, accepted);
        }
        NodeKind::PortainerEnvironment => environment(stack, node, live),
        NodeKind::AgentObjects => {
            let lines: Vec<String> = live.get(attr::LOGS).map(Value::strings).unwrap_or_default();
            let verdict = logs::classify(&lines);
            live.set(attr::AGENT_STATE, verdict.state.as_str());
            live.set(attr::AGENT_MESSAGE, verdict.line.map_or(Value::Null, Value::Str));
        }
        _ => {}
    }
}

/// A connection the provider accepted: anything past `pendingAcceptance` that is not a refusal.
/// States are compared case-insensitively (the SDK's enum and the wire disagree, aws.md §2).
pub fn connection_accepted(state: &str) -> bool {
    let state = state.to_ascii_lowercase();
    matches!(state.as_str(), "pending" | "available")
}

/// The checksum of the settings that only take effect on a restart: stamped on Portainer's
/// pod template, so a change rolls the pods (seed trap 4).
pub fn settings_checksum(enable_edge_compute: Option<bool>) -> String {
    let settings = serde_json::json!({ attr::ENABLE_EDGE_COMPUTE.name(): enable_edge_compute });
    short_sha256(settings.to_string().as_bytes())
}

pub(crate) fn policy(live: &mut LiveObject) {
    let document = live.text(attr::POLICY_DOCUMENT).unwrap_or_default().to_string();
    match iam::allowed_actions(document.as_bytes()) {
        Ok(allowed) => {
            let missing = iam::missing_actions(&allowed, iam::INTERNAL_NLB_ACTIONS);
            live.set(attr::MISSING_ACTIONS, Value::List(missing.iter().map(|a| Value::str(*a)).collect()));
        }
        // An unreadable document: say nothing rather than guess.
        Err(_) => live.set(attr::MISSING_ACTIONS, Value::Null),
    }
    let versions = live.get(attr::VERSIONS).map(Value::strings).unwrap_or_default();
    let default = live.text(attr::DEFAULT_VERSION).unwrap_or_default().to_string();
    // IAM refuses to delete the default version: the oldest other one is what gets pruned.
    let oldest = versions.iter().filter(|v| **v != default).min_by_key(|v| version_number(v)).cloned();
    live.set(attr::VERSION_COUNT, versions.len() as i64);
    live.set(attr::OLDEST_NON_DEFAULT_VERSION, oldest.map_or(Value::Null, Value::Str));
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches(['v', 'V']).parse().unwrap_or(0)
}

/// A route is to an internet gateway when its target starts with `igw` (the controller's test).
pub(crate) fn routes(live: &mut LiveObject) {
    let routes = live.get(attr::ROUTES).cloned().unwrap_or(Value::Null);
    let igw = routes.as_list().iter().find_map(|route| {
        let map = route.string_map();
        let target = map.get(attr::field::TARGET)?;
        target
            .starts_with("igw")
            .then(|| format!("{} → {target}", map.get(attr::field::DESTINATION).map_or("?", |d| d)))
    });
    live.set(attr::ROUTES_TO_IGW, igw.is_some());
    live.set(attr::IGW_ROUTE, igw.map_or(Value::Null, Value::Str));
}

/// Portainer's EndpointType, normalized. Portainer creates every Edge environment as type 4 and
/// sets the platform on the agent's first poll (portainer.md §2): until then it is an Edge
/// environment for whichever agent comes, not a Docker one.
pub fn environment_type(type_id: i64, last_check_in: i64) -> &'static str {
    match (type_id, last_check_in) {
        (4, 0) | (7, _) => "edge-agent-kubernetes",
        (1, _) => "docker",
        (2, _) => "agent-docker",
        (3, _) => "azure",
        (4, _) => "edge-agent-docker",
        (5, _) => "kubernetes-local",
        (6, _) => "agent-kubernetes",
        _ => "unknown",
    }
}

fn environment(stack: &str, node: &Node, live: &mut LiveObject) {
    let type_id = live.int(attr::TYPE_ID).unwrap_or(0);
    let last = live.int(attr::LAST_CHECK_IN_DATE).unwrap_or(0);
    live.set(attr::TYPE, environment_type(type_id, last));
    let key = live.get(attr::EDGE_KEY).and_then(Value::as_secret).map(|s| s.expose().to_string());
    describe_key(live, key.as_deref());
    let edge_id = match live.text(attr::EDGE_ID).filter(|id| !id.is_empty()) {
        Some(id) => id.to_string(),
        None => {
            let env_id = live.int(attr::ID).or_else(|| live.id.parse().ok()).unwrap_or(0);
            proposed_edge_id(stack, node.address.as_str(), env_id)
        }
    };
    live.set(attr::AGENT_EDGE_ID, edge_id);
}

/// The Edge ID an agent registers on its first poll: Portainer accepts any while the
/// environment has none, so edgeplan derives one (UUID-shaped) from the stack, the address and
/// the environment, the same on every run.
pub fn proposed_edge_id(stack: &str, address: &str, env_id: i64) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{stack}|{address}|{env_id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// What can be said about a key without saying the key.
pub fn describe_key(live: &mut LiveObject, raw: Option<&str>) {
    let Some(raw) = raw else {
        live.set(attr::KEY_PRESENT, false);
        return;
    };
    let report = check(raw.as_bytes());
    let key = EdgeKey::parse(raw.as_bytes()).ok();
    let canonical = report.agent_verdict() == AgentVerdict::Accepts
        && key.as_ref().is_some_and(|k| k.to_canonical().expose_secret() == raw);
    let set_opt = |live: &mut LiveObject, attr: Attr, value: Option<String>| {
        live.set(attr, value.map_or(Value::Null, Value::Str));
    };
    live.set(attr::KEY_PRESENT, true);
    live.set(attr::KEY_VALID, report.is_valid());
    set_opt(live, attr::KEY_AGENT_ERROR, report.agent_verdict().agent_error());
    live.set(attr::KEY_CANONICAL, canonical);
    set_opt(live, attr::KEY_TUNNEL, key.as_ref().map(|k| k.tunnel_addr().to_string()));
    live.set(attr::KEY_ENDPOINT_ID, key.as_ref().map_or(Value::Null, |k| Value::Int(k.endpoint_id())));
}

/// The agent's key: Portainer's key for the environment with field 2 re-pointed at
/// `host:port` (the VPC endpoint and the listener port), canonically encoded (standard
/// alphabet, no padding), as a secret value. Errors never quote the key.
pub fn agent_key(portainer_key: &SecretText, host: &str, port: u16) -> Result<SecretText, String> {
    let key = EdgeKey::parse(portainer_key.expose().as_bytes())
        .map_err(|e| format!("Portainer's EdgeKey for the environment cannot be read: {e}"))?;
    let derived = key
        .with_tunnel_addr(&format!("{host}:{port}"))
        .map_err(|e| format!("cannot point the key at {host}:{port}: {e}"))?;
    Ok(SecretText::new(derived.to_canonical().expose_secret()))
}
