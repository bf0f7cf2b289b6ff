//! Names and identifiers: DNS-1123 labels, AWS IDs, alternatives that exclude each other.

use edgeplan_diag::{Finding, RuleId};
use edgeplan_spec::{AwsTarget, Spanned, Vpc};

use super::span;
use crate::Ctx;

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    dns_label(ctx, &spec.metadata.name, "metadata.name");
    let provider = &spec.spec.provider;
    aws_target(ctx, &provider.aws);
    vpc(ctx, &provider.vpc);
    for (value, what) in [
        (&provider.portainer.namespace, "portainer.namespace"),
        (&provider.portainer.deployment, "portainer.deployment"),
    ] {
        if let Some(value) = value {
            dns_label(ctx, value, what);
        }
    }
    if let Some(service) = &provider.tunnel_service {
        if let Some(name) = &service.name {
            dns_label(ctx, name, "tunnelService.name");
        }
        if let Some(namespace) = &service.namespace {
            dns_label(ctx, namespace, "tunnelService.namespace");
        }
        if let Some(port) = &service.listener_port
            && port.value == 0
        {
            ctx.push(Finding::of(RuleId::InvalidValue, span(port), "listenerPort 0 is not a port"));
        }
    }

    let subnet = &provider.nlb_subnet;
    match (&subnet.id, &subnet.cidr) {
        (Some(id), None) => {
            aws_id(ctx, id, "subnet-", "subnet ID");
            for az in [&subnet.availability_zone, &subnet.availability_zone_id].into_iter().flatten() {
                ctx.push(
                    Finding::of(RuleId::OneOf, span(az), "an existing subnet's AZ is read from AWS")
                        .with_help("remove the AZ, or replace `id` by `cidr` to create a new subnet"),
                );
            }
        }
        (None, Some(_)) => {
            if subnet.availability_zone.is_none() && subnet.availability_zone_id.is_none() {
                ctx.push(
                    Finding::of(RuleId::OneOf, span(subnet), "a new NLB subnet needs an Availability Zone")
                        .with_help("add availabilityZone (e.g. eu-west-1b) or availabilityZoneId (e.g. euw1-az3)"),
                );
            }
        }
        (Some(id), Some(cidr)) => ctx.push(
            Finding::of(RuleId::OneOf, span(cidr), "nlbSubnet has both `id` and `cidr`")
                .with_help("keep `id` to adopt an existing subnet, or `cidr` and an AZ to create one")
                .with_related(id.span, "`id` given here"),
        ),
        (None, None) => ctx.push(
            Finding::of(RuleId::OneOf, span(subnet), "nlbSubnet needs `id` or `cidr`")
                .with_help("give `id` to adopt an existing subnet, or `cidr` and an AZ to create one"),
        ),
    }
    az_fields(ctx, &subnet.availability_zone, &subnet.availability_zone_id, &provider.aws.region);

    if let Some(group) = &provider.cluster_security_group {
        match (&group.id, &group.discover) {
            (Some(id), None) => aws_id(ctx, id, "sg-", "security group ID"),
            (None, Some(discover)) if discover.value => {}
            (None, Some(discover)) => ctx.push(
                Finding::of(RuleId::OneOf, span(discover), "`discover: false` without an `id`")
                    .with_help("give the security group `id`, or set `discover: true`"),
            ),
            (Some(id), Some(_)) => ctx.push(
                Finding::of(RuleId::OneOf, span(id), "clusterSecurityGroup has both `id` and `discover`")
                    .with_help("keep one of them"),
            ),
            (None, None) => ctx.push(
                Finding::of(RuleId::OneOf, span(group), "clusterSecurityGroup needs `id` or `discover: true`")
                    .with_help("or remove clusterSecurityGroup to discover it"),
            ),
        }
    }

    for consumer in spec.spec.consumers.iter() {
        dns_label(ctx, &consumer.name, "consumer name");
        aws_target(ctx, &consumer.aws);
        vpc(ctx, &consumer.vpc);
        if consumer.subnets.is_empty() {
            ctx.push(
                Finding::of(RuleId::OneOf, span(&consumer.subnets), "a consumer needs at least one subnet")
                    .with_help("list the subnet(s) for the interface endpoint, one per AZ"),
            );
        }
        for subnet in consumer.subnets.iter() {
            aws_id(ctx, &subnet.id, "subnet-", "subnet ID");
            az_fields(ctx, &subnet.availability_zone, &subnet.availability_zone_id, &consumer.aws.region);
        }
        let group = &consumer.endpoint_security_group;
        match (&group.id, &group.create) {
            (Some(id), None) => aws_id(ctx, id, "sg-", "security group ID"),
            (None, Some(_)) => {}
            (Some(id), Some(_)) => ctx.push(
                Finding::of(RuleId::OneOf, span(id), "endpointSecurityGroup has both `id` and `create`")
                    .with_help("keep `id` to use an existing group, or `create` to let edgeplan manage one"),
            ),
            (None, None) => ctx.push(
                Finding::of(RuleId::OneOf, span(group), "endpointSecurityGroup needs `id` or `create`")
                    .with_help("e.g. `create: {allowedCidrs: [<consumer VPC CIDR>]}`"),
            ),
        }
        let environment = &consumer.environment;
        if environment.name.is_none() && environment.id.is_none() {
            ctx.push(
                Finding::of(RuleId::OneOf, span(environment), "environment needs `name` or `id`")
                    .with_help("name the Portainer environment; edgeplan creates it if missing"),
            );
        }
        if let Some(id) = &environment.id
            && id.value == 0
        {
            ctx.push(
                Finding::of(
                    RuleId::InvalidValue,
                    span(id),
                    "environment id 0 is Portainer's global key, not an environment",
                )
                .with_help("use the environment's ID from Portainer, or its name"),
            );
        }
        if let Some(namespace) = &consumer.agent.namespace {
            dns_label(ctx, namespace, "agent.namespace");
        }
        for var in consumer.agent.env.iter().flatten() {
            let name = &var.name.value;
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                ctx.push(Finding::of(
                    RuleId::InvalidValue,
                    span(&var.name),
                    format!("`{name}` is not a valid environment variable name"),
                ));
            }
        }
    }
}

