//! The simulated AWS backend: one account and region, EC2/ELBv2/IAM as the world keeps them.
//! It translates nodes to API calls and back, and answers with the APIs' own refusals (error
//! codes as AWS spells them, typed). Creates are idempotent by client token; ownership is read
//! from tags. Nothing here judges what it reads: the engine derives its facts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplan_model::attr::{self, Attr, field};
use edgeplan_model::backend::{ADDRESS_TAG, STACK_TAG};
use edgeplan_model::{
    Action, Address, Backend, BackendError, BoxFuture, Identity, LiveObject, NodeKind, Observed, Operation,
    OwnedObject, Ownership, Request, Scope, Value,
};

use crate::net::Cidr;
use crate::query::owned_by;
use crate::store::SimWorld;
use crate::world::{
    AwsRegion, EndpointService, ManagedPolicy, PolicyVersion, Route, RouteTable, RouteTableAssociation, SecurityGroup,
    SgRule, Subnet, Tags, TransitionKind, VpcEndpoint, World,
};

type Outcome = Result<Observed, BackendError>;
type Done = Result<(), BackendError>;
type Attributes = BTreeMap<Attr, Value>;

/// One account and region of the simulated world.
pub(crate) struct SimAws {
    pub(crate) world: Arc<SimWorld>,
    pub(crate) scope: Scope,
    pub(crate) account: String,
    pub(crate) region: String,
}

/// What identifies the object a node or operation is about.
struct Query<'a> {
    stack: &'a str,
    address: &'a Address,
    kind: NodeKind,
    identity: &'a Identity,
    attributes: &'a Attributes,
}

impl Query<'_> {
    fn text(&self, attr: Attr) -> Option<&str> {
        self.attributes.get(&attr).and_then(Value::as_str)
    }

    fn port(&self, attr: Attr) -> Option<u16> {
        match self.attributes.get(&attr)? {
            Value::Int(n) => u16::try_from(*n).ok().filter(|p| *p > 0),
            Value::Str(text) => text.parse().ok().filter(|p| *p > 0),
            _ => None,
        }
    }

    fn strings(&self, attr: Attr) -> Vec<String> {
        self.attributes.get(&attr).map(Value::strings).unwrap_or_default()
    }

    fn owned(&self, tags: &Tags) -> bool {
        owned_by(tags, self.stack, self.address.as_str())
    }
}

fn invalid(code: &str, message: impl Into<String>) -> BackendError {
    BackendError::invalid(code, message)
}

fn not_found(code: &str, message: impl std::fmt::Display) -> BackendError {
    BackendError::not_found(format!("{code}: {message}"))
}

fn conflict(code: &str, message: impl std::fmt::Display) -> BackendError {
    BackendError::conflict(format!("{code}: {message}"))
}

/// Not ready yet (an NLB still provisioning, a service that just appeared): worth retrying.
fn not_ready(code: &str, message: impl std::fmt::Display) -> BackendError {
    BackendError::Throttled { message: format!("{code}: {message}") }
}

fn ownership_tags(stack: &str, address: &Address) -> Tags {
    let mut tags = Tags::new();
    tags.insert(STACK_TAG.to_string(), stack.to_string());
    tags.insert(ADDRESS_TAG.to_string(), address.to_string());
    tags
}

/// Ownership as tags say it.
pub(crate) fn owner_of(tags: &Tags) -> Option<Ownership> {
    Some(Ownership { stack: tags.get(STACK_TAG)?.clone(), address: Address::from_text(tags.get(ADDRESS_TAG)?) })
}

fn strings<'s>(items: impl IntoIterator<Item = &'s String>) -> Value {
    Value::List(items.into_iter().map(|s| Value::str(s.as_str())).collect())
}

fn opt(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::str)
}

fn tag_map(tags: &Tags) -> Value {
    Value::from(tags.clone())
}

fn route_map(route: &Route) -> Value {
    let map: BTreeMap<String, String> = [
        (field::DESTINATION.to_string(), route.destination.clone()),
        (field::TARGET.to_string(), route.target.clone()),
    ]
    .into_iter()
    .collect();
    Value::from(map)
}

/// The one item carrying this node's ownership tags; several is an error (which is ours?).
fn find_owned<'w, T>(
    items: &'w [T],
    tags: impl Fn(&T) -> &Tags,
    q: &Query<'_>,
    what: &str,
) -> Result<Option<&'w T>, BackendError> {
    let found: Vec<&T> = items.iter().filter(|item| q.owned(tags(item))).collect();
    match found.len() {
        0 | 1 => Ok(found.first().copied()),
        n => Err(conflict(
            "AmbiguousOwnership",
            format!(
                "{n} {what} carry {STACK_TAG}={} and {ADDRESS_TAG}={}: edgeplan cannot tell which is its own",
                q.stack, q.address
            ),
        )),
    }
}

impl SimAws {
    fn region<'w>(&self, world: &'w World) -> Result<&'w AwsRegion, BackendError> {
        world.region(&self.account, &self.region).ok_or_else(|| BackendError::Transport {
            message: format!("the simulated world has no AWS account {} in {}", self.account, self.region),
            retryable: false,
        })
    }

    fn region_mut<'w>(&self, world: &'w mut World) -> Result<&'w mut AwsRegion, BackendError> {
        let (account, region) = (self.account.clone(), self.region.clone());
        world.region_mut(&account, &region).ok_or_else(|| BackendError::Transport {
            message: format!("the simulated world has no AWS account {account} in {region}"),
            retryable: false,
        })
    }
}

