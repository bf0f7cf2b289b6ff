//! Live rules: diagnostics that need observed state, attached to the node they concern. Same
//! catalog and renderers as lint. Each rule reads declared attributes (observed, or derived by
//! [`crate::facts`]) defensively: a missing or oddly typed attribute means "cannot tell",
//! never a panic. Rules find the nodes they compare with through references, or as the sibling
//! of a kind on the same side.

use std::collections::BTreeMap;

use edgeplan_diag::{Finding, RuleId};
use edgeplan_model::attr;
use edgeplan_model::{Address, BackendError, Identity, LiveObject, Node, NodeKind, Observation, Observed, Value};

use crate::model::{Change, NodeDiagnostic};

struct View<'a> {
    nodes: BTreeMap<&'a Address, &'a Node>,
    observed: BTreeMap<&'a Address, &'a Observation>,
}

impl<'a> View<'a> {
    fn live(&self, address: &Address) -> Option<&'a LiveObject> {
        self.observed.get(address).and_then(|o| o.result.as_ref().ok()).and_then(Observed::live)
    }

    /// The live object of the node `node` references through `attribute`.
    fn referenced(&self, node: &Node, attribute: edgeplan_model::Attr) -> Option<&'a LiveObject> {
        node.referenced(attribute).and_then(|address| self.live(address))
    }

    fn node(&self, address: &Address) -> Option<&'a Node> {
        self.nodes.get(address).copied()
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value.map(Value::strings).unwrap_or_default()
}

/// What an observation failure means for the user, in one line.
fn unobservable(address: &Address, error: &BackendError) -> String {
    match error {
        BackendError::AccessDenied { action: Some(action), .. } => {
            format!("{address}: the credentials may not call {action} ({error})")
        }
        _ => format!("{address}: {error}"),
    }
}

/// Every live diagnostic for these nodes and observations, in node order.
pub fn live_rules(
    stack: &str,
    nodes: &[&Node],
    changes: &[Change],
    observations: &[Observation],
) -> Vec<NodeDiagnostic> {
    let _ = (stack, changes);
    let view = View {
        nodes: nodes.iter().map(|n| (&n.address, *n)).collect(),
        observed: observations.iter().map(|o| (&o.address, o)).collect(),
    };
    let mut out = Vec::new();
    for node in nodes {
        let push = |out: &mut Vec<NodeDiagnostic>, finding: Finding| {
            out.push(NodeDiagnostic { address: node.address.clone(), finding });
        };
        match view.observed.get(&node.address).map(|o| &o.result) {
            Some(Err(error)) => {
                push(&mut out, Finding::of(RuleId::LiveUnobservable, None, unobservable(&node.address, error)));
                continue;
            }
            Some(Ok(Observed::Absent)) => {
                if let Identity::Adopted { id } = &node.identity {
                    push(
                        &mut out,
                        Finding::of(
                            RuleId::LiveAdoptedMissing,
                            None,
                            format!("{} names {id}, which does not exist", node.address),
                        ),
                    );
                }
            }
            _ => {}
        }
        for finding in node_rules(&view, node) {
            push(&mut out, finding);
        }
    }
    out
}

