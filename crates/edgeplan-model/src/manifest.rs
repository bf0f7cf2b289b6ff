//! Typed Kubernetes objects: what the engine renders for server-side apply, and what a
//! Kubernetes backend reads back. Only the fields edgeplan manages or reads are modelled;
//! [`Manifest::to_apply_json`] is the exact body of an apply request (`application/apply-patch+yaml`,
//! field manager `edgeplan`), the shape recorded from a real API server in
//! `testdata/kubernetes-wire/`.
//!
//! Secret data is held as [`SecretText`], so a manifest prints only fingerprints; the text
//! leaves only in the apply body, for the backend that sends it.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use crate::value::SecretText;

pub type StringMap = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    pub name: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub labels: StringMap,
    pub annotations: StringMap,
    /// Read back only: managedFields managers.
    pub field_managers: Vec<String>,
    /// Read back only.
    pub generation: Option<i64>,
}

/// Names one object: what a backend fetches, applies or deletes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub target_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSpec {
    /// `ClusterIP`, `NodePort`, `LoadBalancer`; `None` leaves the server's default.
    pub service_type: Option<String>,
    /// `Some("None")` for a headless Service.
    pub cluster_ip: Option<String>,
    pub selector: StringMap,
    pub ports: Vec<ServicePort>,
    pub load_balancer_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    Value(String),
    FieldRef { field_path: String },
    ConfigMapKey { name: String, key: String },
    SecretKey { name: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub source: EnvSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub args: Vec<String>,
    pub ports: Vec<u16>,
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodSpec {
    pub service_account_name: Option<String>,
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodTemplate {
    pub labels: StringMap,
    pub annotations: StringMap,
    /// `None` in a partial apply that only sets template annotations (a restart).
    pub spec: Option<PodSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentStatus {
    pub observed_generation: i64,
    pub replicas: i64,
    pub updated_replicas: i64,
    pub ready_replicas: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentSpec {
    pub replicas: Option<i64>,
    pub selector: Option<StringMap>,
    pub template: PodTemplate,
}

/// One Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Namespace {
        metadata: ObjectMeta,
    },
    ServiceAccount {
        metadata: ObjectMeta,
    },
    ClusterRoleBinding {
        metadata: ObjectMeta,
        cluster_role: String,
        /// `(namespace, service account)` subjects.
        subjects: Vec<(String, String)>,
    },
    Service {
        metadata: ObjectMeta,
        spec: ServiceSpec,
        /// Read back only: `status.loadBalancer.ingress[0].hostname`.
        load_balancer_hostname: Option<String>,
    },
    ConfigMap {
        metadata: ObjectMeta,
        data: StringMap,
    },
    Secret {
        metadata: ObjectMeta,
        data: BTreeMap<String, SecretText>,
    },
    Deployment {
        metadata: ObjectMeta,
        spec: DeploymentSpec,
        /// Read back only.
        status: Option<DeploymentStatus>,
    },
}

impl Manifest {
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Namespace { .. } => "Namespace",
            Manifest::ServiceAccount { .. } => "ServiceAccount",
            Manifest::ClusterRoleBinding { .. } => "ClusterRoleBinding",
            Manifest::Service { .. } => "Service",
            Manifest::ConfigMap { .. } => "ConfigMap",
            Manifest::Secret { .. } => "Secret",
            Manifest::Deployment { .. } => "Deployment",
        }
    }

    pub fn api_version(&self) -> &'static str {
        match self {
            Manifest::ClusterRoleBinding { .. } => "rbac.authorization.k8s.io/v1",
            Manifest::Deployment { .. } => "apps/v1",
            _ => "v1",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Namespace { metadata }
            | Manifest::ServiceAccount { metadata }
            | Manifest::ClusterRoleBinding { metadata, .. }
            | Manifest::Service { metadata, .. }
            | Manifest::ConfigMap { metadata, .. }
            | Manifest::Secret { metadata, .. }
            | Manifest::Deployment { metadata, .. } => metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Manifest::Namespace { metadata }
            | Manifest::ServiceAccount { metadata }
            | Manifest::ClusterRoleBinding { metadata, .. }
            | Manifest::Service { metadata, .. }
            | Manifest::ConfigMap { metadata, .. }
            | Manifest::Secret { metadata, .. }
            | Manifest::Deployment { metadata, .. } => metadata,
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        let metadata = self.metadata();
        ObjectRef::new(self.api_version(), self.kind(), metadata.namespace.as_deref(), &metadata.name)
    }

    /// `Kind/name` or `Kind/namespace/name`: how plans and errors name the object.
    pub fn key(&self) -> String {
        let metadata = self.metadata();
        match &metadata.namespace {
            Some(namespace) => format!("{}/{namespace}/{}", self.kind(), metadata.name),
            None => format!("{}/{}", self.kind(), metadata.name),
        }
    }

    /// The body of a server-side apply request. The only place secret text becomes JSON: it
    /// goes in `stringData`, as the recorded exchanges send it.
    pub fn to_apply_json(&self) -> Json {
        let mut object = Map::new();
        object.insert("apiVersion".into(), json!(self.api_version()));
        object.insert("kind".into(), json!(self.kind()));
        object.insert("metadata".into(), metadata_json(self.metadata()));
        match self {
            Manifest::Namespace { .. } | Manifest::ServiceAccount { .. } => {}
            Manifest::ClusterRoleBinding { cluster_role, subjects, .. } => {
                object.insert(
                    "roleRef".into(),
                    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role}),
                );
                let subjects: Vec<Json> = subjects
                    .iter()
                    .map(|(namespace, name)| json!({"kind": "ServiceAccount", "name": name, "namespace": namespace}))
                    .collect();
                object.insert("subjects".into(), Json::Array(subjects));
            }
            Manifest::Service { spec, .. } => {
                object.insert("spec".into(), service_spec_json(spec));
            }
            Manifest::ConfigMap { data, .. } => {
                object.insert("data".into(), json!(data));
            }
            Manifest::Secret { data, .. } => {
                object.insert("type".into(), json!("Opaque"));
                let text: Map<String, Json> =
                    data.iter().map(|(k, v)| (k.clone(), Json::String(v.expose().to_string()))).collect();
                object.insert("stringData".into(), Json::Object(text));
            }
            Manifest::Deployment { spec, .. } => {
                object.insert("spec".into(), deployment_spec_json(spec));
            }
        }
        Json::Object(object)
    }
}

