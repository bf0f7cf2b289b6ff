//! The backend conformance suite against the simulator, over the seed world in memory; and
//! the suite against deliberately broken backends (the simulator behind a faulty wrapper), to
//! show that each property can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use edgeplan_model::attr;
use edgeplan_model::backend::{ADDRESS_TAG, LeaseRecord, STACK_TAG};
use edgeplan_model::{
    Action, Address, Backend, BackendError, BoxFuture, Clock, Connector, Identity, LeaseStore, Node, NodeKind,
    Observed, Operation, OwnedObject, Ownership, Request, Scope, SecretText, Value,
};
use edgeplan_sim::{
    Container, Deployment, Environment, KubeObject, PortainerTag, SecurityGroup, Service, ServicePort, SgRule,
    SimConnector, SimWorld, Subnet, Tags, World,
};
use edgeplan_testkit::conformance::cases::{attrs, changed, lit, map, reference, strings};
use edgeplan_testkit::conformance::{
    self, Attributes, Case, Foreign, Fresh, LeaseTarget, OTHER_STACK, Plant, Probe, Property, Report, STACK, ScopeSuite,
};

const SEED_WORLD: &str = "testdata/worlds/seed.yaml";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const STAGING_VPC: &str = "vpc-0a1b2c3d4e5f60001";
const PROD_VPC: &str = "vpc-0a1b2c3d4e5f60002";
/// The staging cluster's security group (tagged `aws:eks:cluster-name: my-cluster`).
const CLUSTER_SG: &str = "sg-0a1b2c3d4e5f60011";
const PORTAINER_URL: &str = "https://portainer.example.com";
const NLB_CIDR: &str = "192.168.0.0/24";
const TUNNEL_PORT: i64 = 30776;
const ENVIRONMENT: &str = "conformance-edge";
const AGENT_NAME: &str = "portainer-agent";

type Wrap = fn(Arc<dyn Connector>) -> Arc<dyn Connector>;

/// The simulator over the seed world, each check on a fresh copy of it; `wrap` puts a faulty
/// backend in front (or nothing).
struct SimHarness {
    world: World,
    name: String,
    wrap: Wrap,
    /// Check only this scope.
    only: Option<Scope>,
}

impl SimHarness {
    fn seed() -> SimHarness {
        SimHarness {
            world: edgeplan_testkit::world(SEED_WORLD),
            name: "simulator (seed world)".to_string(),
            wrap: |c| c,
            only: None,
        }
    }

    fn scope(scope: Scope) -> SimHarness {
        SimHarness { name: format!("simulator (seed world), {scope}"), only: Some(scope), ..SimHarness::seed() }
    }

    fn faulty(fault: Fault) -> SimHarness {
        let wrap: Wrap = match fault {
            Fault::ForgetsOwnership => |c| Faulty::wrap(c, Fault::ForgetsOwnership),
            Fault::UntypedErrors => |c| Faulty::wrap(c, Fault::UntypedErrors),
            Fault::ListsOtherStacks => |c| Faulty::wrap(c, Fault::ListsOtherStacks),
            Fault::KeepsDeleted => |c| Faulty::wrap(c, Fault::KeepsDeleted),
            Fault::FreshTokenOnRetry => |c| Faulty::wrap(c, Fault::FreshTokenOnRetry),
            Fault::IgnoresResourceVersion => |c| Faulty::wrap(c, Fault::IgnoresResourceVersion),
        };
        SimHarness { name: format!("simulator with fault {fault:?}"), wrap, ..SimHarness::seed() }
    }

    /// The seed world's Portainer key for `prod`: a valid EdgeKey for the agent's Secret.
    fn seed_edge_key(&self) -> SecretText {
        let key = self
            .world
            .portainer
            .first()
            .and_then(|p| p.environments.first())
            .map(|e| e.edge_key.clone())
            .expect("the seed world has an environment with a key");
        SecretText::new(key)
    }
}

