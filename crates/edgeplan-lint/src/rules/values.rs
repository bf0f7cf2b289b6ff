//! How values are written: YAML 1.1 booleans, the agent's image tag, secret references that
//! name nothing. Each is accepted by the parser and would fail, or mean something else, later.

use edgeplan_diag::{Finding, RuleId};
use edgeplan_spec::{SecretRef, Spanned};

use super::span;
use crate::Ctx;

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
const MAX_TAG: usize = 128;

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    for (key, value) in spec.booleans() {
        let Some(at) = span(value) else { continue };
        let written = ctx.written(at).to_string();
        if edgeplan_spec::is_yaml11_boolean(&written) {
            ctx.push(
                Finding::of(
                    RuleId::Yaml11Boolean,
                    Some(at),
                    format!("`{key}: {written}` is read as {}, but only YAML 1.1 reads `{written}` as a boolean", value.value),
                )
                .with_label(format!("write {}", value.value))
                .with_help(format!(
                    "write `{key}: {}`: YAML 1.2 tools, and editors checking the JSON Schema, read `{written}` as a string",
                    value.value
                )),
            );
        }
    }

    secret_reference(ctx, &spec.spec.provider.portainer.api_key, "portainer.apiKey");
    for consumer in spec.spec.consumers.iter() {
        image_tag(ctx, &consumer.agent.image_tag);
        if let Some(secret) = &consumer.agent.agent_secret {
            secret_reference(ctx, secret, "agent.agentSecret");
        }
        if let Some(key) = &consumer.environment.edge_key {
            secret_reference(ctx, key, "environment.edgeKey");
        }
    }
}

fn image_tag(ctx: &mut Ctx<'_>, tag: &Spanned<String>) {
    let text = tag.as_str();
    let problem = if text.is_empty() {
        Some("the agent's image tag is empty".to_string())
    } else if text.chars().any(char::is_whitespace) {
        Some(format!("image tag `{text}` contains whitespace"))
    } else if text.len() > MAX_TAG {
        Some(format!("image tag `{text}` is {} characters; a tag has at most {MAX_TAG}", text.len()))
    } else if text.starts_with(['.', '-']) {
        Some(format!("image tag `{text}` starts with `{}`", &text[..1]))
    } else {
        let bad = text.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
        bad.map(|bad| format!("image tag `{text}` contains `{bad}`, which no image tag may hold"))
    };
    if let Some(message) = problem {
        ctx.push(
            Finding::of(RuleId::InvalidImageTag, span(tag), message)
                .with_label("the agent's Deployment would fail to pull portainer/agent with this tag"),
        );
    }
}

/// `{env: ""}` or `{file: " "}` names nothing; `{env: "MY VAR"}` names no variable a shell can
/// set. Either way the secret cannot be read when the plan is made.
fn secret_reference(ctx: &mut Ctx<'_>, value: &Spanned<SecretRef>, field: &str) {
    let (kind, name) = match &value.value {
        SecretRef::Env(name) => ("env", name),
        SecretRef::File(path) => ("file", path),
        SecretRef::Literal { .. } => return,
    };
    if name.trim().is_empty() {
        ctx.push(
            Finding::of(RuleId::EmptyValue, span(value), format!("{field} has an empty `{kind}:` reference"))
                .with_help(format!(
                    "name the {} that holds the secret",
                    if kind == "env" { "environment variable" } else { "file (relative to the spec)" }
                )),
        );
        return;
    }
    let valid_env = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if kind == "env" && !valid_env {
        ctx.push(
            Finding::of(
                RuleId::InvalidValue,
                span(value),
                format!("{field}: `{name}` is not an environment variable name"),
            )
            .with_help("environment variable names have letters, digits and '_', and do not start with a digit"),
        );
    }
}
