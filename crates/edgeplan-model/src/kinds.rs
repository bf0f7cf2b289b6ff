//! Node kinds, declared in one place: for each kind, the scope that serves it, its desired
//! attributes (and how each is compared), what a backend reports, what the engine derives,
//! its outputs and the waits that follow it. The compiler, `decide`, the live rules, the
//! executor's waits, verify and every backend read these declarations; none of them spells an
//! attribute name of its own.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::attr::{self, Attr, *};

/// What a node is. The type name is stable: it appears in plan JSON (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// The LB controller role's managed policy, at the version the spec enforces.
    LbControllerPolicy,
    /// The provider VPC, named by ID: read, never written. What a plan needs before it
    /// creates anything there (its CIDR, its subnets, its main route table, the region's zones).
    Vpc,
    NlbSubnet,
    /// The NLB subnet's own route table: local routes only, so the subnet is private.
    NlbRouteTable,
    NlbRouteTableAssociation,
    /// Portainer's `EnableEdgeComputeFeatures` setting.
    EdgeComputeSetting,
    /// Portainer's Deployment restarted with the current settings (a checksum on its pod
    /// template, as Helm's `checksum/config`).
    PortainerRestart,
    /// The LoadBalancer Service the LB controller turns into the internal NLB.
    TunnelService,
    /// The NLB itself: created by the controller; edgeplan reads it and waits for it.
    Nlb,
    /// Ingress on the Portainer pods' security group: NLB subnet → tunnel port.
    ClusterSgRule,
    EndpointService,
    EndpointServicePermissions,
    /// The consumer's subnets, as the spec names them: read, never written.
    ConsumerSubnets,
    VpceSecurityGroup,
    Vpce,
    ConnectionAcceptance,
    PortainerEnvironment,
    /// The consumer's EDGE_KEY: Portainer's key with field 2 pointing at the VPC endpoint,
    /// computed by the engine (no API holds it until the agent's Secret does).
    AgentKey,
    /// The agent's Kubernetes objects (namespace, service account, binding, headless Service,
    /// ConfigMap, Secret, Deployment), rendered by the engine and applied server-side.
    AgentObjects,
}

impl NodeKind {
    /// Every kind, in an order that is a valid dependency order of the kinds (the compiler
    /// never makes an earlier kind reference a later one). Pruned objects, which have no spec
    /// to take references from, are ordered by it.
    pub const ALL: [NodeKind; 19] = [
        NodeKind::LbControllerPolicy,
        NodeKind::Vpc,
        NodeKind::NlbSubnet,
        NodeKind::NlbRouteTable,
        NodeKind::NlbRouteTableAssociation,
        NodeKind::EdgeComputeSetting,
        NodeKind::PortainerRestart,
        NodeKind::TunnelService,
        NodeKind::Nlb,
        NodeKind::ClusterSgRule,
        NodeKind::EndpointService,
        NodeKind::EndpointServicePermissions,
        NodeKind::ConsumerSubnets,
        NodeKind::VpceSecurityGroup,
        NodeKind::Vpce,
        NodeKind::ConnectionAcceptance,
        NodeKind::PortainerEnvironment,
        NodeKind::AgentKey,
        NodeKind::AgentObjects,
    ];

    pub fn decl(self) -> &'static KindDecl {
        declaration(self)
    }

    /// The Terraform-style type name (`aws_subnet`).
    pub fn as_str(self) -> &'static str {
        self.decl().type_name
    }

    /// The last segment of this kind's addresses (`provider.nlb_subnet`, `consumer.x.vpce`).
    pub fn address_name(self) -> &'static str {
        self.decl().address_name
    }

    pub fn from_address_name(name: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.address_name() == name)
    }

    pub fn scope(self) -> ScopeKind {
        self.decl().scope
    }

    /// Position in [`NodeKind::ALL`].
    pub fn rank(self) -> usize {
        NodeKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    pub fn outputs(self) -> &'static [Attr] {
        self.decl().outputs
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of API serves a kind. A backend serves exactly one scope of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScopeKind {
    /// An AWS account and region.
    Aws,
    /// A kube context.
    Kubernetes,
    /// A Portainer URL.
    Portainer,
    /// Computed by the engine from other nodes' values; no backend.
    Engine,
}

/// How a desired attribute is compared with the observed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Equal values.
    Exact,
    /// JSON documents, normalized (an IAM policy pretty-printed in a file and compact in AWS).
    Json,
    /// Lists as sets: AWS returns principals, CIDRs and subnets in its own order.
    Set,
    /// Maps: every desired entry is present with the same value; others are someone else's
    /// (tags the controller adds, annotations of other tools).
    Subset,
}

