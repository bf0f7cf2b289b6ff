//! Execute: one operation the plan decided, as the API calls that carry it out. Creates are
//! idempotent: a ClientToken where the API takes one, and otherwise the object found again by
//! its ownership tags (a create retried after a lost response finds its first object).

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, VpcEndpointType};
use edgeplan_model::attr::{self, Attr};
use edgeplan_model::{Action, BackendError, Identity, NodeKind, Observed, Operation, Value};

use crate::backend::{AwsBackend, Query};
use crate::convert::{Tags, ec2_tags, filter, owned_by, ownership_tags, port_of, stack_filter, tag_spec};
use crate::error::from_sdk;
use crate::observe::{self, EKS_CLUSTER_TAG};

type Done = Result<(), BackendError>;

/// The name a created LB controller policy gets (the controller's installation guide's).
const POLICY_NAME: &str = "AWSLoadBalancerControllerIAMPolicy";

fn required<'q>(q: &'q Query<'_>, attr: Attr) -> Result<&'q str, BackendError> {
    q.text(attr)
        .ok_or_else(|| BackendError::invalid("MissingParameter", format!("{}: `{attr}` is required", q.address)))
}

/// EC2 takes client tokens of at most 64 ASCII characters.
fn token(op: &Operation) -> Option<String> {
    Some(op.client_token.chars().filter(char::is_ascii).take(64).collect::<String>()).filter(|t| !t.is_empty())
}

pub(crate) async fn run(b: &AwsBackend, op: &Operation, q: &Query<'_>) -> Done {
    let adopted = matches!(op.identity, Identity::Adopted { .. }) && op.kind != NodeKind::ClusterSgRule;
    match op.action {
        Action::NoOp | Action::Read => Ok(()),
        Action::Delete if adopted || matches!(op.identity, Identity::ReadOnly | Identity::Singleton) => {
            Err(BackendError::invalid(
                "OperationNotPermitted",
                format!("{} is {:?}: edgeplan never deletes what it did not create", op.address, op.identity),
            ))
        }
        Action::Delete => delete(b, q).await,
        // The executor runs a replacement as a delete and a create; a backend never gets one.
        Action::Replace => Err(BackendError::unsupported(format!(
            "{}: a replacement reaches a backend as a delete and then a create",
            op.address
        ))),
        Action::Create => apply(b, op, q, true).await,
        Action::Update => apply(b, op, q, false).await,
    }
}

async fn apply(b: &AwsBackend, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    match op.kind {
        NodeKind::LbControllerPolicy => policy(b, q).await,
        NodeKind::NlbSubnet if create => subnet_create(b, q).await,
        NodeKind::NlbSubnet => subnet_tags(b, q).await,
        NodeKind::NlbRouteTable => route_table(b, op, q, create).await,
        NodeKind::NlbRouteTableAssociation => association(b, q, create).await,
        NodeKind::ClusterSgRule => sg_rule_create(b, q).await,
        NodeKind::EndpointService => endpoint_service(b, op, q, create).await,
        NodeKind::EndpointServicePermissions => permissions(b, q, None).await,
        NodeKind::VpceSecurityGroup => vpce_security_group(b, q, create).await,
        NodeKind::Vpce => vpce(b, op, q, create).await,
        NodeKind::ConnectionAcceptance => accept(b, q).await,
        NodeKind::Nlb | NodeKind::ConsumerSubnets | NodeKind::Vpc => Err(BackendError::invalid(
            "OperationNotPermitted",
            format!("{} is read only: edgeplan does not write it", op.address),
        )),
        other => Err(BackendError::unsupported(format!("{other} is not an AWS resource"))),
    }
}

async fn delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    match q.kind {
        NodeKind::NlbSubnet => subnet_delete(b, q).await,
        NodeKind::NlbRouteTable => route_table_delete(b, q).await,
        NodeKind::NlbRouteTableAssociation => association_delete(b, q).await,
        NodeKind::ClusterSgRule => sg_rule_delete(b, q).await,
        NodeKind::EndpointService => endpoint_service_delete(b, q).await,
        NodeKind::EndpointServicePermissions => permissions(b, q, Some(Vec::new())).await,
        NodeKind::VpceSecurityGroup => vpce_security_group_delete(b, q).await,
        NodeKind::Vpce => vpce_delete(b, q).await,
        NodeKind::ConnectionAcceptance => reject(b, q).await,
        _ => Err(BackendError::invalid("OperationNotPermitted", format!("{} is never deleted", q.address))),
    }
}

