//! The Kubernetes objects behind the Kubernetes nodes: rendered from resolved attributes, read
//! back into the same attributes, and shaped like the apply requests recorded from a real API
//! server (`testdata/kubernetes-wire/`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{STACK, agent_key_text, node, seed_nodes};
use edgeplan_model::attr::{self, Attr};
use edgeplan_model::manifest::{ObjectMeta, ServiceSpec};
use edgeplan_model::{Address, Compare, LiveObject, Manifest, Node, Ownership, SecretText, Value};
use edgeplan_plan::manifests;
use serde_json::Value as Json;

const AGENT_SECRET: &str = "dummy-agent-secret-for-tests";

/// The agent's attributes as the engine resolves them for an apply.
fn agent_attributes(insecure: bool) -> BTreeMap<Attr, Value> {
    [
        (attr::NAMESPACE, Value::str("portainer")),
        (attr::IMAGE, Value::str("portainer/agent:2.39.0")),
        (attr::AGENT_EDGE_KEY, Value::Secret(SecretText::new(agent_key_text()))),
        (attr::AGENT_EDGE_ID, Value::str(common::EDGE_ID)),
        (attr::EDGE_INSECURE_POLL, Value::Bool(insecure)),
        (attr::AGENT_SECRET, Value::Secret(SecretText::new(AGENT_SECRET))),
        (attr::EXTRA_ENV, Value::from(BTreeMap::from([("HTTPS_PROXY".to_string(), "http://proxy:3128".to_string())]))),
    ]
    .into_iter()
    .collect()
}

fn agent_node() -> Node {
    node(&seed_nodes(), "consumer.prod.agent").clone()
}

fn ownership() -> Ownership {
    Ownership::new(STACK, &Address::consumer("prod", "agent"))
}

/// Every rendered attribute reads back as what was rendered: equal, or for a map the kind
/// compares as a subset (annotations, extra env), with every rendered entry present and equal
/// (the objects carry fixed entries of their own).
fn assert_reads_back(node: &Node, rendered: &BTreeMap<Attr, Value>, live: &LiveObject) {
    for (attribute, value) in rendered {
        let read = live.get(*attribute);
        let compare = node.kind.decl().desired_decl(*attribute).map(|d| d.compare);
        match (compare, value, read) {
            (Some(Compare::Subset), Value::Map(wanted), Some(Value::Map(read))) => {
                for (key, entry) in wanted {
                    assert_eq!(read.get(key), Some(entry), "{attribute}.{key}");
                }
            }
            _ => assert_eq!(read, Some(value), "{attribute}"),
        }
    }
}

fn render_agent(attributes: &BTreeMap<Attr, Value>) -> Vec<Manifest> {
    manifests::render(&agent_node(), attributes, &ownership(), None).expect("the agent renders")
}

#[test]
fn the_agent_renders_seven_objects_and_reads_back_the_same_attributes() {
    let attributes = agent_attributes(false);
    let objects = render_agent(&attributes);
    let kinds: Vec<&str> = objects.iter().map(Manifest::kind).collect();
    assert_eq!(
        kinds,
        ["Namespace", "ServiceAccount", "ClusterRoleBinding", "Service", "ConfigMap", "Secret", "Deployment"]
    );
    // Every object carries the stack's ownership labels; the refs a backend fetches to
    // observe the node are these objects and, read only to diagnose a mismatch, the EDGE_ID
    // ConfigMap Portainer's install script creates.
    for object in &objects {
        assert_eq!(manifests::ownership_of(&object.metadata().labels), Some(ownership()), "{}", object.key());
    }
    let rendered: BTreeSet<_> = objects.iter().map(Manifest::object_ref).collect();
    let fetched: BTreeSet<_> = manifests::object_refs(&agent_node()).into_iter().collect();
    let read_only: Vec<_> = fetched.difference(&rendered).map(|r| (r.kind.as_str(), r.name.as_str())).collect();
    assert!(rendered.is_subset(&fetched));
    assert_eq!(read_only, [("ConfigMap", "portainer-agent-edge-id")]);

    let mut live = LiveObject::new("portainer/portainer-agent");
    live.manifests = objects.clone();
    manifests::read(&agent_node(), &mut live);
    assert_reads_back(&agent_node(), &attributes, &live);
    assert_eq!(live.owner, Some(ownership()));
    let keys: Vec<String> = objects.iter().map(Manifest::key).collect();
    assert_eq!(live.get(attr::OBJECTS).map(Value::strings), Some(keys));

    // The key is a secret value on the way back, never text.
    assert!(matches!(live.get(attr::AGENT_EDGE_KEY), Some(Value::Secret(s)) if s.expose() == agent_key_text()));
    assert!(matches!(live.get(attr::AGENT_SECRET), Some(Value::Secret(_))));
    let everything = format!("{live:?}");
    for secret in [agent_key_text(), AGENT_SECRET.to_string()] {
        assert!(!everything.contains(&secret), "a secret in the debug output of the live object");
        assert!(live.attributes.values().all(|v| v.as_str().is_none_or(|s| !s.contains(&secret))));
    }
    // What can be said about the key without saying it.
    assert_eq!(live.flag(attr::KEY_VALID), Some(true));
    assert_eq!(live.text(attr::KEY_TUNNEL), Some(format!("{}:8000", common::VPCE_DNS).as_str()));

    // Insecure polling round-trips too.
    let insecure = agent_attributes(true);
    let mut live = LiveObject::new("portainer/portainer-agent");
    live.manifests = render_agent(&insecure);
    manifests::read(&agent_node(), &mut live);
    assert_eq!(live.flag(attr::EDGE_INSECURE_POLL), Some(true));
}