impl conformance::Harness for SimHarness {
    type World = Arc<SimWorld>;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn fresh(&self) -> BoxFuture<'_, Fresh<Arc<SimWorld>>> {
        let world = edgeplan_testkit::sim(self.world.clone());
        let connector: Arc<dyn Connector> = Arc::new(SimConnector::new(Arc::clone(&world)));
        Box::pin(std::future::ready(Ok((world, (self.wrap)(connector)))))
    }

    fn scopes(&self) -> Vec<ScopeSuite<Arc<SimWorld>>> {
        let all = vec![aws_suite(), staging_suite(), prod_suite(self.seed_edge_key()), portainer_suite()];
        all.into_iter().filter(|s| self.only.as_ref().is_none_or(|only| *only == s.scope)).collect()
    }
}

// ----- building nodes -----------------------------------------------------------------------

fn aws() -> Scope {
    Scope::Aws { account: ACCOUNT.to_string(), region: REGION.to_string(), profile: None }
}

fn kube(context: &str) -> Scope {
    Scope::Kubernetes { context: context.to_string() }
}

fn portainer() -> Scope {
    Scope::Portainer { url: PORTAINER_URL.to_string() }
}

fn node(address: Address, kind: NodeKind, scope: Scope, identity: Identity) -> Node {
    Node { address, kind, scope, identity, desired: BTreeMap::new() }
}

