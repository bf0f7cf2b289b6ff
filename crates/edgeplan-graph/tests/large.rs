//! Graphs the size of a 1,000-consumer spec. No timing assertions (figures belong to
//! `cargo xtask bench`): these fail by taking minutes if something is quadratic, or by
//! overflowing the stack if something recurses per node.

use std::collections::HashMap;

use edgeplan_graph::{Dag, GraphBuilder};

const PROVIDER: [&str; 7] = [
    "provider.vpc",
    "provider.subnets",
    "provider.nlb",
    "provider.target_group",
    "provider.listener",
    "provider.endpoint_service",
    "provider.portainer",
];

const CONSUMER: [&str; 15] = [
    "vpc",
    "subnet_a",
    "subnet_b",
    "security_group",
    "vpce",
    "dns",
    "iam_role",
    "iam_policy",
    "namespace",
    "secret",
    "deployment",
    "service",
    "environment",
    "edge_key",
    "agent",
];

/// 7 provider nodes in a chain, then per consumer 15 nodes: each needs the previous one and
/// one provider node (or, for the first, two of them): 15 × 1,000 + 7 nodes, 30,006 edges.
fn privatelink_shape(consumers: usize) -> GraphBuilder<String, usize, &'static str> {
    let mut builder = GraphBuilder::new();
    for (i, key) in PROVIDER.iter().enumerate() {
        builder.add_node(key.to_string(), i).expect("distinct nodes");
    }
    for pair in PROVIDER.windows(2) {
        builder.add_edge(&pair[0].to_string(), &pair[1].to_string(), "provider chain").expect("known nodes");
    }
    for consumer in 0..consumers {
        let keys: Vec<String> = CONSUMER.iter().map(|name| format!("consumer.c{consumer:04}.{name}")).collect();
        for (i, key) in keys.iter().enumerate() {
            builder.add_node(key.clone(), i).expect("distinct nodes");
        }
        builder.add_edge(&PROVIDER[0].to_string(), &keys[0], "vpc peering plan").expect("known nodes");
        builder.add_edge(&PROVIDER[5].to_string(), &keys[0], "allowed principal").expect("known nodes");
        for i in 1..keys.len() {
            builder.add_edge(&keys[i - 1], &keys[i], "chain").expect("known nodes");
            let provider = PROVIDER[i % PROVIDER.len()].to_string();
            builder.add_edge(&provider, &keys[i], "needs a provider output").expect("known nodes");
        }
    }
    builder
}

#[test]
fn thousand_consumer_graph_builds_and_walks() {
    let dag: Dag<String, usize, &str> = privatelink_shape(1_000).build().unwrap();
    assert_eq!(dag.len(), 15_007);
    assert_eq!(dag.edges().len(), 6 + 1_000 * (2 + 14 * 2));

    let order = dag.topological_order();
    assert_eq!(order.len(), dag.len());
    let position: HashMap<&String, usize> = order.iter().enumerate().map(|(i, key)| (*key, i)).collect();
    assert!(dag.edges().all(|(from, to, _)| position[from] < position[to]));

    let agent = "consumer.c0420.agent".to_string();
    let selected = dag.closure_with_dependencies([&agent]).unwrap();
    assert_eq!(selected.len(), 15 + PROVIDER.len());
    let kept = dag.without_dependents(&["provider.endpoint_service".to_string()]).unwrap();
    assert_eq!(kept.len(), 5, "only the provider chain before the endpoint service survives");
    assert_eq!(dag.descendants(&PROVIDER[0].to_string()).unwrap().len(), dag.len() - 1);
    assert_eq!(dag.ancestors(&agent).unwrap().len(), 14 + PROVIDER.len());

    let layers = dag.layers();
    let (length, path) = dag.longest_path(|_, _| 1);
    assert_eq!(length, layers.len() as u64);
    assert_eq!(path.len(), layers.len());
    assert_eq!(layers.iter().map(Vec::len).sum::<usize>(), dag.len());

    assert!(dag.to_dot(|key, _| key.clone()).lines().count() > dag.len() + dag.edges().len());
    assert!(dag.to_mermaid(|key, _| key.clone()).lines().count() > dag.len() + dag.edges().len());
}

#[test]
fn thousand_consumer_graph_with_a_back_edge_reports_one_component() {
    let mut builder = privatelink_shape(1_000);
    builder.add_edge(&"consumer.c0999.agent".to_string(), &PROVIDER[2].to_string(), "back edge").unwrap();
    let err = builder.build().unwrap_err();
    assert_eq!(err.cycles.len(), 1);
    let cycle = &err.cycles[0];
    assert_eq!(cycle.path[0], "consumer.c0999.agent");
    assert_eq!(cycle.path.first(), cycle.component.first());
    // Every cycle here runs through the one edge that goes backwards.
    assert_eq!(cycle.edges[0].why, "back edge");
    assert!(!cycle.only_cycle);
}

#[test]
fn chain_of_fifteen_thousand_nodes_does_not_recurse() {
    let keys: Vec<String> = (0..15_000).map(|i| format!("n{i:05}")).collect();
    let mut builder = GraphBuilder::new();
    for key in &keys {
        builder.add_node(key.clone(), ()).unwrap();
    }
    for pair in keys.windows(2) {
        builder.add_edge(&pair[0], &pair[1], ()).unwrap();
    }
    let dag = builder.build().unwrap();
    assert_eq!(dag.layers().len(), keys.len());
    assert_eq!(dag.longest_path(|_, _| 1).0, keys.len() as u64);
    assert_eq!(dag.descendants(&keys[0]).unwrap().len(), keys.len() - 1);
    assert_eq!(dag.closure_with_dependencies(keys.last()).unwrap().len(), keys.len());
}
