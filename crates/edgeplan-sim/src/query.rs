//! Read-only questions about a world, shared by the controllers, `observe` and `execute`.

use crate::net::cidr_contains;
use crate::world::{
    AwsAccount, AwsRegion, Deployment, KubeCluster, LoadBalancer, PortainerServer, Route, RouteTable, SecurityGroup,
    Service, Tags, World,
};

/// Portainer's default chisel port (`--tunnel-port` unset).
pub const DEFAULT_TUNNEL_PORT: u16 = 8000;
/// Portainer's UI/API ports: they listen whatever the settings.
const PORTAINER_API_PORTS: [u16; 2] = [9000, 9443];

pub(crate) const LBC_PREFIX: &str = "service.beta.kubernetes.io/";
pub(crate) const LBC_STACK_TAG: &str = "service.k8s.aws/stack";
pub(crate) const LBC_CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";

impl World {
    pub fn account(&self, account: &str) -> Option<&AwsAccount> {
        self.aws.iter().find(|a| a.account == account)
    }

    /// Every region of `account`.
    pub fn regions_of<'w>(&'w self, account: &str) -> impl Iterator<Item = &'w AwsRegion> + 'w {
        self.account(account).into_iter().flat_map(|a| a.regions.iter())
    }

    pub fn region(&self, account: &str, region: &str) -> Option<&AwsRegion> {
        self.account(account)?.regions.iter().find(|r| r.region == region)
    }

    pub(crate) fn region_mut(&mut self, account: &str, region: &str) -> Option<&mut AwsRegion> {
        self.aws.iter_mut().find(|a| a.account == account)?.regions.iter_mut().find(|r| r.region == region)
    }

    pub fn cluster(&self, context: &str) -> Option<&KubeCluster> {
        self.kubernetes.iter().find(|c| c.context == context)
    }

    pub(crate) fn cluster_mut(&mut self, context: &str) -> Option<&mut KubeCluster> {
        self.kubernetes.iter_mut().find(|c| c.context == context)
    }

    /// The Portainer server at `url` (a trailing `/` is ignored).
    pub fn portainer_server(&self, url: &str) -> Option<&PortainerServer> {
        self.portainer.iter().find(|p| same_url(&p.url, url))
    }

    pub(crate) fn portainer_server_mut(&mut self, url: &str) -> Option<&mut PortainerServer> {
        self.portainer.iter_mut().find(|p| same_url(&p.url, url))
    }

    /// The Portainer server running as `context/namespace/name`, if any.
    pub fn portainer_for_deployment(&self, context: &str, namespace: &str, name: &str) -> Option<&PortainerServer> {
        self.portainer.iter().find(|p| {
            p.deployment.context == context && p.deployment.namespace == namespace && p.deployment.name == name
        })
    }

    /// Every (account, region) pair, for searches that cross accounts (an endpoint service by
    /// name, a VPC endpoint by ID).
    pub(crate) fn regions(&self) -> impl Iterator<Item = (&AwsAccount, &AwsRegion)> {
        self.aws.iter().flat_map(|a| a.regions.iter().map(move |r| (a, r)))
    }

    /// Where the LB controller of `cluster` builds load balancers.
    pub(crate) fn cluster_region(&self, cluster: &KubeCluster) -> Option<&AwsRegion> {
        let aws = cluster.aws.as_ref()?;
        self.region(&aws.account, &aws.region)
    }

    /// The NLB the LB controller of `cluster` built for `service`, by the controller's own tags.
    pub(crate) fn nlb_for_service(&self, cluster: &KubeCluster, service: &Service) -> Option<&LoadBalancer> {
        let stack = format!("{}/{}", service.namespace, service.name);
        self.cluster_region(cluster)?.load_balancers.iter().find(|lb| {
            lb.tags.get(LBC_STACK_TAG) == Some(&stack) && lb.tags.get(LBC_CLUSTER_TAG) == Some(&cluster.cluster_name)
        })
    }
}

pub(crate) fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The host of a URL (`https://portainer.example.com:443/x` → `portainer.example.com`).
pub(crate) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

