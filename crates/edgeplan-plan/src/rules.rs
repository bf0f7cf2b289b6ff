//! Live rules: diagnostics that need observed state, attached to the node they concern. Same
//! catalog and renderers as lint. Each rule reads normalized attributes defensively: a missing
//! or oddly typed attribute means "cannot tell", never a panic.

use std::collections::BTreeMap;

use edgeplan_diag::{Finding, RuleId};
use edgeplan_model::{Address, Identity, LiveObject, Node, NodeKind, Observation, Observed, Value};

use crate::model::NodeDiagnostic;

struct View<'a> {
    nodes: BTreeMap<&'a Address, &'a Node>,
    observed: BTreeMap<&'a Address, &'a Observation>,
}

impl<'a> View<'a> {
    fn live(&self, address: &Address) -> Option<&'a LiveObject> {
        match self.observed.get(address).map(|o| &o.result) {
            Some(Ok(Observed::Present(live))) => Some(live),
            _ => None,
        }
    }

    fn first_of_kind(&self, kind: NodeKind) -> Option<&'a Node> {
        self.nodes.values().copied().find(|n| n.kind == kind)
    }
}

fn attr<'a>(live: &'a LiveObject, name: &str) -> Option<&'a Value> {
    live.attributes.get(name)
}

fn attr_str<'a>(live: &'a LiveObject, name: &str) -> Option<&'a str> {
    attr(live, name).and_then(Value::as_str)
}