fn string_map_json(map: &StringMap) -> Json {
    json!(map)
}

fn metadata_json(metadata: &ObjectMeta) -> Json {
    let mut object = Map::new();
    object.insert("name".into(), json!(metadata.name));
    if let Some(namespace) = &metadata.namespace {
        object.insert("namespace".into(), json!(namespace));
    }
    if !metadata.labels.is_empty() {
        object.insert("labels".into(), string_map_json(&metadata.labels));
    }
    if !metadata.annotations.is_empty() {
        object.insert("annotations".into(), string_map_json(&metadata.annotations));
    }
    Json::Object(object)
}

fn service_spec_json(spec: &ServiceSpec) -> Json {
    let mut object = Map::new();
    if let Some(service_type) = &spec.service_type {
        object.insert("type".into(), json!(service_type));
    }
    if let Some(cluster_ip) = &spec.cluster_ip {
        object.insert("clusterIP".into(), json!(cluster_ip));
    }
    if let Some(class) = &spec.load_balancer_class {
        object.insert("loadBalancerClass".into(), json!(class));
    }
    object.insert("selector".into(), string_map_json(&spec.selector));
    let ports: Vec<Json> = spec
        .ports
        .iter()
        .map(|p| json!({"name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": p.protocol}))
        .collect();
    object.insert("ports".into(), Json::Array(ports));
    Json::Object(object)
}

fn env_json(var: &EnvVar) -> Json {
    match &var.source {
        EnvSource::Value(value) => json!({"name": var.name, "value": value}),
        EnvSource::FieldRef { field_path } => {
            json!({"name": var.name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}})
        }
        EnvSource::ConfigMapKey { name, key } => {
            json!({"name": var.name, "valueFrom": {"configMapKeyRef": {"name": name, "key": key}}})
        }
        EnvSource::SecretKey { name, key } => {
            json!({"name": var.name, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
        }
    }
}

fn container_json(container: &Container) -> Json {
    let mut object = Map::new();
    object.insert("name".into(), json!(container.name));
    object.insert("image".into(), json!(container.image));
    if let Some(policy) = &container.image_pull_policy {
        object.insert("imagePullPolicy".into(), json!(policy));
    }
    if !container.args.is_empty() {
        object.insert("args".into(), json!(container.args));
    }
    if !container.ports.is_empty() {
        let ports: Vec<Json> = container.ports.iter().map(|p| json!({"containerPort": p, "protocol": "TCP"})).collect();
        object.insert("ports".into(), Json::Array(ports));
    }
    if !container.env.is_empty() {
        object.insert("env".into(), Json::Array(container.env.iter().map(env_json).collect()));
    }
    Json::Object(object)
}

fn deployment_spec_json(spec: &DeploymentSpec) -> Json {
    let mut object = Map::new();
    if let Some(replicas) = spec.replicas {
        object.insert("replicas".into(), json!(replicas));
    }
    if let Some(selector) = &spec.selector {
        object.insert("selector".into(), json!({"matchLabels": selector}));
    }
    let mut template_metadata = Map::new();
    if !spec.template.labels.is_empty() {
        template_metadata.insert("labels".into(), string_map_json(&spec.template.labels));
    }
    if !spec.template.annotations.is_empty() {
        template_metadata.insert("annotations".into(), string_map_json(&spec.template.annotations));
    }
    let mut template = Map::new();
    template.insert("metadata".into(), Json::Object(template_metadata));
    if let Some(pod) = &spec.template.spec {
        let mut pod_json = Map::new();
        if let Some(account) = &pod.service_account_name {
            pod_json.insert("serviceAccountName".into(), json!(account));
        }
        pod_json.insert("containers".into(), Json::Array(pod.containers.iter().map(container_json).collect()));
        template.insert("spec".into(), Json::Object(pod_json));
    }
    object.insert("template".into(), Json::Object(template));
    Json::Object(object)
}
