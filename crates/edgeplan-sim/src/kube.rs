//! The simulated Kubernetes backend: one kube context. It fetches, applies and deletes the
//! objects the engine names and renders, as an API server with server-side apply does: fields
//! edgeplan applies are set, others' fields are kept, the `edgeplan` field manager is
//! recorded, and a changed pod template rolls a Deployment. It also keeps the stack's Lease
//! and inventory, with optimistic concurrency.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplan_model::attr;
use edgeplan_model::backend::{ADDRESS_TAG, FIELD_MANAGER, STACK_TAG};
use edgeplan_model::manifest::{
    Container as ManifestContainer, DeploymentSpec, DeploymentStatus, EnvSource as ManifestEnv,
    EnvVar as ManifestEnvVar, ObjectMeta, ObjectRef, PodSpec, PodTemplate, ServicePort as ManifestPort, ServiceSpec,
};
use edgeplan_model::{
    Action, Address, Backend, BackendError, BoxFuture, LeaseRecord, LeaseStore, LiveObject, Manifest, NodeKind,
    Observed, Operation, OwnedObject, Ownership, Request, Scope, SecretText, Value,
};

use crate::store::{INVENTORY_LABEL, SimWorld};
use crate::world::{
    Container, Deployment, EnvSource, EnvVar, KeyValueObject, KubeCluster, KubeObject, Lease, Service, ServicePort,
    Tags, TransitionKind, World,
};

type Outcome = Result<Observed, BackendError>;

/// One kube context of the simulated world.
pub(crate) struct SimKube {
    pub(crate) world: Arc<SimWorld>,
    pub(crate) scope: Scope,
    pub(crate) context: String,
}

fn not_found(kind: &str, name: &str) -> BackendError {
    BackendError::not_found(format!("{}s \"{name}\" not found", kind.to_ascii_lowercase()))
}

fn unreachable(context: &str) -> BackendError {
    BackendError::Transport {
        message: format!("the simulated world has no kube context `{context}`"),
        retryable: false,
    }
}

fn ownership_of(labels: &Tags) -> Option<Ownership> {
    Some(Ownership { stack: labels.get(STACK_TAG)?.clone(), address: Address::from_text(labels.get(ADDRESS_TAG)?) })
}

fn add_manager(managers: &mut Vec<String>) {
    if !managers.iter().any(|m| m == FIELD_MANAGER) {
        managers.push(FIELD_MANAGER.to_string());
    }
}

impl SimKube {
    fn cluster<'w>(&self, world: &'w World) -> Result<&'w KubeCluster, BackendError> {
        world.cluster(&self.context).ok_or_else(|| unreachable(&self.context))
    }

    fn cluster_mut<'w>(&self, world: &'w mut World) -> Result<&'w mut KubeCluster, BackendError> {
        world.cluster_mut(&self.context).ok_or_else(|| unreachable(&self.context))
    }
}