#[test]
fn the_secret_text_leaves_only_in_the_apply_body_of_the_secret() {
    let objects = render_agent(&agent_attributes(false));
    for object in &objects {
        let body = object.to_apply_json().to_string();
        let debug = format!("{object:?}");
        assert!(!debug.contains(&agent_key_text()) && !debug.contains(AGENT_SECRET), "{}", object.key());
        if object.kind() == "Secret" {
            let json = object.to_apply_json();
            assert_eq!(json["stringData"]["EDGE_KEY"], Json::String(agent_key_text()));
            assert_eq!(json["stringData"]["AGENT_SECRET"], Json::String(AGENT_SECRET.into()));
            assert!(json.get("data").is_none(), "stringData, as the recorded exchange sends it");
        } else {
            assert!(!body.contains(&agent_key_text()) && !body.contains(AGENT_SECRET), "{}", object.key());
        }
    }
}

#[test]
fn a_new_key_changes_the_pod_template_so_the_agent_restarts() {
    let checksum = |attributes: &BTreeMap<Attr, Value>| {
        render_agent(attributes)
            .into_iter()
            .find_map(|m| match m {
                Manifest::Deployment { spec, .. } => {
                    spec.template.annotations.get(manifests::CONFIG_CHECKSUM_ANNOTATION).cloned()
                }
                _ => None,
            })
            .expect("a config checksum on the pod template")
    };
    let attributes = agent_attributes(false);
    assert_eq!(checksum(&attributes), checksum(&attributes));
    let mut rotated = attributes.clone();
    rotated.insert(attr::AGENT_EDGE_KEY, Value::Secret(SecretText::new(common::edge_key("elsewhere:8000", "3"))));
    assert_ne!(checksum(&attributes), checksum(&rotated));
    let mut other_id = attributes.clone();
    other_id.insert(attr::AGENT_EDGE_ID, Value::str("0e0e0e0e-0000-4000-a000-000000000000"));
    assert_ne!(checksum(&attributes), checksum(&other_id));
    // The checksum is of fingerprints: it does not carry the key either.
    assert!(!checksum(&attributes).contains(&agent_key_text()));
}

#[test]
fn secrets_that_were_not_read_are_never_rendered() {
    let mut attributes = agent_attributes(false);
    attributes.insert(attr::AGENT_SECRET, Value::SecretRef("env:AGENT_SECRET".into()));
    let error = manifests::render(&agent_node(), &attributes, &ownership(), None).unwrap_err();
    assert!(error.contains("env:AGENT_SECRET"), "{error}");
    // A key that is not a secret value is refused too.
    attributes.insert(attr::AGENT_SECRET, Value::Secret(SecretText::new(AGENT_SECRET)));
    attributes.insert(attr::AGENT_EDGE_KEY, Value::str(agent_key_text()));
    let error = manifests::render(&agent_node(), &attributes, &ownership(), None).unwrap_err();
    assert!(!error.contains(&agent_key_text()), "{error}");
    // Without an AGENT_SECRET, there is neither the Secret key nor the env var.
    let mut attributes = agent_attributes(false);
    attributes.remove(&attr::AGENT_SECRET);
    let objects = render_agent(&attributes);
    let secret = objects.iter().find(|m| m.kind() == "Secret").unwrap().to_apply_json();
    assert_eq!(
        secret["stringData"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["EDGE_KEY".into()])
    );
    let deployment = objects.iter().find(|m| m.kind() == "Deployment").unwrap().to_apply_json().to_string();
    assert!(!deployment.contains("AGENT_SECRET"));
}