/// A plant that edits the simulated world at once.
fn planted(plant: impl Fn(&SimWorld, Foreign<'_>) -> Result<(), String> + 'static) -> Plant<Arc<SimWorld>> {
    Box::new(move |world: &Arc<SimWorld>, foreign: Foreign<'_>| Box::pin(std::future::ready(plant(world, foreign))))
}

/// Tags (AWS) or labels (Kubernetes) carrying `owner`'s ownership.
fn ownership_tags(owner: Option<&Ownership>, mut base: Tags) -> Tags {
    if let Some(owner) = owner {
        base.insert(STACK_TAG.to_string(), owner.stack.clone());
        base.insert(ADDRESS_TAG.to_string(), owner.address.to_string());
    }
    base
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Edit the seed world's one AWS region.
fn edit_region(world: &SimWorld, f: impl FnOnce(&mut edgeplan_sim::AwsRegion)) -> Result<(), String> {
    world.edit(|w| {
        let region = w
            .aws
            .iter_mut()
            .find(|a| a.account == ACCOUNT)
            .and_then(|a| a.regions.iter_mut().find(|r| r.region == REGION))
            .ok_or("the world has no account/region to plant in")?;
        f(region);
        Ok(())
    })
}

fn edit_cluster(world: &SimWorld, context: &str, f: impl FnOnce(&mut edgeplan_sim::KubeCluster)) -> Result<(), String> {
    world.edit(|w| {
        let cluster = w.kubernetes.iter_mut().find(|c| c.context == context).ok_or("the world has no such context")?;
        f(cluster);
        Ok(())
    })
}

// ----- AWS ----------------------------------------------------------------------------------

fn nlb_subnet(vpc: &str) -> (Node, Attributes) {
    let create = attrs([
        (attr::VPC_ID, Value::str(vpc)),
        (attr::CIDR_BLOCK, Value::str(NLB_CIDR)),
        (attr::AVAILABILITY_ZONE, Value::str("eu-west-1b")),
        (attr::TAGS, map(&[("kubernetes.io/role/internal-elb", "1"), ("kubernetes.io/cluster/my-cluster", "shared")])),
    ]);
    let node = lit(node(Address::provider("nlb_subnet"), NodeKind::NlbSubnet, aws(), Identity::Owned), &create);
    (node, create)
}

fn vpce_security_group(vpc: &str) -> (Node, Attributes) {
    let create = attrs([
        (attr::VPC_ID, Value::str(vpc)),
        (attr::INGRESS_PORT, Value::Int(8000)),
        (attr::INGRESS_CIDRS, strings(&["192.168.0.0/16"])),
    ]);
    let address = Address::consumer("prod", "vpce_security_group");
    (lit(node(address, NodeKind::VpceSecurityGroup, aws(), Identity::Owned), &create), create)
}

fn aws_suite() -> ScopeSuite<Arc<SimWorld>> {
    let (subnet_node, subnet_create) = nlb_subnet(STAGING_VPC);
    let subnet = Case {
        name: "NlbSubnet".to_string(),
        update: changed(
            &subnet_create,
            attr::TAGS,
            map(&[
                ("kubernetes.io/role/internal-elb", "1"),
                ("kubernetes.io/cluster/my-cluster", "shared"),
                ("edgeplan.dev/conformance", "updated"),
            ]),
        ),
        node: subnet_node,
        create: subnet_create,
        // CreateSubnet refuses a CIDR that overlaps another subnet of the VPC.
        conflict_on_foreign: true,
        plant_foreign: planted(|world: &SimWorld, foreign: Foreign<'_>| {
            let tags = ownership_tags(foreign.owner, tags(&[("Name", "someone-elses-subnet")]));
            edit_region(world, |region| {
                region.subnets.push(Subnet {
                    id: "subnet-0f0000000000000f1".to_string(),
                    vpc_id: STAGING_VPC.to_string(),
                    cidr: NLB_CIDR.to_string(),
                    availability_zone: "eu-west-1b".to_string(),
                    availability_zone_id: "euw1-az3".to_string(),
                    available_ips: 251,
                    tags,
                    client_token: None,
                });
            })
        }),
    };

    let rule_create = attrs([
        (attr::CLUSTER_NAME, Value::str("my-cluster")),
        (attr::PROTOCOL, Value::str("tcp")),
        (attr::PORT, Value::Int(TUNNEL_PORT)),
        (attr::SOURCE_CIDR, Value::str(NLB_CIDR)),
    ]);
    let rule_node = node(Address::provider("cluster_sg_rule"), NodeKind::ClusterSgRule, aws(), Identity::Owned);
    let rule_node =
        lit(rule_node, &attrs([(attr::CLUSTER_NAME, Value::str("my-cluster")), (attr::PROTOCOL, Value::str("tcp"))]));
    let rule_node = reference(rule_node, attr::PORT, Address::provider("tunnel_service"), attr::TARGET_PORT);
    let rule_node = reference(rule_node, attr::SOURCE_CIDR, Address::provider("nlb_subnet"), attr::CIDR_BLOCK);
    let rule = Case {
        name: "ClusterSgRule".to_string(),
        // The port is immutable: the plan replaces the rule.
        update: changed(&rule_create, attr::PORT, Value::Int(TUNNEL_PORT + 1)),
        node: rule_node,
        create: rule_create,
        // AuthorizeSecurityGroupIngress refuses a duplicate rule (InvalidPermission.Duplicate).
        conflict_on_foreign: true,
        plant_foreign: planted(|world: &SimWorld, foreign: Foreign<'_>| {
            let tags = ownership_tags(foreign.owner, Tags::new());
            edit_region(world, |region| {
                if let Some(group) = region.security_groups.iter_mut().find(|g| g.id == CLUSTER_SG) {
                    group.ingress.push(SgRule {
                        id: "sgr-0f0000000000000f1".to_string(),
                        protocol: "tcp".to_string(),
                        from_port: 30776,
                        to_port: 30776,
                        cidr: Some(NLB_CIDR.to_string()),
                        source_group: None,
                        description: "someone else's rule".to_string(),
                        tags,
                        client_token: None,
                    });
                }
            })
        }),
    };

    let (sg_node, sg_create) = vpce_security_group(PROD_VPC);
    let group = Case {
        name: "VpceSecurityGroup".to_string(),
        update: changed(&sg_create, attr::INGRESS_CIDRS, strings(&["192.168.0.0/16", "10.20.0.0/16"])),
        node: sg_node,
        create: sg_create,
        // CreateSecurityGroup refuses a name the VPC already has (InvalidGroup.Duplicate).
        conflict_on_foreign: true,
        plant_foreign: planted(|world: &SimWorld, foreign: Foreign<'_>| {
            // The name the simulator gives the stack's group.
            let name = format!("edgeplan-{}-{}", foreign.stack, foreign.address.as_str().replace('.', "-"));
            let tags = ownership_tags(foreign.owner, tags(&[("Name", "someone-elses-group")]));
            edit_region(world, |region| {
                region.security_groups.push(SecurityGroup {
                    id: "sg-0f0000000000000f1".to_string(),
                    vpc_id: PROD_VPC.to_string(),
                    name,
                    description: "someone else's group".to_string(),
                    tags,
                    ingress: Vec::new(),
                    client_token: None,
                });
            })
        }),
    };

    let missing_vpc = "vpc-0ffffffffffffffff";
    let (sg_node, sg_create) = vpce_security_group(missing_vpc);
    let (subnet_node, subnet_create) = nlb_subnet(missing_vpc);
    ScopeSuite {
        scope: aws(),
        cases: vec![subnet, rule, group],
        not_found: vec![
            Probe {
                name: "VpceSecurityGroup in a missing VPC".to_string(),
                node: sg_node,
                action: Action::Create,
                attributes: sg_create,
            },
            Probe {
                name: "NlbSubnet in a missing VPC".to_string(),
                node: subnet_node,
                action: Action::Create,
                attributes: subnet_create,
            },
        ],
        leases: None,
    }
}

