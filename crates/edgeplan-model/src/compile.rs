//! Spec → nodes. Each node's desired attributes either come from the spec (literals) or from
//! another node's output (references); the references are the graph's edges.

use std::collections::BTreeMap;

use edgeplan_spec::{AwsTarget, Consumer, SecretRef, Spec, TunnelPort};

use crate::attr::{self, Attr};
use crate::kinds::NodeKind;
use crate::node::{Address, Expr, Identity, Node, Reference, Scope};
use crate::value::Value;

/// The LB controller's annotation prefix.
pub const LBC_ANNOTATION_PREFIX: &str = "service.beta.kubernetes.io/";
/// The annotation that pins the NLB to edgeplan's subnet (the engine writes the subnet ID).
pub const LBC_SUBNETS_ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-subnets";

/// Compile a lint-clean spec into its nodes, in a deterministic order (not an execution order:
/// that is the graph's business).
pub fn compile(spec: &Spec) -> Vec<Node> {
    let mut nodes = provider_nodes(spec);
    for consumer in spec.spec.consumers.iter() {
        nodes.extend(consumer_nodes(spec, consumer));
    }
    nodes
}

/// The scopes the spec names, in compile order, without duplicates.
pub fn spec_scopes<'n>(nodes: impl IntoIterator<Item = &'n Node>) -> Vec<Scope> {
    let mut seen = std::collections::BTreeSet::new();
    nodes
        .into_iter()
        .map(|node| &node.scope)
        .filter(|scope| **scope != Scope::Engine && seen.insert(*scope))
        .cloned()
        .collect()
}

fn aws_scope(aws: &AwsTarget) -> Scope {
    Scope::Aws {
        account: aws.account_id.value.clone(),
        region: aws.region.value.clone(),
        profile: aws.profile.as_ref().map(|p| p.value.clone()),
    }
}

/// A secret, by reference: the engine reads it when the plan is made.
pub fn secret_reference(value: &SecretRef) -> Value {
    match value {
        SecretRef::Env(name) => Value::SecretRef(format!("env:{name}")),
        SecretRef::File(path) => Value::SecretRef(format!("file:{path}")),
        // Lint refuses literals before anything is compiled; keep the type total anyway.
        SecretRef::Literal { .. } => Value::SecretRef("inline (refused by lint)".to_string()),
    }
}

struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    /// A node of `kind` at the address its kind names, on the `provider` side or a consumer's.
    fn node(&mut self, side: Option<&str>, kind: NodeKind, scope: Scope, identity: Identity) -> NodeBuilder<'_> {
        let address = match side {
            None => Address::provider(kind.address_name()),
            Some(consumer) => Address::consumer(consumer, kind.address_name()),
        };
        self.nodes.push(Node { address, kind, scope, identity, desired: BTreeMap::new() });
        NodeBuilder { node: self.nodes.last_mut().expect("just pushed") }
    }
}

struct NodeBuilder<'b> {
    node: &'b mut Node,
}

impl NodeBuilder<'_> {
    fn lit(&mut self, attribute: Attr, value: impl Into<Value>) -> &mut Self {
        self.node.desired.insert(attribute, Expr::Lit(value.into()));
        self
    }

    fn reference(&mut self, attribute: Attr, node: &Address, output: Attr) -> &mut Self {
        self.node.desired.insert(attribute, Expr::Ref(Reference { node: node.clone(), output }));
        self
    }
}

fn provider_address(kind: NodeKind) -> Address {
    Address::provider(kind.address_name())
}