#[test]
fn a_namespace_that_existed_before_is_left_alone() {
    let foreign = Manifest::Namespace {
        metadata: ObjectMeta { name: "portainer".into(), labels: BTreeMap::new(), ..ObjectMeta::default() },
    };
    let mut live = LiveObject::new("portainer/portainer-agent");
    live.manifests = vec![foreign];
    let objects = manifests::render(&agent_node(), &agent_attributes(false), &ownership(), Some(&live)).unwrap();
    assert_eq!(objects.len(), 6);
    assert!(!objects.iter().any(|m| m.kind() == "Namespace"));
    // Nor deleted with the agent: only what carries this node's ownership goes, dependents first.
    live.manifests.extend(render_agent(&agent_attributes(false)).into_iter().filter(|m| m.kind() != "Namespace"));
    let deleted: Vec<&str> = manifests::deletable(&live, &ownership()).iter().map(Manifest::kind).collect::<Vec<_>>();
    assert_eq!(deleted, ["Deployment", "Secret", "ConfigMap", "Service", "ClusterRoleBinding", "ServiceAccount"]);
    let mine = manifests::deletable(&live, &Ownership::new("other-stack", &Address::consumer("prod", "agent")));
    assert!(mine.is_empty());
}

#[test]
fn the_tunnel_service_round_trips_with_its_subnet_pinned_by_annotation() {
    let nodes = seed_nodes();
    let service = node(&nodes, "provider.tunnel_service");
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), "portainer".to_string())]);
    let annotations =
        BTreeMap::from([("service.beta.kubernetes.io/aws-load-balancer-scheme".to_string(), "internal".to_string())]);
    let attributes: BTreeMap<Attr, Value> = [
        (attr::NAMESPACE, Value::str("portainer")),
        (attr::PORT, Value::Int(8000)),
        (attr::TARGET_PORT, Value::Int(30776)),
        (attr::ANNOTATIONS, Value::from(annotations.clone())),
        (attr::SUBNET_ID, Value::str("subnet-0e1d2c3b4a5960001")),
        (attr::SELECTOR, Value::from(selector)),
    ]
    .into_iter()
    .collect();
    let ownership = Ownership::new(STACK, &service.address);
    let objects = manifests::render(service, &attributes, &ownership, None).expect("renders");
    let [Manifest::Service { metadata, spec: ServiceSpec { service_type, ports, .. }, .. }] = &objects[..] else {
        panic!("one Service: {objects:?}")
    };
    assert_eq!(service_type.as_deref(), Some("LoadBalancer"));
    assert_eq!((ports[0].port, ports[0].target_port), (8000, 30776));
    assert_eq!(
        metadata.annotations.get(edgeplan_model::LBC_SUBNETS_ANNOTATION).map(String::as_str),
        Some("subnet-0e1d2c3b4a5960001")
    );

    let mut live = LiveObject::new("portainer/portainer-edge-tunnel");
    live.manifests = objects;
    manifests::read(service, &mut live);
    assert_reads_back(service, &attributes, &live);
    assert_eq!(live.owner, Some(ownership));

    // Without a selector it would select nothing (or everything): refused.
    let mut no_selector = attributes.clone();
    no_selector.insert(attr::SELECTOR, Value::from(BTreeMap::<String, String>::new()));
    assert!(manifests::render(service, &no_selector, &Ownership::new(STACK, &service.address), None).is_err());
}