// ----- Kubernetes ---------------------------------------------------------------------------

fn tunnel_service(context: &str, namespace: &str) -> (Node, Attributes) {
    let literals = attrs([
        (attr::NAMESPACE, Value::str(namespace)),
        (attr::PORT, Value::Int(8000)),
        (
            attr::ANNOTATIONS,
            map(&[
                ("service.beta.kubernetes.io/aws-load-balancer-type", "external"),
                ("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type", "ip"),
                ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
            ]),
        ),
    ]);
    let identity = Identity::Named { name: "portainer-edge-tunnel".to_string() };
    let node =
        lit(node(Address::provider("tunnel_service"), NodeKind::TunnelService, kube(context), identity), &literals);
    let node = reference(node, attr::SUBNET_ID, Address::provider("nlb_subnet"), attr::ID);
    let node = reference(node, attr::SELECTOR, Address::provider("portainer_restart"), attr::SELECTOR);
    let node = reference(node, attr::TARGET_PORT, Address::provider("portainer_restart"), attr::TUNNEL_PORT);
    let mut create = literals;
    create.insert(attr::SUBNET_ID, Value::str("subnet-0f00000000000000a"));
    // Portainer's Deployment's selector, in the `portainer` namespace.
    create.insert(
        attr::SELECTOR,
        map(&[("app.kubernetes.io/instance", "portainer"), ("app.kubernetes.io/name", "portainer")]),
    );
    create.insert(attr::TARGET_PORT, Value::Int(TUNNEL_PORT));
    (node, create)
}

fn missing_namespace_probe(context: &str) -> Probe {
    let (node, attributes) = tunnel_service(context, "no-such-namespace");
    Probe { name: "TunnelService in a missing namespace".to_string(), node, action: Action::Create, attributes }
}

fn staging_suite() -> ScopeSuite<Arc<SimWorld>> {
    let (service_node, service_create) = tunnel_service("staging", "portainer");
    let mut annotations = service_create[&attr::ANNOTATIONS].string_map();
    annotations.insert(
        "service.beta.kubernetes.io/aws-load-balancer-attributes".to_string(),
        "load_balancing.cross_zone.enabled=true".to_string(),
    );
    let service = Case {
        name: "TunnelService".to_string(),
        update: changed(&service_create, attr::ANNOTATIONS, Value::from(annotations)),
        node: service_node,
        create: service_create,
        // Server-side apply writes over a Service of the same name.
        conflict_on_foreign: false,
        plant_foreign: planted(|world: &SimWorld, foreign: Foreign<'_>| {
            let labels = ownership_tags(foreign.owner, tags(&[("app", "someone-else")]));
            edit_cluster(world, "staging", |cluster| {
                cluster.services.push(Service {
                    namespace: "portainer".to_string(),
                    name: "portainer-edge-tunnel".to_string(),
                    service_type: "ClusterIP".to_string(),
                    labels,
                    annotations: Tags::new(),
                    field_managers: vec!["kubectl-client-side-apply".to_string()],
                    selector: tags(&[("app", "someone-else")]),
                    ports: vec![ServicePort {
                        name: "web".to_string(),
                        port: 8080,
                        target_port: 8080,
                        protocol: "TCP".to_string(),
                        node_port: None,
                    }],
                    load_balancer_class: None,
                    status_hostname: None,
                    headless: false,
                });
            })
        }),
    };
    ScopeSuite {
        scope: kube("staging"),
        cases: vec![service],
        not_found: vec![missing_namespace_probe("staging")],
        leases: Some(LeaseTarget { namespace: "portainer".to_string(), name: "edgeplan-conformance".to_string() }),
    }
}

