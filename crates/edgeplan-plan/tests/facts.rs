//! What the engine derives from raw observations (`facts::derive`), kind by kind.

mod common;

use common::{STACK, VPCE_DNS, base64, edge_key, node, seed_nodes};
use edgeplan_model::attr;
use edgeplan_model::{LiveObject, SecretText, Value};
use edgeplan_plan::facts;

fn derived(address: &str, live: LiveObject) -> LiveObject {
    let nodes = seed_nodes();
    let mut live = live;
    facts::derive(STACK, node(&nodes, address), &mut live);
    live
}

fn environment(edge_id: Option<&str>, key: Option<&str>) -> LiveObject {
    let mut live = LiveObject::new("3").with(attr::NAME, "prod").with(attr::TYPE_ID, 7_i64);
    if let Some(id) = edge_id {
        live.set(attr::EDGE_ID, id);
    }
    if let Some(key) = key {
        live.set(attr::EDGE_KEY, Value::Secret(SecretText::new(key)));
    }
    derived("consumer.prod.environment", live)
}

fn is_uuid_v4_shaped(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && id.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && groups[2].starts_with('4')
        && groups[3].starts_with('a')
}

#[test]
fn an_environment_without_an_edge_id_gets_a_stable_proposed_one() {
    let proposed = environment(Some(""), None).text(attr::AGENT_EDGE_ID).map(str::to_string).expect("proposed");
    assert!(is_uuid_v4_shaped(&proposed), "{proposed}");
    // The same on every run, whether Portainer sends an empty EdgeID or none at all.
    assert_eq!(environment(Some(""), None).text(attr::AGENT_EDGE_ID), Some(proposed.as_str()));
    assert_eq!(environment(None, None).text(attr::AGENT_EDGE_ID), Some(proposed.as_str()));
    assert_eq!(proposed, facts::proposed_edge_id(STACK, "consumer.prod.environment", 3));
    // Another stack, environment or address gets another one.
    assert_ne!(proposed, facts::proposed_edge_id("other-stack", "consumer.prod.environment", 3));
    assert_ne!(proposed, facts::proposed_edge_id(STACK, "consumer.prod.environment", 4));
    assert_ne!(proposed, facts::proposed_edge_id(STACK, "consumer.staging.environment", 3));
    // The raw EdgeID is left as Portainer reported it.
    assert_eq!(environment(Some(""), None).text(attr::EDGE_ID), Some(""));
}

#[test]
fn an_environment_with_an_edge_id_hands_that_one_to_its_agent() {
    let live = environment(Some(common::EDGE_ID), None);
    assert_eq!(live.text(attr::AGENT_EDGE_ID), Some(common::EDGE_ID));
}

#[test]
fn a_padded_key_is_invalid_with_the_agents_own_error() {
    let text = format!("{}|{VPCE_DNS}:8000|{}|3", common::PORTAINER_URL, common::SERVER_FINGERPRINT);
    let (canonical, padded) = (base64(text.as_bytes(), false), base64(text.as_bytes(), true));
    assert_ne!(canonical, padded, "the fixture needs padding");

    let live = environment(Some(common::EDGE_ID), Some(&padded));
    assert_eq!(live.flag(attr::KEY_PRESENT), Some(true));
    assert_eq!(live.flag(attr::KEY_VALID), Some(false));
    assert_eq!(live.flag(attr::KEY_CANONICAL), Some(false));
    let error = format!("illegal base64 data at input byte {}", canonical.len());
    assert_eq!(live.text(attr::KEY_AGENT_ERROR), Some(error.as_str()));
    // Read leniently all the same: what the key says is still known.
    assert_eq!(live.text(attr::KEY_TUNNEL), Some(format!("{VPCE_DNS}:8000").as_str()));
    assert_eq!(live.int(attr::KEY_ENDPOINT_ID), Some(3));
    // The key stays a secret: no derived attribute, and no debug output, holds its text.
    let shown = format!("{live:?}");
    assert!(!shown.contains(&canonical), "{shown}");
    assert!(live.attributes.values().all(|v| v.as_str().is_none_or(|s| !s.contains(&canonical))));
    assert!(matches!(live.get(attr::EDGE_KEY), Some(Value::Secret(_))));

    let live = environment(Some(common::EDGE_ID), Some(&canonical));
    assert_eq!(
        (live.flag(attr::KEY_VALID), live.flag(attr::KEY_CANONICAL), live.get(attr::KEY_AGENT_ERROR)),
        (Some(true), Some(true), Some(&Value::Null))
    );

    let live = environment(Some(common::EDGE_ID), None);
    assert_eq!(live.flag(attr::KEY_PRESENT), Some(false));
    assert_eq!(live.get(attr::KEY_TUNNEL), None);
}

