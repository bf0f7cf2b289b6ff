//! Building a graph and every query on a valid `Dag`.

use std::collections::BTreeSet;

use edgeplan_graph::{Dag, DuplicateNode, GraphBuilder, NotInGraph, UnknownNode};

type TestDag = Dag<&'static str, u64, &'static str>;

/// Nodes weigh 1 unless given as `name=weight`; edges `(from, to)` mean `to` needs `from`.
#[track_caller]
fn dag(nodes: &[&'static str], edges: &[(&'static str, &'static str)]) -> TestDag {
    let mut builder = GraphBuilder::new();
    for node in nodes {
        let (key, weight) = match node.split_once('=') {
            Some((key, weight)) => (key, weight.parse().expect("a number")),
            None => (*node, 1),
        };
        builder.add_node(key, weight).expect("distinct nodes");
    }
    for (from, to) in edges {
        builder.add_edge(from, to, "why").expect("known nodes");
    }
    builder.build().expect("acyclic")
}

fn set<'a>(keys: &[&'a str]) -> BTreeSet<&'a str> {
    keys.iter().copied().collect()
}

/// `a` feeds `b` and `c`, both feed `d`.
fn diamond() -> TestDag {
    dag(&["d", "c", "b", "a"], &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
}

#[test]
fn duplicate_node_is_rejected_and_the_first_value_kept() {
    let mut builder: GraphBuilder<&str, u64, &str> = GraphBuilder::new();
    builder.add_node("a", 1).unwrap();
    let err = builder.add_node("a", 2).unwrap_err();
    assert_eq!(err, DuplicateNode { key: "a" });
    assert_eq!(err.to_string(), "duplicate node a");
    assert_eq!(builder.build().unwrap().node(&"a"), Some(&1));
}

#[test]
fn edge_to_or_from_an_unknown_node_is_rejected() {
    let mut builder: GraphBuilder<&str, (), &str> = GraphBuilder::new();
    builder.add_node("a", ()).unwrap();
    let err = builder.add_edge(&"a", &"nope", "why").unwrap_err();
    assert_eq!(err, UnknownNode { edge_from: "a", edge_to: "nope", missing: "nope" });
    assert_eq!(err.to_string(), "edge a → nope: no node nope");
    let err = builder.add_edge(&"x", &"y", "why").unwrap_err();
    assert_eq!(err.missing, "x");
    assert_eq!(builder.build().unwrap().edges().len(), 0);
}

#[test]
fn duplicate_edge_keeps_the_first_reason() {
    let mut builder = GraphBuilder::new();
    builder.add_node("a", ()).unwrap();
    builder.add_node("b", ()).unwrap();
    builder.add_edge(&"a", &"b", "first").unwrap();
    builder.add_edge(&"a", &"b", "second").unwrap();
    let dag = builder.build().unwrap();
    assert_eq!(dag.edges().collect::<Vec<_>>(), [(&"a", &"b", &"first")]);
    assert_eq!(dag.edge(&"a", &"b"), Some(&"first"));
    assert_eq!(dag.edge(&"b", &"a"), None);
    assert_eq!(dag.dependencies(&"b"), Some(vec![&"a"]));
}

#[test]
fn empty_graph() {
    let dag = dag(&[], &[]);
    assert!(dag.is_empty());
    assert_eq!(dag.len(), 0);
    assert!(dag.topological_order().is_empty());
    assert!(dag.layers().is_empty());
    assert_eq!(dag.longest_path(|_, w| *w), (0, vec![]));
    assert_eq!(dag.iter().count(), 0);
}

#[test]
fn node_lookup() {
    let dag = dag(&["a=7", "b"], &[("a", "b")]);
    assert_eq!(dag.len(), 2);
    assert!(!dag.is_empty());
    assert_eq!(dag.node(&"a"), Some(&7));
    assert_eq!(dag.node(&"zz"), None);
    assert!(dag.contains(&"b"));
    assert!(!dag.contains(&"zz"));
}

#[test]
fn topological_order_breaks_ties_by_key() {
    assert_eq!(diamond().topological_order(), [&"a", &"b", &"c", &"d"]);
    // `z` is ready first but `a` waits for it; `m` is independent.
    let dag = dag(&["m", "a", "z"], &[("z", "a")]);
    assert_eq!(dag.topological_order(), [&"m", &"z", &"a"]);
}

#[test]
fn results_do_not_depend_on_insertion_order() {
    let nodes = ["a", "b", "c", "d", "e"];
    let edges = [("a", "c"), ("b", "c"), ("c", "e"), ("d", "e"), ("a", "e")];
    let forward = dag(&nodes, &edges);
    let mut reversed_nodes = nodes;
    reversed_nodes.reverse();
    let mut reversed_edges = edges;
    reversed_edges.reverse();
    let backward = dag(&reversed_nodes, &reversed_edges);
    assert_eq!(forward.topological_order(), backward.topological_order());
    assert_eq!(forward.edges().collect::<Vec<_>>(), backward.edges().collect::<Vec<_>>());
    assert_eq!(forward.layers(), backward.layers());
    assert_eq!(forward.to_dot(|k, _| k.to_string()), backward.to_dot(|k, _| k.to_string()));
}

#[test]
fn iteration_follows_topological_order() {
    let dag = dag(&["b=2", "a=1", "c=3"], &[("b", "a")]);
    let visited: Vec<(&str, u64)> = dag.iter().map(|(k, w)| (*k, *w)).collect();
    assert_eq!(visited, [("b", 2), ("a", 1), ("c", 3)]);
    assert_eq!(dag.iter().len(), 3);
    let mut by_for = Vec::new();
    for (key, _) in &dag {
        by_for.push(*key);
    }
    assert_eq!(by_for, ["b", "a", "c"]);
}

#[test]
fn edges_are_ordered_by_from_then_to() {
    let dag = dag(&["a", "b", "c"], &[("b", "c"), ("a", "c"), ("a", "b")]);
    let edges: Vec<_> = dag.edges().map(|(from, to, _)| (*from, *to)).collect();
    assert_eq!(edges, [("a", "b"), ("a", "c"), ("b", "c")]);
}

#[test]
fn direct_dependencies_and_dependents() {
    let dag = diamond();
    assert_eq!(dag.dependencies(&"d"), Some(vec![&"b", &"c"]));
    assert_eq!(dag.dependencies(&"a"), Some(vec![]));
    assert_eq!(dag.dependents(&"a"), Some(vec![&"b", &"c"]));
    assert_eq!(dag.dependents(&"d"), Some(vec![]));
    assert_eq!(dag.dependencies(&"zz"), None);
    assert_eq!(dag.dependents(&"zz"), None);
}

#[test]
fn ancestors_and_descendants_are_transitive_and_exclude_the_node() {
    let dag = diamond();
    assert_eq!(dag.ancestors(&"d").unwrap(), set(&["a", "b", "c"]).iter().collect());
    assert_eq!(dag.ancestors(&"b").unwrap(), set(&["a"]).iter().collect());
    assert!(dag.ancestors(&"a").unwrap().is_empty());
    assert_eq!(dag.descendants(&"a").unwrap(), set(&["b", "c", "d"]).iter().collect());
    assert!(dag.descendants(&"d").unwrap().is_empty());
    assert_eq!(dag.ancestors(&"zz"), None);
    assert_eq!(dag.descendants(&"zz"), None);
}

#[test]
fn disconnected_components_stay_apart() {
    let dag = dag(&["a", "b", "x", "y", "lonely"], &[("a", "b"), ("x", "y")]);
    assert_eq!(dag.topological_order(), [&"a", &"b", &"lonely", &"x", &"y"]);
    assert_eq!(dag.descendants(&"a").unwrap(), [&"b"].into_iter().collect());
    assert_eq!(dag.layers(), [vec![&"a", &"lonely", &"x"], vec![&"b", &"y"]]);
    assert_eq!(dag.closure_with_dependencies(&["y"]).unwrap(), [&"x", &"y"].into_iter().collect());
    assert_eq!(dag.without_dependents(&["a"]).unwrap(), [&"lonely", &"x", &"y"].into_iter().collect());
}

#[test]
fn target_selects_targets_and_what_they_need() {
    let dag = dag(&["a", "b", "c", "d", "e"], &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]);
    assert_eq!(dag.closure_with_dependencies(&["b"]).unwrap(), [&"a", &"b"].into_iter().collect());
    assert_eq!(dag.closure_with_dependencies(&["b", "c"]).unwrap(), [&"a", &"b", &"c"].into_iter().collect());
    assert_eq!(dag.closure_with_dependencies(&["a"]).unwrap(), [&"a"].into_iter().collect());
    assert!(dag.closure_with_dependencies(&[]).unwrap().is_empty());
    assert_eq!(dag.closure_with_dependencies(&["e"]).unwrap().len(), 5);
}