impl Backend for SimAws {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn observe<'a>(&'a self, stack: &'a str, requests: &'a [Request<'a>]) -> BoxFuture<'a, Vec<Outcome>> {
        let outcomes = self
            .world
            .read(|world| {
                requests
                    .iter()
                    .map(|r| {
                        let q = Query {
                            stack,
                            address: &r.node.address,
                            kind: r.node.kind,
                            identity: &r.node.identity,
                            attributes: &r.attributes,
                        };
                        observe(self, world, &q)
                    })
                    .collect()
            })
            .unwrap_or_else(|error| vec![Err(error); requests.len()]);
        Box::pin(std::future::ready(outcomes))
    }

    fn execute<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Outcome> {
        let stack = op.ownership.stack.as_str();
        // A delete acts on the object as observed: its live attributes fill in what the
        // operation does not carry (references are not resolved for a delete).
        let mut attributes = op.attributes.clone();
        if op.action == Action::Delete
            && let Some(live) = &op.live
        {
            for (key, value) in &live.attributes {
                attributes.entry(*key).or_insert_with(|| value.clone());
            }
        }
        let q = Query { stack, address: &op.address, kind: op.kind, identity: &op.identity, attributes: &attributes };
        let done = self.world.write(|world| execute(self, world, op, &q)).and_then(|r| r);
        let result = done.and_then(|()| match op.action {
            Action::Delete => Ok(Observed::Absent),
            _ => self.world.read(|world| observe(self, world, &q)).and_then(|r| r),
        });
        Box::pin(std::future::ready(result))
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        let result = self.world.read(|world| list_owned(self, world, stack)).and_then(|r| r);
        Box::pin(std::future::ready(result))
    }
}

// ----- observe -----------------------------------------------------------------------------

fn observe(aws: &SimAws, world: &World, q: &Query<'_>) -> Outcome {
    let region = aws.region(world)?;
    match q.kind {
        NodeKind::LbControllerPolicy => policy(aws, world, q),
        NodeKind::Vpc => vpc(region, q),
        NodeKind::NlbSubnet => subnet(region, q),
        NodeKind::NlbRouteTable => route_table(region, q),
        NodeKind::NlbRouteTableAssociation => association(region, q),
        NodeKind::Nlb => nlb(region, q),
        NodeKind::ClusterSgRule => sg_rule(region, q),
        NodeKind::EndpointService => endpoint_service(world, region, q),
        NodeKind::EndpointServicePermissions => permissions(region, q),
        NodeKind::ConsumerSubnets => consumer_subnets(region, q),
        NodeKind::VpceSecurityGroup => vpce_security_group(region, q),
        NodeKind::Vpce => vpce(region, q),
        NodeKind::ConnectionAcceptance => acceptance(world, region, q),
        other => Err(BackendError::unsupported(format!("{other} is not an AWS resource"))),
    }
}

fn present(live: LiveObject) -> Outcome {
    Ok(Observed::Present(live))
}

fn policy(aws: &SimAws, world: &World, q: &Query<'_>) -> Outcome {
    let account = world.account(&aws.account).ok_or_else(|| not_found("NoSuchEntity", "no such account"))?;
    let role_name = match q.identity {
        Identity::Named { name } => name.clone(),
        _ => q.text(attr::ROLE_NAME).unwrap_or_default().to_string(),
    };
    let role = account
        .iam
        .roles
        .iter()
        .find(|r| r.name == role_name)
        .ok_or_else(|| not_found("NoSuchEntity", format!("The role with name {role_name} cannot be found.")))?;
    let Some(policy) = account.role_customer_policy(&role_name) else { return Ok(Observed::Absent) };
    let version = policy.versions.iter().find(|v| v.id == policy.default_version).ok_or_else(|| {
        not_found("NoSuchEntity", format!("{}: default version {} is missing", policy.arn, policy.default_version))
    })?;
    let mut live = LiveObject::new(&policy.arn)
        .with(attr::ROLE_NAME, role_name.as_str())
        .with(attr::POLICY_ARN, policy.arn.as_str())
        .with(attr::POLICY_NAME, policy.name.as_str())
        .with(attr::POLICY_DOCUMENT, serde_json::to_string(&sorted_keys(&version.document)).unwrap_or_default())
        .with(attr::DEFAULT_VERSION, policy.default_version.as_str())
        .with(attr::VERSIONS, strings(policy.versions.iter().map(|v| &v.id)))
        .with(attr::ATTACHED_POLICIES, strings(role.attached_policies.iter()));
    live.owner = owner_of(&policy.tags);
    present(live)
}

/// The document with its keys in order, whatever serde_json's map keeps (a crate elsewhere in
/// a build may switch its `preserve_order` on): the same world reports the same text.
fn sorted_keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted_keys(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

fn string_pairs(pairs: &[(&str, &str)]) -> Value {
    Value::from(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<String, String>>())
}

/// DescribeVpcs by ID, with what creating in it depends on: its main route table (which routes
/// every subnet without an association of its own), its subnets, and the region's zones.
fn vpc(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let Identity::Adopted { id } = q.identity else { return Ok(Observed::Absent) };
    let Some(vpc) = region.vpcs.iter().find(|v| &v.id == id) else { return Ok(Observed::Absent) };
    let subnets: Vec<Value> = region
        .subnets
        .iter()
        .filter(|s| s.vpc_id == vpc.id)
        .map(|s| {
            string_pairs(&[
                (field::ID, &s.id),
                (field::CIDR, &s.cidr),
                (field::AVAILABILITY_ZONE, &s.availability_zone),
                (field::AVAILABILITY_ZONE_ID, &s.availability_zone_id),
            ])
        })
        .collect();
    let zones: Vec<Value> =
        region.availability_zones.iter().map(|z| string_pairs(&[(field::NAME, &z.name), (field::ID, &z.id)])).collect();
    let main = region.route_tables.iter().find(|t| t.main && t.vpc_id == vpc.id);
    let live = LiveObject::new(&vpc.id)
        .with(attr::CIDR_BLOCK, vpc.cidr.as_str())
        .with(attr::ROUTE_TABLE_ID, opt(main.map(|t| t.id.as_str())))
        .with(attr::ROUTES, Value::List(main.map(|t| t.routes.iter().map(route_map).collect()).unwrap_or_default()))
        .with(attr::SUBNETS, Value::List(subnets))
        .with(attr::AVAILABILITY_ZONES, Value::List(zones));
    present(live)
}

fn subnet(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let found = match q.identity {
        Identity::Adopted { id } => region.subnets.iter().find(|s| &s.id == id),
        _ => find_owned(&region.subnets, |s| &s.tags, q, "subnets")?,
    };
    let Some(subnet) = found else { return Ok(Observed::Absent) };
    let mut live = LiveObject::new(&subnet.id)
        .with(attr::VPC_ID, subnet.vpc_id.as_str())
        .with(attr::CIDR_BLOCK, subnet.cidr.as_str())
        .with(attr::AVAILABILITY_ZONE, subnet.availability_zone.as_str())
        .with(attr::AVAILABILITY_ZONE_ID, subnet.availability_zone_id.as_str())
        .with(attr::AVAILABLE_IP_ADDRESS_COUNT, i64::from(subnet.available_ips))
        .with(attr::TAGS, tag_map(&subnet.tags));
    // The effective route table, as the LB controller resolves it: the explicit association,
    // else the VPC's main table.
    match region.effective_route_table(&subnet.id) {
        Some((table, explicit)) => {
            live.set(attr::ROUTE_TABLE_ID, table.id.as_str());
            live.set(attr::ROUTE_TABLE_ASSOCIATION, if explicit { "explicit" } else { "main" });
            live.set(attr::ROUTES, Value::List(table.routes.iter().map(route_map).collect()));
        }
        None => {
            live.set(attr::ROUTE_TABLE_ID, Value::Null);
            live.set(attr::ROUTES, Value::List(Vec::new()));
        }
    }
    live.owner = owner_of(&subnet.tags);
    present(live)
}

fn route_table(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let found = match q.identity {
        Identity::Adopted { id } => region.route_tables.iter().find(|t| &t.id == id),
        _ => find_owned(&region.route_tables, |t| &t.tags, q, "route tables")?,
    };
    let Some(table) = found else { return Ok(Observed::Absent) };
    let mut live = LiveObject::new(&table.id)
        .with(attr::VPC_ID, table.vpc_id.as_str())
        .with(attr::ROUTES, Value::List(table.routes.iter().map(route_map).collect()))
        .with(attr::MAIN, table.main)
        .with(attr::ASSOCIATIONS, strings(table.associations.iter().map(|a| &a.subnet_id)));
    live.owner = owner_of(&table.tags);
    present(live)
}

/// An association has no tags of its own: it is the stack's when its route table is.
fn association(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let Some(subnet_id) = q.text(attr::SUBNET_ID) else { return Ok(Observed::Absent) };
    let Some((table, association)) = region
        .route_tables
        .iter()
        .find_map(|t| t.associations.iter().find(|a| a.subnet_id == subnet_id).map(|a| (t, a)))
    else {
        return Ok(Observed::Absent);
    };
    let mut live =
        LiveObject::new(&association.id).with(attr::SUBNET_ID, subnet_id).with(attr::ROUTE_TABLE_ID, table.id.as_str());
    live.owner = owner_of(&table.tags).filter(|o| o.stack == q.stack).map(|_| Ownership::new(q.stack, q.address));
    present(live)
}

fn nlb(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let Some(hostname) = q.text(attr::HOSTNAME) else { return Ok(Observed::Absent) };
    let Some(lb) = region.load_balancers.iter().find(|lb| lb.dns_name == hostname) else { return Ok(Observed::Absent) };
    let health: Vec<Value> = lb
        .targets
        .iter()
        .map(|t| {
            let mut map = BTreeMap::new();
            map.insert(field::TARGET.to_string(), Value::str(t.id.as_str()));
            map.insert(field::PORT.to_string(), Value::from(t.port));
            map.insert(field::STATE.to_string(), Value::str(t.health.as_str()));
            map.insert(field::REASON.to_string(), opt(Some(t.reason.as_str()).filter(|r| !r.is_empty())));
            map.insert(field::DESCRIPTION.to_string(), opt(Some(t.description.as_str()).filter(|r| !r.is_empty())));
            Value::Map(map)
        })
        .collect();
    let listeners: Vec<Value> = lb
        .listeners
        .iter()
        .map(|l| {
            let mut map = BTreeMap::new();
            map.insert(field::PORT.to_string(), Value::from(l.port));
            map.insert(field::PROTOCOL.to_string(), Value::str(l.protocol.as_str()));
            map.insert(field::TARGET_PORT.to_string(), Value::from(l.target_port));
            Value::Map(map)
        })
        .collect();
    let live = LiveObject::new(&lb.arn)
        .with(attr::ARN, lb.arn.as_str())
        .with(attr::NAME, lb.name.as_str())
        .with(attr::DNS_NAME, lb.dns_name.as_str())
        .with(attr::SCHEME, lb.scheme.as_str())
        .with(attr::STATE, lb.state.as_str())
        .with(attr::VPC_ID, lb.vpc_id.as_str())
        .with(attr::SUBNET_IDS, strings(lb.subnet_ids.iter()))
        .with(attr::AVAILABILITY_ZONE_IDS, strings(lb.availability_zone_ids.iter()))
        .with(attr::LISTENERS, Value::List(listeners))
        .with(attr::TARGET_HEALTH, Value::List(health))
        .with(
            attr::ENDPOINT_SERVICE_IDS,
            strings(
                region
                    .endpoint_services
                    .iter()
                    .filter(|s| s.network_load_balancer_arns.contains(&lb.arn))
                    .map(|s| &s.service_id),
            ),
        );
    present(live)
}

/// The security group a rule goes in: named in the spec, or the EKS cluster security group
/// discovered by its `aws:eks:cluster-name` tag (else `kubernetes.io/cluster/<name>=owned`).
fn cluster_sg<'w>(
    region: &'w AwsRegion,
    explicit: Option<&str>,
    cluster: Option<&str>,
) -> Result<&'w SecurityGroup, BackendError> {
    if let Some(id) = explicit {
        return region
            .security_groups
            .iter()
            .find(|g| g.id == id)
            .ok_or_else(|| not_found("InvalidGroup.NotFound", format!("The security group '{id}' does not exist")));
    }
    let name = cluster
        .ok_or_else(|| invalid("MissingParameter", "no cluster name to discover the cluster security group by"))?;
    let mut groups: Vec<&SecurityGroup> = region
        .security_groups
        .iter()
        .filter(|g| g.tags.get("aws:eks:cluster-name").is_some_and(|v| v == name))
        .collect();
    if groups.is_empty() {
        groups = region.cluster_security_groups(name, None);
    }
    match groups.as_slice() {
        [one] => Ok(*one),
        [] => Err(not_found(
            "InvalidGroup.NotFound",
            format!("no security group is tagged aws:eks:cluster-name={name} in {}", region.region),
        )),
        _ => Err(invalid(
            "InvalidParameterCombination",
            format!(
                "{} security groups are tagged for cluster {name}: name one with clusterSecurityGroup.id",
                groups.len()
            ),
        )),
    }
}

