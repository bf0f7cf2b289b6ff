//! AWS IAM as the simulated world evaluates it: does a role's attached managed policies'
//! default versions allow an action? `Allow` statements with `Action` patterns (`*` and `?`
//! wildcards, case-insensitive), minus `Deny`s. Conditions and resources are not modelled: a
//! statement applies to every resource.
//!
//! This is AWS's behaviour in the world, not edgeplan's judgement of a policy: the engine
//! derives its own facts from the policy document it observes.

use crate::world::AwsAccount;

/// The calls the modelled LB controller makes to build an internal NLB with IP targets, in
/// the order it makes them (aws.md §1b: subnets, then reachability through the route tables).
pub(crate) const CONTROLLER_CALLS: &[&str] = &[
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcs",
    "ec2:DescribeSecurityGroups",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:RegisterTargets",
];

fn matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

fn actions(statement: &serde_json::Value) -> Vec<&str> {
    match statement.get("Action") {
        Some(serde_json::Value::String(one)) => vec![one.as_str()],
        Some(serde_json::Value::Array(many)) => many.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn statements(document: &serde_json::Value) -> Vec<&serde_json::Value> {
    match document.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter().collect(),
        Some(one @ serde_json::Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// Whether `role_name`'s attached policies (default versions) allow `action`. Policies not in
/// the world (AWS-managed ones) allow nothing here.
pub(crate) fn allows(account: &AwsAccount, role_name: &str, action: &str) -> Result<bool, String> {
    let role = account
        .iam
        .roles
        .iter()
        .find(|r| r.name == role_name)
        .ok_or_else(|| format!("NoSuchEntity: the role with name {role_name} cannot be found"))?;
    let mut allowed = false;
    for arn in &role.attached_policies {
        let Some(policy) = account.iam.policies.iter().find(|p| &p.arn == arn) else { continue };
        let Some(version) = policy.versions.iter().find(|v| v.id == policy.default_version) else { continue };
        for statement in statements(&version.document) {
            if !actions(statement).iter().any(|p| matches(p, action)) {
                continue;
            }
            match statement.get("Effect").and_then(|e| e.as_str()) {
                Some("Deny") => return Ok(false),
                Some("Allow") => allowed = true,
                _ => {}
            }
        }
    }
    Ok(allowed)
}

/// The first controller call the role may not make, if any.
pub(crate) fn first_denied_call(account: &AwsAccount, role_name: &str) -> Result<Option<&'static str>, String> {
    for call in CONTROLLER_CALLS {
        if !allows(account, role_name, call)? {
            return Ok(Some(call));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_case_insensitively() {
        assert!(matches("ec2:Describe*", "ec2:DescribeRouteTables"));
        assert!(matches("EC2:describeroutetables", "ec2:DescribeRouteTables"));
        assert!(matches("*", "iam:PassRole"));
        assert!(matches("ec2:Describe?ubnets", "ec2:DescribeSubnets"));
        assert!(!matches("ec2:DescribeSubnets", "ec2:DescribeRouteTables"));
        assert!(!matches("elasticloadbalancing:*", "ec2:DescribeSubnets"));
    }
}
