//! Kubernetes' own rules for names, label values and annotation keys (apimachinery's
//! `validation` package), and the label values edgeplan derives from names in the spec.
//!
//! Lint does not depend on the model or plan crates, so the derivation is restated here;
//! `crates/edgeplan-cli/tests/lint_cli.rs` compiles specs through the real compiler and
//! manifests and checks that the two agree, so they cannot drift apart.

/// Maximum length of a DNS-1123 label, a DNS-1035 label and a label value.
pub const MAX_LABEL: usize = 63;
/// Maximum length of a DNS-1123 subdomain (an annotation key's prefix).
pub const MAX_SUBDOMAIN: usize = 253;

/// Where a consumer's Kubernetes objects carry its name: their `edgeplan.dev/address` label is
/// `consumer.<name>.<suffix>` for each of these node address names (the agent's objects).
pub const CONSUMER_KUBERNETES_ADDRESS_SUFFIXES: &[&str] = &["agent"];

/// The `edgeplan.dev/address` label values edgeplan puts on a consumer's Kubernetes objects.
pub fn consumer_label_values(consumer: &str) -> Vec<String> {
    CONSUMER_KUBERNETES_ADDRESS_SUFFIXES.iter().map(|suffix| format!("consumer.{consumer}.{suffix}")).collect()
}

/// The longest consumer name whose derived label values all fit in a label value.
pub fn max_consumer_name_len() -> usize {
    let overhead = consumer_label_values("").iter().map(String::len).max().unwrap_or(0);
    MAX_LABEL.saturating_sub(overhead)
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: namespaces and most object names.
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= MAX_LABEL
        && name.starts_with(is_lower_alnum)
        && name.ends_with(is_lower_alnum)
        && name.chars().all(|c| is_lower_alnum(c) || c == '-')
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: what a Service's name must be.
pub fn is_dns1035_label(name: &str) -> bool {
    is_dns1123_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Dot-separated DNS-1123 labels, at most 253 characters.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_SUBDOMAIN && name.split('.').all(is_dns1123_label)
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63 characters; empty is allowed.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_qualified_name_part(value)
}

fn is_qualified_name_part(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// What Kubernetes rejects in an annotation (or label) key, in the user's terms; `None` when
/// it is a valid qualified name: an optional DNS-1123 subdomain prefix and `/`, then a name of
/// at most 63 characters of `[-A-Za-z0-9_.]` that starts and ends with a letter or digit.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Some("the prefix before `/` is empty".to_string());
        }
        if name.contains('/') {
            return Some("it has more than one `/`".to_string());
        }
        if prefix.len() > MAX_SUBDOMAIN {
            return Some(format!("the prefix is {} characters; at most {MAX_SUBDOMAIN} are allowed", prefix.len()));
        }
        if !is_dns1123_subdomain(prefix) {
            return Some(format!(
                "the prefix `{prefix}` is not a DNS subdomain (lowercase letters, digits, '-' and '.')"
            ));
        }
    }
    if name.is_empty() {
        return Some("the name is empty".to_string());
    }
    if name.len() > MAX_LABEL {
        return Some(format!(
            "the name after the prefix is {} characters; at most {MAX_LABEL} are allowed",
            name.len()
        ));
    }
    if !is_qualified_name_part(name) {
        return Some(format!(
            "the name `{name}` may hold only letters, digits, '-', '_' and '.', and must start and end with a letter or digit"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_values() {
        assert!(is_dns1123_label("portainer-edge"));
        assert!(!is_dns1123_label("Portainer"));
        assert!(!is_dns1123_label("-a") && !is_dns1123_label("a-") && !is_dns1123_label(""));
        assert!(is_dns1123_label(&"a".repeat(63)) && !is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1035_label("tunnel") && !is_dns1035_label("1tunnel"));
        assert!(is_label_value("") && is_label_value("consumer.prod.agent") && is_label_value("A_b.c-D"));
        assert!(!is_label_value(&"a".repeat(64)) && !is_label_value("a b") && !is_label_value(".a"));
    }

    #[test]
    fn qualified_names() {
        assert_eq!(qualified_name_problem("service.beta.kubernetes.io/aws-load-balancer-attributes"), None);
        assert_eq!(qualified_name_problem("simple_Name.x"), None);
        assert!(qualified_name_problem("/name").is_some());
        assert!(qualified_name_problem("a/b/c").is_some());
        assert!(qualified_name_problem("Example.com/x").is_some());
        assert!(qualified_name_problem("example.com/").is_some());
        assert!(qualified_name_problem("has space").is_some());
        assert!(qualified_name_problem(&format!("example.com/{}", "n".repeat(64))).is_some());
        assert!(qualified_name_problem(&format!("{}.com/x", "a".repeat(250))).is_some());
        assert!(qualified_name_problem("-leading").is_some());
    }

    #[test]
    fn derived_values_fit_exactly_at_the_limit() {
        let longest = "a".repeat(max_consumer_name_len());
        assert!(consumer_label_values(&longest).iter().all(|v| v.len() <= MAX_LABEL && is_label_value(v)));
        let over = "a".repeat(max_consumer_name_len() + 1);
        assert!(consumer_label_values(&over).iter().any(|v| v.len() > MAX_LABEL));
    }
}
