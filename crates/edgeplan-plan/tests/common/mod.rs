//! Shared fixtures: the seed spec's nodes and hand-built worlds around them.
//!
//! A world is what the backends report: raw API facts under the kinds' declared attribute
//! names, secrets as `Value::Secret`, ownership read from tags and labels, and for Kubernetes
//! nodes the live objects themselves (`LiveObject::manifests`). Observations are made from it
//! as the engine makes them: every present object goes through `facts::derive`, so the tests
//! exercise the real derivation (missing IAM actions, IGW routes, key validity, EDGE_ID…)
//! rather than setting derived attributes by hand.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use edgeplan_diag::SourceFile;
use edgeplan_model::attr::{self, Attr};
use edgeplan_model::manifest::{Container, DeploymentSpec, DeploymentStatus, ObjectMeta, PodSpec, PodTemplate};
use edgeplan_model::{
    Address, Expr, LiveObject, Manifest, Node, NodeKind, Observation, Observed, Ownership, Role, SecretText, Value,
    compile, resource_graph,
};
use edgeplan_plan::{facts, manifests};

/// The seed spec's stack name.
pub const STACK: &str = "portainer-edge";
pub const SPEC: &str = include_str!("../../../../specs/seed.yaml");
/// The document `lbController.policyDocument` names; the engine inlines it before planning.
pub const POLICY: &str = include_str!("../../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");

/// The consumer's interface endpoint, as AWS names it.
pub const VPCE_DNS: &str = "vpce-0abc1234def567890-1a2b3c4d.vpce-svc-0def1234567890abc.eu-west-1.vpce.amazonaws.com";
/// What the LB controller writes into the tunnel Service's status.
pub const NLB_HOSTNAME: &str = "k8s-portaine-portaine-0123456789-0123456789abcdef.elb.eu-west-1.amazonaws.com";
/// A chisel server fingerprint in the shape Portainer issues (padded base64 of a SHA-256).
pub const SERVER_FINGERPRINT: &str = "SHF+e25zLvC20boxYUsDHmLHWlyQt57LCHls6hSeJjg=";
/// Where Portainer CE points the keys it issues: its URL host and its own `--tunnel-port`.
pub const PORTAINER_TUNNEL: &str = "portainer.example.com:30776";
pub const PORTAINER_URL: &str = "https://portainer.example.com";
/// Portainer's environment ID for `prod`, and the EdgeID it recorded on the agent's first poll.
pub const ENVIRONMENT_ID: &str = "3";
pub const EDGE_ID: &str = "6d4c1a2b-9e8f-4a7b-b6c5-d4e3f2a1b0c9";
/// The seed's Portainer Deployment runs chisel here (`--tunnel-port`).
pub const TUNNEL_PORT: i64 = 30776;
/// The AZ ID both the NLB and the consumer's subnet are in (eu-west-1b in this account).
pub const SHARED_AZ_ID: &str = "euw1-az2";
/// The provider VPC the seed spec names.
pub const PROVIDER_VPC: &str = "vpc-0a1b2c3d4e5f60001";

/// The seed spec compiled, in the resource graph's topological order, with the policy
/// document inlined as the engine inlines it (the compiler keeps the path).
pub fn seed_nodes() -> Vec<Node> {
    nodes_from(SPEC)
}

/// [`seed_nodes`] of another spec text (a variant of the seed's).
pub fn nodes_from(text: &str) -> Vec<Node> {
    let spec = edgeplan_spec::parse(&SourceFile::new("seed.yaml", text)).expect("the spec parses");
    let mut nodes = compile(&spec);
    for node in nodes.iter_mut().filter(|n| n.kind == NodeKind::LbControllerPolicy) {
        node.desired.insert(attr::POLICY_DOCUMENT, Expr::lit(POLICY));
    }
    let graph = resource_graph(nodes).expect("the seed is a DAG");
    graph.topological_order().into_iter().map(|a| graph.node(a).expect("in the graph").clone()).collect()
}

pub fn refs(nodes: &[Node]) -> Vec<&Node> {
    nodes.iter().collect()
}

pub fn node<'n>(nodes: &'n [Node], address: &str) -> &'n Node {
    nodes.iter().find(|n| n.address.as_str() == address).unwrap_or_else(|| panic!("no node {address}"))
}

pub fn node_mut<'n>(nodes: &'n mut [Node], address: &str) -> &'n mut Node {
    nodes.iter_mut().find(|n| n.address.as_str() == address).unwrap_or_else(|| panic!("no node {address}"))
}