fn prod_suite(edge_key: SecretText) -> ScopeSuite<Arc<SimWorld>> {
    let literals = attrs([
        (attr::NAMESPACE, Value::str("portainer")),
        (attr::IMAGE, Value::str("portainer/agent:2.39.0")),
        (attr::EDGE_INSECURE_POLL, Value::Bool(false)),
        (attr::AGENT_SECRET, Value::Secret(SecretText::new("agent-secret-for-tests"))),
    ]);
    let address = Address::consumer("prod", "agent");
    let agent_node = lit(node(address, NodeKind::AgentObjects, kube("prod"), Identity::Owned), &literals);
    let agent_node = reference(agent_node, attr::AGENT_EDGE_KEY, Address::consumer("prod", "agent_key"), attr::KEY);
    let agent_node =
        reference(agent_node, attr::AGENT_EDGE_ID, Address::consumer("prod", "environment"), attr::AGENT_EDGE_ID);
    let agent_node =
        reference(agent_node, attr::CONNECTION_STATE, Address::consumer("prod", "connection_acceptance"), attr::STATE);
    let mut create = literals;
    create.insert(attr::AGENT_EDGE_KEY, Value::Secret(edge_key));
    create.insert(attr::AGENT_EDGE_ID, Value::str("0b1c2d3e-4f50-4617-a829-3a4b5c6d7e8f"));
    // Ordering only: never sent.
    create.insert(attr::CONNECTION_STATE, Value::str("available"));
    let agent = Case {
        name: "AgentObjects".to_string(),
        update: changed(&create, attr::IMAGE, Value::str("portainer/agent:2.39.1")),
        node: agent_node,
        create,
        // Server-side apply writes over objects of the same names.
        conflict_on_foreign: false,
        plant_foreign: planted(|world: &SimWorld, foreign: Foreign<'_>| {
            let labels = ownership_tags(foreign.owner, Tags::new());
            edit_cluster(world, "prod", |cluster| {
                cluster.namespaces.push("portainer".to_string());
                cluster.objects.push(KubeObject {
                    kind: "Namespace".to_string(),
                    namespace: String::new(),
                    name: "portainer".to_string(),
                    labels: labels.clone(),
                    field_managers: vec!["kubectl-create".to_string()],
                    role: None,
                    subjects: Vec::new(),
                });
                let pod_labels = tags(&[("app", AGENT_NAME)]);
                cluster.deployments.push(Deployment {
                    namespace: "portainer".to_string(),
                    name: AGENT_NAME.to_string(),
                    labels,
                    annotations: Tags::new(),
                    field_managers: vec!["kubectl-client-side-apply".to_string()],
                    pod_labels,
                    template_annotations: Tags::new(),
                    logs: Vec::new(),
                    replicas: 1,
                    generation: 1,
                    ready_generation: 1,
                    containers: vec![Container {
                        name: AGENT_NAME.to_string(),
                        image: "portainer/agent:2.19.0".to_string(),
                        args: Vec::new(),
                        env: Vec::new(),
                        ports: vec![9001],
                    }],
                    agent_status: None,
                });
            })
        }),
    };
    ScopeSuite {
        scope: kube("prod"),
        cases: vec![agent],
        not_found: vec![missing_namespace_probe("prod")],
        leases: Some(LeaseTarget { namespace: "kube-system".to_string(), name: "edgeplan-conformance".to_string() }),
    }
}

// ----- Portainer ----------------------------------------------------------------------------

fn environment(name: &str, create_if_missing: bool) -> (Node, Attributes) {
    let create = attrs([
        (attr::TYPE, Value::str("edge-agent-kubernetes")),
        (attr::URL, Value::str(PORTAINER_URL)),
        (attr::CREATE_IF_MISSING, Value::Bool(create_if_missing)),
    ]);
    let identity = Identity::Named { name: name.to_string() };
    let node = lit(
        node(Address::consumer("edge", "environment"), NodeKind::PortainerEnvironment, portainer(), identity),
        &create,
    );
    (node, create)
}

