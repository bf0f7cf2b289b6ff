//! Properties on random graphs, checked against brute force (reachability by Floyd–Warshall).
//!
//! Nodes are indices `0..n` with shuffled keys, so key order differs from index order. DAGs only
//! have edges from a lower to a higher index; cyclic graphs add back edges and self-loops.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgeplan_graph::{CycleError, Dag, GraphBuilder};
use proptest::prelude::*;
use proptest::sample::Index;

type Key = String;
type Why = String;

#[derive(Debug, Clone)]
struct Spec {
    keys: Vec<Key>,
    weights: Vec<u64>,
    /// By index; may contain duplicates, which the graph collapses.
    edges: Vec<(usize, usize)>,
}

impl Spec {
    fn why(&self, from: usize, to: usize) -> Why {
        format!("{}>{}", self.keys[from], self.keys[to])
    }

    fn build(&self) -> Result<Dag<Key, u64, Why>, CycleError<Key, Why>> {
        self.build_without(None)
    }

    fn build_without(&self, skipped: Option<(usize, usize)>) -> Result<Dag<Key, u64, Why>, CycleError<Key, Why>> {
        let mut builder = GraphBuilder::new();
        for (key, weight) in self.keys.iter().zip(&self.weights) {
            builder.add_node(key.clone(), *weight).expect("distinct keys");
        }
        for &(from, to) in &self.edges {
            if Some((from, to)) != skipped {
                builder.add_edge(&self.keys[from], &self.keys[to], self.why(from, to)).expect("known nodes");
            }
        }
        builder.build()
    }

    fn index(&self) -> HashMap<&str, usize> {
        self.keys.iter().enumerate().map(|(i, key)| (key.as_str(), i)).collect()
    }

    /// `reach[a][b]`: a path of one or more edges leads from `a` to `b`.
    fn reach(&self) -> Vec<Vec<bool>> {
        let n = self.keys.len();
        let mut reach = vec![vec![false; n]; n];
        for &(from, to) in &self.edges {
            reach[from][to] = true;
        }
        for via in 0..n {
            let onward = reach[via].clone();
            for row in reach.iter_mut().filter(|row| row[via]) {
                for (cell, &next) in row.iter_mut().zip(&onward) {
                    *cell |= next;
                }
            }
        }
        reach
    }

    fn keys_of(&self, indices: impl IntoIterator<Item = usize>) -> BTreeSet<&str> {
        indices.into_iter().map(|i| self.keys[i].as_str()).collect()
    }
}

fn borrowed<'a>(set: &BTreeSet<&'a Key>) -> BTreeSet<&'a str> {
    set.iter().map(|key| key.as_str()).collect()
}

/// A random DAG: keys `k00`… assigned to indices in shuffled order, edges low → high index.
fn dag_spec() -> impl Strategy<Value = Spec> {
    (1usize..=24)
        .prop_flat_map(|n| {
            let ranks = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let weights = prop::collection::vec(0u64..10, n);
            let pairs = prop::collection::vec((0..n, 0..n), 0..=3 * n);
            (ranks, weights, pairs)
        })
        .prop_map(|(ranks, weights, pairs)| Spec {
            keys: ranks.iter().map(|rank| format!("k{rank:02}")).collect(),
            weights,
            edges: pairs.into_iter().filter(|(a, b)| a != b).map(|(a, b)| (a.min(b), a.max(b))).collect(),
        })
}

/// A DAG with at least one edge, plus a back edge closing a cycle through a random path, and
/// maybe more back edges and self-loops.
fn cyclic_spec() -> impl Strategy<Value = (Spec, (usize, usize))> {
    let more = prop::collection::vec((any::<Index>(), any::<Index>()), 0..3);
    let self_loops = prop::collection::vec(any::<Index>(), 0..2);
    (
        dag_spec().prop_filter("needs an edge", |spec| !spec.edges.is_empty()),
        any::<Index>(),
        any::<[Index; 4]>(),
        more,
        self_loops,
    )
        .prop_map(|(mut spec, first, steps, more, self_loops)| {
            let (start, mut at) = spec.edges[first.index(spec.edges.len())];
            for step in steps {
                let next: Vec<usize> = spec.edges.iter().filter(|(from, _)| *from == at).map(|(_, to)| *to).collect();
                if next.is_empty() {
                    break;
                }
                at = next[step.index(next.len())];
            }
            spec.edges.push((at, start));
            let n = spec.keys.len();
            for (a, b) in more {
                let (a, b) = (a.index(n), b.index(n));
                if a != b {
                    spec.edges.push((a.max(b), a.min(b)));
                }
            }
            for node in self_loops {
                let node = node.index(n);
                spec.edges.push((node, node));
            }
            (spec, (at, start))
        })
}

