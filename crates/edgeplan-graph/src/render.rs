//! Graphviz DOT and mermaid text for a [`Dag`]. Both list nodes in key order and edges by
//! `(from, to)` key order, so the same graph always renders to the same bytes. Arrows point
//! from a dependency to what needs it: the direction of execution.

use std::collections::HashSet;
use std::fmt::{Display, Write};

use crate::dag::Dag;

impl<K: Ord + Display, N, E> Dag<K, N, E> {
    /// Graphviz DOT. Node ids are the keys, quoted; labels come from `label`. Both are escaped
    /// (`\` and `"`; a newline becomes Graphviz's `\n`).
    pub fn to_dot(&self, label: impl Fn(&K, &N) -> String) -> String {
        let ids: Vec<String> = self.keys_and_values().map(|(key, _)| dot_quoted(&key.to_string())).collect();
        let mut out = String::from("digraph {\n    rankdir=LR;\n");
        for ((key, value), id) in self.keys_and_values().zip(&ids) {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "    {id} [label={}];", dot_quoted(&label(key, value)));
        }
        for (from, to) in self.edge_indices() {
            let _ = writeln!(out, "    {} -> {};", ids[from], ids[to]);
        }
        out.push_str("}\n");
        out
    }

    /// A mermaid `flowchart LR`. Node ids are the keys with every character outside
    /// `[A-Za-z0-9_]` replaced by `_`, prefixed with `n_` when they would be empty, start with
    /// a digit or be a mermaid keyword, and suffixed `_2`, `_3`… when two keys collide. Labels
    /// come from `label`, in double quotes, with `"`, `#`, `&`, `<`, `>` as entity codes and
    /// newlines as `<br>`.
    pub fn to_mermaid(&self, label: impl Fn(&K, &N) -> String) -> String {
        let keys: Vec<String> = self.keys_and_values().map(|(key, _)| key.to_string()).collect();
        let ids = mermaid_ids(&keys);
        let mut out = String::from("flowchart LR\n");
        for ((key, value), id) in self.keys_and_values().zip(&ids) {
            let _ = writeln!(out, "    {id}[\"{}\"]", mermaid_escaped(&label(key, value)));
        }
        for (from, to) in self.edge_indices() {
            let _ = writeln!(out, "    {} --> {}", ids[from], ids[to]);
        }
        out
    }
}

fn dot_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words mermaid's flowchart grammar reads as keywords (`end` closes a subgraph).
const MERMAID_KEYWORDS: &[&str] = &[
    "call",
    "class",
    "classdef",
    "click",
    "default",
    "direction",
    "end",
    "flowchart",
    "graph",
    "href",
    "linkstyle",
    "style",
    "subgraph",
];

/// One id per key, unique. Keys that already are valid ids claim theirs first, so `a_b`
/// stays `a_b` and `a.b` becomes `a_b_2`, whatever their order.
pub fn mermaid_ids(keys: &[String]) -> Vec<String> {
    let wanted: Vec<String> = keys.iter().map(|key| mermaid_id(key)).collect();
    let mut ids = vec![String::new(); keys.len()];
    let mut taken = HashSet::new();
    let (clean, changed): (Vec<usize>, Vec<usize>) = (0..keys.len()).partition(|&i| wanted[i] == keys[i]);
    for i in clean.into_iter().chain(changed) {
        let mut id = wanted[i].clone();
        let mut suffix = 2;
        while taken.contains(&id) {
            id = format!("{}_{suffix}", wanted[i]);
            suffix += 1;
        }
        taken.insert(id.clone());
        ids[i] = id;
    }
    ids
}

fn mermaid_id(key: &str) -> String {
    let mut id: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let starts_badly = id.chars().next().is_none_or(|c| c.is_ascii_digit());
    if starts_badly || MERMAID_KEYWORDS.contains(&id.to_ascii_lowercase().as_str()) {
        id.insert_str(0, "n_");
    }
    id
}

/// Label text for inside Mermaid's double quotes: entity codes for what its parser would read.
pub fn mermaid_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}
