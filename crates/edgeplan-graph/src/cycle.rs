//! Finding and explaining cycles when [`GraphBuilder::build`](crate::GraphBuilder::build) fails.

use std::collections::VecDeque;
use std::fmt;

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::Edge;

/// `build` failed: the graph has at least one cycle.
///
/// What is guaranteed:
///
/// * `cycles` has one entry per strongly connected component of two or more nodes, plus one
///   per self-loop (`a → a`), ordered by first node, a self-loop before a longer cycle that
///   starts at the same node. Every cycle of the graph lies inside a listed component or is a
///   listed self-loop, so no cycle goes unreported.
/// * See [`Cycle`] for what each entry guarantees.
///
/// What is not: that the suggested cuts are a minimum set of edges to remove (a minimum
/// feedback arc set is NP-hard). When [`Cycle::only_cycle`] is false, one cut may leave other
/// cycles in that component; the next `build` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleError<K, E> {
    pub cycles: Vec<Cycle<K, E>>,
}

/// One elementary cycle, and the component it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle<K, E> {
    /// Distinct nodes in dependency order, starting at the smallest key of `component`. Each
    /// node has an edge to the next, and the last to the first. It is a shortest cycle through
    /// its first node (ties broken by key order). A self-loop is a path of one node.
    pub path: Vec<K>,
    /// The edges of `path`, in order, ending with the one back to the first node. Removing any
    /// one of them breaks this cycle.
    pub edges: Vec<Edge<K, E>>,
    /// Every node of the strongly connected component `path` lies in, in key order. For a
    /// self-loop, just that node.
    pub component: Vec<K>,
    /// True when `path` is the component's only cycle (not counting self-loops, reported on
    /// their own): removing any one of `edges` leaves `component` acyclic. False means other
    /// cycles exist among `component`.
    pub only_cycle: bool,
}

/// Called when Kahn's algorithm could not order every node, so there is at least one cycle.
///
/// `edges` must be sorted by `(from, to)` without duplicates, `dependents` sorted too; node
/// indices are ranks in key order, so "smallest index" means "smallest key".
pub(crate) fn find_cycles<K: Clone, E: Clone>(
    keys: &[K],
    edges: &[(usize, usize, E)],
    dependents: &[Vec<usize>],
) -> CycleError<K, E> {
    let n_nodes = keys.len();
    let mut graph = DiGraph::<(), ()>::with_capacity(n_nodes, edges.len());
    for _ in 0..n_nodes {
        graph.add_node(());
    }
    for &(from, to, _) in edges {
        graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
    }
    // Kosaraju rather than Tarjan: petgraph's `tarjan_scc` recurses once per node on a path and
    // overflows a 2 MiB thread stack on a chain of a few thousand nodes; Kosaraju's DFS is
    // iterative. Both are linear.
    let components: Vec<Vec<usize>> = kosaraju_scc(&graph)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let mut members: Vec<usize> = component.into_iter().map(NodeIndex::index).collect();
            members.sort_unstable();
            members
        })
        .collect();

    const NO_COMPONENT: usize = usize::MAX;
    let mut component_of = vec![NO_COMPONENT; n_nodes];
    for (id, members) in components.iter().enumerate() {
        for &node in members {
            component_of[node] = id;
        }
    }
    let mut inner_edges = vec![0; components.len()];
    for &(from, to, _) in edges {
        if from != to && component_of[from] != NO_COMPONENT && component_of[from] == component_of[to] {
            inner_edges[component_of[from]] += 1;
        }
    }

    let edge = |from: usize, to: usize| -> Edge<K, E> {
        let position = edges.binary_search_by_key(&(from, to), |&(f, t, _)| (f, t));
        let why = match position {
            Ok(position) => edges[position].2.clone(),
            Err(_) => unreachable!("cycle edges are taken from the edge list"),
        };
        Edge { from: keys[from].clone(), to: keys[to].clone(), why }
    };
    let to_keys = |nodes: &[usize]| -> Vec<K> { nodes.iter().map(|&node| keys[node].clone()).collect() };

    // (first node, path length, cycle): the sort key makes the report order deterministic.
    let mut found: Vec<(usize, usize, Cycle<K, E>)> = Vec::new();
    for &(from, to, _) in edges {
        if from == to {
            let cycle = Cycle {
                path: to_keys(&[from]),
                edges: vec![edge(from, to)],
                component: to_keys(&[from]),
                only_cycle: true,
            };
            found.push((from, 1, cycle));
        }
    }
    let mut parent = vec![UNVISITED; n_nodes];
    for (id, members) in components.iter().enumerate() {
        let start = members[0];
        let path = shortest_cycle_through(start, &component_of, dependents, &mut parent);
        let cycle_edges = (0..path.len()).map(|i| edge(path[i], path[(i + 1) % path.len()])).collect();
        let cycle = Cycle {
            path: to_keys(&path),
            edges: cycle_edges,
            component: to_keys(members),
            // A strongly connected graph with as many edges as nodes is a single cycle.
            only_cycle: inner_edges[id] == members.len(),
        };
        found.push((start, path.len(), cycle));
    }
    found.sort_unstable_by_key(|&(first, len, _)| (first, len));
    CycleError { cycles: found.into_iter().map(|(_, _, cycle)| cycle).collect() }
}

const UNVISITED: usize = usize::MAX;

/// Breadth-first search from `start` inside its component: the first edge found back to `start`
/// closes a shortest cycle through it. Neighbours are visited in index (= key) order, so ties
/// break deterministically. `parent` is shared between calls: components are disjoint.
fn shortest_cycle_through(
    start: usize,
    component_of: &[usize],
    dependents: &[Vec<usize>],
    parent: &mut [usize],
) -> Vec<usize> {
    let component = component_of[start];
    parent[start] = start;
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in &dependents[node] {
            // Self-loops are reported on their own.
            if next == node || component_of[next] != component {
                continue;
            }
            if next == start {
                let mut path = vec![node];
                let mut at = node;
                while at != start {
                    at = parent[at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if parent[next] == UNVISITED {
                parent[next] = node;
                queue.push_back(next);
            }
        }
    }
    unreachable!("every node of a strongly connected component of two or more nodes lies on a cycle")
}

/// `dependency cycle: a → b → a; remove one of: a → b (why), b → a (why)`, and when the
/// component holds more: `; other cycles exist among: a, b, c`.
impl<K: fmt::Display, E: fmt::Display> fmt::Display for Cycle<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dependency cycle: ")?;
        for node in &self.path {
            write!(f, "{node} → ")?;
        }
        if let Some(first) = self.path.first() {
            write!(f, "{first}")?;
        }
        match self.edges.as_slice() {
            [only] => write!(f, "; remove {only}")?,
            edges => {
                f.write_str("; remove one of: ")?;
                write_list(f, edges)?;
            }
        }
        if !self.only_cycle {
            f.write_str("; other cycles exist among: ")?;
            write_list(f, &self.component)?;
        }
        Ok(())
    }
}

/// One line per cycle.
impl<K: fmt::Display, E: fmt::Display> fmt::Display for CycleError<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cycle) in self.cycles.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{cycle}")?;
        }
        Ok(())
    }
}

impl<K, E> std::error::Error for CycleError<K, E>
where
    K: fmt::Display + fmt::Debug,
    E: fmt::Display + fmt::Debug,
{
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}