impl Backend for SimKube {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn observe<'a>(&'a self, _stack: &'a str, requests: &'a [Request<'a>]) -> BoxFuture<'a, Vec<Outcome>> {
        let outcomes = self
            .world
            .read(|world| {
                requests
                    .iter()
                    .map(|r| {
                        let cluster = self.cluster(world)?;
                        Ok(observe(cluster, r.node.kind, &r.objects))
                    })
                    .collect()
            })
            .unwrap_or_else(|error| vec![Err(error); requests.len()]);
        Box::pin(std::future::ready(outcomes))
    }

    fn execute<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Outcome> {
        let refs: Vec<ObjectRef> = op.manifests.iter().map(Manifest::object_ref).collect();
        let result = self
            .world
            .write(|world| -> Result<(), BackendError> {
                match op.action {
                    Action::NoOp | Action::Read => Ok(()),
                    Action::Delete => {
                        let cluster = self.cluster_mut(world)?;
                        for manifest in &op.manifests {
                            delete(cluster, &manifest.object_ref());
                        }
                        Ok(())
                    }
                    Action::Create | Action::Update | Action::Replace => {
                        let context = self.context.clone();
                        for manifest in &op.manifests {
                            if apply(world, &context, manifest)? {
                                let metadata = manifest.metadata();
                                let namespace = metadata.namespace.clone().unwrap_or_default();
                                world.schedule(
                                    TransitionKind::RolloutComplete,
                                    &format!("{context}/{namespace}/{}", metadata.name),
                                );
                            }
                        }
                        Ok(())
                    }
                }
            })
            .and_then(|r| r)
            .and_then(|()| match op.action {
                Action::Delete => Ok(Observed::Absent),
                _ => self.world.read(|world| Ok(observe(self.cluster(world)?, op.kind, &refs))).and_then(|r| r),
            });
        Box::pin(std::future::ready(result))
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        let result = self
            .world
            .read(|world| {
                let cluster = self.cluster(world)?;
                // One LIST per kind with the stack's label selector; grouped by address.
                let mut by_address: BTreeMap<Address, Vec<Manifest>> = BTreeMap::new();
                for manifest in all_manifests(cluster) {
                    if let Some(ownership) = ownership_of(&manifest.metadata().labels).filter(|o| o.stack == stack) {
                        by_address.entry(ownership.address).or_default().push(manifest);
                    }
                }
                Ok(by_address
                    .into_iter()
                    .filter_map(|(address, manifests)| {
                        let kind = address.kind()?;
                        let mut object = LiveObject::new(primary_id(&manifests));
                        object.owner = Some(Ownership::new(stack, &address));
                        object.manifests = manifests;
                        Some(OwnedObject { kind, address: Some(address), object })
                    })
                    .collect())
            })
            .and_then(|r| r);
        Box::pin(std::future::ready(result))
    }

    fn leases(&self) -> Option<&dyn LeaseStore> {
        Some(self)
    }
}

/// `namespace/name` of the Deployment or Service among them, else of the first object.
fn primary_id(manifests: &[Manifest]) -> String {
    let primary = manifests
        .iter()
        .find(|m| matches!(m, Manifest::Deployment { .. }))
        .or_else(|| manifests.iter().find(|m| matches!(m, Manifest::Service { .. })))
        .or(manifests.first());
    primary.map_or_else(String::new, |m| {
        let metadata = m.metadata();
        match &metadata.namespace {
            Some(namespace) => format!("{namespace}/{}", metadata.name),
            None => metadata.name.clone(),
        }
    })
}

fn observe(cluster: &KubeCluster, kind: NodeKind, refs: &[ObjectRef]) -> Observed {
    let manifests: Vec<Manifest> = refs.iter().filter_map(|r| get(cluster, r)).collect();
    if manifests.is_empty() {
        return Observed::Absent;
    }
    let mut live = LiveObject::new(primary_id(&manifests));
    let primary = manifests
        .iter()
        .find(|m| matches!(m, Manifest::Deployment { .. } | Manifest::Service { .. }))
        .or(manifests.first());
    live.owner = primary.and_then(|m| ownership_of(&m.metadata().labels));
    match kind {
        NodeKind::TunnelService => {
            if let Some(r) = refs.first() {
                let object = format!("Service/{}", r.name);
                let namespace = r.namespace.clone().unwrap_or_default();
                let last = cluster.events.iter().rev().find(|e| e.namespace == namespace && e.object == object);
                live.set(attr::CONTROLLER_EVENT_REASON, last.map_or(Value::Null, |e| Value::str(e.reason.as_str())));
                live.set(attr::CONTROLLER_EVENT, last.map_or(Value::Null, |e| Value::str(e.message.as_str())));
            }
        }
        NodeKind::AgentObjects => {
            // The newest pod's recent log lines.
            let logs = refs
                .iter()
                .filter(|r| r.kind == "Deployment")
                .filter_map(|r| find_deployment(cluster, r))
                .flat_map(|d| d.logs.iter())
                .map(|l| Value::str(l.as_str()))
                .collect();
            live.set(attr::LOGS, Value::List(logs));
        }
        _ => {}
    }
    live.manifests = manifests;
    Observed::Present(live)
}

fn namespace_of(r: &ObjectRef) -> &str {
    r.namespace.as_deref().unwrap_or_default()
}

fn find_deployment<'c>(cluster: &'c KubeCluster, r: &ObjectRef) -> Option<&'c Deployment> {
    cluster.deployments.iter().find(|d| d.namespace == namespace_of(r) && d.name == r.name)
}

fn meta(namespace: Option<&str>, name: &str, labels: &Tags, annotations: &Tags, managers: &[String]) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
        labels: labels.clone(),
        annotations: annotations.clone(),
        field_managers: managers.to_vec(),
        generation: None,
    }
}