fn portainer_suite() -> ScopeSuite<Arc<SimWorld>> {
    let (env_node, env_create) = environment(ENVIRONMENT, true);
    let env = Case {
        name: "PortainerEnvironment".to_string(),
        update: changed(&env_create, attr::URL, Value::str("https://portainer-edge.example.com")),
        node: env_node,
        create: env_create,
        // POST /api/endpoints answers 409 for a name that is taken.
        conflict_on_foreign: true,
        plant_foreign: planted(|world: &SimWorld, foreign: Foreign<'_>| {
            world.edit(|w| {
                let server =
                    w.portainer.iter_mut().find(|p| p.url == PORTAINER_URL).ok_or("no Portainer to plant in")?;
                let mut tag_ids = Vec::new();
                if let Some(owner) = foreign.owner {
                    for name in [format!("{STACK_TAG}={}", owner.stack), format!("{ADDRESS_TAG}={}", owner.address)] {
                        let id = server.tags.iter().map(|t| t.id).max().unwrap_or(0) + 1;
                        server.tags.push(PortainerTag { id, name });
                        tag_ids.push(id);
                    }
                }
                let id = server.environments.iter().map(|e| e.id).max().unwrap_or(0) + 1;
                server.environments.push(Environment {
                    id,
                    name: ENVIRONMENT.to_string(),
                    env_type: 4,
                    url: PORTAINER_URL.to_string(),
                    edge_id: String::new(),
                    edge_key: String::new(),
                    last_check_in: 0,
                    checkin_interval: 0,
                    user_trusted: true,
                    tag_ids,
                    tunnel_connected: false,
                });
                Ok(())
            })
        }),
    };
    let (update_node, update_attributes) = environment("no-such-environment", true);
    let (create_node, create_attributes) = environment("no-such-environment", false);
    ScopeSuite {
        scope: portainer(),
        cases: vec![env],
        not_found: vec![
            Probe {
                name: "update of a missing environment".to_string(),
                node: update_node,
                action: Action::Update,
                attributes: update_attributes,
            },
            Probe {
                name: "missing environment, create: false".to_string(),
                node: create_node,
                action: Action::Create,
                attributes: create_attributes,
            },
        ],
        leases: None,
    }
}

// ----- the simulator conforms -----------------------------------------------------------------

/// The suite covers every case, property and scope it is meant to (whatever the outcome).
#[test]
fn the_suite_covers_every_case_and_scope() {
    let report = conformance::run_blocking(&SimHarness::seed());
    for case in ALL_CASES {
        for property in [
            Property::Case,
            Property::Create,
            Property::RetriedCreate,
            Property::UpdateDelete,
            Property::ListOwned,
            Property::Foreign,
        ] {
            assert!(report.ran(property, case), "{property} did not run on {case}");
        }
    }
    let scopes: BTreeSet<String> = report.checks.iter().map(|c| c.scope.to_string()).collect();
    assert_eq!(scopes.len(), 4, "expected the AWS, two kube and the Portainer scopes, saw {scopes:?}");
    let runs = |property: Property| report.checks.iter().filter(|c| c.property == property).count();
    assert_eq!(runs(Property::NotFound), 6, "the not-found probes: two AWS, one per kube context, two Portainer");
    assert_eq!(runs(Property::Leases), 4, "the lease check runs on every scope");
    assert_eq!(runs(Property::Batch), 4, "the batch check runs on every scope");
    // Every case is valid: a harness defect would hide the backend's behaviour.
    let invalid: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.property == Property::Case && c.result.is_err())
        .map(|c| c.subject.as_str())
        .collect();
    assert!(invalid.is_empty(), "invalid cases: {invalid:?}");
}

#[test]
fn the_simulated_aws_backend_conforms() {
    conformance::run_blocking(&SimHarness::scope(aws())).assert_conforms();
}

#[test]
fn the_simulated_kubernetes_backend_conforms_in_staging() {
    conformance::run_blocking(&SimHarness::scope(kube("staging"))).assert_conforms();
}

#[test]
fn the_simulated_kubernetes_backend_conforms_in_prod() {
    conformance::run_blocking(&SimHarness::scope(kube("prod"))).assert_conforms();
}

#[test]
fn the_simulated_portainer_backend_conforms() {
    conformance::run_blocking(&SimHarness::scope(portainer())).assert_conforms();
}

#[test]
fn the_agent_case_applies_the_seven_agent_objects() {
    let harness = SimHarness::seed();
    let suite =
        conformance::Harness::scopes(&harness).into_iter().find(|s| s.scope == kube("prod")).expect("prod suite");
    let case = suite.cases.first().expect("the agent case");
    let ownership = Ownership::new(STACK, &case.node.address);
    let rendered = edgeplan_plan::manifests::render(&case.node, &case.create, &ownership, None).expect("renders");
    assert_eq!(rendered.len(), 7, "{rendered:?}");
}