fn aws_target(ctx: &mut Ctx<'_>, aws: &AwsTarget) {
    let account = &aws.account_id;
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        ctx.push(
            Finding::of(
                RuleId::InvalidAwsId,
                span(account),
                format!("`{}` is not a 12-digit AWS account ID", account.value),
            )
            .with_help("an AWS account ID is exactly 12 digits; quote it (\"012345678901\") to keep it a string"),
        );
    }
    let region = &aws.region;
    if !is_region(region) {
        ctx.push(
            Finding::of(RuleId::InvalidAwsId, span(region), format!("`{}` is not an AWS region name", region.value))
                .with_help("use a region code such as eu-west-1"),
        );
    }
}

fn vpc(ctx: &mut Ctx<'_>, vpc: &Vpc) {
    aws_id(ctx, &vpc.id, "vpc-", "VPC ID");
}

fn aws_id(ctx: &mut Ctx<'_>, id: &Spanned<String>, prefix: &str, what: &str) {
    let ok = id.strip_prefix(prefix).is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    });
    if !ok {
        ctx.push(
            Finding::of(RuleId::InvalidAwsId, span(id), format!("`{}` is not a {what}", id.value))
                .with_help(format!("a {what} looks like {prefix}0123456789abcdef0")),
        );
    }
}

fn az_fields(
    ctx: &mut Ctx<'_>,
    name: &Option<Spanned<String>>,
    id: &Option<Spanned<String>>,
    region: &Spanned<String>,
) {
    if let Some(name) = name {
        let suffix_ok = name.strip_prefix(region.as_str()).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        if !suffix_ok {
            ctx.push(
                Finding::of(
                    RuleId::InvalidAwsId,
                    span(name),
                    format!("`{}` is not an Availability Zone of {}", name.value, region.value),
                )
                .with_help(format!("AZ names start with the region, e.g. {}b", region.value))
                .with_related(region.span, "region declared here"),
            );
        }
    }
    if let Some(id) = id {
        // AZ IDs look like `euw1-az3` or `use1-az1`.
        let ok = id.split_once("-az").is_some_and(|(prefix, n)| {
            (3..=6).contains(&prefix.len())
                && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        });
        if !ok {
            ctx.push(
                Finding::of(RuleId::InvalidAwsId, span(id), format!("`{}` is not an Availability Zone ID", id.value))
                    .with_help("AZ IDs look like euw1-az3; `aws ec2 describe-availability-zones` lists them"),
            );
        }
    }
}

fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// DNS-1123 label: what Kubernetes requires of namespaces and Service names, and what
/// edgeplan requires of names that become part of resource addresses and tags.
pub(crate) fn dns_label(ctx: &mut Ctx<'_>, value: &Spanned<String>, what: &str) {
    let name = value.as_str();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        ctx.push(Finding::of(RuleId::InvalidName, span(value), format!("{what} `{name}` is not a DNS-1123 label")));
    }
}
