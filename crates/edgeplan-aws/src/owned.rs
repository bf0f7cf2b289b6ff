//! Ownership discovery: everything in this account and region tagged with the stack, one
//! tag-filtered call per kind, all at once. What pruning and destroy start from.

use edgeplan_model::attr;
use edgeplan_model::{BackendError, LiveObject, NodeKind, OwnedObject};

use crate::backend::AwsBackend;
use crate::convert::{ec2_tags, opt, owner_of, stack_filter};
use crate::observe::{self, camel};
use edgeplan_model::join::both;

pub(crate) async fn list(b: &AwsBackend, stack: &str) -> Result<Vec<OwnedObject>, BackendError> {
    let filters = || vec![stack_filter(stack)];
    // Every kind's tag-filtered listing at once.
    let (((subnets, tables), (groups, rules)), (services, endpoints)) = both(
        both(
            both(observe::describe_subnets(b, filters()), observe::describe_route_tables(b, filters())),
            both(observe::describe_security_groups(b, filters()), observe::describe_sg_rules(b, filters())),
        ),
        both(observe::describe_service_configurations(b, filters()), observe::describe_vpc_endpoints(b, filters())),
    )
    .await;
    let (subnets, tables, groups, rules, services, endpoints) =
        (subnets?, tables?, groups?, rules?, services?, endpoints?);

    let mut owned = Vec::new();
    let mut push = |tags: crate::convert::Tags, object: LiveObject| {
        let Some(ownership) = owner_of(&tags).filter(|o| o.stack == stack) else { return };
        let Some(kind) = ownership.address.kind() else { return };
        let mut object = object;
        object.owner = Some(ownership.clone());
        owned.push(OwnedObject { kind, address: Some(ownership.address), object });
    };
    for subnet in &subnets {
        push(
            ec2_tags(subnet.tags()),
            LiveObject::new(subnet.subnet_id().unwrap_or_default()).with(attr::VPC_ID, opt(subnet.vpc_id())),
        );
    }
    for table in &tables {
        push(
            ec2_tags(table.tags()),
            LiveObject::new(table.route_table_id().unwrap_or_default()).with(attr::VPC_ID, opt(table.vpc_id())),
        );
    }
    for group in &groups {
        push(
            ec2_tags(group.tags()),
            LiveObject::new(group.group_id().unwrap_or_default()).with(attr::VPC_ID, opt(group.vpc_id())),
        );
    }
    // A rule tagged like a group of the stack (the ingress of its own endpoint group) is part
    // of that group, not an object of its own.
    for rule in &rules {
        let tags = ec2_tags(rule.tags());
        if owner_of(&tags).and_then(|o| o.address.kind()) != Some(NodeKind::ClusterSgRule) {
            continue;
        }
        push(
            tags,
            LiveObject::new(rule.security_group_rule_id().unwrap_or_default())
                .with(attr::SECURITY_GROUP_ID, opt(rule.group_id()))
                .with(attr::RULE_ID, opt(rule.security_group_rule_id())),
        );
    }
    for service in &services {
        let id = service.service_id().unwrap_or_default();
        push(ec2_tags(service.tags()), LiveObject::new(id).with(attr::SERVICE_ID, id));
    }
    for endpoint in endpoints.iter().filter(|e| !e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted")))
    {
        push(
            ec2_tags(endpoint.tags()),
            LiveObject::new(endpoint.vpc_endpoint_id().unwrap_or_default())
                .with(attr::STATE, opt(endpoint.state().map(|s| camel(s.as_str())).as_deref())),
        );
    }
    // Associations of the stack's route tables, named after their table.
    for table in &tables {
        let Some(address) = owner_of(&ec2_tags(table.tags()))
            .filter(|o| o.stack == stack)
            .map(|o| o.address.sibling(NodeKind::NlbRouteTableAssociation))
        else {
            continue;
        };
        for association in table.associations().iter().filter(|a| a.main() != Some(true)) {
            let object = LiveObject::new(association.route_table_association_id().unwrap_or_default())
                .with(attr::SUBNET_ID, opt(association.subnet_id()))
                .with(attr::ROUTE_TABLE_ID, opt(table.route_table_id()));
            owned.push(OwnedObject {
                kind: NodeKind::NlbRouteTableAssociation,
                address: Some(address.clone()),
                object,
            });
        }
    }
    // Connections to the stack's endpoint services: no tags of their own.
    let service_ids: Vec<String> = services.iter().filter_map(|s| s.service_id().map(str::to_string)).collect();
    for connection in observe::describe_connections(b, &service_ids).await? {
        if observe::connection_gone(&connection) {
            continue;
        }
        owned.push(OwnedObject {
            kind: NodeKind::ConnectionAcceptance,
            address: None,
            object: observe::connection_live(&connection),
        });
    }
    Ok(owned)
}