// ----- the suite can fail -------------------------------------------------------------------

/// How a broken backend misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Reports objects without their ownership.
    ForgetsOwnership,
    /// Reports `NotFound` and `Conflict` as untyped `Invalid` errors.
    UntypedErrors,
    /// `list_owned` also returns another stack's objects.
    ListsOtherStacks,
    /// A delete answers `Absent` and deletes nothing.
    KeepsDeleted,
    /// A retried create goes out with a new client token.
    FreshTokenOnRetry,
    /// Leases: last write wins, whatever the resource version.
    IgnoresResourceVersion,
}

struct FaultyConnector {
    inner: Arc<dyn Connector>,
    fault: Fault,
}

struct Faulty {
    inner: Arc<dyn Backend>,
    fault: Fault,
    tokens: Mutex<BTreeSet<String>>,
}

impl Faulty {
    fn wrap(inner: Arc<dyn Connector>, fault: Fault) -> Arc<dyn Connector> {
        Arc::new(FaultyConnector { inner, fault })
    }

    fn store(&self) -> Result<&dyn LeaseStore, BackendError> {
        self.inner.leases().ok_or_else(|| BackendError::unsupported("no lease store"))
    }

    fn spoil(&self, result: Result<Observed, BackendError>) -> Result<Observed, BackendError> {
        match (self.fault, result) {
            (Fault::ForgetsOwnership, Ok(Observed::Present(mut live))) => {
                live.owner = None;
                Ok(Observed::Present(live))
            }
            (
                Fault::UntypedErrors,
                Err(BackendError::NotFound { message } | BackendError::Conflict { message, .. }),
            ) => Err(BackendError::invalid("500", message)),
            (_, result) => result,
        }
    }
}

impl Connector for FaultyConnector {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>> {
        Box::pin(async move {
            let inner = self.inner.connect(scope).await?;
            let backend: Arc<dyn Backend> =
                Arc::new(Faulty { inner, fault: self.fault, tokens: Mutex::new(BTreeSet::new()) });
            Ok(backend)
        })
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock()
    }
}

impl Backend for Faulty {
    fn scope(&self) -> &Scope {
        self.inner.scope()
    }

    fn observe<'a>(
        &'a self,
        stack: &'a str,
        requests: &'a [Request<'a>],
    ) -> BoxFuture<'a, Vec<Result<Observed, BackendError>>> {
        Box::pin(async move {
            let answers = self.inner.observe(stack, requests).await;
            answers.into_iter().map(|a| self.spoil(a)).collect()
        })
    }

    fn execute<'a>(&'a self, operation: &'a Operation) -> BoxFuture<'a, Result<Observed, BackendError>> {
        Box::pin(async move {
            if self.fault == Fault::KeepsDeleted && operation.action == Action::Delete {
                return Ok(Observed::Absent);
            }
            let seen = !self.tokens.lock().expect("tokens").insert(operation.client_token.clone());
            if self.fault == Fault::FreshTokenOnRetry && seen {
                let retry =
                    Operation { client_token: format!("{}-retry", operation.client_token), ..operation.clone() };
                return self.inner.execute(&retry).await;
            }
            let result = self.inner.execute(operation).await;
            self.spoil(result)
        })
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        Box::pin(async move {
            let mut owned = self.inner.list_owned(stack).await?;
            if self.fault == Fault::ListsOtherStacks && stack != OTHER_STACK {
                owned.extend(self.inner.list_owned(OTHER_STACK).await?);
            }
            Ok(owned)
        })
    }

    fn leases(&self) -> Option<&dyn LeaseStore> {
        match self.fault {
            Fault::IgnoresResourceVersion => self.inner.leases().map(|_| self as &dyn LeaseStore),
            _ => self.inner.leases(),
        }
    }
}

/// Delegates to the simulator's store, except that a replace or delete is done at whatever
/// version the lease has now.
impl LeaseStore for Faulty {
    fn get_lease<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LeaseRecord>, BackendError>> {
        Box::pin(async move { self.store()?.get_lease(namespace, name).await })
    }

