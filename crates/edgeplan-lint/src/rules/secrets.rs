//! Secrets: never written into the spec; referenced EDGE_KEY files in the form the agent takes.

use edgeplan_diag::{Finding, RuleId};
use edgeplan_spec::{SecretRef, Spanned};

use super::span;
use crate::Ctx;

/// Agent variables edgeplan derives from the spec; setting them in `agent.env` would fight it.
const MANAGED_AGENT_ENV: &[&str] =
    &["EDGE", "EDGE_ID", "EDGE_KEY", "EDGE_INSECURE_POLL", "AGENT_SECRET", "KUBERNETES_POD_IP", "AGENT_CLUSTER_ADDR"];

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    literal(ctx, &spec.spec.provider.portainer.api_key, "portainer.apiKey", "PORTAINER_API_KEY");
    for consumer in spec.spec.consumers.iter() {
        if let Some(secret) = &consumer.agent.agent_secret {
            literal(ctx, secret, "agent.agentSecret", "AGENT_SECRET");
        }
        if let Some(key) = &consumer.environment.edge_key {
            literal(ctx, key, "environment.edgeKey", "EDGE_KEY");
            if let SecretRef::File(path) = &key.value {
                edge_key_file(ctx, key, path);
            }
        }
        for var in consumer.agent.env.iter().flatten() {
            let name = var.name.as_str();
            if MANAGED_AGENT_ENV.contains(&name) {
                ctx.push(Finding::of(
                    RuleId::ManagedAgentEnv,
                    span(&var.name),
                    format!("{name} is set by edgeplan from the spec"),
                ));
            } else if crate::redact::is_secret_env_name(name) {
                ctx.push(
                    Finding::of(RuleId::LiteralSecret, span(&var.value.value), format!("{name} looks like a secret written inline"))
                        .with_label("value redacted")
                        .with_help("keep secrets out of the spec: edgeplan manages EDGE_KEY and AGENT_SECRET itself; mount others from a Kubernetes Secret"),
                );
            }
        }
    }
}

fn literal(ctx: &mut Ctx<'_>, value: &Spanned<SecretRef>, field: &str, env_hint: &str) {
    if let SecretRef::Literal { len } = value.value {
        ctx.push(
            Finding::of(RuleId::LiteralSecret, span(value), format!("{field} holds a literal secret ({len} characters)"))
                .with_label("value redacted")
                .with_help(format!(
                    "write `{{env: {env_hint}}}` or `{{file: path}}` instead, and rotate the value: it is in version control now"
                )),
        );
    }
}

/// Check a referenced EDGE_KEY file the way the agent will read it.
fn edge_key_file(ctx: &mut Ctx<'_>, key: &Spanned<SecretRef>, path: &str) {
    let bytes = match ctx.read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            ctx.push(
                Finding::of(
                    RuleId::EdgeKeyFileUnreadable,
                    span(key),
                    format!("cannot read EDGE_KEY file `{path}`: {}", err.kind()),
                )
                .with_help("check the path; it is relative to the spec file"),
            );
            return;
        }
    };
    let report = edgeplan_edgekey::check(&bytes);
    for issue in report.issues().iter().filter(|i| i.severity == edgeplan_edgekey::Severity::Error) {
        ctx.push(
            Finding::of(
                RuleId::EdgeKeyMalformed,
                span(key),
                format!("`{path}` byte {}: {}", issue.offset, issue.message()),
            )
            .with_help(issue.help()),
        );
    }
}
