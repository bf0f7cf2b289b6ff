//! The embedded simulated world: AWS, the Kubernetes clusters and Portainer in one YAML file,
//! behind the [`Backend`](edgeplan_model::Backend) trait. `--world FILE` runs edgeplan with no
//! cloud account, and a run is instant while reporting realistic waits.
//!
//! # The world file
//!
//! ```yaml
//! format_version: 2          # refused unless exactly this crate's version
//! now: 0                     # the virtual clock, seconds
//! aws:                       # per account: iam (roles, managed policies with versions),
//!   - account: "123456789012"  # regions (AZ name→ID map, vpcs, subnets, route_tables,
//!     iam: {…}               # security_groups, load_balancers, endpoint_services,
//!     regions: [{…}]         # vpc_endpoints)
//! kubernetes:                # per kube context: cluster_name, aws {account, region,
//!   - context: staging       # vpc_id}, lb_controller {role_name, …}, namespaces,
//!     …                      # deployments, services, secrets, config_maps, objects, events
//! portainer:                 # per URL: deployment it runs as, chisel server_fingerprint,
//!   - url: https://…         # settings (stored) and effective (read at the last restart),
//!     …                      # environments with Portainer's JSON keys (Id, Name, Type, …)
//! pending: []                # timed transitions: NLB active, targets healthy, VPCE
//! history: []                # available, rollout complete; and what happened, with waits
//! ```
//!
//! See `world.rs` for every field, and `testdata/worlds/` for two complete worlds.
//!
//! # Behaviour (issue 3, item 6)
//!
//! - The LB controller builds the NLB only if its role's policies allow the calls it makes
//!   (`iam::CONTROLLER_CALLS`, else `FailedBuildModel`, naming `ec2:DescribeRouteTables` as the
//!   seed saw it) and the subnets are private and tagged.
//! - NLB targets turn healthy ~90 s after the Service's targetPort is the port Portainer
//!   listens on (its `--tunnel-port`, and only while Edge Compute is effective), the pods'
//!   security group admits the NLB subnet, and the NLB is active (~180 s after creation).
//! - An endpoint service needs an active NLB; a VPC endpoint needs every subnet in an AZ
//!   (by ID) the service is in, and waits in `pendingAcceptance` until accepted, then
//!   `pending` ~120 s.
//! - The agent crashes on a key the agent's decoder rejects, polls only with a matching
//!   EDGE_ID, and holds a tunnel only if field 2 is a VPC endpoint of its VPC that leads to a
//!   healthy target, with the server's fingerprint in field 3.
//! - Edge Compute settings take effect when Portainer's deployment is restarted (~30 s).
//!
//!
//! # Backends
//!
//! [`SimConnector`] opens one backend per scope over the shared [`SimWorld`]: an AWS account
//! and region, a kube context, a Portainer URL. Each answers only for its own API, as the real
//! one would (typed errors with the APIs' codes, ownership from tags and labels, server-side
//! apply of the objects the engine renders). What the world's own actors do across APIs (the
//! LB controller turning a Service into an NLB, health checks, the agent connecting, Portainer
//! re-reading its settings on a restart and computing heartbeats) is world behaviour, on the
//! world's virtual clock, never part of an observation of another scope.
//!
//! Nothing here derives domain facts or keys: the engine does, from what these backends report.
//!
//! Architecture invariant: no I/O. [`load`] and [`save`] take and return text.

mod aws;
mod clock;
mod durations;
mod file;
mod http;
mod iam;
mod kube;
mod net;
mod portainer;
mod query;
mod sim;
mod store;
mod world;

use std::sync::Arc;

use edgeplan_model::{Backend, BackendError, BoxFuture, Clock, Connector, Scope};

pub use clock::VirtualClock;
pub use durations::modelled_seconds;
pub use file::{MAX_WORLD_BYTES, WorldError, load, save};
pub use query::{DEFAULT_TUNNEL_PORT, tunnel_port};
pub use sim::{SETTLE_LIMIT_SECONDS, Settled};
pub use store::{INVENTORY_LABEL, MemoryStore, SimWorld, WorldStore};
pub use world::*;

/// Opens the simulated backend of a scope: refused, as a real client would be, when the world
/// has no such account and region, kube context or Portainer.
#[derive(Debug, Clone)]
pub struct SimConnector {
    world: Arc<SimWorld>,
}

impl SimConnector {
    pub fn new(world: Arc<SimWorld>) -> SimConnector {
        SimConnector { world }
    }

    pub fn world(&self) -> &Arc<SimWorld> {
        &self.world
    }
}

impl Connector for SimConnector {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>> {
        let transport = |message: String| BackendError::Transport { message, retryable: false };
        let result: Result<Arc<dyn Backend>, BackendError> = match scope {
            Scope::Aws { account, region, .. } => {
                if self.world.read(|w| w.region(account, region).is_some()).unwrap_or(false) {
                    Ok(Arc::new(aws::SimAws {
                        world: Arc::clone(&self.world),
                        scope: scope.clone(),
                        account: account.clone(),
                        region: region.clone(),
                    }))
                } else {
                    Err(transport(format!("the simulated world has no AWS account {account} in {region}")))
                }
            }
            Scope::Kubernetes { context } => {
                if self.world.read(|w| w.cluster(context).is_some()).unwrap_or(false) {
                    Ok(Arc::new(kube::SimKube {
                        world: Arc::clone(&self.world),
                        scope: scope.clone(),
                        context: context.clone(),
                    }))
                } else {
                    Err(transport(format!("the simulated world has no kube context `{context}`")))
                }
            }
            Scope::Portainer { url } => {
                if self.world.read(|w| w.portainer_server(url).is_some()).unwrap_or(false) {
                    Ok(Arc::new(portainer::SimPortainer {
                        world: Arc::clone(&self.world),
                        scope: scope.clone(),
                        url: url.clone(),
                    }))
                } else {
                    Err(transport(format!("the simulated world has no Portainer at {url}")))
                }
            }
            Scope::Engine => Err(BackendError::unsupported("the engine's own nodes have no backend")),
        };
        Box::pin(std::future::ready(result))
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.world.clock())
    }
}
