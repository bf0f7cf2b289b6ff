//! Addresses and zones: CIDRs, the NLB subnet's fit, shared AZs, regions, principals.

use edgeplan_diag::{Finding, RuleId, Severity};
use edgeplan_spec::Spanned;
use ipnet::Ipv4Net;

use super::span;
use crate::Ctx;

/// AWS reserves the first four and the last address of every subnet.
const AWS_RESERVED_PER_SUBNET: u64 = 5;
/// The LB controller drops subnets with fewer free addresses than this.
const LBC_MIN_FREE_IPS: u64 = 8;

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let provider = &ctx.spec.spec.provider;
    let provider_vpc = provider.vpc.cidr.as_ref().and_then(|c| cidr(ctx, c));
    let nlb_subnet = provider.nlb_subnet.cidr.as_ref().and_then(|c| cidr(ctx, c));

    if let Some(subnet) = nlb_subnet {
        let subnet_value = provider.nlb_subnet.cidr.as_ref().map(span).unwrap_or_default();
        let usable = (1u64 << (32 - u32::from(subnet.prefix_len()))).saturating_sub(AWS_RESERVED_PER_SUBNET);
        if usable < LBC_MIN_FREE_IPS {
            ctx.push(Finding::of(
                RuleId::SubnetTooSmall,
                subnet_value,
                format!(
                    "{subnet} has {usable} usable addresses; the LB controller needs at least {LBC_MIN_FREE_IPS} free"
                ),
            ));
        }
        if let (Some(vpc), Some(vpc_value)) = (provider_vpc, &provider.vpc.cidr)
            && !vpc.contains(&subnet)
        {
            let mut finding = Finding::of(
                RuleId::SubnetOutsideVpc,
                subnet_value,
                format!("{subnet} is not inside the VPC CIDR {vpc}"),
            );
            if let Some(s) = span(vpc_value) {
                finding = finding.with_related(s, "VPC CIDR declared here");
            }
            ctx.push(finding);
        }
    }

    for consumer in ctx.spec.spec.consumers.iter() {
        let consumer_vpc = consumer.vpc.cidr.as_ref().and_then(|c| cidr(ctx, c));
        if let Some(group) = &consumer.endpoint_security_group.create {
            for allowed in group.allowed_cidrs.iter() {
                cidr(ctx, allowed);
            }
        }
        if let (Some(ours), Some(theirs), Some(ours_value), Some(theirs_value)) =
            (provider_vpc, consumer_vpc, &provider.vpc.cidr, &consumer.vpc.cidr)
            && (ours.contains(&theirs.network()) || theirs.contains(&ours.network()))
        {
            let mut finding = Finding::of(
                RuleId::VpcCidrOverlap,
                span(theirs_value),
                format!("consumer `{}` VPC {theirs} overlaps the provider VPC {ours}", consumer.name.value),
            );
            if let Some(s) = span(ours_value) {
                finding = finding.with_related(s, "provider VPC CIDR");
            }
            ctx.push(finding);
        }
        if consumer.aws.region.value != provider.aws.region.value {
            let mut finding = Finding::of(
                RuleId::CrossRegionConsumer,
                span(&consumer.aws.region),
                format!(
                    "consumer `{}` is in {}, the endpoint service in {}",
                    consumer.name.value, consumer.aws.region.value, provider.aws.region.value
                ),
            );
            if let Some(s) = span(&provider.aws.region) {
                finding = finding.with_related(s, "provider region");
            }
            ctx.push(finding.with_help(
                "put the consumer's interface endpoint in the provider's region (edgeplan does not manage \
                 cross-region PrivateLink, SupportedRegions/ServiceRegion, yet)",
            ));
        }
    }
    shared_az(ctx);
    endpoint_service(ctx);
}

/// Parse and validate one CIDR; findings for malformed or non-canonical ones. The spec's text
/// is what edgeplan sends to AWS, so only the canonical spelling is accepted: the parser takes
/// `192.168.000.0/24` and `/024`, which AWS would store (and report back) differently.
fn cidr(ctx: &mut Ctx<'_>, value: &Spanned<String>) -> Option<Ipv4Net> {
    let written = value.as_str();
    match parse_cidr(written) {
        Some(net) if net.trunc() == net && net.to_string() == written => Some(net),
        Some(net) if net.trunc() == net => {
            ctx.push(
                Finding::of(RuleId::InvalidCidr, span(value), format!("`{written}` is not written canonically"))
                    .with_label(format!("write {net}"))
                    .with_help(format!(
                        "write {net}: edgeplan sends the CIDR to AWS as written, and AWS stores and reports {net}"
                    )),
            );
            None
        }
        Some(net) => {
            ctx.push(
                Finding::of(RuleId::InvalidCidr, span(value), format!("`{written}` has host bits set"))
                    .with_label(format!("the network is {}", net.trunc()))
                    .with_help(format!(
                        "write {}: AWS stores the canonical form and reports the rest as a mismatch",
                        net.trunc()
                    )),
            );
            None
        }
        None => {
            ctx.push(
                Finding::of(RuleId::InvalidCidr, span(value), format!("`{written}` is not an IPv4 CIDR"))
                    .with_help("write an IPv4 network and prefix length, e.g. 192.168.0.0/24"),
            );
            None
        }
    }
}