/// A missing object is what a delete wants.
fn gone_is_fine(result: Done) -> Done {
    match result {
        Err(BackendError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// The object this operation is about, as observed right now.
async fn current(b: &AwsBackend, q: &Query<'_>) -> Result<Option<edgeplan_model::LiveObject>, BackendError> {
    match observe::all(b, std::slice::from_ref(q)).await.pop() {
        Some(Ok(Observed::Present(live))) => Ok(Some(live)),
        Some(Ok(Observed::Absent)) | None => Ok(None),
        Some(Err(error)) => Err(error),
    }
}

/// Is the object at this address already there, and ours? (A create retried after its
/// response was lost, or resumed after a crash.)
async fn already_ours(b: &AwsBackend, q: &Query<'_>) -> Result<bool, BackendError> {
    Ok(current(b, q).await?.is_some_and(|live| live.owned_by(q.stack, q.address)))
}

// ----- IAM ---------------------------------------------------------------------------------

async fn policy(b: &AwsBackend, q: &Query<'_>) -> Done {
    let role = observe::role_name(q);
    let document = required(q, attr::POLICY_DOCUMENT)?;
    if serde_json::from_str::<serde_json::Value>(document).is_err() {
        return Err(BackendError::invalid(
            "MalformedPolicyDocument",
            "the policy document is not JSON: pass the document, not its path",
        ));
    }
    let attached = observe::attached_customer_policies(b, &role).await?;
    let existing = attached.iter().find(|(arn, _)| crate::iam::is_customer_managed(arn, &b.account));
    let Some((arn, _)) = existing else {
        // CreatePolicy + AttachRolePolicy, tagged as the stack's.
        let tags: Vec<aws_sdk_iam::types::Tag> = ownership_tags(q.stack, q.address)
            .into_iter()
            .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
            .collect();
        let created = b
            .iam
            .create_policy()
            .policy_name(POLICY_NAME)
            .policy_document(document)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| from_sdk("iam:CreatePolicy", e))?;
        let arn = created.policy().and_then(|p| p.arn()).unwrap_or_default().to_string();
        b.iam
            .attach_role_policy()
            .role_name(&role)
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| from_sdk("iam:AttachRolePolicy", e))?;
        return Ok(());
    };
    // The same document already default (a retried update): nothing to do.
    if let Some(live) = current(b, q).await?
        && live.text(attr::POLICY_DOCUMENT).is_some_and(|d| same_json(d, document))
    {
        return Ok(());
    }
    // At 5 versions, first delete the version the plan named (never the default).
    if let Some(victim) = q.text(attr::DELETE_VERSION) {
        let deleted = b
            .iam
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(victim)
            .send()
            .await
            .map_err(|e| from_sdk("iam:DeletePolicyVersion", e));
        gone_is_fine(deleted.map(|_| ()))?;
    }
    b.iam
        .create_policy_version()
        .policy_arn(arn)
        .policy_document(document)
        .set_as_default(true)
        .send()
        .await
        .map_err(|e| from_sdk("iam:CreatePolicyVersion", e))?;
    Ok(())
}

fn same_json(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

// ----- subnet, route table, association ----------------------------------------------------

async fn subnet_create(b: &AwsBackend, q: &Query<'_>) -> Done {
    if let Some(id) = q.adopted() {
        return Err(BackendError::invalid("InvalidParameter", format!("{id} is adopted: edgeplan does not create it")));
    }
    // CreateSubnet takes no client token: a retried create finds its subnet by its tags.
    if already_ours(b, q).await? {
        return Ok(());
    }
    let mut tags: Tags = q.attributes.get(&attr::TAGS).map(Value::string_map).unwrap_or_default();
    tags.extend(ownership_tags(q.stack, q.address));
    let mut request = b
        .ec2
        .create_subnet()
        .vpc_id(required(q, attr::VPC_ID)?)
        .cidr_block(required(q, attr::CIDR_BLOCK)?)
        .tag_specifications(tag_spec(ResourceType::Subnet, &tags));
    request = match (q.text(attr::AVAILABILITY_ZONE), q.text(attr::AVAILABILITY_ZONE_ID)) {
        (Some(name), _) => request.availability_zone(name),
        (None, Some(id)) => request.availability_zone_id(id),
        (None, None) => request,
    };
    match request.send().await.map_err(|e| from_sdk("ec2:CreateSubnet", e)) {
        Ok(_) => Ok(()),
        // The SDK retried a create whose first response was lost: the conflict is our own subnet.
        Err(BackendError::Conflict { .. }) if already_ours(b, q).await? => Ok(()),
        Err(error) => Err(error),
    }
}

/// CreateTags: adds or overwrites, never removes someone else's.
async fn subnet_tags(b: &AwsBackend, q: &Query<'_>) -> Done {
    let live = current(b, q)
        .await?
        .ok_or_else(|| BackendError::not_found(format!("InvalidSubnetID.NotFound: {}: no such subnet", q.address)))?;
    let tags: Tags = q.attributes.get(&attr::TAGS).map(Value::string_map).unwrap_or_default();
    if tags.is_empty() {
        return Ok(());
    }
    let tags = tags.iter().map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()).collect();
    b.ec2
        .create_tags()
        .resources(&live.id)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| from_sdk("ec2:CreateTags", e))?;
    Ok(())
}

