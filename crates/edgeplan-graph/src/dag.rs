//! The validated graph and its walks.

use std::collections::BTreeSet;
use std::fmt;

/// A validated, immutable dependency graph. Acyclic by construction: the only way to get one is
/// [`GraphBuilder::build`](crate::GraphBuilder::build).
///
/// Ordered results (sets, lists of dependencies, layers) are in key order; walks follow the
/// [topological order](Dag::topological_order). Queries about one key return `None` when the
/// key is not in the graph.
#[derive(Debug, Clone)]
pub struct Dag<K, N, E> {
    /// Sorted: a node's index is its rank in key order, so index order is key order.
    keys: Vec<K>,
    values: Vec<N>,
    /// `(from, to, why)`, sorted by `(from, to)`, no duplicates.
    edges: Vec<(usize, usize, E)>,
    /// Direct dependencies of each node, ascending.
    dependencies: Vec<Vec<usize>>,
    /// Direct dependents of each node, ascending.
    dependents: Vec<Vec<usize>>,
    /// Every node once; each after all of its dependencies; ties broken by key.
    topo: Vec<usize>,
}

/// Some keys given to a selection ([`Dag::closure_with_dependencies`],
/// [`Dag::without_dependents`]) are not in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotInGraph<K> {
    /// In the order given, each once.
    pub keys: Vec<K>,
}

impl<K: Ord, N, E> Dag<K, N, E> {
    pub(crate) fn new(
        keys: Vec<K>,
        values: Vec<N>,
        edges: Vec<(usize, usize, E)>,
        dependencies: Vec<Vec<usize>>,
        dependents: Vec<Vec<usize>>,
        topo: Vec<usize>,
    ) -> Self {
        Dag { keys, values, edges, dependencies, dependents, topo }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.index_of(key).is_some()
    }

    pub fn node(&self, key: &K) -> Option<&N> {
        self.index_of(key).map(|index| &self.values[index])
    }

    /// Every key once, each after everything it depends on. Among nodes that are ready at the
    /// same time the smallest key comes first, so the order is the lexicographically smallest
    /// topological order and does not depend on insertion order.
    pub fn topological_order(&self) -> Vec<&K> {
        self.topo.iter().map(|&index| &self.keys[index]).collect()
    }

