//! `verify`: the end-to-end check the seed's author did by hand, judged from normalized
//! observations and one API answer per consumer.
//!
//! The tunnel runs agent → endpoint security group → VPC endpoint connection → NLB → cluster
//! security group → Portainer's pods, and only with a key that names the endpoint and an EDGE_ID
//! Portainer accepts. Each link is one check, judged from what was observed; the request through
//! the tunnel passes only when it answers 200 *and* every link holds (a tunnel that answers over
//! a broken link does not survive its next reconnect). A link shared by every consumer (the NLB
//! and the cluster security group) is checked once, for the provider; a failure that follows from
//! another names it instead of repeating it, so a broken link is named exactly once, with what to
//! do.
//!
//! Pure: the caller observes and sends the requests (see [`kubernetes_probe_path`]).

use std::collections::BTreeMap;
use std::fmt;

use edgeplan_model::attr::{self, Attr, field};
use edgeplan_model::backend::HttpResponse;
use edgeplan_model::{
    Address, BackendError, Expr, Identity, LiveObject, Node, NodeKind, Observation, Observed, ResourceGraph, Value,
};

/// The checks' names, stable: tests and users grep for them.
pub mod checks {
    pub const CLUSTER_SECURITY_GROUP: &str = "cluster security group admits the NLB subnet on the tunnel port";
    pub const TARGETS: &str = "NLB targets healthy";
    pub const ENDPOINT_SECURITY_GROUP: &str = "endpoint security group admits the agents on the listener port";
    pub const CONNECTION: &str = "VPC endpoint connection accepted and available";
    pub const KEY: &str = "agent rolled out with a canonical key pointing at the VPC endpoint and listener port";
    pub const EDGE_ID: &str = "agent's EDGE_ID is the environment's";
    pub const CHECKED_IN: &str = "environment checked in (Type 7, heartbeat, fresh LastCheckInDate)";
    pub const TUNNEL: &str = "Kubernetes API through the tunnel returns 200";
}

/// One check, passed or not, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyCheck {
    /// `provider` or `consumer NAME`.
    pub scope: String,
    pub name: &'static str,
    pub passed: bool,
    pub evidence: String,
    /// For a failure that is a root cause: what to do.
    pub help: Option<String>,
    /// For a failure that follows from others: those checks' labels (`scope: name`).
    pub because: Vec<String>,
    /// For a failed request through the tunnel: what else the agent and Portainer say.
    pub causes: Vec<Cause>,
}

impl VerifyCheck {
    /// `consumer prod: NLB targets healthy`.
    pub fn label(&self) -> String {
        format!("{}: {}", self.scope, self.name)
    }

    /// Failed, and not because of another failed check.
    pub fn is_root_failure(&self) -> bool {
        !self.passed && self.because.is_empty()
    }
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

    /// The failed checks no other failure explains: where the path is broken.
    pub fn root_failures(&self) -> impl Iterator<Item = &VerifyCheck> {
        self.checks.iter().filter(|c| c.is_root_failure())
    }
}

/// The report as `edgeplan verify` prints it.
impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\nVerify:\n")?;
        for check in &self.checks {
            let mark = if check.passed { "✓" } else { "✗" };
            writeln!(f, "  {mark} {}\n      {}", check.label(), check.evidence)?;
            if !check.because.is_empty() {
                writeln!(f, "      because: {}", check.because.join("; "))?;
            }
            if let Some(help) = &check.help {
                writeln!(f, "      help: {help}")?;
            }
            for cause in &check.causes {
                let mark = if cause.present { "✗" } else { "✓" };
                writeln!(f, "      {mark} {}: {}", cause.cause, cause.evidence)?;
            }
        }
        let failed = self.checks.iter().filter(|c| !c.passed).count();
        if failed == 0 {
            return writeln!(f, "Verify passed: {} checks.", self.checks.len());
        }
        let roots: Vec<String> = self.root_failures().map(VerifyCheck::label).collect();
        match roots.len() {
            1 | 2 => {
                writeln!(f, "Verify failed: {failed} of {} checks; broken: {}.", self.checks.len(), roots.join("; "))
            }
            n => writeln!(
                f,
                "Verify failed: {failed} of {} checks; {n} links are broken (the ones with help).",
                self.checks.len()
            ),
        }
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

/// A failed judgement: what was seen, and what to do about it.
struct Failed {
    evidence: String,
    help: String,
}

fn fail(evidence: impl Into<String>, help: impl Into<String>) -> Failed {
    Failed { evidence: evidence.into(), help: help.into() }
}

