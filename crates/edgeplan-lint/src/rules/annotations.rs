//! The tunnel Service's annotations, as the AWS Load Balancer Controller reads them.

use edgeplan_diag::{Finding, RuleId, Severity};

use super::span;
use crate::Ctx;

const PREFIX: &str = "service.beta.kubernetes.io/";

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let Some(annotations) = ctx.spec.spec.provider.tunnel_service.as_ref().and_then(|s| s.annotations.as_ref()) else {
        return;
    };
    let mut findings = Vec::new();
    for (key, value) in &annotations.0 {
        // The API server refuses the whole Service for one bad key, and only when it is applied.
        if let Some(problem) = crate::k8s::qualified_name_problem(key) {
            findings.push(
                Finding::of(
                    RuleId::InvalidAnnotationKey,
                    span(key),
                    format!("annotation key `{}`: {problem}", key.value),
                )
                .with_label("Kubernetes rejects this key"),
            );
            continue;
        }
        let Some(name) = key.strip_prefix(PREFIX) else { continue };
        let v = value.trim();
        let finding = match name {
            "aws-load-balancer-scheme" if v != "internal" => Some(Finding::of(
                RuleId::SchemeNotInternal,
                span(value),
                format!("scheme `{v}` makes the tunnel NLB public; PrivateLink needs an internal NLB"),
            )),
            "aws-load-balancer-internal" if !matches!(v, "true" | "True" | "TRUE") => Some(Finding::of(
                RuleId::SchemeNotInternal,
                span(value),
                format!("aws-load-balancer-internal: {v} asks for an internet-facing NLB"),
            )),
            "aws-load-balancer-type" => match v {
                "external" => Some(Finding::of(
                    RuleId::LbTypeExplained,
                    span(value),
                    "`external` means \"reconciled by the AWS Load Balancer Controller\", not internet-facing",
                )
                .with_label("external to the in-tree cloud controller")),
                "nlb-ip" => Some(
                    Finding::of(RuleId::LbTypeNotController, span(value), "`nlb-ip` is a deprecated alias of external + target type ip")
                        .with_severity(Severity::Warning),
                ),
                other => Some(Finding::of(
                    RuleId::LbTypeNotController,
                    span(value),
                    format!(
                        "`{other}` leaves the Service to the legacy in-tree cloud provider (unless the controller's \
                         webhook sets loadBalancerClass); edgeplan relies on the AWS Load Balancer Controller"
                    ),
                )),
            },
            "aws-load-balancer-nlb-target-type" if v != "ip" => Some(Finding::of(
                RuleId::TargetTypeNotIp,
                span(value),
                format!("target type `{v}` routes through worker-node ports; the tunnel NLB targets the Portainer pod's IP"),
            )),
            "aws-load-balancer-cross-zone-load-balancing-enabled" => Some(
                Finding::of(RuleId::DeprecatedCrossZone, span(key), "deprecated annotation (controller v2.3.0+)")
                    .with_help(format!(
                        "write service.beta.kubernetes.io/aws-load-balancer-attributes: load_balancing.cross_zone.enabled={v}; \
                         if both are set, this deprecated one silently wins"
                    )),
            ),
            "aws-load-balancer-subnets" => Some(
                Finding::of(RuleId::ManagedAnnotation, span(key), "edgeplan sets the NLB's subnets from provider.nlbSubnet")
                    .with_help("remove the annotation; set provider.nlbSubnet.id to use an existing subnet"),
            ),
            _ => None,
        };
        findings.extend(finding);
    }
    findings.extend(backend_rules_unmanaged(annotations));
    for finding in findings {
        ctx.push(finding);
    }
}

/// Seed trap 3: with its own security groups (and no opt-in) or with management switched off,
/// the controller adds no rule on the pods' security group, so nothing admits the NLB.
fn backend_rules_unmanaged(annotations: &edgeplan_spec::AnnotationMap) -> Option<Finding> {
    let manage = annotations.get(&format!("{PREFIX}aws-load-balancer-manage-backend-security-group-rules"));
    let groups = annotations.get(&format!("{PREFIX}aws-load-balancer-security-groups"));
    let (at, why) = match (manage, groups) {
        (Some((_, value)), _) if value.trim() == "false" => (value, "backend rule management is switched off"),
        (None, Some((key, _))) => (key, "with its own security groups, the controller stops managing backend rules"),
        _ => return None,
    };
    Some(Finding::of(
        RuleId::BackendRulesUnmanaged,
        span(at),
        format!("{why}: the Portainer pods' security group will not admit the NLB (seed trap 3)"),
    ))
}