/// An IPv4 CIDR, leniently: leading zeros in an octet or in the prefix are read as decimal, so
/// the finding can name the canonical form.
fn parse_cidr(text: &str) -> Option<Ipv4Net> {
    let (address, prefix) = text.split_once('/')?;
    let octets: Vec<&str> = address.split('.').collect();
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if octets.len() != 4 || !octets.iter().all(|o| digits(o)) || !digits(prefix) {
        return None;
    }
    let mut bytes = [0u8; 4];
    for (byte, octet) in bytes.iter_mut().zip(&octets) {
        *byte = octet.parse().ok()?;
    }
    Ipv4Net::new(bytes.into(), prefix.parse().ok()?).ok()
}

/// Consumer subnets must share an AZ with the NLB subnet. AZ IDs are compared when both sides
/// give them; names only within one account, since names map to different zones per account.
fn shared_az(ctx: &mut Ctx<'_>) {
    let provider = &ctx.spec.spec.provider;
    let nlb = &provider.nlb_subnet;
    let mut findings = Vec::new();
    for consumer in ctx.spec.spec.consumers.iter() {
        let same_account = consumer.aws.account_id.value == provider.aws.account_id.value;
        let ids: Vec<&Spanned<String>> =
            consumer.subnets.iter().filter_map(|s| s.availability_zone_id.as_ref()).collect();
        let names: Vec<&Spanned<String>> =
            consumer.subnets.iter().filter_map(|s| s.availability_zone.as_ref()).collect();
        let nlb_where = if let Some(nlb_id) = &nlb.availability_zone_id
            && !ids.is_empty()
        {
            Some((nlb_id, &ids))
        } else if let Some(nlb_name) = &nlb.availability_zone
            && !names.is_empty()
        {
            if !same_account {
                let mut finding = Finding::of(
                    RuleId::AzNameAcrossAccounts,
                    span(names[0]),
                    format!(
                        "consumer `{}` (account {}) names AZs; the NLB subnet is in account {}",
                        consumer.name.value, consumer.aws.account_id.value, provider.aws.account_id.value
                    ),
                );
                if let Some(s) = span(nlb_name) {
                    finding = finding.with_related(s, "NLB subnet AZ");
                }
                findings.push(finding);
                continue;
            }
            Some((nlb_name, &names))
        } else {
            None
        };
        let Some((nlb_az, consumer_azs)) = nlb_where else { continue };
        if consumer_azs.iter().any(|az| az.value == nlb_az.value) {
            // Some subnet is shared; any other one would make CreateVpcEndpoint fail.
            for az in consumer_azs.iter().filter(|az| az.value != nlb_az.value) {
                let mut finding = Finding::of(
                    RuleId::SubnetOutsideServiceAz,
                    span(az),
                    format!(
                        "consumer `{}` has a subnet in {}; the endpoint service is only in {}",
                        consumer.name.value, az.value, nlb_az.value
                    ),
                );
                if let Some(s) = span(nlb_az) {
                    finding = finding.with_related(s, "NLB subnet AZ");
                }
                findings.push(finding);
            }
            continue;
        }
        let listed: Vec<&str> = consumer_azs.iter().map(|az| az.as_str()).collect();
        let mut finding = Finding::of(
            RuleId::NoSharedAz,
            span(&consumer.subnets),
            format!(
                "consumer `{}` subnets are in {}; the NLB subnet is in {}",
                consumer.name.value,
                listed.join(", "),
                nlb_az.value
            ),
        )
        .with_label("no subnet in the NLB's AZ");
        if let Some(s) = span(nlb_az) {
            finding = finding.with_related(s, "NLB subnet AZ");
        }
        findings.push(finding);
    }
    for consumer in ctx.spec.spec.consumers.iter() {
        let mut seen: Vec<&Spanned<String>> = Vec::new();
        for az in
            consumer.subnets.iter().filter_map(|s| s.availability_zone.as_ref().or(s.availability_zone_id.as_ref()))
        {
            if let Some(first) = seen.iter().find(|s| s.value == az.value) {
                let mut finding = Finding::of(
                    RuleId::InvalidValue,
                    span(az),
                    format!("two subnets of consumer `{}` are in {}", consumer.name.value, az.value),
                )
                .with_help("an interface endpoint takes at most one subnet per AZ: keep one");
                if let Some(s) = span(first) {
                    finding = finding.with_related(s, "first subnet in this AZ");
                }
                findings.push(finding);
            } else {
                seen.push(az);
            }
        }
    }
    for finding in findings {
        ctx.push(finding);
    }
}

