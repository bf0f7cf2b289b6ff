//! `observe`: find each node's live object the way the real backends will, and normalize it.
//!
//! - Owned objects by the `edgeplan.dev/stack` + `edgeplan.dev/address` tags or labels.
//! - Adopted objects by the ID the spec names; named ones by their natural key.
//! - The read-only NLB by the Service's status hostname; Portainer settings as a singleton.
//!
//! A node whose identity depends on another node's output (an association needs the subnet's
//! ID, the NLB the Service's hostname) resolves that reference by observing the other node in
//! the same batch: the engine passes every node at once.
//!
//! Attributes use the node's desired attribute names so the engine can diff, plus observed-only
//! facts the live rules need (effective route table, missing IAM actions, target health…).
//! Key material never appears: keys are described by fingerprint and by field 2, which is not
//! secret.

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_edgekey::{AgentVerdict, EdgeKey, check};
use edgeplan_lint::iam;
use edgeplan_model::backend::{ADDRESS_TAG, FIELD_MANAGER, ObserveError, STACK_TAG};
use edgeplan_model::{Address, Expr, Identity, LiveObject, Node, NodeKind, Observation, Observed, Scope, Value};

use crate::query::{self, LBC_CLUSTER_TAG, LBC_PREFIX, env_value, igw_route, is_lbc_service, owned_by, tunnel_port};
use crate::secret::{EnvRef, env_by_key_fingerprint, environment_key, key_fingerprint};
use crate::world::{AwsAccount, AwsRegion, KubeCluster, PortainerServer, SgRule, Tags, World};

type Outcome = Result<Observed, ObserveError>;

/// Env vars the agent node manages by name; anything else is `extra_env`.
const AGENT_ENV: [&str; 7] =
    ["EDGE", "EDGE_ID", "EDGE_KEY", "EDGE_INSECURE_POLL", "AGENT_SECRET", "AGENT_CLUSTER_ADDR", "KUBERNETES_POD_IP"];

/// Observe every node of `nodes`, in order.
pub(crate) fn observe_all(world: &World, stack: &str, nodes: &[&Node]) -> Vec<Observation> {
    let mut ctx = Ctx::new(world, stack, nodes);
    nodes.iter().map(|node| Observation { address: node.address.clone(), result: ctx.observe(node) }).collect()
}

/// One observation batch: the nodes by address (to resolve references) and what was seen.
pub(crate) struct Ctx<'a> {
    world: &'a World,
    stack: &'a str,
    nodes: BTreeMap<Address, &'a Node>,
    /// Resolved attributes of a node being executed: they stand in for its references.
    overrides: BTreeMap<Address, &'a BTreeMap<String, Value>>,
    memo: BTreeMap<Address, Outcome>,
    in_progress: BTreeSet<Address>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(world: &'a World, stack: &'a str, nodes: &[&'a Node]) -> Ctx<'a> {
        Ctx {
            world,
            stack,
            nodes: nodes.iter().map(|n| (n.address.clone(), *n)).collect(),
            overrides: BTreeMap::new(),
            memo: BTreeMap::new(),
            in_progress: BTreeSet::new(),
        }
    }

    pub(crate) fn with_override(mut self, address: &Address, attributes: &'a BTreeMap<String, Value>) -> Ctx<'a> {
        self.overrides.insert(address.clone(), attributes);
        self
    }

    pub(crate) fn observe(&mut self, node: &'a Node) -> Outcome {
        if let Some(done) = self.memo.get(&node.address) {
            return done.clone();
        }
        if !self.in_progress.insert(node.address.clone()) {
            return Err(fail(format!("{} depends on itself through its references", node.address)));
        }
        let outcome = observe_node(self, node);
        self.in_progress.remove(&node.address);
        self.memo.insert(node.address.clone(), outcome.clone());
        outcome
    }

    /// A desired attribute's value: the literal, or the referenced node's output as observed
    /// now. `None` when it is not known yet.
    fn resolve(&mut self, node: &'a Node, attribute: &str) -> Option<Value> {
        if let Some(value) = self.overrides.get(&node.address).and_then(|m| m.get(attribute)) {
            return Some(value.clone());
        }
        match node.desired.get(attribute)? {
            Expr::Lit(value) => Some(value.clone()),
            Expr::Ref(reference) => {
                let target = *self.nodes.get(&reference.node)?;
                match self.observe(target) {
                    Ok(Observed::Present(object)) => object.outputs.get(reference.output).cloned(),
                    _ => None,
                }
            }
        }
    }

    fn resolve_str(&mut self, node: &'a Node, attribute: &str) -> Option<String> {
        match self.resolve(node, attribute)? {
            Value::Str(text) => Some(text),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn resolve_port(&mut self, node: &'a Node, attribute: &str) -> Option<u16> {
        match self.resolve(node, attribute)? {
            Value::Int(n) => u16::try_from(n).ok(),
            Value::Str(text) => text.parse().ok(),
            _ => None,
        }
    }
}

fn fail(message: impl Into<String>) -> ObserveError {
    ObserveError { message: message.into(), retryable: false }
}

pub(crate) fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn strings<'s>(items: impl IntoIterator<Item = &'s String>) -> Value {
    Value::List(items.into_iter().map(|s| Value::Str(s.clone())).collect())
}

fn tag_map(tags: &Tags) -> Value {
    Value::Map(tags.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))).collect())
}

fn opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::str)
}

/// A live object under construction.
struct Live {
    id: String,
    attributes: BTreeMap<String, Value>,
    outputs: BTreeMap<String, Value>,
    owned: bool,
}

impl Live {
    fn new(id: impl Into<String>, owned: bool) -> Live {
        Live { id: id.into(), attributes: BTreeMap::new(), outputs: BTreeMap::new(), owned }
    }

    fn attr(&mut self, key: &str, value: impl Into<Value>) -> &mut Live {
        self.attributes.insert(key.to_string(), value.into());
        self
    }

    fn output(&mut self, key: &str, value: impl Into<Value>) -> &mut Live {
        self.outputs.insert(key.to_string(), value.into());
        self
    }