    fn create_lease<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<LeaseRecord, BackendError>> {
        Box::pin(async move { self.store()?.create_lease(lease).await })
    }

    fn replace_lease<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<LeaseRecord, BackendError>> {
        Box::pin(async move {
            let store = self.store()?;
            let current = store.get_lease(&lease.namespace, &lease.name).await?;
            let version = current.map_or_else(|| lease.resource_version.clone(), |c| c.resource_version);
            store.replace_lease(&LeaseRecord { resource_version: version, ..lease.clone() }).await
        })
    }

    fn delete_lease<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        resource_version: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let store = self.store()?;
            let current = store.get_lease(namespace, name).await?;
            let version = current.map_or_else(|| resource_version.to_string(), |c| c.resource_version);
            store.delete_lease(namespace, name, &version).await
        })
    }

    fn get_inventory<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, BackendError>> {
        Box::pin(async move { self.store()?.get_inventory(namespace, name).await })
    }

    fn put_inventory<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        records: &'a [String],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move { self.store()?.put_inventory(namespace, name, records).await })
    }
}

fn faulty_report(fault: Fault) -> Report {
    conformance::run_blocking(&SimHarness::faulty(fault))
}

/// Every `subject` fails `property`, with a message naming it.
fn assert_fails(report: &Report, property: Property, subjects: &[&str]) {
    for subject in subjects {
        let check = report
            .checks
            .iter()
            .find(|c| c.property == property && c.subject == *subject)
            .unwrap_or_else(|| panic!("{}: {property} did not run on {subject}", report.harness));
        let message =
            check.result.as_ref().err().unwrap_or_else(|| panic!("{}: {property} passed on {subject}", report.harness));
        assert!(message.contains(subject), "the message does not name {subject}: {message}");
    }
}

const ALL_CASES: [&str; 6] =
    ["NlbSubnet", "ClusterSgRule", "VpceSecurityGroup", "TunnelService", "AgentObjects", "PortainerEnvironment"];

#[test]
fn a_backend_that_forgets_ownership_fails_create() {
    let report = faulty_report(Fault::ForgetsOwnership);
    assert_fails(&report, Property::Create, &ALL_CASES);
    assert_fails(&report, Property::RetriedCreate, &ALL_CASES);
}

#[test]
fn a_backend_with_untyped_errors_fails_not_found_and_foreign() {
    let report = faulty_report(Fault::UntypedErrors);
    let probes = [
        "VpceSecurityGroup in a missing VPC",
        "NlbSubnet in a missing VPC",
        "TunnelService in a missing namespace",
        "update of a missing environment",
        "missing environment, create: false",
    ];
    assert_fails(&report, Property::NotFound, &probes);
    assert_fails(
        &report,
        Property::Foreign,
        &["NlbSubnet", "ClusterSgRule", "VpceSecurityGroup", "PortainerEnvironment"],
    );
}

#[test]
fn a_backend_that_lists_other_stacks_fails_foreign() {
    let report = faulty_report(Fault::ListsOtherStacks);
    assert_fails(&report, Property::Foreign, &ALL_CASES);
}

#[test]
fn a_backend_that_keeps_deleted_objects_fails_update_delete() {
    let report = faulty_report(Fault::KeepsDeleted);
    assert_fails(&report, Property::UpdateDelete, &ALL_CASES);
}

#[test]
fn a_backend_that_forgets_its_client_token_fails_retried_create() {
    let report = faulty_report(Fault::FreshTokenOnRetry);
    // Kubernetes and Portainer find their object by name and ownership, not by token.
    assert_fails(&report, Property::RetriedCreate, &["NlbSubnet", "ClusterSgRule", "VpceSecurityGroup"]);
}

#[test]
fn a_lease_store_without_optimistic_concurrency_fails_leases() {
    let report = faulty_report(Fault::IgnoresResourceVersion);
    let failed: Vec<String> =
        report.failures().filter(|c| c.property == Property::Leases).map(|c| c.scope.to_string()).collect();
    assert_eq!(failed.len(), 2, "both kube scopes fail the lease check: {failed:?}");
    let failures = report.describe_failures();
    assert!(failures.contains("replace at a stale version: expected Err(Conflict)"), "{failures}");
}
