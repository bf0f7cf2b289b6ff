//! Uniqueness: two entries must never map to the same resource.

use std::collections::HashMap;

use edgeplan_diag::{Finding, RuleId, Span};

use super::span;
use crate::Ctx;

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let mut findings = Vec::new();
    let mut seen: HashMap<String, Option<Span>> = HashMap::new();
    let mut claim = |key: String, at: Option<Span>, message: String| {
        if let Some(first) = seen.get(&key) {
            let mut finding = Finding::of(RuleId::DuplicateName, at, message);
            if let Some(first) = first {
                finding = finding.with_related(*first, "first used here");
            }
            findings.push(finding);
        } else {
            seen.insert(key, at);
        }
    };
    for consumer in ctx.spec.spec.consumers.iter() {
        let name = &consumer.name;
        claim(format!("consumer/{}", name.value), span(name), format!("consumer name `{}` is used twice", name.value));
        let env = &consumer.environment;
        if let Some(env_name) = &env.name {
            claim(
                format!("environment/{}", env_name.value),
                span(env_name),
                format!("Portainer environment `{}` is used by two consumers", env_name.value),
            );
        }
        if let Some(id) = &env.id {
            claim(
                format!("environment-id/{}", id.value),
                span(id),
                format!("Portainer environment {} is used by two consumers", id.value),
            );
        }
        let context = &consumer.cluster.kube_context;
        claim(
            format!("agent/{}/{}", context.value, consumer.agent.namespace()),
            span(context),
            format!(
                "two consumers deploy an agent into namespace `{}` of context `{}`",
                consumer.agent.namespace(),
                context.value
            ),
        );
    }
    for consumer in ctx.spec.spec.consumers.iter() {
        let mut subnet_ids: HashMap<&str, Option<Span>> = HashMap::new();
        for subnet in consumer.subnets.iter() {
            if let Some(first) = subnet_ids.insert(subnet.id.as_str(), span(&subnet.id)) {
                let mut finding = Finding::of(
                    RuleId::DuplicateName,
                    span(&subnet.id),
                    format!("subnet {} is listed twice for consumer `{}`", subnet.id.value, consumer.name.value),
                );
                if let Some(first) = first {
                    finding = finding.with_related(first, "first listed here");
                }
                findings.push(finding);
            }
        }
    }
    for finding in findings {
        ctx.push(finding);
    }
}