    fn done(self) -> Outcome {
        Ok(Observed::Present(LiveObject {
            id: self.id,
            attributes: self.attributes,
            outputs: self.outputs,
            owned: self.owned,
        }))
    }
}

fn aws_scope<'w>(world: &'w World, node: &Node) -> Result<(&'w AwsAccount, &'w AwsRegion), ObserveError> {
    let Scope::Aws { account, region, .. } = &node.scope else {
        return Err(fail(format!("{} is a {} but its scope is not AWS", node.address, node.kind)));
    };
    let found =
        world.account(account).ok_or_else(|| fail(format!("the simulated world has no AWS account {account}")))?;
    let region = found
        .regions
        .iter()
        .find(|r| &r.region == region)
        .ok_or_else(|| fail(format!("the simulated world has no region {region} in account {account}")))?;
    Ok((found, region))
}

fn kube_scope<'w>(world: &'w World, node: &Node) -> Result<&'w KubeCluster, ObserveError> {
    let Scope::Kubernetes { context } = &node.scope else {
        return Err(fail(format!("{} is a {} but its scope is not Kubernetes", node.address, node.kind)));
    };
    world.cluster(context).ok_or_else(|| fail(format!("the simulated world has no kube context `{context}`")))
}

fn portainer_scope<'w>(world: &'w World, node: &Node) -> Result<&'w PortainerServer, ObserveError> {
    let Scope::Portainer { url } = &node.scope else {
        return Err(fail(format!("{} is a {} but its scope is not Portainer", node.address, node.kind)));
    };
    world.portainer_server(url).ok_or_else(|| fail(format!("the simulated world has no Portainer at {url}")))
}

/// The one item carrying this node's ownership tags; several is an error (which is ours?).
fn find_owned<'w, T>(
    items: &'w [T],
    tags: impl Fn(&T) -> &Tags,
    stack: &str,
    address: &Address,
    what: &str,
) -> Result<Option<&'w T>, ObserveError> {
    let found: Vec<&T> = items.iter().filter(|item| owned_by(tags(item), stack, address.as_str())).collect();
    match found.len() {
        0 | 1 => Ok(found.first().copied()),
        n => Err(fail(format!(
            "{n} {what} carry {STACK_TAG}={stack} and {ADDRESS_TAG}={address}: edgeplan cannot tell which is its own"
        ))),
    }
}

fn stack_owned(tags: &Tags, stack: &str) -> bool {
    tags.get(STACK_TAG).is_some_and(|s| s == stack)
}

fn observe_node<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    match node.kind {
        NodeKind::LbControllerPolicy => policy(ctx, node),
        NodeKind::NlbSubnet => subnet(ctx, node),
        NodeKind::NlbRouteTable => route_table(ctx, node),
        NodeKind::NlbRouteTableAssociation => association(ctx, node),
        NodeKind::EdgeComputeSetting => settings(ctx, node),
        NodeKind::PortainerRestart => restart(ctx, node),
        NodeKind::TunnelService => tunnel_service(ctx, node),
        NodeKind::Nlb => nlb(ctx, node),
        NodeKind::ClusterSgRule => sg_rule(ctx, node),
        NodeKind::EndpointService => endpoint_service(ctx, node),
        NodeKind::EndpointServicePermissions => permissions(ctx, node),
        NodeKind::VpceSecurityGroup => vpce_security_group(ctx, node),
        NodeKind::Vpce => vpce(ctx, node),
        NodeKind::ConnectionAcceptance => acceptance(ctx, node),
        NodeKind::PortainerEnvironment => environment(ctx, node),
        NodeKind::AgentKey => agent_key(ctx, node),
        NodeKind::AgentObjects => agent(ctx, node),
    }
}

// ----- AWS ---------------------------------------------------------------------------------

fn policy<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (account, _) = aws_scope(ctx.world, node)?;
    let role_name = match &node.identity {
        Identity::Named { name } => name.clone(),
        _ => ctx.resolve_str(node, "role_name").unwrap_or_default(),
    };
    let role = account
        .iam
        .roles
        .iter()
        .find(|r| r.name == role_name)
        .ok_or_else(|| fail(format!("IAM role {role_name} does not exist in account {}", account.account)))?;
    let Some(policy) = account.role_customer_policy(&role_name) else { return Ok(Observed::Absent) };
    let version = policy.versions.iter().find(|v| v.id == policy.default_version).ok_or_else(|| {
        fail(format!("{}: default version {} is not among its versions", policy.arn, policy.default_version))
    })?;
    let document = serde_json::to_string(&version.document).unwrap_or_default();
    let allowed = iam::allowed_actions(document.as_bytes())
        .map_err(|e| fail(format!("{} {}: the policy document cannot be read ({e:?})", policy.arn, version.id)))?;
    let missing = iam::missing_actions(&allowed, iam::INTERNAL_NLB_ACTIONS);
    let mut allowed_sorted = allowed.clone();
    allowed_sorted.sort();
    allowed_sorted.dedup();
    // IAM refuses to delete the default version: the oldest other one is what gets pruned.
    let oldest_other =
        policy.versions.iter().filter(|v| v.id != policy.default_version).min_by_key(|v| version_number(&v.id));
    let mut live = Live::new(&policy.arn, owned_by(&policy.tags, ctx.stack, node.address.as_str()));
    live.attr("role_name", role_name.as_str())
        .attr("policy_arn", policy.arn.as_str())
        .attr("policy_name", policy.name.as_str())
        .attr("policy_document", document)
        .attr("default_version", policy.default_version.as_str())
        .attr("versions", strings(policy.versions.iter().map(|v| &v.id)))
        .attr("version_count", int(policy.versions.len() as u64))
        .attr("oldest_non_default_version", opt_str(oldest_other.map(|v| v.id.as_str())))
        .attr("allowed_actions", strings(allowed_sorted.iter()))
        .attr("missing_actions", Value::List(missing.iter().map(|a| Value::str(*a)).collect()))
        .attr("attached_policies", strings(role.attached_policies.iter()))
        .output("policy_arn", policy.arn.as_str())
        .output("default_version", policy.default_version.as_str());
    live.done()
}