fn node_rules(view: &View<'_>, node: &Node) -> Vec<Finding> {
    let live = view.live(&node.address);
    let absent = matches!(view.observed.get(&node.address).map(|o| &o.result), Some(Ok(Observed::Absent)));
    let mut findings = Vec::new();
    match (node.kind, live) {
        (NodeKind::LbControllerPolicy, Some(live)) => {
            let missing = strings(live.get(attr::MISSING_ACTIONS));
            if !missing.is_empty() {
                findings.push(Finding::of(
                    RuleId::LiveControllerPolicyMissing,
                    None,
                    format!(
                        "role {} allows {} fewer action(s) than an internal NLB needs: {}",
                        live.text(attr::ROLE_NAME).unwrap_or("?"),
                        missing.len(),
                        missing.join(", ")
                    ),
                ));
            }
            let versions = live.int(attr::VERSION_COUNT).unwrap_or(0);
            if versions >= 5 {
                let oldest = live.text(attr::OLDEST_NON_DEFAULT_VERSION).unwrap_or("the oldest non-default version");
                findings.push(Finding::of(
                    RuleId::LivePolicyVersionLimit,
                    None,
                    format!("the policy has {versions} versions (the maximum): {oldest} will be deleted first"),
                ));
            }
        }
        (NodeKind::TunnelService, Some(live)) => {
            let restart = view.live(&node.address.sibling(NodeKind::PortainerRestart));
            let real = restart.and_then(|r| r.get(attr::TUNNEL_PORT));
            if let (Some(target), Some(real)) = (live.get(attr::TARGET_PORT), real)
                && target.as_int().is_some()
                && real.as_int().is_some()
                && target != real
            {
                findings.push(Finding::of(
                    RuleId::LiveTargetPortMismatch,
                    None,
                    format!("the Service targets port {target}; the tunnel server listens on {real} (--tunnel-port)"),
                ));
            }
        }
        (NodeKind::NlbSubnet, Some(live)) if live.flag(attr::ROUTES_TO_IGW) == Some(true) => {
            let route = live.text(attr::IGW_ROUTE).unwrap_or("a 0.0.0.0/0 route to an internet gateway");
            findings.push(Finding::of(
                RuleId::LiveNlbSubnetPublic,
                None,
                format!("{} is public: its effective route table has {route}", live.id),
            ));
        }
        (NodeKind::ClusterSgRule, None) if absent && !controller_manages_rules(view, node) => {
            findings.push(Finding::of(
                RuleId::LiveNoSgPath,
                None,
                "no ingress rule on the Portainer pods' security group admits the NLB subnet on the tunnel port",
            ));
        }
        (NodeKind::EdgeComputeSetting, Some(live)) if live.flag(attr::ENABLE_EDGE_COMPUTE) == Some(false) => {
            findings.push(Finding::of(RuleId::LiveEdgeComputeOff, None, "EnableEdgeComputeFeatures is false"));
        }
        (NodeKind::Nlb, Some(live)) if live.text(attr::SCHEME) == Some("internet-facing") => {
            findings.push(Finding::of(
                RuleId::LiveNlbInternetFacing,
                None,
                format!(
                    "{} is internet-facing: the chisel listener is public",
                    live.text(attr::ARN).unwrap_or(&live.id)
                ),
            ));
        }
        (NodeKind::Vpce, _) => findings.extend(shared_az_ids(view, node)),
        (NodeKind::ConnectionAcceptance, Some(live))
            if live.text(attr::STATE).is_some_and(|s| s.eq_ignore_ascii_case("pendingAcceptance")) =>
        {
            findings.push(Finding::of(
                RuleId::LiveConnectionPending,
                None,
                format!(
                    "connection from {} is pending acceptance",
                    live.text(attr::VPC_ENDPOINT_ID).unwrap_or(&live.id)
                ),
            ));
        }
        (NodeKind::AgentObjects, Some(live)) => findings.extend(agent_rules(view, node, live)),
        (NodeKind::PortainerEnvironment, Some(live)) => {
            if let Some(tunnel) = live.text(attr::KEY_TUNNEL).filter(|t| !t.contains(".vpce.amazonaws.com")) {
                findings.push(Finding::of(
                    RuleId::LivePortainerKeyTunnel,
                    None,
                    format!(
                        "Portainer issued this environment's key for {tunnel} (its URL host and --tunnel-port), \
                         which the agent cannot reach over PrivateLink"
                    ),
                ));
            }
        }
        _ => {}
    }
    findings
}

