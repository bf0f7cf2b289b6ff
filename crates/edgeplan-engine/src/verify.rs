//! `verify`: the end-to-end check the seed's author did by hand, judged from normalized
//! observations and one API answer per consumer. A failure is explained with evidence: a 500
//! "Unable to get the active tunnel" is mapped to its possible causes, each checked.
//!
//! Pure: the caller observes and sends the requests (see [`kubernetes_probe_path`]).

use std::collections::BTreeMap;

use edgeplan_model::attr::{self, Attr};
use edgeplan_model::backend::HttpResponse;
use edgeplan_model::{Address, BackendError, LiveObject, NodeKind, Observation, Observed, ResourceGraph};

/// One check, passed or not, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyCheck {
    /// `provider` or `consumer NAME`.
    pub scope: String,
    pub name: &'static str,
    pub passed: bool,
    pub evidence: String,
    /// For a failed end-to-end request: each possible cause, whether it holds, and why.
    pub causes: Vec<Cause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub cause: &'static str,
    /// True when this cause is present (it explains the failure).
    pub present: bool,
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    pub checks: Vec<VerifyCheck>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

/// The request verify sends for a consumer's environment: the Kubernetes API through
/// Portainer's proxy and the agent's tunnel.
pub fn kubernetes_probe_path(environment_id: i64) -> String {
    format!("/api/endpoints/{environment_id}/kubernetes/api/v1/namespaces")
}

/// The environment ID verify probes, from the environment node's observation.
pub fn environment_id(observed: &Observed) -> Option<i64> {
    observed.live().and_then(|live| live.int(attr::ID).or_else(|| live.id.parse().ok()))
}

struct Seen<'a> {
    graph: &'a ResourceGraph,
    observed: BTreeMap<&'a Address, &'a Result<Observed, BackendError>>,
}

impl<'a> Seen<'a> {
    fn of_kind(&self, prefix: &str, kind: NodeKind) -> Option<&'a Address> {
        let address = Address::from_text(&format!("{prefix}.{}", kind.address_name()));
        self.graph.iter().find(|(a, _)| **a == address).map(|(a, _)| a)
    }

    /// The live object of the `kind` node under `prefix`, or why there is none.
    fn live(&self, prefix: &str, kind: NodeKind) -> Result<&'a LiveObject, String> {
        let address = self.of_kind(prefix, kind).ok_or_else(|| format!("no {kind:?} node in the spec"))?;
        match self.observed.get(address) {
            Some(Ok(Observed::Present(live))) => Ok(live),
            Some(Ok(Observed::Absent)) => Err(format!("{address} does not exist")),
            Some(Err(err)) => Err(format!("{address} could not be observed: {err}")),
            None => Err(format!("{address} was not observed")),
        }
    }
}

fn text(live: &LiveObject, key: Attr) -> Option<&str> {
    live.text(key)
}

fn flag(live: &LiveObject, key: Attr) -> Option<bool> {
    live.flag(key)
}

fn check(scope: &str, name: &'static str, result: Result<String, String>) -> VerifyCheck {
    let (passed, evidence) = match result {
        Ok(evidence) => (true, evidence),
        Err(evidence) => (false, evidence),
    };
    VerifyCheck { scope: scope.to_string(), name, passed, evidence, causes: Vec::new() }
}

/// Judge every check from the observations of the whole graph and, per consumer environment
/// address, the answer to [`kubernetes_probe_path`].
pub fn verify(
    graph: &ResourceGraph,
    observations: &[Observation],
    probes: &BTreeMap<Address, Result<HttpResponse, BackendError>>,
) -> VerifyReport {
    let seen = Seen { graph, observed: observations.iter().map(|o| (&o.address, &o.result)).collect() };
    let mut checks = vec![check("provider", "NLB targets healthy", targets(&seen))];
    let mut consumers: Vec<&str> = Vec::new();
    for name in graph.iter().filter_map(|(a, _)| a.consumer_name()) {
        if !consumers.contains(&name) {
            consumers.push(name);
        }
    }
    for consumer in consumers {
        let prefix = format!("consumer.{consumer}");
        let scope = format!("consumer {consumer}");
        checks.push(check(&scope, "VPC endpoint connection available", endpoint(&seen, &prefix)));
        checks.push(check(
            &scope,
            "agent rolled out with a canonical key pointing at the VPC endpoint",
            agent(&seen, &prefix),
        ));
        checks.push(check(
            &scope,
            "environment checked in (Type 7, heartbeat, fresh LastCheckInDate)",
            checked_in(&seen, &prefix),
        ));
        checks.push(end_to_end(&seen, &prefix, &scope, probes));
    }
    VerifyReport { checks }
}

