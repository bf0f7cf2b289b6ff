//! The spec's types. Field docs become the JSON Schema's descriptions, which editors show
//! on hover: write them for the user, not for the code.
//!
//! Optional fields are `Option` with the default applied by an accessor, so that lint can tell
//! "left to edgeplan" from "set by the user" (and point at what the user wrote).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::values::{AnnotationMap, PortainerInstall, SecretRef, TunnelPort};
use crate::{Spanned, scalars};

/// An edgeplan topology: Portainer on one EKS cluster (the provider) and Edge agents on other
/// clusters (the consumers), joined by an internal NLB, a VPC endpoint service and interface
/// endpoints (AWS PrivateLink).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "edgeplan Topology")]
pub struct Spec {
    /// Spec language version. Only `edgeplan.dev/v1alpha1` exists.
    #[schemars(extend("const" = "edgeplan.dev/v1alpha1"))]
    pub api_version: Spanned<String>,
    /// Always `Topology`.
    #[schemars(extend("const" = "Topology"))]
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    pub spec: Topology,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Stack name (DNS-1123 label). edgeplan tags every AWS resource it creates with
    /// `edgeplan.dev/stack=<name>` and labels Kubernetes objects the same way: this is how it
    /// finds what it owns without a state file.
    pub name: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Topology {
    pub provider: Provider,
    /// Clusters that get an Edge agent whose tunnel reaches Portainer over PrivateLink.
    pub consumers: Spanned<Vec<Spanned<Consumer>>>,
}

/// Where Portainer runs: the EKS cluster and VPC that host the internal NLB and the endpoint
/// service.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Provider {
    pub aws: AwsTarget,
    pub cluster: ProviderCluster,
    pub vpc: Vpc,
    pub lb_controller: LbController,
    pub nlb_subnet: Spanned<NlbSubnet>,
    /// The security group of the Portainer pods (the EKS cluster security group with the VPC
    /// CNI). Omit it, or set `discover: true`, to read `clusterSecurityGroupId` from EKS.
    pub cluster_security_group: Option<Spanned<ClusterSecurityGroup>>,
    pub portainer: Portainer,
    pub tunnel_service: Option<TunnelService>,
    pub endpoint_service: Option<EndpointService>,
}

/// An AWS account, region and local credentials profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsTarget {
    /// 12-digit AWS account ID. Quote it: YAML would read a leading zero as a number.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Spanned<String>,
    /// AWS region, e.g. `eu-west-1`.
    #[schemars(regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"))]
    pub region: Spanned<String>,
    /// Named profile in ~/.aws/config. Omit to use the default credential chain.
    pub profile: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderCluster {
    /// EKS cluster name: used for subnet tags (`kubernetes.io/cluster/<name>`) and to discover
    /// the cluster security group.
    pub name: Spanned<String>,
    /// kubeconfig context that reaches this cluster.
    pub kube_context: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsumerCluster {
    /// kubeconfig context that reaches this cluster.
    pub kube_context: Spanned<String>,
    /// EKS cluster name, for display and tags. Optional.
    pub name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Vpc {
    /// VPC ID, e.g. `vpc-0abc…`.
    #[schemars(regex(pattern = r"^vpc-[0-9a-f]{8,17}$"))]
    pub id: Spanned<String>,
    /// The VPC's IPv4 CIDR, if you want lint to check subnets and overlaps statically.
    pub cidr: Option<Spanned<String>>,
}

/// The AWS Load Balancer Controller's IAM role. An internal NLB needs actions (notably
/// `ec2:DescribeRouteTables`) that ALB-era policies lack.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LbController {
    /// Name of the IAM role the controller's service account assumes.
    pub role_name: Spanned<String>,
    /// Path (relative to this spec) of the upstream `iam_policy.json` to enforce on the role,
    /// e.g. `policies/aws-load-balancer-controller-v2.13.2.json`.
    pub policy_document: Option<Spanned<String>>,
}

/// The subnet that holds the NLB's network interfaces. Either an existing subnet (`id`) or a
/// new one (`cidr` and an AZ). It needs no NAT and no nodes: with `ip` targets the NLB reaches
/// pod IPs across the VPC.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NlbSubnet {
    /// Adopt this existing subnet. edgeplan tags it but never deletes it.
    #[schemars(regex(pattern = r"^subnet-[0-9a-f]{8,17}$"))]
    pub id: Option<Spanned<String>>,
    /// CIDR of a new subnet, inside the VPC CIDR, /28 or larger.
    pub cidr: Option<Spanned<String>>,
    /// AZ name, e.g. `eu-west-1b`.
    pub availability_zone: Option<Spanned<String>>,
    /// AZ ID, e.g. `euw1-az3`: the same physical zone in every account.
    pub availability_zone_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSecurityGroup {
    /// Use this security group.
    #[schemars(regex(pattern = r"^sg-[0-9a-f]{8,17}$"))]
    pub id: Option<Spanned<String>>,
    /// Read the cluster security group from EKS.
    #[serde(default, deserialize_with = "scalars::opt_bool")]
    pub discover: Option<Spanned<bool>>,
}

/// The Portainer server, as installed in the provider cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Portainer {
    /// Portainer's URL as agents poll it (the environment's URL, field 1 of the EDGE_KEY).
    pub url: Spanned<String>,
    /// Portainer API key, as a reference. Needs admin access (settings, environments).
    pub api_key: Spanned<SecretRef>,
    /// Namespace of the Portainer deployment. Default `portainer`.
    pub namespace: Option<Spanned<String>>,
    /// Name of the Portainer deployment. Default `portainer`.
    pub deployment: Option<Spanned<String>>,
    /// How Portainer was installed. The Helm chart's default (`helm-nodeport`) runs the tunnel
    /// server with `--tunnel-port=30776`.
    pub install: Option<Spanned<PortainerInstall>>,
    /// The port the chisel tunnel server listens on inside the pod. `auto` (default) reads
    /// `--tunnel-port` from the deployment's args, else 8000.
    pub tunnel_port: Option<Spanned<TunnelPort>>,
}

