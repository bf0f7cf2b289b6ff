use edgeplan_diag::SourceFile;
use edgeplan_spec::{SecretRef, TunnelPort, parse};

fn source(text: &str) -> SourceFile {
    SourceFile::new("spec.yaml", text)
}

#[test]
fn seed_spec_parses_with_spans() {
    let text = include_str!("../../../specs/seed.yaml");
    let src = source(text);
    let spec = parse(&src).unwrap_or_else(|f| panic!("{}: {}", f.code(), f.message));
    let provider = &spec.spec.provider;
    assert_eq!(provider.portainer.tunnel_port(), TunnelPort::Auto);
    assert_eq!(provider.listener_port(), 8000);
    assert!(matches!(provider.portainer.api_key.value, SecretRef::Env(ref n) if n == "PORTAINER_API_KEY"));
    let cidr = provider.nlb_subnet.cidr.as_ref().unwrap();
    assert_eq!(&text[cidr.span.start..cidr.span.end], "192.168.0.0/24");
    assert_eq!(spec.spec.consumers.len(), 1);
}

#[test]
fn unknown_key_suggests_the_closest_key() {
    let text = include_str!("../../../specs/seed.yaml").replace("    kubeContext: staging", "    kubecontext: staging");
    let src = source(&text);
    let finding = parse(&src).unwrap_err();
    assert_eq!(finding.code(), "EP006");
    assert!(finding.help.starts_with("did you mean `kubeContext`?"), "{}", finding.help);
    let span = finding.span.unwrap();
    assert_eq!(&text[span.start..span.end], "kubecontext");
}

#[test]
fn literal_secret_parses_without_keeping_the_value() {
    let text = include_str!("../../../specs/seed.yaml")
        .replace("apiKey:\n        env: PORTAINER_API_KEY", "apiKey: ptr_S3cr3tValue");
    let spec = parse(&source(&text)).unwrap();
    let api_key = &spec.spec.provider.portainer.api_key;
    assert_eq!(api_key.value, SecretRef::Literal { len: 15 });
    assert!(!format!("{api_key:?}").contains("S3cr3t"));
}

const SEED: &str = include_str!("../../../specs/seed.yaml");

/// The parse finding for the seed with one edit, and the text its span covers.
fn refused(from: &str, to: &str) -> (edgeplan_diag::Finding, String) {
    assert!(SEED.contains(from), "edit target not in seed: {from:?}");
    let text = SEED.replacen(from, to, 1);
    let finding = parse(&source(&text)).expect_err("the edit is refused");
    let span = finding.span.expect("a span");
    let at = text[span.start..span.end].to_string();
    (finding, at)
}

#[test]
fn quoted_booleans_and_numbers_are_strings_not_coerced() {
    for (from, to, quoted) in [
        ("acceptanceRequired: true", "acceptanceRequired: \"false\"", "\"false\""),
        ("insecurePoll: false", "insecurePoll: 'true'", "'true'"),
        ("discover: true", "discover: \"yes\"", "\"yes\""),
        ("listenerPort: 8000", "listenerPort: \"8000\"", "\"8000\""),
        ("tunnelPort: auto", "tunnelPort: \"30776\"", "\"30776\""),
        ("        name: prod\n      agent", "        id: \"7\"\n      agent", "\"7\""),
    ] {
        let (finding, at) = refused(from, to);
        assert_eq!(finding.code(), "EP007", "{to}");
        assert_eq!(at, quoted, "{to}: the value, not the key");
        assert!(finding.message.contains("is a quoted string, not a"), "{}", finding.message);
        assert!(finding.help.starts_with("remove the quotes: write "), "{}", finding.help);
    }
}

#[test]
fn unquoted_booleans_and_numbers_still_parse() {
    let text = SEED
        .replacen("acceptanceRequired: true", "acceptanceRequired: false", 1)
        .replacen("tunnelPort: auto", "tunnelPort: 30776", 1)
        .replacen("        name: prod\n      agent", "        id: 7\n        create: false\n      agent", 1);
    let spec = parse(&source(&text)).unwrap_or_else(|f| panic!("{}: {}", f.code(), f.message));
    assert!(!spec.spec.provider.acceptance_required());
    assert_eq!(spec.spec.provider.portainer.tunnel_port(), TunnelPort::Port(30776));
    assert_eq!(spec.spec.consumers[0].environment.id.as_ref().map(|i| i.value), Some(7));
    assert!(!spec.spec.consumers[0].environment.create_if_missing());
    // A quoted string stays a string where a string is expected.
    let text = SEED.replacen("imageTag: 2.39.0", "imageTag: \"2.30\"", 1);
    assert_eq!(parse(&source(&text)).expect("parses").spec.consumers[0].agent.image_tag.value, "2.30");
}