#[test]
fn a_soft_wrapped_key_is_read_but_not_canonical() {
    let key = edge_key(common::PORTAINER_TUNNEL, "3");
    let wrapped = format!("{}\n{}", &key[..40], &key[40..]);
    let live = environment(None, Some(&wrapped));
    assert_eq!(live.flag(attr::KEY_CANONICAL), Some(false));
    assert_eq!(live.text(attr::KEY_TUNNEL), Some(common::PORTAINER_TUNNEL));
}

#[test]
fn portainer_environment_types_are_normalized() {
    let typed = |type_id: i64, last_check_in: i64| {
        let live = LiveObject::new("3").with(attr::TYPE_ID, type_id).with(attr::LAST_CHECK_IN_DATE, last_check_in);
        derived("consumer.prod.environment", live).text(attr::TYPE).map(str::to_string)
    };
    // Created as type 4; the first Kubernetes agent poll makes it 7.
    assert_eq!(typed(4, 0).as_deref(), Some("edge-agent-kubernetes"));
    assert_eq!(typed(7, 1_764_430_000).as_deref(), Some("edge-agent-kubernetes"));
    // Type 4 after a poll: a Docker agent took it.
    assert_eq!(typed(4, 1_764_430_000).as_deref(), Some("edge-agent-docker"));
    assert_eq!(typed(1, 0).as_deref(), Some("docker"));
}

#[test]
fn the_settings_checksum_follows_the_setting() {
    let checksum = |enabled: bool| {
        let live = LiveObject::new("settings").with(attr::ENABLE_EDGE_COMPUTE, enabled);
        derived("provider.edge_compute", live).text(attr::SETTINGS_CHECKSUM).map(str::to_string)
    };
    assert_eq!(checksum(true), checksum(true));
    assert_ne!(checksum(true), checksum(false));
    assert_eq!(checksum(true), Some(facts::settings_checksum(Some(true))));
    assert!(checksum(true).is_some_and(|c| c.starts_with("sha256:") && c.len() == 23));
}

#[test]
fn a_connection_is_accepted_past_pending_acceptance() {
    let accepted = |state: &str| {
        let live = LiveObject::new("vpce-0abc").with(attr::STATE, state);
        derived("consumer.prod.connection_acceptance", live).flag(attr::ACCEPTED)
    };
    for (state, expected) in [
        ("pendingAcceptance", false),
        ("PendingAcceptance", false),
        ("pending", true),
        ("available", true),
        ("Available", true),
        ("rejected", false),
        ("failed", false),
    ] {
        assert_eq!(accepted(state), Some(expected), "{state}");
    }
}

#[test]
fn the_policy_document_and_versions_are_judged() {
    let policy = |document: &str, versions: Vec<&str>, default: &str| {
        let live = LiveObject::new("arn:aws:iam::123456789012:policy/p")
            .with(attr::POLICY_DOCUMENT, document)
            .with(attr::VERSIONS, versions)
            .with(attr::DEFAULT_VERSION, default);
        derived("provider.lb_controller_policy", live)
    };
    let live = policy(common::POLICY, vec!["v1"], "v1");
    assert_eq!(live.get(attr::MISSING_ACTIONS), Some(&Value::List(Vec::new())));
    assert_eq!(
        (live.int(attr::VERSION_COUNT), live.get(attr::OLDEST_NON_DEFAULT_VERSION)),
        (Some(1), Some(&Value::Null))
    );

    let alb_era = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeSubnets","elasticloadbalancing:*"],"Resource":"*"}]}"#;
    let live = policy(alb_era, vec!["v10", "v9", "v2"], "v2");
    let missing = live.get(attr::MISSING_ACTIONS).map(Value::strings).unwrap_or_default();
    assert!(missing.contains(&"ec2:DescribeRouteTables".to_string()), "{missing:?}");
    assert!(!missing.iter().any(|a| a.starts_with("elasticloadbalancing:")), "{missing:?}");
    // Versions are numbered, not sorted as text: v9 is older than v10.
    assert_eq!((live.int(attr::VERSION_COUNT), live.text(attr::OLDEST_NON_DEFAULT_VERSION)), (Some(3), Some("v9")));

    // A document that cannot be read: no guess.
    assert_eq!(policy("not json", vec!["v1"], "v1").get(attr::MISSING_ACTIONS), Some(&Value::Null));
}

