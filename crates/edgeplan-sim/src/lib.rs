//! The embedded simulated world: AWS, the Kubernetes clusters and Portainer in one YAML file,
//! behind the [`Backend`](edgeplan_model::Backend) trait. `--world FILE` runs edgeplan with no
//! cloud account, and a run is instant while reporting realistic waits.
//!
//! # The world file
//!
//! ```yaml
//! format_version: 1          # refused if newer than this crate
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
//! - The LB controller builds the NLB only if its role's default policy version allows
//!   `edgeplan_lint::iam::INTERNAL_NLB_ACTIONS` (else `FailedBuildModel`, naming
//!   `ec2:DescribeRouteTables` as the seed saw it) and the subnets are private and tagged.
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
//! # Observing and executing
//!
//! Objects are found as the real backends will find them (ownership tags and labels, adopted
//! IDs, natural keys, the Service's status hostname for the NLB). A reference a node needs to
//! find its object (the association's subnet, the NLB's hostname) is resolved by observing the
//! referenced node in the same batch. Attributes carry the node's desired attribute names, so
//! a converged world diffs clean, plus the observed-only facts the live rules need.
//!
//! EDGE_KEYs never leave the world as text: observations carry `sha256:` fingerprints
//! ([`secret::key_fingerprint`]) and field 2; `execute` given the agent key's fingerprint
//! derives the key itself. A provider-side connection is the consumer's VPC endpoint seen from
//! the service: its state is the endpoint's, stored once.
//!
//! Architecture invariant: no I/O. [`load`] and [`save`] take and return text.

mod backend;
mod durations;
mod execute;
mod file;
mod http;
mod net;
mod observe;
mod query;
pub mod secret;
mod sim;
mod world;

pub use backend::SimBackend;
pub use durations::modelled_seconds;
pub use file::{MAX_WORLD_BYTES, WorldError, load, save};
pub use observe::environment_type;
pub use query::{DEFAULT_TUNNEL_PORT, missing_nlb_actions, tunnel_port};
pub use sim::{SETTLE_LIMIT_SECONDS, Settled};
pub use world::*;
