//! SDK shapes to the attribute values the kinds declare (the same shapes the simulator
//! reports: the engine reads both the same way).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Route, Tag, TagSpecification};
use edgeplan_model::attr::field;
use edgeplan_model::backend::{ADDRESS_TAG, STACK_TAG};
use edgeplan_model::{Address, Ownership, Value};

pub(crate) type Tags = BTreeMap<String, String>;

pub(crate) fn ec2_tags(tags: &[Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// Ownership as tags say it.
pub(crate) fn owner_of(tags: &Tags) -> Option<Ownership> {
    Some(Ownership { stack: tags.get(STACK_TAG)?.clone(), address: Address::from_text(tags.get(ADDRESS_TAG)?) })
}

pub(crate) fn owned_by(tags: &Tags, stack: &str, address: &Address) -> bool {
    tags.get(STACK_TAG).is_some_and(|s| s == stack) && tags.get(ADDRESS_TAG).is_some_and(|a| a == address.as_str())
}

pub(crate) fn ownership_tags(stack: &str, address: &Address) -> Tags {
    [(STACK_TAG.to_string(), stack.to_string()), (ADDRESS_TAG.to_string(), address.to_string())].into_iter().collect()
}

/// Tags applied atomically with the create, so no object of ours ever exists untagged.
pub(crate) fn tag_spec(resource: ResourceType, tags: &Tags) -> TagSpecification {
    let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    TagSpecification::builder().resource_type(resource).set_tags(Some(tags)).build()
}

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

/// `tag:edgeplan.dev/stack = STACK`: what ownership discovery and owned lookups filter by.
pub(crate) fn stack_filter(stack: &str) -> Filter {
    filter(&format!("tag:{STACK_TAG}"), [stack])
}

pub(crate) fn strings<'s>(items: impl IntoIterator<Item = &'s str>) -> Value {
    Value::List(items.into_iter().map(Value::str).collect())
}

pub(crate) fn opt(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::str)
}

/// A route as `(destination, target)`; the target is whatever the route goes to (`local`,
/// `igw-…`, `nat-…`): the LB controller calls a subnet public when one starts with `igw`.
pub(crate) fn route_pair(route: &Route) -> Option<(String, String)> {
    let destination =
        route.destination_cidr_block().or(route.destination_ipv6_cidr_block()).or(route.destination_prefix_list_id())?;
    let target = route
        .gateway_id()
        .or(route.nat_gateway_id())
        .or(route.transit_gateway_id())
        .or(route.vpc_peering_connection_id())
        .or(route.network_interface_id())
        .or(route.instance_id())
        .or(route.local_gateway_id())
        .or(route.carrier_gateway_id())
        .or(route.egress_only_internet_gateway_id())
        .unwrap_or("unknown");
    Some((destination.to_string(), target.to_string()))
}

/// A route as the kinds declare it: `{destination, target}`.
pub(crate) fn route_value(route: &Route) -> Option<Value> {
    let (destination, target) = route_pair(route)?;
    let map: BTreeMap<String, String> =
        [(field::DESTINATION.to_string(), destination), (field::TARGET.to_string(), target)].into_iter().collect();
    Some(Value::from(map))
}

/// A route a table gets by itself (the VPC's `local` route), which a desired route list never
/// names.
pub(crate) fn is_local(route: &Route) -> bool {
    route.gateway_id() == Some("local")
}

pub(crate) fn map_of(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// A port as the API takes it.
pub(crate) fn port_of(value: Option<&Value>) -> Option<i32> {
    match value? {
        Value::Int(n) => i32::try_from(*n).ok().filter(|p| (1..=65535).contains(p)),
        Value::Str(text) => text.parse().ok().filter(|p| (1..=65535).contains(p)),
        _ => None,
    }
}
