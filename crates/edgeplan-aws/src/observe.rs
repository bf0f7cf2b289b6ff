//! Observe: every node of one kind in one call per API (filters, ID lists, paginators), and
//! every kind at once. Never one Describe per resource: the number of calls does not grow
//! with the number of consumers.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    AvailabilityZone, RouteTable, SecurityGroup, SecurityGroupRule, ServiceConfiguration, Subnet, Vpc, VpcEndpoint,
    VpcEndpointConnection,
};
use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, TargetGroup};
use edgeplan_model::attr::{self, field};
use edgeplan_model::backend::{ADDRESS_TAG, STACK_TAG};
use edgeplan_model::{BackendError, LiveObject, NodeKind, Observed, Ownership, Value};

use crate::backend::{AwsBackend, Outcome, Query};
use crate::convert::{
    Tags, ec2_tags, filter, is_local, map_of, opt, owned_by, owner_of, port_of, route_value, stack_filter, strings,
};
use crate::error::from_sdk;
use crate::iam;
use edgeplan_model::join::{both, join_all};

type Batch = Result<Vec<Outcome>, BackendError>;

/// Observe `queries` (any kinds, one scope): one result per query, in order.
pub(crate) async fn all(b: &AwsBackend, queries: &[Query<'_>]) -> Vec<Outcome> {
    let mut by_kind: BTreeMap<NodeKind, Vec<usize>> = BTreeMap::new();
    for (i, q) in queries.iter().enumerate() {
        by_kind.entry(q.kind).or_default().push(i);
    }
    let tasks = by_kind
        .into_iter()
        .map(|(kind, indices)| {
            let batch: Vec<&Query<'_>> = indices.iter().map(|i| &queries[*i]).collect();
            let task: edgeplan_model::BoxFuture<'_, (Vec<usize>, Vec<Outcome>)> = Box::pin(async move {
                let outcomes = match kind_batch(b, kind, &batch).await {
                    Ok(outcomes) => outcomes,
                    Err(error) => vec![Err(error); batch.len()],
                };
                (indices, outcomes)
            });
            task
        })
        .collect();
    let mut results: Vec<Option<Outcome>> = vec![None; queries.len()];
    for (indices, outcomes) in join_all(tasks).await {
        for (i, outcome) in indices.into_iter().zip(outcomes) {
            results[i] = Some(outcome);
        }
    }
    results.into_iter().map(|r| r.unwrap_or(Ok(Observed::Absent))).collect()
}

async fn kind_batch(b: &AwsBackend, kind: NodeKind, qs: &[&Query<'_>]) -> Batch {
    match kind {
        NodeKind::LbControllerPolicy => Ok(policies(b, qs).await),
        NodeKind::Vpc => vpcs(b, qs).await,
        NodeKind::NlbSubnet => nlb_subnets(b, qs).await,
        NodeKind::NlbRouteTable => route_tables(b, qs).await,
        NodeKind::NlbRouteTableAssociation => associations(b, qs).await,
        NodeKind::Nlb => nlbs(b, qs).await,
        NodeKind::ClusterSgRule => sg_rules(b, qs).await,
        NodeKind::EndpointService => endpoint_services(b, qs).await,
        NodeKind::EndpointServicePermissions => permissions(b, qs).await,
        NodeKind::ConsumerSubnets => consumer_subnets(b, qs).await,
        NodeKind::VpceSecurityGroup => vpce_security_groups(b, qs).await,
        NodeKind::Vpce => vpces(b, qs).await,
        NodeKind::ConnectionAcceptance => acceptances(b, qs).await,
        other => Err(BackendError::unsupported(format!("{other} is not an AWS resource"))),
    }
}

fn present(live: LiveObject) -> Outcome {
    Ok(Observed::Present(live))
}

/// EC2 reports endpoint and connection states in camelCase (`pendingAcceptance`), which the
/// SDK's PascalCase enum does not know (aws.md §2): keep the wire's spelling whichever way the
/// SDK parsed it.
pub(crate) fn camel(state: &str) -> String {
    let mut chars = state.chars();
    chars.next().map_or_else(String::new, |first| first.to_ascii_lowercase().to_string() + chars.as_str())
}

/// The one item carrying this node's ownership tags; several is an error (which is ours?).
fn find_owned<'i, T>(
    items: &'i [T],
    tags: impl Fn(&T) -> Tags,
    q: &Query<'_>,
    what: &str,
) -> Result<Option<&'i T>, BackendError> {
    let found: Vec<&T> = items.iter().filter(|item| owned_by(&tags(item), q.stack, q.address)).collect();
    match found.len() {
        0 | 1 => Ok(found.first().copied()),
        n => Err(BackendError::conflict(format!(
            "AmbiguousOwnership: {n} {what} carry {STACK_TAG}={} and {ADDRESS_TAG}={}: edgeplan cannot tell which is its own; delete the extra one",
            q.stack, q.address
        ))),
    }
}

// ----- the API calls, paginated ------------------------------------------------------------