pub(crate) fn version_number(id: &str) -> u64 {
    id.trim_start_matches(['v', 'V']).parse().unwrap_or(0)
}

fn subnet<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    let found = match &node.identity {
        Identity::Adopted { id } => region.subnets.iter().find(|s| &s.id == id),
        _ => find_owned(&region.subnets, |s| &s.tags, ctx.stack, &node.address, "subnets")?,
    };
    let Some(subnet) = found else { return Ok(Observed::Absent) };
    let mut live = Live::new(&subnet.id, owned_by(&subnet.tags, ctx.stack, node.address.as_str()));
    live.attr("vpc_id", subnet.vpc_id.as_str())
        .attr("cidr_block", subnet.cidr.as_str())
        .attr("availability_zone", subnet.availability_zone.as_str())
        .attr("availability_zone_id", subnet.availability_zone_id.as_str())
        .attr("available_ip_address_count", subnet.available_ips)
        .attr("tags", tag_map(&subnet.tags));
    // `tag:kubernetes.io/cluster` is desired as `<cluster>=<value>` (the key holds the name).
    let wanted_cluster = match node.desired.get("tag:kubernetes.io/cluster") {
        Some(Expr::Lit(Value::Str(text))) => text.split_once('=').map(|(name, _)| name.to_string()),
        _ => None,
    };
    let mut cluster_tags = subnet.tags.iter().filter_map(|(k, v)| {
        k.strip_prefix("kubernetes.io/cluster/").map(|name| (name.to_string(), format!("{name}={v}")))
    });
    let cluster_tag = match &wanted_cluster {
        Some(name) => cluster_tags.find(|(n, _)| n == name),
        None => cluster_tags.next(),
    };
    if let Some((_, text)) = cluster_tag {
        live.attr("tag:kubernetes.io/cluster", text);
    }
    for (key, value) in subnet.tags.iter().filter(|(k, _)| !k.starts_with("kubernetes.io/cluster/")) {
        live.attr(&format!("tag:{key}"), value.as_str());
    }
    match region.effective_route_table(&subnet.id) {
        Some((table, explicit)) => {
            let igw = igw_route(table);
            live.attr("route_table_id", table.id.as_str())
                .attr("route_table_association", if explicit { "explicit" } else { "main" })
                .attr("routes_to_igw", igw.is_some())
                .attr("igw_route", opt_str(igw.map(|r| format!("{} → {}", r.destination, r.target)).as_deref()))
                .attr("public", igw.is_some());
        }
        None => {
            live.attr("route_table_id", Value::Null).attr("routes_to_igw", false).attr("public", false);
        }
    }
    live.output("id", subnet.id.as_str())
        .output("cidr_block", subnet.cidr.as_str())
        .output("availability_zone_id", subnet.availability_zone_id.as_str());
    live.done()
}

fn route_map(destination: &str, target: &str) -> Value {
    let mut map = BTreeMap::new();
    map.insert("destination".to_string(), Value::str(destination));
    map.insert("target".to_string(), Value::str(target));
    Value::Map(map)
}

fn route_table<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    let found = match &node.identity {
        Identity::Adopted { id } => region.route_tables.iter().find(|t| &t.id == id),
        _ => find_owned(&region.route_tables, |t| &t.tags, ctx.stack, &node.address, "route tables")?,
    };
    let Some(table) = found else { return Ok(Observed::Absent) };
    let mut live = Live::new(&table.id, owned_by(&table.tags, ctx.stack, node.address.as_str()));
    live.attr("vpc_id", table.vpc_id.as_str())
        .attr("routes", Value::List(table.routes.iter().map(|r| route_map(&r.destination, &r.target)).collect()))
        .attr("main", table.main)
        .attr("associations", strings(table.associations.iter().map(|a| &a.subnet_id)))
        .attr("routes_to_igw", igw_route(table).is_some())
        .output("id", table.id.as_str());
    live.done()
}

fn association<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    let Some(subnet_id) = ctx.resolve_str(node, "subnet_id") else { return Ok(Observed::Absent) };
    let Some((table, association)) = region
        .route_tables
        .iter()
        .find_map(|t| t.associations.iter().find(|a| a.subnet_id == subnet_id).map(|a| (t, a)))
    else {
        return Ok(Observed::Absent);
    };
    let mut live = Live::new(&association.id, stack_owned(&table.tags, ctx.stack));
    live.attr("subnet_id", subnet_id.as_str())
        .attr("route_table_id", table.id.as_str())
        .attr("routes_to_igw", igw_route(table).is_some())
        .output("id", association.id.as_str())
        .output("route_table_id", table.id.as_str());
    live.done()
}