// --- keys -----------------------------------------------------------------------------------

/// Standard-alphabet base64, with or without `=` padding.
pub fn base64(bytes: &[u8], pad: bool) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    if pad { STANDARD.encode(bytes) } else { STANDARD_NO_PAD.encode(bytes) }
}

/// An EDGE_KEY in the agent's form (raw standard base64, no padding).
pub fn edge_key(tunnel: &str, endpoint_id: &str) -> String {
    base64(format!("{PORTAINER_URL}|{tunnel}|{SERVER_FINGERPRINT}|{endpoint_id}").as_bytes(), false)
}

/// The key Portainer issued for `prod`: field 2 is Portainer's own host (trap 6).
pub fn portainer_key() -> String {
    edge_key(PORTAINER_TUNNEL, ENVIRONMENT_ID)
}

/// The agent's key: Portainer's, re-pointed at the VPC endpoint on the listener port.
pub fn agent_key_text() -> String {
    facts::agent_key(&SecretText::new(portainer_key()), VPCE_DNS, 8000).expect("re-pointable").expose().to_string()
}

// --- worlds ---------------------------------------------------------------------------------

/// A world where everything matches the spec: for each node, what its backend reports (raw
/// facts, before derivation). `nodes` must be in dependency order.
pub fn converged(nodes: &[Node]) -> BTreeMap<Address, LiveObject> {
    let mut raw = BTreeMap::new();
    let mut derived: BTreeMap<Address, LiveObject> = BTreeMap::new();
    for node in nodes {
        let resolved = resolve(node, &derived);
        let object = raw_object(node, &resolved);
        derived.insert(node.address.clone(), derive(node, &object));
        raw.insert(node.address.clone(), object);
    }
    raw
}

/// The raw object of one node in a converged world (its upstream nodes converged too).
pub fn matching(nodes: &[Node], address: &str) -> LiveObject {
    converged(nodes).remove(&Address::from_text(address)).expect("node in the world")
}

/// `live` as the engine hands it to `decide`: with the facts it derives.
pub fn derive(node: &Node, live: &LiveObject) -> LiveObject {
    let mut live = live.clone();
    facts::derive(STACK, node, &mut live);
    live
}

/// Observations of `nodes`, derived as the engine derives them.
pub fn observe_all(nodes: &[Node], f: impl Fn(&Node) -> Observed) -> Vec<Observation> {
    nodes
        .iter()
        .map(|n| {
            let result = match f(n) {
                Observed::Present(live) => Observed::Present(derive(n, &live)),
                Observed::Absent => Observed::Absent,
            };
            Observation { address: n.address.clone(), result: Ok(result) }
        })
        .collect()
}

/// Observations of the converged world after `edit` changed what the backends report.
pub fn observe_world(nodes: &[Node], edit: impl Fn(&Address, &mut Observed)) -> Vec<Observation> {
    let world = converged(nodes);
    observe_all(nodes, |node| {
        let mut observed = Observed::Present(world[&node.address].clone());
        edit(&node.address, &mut observed);
        observed
    })
}

/// The live object, if `observed` holds one.
pub fn live_of(observed: &mut Observed) -> Option<&mut LiveObject> {
    match observed {
        Observed::Present(live) => Some(live),
        Observed::Absent => None,
    }
}

/// Set a raw attribute of the object at `target`.
pub fn set(address: &Address, observed: &mut Observed, target: &str, attribute: Attr, value: impl Into<Value>) {
    if address.as_str() == target
        && let Some(live) = live_of(observed)
    {
        live.set(attribute, value);
    }
}

/// Change the live Kubernetes object of `kind` (`Deployment`, `Secret`, …) at `target`.
pub fn edit_manifest(
    address: &Address,
    observed: &mut Observed,
    target: &str,
    kind: &str,
    edit: impl Fn(&mut Manifest),
) {
    if address.as_str() == target
        && let Some(live) = live_of(observed)
    {
        let manifest = live.manifests.iter_mut().find(|m| m.kind() == kind).expect("the object exists");
        edit(manifest);
    }
}