fn provider_nodes(spec: &Spec) -> Vec<Node> {
    use attr::*;
    let provider = &spec.spec.provider;
    let aws = aws_scope(&provider.aws);
    let kube = Scope::Kubernetes { context: provider.cluster.kube_context.value.clone() };
    let portainer = Scope::Portainer { url: provider.portainer.url.value.clone() };
    let mut b = Builder { nodes: Vec::new() };

    let policy = provider_address(NodeKind::LbControllerPolicy);
    let subnet = provider_address(NodeKind::NlbSubnet);
    let route_table = provider_address(NodeKind::NlbRouteTable);
    let association = provider_address(NodeKind::NlbRouteTableAssociation);
    let edge_compute = provider_address(NodeKind::EdgeComputeSetting);
    let restart = provider_address(NodeKind::PortainerRestart);
    let service = provider_address(NodeKind::TunnelService);
    let nlb = provider_address(NodeKind::Nlb);
    let endpoint_service = provider_address(NodeKind::EndpointService);

    let lbc = &provider.lb_controller;
    let mut n =
        b.node(None, NodeKind::LbControllerPolicy, aws.clone(), Identity::Named { name: lbc.role_name.value.clone() });
    n.lit(ROLE_NAME, lbc.role_name.value.as_str());
    if let Some(document) = &lbc.policy_document {
        n.lit(POLICY_DOCUMENT, document.value.as_str());
    }

    // Read only: the plan judges what it creates there against the VPC as it is.
    b.node(None, NodeKind::Vpc, aws.clone(), Identity::Adopted { id: provider.vpc.id.value.clone() });

    let nlb_subnet = &provider.nlb_subnet;
    let creates_subnet = nlb_subnet.id.is_none();
    let identity = match &nlb_subnet.id {
        Some(id) => Identity::Adopted { id: id.value.clone() },
        None => Identity::Owned,
    };
    let mut n = b.node(None, NodeKind::NlbSubnet, aws.clone(), identity);
    n.lit(VPC_ID, provider.vpc.id.value.as_str());
    if let Some(cidr) = &nlb_subnet.cidr {
        n.lit(CIDR_BLOCK, cidr.value.as_str());
    }
    if let Some(az) = &nlb_subnet.availability_zone {
        n.lit(AVAILABILITY_ZONE, az.value.as_str());
    }
    if let Some(az_id) = &nlb_subnet.availability_zone_id {
        n.lit(AVAILABILITY_ZONE_ID, az_id.value.as_str());
    }
    // The controller discovers internal-NLB subnets by these tags (aws.md §1b).
    let tags: BTreeMap<String, String> = [
        ("kubernetes.io/role/internal-elb".to_string(), "1".to_string()),
        (format!("kubernetes.io/cluster/{}", provider.cluster.name.value), "shared".to_string()),
    ]
    .into_iter()
    .collect();
    n.lit(TAGS, tags);

    // An adopted subnet keeps whatever routing it has; lint and plan check it is private.
    if creates_subnet {
        b.node(None, NodeKind::NlbRouteTable, aws.clone(), Identity::Owned)
            .lit(VPC_ID, provider.vpc.id.value.as_str())
            .lit(ROUTES, Value::List(Vec::new()));
        b.node(None, NodeKind::NlbRouteTableAssociation, aws.clone(), Identity::Owned)
            .reference(SUBNET_ID, &subnet, ID)
            .reference(ROUTE_TABLE_ID, &route_table, ID);
    }

    b.node(None, NodeKind::EdgeComputeSetting, portainer.clone(), Identity::Singleton).lit(ENABLE_EDGE_COMPUTE, true);

    // Settings take effect on restart (seed trap 4): the restart stamps the checksum of the
    // settings onto Portainer's pod template, so a settings change rolls the pods.
    b.node(
        None,
        NodeKind::PortainerRestart,
        kube.clone(),
        Identity::Named { name: provider.portainer.deployment().to_string() },
    )
    .lit(NAMESPACE, provider.portainer.namespace())
    .reference(SETTINGS_CHECKSUM, &edge_compute, SETTINGS_CHECKSUM);

    let mut annotations: BTreeMap<String, String> = [
        ("aws-load-balancer-type", "external"),
        ("aws-load-balancer-nlb-target-type", "ip"),
        ("aws-load-balancer-scheme", "internal"),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{LBC_ANNOTATION_PREFIX}{k}"), v.to_string()))
    .collect();
    if let Some(extra) = provider.tunnel_service.as_ref().and_then(|s| s.annotations.as_ref()) {
        annotations.extend(extra.0.iter().map(|(k, v)| (k.value.clone(), v.value.clone())));
    }
    let mut n = b.node(
        None,
        NodeKind::TunnelService,
        kube.clone(),
        Identity::Named { name: provider.tunnel_service_name().to_string() },
    );
    n.lit(NAMESPACE, provider.tunnel_service_namespace())
        .lit(PORT, provider.listener_port())
        .lit(ANNOTATIONS, annotations)
        .reference(SUBNET_ID, &subnet, ID)
        // The Service selects Portainer's pods as its Deployment does.
        .reference(SELECTOR, &restart, SELECTOR);
    match provider.portainer.tunnel_port() {
        TunnelPort::Port(port) => n.lit(TARGET_PORT, port),
        // `auto`: the port in the deployment's --tunnel-port, as the restart node observes it.
        TunnelPort::Auto => n.reference(TARGET_PORT, &restart, TUNNEL_PORT),
    };

    // The controller can only build an internal NLB once its role allows it (seed trap 1) and
    // the subnet is private (reachability discovery): those are ordering references.
    let mut n = b.node(None, NodeKind::Nlb, aws.clone(), Identity::ReadOnly);
    n.reference(HOSTNAME, &service, LOAD_BALANCER_HOSTNAME).lit(SCHEME, "internal").reference(
        CONTROLLER_POLICY_VERSION,
        &policy,
        DEFAULT_VERSION,
    );
    if creates_subnet {
        n.reference(SUBNET_ROUTE_TABLE, &association, ROUTE_TABLE_ID);
    }

    // The rule is always edgeplan's own; a group named in the spec is where it goes.
    let mut n = b.node(None, NodeKind::ClusterSgRule, aws.clone(), Identity::Owned);
    n.lit(CLUSTER_NAME, provider.cluster.name.value.as_str());
    if let Some(group) = provider.cluster_security_group.as_ref().and_then(|g| g.id.as_ref()) {
        n.lit(SECURITY_GROUP_ID, group.value.as_str());
    }
    n.lit(PROTOCOL, "tcp").reference(PORT, &service, TARGET_PORT).reference(SOURCE_CIDR, &subnet, CIDR_BLOCK);

    b.node(None, NodeKind::EndpointService, aws.clone(), Identity::Owned)
        .reference(NETWORK_LOAD_BALANCER_ARN, &nlb, ARN)
        .lit(ACCEPTANCE_REQUIRED, provider.acceptance_required());

    let principals: Vec<String> = match provider.endpoint_service.as_ref().and_then(|s| s.allowed_principals.as_ref()) {
        Some(list) => list.iter().map(|p| p.value.clone()).collect(),
        None => {
            let mut accounts: Vec<String> =
                spec.spec.consumers.iter().map(|c| format!("arn:aws:iam::{}:root", c.aws.account_id.value)).collect();
            accounts.sort();
            accounts.dedup();
            accounts
        }
    };
    b.node(None, NodeKind::EndpointServicePermissions, aws, Identity::Owned)
        .reference(SERVICE_ID, &endpoint_service, SERVICE_ID)
        .lit(ALLOWED_PRINCIPALS, principals);

    b.nodes
}

fn consumer_nodes(spec: &Spec, consumer: &Consumer) -> Vec<Node> {
    use attr::*;
    let provider = &spec.spec.provider;
    let name = consumer.name.value.as_str();
    let side = Some(name);
    let aws = aws_scope(&consumer.aws);
    let provider_aws = aws_scope(&provider.aws);
    let kube = Scope::Kubernetes { context: consumer.cluster.kube_context.value.clone() };
    let portainer = Scope::Portainer { url: provider.portainer.url.value.clone() };
    let mut b = Builder { nodes: Vec::new() };

    let endpoint_service = provider_address(NodeKind::EndpointService);
    let permissions = provider_address(NodeKind::EndpointServicePermissions);
    let at = |kind: NodeKind| Address::consumer(name, kind.address_name());
    let subnets = at(NodeKind::ConsumerSubnets);
    let vpce_sg = at(NodeKind::VpceSecurityGroup);
    let vpce = at(NodeKind::Vpce);
    let acceptance = at(NodeKind::ConnectionAcceptance);
    let environment = at(NodeKind::PortainerEnvironment);
    let agent_key = at(NodeKind::AgentKey);

    let subnet_ids: Vec<String> = consumer.subnets.iter().map(|s| s.id.value.clone()).collect();
    b.node(side, NodeKind::ConsumerSubnets, aws.clone(), Identity::Adopted { id: subnet_ids.join(",") })
        .lit(SUBNET_IDS, subnet_ids.clone());

    let group = &consumer.endpoint_security_group;
    let sg_identity = match &group.id {
        Some(id) => Identity::Adopted { id: id.value.clone() },
        None => Identity::Owned,
    };
    let mut n = b.node(side, NodeKind::VpceSecurityGroup, aws.clone(), sg_identity);
    n.lit(VPC_ID, consumer.vpc.id.value.as_str()).lit(INGRESS_PORT, provider.listener_port());
    if let Some(create) = &group.create {
        let cidrs: Vec<String> = create.allowed_cidrs.iter().map(|c| c.value.clone()).collect();
        n.lit(INGRESS_CIDRS, cidrs);
    }

    b.node(side, NodeKind::Vpce, aws, Identity::Owned)
        .lit(VPC_ID, consumer.vpc.id.value.as_str())
        .lit(VPC_ENDPOINT_TYPE, "Interface")
        .reference(SERVICE_NAME, &endpoint_service, SERVICE_NAME)
        .reference(ALLOWED_PRINCIPALS, &permissions, ALLOWED_PRINCIPALS)
        .reference(SECURITY_GROUP_ID, &vpce_sg, ID)
        .lit(SUBNET_IDS, subnet_ids)
        .reference(SUBNET_AVAILABILITY_ZONE_IDS, &subnets, AVAILABILITY_ZONE_IDS);

    // Acceptance is a call on the provider's account, about the consumer's endpoint.
    b.node(side, NodeKind::ConnectionAcceptance, provider_aws, Identity::Owned)
        .reference(SERVICE_ID, &endpoint_service, SERVICE_ID)
        .reference(VPC_ENDPOINT_ID, &vpce, ID)
        .lit(ACCEPTED, true);

    let env = &consumer.environment;
    let env_identity = match (&env.id, &env.name) {
        (Some(id), _) => Identity::Adopted { id: id.value.to_string() },
        (None, Some(env_name)) => Identity::Named { name: env_name.value.clone() },
        (None, None) => Identity::Named { name: name.to_string() },
    };
    let env_name = match &env_identity {
        Identity::Named { name } => Some(name.clone()),
        _ => None,
    };
    let mut n = b.node(side, NodeKind::PortainerEnvironment, portainer, env_identity);
    n.lit(TYPE, "edge-agent-kubernetes")
        .lit(URL, provider.portainer.url.value.as_str())
        .lit(CREATE_IF_MISSING, env.create_if_missing());
    if let Some(env_name) = env_name {
        n.lit(NAME, env_name);
    }

    b.node(side, NodeKind::AgentKey, Scope::Engine, Identity::Owned)
        .reference(PORTAINER_KEY, &environment, EDGE_KEY)
        .reference(TUNNEL_HOST, &vpce, DNS_NAME)
        .lit(TUNNEL_PORT, provider.listener_port());

    let agent_spec = &consumer.agent;
    let mut n = b.node(side, NodeKind::AgentObjects, kube, Identity::Owned);
    n.lit(NAMESPACE, agent_spec.namespace())
        .lit(IMAGE, format!("portainer/agent:{}", agent_spec.image_tag.value))
        .reference(AGENT_EDGE_KEY, &agent_key, KEY)
        .reference(AGENT_EDGE_ID, &environment, AGENT_EDGE_ID)
        .lit(EDGE_INSECURE_POLL, agent_spec.insecure_poll.as_ref().is_some_and(|p| p.value));
    if let Some(secret_ref) = &agent_spec.agent_secret {
        n.lit(AGENT_SECRET, secret_reference(&secret_ref.value));
    }
    if let Some(env_vars) = &agent_spec.env {
        let extra: BTreeMap<String, String> =
            env_vars.iter().map(|v| (v.name.value.clone(), v.value.value.value.clone())).collect();
        n.lit(EXTRA_ENV, extra);
    }
    // The agent can only dial once its endpoint connection is accepted.
    n.reference(CONNECTION_STATE, &acceptance, STATE);

    b.nodes
}