fn targets(seen: &Seen<'_>) -> Result<String, String> {
    let nlb = seen.live("provider", NodeKind::Nlb)?;
    let healthy = nlb.get(attr::TARGET_HEALTH).map_or(0, |h| h.as_list().len());
    match crate::wait::targets(nlb) {
        crate::wait::Check::Ready => Ok(format!("{healthy} target(s) healthy on {}", nlb.id)),
        crate::wait::Check::NotYet(what) | crate::wait::Check::Never(what) => Err(what),
    }
}

fn endpoint(seen: &Seen<'_>, prefix: &str) -> Result<String, String> {
    let vpce = seen.live(prefix, NodeKind::Vpce)?;
    match text(vpce, attr::STATE) {
        Some(state) if state.eq_ignore_ascii_case("available") => Ok(format!("{} available", vpce.id)),
        Some(state) => Err(format!("{} is {state}", vpce.id)),
        None => Err(format!("{} reports no state", vpce.id)),
    }
}

/// The VPC endpoint's DNS name, which field 2 of the agent's key must name.
fn endpoint_dns(seen: &Seen<'_>, prefix: &str) -> Option<String> {
    let vpce = seen.live(prefix, NodeKind::Vpce).ok()?;
    vpce.text(attr::DNS_NAME).map(str::to_string)
}

fn agent(seen: &Seen<'_>, prefix: &str) -> Result<String, String> {
    let agent = seen.live(prefix, NodeKind::AgentObjects)?;
    if flag(agent, attr::ROLLOUT_COMPLETE) != Some(true) {
        return Err(format!("rollout of {} not complete", agent.id));
    }
    if flag(agent, attr::KEY_CANONICAL) == Some(false) || flag(agent, attr::KEY_VALID) == Some(false) {
        let why = text(agent, attr::KEY_AGENT_ERROR).unwrap_or("not in canonical encoding");
        return Err(format!("the agent's EDGE_KEY is not canonical: {why}"));
    }
    let tunnel = text(agent, attr::KEY_TUNNEL).ok_or("the agent has no readable EDGE_KEY")?;
    match endpoint_dns(seen, prefix) {
        Some(dns) if tunnel.split(':').next() == Some(dns.as_str()) => {
            Ok(format!("rollout complete; key field 2 = {tunnel} (the VPC endpoint)"))
        }
        Some(dns) => Err(format!("key field 2 = {tunnel}, not the VPC endpoint {dns}")),
        None => Err(format!("key field 2 = {tunnel}; the VPC endpoint's DNS name is unknown")),
    }
}

fn checked_in(seen: &Seen<'_>, prefix: &str) -> Result<String, String> {
    let env = seen.live(prefix, NodeKind::PortainerEnvironment)?;
    let kind = env.int(attr::TYPE_ID);
    let last = env.int(attr::LAST_CHECK_IN_DATE).unwrap_or(0);
    let heartbeat = flag(env, attr::HEARTBEAT) == Some(true);
    let name = text(env, attr::NAME).unwrap_or("?");
    match (kind, heartbeat, last) {
        (Some(7), true, last) if last > 0 => {
            Ok(format!("environment {} ({name}): Type 7, Heartbeat true, LastCheckInDate {last}", env.id))
        }
        (kind, heartbeat, last) => Err(format!(
            "environment {} ({name}): Type {}, Heartbeat {heartbeat}, LastCheckInDate {last}",
            env.id,
            kind.map_or_else(|| "?".to_string(), |k| k.to_string())
        )),
    }
}