/// The LB controller admits the NLB to the pods itself when the tunnel Service asks it to
/// (aws.md §1a), in the spec or on the live Service: then no rule of edgeplan's is needed.
fn controller_manages_rules(view: &View<'_>, rule: &Node) -> bool {
    const ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules";
    let service = rule.referenced(attr::PORT).and_then(|a| view.node(a));
    let says_true = |annotations: Option<&Value>| {
        annotations.and_then(Value::as_map).and_then(|m| m.get(ANNOTATION)).and_then(Value::as_str) == Some("true")
    };
    service.is_some_and(|s| {
        says_true(s.literal(attr::ANNOTATIONS))
            || says_true(view.live(&s.address).and_then(|l| l.get(attr::ANNOTATIONS)))
    })
}

/// The endpoint's subnets must share an AZ *ID* with the NLB (names differ per account). Known
/// as soon as both exist, before the endpoint is created.
fn shared_az_ids(view: &View<'_>, vpce: &Node) -> Option<Finding> {
    let subnets = view.referenced(vpce, attr::SUBNET_AVAILABILITY_ZONE_IDS)?;
    let service = vpce.referenced(attr::SERVICE_NAME).and_then(|a| view.node(a))?;
    let nlb = view.referenced(service, attr::NETWORK_LOAD_BALANCER_ARN)?;
    let consumer = strings(subnets.get(attr::AVAILABILITY_ZONE_IDS));
    let provider = strings(nlb.get(attr::AVAILABILITY_ZONE_IDS));
    if consumer.is_empty() || provider.is_empty() || consumer.iter().any(|az| provider.contains(az)) {
        return None;
    }
    Some(Finding::of(
        RuleId::LiveNoSharedAzId,
        None,
        format!(
            "subnets in {} share no AZ ID with the endpoint service ({})",
            consumer.join(", "),
            provider.join(", ")
        ),
    ))
}

fn agent_rules(view: &View<'_>, node: &Node, live: &LiveObject) -> Vec<Finding> {
    let mut findings = Vec::new();
    if live.flag(attr::KEY_PRESENT) == Some(true) && live.flag(attr::KEY_VALID) == Some(false) {
        let agent_error = live.text(attr::KEY_AGENT_ERROR).unwrap_or("the agent will reject it");
        findings.push(Finding::of(
            RuleId::LiveAgentKeyNotCanonical,
            None,
            format!("the agent's EDGE_KEY is not canonical: {agent_error}"),
        ));
    }
    // Expected tunnel: the VPC endpoint's DNS name on the listener port, as the key node has them.
    let key_node = node.referenced(attr::AGENT_EDGE_KEY).and_then(|a| view.node(a));
    let vpce_dns = key_node
        .and_then(|k| view.referenced(k, attr::TUNNEL_HOST))
        .and_then(|v| v.text(attr::DNS_NAME))
        .map(str::to_string);
    let port = key_node.and_then(|k| k.literal(attr::TUNNEL_PORT)).and_then(Value::as_int);
    if let Some(tunnel) = live.text(attr::KEY_TUNNEL) {
        let expected = vpce_dns.zip(port).map(|(dns, port)| format!("{dns}:{port}"));
        let points_at_vpce =
            expected.as_deref().map_or_else(|| tunnel.contains(".vpce.amazonaws.com"), |e| tunnel == e);
        if !points_at_vpce {
            let wanted = expected.unwrap_or_else(|| "the VPC endpoint (created by this plan)".to_string());
            findings.push(Finding::of(
                RuleId::LiveAgentKeyWrongTunnel,
                None,
                format!("the agent's EDGE_KEY tunnel is {tunnel}, not {wanted}"),
            ));
        }
    }
    let environment = view.referenced(node, attr::AGENT_EDGE_ID);
    let env_id = environment.and_then(|e| e.text(attr::EDGE_ID)).filter(|id| !id.is_empty());
    let agent_id = live.text(attr::AGENT_EDGE_ID).filter(|id| !id.is_empty());
    if let (Some(env_id), Some(agent_id)) = (env_id, agent_id)
        && env_id != agent_id
    {
        findings.push(Finding::of(
            RuleId::LiveEdgeIdMismatch,
            None,
            format!("the environment's EdgeID is {env_id}, the agent's EDGE_ID is {agent_id}"),
        ));
    }
    findings
}