/// The Kubernetes Service (type LoadBalancer) from which the AWS Load Balancer Controller
/// builds the internal NLB. edgeplan sets `aws-load-balancer-type: external`, target type `ip`
/// and scheme `internal`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TunnelService {
    /// Default `portainer-edge-tunnel`.
    pub name: Option<Spanned<String>>,
    /// Default: Portainer's namespace.
    pub namespace: Option<Spanned<String>>,
    /// The NLB listener port the agents dial (field 2 of their EDGE_KEY). Default 8000.
    #[schemars(range(min = 1, max = 65535))]
    #[serde(default, deserialize_with = "scalars::opt_port")]
    pub listener_port: Option<Spanned<u16>>,
    /// Extra Service annotations, e.g. `service.beta.kubernetes.io/aws-load-balancer-attributes`.
    pub annotations: Option<AnnotationMap>,
}

/// The VPC endpoint service in front of the NLB.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointService {
    /// Whether each endpoint connection must be approved. Default true; edgeplan approves the
    /// connections of the consumers in this spec.
    #[serde(default, deserialize_with = "scalars::opt_bool")]
    pub acceptance_required: Option<Spanned<bool>>,
    /// Principals allowed to create endpoints (`arn:aws:iam::<account>:root`, roles, users,
    /// or `*`). Default: the root of every consumer account.
    pub allowed_principals: Option<Vec<Spanned<String>>>,
}

/// A cluster that gets an Edge agent whose tunnel reaches Portainer over PrivateLink.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Consumer {
    /// Unique name (DNS-1123 label); part of every address, e.g. `consumer.prod.vpce`.
    pub name: Spanned<String>,
    pub aws: AwsTarget,
    pub cluster: ConsumerCluster,
    pub vpc: Vpc,
    /// Subnets for the interface endpoint, at most one per AZ. At least one must share an AZ
    /// with the NLB subnet.
    pub subnets: Spanned<Vec<Spanned<ConsumerSubnet>>>,
    pub endpoint_security_group: Spanned<EndpointSecurityGroup>,
    pub environment: Spanned<Environment>,
    pub agent: Agent,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsumerSubnet {
    #[schemars(regex(pattern = r"^subnet-[0-9a-f]{8,17}$"))]
    pub id: Spanned<String>,
    /// AZ name, e.g. `eu-west-1b`, for the static shared-AZ check.
    pub availability_zone: Option<Spanned<String>>,
    /// AZ ID, e.g. `euw1-az3`: compare this across accounts.
    pub availability_zone_id: Option<Spanned<String>>,
}

/// The interface endpoint's security group: an existing one (`id`), or one edgeplan creates
/// (`create`) that admits the listener port from the given CIDRs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointSecurityGroup {
    #[schemars(regex(pattern = r"^sg-[0-9a-f]{8,17}$"))]
    pub id: Option<Spanned<String>>,
    pub create: Option<CreateSecurityGroup>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSecurityGroup {
    /// Source CIDRs allowed to reach the endpoint on the listener port (usually the consumer
    /// VPC CIDR, where the agent pods live).
    pub allowed_cidrs: Spanned<Vec<Spanned<String>>>,
}