fn nlb<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (account, region) = aws_scope(ctx.world, node)?;
    let Some(hostname) = ctx.resolve_str(node, "hostname") else { return Ok(Observed::Absent) };
    let Some(lb) = region.load_balancers.iter().find(|lb| lb.dns_name == hostname) else { return Ok(Observed::Absent) };
    let health: Vec<Value> = lb
        .targets
        .iter()
        .map(|t| {
            let mut map = BTreeMap::new();
            map.insert("target".to_string(), Value::str(t.id.as_str()));
            map.insert("port".to_string(), Value::from(t.port));
            map.insert("state".to_string(), Value::str(t.health.as_str()));
            map.insert("reason".to_string(), opt_str(Some(t.reason.as_str()).filter(|r| !r.is_empty())));
            map.insert("description".to_string(), opt_str(Some(t.description.as_str()).filter(|r| !r.is_empty())));
            Value::Map(map)
        })
        .collect();
    let listeners: Vec<Value> = lb
        .listeners
        .iter()
        .map(|l| {
            let mut map = BTreeMap::new();
            map.insert("port".to_string(), Value::from(l.port));
            map.insert("protocol".to_string(), Value::str(l.protocol.as_str()));
            map.insert("target_port".to_string(), Value::from(l.target_port));
            Value::Map(map)
        })
        .collect();
    let healthy = lb.targets.iter().filter(|t| t.health == "healthy").count();
    let cluster = lb.tags.get(LBC_CLUSTER_TAG).and_then(|name| {
        ctx.world
            .kubernetes
            .iter()
            .find(|c| &c.cluster_name == name && c.aws.as_ref().is_some_and(|a| a.account == account.account))
    });
    let manages_rules = cluster.and_then(|c| c.lb_controller.as_ref()).map(|c| c.manage_backend_security_group_rules);
    let public_subnets: Vec<&String> = lb.subnet_ids.iter().filter(|id| region.igw_route(id).is_some()).collect();
    let policy_version = ctx.resolve(node, "controller_policy_version");
    let mut live = Live::new(&lb.arn, false);
    live.attr("hostname", lb.dns_name.as_str())
        .attr("arn", lb.arn.as_str())
        .attr("name", lb.name.as_str())
        .attr("scheme", lb.scheme.as_str())
        .attr("state", lb.state.as_str())
        .attr("type", "network")
        .attr("vpc_id", lb.vpc_id.as_str())
        .attr("subnet_ids", strings(lb.subnet_ids.iter()))
        .attr("availability_zone_ids", strings(lb.availability_zone_ids.iter()))
        .attr("security_groups", strings(lb.security_groups.iter()))
        .attr("listeners", Value::List(listeners))
        .attr("target_health", Value::List(health))
        .attr("healthy_target_count", int(healthy as u64))
        .attr("targets_healthy", !lb.targets.is_empty() && healthy == lb.targets.len())
        .attr("public_subnet_ids", strings(public_subnets))
        .attr("controller_manages_backend_sg_rules", manages_rules.map_or(Value::Null, Value::Bool))
        .attr("controller_policy_version", policy_version.unwrap_or(Value::Null));
    if let Some((table, _)) = lb.subnet_ids.first().and_then(|id| region.effective_route_table(id)) {
        live.attr("subnet_route_table", table.id.as_str());
    }
    live.output("arn", lb.arn.as_str())
        .output("dns_name", lb.dns_name.as_str())
        .output("availability_zone_ids", strings(lb.availability_zone_ids.iter()));
    live.done()
}

fn rule_map(rule: &SgRule) -> Value {
    let mut map = BTreeMap::new();
    map.insert("id".to_string(), Value::str(rule.id.as_str()));
    map.insert("protocol".to_string(), Value::str(rule.protocol.as_str()));
    map.insert("from_port".to_string(), Value::from(rule.from_port));
    map.insert("to_port".to_string(), Value::from(rule.to_port));
    map.insert("source".to_string(), opt_str(rule.cidr.as_deref().or(rule.source_group.as_deref())));
    map.insert("description".to_string(), Value::str(rule.description.as_str()));
    map.insert("edgeplan".to_string(), Value::Bool(rule.tags.contains_key(STACK_TAG)));
    Value::Map(map)
}

/// The security group a rule node targets: adopted by ID, or the EKS cluster SG discovered by
/// its `kubernetes.io/cluster/<name>=owned` tag.
pub(crate) fn cluster_sg<'w>(
    region: &'w AwsRegion,
    explicit_id: Option<&str>,
    cluster_name: Option<&str>,
) -> Result<&'w crate::world::SecurityGroup, String> {
    // The rule is edgeplan's own; the spec may name the group it belongs in, else discover it.
    match explicit_id {
        Some(id) => region
            .security_groups
            .iter()
            .find(|g| g.id == id)
            .ok_or_else(|| format!("security group {id} does not exist in {}", region.region)),
        None => {
            let name = cluster_name.ok_or("no cluster name to discover the cluster security group by")?;
            let groups = region.cluster_security_groups(name, None);
            match groups.as_slice() {
                [one] => Ok(*one),
                [] => {
                    Err(format!("no security group is tagged kubernetes.io/cluster/{name}=owned in {}", region.region))
                }
                _ => Err(format!(
                    "{} security groups are tagged kubernetes.io/cluster/{name}=owned: name one with clusterSecurityGroup.id",
                    groups.len()
                )),
            }
        }
    }
}

fn sg_rule<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (account, region) = aws_scope(ctx.world, node)?;
    let cluster_name = ctx.resolve_str(node, "cluster_name");
    let explicit = ctx.resolve_str(node, "security_group_id");
    let group = cluster_sg(region, explicit.as_deref(), cluster_name.as_deref()).map_err(fail)?;
    let port = ctx.resolve_port(node, "port");
    let source = ctx.resolve_str(node, "source_cidr");
    let manages_rules = cluster_name
        .as_deref()
        .and_then(|name| {
            ctx.world
                .kubernetes
                .iter()
                .find(|c| c.cluster_name == name && c.aws.as_ref().is_some_and(|a| a.account == account.account))
        })
        .and_then(|c| c.lb_controller.as_ref())
        .map(|c| c.manage_backend_security_group_rules);
    let mine: Vec<&SgRule> =
        group.ingress.iter().filter(|r| owned_by(&r.tags, ctx.stack, node.address.as_str())).collect();
    if mine.len() > 1 {
        return Err(fail(format!("{} rules in {} carry {ADDRESS_TAG}={}", mine.len(), group.id, node.address)));
    }
    // Someone else's rule that does exactly this job counts (a duplicate would be refused).
    let equivalent = || {
        group.ingress.iter().find(|r| {
            r.protocol == "tcp"
                && port.is_some_and(|p| r.from_port == p && r.to_port == p)
                && source.as_deref().is_some_and(|s| r.cidr.as_deref() == Some(s))
        })
    };
    let Some(rule) = mine.first().copied().or_else(equivalent) else { return Ok(Observed::Absent) };
    let owned = owned_by(&rule.tags, ctx.stack, node.address.as_str());
    let group_cluster = group
        .tags
        .iter()
        .find_map(|(k, v)| k.strip_prefix("kubernetes.io/cluster/").filter(|_| v == "owned"))
        .map(str::to_string);
    let admitted = match (port, &source) {
        (Some(port), Some(source)) => Value::Bool(query::sg_admits(group, port, std::slice::from_ref(source))),
        _ => Value::Null,
    };
    let mut live = Live::new(&rule.id, owned);
    live.attr("security_group_id", group.id.as_str())
        .attr("cluster_name", opt_str(group_cluster.as_deref().or(cluster_name.as_deref())))
        .attr("protocol", rule.protocol.as_str())
        .attr("port", if rule.from_port == rule.to_port { Value::from(rule.from_port) } else { Value::Null })
        .attr("from_port", rule.from_port)
        .attr("to_port", rule.to_port)
        .attr("source_cidr", opt_str(rule.cidr.as_deref()))
        .attr("description", rule.description.as_str())
        .attr("sg_ingress", Value::List(group.ingress.iter().map(rule_map).collect()))
        .attr("traffic_admitted", admitted)
        .attr("controller_manages_backend_sg_rules", manages_rules.map_or(Value::Null, Value::Bool))
        .output("rule_id", rule.id.as_str());
    live.done()
}