impl AwsAccount {
    /// The customer-managed policy attached to `role_name` that edgeplan manages: the first one
    /// of this account (`arn:aws:iam::<account>:policy/…`), as the seed's runbook selects it.
    pub fn role_customer_policy(&self, role_name: &str) -> Option<&crate::world::ManagedPolicy> {
        let role = self.iam.roles.iter().find(|r| r.name == role_name)?;
        let prefix = format!("arn:aws:iam::{}:policy/", self.account);
        role.attached_policies
            .iter()
            .filter(|arn| arn.starts_with(&prefix))
            .find_map(|arn| self.iam.policies.iter().find(|p| &p.arn == arn))
    }
}

impl AwsRegion {
    /// The route table that routes `subnet_id`, and whether by explicit association (else the
    /// VPC's main table), as the LB controller resolves it.
    pub fn effective_route_table(&self, subnet_id: &str) -> Option<(&RouteTable, bool)> {
        if let Some(table) = self.route_tables.iter().find(|t| t.associations.iter().any(|a| a.subnet_id == subnet_id))
        {
            return Some((table, true));
        }
        let vpc = &self.subnets.iter().find(|s| s.id == subnet_id)?.vpc_id;
        self.route_tables.iter().find(|t| t.main && &t.vpc_id == vpc).map(|t| (t, false))
    }

    /// The route that makes `subnet_id` public: a gateway starting with `igw`.
    pub fn igw_route(&self, subnet_id: &str) -> Option<&Route> {
        let (table, _) = self.effective_route_table(subnet_id)?;
        igw_route(table)
    }

    /// The EKS cluster security group: tagged `kubernetes.io/cluster/<name>=owned` in `vpc_id`.
    pub fn cluster_security_groups(&self, cluster_name: &str, vpc_id: Option<&str>) -> Vec<&SecurityGroup> {
        let key = format!("kubernetes.io/cluster/{cluster_name}");
        self.security_groups
            .iter()
            .filter(|g| g.tags.get(&key).is_some_and(|v| v == "owned"))
            .filter(|g| vpc_id.is_none_or(|vpc| g.vpc_id == vpc))
            .collect()
    }

    /// The availability zone IDs of `subnet_ids` (unknown subnets are skipped).
    pub fn az_ids_of(&self, subnet_ids: &[String]) -> Vec<String> {
        let mut ids: Vec<String> = subnet_ids
            .iter()
            .filter_map(|id| self.subnets.iter().find(|s| &s.id == id))
            .map(|s| s.availability_zone_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

pub(crate) fn igw_route(table: &RouteTable) -> Option<&Route> {
    table.routes.iter().find(|r| r.target.starts_with("igw"))
}

/// Whether a security group admits TCP `port` from every one of `sources` (CIDRs).
pub(crate) fn sg_admits(group: &SecurityGroup, port: u16, sources: &[String]) -> bool {
    !sources.is_empty()
        && sources.iter().all(|source| {
            group.ingress.iter().any(|rule| {
                (rule.protocol == "tcp" || rule.protocol == "-1" || rule.protocol == "6")
                    && (rule.protocol == "-1" || (rule.from_port <= port && port <= rule.to_port))
                    && rule.cidr.as_deref().is_some_and(|cidr| cidr_contains(cidr, source))
            })
        })
}

/// `--tunnel-port=N` or `--tunnel-port N` in the first container's args; Portainer's default
/// otherwise. An unreadable value is an error, not a guess.
pub fn tunnel_port(deployment: &Deployment) -> Result<u16, String> {
    let Some(container) = deployment.containers.first() else { return Ok(DEFAULT_TUNNEL_PORT) };
    let mut args = container.args.iter();
    while let Some(arg) = args.next() {
        let value = if let Some(value) = arg.strip_prefix("--tunnel-port=") {
            Some(value.to_string())
        } else if arg == "--tunnel-port" {
            args.next().cloned()
        } else {
            None
        };
        if let Some(value) = value {
            let value = value.trim_matches(['\'', '"']);
            return value.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("{}/{}: --tunnel-port `{value}` is not a port", deployment.namespace, deployment.name)
            });
        }
    }
    Ok(DEFAULT_TUNNEL_PORT)
}

impl PortainerServer {
    /// Whether chisel accepts connections: Edge Compute must be *effective* (seed trap 4).
    pub fn tunnel_listening(&self) -> bool {
        !self.tunnel_needs_edge_compute || self.effective.enable_edge_compute
    }

