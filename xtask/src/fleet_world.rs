//! A simulated world for the generated fleet spec (fleet_spec.rs), so `edgeplan plan` can be
//! benched on it: testdata/worlds/seed.yaml (whose provider is specs/seed.yaml's, as the fleet
//! spec's is) plus, per consumer, its VPC, subnet, main route table and kube context, and for
//! some of them a namespace or a Portainer environment already there.
//!
//! The mix, deterministic by consumer number (at 1,000 consumers: 5,674 creates, 333 no-ops,
//! 3 updates and 1 read):
//! - every consumer's VPC, subnet (in the NLB's zone by ID, under the partner account's own AZ
//!   name there), main route table and cluster exist, as the spec adopts them; every 2nd
//!   cluster already has a `portainer` namespace;
//! - every 3rd consumer has an Edge environment made in Portainer's UI (no agent yet, a key
//!   naming Portainer's NodePort, as in the seed): found, kept, its key re-addressed for the
//!   agent; the others' environments are created;
//! - the provider side is the seed world's: its traps are the updates (controller policy,
//!   Edge Compute, Portainer's restart), the NLB the read (the LB controller builds it), and
//!   the rest of the tunnel path creates.
//!
//! IDs come from [`fleet_spec::consumer`], the function the spec is written from.

use anyhow::{Context, Result, bail};
use edgeplan_sim::{
    AvailabilityZone, AwsAccount, AwsRegion, ClusterAws, Environment, KubeCluster, RouteTable, Subnet, Tags, Vpc, World,
};

use crate::fleet_spec::{self, FleetConsumer, NLB_AZ, NLB_AZ_ID, PARTNER_ACCOUNT, PROVIDER_ACCOUNT, REGION};

/// The world the fleet's provider side starts from.
const SEED_WORLD: &str = include_str!("../../testdata/worlds/seed.yaml");
/// The seed world's consumer, whose VPC, subnet, route table and cluster are the templates.
const TEMPLATE_CONTEXT: &str = "prod";
const TEMPLATE_VPC: &str = "vpc-0a1b2c3d4e5f60002";
const PORTAINER_URL: &str = "https://portainer.example.com";
/// The seed's NodePort install: what a key Portainer's UI made names as the tunnel.
const UI_TUNNEL_ADDR: &str = "portainer.example.com:30776";
const NAMESPACE_EVERY: usize = 2;
const ENVIRONMENT_EVERY: usize = 3;
/// The partner account's AZ names map to other zones: its eu-west-1a is the provider's
/// eu-west-1b (`NLB_AZ_ID`).
const PARTNER_AZS: [(&str, &str); 3] =
    [("eu-west-1a", NLB_AZ_ID), ("eu-west-1b", "euw1-az1"), ("eu-west-1c", "euw1-az2")];

/// The world file's text for a fleet of `consumers`.
pub(crate) fn generate(consumers: usize) -> Result<String> {
    Ok(edgeplan_sim::save(&world(consumers)?))
}

pub(crate) fn world(consumers: usize) -> Result<World> {
    let mut world = edgeplan_sim::load(SEED_WORLD).context("loading testdata/worlds/seed.yaml")?;
    let templates = Templates::from(&world)?;
    world.aws.push(AwsAccount {
        account: PARTNER_ACCOUNT.to_string(),
        iam: Default::default(),
        regions: vec![AwsRegion {
            region: REGION.to_string(),
            availability_zones: PARTNER_AZS
                .iter()
                .map(|(name, id)| AvailabilityZone { name: (*name).to_string(), id: (*id).to_string() })
                .collect(),
            vpcs: Vec::new(),
            subnets: Vec::new(),
            route_tables: Vec::new(),
            security_groups: Vec::new(),
            load_balancers: Vec::new(),
            endpoint_services: Vec::new(),
            vpc_endpoints: Vec::new(),
        }],
    });
    let fingerprint = portainer(&mut world)?.server_fingerprint.clone();
    let mut next_environment_id = portainer(&mut world)?.environments.iter().map(|e| e.id).max().unwrap_or(0) + 1;
    for number in 1..=consumers {
        let consumer = fleet_spec::consumer(number)?;
        let region = region_mut(&mut world, consumer.account)?;
        region.vpcs.push(Vpc {
            id: consumer.vpc_id.clone(),
            cidr: consumer.cidr.clone(),
            tags: name_tag(&consumer.name),
        });
        region.subnets.push(subnet(&templates.subnet, &consumer));
        region.route_tables.push(route_table(&templates.route_table, &consumer, number));
        world.kubernetes.push(cluster(&templates.cluster, &consumer, number));
        if number.is_multiple_of(ENVIRONMENT_EVERY) {
            let environment = ui_environment(&templates.environment, &consumer, next_environment_id, &fingerprint);
            portainer(&mut world)?.environments.push(environment);
            next_environment_id += 1;
        }
    }
    Ok(world)
}

