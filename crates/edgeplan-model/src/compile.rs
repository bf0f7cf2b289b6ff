//! Spec → nodes. Each node's desired attributes either come from the spec (literals) or from
//! another node's output (references); the references are the graph's edges.

use std::collections::BTreeMap;

use edgeplan_spec::{AwsTarget, Consumer, SecretRef, Spec, TunnelPort};

use crate::{Address, Expr, Identity, Node, NodeKind, Reference, Scope, Value};

/// Compile a lint-clean spec into its nodes, in a deterministic order (not an execution order:
/// that is the graph's business).
pub fn compile(spec: &Spec) -> Vec<Node> {
    let mut nodes = provider_nodes(spec);
    for consumer in spec.spec.consumers.iter() {
        nodes.extend(consumer_nodes(spec, consumer));
    }
    nodes
}

fn aws_scope(aws: &AwsTarget) -> Scope {
    Scope::Aws {
        account: aws.account_id.value.clone(),
        region: aws.region.value.clone(),
        profile: aws.profile.as_ref().map(|p| p.value.clone()),
    }
}

fn reference(node: &Address, output: &'static str) -> Expr {
    Expr::Ref(Reference { node: node.clone(), output })
}

fn secret(value: &SecretRef) -> Value {
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
    fn node(&mut self, address: Address, kind: NodeKind, scope: Scope, identity: Identity) -> &mut Node {
        self.nodes.push(Node { address, kind, scope, identity, desired: BTreeMap::new() });
        self.nodes.last_mut().expect("just pushed")
    }
}