#[test]
fn exclude_drops_excluded_and_their_dependents() {
    let dag = dag(&["a", "b", "c", "d", "e"], &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]);
    assert_eq!(dag.without_dependents(&["b"]).unwrap(), [&"a", &"c"].into_iter().collect());
    assert_eq!(dag.without_dependents(&["e"]).unwrap().len(), 4);
    assert!(dag.without_dependents(&["a"]).unwrap().is_empty());
    assert_eq!(dag.without_dependents(&[]).unwrap().len(), 5);
}

#[test]
fn selections_list_every_unknown_key_once() {
    let dag = diamond();
    let err = dag.closure_with_dependencies(&["b", "typo", "other", "typo"]).unwrap_err();
    assert_eq!(err, NotInGraph { keys: vec!["typo", "other"] });
    assert_eq!(err.to_string(), "not in the graph: typo, other");
    assert_eq!(dag.without_dependents(&["nope"]).unwrap_err().keys, ["nope"]);
}

#[test]
fn longest_path_follows_the_heaviest_branch() {
    let dag = dag(&["a=1", "b=5", "c=2", "d=1"], &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]);
    assert_eq!(dag.longest_path(|_, w| *w), (7, vec![&"a", &"b", &"d"]));
    // Unit weights count nodes; the tie between b and c goes to the smaller key.
    assert_eq!(dag.longest_path(|_, _| 1), (3, vec![&"a", &"b", &"d"]));
}