#[test]
fn value_errors_point_at_the_value_in_the_users_terms() {
    for (from, to, value, says) in [
        (
            "tunnelPort: auto",
            "tunnelPort: 0",
            "0",
            "`0` is not a port: tunnelPort is `auto` or a port number from 1 to 65535",
        ),
        ("tunnelPort: auto", "tunnelPort: -5 # comment", "-5", "`-5` is not a port"),
        ("tunnelPort: auto", "tunnelPort: automatic", "automatic", "`automatic` is not a port"),
        ("tunnelPort: auto", "tunnelPort: [1]", "[1]", "here, not a list"),
        ("listenerPort: 8000", "listenerPort: 0", "0", "`0` is not a port number from 1 to 65535"),
        ("insecurePoll: false", "insecurePoll: maybe", "maybe", "`maybe` is not true or false"),
        ("insecurePoll: false", "insecurePoll: 1", "1", "`1` is not true or false"),
    ] {
        let (finding, at) = refused(from, to);
        assert_eq!(at, value, "{to}: {}", finding.message);
        assert!(finding.message.contains(says), "{to}: {}", finding.message);
        assert!(
            !finding.message.contains("invalid value") && !finding.message.contains("invalid type"),
            "{}",
            finding.message
        );
    }
}

#[test]
fn booleans_lists_every_boolean_the_schema_has() {
    // Every boolean property in the schema, by key: `Spec::booleans` must reach each one (lint's
    // EP105 relies on it), so a new boolean field cannot be left out.
    fn boolean_keys(value: &serde_json::Value, found: &mut std::collections::BTreeSet<String>) {
        if let Some(properties) = value.get("properties").and_then(|p| p.as_object()) {
            for (key, property) in properties {
                let types = property.get("type");
                let is_bool = types
                    .is_some_and(|t| t == "boolean" || t.as_array().is_some_and(|a| a.contains(&"boolean".into())));
                if is_bool {
                    found.insert(key.clone());
                }
            }
        }
        match value {
            serde_json::Value::Object(map) => map.values().for_each(|v| boolean_keys(v, found)),
            serde_json::Value::Array(items) => items.iter().for_each(|v| boolean_keys(v, found)),
            _ => {}
        }
    }
    let mut in_schema = std::collections::BTreeSet::new();
    boolean_keys(&edgeplan_spec::json_schema(), &mut in_schema);
    assert!(in_schema.len() >= 4, "{in_schema:?}");

    let text =
        SEED.replacen("        name: prod\n      agent", "        name: prod\n        create: true\n      agent", 1);
    let spec = parse(&source(&text)).expect("parses");
    let listed: std::collections::BTreeSet<String> = spec.booleans().iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(listed, in_schema);
}

#[test]
fn trailing_document_markers_and_cr_line_breaks() {
    for tail in ["---\n", "---", "--- # end\n\n", "...\n---\n"] {
        parse(&source(&format!("{SEED}{tail}"))).unwrap_or_else(|f| panic!("{tail:?}: {} {}", f.code(), f.message));
    }
    let finding = parse(&source(&format!("{SEED}---\nkind: Topology\n"))).expect_err("a second document");
    assert_eq!(finding.code(), "EP001");
    assert!(parse(&source("---\n# nothing\n---\n")).is_err_and(|f| f.code() == "EP003"));

    let cr = SEED.replace('\n', "\r");
    let normalized = edgeplan_spec::normalize_line_breaks(&cr);
    assert_eq!(normalized, SEED);
    parse(&source(&normalized)).expect("a CR-only spec parses once its line breaks are read");
    assert_eq!(edgeplan_spec::normalize_line_breaks("a\r\nb\rc\n"), "a\r\nb\nc\n");
    // Even without normalising, a CR-only file is not "empty" (one long comment line).
    assert!(parse(&source(&cr)).is_ok_and(|spec| spec.spec.consumers.len() == 1));
}