async fn subnet_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let Some(live) = current(b, q).await? else { return Ok(()) };
    if !live.owned_by(q.stack, q.address) {
        return Ok(());
    }
    let deleted = b.ec2.delete_subnet().subnet_id(&live.id).send().await.map_err(|e| from_sdk("ec2:DeleteSubnet", e));
    gone_is_fine(deleted.map(|_| ()))
}

/// Routes that are not the `local` one, as `(destination, target)`.
fn desired_routes(q: &Query<'_>) -> BTreeSet<(String, String)> {
    q.attributes
        .get(&attr::ROUTES)
        .map(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(|item| {
            let map = item.string_map();
            Some((map.get(attr::field::DESTINATION)?.clone(), map.get(attr::field::TARGET)?.clone()))
        })
        .filter(|(_, target)| target != "local")
        .collect()
}

async fn route_table(b: &AwsBackend, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let table_id = match current(b, q).await? {
        Some(live) if live.owned_by(q.stack, q.address) || q.adopted().is_some() => live.id,
        Some(_) | None if !create => {
            return Err(BackendError::not_found(format!(
                "InvalidRouteTableID.NotFound: {}: no such route table",
                q.address
            )));
        }
        _ => {
            let mut request = b
                .ec2
                .create_route_table()
                .vpc_id(required(q, attr::VPC_ID)?)
                .tag_specifications(tag_spec(ResourceType::RouteTable, &ownership_tags(q.stack, q.address)));
            if let Some(token) = token(op) {
                request = request.client_token(token);
            }
            let created = request.send().await.map_err(|e| from_sdk("ec2:CreateRouteTable", e))?;
            created.route_table().and_then(|t| t.route_table_id()).unwrap_or_default().to_string()
        }
    };
    // Routes: exactly the desired ones besides `local` (an IGW route someone added goes).
    let tables = observe::describe_route_tables(b, vec![filter("route-table-id", [table_id.clone()])]).await?;
    let existing: BTreeSet<(String, String)> = tables
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| !crate::convert::is_local(r))
        .filter_map(crate::convert::route_pair)
        .collect();
    let wanted = desired_routes(q);
    for (destination, _) in existing.difference(&wanted) {
        b.ec2
            .delete_route()
            .route_table_id(&table_id)
            .destination_cidr_block(destination)
            .send()
            .await
            .map_err(|e| from_sdk("ec2:DeleteRoute", e))?;
    }
    for (destination, target) in wanted.difference(&existing) {
        let request = b.ec2.create_route().route_table_id(&table_id).destination_cidr_block(destination);
        let request =
            if target.starts_with("nat-") { request.nat_gateway_id(target) } else { request.gateway_id(target) };
        request.send().await.map_err(|e| from_sdk("ec2:CreateRoute", e))?;
    }
    Ok(())
}