fn end_to_end(
    seen: &Seen<'_>,
    prefix: &str,
    scope: &str,
    probes: &BTreeMap<Address, Result<HttpResponse, BackendError>>,
) -> VerifyCheck {
    const NAME: &str = "Kubernetes API through the tunnel returns 200";
    let answer = seen.of_kind(prefix, NodeKind::PortainerEnvironment).and_then(|a| probes.get(a));
    let id = seen
        .live(prefix, NodeKind::PortainerEnvironment)
        .ok()
        .and_then(|e| environment_id(&Observed::Present(e.clone())));
    let request =
        id.map_or_else(|| "GET (no environment)".to_string(), |id| format!("GET {}", kubernetes_probe_path(id)));
    let mut result = match answer {
        Some(Ok(response)) if response.status == 200 => check(scope, NAME, Ok(format!("{request} → 200"))),
        Some(Ok(response)) => {
            check(scope, NAME, Err(format!("{request} → {} {}", response.status, message(&response.body))))
        }
        Some(Err(err)) => check(scope, NAME, Err(format!("{request} failed: {err}"))),
        None => check(scope, NAME, Err(format!("{request} was not sent"))),
    };
    if !result.passed {
        result.causes = tunnel_causes(seen, prefix);
    }
    result
}

/// Portainer's error JSON is `{"message": …, "details": …}`.
fn message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(|v| v.as_str()).map(str::to_string);
    match (field("message"), field("details")) {
        (Some(m), Some(d)) => format!("\"{m}\" ({d})"),
        (Some(m), None) => format!("\"{m}\""),
        _ => body.chars().take(200).collect(),
    }
}

/// Why the agent may hold no tunnel (portainer.md: wrong tunnel address or port, a target
/// that is not healthy, an EDGE_ID the environment does not know, what the agent's own log
/// says).
fn tunnel_causes(seen: &Seen<'_>, prefix: &str) -> Vec<Cause> {
    let cause = |cause: &'static str, found: Result<String, String>| match found {
        Ok(evidence) => Cause { cause, present: false, evidence },
        Err(evidence) => Cause { cause, present: true, evidence },
    };
    vec![
        cause("wrong field 2 in the agent's EDGE_KEY", agent(seen, prefix)),
        cause("NLB target unhealthy (nothing listens on the tunnel port)", targets(seen)),
        cause("EDGE_ID mismatch between agent and environment", edge_ids(seen, prefix)),
        cause("the agent's log reports a failure", agent_log(seen, prefix)),
    ]
}

fn agent_log(seen: &Seen<'_>, prefix: &str) -> Result<String, String> {
    let agent = seen.live(prefix, NodeKind::AgentObjects)?;
    let state = text(agent, attr::AGENT_STATE).unwrap_or("no-logs");
    let line = text(agent, attr::AGENT_MESSAGE).unwrap_or("no line says");
    match state {
        "connected" => Ok(format!("the agent logs `{line}`")),
        "running" | "no-logs" => Err(format!("the agent logs nothing about its tunnel ({state})")),
        _ => Err(format!("{state}: `{line}`")),
    }
}

fn edge_ids(seen: &Seen<'_>, prefix: &str) -> Result<String, String> {
    let agent = seen.live(prefix, NodeKind::AgentObjects)?;
    let env = seen.live(prefix, NodeKind::PortainerEnvironment)?;
    match (text(agent, attr::AGENT_EDGE_ID), text(env, attr::EDGE_ID).filter(|id| !id.is_empty())) {
        (Some(a), Some(e)) if a == e => Ok(format!("both {a}")),
        (Some(a), Some(e)) => Err(format!("agent EDGE_ID {a}, environment EdgeID {e}")),
        (Some(a), None) => Ok(format!("agent {a}; the environment has none yet (registers on first poll)")),
        (None, _) => Err("the agent has no EDGE_ID".to_string()),
    }
}
