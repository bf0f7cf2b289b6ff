//! The Kubernetes objects behind the Kubernetes nodes, rendered here once and read back here:
//! a Kubernetes backend applies and fetches them as they are, knowing nothing of Portainer.
//!
//! - The tunnel Service: `type: LoadBalancer` with the LB controller's annotations, selecting
//!   Portainer's pods, forwarding the listener port to the real tunnel port (seed trap 2).
//! - The restart: a partial apply of Portainer's Deployment that stamps the settings checksum
//!   on its pod template, as Helm's `checksum/config` does; a new checksum rolls the pods.
//! - The agent: Portainer's manifest as typed objects (portainer.md §5), the key in a Secret
//!   written through the API (no text templating: seed traps 5 and 6), and a checksum of its
//!   configuration on the pod template so a new key restarts the pods.

use std::collections::BTreeMap;

use edgeplan_model::attr::{self, Attr};
use edgeplan_model::backend::{ADDRESS_TAG, STACK_TAG};
use edgeplan_model::manifest::{
    Container, DeploymentSpec, EnvSource, EnvVar, ObjectMeta, ObjectRef, PodSpec, PodTemplate, ServicePort,
    ServiceSpec, StringMap,
};
use edgeplan_model::{
    LBC_SUBNETS_ANNOTATION, LiveObject, Manifest, Node, NodeKind, Ownership, SecretText, Value, short_sha256,
};

/// The agent objects' names, as Portainer's manifest has them (portainer.md §5).
pub const AGENT_NAME: &str = "portainer-agent";
pub const AGENT_SERVICE_ACCOUNT: &str = "portainer-sa-clusteradmin";
pub const AGENT_BINDING: &str = "portainer-crb-clusteradmin";
pub const AGENT_CONFIG_MAP: &str = "portainer-agent-edge";
pub const AGENT_KEY_SECRET: &str = "portainer-agent-edge-key";
/// Where Portainer's install script puts the EDGE_ID (portainer.md §5): read, so an agent the
/// script installed can be diagnosed, never written.
const INSTALL_SCRIPT_EDGE_ID: &str = "portainer-agent-edge-id";
/// Stamped by the restart on Portainer's pod template.
pub const SETTINGS_CHECKSUM_ANNOTATION: &str = "edgeplan.dev/settings-checksum";
/// On the agent's pod template: a new key or EDGE_ID changes the template, so the pods restart
/// and read it (a Secret change alone restarts nothing).
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "edgeplan.dev/config-checksum";
/// The agent's port list, as Portainer's manifest declares it.
const AGENT_PORTS: [u16; 2] = [9001, 80];
/// The env vars the agent node has attributes of its own for; every other literal is read back
/// into `extra_env` (compared as a subset, so the manifest's fixed ones are no drift).
const ATTRIBUTE_ENV: [&str; 4] = ["EDGE_ID", "EDGE_INSECURE_POLL", "EDGE_KEY", "AGENT_SECRET"];
const TUNNEL_PORT_NAME: &str = "edge";

type Attributes = BTreeMap<Attr, Value>;

fn text(attributes: &Attributes, attr: Attr) -> Option<&str> {
    attributes.get(&attr).and_then(Value::as_str)
}

fn port(attributes: &Attributes, attr: Attr) -> Option<u16> {
    attributes.get(&attr).and_then(Value::as_int).and_then(|n| u16::try_from(n).ok())
}

fn namespace_of(node: &Node) -> String {
    node.literal(attr::NAMESPACE).and_then(Value::as_str).unwrap_or("portainer").to_string()
}

fn name_of(node: &Node) -> String {
    match &node.identity {
        edgeplan_model::Identity::Named { name } => name.clone(),
        _ => AGENT_NAME.to_string(),
    }
}

/// Labels that prove ownership (stack and address).
pub fn ownership_labels(ownership: &Ownership) -> StringMap {
    [(STACK_TAG.to_string(), ownership.stack.clone()), (ADDRESS_TAG.to_string(), ownership.address.to_string())]
        .into_iter()
        .collect()
}