type Judged = Result<String, Failed>;

struct Seen<'a> {
    graph: &'a ResourceGraph,
    observed: BTreeMap<&'a Address, &'a Result<Observed, BackendError>>,
}

impl<'a> Seen<'a> {
    fn node(&self, prefix: &str, kind: NodeKind) -> Option<&'a Node> {
        self.graph.node(&Address::from_text(&format!("{prefix}.{}", kind.address_name())))
    }

    fn observation(&self, address: &Address) -> Option<&'a Result<Observed, BackendError>> {
        self.observed.get(address).copied()
    }

    /// The live object of the `kind` node under `prefix`, or why there is none.
    fn live(&self, prefix: &str, kind: NodeKind) -> Result<&'a LiveObject, Failed> {
        let node = self.node(prefix, kind).ok_or_else(|| fail(format!("the spec has no {kind}"), "check the spec"))?;
        let address = &node.address;
        match self.observation(address) {
            Some(Ok(Observed::Present(live))) => Ok(live),
            Some(Ok(Observed::Absent)) => {
                Err(fail(format!("{address} does not exist"), "run `edgeplan apply` to create it"))
            }
            Some(Err(err)) => Err(fail(
                format!("{address} could not be observed: {err}"),
                format!("check edgeplan's access to {}", node.scope),
            )),
            None => Err(fail(format!("{address} was not observed"), "run `edgeplan verify` again")),
        }
    }

    /// What `node` wants for `attribute`: a literal, or the observed output it references.
    fn desired(&self, node: &Node, attribute: Attr) -> Option<Value> {
        match node.desired.get(&attribute)? {
            Expr::Lit(value) => Some(value.clone()),
            Expr::Ref(reference) => match self.observation(&reference.node)? {
                Ok(Observed::Present(live)) => live.get(reference.output).filter(|v| **v != Value::Null).cloned(),
                _ => None,
            },
        }
    }
}