fn sg_rule(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let group = cluster_sg(region, q.text(attr::SECURITY_GROUP_ID), q.text(attr::CLUSTER_NAME))?;
    let port = q.port(attr::PORT);
    let source = q.text(attr::SOURCE_CIDR);
    let mine: Vec<&SgRule> = group.ingress.iter().filter(|r| q.owned(&r.tags)).collect();
    if mine.len() > 1 {
        return Err(conflict(
            "AmbiguousOwnership",
            format!("{} rules in {} carry {ADDRESS_TAG}={}", mine.len(), group.id, q.address),
        ));
    }
    // Someone else's rule that does exactly this job is there (a duplicate would be refused).
    let equivalent = || {
        group.ingress.iter().find(|r| {
            r.protocol == "tcp"
                && port.is_some_and(|p| r.from_port == p && r.to_port == p)
                && source.is_some_and(|s| r.cidr.as_deref() == Some(s))
        })
    };
    let Some(rule) = mine.first().copied().or_else(equivalent) else { return Ok(Observed::Absent) };
    let mut live = LiveObject::new(&rule.id)
        .with(attr::SECURITY_GROUP_ID, group.id.as_str())
        .with(attr::PROTOCOL, rule.protocol.as_str())
        .with(attr::PORT, if rule.from_port == rule.to_port { Value::from(rule.from_port) } else { Value::Null })
        .with(attr::SOURCE_CIDR, opt(rule.cidr.as_deref()))
        .with(attr::RULE_ID, rule.id.as_str())
        .with(attr::DESCRIPTION, rule.description.as_str());
    live.owner = owner_of(&rule.tags);
    present(live)
}