/// Ownership as a set of labels says it.
pub fn ownership_of(labels: &StringMap) -> Option<Ownership> {
    let stack = labels.get(STACK_TAG)?;
    let address = labels.get(ADDRESS_TAG)?;
    Some(Ownership { stack: stack.clone(), address: edgeplan_model::Address::from_text(address) })
}

fn meta(name: &str, namespace: Option<&str>, labels: StringMap) -> ObjectMeta {
    ObjectMeta { name: name.to_string(), namespace: namespace.map(str::to_string), labels, ..ObjectMeta::default() }
}

/// The objects a Kubernetes node consists of: what a backend fetches to observe it.
pub fn object_refs(node: &Node) -> Vec<ObjectRef> {
    let namespace = namespace_of(node);
    let ns = Some(namespace.as_str());
    match node.kind {
        NodeKind::TunnelService => vec![ObjectRef::new("v1", "Service", ns, &name_of(node))],
        NodeKind::PortainerRestart => vec![ObjectRef::new("apps/v1", "Deployment", ns, &name_of(node))],
        NodeKind::AgentObjects => vec![
            ObjectRef::new("v1", "Namespace", None, &namespace),
            ObjectRef::new("v1", "ServiceAccount", ns, AGENT_SERVICE_ACCOUNT),
            ObjectRef::new("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, AGENT_BINDING),
            ObjectRef::new("v1", "Service", ns, AGENT_NAME),
            ObjectRef::new("v1", "ConfigMap", ns, AGENT_CONFIG_MAP),
            ObjectRef::new("v1", "Secret", ns, AGENT_KEY_SECRET),
            ObjectRef::new("apps/v1", "Deployment", ns, AGENT_NAME),
            ObjectRef::new("v1", "ConfigMap", ns, INSTALL_SCRIPT_EDGE_ID),
        ],
        _ => Vec::new(),
    }
}

/// The manifests to apply for a create or update of `node`, from its resolved attributes.
/// `live` is what exists now: a namespace that existed before edgeplan is left alone (applying
/// it would put edgeplan's labels on it, and destroy would then delete everything in it).
pub fn render(
    node: &Node,
    attributes: &Attributes,
    ownership: &Ownership,
    live: Option<&LiveObject>,
) -> Result<Vec<Manifest>, String> {
    match node.kind {
        NodeKind::TunnelService => render_tunnel_service(node, attributes, ownership).map(|m| vec![m]),
        NodeKind::PortainerRestart => render_restart(node, attributes).map(|m| vec![m]),
        NodeKind::AgentObjects => render_agent(node, attributes, ownership, live),
        _ => Ok(Vec::new()),
    }
}

/// What a delete removes: the live objects that carry this node's ownership, dependents first.
pub fn deletable(live: &LiveObject, ownership: &Ownership) -> Vec<Manifest> {
    let order = ["Deployment", "Secret", "ConfigMap", "Service", "ClusterRoleBinding", "ServiceAccount", "Namespace"];
    let mut objects: Vec<Manifest> = live
        .manifests
        .iter()
        .filter(|m| ownership_of(&m.metadata().labels).as_ref() == Some(ownership))
        .cloned()
        .collect();
    objects.sort_by_key(|m| order.iter().position(|k| *k == m.kind()).unwrap_or(order.len()));
    objects
}

fn render_tunnel_service(node: &Node, attributes: &Attributes, ownership: &Ownership) -> Result<Manifest, String> {
    let listener = port(attributes, attr::PORT).ok_or("the listener port is not known")?;
    let target = port(attributes, attr::TARGET_PORT).ok_or("the tunnel port is not known")?;
    let mut annotations = attributes.get(&attr::ANNOTATIONS).map(Value::string_map).unwrap_or_default();
    if let Some(subnet) = text(attributes, attr::SUBNET_ID) {
        annotations.insert(LBC_SUBNETS_ANNOTATION.to_string(), subnet.to_string());
    }
    let selector = attributes.get(&attr::SELECTOR).map(Value::string_map).unwrap_or_default();
    if selector.is_empty() {
        return Err("Portainer's Deployment has no selector to select its pods by".to_string());
    }
    let namespace = namespace_of(node);
    let mut metadata = meta(&name_of(node), Some(&namespace), ownership_labels(ownership));
    metadata.annotations = annotations;
    Ok(Manifest::Service {
        metadata,
        spec: ServiceSpec {
            service_type: Some("LoadBalancer".to_string()),
            cluster_ip: None,
            selector,
            ports: vec![ServicePort {
                name: TUNNEL_PORT_NAME.to_string(),
                port: listener,
                target_port: target,
                protocol: "TCP".to_string(),
            }],
            load_balancer_class: None,
        },
        load_balancer_hostname: None,
    })
}

fn render_restart(node: &Node, attributes: &Attributes) -> Result<Manifest, String> {
    let checksum = text(attributes, attr::SETTINGS_CHECKSUM).ok_or("the settings checksum is not known")?;
    let namespace = namespace_of(node);
    Ok(Manifest::Deployment {
        metadata: meta(&name_of(node), Some(&namespace), StringMap::new()),
        spec: DeploymentSpec {
            replicas: None,
            selector: None,
            template: PodTemplate {
                labels: StringMap::new(),
                annotations: [(SETTINGS_CHECKSUM_ANNOTATION.to_string(), checksum.to_string())].into_iter().collect(),
                spec: None,
            },
        },
        status: None,
    })
}

fn secret_value(attributes: &Attributes, attr: Attr) -> Result<Option<&SecretText>, String> {
    match attributes.get(&attr) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Secret(secret)) => Ok(Some(secret)),
        // A reference that was never read must never reach a cluster as text.
        Some(Value::SecretRef(reference)) => Err(format!("the secret `{reference}` was not read")),
        Some(_) => Err(format!("`{attr}` is not a secret value")),
    }
}