fn attr_bool(live: &LiveObject, name: &str) -> Option<bool> {
    attr(live, name).and_then(Value::as_bool)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::List(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// Every live diagnostic for these nodes and observations, in node order.
pub fn live_rules(nodes: &[&Node], observations: &[Observation]) -> Vec<NodeDiagnostic> {
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
                push(
                    &mut out,
                    Finding::of(RuleId::LiveUnobservable, None, format!("{}: {}", node.address, error.message)),
                );
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
    let mut findings = Vec::new();
    match (node.kind, live) {
        (NodeKind::LbControllerPolicy, Some(live)) => {
            let missing = strings(attr(live, "missing_actions"));
            if !missing.is_empty() {
                findings.push(Finding::of(
                    RuleId::LiveControllerPolicyMissing,
                    None,
                    format!(
                        "role {} allows {} fewer action(s) than an internal NLB needs: {}",
                        attr_str(live, "role_name").unwrap_or("?"),
                        missing.len(),
                        missing.join(", ")
                    ),
                ));
            }
            let versions = attr(live, "version_count").and_then(Value::as_int).unwrap_or(0);
            if versions >= 5 {
                let oldest = attr_str(live, "oldest_non_default_version").unwrap_or("the oldest non-default version");
                findings.push(Finding::of(
                    RuleId::LivePolicyVersionLimit,
                    None,
                    format!("the policy has {versions} versions (the maximum): {oldest} will be deleted first"),
                ));
            }
        }
        (NodeKind::TunnelService, Some(live)) => {
            let restart = view.first_of_kind(NodeKind::PortainerRestart).and_then(|n| view.live(&n.address));
            let real = restart.and_then(|r| attr(r, "tunnel_port").or_else(|| r.outputs.get("tunnel_port")));
            if let (Some(target), Some(real)) = (attr(live, "target_port"), real)
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
        (NodeKind::NlbSubnet, Some(live)) if attr_bool(live, "routes_to_igw") == Some(true) => {
            let route = attr_str(live, "igw_route").unwrap_or("a 0.0.0.0/0 route to an internet gateway");
            findings.push(Finding::of(
                RuleId::LiveNlbSubnetPublic,
                None,
                format!("{} is public: its effective route table has {route}", live.id),
            ));
        }
        (NodeKind::ClusterSgRule, None)
            if matches!(view.observed.get(&node.address).map(|o| &o.result), Some(Ok(Observed::Absent))) =>
        {
            let service = view.first_of_kind(NodeKind::TunnelService).and_then(|n| view.live(&n.address));
            let managed = service.and_then(|s| attr_bool(s, "controller_manages_backend_sg_rules"));
            if managed != Some(true) {
                findings.push(Finding::of(
                    RuleId::LiveNoSgPath,
                    None,
                    "no ingress rule on the Portainer pods' security group admits the NLB subnet on the tunnel port",
                ));
            }
        }
        (NodeKind::EdgeComputeSetting, Some(live)) if attr_bool(live, "EnableEdgeComputeFeatures") == Some(false) => {
            findings.push(Finding::of(RuleId::LiveEdgeComputeOff, None, "EnableEdgeComputeFeatures is false"));
        }
        (NodeKind::Nlb, Some(live)) if attr_str(live, "scheme") == Some("internet-facing") => {
            findings.push(Finding::of(
                RuleId::LiveNlbInternetFacing,
                None,
                format!(
                    "{} is internet-facing: the chisel listener is public",
                    attr_str(live, "arn").unwrap_or(&live.id)
                ),
            ));
        }
        (NodeKind::Vpce, Some(live)) => {
            if matches!(attr(live, "shared_availability_zone_ids"), Some(Value::List(shared)) if shared.is_empty()) {
                findings.push(Finding::of(
                    RuleId::LiveNoSharedAzId,
                    None,
                    format!(
                        "subnets in {} share no AZ ID with the endpoint service ({})",
                        strings(attr(live, "subnet_availability_zone_ids")).join(", "),
                        strings(attr(live, "service_availability_zone_ids")).join(", ")
                    ),
                ));
            }
        }
        (NodeKind::ConnectionAcceptance, Some(live))
            if attr_str(live, "connection_state") == Some("pendingAcceptance") =>
        {
            findings.push(Finding::of(
                RuleId::LiveConnectionPending,
                None,
                format!(
                    "connection from {} is pending acceptance",
                    attr_str(live, "vpc_endpoint_id").unwrap_or(&live.id)
                ),
            ));
        }
        (NodeKind::AgentObjects, Some(live)) => findings.extend(agent_rules(view, node, live)),
        (NodeKind::PortainerEnvironment, Some(live)) => {
            if let Some(tunnel) = attr_str(live, "edge_key_tunnel").filter(|t| !t.contains(".vpce.amazonaws.com")) {
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

fn agent_rules(view: &View<'_>, node: &Node, live: &LiveObject) -> Vec<Finding> {
    let mut findings = Vec::new();
    if attr_bool(live, "edge_key_present") == Some(true) && attr_bool(live, "edge_key_valid") == Some(false) {
        let agent_error = attr_str(live, "edge_key_agent_error").unwrap_or("the agent will reject it");
        findings.push(Finding::of(
            RuleId::LiveAgentKeyNotCanonical,
            None,
            format!("the agent's EDGE_KEY is not canonical: {agent_error}"),
        ));
    }
    // Expected tunnel: the consumer's VPCE DNS name on the listener port (from the key node).
    let consumer_prefix = node.address.as_str().rsplit_once('.').map(|(prefix, _)| prefix.to_string());
    let sibling = |name: &str| consumer_prefix.as_ref().map(|p| Address::from_text(&format!("{p}.{name}")));
    let vpce_dns =
        sibling("vpce").and_then(|a| view.live(&a)).and_then(|v| v.outputs.get("dns_name")).and_then(Value::as_str);
    let port = sibling("agent_key")
        .and_then(|a| view.nodes.get(&a).copied())
        .and_then(|n| n.desired.get("tunnel_port"))
        .and_then(|e| match e {
            edgeplan_model::Expr::Lit(v) => v.as_int(),
            edgeplan_model::Expr::Ref(_) => None,
        });
    if let Some(tunnel) = attr_str(live, "edge_key_tunnel") {
        let expected = match (vpce_dns, port) {
            (Some(dns), Some(port)) => Some(format!("{dns}:{port}")),
            _ => None,
        };
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
    let environment = sibling("environment").and_then(|a| view.live(&a));
    let env_id = environment.and_then(|e| attr_str(e, "edge_id")).filter(|id| !id.is_empty());
    let agent_id = attr_str(live, "EDGE_ID").filter(|id| !id.is_empty());
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