async fn route_table_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let Some(live) = current(b, q).await? else { return Ok(()) };
    if !live.owned_by(q.stack, q.address) {
        return Ok(());
    }
    let deleted = b
        .ec2
        .delete_route_table()
        .route_table_id(&live.id)
        .send()
        .await
        .map_err(|e| from_sdk("ec2:DeleteRouteTable", e));
    gone_is_fine(deleted.map(|_| ()))
}

async fn association(b: &AwsBackend, q: &Query<'_>, create: bool) -> Done {
    let subnet_id = required(q, attr::SUBNET_ID)?;
    let table_id = required(q, attr::ROUTE_TABLE_ID)?;
    let tables = observe::describe_route_tables(b, vec![filter("association.subnet-id", [subnet_id])]).await?;
    let existing =
        tables.iter().find_map(|t| t.associations().iter().find(|a| a.subnet_id() == Some(subnet_id)).map(|a| (t, a)));
    match existing {
        Some((table, _)) if table.route_table_id() == Some(table_id) => Ok(()),
        // Another table routes the subnet. A create does not take it over (someone else's
        // association); an update moves it (the subnet keeps exactly one).
        Some((table, _)) if create => Err(BackendError::conflict(format!(
            "Resource.AlreadyAssociated: {subnet_id} is associated with {}, which edgeplan did not make",
            table.route_table_id().unwrap_or_default()
        ))),
        Some((_, association)) => {
            b.ec2
                .replace_route_table_association()
                .association_id(association.route_table_association_id().unwrap_or_default())
                .route_table_id(table_id)
                .send()
                .await
                .map_err(|e| from_sdk("ec2:ReplaceRouteTableAssociation", e))?;
            Ok(())
        }
        None => {
            b.ec2
                .associate_route_table()
                .subnet_id(subnet_id)
                .route_table_id(table_id)
                .send()
                .await
                .map_err(|e| from_sdk("ec2:AssociateRouteTable", e))?;
            Ok(())
        }
    }
}

async fn association_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let Some(subnet_id) = q.text(attr::SUBNET_ID) else { return Ok(()) };
    let tables = observe::describe_route_tables(b, vec![filter("association.subnet-id", [subnet_id])]).await?;
    for table in &tables {
        let Some(association) = table.associations().iter().find(|a| a.subnet_id() == Some(subnet_id)) else {
            continue;
        };
        if ec2_tags(table.tags()).get(edgeplan_model::backend::STACK_TAG).is_none_or(|s| s != q.stack) {
            return Err(BackendError::invalid(
                "OperationNotPermitted",
                format!(
                    "{subnet_id}'s association is with {}, which edgeplan does not own",
                    table.route_table_id().unwrap_or_default()
                ),
            ));
        }
        let done = b
            .ec2
            .disassociate_route_table()
            .association_id(association.route_table_association_id().unwrap_or_default())
            .send()
            .await
            .map_err(|e| from_sdk("ec2:DisassociateRouteTable", e));
        gone_is_fine(done.map(|_| ()))?;
    }
    Ok(())
}

// ----- security groups ---------------------------------------------------------------------

fn permission(port: i32, cidrs: &[String], description: &str) -> IpPermission {
    let ranges = cidrs.iter().map(|c| IpRange::builder().cidr_ip(c).description(description).build()).collect();
    IpPermission::builder().ip_protocol("tcp").from_port(port).to_port(port).set_ip_ranges(Some(ranges)).build()
}

async fn authorize(
    b: &AwsBackend,
    group_id: &str,
    port: i32,
    cidrs: &[String],
    description: &str,
    tags: &Tags,
) -> Done {
    b.ec2
        .authorize_security_group_ingress()
        .group_id(group_id)
        .ip_permissions(permission(port, cidrs, description))
        .tag_specifications(tag_spec(ResourceType::SecurityGroupRule, tags))
        .send()
        .await
        .map_err(|e| from_sdk("ec2:AuthorizeSecurityGroupIngress", e))?;
    Ok(())
}

