//! What the AWS test binary (and the moto benchmark) share: one moto_server for the process,
//! SDK clients of the test's own, seeding moto with a simulated world's AWS side, the LB
//! controller's part, and sessions that serve AWS from moto and the rest from the simulator.

#![allow(dead_code, unreachable_pub)]

pub mod conformance;
pub mod controller;
pub mod seed;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use aws_config::BehaviorVersion;
use edgeplan_aws::{AwsConnector, AwsSettings, CallCounts, ProfilePaths};
use edgeplan_model::Connector;
use edgeplan_sim::{SimConnector, SimWorld, World};
use edgeplan_testkit::mixed::MixedConnector;
use edgeplan_testkit::moto::{self, Server};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";

/// The test's own SDK clients: independent of the backend under test.
#[derive(Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Clients {
    pub async fn new(url: &str) -> Clients {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_types::region::Region::new(REGION))
            .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(url)
            .http_client(http)
            .load()
            .await;
        Clients {
            ec2: aws_sdk_ec2::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
        }
    }
}

/// One moto_server for the whole test binary; tests take turns on it (each resets it first).
pub struct Moto {
    pub server: Server,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

/// The process's moto, reset, and the turn to use it. The server stops when the process ends
/// (the launcher exits when its stdin closes).
pub fn moto() -> (&'static Moto, MutexGuard<'static, ()>) {
    let turn = TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let moto = MOTO
        .get_or_init(|| moto::start_moto().map(|server| Moto { server }))
        .as_ref()
        .unwrap_or_else(|e| panic!("moto_server did not start: {e}"));
    moto::reset(&moto.server).expect("reset moto");
    (moto, turn)
}

/// A current-thread runtime with I/O and time, as the CLI runs.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// AWS profile files naming `url` as every profile's endpoint (aws-config reads
/// `endpoint_url` from a profile with no code of ours involved).
pub struct Profiles {
    pub dir: tempfile::TempDir,
    pub paths: ProfilePaths,
}

pub fn profiles(url: &str, names: &[&str]) -> Profiles {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config: String = names
        .iter()
        .map(|name| format!("[profile {name}]\nregion = {REGION}\nendpoint_url = {url}\n\n"))
        .chain(std::iter::once(format!("[default]\nregion = {REGION}\nendpoint_url = {url}\n")))
        .collect();
    let credentials: String = names
        .iter()
        .chain(std::iter::once(&"default"))
        .map(|name| format!("[{name}]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n"))
        .collect();
    let paths = ProfilePaths { config: dir.path().join("config"), credentials: dir.path().join("credentials") };
    std::fs::write(&paths.config, config).expect("write config");
    std::fs::write(&paths.credentials, credentials).expect("write credentials");
    Profiles { dir, paths }
}

/// A connector of the backend under test to `url`, through profile files; quick retries.
pub fn aws_connector(profiles: &Profiles, clock: Arc<dyn edgeplan_model::Clock>, counts: &CallCounts) -> AwsConnector {
    let mut settings = AwsSettings::new(clock);
    settings.profile_files = Some(profiles.paths.clone());
    settings.initial_backoff = Duration::from_millis(20);
    settings.max_attempts = 10;
    settings.counts = counts.clone();
    AwsConnector::new(settings)
}

/// The simulated world for the Kubernetes and Portainer scopes: `world` with its LB
/// controllers off (the test plays the controller, in moto).
pub fn sim_without_controllers(mut world: World) -> Arc<SimWorld> {
    for cluster in &mut world.kubernetes {
        cluster.lb_controller = None;
    }
    SimWorld::in_memory(world)
}

/// AWS from `url` (through profiles), the rest from `world`, the controller playing its part.
pub struct Mixed {
    pub connector: Arc<dyn Connector>,
    pub world: Arc<SimWorld>,
    pub counts: CallCounts,
    pub controller: Arc<controller::Controller>,
    pub profiles: Profiles,
}

/// moto at `moto_url` seeded with `world`'s AWS side (by the test's own clients, returned), and
/// [`mixed_via`] over it, the backend under test reaching AWS at `aws_url`.
pub async fn seeded(moto_url: &str, aws_url: &str, world: World, profile_names: &[&str]) -> (Clients, Mixed) {
    let clients = Clients::new(moto_url).await;
    seed::seed(&clients, &world).await.expect("seed moto");
    let env = mixed_via(aws_url, moto_url, world, profile_names).await;
    (clients, env)
}

pub async fn mixed(url: &str, world: World, profile_names: &[&str]) -> Mixed {
    mixed_via(url, url, world, profile_names).await
}

/// [`mixed`], the backend under test reaching AWS at `url` and the test's controller at
/// `controller_url` (moto itself, when the backend goes through the fault proxy).
pub async fn mixed_via(url: &str, controller_url: &str, world: World, profile_names: &[&str]) -> Mixed {
    let world = sim_without_controllers(world);
    let sim: Arc<dyn Connector> = Arc::new(SimConnector::new(Arc::clone(&world)));
    let profiles = profiles(url, profile_names);
    let counts = CallCounts::new();
    let aws: Arc<dyn Connector> = Arc::new(aws_connector(&profiles, sim.clock(), &counts));
    let controller = Arc::new(controller::Controller::new(Clients::new(controller_url).await, Arc::clone(&world)));
    let connector: Arc<dyn Connector> =
        Arc::new(MixedConnector::new(aws, sim, Some(controller::Controller::hook(&controller))));
    Mixed { connector, world, counts, controller, profiles }
}

/// The AWS nodes of a plan's graph, and everything they depend on (Terraform's `-target`).
pub fn aws_closure(planned: &edgeplan_engine::Planned) -> std::collections::BTreeSet<edgeplan_model::Address> {
    let aws: Vec<edgeplan_model::Address> = planned
        .graph
        .iter()
        .filter(|(_, node)| node.scope.kind() == edgeplan_model::ScopeKind::Aws)
        .map(|(address, _)| address.clone())
        .collect();
    planned
        .graph
        .closure_with_dependencies(&aws)
        .expect("the AWS nodes are in the graph")
        .into_iter()
        .cloned()
        .collect()
}

pub fn repo(relative: &str) -> PathBuf {
    edgeplan_testkit::path(relative)
}
