//! The resource model and the engine–backend contract.
//!
//! A spec compiles into [`Node`]s: one per thing edgeplan creates, adopts or waits for, each
//! with a stable [`Address`] (`provider.nlb_subnet`, `consumer.prod.vpce`), the [`Scope`] that
//! serves it, how it is found again without a state file ([`Identity`]), and its desired
//! attributes. An attribute is either a literal or a reference to another node's output; the
//! references *are* the dependency edges. Nothing here hard-codes an order.
//!
//! [`kinds`] declares, once per kind, its attributes, outputs, waits and scope kind; [`attr`]
//! is the only place attribute names are spelled. [`backend`] is the seam every backend
//! implements, one scope each.
//!
//! Architecture invariant: no I/O, no async runtime. Secrets never enter a node as text: a
//! secret attribute holds a reference (`env:`/`file:`) until the engine reads it.

pub mod attr;
pub mod backend;
mod compile;
mod graph;
pub mod join;
pub mod kinds;
pub mod manifest;
mod node;
mod value;

pub use attr::Attr;
pub use backend::{
    Action, Backend, BackendError, BoxFuture, Clock, Connector, HttpResponse, LeaseRecord, LeaseStore, LiveObject,
    Observation, Observed, Operation, OwnedObject, Request,
};
pub use compile::{LBC_ANNOTATION_PREFIX, LBC_SUBNETS_ANNOTATION, compile, secret_reference, spec_scopes};
pub use graph::{GraphError, ResourceGraph, resource_graph};
pub use kinds::{Compare, KindDecl, NodeKind, Role, ScopeKind, Subject, WaitKind};
pub use manifest::Manifest;
pub use node::{Address, Expr, Identity, Node, Ownership, Reference, Scope};
pub use value::{Canonical, SecretText, Value, secret_fingerprint, short_sha256, short_sha256_of};