async fn sg_rule_create(b: &AwsBackend, q: &Query<'_>) -> Done {
    let port = port_of(q.attributes.get(&attr::PORT)).ok_or_else(|| {
        BackendError::invalid("InvalidParameterValue", format!("{}: `port` must be a port", q.address))
    })?;
    let source = required(q, attr::SOURCE_CIDR)?.to_string();
    let groups = observe::cluster_groups(b, &[q]).await?;
    let group =
        observe::cluster_group(&groups, q.text(attr::SECURITY_GROUP_ID), q.text(attr::CLUSTER_NAME), &b.region)?;
    let group_id = group.group_id().unwrap_or_default().to_string();
    let description = "Portainer chisel tunnel from the internal NLB subnet (edgeplan)";
    match authorize(b, &group_id, port, &[source], description, &ownership_tags(q.stack, q.address)).await {
        Ok(()) => Ok(()),
        // InvalidPermission.Duplicate: the rule is already there. Ours (a retried create):
        // done. Someone else's: not ours to take over.
        Err(BackendError::Conflict { message, .. }) if message.starts_with("InvalidPermission.Duplicate") => {
            if already_ours(b, q).await? {
                Ok(())
            } else {
                Err(BackendError::conflict(format!(
                    "{message} (a rule edgeplan did not make, in {group_id}{}): it already admits the NLB subnet, or delete it and plan again",
                    if group.tags().iter().any(|t| t.key() == Some(EKS_CLUSTER_TAG)) {
                        ", the cluster security group"
                    } else {
                        ""
                    }
                )))
            }
        }
        Err(error) => Err(error),
    }
}

/// RevokeSecurityGroupIngress by rule ID.
async fn sg_rule_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let Some(live) = current(b, q).await? else { return Ok(()) };
    if !live.owned_by(q.stack, q.address) {
        return Ok(());
    }
    let group = live.text(attr::SECURITY_GROUP_ID).unwrap_or_default();
    let revoked = b
        .ec2
        .revoke_security_group_ingress()
        .group_id(group)
        .security_group_rule_ids(&live.id)
        .send()
        .await
        .map_err(|e| from_sdk("ec2:RevokeSecurityGroupIngress", e));
    gone_is_fine(revoked.map(|_| ()))
}

/// The name of the endpoint security group edgeplan creates: unique per stack and address.
pub(crate) fn vpce_group_name(stack: &str, address: &edgeplan_model::Address) -> String {
    format!("edgeplan-{stack}-{}", address.as_str().replace('.', "-"))
}