#[test]
fn longest_path_can_end_anywhere_and_ties_go_to_the_smallest_key() {
    let dag = dag(&["a=1", "b=10", "x=3", "y=3"], &[("a", "b")]);
    assert_eq!(dag.longest_path(|_, w| *w), (11, vec![&"a", &"b"]));
    let dag = self::dag(&["x=3", "y=3"], &[]);
    assert_eq!(dag.longest_path(|_, w| *w), (3, vec![&"x"]));
    let dag = self::dag(&["a", "b"], &[("a", "b")]);
    assert_eq!(dag.longest_path(|_, _| 0), (0, vec![&"a"]));
}

#[test]
fn longest_path_saturates() {
    let dag = dag(&["a", "b"], &[("a", "b")]);
    let weight = |key: &&str, _: &u64| if *key == "a" { u64::MAX - 1 } else { 5 };
    assert_eq!(dag.longest_path(weight), (u64::MAX, vec![&"a", &"b"]));
}

#[test]
fn layers_place_a_node_after_its_deepest_dependency() {
    // `e` needs `a` directly and `d` (depth 2), so it sits at depth 3.
    let dag = dag(&["a", "b", "c", "d", "e"], &[("a", "b"), ("b", "d"), ("c", "d"), ("a", "e"), ("d", "e")]);
    assert_eq!(dag.layers(), [vec![&"a", &"c"], vec![&"b"], vec![&"d"], vec![&"e"]]);
}