pub(crate) async fn describe_subnets(
    b: &AwsBackend,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Subnet>, BackendError> {
    b.ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeSubnets", e))
}

pub(crate) async fn describe_route_tables(
    b: &AwsBackend,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<RouteTable>, BackendError> {
    b.ec2
        .describe_route_tables()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeRouteTables", e))
}

pub(crate) async fn describe_security_groups(
    b: &AwsBackend,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<SecurityGroup>, BackendError> {
    b.ec2
        .describe_security_groups()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeSecurityGroups", e))
}

pub(crate) async fn describe_sg_rules(
    b: &AwsBackend,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<SecurityGroupRule>, BackendError> {
    b.ec2
        .describe_security_group_rules()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeSecurityGroupRules", e))
}

async fn describe_vpcs(b: &AwsBackend, ids: &[String]) -> Result<Vec<Vpc>, BackendError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // A filter, not VpcIds: an unknown ID is then simply absent, not an error for the batch.
    b.ec2
        .describe_vpcs()
        .filters(filter("vpc-id", ids.iter().cloned()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeVpcs", e))
}

async fn describe_zones(b: &AwsBackend) -> Result<Vec<AvailabilityZone>, BackendError> {
    let out =
        b.ec2.describe_availability_zones().send().await.map_err(|e| from_sdk("ec2:DescribeAvailabilityZones", e))?;
    Ok(out.availability_zones().to_vec())
}

pub(crate) async fn describe_service_configurations(
    b: &AwsBackend,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<ServiceConfiguration>, BackendError> {
    b.ec2
        .describe_vpc_endpoint_service_configurations()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeVpcEndpointServiceConfigurations", e))
}

pub(crate) async fn describe_vpc_endpoints(
    b: &AwsBackend,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<VpcEndpoint>, BackendError> {
    b.ec2
        .describe_vpc_endpoints()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeVpcEndpoints", e))
}

pub(crate) async fn describe_connections(
    b: &AwsBackend,
    service_ids: &[String],
) -> Result<Vec<VpcEndpointConnection>, BackendError> {
    if service_ids.is_empty() {
        return Ok(Vec::new());
    }
    b.ec2
        .describe_vpc_endpoint_connections()
        .filters(filter("service-id", service_ids.iter().cloned()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeVpcEndpointConnections", e))
}

/// Objects edgeplan owns, and adopted ones by ID, in two calls at most.
async fn owned_and_adopted<T, F, Fut>(qs: &[&Query<'_>], id_filter: &str, describe: F) -> Result<Vec<T>, BackendError>
where
    F: Fn(Vec<aws_sdk_ec2::types::Filter>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, BackendError>> + Send,
    T: Send,
{
    let adopted: Vec<String> = qs.iter().filter_map(|q| q.adopted().map(str::to_string)).collect();
    let owned = qs.iter().any(|q| q.adopted().is_none());
    let stack = qs.first().map(|q| q.stack).unwrap_or_default();
    let mut items = Vec::new();
    let mut calls = Vec::new();
    if owned {
        calls.push(describe(vec![stack_filter(stack)]));
    }
    if !adopted.is_empty() {
        calls.push(describe(vec![filter(id_filter, adopted)]));
    }
    for call in calls {
        items.extend(call.await?);
    }
    Ok(items)
}

// ----- IAM ---------------------------------------------------------------------------------

async fn policies(b: &AwsBackend, qs: &[&Query<'_>]) -> Vec<Outcome> {
    let tasks = qs
        .iter()
        .map(|q| {
            let task: edgeplan_model::BoxFuture<'_, Outcome> = Box::pin(policy(b, q));
            task
        })
        .collect();
    join_all(tasks).await
}

pub(crate) fn role_name(q: &Query<'_>) -> String {
    match q.identity {
        edgeplan_model::Identity::Named { name } => name.clone(),
        _ => q.text(attr::ROLE_NAME).unwrap_or_default().to_string(),
    }
}

/// The role's customer-managed policies, attached: (ARN, name).
pub(crate) async fn attached_customer_policies(
    b: &AwsBackend,
    role: &str,
) -> Result<Vec<(String, String)>, BackendError> {
    let attached = b
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("iam:ListAttachedRolePolicies", e))?;
    Ok(attached
        .iter()
        .filter_map(|p| Some((p.policy_arn()?.to_string(), p.policy_name().unwrap_or_default().to_string())))
        .collect())
}

async fn policy(b: &AwsBackend, q: &Query<'_>) -> Outcome {
    let role = role_name(q);
    let attached = attached_customer_policies(b, &role).await?;
    let all_arns: Vec<&str> = attached.iter().map(|(arn, _)| arn.as_str()).collect();
    // The one edgeplan keeps at the spec's document: the first customer-managed one, as the
    // controller's installation guide attaches exactly one.
    let Some((arn, name)) = attached.iter().find(|(arn, _)| iam::is_customer_managed(arn, &b.account)) else {
        return Ok(Observed::Absent);
    };
    let got = b.iam.get_policy().policy_arn(arn).send().await.map_err(|e| from_sdk("iam:GetPolicy", e))?;
    let details = got.policy();
    let default = details.and_then(|p| p.default_version_id()).unwrap_or("v1").to_string();
    let tags: Tags = details
        .map(|p| p.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
        .unwrap_or_default();
    let (versions, document) = both(
        async {
            b.iam
                .list_policy_versions()
                .policy_arn(arn)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| from_sdk("iam:ListPolicyVersions", e))
        },
        async {
            b.iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(&default)
                .send()
                .await
                .map_err(|e| from_sdk("iam:GetPolicyVersion", e))
        },
    )
    .await;
    let versions = versions?;
    let document = document?;
    let raw = document.policy_version().and_then(|v| v.document()).unwrap_or_default();
    let mut ids: Vec<&str> = versions.iter().filter_map(|v| v.version_id()).collect();
    ids.sort_by_key(|id| id.trim_start_matches('v').parse::<u64>().unwrap_or(0));
    let mut live = LiveObject::new(arn)
        .with(attr::ROLE_NAME, role.as_str())
        .with(attr::POLICY_ARN, arn.as_str())
        .with(attr::POLICY_NAME, name.as_str())
        .with(attr::POLICY_DOCUMENT, iam::decode_document(raw))
        .with(attr::DEFAULT_VERSION, default.as_str())
        .with(attr::VERSIONS, strings(ids))
        .with(attr::ATTACHED_POLICIES, strings(all_arns));
    live.owner = owner_of(&tags);
    present(live)
}

// ----- VPC ---------------------------------------------------------------------------------

fn string_pairs(pairs: &[(&str, &str)]) -> Value {
    Value::from(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<String, String>>())
}

fn routes_of(table: &RouteTable, with_local: bool) -> Value {
    Value::List(table.routes().iter().filter(|r| with_local || !is_local(r)).filter_map(route_value).collect())
}

fn is_main(table: &RouteTable) -> bool {
    table.associations().iter().any(|a| a.main() == Some(true))
}

/// DescribeVpcs by ID, with what creating in it depends on: its main route table (which routes
/// every subnet without an association of its own), its subnets, and the region's zones.
async fn vpcs(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let ids: Vec<String> = qs.iter().filter_map(|q| q.adopted().map(str::to_string)).collect();
    if ids.is_empty() {
        return Ok(vec![Ok(Observed::Absent); qs.len()]);
    }
    let ((vpcs, subnets), (tables, zones)) = both(
        both(describe_vpcs(b, &ids), describe_subnets(b, vec![filter("vpc-id", ids.iter().cloned())])),
        both(
            describe_route_tables(b, vec![filter("vpc-id", ids.iter().cloned()), filter("association.main", ["true"])]),
            describe_zones(b),
        ),
    )
    .await;
    let (vpcs, subnets, tables, zones) = (vpcs?, subnets?, tables?, zones?);
    let zone_values: Vec<Value> = zones
        .iter()
        .map(|z| {
            string_pairs(&[
                (field::NAME, z.zone_name().unwrap_or_default()),
                (field::ID, z.zone_id().unwrap_or_default()),
            ])
        })
        .collect();
    Ok(qs
        .iter()
        .map(|q| {
            let Some(id) = q.adopted() else { return Ok(Observed::Absent) };
            let Some(vpc) = vpcs.iter().find(|v| v.vpc_id() == Some(id)) else { return Ok(Observed::Absent) };
            let subnets: Vec<Value> = subnets
                .iter()
                .filter(|s| s.vpc_id() == Some(id))
                .map(|s| {
                    string_pairs(&[
                        (field::ID, s.subnet_id().unwrap_or_default()),
                        (field::CIDR, s.cidr_block().unwrap_or_default()),
                        (field::AVAILABILITY_ZONE, s.availability_zone().unwrap_or_default()),
                        (field::AVAILABILITY_ZONE_ID, s.availability_zone_id().unwrap_or_default()),
                    ])
                })
                .collect();
            let main = tables.iter().find(|t| t.vpc_id() == Some(id) && is_main(t));
            let live = LiveObject::new(id)
                .with(attr::CIDR_BLOCK, opt(vpc.cidr_block()))
                .with(attr::ROUTE_TABLE_ID, opt(main.and_then(|t| t.route_table_id())))
                .with(attr::ROUTES, main.map_or(Value::List(Vec::new()), |t| routes_of(t, true)))
                .with(attr::SUBNETS, Value::List(subnets))
                .with(attr::AVAILABILITY_ZONES, Value::List(zone_values.clone()));
            present(live)
        })
        .collect())
}

/// The effective route table of a subnet, as the LB controller resolves it: the explicit
/// association, else the VPC's main table.
fn effective_table<'t>(tables: &'t [RouteTable], subnet: &Subnet) -> Option<(&'t RouteTable, bool)> {
    let id = subnet.subnet_id()?;
    if let Some(table) = tables.iter().find(|t| t.associations().iter().any(|a| a.subnet_id() == Some(id))) {
        return Some((table, true));
    }
    tables.iter().find(|t| t.vpc_id() == subnet.vpc_id() && is_main(t)).map(|t| (t, false))
}

async fn nlb_subnets(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let subnets = owned_and_adopted(qs, "subnet-id", |filters| describe_subnets(b, filters)).await?;
    let vpcs: BTreeSet<String> = subnets.iter().filter_map(|s| s.vpc_id().map(str::to_string)).collect();
    let tables =
        if vpcs.is_empty() { Vec::new() } else { describe_route_tables(b, vec![filter("vpc-id", vpcs)]).await? };
    Ok(qs
        .iter()
        .map(|q| {
            let found = match q.adopted() {
                Some(id) => subnets.iter().find(|s| s.subnet_id() == Some(id)),
                None => find_owned(&subnets, |s| ec2_tags(s.tags()), q, "subnets")?,
            };
            let Some(subnet) = found else { return Ok(Observed::Absent) };
            let tags = ec2_tags(subnet.tags());
            let mut live = LiveObject::new(subnet.subnet_id().unwrap_or_default())
                .with(attr::VPC_ID, opt(subnet.vpc_id()))
                .with(attr::CIDR_BLOCK, opt(subnet.cidr_block()))
                .with(attr::AVAILABILITY_ZONE, opt(subnet.availability_zone()))
                .with(attr::AVAILABILITY_ZONE_ID, opt(subnet.availability_zone_id()))
                .with(attr::AVAILABLE_IP_ADDRESS_COUNT, i64::from(subnet.available_ip_address_count().unwrap_or(0)))
                .with(attr::TAGS, Value::from(tags.clone()));
            match effective_table(&tables, subnet) {
                Some((table, explicit)) => {
                    live.set(attr::ROUTE_TABLE_ID, opt(table.route_table_id()));
                    live.set(attr::ROUTE_TABLE_ASSOCIATION, if explicit { "explicit" } else { "main" });
                    live.set(attr::ROUTES, routes_of(table, true));
                }
                None => {
                    live.set(attr::ROUTE_TABLE_ID, Value::Null);
                    live.set(attr::ROUTES, Value::List(Vec::new()));
                }
            }
            live.owner = owner_of(&tags);
            present(live)
        })
        .collect())
}

async fn route_tables(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let tables = owned_and_adopted(qs, "route-table-id", |filters| describe_route_tables(b, filters)).await?;
    Ok(qs
        .iter()
        .map(|q| {
            let found = match q.adopted() {
                Some(id) => tables.iter().find(|t| t.route_table_id() == Some(id)),
                None => find_owned(&tables, |t| ec2_tags(t.tags()), q, "route tables")?,
            };
            let Some(table) = found else { return Ok(Observed::Absent) };
            // The `local` route comes with every table: a desired route list never names it.
            let mut live = LiveObject::new(table.route_table_id().unwrap_or_default())
                .with(attr::VPC_ID, opt(table.vpc_id()))
                .with(attr::ROUTES, routes_of(table, false))
                .with(attr::MAIN, is_main(table))
                .with(attr::ASSOCIATIONS, strings(table.associations().iter().filter_map(|a| a.subnet_id())));
            live.owner = owner_of(&ec2_tags(table.tags()));
            present(live)
        })
        .collect())
}

/// An association has no tags of its own: it is the stack's when its route table is.
async fn associations(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let subnet_ids: Vec<String> = qs.iter().filter_map(|q| q.text(attr::SUBNET_ID).map(str::to_string)).collect();
    if subnet_ids.is_empty() {
        return Ok(vec![Ok(Observed::Absent); qs.len()]);
    }
    let tables = describe_route_tables(b, vec![filter("association.subnet-id", subnet_ids)]).await?;
    Ok(qs
        .iter()
        .map(|q| {
            let Some(subnet_id) = q.text(attr::SUBNET_ID) else { return Ok(Observed::Absent) };
            let found = tables
                .iter()
                .find_map(|t| t.associations().iter().find(|a| a.subnet_id() == Some(subnet_id)).map(|a| (t, a)));
            let Some((table, association)) = found else { return Ok(Observed::Absent) };
            let mut live = LiveObject::new(association.route_table_association_id().unwrap_or_default())
                .with(attr::SUBNET_ID, subnet_id)
                .with(attr::ROUTE_TABLE_ID, opt(table.route_table_id()));
            live.owner = owner_of(&ec2_tags(table.tags()))
                .filter(|o| o.stack == q.stack)
                .map(|_| Ownership::new(q.stack, q.address));
            present(live)
        })
        .collect())
}

// ----- ELBv2 -------------------------------------------------------------------------------

async fn describe_load_balancers(b: &AwsBackend) -> Result<Vec<LoadBalancer>, BackendError> {
    b.elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("elasticloadbalancing:DescribeLoadBalancers", e))
}

/// Listeners and target health.
type NlbDetails = (Vec<Value>, Vec<Value>);

/// Every target group in the region, with the load balancers each serves: one paginated call
/// that needs no ARN, so it runs alongside DescribeLoadBalancers instead of after it.
async fn describe_target_groups(b: &AwsBackend) -> Result<Vec<TargetGroup>, BackendError> {
    b.elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("elasticloadbalancing:DescribeTargetGroups", e))
}

/// Listeners (with the port their target group forwards to) and target health of one NLB,
/// whose target groups are `groups`.
async fn nlb_details(b: &AwsBackend, arn: &str, groups: Vec<&TargetGroup>) -> Result<NlbDetails, BackendError> {
    let listeners = async {
        b.elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| from_sdk("elasticloadbalancing:DescribeListeners", e))
    };
    let health_tasks = groups
        .iter()
        .filter_map(|g| g.target_group_arn())
        .map(|tg| {
            let task: edgeplan_model::BoxFuture<'_, Result<Vec<Value>, BackendError>> = Box::pin(target_health(b, tg));
            task
        })
        .collect();
    let (listeners, health) = both(listeners, join_all(health_tasks)).await;
    let listeners = listeners?;
    let group_port: BTreeMap<&str, i32> =
        groups.iter().filter_map(|g| Some((g.target_group_arn()?, g.port()?))).collect();
    let listener_values = listeners
        .iter()
        .map(|l| {
            let target = l
                .default_actions()
                .iter()
                .find_map(|a| a.target_group_arn())
                .and_then(|tg| group_port.get(tg).copied());
            map_of(&[
                (field::PORT, l.port().map_or(Value::Null, |p| Value::Int(i64::from(p)))),
                (field::PROTOCOL, opt(l.protocol().map(|p| p.as_str()))),
                (field::TARGET_PORT, target.map_or(Value::Null, |p| Value::Int(i64::from(p)))),
            ])
        })
        .collect();
    let mut all = Vec::new();
    for result in health {
        all.extend(result?);
    }
    Ok((listener_values, all))
}

/// DescribeTargetHealth of one target group.
async fn target_health(b: &AwsBackend, group: &str) -> Result<Vec<Value>, BackendError> {
    let out = b
        .elb
        .describe_target_health()
        .target_group_arn(group)
        .send()
        .await
        .map_err(|e| from_sdk("elasticloadbalancing:DescribeTargetHealth", e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let target = d.target();
            let health = d.target_health();
            map_of(&[
                (field::TARGET, opt(target.and_then(|t| t.id()))),
                (field::PORT, target.and_then(|t| t.port()).map_or(Value::Null, |p| Value::Int(i64::from(p)))),
                (field::STATE, opt(health.and_then(|h| h.state()).map(|s| s.as_str()))),
                (field::REASON, opt(health.and_then(|h| h.reason()).map(|r| r.as_str()))),
                (field::DESCRIPTION, opt(health.and_then(|h| h.description()))),
            ])
        })
        .collect())
}

/// The NLB the controller made, found by the hostname the tunnel Service reports.
async fn nlbs(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    if qs.iter().all(|q| q.text(attr::HOSTNAME).is_none()) {
        return Ok(vec![Ok(Observed::Absent); qs.len()]);
    }
    let ((balancers, services), groups) = both(
        both(describe_load_balancers(b), describe_service_configurations(b, Vec::new())),
        describe_target_groups(b),
    )
    .await;
    let (balancers, services, groups) = (balancers?, services?, groups?);
    let matched: Vec<Option<&LoadBalancer>> = qs
        .iter()
        .map(|q| {
            let hostname = q.text(attr::HOSTNAME)?;
            balancers.iter().find(|lb| lb.dns_name().is_some_and(|d| d.eq_ignore_ascii_case(hostname)))
        })
        .collect();
    let subnet_ids: BTreeSet<String> = matched
        .iter()
        .flatten()
        .flat_map(|lb| lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_string)))
        .collect();
    let detail_tasks = matched
        .iter()
        .map(|lb| {
            let groups = &groups;
            let task: edgeplan_model::BoxFuture<'_, Option<Result<NlbDetails, BackendError>>> = Box::pin(async move {
                let arn = lb.and_then(|lb| lb.load_balancer_arn())?;
                let mine = groups.iter().filter(|g| g.load_balancer_arns().iter().any(|a| a == arn)).collect();
                Some(nlb_details(b, arn, mine).await)
            });
            task
        })
        .collect();
    // The subnets' zone IDs (ELBv2 reports zone names only) alongside the listeners and health.
    let (subnets, details) = both(
        async {
            if subnet_ids.is_empty() {
                Ok(Vec::new())
            } else {
                describe_subnets(b, vec![filter("subnet-id", subnet_ids.clone())]).await
            }
        },
        join_all(detail_tasks),
    )
    .await;
    let subnets = subnets?;
    Ok(matched
        .into_iter()
        .zip(details)
        .map(|(lb, detail)| {
            let (Some(lb), Some(detail)) = (lb, detail) else { return Ok(Observed::Absent) };
            let (listeners, health) = detail?;
            let arn = lb.load_balancer_arn().unwrap_or_default();
            let lb_subnets: Vec<&str> = lb.availability_zones().iter().filter_map(|z| z.subnet_id()).collect();
            let zone_ids: BTreeSet<&str> = subnets
                .iter()
                .filter(|s| s.subnet_id().is_some_and(|id| lb_subnets.contains(&id)))
                .filter_map(|s| s.availability_zone_id())
                .collect();
            let service_ids: Vec<&str> = services
                .iter()
                .filter(|s| s.network_load_balancer_arns().iter().any(|a| a == arn))
                .filter_map(|s| s.service_id())
                .collect();
            let live = LiveObject::new(arn)
                .with(attr::ARN, arn)
                .with(attr::NAME, opt(lb.load_balancer_name()))
                .with(attr::DNS_NAME, opt(lb.dns_name()))
                .with(attr::SCHEME, opt(lb.scheme().map(|s| s.as_str())))
                .with(attr::STATE, opt(lb.state().and_then(|s| s.code()).map(|c| c.as_str())))
                .with(attr::VPC_ID, opt(lb.vpc_id()))
                .with(attr::SUBNET_IDS, strings(lb_subnets))
                .with(attr::AVAILABILITY_ZONE_IDS, strings(zone_ids))
                .with(attr::LISTENERS, Value::List(listeners))
                .with(attr::TARGET_HEALTH, Value::List(health))
                .with(attr::ENDPOINT_SERVICE_IDS, strings(service_ids));
            present(live)
        })
        .collect())
}

// ----- security groups ---------------------------------------------------------------------

/// The EKS tag every cluster security group carries.
pub(crate) const EKS_CLUSTER_TAG: &str = "aws:eks:cluster-name";

/// The security group a cluster rule goes in: named in the spec, or the EKS cluster security
/// group found by its `aws:eks:cluster-name` tag.
pub(crate) fn cluster_group<'g>(
    groups: &'g [SecurityGroup],
    explicit: Option<&str>,
    cluster: Option<&str>,
    region: &str,
) -> Result<&'g SecurityGroup, BackendError> {
    if let Some(id) = explicit {
        return groups.iter().find(|g| g.group_id() == Some(id)).ok_or_else(|| {
            BackendError::not_found(format!("InvalidGroup.NotFound: The security group '{id}' does not exist"))
        });
    }
    let name = cluster.ok_or_else(|| {
        BackendError::invalid("MissingParameter", "no cluster name to discover the cluster security group by")
    })?;
    let found: Vec<&SecurityGroup> =
        groups.iter().filter(|g| ec2_tags(g.tags()).get(EKS_CLUSTER_TAG).is_some_and(|v| v == name)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(BackendError::not_found(format!(
            "InvalidGroup.NotFound: no security group is tagged {EKS_CLUSTER_TAG}={name} in {region}"
        ))),
        _ => Err(BackendError::invalid(
            "InvalidParameterCombination",
            format!(
                "{} security groups are tagged for cluster {name}: name one with clusterSecurityGroup.id",
                found.len()
            ),
        )),
    }
}

/// The groups cluster rules may go in: by ID, and by the EKS tag, one call each at most.
pub(crate) async fn cluster_groups(b: &AwsBackend, qs: &[&Query<'_>]) -> Result<Vec<SecurityGroup>, BackendError> {
    let explicit: BTreeSet<String> =
        qs.iter().filter_map(|q| q.text(attr::SECURITY_GROUP_ID).map(str::to_string)).collect();
    let clusters: BTreeSet<String> = qs
        .iter()
        .filter(|q| q.text(attr::SECURITY_GROUP_ID).is_none())
        .filter_map(|q| q.text(attr::CLUSTER_NAME).map(str::to_string))
        .collect();
    let mut groups = Vec::new();
    if !explicit.is_empty() {
        groups.extend(describe_security_groups(b, vec![filter("group-id", explicit)]).await?);
    }
    if !clusters.is_empty() {
        groups.extend(describe_security_groups(b, vec![filter(&format!("tag:{EKS_CLUSTER_TAG}"), clusters)]).await?);
    }
    Ok(groups)
}

fn rule_tags(rule: &SecurityGroupRule) -> Tags {
    ec2_tags(rule.tags())
}

async fn sg_rules(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let groups = cluster_groups(b, qs).await?;
    let ids: BTreeSet<String> = groups.iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
    let rules = if ids.is_empty() { Vec::new() } else { describe_sg_rules(b, vec![filter("group-id", ids)]).await? };
    Ok(qs
        .iter()
        .map(|q| {
            let group = cluster_group(&groups, q.text(attr::SECURITY_GROUP_ID), q.text(attr::CLUSTER_NAME), &b.region)?;
            let group_id = group.group_id().unwrap_or_default();
            let ingress: Vec<&SecurityGroupRule> =
                rules.iter().filter(|r| r.group_id() == Some(group_id) && r.is_egress() != Some(true)).collect();
            let mine: Vec<&&SecurityGroupRule> =
                ingress.iter().filter(|r| owned_by(&rule_tags(r), q.stack, q.address)).collect();
            if mine.len() > 1 {
                return Err(BackendError::conflict(format!(
                    "AmbiguousOwnership: {} rules in {group_id} carry {ADDRESS_TAG}={}",
                    mine.len(),
                    q.address
                )));
            }
            let port = port_of(q.attributes.get(&attr::PORT));
            let source = q.text(attr::SOURCE_CIDR);
            // Someone else's rule doing exactly this job (a duplicate would be refused).
            let equivalent = || {
                ingress.iter().find(|r| {
                    r.ip_protocol() == Some("tcp")
                        && port.is_some_and(|p| r.from_port() == Some(p) && r.to_port() == Some(p))
                        && source.is_some_and(|s| r.cidr_ipv4() == Some(s))
                })
            };
            let Some(rule) = mine.first().map(|r| **r).or_else(|| equivalent().copied()) else {
                return Ok(Observed::Absent);
            };
            let single_port = (rule.from_port() == rule.to_port()).then(|| rule.from_port()).flatten();
            let mut live = LiveObject::new(rule.security_group_rule_id().unwrap_or_default())
                .with(attr::SECURITY_GROUP_ID, group_id)
                .with(attr::PROTOCOL, opt(rule.ip_protocol()))
                .with(attr::PORT, single_port.map_or(Value::Null, |p| Value::Int(i64::from(p))))
                .with(attr::SOURCE_CIDR, opt(rule.cidr_ipv4()))
                .with(attr::RULE_ID, opt(rule.security_group_rule_id()))
                .with(attr::DESCRIPTION, rule.description().unwrap_or_default());
            live.owner = owner_of(&rule_tags(rule));
            present(live)
        })
        .collect())
}

async fn vpce_security_groups(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let groups = owned_and_adopted(qs, "group-id", |filters| describe_security_groups(b, filters)).await?;
    let ids: BTreeSet<String> = groups.iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
    let vpc_ids: Vec<String> =
        groups.iter().filter_map(|g| g.vpc_id().map(str::to_string)).collect::<BTreeSet<_>>().into_iter().collect();
    let (rules, vpcs) = both(
        async {
            if ids.is_empty() {
                Ok(Vec::new())
            } else {
                describe_sg_rules(b, vec![filter("group-id", ids.clone())]).await
            }
        },
        describe_vpcs(b, &vpc_ids),
    )
    .await;
    let (rules, vpcs) = (rules?, vpcs?);
    Ok(qs
        .iter()
        .map(|q| {
            let found = match q.adopted() {
                Some(id) => groups.iter().find(|g| g.group_id() == Some(id)),
                None => find_owned(&groups, |g| ec2_tags(g.tags()), q, "security groups")?,
            };
            let Some(group) = found else { return Ok(Observed::Absent) };
            let group_id = group.group_id().unwrap_or_default();
            let ingress: Vec<&SecurityGroupRule> =
                rules.iter().filter(|r| r.group_id() == Some(group_id) && r.is_egress() != Some(true)).collect();
            let tcp: Vec<&&SecurityGroupRule> =
                ingress.iter().filter(|r| r.ip_protocol() == Some("tcp") && r.from_port() == r.to_port()).collect();
            let ports: BTreeSet<i32> = tcp.iter().filter_map(|r| r.from_port()).collect();
            let port = match ports.len() {
                1 => ports.first().copied(),
                _ => port_of(q.attributes.get(&attr::INGRESS_PORT)).filter(|p| ports.contains(p)),
            };
            let cidrs: BTreeSet<&str> =
                tcp.iter().filter(|r| r.from_port() == port).filter_map(|r| r.cidr_ipv4()).collect();
            let rule_values: Vec<Value> = ingress
                .iter()
                .map(|r| {
                    map_of(&[
                        (field::PROTOCOL, opt(r.ip_protocol())),
                        (field::FROM_PORT, r.from_port().map_or(Value::Null, |p| Value::Int(i64::from(p)))),
                        (field::TO_PORT, r.to_port().map_or(Value::Null, |p| Value::Int(i64::from(p)))),
                        (field::CIDR_IPV4, opt(r.cidr_ipv4())),
                    ])
                })
                .collect();
            let vpc_cidr = vpcs.iter().find(|v| v.vpc_id() == group.vpc_id()).and_then(|v| v.cidr_block());
            let mut live = LiveObject::new(group_id)
                .with(attr::VPC_ID, opt(group.vpc_id()))
                .with(attr::NAME, opt(group.group_name()))
                .with(attr::INGRESS_PORT, port.map_or(Value::Null, |p| Value::Int(i64::from(p))))
                .with(attr::INGRESS_CIDRS, strings(cidrs))
                .with(attr::INGRESS_RULES, Value::List(rule_values))
                .with(attr::VPC_CIDR_BLOCK, opt(vpc_cidr));
            live.owner = owner_of(&ec2_tags(group.tags()));
            present(live)
        })
        .collect())
}

// ----- PrivateLink -------------------------------------------------------------------------

fn zone_ids(zones: &[AvailabilityZone], names: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = names
        .iter()
        .filter_map(|name| zones.iter().find(|z| z.zone_name() == Some(name.as_str())).and_then(|z| z.zone_id()))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn service_gone(service: &ServiceConfiguration) -> bool {
    service.service_state().is_some_and(|s| matches!(s.as_str().to_ascii_lowercase().as_str(), "deleted" | "deleting"))
}

async fn endpoint_services(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let stack = qs.first().map(|q| q.stack).unwrap_or_default();
    let (services, zones) =
        both(describe_service_configurations(b, vec![stack_filter(stack)]), describe_zones(b)).await;
    let services: Vec<ServiceConfiguration> = services?.into_iter().filter(|s| !service_gone(s)).collect();
    let zones = zones?;
    Ok(qs
        .iter()
        .map(|q| {
            let Some(service) = find_owned(&services, |s| ec2_tags(s.tags()), q, "endpoint services")? else {
                return Ok(Observed::Absent);
            };
            let id = service.service_id().unwrap_or_default();
            let mut live = LiveObject::new(id)
                .with(
                    attr::NETWORK_LOAD_BALANCER_ARN,
                    opt(service.network_load_balancer_arns().first().map(String::as_str)),
                )
                .with(attr::ACCEPTANCE_REQUIRED, service.acceptance_required().unwrap_or(false))
                .with(attr::STATE, opt(service.service_state().map(|s| s.as_str())))
                .with(attr::SERVICE_ID, id)
                .with(attr::SERVICE_NAME, opt(service.service_name()))
                .with(
                    attr::AVAILABILITY_ZONE_IDS,
                    strings(zone_ids(&zones, service.availability_zones()).iter().map(String::as_str)),
                );
            live.owner = owner_of(&ec2_tags(service.tags()));
            present(live)
        })
        .collect())
}

/// Services by ID, for the records that carry no tags of their own (permissions, connections):
/// theirs is the service's ownership.
async fn services_by_id(b: &AwsBackend, ids: &[String]) -> Result<Vec<ServiceConfiguration>, BackendError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    describe_service_configurations(b, vec![filter("service-id", ids.iter().cloned())]).await
}

fn service_owner(services: &[ServiceConfiguration], id: &str, q: &Query<'_>) -> Option<Ownership> {
    let service = services.iter().find(|s| s.service_id() == Some(id))?;
    owner_of(&ec2_tags(service.tags())).filter(|o| o.stack == q.stack).map(|_| Ownership::new(q.stack, q.address))
}

pub(crate) async fn allowed_principals(b: &AwsBackend, service_id: &str) -> Result<Vec<String>, BackendError> {
    let allowed = b
        .ec2
        .describe_vpc_endpoint_service_permissions()
        .service_id(service_id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("ec2:DescribeVpcEndpointServicePermissions", e))?;
    let mut principals: Vec<String> = allowed.iter().filter_map(|p| p.principal().map(str::to_string)).collect();
    principals.sort();
    principals.dedup();
    Ok(principals)
}

async fn permissions(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let ids: Vec<String> = qs.iter().filter_map(|q| q.text(attr::SERVICE_ID).map(str::to_string)).collect();
    // The services (for their ownership) and each one's permissions, all at once.
    let tasks = qs
        .iter()
        .map(|q| {
            let task: edgeplan_model::BoxFuture<'_, Result<Option<Vec<String>>, BackendError>> = Box::pin(async move {
                let Some(id) = q.text(attr::SERVICE_ID) else { return Ok(None) };
                match allowed_principals(b, id).await {
                    Ok(principals) => Ok(Some(principals)),
                    Err(BackendError::NotFound { .. }) => Ok(None),
                    Err(other) => Err(other),
                }
            });
            task
        })
        .collect();
    let (services, allowed) = both(services_by_id(b, &ids), join_all(tasks)).await;
    let services = services?;
    Ok(qs
        .iter()
        .zip(allowed)
        .map(|(q, principals)| {
            let Some(id) = q.text(attr::SERVICE_ID) else { return Ok(Observed::Absent) };
            if !services.iter().any(|s| s.service_id() == Some(id) && !service_gone(s)) {
                return Ok(Observed::Absent);
            }
            // None: the service is gone; no principals: nothing to own yet.
            let Some(principals) = principals?.filter(|p| !p.is_empty()) else { return Ok(Observed::Absent) };
            let mut live = LiveObject::new(format!("{id}/permissions"))
                .with(attr::SERVICE_ID, id)
                .with(attr::ALLOWED_PRINCIPALS, strings(principals.iter().map(String::as_str)));
            live.owner = service_owner(&services, id, q);
            present(live)
        })
        .collect())
}

