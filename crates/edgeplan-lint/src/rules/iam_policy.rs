//! The LB controller policy document the spec enforces must allow what an internal NLB needs.

use edgeplan_diag::{Finding, RuleId};

use super::span;
use crate::Ctx;
use crate::iam::{INTERNAL_NLB_ACTIONS, PolicyError, allowed_actions, missing_actions};

pub(super) fn check(ctx: &mut Ctx<'_>) {
    role_name(ctx);
    let Some(path) = &ctx.spec.spec.provider.lb_controller.policy_document else { return };
    let at = span(path);
    let bytes = match ctx.read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            ctx.push(Finding::of(
                RuleId::PolicyDocumentUnreadable,
                at,
                format!("cannot read `{}`: {}", path.value, err.kind()),
            ));
            return;
        }
    };
    let allowed = match allowed_actions(&bytes) {
        Ok(allowed) => allowed,
        Err(PolicyError::NotJson(why)) => {
            ctx.push(Finding::of(RuleId::PolicyDocumentUnreadable, at, format!("`{}` is not JSON: {why}", path.value)));
            return;
        }
        Err(PolicyError::NoStatements) => {
            ctx.push(Finding::of(RuleId::PolicyDocumentUnreadable, at, format!("`{}` has no Statement", path.value)));
            return;
        }
    };
    let missing = missing_actions(&allowed, INTERNAL_NLB_ACTIONS);
    if !missing.is_empty() {
        ctx.push(
            Finding::of(
                RuleId::PolicyMissingActions,
                at,
                format!(
                    "`{}` does not allow {} action(s) an internal NLB needs: {}",
                    path.value,
                    missing.len(),
                    missing.join(", ")
                ),
            )
            .with_label(if missing.contains(&"ec2:DescribeRouteTables") {
                "ALB-era policy: the controller will fail with UnauthorizedOperation on ec2:DescribeRouteTables"
            } else {
                "incomplete policy"
            }),
        );
    }
}

/// IAM's RoleName: 1-64 characters of `[\w+=,.@-]`. The API takes the name, never the ARN (whose
/// `:` and `/` it refuses), so an ARN here fails at the first IAM call.
fn role_name(ctx: &mut Ctx<'_>) {
    let role = &ctx.spec.spec.provider.lb_controller.role_name;
    if !crate::rules::names::not_empty(
        ctx,
        role,
        "lbController.roleName",
        "give the name of the role the controller's service account assumes",
    ) {
        return;
    }
    let text = role.as_str();
    if let Some(resource) = text.strip_prefix("arn:").and_then(|rest| rest.splitn(5, ':').nth(4)) {
        let name = resource.strip_prefix("role/").map(|path| path.rsplit('/').next().unwrap_or(path));
        let help = match name {
            Some(name) => format!("write `roleName: {name}`, the part of the ARN after the last `/`"),
            None => "give the role's name; this ARN is not a role's".to_string(),
        };
        ctx.push(
            Finding::of(
                RuleId::InvalidRoleName,
                span(role),
                "lbController.roleName is an ARN; IAM wants the role's name",
            )
            .with_label("an ARN, not a name")
            .with_help(help),
        );
        return;
    }
    let valid = text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !valid {
        let message = if text.len() > 64 {
            format!("lbController.roleName is {} characters; IAM role names have at most 64", text.len())
        } else {
            format!("lbController.roleName `{text}` is not an IAM role name")
        };
        ctx.push(Finding::of(RuleId::InvalidRoleName, span(role), message));
    }
}