proptest! {
    #[test]
    fn dag_builds_and_topological_order_respects_every_edge(spec in dag_spec()) {
        let dag = spec.build().unwrap();
        let order: Vec<&str> = dag.topological_order().into_iter().map(String::as_str).collect();
        prop_assert_eq!(order.len(), spec.keys.len());
        let position: HashMap<&str, usize> = order.iter().enumerate().map(|(i, key)| (*key, i)).collect();
        prop_assert_eq!(position.len(), spec.keys.len());
        for &(from, to) in &spec.edges {
            prop_assert!(position[spec.keys[from].as_str()] < position[spec.keys[to].as_str()]);
        }
        // Each step takes the smallest key whose dependencies are all placed.
        let index = spec.index();
        let mut placed = vec![false; spec.keys.len()];
        for key in &order {
            let ready = (0..spec.keys.len())
                .filter(|&node| !placed[node])
                .filter(|&node| spec.edges.iter().all(|&(from, to)| to != node || placed[from]))
                .map(|node| spec.keys[node].as_str())
                .min();
            prop_assert_eq!(ready, Some(*key));
            placed[index[key]] = true;
        }
        // Iteration agrees.
        let iterated: Vec<&str> = dag.iter().map(|(key, _)| key.as_str()).collect();
        prop_assert_eq!(iterated, order);
    }

    #[test]
    fn walks_match_brute_force_reachability(spec in dag_spec(), picks in prop::collection::vec(any::<Index>(), 0..4)) {
        let dag = spec.build().unwrap();
        let reach = spec.reach();
        let n = spec.keys.len();
        let distinct: BTreeSet<(usize, usize)> = spec.edges.iter().copied().collect();
        prop_assert_eq!(dag.edges().len(), distinct.len());
        for (from, to, why) in dag.edges() {
            prop_assert_eq!(why, &format!("{from}>{to}"));
        }
        for (node, key) in spec.keys.iter().enumerate() {
            prop_assert_eq!(borrowed(&dag.ancestors(key).unwrap()), spec.keys_of((0..n).filter(|&a| reach[a][node])));
            prop_assert_eq!(borrowed(&dag.descendants(key).unwrap()), spec.keys_of((0..n).filter(|&b| reach[node][b])));
            let direct: BTreeSet<&str> = dag.dependencies(key).unwrap().into_iter().map(String::as_str).collect();
            prop_assert_eq!(direct, spec.keys_of(distinct.iter().filter(|(_, to)| *to == node).map(|(from, _)| *from)));
            let direct: BTreeSet<&str> = dag.dependents(key).unwrap().into_iter().map(String::as_str).collect();
            prop_assert_eq!(direct, spec.keys_of(distinct.iter().filter(|(from, _)| *from == node).map(|(_, to)| *to)));
        }

        let picked: BTreeSet<usize> = picks.iter().map(|pick| pick.index(n)).collect();
        let picked_keys: Vec<Key> = picked.iter().map(|&i| spec.keys[i].clone()).collect();
        let closure = dag.closure_with_dependencies(&picked_keys).unwrap();
        let expected = spec.keys_of((0..n).filter(|&a| picked.contains(&a) || picked.iter().any(|&t| reach[a][t])));
        prop_assert_eq!(borrowed(&closure), expected);
        let kept = dag.without_dependents(&picked_keys).unwrap();
        let expected = spec.keys_of((0..n).filter(|&b| !picked.contains(&b) && !picked.iter().any(|&x| reach[x][b])));
        prop_assert_eq!(borrowed(&kept), expected);
        // Both selections are closed under dependencies.
        for key in closure.iter().chain(&kept) {
            let dependencies = dag.dependencies(key).unwrap();
            let selection = if closure.contains(key) { &closure } else { &kept };
            prop_assert!(dependencies.iter().all(|dependency| selection.contains(dependency)));
        }
    }

    #[test]
    fn longest_path_and_layers_match_brute_force(spec in dag_spec()) {
        let dag = spec.build().unwrap();
        let index = spec.index();
        // Brute force in index order, which is a topological order here (edges go up). heaviest[v]:
        // heaviest path ending at v; depth[v]: most edges on a path ending at v.
        let n = spec.keys.len();
        let mut heaviest = vec![0u64; n];
        let mut depth = vec![0usize; n];
        for node in 0..n {
            let before = spec.edges.iter().filter(|(_, to)| *to == node).map(|(from, _)| heaviest[*from]).max().unwrap_or(0);
            heaviest[node] = before + spec.weights[node];
            depth[node] = spec.edges.iter().filter(|(_, to)| *to == node).map(|(from, _)| depth[*from] + 1).max().unwrap_or(0);
        }
        let (total, path) = dag.longest_path(|_, weight| *weight);
        prop_assert_eq!(total, heaviest.iter().copied().max().unwrap_or(0));
        prop_assert_eq!(path.iter().map(|key| spec.weights[index[key.as_str()]]).sum::<u64>(), total);
        for step in path.windows(2) {
            prop_assert!(dag.edge(step[0], step[1]).is_some());
        }

        let layers = dag.layers();
        prop_assert_eq!(layers.len(), depth.iter().max().map_or(0, |max| max + 1));
        prop_assert_eq!(dag.longest_path(|_, _| 1).0, layers.len() as u64);
        for (level, layer) in layers.iter().enumerate() {
            prop_assert!(layer.windows(2).all(|pair| pair[0] < pair[1]));
            for key in layer {
                prop_assert_eq!(depth[index[key.as_str()]], level);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_insertion_order(spec in dag_spec()) {
        let mut reversed = spec.clone();
        reversed.keys.reverse();
        reversed.weights.reverse();
        let n = spec.keys.len();
        reversed.edges = spec.edges.iter().rev().map(|&(from, to)| (n - 1 - from, n - 1 - to)).collect();
        let (one, other) = (spec.build().unwrap(), reversed.build().unwrap());
        prop_assert_eq!(one.topological_order(), other.topological_order());
        prop_assert_eq!(one.layers(), other.layers());
        prop_assert_eq!(one.longest_path(|_, w| *w), other.longest_path(|_, w| *w));
        prop_assert_eq!(one.to_dot(|key, _| key.clone()), other.to_dot(|key, _| key.clone()));
        prop_assert_eq!(one.to_mermaid(|key, _| key.clone()), other.to_mermaid(|key, _| key.clone()));
    }

    #[test]
    fn cycles_are_reported_with_edges_that_are_on_them((spec, back_edge) in cyclic_spec()) {
        let err = spec.build().unwrap_err();
        let index = spec.index();
        let reach = spec.reach();
        let n = spec.keys.len();
        let edges: BTreeSet<(usize, usize)> = spec.edges.iter().copied().collect();

        // Exactly the non-trivial strongly connected components, and exactly the self-loops.
        let expected_components: BTreeSet<BTreeSet<&str>> = (0..n)
            .map(|a| spec.keys_of((0..n).filter(|&b| a == b || (reach[a][b] && reach[b][a]))))
            .filter(|component| component.len() > 1)
            .collect();
        let reported_components: BTreeSet<BTreeSet<&str>> = err.cycles.iter()
            .filter(|cycle| cycle.path.len() > 1)
            .map(|cycle| cycle.component.iter().map(String::as_str).collect())
            .collect();
        prop_assert_eq!(reported_components, expected_components);
        let expected_loops = spec.keys_of(edges.iter().filter(|(a, b)| a == b).map(|(a, _)| *a));
        let reported_loops: BTreeSet<&str> = err.cycles.iter().filter(|cycle| cycle.path.len() == 1).map(|cycle| cycle.path[0].as_str()).collect();
        prop_assert_eq!(reported_loops, expected_loops);
        let (at, start) = back_edge;
        prop_assert!(err.cycles.iter().any(|cycle| cycle.component.contains(&spec.keys[at]) && cycle.component.contains(&spec.keys[start])));

        // Sorted by first node, then length.
        let order: Vec<(&str, usize)> = err.cycles.iter().map(|cycle| (cycle.path[0].as_str(), cycle.path.len())).collect();
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(order, sorted);

        for cycle in &err.cycles {
            let path: Vec<usize> = cycle.path.iter().map(|key| index[key.as_str()]).collect();
            // Distinct nodes, starting at the component's smallest key, all inside it.
            prop_assert_eq!(path.iter().collect::<BTreeSet<_>>().len(), path.len());
            prop_assert_eq!(Some(&cycle.path[0]), cycle.component.iter().min());
            prop_assert!(cycle.path.iter().all(|key| cycle.component.contains(key)));
            prop_assert!(cycle.component.windows(2).all(|pair| pair[0] < pair[1]));
            // The edges are the path's, in order, each in the graph with its own reason.
            prop_assert_eq!(cycle.edges.len(), path.len());
            for (i, edge) in cycle.edges.iter().enumerate() {
                let (from, to) = (path[i], path[(i + 1) % path.len()]);
                prop_assert!(edges.contains(&(from, to)));
                prop_assert_eq!(&edge.from, &spec.keys[from]);
                prop_assert_eq!(&edge.to, &spec.keys[to]);
                prop_assert_eq!(&edge.why, &spec.why(from, to));
            }
            if path.len() == 1 {
                continue;
            }
            // A shortest cycle through the first node: one more edge than the shortest way
            // from it to one of its (other) dependencies.
            let first = path[0];
            let shortest = distances_from(first, &edges, n)
                .into_iter()
                .enumerate()
                .filter(|&(node, _)| node != first && edges.contains(&(node, first)))
                .filter_map(|(_, distance)| distance)
                .min()
                .map(|distance| distance + 1);
            prop_assert_eq!(Some(path.len()), shortest);
            // `only_cycle` is exact, and when it holds one cut clears the component.
            let members: BTreeSet<usize> = cycle.component.iter().map(|key| index[key.as_str()]).collect();
            let inner = edges.iter().filter(|(a, b)| a != b && members.contains(a) && members.contains(b)).count();
            prop_assert_eq!(cycle.only_cycle, inner == members.len());
            if cycle.only_cycle {
                for i in 0..path.len() {
                    let cut = (path[i], path[(i + 1) % path.len()]);
                    if let Err(after) = spec.build_without(Some(cut)) {
                        let still: Vec<&String> = after.cycles.iter()
                            .filter(|other| other.path.len() > 1)
                            .flat_map(|other| &other.component)
                            .filter(|key| cycle.component.contains(key))
                            .collect();
                        prop_assert!(still.is_empty(), "cutting {:?} left cycles among {:?}", cut, still);
                    }
                }
            }
        }
    }
}

/// Breadth-first distances (in edges) from `start`, ignoring self-loops.
fn distances_from(start: usize, edges: &BTreeSet<(usize, usize)>, n: usize) -> Vec<Option<usize>> {
    let mut next: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &(from, to) in edges {
        if from != to {
            next.entry(from).or_default().push(to);
        }
    }
    let mut distance = vec![None; n];
    distance[start] = Some(0);
    let mut frontier = vec![start];
    let mut steps = 0;
    while !frontier.is_empty() {
        steps += 1;
        let mut following = Vec::new();
        for node in frontier {
            for &to in next.get(&node).map(Vec::as_slice).unwrap_or_default() {
                if distance[to].is_none() {
                    distance[to] = Some(steps);
                    following.push(to);
                }
            }
        }
        frontier = following;
    }
    distance
}