/// DescribeSubnets by ID: all of them, or (as AWS answers an unknown ID) none.
async fn consumer_subnets(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let wanted: BTreeSet<String> = qs.iter().flat_map(|q| q.strings(attr::SUBNET_IDS)).collect();
    let subnets =
        if wanted.is_empty() { Vec::new() } else { describe_subnets(b, vec![filter("subnet-id", wanted)]).await? };
    Ok(qs
        .iter()
        .map(|q| {
            let wanted = q.strings(attr::SUBNET_IDS);
            let found: Vec<&Subnet> =
                wanted.iter().filter_map(|id| subnets.iter().find(|s| s.subnet_id() == Some(id.as_str()))).collect();
            if found.is_empty() || found.len() != wanted.len() {
                return Ok(Observed::Absent);
            }
            let vpcs: BTreeSet<&str> = found.iter().filter_map(|s| s.vpc_id()).collect();
            let zones: BTreeSet<&str> = found.iter().filter_map(|s| s.availability_zone_id()).collect();
            let live = LiveObject::new(wanted.join(","))
                .with(attr::SUBNET_IDS, strings(found.iter().filter_map(|s| s.subnet_id())))
                .with(attr::VPC_IDS, strings(vpcs))
                .with(attr::AVAILABILITY_ZONE_IDS, strings(zones));
            present(live)
        })
        .collect())
}

