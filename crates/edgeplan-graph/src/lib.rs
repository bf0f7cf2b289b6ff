//! A generic dependency graph: nodes under stable keys, edges that say why, validated once.
//!
//! The plan engine compiles a spec into nodes with stable addresses (`provider.nlb_subnet`,
//! `consumer.prod.vpce`) and adds an edge `from → to` whenever `to` needs an output of `from`:
//! `from` must run first. Each edge carries a small payload saying why ("vpce needs
//! endpoint_service.service_name"), which cycle reports quote. This crate knows nothing about
//! edgeplan's node types: keys, node values and edge payloads are generic.
//!
//! ```
//! use edgeplan_graph::GraphBuilder;
//!
//! let mut builder = GraphBuilder::new();
//! builder.add_node("service", ()).unwrap();
//! builder.add_node("vpce", ()).unwrap();
//! builder.add_edge(&"service", &"vpce", "needs service_name").unwrap();
//! let dag = builder.build().unwrap();
//! assert_eq!(dag.topological_order(), [&"service", &"vpce"]);
//! ```
//!
//! **Architecture invariant:** a [`Dag`] is acyclic by construction: the only way to get one is
//! [`GraphBuilder::build`], which validates, and a `Dag` is immutable. Walkers can rely on it.
//! A graph with cycles yields a [`CycleError`] that names each cycle and the edges to cut.
//!
//! Every output is deterministic: it depends on the keys' order, never on insertion order or
//! hashing. No I/O, no async. petgraph is an implementation detail and appears in no public
//! signature.

mod builder;
mod cycle;
mod dag;
mod render;

pub use builder::{DuplicateNode, GraphBuilder, UnknownNode};
pub use cycle::{Cycle, CycleError};
pub use dag::{Dag, Iter, NotInGraph};
pub use render::{mermaid_escaped, mermaid_ids};

use std::fmt;

/// One dependency: `to` needs something `from` produces, so `from` runs first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge<K, E> {
    pub from: K,
    pub to: K,
    /// The caller's explanation, e.g. "vpce needs endpoint_service.service_name".
    pub why: E,
}

/// `a → b (why)`.
impl<K: fmt::Display, E: fmt::Display> fmt::Display for Edge<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {} ({})", self.from, self.to, self.why)
    }
}