/// What an attribute is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Compared with live state; a difference is an in-place update.
    Compared,
    /// Compared; a difference forces replacement.
    Immutable,
    /// Handed to the backend, never compared (how to create, not what exists).
    Input,
    /// Only orders the node after the node it references; never compared, never sent.
    Ordering,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrDecl {
    pub attr: Attr,
    pub role: Role,
    pub compare: Compare,
    /// Shown only as a reference or a fingerprint, in every output.
    pub sensitive: bool,
}

const fn compared(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Compared, compare: Compare::Exact, sensitive: false }
}

const fn immutable(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Immutable, compare: Compare::Exact, sensitive: false }
}

const fn input(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Input, compare: Compare::Exact, sensitive: false }
}

const fn ordering(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Ordering, compare: Compare::Exact, sensitive: false }
}

const fn as_set(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Compared, compare: Compare::Set, sensitive: false }
}

const fn as_subset(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Compared, compare: Compare::Subset, sensitive: false }
}

const fn secret(attr: Attr) -> AttrDecl {
    AttrDecl { attr, role: Role::Compared, compare: Compare::Exact, sensitive: true }
}

/// One kind's contract.
#[derive(Debug)]
pub struct KindDecl {
    pub kind: NodeKind,
    pub type_name: &'static str,
    pub address_name: &'static str,
    pub scope: ScopeKind,
    /// What the compiler may set, and how each is used.
    pub desired: &'static [AttrDecl],
    /// Desired attributes a backend needs to find the object at all. While one is not known
    /// (it references an object that does not exist yet), the object cannot exist either and
    /// is not looked up.
    pub lookup: &'static [Attr],
    /// What a backend reports beyond the desired attributes.
    pub observed: &'static [Attr],
    /// Facts the engine derives from what was observed (never a backend).
    pub derived: &'static [Attr],
    /// What other nodes may reference.
    pub outputs: &'static [Attr],
    /// Outputs an in-place update changes even when no field of the same name drifts (a new
    /// policy version, the checksum of changed settings, a re-pointed key).
    pub moves_on_update: &'static [Attr],
    /// What the executor waits for after the node, in order.
    pub waits: &'static [(WaitKind, Subject)],
    /// Sensitive attributes a backend reports (secret values, compared by fingerprint).
    pub sensitive_observed: &'static [Attr],
}

impl KindDecl {
    pub fn desired_decl(&self, attr: Attr) -> Option<&'static AttrDecl> {
        self.desired.iter().find(|d| d.attr == attr)
    }

    pub fn is_sensitive(&self, attr: Attr) -> bool {
        self.desired_decl(attr).is_some_and(|d| d.sensitive) || self.sensitive_observed.contains(&attr)
    }

    /// Every attribute a live object of this kind may carry.
    pub fn known(&self, attr: Attr) -> bool {
        attr == attr::ID
            || self.desired.iter().any(|d| d.attr == attr)
            || self.observed.contains(&attr)
            || self.derived.contains(&attr)
    }
}

/// One kind of wait. The names are stable: `--timeout KIND=DURATION` uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaitKind {
    /// The controller's NLB exists and is `active`.
    NlbActive,
    /// Every NLB target passes its health checks.
    TargetsHealthy,
    /// The provider accepted the consumer's VPC endpoint connection.
    ConnectionAccepted,
    /// The VPC endpoint is `available`.
    VpceAvailable,
    /// A Deployment's new pods are ready.
    RolloutComplete,
    /// The agent's log says its tunnel is up (`client: Connected`).
    AgentConnected,
    /// Portainer sees the agent check in (Type 7, Heartbeat, LastCheckInDate).
    AgentCheckedIn,
    /// An output a node references is not there yet, though its node succeeded: someone fills
    /// it in later (the LB controller sets the Service's `status.loadBalancer` once it has built
    /// the NLB). Declared by no kind: the executor waits for it before any node that needs it.
    UpstreamOutput,
    /// An object someone else deletes is gone (the load balancer the controller deletes once
    /// its Service is, before the subnet it sits in can go). Declared by no kind: the executor
    /// waits for it where a replacement recreates such an object.
    Gone,
}

