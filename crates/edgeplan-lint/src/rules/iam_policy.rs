//! The LB controller policy document the spec enforces must allow what an internal NLB needs.

use edgeplan_diag::{Finding, RuleId};

use super::span;
use crate::Ctx;
use crate::iam::{INTERNAL_NLB_ACTIONS, PolicyError, allowed_actions, missing_actions};

pub(super) fn check(ctx: &mut Ctx<'_>) {
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