fn render_agent(
    node: &Node,
    attributes: &Attributes,
    ownership: &Ownership,
    live: Option<&LiveObject>,
) -> Result<Vec<Manifest>, String> {
    let namespace = namespace_of(node);
    let ns = Some(namespace.as_str());
    let key = secret_value(attributes, attr::AGENT_EDGE_KEY)?.ok_or("the agent's EDGE_KEY is not known")?;
    let agent_secret = secret_value(attributes, attr::AGENT_SECRET)?;
    let edge_id = text(attributes, attr::AGENT_EDGE_ID).ok_or("the agent's EDGE_ID is not known")?;
    let image = text(attributes, attr::IMAGE).ok_or("the agent image is not known")?;
    let insecure = attributes.get(&attr::EDGE_INSECURE_POLL).and_then(Value::as_bool).unwrap_or(false);
    let extra = attributes.get(&attr::EXTRA_ENV).map(Value::string_map).unwrap_or_default();
    let labels = ownership_labels(ownership);
    let mut app_labels = labels.clone();
    app_labels.insert("app".to_string(), AGENT_NAME.to_string());
    let pod_labels: StringMap = [("app".to_string(), AGENT_NAME.to_string())].into_iter().collect();

    let mut objects = Vec::new();
    let foreign_namespace = live.is_some_and(|l| {
        l.manifests.iter().any(|m| {
            matches!(m, Manifest::Namespace { .. }) && ownership_of(&m.metadata().labels).as_ref() != Some(ownership)
        })
    });
    if !foreign_namespace {
        objects.push(Manifest::Namespace { metadata: meta(&namespace, None, labels.clone()) });
    }
    objects.push(Manifest::ServiceAccount { metadata: meta(AGENT_SERVICE_ACCOUNT, ns, labels.clone()) });
    objects.push(Manifest::ClusterRoleBinding {
        metadata: meta(AGENT_BINDING, None, labels.clone()),
        cluster_role: "cluster-admin".to_string(),
        subjects: vec![(namespace.clone(), AGENT_SERVICE_ACCOUNT.to_string())],
    });
    objects.push(Manifest::Service {
        metadata: meta(AGENT_NAME, ns, labels.clone()),
        spec: ServiceSpec {
            service_type: None,
            cluster_ip: Some("None".to_string()),
            selector: pod_labels.clone(),
            ports: vec![ServicePort {
                name: "http".to_string(),
                port: 80,
                target_port: 80,
                protocol: "TCP".to_string(),
            }],
            load_balancer_class: None,
        },
        load_balancer_hostname: None,
    });
    let config: StringMap = [
        ("EDGE_ID".to_string(), edge_id.to_string()),
        ("EDGE_INSECURE_POLL".to_string(), if insecure { "1" } else { "0" }.to_string()),
    ]
    .into_iter()
    .collect();
    objects.push(Manifest::ConfigMap { metadata: meta(AGENT_CONFIG_MAP, ns, labels.clone()), data: config.clone() });
    let mut secret_data = BTreeMap::new();
    secret_data.insert("EDGE_KEY".to_string(), key.clone());
    if let Some(agent_secret) = agent_secret {
        secret_data.insert("AGENT_SECRET".to_string(), agent_secret.clone());
    }
    objects.push(Manifest::Secret { metadata: meta(AGENT_KEY_SECRET, ns, labels), data: secret_data });

    let literal = |name: &str, value: &str| EnvVar { name: name.to_string(), source: EnvSource::Value(value.into()) };
    let from_config = |name: &str| EnvVar {
        name: name.to_string(),
        source: EnvSource::ConfigMapKey { name: AGENT_CONFIG_MAP.to_string(), key: name.to_string() },
    };
    let from_secret = |name: &str| EnvVar {
        name: name.to_string(),
        source: EnvSource::SecretKey { name: AGENT_KEY_SECRET.to_string(), key: name.to_string() },
    };
    let mut env = vec![
        literal("LOG_LEVEL", "INFO"),
        EnvVar {
            name: "KUBERNETES_POD_IP".to_string(),
            source: EnvSource::FieldRef { field_path: "status.podIP".to_string() },
        },
        literal("EDGE", "1"),
        literal("AGENT_CLUSTER_ADDR", AGENT_NAME),
        from_config("EDGE_ID"),
        from_config("EDGE_INSECURE_POLL"),
        from_secret("EDGE_KEY"),
    ];
    if agent_secret.is_some() {
        env.push(from_secret("AGENT_SECRET"));
    }
    for (name, value) in &extra {
        env.retain(|e| &e.name != name);
        env.push(literal(name, value));
    }
    let checksum = short_sha256(
        serde_json::json!({
            "EDGE_KEY": key.fingerprint(),
            "AGENT_SECRET": agent_secret.map(SecretText::fingerprint),
            "config": config,
        })
        .to_string()
        .as_bytes(),
    );
    objects.push(Manifest::Deployment {
        metadata: meta(AGENT_NAME, ns, app_labels),
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: Some(pod_labels.clone()),
            template: PodTemplate {
                labels: pod_labels,
                annotations: [(CONFIG_CHECKSUM_ANNOTATION.to_string(), checksum)].into_iter().collect(),
                spec: Some(PodSpec {
                    service_account_name: Some(AGENT_SERVICE_ACCOUNT.to_string()),
                    containers: vec![Container {
                        name: AGENT_NAME.to_string(),
                        image: image.to_string(),
                        image_pull_policy: Some("Always".to_string()),
                        args: Vec::new(),
                        ports: AGENT_PORTS.to_vec(),
                        env,
                    }],
                }),
            },
        },
        status: None,
    });
    Ok(objects)
}