async fn vpce_security_group(b: &AwsBackend, q: &Query<'_>, create: bool) -> Done {
    let port = port_of(q.attributes.get(&attr::INGRESS_PORT)).ok_or_else(|| {
        BackendError::invalid("InvalidParameterValue", format!("{}: `ingress_port` must be a port", q.address))
    })?;
    let cidrs = q.strings(attr::INGRESS_CIDRS);
    let group_id = match current(b, q).await? {
        Some(live) if live.owned_by(q.stack, q.address) || q.adopted().is_some() => live.id,
        _ if !create => {
            return Err(BackendError::not_found(format!(
                "InvalidGroup.NotFound: {}: no such security group",
                q.address
            )));
        }
        _ => {
            if let Some(id) = q.adopted() {
                return Err(BackendError::invalid(
                    "InvalidParameter",
                    format!("{id} is adopted: edgeplan does not create it"),
                ));
            }
            let name = vpce_group_name(q.stack, q.address);
            let created = b
                .ec2
                .create_security_group()
                .group_name(&name)
                .description(format!("edgeplan {}: agents to the Portainer tunnel endpoint", q.address))
                .vpc_id(required(q, attr::VPC_ID)?)
                .tag_specifications(tag_spec(ResourceType::SecurityGroup, &ownership_tags(q.stack, q.address)))
                .send()
                .await
                .map_err(|e| from_sdk("ec2:CreateSecurityGroup", e));
            match created {
                Ok(out) => out.group_id().unwrap_or_default().to_string(),
                // A retried create: the group is ours if its tags say so.
                Err(error @ BackendError::Conflict { .. }) => match current(b, q).await? {
                    Some(live) if live.owned_by(q.stack, q.address) => live.id,
                    _ => return Err(error),
                },
                Err(error) => return Err(error),
            }
        }
    };
    // Ingress: exactly the desired CIDRs on the port, among edgeplan's own rules; an adopted
    // group's other rules are someone else's.
    let rules = observe::describe_sg_rules(b, vec![filter("group-id", [group_id.clone()])]).await?;
    let ours: Vec<_> = rules
        .iter()
        .filter(|r| r.is_egress() != Some(true) && owned_by(&ec2_tags(r.tags()), q.stack, q.address))
        .collect();
    let present: BTreeSet<&str> = rules
        .iter()
        .filter(|r| r.is_egress() != Some(true) && r.ip_protocol() == Some("tcp"))
        .filter(|r| r.from_port() == Some(port) && r.to_port() == Some(port))
        .filter_map(|r| r.cidr_ipv4())
        .collect();
    let stale: Vec<String> = ours
        .iter()
        .filter(|r| !(r.from_port() == Some(port) && r.cidr_ipv4().is_some_and(|c| cidrs.iter().any(|w| w == c))))
        .filter_map(|r| r.security_group_rule_id().map(str::to_string))
        .collect();
    let missing: Vec<String> = cidrs.iter().filter(|c| !present.contains(c.as_str())).cloned().collect();
    if !stale.is_empty() {
        b.ec2
            .revoke_security_group_ingress()
            .group_id(&group_id)
            .set_security_group_rule_ids(Some(stale))
            .send()
            .await
            .map_err(|e| from_sdk("ec2:RevokeSecurityGroupIngress", e))?;
    }
    if !missing.is_empty() {
        let description = "Edge agents to the Portainer tunnel (edgeplan)";
        match authorize(b, &group_id, port, &missing, description, &ownership_tags(q.stack, q.address)).await {
            Err(BackendError::Conflict { message, .. }) if message.starts_with("InvalidPermission.Duplicate") => {}
            other => other?,
        }
    }
    Ok(())
}

async fn vpce_security_group_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let Some(live) = current(b, q).await? else { return Ok(()) };
    if !live.owned_by(q.stack, q.address) {
        return Ok(());
    }
    let deleted = b
        .ec2
        .delete_security_group()
        .group_id(&live.id)
        .send()
        .await
        .map_err(|e| from_sdk("ec2:DeleteSecurityGroup", e));
    gone_is_fine(deleted.map(|_| ()))
}

// ----- PrivateLink -------------------------------------------------------------------------

async fn endpoint_service(b: &AwsBackend, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let acceptance = q.attributes.get(&attr::ACCEPTANCE_REQUIRED).and_then(Value::as_bool).unwrap_or(true);
    if let Some(live) = current(b, q).await?
        && live.owned_by(q.stack, q.address)
    {
        if live.flag(attr::ACCEPTANCE_REQUIRED) != Some(acceptance) {
            b.ec2
                .modify_vpc_endpoint_service_configuration()
                .service_id(&live.id)
                .acceptance_required(acceptance)
                .send()
                .await
                .map_err(|e| from_sdk("ec2:ModifyVpcEndpointServiceConfiguration", e))?;
        }
        return Ok(());
    }
    if !create {
        return Err(BackendError::not_found(format!(
            "InvalidVpcEndpointServiceId.NotFound: {}: no such endpoint service",
            q.address
        )));
    }
    let arn = q.text(attr::NETWORK_LOAD_BALANCER_ARN).ok_or_else(|| {
        BackendError::invalid(
            "InvalidParameter",
            "exactly one of network_load_balancer_arn or gateway_load_balancer_arn is a required member",
        )
    })?;
    let mut request = b
        .ec2
        .create_vpc_endpoint_service_configuration()
        .network_load_balancer_arns(arn)
        .acceptance_required(acceptance)
        .tag_specifications(tag_spec(ResourceType::VpcEndpointService, &ownership_tags(q.stack, q.address)));
    if let Some(token) = token(op) {
        request = request.client_token(token);
    }
    request.send().await.map_err(|e| from_sdk("ec2:CreateVpcEndpointServiceConfiguration", e))?;
    Ok(())
}