#[test]
fn routes_to_an_internet_gateway_make_a_subnet_public() {
    let subnet = |routes: Vec<Value>| {
        derived("provider.nlb_subnet", LiveObject::new("subnet-0a").with(attr::ROUTES, Value::List(routes)))
    };
    let live = subnet(vec![common::route("192.168.0.0/16", "local"), common::route("0.0.0.0/0", "igw-0abc")]);
    assert_eq!(live.flag(attr::ROUTES_TO_IGW), Some(true));
    assert_eq!(live.text(attr::IGW_ROUTE), Some("0.0.0.0/0 → igw-0abc"));
    let live = subnet(vec![common::route("0.0.0.0/0", "nat-0abc")]);
    assert_eq!((live.flag(attr::ROUTES_TO_IGW), live.get(attr::IGW_ROUTE)), (Some(false), Some(&Value::Null)));
    // Outputs are read by their declared names: the ID is one.
    assert_eq!(live.text(attr::ID), Some("subnet-0a"));
}

#[test]
fn the_agents_logs_say_what_state_it_is_in() {
    let agent = |lines: Vec<&str>| {
        let live = LiveObject::new("portainer/portainer-agent").with(attr::LOGS, lines);
        derived("consumer.prod.agent", live)
    };
    let line = r#"unable to associate Edge key | error="illegal base64 data at input byte 227""#;
    let live = agent(vec!["agent running on Kubernetes platform", line]);
    assert_eq!((live.text(attr::AGENT_STATE), live.text(attr::AGENT_MESSAGE)), (Some("key-encoding"), Some(line)));
    let live = agent(vec![line, "client: Connected (Latency 1.1ms)"]);
    assert_eq!(live.text(attr::AGENT_STATE), Some("connected"));
    let live = agent(Vec::new());
    assert_eq!((live.text(attr::AGENT_STATE), live.get(attr::AGENT_MESSAGE)), (Some("no-logs"), Some(&Value::Null)));
}

#[test]
fn the_agent_key_is_portainers_key_pointed_at_the_endpoint() {
    let portainer = SecretText::new(common::portainer_key());
    let key = facts::agent_key(&portainer, VPCE_DNS, 8000).expect("re-pointed");
    let live = environment(None, Some(key.expose()));
    assert_eq!(live.text(attr::KEY_TUNNEL), Some(format!("{VPCE_DNS}:8000").as_str()));
    assert_eq!((live.flag(attr::KEY_CANONICAL), live.int(attr::KEY_ENDPOINT_ID)), (Some(true), Some(3)));
    // Everything else is Portainer's: only field 2 changed.
    let original = environment(None, Some(portainer.expose()));
    assert_eq!(original.int(attr::KEY_ENDPOINT_ID), Some(3));
    assert_ne!(key.fingerprint(), portainer.fingerprint());
    // A padded key is read, and the result is canonical.
    let padded = base64(
        format!("{}|{}|{}|3", common::PORTAINER_URL, common::PORTAINER_TUNNEL, common::SERVER_FINGERPRINT).as_bytes(),
        true,
    );
    assert_eq!(
        facts::agent_key(&SecretText::new(padded), VPCE_DNS, 8000).map(|k| k.fingerprint()),
        Ok(key.fingerprint())
    );
    // Errors never quote the key.
    let error = facts::agent_key(&SecretText::new("not-a-key!"), VPCE_DNS, 8000).unwrap_err();
    assert!(!error.contains("not-a-key!"), "{error}");
    let error = facts::agent_key(&portainer, "bad host", 8000).unwrap_err();
    assert!(!error.contains(portainer.expose()), "{error}");
}