#[test]
fn the_restart_only_stamps_the_pod_template() {
    let nodes = seed_nodes();
    let restart = node(&nodes, "provider.portainer_restart");
    let attributes: BTreeMap<Attr, Value> =
        [(attr::NAMESPACE, Value::str("portainer")), (attr::SETTINGS_CHECKSUM, Value::str("sha256:0123456789abcdef"))]
            .into_iter()
            .collect();
    let objects = manifests::render(restart, &attributes, &Ownership::new(STACK, &restart.address), None).unwrap();
    assert_eq!(objects.len(), 1);
    // A partial apply: the fields Helm owns (replicas, selector, containers) are not in it,
    // so edgeplan takes no ownership of them; nor does it label Portainer's Deployment as its own.
    let body = objects[0].to_apply_json();
    assert_eq!(
        body,
        serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "portainer", "namespace": "portainer"},
            "spec": {"template": {"metadata": {"annotations": {manifests::SETTINGS_CHECKSUM_ANNOTATION: "sha256:0123456789abcdef"}}}}
        })
    );
}

#[test]
fn the_tunnel_port_comes_from_the_deployments_args() {
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(manifests::tunnel_port(&args(&["--tunnel-port=30776"])), Ok(30776));
    assert_eq!(manifests::tunnel_port(&args(&["--http-enabled", "--tunnel-port", "30777"])), Ok(30777));
    assert_eq!(manifests::tunnel_port(&args(&["--http-enabled"])), Ok(8000));
    assert!(manifests::tunnel_port(&args(&["--tunnel-port=chisel"])).is_err());
}

// --- the recorded wire shape ------------------------------------------------------------------

/// The recorded apply exchanges (`testdata/kubernetes-wire/`). Missing recordings fail the
/// test: they are what the shape is checked against.
fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/kubernetes-wire")
}

fn recorded_body(prefix: &str) -> Json {
    let dir = wire_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut matches: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    assert_eq!(matches.len(), 1, "one recording {prefix}*.json in {}: {matches:?}", dir.display());
    let path = matches.remove(0);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let exchange: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(exchange["request"]["method"], "PATCH", "{}: an apply", path.display());
    exchange["request"]["body"].clone()
}

/// A JSON value's shape: objects by their keys, arrays element by element, scalars by type.
/// Labels, annotations and label selectors are free-form string maps (their keys are data).
fn shape(value: &Json, key: &str) -> Json {
    match value {
        Json::Object(map)
            if matches!(key, "labels" | "annotations" | "matchLabels" | "selector")
                && map.values().all(Json::is_string) =>
        {
            Json::String("map<string, string>".into())
        }
        Json::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), shape(v, k))).collect()),
        Json::Array(items) => Json::Array(items.iter().map(|v| shape(v, key)).collect()),
        Json::String(_) => Json::String("string".into()),
        Json::Number(_) => Json::String("number".into()),
        Json::Bool(_) => Json::String("bool".into()),
        Json::Null => Json::Null,
    }
}

fn env_names(body: &Json) -> Vec<String> {
    body["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .map(|env| env.iter().filter_map(|e| e["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn rendered_agent_objects_have_the_shape_of_the_recorded_apply_requests() {
    // The recording sets an AGENT_SECRET and insecure polling, and no extra env.
    let mut attributes = agent_attributes(true);
    attributes.remove(&attr::EXTRA_ENV);
    let objects = render_agent(&attributes);
    let recordings = ["009-", "012-", "013-", "014-", "015-", "016-", "017-"];
    assert_eq!(objects.len(), recordings.len());
    for (object, prefix) in objects.iter().zip(recordings) {
        let rendered = object.to_apply_json();
        let recorded = recorded_body(prefix);
        assert_eq!(shape(&rendered, ""), shape(&recorded, ""), "{prefix}: {}", object.key());
        // Not dummy values: which object it is, and where.
        for field in ["apiVersion", "kind"] {
            assert_eq!(rendered[field], recorded[field], "{prefix}: {field}");
        }
        for field in ["name", "namespace"] {
            assert_eq!(rendered["metadata"][field], recorded["metadata"][field], "{prefix}: metadata.{field}");
        }
        // The recorded stack label is there (edgeplan adds the address next to it).
        let labels = |body: &Json| -> BTreeSet<String> {
            body["metadata"]["labels"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
        };
        assert!(labels(&recorded).is_subset(&labels(&rendered)), "{prefix}: {:?}", labels(&rendered));
        // The env vars, in the recorded order, and the keys they read.
        assert_eq!(env_names(&rendered), env_names(&recorded), "{prefix}");
        for field in ["data", "stringData"] {
            let keys = |body: &Json| body[field].as_object().map(|m| m.keys().cloned().collect::<BTreeSet<_>>());
            assert_eq!(keys(&rendered), keys(&recorded), "{prefix}: {field}");
        }
    }
}