/// The AZ IDs an endpoint service is available in: its NLBs' AZs.
pub(crate) fn service_az_ids(world: &World, service: &crate::world::EndpointService) -> Vec<String> {
    let mut ids: Vec<String> = world
        .regions()
        .flat_map(|(_, r)| r.load_balancers.iter())
        .filter(|lb| service.network_load_balancer_arns.contains(&lb.arn))
        .flat_map(|lb| lb.availability_zone_ids.iter().cloned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn endpoint_service<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    let Some(service) =
        find_owned(&region.endpoint_services, |s| &s.tags, ctx.stack, &node.address, "endpoint services")?
    else {
        return Ok(Observed::Absent);
    };
    let mut live = Live::new(&service.service_id, true);
    live.attr("network_load_balancer_arn", opt_str(service.network_load_balancer_arns.first().map(String::as_str)))
        .attr("network_load_balancer_arns", strings(service.network_load_balancer_arns.iter()))
        .attr("acceptance_required", service.acceptance_required)
        .attr("state", service.state.as_str())
        .attr("service_name", service.service_name.as_str())
        .attr("service_type", "Interface")
        .attr("availability_zone_ids", strings(service_az_ids(ctx.world, service).iter()))
        .attr("allowed_principals", strings(service.allowed_principals.iter()))
        .attr("base_endpoint_dns_name", format!("{}.{}.vpce.amazonaws.com", service.service_id, region.region))
        .output("service_id", service.service_id.as_str())
        .output("service_name", service.service_name.as_str());
    live.done()
}

fn permissions<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    let Some(service_id) = ctx.resolve_str(node, "service_id") else { return Ok(Observed::Absent) };
    let Some(service) = region.endpoint_services.iter().find(|s| s.service_id == service_id) else {
        return Ok(Observed::Absent);
    };
    // `DescribeVpcEndpointServicePermissions` with no principals: nothing to own yet.
    if service.allowed_principals.is_empty() {
        return Ok(Observed::Absent);
    }
    let mut principals = service.allowed_principals.clone();
    principals.sort();
    let mut live = Live::new(format!("{service_id}/permissions"), stack_owned(&service.tags, ctx.stack));
    live.attr("service_id", service_id.as_str())
        .attr("allowed_principals", strings(principals.iter()))
        .output("allowed_principals", strings(principals.iter()));
    live.done()
}

fn vpce_security_group<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    let found = match &node.identity {
        Identity::Adopted { id } => region.security_groups.iter().find(|g| &g.id == id),
        _ => find_owned(&region.security_groups, |g| &g.tags, ctx.stack, &node.address, "security groups")?,
    };
    let Some(group) = found else { return Ok(Observed::Absent) };
    let tcp: Vec<&SgRule> = group.ingress.iter().filter(|r| r.protocol == "tcp" && r.from_port == r.to_port).collect();
    let ports: BTreeSet<u16> = tcp.iter().map(|r| r.from_port).collect();
    let port = match ports.len() {
        1 => ports.first().copied(),
        _ => ctx.resolve_port(node, "ingress_port").filter(|p| ports.contains(p)),
    };
    let cidrs: BTreeSet<&str> =
        tcp.iter().filter(|r| Some(r.from_port) == port).filter_map(|r| r.cidr.as_deref()).collect();
    let mut live = Live::new(&group.id, owned_by(&group.tags, ctx.stack, node.address.as_str()));
    live.attr("id", group.id.as_str())
        .attr("vpc_id", group.vpc_id.as_str())
        .attr("name", group.name.as_str())
        .attr("ingress_port", port.map_or(Value::Null, Value::from))
        .attr("ingress_cidrs", Value::List(cidrs.iter().map(|c| Value::str(*c)).collect()))
        .attr("ingress", Value::List(group.ingress.iter().map(rule_map).collect()))
        .output("id", group.id.as_str());
    live.done()
}

/// The endpoint service called `name`, wherever it lives.
pub(crate) fn service_by_name<'w>(world: &'w World, name: &str) -> Option<&'w crate::world::EndpointService> {
    world.regions().flat_map(|(_, r)| r.endpoint_services.iter()).find(|s| s.service_name == name)
}

pub(crate) fn principal_allowed(service: &crate::world::EndpointService, account: &str) -> bool {
    service.allowed_principals.iter().any(|p| p == "*" || p.split(':').nth(4) == Some(account))
}