/// The AZ IDs an endpoint service is available in: its NLBs' AZs.
fn service_az_ids(world: &World, service: &EndpointService) -> Vec<String> {
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

fn endpoint_service(world: &World, region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let Some(service) = find_owned(&region.endpoint_services, |s| &s.tags, q, "endpoint services")? else {
        return Ok(Observed::Absent);
    };
    let mut live = LiveObject::new(&service.service_id)
        .with(attr::NETWORK_LOAD_BALANCER_ARN, opt(service.network_load_balancer_arns.first().map(String::as_str)))
        .with(attr::ACCEPTANCE_REQUIRED, service.acceptance_required)
        .with(attr::STATE, service.state.as_str())
        .with(attr::SERVICE_ID, service.service_id.as_str())
        .with(attr::SERVICE_NAME, service.service_name.as_str())
        .with(attr::AVAILABILITY_ZONE_IDS, strings(service_az_ids(world, service).iter()));
    live.owner = owner_of(&service.tags);
    present(live)
}

/// A service's permissions have no tags of their own: they are the stack's when the service is.
fn permissions(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let Some(service_id) = q.text(attr::SERVICE_ID) else { return Ok(Observed::Absent) };
    let Some(service) = region.endpoint_services.iter().find(|s| s.service_id == service_id) else {
        return Ok(Observed::Absent);
    };
    // `DescribeVpcEndpointServicePermissions` with no principals: nothing to own yet.
    if service.allowed_principals.is_empty() {
        return Ok(Observed::Absent);
    }
    let mut principals = service.allowed_principals.clone();
    principals.sort();
    let mut live = LiveObject::new(format!("{service_id}/permissions"))
        .with(attr::SERVICE_ID, service_id)
        .with(attr::ALLOWED_PRINCIPALS, strings(principals.iter()));
    live.owner = owner_of(&service.tags).filter(|o| o.stack == q.stack).map(|_| Ownership::new(q.stack, q.address));
    present(live)
}

/// DescribeSubnets by ID: all of them, or (as AWS answers an unknown ID) none.
fn consumer_subnets(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let wanted = q.strings(attr::SUBNET_IDS);
    let found: Vec<&Subnet> = wanted.iter().filter_map(|id| region.subnets.iter().find(|s| &s.id == id)).collect();
    if found.is_empty() || found.len() != wanted.len() {
        return Ok(Observed::Absent);
    }
    let vpcs: BTreeSet<&String> = found.iter().map(|s| &s.vpc_id).collect();
    let azs: BTreeSet<&String> = found.iter().map(|s| &s.availability_zone_id).collect();
    let live = LiveObject::new(wanted.join(","))
        .with(attr::SUBNET_IDS, strings(found.iter().map(|s| &s.id)))
        .with(attr::VPC_IDS, strings(vpcs))
        .with(attr::AVAILABILITY_ZONE_IDS, strings(azs));
    present(live)
}

fn vpce_security_group(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let found = match q.identity {
        Identity::Adopted { id } => region.security_groups.iter().find(|g| &g.id == id),
        _ => find_owned(&region.security_groups, |g| &g.tags, q, "security groups")?,
    };
    let Some(group) = found else { return Ok(Observed::Absent) };
    let tcp: Vec<&SgRule> = group.ingress.iter().filter(|r| r.protocol == "tcp" && r.from_port == r.to_port).collect();
    let ports: BTreeSet<u16> = tcp.iter().map(|r| r.from_port).collect();
    let port = match ports.len() {
        1 => ports.first().copied(),
        _ => q.port(attr::INGRESS_PORT).filter(|p| ports.contains(p)),
    };
    let cidrs: BTreeSet<&str> =
        tcp.iter().filter(|r| Some(r.from_port) == port).filter_map(|r| r.cidr.as_deref()).collect();
    // DescribeSecurityGroupRules, as EC2 reports them (a rule from another group has no CIDR).
    let rules: Vec<Value> = group
        .ingress
        .iter()
        .map(|r| {
            let mut rule = BTreeMap::new();
            rule.insert(field::PROTOCOL.to_string(), Value::str(r.protocol.as_str()));
            rule.insert(field::FROM_PORT.to_string(), Value::from(r.from_port));
            rule.insert(field::TO_PORT.to_string(), Value::from(r.to_port));
            rule.insert(field::CIDR_IPV4.to_string(), opt(r.cidr.as_deref()));
            Value::Map(rule)
        })
        .collect();
    let vpc_cidr = region.vpcs.iter().find(|v| v.id == group.vpc_id).map(|v| v.cidr.as_str());
    let mut live = LiveObject::new(&group.id)
        .with(attr::VPC_ID, group.vpc_id.as_str())
        .with(attr::NAME, group.name.as_str())
        .with(attr::INGRESS_PORT, port.map_or(Value::Null, Value::from))
        .with(attr::INGRESS_CIDRS, Value::List(cidrs.iter().map(|c| Value::str(*c)).collect()))
        .with(attr::INGRESS_RULES, Value::List(rules))
        .with(attr::VPC_CIDR_BLOCK, opt(vpc_cidr));
    live.owner = owner_of(&group.tags);
    present(live)
}

fn vpce(region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let Some(endpoint) = find_owned(&region.vpc_endpoints, |e| &e.tags, q, "VPC endpoints")? else {
        return Ok(Observed::Absent);
    };
    let mut live = LiveObject::new(&endpoint.id)
        .with(attr::VPC_ID, endpoint.vpc_id.as_str())
        .with(attr::VPC_ENDPOINT_TYPE, endpoint.endpoint_type.as_str())
        .with(attr::SERVICE_NAME, endpoint.service_name.as_str())
        .with(attr::SECURITY_GROUP_ID, opt(endpoint.security_group_ids.first().map(String::as_str)))
        .with(attr::SUBNET_IDS, strings(endpoint.subnet_ids.iter()))
        .with(attr::STATE, endpoint.state.as_str())
        // DnsEntries[0]: the regional name.
        .with(attr::DNS_NAME, opt(endpoint.dns_entries.first().map(String::as_str)));
    live.owner = owner_of(&endpoint.tags);
    present(live)
}

/// DescribeVpcEndpointConnections on the provider's service: AWS joins the consumer's endpoint
/// in, whatever account it is in. A connection has no tags: it is the stack's when its
/// endpoint service is.
fn acceptance(world: &World, region: &AwsRegion, q: &Query<'_>) -> Outcome {
    let (Some(service_id), Some(endpoint_id)) = (q.text(attr::SERVICE_ID), q.text(attr::VPC_ENDPOINT_ID)) else {
        return Ok(Observed::Absent);
    };
    let Some(service) = region.endpoint_services.iter().find(|s| s.service_id == service_id) else {
        return Ok(Observed::Absent);
    };
    let found = world.regions().find_map(|(account, r)| {
        r.vpc_endpoints
            .iter()
            .find(|e| e.id == endpoint_id && e.service_name == service.service_name)
            .map(|e| (account, e))
    });
    let Some((owner, endpoint)) = found else { return Ok(Observed::Absent) };
    let mut live = connection(service, owner.account.as_str(), endpoint);
    live.owner = owner_of(&service.tags).filter(|o| o.stack == q.stack).map(|_| Ownership::new(q.stack, q.address));
    present(live)
}

fn connection(service: &EndpointService, owner: &str, endpoint: &VpcEndpoint) -> LiveObject {
    LiveObject::new(&endpoint.id)
        .with(attr::SERVICE_ID, service.service_id.as_str())
        .with(attr::VPC_ENDPOINT_ID, endpoint.id.as_str())
        .with(attr::VPC_ENDPOINT_OWNER, owner)
        .with(attr::STATE, endpoint.state.as_str())
}

// ----- ownership discovery -----------------------------------------------------------------

/// One tag-filtered listing per kind, as `DescribeX --filters tag:edgeplan.dev/stack=…` does.
fn list_owned(aws: &SimAws, world: &World, stack: &str) -> Result<Vec<OwnedObject>, BackendError> {
    let region = aws.region(world)?;
    let mut owned = Vec::new();
    let mut push = |tags: &Tags, object: LiveObject| {
        let Some(ownership) = owner_of(tags).filter(|o| o.stack == stack) else { return };
        let Some(kind) = ownership.address.kind() else { return };
        let mut object = object;
        object.owner = Some(ownership.clone());
        owned.push(OwnedObject { kind, address: Some(ownership.address), object });
    };
    for subnet in &region.subnets {
        push(&subnet.tags, LiveObject::new(&subnet.id).with(attr::VPC_ID, subnet.vpc_id.as_str()));
    }
    for table in &region.route_tables {
        push(&table.tags, LiveObject::new(&table.id).with(attr::VPC_ID, table.vpc_id.as_str()));
    }
    for group in &region.security_groups {
        push(&group.tags, LiveObject::new(&group.id).with(attr::VPC_ID, group.vpc_id.as_str()));
        // A rule tagged like its group (the ingress of the stack's own VPCE group) is part of
        // the group, not an object of its own: listing it too would report a second
        // `aws_security_group` at the group's address, with a rule ID.
        let group_owner = owner_of(&group.tags);
        for rule in group.ingress.iter().filter(|r| group_owner.is_none() || owner_of(&r.tags) != group_owner) {
            push(
                &rule.tags,
                LiveObject::new(&rule.id)
                    .with(attr::SECURITY_GROUP_ID, group.id.as_str())
                    .with(attr::RULE_ID, rule.id.as_str()),
            );
        }
    }
    for service in &region.endpoint_services {
        push(&service.tags, LiveObject::new(&service.service_id).with(attr::SERVICE_ID, service.service_id.as_str()));
    }
    for endpoint in &region.vpc_endpoints {
        push(&endpoint.tags, LiveObject::new(&endpoint.id).with(attr::STATE, endpoint.state.as_str()));
    }
    // Associations of the stack's route tables, named after their table.
    for table in region.route_tables.iter().filter(|t| t.tags.get(STACK_TAG).is_some_and(|s| s == stack)) {
        let Some(address) = owner_of(&table.tags).map(|o| o.address.sibling(NodeKind::NlbRouteTableAssociation)) else {
            continue;
        };
        for association in &table.associations {
            let object = LiveObject::new(&association.id)
                .with(attr::SUBNET_ID, association.subnet_id.as_str())
                .with(attr::ROUTE_TABLE_ID, table.id.as_str());
            owned.push(OwnedObject {
                kind: NodeKind::NlbRouteTableAssociation,
                address: Some(address.clone()),
                object,
            });
        }
    }
    // Connections to the stack's endpoint services: no tags of their own.
    for service in region.endpoint_services.iter().filter(|s| s.tags.get(STACK_TAG).is_some_and(|v| v == stack)) {
        for (account, r) in world.regions() {
            for endpoint in r.vpc_endpoints.iter().filter(|e| e.service_name == service.service_name) {
                let object = connection(service, &account.account, endpoint);
                owned.push(OwnedObject { kind: NodeKind::ConnectionAcceptance, address: None, object });
            }
        }
    }
    Ok(owned)
}

// ----- execute -----------------------------------------------------------------------------

fn token(op: &Operation) -> Option<String> {
    Some(op.client_token.clone()).filter(|t| !t.is_empty())
}

fn required<'a>(q: &'a Query<'_>, attr: Attr) -> Result<&'a str, BackendError> {
    q.text(attr).ok_or_else(|| invalid("MissingParameter", format!("{}: `{attr}` is required", q.address)))
}

fn execute(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>) -> Done {
    let adopted = matches!(op.identity, Identity::Adopted { .. }) && op.kind != NodeKind::ClusterSgRule;
    match op.action {
        Action::NoOp | Action::Read => Ok(()),
        Action::Delete if adopted || matches!(op.identity, Identity::ReadOnly | Identity::Singleton) => Err(invalid(
            "OperationNotPermitted",
            format!("{} is {:?}: edgeplan never deletes what it did not create", op.address, op.identity),
        )),
        Action::Delete => delete(aws, world, op, q),
        Action::Replace => {
            delete(aws, world, op, q)?;
            apply(aws, world, op, q, true)
        }
        Action::Create => apply(aws, world, op, q, true),
        Action::Update => apply(aws, world, op, q, false),
    }
}

fn apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    match op.kind {
        NodeKind::LbControllerPolicy => policy_apply(aws, world, op, q),
        NodeKind::NlbSubnet if create => subnet_create(aws, world, op, q),
        NodeKind::NlbSubnet => subnet_update(aws, world, q),
        NodeKind::NlbRouteTable => route_table_apply(aws, world, op, q, create),
        NodeKind::NlbRouteTableAssociation => association_apply(aws, world, q, create),
        NodeKind::ClusterSgRule => sg_rule_apply(aws, world, op, q, create),
        NodeKind::EndpointService => endpoint_service_apply(aws, world, op, q, create),
        NodeKind::EndpointServicePermissions => permissions_apply(aws, world, q, None),
        NodeKind::VpceSecurityGroup => vpce_sg_apply(aws, world, op, q, create),
        NodeKind::Vpce => vpce_apply(aws, world, op, q, create),
        NodeKind::ConnectionAcceptance => accept(aws, world, q),
        NodeKind::Nlb | NodeKind::ConsumerSubnets | NodeKind::Vpc => {
            Err(invalid("OperationNotPermitted", format!("{} is read only: edgeplan does not write it", op.address)))
        }
        other => Err(BackendError::unsupported(format!("{other} is not an AWS resource"))),
    }
}