/// The seed world's consumer objects, copied and renamed per fleet consumer.
struct Templates {
    subnet: Subnet,
    route_table: RouteTable,
    cluster: KubeCluster,
    environment: Environment,
}

impl Templates {
    fn from(world: &World) -> Result<Templates> {
        let region = world
            .account(PROVIDER_ACCOUNT)
            .and_then(|a| a.regions.iter().find(|r| r.region == REGION))
            .context("the seed world has no provider account region")?;
        let subnet = region
            .subnets
            .iter()
            .find(|s| s.vpc_id == TEMPLATE_VPC && s.availability_zone == NLB_AZ)
            .context("the seed world's prod VPC has no subnet in the NLB's AZ")?;
        let route_table = region
            .route_tables
            .iter()
            .find(|t| t.vpc_id == TEMPLATE_VPC && t.main)
            .context("the seed world's prod VPC has no main route table")?;
        let cluster = world.cluster(TEMPLATE_CONTEXT).context("the seed world has no `prod` kube context")?;
        let environment = world
            .portainer_server(PORTAINER_URL)
            .and_then(|p| p.environments.first())
            .context("the seed world's Portainer has no environment")?;
        Ok(Templates {
            subnet: subnet.clone(),
            route_table: route_table.clone(),
            cluster: cluster.clone(),
            environment: environment.clone(),
        })
    }
}

fn portainer(world: &mut World) -> Result<&mut edgeplan_sim::PortainerServer> {
    world.portainer.iter_mut().find(|p| p.url == PORTAINER_URL).context("the seed world has no Portainer")
}

fn region_mut<'w>(world: &'w mut World, account: &str) -> Result<&'w mut AwsRegion> {
    let Some(account) = world.aws.iter_mut().find(|a| a.account == account) else {
        bail!("the fleet world has no account {account}");
    };
    account.regions.iter_mut().find(|r| r.region == REGION).with_context(|| format!("no {REGION} region"))
}

fn name_tag(name: &str) -> Tags {
    Tags::from([("Name".to_string(), name.to_string())])
}

fn subnet(template: &Subnet, consumer: &FleetConsumer) -> Subnet {
    // The subnet the spec names is in the NLB's zone; in the partner account that zone has
    // another name.
    let az_name = if consumer.is_partner { PARTNER_AZS[0].0 } else { NLB_AZ };
    let mut tags = name_tag(&format!("{}-private", consumer.name));
    tags.insert(format!("kubernetes.io/cluster/{}", consumer.cluster_name), "shared".to_string());
    Subnet {
        id: consumer.subnet_id.clone(),
        vpc_id: consumer.vpc_id.clone(),
        cidr: consumer.cidr.clone(),
        availability_zone: az_name.to_string(),
        availability_zone_id: NLB_AZ_ID.to_string(),
        tags,
        ..template.clone()
    }
}

fn route_table(template: &RouteTable, consumer: &FleetConsumer, number: usize) -> RouteTable {
    RouteTable {
        id: format!("rtb-{}", &consumer.vpc_id["vpc-".len()..]),
        vpc_id: consumer.vpc_id.clone(),
        routes: template
            .routes
            .iter()
            .map(|route| edgeplan_sim::Route { target: format!("nat-0{number:016x}"), ..route.clone() })
            .collect(),
        tags: name_tag(&format!("{}-main", consumer.name)),
        ..template.clone()
    }
}