fn vpce<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (account, region) = aws_scope(ctx.world, node)?;
    let Some(endpoint) = find_owned(&region.vpc_endpoints, |e| &e.tags, ctx.stack, &node.address, "VPC endpoints")?
    else {
        return Ok(Observed::Absent);
    };
    let subnet_azs = region.az_ids_of(&endpoint.subnet_ids);
    let service = service_by_name(ctx.world, &endpoint.service_name);
    let service_azs = service.map(|s| service_az_ids(ctx.world, s)).unwrap_or_default();
    let shared: Vec<&String> = subnet_azs.iter().filter(|az| service_azs.contains(az)).collect();
    let mut live = Live::new(&endpoint.id, true);
    live.attr("vpc_id", endpoint.vpc_id.as_str())
        .attr("vpc_endpoint_type", endpoint.endpoint_type.as_str())
        .attr("service_name", endpoint.service_name.as_str())
        .attr("security_group_id", opt_str(endpoint.security_group_ids.first().map(String::as_str)))
        .attr("security_group_ids", strings(endpoint.security_group_ids.iter()))
        .attr("subnet_ids", strings(endpoint.subnet_ids.iter()))
        .attr("state", endpoint.state.as_str())
        .attr("connection_state", endpoint.state.as_str())
        .attr("dns_name", opt_str(endpoint.dns_entries.first().map(String::as_str)))
        .attr("dns_entries", strings(endpoint.dns_entries.iter()))
        .attr("subnet_availability_zone_ids", strings(subnet_azs.iter()))
        .attr("service_availability_zone_ids", strings(service_azs.iter()))
        .attr("shared_availability_zone_ids", strings(shared))
        .attr("allowed_principals", service.map_or(Value::Null, |s| strings(s.allowed_principals.iter())))
        .attr("consumer_permitted", service.is_some_and(|s| principal_allowed(s, &account.account)))
        .output("id", endpoint.id.as_str());
    if let Some(dns) = endpoint.dns_entries.first() {
        live.output("dns_name", dns.as_str());
    }
    live.done()
}

fn acceptance<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let (_, region) = aws_scope(ctx.world, node)?;
    // The endpoint's ID, or (when the VPC endpoint node is not in this batch) its sibling
    // address: the endpoint carries the ownership tags, the connection has none of its own.
    let endpoint_id = ctx.resolve_str(node, "vpc_endpoint_id");
    let sibling = node.address.as_str().rsplit_once('.').map(|(prefix, _)| format!("{prefix}.vpce"));
    let found = ctx.world.regions().find_map(|(a, r)| {
        r.vpc_endpoints
            .iter()
            .find(|e| match &endpoint_id {
                Some(id) => &e.id == id,
                None => sibling.as_deref().is_some_and(|s| owned_by(&e.tags, ctx.stack, s)),
            })
            .map(|e| (a, e))
    });
    let Some((owner, endpoint)) = found else { return Ok(Observed::Absent) };
    let service = match ctx.resolve_str(node, "service_id") {
        Some(id) => region.endpoint_services.iter().find(|s| s.service_id == id),
        None => region.endpoint_services.iter().find(|s| s.service_name == endpoint.service_name),
    };
    let Some(service) = service.filter(|s| s.service_name == endpoint.service_name) else {
        return Ok(Observed::Absent);
    };
    let mut live = Live::new(format!("{}/{}", service.service_id, endpoint.id), stack_owned(&endpoint.tags, ctx.stack));
    live.attr("service_id", service.service_id.as_str())
        .attr("vpc_endpoint_id", endpoint.id.as_str())
        .attr("vpc_endpoint_owner", owner.account.as_str())
        .attr("state", endpoint.state.as_str())
        .output("state", endpoint.state.as_str());
    live.done()
}

// ----- Kubernetes --------------------------------------------------------------------------

fn restart<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let cluster = kube_scope(ctx.world, node)?;
    let namespace = ctx.resolve_str(node, "namespace").unwrap_or_else(|| "portainer".to_string());
    let name = match &node.identity {
        Identity::Named { name } => name.clone(),
        _ => "portainer".to_string(),
    };
    let Some(deployment) = cluster.deployments.iter().find(|d| d.namespace == namespace && d.name == name) else {
        return Ok(Observed::Absent);
    };
    let port = tunnel_port(deployment).map_err(fail)?;
    let mut live =
        Live::new(format!("{namespace}/{name}"), deployment.field_managers.iter().any(|m| m == FIELD_MANAGER));
    live.attr("namespace", namespace.as_str())
        .attr("args", strings(deployment.containers.first().map(|c| c.args.iter()).into_iter().flatten()))
        .attr("tunnel_port", port)
        .attr("generation", int(deployment.generation))
        .attr("ready_generation", int(deployment.ready_generation))
        .attr("rollout_complete", deployment.ready_generation >= deployment.generation)
        .attr(
            "restarted_at",
            opt_str(deployment.annotations.get("kubectl.kubernetes.io/restartedAt").map(String::as_str)),
        );
    if let Some(server) = ctx.world.portainer_for_deployment(&cluster.context, &namespace, &name) {
        live.attr("after_settings_revision", int(server.effective.revision))
            .attr("settings_revision", int(server.settings.revision))
            .attr("pending_settings_restart", server.restart_pending())
            .attr("edge_compute_effective", server.effective.enable_edge_compute)
            .attr("tunnel_listening", server.tunnel_listening())
            .attr("portainer_url", server.url.as_str());
    }
    live.output("tunnel_port", port).output("revision", int(deployment.generation));
    live.done()
}