fn service_manifest(service: &Service) -> Manifest {
    let headless =
        service.service_type == "ClusterIP" && service.ports.iter().all(|p| p.node_port.is_none()) && service.headless;
    Manifest::Service {
        metadata: meta(
            Some(&service.namespace),
            &service.name,
            &service.labels,
            &service.annotations,
            &service.field_managers,
        ),
        spec: ServiceSpec {
            service_type: Some(service.service_type.clone()),
            cluster_ip: headless.then(|| "None".to_string()),
            selector: service.selector.clone(),
            ports: service
                .ports
                .iter()
                .map(|p| ManifestPort {
                    name: p.name.clone(),
                    port: p.port,
                    target_port: p.target_port,
                    protocol: p.protocol.clone(),
                })
                .collect(),
            load_balancer_class: service.load_balancer_class.clone(),
        },
        load_balancer_hostname: service.status_hostname.clone(),
    }
}

fn env_manifest(var: &EnvVar) -> ManifestEnvVar {
    let source = match (&var.value, &var.value_from) {
        (_, Some(from)) if from.kind == "secret" => {
            ManifestEnv::SecretKey { name: from.name.clone(), key: from.key.clone() }
        }
        (_, Some(from)) if from.kind == "config_map" => {
            ManifestEnv::ConfigMapKey { name: from.name.clone(), key: from.key.clone() }
        }
        (_, Some(from)) => ManifestEnv::FieldRef { field_path: from.key.clone() },
        (Some(value), None) => ManifestEnv::Value(value.clone()),
        (None, None) => ManifestEnv::Value(String::new()),
    };
    ManifestEnvVar { name: var.name.clone(), source }
}

fn deployment_manifest(deployment: &Deployment) -> Manifest {
    let mut metadata = meta(
        Some(&deployment.namespace),
        &deployment.name,
        &deployment.labels,
        &deployment.annotations,
        &deployment.field_managers,
    );
    metadata.generation = Some(i64::try_from(deployment.generation).unwrap_or(i64::MAX));
    let replicas = i64::from(deployment.replicas);
    let rolled = deployment.ready_generation >= deployment.generation;
    let containers = deployment
        .containers
        .iter()
        .map(|c| ManifestContainer {
            name: c.name.clone(),
            image: c.image.clone(),
            image_pull_policy: None,
            args: c.args.clone(),
            ports: c.ports.clone(),
            env: c.env.iter().map(env_manifest).collect(),
        })
        .collect();
    Manifest::Deployment {
        metadata,
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: Some(deployment.pod_labels.clone()),
            template: PodTemplate {
                labels: deployment.pod_labels.clone(),
                annotations: deployment.template_annotations.clone(),
                spec: Some(PodSpec { service_account_name: None, containers }),
            },
        },
        status: Some(DeploymentStatus {
            // The deployment controller observes a new generation at once; pods take the
            // rollout's modelled time to be ready.
            observed_generation: i64::try_from(deployment.generation).unwrap_or(i64::MAX),
            replicas,
            updated_replicas: if rolled { replicas } else { 0 },
            ready_replicas: if rolled { replicas } else { 0 },
        }),
    }
}

