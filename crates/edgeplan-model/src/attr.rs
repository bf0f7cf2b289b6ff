//! Attribute names: the one vocabulary desired state, observed state, outputs, rules, waits
//! and verify share. Every name is declared here once; [`crate::kinds`] says which kind uses
//! which, and a test keeps string literals of these names out of the engine and backends.

use std::fmt;

/// An attribute's name. Only the constants below exist: backends, rules and waits cannot
/// invent one, so a typo is a compile error rather than a silent "unknown".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attr(&'static str);

impl Attr {
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The declared attribute with this name (saved plans and world files store names).
    pub fn parse(name: &str) -> Option<Attr> {
        ALL.iter().copied().find(|a| a.0 == name)
    }
}

impl fmt::Debug for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Keys inside structured attribute values (a route, a listener, a target's health), shared by
/// the backends that report them and the engine that reads them.
pub mod field {
    pub const DESTINATION: &str = "destination";
    pub const TARGET: &str = "target";
    pub const PORT: &str = "port";
    pub const PROTOCOL: &str = "protocol";
    pub const TARGET_PORT: &str = "target_port";
    pub const STATE: &str = "state";
    pub const REASON: &str = "reason";
    pub const DESCRIPTION: &str = "description";
    /// A security group rule's port range and IPv4 source (`SecurityGroupRule` in EC2's words).
    pub const FROM_PORT: &str = "from_port";
    pub const TO_PORT: &str = "to_port";
    pub const CIDR_IPV4: &str = "cidr_ipv4";
    pub const ID: &str = "id";
    pub const NAME: &str = "name";
    pub const CIDR: &str = "cidr";
    pub const AVAILABILITY_ZONE: &str = "availability_zone";
    pub const AVAILABILITY_ZONE_ID: &str = "availability_zone_id";
}

macro_rules! attrs {
    ($( $(#[$doc:meta])* $konst:ident = $name:literal; )*) => {
        $( $(#[$doc])* pub const $konst: Attr = Attr($name); )*
        /// Every declared attribute.
        pub const ALL: &[Attr] = &[ $( $konst, )* ];
    };
}

attrs! {
    /// The provider's ID of the object (subnet-…, an ARN, namespace/name, a Portainer ID).
    ID = "id";
    NAME = "name";
    NAMESPACE = "namespace";
    STATE = "state";
    TAGS = "tags";
    VPC_ID = "vpc_id";
    SUBNET_IDS = "subnet_ids";
    AVAILABILITY_ZONE = "availability_zone";
    AVAILABILITY_ZONE_ID = "availability_zone_id";
    AVAILABILITY_ZONE_IDS = "availability_zone_ids";

    // --- IAM ------------------------------------------------------------------------------
    ROLE_NAME = "role_name";
    POLICY_DOCUMENT = "policy_document";
    POLICY_ARN = "policy_arn";
    POLICY_NAME = "policy_name";
    DEFAULT_VERSION = "default_version";
    /// Version IDs of the policy, as IAM lists them.
    VERSIONS = "versions";
    ATTACHED_POLICIES = "attached_policies";
    /// Derived: actions an internal NLB needs that the default version does not allow.
    MISSING_ACTIONS = "missing_actions";
    /// Derived.
    VERSION_COUNT = "version_count";
    /// Derived: what an update at IAM's 5-version limit deletes first.
    OLDEST_NON_DEFAULT_VERSION = "oldest_non_default_version";
    /// A parameter the plan decides and apply executes: the version deleted first.
    DELETE_VERSION = "delete_version";

    // --- subnets and routing --------------------------------------------------------------
    CIDR_BLOCK = "cidr_block";
    AVAILABLE_IP_ADDRESS_COUNT = "available_ip_address_count";
    /// The route table that routes a subnet: its explicit association, else the VPC's main one.
    ROUTE_TABLE_ID = "route_table_id";
    /// `explicit` or `main`.
    ROUTE_TABLE_ASSOCIATION = "route_table_association";
    /// Routes as `{destination, target}` maps.
    ROUTES = "routes";
    MAIN = "main";
    ASSOCIATIONS = "associations";
    SUBNET_ID = "subnet_id";
    /// Derived: the effective route table has a route to an internet gateway.
    ROUTES_TO_IGW = "routes_to_igw";
    /// Derived: that route, for the message.
    IGW_ROUTE = "igw_route";
    VPC_IDS = "vpc_ids";
    /// A VPC's subnets, as `{id, cidr, availability_zone, availability_zone_id}` maps.
    SUBNETS = "subnets";
    /// The region's zones in this account, as `{name, id}` maps (names differ per account).
    AVAILABILITY_ZONES = "availability_zones";

    // --- Portainer settings and restart -----------------------------------------------------
    ENABLE_EDGE_COMPUTE = "EnableEdgeComputeFeatures";
    CHECKIN_INTERVAL = "EdgeAgentCheckinInterval";
    ENFORCE_EDGE_ID = "EnforceEdgeID";
    /// Derived for the settings; stamped on Portainer's pod template by the restart.
    SETTINGS_CHECKSUM = "settings_checksum";
    ARGS = "args";
    /// Derived from `args` (`--tunnel-port`, default 8000).
    TUNNEL_PORT = "tunnel_port";
    GENERATION = "generation";
    OBSERVED_GENERATION = "observed_generation";
    UPDATED_REPLICAS = "updated_replicas";
    READY_REPLICAS = "ready_replicas";
    REPLICAS = "replicas";
    /// Derived from the status fields above.
    ROLLOUT_COMPLETE = "rollout_complete";
    SELECTOR = "selector";

    // --- the tunnel Service and the NLB -------------------------------------------------------
    PORT = "port";
    TARGET_PORT = "target_port";
    ANNOTATIONS = "annotations";
    /// A Service's type; an environment's normalized type (`edge-agent-kubernetes`).
    TYPE = "type";
    LOAD_BALANCER_HOSTNAME = "load_balancer_hostname";
    LOAD_BALANCER_CLASS = "load_balancer_class";
    FIELD_MANAGERS = "field_managers";
    /// The controller's last event on the Service (`FailedBuildModel`, …).
    CONTROLLER_EVENT_REASON = "controller_event_reason";
    CONTROLLER_EVENT = "controller_event";
    HOSTNAME = "hostname";
    SCHEME = "scheme";
    CONTROLLER_POLICY_VERSION = "controller_policy_version";
    SUBNET_ROUTE_TABLE = "subnet_route_table";
    ARN = "arn";
    DNS_NAME = "dns_name";
    LISTENERS = "listeners";
    /// The endpoint services an NLB is already behind (AWS allows one).
    ENDPOINT_SERVICE_IDS = "endpoint_service_ids";
    /// `{target, port, state, reason, description}` maps, as DescribeTargetHealth reports them.
    TARGET_HEALTH = "target_health";

    // --- security groups ----------------------------------------------------------------------
    CLUSTER_NAME = "cluster_name";
    SECURITY_GROUP_ID = "security_group_id";
    PROTOCOL = "protocol";
    SOURCE_CIDR = "source_cidr";
    RULE_ID = "rule_id";
    DESCRIPTION = "description";
    INGRESS_PORT = "ingress_port";
    INGRESS_CIDRS = "ingress_cidrs";
    /// Every ingress rule of a group, as `{protocol, from_port, to_port, cidr_ipv4}` maps.
    INGRESS_RULES = "ingress_rules";
    /// The CIDR block of the VPC an object is in (where a consumer's agents come from).
    VPC_CIDR_BLOCK = "vpc_cidr_block";

    // --- PrivateLink --------------------------------------------------------------------------
    NETWORK_LOAD_BALANCER_ARN = "network_load_balancer_arn";
    ACCEPTANCE_REQUIRED = "acceptance_required";
    SERVICE_ID = "service_id";
    SERVICE_NAME = "service_name";
    ALLOWED_PRINCIPALS = "allowed_principals";
    VPC_ENDPOINT_TYPE = "vpc_endpoint_type";
    VPC_ENDPOINT_ID = "vpc_endpoint_id";
    VPC_ENDPOINT_OWNER = "vpc_endpoint_owner";
    SUBNET_AVAILABILITY_ZONE_IDS = "subnet_availability_zone_ids";
    /// Desired for an acceptance; derived from the connection's `state`.
    ACCEPTED = "accepted";

    // --- Portainer environments ---------------------------------------------------------------
    /// Portainer's EndpointType number (4 at creation, 7 after the agent's first poll).
    TYPE_ID = "type_id";
    URL = "url";
    CREATE_IF_MISSING = "create_if_missing";
    EDGE_ID = "edge_id";
    /// The environment's EdgeKey, as a secret value.
    EDGE_KEY = "edge_key";
    LAST_CHECK_IN_DATE = "last_check_in_date";
    HEARTBEAT = "heartbeat";
    USER_TRUSTED = "user_trusted";
    TAG_IDS = "tag_ids";

    // --- keys (derived by the engine from a secret value, never the text) -------------------
    KEY_PRESENT = "edge_key_present";
    /// The agent's Go decoder accepts it.
    KEY_VALID = "edge_key_valid";
    /// What the agent would log (`illegal base64 data at input byte N`).
    KEY_AGENT_ERROR = "edge_key_agent_error";
    /// Standard alphabet, no padding, no whitespace: what edgeplan writes.
    KEY_CANONICAL = "edge_key_canonical";
    /// Field 2: `host:port` the agent dials.
    KEY_TUNNEL = "edge_key_tunnel";
    KEY_ENDPOINT_ID = "edge_key_endpoint_id";

    // --- the agent key and the agent ---------------------------------------------------------
    PORTAINER_KEY = "portainer_key";
    TUNNEL_HOST = "tunnel_host";
    KEY = "key";
    IMAGE = "image";
    AGENT_EDGE_KEY = "EDGE_KEY";
    /// The agent's EDGE_ID; for an environment, the one its agent must present (Portainer's
    /// EdgeID, or the one edgeplan proposes while it has none).
    AGENT_EDGE_ID = "EDGE_ID";
    EDGE_INSECURE_POLL = "EDGE_INSECURE_POLL";
    AGENT_SECRET = "AGENT_SECRET";
    EXTRA_ENV = "extra_env";
    CONNECTION_STATE = "connection_state";
    /// Which of the agent's objects exist (`Kind/name`).
    OBJECTS = "objects";
    /// The agent pod's recent log lines.
    LOGS = "logs";
    /// Derived from `logs`: `connected`, `key-encoding`, `wrong-server`, `key-rejected`, …
    AGENT_STATE = "agent_state";
    /// Derived: the log line that says so.
    AGENT_MESSAGE = "agent_message";
}
