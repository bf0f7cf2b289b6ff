//! The world file's types: a snapshot of everything the real backends would see.
//!
//! Field names follow the APIs they stand for (EC2/ELBv2/IAM in snake_case, Portainer's JSON
//! keys in PascalCase) so a world file reads like the `describe` output it replaces. Every
//! struct refuses unknown keys: a typo in a hand-written world must not silently mean "absent".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only world format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 2;

pub type Tags = BTreeMap<String, String>;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    pub format_version: u32,
    /// The virtual clock, in seconds since the world began.
    #[serde(default)]
    pub now: u64,
    /// Source of deterministic IDs: bumped for every object the simulation creates.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub serial: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws: Vec<AwsAccount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<KubeCluster>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portainer: Vec<PortainerServer>,
    /// Timed transitions not yet due (NLB active, targets healthy, endpoint available, rollout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Transition>,
    /// What happened and when, with how long each wait took: a run reports realistic waits
    /// from here while taking no wall time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Event>,
}

impl Default for World {
    fn default() -> World {
        World {
            format_version: FORMAT_VERSION,
            now: 0,
            serial: 0,
            aws: Vec::new(),
            kubernetes: Vec::new(),
            portainer: Vec::new(),
            pending: Vec::new(),
            history: Vec::new(),
        }
    }
}