/// Acceptance, and explicit allowed principals covering every consumer account.
fn endpoint_service(ctx: &mut Ctx<'_>) {
    let provider = &ctx.spec.spec.provider;
    let Some(service) = &provider.endpoint_service else { return };
    if let Some(acceptance) = &service.acceptance_required
        && !acceptance.value
    {
        ctx.push(Finding::of(
            RuleId::AcceptanceNotRequired,
            span(acceptance),
            "acceptanceRequired: false lets any allowed principal connect without approval",
        ));
    }
    let Some(allowed) = &service.allowed_principals else { return };
    let mut malformed = false;
    for principal in allowed {
        if let Some(problem) = principal_problem(principal) {
            malformed = true;
            ctx.push(
                Finding::of(RuleId::InvalidPrincipal, span(principal), format!("`{}` {problem}", principal.value))
                    .with_label("ModifyVpcEndpointServicePermissions would refuse it"),
            );
        }
    }
    if allowed.iter().any(|p| p.value == "*") {
        let star = allowed.iter().find(|p| p.value == "*").and_then(span);
        ctx.push(
            Finding::of(RuleId::ConsumerNotAllowed, star, "`*` allows every AWS account to request a connection")
                .with_severity(Severity::Warning)
                .with_help("list the consumer accounts instead; omit allowedPrincipals to let edgeplan derive them"),
        );
        return;
    }
    let mut missing = Vec::new();
    for consumer in ctx.spec.spec.consumers.iter() {
        let account = &consumer.aws.account_id.value;
        // Any partition: arn:aws, arn:aws-cn, arn:aws-us-gov.
        let account_part = format!(":iam::{account}:");
        if !allowed.iter().any(|p| p.starts_with("arn:") && p.contains(&account_part)) {
            missing.push(
                Finding::of(
                    RuleId::ConsumerNotAllowed,
                    span(&consumer.aws.account_id),
                    format!(
                        "consumer `{}` account {account} is not in endpointService.allowedPrincipals",
                        consumer.name.value
                    ),
                )
                .with_help(format!(
                    "add arn:aws:iam::{account}:root to allowedPrincipals, or omit the list to let edgeplan derive it"
                )),
            );
        }
    }
    // A malformed entry is its own finding; whether it covers a consumer is moot until it parses.
    if !malformed {
        for finding in missing {
            ctx.push(finding);
        }
    }
}

/// What is wrong with an allowed principal, in the user's terms; `None` for `*` and for an IAM
/// account root, role or user ARN without a path (the API refuses paths).
fn principal_problem(principal: &str) -> Option<String> {
    if principal == "*" {
        return None;
    }
    if principal.trim().is_empty() {
        return Some("is empty: write an IAM principal ARN".to_string());
    }
    if let Some(account) = principal.strip_prefix("arn:aws:iam::").filter(|a| !a.contains(':')) {
        return Some(format!("is not an ARN: write arn:aws:iam::{account}:root for an account"));
    }
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        if principal.len() == 12 && principal.chars().all(|c| c.is_ascii_digit()) {
            return Some(format!("is an account ID, not an ARN: write arn:aws:iam::{principal}:root"));
        }
        return Some("is not an ARN (arn:aws:iam::<account>:root, :role/<name> or :user/<name>)".to_string());
    };
    if arn != "arn" || !partition.starts_with("aws") {
        return Some("is not an ARN: it must start with arn:aws".to_string());
    }
    if service != "iam" {
        return Some(format!("is an ARN of `{service}`, not an IAM principal (a role, a user or an account root)"));
    }
    if !region.is_empty() {
        return Some("has a region; IAM ARNs have none (arn:aws:iam::<account>:…)".to_string());
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!("has `{account}` where a 12-digit account ID belongs"));
    }
    if resource == "root" {
        return None;
    }
    let name = resource.strip_prefix("role/").or_else(|| resource.strip_prefix("user/"));
    match name {
        Some(name) if name.contains('/') => {
            Some("has a path; endpoint service permissions take role and user ARNs without one".to_string())
        }
        Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)) => {
            None
        }
        Some(_) => Some("names no valid role or user".to_string()),
        None => Some("is neither an account root nor a role or user ARN".to_string()),
    }
}