    /// Settings were changed since the server started: a restart would apply them.
    pub fn restart_pending(&self) -> bool {
        self.settings.enable_edge_compute != self.effective.enable_edge_compute
    }
}

/// The TCP ports a deployment's pods actually listen on.
pub(crate) fn listening_ports(world: &World, context: &str, deployment: &Deployment) -> Vec<u16> {
    match world.portainer_for_deployment(context, &deployment.namespace, &deployment.name) {
        Some(server) => {
            let mut ports = PORTAINER_API_PORTS.to_vec();
            if server.tunnel_listening()
                && let Ok(port) = tunnel_port(deployment)
            {
                ports.push(port);
            }
            ports
        }
        None => deployment.containers.iter().flat_map(|c| c.ports.iter().copied()).collect(),
    }
}

/// The deployments whose pods a Service selects (an empty selector selects nothing).
pub(crate) fn service_endpoints<'c>(cluster: &'c KubeCluster, service: &Service) -> Vec<&'c Deployment> {
    if service.selector.is_empty() {
        return Vec::new();
    }
    cluster
        .deployments
        .iter()
        .filter(|d| d.namespace == service.namespace && d.replicas > 0)
        .filter(|d| service.selector.iter().all(|(k, v)| d.pod_labels.get(k) == Some(v)))
        .collect()
}

/// Whether the AWS Load Balancer Controller (not the in-tree provider) owns this Service.
pub(crate) fn is_lbc_service(service: &Service) -> bool {
    if service.service_type != "LoadBalancer" {
        return false;
    }
    if let Some(class) = &service.load_balancer_class {
        return class == "service.k8s.aws/nlb";
    }
    let annotation = |key: &str| service.annotations.get(&format!("{LBC_PREFIX}{key}")).map(String::as_str);
    match annotation("aws-load-balancer-type") {
        Some("nlb-ip") => true,
        Some("external") => matches!(annotation("aws-load-balancer-nlb-target-type"), Some("ip" | "instance")),
        _ => false,
    }
}

/// The value of `key` in a world tag map, or in a Kubernetes label map.
pub(crate) fn owned_by(tags: &Tags, stack: &str, address: &str) -> bool {
    tags.get(edgeplan_model::backend::STACK_TAG).is_some_and(|s| s == stack)
        && tags.get(edgeplan_model::backend::ADDRESS_TAG).is_some_and(|a| a == address)
}

/// The value of an env var as the pod sees it: literal, or from a Secret/ConfigMap key.
pub(crate) fn env_value(cluster: &KubeCluster, deployment: &Deployment, name: &str) -> Option<String> {
    let var = deployment.containers.first()?.env.iter().find(|e| e.name == name)?;
    if let Some(value) = &var.value {
        return Some(value.clone());
    }
    let source = var.value_from.as_ref()?;
    let objects = match source.kind.as_str() {
        "secret" => &cluster.secrets,
        "config_map" => &cluster.config_maps,
        _ => return None,
    };
    objects
        .iter()
        .find(|o| o.namespace == deployment.namespace && o.name == source.name)
        .and_then(|o| o.data.get(&source.key).cloned())
}

/// Whether a deployment runs the Portainer Edge agent.
pub(crate) fn is_edge_agent(cluster: &KubeCluster, deployment: &Deployment) -> bool {
    deployment.containers.first().is_some_and(|c| c.image.starts_with("portainer/agent"))
        && env_value(cluster, deployment, "EDGE").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://portainer.example.com"), "portainer.example.com");
        assert_eq!(url_host("https://portainer.example.com:9443/api"), "portainer.example.com");
        assert_eq!(url_host("portainer.example.com:30776"), "portainer.example.com");
        assert_eq!(url_host("https://user@host"), "host");
    }
}
