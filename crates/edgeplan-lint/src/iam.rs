//! IAM policy documents: which actions a document allows, and what an internal NLB needs.
//!
//! Deliberately simple: `Allow` statements' `Action` lists with `*` wildcards. Conditions and
//! resources are not evaluated; they narrow *where* an action applies, not *whether* the
//! controller may call it, and the upstream policy scopes them correctly.

use serde_json::Value;

/// Actions the AWS Load Balancer Controller calls to build an internal NLB with ip targets
/// (derived from controller v2.13.2 call sites; see ../shared/reference/aws.md §1c).
/// `ec2:DescribeRouteTables` is the one ALB-era policies miss (the seed's trap 1).
pub const INTERNAL_NLB_ACTIONS: &[&str] = &[
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeVpcs",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeInstances",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:DeleteSecurityGroup",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DeleteListener",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    NotJson(String),
    NoStatements,
}

/// The action patterns of every `Allow` statement, lowercased (IAM action names are
/// case-insensitive).
pub fn allowed_actions(document: &[u8]) -> Result<Vec<String>, PolicyError> {
    let value: Value = serde_json::from_slice(document).map_err(|e| PolicyError::NotJson(e.to_string()))?;
    let statements = match value.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => return Err(PolicyError::NoStatements),
    };
    let mut actions = Vec::new();
    for statement in statements.iter().filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow")) {
        match statement.get("Action") {
            Some(Value::String(action)) => actions.push(action.to_ascii_lowercase()),
            Some(Value::Array(list)) => {
                actions.extend(list.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase));
            }
            _ => {}
        }
    }
    Ok(actions)
}

/// The required actions none of the patterns allow, in the order of `required`.
pub fn missing_actions<'a>(allowed: &[String], required: &[&'a str]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|action| !allowed.iter().any(|pattern| wildcard_match(pattern, &action.to_ascii_lowercase())))
        .copied()
        .collect()
}

/// IAM wildcard match: `*` any run of characters, `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &[u8] = include_bytes!("../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");

    #[test]
    fn upstream_v2_13_2_policy_has_every_required_action() {
        let allowed = allowed_actions(UPSTREAM).unwrap();
        assert_eq!(missing_actions(&allowed, INTERNAL_NLB_ACTIONS), Vec::<&str>::new());
    }

    #[test]
    fn alb_era_policy_misses_describe_route_tables() {
        let doc = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeSubnets","elasticloadbalancing:*"],"Resource":"*"}]}"#;
        let missing = missing_actions(&allowed_actions(doc).unwrap(), INTERNAL_NLB_ACTIONS);
        assert!(missing.contains(&"ec2:DescribeRouteTables"));
        assert!(!missing.iter().any(|a| a.starts_with("elasticloadbalancing:")));
    }

    #[test]
    fn wildcards_and_case() {
        assert!(wildcard_match("ec2:describe*", "ec2:describeroutetables"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("ec2:describe?pcs", "ec2:describevpcs"));
        assert!(!wildcard_match("ec2:create*", "ec2:describevpcs"));
    }

    #[test]
    fn deny_statements_do_not_allow() {
        let doc = br#"{"Statement":{"Effect":"Deny","Action":"*"}}"#;
        assert_eq!(allowed_actions(doc).unwrap(), Vec::<String>::new());
    }
}