// ----- AWS ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsAccount {
    pub account: String,
    /// IAM is global to the account.
    #[serde(default)]
    pub iam: Iam,
    #[serde(default)]
    pub regions: Vec<AwsRegion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iam {
    #[serde(default)]
    pub roles: Vec<IamRole>,
    #[serde(default)]
    pub policies: Vec<ManagedPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    pub name: String,
    /// Managed policy ARNs (ListAttachedRolePolicies).
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedPolicy {
    pub arn: String,
    pub name: String,
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVersion {
    /// `v1`, `v2`, … as IAM numbers them.
    pub id: String,
    /// The policy document, decoded (IAM returns it URL-encoded; the real backend decodes).
    pub document: serde_json::Value,
    #[serde(default)]
    pub created_at: u64,
    /// The client token of the operation that created it: a retried apply finds it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsRegion {
    pub region: String,
    /// This account's AZ name → AZ ID mapping (names differ between accounts; IDs do not).
    #[serde(default)]
    pub availability_zones: Vec<AvailabilityZone>,
    #[serde(default)]
    pub vpcs: Vec<Vpc>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub route_tables: Vec<RouteTable>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_services: Vec<EndpointService>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpc_endpoints: Vec<VpcEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityZone {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    pub cidr: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub cidr: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    /// AvailableIpAddressCount: the LB controller skips subnets with fewer than 8.
    #[serde(default = "default_available_ips")]
    pub available_ips: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

fn default_available_ips() -> u32 {
    250
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    /// The VPC's main table: it routes every subnet without an explicit association.
    #[serde(default, skip_serializing_if = "is_false")]
    pub main: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associations: Vec<RouteTableAssociation>,
    /// Routes besides the implicit `local` one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableAssociation {
    pub id: String,
    pub subnet_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub destination: String,
    /// `igw-…`, `nat-…`, `tgw-…`, …: what the LB controller inspects is the `igw` prefix.
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<SgRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgRule {
    pub id: String,
    /// `tcp`, `udp` or `-1` (all).
    pub protocol: String,
    #[serde(default)]
    pub from_port: u16,
    #[serde(default = "max_port")]
    pub to_port: u16,
    /// Exactly one of `cidr` and `source_group` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

fn max_port() -> u16 {
    65535
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    /// `internal` or `internet-facing`.
    pub scheme: String,
    /// `provisioning`, `active`, `active_impaired` or `failed`.
    pub state: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub availability_zone_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    /// The target group's port: the Service's targetPort (ip targets).
    pub target_port: u16,
}

fn tcp() -> String {
    "TCP".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The pod IP (ip targets), or a `namespace/deployment` placeholder in hand-written worlds.
    pub id: String,
    pub port: u16,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining`.
    pub health: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointService {
    pub service_id: String,
    pub service_name: String,
    /// `Pending`, `Available`, `Deleting`, `Deleted`, `Failed` (PascalCase, as on the wire).
    pub state: String,
    #[serde(default = "yes")]
    pub acceptance_required: bool,
    pub network_load_balancer_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_principals: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// An interface endpoint. Its `state` is also the provider's view of the connection
/// (DescribeVpcEndpointConnections reads the same state), so connections are not stored twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpoint {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    #[serde(default = "interface")]
    pub endpoint_type: String,
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// `pendingAcceptance`, `pending`, `available`, `rejected`, `deleting`, `failed` (camelCase,
    /// as on the wire).
    pub state: String,
    /// Regional name first, then one zonal name per AZ.
    #[serde(default)]
    pub dns_entries: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(default)]
    pub created_at: u64,
}

fn interface() -> String {
    "Interface".to_string()
}

// ----- Kubernetes --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeCluster {
    /// The kubeconfig context name the spec uses.
    pub context: String,
    /// The EKS cluster name (`kubernetes.io/cluster/<name>` tags).
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<ClusterAws>,
    /// The AWS Load Balancer Controller, if installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_controller: Option<LbController>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<KeyValueObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<KeyValueObject>,
    /// Everything else the agent needs (ServiceAccount, ClusterRoleBinding, …): only their
    /// existence and ownership matter here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<KubeObject>,
    /// Events as `kubectl get events` shows them (the controller's FailedBuildModel, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<KubeEvent>,
    /// `coordination.k8s.io/v1` Leases (edgeplan's stack lock), with the spec's field names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<Lease>,
    /// The last resourceVersion this cluster handed out. Like the API server's, versions are
    /// never reused, so a lease deleted and created again cannot be written at an old version.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_resource_version: u64,
}

/// A Lease's metadata and spec. Times are wall-clock Unix seconds (`MicroTime` in the API):
/// the lock is about real processes, not the modelled infrastructure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Lease {
    pub namespace: String,
    pub name: String,
    pub holder_identity: String,
    pub lease_duration_seconds: u64,
    pub acquire_time: u64,
    pub renew_time: u64,
    /// metadata.resourceVersion: bumped by every write; a write at a stale one is a conflict.
    #[serde(default)]
    pub resource_version: u64,
}

/// Where the cluster's pods live: the VPC the LB controller builds NLBs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterAws {
    pub account: String,
    pub region: String,
    pub vpc_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbController {
    /// The IRSA role whose attached policies decide what the controller may call.
    pub role_name: String,
    /// `aws-load-balancer-manage-backend-security-group-rules`: when on, the controller admits
    /// the NLB to the pods itself and edgeplan's SG rule is redundant (aws.md §1a).
    #[serde(default, skip_serializing_if = "is_false")]
    pub manage_backend_security_group_rules: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Tags,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Tags,
    /// managedFields managers (`helm`, `kubectl-client-side-apply`, `edgeplan`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_managers: Vec<String>,
    /// Pod labels (the Deployment's selector matches them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: Tags,
    /// Pod template annotations: a change rolls the pods (Helm's `checksum/config`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub template_annotations: Tags,
    /// The newest pod's recent log lines (what `kubectl logs` shows), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    #[serde(default = "one")]
    pub replicas: u32,
    /// metadata.generation: bumped by every spec change, including a rollout restart.
    #[serde(default = "one_u64")]
    pub generation: u64,
    /// The generation whose pods are running and ready.
    #[serde(default = "one_u64")]
    pub ready_generation: u64,
    pub containers: Vec<Container>,
    /// What the Edge agent in this deployment is doing, when it is one (computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_status: Option<AgentStatus>,
}

fn one() -> u32 {
    1
}

fn one_u64() -> u64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// containerPorts as declared (cosmetic: what listens is decided by the process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSource {
    /// `secret`, `config_map` or `field` (a fieldRef: `key` is the field path).
    pub kind: String,
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStatus {
    /// `starting`, `crash_loop`, `poll_rejected`, `polling` (no tunnel) or `connected`.
    pub state: String,
    /// The log line that explains the state (the agent's or chisel's words).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Tags,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Tags,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_managers: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: Tags,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    /// `status.loadBalancer.ingress[0].hostname`, set by the LB controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_hostname: Option<String>,
    /// `clusterIP: None`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub headless: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub port: u16,
    pub target_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u16>,
}

/// A Secret or ConfigMap. Secret values are held as the cluster holds them: the world *is* the
/// simulated cluster. They never leave the simulation except as fingerprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueObject {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Tags,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_managers: Vec<String>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeObject {
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Tags,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_managers: Vec<String>,
    /// A ClusterRoleBinding's ClusterRole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A ClusterRoleBinding's subjects, `namespace/serviceaccount`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeEvent {
    pub at: u64,
    pub namespace: String,
    /// `Service/portainer-edge-tunnel`.
    pub object: String,
    /// `Warning` or `Normal`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub reason: String,
    pub message: String,
}

// ----- Portainer ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortainerServer {
    /// The URL the spec names (`portainer.url`).
    pub url: String,
    /// Where the server runs; its `--tunnel-port` arg is the chisel port, a rollout restart
    /// applies pending settings.
    pub deployment: DeploymentRef,
    /// Base64 SHA-256 of the chisel server key (44 characters, `=`-padded). Stable while the
    /// `/data` volume survives.
    pub server_fingerprint: String,
    /// As the seed observed (trap 4): chisel accepts nothing until Edge Compute is effective.
    /// Portainer's source says otherwise (portainer.md §3); a world may switch this off.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub tunnel_needs_edge_compute: bool,
    /// `GET /api/settings`: what is stored.
    pub settings: Settings,
    /// What the running server uses: settings read at its last (re)start.
    pub effective: EffectiveSettings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<PortainerTag>,
    #[serde(default)]
    pub environments: Vec<Environment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRef {
    pub context: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(rename = "EnableEdgeComputeFeatures")]
    pub enable_edge_compute: bool,
    #[serde(rename = "EnforceEdgeID", default, skip_serializing_if = "is_false")]
    pub enforce_edge_id: bool,
    #[serde(rename = "EdgeAgentCheckinInterval", default = "default_checkin")]
    pub checkin_interval: u64,
}

fn default_checkin() -> u64 {
    5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectiveSettings {
    #[serde(rename = "EnableEdgeComputeFeatures")]
    pub enable_edge_compute: bool,
}

/// A Portainer environment (endpoint), with the API's JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(rename = "Id")]
    pub id: i64,
    #[serde(rename = "Name")]
    pub name: String,
    /// 4 (EdgeAgentOnDocker) at creation, 7 (EdgeAgentOnKubernetes) after the first poll.
    #[serde(rename = "Type")]
    pub env_type: i64,
    #[serde(rename = "URL", default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Empty until the first poll (unless EnforceEdgeID).
    #[serde(rename = "EdgeID", default)]
    pub edge_id: String,
    #[serde(rename = "EdgeKey", default, skip_serializing_if = "String::is_empty")]
    pub edge_key: String,
    #[serde(rename = "LastCheckInDate", default)]
    pub last_check_in: u64,
    /// 0 = the server's EdgeAgentCheckinInterval.
    #[serde(rename = "EdgeCheckinInterval", default, skip_serializing_if = "is_zero")]
    pub checkin_interval: u64,
    #[serde(rename = "UserTrusted", default = "yes")]
    pub user_trusted: bool,
    /// Portainer tag IDs (`TagIds`): edgeplan's ownership is two tags, stack and address.
    #[serde(rename = "TagIds", default, skip_serializing_if = "Vec::is_empty")]
    pub tag_ids: Vec<i64>,
    /// An agent holds a chisel tunnel to the server (the server's own state, computed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tunnel_connected: bool,
}

/// A Portainer tag (`GET /api/tags`): `{"ID": 1, "Name": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortainerTag {
    #[serde(rename = "ID")]
    pub id: i64,
    #[serde(rename = "Name")]
    pub name: String,
}

// ----- the clock ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// ELBv2 `provisioning` → `active` (~3 min).
    NlbActive,
    /// Targets pass health checks (~90 s after their preconditions hold).
    TargetsHealthy,
    /// VPC endpoint `pending` → `available` (~2 min after acceptance).
    VpceAvailable,
    /// A Deployment's new pods are ready (~30 s).
    RolloutComplete,
    /// The LB controller retries a Service it could not build, with backoff (1 s doubling to
    /// 1000 s, as controller-runtime's rate limiter). Subject: `context/namespace/Service/name`.
    ControllerRetry,
}

impl TransitionKind {
    /// The modelled duration, in seconds.
    pub fn duration(self) -> u64 {
        match self {
            TransitionKind::NlbActive => 180,
            TransitionKind::TargetsHealthy => 90,
            TransitionKind::VpceAvailable => 120,
            TransitionKind::RolloutComplete => 30,
            // The first retry; later ones double (see `sim.rs`).
            TransitionKind::ControllerRetry => 1,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            TransitionKind::NlbActive => "load balancer active",
            TransitionKind::TargetsHealthy => "targets healthy",
            TransitionKind::VpceAvailable => "VPC endpoint available",
            TransitionKind::RolloutComplete => "rollout complete",
            TransitionKind::ControllerRetry => "load balancer controller retry",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// When it becomes due.
    pub at: u64,
    /// When it was scheduled (so the wait can be reported).
    pub since: u64,
    pub kind: TransitionKind,
    /// An NLB ARN, a VPC endpoint ID or `context/namespace/deployment`.
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at: u64,
    pub subject: String,
    pub message: String,
    /// Seconds between the cause and this event, for waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited: Option<u64>,
}