fn get(cluster: &KubeCluster, r: &ObjectRef) -> Option<Manifest> {
    let namespace = namespace_of(r);
    let object = |kind: &str, namespace: &str| {
        cluster.objects.iter().find(|o| o.kind == kind && o.namespace == namespace && o.name == r.name)
    };
    match r.kind.as_str() {
        "Namespace" => cluster.namespaces.contains(&r.name).then(|| {
            let found = object("Namespace", "");
            let empty = (Tags::new(), Vec::new());
            let (labels, managers) = found.map_or(empty, |o| (o.labels.clone(), o.field_managers.clone()));
            Manifest::Namespace { metadata: meta(None, &r.name, &labels, &Tags::new(), &managers) }
        }),
        "ServiceAccount" => object("ServiceAccount", namespace).map(|o| Manifest::ServiceAccount {
            metadata: meta(Some(namespace), &o.name, &o.labels, &Tags::new(), &o.field_managers),
        }),
        "ClusterRoleBinding" => object("ClusterRoleBinding", "").map(|o| Manifest::ClusterRoleBinding {
            metadata: meta(None, &o.name, &o.labels, &Tags::new(), &o.field_managers),
            cluster_role: o.role.clone().unwrap_or_default(),
            subjects: o
                .subjects
                .iter()
                .filter_map(|s| s.split_once('/').map(|(n, a)| (n.to_string(), a.to_string())))
                .collect(),
        }),
        "Service" => {
            cluster.services.iter().find(|s| s.namespace == namespace && s.name == r.name).map(service_manifest)
        }
        "ConfigMap" => cluster.config_maps.iter().find(|o| o.namespace == namespace && o.name == r.name).map(|o| {
            Manifest::ConfigMap {
                metadata: meta(Some(namespace), &o.name, &o.labels, &Tags::new(), &o.field_managers),
                data: o.data.clone(),
            }
        }),
        "Secret" => {
            cluster.secrets.iter().find(|o| o.namespace == namespace && o.name == r.name).map(|o| Manifest::Secret {
                metadata: meta(Some(namespace), &o.name, &o.labels, &Tags::new(), &o.field_managers),
                data: o.data.iter().map(|(k, v)| (k.clone(), SecretText::new(v.as_str()))).collect(),
            })
        }
        "Deployment" => find_deployment(cluster, r).map(deployment_manifest),
        _ => None,
    }
}

/// Every object a LIST per kind returns, as manifests.
fn all_manifests(cluster: &KubeCluster) -> Vec<Manifest> {
    let mut refs: Vec<ObjectRef> = Vec::new();
    refs.extend(cluster.objects.iter().map(|o| ObjectRef::new("v1", &o.kind, Some(o.namespace.as_str()), &o.name)));
    refs.extend(cluster.services.iter().map(|s| ObjectRef::new("v1", "Service", Some(&s.namespace), &s.name)));
    refs.extend(cluster.config_maps.iter().map(|o| ObjectRef::new("v1", "ConfigMap", Some(&o.namespace), &o.name)));
    refs.extend(cluster.secrets.iter().map(|o| ObjectRef::new("v1", "Secret", Some(&o.namespace), &o.name)));
    refs.extend(
        cluster.deployments.iter().map(|d| ObjectRef::new("apps/v1", "Deployment", Some(&d.namespace), &d.name)),
    );
    refs.iter().filter_map(|r| get(cluster, r)).collect()
}

fn upsert_object(list: &mut Vec<KubeObject>, kind: &str, namespace: &str, metadata: &ObjectMeta) -> usize {
    match list.iter().position(|o| o.kind == kind && o.namespace == namespace && o.name == metadata.name) {
        Some(index) => {
            let object = &mut list[index];
            object.labels.extend(metadata.labels.clone());
            add_manager(&mut object.field_managers);
            index
        }
        None => {
            list.push(KubeObject {
                kind: kind.to_string(),
                namespace: namespace.to_string(),
                name: metadata.name.clone(),
                labels: metadata.labels.clone(),
                field_managers: vec![FIELD_MANAGER.to_string()],
                role: None,
                subjects: Vec::new(),
            });
            list.len() - 1
        }
    }
}

fn upsert_kv(list: &mut Vec<KeyValueObject>, namespace: &str, metadata: &ObjectMeta, data: BTreeMap<String, String>) {
    match list.iter_mut().find(|o| o.namespace == namespace && o.name == metadata.name) {
        Some(object) => {
            object.labels.extend(metadata.labels.clone());
            // Server-side apply sets the keys edgeplan applies and keeps others' keys.
            object.data.extend(data);
            add_manager(&mut object.field_managers);
        }
        None => list.push(KeyValueObject {
            namespace: namespace.to_string(),
            name: metadata.name.clone(),
            labels: metadata.labels.clone(),
            field_managers: vec![FIELD_MANAGER.to_string()],
            data,
        }),
    }
}

fn env_world(var: &ManifestEnvVar) -> EnvVar {
    let from = |kind: &str, name: &str, key: &str| EnvSource {
        kind: kind.to_string(),
        name: name.to_string(),
        key: key.to_string(),
    };
    match &var.source {
        ManifestEnv::Value(value) => EnvVar { name: var.name.clone(), value: Some(value.clone()), value_from: None },
        ManifestEnv::FieldRef { field_path } => {
            EnvVar { name: var.name.clone(), value: None, value_from: Some(from("field", "", field_path)) }
        }
        ManifestEnv::ConfigMapKey { name, key } => {
            EnvVar { name: var.name.clone(), value: None, value_from: Some(from("config_map", name, key)) }
        }
        ManifestEnv::SecretKey { name, key } => {
            EnvVar { name: var.name.clone(), value: None, value_from: Some(from("secret", name, key)) }
        }
    }
}