/// Desired attributes as the engine resolves them for a request: literals as written,
/// references from the upstream object (with its derived facts). Ordering-only references
/// are not sent.
fn resolve(node: &Node, derived: &BTreeMap<Address, LiveObject>) -> BTreeMap<Attr, Value> {
    let decl = node.kind.decl();
    node.desired
        .iter()
        .filter(|(a, _)| decl.desired_decl(**a).is_some_and(|d| d.role != Role::Ordering))
        .map(|(attribute, expr)| {
            let value = match expr {
                Expr::Lit(value) => value.clone(),
                Expr::Ref(reference) => derived
                    .get(&reference.node)
                    .and_then(|up| up.get(reference.output))
                    .filter(|v| **v != Value::Null)
                    .cloned()
                    .unwrap_or_else(|| panic!("{}: {reference} is not in the converged world", node.address)),
            };
            (*attribute, value)
        })
        .collect()
}

fn id_of(node: &Node) -> String {
    let name = node.address.as_str().replace(['.', '_'], "-");
    match node.kind {
        NodeKind::LbControllerPolicy => "arn:aws:iam::123456789012:policy/AWSLoadBalancerControllerIAMPolicy".into(),
        NodeKind::Vpc => PROVIDER_VPC.into(),
        NodeKind::NlbSubnet => "subnet-0e1d2c3b4a5960001".into(),
        NodeKind::NlbRouteTable => "rtb-0e1d2c3b4a5960002".into(),
        NodeKind::NlbRouteTableAssociation => "rtbassoc-0e1d2c3b4a5960003".into(),
        NodeKind::ClusterSgRule => "sgr-0e1d2c3b4a5960004".into(),
        NodeKind::EndpointService | NodeKind::EndpointServicePermissions => "vpce-svc-0def1234567890abc".into(),
        NodeKind::VpceSecurityGroup => "sg-0e1d2c3b4a5960005".into(),
        NodeKind::Vpce => "vpce-0abc1234def567890".into(),
        NodeKind::ConnectionAcceptance => "vpce-svc-0def1234567890abc/vpce-0abc1234def567890".into(),
        NodeKind::Nlb => format!("arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/{name}/0123"),
        NodeKind::PortainerEnvironment => ENVIRONMENT_ID.into(),
        _ => format!("id-of-{}", node.address),
    }
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Portainer's Deployment as the Helm chart made it: chisel on `--tunnel-port`, rolled out.
pub fn portainer_deployment(checksum: Option<&str>) -> Manifest {
    let selector = string_map(&[("app.kubernetes.io/instance", "portainer"), ("app.kubernetes.io/name", "portainer")]);
    let annotations = checksum.map(|c| string_map(&[(manifests::SETTINGS_CHECKSUM_ANNOTATION, c)])).unwrap_or_default();
    Manifest::Deployment {
        metadata: ObjectMeta {
            name: "portainer".into(),
            namespace: Some("portainer".into()),
            labels: selector.clone(),
            field_managers: vec!["helm".into(), "edgeplan".into()],
            generation: Some(4),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: Some(selector.clone()),
            template: PodTemplate {
                labels: selector,
                annotations,
                spec: Some(PodSpec {
                    service_account_name: Some("portainer-sa-clusteradmin".into()),
                    containers: vec![Container {
                        name: "portainer".into(),
                        image: "portainer/portainer-ce:2.39.0".into(),
                        args: vec![format!("--tunnel-port={TUNNEL_PORT}")],
                        ports: vec![9000, 9443, 30776],
                        ..Container::default()
                    }],
                }),
            },
        },
        status: Some(DeploymentStatus { observed_generation: 4, replicas: 1, updated_replicas: 1, ready_replicas: 1 }),
    }
}

/// What the backend of `node` reports when the object matches `resolved`.
fn raw_object(node: &Node, resolved: &BTreeMap<Attr, Value>) -> LiveObject {
    let ownership = Ownership::new(STACK, &node.address);
    let mut live = LiveObject::new(id_of(node));
    live.owner = Some(ownership.clone());
    let text = |a: Attr| resolved.get(&a).and_then(Value::as_str).unwrap_or_default().to_string();
    let kubernetes = matches!(node.kind, NodeKind::PortainerRestart | NodeKind::TunnelService | NodeKind::AgentObjects);
    if !kubernetes && node.kind != NodeKind::AgentKey {
        live.attributes.extend(resolved.iter().map(|(a, v)| (*a, v.clone())));
    }
    match node.kind {
        NodeKind::LbControllerPolicy => {
            live.set(attr::POLICY_ARN, id_of(node));
            live.set(attr::POLICY_NAME, "AWSLoadBalancerControllerIAMPolicy");
            live.set(attr::DEFAULT_VERSION, "v3");
            live.set(attr::VERSIONS, vec!["v1", "v2", "v3"]);
            live.set(attr::ATTACHED_POLICIES, vec![id_of(node)]);
        }
        NodeKind::NlbSubnet => {
            // An adopted subnet: the spec names only its ID.
            if live.get(attr::CIDR_BLOCK).is_none() {
                live.set(attr::CIDR_BLOCK, "192.168.0.0/24");
                live.set(attr::AVAILABILITY_ZONE, "eu-west-1b");
            }
            // AWS adds its own tags next to the ones the spec wants (subset comparison).
            let mut tags = resolved.get(&attr::TAGS).map(Value::string_map).unwrap_or_default();
            tags.insert("Name".into(), "edgeplan-nlb".into());
            live.set(attr::TAGS, tags);
            live.set(attr::AVAILABILITY_ZONE_ID, SHARED_AZ_ID);
            live.set(attr::AVAILABLE_IP_ADDRESS_COUNT, 251_i64);
            live.set(attr::ROUTE_TABLE_ID, "rtb-0e1d2c3b4a5960002");
            live.set(attr::ROUTE_TABLE_ASSOCIATION, "explicit");
            live.set(attr::ROUTES, Value::List(vec![route("192.168.0.0/16", "local")]));
        }
        NodeKind::Vpc => {
            // Single-tier, as the seed's: the main route table goes to an internet gateway.
            live.set(attr::CIDR_BLOCK, "192.168.0.0/16");
            live.set(attr::ROUTE_TABLE_ID, "rtb-0a1b2c3d4e5f60001");
            live.set(attr::ROUTES, Value::List(vec![route("0.0.0.0/0", "igw-0a1b2c3d4e5f60001")]));
            live.set(
                attr::SUBNETS,
                Value::List(vec![
                    vpc_subnet("subnet-0e1d2c3b4a5960001", "192.168.0.0/24", "eu-west-1b", SHARED_AZ_ID),
                    vpc_subnet("subnet-0a1b2c3d4e5f60011", "192.168.32.0/19", "eu-west-1a", "euw1-az1"),
                ]),
            );
            live.set(
                attr::AVAILABILITY_ZONES,
                Value::List(vec![
                    zone("eu-west-1a", "euw1-az1"),
                    zone("eu-west-1b", SHARED_AZ_ID),
                    zone("eu-west-1c", "euw1-az3"),
                ]),
            );
        }
        NodeKind::NlbRouteTable => {
            live.set(attr::MAIN, false);
            live.set(attr::ASSOCIATIONS, vec!["subnet-0e1d2c3b4a5960001"]);
        }
        NodeKind::EdgeComputeSetting => {
            live.set(attr::CHECKIN_INTERVAL, 5_i64);
            live.set(attr::ENFORCE_EDGE_ID, false);
        }
        NodeKind::PortainerRestart => {
            live.manifests.push(portainer_deployment(Some(&text(attr::SETTINGS_CHECKSUM))));
        }
        NodeKind::TunnelService => {
            let mut objects = manifests::render(node, resolved, &ownership, None).expect("the Service renders");
            for object in &mut objects {
                object.metadata_mut().field_managers = vec!["edgeplan".into()];
                if let Manifest::Service { load_balancer_hostname, .. } = object {
                    *load_balancer_hostname = Some(NLB_HOSTNAME.into());
                }
            }
            live.manifests = objects;
        }
        NodeKind::Nlb => {
            live.set(attr::ARN, id_of(node));
            live.set(attr::NAME, "k8s-portaine-portaine-0123456789");
            live.set(attr::DNS_NAME, text(attr::HOSTNAME));
            live.set(attr::STATE, "active");
            live.set(attr::VPC_ID, "vpc-0a1b2c3d4e5f60001");
            live.set(attr::SUBNET_IDS, vec!["subnet-0e1d2c3b4a5960001"]);
            live.set(attr::AVAILABILITY_ZONE_IDS, vec![SHARED_AZ_ID]);
        }
        NodeKind::ClusterSgRule => {
            live.set(attr::SECURITY_GROUP_ID, "sg-0cluster000000001");
            live.set(attr::RULE_ID, id_of(node));
            live.set(attr::DESCRIPTION, "edgeplan: NLB subnet to the tunnel port");
        }
        NodeKind::EndpointService => {
            live.set(attr::SERVICE_ID, "vpce-svc-0def1234567890abc");
            live.set(attr::SERVICE_NAME, "com.amazonaws.vpce.eu-west-1.vpce-svc-0def1234567890abc");
            live.set(attr::STATE, "Available");
            live.set(attr::AVAILABILITY_ZONE_IDS, vec![SHARED_AZ_ID]);
        }
        NodeKind::ConsumerSubnets => {
            live.set(attr::VPC_IDS, vec!["vpc-0a1b2c3d4e5f60002"]);
            live.set(attr::AVAILABILITY_ZONE_IDS, vec![SHARED_AZ_ID]);
        }
        NodeKind::VpceSecurityGroup => live.set(attr::NAME, "edgeplan-vpce"),
        NodeKind::Vpce => {
            live.set(attr::STATE, "available");
            live.set(attr::DNS_NAME, VPCE_DNS);
        }
        NodeKind::ConnectionAcceptance => {
            live.attributes.remove(&attr::ACCEPTED); // derived from the state
            live.set(attr::STATE, "available");
            live.set(attr::VPC_ENDPOINT_OWNER, "123456789012");
        }
        NodeKind::PortainerEnvironment => {
            live.attributes.remove(&attr::TYPE); // derived from TYPE_ID
            live.set(attr::NAME, "prod");
            live.set(attr::TYPE_ID, 7_i64);
            live.set(attr::EDGE_ID, EDGE_ID);
            live.set(attr::EDGE_KEY, Value::Secret(SecretText::new(portainer_key())));
            live.set(attr::LAST_CHECK_IN_DATE, 1_764_430_000_i64);
            live.set(attr::HEARTBEAT, true);
            live.set(attr::USER_TRUSTED, true);
            live.set(attr::TAG_IDS, Value::List(Vec::new()));
            live.set(attr::CHECKIN_INTERVAL, 5_i64);
        }
        NodeKind::AgentKey => {
            // Computed by the engine, as its router does.
            let portainer = resolved.get(&attr::PORTAINER_KEY).and_then(Value::as_secret).expect("Portainer's key");
            let host = text(attr::TUNNEL_HOST);
            let port = resolved.get(&attr::TUNNEL_PORT).and_then(Value::as_int).expect("the listener port");
            let key = facts::agent_key(portainer, &host, u16::try_from(port).expect("a port")).expect("re-pointable");
            live = LiveObject::new(key.fingerprint())
                .with(attr::PORTAINER_KEY, Value::Secret(portainer.clone()))
                .with(attr::TUNNEL_HOST, host.as_str())
                .with(attr::TUNNEL_PORT, port)
                .with(attr::KEY_TUNNEL, format!("{host}:{port}"))
                .with(attr::KEY, Value::Secret(key));
        }
        NodeKind::AgentObjects => {
            // A secret reference the engine could not read never reaches a cluster: what runs
            // there is whatever was deployed before (here: nothing).
            let readable: BTreeMap<Attr, Value> = resolved
                .iter()
                .filter(|(_, v)| !matches!(v, Value::SecretRef(_)))
                .map(|(a, v)| (*a, v.clone()))
                .collect();
            let mut objects = manifests::render(node, &readable, &ownership, None).expect("the agent renders");
            for object in &mut objects {
                object.metadata_mut().field_managers = vec!["edgeplan".into()];
                if let Manifest::Deployment { metadata, status, .. } = object {
                    metadata.generation = Some(1);
                    *status = Some(DeploymentStatus {
                        observed_generation: 1,
                        replicas: 1,
                        updated_replicas: 1,
                        ready_replicas: 1,
                    });
                }
            }
            live.manifests = objects;
            live.set(attr::LOGS, vec!["2026/11/29 10:00:00 client: Connected (Latency 1.2ms)"]);
        }
        NodeKind::NlbRouteTableAssociation | NodeKind::EndpointServicePermissions => {}
    }
    live
}

/// A subnet of a VPC, as the AWS backend reports the VPC's subnets.
pub fn vpc_subnet(id: &str, cidr: &str, zone: &str, zone_id: &str) -> Value {
    Value::from(string_map(&[
        ("id", id),
        ("cidr", cidr),
        ("availability_zone", zone),
        ("availability_zone_id", zone_id),
    ]))
}

/// A zone of the region, as the AWS backend reports the VPC's region.
pub fn zone(name: &str, id: &str) -> Value {
    Value::from(string_map(&[("name", name), ("id", id)]))
}

/// A route as the AWS backend reports it.
pub fn route(destination: &str, target: &str) -> Value {
    Value::from(string_map(&[("destination", destination), ("target", target)]))
}