fn tunnel_service<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let cluster = kube_scope(ctx.world, node)?;
    let namespace = ctx.resolve_str(node, "namespace").unwrap_or_else(|| "portainer".to_string());
    let name = match &node.identity {
        Identity::Named { name } => name.clone(),
        _ => return Err(fail(format!("{}: a tunnel Service is found by name", node.address))),
    };
    let Some(service) = cluster.services.iter().find(|s| s.namespace == namespace && s.name == name) else {
        return Ok(Observed::Absent);
    };
    let wanted_port = ctx.resolve_port(node, "port");
    let port = service.ports.iter().find(|p| Some(p.port) == wanted_port).or_else(|| service.ports.first());
    let object = format!("Service/{name}");
    let last_event = cluster.events.iter().rev().find(|e| e.namespace == namespace && e.object == object);
    let owned = owned_by(&service.labels, ctx.stack, node.address.as_str());
    let mut live = Live::new(format!("{namespace}/{name}"), owned);
    live.attr("namespace", namespace.as_str())
        .attr("type", service.service_type.as_str())
        .attr("port", port.map_or(Value::Null, |p| Value::from(p.port)))
        .attr("target_port", port.map_or(Value::Null, |p| Value::from(p.target_port)))
        .attr("annotations", tag_map(&service.annotations))
        .attr("selector", tag_map(&service.selector))
        .attr("load_balancer_class", opt_str(service.load_balancer_class.as_deref()))
        .attr("load_balancer_hostname", opt_str(service.status_hostname.as_deref()))
        .attr("lb_controller_handles", is_lbc_service(service))
        .attr("controller_event_reason", opt_str(last_event.map(|e| e.reason.as_str())))
        .attr("controller_event", opt_str(last_event.map(|e| e.message.as_str())))
        .attr("field_managers", strings(service.field_managers.iter()));
    for (key, value) in &service.annotations {
        if let Some(short) = key.strip_prefix(LBC_PREFIX) {
            live.attr(&format!("annotation:{short}"), value.as_str());
        }
    }
    if let Some(Expr::Lit(Value::Map(wanted))) = node.desired.get("extra_annotations") {
        let extra: BTreeMap<String, Value> = wanted
            .keys()
            .filter_map(|k| service.annotations.get(k).map(|v| (k.clone(), Value::str(v.as_str()))))
            .collect();
        live.attr("extra_annotations", Value::Map(extra));
    }
    if let Some(hostname) = &service.status_hostname {
        live.output("load_balancer_hostname", hostname.as_str());
    }
    if let Some(port) = port {
        live.output("target_port", port.target_port);
    }
    live.done()
}

/// What can be said about an EDGE_KEY without saying the key.
fn describe_key(live: &mut Live, raw: Option<&str>) {
    let Some(raw) = raw else {
        live.attr("edge_key_present", false);
        return;
    };
    let report = check(raw.as_bytes());
    let key = EdgeKey::parse(raw.as_bytes()).ok();
    live.attr("edge_key_present", true)
        .attr("edge_key_fingerprint", key_fingerprint(raw))
        .attr("edge_key_valid", report.is_valid())
        .attr("edge_key_agent_error", opt_str(report.agent_verdict().agent_error().as_deref()))
        .attr(
            "edge_key_canonical",
            report.agent_verdict() == AgentVerdict::Accepts
                && key.as_ref().is_some_and(|k| k.to_canonical().expose_secret() == raw),
        )
        .attr("edge_key_tunnel", opt_str(key.as_ref().map(EdgeKey::tunnel_addr)))
        .attr("edge_key_endpoint_id", key.as_ref().map_or(Value::Null, |k| Value::Int(k.endpoint_id())))
        .attr("edge_key_server_fingerprint", opt_str(key.as_ref().map(EdgeKey::server_fingerprint)));
}

fn agent<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let cluster = kube_scope(ctx.world, node)?;
    let namespace = ctx.resolve_str(node, "namespace").unwrap_or_else(|| "portainer".to_string());
    let labelled = find_owned(&cluster.deployments, |d| &d.labels, ctx.stack, &node.address, "deployments")?;
    // The install script's agent, not labelled yet: observed so its key can be diagnosed.
    let found = labelled
        .or_else(|| cluster.deployments.iter().find(|d| d.namespace == namespace && d.name == "portainer-agent"));
    let Some(deployment) = found else { return Ok(Observed::Absent) };
    let owned = owned_by(&deployment.labels, ctx.stack, node.address.as_str());
    let container = deployment.containers.first();
    let raw_key = env_value(cluster, deployment, "EDGE_KEY");
    let extra: BTreeMap<String, Value> = container
        .map(|c| c.env.iter())
        .into_iter()
        .flatten()
        .filter(|e| !AGENT_ENV.contains(&e.name.as_str()))
        .map(|e| (e.name.clone(), opt_str(env_value(cluster, deployment, &e.name).as_deref())))
        .collect();
    let status = deployment.agent_status.as_ref();
    let mut live = Live::new(format!("{}/{}", deployment.namespace, deployment.name), owned);
    live.attr("namespace", deployment.namespace.as_str())
        .attr("image", opt_str(container.map(|c| c.image.as_str())))
        .attr("EDGE_ID", opt_str(env_value(cluster, deployment, "EDGE_ID").as_deref()))
        .attr(
            "EDGE_INSECURE_POLL",
            env_value(cluster, deployment, "EDGE_INSECURE_POLL")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        )
        .attr("EDGE_KEY", opt_str(raw_key.as_deref().map(key_fingerprint).as_deref()))
        .attr(
            "AGENT_SECRET",
            opt_str(
                env_value(cluster, deployment, "AGENT_SECRET")
                    .filter(|v| !v.is_empty())
                    .map(|v| edgeplan_model::secret_fingerprint(v.as_bytes()))
                    .as_deref(),
            ),
        )
        .attr("extra_env", Value::Map(extra))
        .attr("replicas", deployment.replicas)
        .attr("generation", int(deployment.generation))
        .attr("rollout_complete", deployment.ready_generation >= deployment.generation)
        .attr("field_managers", strings(deployment.field_managers.iter()))
        .attr("agent_state", opt_str(status.map(|s| s.state.as_str())))
        .attr("agent_message", opt_str(status.map(|s| s.message.as_str())))
        .attr("tunnel_connected", status.is_some_and(|s| s.state == "connected"));
    describe_key(&mut live, raw_key.as_deref());
    if let Some(state) = ctx.resolve(node, "connection_state") {
        live.attr("connection_state", state);
    }
    live.output("rollout", int(deployment.generation));
    live.done()
}

// ----- Portainer ---------------------------------------------------------------------------

fn settings<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let server = portainer_scope(ctx.world, node)?;
    let mut live = Live::new(format!("{}/api/settings", server.url.trim_end_matches('/')), false);
    live.attr("EnableEdgeComputeFeatures", server.settings.enable_edge_compute)
        .attr("effective:EnableEdgeComputeFeatures", server.effective.enable_edge_compute)
        .attr("EnforceEdgeID", server.settings.enforce_edge_id)
        .attr("EdgeAgentCheckinInterval", int(server.settings.checkin_interval))
        .attr("revision", int(server.settings.revision))
        .attr("effective_revision", int(server.effective.revision))
        .attr("pending_restart", server.restart_pending())
        .output("revision", int(server.settings.revision));
    live.done()
}

