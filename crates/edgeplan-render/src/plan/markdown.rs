//! `edgeplan plan --format markdown`: a pull-request comment. The counts and diagnostics are
//! visible at a glance; each change folds into a `<details>` block; a mermaid graph shows how
//! the changes depend on each other.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use edgeplan_diag::{Finding, Severity};
use edgeplan_model::{Action, Address};
use edgeplan_plan::{Change, Plan};

use super::fields::{Entry, Folded, Line, fields, is_formatting_only};
use super::{RenderContext, diagnostics_by_address, listed, location, phrase, plural, severities_line};

/// The markdown plan: a heading, the count table, diagnostics, the mermaid graph of the
/// listed changes and one collapsible block per change. Findings about the spec itself are
/// listed first, under "Spec findings". Field lines are in a ```diff block, which GitHub
/// colours; an IAM policy leads with its semantic change and its full line diff is folded in a
/// block of its own; secrets are in their `(sensitive…)` form as everywhere else.
pub fn markdown(plan: &Plan, ctx: &RenderContext) -> String {
    let summary = plan.summary();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "## edgeplan plan: `{}`\n", code_text(&plan.stack));
    if !summary.has_changes() {
        out.push_str("**No changes.** Live state matches the spec.\n\n");
    }
    out.push_str("| | Action | Nodes |\n|:-:|---|--:|\n");
    for (action, label, count) in [
        (Action::Create, "create", summary.create),
        (Action::Update, "update in-place", summary.update),
        (Action::Replace, "replace", summary.replace),
        (Action::Delete, "destroy", summary.delete),
        (Action::Read, "read", summary.read),
    ] {
        let _ = writeln!(out, "| `{}` | {label} | {count} |", action.symbol());
    }
    let _ = writeln!(out, "| | unchanged (not listed) | {} |", summary.no_op);

    let _ = writeln!(out, "\n**Diagnostics:** {}.", severities_line(plan));
    let (spec, nodes): (Vec<_>, Vec<_>) = plan.diagnostics.iter().partition(|d| d.is_spec());
    if !spec.is_empty() {
        out.push_str("\n**Spec findings**\n\n");
        for diagnostic in spec {
            diagnostic_item(&mut out, ctx, None, &diagnostic.finding);
        }
    }
    if !nodes.is_empty() {
        out.push('\n');
        for diagnostic in nodes {
            diagnostic_item(&mut out, ctx, Some(&diagnostic.address), &diagnostic.finding);
        }
    }

    let changes: Vec<&Change> = listed(plan).collect();
    if changes.is_empty() {
        return out;
    }
    // A graph of reads alone (the NLB edgeplan always waits for) says nothing.
    if summary.has_changes() {
        out.push_str("\n### Graph of the changes\n\n");
        out.push_str(&mermaid(&changes, &ctx.edges));
    }
    out.push_str("\n### Changes\n");
    let by_address = diagnostics_by_address(plan);
    for change in changes {
        let findings = by_address.get(&change.address).map_or(&[][..], Vec::as_slice);
        details(&mut out, change, findings, ctx.width);
    }
    out
}

/// One diagnostic as a list item; `address` is the node it concerns (none for the spec's).
fn diagnostic_item(out: &mut String, ctx: &RenderContext, address: Option<&Address>, finding: &Finding) {
    let _ = write!(out, "- **{}** `{}`", finding.severity, finding.code());
    if let Some(address) = address {
        let _ = write!(out, " `{}`", code_text(address.as_str()));
    }
    let _ = write!(out, ": {}", md_text(&finding.message));
    if let Some(location) = location(ctx, finding) {
        let _ = write!(out, " (`{}`)", code_text(&location));
    }
    let _ = writeln!(out, "<br>help: {}", md_text(&finding.help));
}

fn details(out: &mut String, change: &Change, findings: &[&Finding], width: usize) {
    let fields = fields(change, width);
    let mut summary = format!(
        "<code>{} {}</code> ({}) {}",
        html(change.action.symbol()),
        html(change.address.as_str()),
        html(change.kind.as_str()),
        phrase(change.action)
    );
    let tally = node_severities(findings);
    if !tally.is_empty() {
        let _ = write!(summary, ", {}", tally.join(", "));
    }
    let _ = writeln!(out, "\n<details>\n<summary>{summary}</summary>\n");
    for reason in &change.reasons {
        let text = match is_formatting_only(reason, &fields) {
            Some(field) => format!("`{field}` differs only in formatting (equal as normalized JSON)"),
            None => reason.to_string(),
        };
        let _ = writeln!(out, "- because: {}", md_text(&text));
    }
    if !fields.entries.is_empty() {
        let mut body = Vec::new();
        let mut folded: Vec<&Folded> = Vec::new();
        for entry in &fields.entries {
            match entry {
                Entry::Line(line) => body.push(diff_line(line)),
                Entry::Folded(long) => {
                    let text = format!("# {}: {} lines, in full below", long.title(), long.lines.len());
                    body.push(diff_line(&Line { depth: 1, sign: ' ', text }));
                    folded.push(long);
                }
            }
        }
        diff_block(out, &body);
        // Collapsed, so the comment stays short; all of it, so nothing needs another format.
        for long in folded {
            let _ = writeln!(
                out,
                "\n<details>\n<summary><code>{}</code>: full {}, {} lines</summary>",
                html(&long.field),
                html(&long.title()),
                long.lines.len()
            );
            diff_block(out, &long.lines.iter().map(diff_line).collect::<Vec<_>>());
            out.push_str("\n</details>\n");
        }
    }
    out.push_str("\n</details>\n");
}

