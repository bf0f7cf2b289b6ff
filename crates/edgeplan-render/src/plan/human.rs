//! `edgeplan plan`: the plan for a person, Terraform's symbols and wording, the summary
//! first, every change with the reasons for it and the diagnostics about it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use edgeplan_diag::Finding;
use edgeplan_model::{Address, NodeKind};
use edgeplan_plan::Plan;

use super::fields::{Entry, Fields, Line, PREVIEW, fields, is_formatting_only};
use super::{
    RenderContext, diagnostics_by_address, listed, location, phrase, plan_line, plural, severities_line, spec_findings,
    unmatched_diagnostics,
};

/// Field lines sit under the header's address; their values one level deeper.
const FIELD_INDENT: &str = "      ";

/// The human plan:
///
/// ```text
/// Plan: 1 to add, 1 to change, 0 to replace, 0 to destroy, 0 to read.
/// Diagnostics: 0 errors, 1 warning, 0 notes.
///
///   ~ provider.edge_compute (portainer_settings) will be updated in-place
///       because: `EnableEdgeComputeFeatures` differs from the spec
///       warning[EP206]: Edge Compute is off
///         help: …
///       ~ EnableEdgeComputeFeatures = false -> true
///         # (1 unchanged attribute hidden)
/// ```
///
/// Findings about the spec itself come first, under "Spec findings". No-op nodes are counted,
/// not listed. Diagnostics about nodes that are not listed come last. An IAM policy leads with
/// its semantic change; a long line diff shows its first lines and says where the rest is.
pub fn human(plan: &Plan, ctx: &RenderContext) -> String {
    let summary = plan.summary();
    let mut out = String::new();
    // Writing to a String cannot fail.
    if !summary.has_changes() {
        out.push_str("No changes. Live state matches the spec.\n");
    }
    let _ = writeln!(out, "{}", plan_line(plan));
    let _ = writeln!(out, "Diagnostics: {}.", severities_line(plan));
    if summary.no_op > 0 {
        let _ = writeln!(out, "Unchanged: {} (not listed).", plural(summary.no_op, "node"));
    }
    let spec = spec_findings(plan);
    if !spec.is_empty() {
        out.push_str("\nSpec findings:\n");
        for finding in spec {
            diagnostic(&mut out, ctx, finding, "  ");
        }
    }

    let by_address = diagnostics_by_address(plan);
    let kinds: BTreeMap<&Address, NodeKind> = plan.changes.iter().map(|c| (&c.address, c.kind)).collect();
    for change in listed(plan) {
        out.push('\n');
        let _ = writeln!(
            out,
            "{:>3} {} ({}) {}",
            change.action.symbol(),
            change.address,
            change.kind,
            phrase(change.action)
        );
        let fields = fields(change, ctx.width);
        for reason in &change.reasons {
            let text = match is_formatting_only(reason, &fields) {
                Some(field) => format!("`{field}` differs only in formatting (equal as normalized JSON)"),
                None => reason.to_string(),
            };
            wrap(&mut out, &format!("{FIELD_INDENT}because: "), &format!("{FIELD_INDENT}         "), &text, ctx.width);
        }
        for finding in by_address.get(&change.address).into_iter().flatten() {
            diagnostic(&mut out, ctx, finding, FIELD_INDENT);
        }
        field_lines(&mut out, &fields);
    }

    let unmatched = unmatched_diagnostics(plan);
    if !unmatched.is_empty() {
        out.push_str("\nDiagnostics on nodes with no planned change:\n");
        let mut previous: Option<&Address> = None;
        for (address, finding) in unmatched {
            if previous != Some(address) {
                // A blank line between nodes, none under the heading.
                if previous.is_some() {
                    out.push('\n');
                }
                match kinds.get(address) {
                    Some(kind) => {
                        let _ = writeln!(out, "    {address} ({kind})");
                    }
                    None => {
                        let _ = writeln!(out, "    {address}");
                    }
                }
                previous = Some(address);
            }
            diagnostic(&mut out, ctx, finding, FIELD_INDENT);
        }
    }
    out
}

fn field_lines(out: &mut String, fields: &Fields) {
    for entry in &fields.entries {
        match entry {
            Entry::Line(line) => field_line(out, line),
            // The first lines, then where all of it is: no CLI flag needed, the other formats
            // carry the full values.
            Entry::Folded(folded) => {
                let total = folded.lines.len();
                let note = |text: String| Line { depth: 1, sign: ' ', text };
                field_line(out, &note(format!("# {}, first {PREVIEW} of {total} lines:", folded.title())));
                for line in folded.lines.iter().take(PREVIEW) {
                    field_line(out, line);
                }
                let more = total.saturating_sub(PREVIEW);
                let noun = if more == 1 { "line" } else { "lines" };
                field_line(out, &note(format!("… {more} more {noun} (in full: --format markdown or --format json)")));
            }
        }
    }
}

fn field_line(out: &mut String, line: &Line) {
    let text = format!("{FIELD_INDENT}{}{} {}", "    ".repeat(line.depth), line.sign, line.text);
    let _ = writeln!(out, "{}", text.trim_end());
}

/// `error[EP201]: message`, then where in the spec, then the help.
fn diagnostic(out: &mut String, ctx: &RenderContext, finding: &Finding, indent: &str) {
    let head = format!("{indent}{}[{}]: ", finding.severity, finding.code());
    let hanging = " ".repeat(head.chars().count());
    wrap(out, &head, &hanging, &finding.message, ctx.width);
    if let Some(location) = location(ctx, finding) {
        let _ = writeln!(out, "{indent}  --> {location}");
    }
    let help = format!("{indent}  help: ");
    wrap(out, &help, &" ".repeat(help.chars().count()), &finding.help, ctx.width);
}

/// Greedy word wrap at `width` columns; a word longer than the line (a URL, an ARN) is never
/// split, so it stays copyable.
fn wrap(out: &mut String, first: &str, rest: &str, text: &str, width: usize) {
    let mut line = first.to_string();
    let mut len = line.chars().count();
    let mut empty = true;
    for word in text.split_whitespace() {
        let word_len = word.chars().count();
        if !empty && len + 1 + word_len > width {
            let _ = writeln!(out, "{line}");
            line = rest.to_string();
            len = line.chars().count();
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += word_len;
        empty = false;
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_whole_and_hangs() {
        let mut out = String::new();
        wrap(&mut out, "  because: ", "           ", "one two three four arn:aws:iam::123456789012:root", 24);
        // 24 columns exactly fit; the ARN overflows rather than being split.
        assert_eq!(out, "  because: one two three\n           four\n           arn:aws:iam::123456789012:root\n");
    }
}
