//! Nodes → a validated DAG. Every reference becomes an edge from the node that provides the
//! output to the node that needs it, labelled with the attribute that needs it.

use std::fmt;

use edgeplan_graph::{CycleError, Dag, GraphBuilder};

use crate::attr::Attr;
use crate::node::{Address, Node};

/// The resource graph: nodes by address, edges labelled with the attribute that needs them.
pub type ResourceGraph = Dag<Address, Node, Attr>;

#[derive(Debug)]
pub enum GraphError {
    DuplicateAddress(Address),
    /// A node references a node that does not exist (a compiler bug, reported rather than
    /// panicking).
    UnknownReference {
        from: Address,
        to: Address,
    },
    Cycle(CycleError<Address, Attr>),
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::DuplicateAddress(address) => write!(f, "two nodes have the address {address}"),
            GraphError::UnknownReference { from, to } => write!(f, "{from} references {to}, which does not exist"),
            GraphError::Cycle(cycle) => write!(f, "{cycle}"),
        }
    }
}

impl std::error::Error for GraphError {}

pub fn resource_graph(nodes: Vec<Node>) -> Result<ResourceGraph, GraphError> {
    let edges: Vec<(Address, Address, Attr)> = nodes
        .iter()
        .flat_map(|node| node.references().map(|(field, r)| (r.node.clone(), node.address.clone(), field)))
        .collect();
    let mut builder = GraphBuilder::new();
    for node in nodes {
        let address = node.address.clone();
        builder.add_node(address, node).map_err(|d| GraphError::DuplicateAddress(d.key))?;
    }
    for (from, to, why) in edges {
        builder
            .add_edge(&from, &to, why)
            .map_err(|_| GraphError::UnknownReference { from: to.clone(), to: from.clone() })?;
    }
    builder.build().map_err(GraphError::Cycle)
}