fn delete(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>) -> Done {
    match op.kind {
        NodeKind::NlbSubnet => subnet_delete(aws, world, q),
        NodeKind::NlbRouteTable => route_table_delete(aws, world, q),
        NodeKind::NlbRouteTableAssociation => association_delete(aws, world, q),
        NodeKind::ClusterSgRule => sg_rule_delete(aws, world, q),
        NodeKind::EndpointService => endpoint_service_delete(aws, world, q),
        NodeKind::EndpointServicePermissions => permissions_apply(aws, world, q, Some(Vec::new())),
        NodeKind::VpceSecurityGroup => vpce_sg_delete(aws, world, q),
        NodeKind::Vpce => vpce_delete(aws, world, q),
        NodeKind::ConnectionAcceptance => reject(world, q),
        _ => Err(invalid("OperationNotPermitted", format!("{} is never deleted", op.address))),
    }
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches(['v', 'V']).parse().unwrap_or(0)
}

fn policy_apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>) -> Done {
    let role_name = match q.identity {
        Identity::Named { name } => name.clone(),
        _ => required(q, attr::ROLE_NAME)?.to_string(),
    };
    let text = required(q, attr::POLICY_DOCUMENT)?;
    let document: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        invalid(
            "MalformedPolicyDocument",
            format!("the policy document is not JSON ({e}): pass the document, not its path"),
        )
    })?;
    if document.get("Statement").is_none() {
        return Err(invalid("MalformedPolicyDocument", "Syntax errors in policy: no Statement"));
    }
    let now = world.now;
    let account_id = aws.account.clone();
    let account = world
        .aws
        .iter_mut()
        .find(|a| a.account == account_id)
        .ok_or_else(|| not_found("NoSuchEntity", format!("no AWS account {account_id}")))?;
    let prefix = format!("arn:aws:iam::{account_id}:policy/");
    let role = account
        .iam
        .roles
        .iter()
        .find(|r| r.name == role_name)
        .ok_or_else(|| not_found("NoSuchEntity", format!("The role with name {role_name} cannot be found.")))?;
    let existing = role
        .attached_policies
        .iter()
        .find(|arn| arn.starts_with(&prefix) && account.iam.policies.iter().any(|p| &&p.arn == arn))
        .cloned();
    let client_token = token(op);
    let Some(arn) = existing else {
        // CreatePolicy + AttachRolePolicy.
        let name = "AWSLoadBalancerControllerIAMPolicy";
        let arn = format!("{prefix}{name}");
        if account.iam.policies.iter().any(|p| p.arn == arn) {
            return Err(conflict("EntityAlreadyExists", format!("A policy called {name} already exists.")));
        }
        account.iam.policies.push(ManagedPolicy {
            arn: arn.clone(),
            name: name.to_string(),
            default_version: "v1".to_string(),
            versions: vec![PolicyVersion {
                id: "v1".to_string(),
                document,
                created_at: now,
                client_token: client_token.clone(),
            }],
            tags: ownership_tags(q.stack, q.address),
            client_token,
        });
        if let Some(role) = account.iam.roles.iter_mut().find(|r| r.name == role_name) {
            role.attached_policies.push(arn);
        }
        return Ok(());
    };
    let Some(policy) = account.iam.policies.iter_mut().find(|p| p.arn == arn) else { return Ok(()) };
    if client_token.is_some() && policy.versions.iter().any(|v| v.client_token == client_token) {
        return Ok(());
    }
    // DeletePolicyVersion first when the plan chose a version to prune (the 5-version limit).
    if let Some(victim) = q.text(attr::DELETE_VERSION) {
        if victim == policy.default_version {
            return Err(conflict("DeleteConflict", "Cannot delete the default version of the policy."));
        }
        let before = policy.versions.len();
        policy.versions.retain(|v| v.id != victim);
        if policy.versions.len() == before {
            return Err(not_found("NoSuchEntity", format!("Policy {arn} version {victim} does not exist.")));
        }
    }
    if policy.versions.len() >= 5 {
        return Err(invalid(
            "LimitExceeded",
            format!(
                "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version. ({arn})"
            ),
        ));
    }
    let next = policy.versions.iter().map(|v| version_number(&v.id)).max().unwrap_or(0).saturating_add(1);
    let id = format!("v{next}");
    policy.versions.push(PolicyVersion { id: id.clone(), document, created_at: now, client_token });
    policy.default_version = id;
    Ok(())
}

fn subnet_create(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>) -> Done {
    if let Identity::Adopted { id } = q.identity {
        return Err(invalid("InvalidParameter", format!("{id} is adopted: edgeplan does not create it")));
    }
    let client_token = token(op);
    let existing = aws.region(world)?;
    if client_token.is_some() && existing.subnets.iter().any(|s| s.client_token == client_token) {
        return Ok(());
    }
    let vpc_id = required(q, attr::VPC_ID)?;
    let vpc = existing
        .vpcs
        .iter()
        .find(|v| v.id == vpc_id)
        .ok_or_else(|| not_found("InvalidVpcID.NotFound", format!("The vpc ID '{vpc_id}' does not exist")))?;
    let text = required(q, attr::CIDR_BLOCK)?;
    let cidr = Cidr::parse(text).ok_or_else(|| {
        invalid("InvalidParameterValue", format!("Value ({text}) for parameter cidrBlock is invalid."))
    })?;
    let in_vpc = Cidr::parse(&vpc.cidr).is_some_and(|v| v.contains(cidr));
    if !in_vpc || !(16..=28).contains(&cidr.prefix()) {
        return Err(invalid("InvalidSubnet.Range", format!("The CIDR '{text}' is invalid.")));
    }
    if existing
        .subnets
        .iter()
        .filter(|s| s.vpc_id == vpc_id)
        .any(|s| Cidr::parse(&s.cidr).is_some_and(|c| c.overlaps(cidr)))
    {
        return Err(conflict("InvalidSubnet.Conflict", format!("The CIDR '{text}' conflicts with another subnet")));
    }
    let (az_name, az_id) = match (q.text(attr::AVAILABILITY_ZONE), q.text(attr::AVAILABILITY_ZONE_ID)) {
        (Some(name), id) => match existing.availability_zones.iter().find(|az| az.name == name) {
            Some(az) if id.is_none_or(|id| id == az.id) => (az.name.clone(), az.id.clone()),
            Some(az) => {
                return Err(invalid(
                    "InvalidParameterValue",
                    format!("{name} is {} in this account, not {}", az.id, id.unwrap_or("")),
                ));
            }
            None => {
                return Err(invalid(
                    "InvalidParameterValue",
                    format!("Value ({name}) for parameter availabilityZone is invalid."),
                ));
            }
        },
        (None, Some(id)) => match existing.availability_zones.iter().find(|az| az.id == id) {
            Some(az) => (az.name.clone(), az.id.clone()),
            None => {
                return Err(invalid(
                    "InvalidParameterValue",
                    format!("Value ({id}) for parameter availabilityZoneId is invalid."),
                ));
            }
        },
        (None, None) => match existing.availability_zones.first() {
            Some(az) => (az.name.clone(), az.id.clone()),
            None => return Err(invalid("InvalidParameterValue", "the region has no availability zone")),
        },
    };
    let mut tags: Tags = q.attributes.get(&attr::TAGS).map(Value::string_map).unwrap_or_default();
    tags.extend(ownership_tags(q.stack, q.address));
    let id = format!("subnet-0{}", world.next_hex("subnet", 16));
    let subnet = Subnet {
        id,
        vpc_id: vpc_id.to_string(),
        cidr: text.to_string(),
        availability_zone: az_name,
        availability_zone_id: az_id,
        available_ips: u32::try_from(cidr.size().saturating_sub(5)).unwrap_or(u32::MAX),
        tags,
        client_token,
    };
    aws.region_mut(world)?.subnets.push(subnet);
    Ok(())
}

fn find_subnet<'w>(region: &'w mut AwsRegion, q: &Query<'_>) -> Option<&'w mut Subnet> {
    match q.identity {
        Identity::Adopted { id } => region.subnets.iter_mut().find(|s| &s.id == id),
        _ => region.subnets.iter_mut().find(|s| owned_by(&s.tags, q.stack, q.address.as_str())),
    }
}