fn text(value: Option<Value>) -> Option<String> {
    value.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

/// An IPv4 block as (network, prefix length), host bits masked off as EC2 does.
fn cidr(text: &str) -> Option<(u32, u32)> {
    let (ip, len) = text.trim().split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some((u32::from(ip) & mask(len), len))
}

fn mask(len: u32) -> u32 {
    u32::MAX.checked_shl(32 - len.min(32)).unwrap_or(0)
}

/// Whether two blocks share addresses (the agents' VPC and a rule's source, as the simulated
/// world and a real security group judge a pod's address in the VPC).
fn overlaps(a: &str, b: &str) -> bool {
    match (cidr(a), cidr(b)) {
        (Some((na, la)), Some((nb, lb))) => {
            let common = mask(la.min(lb));
            na & common == nb & common
        }
        _ => false,
    }
}

fn check(scope: &str, name: &'static str, judged: Judged) -> VerifyCheck {
    let (passed, evidence, help) = match judged {
        Ok(evidence) => (true, evidence, None),
        Err(failed) => (false, failed.evidence, Some(failed.help)),
    };
    VerifyCheck { scope: scope.to_string(), name, passed, evidence, help, because: Vec::new(), causes: Vec::new() }
}

/// A failed `check` that follows from the failed checks among `upstream`: it names them and
/// leaves what to do to them.
fn follows(mut check: VerifyCheck, upstream: &[&VerifyCheck]) -> VerifyCheck {
    if !check.passed {
        check.because = upstream.iter().filter(|c| !c.passed).map(|c| c.label()).collect();
        if !check.because.is_empty() {
            check.help = None;
        }
    }
    check
}

/// Judge every check from the observations of the whole graph and, per consumer environment
/// address, the answer to [`kubernetes_probe_path`].
pub fn verify(
    graph: &ResourceGraph,
    observations: &[Observation],
    probes: &BTreeMap<Address, Result<HttpResponse, BackendError>>,
) -> VerifyReport {
    let seen = Seen { graph, observed: observations.iter().map(|o| (&o.address, &o.result)).collect() };
    // The provider's links, shared by every consumer: once.
    let health = targets(&seen);
    let cluster_sg = check("provider", checks::CLUSTER_SECURITY_GROUP, cluster_security_group(&seen, health.is_ok()));
    let mut targets = check("provider", checks::TARGETS, health);
    // Unhealthy targets follow from a missing rule; a missing NLB does not.
    if seen.live("provider", NodeKind::Nlb).is_ok() {
        targets = follows(targets, &[&cluster_sg]);
    }
    let mut consumers: Vec<&str> = Vec::new();
    for name in graph.iter().filter_map(|(a, _)| a.consumer_name()) {
        if !consumers.contains(&name) {
            consumers.push(name);
        }
    }
    let mut report = Vec::new();
    for consumer in consumers {
        let prefix = format!("consumer.{consumer}");
        let scope = format!("consumer {consumer}");
        let endpoint_sg = check(&scope, checks::ENDPOINT_SECURITY_GROUP, endpoint_security_group(&seen, &prefix));
        let connection = check(&scope, checks::CONNECTION, connection(&seen, &prefix));
        let key = check(&scope, checks::KEY, agent_key(&seen, &prefix));
        let edge_id = check(&scope, checks::EDGE_ID, edge_ids(&seen, &prefix));
        // Polls need a key the agent can read and an EDGE_ID Portainer accepts.
        let checked_in = follows(check(&scope, checks::CHECKED_IN, checked_in(&seen, &prefix)), &[&key, &edge_id]);
        let links = [&cluster_sg, &targets, &endpoint_sg, &connection, &key, &edge_id, &checked_in];
        let tunnel = end_to_end(&seen, &prefix, &scope, probes, &links);
        report.extend([endpoint_sg, connection, key, edge_id, checked_in, tunnel]);
    }
    let mut all = vec![cluster_sg, targets];
    all.extend(report);
    VerifyReport { checks: all }
}

/// The rule on the Portainer pods' security group that admits the NLB subnet on the tunnel
/// port (seed trap 3): without it the health checks and the tunnel are dropped. Healthy targets
/// prove another rule admits the NLB (the LB controller's own backend rule): health checks and
/// PrivateLink traffic both reach the pods from the NLB's addresses (aws.md §2).
fn cluster_security_group(seen: &Seen<'_>, targets_healthy: bool) -> Judged {
    let rule = seen.node("provider", NodeKind::ClusterSgRule).ok_or_else(|| fail("the spec has no rule", ""))?;
    // Known once the Service and the subnet exist.
    let path = match (text(seen.desired(rule, attr::PORT)), text(seen.desired(rule, attr::SOURCE_CIDR))) {
        (Some(port), Some(source)) => format!("TCP {port} from {source} (the NLB subnet)"),
        _ => "the NLB subnet on the tunnel port".to_string(),
    };
    match seen.observation(&rule.address) {
        Some(Ok(Observed::Present(live))) => Ok(format!(
            "{} in {} admits {path}",
            live.id,
            live.text(attr::SECURITY_GROUP_ID).unwrap_or("the cluster security group")
        )),
        Some(Ok(Observed::Absent)) if controller_manages_backend_rules(seen) => {
            Ok(format!("the LB controller admits the NLB to the pods itself ({path})"))
        }
        Some(Ok(Observed::Absent)) if targets_healthy => Ok(format!(
            "no rule of edgeplan's admits {path}, but the NLB's health checks reach the pods: another rule admits \
             the NLB (the LB controller's backend rule)"
        )),
        Some(Ok(Observed::Absent)) => Err(fail(
            format!(
                "no rule in the cluster security group admits {path}: the NLB's health checks and the agents' tunnel \
                 are dropped before they reach Portainer"
            ),
            format!("run `edgeplan apply`: it creates the rule ({})", rule.address),
        )),
        Some(Err(err)) => Err(fail(
            format!("{} could not be observed: {err}", rule.address),
            format!("check edgeplan's access to {}", rule.scope),
        )),
        None => Err(fail(format!("{} was not observed", rule.address), "run `edgeplan verify` again")),
    }
}

/// The tunnel Service asks the controller to manage the pods' rule itself (aws.md §1a).
fn controller_manages_backend_rules(seen: &Seen<'_>) -> bool {
    const ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules";
    seen.live("provider", NodeKind::TunnelService).is_ok_and(|service| {
        service.get(attr::ANNOTATIONS).and_then(Value::as_map).and_then(|m| m.get(ANNOTATION)).and_then(Value::as_str)
            == Some("true")
    })
}

fn targets(seen: &Seen<'_>) -> Judged {
    let nlb = seen.live("provider", NodeKind::Nlb)?;
    let count = nlb.get(attr::TARGET_HEALTH).map_or(0, |h| h.as_list().len());
    match crate::wait::targets(nlb) {
        crate::wait::Check::Ready => Ok(format!("{count} target(s) healthy on {}", nlb.id)),
        crate::wait::Check::NotYet(what) | crate::wait::Check::Never(what) => {
            let help = if what.contains("Target.Timeout") {
                "the health checks get no answer: the pods' security group drops them, or nothing routes to the pods"
            } else if what.contains("Target.FailedHealthChecks") {
                "nothing listens on the target port: compare Portainer's --tunnel-port with the Service's \
                 targetPort, and check Edge Compute is on (Portainer reads it when it restarts)"
            } else if what.contains("no registered targets") {
                "the tunnel Service selects no running Portainer pod: compare its selector with the pods' labels"
            } else {
                "the targets are still being checked: run `edgeplan verify` again in a minute"
            };
            Err(fail(what, help))
        }
    }
}

/// The endpoint's security group admits the agents' VPC on the listener port: otherwise the
/// agent's dial times out at the endpoint.
fn endpoint_security_group(seen: &Seen<'_>, prefix: &str) -> Judged {
    let group = seen.live(prefix, NodeKind::VpceSecurityGroup)?;
    let node = seen.node(prefix, NodeKind::VpceSecurityGroup).ok_or_else(|| fail("no group", ""))?;
    let port = seen.desired(node, attr::INGRESS_PORT).and_then(|p| p.as_int()).unwrap_or(0);
    if let Ok(vpce) = seen.live(prefix, NodeKind::Vpce)
        && let Some(used) = vpce.text(attr::SECURITY_GROUP_ID).filter(|used| *used != group.id)
    {
        return Err(fail(
            format!("{} uses {used}, not {}", vpce.id, group.id),
            "run `edgeplan apply`: it puts the endpoint back in its group",
        ));
    }
    // Where the agents come from: the VPC, else the CIDRs the spec allows.
    let sources: Vec<String> = match group.text(attr::VPC_CIDR_BLOCK) {
        Some(vpc) => vec![vpc.to_string()],
        None => seen.desired(node, attr::INGRESS_CIDRS).map(|v| v.strings()).unwrap_or_default(),
    };
    let from = if sources.is_empty() { "the agents".to_string() } else { sources.join(", ") };
    let rules = group.get(attr::INGRESS_RULES).map(Value::as_list).unwrap_or(&[]);
    let admitting = rules.iter().filter_map(Value::as_map).find(|rule| {
        let get = |k: &str| rule.get(k);
        let protocol = get(field::PROTOCOL).and_then(Value::as_str).unwrap_or("");
        let from_port = get(field::FROM_PORT).and_then(Value::as_int).unwrap_or(i64::MAX);
        let to_port = get(field::TO_PORT).and_then(Value::as_int).unwrap_or(i64::MIN);
        let source = get(field::CIDR_IPV4).and_then(Value::as_str).unwrap_or("");
        (protocol == "-1" || ((protocol == "tcp" || protocol == "6") && from_port <= port && port <= to_port))
            && sources.iter().any(|s| overlaps(s, source))
    });
    match admitting {
        Some(rule) => Ok(format!(
            "{} admits TCP {port} from {} (agents in {from})",
            group.id,
            rule.get(field::CIDR_IPV4).and_then(Value::as_str).unwrap_or("?")
        )),
        None => {
            let help = if matches!(node.identity, Identity::Adopted { .. }) {
                format!(
                    "add an ingress rule to {} for TCP {port} from {from}: edgeplan does not change a group the spec \
                     adopts",
                    group.id
                )
            } else {
                format!("run `edgeplan apply`: it restores the group's ingress ({})", node.address)
            };
            Err(fail(
                format!(
                    "{} admits nothing on TCP {port} from {from} (the agents' VPC): the agent's dial to the endpoint \
                     times out",
                    group.id
                ),
                help,
            ))
        }
    }
}

/// Accepted on the provider's side and available on the consumer's.
fn connection(seen: &Seen<'_>, prefix: &str) -> Judged {
    let vpce = seen.live(prefix, NodeKind::Vpce)?;
    let endpoint_state = vpce.text(attr::STATE).unwrap_or("unknown");
    let connection_state = match seen.live(prefix, NodeKind::ConnectionAcceptance) {
        Ok(connection) => connection.text(attr::STATE).unwrap_or("unknown").to_string(),
        Err(failed) => return Err(failed),
    };
    let accepted = edgeplan_plan::facts::connection_accepted(&connection_state);
    let available = endpoint_state.eq_ignore_ascii_case("available");
    let seen_as = format!("{}: connection {connection_state}, endpoint {endpoint_state}", vpce.id);
    match (accepted, available) {
        (true, true) => Ok(seen_as),
        (_, _) if connection_state.eq_ignore_ascii_case("pendingAcceptance") => {
            Err(fail(seen_as, "run `edgeplan apply`: it accepts the connection on the provider's side"))
        }
        (true, false) => Err(fail(seen_as, "an accepted endpoint becomes available within minutes: verify again")),
        (false, _) => Err(fail(
            format!("{seen_as}: the endpoint can never carry the tunnel"),
            "run `edgeplan plan`: it shows what it takes to connect the endpoint again",
        )),
    }
}

/// The VPC endpoint's DNS name, which field 2 of the agent's key must name.
fn endpoint_dns(seen: &Seen<'_>, prefix: &str) -> Option<String> {
    let vpce = seen.live(prefix, NodeKind::Vpce).ok()?;
    vpce.text(attr::DNS_NAME).map(str::to_string)
}

/// Rolled out, with a key the agent's decoder accepts, whose field 2 is the endpoint and the
/// listener port.
fn agent_key(seen: &Seen<'_>, prefix: &str) -> Judged {
    let agent = seen.live(prefix, NodeKind::AgentObjects)?;
    let rewrite = "run `edgeplan apply`: it writes the canonical key, pointed at the VPC endpoint";
    if agent.flag(attr::ROLLOUT_COMPLETE) != Some(true) {
        return Err(fail(format!("rollout of {} not complete", agent.id), "wait for the rollout, then verify again"));
    }
    if agent.flag(attr::KEY_CANONICAL) == Some(false) || agent.flag(attr::KEY_VALID) == Some(false) {
        let why = agent.text(attr::KEY_AGENT_ERROR).unwrap_or("not in canonical encoding");
        return Err(fail(format!("the agent's EDGE_KEY is not canonical: {why}"), rewrite));
    }
    let tunnel = agent.text(attr::KEY_TUNNEL).ok_or_else(|| fail("the agent has no readable EDGE_KEY", rewrite))?;
    let port = seen
        .node(prefix, NodeKind::AgentKey)
        .and_then(|key| seen.desired(key, attr::TUNNEL_PORT))
        .and_then(|p| p.as_int());
    let Some(dns) = endpoint_dns(seen, prefix) else {
        return Err(fail(format!("key field 2 = {tunnel}; the VPC endpoint's DNS name is unknown"), rewrite));
    };
    let wanted = port.map_or_else(|| dns.clone(), |p| format!("{dns}:{p}"));
    let (host, dialled) = tunnel.rsplit_once(':').unwrap_or((tunnel, ""));
    let right = host == dns && port.is_none_or(|p| dialled == p.to_string());
    if right {
        Ok(format!("rollout complete; key field 2 = {tunnel} (the VPC endpoint)"))
    } else {
        Err(fail(format!("key field 2 = {tunnel}, not {wanted} (the VPC endpoint and listener port)"), rewrite))
    }
}

/// Portainer rejects polls from an agent whose EDGE_ID is not the environment's, and opens the
/// tunnel with credentials only that EDGE_ID decrypts (portainer.md §2).
fn edge_ids(seen: &Seen<'_>, prefix: &str) -> Judged {
    let agent = seen.live(prefix, NodeKind::AgentObjects)?;
    let env = seen.live(prefix, NodeKind::PortainerEnvironment)?;
    let help = "run `edgeplan apply`: it gives the agent the environment's EdgeID";
    let registered = env.text(attr::EDGE_ID).filter(|id| !id.is_empty());
    match (agent.text(attr::AGENT_EDGE_ID), registered) {
        (Some(a), Some(e)) if a == e => Ok(format!("both {a}")),
        (Some(a), Some(e)) => {
            Err(fail(format!("agent EDGE_ID {a}, environment EdgeID {e}: Portainer refuses the agent's polls"), help))
        }
        (Some(a), None) => match env.text(attr::AGENT_EDGE_ID) {
            Some(proposed) if proposed != a => {
                Err(fail(format!("agent EDGE_ID {a}, not the {proposed} edgeplan gives this environment"), help))
            }
            _ => Ok(format!("agent {a}; the environment registers it on the first poll")),
        },
        (None, _) => Err(fail("the agent has no EDGE_ID", help)),
    }
}

fn checked_in(seen: &Seen<'_>, prefix: &str) -> Judged {
    let env = seen.live(prefix, NodeKind::PortainerEnvironment)?;
    let kind = env.int(attr::TYPE_ID);
    let last = env.int(attr::LAST_CHECK_IN_DATE).unwrap_or(0);
    let heartbeat = env.flag(attr::HEARTBEAT) == Some(true);
    let name = env.text(attr::NAME).unwrap_or("?");
    let seen_as = format!(
        "environment {} ({name}): Type {}, Heartbeat {heartbeat}, LastCheckInDate {last}",
        env.id,
        kind.map_or_else(|| "?".to_string(), |k| k.to_string())
    );
    if kind == Some(7) && heartbeat && last > 0 {
        return Ok(seen_as);
    }
    let help = match agent_log(seen, prefix) {
        Err(line) => format!("the agent does not poll Portainer: {line}"),
        Ok(_) => "the agent does not poll Portainer: check that it reaches the URL in field 1 of its key".to_string(),
    };
    Err(fail(seen_as, help))
}

fn end_to_end(
    seen: &Seen<'_>,
    prefix: &str,
    scope: &str,
    probes: &BTreeMap<Address, Result<HttpResponse, BackendError>>,
    links: &[&VerifyCheck],
) -> VerifyCheck {
    let environment = seen.node(prefix, NodeKind::PortainerEnvironment);
    let answer = environment.and_then(|n| probes.get(&n.address));
    let id = seen
        .live(prefix, NodeKind::PortainerEnvironment)
        .ok()
        .and_then(|e| environment_id(&Observed::Present(e.clone())));
    let request =
        id.map_or_else(|| "GET (no environment)".to_string(), |id| format!("GET {}", kubernetes_probe_path(id)));
    // Only the links that are themselves where the path broke: the rest name those.
    let broken: Vec<&VerifyCheck> = links.iter().copied().filter(|c| c.is_root_failure()).collect();
    let judged = match answer {
        Some(Ok(response)) if response.status == 200 && broken.is_empty() => Ok(format!("{request} → 200")),
        Some(Ok(response)) if response.status == 200 => Err(fail(
            format!("{request} → 200, over a broken path: the tunnel does not survive its next reconnect"),
            "",
        )),
        Some(Ok(response)) => Err(fail(format!("{request} → {} {}", response.status, message(&response.body)), "")),
        Some(Err(err)) => Err(fail(format!("{request} failed: {err}"), "")),
        None => Err(fail(format!("{request} was not sent"), "")),
    };
    let mut result = follows(check(scope, checks::TUNNEL, judged), &broken);
    if !result.passed {
        let log = agent_log(seen, prefix);
        if broken.is_empty() {
            result.help = Some(match &log {
                Err(line) => format!("the agent holds no tunnel: {line}"),
                Ok(_) => "Portainer has no tunnel from the agent: run `edgeplan verify` again after a check-in \
                          interval"
                    .to_string(),
            });
        }
        result.causes = vec![match log {
            Ok(evidence) => Cause { cause: "the agent's log", present: false, evidence },
            Err(evidence) => Cause { cause: "the agent's log", present: true, evidence },
        }];
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

/// What the agent's newest telling log line says about its tunnel.
fn agent_log(seen: &Seen<'_>, prefix: &str) -> Result<String, String> {
    let agent = seen.live(prefix, NodeKind::AgentObjects).map_err(|f| f.evidence)?;
    let state = agent.text(attr::AGENT_STATE).unwrap_or("no-logs");
    let line = agent.text(attr::AGENT_MESSAGE).unwrap_or("no line says");
    match state {
        "connected" => Ok(format!("the agent logs `{line}`")),
        "running" | "no-logs" => Err(format!("the agent logs nothing about its tunnel ({state})")),
        _ => Err(format!("{state}: `{line}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_overlap_as_ec2_reads_them() {
        assert!(overlaps("192.168.0.0/16", "192.168.0.0/16"));
        assert!(overlaps("192.168.0.0/16", "192.168.5.0/24"));
        assert!(overlaps("0.0.0.0/0", "10.1.0.0/16"));
        // Host bits are masked off, as EC2 canonicalises a rule's CIDR.
        assert!(overlaps("10.1.0.0/16", "10.1.7.9/16"));
        assert!(!overlaps("10.1.0.0/16", "10.2.0.0/16"));
        assert!(!overlaps("10.1.0.0/16", ""));
        assert!(!overlaps("10.1.0.0/33", "10.1.0.0/16"));
        assert!(!overlaps("not a cidr", "10.1.0.0/16"));
    }
}