/// A ```diff block of these lines, after a blank line.
fn diff_block(out: &mut String, body: &[String]) {
    let fence = fence_for(body);
    let _ = writeln!(out, "\n{fence}diff");
    for line in body {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{fence}");
}

/// `1 error, 2 warnings` for one node, leaving out zero counts.
fn node_severities(findings: &[&Finding]) -> Vec<String> {
    let mut counts: BTreeMap<Reverse<Severity>, usize> = BTreeMap::new();
    for finding in findings {
        *counts.entry(Reverse(finding.severity)).or_default() += 1;
    }
    counts.into_iter().map(|(Reverse(severity), n)| plural(n, severity.as_str())).collect()
}

/// The sign in column 0, where GitHub's `diff` highlighting looks for it.
fn diff_line(line: &Line) -> String {
    let text = format!("{} {}{}", line.sign, "    ".repeat(line.depth), line.text);
    text.trim_end().to_string()
}

/// A code fence longer than any backtick run in the body, so a value cannot close it.
fn fence_for(body: &[String]) -> String {
    let longest = body.iter().flat_map(|line| line.split(|c| c != '`').map(str::len)).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// A mermaid flowchart of the listed changes and the edges among them, styled by action.
fn mermaid(changes: &[&Change], edges: &[(Address, Address)]) -> String {
    let position: BTreeMap<&Address, usize> = changes.iter().enumerate().map(|(i, c)| (&c.address, i)).collect();
    let ids = mermaid_ids(changes);
    let mut out = String::from("```mermaid\nflowchart LR\n");
    let mut used: BTreeSet<Action> = BTreeSet::new();
    for (change, id) in changes.iter().zip(&ids) {
        let label = format!("{} {}\n{}", change.action.symbol(), change.address, change.kind);
        let _ = writeln!(out, "    {id}[\"{}\"]:::{}", edgeplan_graph::mermaid_escaped(&label), class(change.action));
        used.insert(change.action);
    }
    // Edges between two listed changes, in plan (dependency) order.
    let mut pairs: Vec<(usize, usize)> =
        edges.iter().filter_map(|(from, to)| Some((*position.get(from)?, *position.get(to)?))).collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (from, to) in pairs {
        let _ = writeln!(out, "    {} --> {}", ids[from], ids[to]);
    }
    for action in used {
        let _ = writeln!(out, "    classDef {} {}", class(action), style(action));
    }
    out.push_str("```\n");
    out
}

fn class(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Read => "read",
        Action::NoOp => "noop",
    }
}

/// GitHub's own diff colours; dark text so labels stay readable in dark mode too.
fn style(action: Action) -> &'static str {
    match action {
        Action::Create => "fill:#dafbe1,stroke:#1a7f37,color:#1f2328",
        Action::Update => "fill:#fff8c5,stroke:#9a6700,color:#1f2328",
        Action::Replace => "fill:#ffebe9,stroke:#cf222e,color:#1f2328",
        Action::Delete => "fill:#ffebe9,stroke:#82071e,color:#1f2328,stroke-dasharray:4",
        Action::Read => "fill:#ddf4ff,stroke:#0969da,color:#1f2328",
        Action::NoOp => "fill:#f6f8fa,stroke:#d1d9e0,color:#1f2328",
    }
}

/// Mermaid node ids for the changes, unique and safe (shared with `edgeplan graph`).
fn mermaid_ids(changes: &[&Change]) -> Vec<String> {
    let keys: Vec<String> = changes.iter().map(|change| change.address.to_string()).collect();
    edgeplan_graph::mermaid_ids(&keys)
}

fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a backtick code span: a backtick would end it early.
fn code_text(text: &str) -> String {
    text.replace('`', "'")
}

/// Prose from messages and reasons: `` `code` `` spans are kept as they are (markdown shows
/// them literally); elsewhere characters markdown or HTML would interpret are escaped.
fn md_text(text: &str) -> String {
    // An unpaired backtick would swallow the rest of the line into a code span.
    let text = if text.matches('`').count() % 2 == 1 { text.replace('`', "'") } else { text.to_string() };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for (i, &c) in chars.iter().enumerate() {
        // GFM never reads `_` inside a word (`EDGE_KEY`) as emphasis: leave those readable.
        let intraword =
            |i: usize| i > 0 && chars[i - 1].is_alphanumeric() && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '_' if intraword(i) => out.push(c),
            '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' if !in_code => {
                out.push('\\');
                out.push(c);
            }
            '&' if !in_code => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_is_escaped_outside_code_spans() {
        assert_eq!(md_text("`a_b` lacks ec2:Describe* <x>"), "`a_b` lacks ec2:Describe\\* \\<x\\>");
        assert_eq!(md_text("odd ` tick_ EDGE_KEY _x_"), "odd ' tick\\_ EDGE_KEY \\_x\\_");
    }

    #[test]
    fn fences_outgrow_backticks_in_values() {
        assert_eq!(fence_for(&["+ a = \"x\"".to_string()]), "```");
        assert_eq!(fence_for(&["+ a = \"````\"".to_string()]), "`````");
    }
}