/// Server-side apply of one object. Returns whether a Deployment's pod template changed (its
/// pods roll).
fn apply(world: &mut World, context: &str, manifest: &Manifest) -> Result<bool, BackendError> {
    let cluster = world.cluster_mut(context).ok_or_else(|| unreachable(context))?;
    let metadata = manifest.metadata();
    let namespace = metadata.namespace.clone().unwrap_or_default();
    if metadata.namespace.is_some() && !cluster.namespaces.contains(&namespace) {
        return Err(not_found("Namespace", &namespace));
    }
    match manifest {
        Manifest::Namespace { .. } => {
            if !cluster.namespaces.contains(&metadata.name) {
                cluster.namespaces.push(metadata.name.clone());
            }
            upsert_object(&mut cluster.objects, "Namespace", "", metadata);
        }
        Manifest::ServiceAccount { .. } => {
            upsert_object(&mut cluster.objects, "ServiceAccount", &namespace, metadata);
        }
        Manifest::ClusterRoleBinding { cluster_role, subjects, .. } => {
            let index = upsert_object(&mut cluster.objects, "ClusterRoleBinding", "", metadata);
            let object = &mut cluster.objects[index];
            if object.role.as_ref().is_some_and(|r| r != cluster_role) {
                return Err(BackendError::invalid(
                    "Invalid",
                    format!(
                        "ClusterRoleBinding.rbac.authorization.k8s.io \"{}\" is invalid: roleRef: Invalid value: cannot change roleRef",
                        metadata.name
                    ),
                ));
            }
            object.role = Some(cluster_role.clone());
            object.subjects = subjects.iter().map(|(n, a)| format!("{n}/{a}")).collect();
        }
        Manifest::Service { spec, .. } => {
            let ports: Vec<ServicePort> = spec
                .ports
                .iter()
                .map(|p| ServicePort {
                    name: p.name.clone(),
                    port: p.port,
                    target_port: p.target_port,
                    protocol: p.protocol.clone(),
                    node_port: None,
                })
                .collect();
            let service_type = spec.service_type.clone().unwrap_or_else(|| "ClusterIP".to_string());
            let headless = spec.cluster_ip.as_deref() == Some("None");
            match cluster.services.iter_mut().find(|s| s.namespace == namespace && s.name == metadata.name) {
                Some(service) => {
                    service.service_type = service_type;
                    service.ports = ports;
                    service.selector = spec.selector.clone();
                    service.annotations.extend(metadata.annotations.clone());
                    service.labels.extend(metadata.labels.clone());
                    service.headless = headless;
                    add_manager(&mut service.field_managers);
                }
                None => cluster.services.push(Service {
                    namespace: namespace.clone(),
                    name: metadata.name.clone(),
                    service_type,
                    labels: metadata.labels.clone(),
                    annotations: metadata.annotations.clone(),
                    field_managers: vec![FIELD_MANAGER.to_string()],
                    selector: spec.selector.clone(),
                    ports,
                    load_balancer_class: spec.load_balancer_class.clone(),
                    status_hostname: None,
                    headless,
                }),
            }
        }
        Manifest::ConfigMap { data, .. } => upsert_kv(&mut cluster.config_maps, &namespace, metadata, data.clone()),
        Manifest::Secret { data, .. } => {
            let data = data.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
            upsert_kv(&mut cluster.secrets, &namespace, metadata, data);
        }
        Manifest::Deployment { spec, .. } => return apply_deployment(cluster, &namespace, metadata, spec),
    }
    if let Manifest::Service { .. } = manifest {
        world.service_changed(context, &namespace, &metadata.name);
    }
    Ok(false)
}