fn endpoint_gone(endpoint: &VpcEndpoint) -> bool {
    endpoint.state().is_some_and(|s| matches!(s.as_str().to_ascii_lowercase().as_str(), "deleted" | "deleting"))
}

async fn vpces(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let stack = qs.first().map(|q| q.stack).unwrap_or_default();
    let endpoints: Vec<VpcEndpoint> =
        describe_vpc_endpoints(b, vec![stack_filter(stack)]).await?.into_iter().filter(|e| !endpoint_gone(e)).collect();
    Ok(qs
        .iter()
        .map(|q| {
            let Some(endpoint) = find_owned(&endpoints, |e| ec2_tags(e.tags()), q, "VPC endpoints")? else {
                return Ok(Observed::Absent);
            };
            let mut live = LiveObject::new(endpoint.vpc_endpoint_id().unwrap_or_default())
                .with(attr::VPC_ID, opt(endpoint.vpc_id()))
                .with(attr::VPC_ENDPOINT_TYPE, opt(endpoint.vpc_endpoint_type().map(|t| t.as_str())))
                .with(attr::SERVICE_NAME, opt(endpoint.service_name()))
                .with(attr::SECURITY_GROUP_ID, opt(endpoint.groups().first().and_then(|g| g.group_id())))
                .with(attr::SUBNET_IDS, strings(endpoint.subnet_ids().iter().map(String::as_str)))
                .with(attr::STATE, opt(endpoint.state().map(|s| camel(s.as_str())).as_deref()))
                // DnsEntries[0]: the regional name.
                .with(attr::DNS_NAME, opt(endpoint.dns_entries().first().and_then(|d| d.dns_name())));
            live.owner = owner_of(&ec2_tags(endpoint.tags()));
            present(live)
        })
        .collect())
}

