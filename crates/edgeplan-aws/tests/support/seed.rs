//! Seed moto with a simulated world's AWS side, through the SDK: VPCs, subnets, route tables
//! (the main table's IGW route included), security groups and their rules, IAM roles and
//! customer-managed policies. IDs are the world's (our launcher honours `_custom_id_`), so the
//! example specs, which name VPCs and subnets by ID, run unchanged against moto.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, Tag, TagSpecification, UserIdGroupPair};
use edgeplan_sim::World;

use super::{ACCOUNT, Clients};

const CUSTOM_ID: &str = "_custom_id_";

fn spec(resource: ResourceType, id: Option<&str>, tags: &BTreeMap<String, String>) -> TagSpecification {
    let mut all: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    if let Some(id) = id {
        all.push(Tag::builder().key(CUSTOM_ID).value(id).build());
    }
    TagSpecification::builder().resource_type(resource).set_tags(Some(all)).build()
}

/// Everything AWS in `world` (one account: moto's), created in moto.
pub async fn seed(clients: &Clients, world: &World) -> Result<(), String> {
    for account in &world.aws {
        // moto serves one account here; a world's other accounts are left out (and so must be
        // the spec's consumers there).
        if account.account != ACCOUNT {
            continue;
        }
        for role in &account.iam.roles {
            clients
                .iam
                .create_role()
                .role_name(&role.name)
                .assume_role_policy_document(
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                )
                .send()
                .await
                .map_err(|e| format!("CreateRole {}: {e:?}", role.name))?;
        }
        for policy in &account.iam.policies {
            let mut versions = policy.versions.iter();
            let first = versions.next().ok_or("a policy without versions")?;
            let created = clients
                .iam
                .create_policy()
                .policy_name(&policy.name)
                .policy_document(first.document.to_string())
                .send()
                .await
                .map_err(|e| format!("CreatePolicy {}: {e:?}", policy.name))?;
            let arn = created.policy().and_then(|p| p.arn()).unwrap_or_default().to_string();
            for version in versions {
                clients
                    .iam
                    .create_policy_version()
                    .policy_arn(&arn)
                    .policy_document(version.document.to_string())
                    .set_as_default(version.id == policy.default_version)
                    .send()
                    .await
                    .map_err(|e| format!("CreatePolicyVersion: {e:?}"))?;
            }
        }
        for role in &account.iam.roles {
            for arn in &role.attached_policies {
                clients
                    .iam
                    .attach_role_policy()
                    .role_name(&role.name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| format!("AttachRolePolicy {arn}: {e:?}"))?;
            }
        }
        for region in &account.regions {
            for vpc in &region.vpcs {
                clients
                    .ec2
                    .create_vpc()
                    .cidr_block(&vpc.cidr)
                    .tag_specifications(spec(ResourceType::Vpc, Some(&vpc.id), &vpc.tags))
                    .send()
                    .await
                    .map_err(|e| format!("CreateVpc {}: {e:?}", vpc.id))?;
            }
            for subnet in &region.subnets {
                clients
                    .ec2
                    .create_subnet()
                    .vpc_id(&subnet.vpc_id)
                    .cidr_block(&subnet.cidr)
                    .availability_zone(&subnet.availability_zone)
                    .tag_specifications(spec(ResourceType::Subnet, Some(&subnet.id), &subnet.tags))
                    .send()
                    .await
                    .map_err(|e| format!("CreateSubnet {}: {e:?}", subnet.id))?;
            }
            // Internet gateways, one per target the routes name, attached to the route's VPC.
            let mut gateways: BTreeMap<String, String> = BTreeMap::new();
            for table in &region.route_tables {
                for route in table.routes.iter().filter(|r| r.target.starts_with("igw-")) {
                    if gateways.contains_key(&route.target) {
                        continue;
                    }
                    let created = clients
                        .ec2
                        .create_internet_gateway()
                        .send()
                        .await
                        .map_err(|e| format!("CreateInternetGateway: {e:?}"))?;
                    let id = created.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default();
                    clients
                        .ec2
                        .attach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(&table.vpc_id)
                        .send()
                        .await
                        .map_err(|e| format!("AttachInternetGateway: {e:?}"))?;
                    gateways.insert(route.target.clone(), id.to_string());
                }
            }
            for table in &region.route_tables {
                let id = if table.main {
                    let found = clients
                        .ec2
                        .describe_route_tables()
                        .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&table.vpc_id).build())
                        .filters(aws_sdk_ec2::types::Filter::builder().name("association.main").values("true").build())
                        .send()
                        .await
                        .map_err(|e| format!("DescribeRouteTables: {e:?}"))?;
                    found.route_tables().first().and_then(|t| t.route_table_id()).unwrap_or_default().to_string()
                } else {
                    let created = clients
                        .ec2
                        .create_route_table()
                        .vpc_id(&table.vpc_id)
                        .set_tag_specifications(
                            (!table.tags.is_empty()).then(|| vec![spec(ResourceType::RouteTable, None, &table.tags)]),
                        )
                        .send()
                        .await
                        .map_err(|e| format!("CreateRouteTable: {e:?}"))?;
                    created.route_table().and_then(|t| t.route_table_id()).unwrap_or_default().to_string()
                };
                for route in &table.routes {
                    let target = gateways.get(&route.target).cloned().unwrap_or_else(|| route.target.clone());
                    clients
                        .ec2
                        .create_route()
                        .route_table_id(&id)
                        .destination_cidr_block(&route.destination)
                        .gateway_id(target)
                        .send()
                        .await
                        .map_err(|e| format!("CreateRoute: {e:?}"))?;
                }
                for association in &table.associations {
                    clients
                        .ec2
                        .associate_route_table()
                        .route_table_id(&id)
                        .subnet_id(&association.subnet_id)
                        .send()
                        .await
                        .map_err(|e| format!("AssociateRouteTable: {e:?}"))?;
                }
            }
            for group in &region.security_groups {
                let description =
                    if group.description.is_empty() { group.name.clone() } else { group.description.clone() };
                clients
                    .ec2
                    .create_security_group()
                    .group_name(&group.name)
                    .description(description)
                    .vpc_id(&group.vpc_id)
                    .tag_specifications(spec(ResourceType::SecurityGroup, Some(&group.id), &group.tags))
                    .send()
                    .await
                    .map_err(|e| format!("CreateSecurityGroup {}: {e:?}", group.id))?;
            }
            for group in &region.security_groups {
                for rule in &group.ingress {
                    let mut permission = IpPermission::builder().ip_protocol(&rule.protocol);
                    if rule.protocol != "-1" {
                        permission = permission.from_port(i32::from(rule.from_port)).to_port(i32::from(rule.to_port));
                    }
                    if let Some(cidr) = &rule.cidr {
                        permission = permission.ip_ranges(IpRange::builder().cidr_ip(cidr).build());
                    }
                    if let Some(source) = &rule.source_group {
                        permission =
                            permission.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build());
                    }
                    clients
                        .ec2
                        .authorize_security_group_ingress()
                        .group_id(&group.id)
                        .ip_permissions(permission.build())
                        .set_tag_specifications(
                            (!rule.tags.is_empty())
                                .then(|| vec![spec(ResourceType::SecurityGroupRule, None, &rule.tags)]),
                        )
                        .send()
                        .await
                        .map_err(|e| format!("AuthorizeSecurityGroupIngress {}: {e:?}", group.id))?;
                }
            }
        }
    }
    Ok(())
}
