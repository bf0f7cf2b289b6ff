//! Live rules: diagnostics that need observed state, attached to the node they concern. Same
//! catalog and renderers as lint.
//!
//! Every rule judges one state of the world through a [`View`], and runs twice: on the observed
//! state and on the planned state ([`crate::planned`]: the observed state with every planned
//! change applied, created objects included). A cause found in the planned state is still
//! there after apply: it is reported at the rule's severity, and apply refuses a plan with
//! errors before it changes anything. A cause found only in the observed state is one a
//! planned change provably removes: that, and only that, is "fixed by this plan" (at most a
//! warning). Notes about what the plan does (a version it deletes, a key it rewrites) are
//! reported only when the plan does it.
//!
//! Rules read declared attributes defensively: a missing or oddly typed attribute means
//! "cannot tell", never a panic. They find the nodes they compare with through references, or
//! as the sibling of a kind on the same side.

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_diag::{Finding, RuleId, Severity};
use edgeplan_model::attr::{self, Attr, field};
use edgeplan_model::{Action, Address, BackendError, Identity, LiveObject, Node, NodeKind, Observation, Role, Value};
use ipnet::Ipv4Net;

use crate::model::{Change, NodeDiagnostic, Reason};
use crate::planned::{self, State};

/// One state of the world, as the rules see it.
struct View<'v, 'a> {
    nodes: &'v BTreeMap<&'a Address, &'a Node>,
    states: &'v BTreeMap<&'a Address, State<'a>>,
    /// The plan's changes: set when this is the planned state.
    changes: Option<&'v BTreeMap<&'a Address, &'a Change>>,
}

