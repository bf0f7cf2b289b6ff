//! Collecting nodes and edges, and the one way to a [`Dag`]: [`GraphBuilder::build`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::cycle::{CycleError, find_cycles};
use crate::dag::Dag;

/// Collects nodes and edges; [`build`](GraphBuilder::build) validates them into a [`Dag`].
#[derive(Debug, Clone)]
pub struct GraphBuilder<K, N, E> {
    /// Key → insertion id. Ordered, so `build` gets the key order for free.
    ids: BTreeMap<K, usize>,
    /// Node values by insertion id.
    values: Vec<N>,
    /// `(from, to, why)` by insertion id, in the order they were added.
    edges: Vec<(usize, usize, E)>,
}

/// [`GraphBuilder::add_node`] was given a key that is already in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateNode<K> {
    pub key: K,
}

/// [`GraphBuilder::add_edge`] was given an endpoint that is not in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNode<K> {
    pub edge_from: K,
    pub edge_to: K,
    /// The endpoint that is missing (`edge_from` when both are).
    pub missing: K,
}

impl<K, N, E> Default for GraphBuilder<K, N, E> {
    fn default() -> Self {
        GraphBuilder { ids: BTreeMap::new(), values: Vec::new(), edges: Vec::new() }
    }
}

impl<K: Ord + Clone, N, E> GraphBuilder<K, N, E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node. Keys are unique: a second node under the same key is rejected and the
    /// graph is left unchanged.
    pub fn add_node(&mut self, key: K, value: N) -> Result<(), DuplicateNode<K>> {
        if self.ids.contains_key(&key) {
            return Err(DuplicateNode { key });
        }
        self.ids.insert(key, self.values.len());
        self.values.push(value);
        Ok(())
    }

    /// Adds the edge `from → to`: `to` depends on `from`. Both nodes must already be added.
    ///
    /// An edge is a pair of nodes: adding the same pair again keeps the first `why` and drops
    /// the later ones. `from == to` is accepted here and reported as a cycle by `build`.
    pub fn add_edge(&mut self, from: &K, to: &K, why: E) -> Result<(), UnknownNode<K>> {
        let unknown =
            |missing: &K| UnknownNode { edge_from: from.clone(), edge_to: to.clone(), missing: missing.clone() };
        let from_id = *self.ids.get(from).ok_or_else(|| unknown(from))?;
        let to_id = *self.ids.get(to).ok_or_else(|| unknown(to))?;
        self.edges.push((from_id, to_id, why));
        Ok(())
    }

    /// Validates the graph. `Err` lists every cycle (see [`CycleError`] for what is guaranteed).
    ///
    /// Linear in nodes plus edges, up to the sorts (`O((V + E) log V)`).
    pub fn build(self) -> Result<Dag<K, N, E>, CycleError<K, E>>
    where
        E: Clone,
    {
        // Renumber nodes by key order, so that comparing indices compares keys and every
        // ordered walk below is deterministic without looking at a key again.
        let n_nodes = self.values.len();
        let mut rank = vec![0; n_nodes];
        let mut keys = Vec::with_capacity(n_nodes);
        for (position, (key, id)) in self.ids.into_iter().enumerate() {
            rank[id] = position;
            keys.push(key);
        }
        let mut ranked: Vec<(usize, N)> = self.values.into_iter().enumerate().map(|(id, v)| (rank[id], v)).collect();
        ranked.sort_unstable_by_key(|(position, _)| *position);
        let values: Vec<N> = ranked.into_iter().map(|(_, value)| value).collect();

        let mut edges: Vec<(usize, usize, E)> =
            self.edges.into_iter().map(|(from, to, why)| (rank[from], rank[to], why)).collect();
        // A stable sort keeps duplicates in insertion order, so `dedup` keeps the first `why`.
        edges.sort_by_key(|&(from, to, _)| (from, to));
        edges.dedup_by_key(|(from, to, _)| (*from, *to));

        // Edges are sorted by (from, to), so both adjacency lists come out sorted by key.
        let mut dependencies = vec![Vec::new(); n_nodes];
        let mut dependents = vec![Vec::new(); n_nodes];
        for &(from, to, _) in &edges {
            dependents[from].push(to);
            dependencies[to].push(from);
        }

        match kahn_order(&dependencies, &dependents) {
            Some(topo) => Ok(Dag::new(keys, values, edges, dependencies, dependents, topo)),
            None => Err(find_cycles(&keys, &edges, &dependents)),
        }
    }
}

/// Kahn's algorithm, always taking the smallest ready index (= key): the lexicographically
/// smallest topological order. `None` when some nodes never become ready, i.e. there is a cycle.
fn kahn_order(dependencies: &[Vec<usize>], dependents: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut waiting_on: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut ready: BTreeSet<usize> =
        waiting_on.iter().enumerate().filter(|(_, count)| **count == 0).map(|(node, _)| node).collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(node) = ready.pop_first() {
        order.push(node);
        for &dependent in &dependents[node] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.insert(dependent);
            }
        }
    }
    (order.len() == dependencies.len()).then_some(order)
}

impl<K: fmt::Display> fmt::Display for DuplicateNode<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "duplicate node {}", self.key)
    }
}

impl<K: fmt::Display> fmt::Display for UnknownNode<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "edge {} → {}: no node {}", self.edge_from, self.edge_to, self.missing)
    }
}

impl<K: fmt::Display + fmt::Debug> std::error::Error for DuplicateNode<K> {}
impl<K: fmt::Display + fmt::Debug> std::error::Error for UnknownNode<K> {}
