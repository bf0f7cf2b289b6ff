//! Names and identifiers: DNS-1123 labels, AWS IDs, names that must not be empty, values
//! edgeplan derives from names, alternatives that exclude each other.

use edgeplan_diag::{Finding, RuleId};
use edgeplan_spec::{AwsTarget, Spanned, Vpc};

use super::span;
use crate::{Ctx, k8s};

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    dns_label(ctx, &spec.metadata.name, "metadata.name");
    let provider = &spec.spec.provider;
    aws_target(ctx, &provider.aws);
    vpc(ctx, &provider.vpc);
    eks_cluster_name(ctx, &provider.cluster.name);
    not_empty(
        ctx,
        &provider.cluster.kube_context,
        "cluster.kubeContext",
        "name the kubeconfig context that reaches this cluster",
    );
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
            service_name(ctx, name, "tunnelService.name");
        }
        if let Some(namespace) = &service.namespace {
            dns_label(ctx, namespace, "tunnelService.namespace");
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
        if dns_label(ctx, &consumer.name, "consumer name") {
            derived_labels(ctx, &consumer.name);
        }
        aws_target(ctx, &consumer.aws);
        vpc(ctx, &consumer.vpc);
        not_empty(
            ctx,
            &consumer.cluster.kube_context,
            "cluster.kubeContext",
            "name the kubeconfig context that reaches this cluster",
        );
        if let Some(name) = &consumer.cluster.name {
            not_empty(
                ctx,
                name,
                "cluster.name",
                "give the EKS cluster's name, or remove the key (it is optional here)",
            );
        }
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
        match (&environment.name, &environment.id) {
            (None, None) => ctx.push(
                Finding::of(RuleId::OneOf, span(environment), "environment needs `name` or `id`")
                    .with_help("name the Portainer environment; edgeplan creates it if missing"),
            ),
            (Some(name), Some(id)) => {
                let mut finding = Finding::of(
                    RuleId::OneOf,
                    span(id),
                    "environment has both `name` and `id`: edgeplan would use the id and ignore the name",
                )
                .with_help("keep `id` for an environment that exists, or `name` to find or create it by name");
                if let Some(at) = span(name) {
                    finding = finding.with_related(at, "`name` given here");
                }
                ctx.push(finding);
            }
            (Some(name), None) => {
                not_empty(ctx, name, "environment.name", "name the Portainer environment, or give its `id`");
            }
            (None, Some(_)) => {}
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

/// A name that must hold something: an empty one fails only when edgeplan uses it, later.
pub(crate) fn not_empty(ctx: &mut Ctx<'_>, value: &Spanned<String>, what: &str, help: &str) -> bool {
    if !value.trim().is_empty() {
        return true;
    }
    let message = if value.is_empty() { format!("{what} is empty") } else { format!("{what} is only whitespace") };
    ctx.push(Finding::of(RuleId::EmptyValue, span(value), message).with_help(help.to_string()));
    false
}

/// EKS cluster names: 1-100 characters, letters, digits, `-` and `_`, starting with a letter or
/// digit (the CreateCluster API's pattern). edgeplan puts it in the subnet tag
/// `kubernetes.io/cluster/<name>`, where the LB controller looks for it.
fn eks_cluster_name(ctx: &mut Ctx<'_>, name: &Spanned<String>) {
    if !not_empty(ctx, name, "cluster.name", "give the EKS cluster's name, as `aws eks list-clusters` prints it") {
        return;
    }
    let ok = name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        ctx.push(
            Finding::of(RuleId::InvalidAwsId, span(name), format!("`{}` is not an EKS cluster name", name.value))
                .with_help(
                    "EKS cluster names have 1-100 letters, digits, '-' and '_', starting with a letter or digit",
                ),
        );
    }
}

/// The values edgeplan builds from a consumer's name must be valid where they land: its
/// Kubernetes objects carry `edgeplan.dev/address=consumer.<name>.agent`, a label value.
fn derived_labels(ctx: &mut Ctx<'_>, name: &Spanned<String>) {
    let max = k8s::max_consumer_name_len();
    let Some(too_long) = k8s::consumer_label_values(name).into_iter().find(|v| !k8s::is_label_value(v)) else {
        return;
    };
    ctx.push(
        Finding::of(
            RuleId::DerivedNameTooLong,
            span(name),
            format!(
                "consumer name `{}` ({} characters) makes the `{ADDRESS_LABEL}` label value `{too_long}` {} characters long; Kubernetes allows {}",
                name.value,
                name.len(),
                too_long.len(),
                k8s::MAX_LABEL
            ),
        )
        .with_label(format!("at most {max} characters"))
        .with_help(format!(
            "shorten the consumer name to at most {max} characters: edgeplan labels the agent's Kubernetes objects with their address"
        )),
    );
}

/// The ownership label edgeplan puts on every Kubernetes object it creates.
const ADDRESS_LABEL: &str = "edgeplan.dev/address";

/// A Service's name is a DNS-1035 label: a DNS-1123 label that starts with a letter.
fn service_name(ctx: &mut Ctx<'_>, value: &Spanned<String>, what: &str) {
    if dns_label(ctx, value, what) && !k8s::is_dns1035_label(value) {
        ctx.push(
            Finding::of(RuleId::InvalidName, span(value), format!("{what} `{}` starts with a digit", value.value))
                .with_help(
                    "a Service name must start with a letter (DNS-1035): Kubernetes rejects the Service otherwise",
                ),
        );
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
    if let Some(profile) = &aws.profile {
        not_empty(
            ctx,
            profile,
            "aws.profile",
            "name a profile from ~/.aws/config, or remove the key to use the default credential chain",
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

/// DNS-1123 label: what Kubernetes requires of namespaces and object names, and what
/// edgeplan requires of names that become part of resource addresses and tags. Whether it is.
pub(crate) fn dns_label(ctx: &mut Ctx<'_>, value: &Spanned<String>, what: &str) -> bool {
    let name = value.as_str();
    if k8s::is_dns1123_label(name) {
        return true;
    }
    let message = if name.len() > k8s::MAX_LABEL {
        format!("{what} `{name}` is {} characters, more than a DNS-1123 label's {}", name.len(), k8s::MAX_LABEL)
    } else {
        format!("{what} `{name}` is not a DNS-1123 label")
    };
    ctx.push(Finding::of(RuleId::InvalidName, span(value), message));
    false
}