/// Portainer's EndpointType enum.
pub fn environment_type(id: i64) -> &'static str {
    match id {
        1 => "docker",
        2 => "agent-docker",
        3 => "azure",
        4 => "edge-agent-docker",
        5 => "kubernetes-local",
        6 => "agent-kubernetes",
        7 => "edge-agent-kubernetes",
        _ => "unknown",
    }
}

/// Portainer creates every Edge environment as type 4 and sets the platform on the agent's
/// first poll (portainer.md §2): until then it is an Edge environment for whichever agent comes,
/// so it is not reported as a Docker one.
fn normalized_type(id: i64, last_check_in: u64) -> &'static str {
    match (id, last_check_in) {
        (4, 0) => "edge-agent-kubernetes",
        (id, _) => environment_type(id),
    }
}

/// The Edge ID an agent will register on its first poll: Portainer accepts any while the
/// environment has none, so it is derived (UUID-shaped) from the stack and the address, and
/// stays the same across runs.
pub(crate) fn proposed_edge_id(stack: &str, address: &str, env_id: i64) -> String {
    let hex = crate::sim::hex_of(&format!("{stack}|{address}|{env_id}"), 32);
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

fn environment<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let server = portainer_scope(ctx.world, node)?;
    let found = match &node.identity {
        Identity::Adopted { id } => {
            let id: i64 = id.parse().map_err(|_| fail(format!("environment id `{id}` is not a number")))?;
            server.environments.iter().find(|e| e.id == id)
        }
        Identity::Named { name } => server.environments.iter().find(|e| &e.name == name),
        _ => return Err(fail(format!("{}: an environment is found by id or name", node.address))),
    };
    let Some(env) = found else { return Ok(Observed::Absent) };
    let owned = env.created_by.as_ref().is_some_and(|o| o.stack == ctx.stack && o.address == node.address.as_str());
    let interval = if env.checkin_interval == 0 { server.settings.checkin_interval } else { env.checkin_interval };
    let heartbeat = env.last_check_in > 0
        && ctx.world.now.saturating_sub(env.last_check_in) <= interval.saturating_mul(2).saturating_add(20);
    let mut live = Live::new(env.id.to_string(), owned);
    live.attr("id", Value::Int(env.id))
        .attr("name", env.name.as_str())
        .attr("type", normalized_type(env.env_type, env.last_check_in))
        .attr("type_id", Value::Int(env.env_type))
        .attr("url", env.url.as_str())
        .attr("edge_id", opt_str(Some(env.edge_id.as_str()).filter(|e| !e.is_empty())))
        .attr("edge_id_registered", !env.edge_id.is_empty())
        .attr("last_check_in_date", int(env.last_check_in))
        .attr("heartbeat", heartbeat)
        .attr("user_trusted", env.user_trusted)
        .attr("tunnel_connected", env.tunnel_connected)
        .attr("checkin_interval", int(interval));
    if env.edge_key.is_empty() {
        live.attr("edge_key_present", false);
    } else {
        let key = EdgeKey::parse(env.edge_key.as_bytes())
            .map_err(|e| fail(format!("environment {} ({}): its EdgeKey cannot be read: {e}", env.id, env.name)))?;
        describe_key(&mut live, Some(&env.edge_key));
        live.attr("edge_key_endpoint_id_matches", key.endpoint_id() == env.id)
            .attr("edge_key_server_fingerprint_matches", key.server_fingerprint() == server.server_fingerprint)
            .output("edge_key", key_fingerprint(&env.edge_key));
    }
    let edge_id = match env.edge_id.as_str() {
        "" => proposed_edge_id(ctx.stack, node.address.as_str(), env.id),
        id => id.to_string(),
    };
    live.output("id", Value::Int(env.id)).output("edge_id", edge_id);
    live.done()
}

fn agent_key<'a>(ctx: &mut Ctx<'a>, node: &'a Node) -> Outcome {
    let Some(source_fingerprint) = ctx.resolve_str(node, "portainer_key") else { return Ok(Observed::Absent) };
    // The environment: through the reference when its node is in the batch, else by the
    // fingerprint of the key it holds.
    let through_ref = match node.desired.get("portainer_key") {
        Some(Expr::Ref(reference)) => ctx.nodes.get(&reference.node).copied(),
        _ => None,
    };
    let env = match through_ref {
        Some(target) => match (&target.scope, ctx.observe(target)) {
            (Scope::Portainer { url }, Ok(Observed::Present(live))) => {
                live.id.parse().ok().map(|id| EnvRef { url: url.clone(), id })
            }
            _ => None,
        },
        None => env_by_key_fingerprint(ctx.world, &source_fingerprint),
    };
    let Some(env) = env else {
        return Err(fail(format!("{}: no Portainer environment holds the key {source_fingerprint}", node.address)));
    };
    let Some(host) = ctx.resolve_str(node, "tunnel_host") else { return Ok(Observed::Absent) };
    let port =
        ctx.resolve_port(node, "tunnel_port").ok_or_else(|| fail(format!("{}: no tunnel_port", node.address)))?;
    let source = environment_key(ctx.world, &env).map_err(fail)?;
    let derived =
        source.with_tunnel_addr(&format!("{host}:{port}")).map_err(|e| fail(format!("{}: {e}", node.address)))?;
    let fingerprint = derived.fingerprint();
    let mut live = Live::new(fingerprint.as_str(), true);
    live.attr("portainer_key", source.fingerprint())
        .attr("tunnel_host", host.as_str())
        .attr("tunnel_port", port)
        .attr("fingerprint", fingerprint.as_str())
        .attr("portainer_key_tunnel", source.tunnel_addr())
        .attr("endpoint_id", Value::Int(source.endpoint_id()))
        .output("key", fingerprint.as_str());
    live.done()
}