fn subnet_update(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let region = aws.region_mut(world)?;
    let subnet = find_subnet(region, q)
        .ok_or_else(|| not_found("InvalidSubnetID.NotFound", format!("{}: no such subnet", q.address)))?;
    for (attribute, current) in [
        (attr::VPC_ID, &subnet.vpc_id),
        (attr::CIDR_BLOCK, &subnet.cidr),
        (attr::AVAILABILITY_ZONE, &subnet.availability_zone),
    ] {
        if let Some(wanted) = q.text(attribute)
            && wanted != current
        {
            return Err(invalid(
                "InvalidParameter",
                format!("a subnet's {attribute} cannot change ({current} → {wanted}): replace it"),
            ));
        }
    }
    // CreateTags: only adds or overwrites.
    subnet.tags.extend(q.attributes.get(&attr::TAGS).map(Value::string_map).unwrap_or_default());
    Ok(())
}

fn subnet_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let region = aws.region_mut(world)?;
    let Some(subnet) = region.subnets.iter().find(|s| q.owned(&s.tags)) else { return Ok(()) };
    let id = subnet.id.clone();
    let in_use = region.load_balancers.iter().any(|lb| lb.subnet_ids.contains(&id))
        || region.vpc_endpoints.iter().any(|e| e.subnet_ids.contains(&id));
    if in_use {
        return Err(conflict(
            "DependencyViolation",
            format!("The subnet '{id}' has dependencies and cannot be deleted."),
        ));
    }
    for table in &mut region.route_tables {
        table.associations.retain(|a| a.subnet_id != id);
    }
    region.subnets.retain(|s| s.id != id);
    Ok(())
}

fn routes_from(q: &Query<'_>) -> Vec<Route> {
    q.attributes
        .get(&attr::ROUTES)
        .map(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(|item| {
            let map = item.string_map();
            Some(Route { destination: map.get(field::DESTINATION)?.clone(), target: map.get(field::TARGET)?.clone() })
        })
        .collect()
}

fn route_table_apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let routes = routes_from(q);
    if !create {
        let region = aws.region_mut(world)?;
        let table =
            region.route_tables.iter_mut().find(|t| owned_by(&t.tags, q.stack, q.address.as_str())).ok_or_else(
                || not_found("InvalidRouteTableID.NotFound", format!("{}: no such route table", q.address)),
            )?;
        table.routes = routes;
        return Ok(());
    }
    let client_token = token(op);
    let current = aws.region(world)?;
    if client_token.is_some() && current.route_tables.iter().any(|t| t.client_token == client_token) {
        return Ok(());
    }
    let vpc_id = required(q, attr::VPC_ID)?;
    if !current.vpcs.iter().any(|v| v.id == vpc_id) {
        return Err(not_found("InvalidVpcID.NotFound", format!("The vpc ID '{vpc_id}' does not exist")));
    }
    let id = format!("rtb-0{}", world.next_hex("rtb", 16));
    let table = RouteTable {
        id,
        vpc_id: vpc_id.to_string(),
        main: false,
        associations: Vec::new(),
        routes,
        tags: ownership_tags(q.stack, q.address),
        client_token,
    };
    aws.region_mut(world)?.route_tables.push(table);
    Ok(())
}

fn route_table_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let region = aws.region_mut(world)?;
    let Some(table) = region.route_tables.iter().find(|t| q.owned(&t.tags)) else { return Ok(()) };
    if !table.associations.is_empty() || table.main {
        return Err(conflict(
            "DependencyViolation",
            format!("The routeTable '{}' has dependencies and cannot be deleted.", table.id),
        ));
    }
    let id = table.id.clone();
    region.route_tables.retain(|t| t.id != id);
    Ok(())
}

fn association_apply(aws: &SimAws, world: &mut World, q: &Query<'_>, create: bool) -> Done {
    let subnet_id = required(q, attr::SUBNET_ID)?.to_string();
    let table_id = required(q, attr::ROUTE_TABLE_ID)?.to_string();
    let current = aws.region(world)?;
    let subnet =
        current.subnets.iter().find(|s| s.id == subnet_id).ok_or_else(|| {
            not_found("InvalidSubnetID.NotFound", format!("The subnet ID '{subnet_id}' does not exist"))
        })?;
    let table = current.route_tables.iter().find(|t| t.id == table_id).ok_or_else(|| {
        not_found("InvalidRouteTableID.NotFound", format!("The routeTable ID '{table_id}' does not exist"))
    })?;
    if table.vpc_id != subnet.vpc_id {
        return Err(invalid(
            "InvalidParameterValue",
            format!("route table {table_id} and subnet {subnet_id} belong to different networks"),
        ));
    }
    let existing = current.route_tables.iter().find(|t| t.associations.iter().any(|a| a.subnet_id == subnet_id));
    match existing {
        Some(t) if t.id == table_id => return Ok(()),
        Some(t) if create => {
            return Err(conflict(
                "Resource.AlreadyAssociated",
                format!("the specified association for route table {} conflicts with an existing association", t.id),
            ));
        }
        _ => {}
    }
    let id = format!("rtbassoc-0{}", world.next_hex("rtbassoc", 16));
    let region = aws.region_mut(world)?;
    for table in &mut region.route_tables {
        table.associations.retain(|a| a.subnet_id != subnet_id);
    }
    if let Some(table) = region.route_tables.iter_mut().find(|t| t.id == table_id) {
        table.associations.push(RouteTableAssociation { id, subnet_id });
    }
    Ok(())
}

fn association_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let Some(subnet_id) = q.text(attr::SUBNET_ID).map(str::to_string) else { return Ok(()) };
    let region = aws.region_mut(world)?;
    for table in &mut region.route_tables {
        if table.associations.iter().any(|a| a.subnet_id == subnet_id) {
            if table.tags.get(STACK_TAG).is_none_or(|s| s != q.stack) {
                return Err(invalid(
                    "OperationNotPermitted",
                    format!("{subnet_id}'s association is with {}, which edgeplan does not own", table.id),
                ));
            }
            table.associations.retain(|a| a.subnet_id != subnet_id);
        }
    }
    Ok(())
}

fn sg_rule_apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let protocol = q.text(attr::PROTOCOL).unwrap_or("tcp").to_ascii_lowercase();
    let port = q
        .port(attr::PORT)
        .ok_or_else(|| invalid("InvalidParameterValue", format!("{}: `port` must be a port", q.address)))?;
    let source_text = required(q, attr::SOURCE_CIDR)?.to_string();
    let source = Cidr::parse(&source_text)
        .ok_or_else(|| invalid("InvalidParameterValue", format!("CIDR block {source_text} is malformed")))?;
    let client_token = token(op);
    let group_id =
        cluster_sg(aws.region(world)?, q.text(attr::SECURITY_GROUP_ID), q.text(attr::CLUSTER_NAME))?.id.clone();
    let rule_id = format!("sgr-0{}", world.next_hex("sgr", 16));
    let region = aws.region_mut(world)?;
    let Some(group) = region.security_groups.iter_mut().find(|g| g.id == group_id) else { return Ok(()) };
    if create && client_token.is_some() && group.ingress.iter().any(|r| r.client_token == client_token) {
        return Ok(());
    }
    if !create {
        group.ingress.retain(|r| !owned_by(&r.tags, q.stack, q.address.as_str()));
    }
    let duplicate = group.ingress.iter().any(|r| {
        r.protocol == protocol
            && r.from_port == port
            && r.to_port == port
            && r.cidr.as_deref().and_then(Cidr::parse) == Some(source)
    });
    if duplicate {
        return Err(conflict(
            "InvalidPermission.Duplicate",
            format!(
                "the specified rule \"peer: {source_text}, {}, from port: {port}, to port: {port}, ALLOW\" already exists",
                protocol.to_ascii_uppercase()
            ),
        ));
    }
    group.ingress.push(SgRule {
        id: rule_id,
        protocol,
        from_port: port,
        to_port: port,
        cidr: Some(source_text),
        source_group: None,
        description: "Portainer chisel tunnel from the internal NLB subnet (edgeplan)".to_string(),
        tags: ownership_tags(q.stack, q.address),
        client_token,
    });
    Ok(())
}

/// RevokeSecurityGroupIngress by rule ID.
fn sg_rule_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let region = aws.region_mut(world)?;
    for group in &mut region.security_groups {
        group.ingress.retain(|r| !owned_by(&r.tags, q.stack, q.address.as_str()));
    }
    Ok(())
}

fn tunnel_rule(world: &mut World, q: &Query<'_>, port: u16, cidr: &str) -> SgRule {
    SgRule {
        id: format!("sgr-0{}", world.next_hex("sgr", 16)),
        protocol: "tcp".to_string(),
        from_port: port,
        to_port: port,
        cidr: Some(cidr.to_string()),
        source_group: None,
        description: "Edge agents to the Portainer tunnel (edgeplan)".to_string(),
        tags: ownership_tags(q.stack, q.address),
        client_token: None,
    }
}