fn provider_nodes(spec: &Spec) -> Vec<Node> {
    let provider = &spec.spec.provider;
    let aws = aws_scope(&provider.aws);
    let kube = Scope::Kubernetes { context: provider.cluster.kube_context.value.clone() };
    let portainer = Scope::Portainer { url: provider.portainer.url.value.clone() };
    let mut b = Builder { nodes: Vec::new() };

    let policy = Address::provider("lb_controller_policy");
    let subnet = Address::provider("nlb_subnet");
    let route_table = Address::provider("nlb_route_table");
    let association = Address::provider("nlb_route_table_association");
    let edge_compute = Address::provider("edge_compute");
    let restart = Address::provider("portainer_restart");
    let service = Address::provider("tunnel_service");
    let nlb = Address::provider("nlb");
    let sg_rule = Address::provider("cluster_sg_rule");
    let endpoint_service = Address::provider("endpoint_service");
    let permissions = Address::provider("endpoint_service_permissions");

    let lbc = &provider.lb_controller;
    let n = b.node(
        policy.clone(),
        NodeKind::LbControllerPolicy,
        aws.clone(),
        Identity::Named { name: lbc.role_name.value.clone() },
    );
    n.desired.insert("role_name", Expr::lit(lbc.role_name.value.as_str()));
    if let Some(document) = &lbc.policy_document {
        n.desired.insert("policy_document", Expr::lit(document.value.as_str()));
    }

    let nlb_subnet = &provider.nlb_subnet;
    let creates_subnet = nlb_subnet.id.is_none();
    let identity = match &nlb_subnet.id {
        Some(id) => Identity::Adopted { id: id.value.clone() },
        None => Identity::Owned,
    };
    let n = b.node(subnet.clone(), NodeKind::NlbSubnet, aws.clone(), identity);
    n.desired.insert("vpc_id", Expr::lit(provider.vpc.id.value.as_str()));
    if let Some(cidr) = &nlb_subnet.cidr {
        n.desired.insert("cidr_block", Expr::lit(cidr.value.as_str()));
    }
    if let Some(az) = &nlb_subnet.availability_zone {
        n.desired.insert("availability_zone", Expr::lit(az.value.as_str()));
    }
    if let Some(az_id) = &nlb_subnet.availability_zone_id {
        n.desired.insert("availability_zone_id", Expr::lit(az_id.value.as_str()));
    }
    n.desired.insert("tag:kubernetes.io/role/internal-elb", Expr::lit("1"));
    n.desired.insert("tag:kubernetes.io/cluster", Expr::lit(format!("{}=shared", provider.cluster.name.value)));

    // An adopted subnet keeps whatever routing it has; lint and plan check it is private.
    if creates_subnet {
        let n = b.node(route_table.clone(), NodeKind::NlbRouteTable, aws.clone(), Identity::Owned);
        n.desired.insert("vpc_id", Expr::lit(provider.vpc.id.value.as_str()));
        n.desired.insert("routes", Expr::Lit(Value::List(Vec::new())));
        let n = b.node(association.clone(), NodeKind::NlbRouteTableAssociation, aws.clone(), Identity::Owned);
        n.desired.insert("subnet_id", reference(&subnet, "id"));
        n.desired.insert("route_table_id", reference(&route_table, "id"));
    }

    let n = b.node(edge_compute.clone(), NodeKind::EdgeComputeSetting, portainer.clone(), Identity::Singleton);
    n.desired.insert("EnableEdgeComputeFeatures", Expr::lit(true));
    n.desired.insert("api_key", Expr::Lit(secret(&provider.portainer.api_key.value)));

    let n = b.node(
        restart.clone(),
        NodeKind::PortainerRestart,
        kube.clone(),
        Identity::Named { name: provider.portainer.deployment().to_string() },
    );
    n.desired.insert("namespace", Expr::lit(provider.portainer.namespace()));
    // Settings take effect on restart (seed trap 4): restart after the setting changed.
    n.desired.insert("after_settings_revision", reference(&edge_compute, "revision"));

    let n = b.node(
        service.clone(),
        NodeKind::TunnelService,
        kube.clone(),
        Identity::Named { name: provider.tunnel_service_name().to_string() },
    );
    n.desired.insert("namespace", Expr::lit(provider.tunnel_service_namespace()));
    n.desired.insert("port", Expr::lit(provider.listener_port()));
    n.desired.insert(
        "target_port",
        match provider.portainer.tunnel_port() {
            TunnelPort::Port(port) => Expr::lit(port),
            // `auto`: the port in the deployment's --tunnel-port, as the restart node observes it.
            TunnelPort::Auto => reference(&restart, "tunnel_port"),
        },
    );
    n.desired.insert("annotation:aws-load-balancer-type", Expr::lit("external"));
    n.desired.insert("annotation:aws-load-balancer-nlb-target-type", Expr::lit("ip"));
    n.desired.insert("annotation:aws-load-balancer-scheme", Expr::lit("internal"));
    n.desired.insert("annotation:aws-load-balancer-subnets", reference(&subnet, "id"));
    if let Some(annotations) = provider.tunnel_service.as_ref().and_then(|s| s.annotations.as_ref()) {
        let extra: BTreeMap<String, Value> =
            annotations.0.iter().map(|(k, v)| (k.value.clone(), Value::Str(v.value.clone()))).collect();
        n.desired.insert("extra_annotations", Expr::Lit(Value::Map(extra)));
    }

    let n = b.node(nlb.clone(), NodeKind::Nlb, aws.clone(), Identity::ReadOnly);
    n.desired.insert("hostname", reference(&service, "load_balancer_hostname"));
    n.desired.insert("scheme", Expr::lit("internal"));
    // The controller can only build an internal NLB once its role allows it (seed trap 1) and
    // the subnet is private (reachability discovery).
    n.desired.insert("controller_policy_version", reference(&policy, "default_version"));
    if creates_subnet {
        n.desired.insert("subnet_route_table", reference(&association, "route_table_id"));
    }

    // The rule is always edgeplan's own; a group named in the spec is where it goes.
    let sg_identity = Identity::Owned;
    let n = b.node(sg_rule.clone(), NodeKind::ClusterSgRule, aws.clone(), sg_identity);
    n.desired.insert("cluster_name", Expr::lit(provider.cluster.name.value.as_str()));
    if let Some(group) = provider.cluster_security_group.as_ref().and_then(|g| g.id.as_ref()) {
        n.desired.insert("security_group_id", Expr::lit(group.value.as_str()));
    }
    n.desired.insert("protocol", Expr::lit("tcp"));
    n.desired.insert("port", reference(&service, "target_port"));
    n.desired.insert("source_cidr", reference(&subnet, "cidr_block"));

    let n = b.node(endpoint_service.clone(), NodeKind::EndpointService, aws.clone(), Identity::Owned);
    n.desired.insert("network_load_balancer_arn", reference(&nlb, "arn"));
    n.desired.insert("acceptance_required", Expr::lit(provider.acceptance_required()));

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
    let n = b.node(permissions.clone(), NodeKind::EndpointServicePermissions, aws, Identity::Owned);
    n.desired.insert("service_id", reference(&endpoint_service, "service_id"));
    n.desired.insert("allowed_principals", Expr::lit(principals));

    b.nodes
}