impl<'v> View<'v, '_> {
    fn live(&self, address: &Address) -> Option<&'v LiveObject> {
        self.states.get(address).and_then(State::live)
    }

    fn absent(&self, address: &Address) -> bool {
        matches!(self.states.get(address), Some(State::Absent))
    }

    /// The live object of the node `node` references through `attribute`.
    fn referenced(&self, node: &Node, attribute: Attr) -> Option<&'v LiveObject> {
        node.referenced(attribute).and_then(|address| self.live(address))
    }

    fn node(&self, address: &Address) -> Option<&'v Node> {
        self.nodes.get(address).copied()
    }

    fn change(&self, address: &Address) -> Option<&'v Change> {
        self.changes.and_then(|c| c.get(address)).copied()
    }

    /// Is this the planned state, with `address` created by the plan?
    fn creates(&self, address: &Address) -> bool {
        self.change(address).is_some_and(|c| c.action == Action::Create)
    }

    /// Is this the planned state, with `address` created, updated or replaced by the plan?
    fn writes(&self, address: &Address) -> bool {
        self.change(address).is_some_and(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
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

/// A cause the plan removes: reported, at most a warning, saying so.
fn fixed(mut finding: Finding) -> Finding {
    finding.severity = finding.severity.min(Severity::Warning);
    finding.help = format!("fixed by this plan: {}", finding.help);
    finding
}

/// Every live diagnostic for these nodes, in node order: each rule judged on the observed and on
/// the planned state (`changes` applied to `observations`; with no changes the two are the
/// same), compared as the module explains.
pub fn live_rules(
    stack: &str,
    nodes: &[&Node],
    changes: &[Change],
    observations: &[Observation],
) -> Vec<NodeDiagnostic> {
    let _ = stack;
    let by_node: BTreeMap<&Address, &Node> = nodes.iter().map(|n| (&n.address, *n)).collect();
    let by_change: BTreeMap<&Address, &Change> = changes.iter().map(|c| (&c.address, c)).collect();
    let observed_states = planned::observed(observations);
    let planned_states = planned::planned(nodes, changes, observations);
    let observed = View { nodes: &by_node, states: &observed_states, changes: None };
    let planned = View { nodes: &by_node, states: &planned_states, changes: Some(&by_change) };
    let observations: BTreeMap<&Address, &Observation> = observations.iter().map(|o| (&o.address, o)).collect();
    let mut out = Vec::new();
    for node in nodes {
        let push = |out: &mut Vec<NodeDiagnostic>, finding: Finding| {
            out.push(NodeDiagnostic { address: node.address.clone(), finding });
        };
        match observations.get(&node.address).map(|o| &o.result) {
            Some(Err(error)) => {
                push(&mut out, Finding::of(RuleId::LiveUnobservable, None, unobservable(&node.address, error)));
                continue;
            }
            Some(Ok(edgeplan_model::Observed::Absent)) => {
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
        let mut findings = node_rules(&planned, node);
        for was in node_rules(&observed, node) {
            if !findings.iter().any(|f| f.rule.id == was.rule.id) {
                findings.push(fixed(was));
            }
        }
        findings.sort_by_key(|f| f.rule.id);
        for finding in findings {
            push(&mut out, finding);
        }
    }
    out.extend(interrupted_tunnels(nodes, changes));
    out
}

/// EP231: on each field that forces a replacement whose cascade recreates the tunnel's path
/// (the NLB, the endpoint service or a consumer's endpoint), which agents lose their tunnel.
fn interrupted_tunnels(nodes: &[&Node], changes: &[Change]) -> Vec<NodeDiagnostic> {
    let replaced: BTreeSet<&Address> =
        changes.iter().filter(|c| c.action == Action::Replace).map(|c| &c.address).collect();
    let on_path = |kind: NodeKind| matches!(kind, NodeKind::Nlb | NodeKind::EndpointService | NodeKind::Vpce);
    let mut dependents: BTreeMap<&Address, Vec<&Address>> = BTreeMap::new();
    for node in nodes {
        for (_, reference) in node.references() {
            dependents.entry(&reference.node).or_default().push(&node.address);
        }
    }
    let mut out = Vec::new();
    for change in changes.iter().filter(|c| c.action == Action::Replace) {
        let Some(field) = change.reasons.iter().find_map(|r| match r {
            Reason::ForcesReplacement { field } => Some(field),
            _ => None,
        }) else {
            continue;
        };
        // Everything replaced because of this change, following references.
        let mut reached: BTreeSet<&Address> = BTreeSet::new();
        let mut queue = vec![&change.address];
        while let Some(next) = queue.pop() {
            for dependent in dependents.get(next).into_iter().flatten() {
                if replaced.contains(dependent) && reached.insert(dependent) {
                    queue.push(dependent);
                }
            }
        }
        let mut path: Vec<&Address> = reached
            .iter()
            .copied()
            .chain(std::iter::once(&change.address))
            .filter(|a| a.kind().is_some_and(on_path))
            .collect();
        path.sort_by_key(|a| (a.kind().map(NodeKind::rank), *a));
        let path: Vec<String> = path.iter().map(|a| a.to_string()).collect();
        if path.is_empty() {
            continue;
        }
        let consumers: BTreeSet<&str> =
            reached.iter().filter(|a| a.kind() == Some(NodeKind::Vpce)).filter_map(|a| a.consumer_name()).collect();
        let who = if consumers.is_empty() {
            "every agent".to_string()
        } else {
            format!("the agents of {}", consumers.into_iter().collect::<Vec<_>>().join(", "))
        };
        out.push(NodeDiagnostic {
            address: change.address.clone(),
            finding: Finding::of(
                RuleId::LiveReplacementInterruptsTunnels,
                None,
                format!(
                    "replacing {} for `{field}` recreates the tunnel's path ({}): {who} lose their tunnel from the \
                     old endpoints' deletion until the new ones are accepted",
                    change.address,
                    path.join(", ")
                ),
            ),
        });
    }
    out
}

/// The spec value a rule's finding is about, as an attribute of the node it is attached to:
/// the engine labels the finding with that value's span in the spec.
pub fn finding_subject(rule: RuleId) -> Option<Attr> {
    Some(match rule {
        RuleId::LiveTargetPortMismatch => attr::TARGET_PORT,
        RuleId::LiveNlbSubnetCidrTaken => attr::CIDR_BLOCK,
        RuleId::LiveUnknownAvailabilityZone => attr::AVAILABILITY_ZONE,
        RuleId::LiveConsumerVpcMismatch => attr::VPC_ID,
        RuleId::LiveEndpointAdmitsNothing => attr::INGRESS_CIDRS,
        RuleId::LiveEndpointSubnetsShareAz | RuleId::LiveNoSharedAzId => attr::SUBNET_IDS,
        RuleId::LiveTunnelServiceNamespace | RuleId::LivePortainerDeploymentUnusable => attr::NAMESPACE,
        RuleId::LiveEnvironmentNotCreatable => attr::CREATE_IF_MISSING,
        RuleId::LiveAdoptedMissing | RuleId::LiveNlbSubnetFewIps => attr::ID,
        _ => return None,
    })
}

fn node_rules(view: &View<'_, '_>, node: &Node) -> Vec<Finding> {
    let live = view.live(&node.address);
    let mut findings = Vec::new();
    match node.kind {
        NodeKind::LbControllerPolicy => findings.extend(policy_rules(view, node, live)),
        NodeKind::TunnelService => findings.extend(tunnel_service_rules(view, node, live)),
        NodeKind::NlbSubnet => findings.extend(subnet_rules(view, node, live)),
        NodeKind::ClusterSgRule if view.absent(&node.address) && !controller_manages_rules(view, node) => {
            findings.push(Finding::of(
                RuleId::LiveNoSgPath,
                None,
                "no ingress rule on the Portainer pods' security group admits the NLB subnet on the tunnel port",
            ));
        }
        NodeKind::EdgeComputeSetting if live.and_then(|l| l.flag(attr::ENABLE_EDGE_COMPUTE)) == Some(false) => {
            findings.push(Finding::of(RuleId::LiveEdgeComputeOff, None, "EnableEdgeComputeFeatures is false"));
        }
        NodeKind::PortainerRestart => findings.extend(portainer_deployment(view, node, live)),
        NodeKind::Nlb => {
            if let Some(live) = live.filter(|l| l.text(attr::SCHEME) == Some("internet-facing")) {
                findings.push(Finding::of(
                    RuleId::LiveNlbInternetFacing,
                    None,
                    format!(
                        "{} is internet-facing: the chisel listener is public",
                        live.text(attr::ARN).unwrap_or(&live.id)
                    ),
                ));
            }
        }
        NodeKind::EndpointService => findings.extend(nlb_taken(view, node)),
        NodeKind::VpceSecurityGroup => findings.extend(admits_nothing(node, live)),
        NodeKind::Vpce => {
            findings.extend(shared_az_ids(view, node));
            findings.extend(consumer_subnets(view, node));
        }
        NodeKind::ConnectionAcceptance => {
            if let Some(live) = live.filter(|l| {
                l.flag(attr::ACCEPTED) != Some(true)
                    && l.text(attr::STATE).is_some_and(|s| s.eq_ignore_ascii_case("pendingAcceptance"))
            }) {
                findings.push(Finding::of(
                    RuleId::LiveConnectionPending,
                    None,
                    format!(
                        "connection from {} is pending acceptance",
                        live.text(attr::VPC_ENDPOINT_ID).unwrap_or(&live.id)
                    ),
                ));
            }
        }
        NodeKind::AgentObjects => {
            if let Some(live) = live {
                findings.extend(agent_rules(view, node, live));
            }
        }
        NodeKind::PortainerEnvironment => findings.extend(environment_rules(view, node, live)),
        _ => {}
    }
    findings.extend(adopted_immutable(view, node));
    findings
}

fn policy_rules(view: &View<'_, '_>, node: &Node, live: Option<&LiveObject>) -> Vec<Finding> {
    let Some(live) = live else { return Vec::new() };
    let mut findings = Vec::new();
    let missing = strings(live.get(attr::MISSING_ACTIONS));
    if !missing.is_empty() {
        let mut finding = Finding::of(
            RuleId::LiveControllerPolicyMissing,
            None,
            format!(
                "role {} allows {} fewer action(s) than an internal NLB needs: {}",
                live.text(attr::ROLE_NAME).unwrap_or("?"),
                missing.len(),
                missing.join(", ")
            ),
        );
        if node.literal(attr::POLICY_DOCUMENT).is_none() {
            finding = finding.with_help(
                "set lbController.policyDocument to the upstream iam_policy.json of controller v2.13.2 or later, so \
                 edgeplan applies it",
            );
        }
        findings.push(finding);
    }
    // Only when the plan does it: a policy left alone keeps its versions.
    if let Some(change) = view.change(&node.address)
        && let Some(field) = change.reasons.iter().find_map(|r| match r {
            Reason::VersionLimit { field } => Some(field),
            _ => None,
        })
    {
        let versions = live.int(attr::VERSION_COUNT).unwrap_or(5);
        let victim = change.after.get(field).map_or_else(
            || "the oldest non-default version".to_string(),
            |v| v.to_string().trim_matches('"').to_string(),
        );
        findings.push(Finding::of(
            RuleId::LivePolicyVersionLimit,
            None,
            format!("the policy has {versions} versions (the maximum): {victim} will be deleted first"),
        ));
    }
    findings
}

fn tunnel_service_rules(view: &View<'_, '_>, node: &Node, live: Option<&LiveObject>) -> Vec<Finding> {
    let Some(live) = live else { return Vec::new() };
    let mut findings = Vec::new();
    let restart_address = node.address.sibling(NodeKind::PortainerRestart);
    let restart = view.live(&restart_address);
    let real = restart.and_then(|r| r.int(attr::TUNNEL_PORT));
    let target = live.int(attr::TARGET_PORT);
    let deployment = view
        .node(&restart_address)
        .map(|r| format!("{}/{}", literal_text(r, attr::NAMESPACE).unwrap_or("?"), identity_name(r)))
        .unwrap_or_else(|| "Portainer's Deployment".to_string());
    if let (Some(target), Some(real)) = (target, real)
        && target != real
    {
        findings.push(Finding::of(
            RuleId::LiveTargetPortMismatch,
            None,
            format!(
                "the Service targets port {target}; the tunnel server listens on {real} (--tunnel-port in {deployment})"
            ),
        ));
    }
    // Seed trap 2, explained where the plan sets the Service's ports: why the listener and the
    // target differ, and where the target comes from.
    if sets_ports(view.change(&node.address))
        && let (Some(target), Some(listener), Some(real)) = (target, live.int(attr::PORT), real)
        && target == real
        && listener != target
        && node.referenced(attr::TARGET_PORT) == Some(&restart_address)
    {
        let args = restart.map(|r| strings(r.get(attr::ARGS)).join(" ")).filter(|a| !a.is_empty());
        // The Helm chart's NodePort install sets --tunnel-port to its NodePort (30000–32767).
        let chart = restart
            .and_then(|r| r.manifests.iter().find_map(|m| m.metadata().labels.get("helm.sh/chart").cloned()))
            .filter(|_| (30000..=32767).contains(&target))
            .map_or_else(String::new, |chart| format!(", set by the Helm chart ({chart}) to match its NodePort"));
        let source = match args {
            Some(args) => format!("{deployment} runs Portainer with `{args}`{chart}"),
            None => format!("{deployment} runs Portainer without --tunnel-port"),
        };
        findings.push(Finding::of(
            RuleId::LiveTunnelPortFromDeployment,
            None,
            format!(
                "the NLB listens on {listener} for agents (the port in their EDGE_KEY) and forwards to {target}, \
                 where Portainer's chisel server listens: {source}"
            ),
        ));
    }
    let namespace = live.text(attr::NAMESPACE);
    let portainer_namespace = view.node(&restart_address).and_then(|r| literal_text(r, attr::NAMESPACE));
    if view.writes(&node.address)
        && let (Some(namespace), Some(portainer_namespace)) = (namespace, portainer_namespace)
        && namespace != portainer_namespace
    {
        findings.push(Finding::of(
            RuleId::LiveTunnelServiceNamespace,
            None,
            format!(
                "the tunnel Service would be in namespace `{namespace}`, Portainer's pods are in \
                 `{portainer_namespace}`: a Service selects pods of its own namespace only, so the NLB would get no \
                 target"
            ),
        ));
    }
    findings
}

/// Does this change create the Service or change one of its ports?
fn sets_ports(change: Option<&Change>) -> bool {
    let Some(change) = change else { return false };
    let port = |field: &str| field == attr::PORT.name() || field == attr::TARGET_PORT.name();
    matches!(change.action, Action::Create | Action::Replace)
        || change.reasons.iter().any(|r| match r {
            Reason::Drift { field } | Reason::ForcesReplacement { field } => port(field),
            Reason::UpstreamChanging { field, .. } | Reason::UpstreamReplaced { field, .. } => port(field),
            _ => false,
        })
}

fn literal_text(node: &Node, attribute: Attr) -> Option<&str> {
    node.literal(attribute).and_then(Value::as_str)
}

fn identity_name(node: &Node) -> &str {
    match &node.identity {
        Identity::Named { name } => name,
        Identity::Adopted { id } => id,
        _ => node.address.as_str(),
    }
}

fn subnet_rules(view: &View<'_, '_>, node: &Node, live: Option<&LiveObject>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let vpc = view.live(&node.address.sibling(NodeKind::Vpc));
    let adopted = matches!(node.identity, Identity::Adopted { .. });
    let route_table = node.address.sibling(NodeKind::NlbRouteTable);
    match live {
        Some(live) if live.flag(attr::ROUTES_TO_IGW) == Some(true) => {
            let route = live.text(attr::IGW_ROUTE).unwrap_or("a 0.0.0.0/0 route to an internet gateway");
            let table = live.text(attr::ROUTE_TABLE_ID).map_or_else(String::new, |t| format!(" {t}"));
            let which = match live.text(attr::ROUTE_TABLE_ASSOCIATION) {
                Some("main") => format!("the VPC's main route table{table}"),
                _ => format!("its route table{table}"),
            };
            let subject = if live.id.is_empty() { "the new subnet".to_string() } else { live.id.clone() };
            let mut finding = Finding::of(
                RuleId::LiveNlbSubnetPublic,
                None,
                format!(
                    "{subject} is public: {which} has {route}, so the LB controller will not place an internal NLB \
                     there"
                ),
            );
            if adopted {
                finding = finding.with_help(format!(
                    "associate {subject} with a route table that has no 0.0.0.0/0 → igw- route (edgeplan does not \
                     change the routing of a subnet it adopts), or remove nlbSubnet.id so edgeplan creates a private \
                     subnet"
                ));
            }
            findings.push(finding);
        }
        None if view.absent(&node.address) && !adopted && view.changes.is_none() => {
            // Observed state: the subnet does not exist yet. Created as it is, AWS would route it
            // by the VPC's main route table (seed: a single-tier VPC whose main table goes to an IGW).
            if let Some(vpc) = vpc.filter(|v| v.flag(attr::ROUTES_TO_IGW) == Some(true)) {
                let route = vpc.text(attr::IGW_ROUTE).unwrap_or("a 0.0.0.0/0 route to an internet gateway");
                let table = vpc.text(attr::ROUTE_TABLE_ID).unwrap_or("?");
                let fix = if view.node(&route_table).is_some() {
                    format!("edgeplan gives the new subnet its own route table ({route_table}, local routes only)")
                } else {
                    "give the subnet a route table without a route to an internet gateway".to_string()
                };
                findings.push(
                    Finding::of(
                        RuleId::LiveNlbSubnetPublic,
                        None,
                        format!(
                            "{} is single-tier: its main route table {table} has {route}, and a new subnet is routed \
                             by the main table, so the LB controller would reject it as public",
                            vpc.id
                        ),
                    )
                    .with_help(fix),
                );
            }
        }
        _ => {}
    }
    if let Some(live) = live
        && !view.creates(&node.address)
        && let Some(free) = live.int(attr::AVAILABLE_IP_ADDRESS_COUNT).filter(|n| *n < 8)
    {
        findings.push(Finding::of(
            RuleId::LiveNlbSubnetFewIps,
            None,
            format!(
                "{} has {free} free address(es): the LB controller drops subnets with fewer than 8, so it would find no \
                 subnet for the NLB",
                live.id
            ),
        ));
    }
    if view.creates(&node.address)
        && let (Some(live), Some(vpc)) = (live, vpc)
    {
        findings.extend(subnet_cidr(live, vpc));
        findings.extend(subnet_zone(node, vpc));
    }
    findings
}

fn cidr(text: &str) -> Option<Ipv4Net> {
    text.parse::<Ipv4Net>().ok()
}

/// CreateSubnet refuses a block outside the VPC's (`InvalidSubnet.Range`) or one that overlaps
/// a subnet already there (`InvalidSubnet.Conflict`): both are known from the VPC as it is.
fn subnet_cidr(subnet: &LiveObject, vpc: &LiveObject) -> Option<Finding> {
    let text = subnet.text(attr::CIDR_BLOCK)?;
    let block = cidr(text)?;
    let vpc_cidr = vpc.text(attr::CIDR_BLOCK).and_then(cidr);
    if let Some(vpc_cidr) = vpc_cidr
        && !vpc_cidr.contains(&block)
    {
        return Some(
            Finding::of(
                RuleId::LiveNlbSubnetCidrTaken,
                None,
                format!(
                    "{text} is not inside {} of {}: AWS refuses the subnet (InvalidSubnet.Range)",
                    vpc_cidr, vpc.id
                ),
            )
            .with_help(format!(
                "pick a free block inside {vpc_cidr} (vpc.cidr in the spec must be the VPC's own CIDR)"
            )),
        );
    }
    let taken: Vec<String> = vpc
        .get(attr::SUBNETS)?
        .as_list()
        .iter()
        .map(Value::string_map)
        .filter(|s| s.get(field::CIDR).and_then(|c| cidr(c)).is_some_and(|c| c.contains(&block) || block.contains(&c)))
        .map(|s| {
            format!(
                "{} ({})",
                s.get(field::ID).map_or("?", String::as_str),
                s.get(field::CIDR).map_or("?", String::as_str)
            )
        })
        .collect();
    if taken.is_empty() {
        return None;
    }
    Some(
        Finding::of(
            RuleId::LiveNlbSubnetCidrTaken,
            None,
            format!(
                "{text} overlaps {} in {}: AWS refuses the subnet (InvalidSubnet.Conflict)",
                taken.join(", "),
                vpc.id
            ),
        )
        .with_help(format!("pick a block of {} that no subnet uses", vpc.text(attr::CIDR_BLOCK).unwrap_or("the VPC"))),
    )
}

/// CreateSubnet refuses a zone the region does not have in this account, and a zone name and
/// ID that are not the same zone.
fn subnet_zone(node: &Node, vpc: &LiveObject) -> Option<Finding> {
    let zones: Vec<(String, String)> = vpc
        .get(attr::AVAILABILITY_ZONES)?
        .as_list()
        .iter()
        .map(Value::string_map)
        .filter_map(|z| Some((z.get(field::NAME)?.clone(), z.get(field::ID)?.clone())))
        .collect();
    if zones.is_empty() {
        return None;
    }
    let listed = || zones.iter().map(|(name, id)| format!("{name} ({id})")).collect::<Vec<_>>().join(", ");
    let name = literal_text(node, attr::AVAILABILITY_ZONE);
    let id = literal_text(node, attr::AVAILABILITY_ZONE_ID);
    let problem = match (name, id) {
        (Some(name), _) if !zones.iter().any(|(n, _)| n == name) => {
            format!("there is no Availability Zone {name} in this account's region; it has {}", listed())
        }
        (None, Some(id)) if !zones.iter().any(|(_, i)| i == id) => {
            format!("there is no Availability Zone ID {id} in this account's region; it has {}", listed())
        }
        (Some(name), Some(id)) => {
            let actual = zones.iter().find(|(n, _)| n == name).map(|(_, i)| i.as_str())?;
            if actual == id {
                return None;
            }
            format!("{name} is {actual} in this account, not {id} (zone names map to different zones per account)")
        }
        _ => return None,
    };
    Some(Finding::of(RuleId::LiveUnknownAvailabilityZone, None, problem))
}

/// The LB controller admits the NLB to the pods itself when the tunnel Service asks it to
/// (aws.md §1a), in the spec or on the live Service: then no rule of edgeplan's is needed.
fn controller_manages_rules(view: &View<'_, '_>, rule: &Node) -> bool {
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

/// Portainer's Deployment is what edgeplan restarts, what the tunnel Service selects and where
/// the tunnel port comes from: edgeplan never installs Portainer.
fn portainer_deployment(view: &View<'_, '_>, node: &Node, live: Option<&LiveObject>) -> Option<Finding> {
    let name = format!("{}/{}", literal_text(node, attr::NAMESPACE).unwrap_or("?"), identity_name(node));
    let problem = if view.creates(&node.address) {
        format!(
            "Portainer's Deployment {name} does not exist: edgeplan restarts Portainer and reads its tunnel port, it does not install it"
        )
    } else {
        let live = live?;
        let scaled_to_zero = live
            .manifests
            .iter()
            .any(|m| matches!(m, edgeplan_model::Manifest::Deployment { spec, .. } if spec.replicas == Some(0)));
        if scaled_to_zero {
            format!("Portainer's Deployment {name} is scaled to 0: no NLB target can become healthy")
        } else if live.get(attr::ARGS).is_some() && live.get(attr::TUNNEL_PORT).is_none_or(|p| *p == Value::Null) {
            format!(
                "Portainer's Deployment {name} has a --tunnel-port that is not a port ({}): the tunnel port cannot be known",
                strings(live.get(attr::ARGS)).join(" ")
            )
        } else {
            return None;
        }
    };
    Some(Finding::of(RuleId::LivePortainerDeploymentUnusable, None, problem))
}

/// CreateVpcEndpointServiceConfiguration refuses an NLB that is already behind an endpoint
/// service (someone's earlier hand-made one, typically).
fn nlb_taken(view: &View<'_, '_>, node: &Node) -> Option<Finding> {
    if !view.creates(&node.address) {
        return None;
    }
    let nlb = view.referenced(node, attr::NETWORK_LOAD_BALANCER_ARN)?;
    let services = strings(nlb.get(attr::ENDPOINT_SERVICE_IDS));
    if services.is_empty() {
        return None;
    }
    Some(Finding::of(
        RuleId::LiveNlbInOtherEndpointService,
        None,
        format!(
            "{} is already behind endpoint service {}: AWS allows one, so creating this stack's is refused",
            nlb.text(attr::ARN).unwrap_or(&nlb.id),
            services.join(", ")
        ),
    ))
}

/// `allowedCidrs: []`: a group edgeplan writes with no ingress lets nothing reach the endpoint.
fn admits_nothing(node: &Node, live: Option<&LiveObject>) -> Option<Finding> {
    let wanted = node.literal(attr::INGRESS_CIDRS)?;
    if !wanted.as_list().is_empty() || live.is_none() {
        return None;
    }
    Some(Finding::of(
        RuleId::LiveEndpointAdmitsNothing,
        None,
        format!(
            "the endpoint's security group would admit no source on port {}: no agent could reach the VPC endpoint",
            node.literal(attr::INGRESS_PORT).map_or_else(|| "?".to_string(), ToString::to_string)
        ),
    ))
}

/// The endpoint's subnets must share an AZ *ID* with the NLB (names differ per account). Known
/// as soon as both exist, and in the planned state before either does: the NLB is built in the
/// AZ of the subnet the tunnel Service pins it to.
fn shared_az_ids(view: &View<'_, '_>, vpce: &Node) -> Option<Finding> {
    let subnets = view.referenced(vpce, attr::SUBNET_AVAILABILITY_ZONE_IDS)?;
    let service = vpce.referenced(attr::SERVICE_NAME).and_then(|a| view.node(a))?;
    let nlb = view.referenced(service, attr::NETWORK_LOAD_BALANCER_ARN)?;
    let consumer = strings(subnets.get(attr::AVAILABILITY_ZONE_IDS));
    let provider = strings(nlb.get(attr::AVAILABILITY_ZONE_IDS));
    let unsupported: Vec<&String> = consumer.iter().filter(|az| !provider.contains(az)).collect();
    if consumer.is_empty() || provider.is_empty() || unsupported.is_empty() {
        return None;
    }
    if unsupported.len() == consumer.len() {
        return Some(Finding::of(
            RuleId::LiveNoSharedAzId,
            None,
            format!(
                "subnets in {} share no AZ ID with the endpoint service ({})",
                consumer.join(", "),
                provider.join(", ")
            ),
        ));
    }
    // Some subnets are in the service's zones and some are not: AWS refuses the whole call,
    // so the plan says which zones to drop rather than letting apply find out.
    let unsupported: Vec<&str> = unsupported.iter().map(|az| az.as_str()).collect();
    Some(Finding::of(
        RuleId::LiveEndpointSubnetZoneUnsupported,
        None,
        format!(
            "the endpoint service is in {}; the consumer's subnet(s) in {} are not, and CreateVpcEndpoint refuses a subnet \
             in a zone the service does not support",
            provider.join(", "),
            unsupported.join(", ")
        ),
    ))
}

/// CreateVpcEndpoint refuses subnets of another VPC, and two subnets in one zone.
fn consumer_subnets(view: &View<'_, '_>, vpce: &Node) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(subnets) = view.referenced(vpce, attr::SUBNET_AVAILABILITY_ZONE_IDS) else { return findings };
    let vpcs = strings(subnets.get(attr::VPC_IDS));
    if let Some(vpc) = literal_text(vpce, attr::VPC_ID)
        && !vpcs.is_empty()
        && vpcs.iter().any(|v| v != vpc)
    {
        findings.push(Finding::of(
            RuleId::LiveConsumerVpcMismatch,
            None,
            format!(
                "vpc.id is {vpc}, but the consumer's subnets are in {}: the VPC endpoint must be in its subnets' VPC",
                vpcs.join(", ")
            ),
        ));
    }
    let ids = strings(subnets.get(attr::SUBNET_IDS));
    let zones = strings(subnets.get(attr::AVAILABILITY_ZONE_IDS));
    if !zones.is_empty() && ids.len() > zones.len() {
        findings.push(Finding::of(
            RuleId::LiveEndpointSubnetsShareAz,
            None,
            format!(
                "the endpoint's {} subnets are in only {} Availability Zone(s) ({}): CreateVpcEndpoint takes one subnet \
                 per zone (DuplicateSubnetsInSameZone)",
                ids.len(),
                zones.len(),
                zones.join(", ")
            ),
        ));
    }
    findings
}

fn agent_rules(view: &View<'_, '_>, node: &Node, live: &LiveObject) -> Vec<Finding> {
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

fn environment_rules(view: &View<'_, '_>, node: &Node, live: Option<&LiveObject>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let agent = node.address.sibling(NodeKind::AgentObjects);
    // Only when the plan writes the agent's key: then it says why the key is not Portainer's.
    if view.writes(&agent)
        && let Some(tunnel) = live.and_then(|l| l.text(attr::KEY_TUNNEL)).filter(|t| !t.contains(".vpce.amazonaws.com"))
    {
        findings.push(Finding::of(
            RuleId::LivePortainerKeyTunnel,
            None,
            format!(
                "Portainer issued this environment's key for {tunnel} (its URL host and --tunnel-port), which the \
                 agent cannot reach over PrivateLink"
            ),
        ));
    }
    if view.creates(&node.address) {
        let name = identity_name(node);
        if node.literal(attr::CREATE_IF_MISSING).and_then(Value::as_bool) == Some(false) {
            findings.push(
                Finding::of(
                    RuleId::LiveEnvironmentNotCreatable,
                    None,
                    format!("Portainer has no environment `{name}`, and environment.create is false"),
                )
                .with_help("create the environment in Portainer, fix environment.name, or remove `create: false`"),
            );
        } else if let Some(url) = literal_text(node, attr::URL)
            && matches!(url_host(url), "" | "localhost" | "127.0.0.1" | "[::1]")
        {
            findings.push(Finding::of(
                RuleId::LiveEnvironmentNotCreatable,
                None,
                format!(
                    "Portainer refuses an Edge environment whose URL ({url}) an agent cannot reach: it builds the key's \
                     server address from it"
                ),
            ));
        }
    }
    if let Some(live) = live
        && live.flag(attr::USER_TRUSTED) == Some(false)
    {
        findings.push(Finding::of(
            RuleId::LiveEnvironmentUntrusted,
            None,
            format!(
                "environment {} is not trusted: Portainer rejects its agent's polls (\"The device has not been trusted \
                 yet\")",
                live.text(attr::NAME).unwrap_or(&live.id)
            ),
        ));
    }
    findings
}

/// The host of a URL, without scheme, credentials or port.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or(host_port);
    }
    host_port.split(':').next().unwrap_or("")
}

/// An adopted object is never replaced (edgeplan never deletes what it did not create), and
/// AWS cannot change its immutable fields in place: a difference there cannot be applied.
fn adopted_immutable(view: &View<'_, '_>, node: &Node) -> Vec<Finding> {
    let (Identity::Adopted { id }, Some(change)) = (&node.identity, view.change(&node.address)) else {
        return Vec::new();
    };
    let decl = node.kind.decl();
    change
        .reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Drift { field } => Some(field),
            _ => None,
        })
        .filter(|field| {
            Attr::parse(field).and_then(|a| decl.desired_decl(a)).is_some_and(|d| d.role == Role::Immutable)
        })
        .map(|field| {
            let before = change.before.get(field.as_str()).map_or_else(|| "unset".to_string(), ToString::to_string);
            let after = change.after.get(field.as_str()).map_or_else(|| "unset".to_string(), ToString::to_string);
            Finding::of(
                RuleId::LiveAdoptedImmutable,
                None,
                format!(
                    "{id} is adopted and its `{field}` is {before}, not {after}: it cannot change in place, and edgeplan \
                     never replaces what it adopted"
                ),
            )
        })
        .collect()
}