impl WaitKind {
    pub const ALL: [WaitKind; 9] = [
        WaitKind::NlbActive,
        WaitKind::TargetsHealthy,
        WaitKind::ConnectionAccepted,
        WaitKind::VpceAvailable,
        WaitKind::RolloutComplete,
        WaitKind::AgentConnected,
        WaitKind::AgentCheckedIn,
        WaitKind::UpstreamOutput,
        WaitKind::Gone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WaitKind::NlbActive => "nlb-active",
            WaitKind::TargetsHealthy => "targets-healthy",
            WaitKind::ConnectionAccepted => "connection-accepted",
            WaitKind::VpceAvailable => "vpce-available",
            WaitKind::RolloutComplete => "rollout-complete",
            WaitKind::AgentConnected => "agent-connected",
            WaitKind::AgentCheckedIn => "agent-checked-in",
            WaitKind::UpstreamOutput => "upstream-output",
            WaitKind::Gone => "gone",
        }
    }

    /// What the progress line says the node is waiting for.
    pub fn describe(self) -> &'static str {
        match self {
            WaitKind::NlbActive => "load balancer active",
            WaitKind::TargetsHealthy => "targets healthy",
            WaitKind::ConnectionAccepted => "connection accepted",
            WaitKind::VpceAvailable => "VPC endpoint available",
            WaitKind::RolloutComplete => "rollout complete",
            WaitKind::AgentConnected => "agent tunnel connected",
            WaitKind::AgentCheckedIn => "agent checked in",
            WaitKind::UpstreamOutput => "upstream output",
            WaitKind::Gone => "gone",
        }
    }

    /// Default timeouts: a few times what AWS and Kubernetes usually take (NLB ~3 min,
    /// health ~90 s, endpoint ~2 min, rollout ~30 s). An upstream output waits on a controller's
    /// retries, whose backoff grows to 1000 s (controller-runtime's default).
    pub fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            WaitKind::UpstreamOutput => 20 * 60,
            WaitKind::NlbActive | WaitKind::TargetsHealthy | WaitKind::VpceAvailable | WaitKind::Gone => 10 * 60,
            WaitKind::ConnectionAccepted
            | WaitKind::RolloutComplete
            | WaitKind::AgentConnected
            | WaitKind::AgentCheckedIn => 5 * 60,
        })
    }
}

impl fmt::Display for WaitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WaitKind {
    type Err = String;

    fn from_str(text: &str) -> Result<WaitKind, String> {
        WaitKind::ALL.into_iter().find(|k| k.name() == text).ok_or_else(|| {
            let names: Vec<&str> = WaitKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown wait `{text}`; expected one of {}", names.join(", "))
        })
    }
}

/// Which node a wait observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Itself,
    /// The node of this kind next to it (same `provider.` or `consumer.NAME.` prefix): target
    /// health is the NLB's to report, check-ins the environment's.
    Sibling(NodeKind),
}

fn declaration(kind: NodeKind) -> &'static KindDecl {
    match kind {
        NodeKind::LbControllerPolicy => &LB_CONTROLLER_POLICY,
        NodeKind::Vpc => &VPC,
        NodeKind::NlbSubnet => &NLB_SUBNET,
        NodeKind::NlbRouteTable => &NLB_ROUTE_TABLE,
        NodeKind::NlbRouteTableAssociation => &NLB_ROUTE_TABLE_ASSOCIATION,
        NodeKind::EdgeComputeSetting => &EDGE_COMPUTE_SETTING,
        NodeKind::PortainerRestart => &PORTAINER_RESTART,
        NodeKind::TunnelService => &TUNNEL_SERVICE,
        NodeKind::Nlb => &NLB,
        NodeKind::ClusterSgRule => &CLUSTER_SG_RULE,
        NodeKind::EndpointService => &ENDPOINT_SERVICE,
        NodeKind::EndpointServicePermissions => &ENDPOINT_SERVICE_PERMISSIONS,
        NodeKind::ConsumerSubnets => &CONSUMER_SUBNETS,
        NodeKind::VpceSecurityGroup => &VPCE_SECURITY_GROUP,
        NodeKind::Vpce => &VPCE,
        NodeKind::ConnectionAcceptance => &CONNECTION_ACCEPTANCE,
        NodeKind::PortainerEnvironment => &PORTAINER_ENVIRONMENT,
        NodeKind::AgentKey => &AGENT_KEY,
        NodeKind::AgentObjects => &AGENT_OBJECTS,
    }
}