    /// Nodes with their values, in [topological order](Dag::topological_order).
    pub fn iter(&self) -> Iter<'_, K, N> {
        Iter { keys: &self.keys, values: &self.values, order: self.topo.iter() }
    }

    /// Every edge as `(from, to, why)`, ordered by `from`, then `to`.
    pub fn edges(&self) -> impl ExactSizeIterator<Item = (&K, &K, &E)> {
        self.edges.iter().map(|(from, to, why)| (&self.keys[*from], &self.keys[*to], why))
    }

    /// The payload of the edge `from → to`, if there is one.
    pub fn edge(&self, from: &K, to: &K) -> Option<&E> {
        let pair = (self.index_of(from)?, self.index_of(to)?);
        let position = self.edges.binary_search_by_key(&pair, |&(from, to, _)| (from, to)).ok()?;
        Some(&self.edges[position].2)
    }

    /// What `key` needs directly, in key order.
    pub fn dependencies(&self, key: &K) -> Option<Vec<&K>> {
        self.index_of(key).map(|index| self.keys_of(&self.dependencies[index]))
    }

    /// What needs `key` directly, in key order.
    pub fn dependents(&self, key: &K) -> Option<Vec<&K>> {
        self.index_of(key).map(|index| self.keys_of(&self.dependents[index]))
    }

    /// Everything `key` depends on, directly or not; `key` itself excluded.
    pub fn ancestors(&self, key: &K) -> Option<BTreeSet<&K>> {
        let index = self.index_of(key)?;
        Some(self.keys_of_set(reachable(&self.dependencies, [index])))
    }

    /// Everything that depends on `key`, directly or not; `key` itself excluded.
    pub fn descendants(&self, key: &K) -> Option<BTreeSet<&K>> {
        let index = self.index_of(key)?;
        Some(self.keys_of_set(reachable(&self.dependents, [index])))
    }

    /// What `--target` selects: the targets and everything they depend on. Errors when any
    /// target is not in the graph (all such targets are listed).
    pub fn closure_with_dependencies<'q>(
        &self,
        targets: impl IntoIterator<Item = &'q K>,
    ) -> Result<BTreeSet<&K>, NotInGraph<K>>
    where
        K: Clone + 'q,
    {
        let targets = self.indices_of(targets)?;
        let mut selected = reachable(&self.dependencies, targets.iter().copied());
        selected.extend(targets);
        Ok(self.keys_of_set(selected))
    }

    /// What `--exclude` keeps: every node except the excluded ones and everything that depends
    /// on them. The result is closed under dependencies: a kept node's dependencies are kept.
    /// Errors when any excluded key is not in the graph (all such keys are listed).
    pub fn without_dependents<'q>(
        &self,
        excluded: impl IntoIterator<Item = &'q K>,
    ) -> Result<BTreeSet<&K>, NotInGraph<K>>
    where
        K: Clone + 'q,
    {
        let excluded = self.indices_of(excluded)?;
        let mut removed = reachable(&self.dependents, excluded.iter().copied());
        removed.extend(excluded);
        Ok((0..self.len()).filter(|index| !removed.contains(index)).map(|index| &self.keys[index]).collect())
    }

    /// The critical path: the path whose nodes' weights sum highest, with that sum, in
    /// dependency order. Sums saturate at `u64::MAX`. Ties go to the smallest key, both for the
    /// last node and for each step back. An empty graph gives `(0, [])`.
    pub fn longest_path(&self, weight: impl Fn(&K, &N) -> u64) -> (u64, Vec<&K>) {
        // total[v]: heaviest path ending at v, v included; previous[v]: the step before v on it.
        let mut total = vec![0u64; self.len()];
        let mut previous = vec![None; self.len()];
        for &node in &self.topo {
            let mut heaviest: Option<usize> = None;
            for &dependency in &self.dependencies[node] {
                // Dependencies are in key order: a strict `>` keeps the smallest key on ties.
                if heaviest.is_none_or(|best| total[dependency] > total[best]) {
                    heaviest = Some(dependency);
                }
            }
            let before = heaviest.map_or(0, |best| total[best]);
            total[node] = before.saturating_add(weight(&self.keys[node], &self.values[node]));
            previous[node] = heaviest;
        }
        let mut last: Option<usize> = None;
        for node in 0..self.len() {
            if last.is_none_or(|best| total[node] > total[best]) {
                last = Some(node);
            }
        }
        let Some(last) = last else { return (0, Vec::new()) };
        let mut path = vec![&self.keys[last]];
        let mut at = last;
        while let Some(step) = previous[at] {
            path.push(&self.keys[step]);
            at = step;
        }
        path.reverse();
        (total[last], path)
    }

    /// Nodes grouped by depth, for rendering: layer 0 holds the nodes without dependencies, and a
    /// node sits one layer after its deepest dependency. Each layer is in key order.
    pub fn layers(&self) -> Vec<Vec<&K>> {
        let mut depth = vec![0usize; self.len()];
        for &node in &self.topo {
            depth[node] = self.dependencies[node].iter().map(|&dependency| depth[dependency] + 1).max().unwrap_or(0);
        }
        let mut layers: Vec<Vec<&K>> = Vec::new();
        // Ascending index is ascending key, so each layer comes out sorted.
        for (node, &depth) in depth.iter().enumerate() {
            if layers.len() <= depth {
                layers.resize_with(depth + 1, Vec::new);
            }
            layers[depth].push(&self.keys[node]);
        }
        layers
    }

    /// Keys in index (= key) order, for the renderers.
    pub(crate) fn keys_and_values(&self) -> impl Iterator<Item = (&K, &N)> {
        self.keys.iter().zip(&self.values)
    }

    pub(crate) fn edge_indices(&self) -> impl Iterator<Item = (usize, usize)> {
        self.edges.iter().map(|&(from, to, _)| (from, to))
    }

    fn index_of(&self, key: &K) -> Option<usize> {
        self.keys.binary_search(key).ok()
    }

    fn indices_of<'q>(&self, keys: impl IntoIterator<Item = &'q K>) -> Result<Vec<usize>, NotInGraph<K>>
    where
        K: Clone + 'q,
    {
        let mut indices = Vec::new();
        let mut unknown: Vec<K> = Vec::new();
        let mut reported: BTreeSet<&K> = BTreeSet::new();
        for key in keys {
            match self.index_of(key) {
                Some(index) => indices.push(index),
                None if reported.insert(key) => unknown.push(key.clone()),
                None => {}
            }
        }
        if unknown.is_empty() { Ok(indices) } else { Err(NotInGraph { keys: unknown }) }
    }

    fn keys_of(&self, indices: &[usize]) -> Vec<&K> {
        indices.iter().map(|&index| &self.keys[index]).collect()
    }

    fn keys_of_set(&self, indices: BTreeSet<usize>) -> BTreeSet<&K> {
        indices.into_iter().map(|index| &self.keys[index]).collect()
    }
}

/// Every node reachable from `starts` in one or more steps along `next`. Proportional to the
/// part of the graph reached, not to the whole graph.
fn reachable(next: &[Vec<usize>], starts: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<usize> = starts.into_iter().collect();
    while let Some(node) = stack.pop() {
        for &step in &next[node] {
            if seen.insert(step) {
                stack.push(step);
            }
        }
    }
    seen
}

/// Nodes with their values in topological order; see [`Dag::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'a, K, N> {
    keys: &'a [K],
    values: &'a [N],
    order: std::slice::Iter<'a, usize>,
}

impl<'a, K, N> Iterator for Iter<'a, K, N> {
    type Item = (&'a K, &'a N);

    fn next(&mut self) -> Option<Self::Item> {
        self.order.next().map(|&index| (&self.keys[index], &self.values[index]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl<K, N> ExactSizeIterator for Iter<'_, K, N> {}

impl<'a, K: Ord, N, E> IntoIterator for &'a Dag<K, N, E> {
    type Item = (&'a K, &'a N);
    type IntoIter = Iter<'a, K, N>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: fmt::Display> fmt::Display for NotInGraph<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not in the graph: ")?;
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key}")?;
        }
        Ok(())
    }
}

impl<K: fmt::Display + fmt::Debug> std::error::Error for NotInGraph<K> {}