fn apply_deployment(
    cluster: &mut KubeCluster,
    namespace: &str,
    metadata: &ObjectMeta,
    spec: &DeploymentSpec,
) -> Result<bool, BackendError> {
    let containers: Option<Vec<Container>> = spec.template.spec.as_ref().map(|pod| {
        pod.containers
            .iter()
            .map(|c| Container {
                name: c.name.clone(),
                image: c.image.clone(),
                args: c.args.clone(),
                env: c.env.iter().map(env_world).collect(),
                ports: c.ports.clone(),
            })
            .collect()
    });
    let Some(deployment) = cluster.deployments.iter_mut().find(|d| d.namespace == namespace && d.name == metadata.name)
    else {
        let Some(containers) = containers.filter(|c| !c.is_empty()) else {
            return Err(BackendError::invalid(
                "Invalid",
                format!(
                    "Deployment.apps \"{}\" is invalid: spec.template.spec.containers: Required value",
                    metadata.name
                ),
            ));
        };
        cluster.deployments.push(Deployment {
            namespace: namespace.to_string(),
            name: metadata.name.clone(),
            labels: metadata.labels.clone(),
            annotations: metadata.annotations.clone(),
            field_managers: vec![FIELD_MANAGER.to_string()],
            pod_labels: spec.template.labels.clone(),
            template_annotations: spec.template.annotations.clone(),
            logs: Vec::new(),
            replicas: u32::try_from(spec.replicas.unwrap_or(1)).unwrap_or(1),
            generation: 1,
            ready_generation: 0,
            containers,
            agent_status: None,
        });
        return Ok(true);
    };
    if let Some(selector) = &spec.selector
        && !deployment.pod_labels.is_empty()
        && selector.iter().any(|(k, v)| deployment.pod_labels.get(k) != Some(v))
    {
        return Err(BackendError::invalid(
            "Invalid",
            format!(
                "Deployment.apps \"{}\" is invalid: spec.selector: Invalid value: field is immutable",
                metadata.name
            ),
        ));
    }
    let before =
        (deployment.containers.clone(), deployment.template_annotations.clone(), deployment.pod_labels.clone());
    if let Some(containers) = containers {
        deployment.containers = containers;
    }
    deployment.template_annotations.extend(spec.template.annotations.clone());
    deployment.pod_labels.extend(spec.template.labels.clone());
    deployment.labels.extend(metadata.labels.clone());
    deployment.annotations.extend(metadata.annotations.clone());
    if let Some(replicas) = spec.replicas {
        deployment.replicas = u32::try_from(replicas).unwrap_or(1);
    }
    add_manager(&mut deployment.field_managers);
    let changed = before
        != (deployment.containers.clone(), deployment.template_annotations.clone(), deployment.pod_labels.clone());
    if changed {
        deployment.generation = deployment.generation.saturating_add(1);
    }
    Ok(changed)
}

fn delete(cluster: &mut KubeCluster, r: &ObjectRef) {
    let namespace = namespace_of(r).to_string();
    match r.kind.as_str() {
        "Namespace" => {
            // Deleting a namespace deletes what is in it, as Kubernetes does.
            let name = r.name.clone();
            cluster.namespaces.retain(|n| *n != name);
            cluster.objects.retain(|o| !(o.kind == "Namespace" && o.name == name) && o.namespace != name);
            cluster.services.retain(|s| s.namespace != name);
            cluster.deployments.retain(|d| d.namespace != name);
            cluster.config_maps.retain(|o| o.namespace != name);
            cluster.secrets.retain(|o| o.namespace != name);
        }
        "ServiceAccount" | "ClusterRoleBinding" => {
            cluster.objects.retain(|o| !(o.kind == r.kind && o.namespace == namespace && o.name == r.name));
        }
        "Service" => cluster.services.retain(|s| !(s.namespace == namespace && s.name == r.name)),
        "ConfigMap" => cluster.config_maps.retain(|o| !(o.namespace == namespace && o.name == r.name)),
        "Secret" => cluster.secrets.retain(|o| !(o.namespace == namespace && o.name == r.name)),
        "Deployment" => cluster.deployments.retain(|d| !(d.namespace == namespace && d.name == r.name)),
        _ => {}
    }
}

// ----- leases and the inventory ------------------------------------------------------------

fn record(lease: &Lease) -> LeaseRecord {
    LeaseRecord {
        namespace: lease.namespace.clone(),
        name: lease.name.clone(),
        holder: lease.holder_identity.clone(),
        duration_seconds: lease.lease_duration_seconds,
        acquired_at: lease.acquire_time,
        renewed_at: lease.renew_time,
        resource_version: lease.resource_version.to_string(),
    }
}