/// The consumer's Portainer environment (an "Edge Agent" environment).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Environment {
    /// Environment name; created if missing (unless `create: false`).
    pub name: Option<Spanned<String>>,
    /// Environment ID, for an environment that already exists.
    #[schemars(range(min = 1))]
    #[serde(default, deserialize_with = "scalars::opt_u32")]
    pub id: Option<Spanned<u32>>,
    /// Create the environment when it does not exist. Default true.
    #[serde(default, deserialize_with = "scalars::opt_bool")]
    pub create: Option<Spanned<bool>>,
    /// The EDGE_KEY Portainer issued, if you want lint to check it. A reference: `{file: …}`
    /// or `{env: …}`. edgeplan rewrites field 2 to the VPC endpoint itself.
    pub edge_key: Option<Spanned<SecretRef>>,
}

/// The Edge agent deployed into the consumer cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Agent {
    /// Namespace of the agent objects. Default `portainer`.
    pub namespace: Option<Spanned<String>>,
    /// `portainer/agent` image tag; match your Portainer version, e.g. `2.39.0`.
    pub image_tag: Spanned<String>,
    /// EDGE_INSECURE_POLL: skip TLS verification when polling Portainer (needed when the
    /// certificate does not cover the name the agent polls). Default false.
    #[serde(default, deserialize_with = "scalars::opt_bool")]
    pub insecure_poll: Option<Spanned<bool>>,
    /// AGENT_SECRET shared with the Portainer server, as a reference.
    pub agent_secret: Option<Spanned<SecretRef>>,
    /// Extra environment variables, as in a Kubernetes container spec.
    pub env: Option<Vec<Spanned<EnvVar>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: Spanned<String>,
    pub value: Spanned<String>,
}

// ----- defaults ----------------------------------------------------------------------------

pub const DEFAULT_PORTAINER_NAMESPACE: &str = "portainer";
pub const DEFAULT_PORTAINER_DEPLOYMENT: &str = "portainer";
pub const DEFAULT_TUNNEL_SERVICE_NAME: &str = "portainer-edge-tunnel";
pub const DEFAULT_LISTENER_PORT: u16 = 8000;
pub const DEFAULT_AGENT_NAMESPACE: &str = "portainer";

fn str_or<'a>(value: &'a Option<Spanned<String>>, default: &'a str) -> &'a str {
    value.as_ref().map_or(default, |v| v.value.as_str())
}

impl Portainer {
    pub fn namespace(&self) -> &str {
        str_or(&self.namespace, DEFAULT_PORTAINER_NAMESPACE)
    }

    pub fn deployment(&self) -> &str {
        str_or(&self.deployment, DEFAULT_PORTAINER_DEPLOYMENT)
    }

    pub fn tunnel_port(&self) -> TunnelPort {
        self.tunnel_port.as_ref().map_or(TunnelPort::Auto, |p| p.value)
    }
}

impl Provider {
    pub fn tunnel_service_name(&self) -> &str {
        self.tunnel_service
            .as_ref()
            .map_or(DEFAULT_TUNNEL_SERVICE_NAME, |s| str_or(&s.name, DEFAULT_TUNNEL_SERVICE_NAME))
    }

    pub fn tunnel_service_namespace(&self) -> &str {
        self.tunnel_service
            .as_ref()
            .and_then(|s| s.namespace.as_ref())
            .map_or(self.portainer.namespace(), |n| n.value.as_str())
    }

    pub fn listener_port(&self) -> u16 {
        self.tunnel_service.as_ref().and_then(|s| s.listener_port.as_ref()).map_or(DEFAULT_LISTENER_PORT, |p| p.value)
    }

    pub fn acceptance_required(&self) -> bool {
        self.endpoint_service.as_ref().and_then(|s| s.acceptance_required.as_ref()).is_none_or(|a| a.value)
    }
}

impl Agent {
    pub fn namespace(&self) -> &str {
        str_or(&self.namespace, DEFAULT_AGENT_NAMESPACE)
    }
}

impl Environment {
    pub fn create_if_missing(&self) -> bool {
        self.create.as_ref().is_none_or(|c| c.value)
    }
}

impl Spec {
    /// Every boolean written in the spec, with the key it is under, for rules about how
    /// booleans are written. A test keeps this list in step with the schema's booleans.
    pub fn booleans(&self) -> Vec<(&'static str, &Spanned<bool>)> {
        let provider = &self.spec.provider;
        let mut found = Vec::new();
        let discover = provider.cluster_security_group.as_ref().and_then(|g| g.discover.as_ref());
        found.extend(discover.map(|b| ("discover", b)));
        let acceptance = provider.endpoint_service.as_ref().and_then(|s| s.acceptance_required.as_ref());
        found.extend(acceptance.map(|b| ("acceptanceRequired", b)));
        for consumer in self.spec.consumers.iter() {
            found.extend(consumer.environment.create.as_ref().map(|b| ("create", b)));
            found.extend(consumer.agent.insecure_poll.as_ref().map(|b| ("insecurePoll", b)));
        }
        found
    }
}