/// Deletions that report per-item failures in `Unsuccessful` rather than as an error.
fn unsuccessful(action: &str, items: &[aws_sdk_ec2::types::UnsuccessfulItem]) -> Done {
    let Some(item) = items.first() else { return Ok(()) };
    let code = item.error().and_then(|e| e.code()).unwrap_or("Unknown");
    let message = item.error().and_then(|e| e.message()).unwrap_or_default();
    let message = format!("{} ({})", message, item.resource_id().unwrap_or_default());
    match crate::error::from_code(action, code, &message) {
        BackendError::NotFound { .. } => Ok(()),
        other => Err(other),
    }
}

async fn endpoint_service_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let Some(live) = current(b, q).await? else { return Ok(()) };
    if !live.owned_by(q.stack, q.address) {
        return Ok(());
    }
    let out = b
        .ec2
        .delete_vpc_endpoint_service_configurations()
        .service_ids(&live.id)
        .send()
        .await
        .map_err(|e| from_sdk("ec2:DeleteVpcEndpointServiceConfigurations", e))?;
    unsuccessful("ec2:DeleteVpcEndpointServiceConfigurations", out.unsuccessful())
}

/// ModifyVpcEndpointServicePermissions to exactly the desired list (or `set`).
async fn permissions(b: &AwsBackend, q: &Query<'_>, set: Option<Vec<String>>) -> Done {
    let Some(service_id) = q.text(attr::SERVICE_ID) else {
        return if set.is_some() {
            Ok(())
        } else {
            Err(BackendError::invalid("MissingParameter", "service_id is required"))
        };
    };
    let wanted: BTreeSet<String> = set.unwrap_or_else(|| q.strings(attr::ALLOWED_PRINCIPALS)).into_iter().collect();
    let current: BTreeSet<String> = match observe::allowed_principals(b, service_id).await {
        Ok(principals) => principals.into_iter().collect(),
        Err(BackendError::NotFound { .. }) if wanted.is_empty() => return Ok(()),
        Err(error) => return Err(error),
    };
    let add: Vec<String> = wanted.difference(&current).cloned().collect();
    let remove: Vec<String> = current.difference(&wanted).cloned().collect();
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let mut request = b.ec2.modify_vpc_endpoint_service_permissions().service_id(service_id);
    if !add.is_empty() {
        request = request.set_add_allowed_principals(Some(add));
    }
    if !remove.is_empty() {
        request = request.set_remove_allowed_principals(Some(remove));
    }
    request.send().await.map_err(|e| from_sdk("ec2:ModifyVpcEndpointServicePermissions", e))?;
    Ok(())
}

async fn vpce(b: &AwsBackend, op: &Operation, q: &Query<'_>, create: bool) -> Done {
    let subnets = q.strings(attr::SUBNET_IDS);
    let group = q.text(attr::SECURITY_GROUP_ID).map(str::to_string);
    if let Some(live) = current(b, q).await?
        && live.owned_by(q.stack, q.address)
    {
        // ModifyVpcEndpoint: subnets and security group; service and VPC need a new endpoint.
        let have: BTreeSet<String> =
            live.get(attr::SUBNET_IDS).map(Value::strings).unwrap_or_default().into_iter().collect();
        let want: BTreeSet<String> = subnets.iter().cloned().collect();
        let live_group = live.text(attr::SECURITY_GROUP_ID).map(str::to_string);
        let add: Vec<String> = want.difference(&have).cloned().collect();
        let remove: Vec<String> = have.difference(&want).cloned().collect();
        if add.is_empty() && remove.is_empty() && live_group == group {
            return Ok(());
        }
        let mut request = b.ec2.modify_vpc_endpoint().vpc_endpoint_id(&live.id);
        if !add.is_empty() {
            request = request.set_add_subnet_ids(Some(add));
        }
        if !remove.is_empty() {
            request = request.set_remove_subnet_ids(Some(remove));
        }
        if live_group != group {
            request = request.set_add_security_group_ids(group.clone().map(|g| vec![g]));
            request = request.set_remove_security_group_ids(live_group.map(|g| vec![g]));
        }
        request.send().await.map_err(|e| from_sdk("ec2:ModifyVpcEndpoint", e))?;
        return Ok(());
    }
    if !create {
        return Err(BackendError::not_found(format!(
            "InvalidVpcEndpointId.NotFound: {}: no such VPC endpoint",
            q.address
        )));
    }
    // VpcEndpointType defaults to Gateway: always say Interface.
    let mut request = b
        .ec2
        .create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Interface)
        .vpc_id(required(q, attr::VPC_ID)?)
        .service_name(required(q, attr::SERVICE_NAME)?)
        .set_subnet_ids(Some(subnets))
        .set_security_group_ids(group.map(|g| vec![g]))
        .private_dns_enabled(false)
        .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &ownership_tags(q.stack, q.address)));
    if let Some(token) = token(op) {
        request = request.client_token(token);
    }
    request.send().await.map_err(|e| from_sdk("ec2:CreateVpcEndpoint", e))?;
    Ok(())
}