pub(crate) fn connection_gone(connection: &VpcEndpointConnection) -> bool {
    connection.vpc_endpoint_state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
}

pub(crate) fn connection_live(connection: &VpcEndpointConnection) -> LiveObject {
    let endpoint = connection.vpc_endpoint_id().unwrap_or_default();
    LiveObject::new(endpoint)
        .with(attr::SERVICE_ID, opt(connection.service_id()))
        .with(attr::VPC_ENDPOINT_ID, endpoint)
        .with(attr::VPC_ENDPOINT_OWNER, opt(connection.vpc_endpoint_owner()))
        .with(attr::STATE, opt(connection.vpc_endpoint_state().map(|s| camel(s.as_str())).as_deref()))
}

/// DescribeVpcEndpointConnections on the provider's services: AWS joins in the consumers'
/// endpoints, whatever account they are in.
async fn acceptances(b: &AwsBackend, qs: &[&Query<'_>]) -> Batch {
    let ids: Vec<String> = qs
        .iter()
        .filter_map(|q| q.text(attr::SERVICE_ID).map(str::to_string))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (connections, services) = both(describe_connections(b, &ids), services_by_id(b, &ids)).await;
    let (connections, services) = (connections?, services?);
    Ok(qs
        .iter()
        .map(|q| {
            let (Some(service_id), Some(endpoint_id)) = (q.text(attr::SERVICE_ID), q.text(attr::VPC_ENDPOINT_ID))
            else {
                return Ok(Observed::Absent);
            };
            let Some(connection) = connections.iter().find(|c| {
                c.service_id() == Some(service_id) && c.vpc_endpoint_id() == Some(endpoint_id) && !connection_gone(c)
            }) else {
                return Ok(Observed::Absent);
            };
            let mut live = connection_live(connection);
            live.owner = service_owner(&services, service_id, q);
            present(live)
        })
        .collect())
}
