use std::collections::BTreeMap;

use edgeplan_diag::SourceFile;
use edgeplan_model::{Address, Node, compile};

fn compile_file(text: &str) -> Vec<Node> {
    let spec = edgeplan_spec::parse(&SourceFile::new("spec.yaml", text)).expect("example spec parses");
    compile(&spec)
}

fn examples() -> [(&'static str, Vec<Node>); 2] {
    [
        ("seed", compile_file(include_str!("../../../specs/seed.yaml"))),
        ("fleet", compile_file(include_str!("../../../specs/fleet.yaml"))),
    ]
}

#[test]
fn every_reference_names_an_existing_node_and_a_declared_output() {
    for (name, nodes) in examples() {
        let by_address: BTreeMap<&Address, &Node> = nodes.iter().map(|n| (&n.address, n)).collect();
        assert_eq!(by_address.len(), nodes.len(), "{name}: duplicate address");
        for node in &nodes {
            for (attribute, reference) in node.references() {
                let target = by_address.get(&reference.node).unwrap_or_else(|| {
                    panic!("{name}: {}.{attribute} → missing node {}", node.address, reference.node)
                });
                assert!(
                    target.kind.outputs().contains(&reference.output),
                    "{name}: {}.{attribute} → {} has no output `{}`",
                    node.address,
                    target.kind,
                    reference.output
                );
            }
        }
    }
}

#[test]
fn the_seed_compiles_to_the_expected_nodes_and_edges() {
    let nodes = compile_file(include_str!("../../../specs/seed.yaml"));
    let mut lines = Vec::new();
    for node in &nodes {
        lines.push(format!("{} ({})", node.address, node.kind));
        for (attribute, reference) in node.references() {
            lines.push(format!("    {attribute} ← {reference}"));
        }
    }
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn secrets_compile_to_references_only() {
    for (name, nodes) in examples() {
        let everything = format!("{nodes:?}");
        assert!(everything.contains("SecretRef(\"env:AGENT_SECRET\")") || name == "seed", "{name}");
        assert!(!everything.contains("Literal"), "{name}");
    }
}

#[test]
fn the_example_specs_compile_to_acyclic_graphs_in_the_documented_order() {
    for (name, nodes) in examples() {
        let count = nodes.len();
        let graph = edgeplan_model::resource_graph(nodes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(graph.len(), count);
        let order: Vec<String> = graph.topological_order().iter().map(|a| a.to_string()).collect();
        let position = |a: &str| order.iter().position(|o| o == a).unwrap_or_else(|| panic!("{name}: {a}"));
        // IAM → subnet → Service → SG rule → endpoint service → VPCE → accept → key → agent,
        // derived from references alone.
        let chain = [
            "provider.lb_controller_policy",
            "provider.nlb",
            "provider.endpoint_service",
            "consumer.prod.vpce",
            "consumer.prod.connection_acceptance",
            "consumer.prod.agent",
        ];
        for pair in chain.windows(2) {
            assert!(position(pair[0]) < position(pair[1]), "{name}: {} before {}", pair[0], pair[1]);
        }
        assert!(position("provider.nlb_subnet") < position("provider.tunnel_service"), "{name}");
        assert!(position("provider.tunnel_service") < position("provider.cluster_sg_rule"), "{name}");
        assert!(position("consumer.prod.agent_key") < position("consumer.prod.agent"), "{name}");
    }
}