static LB_CONTROLLER_POLICY: KindDecl = KindDecl {
    kind: NodeKind::LbControllerPolicy,
    type_name: "aws_iam_policy",
    address_name: "lb_controller_policy",
    scope: ScopeKind::Aws,
    desired: &[
        compared(ROLE_NAME),
        AttrDecl { attr: POLICY_DOCUMENT, role: Role::Compared, compare: Compare::Json, sensitive: false },
    ],
    lookup: &[ROLE_NAME],
    observed: &[POLICY_ARN, POLICY_NAME, DEFAULT_VERSION, VERSIONS, ATTACHED_POLICIES],
    derived: &[MISSING_ACTIONS, VERSION_COUNT, OLDEST_NON_DEFAULT_VERSION],
    outputs: &[POLICY_ARN, DEFAULT_VERSION],
    moves_on_update: &[DEFAULT_VERSION],
    waits: &[],
    sensitive_observed: &[],
};

static VPC: KindDecl = KindDecl {
    kind: NodeKind::Vpc,
    type_name: "aws_vpc",
    address_name: "vpc",
    scope: ScopeKind::Aws,
    desired: &[],
    lookup: &[],
    // The main route table is what routes a subnet created in the VPC until it gets its own.
    observed: &[CIDR_BLOCK, ROUTE_TABLE_ID, ROUTES, SUBNETS, AVAILABILITY_ZONES],
    derived: &[ROUTES_TO_IGW, IGW_ROUTE],
    outputs: &[ID, CIDR_BLOCK],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static NLB_SUBNET: KindDecl = KindDecl {
    kind: NodeKind::NlbSubnet,
    type_name: "aws_subnet",
    address_name: "nlb_subnet",
    scope: ScopeKind::Aws,
    desired: &[
        immutable(VPC_ID),
        immutable(CIDR_BLOCK),
        immutable(AVAILABILITY_ZONE),
        immutable(AVAILABILITY_ZONE_ID),
        as_subset(TAGS),
    ],
    lookup: &[],
    observed: &[AVAILABLE_IP_ADDRESS_COUNT, ROUTE_TABLE_ID, ROUTE_TABLE_ASSOCIATION, ROUTES],
    derived: &[ROUTES_TO_IGW, IGW_ROUTE],
    outputs: &[ID, CIDR_BLOCK, AVAILABILITY_ZONE_ID],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static NLB_ROUTE_TABLE: KindDecl = KindDecl {
    kind: NodeKind::NlbRouteTable,
    type_name: "aws_route_table",
    address_name: "nlb_route_table",
    scope: ScopeKind::Aws,
    desired: &[immutable(VPC_ID), as_set(ROUTES)],
    lookup: &[],
    observed: &[MAIN, ASSOCIATIONS],
    derived: &[ROUTES_TO_IGW, IGW_ROUTE],
    outputs: &[ID],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static NLB_ROUTE_TABLE_ASSOCIATION: KindDecl = KindDecl {
    kind: NodeKind::NlbRouteTableAssociation,
    type_name: "aws_route_table_association",
    address_name: "nlb_route_table_association",
    scope: ScopeKind::Aws,
    // An association belongs to one subnet (ReplaceRouteTableAssociation changes its table,
    // never its subnet): a new subnet gets a new association.
    desired: &[immutable(SUBNET_ID), compared(ROUTE_TABLE_ID)],
    lookup: &[SUBNET_ID],
    observed: &[],
    derived: &[],
    outputs: &[ID, ROUTE_TABLE_ID],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static EDGE_COMPUTE_SETTING: KindDecl = KindDecl {
    kind: NodeKind::EdgeComputeSetting,
    type_name: "portainer_settings",
    address_name: "edge_compute",
    scope: ScopeKind::Portainer,
    desired: &[compared(ENABLE_EDGE_COMPUTE)],
    lookup: &[],
    observed: &[CHECKIN_INTERVAL, ENFORCE_EDGE_ID],
    derived: &[SETTINGS_CHECKSUM],
    outputs: &[SETTINGS_CHECKSUM],
    moves_on_update: &[SETTINGS_CHECKSUM],
    waits: &[],
    sensitive_observed: &[],
};

static PORTAINER_RESTART: KindDecl = KindDecl {
    kind: NodeKind::PortainerRestart,
    type_name: "kubernetes_rollout_restart",
    address_name: "portainer_restart",
    scope: ScopeKind::Kubernetes,
    desired: &[
        compared(NAMESPACE),
        // No checksum on the pods: edgeplan cannot tell which settings they run with, so it
        // restarts them once and records it (a resumed apply never loses a restart).
        compared(SETTINGS_CHECKSUM),
    ],
    lookup: &[NAMESPACE],
    observed: &[
        ARGS,
        SELECTOR,
        GENERATION,
        OBSERVED_GENERATION,
        REPLICAS,
        UPDATED_REPLICAS,
        READY_REPLICAS,
        FIELD_MANAGERS,
    ],
    derived: &[TUNNEL_PORT, ROLLOUT_COMPLETE],
    outputs: &[TUNNEL_PORT, SELECTOR],
    moves_on_update: &[],
    waits: &[(WaitKind::RolloutComplete, Subject::Itself)],
    sensitive_observed: &[],
};

static TUNNEL_SERVICE: KindDecl = KindDecl {
    kind: NodeKind::TunnelService,
    type_name: "kubernetes_service",
    address_name: "tunnel_service",
    scope: ScopeKind::Kubernetes,
    desired: &[
        compared(NAMESPACE),
        compared(PORT),
        compared(TARGET_PORT),
        as_subset(ANNOTATIONS),
        // The NLB's subnet cannot change in place: ELBv2 SetSubnets on a Network Load Balancer
        // must keep every subnet already enabled, so a new subnet in the same zone means a new
        // load balancer, which the controller builds only for a new Service.
        immutable(SUBNET_ID),
        as_subset(SELECTOR),
    ],
    lookup: &[NAMESPACE],
    observed: &[
        TYPE,
        LOAD_BALANCER_HOSTNAME,
        LOAD_BALANCER_CLASS,
        FIELD_MANAGERS,
        CONTROLLER_EVENT_REASON,
        CONTROLLER_EVENT,
    ],
    derived: &[],
    outputs: &[LOAD_BALANCER_HOSTNAME, TARGET_PORT],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static NLB: KindDecl = KindDecl {
    kind: NodeKind::Nlb,
    type_name: "aws_lb",
    address_name: "nlb",
    scope: ScopeKind::Aws,
    desired: &[input(HOSTNAME), compared(SCHEME), ordering(CONTROLLER_POLICY_VERSION), ordering(SUBNET_ROUTE_TABLE)],
    lookup: &[HOSTNAME],
    observed: &[
        ARN,
        NAME,
        DNS_NAME,
        STATE,
        VPC_ID,
        SUBNET_IDS,
        AVAILABILITY_ZONE_IDS,
        LISTENERS,
        TARGET_HEALTH,
        ENDPOINT_SERVICE_IDS,
    ],
    derived: &[],
    outputs: &[ARN, DNS_NAME, AVAILABILITY_ZONE_IDS],
    moves_on_update: &[],
    waits: &[(WaitKind::NlbActive, Subject::Itself)],
    sensitive_observed: &[],
};

static CLUSTER_SG_RULE: KindDecl = KindDecl {
    kind: NodeKind::ClusterSgRule,
    type_name: "aws_security_group_rule",
    address_name: "cluster_sg_rule",
    scope: ScopeKind::Aws,
    desired: &[
        input(CLUSTER_NAME),
        immutable(SECURITY_GROUP_ID),
        immutable(PROTOCOL),
        immutable(PORT),
        immutable(SOURCE_CIDR),
    ],
    lookup: &[PORT, SOURCE_CIDR],
    observed: &[RULE_ID, DESCRIPTION],
    derived: &[],
    outputs: &[RULE_ID],
    moves_on_update: &[],
    // The rule is what admits the health checks; the NLB reports their result.
    waits: &[(WaitKind::TargetsHealthy, Subject::Sibling(NodeKind::Nlb))],
    sensitive_observed: &[],
};

static ENDPOINT_SERVICE: KindDecl = KindDecl {
    kind: NodeKind::EndpointService,
    type_name: "aws_vpc_endpoint_service",
    address_name: "endpoint_service",
    scope: ScopeKind::Aws,
    // A load balancer cannot be deleted while an endpoint service uses it, and a service keeps
    // at least one: a new NLB means a new endpoint service (and new endpoints for it).
    desired: &[immutable(NETWORK_LOAD_BALANCER_ARN), compared(ACCEPTANCE_REQUIRED)],
    lookup: &[],
    observed: &[SERVICE_ID, SERVICE_NAME, STATE, AVAILABILITY_ZONE_IDS],
    derived: &[],
    outputs: &[SERVICE_ID, SERVICE_NAME],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static ENDPOINT_SERVICE_PERMISSIONS: KindDecl = KindDecl {
    kind: NodeKind::EndpointServicePermissions,
    type_name: "aws_vpc_endpoint_service_permissions",
    address_name: "endpoint_service_permissions",
    scope: ScopeKind::Aws,
    desired: &[immutable(SERVICE_ID), as_set(ALLOWED_PRINCIPALS)],
    lookup: &[SERVICE_ID],
    observed: &[],
    derived: &[],
    outputs: &[ALLOWED_PRINCIPALS],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static CONSUMER_SUBNETS: KindDecl = KindDecl {
    kind: NodeKind::ConsumerSubnets,
    type_name: "aws_subnets",
    address_name: "subnets",
    scope: ScopeKind::Aws,
    desired: &[as_set(SUBNET_IDS)],
    lookup: &[SUBNET_IDS],
    observed: &[VPC_IDS, AVAILABILITY_ZONE_IDS],
    derived: &[],
    outputs: &[SUBNET_IDS, AVAILABILITY_ZONE_IDS],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static VPCE_SECURITY_GROUP: KindDecl = KindDecl {
    kind: NodeKind::VpceSecurityGroup,
    type_name: "aws_security_group",
    address_name: "vpce_security_group",
    scope: ScopeKind::Aws,
    desired: &[immutable(VPC_ID), compared(INGRESS_PORT), as_set(INGRESS_CIDRS)],
    lookup: &[],
    // What verify judges the link by: every rule as it is, and where the agents come from.
    observed: &[NAME, INGRESS_RULES, VPC_CIDR_BLOCK],
    derived: &[],
    outputs: &[ID],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static VPCE: KindDecl = KindDecl {
    kind: NodeKind::Vpce,
    type_name: "aws_vpc_endpoint",
    address_name: "vpce",
    scope: ScopeKind::Aws,
    desired: &[
        immutable(VPC_ID),
        immutable(VPC_ENDPOINT_TYPE),
        immutable(SERVICE_NAME),
        compared(SECURITY_GROUP_ID),
        as_set(SUBNET_IDS),
        ordering(ALLOWED_PRINCIPALS),
        ordering(SUBNET_AVAILABILITY_ZONE_IDS),
    ],
    lookup: &[],
    observed: &[STATE, DNS_NAME],
    derived: &[],
    outputs: &[ID, DNS_NAME],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[],
};

static CONNECTION_ACCEPTANCE: KindDecl = KindDecl {
    kind: NodeKind::ConnectionAcceptance,
    type_name: "aws_vpc_endpoint_connection_accepter",
    address_name: "connection_acceptance",
    scope: ScopeKind::Aws,
    // An acceptance is of one endpoint's connection to one service.
    desired: &[immutable(SERVICE_ID), immutable(VPC_ENDPOINT_ID), compared(ACCEPTED)],
    lookup: &[SERVICE_ID, VPC_ENDPOINT_ID],
    observed: &[STATE, VPC_ENDPOINT_OWNER],
    derived: &[ACCEPTED],
    outputs: &[STATE],
    moves_on_update: &[],
    waits: &[(WaitKind::ConnectionAccepted, Subject::Itself), (WaitKind::VpceAvailable, Subject::Itself)],
    sensitive_observed: &[],
};

static PORTAINER_ENVIRONMENT: KindDecl = KindDecl {
    kind: NodeKind::PortainerEnvironment,
    type_name: "portainer_environment",
    address_name: "environment",
    scope: ScopeKind::Portainer,
    // The name is how a named environment is found and what a create calls it: shown, not compared.
    desired: &[compared(TYPE), compared(URL), input(CREATE_IF_MISSING), input(NAME)],
    lookup: &[],
    observed: &[
        NAME,
        TYPE_ID,
        EDGE_ID,
        EDGE_KEY,
        LAST_CHECK_IN_DATE,
        HEARTBEAT,
        USER_TRUSTED,
        TAG_IDS,
        CHECKIN_INTERVAL,
    ],
    derived: &[
        TYPE,
        KEY_PRESENT,
        KEY_VALID,
        KEY_AGENT_ERROR,
        KEY_CANONICAL,
        KEY_TUNNEL,
        KEY_ENDPOINT_ID,
        AGENT_EDGE_ID,
    ],
    outputs: &[ID, AGENT_EDGE_ID, EDGE_KEY],
    moves_on_update: &[],
    waits: &[],
    sensitive_observed: &[EDGE_KEY],
};

static AGENT_KEY: KindDecl = KindDecl {
    kind: NodeKind::AgentKey,
    type_name: "portainer_edge_key",
    address_name: "agent_key",
    scope: ScopeKind::Engine,
    desired: &[secret(PORTAINER_KEY), compared(TUNNEL_HOST), compared(TUNNEL_PORT)],
    lookup: &[PORTAINER_KEY, TUNNEL_HOST, TUNNEL_PORT],
    observed: &[KEY, KEY_TUNNEL, KEY_ENDPOINT_ID],
    derived: &[],
    outputs: &[KEY],
    moves_on_update: &[KEY],
    waits: &[],
    sensitive_observed: &[KEY],
};

static AGENT_OBJECTS: KindDecl = KindDecl {
    kind: NodeKind::AgentObjects,
    type_name: "kubernetes_edge_agent",
    address_name: "agent",
    scope: ScopeKind::Kubernetes,
    desired: &[
        compared(NAMESPACE),
        compared(IMAGE),
        secret(AGENT_EDGE_KEY),
        compared(AGENT_EDGE_ID),
        compared(EDGE_INSECURE_POLL),
        secret(AGENT_SECRET),
        as_subset(EXTRA_ENV),
        ordering(CONNECTION_STATE),
    ],
    lookup: &[NAMESPACE],
    observed: &[
        OBJECTS,
        FIELD_MANAGERS,
        GENERATION,
        OBSERVED_GENERATION,
        REPLICAS,
        UPDATED_REPLICAS,
        READY_REPLICAS,
        LOGS,
    ],
    derived: &[
        ROLLOUT_COMPLETE,
        KEY_PRESENT,
        KEY_VALID,
        KEY_AGENT_ERROR,
        KEY_CANONICAL,
        KEY_TUNNEL,
        KEY_ENDPOINT_ID,
        AGENT_STATE,
        AGENT_MESSAGE,
    ],
    outputs: &[],
    moves_on_update: &[],
    waits: &[
        (WaitKind::RolloutComplete, Subject::Itself),
        (WaitKind::AgentConnected, Subject::Itself),
        (WaitKind::AgentCheckedIn, Subject::Sibling(NodeKind::PortainerEnvironment)),
    ],
    sensitive_observed: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_declared_once_with_unique_names() {
        let mut types: Vec<&str> = NodeKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut names: Vec<&str> = NodeKind::ALL.iter().map(|k| k.address_name()).collect();
        types.sort_unstable();
        names.sort_unstable();
        types.dedup();
        names.dedup();
        assert_eq!(types.len(), NodeKind::ALL.len());
        assert_eq!(names.len(), NodeKind::ALL.len());
        for kind in NodeKind::ALL {
            assert_eq!(kind.decl().kind, kind);
            assert_eq!(NodeKind::from_address_name(kind.address_name()), Some(kind));
        }
    }

    #[test]
    fn outputs_and_lookups_are_attributes_of_the_kind() {
        for kind in NodeKind::ALL {
            let decl = kind.decl();
            for output in decl.outputs {
                assert!(decl.known(*output), "{kind}: output {output} is not an attribute of the kind");
            }
            for lookup in decl.lookup {
                assert!(decl.desired_decl(*lookup).is_some(), "{kind}: lookup {lookup} is not desired");
            }
        }
    }

    #[test]
    fn wait_names_round_trip() {
        for kind in WaitKind::ALL {
            assert_eq!(kind.name().parse::<WaitKind>(), Ok(kind));
        }
        assert!("nlb".parse::<WaitKind>().unwrap_err().contains("nlb-active"));
    }
}