/// A fresh version, above every version any lease of this cluster ever had.
fn next_resource_version(cluster: &mut KubeCluster) -> u64 {
    let highest = cluster.leases.iter().map(|l| l.resource_version).max().unwrap_or(0);
    cluster.last_resource_version = cluster.last_resource_version.max(highest) + 1;
    cluster.last_resource_version
}

fn stale(name: &str) -> BackendError {
    BackendError::Conflict {
        message: format!(
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        manager: None,
        fields: Vec::new(),
    }
}

impl SimKube {
    fn with_cluster<R>(&self, f: impl FnMut(&mut KubeCluster) -> Result<R, BackendError>) -> Result<R, BackendError> {
        let context = self.context.clone();
        let mut f = f;
        self.world.transact(|world| match world.cluster_mut(&context) {
            Some(cluster) => f(cluster),
            None => Err(unreachable(&context)),
        })?
    }
}

impl LeaseStore for SimKube {
    fn get_lease<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LeaseRecord>, BackendError>> {
        let result = self.with_cluster(|cluster| {
            Ok(cluster.leases.iter().find(|l| l.namespace == namespace && l.name == name).map(record))
        });
        Box::pin(std::future::ready(result))
    }

    fn create_lease<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<LeaseRecord, BackendError>> {
        let result = self.with_cluster(|cluster| {
            if cluster.leases.iter().any(|l| l.namespace == lease.namespace && l.name == lease.name) {
                return Err(BackendError::conflict(format!(
                    "leases.coordination.k8s.io \"{}\" already exists",
                    lease.name
                )));
            }
            let stored = Lease {
                namespace: lease.namespace.clone(),
                name: lease.name.clone(),
                holder_identity: lease.holder.clone(),
                lease_duration_seconds: lease.duration_seconds,
                acquire_time: lease.acquired_at,
                renew_time: lease.renewed_at,
                resource_version: next_resource_version(cluster),
            };
            let answer = record(&stored);
            cluster.leases.push(stored);
            Ok(answer)
        });
        Box::pin(std::future::ready(result))
    }

    fn replace_lease<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<LeaseRecord, BackendError>> {
        let result = self.with_cluster(|cluster| {
            let Some(index) =
                cluster.leases.iter().position(|l| l.namespace == lease.namespace && l.name == lease.name)
            else {
                return Err(not_found("Lease", &lease.name));
            };
            if cluster.leases[index].resource_version.to_string() != lease.resource_version {
                return Err(stale(&lease.name));
            }
            let version = next_resource_version(cluster);
            let stored = &mut cluster.leases[index];
            stored.holder_identity = lease.holder.clone();
            stored.lease_duration_seconds = lease.duration_seconds;
            stored.acquire_time = lease.acquired_at;
            stored.renew_time = lease.renewed_at;
            stored.resource_version = version;
            Ok(record(stored))
        });
        Box::pin(std::future::ready(result))
    }

    fn delete_lease<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        resource_version: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let result = self.with_cluster(|cluster| {
            let Some(stored) = cluster.leases.iter().find(|l| l.namespace == namespace && l.name == name) else {
                return Err(not_found("Lease", name));
            };
            if stored.resource_version.to_string() != resource_version {
                return Err(stale(name));
            }
            cluster.leases.retain(|l| !(l.namespace == namespace && l.name == name));
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn get_inventory<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, BackendError>> {
        let result = self.with_cluster(|cluster| {
            Ok(cluster
                .config_maps
                .iter()
                .find(|o| o.namespace == namespace && o.name == name)
                .map(|o| o.data.get("scopes").map(|s| s.lines().map(str::to_string).collect()).unwrap_or_default()))
        });
        Box::pin(std::future::ready(result))
    }

    fn put_inventory<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        records: &'a [String],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let result = self.with_cluster(|cluster| {
            cluster.config_maps.retain(|o| !(o.namespace == namespace && o.name == name));
            if !records.is_empty() {
                let labels: Tags = [(INVENTORY_LABEL.to_string(), "true".to_string())].into_iter().collect();
                cluster.config_maps.push(KeyValueObject {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    labels,
                    field_managers: vec![FIELD_MANAGER.to_string()],
                    data: [("scopes".to_string(), records.join("\n"))].into_iter().collect(),
                });
            }
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }
}
