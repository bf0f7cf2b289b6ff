//! Shared fixtures: the seed spec's nodes and synthetic worlds around them.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use edgeplan_diag::SourceFile;
use edgeplan_model::{Address, Expr, LiveObject, Node, Observation, Observed, Value, compile};

pub fn seed_nodes() -> Vec<Node> {
    let text = include_str!("../../../../specs/seed.yaml");
    let spec = edgeplan_spec::parse(&SourceFile::new("seed.yaml", text)).expect("seed parses");
    compile(&spec)
}

/// A live object that matches the node's literal attributes, with every output known: an
/// output named like a desired attribute has that attribute's value, as real objects do.
pub fn matching(node: &Node) -> LiveObject {
    converged(std::slice::from_ref(node)).remove(&node.address).expect("one node")
}

/// Live objects for a world where everything already matches the spec: references resolve
/// to the upstream object's outputs.
pub fn converged(nodes: &[Node]) -> BTreeMap<Address, LiveObject> {
    let mut world: BTreeMap<Address, LiveObject> = BTreeMap::new();
    for node in nodes {
        let attributes: BTreeMap<String, Value> = node
            .desired
            .iter()
            .map(|(field, expr)| {
                let value = match expr {
                    Expr::Lit(value) => value.clone(),
                    Expr::Ref(reference) => world
                        .get(&reference.node)
                        .map_or_else(|| Value::Str(format!("{reference}")), |up| up.outputs[reference.output].clone()),
                };
                (field.to_string(), value)
            })
            .collect();
        let outputs = node
            .kind
            .outputs()
            .iter()
            .map(|o| {
                (
                    o.to_string(),
                    attributes.get(*o).cloned().unwrap_or_else(|| Value::Str(format!("{}.{o}", node.address))),
                )
            })
            .collect();
        world.insert(
            node.address.clone(),
            LiveObject { id: format!("id-of-{}", node.address), attributes, outputs, owned: true },
        );
    }
    world
}

pub fn observe_all(nodes: &[Node], f: impl Fn(&Node) -> Observed) -> Vec<Observation> {
    nodes.iter().map(|n| Observation { address: n.address.clone(), result: Ok(f(n)) }).collect()
}

pub fn refs(nodes: &[Node]) -> Vec<&Node> {
    nodes.iter().collect()
}
