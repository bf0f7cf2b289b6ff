//! `build` on graphs with cycles: what is reported, and the message.

use edgeplan_graph::{CycleError, Dag, Edge, GraphBuilder};

/// Edges `(from, to, why)`: `to` needs `from`.
fn build(
    nodes: &[&'static str],
    edges: &[(&'static str, &'static str, &'static str)],
) -> Result<Dag<&'static str, (), &'static str>, CycleError<&'static str, &'static str>> {
    let mut builder = GraphBuilder::new();
    for node in nodes {
        builder.add_node(*node, ()).expect("distinct nodes");
    }
    for (from, to, why) in edges {
        builder.add_edge(from, to, *why).expect("known nodes");
    }
    builder.build()
}

#[track_caller]
fn cycles(nodes: &[&'static str], edges: &[(&'static str, &'static str)]) -> CycleError<&'static str, &'static str> {
    let edges: Vec<_> = edges.iter().map(|(from, to)| (*from, *to, "why")).collect();
    build(nodes, &edges).expect_err("a cycle")
}

fn edge(from: &'static str, to: &'static str) -> Edge<&'static str, &'static str> {
    Edge { from, to, why: "why" }
}

#[test]
fn simple_cycle_starts_at_the_smallest_key() {
    let err = cycles(&["c", "b", "a"], &[("b", "c"), ("c", "a"), ("a", "b")]);
    assert_eq!(err.cycles.len(), 1);
    let cycle = &err.cycles[0];
    assert_eq!(cycle.path, ["a", "b", "c"]);
    assert_eq!(cycle.edges, [edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    assert_eq!(cycle.component, ["a", "b", "c"]);
    assert!(cycle.only_cycle);
}

#[test]
fn self_loop_is_a_cycle_of_one() {
    let err = cycles(&["a", "b"], &[("a", "b"), ("b", "b")]);
    assert_eq!(err.cycles.len(), 1);
    let cycle = &err.cycles[0];
    assert_eq!(cycle.path, ["b"]);
    assert_eq!(cycle.edges, [edge("b", "b")]);
    assert_eq!(cycle.component, ["b"]);
    assert!(cycle.only_cycle);
    insta::assert_snapshot!(err, @"dependency cycle: b → b; remove b → b (why)");
}

#[test]
fn self_loop_inside_a_cycle_is_reported_separately_and_first() {
    let err = cycles(&["a", "b"], &[("a", "b"), ("b", "a"), ("a", "a")]);
    let paths: Vec<_> = err.cycles.iter().map(|cycle| cycle.path.clone()).collect();
    assert_eq!(paths, [vec!["a"], vec!["a", "b"]]);
    // The self-loop does not count against the two-node cycle.
    assert!(err.cycles[1].only_cycle);
}

#[test]
fn two_independent_cycles_are_reported_separately() {
    let err =
        cycles(&["a", "b", "x", "y", "z"], &[("y", "x"), ("x", "y"), ("a", "b"), ("b", "a"), ("b", "x"), ("y", "z")]);
    let paths: Vec<_> = err.cycles.iter().map(|cycle| cycle.path.clone()).collect();
    assert_eq!(paths, [vec!["a", "b"], vec!["x", "y"]]);
    assert!(err.cycles.iter().all(|cycle| cycle.only_cycle));
}

#[test]
fn cycle_plus_acyclic_rest_reports_only_the_cycle() {
    // Nodes before, after and beside the cycle are not part of it.
    let err = cycles(
        &["before", "m1", "m2", "m3", "after", "beside"],
        &[("before", "m1"), ("m1", "m2"), ("m2", "m3"), ("m3", "m1"), ("m3", "after"), ("before", "beside")],
    );
    assert_eq!(err.cycles.len(), 1);
    assert_eq!(err.cycles[0].path, ["m1", "m2", "m3"]);
    assert_eq!(err.cycles[0].component, ["m1", "m2", "m3"]);
}

#[test]
fn a_shortest_cycle_through_the_first_node_is_reported() {
    // a → b → c → d → a, with the chord c → a: the short way round is a → b → c → a.
    let err = cycles(&["a", "b", "c", "d"], &[("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("c", "a")]);
    let cycle = &err.cycles[0];
    assert_eq!(cycle.path, ["a", "b", "c"]);
    assert_eq!(cycle.component, ["a", "b", "c", "d"]);
    assert!(!cycle.only_cycle);
}

#[test]
fn component_with_more_cycles_is_flagged() {
    // a ⇄ b and a ⇄ c: two cycles through `a`; cutting one edge leaves the other.
    let err = cycles(&["a", "b", "c"], &[("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")]);
    assert_eq!(err.cycles.len(), 1);
    let cycle = &err.cycles[0];
    assert_eq!(cycle.path, ["a", "b"]);
    assert_eq!(cycle.component, ["a", "b", "c"]);
    assert!(!cycle.only_cycle);
    insta::assert_snapshot!(err, @"dependency cycle: a → b → a; remove one of: a → b (why), b → a (why); other cycles exist among: a, b, c");
}

#[test]
fn message_names_the_cycle_and_the_edges_to_cut() {
    let err = build(
        &[
            "provider.nlb",
            "provider.endpoint_service",
            "consumer.prod.vpce",
            "consumer.prod.agent",
            "portainer.environment",
        ],
        &[
            ("provider.nlb", "provider.endpoint_service", "endpoint_service needs nlb.arn"),
            ("provider.endpoint_service", "consumer.prod.vpce", "vpce needs endpoint_service.service_name"),
            ("consumer.prod.vpce", "consumer.prod.agent", "agent needs vpce.dns_name"),
            ("consumer.prod.agent", "provider.endpoint_service", "endpoint_service needs agent.principal"),
            ("portainer.environment", "portainer.environment", "environment needs environment.id"),
        ],
    )
    .unwrap_err();
    insta::assert_snapshot!(err, @r"
    dependency cycle: consumer.prod.agent → provider.endpoint_service → consumer.prod.vpce → consumer.prod.agent; remove one of: consumer.prod.agent → provider.endpoint_service (endpoint_service needs agent.principal), provider.endpoint_service → consumer.prod.vpce (vpce needs endpoint_service.service_name), consumer.prod.vpce → consumer.prod.agent (agent needs vpce.dns_name)
    dependency cycle: portainer.environment → portainer.environment; remove portainer.environment → portainer.environment (environment needs environment.id)
    ");
}

#[test]
fn error_is_a_std_error() {
    let err = cycles(&["a"], &[("a", "a")]);
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().starts_with("dependency cycle: a → a"));
}

#[test]
fn a_ring_of_fifteen_thousand_nodes_does_not_overflow_the_stack() {
    let keys: Vec<String> = (0..15_000).map(|i| format!("n{i:05}")).collect();
    let mut builder = GraphBuilder::new();
    for key in &keys {
        builder.add_node(key.clone(), ()).unwrap();
    }
    for i in 0..keys.len() {
        builder.add_edge(&keys[i], &keys[(i + 1) % keys.len()], ()).unwrap();
    }
    let err = builder.build().unwrap_err();
    assert_eq!(err.cycles.len(), 1);
    assert_eq!(err.cycles[0].path, keys);
    assert!(err.cycles[0].only_cycle);
}