fn consumer_nodes(spec: &Spec, consumer: &Consumer) -> Vec<Node> {
    let provider = &spec.spec.provider;
    let name = consumer.name.value.as_str();
    let aws = aws_scope(&consumer.aws);
    let provider_aws = aws_scope(&provider.aws);
    let kube = Scope::Kubernetes { context: consumer.cluster.kube_context.value.clone() };
    let portainer = Scope::Portainer { url: provider.portainer.url.value.clone() };
    let mut b = Builder { nodes: Vec::new() };

    let endpoint_service = Address::provider("endpoint_service");
    let permissions = Address::provider("endpoint_service_permissions");
    let vpce_sg = Address::consumer(name, "vpce_security_group");
    let vpce = Address::consumer(name, "vpce");
    let acceptance = Address::consumer(name, "connection_acceptance");
    let environment = Address::consumer(name, "environment");
    let agent_key = Address::consumer(name, "agent_key");
    let agent = Address::consumer(name, "agent");

    let group = &consumer.endpoint_security_group;
    let sg_identity = match &group.id {
        Some(id) => Identity::Adopted { id: id.value.clone() },
        None => Identity::Owned,
    };
    let n = b.node(vpce_sg.clone(), NodeKind::VpceSecurityGroup, aws.clone(), sg_identity);
    n.desired.insert("vpc_id", Expr::lit(consumer.vpc.id.value.as_str()));
    n.desired.insert("ingress_port", Expr::lit(provider.listener_port()));
    if let Some(create) = &group.create {
        let cidrs: Vec<String> = create.allowed_cidrs.iter().map(|c| c.value.clone()).collect();
        n.desired.insert("ingress_cidrs", Expr::lit(cidrs));
    }

    let n = b.node(vpce.clone(), NodeKind::Vpce, aws, Identity::Owned);
    n.desired.insert("vpc_id", Expr::lit(consumer.vpc.id.value.as_str()));
    n.desired.insert("vpc_endpoint_type", Expr::lit("Interface"));
    n.desired.insert("service_name", reference(&endpoint_service, "service_name"));
    n.desired.insert("allowed_principals", reference(&permissions, "allowed_principals"));
    n.desired.insert("security_group_id", reference(&vpce_sg, "id"));
    let subnets: Vec<String> = consumer.subnets.iter().map(|s| s.id.value.clone()).collect();
    n.desired.insert("subnet_ids", Expr::lit(subnets));

    // Acceptance is a call on the provider's account, about the consumer's endpoint.
    let n = b.node(acceptance.clone(), NodeKind::ConnectionAcceptance, provider_aws, Identity::Owned);
    n.desired.insert("service_id", reference(&endpoint_service, "service_id"));
    n.desired.insert("vpc_endpoint_id", reference(&vpce, "id"));
    n.desired.insert("state", Expr::lit("available"));

    let env = &consumer.environment;
    let env_identity = match (&env.id, &env.name) {
        (Some(id), _) => Identity::Adopted { id: id.value.to_string() },
        (None, Some(env_name)) => Identity::Named { name: env_name.value.clone() },
        (None, None) => Identity::Named { name: name.to_string() },
    };
    let n = b.node(environment.clone(), NodeKind::PortainerEnvironment, portainer, env_identity);
    n.desired.insert("type", Expr::lit("edge-agent-kubernetes"));
    n.desired.insert("url", Expr::lit(provider.portainer.url.value.as_str()));
    n.desired.insert("create_if_missing", Expr::lit(env.create_if_missing()));

    let n = b.node(agent_key.clone(), NodeKind::AgentKey, Scope::Local, Identity::Owned);
    n.desired.insert("portainer_key", reference(&environment, "edge_key"));
    n.desired.insert("tunnel_host", reference(&vpce, "dns_name"));
    n.desired.insert("tunnel_port", Expr::lit(provider.listener_port()));

    let agent_spec = &consumer.agent;
    let n = b.node(agent.clone(), NodeKind::AgentObjects, kube, Identity::Owned);
    n.desired.insert("namespace", Expr::lit(agent_spec.namespace()));
    n.desired.insert("image", Expr::lit(format!("portainer/agent:{}", agent_spec.image_tag.value)));
    n.desired.insert("EDGE_KEY", reference(&agent_key, "key"));
    n.desired.insert("EDGE_ID", reference(&environment, "edge_id"));
    n.desired.insert("EDGE_INSECURE_POLL", Expr::lit(agent_spec.insecure_poll.as_ref().is_some_and(|p| p.value)));
    if let Some(secret_ref) = &agent_spec.agent_secret {
        n.desired.insert("AGENT_SECRET", Expr::Lit(secret(&secret_ref.value)));
    }
    if let Some(env_vars) = &agent_spec.env {
        let extra: BTreeMap<String, Value> =
            env_vars.iter().map(|v| (v.name.value.clone(), Value::Str(v.value.value.value.clone()))).collect();
        n.desired.insert("extra_env", Expr::Lit(Value::Map(extra)));
    }
    // The agent can only dial once its endpoint connection is accepted.
    n.desired.insert("connection_state", reference(&acceptance, "state"));

    b.nodes
}
