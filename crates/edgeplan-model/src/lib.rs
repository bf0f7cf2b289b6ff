//! The resource model shared by the plan engine and every backend.
//!
//! A spec compiles into [`Node`]s: one per thing edgeplan creates, adopts or waits for, each
//! with a stable [`Address`] (`provider.nlb_subnet`, `consumer.prod.vpce`), the API [`Scope`]
//! that serves it, how it is found again without a state file ([`Identity`]), and its desired
//! attributes. An attribute is either a literal or a reference to another node's output; the
//! references *are* the dependency edges. Nothing here hard-codes an order.
//!
//! Architecture invariant: no I/O, no async. Secrets never enter a [`Value`]: a secret
//! attribute holds a reference (`env:`/`file:`), never the text.

pub mod backend;
mod compile;
mod graph;
mod node;
mod value;

pub use backend::{Action, Backend, LiveObject, Observation, Observed};
pub use compile::compile;
pub use graph::{GraphError, ResourceGraph, resource_graph};
pub use node::{Address, Expr, Identity, Node, NodeKind, Reference, Scope};
pub use value::{SecretText, Value, secret_fingerprint};