// ----- reading back ------------------------------------------------------------------------

fn deployment(
    live: &LiveObject,
) -> Option<(&ObjectMeta, &DeploymentSpec, Option<&edgeplan_model::manifest::DeploymentStatus>)> {
    live.manifests.iter().find_map(|m| match m {
        Manifest::Deployment { metadata, spec, status } => Some((metadata, spec, status.as_ref())),
        _ => None,
    })
}

fn string_list(items: &[String]) -> Value {
    Value::List(items.iter().map(|s| Value::str(s.as_str())).collect())
}

/// Status of a Deployment's rollout, as `kubectl rollout status` judges it.
fn rollout(live: &mut LiveObject) {
    let Some((metadata, spec, status)) = deployment(live) else { return };
    let generation = metadata.generation.unwrap_or(0);
    let wanted = spec.replicas.unwrap_or(1);
    let status = status.cloned().unwrap_or_default();
    let complete = status.observed_generation >= generation
        && status.updated_replicas >= wanted
        && status.ready_replicas >= wanted
        && status.replicas <= status.updated_replicas;
    let managers = string_list(&metadata.field_managers);
    live.set(attr::GENERATION, generation);
    live.set(attr::OBSERVED_GENERATION, status.observed_generation);
    live.set(attr::REPLICAS, status.replicas);
    live.set(attr::UPDATED_REPLICAS, status.updated_replicas);
    live.set(attr::READY_REPLICAS, status.ready_replicas);
    live.set(attr::ROLLOUT_COMPLETE, complete);
    live.set(attr::FIELD_MANAGERS, managers);
}

