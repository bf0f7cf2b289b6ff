//! Nodes of the resource graph.

use std::collections::BTreeMap;
use std::fmt;

use crate::Value;

/// A node's stable address: `provider.<name>` or `consumer.<consumer>.<name>`. It is printed
/// in plans, tagged onto AWS resources and labelled onto Kubernetes objects, so it never
/// depends on ordering or on IDs AWS assigns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(String);

impl Address {
    pub fn provider(name: &str) -> Address {
        Address(format!("provider.{name}"))
    }

    pub fn consumer(consumer: &str, name: &str) -> Address {
        Address(format!("consumer.{consumer}.{name}"))
    }

    /// An address from its full text (`consumer.prod.vpce`), e.g. to name a sibling node.
    pub fn from_text(full: &str) -> Address {
        Address(full.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a node is. The string form is stable: it appears in plan JSON (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// The LB controller role's managed policy, at the version the spec enforces.
    LbControllerPolicy,
    NlbSubnet,
    /// The NLB subnet's own route table: local routes only, so the subnet is private.
    NlbRouteTable,
    NlbRouteTableAssociation,
    /// Portainer's `EnableEdgeComputeFeatures` setting.
    EdgeComputeSetting,
    /// A rollout restart of the Portainer deployment, so settings take effect.
    PortainerRestart,
    /// The LoadBalancer Service the LB controller turns into the internal NLB.
    TunnelService,
    /// The NLB itself: read-only, created by the controller; edgeplan waits for it.
    Nlb,
    /// Ingress on the Portainer pods' security group: NLB subnet → tunnel port.
    ClusterSgRule,
    EndpointService,
    EndpointServicePermissions,
    VpceSecurityGroup,
    Vpce,
    ConnectionAcceptance,
    PortainerEnvironment,
    /// The consumer's EDGE_KEY: Portainer's key with field 2 pointing at the VPC endpoint.
    AgentKey,
    /// The agent's Kubernetes objects (namespace, service account, binding, Secret, ConfigMap,
    /// Service, Deployment), applied server-side.
    AgentObjects,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::LbControllerPolicy => "aws_iam_policy",
            NodeKind::NlbSubnet => "aws_subnet",
            NodeKind::NlbRouteTable => "aws_route_table",
            NodeKind::NlbRouteTableAssociation => "aws_route_table_association",
            NodeKind::EdgeComputeSetting => "portainer_settings",
            NodeKind::PortainerRestart => "kubernetes_rollout_restart",
            NodeKind::TunnelService => "kubernetes_service",
            NodeKind::Nlb => "aws_lb",
            NodeKind::ClusterSgRule => "aws_security_group_rule",
            NodeKind::EndpointService => "aws_vpc_endpoint_service",
            NodeKind::EndpointServicePermissions => "aws_vpc_endpoint_service_permissions",
            NodeKind::VpceSecurityGroup => "aws_security_group",
            NodeKind::Vpce => "aws_vpc_endpoint",
            NodeKind::ConnectionAcceptance => "aws_vpc_endpoint_connection_accepter",
            NodeKind::PortainerEnvironment => "portainer_environment",
            NodeKind::AgentKey => "portainer_edge_key",
            NodeKind::AgentObjects => "kubernetes_edge_agent",
        }
    }
}

impl NodeKind {
    /// The outputs other nodes may reference. A reference to anything else is a bug in the
    /// compiler, caught by a test over every example spec.
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            NodeKind::LbControllerPolicy => &["policy_arn", "default_version"],
            NodeKind::NlbSubnet => &["id", "cidr_block", "availability_zone_id"],
            NodeKind::NlbRouteTable => &["id"],
            NodeKind::NlbRouteTableAssociation => &["id", "route_table_id"],
            NodeKind::EdgeComputeSetting => &["revision"],
            NodeKind::PortainerRestart => &["tunnel_port", "revision"],
            NodeKind::TunnelService => &["load_balancer_hostname", "target_port"],
            NodeKind::Nlb => &["arn", "dns_name", "availability_zone_ids"],
            NodeKind::ClusterSgRule => &["rule_id"],
            NodeKind::EndpointService => &["service_id", "service_name"],
            NodeKind::EndpointServicePermissions => &["allowed_principals"],
            NodeKind::VpceSecurityGroup => &["id"],
            NodeKind::Vpce => &["id", "dns_name"],
            NodeKind::ConnectionAcceptance => &["state"],
            NodeKind::PortainerEnvironment => &["id", "edge_id", "edge_key"],
            NodeKind::AgentKey => &["key"],
            NodeKind::AgentObjects => &["rollout"],
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API endpoint that serves a node. Backends batch observations by scope (one
/// DescribeSubnets per account and region, one LIST per cluster and kind, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Aws {
        account: String,
        region: String,
        profile: Option<String>,
    },
    Kubernetes {
        context: String,
    },
    Portainer {
        url: String,
    },
    /// Computed locally from other nodes' outputs (the agent key).
    Local,
}

/// How edgeplan finds a node's live object again, with no state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Created and owned by edgeplan: found by its `edgeplan.dev/stack` and
    /// `edgeplan.dev/address` tags (AWS) or labels and field manager (Kubernetes).
    Owned,
    /// Named by ID in the spec: adopted, never deleted.
    Adopted { id: String },
    /// Found by a natural key (a Portainer environment name, a deployment name): may be
    /// created if missing, never deleted unless edgeplan created it.
    Named { name: String },
    /// Exists once per scope and is only ever updated (Portainer settings, a rollout).
    Singleton,
    /// Created by someone else (the LB controller): read, waited for, never written.
    ReadOnly,
}

/// An output of another node, e.g. `provider.endpoint_service` → `service_name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub node: Address,
    pub output: &'static str,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.output)
    }
}

/// A desired attribute: a literal, or another node's output ("known after apply" until that
/// node exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Lit(Value),
    Ref(Reference),
}

impl Expr {
    pub fn lit(value: impl Into<Value>) -> Expr {
        Expr::Lit(value.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub address: Address,
    pub kind: NodeKind,
    pub scope: Scope,
    pub identity: Identity,
    pub desired: BTreeMap<&'static str, Expr>,
}

impl Node {
    /// Every other node this one reads an output of: its dependencies, with the attribute
    /// that needs each (the edge's "why").
    pub fn references(&self) -> impl Iterator<Item = (&'static str, &Reference)> {
        self.desired.iter().filter_map(|(attribute, expr)| match expr {
            Expr::Ref(reference) => Some((*attribute, reference)),
            Expr::Lit(_) => None,
        })
    }
}