fn cluster(template: &KubeCluster, consumer: &FleetConsumer, number: usize) -> KubeCluster {
    let mut namespaces = template.namespaces.clone();
    if number.is_multiple_of(NAMESPACE_EVERY) {
        namespaces.push("portainer".to_string());
    }
    KubeCluster {
        context: consumer.kube_context.clone(),
        cluster_name: consumer.cluster_name.clone(),
        aws: Some(ClusterAws {
            account: consumer.account.to_string(),
            region: REGION.to_string(),
            vpc_id: consumer.vpc_id.clone(),
        }),
        namespaces,
        ..template.clone()
    }
}

/// An environment made with "Add Edge Environment" in Portainer's UI: no agent yet, and a key
/// naming Portainer's NodePort, not a VPC endpoint.
fn ui_environment(template: &Environment, consumer: &FleetConsumer, id: i64, fingerprint: &str) -> Environment {
    let key = format!("{PORTAINER_URL}|{UI_TUNNEL_ADDR}|{fingerprint}|{id}");
    Environment {
        id,
        name: consumer.environment.clone(),
        edge_key: base64_unpadded(key.as_bytes()),
        ..template.clone()
    }
}

/// Standard base64 without `=` padding, as Portainer writes Edge keys.
fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeplan_model::Observed;

    use super::*;
    use crate::workspace;

    #[test]
    fn base64_matches_the_seed_worlds_key() {
        let key =
            "https://portainer.example.com|portainer.example.com:30776|rLfsA/fnmkVWQ1bQTpL12kFQegS/4lBf2Z1+Su87Zgc=|1";
        assert_eq!(
            base64_unpadded(key.as_bytes()),
            "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fHJMZnNBL2ZubWtWV1ExYlFUcEwxMmtGUWVnUy80bEJmMloxK1N1ODdaZ2M9fDE"
        );
        assert_eq!(base64_unpadded(b"ab"), "YWI");
        assert_eq!(base64_unpadded(b"a"), "YQ");
    }

    /// The world loads, and every node of the matching spec is observed without an error,
    /// with a mix of present and absent objects.
    #[test]
    fn the_generated_world_observes_every_node_of_the_spec() {
        const CONSUMERS: usize = 20;
        let seed = std::fs::read_to_string(workspace::root().join("specs/seed.yaml")).unwrap();
        let spec_yaml = fleet_spec::generate(&seed, CONSUMERS).unwrap();
        let dir = tempfile_dir();
        std::fs::write(dir.join("fleet-20.yaml"), spec_yaml).unwrap();
        let world = edgeplan_testkit::sim(edgeplan_sim::load(&generate(CONSUMERS).unwrap()).unwrap());
        let session = edgeplan_testkit::session(edgeplan_testkit::load_stack(&dir.join("fleet-20.yaml")), &world);
        let nodes = session.stack.nodes();
        let observations = edgeplan_testkit::run(&session, session.router.observe_all(&nodes));
        assert_eq!(observations.len(), nodes.len());
        let errors: Vec<String> = observations
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.address)))
            .take(5)
            .collect();
        assert!(errors.is_empty(), "observing the fleet world failed: {errors:#?}");
        let mut counts = BTreeMap::<bool, usize>::new();
        for observation in &observations {
            *counts.entry(matches!(observation.result, Ok(Observed::Present(_)))).or_default() += 1;
        }
        // Every `ENVIRONMENT_EVERY`-th consumer's environment, and the provider's policy and settings.
        assert!(
            counts.get(&true).is_some_and(|&n| n > CONSUMERS / ENVIRONMENT_EVERY),
            "too few objects found: {counts:?}"
        );
        assert!(counts.get(&false).is_some_and(|&n| n > CONSUMERS), "too few objects missing: {counts:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A scratch directory holding the example policies, for a generated spec.
    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("edgeplan-fleet-world-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        for entry in std::fs::read_dir(workspace::root().join("specs/policies")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join("policies").join(entry.file_name())).unwrap();
        }
        dir
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generate(5).unwrap(), generate(5).unwrap());
    }
}