/// The attributes of a Kubernetes node, read from its live objects.
pub fn read(node: &Node, live: &mut LiveObject) {
    match node.kind {
        NodeKind::TunnelService => read_tunnel_service(node, live),
        NodeKind::PortainerRestart => read_restart(live),
        NodeKind::AgentObjects => read_agent(live),
        _ => {}
    }
}

fn read_tunnel_service(node: &Node, live: &mut LiveObject) {
    let wanted = node.literal(attr::PORT).and_then(Value::as_int);
    let Some((metadata, spec, hostname)) = live.manifests.iter().find_map(|m| match m {
        Manifest::Service { metadata, spec, load_balancer_hostname } => {
            Some((metadata.clone(), spec.clone(), load_balancer_hostname.clone()))
        }
        _ => None,
    }) else {
        return;
    };
    let port = spec.ports.iter().find(|p| Some(i64::from(p.port)) == wanted).or_else(|| spec.ports.first());
    let mut annotations = metadata.annotations.clone();
    let subnet = annotations.remove(LBC_SUBNETS_ANNOTATION);
    live.set(attr::NAMESPACE, metadata.namespace.clone().map_or(Value::Null, Value::Str));
    live.set(attr::PORT, port.map_or(Value::Null, |p| Value::from(p.port)));
    live.set(attr::TARGET_PORT, port.map_or(Value::Null, |p| Value::from(p.target_port)));
    live.set(attr::ANNOTATIONS, annotations);
    live.set(attr::SUBNET_ID, subnet.map_or(Value::Null, Value::Str));
    live.set(attr::SELECTOR, spec.selector.clone());
    live.set(attr::TYPE, spec.service_type.clone().map_or(Value::Null, Value::Str));
    live.set(attr::LOAD_BALANCER_CLASS, spec.load_balancer_class.clone().map_or(Value::Null, Value::Str));
    live.set(attr::LOAD_BALANCER_HOSTNAME, hostname.map_or(Value::Null, Value::Str));
    live.set(attr::FIELD_MANAGERS, string_list(&metadata.field_managers));
    live.owner = ownership_of(&metadata.labels);
}

/// The chisel port: `--tunnel-port=N` (or `--tunnel-port N`) in the container args, else
/// Portainer's default 8000 (portainer.md §3).
pub fn tunnel_port(args: &[String]) -> Result<u16, String> {
    const DEFAULT: u16 = 8000;
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        let value = if let Some(v) = arg.strip_prefix("--tunnel-port=") {
            Some(v.to_string())
        } else if arg == "--tunnel-port" {
            args.get(i + 1).cloned()
        } else {
            None
        };
        if let Some(v) = value {
            found = Some(v.parse::<u16>().map_err(|_| format!("--tunnel-port `{v}` is not a port"))?);
        }
    }
    Ok(found.unwrap_or(DEFAULT))
}