async fn vpce_delete(b: &AwsBackend, q: &Query<'_>) -> Done {
    let endpoints = observe::describe_vpc_endpoints(b, vec![stack_filter(q.stack)]).await?;
    let ids: Vec<String> = endpoints
        .iter()
        .filter(|e| owned_by(&ec2_tags(e.tags()), q.stack, q.address))
        .filter(|e| !e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted")))
        .filter_map(|e| e.vpc_endpoint_id().map(str::to_string))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let out = b
        .ec2
        .delete_vpc_endpoints()
        .set_vpc_endpoint_ids(Some(ids))
        .send()
        .await
        .map_err(|e| from_sdk("ec2:DeleteVpcEndpoints", e))?;
    unsuccessful("ec2:DeleteVpcEndpoints", out.unsuccessful())
}

/// AcceptVpcEndpointConnections: a per-endpoint refusal comes in `Unsuccessful`, not as an
/// error.
async fn accept(b: &AwsBackend, q: &Query<'_>) -> Done {
    let service_id = required(q, attr::SERVICE_ID)?;
    let endpoint_id = required(q, attr::VPC_ENDPOINT_ID)?;
    if let Some(live) = current(b, q).await?
        && live.text(attr::STATE).is_some_and(|s| ["pending", "available"].iter().any(|ok| s.eq_ignore_ascii_case(ok)))
    {
        return Ok(());
    }
    let out = b
        .ec2
        .accept_vpc_endpoint_connections()
        .service_id(service_id)
        .vpc_endpoint_ids(endpoint_id)
        .send()
        .await
        .map_err(|e| from_sdk("ec2:AcceptVpcEndpointConnections", e))?;
    match out.unsuccessful().first() {
        None => Ok(()),
        Some(item) => {
            let code = item.error().and_then(|e| e.code()).unwrap_or("Unknown");
            let message = item.error().and_then(|e| e.message()).unwrap_or_default();
            Err(crate::error::from_code(
                "ec2:AcceptVpcEndpointConnections",
                code,
                &format!("{message} (endpoint {endpoint_id})"),
            ))
        }
    }
}

/// RejectVpcEndpointConnections: the endpoint stops carrying traffic; it stays, `rejected`,
/// until its owner deletes it.
async fn reject(b: &AwsBackend, q: &Query<'_>) -> Done {
    let (Some(service_id), Some(endpoint_id)) = (q.text(attr::SERVICE_ID), q.text(attr::VPC_ENDPOINT_ID)) else {
        return Ok(());
    };
    let out = b
        .ec2
        .reject_vpc_endpoint_connections()
        .service_id(service_id)
        .vpc_endpoint_ids(endpoint_id)
        .send()
        .await
        .map_err(|e| from_sdk("ec2:RejectVpcEndpointConnections", e));
    match out {
        Ok(out) => unsuccessful("ec2:RejectVpcEndpointConnections", out.unsuccessful()),
        Err(BackendError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}