fn vpce_sg_apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let port = q
        .port(attr::INGRESS_PORT)
        .ok_or_else(|| invalid("InvalidParameterValue", format!("{}: `ingress_port` must be a port", q.address)))?;
    let has_cidrs = q.attributes.contains_key(&attr::INGRESS_CIDRS);
    let cidrs = q.strings(attr::INGRESS_CIDRS);
    if let Some(bad) = cidrs.iter().find(|c| Cidr::parse(c).is_none()) {
        return Err(invalid("InvalidParameterValue", format!("CIDR block {bad} is malformed")));
    }
    if create {
        if let Identity::Adopted { id } = q.identity {
            return Err(invalid("InvalidParameter", format!("{id} is adopted: edgeplan does not create it")));
        }
        let client_token = token(op);
        let current = aws.region(world)?;
        if client_token.is_some() && current.security_groups.iter().any(|g| g.client_token == client_token) {
            return Ok(());
        }
        let vpc_id = required(q, attr::VPC_ID)?.to_string();
        if !current.vpcs.iter().any(|v| v.id == vpc_id) {
            return Err(not_found("InvalidVpcID.NotFound", format!("The vpc ID '{vpc_id}' does not exist")));
        }
        let name = format!("edgeplan-{}-{}", q.stack, q.address.as_str().replace('.', "-"));
        if current.security_groups.iter().any(|g| g.vpc_id == vpc_id && g.name == name) {
            return Err(conflict(
                "InvalidGroup.Duplicate",
                format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
            ));
        }
        let id = format!("sg-0{}", world.next_hex("sg", 16));
        let ingress = cidrs.iter().map(|cidr| tunnel_rule(world, q, port, cidr)).collect();
        let group = SecurityGroup {
            id,
            vpc_id,
            name,
            description: format!("edgeplan {}: agents to the Portainer tunnel endpoint", q.address),
            tags: ownership_tags(q.stack, q.address),
            ingress,
            client_token,
        };
        aws.region_mut(world)?.security_groups.push(group);
        return Ok(());
    }
    let group_id = {
        let current = aws.region(world)?;
        let group = match q.identity {
            Identity::Adopted { id } => current.security_groups.iter().find(|g| &g.id == id),
            _ => current.security_groups.iter().find(|g| q.owned(&g.tags)),
        };
        group
            .ok_or_else(|| not_found("InvalidGroup.NotFound", format!("{}: no such security group", q.address)))?
            .id
            .clone()
    };
    if !has_cidrs {
        return Ok(());
    }
    let missing: Vec<String> = {
        let current = aws.region(world)?;
        let group = current.security_groups.iter().find(|g| g.id == group_id);
        cidrs
            .iter()
            .filter(|c| {
                !group.is_some_and(|g| {
                    g.ingress.iter().any(|r| {
                        r.protocol == "tcp" && r.from_port == port && r.to_port == port && r.cidr.as_ref() == Some(*c)
                    })
                })
            })
            .cloned()
            .collect()
    };
    let rules: Vec<SgRule> = missing.iter().map(|c| tunnel_rule(world, q, port, c)).collect();
    let region = aws.region_mut(world)?;
    if let Some(group) = region.security_groups.iter_mut().find(|g| g.id == group_id) {
        // Only edgeplan's own rules are removed: an adopted group's other rules are someone else's.
        group.ingress.retain(|r| {
            !owned_by(&r.tags, q.stack, q.address.as_str())
                || (r.from_port == port && r.cidr.as_ref().is_some_and(|c| cidrs.contains(c)))
        });
        group.ingress.extend(rules);
    }
    Ok(())
}

fn vpce_sg_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let region = aws.region_mut(world)?;
    let Some(group) = region.security_groups.iter().find(|g| q.owned(&g.tags)) else { return Ok(()) };
    let id = group.id.clone();
    if region.vpc_endpoints.iter().any(|e| e.security_group_ids.contains(&id)) {
        return Err(conflict("DependencyViolation", format!("resource {id} has a dependent object")));
    }
    region.security_groups.retain(|g| g.id != id);
    Ok(())
}

fn endpoint_service_apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let client_token = token(op);
    let current = aws.region(world)?;
    if create && client_token.is_some() && current.endpoint_services.iter().any(|s| s.client_token == client_token) {
        return Ok(());
    }
    let arn = q.text(attr::NETWORK_LOAD_BALANCER_ARN).ok_or_else(|| {
        invalid(
            "InvalidParameter",
            "exactly one of network_load_balancer_arn or gateway_load_balancer_arn is a required member",
        )
    })?;
    let lb = current
        .load_balancers
        .iter()
        .find(|lb| lb.arn == arn)
        .ok_or_else(|| invalid("InvalidParameter", format!("Load balancer {arn} does not exist")))?;
    // Modelling choice (aws.md §2 marks it unverified): the service wants an active NLB.
    if lb.state != "active" {
        return Err(not_ready("InvalidParameter", format!("load balancer {} is {}, not active", lb.name, lb.state)));
    }
    let in_use = current
        .endpoint_services
        .iter()
        .any(|s| s.network_load_balancer_arns.iter().any(|a| a == arn) && !q.owned(&s.tags));
    if in_use {
        return Err(conflict(
            "InvalidParameter",
            format!("load balancer {arn} is already associated with another VPC endpoint service"),
        ));
    }
    let acceptance = q.attributes.get(&attr::ACCEPTANCE_REQUIRED).and_then(Value::as_bool).unwrap_or(true);
    if !create {
        let region = aws.region_mut(world)?;
        let service = region
            .endpoint_services
            .iter_mut()
            .find(|s| owned_by(&s.tags, q.stack, q.address.as_str()))
            .ok_or_else(|| {
                not_found("InvalidVpcEndpointServiceId.NotFound", format!("{}: no such endpoint service", q.address))
            })?;
        service.acceptance_required = acceptance;
        service.network_load_balancer_arns = vec![arn.to_string()];
        return Ok(());
    }
    let id = format!("vpce-svc-0{}", world.next_hex("vpce-svc", 16));
    let service = EndpointService {
        service_name: format!("com.amazonaws.vpce.{}.{id}", aws.region),
        service_id: id,
        state: "Available".to_string(),
        acceptance_required: acceptance,
        network_load_balancer_arns: vec![arn.to_string()],
        allowed_principals: Vec::new(),
        tags: ownership_tags(q.stack, q.address),
        client_token,
    };
    aws.region_mut(world)?.endpoint_services.push(service);
    Ok(())
}

fn endpoint_service_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let current = aws.region(world)?;
    let Some(service) = current.endpoint_services.iter().find(|s| q.owned(&s.tags)) else { return Ok(()) };
    let (id, name) = (service.service_id.clone(), service.service_name.clone());
    let connected = world
        .regions()
        .flat_map(|(_, r)| r.vpc_endpoints.iter())
        .any(|e| e.service_name == name && !matches!(e.state.as_str(), "deleted" | "rejected" | "failed"));
    if connected {
        return Err(conflict(
            "ExistingVpcEndpointConnections",
            format!("Service {id} has existing VPC endpoint connections"),
        ));
    }
    aws.region_mut(world)?.endpoint_services.retain(|s| s.service_id != id);
    Ok(())
}

fn valid_principal(principal: &str) -> bool {
    if principal == "*" {
        return true;
    }
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else { return false };
    let resource_ok = *resource == "root"
        || ["user/", "role/"]
            .iter()
            .any(|p| resource.strip_prefix(p).is_some_and(|name| !name.is_empty() && !name.contains('/')));
    *arn == "arn"
        && partition.starts_with("aws")
        && *service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource_ok
}

/// ModifyVpcEndpointServicePermissions to exactly the desired list (or `set`).
fn permissions_apply(aws: &SimAws, world: &mut World, q: &Query<'_>, set: Option<Vec<String>>) -> Done {
    let service_id = required(q, attr::SERVICE_ID)?.to_string();
    let mut principals = set.unwrap_or_else(|| q.strings(attr::ALLOWED_PRINCIPALS));
    if let Some(bad) = principals.iter().find(|p| !valid_principal(p)) {
        return Err(invalid("InvalidPrincipal", format!("Invalid principal {bad}")));
    }
    principals.sort();
    principals.dedup();
    let region = aws.region_mut(world)?;
    let service = region.endpoint_services.iter_mut().find(|s| s.service_id == service_id).ok_or_else(|| {
        not_found(
            "InvalidVpcEndpointServiceId.NotFound",
            format!("The VpcEndpointService Id '{service_id}' does not exist"),
        )
    })?;
    service.allowed_principals = principals;
    Ok(())
}