fn read_restart(live: &mut LiveObject) {
    let Some((metadata, spec, _)) = deployment(live) else { return };
    let (metadata, spec) = (metadata.clone(), spec.clone());
    let args: Vec<String> =
        spec.template.spec.as_ref().and_then(|p| p.containers.first()).map(|c| c.args.clone()).unwrap_or_default();
    live.set(attr::NAMESPACE, metadata.namespace.clone().map_or(Value::Null, Value::Str));
    live.set(attr::ARGS, string_list(&args));
    match tunnel_port(&args) {
        Ok(port) => live.set(attr::TUNNEL_PORT, port),
        Err(_) => live.set(attr::TUNNEL_PORT, Value::Null),
    }
    live.set(attr::SELECTOR, spec.selector.clone().unwrap_or_default());
    live.set(
        attr::SETTINGS_CHECKSUM,
        spec.template.annotations.get(SETTINGS_CHECKSUM_ANNOTATION).cloned().map_or(Value::Null, Value::Str),
    );
    rollout(live);
}

fn read_agent(live: &mut LiveObject) {
    let objects: Vec<String> = live.manifests.iter().map(Manifest::key).collect();
    live.set(attr::OBJECTS, string_list(&objects));
    // Env sources resolve against whichever ConfigMap or Secret they name (ours, or the
    // install script's).
    let config_maps: BTreeMap<String, StringMap> = live
        .manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::ConfigMap { metadata, data } => Some((metadata.name.clone(), data.clone())),
            _ => None,
        })
        .collect();
    let secrets: BTreeMap<String, BTreeMap<String, SecretText>> = live
        .manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::Secret { metadata, data } => Some((metadata.name.clone(), data.clone())),
            _ => None,
        })
        .collect();
    let Some((metadata, spec, _)) = deployment(live) else { return };
    let (metadata, spec) = (metadata.clone(), spec.clone());
    let container = spec.template.spec.as_ref().and_then(|p| p.containers.first()).cloned().unwrap_or_default();
    // An env var's value wherever it comes from: literal, ConfigMap or Secret.
    let value_of = |name: &str| -> Value {
        match container.env.iter().find(|e| e.name == name).map(|e| &e.source) {
            Some(EnvSource::Value(v)) => Value::str(v.as_str()),
            Some(EnvSource::ConfigMapKey { name, key }) => {
                config_maps.get(name).and_then(|c| c.get(key)).map_or(Value::Null, |v| Value::str(v.as_str()))
            }
            Some(EnvSource::SecretKey { name, key }) => {
                secrets.get(name).and_then(|s| s.get(key)).map_or(Value::Null, |s| Value::Secret(s.clone()))
            }
            Some(EnvSource::FieldRef { .. }) | None => Value::Null,
        }
    };
    let insecure = matches!(value_of("EDGE_INSECURE_POLL").as_str(), Some("1" | "true" | "TRUE" | "True"));
    let extra: StringMap = container
        .env
        .iter()
        .filter(|e| !ATTRIBUTE_ENV.contains(&e.name.as_str()))
        .filter_map(|e| match &e.source {
            EnvSource::Value(v) => Some((e.name.clone(), v.clone())),
            _ => None,
        })
        .collect();
    // A key or secret set as a literal env var (`kubectl set env`) is still a secret.
    let secret = |value: Value| match value {
        Value::Str(text) => Value::Secret(SecretText::new(text)),
        other => other,
    };
    let key = secret(value_of("EDGE_KEY"));
    live.set(attr::NAMESPACE, metadata.namespace.clone().map_or(Value::Null, Value::Str));
    live.set(attr::IMAGE, Value::str(container.image.as_str()));
    live.set(attr::AGENT_EDGE_ID, value_of("EDGE_ID"));
    live.set(attr::EDGE_INSECURE_POLL, insecure);
    live.set(attr::AGENT_SECRET, secret(value_of("AGENT_SECRET")));
    live.set(attr::EXTRA_ENV, extra);
    crate::facts::describe_key(live, key.as_secret().map(SecretText::expose));
    live.set(attr::AGENT_EDGE_KEY, key);
    live.owner = ownership_of(&metadata.labels);
    rollout(live);
}