/// The endpoint service called `name`, wherever it lives.
fn service_by_name<'w>(world: &'w World, name: &str) -> Option<&'w EndpointService> {
    world.regions().flat_map(|(_, r)| r.endpoint_services.iter()).find(|s| s.service_name == name)
}

fn principal_allowed(service: &EndpointService, account: &str) -> bool {
    service.allowed_principals.iter().any(|p| p == "*" || p.split(':').nth(4) == Some(account))
}

fn vpce_apply(aws: &SimAws, world: &mut World, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let client_token = token(op);
    let current = aws.region(world)?;
    if create && client_token.is_some() && current.vpc_endpoints.iter().any(|e| e.client_token == client_token) {
        return Ok(());
    }
    let vpc_id = required(q, attr::VPC_ID)?.to_string();
    if !current.vpcs.iter().any(|v| v.id == vpc_id) {
        return Err(not_found("InvalidVpcId.NotFound", format!("The Vpc Id '{vpc_id}' does not exist")));
    }
    let service_name = required(q, attr::SERVICE_NAME)?.to_string();
    // A service the caller may not see does not exist, as far as the API says.
    let service =
        service_by_name(world, &service_name).filter(|s| principal_allowed(s, &aws.account)).ok_or_else(|| {
            not_found("InvalidServiceName", format!("The Vpc Endpoint Service '{service_name}' does not exist"))
        })?;
    // CreateVpcEndpoint defaults to Gateway: an interface service refuses it.
    let endpoint_type = q.text(attr::VPC_ENDPOINT_TYPE).unwrap_or("Gateway");
    if endpoint_type != "Interface" {
        return Err(invalid(
            "InvalidParameter",
            format!("The VPC endpoint service {service_name} does not support the VPC endpoint type {endpoint_type}."),
        ));
    }
    if service.state != "Available" {
        return Err(not_ready("Unavailable", "The service is unavailable"));
    }
    let subnet_ids = q.strings(attr::SUBNET_IDS);
    if subnet_ids.is_empty() {
        return Err(invalid("InvalidParameter", "an interface endpoint needs at least one subnet"));
    }
    let service_azs = service_az_ids(world, service);
    let mut zones: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_az = Vec::new();
    for id in &subnet_ids {
        let subnet = current
            .subnets
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| not_found("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist")))?;
        if subnet.vpc_id != vpc_id {
            return Err(invalid("InvalidParameter", format!("subnet {id} is not in {vpc_id}")));
        }
        if seen_az.contains(&subnet.availability_zone_id) {
            return Err(invalid(
                "DuplicateSubnetsInSameZone",
                format!(
                    "Found another VPC endpoint subnet in the availability zone of {id}. VPC endpoint subnets should be in different availability zones supported by the VPC endpoint service."
                ),
            ));
        }
        seen_az.push(subnet.availability_zone_id.clone());
        // Compared by AZ *ID*: names map to different zones in different accounts.
        if !service_azs.contains(&subnet.availability_zone_id) {
            return Err(invalid(
                "InvalidParameter",
                format!(
                    "The VPC endpoint service {service_name} does not support the availability zone of the subnet: {id}."
                ),
            ));
        }
        zones.insert(id.clone(), subnet.availability_zone.clone());
    }
    let security_groups: Vec<String> = q.text(attr::SECURITY_GROUP_ID).map(str::to_string).into_iter().collect();
    for id in &security_groups {
        if !current.security_groups.iter().any(|g| &g.id == id && g.vpc_id == vpc_id) {
            return Err(not_found(
                "InvalidSecurityGroupId.NotFound",
                format!("The security group '{id}' does not exist in VPC '{vpc_id}'"),
            ));
        }
    }
    let (service_id, acceptance_required) = (service.service_id.clone(), service.acceptance_required);
    if !create {
        let region = aws.region_mut(world)?;
        let endpoint =
            region.vpc_endpoints.iter_mut().find(|e| owned_by(&e.tags, q.stack, q.address.as_str())).ok_or_else(
                || not_found("InvalidVpcEndpointId.NotFound", format!("{}: no such VPC endpoint", q.address)),
            )?;
        if endpoint.service_name != service_name || endpoint.vpc_id != vpc_id {
            return Err(invalid("InvalidParameter", "an endpoint's service and VPC cannot change: replace it"));
        }
        endpoint.subnet_ids = subnet_ids;
        endpoint.security_group_ids = security_groups;
        return Ok(());
    }
    let id = format!("vpce-0{}", world.next_hex("vpce", 16));
    let suffix = world.next_hex("vpce-dns", 8);
    let mut dns_entries = vec![format!("{id}-{suffix}.{service_id}.{}.vpce.amazonaws.com", aws.region)];
    for az in zones.values() {
        dns_entries.push(format!("{id}-{suffix}-{az}.{service_id}.{}.vpce.amazonaws.com", aws.region));
    }
    let state = if acceptance_required { "pendingAcceptance" } else { "pending" };
    let endpoint = VpcEndpoint {
        id: id.clone(),
        vpc_id,
        service_name,
        endpoint_type: "Interface".to_string(),
        subnet_ids,
        security_group_ids: security_groups,
        state: state.to_string(),
        dns_entries,
        tags: ownership_tags(q.stack, q.address),
        client_token,
        created_at: world.now,
    };
    aws.region_mut(world)?.vpc_endpoints.push(endpoint);
    if !acceptance_required {
        world.schedule(TransitionKind::VpceAvailable, &id);
    }
    world.record(&id, format!("VPC endpoint {id} created ({state})"), None);
    Ok(())
}

fn vpce_delete(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let region = aws.region_mut(world)?;
    let ids: Vec<String> = region.vpc_endpoints.iter().filter(|e| q.owned(&e.tags)).map(|e| e.id.clone()).collect();
    region.vpc_endpoints.retain(|e| !ids.contains(&e.id));
    world.pending.retain(|t| !ids.contains(&t.subject));
    Ok(())
}

fn endpoint_mut<'w>(world: &'w mut World, id: &str) -> Option<&'w mut VpcEndpoint> {
    world
        .aws
        .iter_mut()
        .flat_map(|a| a.regions.iter_mut())
        .flat_map(|r| r.vpc_endpoints.iter_mut())
        .find(|e| e.id == id)
}

/// AcceptVpcEndpointConnections: `pendingAcceptance` → `pending` → (2 min) `available`.
fn accept(aws: &SimAws, world: &mut World, q: &Query<'_>) -> Done {
    let service_id = required(q, attr::SERVICE_ID)?.to_string();
    let endpoint_id = required(q, attr::VPC_ENDPOINT_ID)?.to_string();
    let service_name = aws
        .region(world)?
        .endpoint_services
        .iter()
        .find(|s| s.service_id == service_id)
        .map(|s| s.service_name.clone())
        .ok_or_else(|| {
            not_found(
                "InvalidVpcEndpointServiceId.NotFound",
                format!("The VpcEndpointService Id '{service_id}' does not exist"),
            )
        })?;
    let endpoint = endpoint_mut(world, &endpoint_id).filter(|e| e.service_name == service_name).ok_or_else(|| {
        not_found("InvalidVpcEndpointId.NotFound", format!("The Vpc Endpoint Id '{endpoint_id}' does not exist"))
    })?;
    match endpoint.state.as_str() {
        "pendingAcceptance" | "rejected" => {
            endpoint.state = "pending".to_string();
            world.schedule(TransitionKind::VpceAvailable, &endpoint_id);
            world.record(&endpoint_id, format!("connection from {endpoint_id} accepted"), None);
            Ok(())
        }
        "pending" | "available" => Ok(()),
        other => Err(invalid("InvalidState", format!("the endpoint {endpoint_id} is {other}"))),
    }
}

/// RejectVpcEndpointConnections: the endpoint stops carrying traffic; it stays, `rejected`,
/// until its owner deletes it.
fn reject(world: &mut World, q: &Query<'_>) -> Done {
    let Some(endpoint_id) = q.text(attr::VPC_ENDPOINT_ID).map(str::to_string) else { return Ok(()) };
    if let Some(endpoint) = endpoint_mut(world, &endpoint_id)
        && matches!(endpoint.state.as_str(), "pendingAcceptance" | "pending" | "available")
    {
        endpoint.state = "rejected".to_string();
    }
    world.pending.retain(|t| t.subject != endpoint_id);
    Ok(())
}
