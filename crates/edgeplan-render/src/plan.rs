//! Renderers for `edgeplan plan`: a [`Plan`] in, the whole output text out.
//!
//! They only read the model: the action, reasons, before/after and diagnostics are printed as
//! `decide` recorded them, in the plan's (dependency) order. Secrets exist in the model only as
//! `Shown::Sensitive` (with the reference the plan gives, if any) and are printed in exactly
//! one form per format: `(sensitive)` or `(sensitive: env:NAME)` in text, `{"sensitive": true,
//! "ref": "env:NAME"}` (`"ref": null` without one) in JSON. Renderers add nothing derived from a
//! secret, such as a digest.
//!
//! Findings about the spec itself (lint findings the plan carries, at the address `spec`) are a
//! group of their own, "Spec findings", located by `file:line:column`.
//!
//! Every function is deterministic (no colours, no clocks, ordered maps only) and its output
//! ends with a newline, so it can be written verbatim.

mod fields;
mod human;
mod json;
mod markdown;
mod policy;

pub use human::human;
pub use json::{JSON_FORMAT_VERSION, json};
pub use markdown::markdown;

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_diag::{Finding, Severity, SourceFile};
use edgeplan_model::{Action, Address};
use edgeplan_plan::{Change, Plan};

/// What a renderer needs beyond the plan itself.
#[derive(Debug, Clone)]
pub struct RenderContext {
    /// The spec the plan was computed from: diagnostics with a span get `file:line:column`.
    /// Without it, they are printed without a location.
    pub source: Option<SourceFile>,
    /// Resource graph edges `(dependency, dependent)`, for the markdown graph of the changes.
    pub edges: Vec<(Address, Address)>,
    /// Wrap prose (reasons, diagnostics) in the human format at this many columns. Values are
    /// never wrapped, so they stay copyable.
    pub width: usize,
}

impl Default for RenderContext {
    fn default() -> RenderContext {
        RenderContext { source: None, edges: Vec::new(), width: 100 }
    }
}

/// Changes worth listing: everything but no-ops, which are only counted.
fn listed(plan: &Plan) -> impl Iterator<Item = &Change> {
    plan.changes.iter().filter(|c| c.action != Action::NoOp)
}

/// Terraform's wording, which users already read fluently.
fn phrase(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in-place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::Read => "will be read",
        Action::NoOp => "is unchanged",
    }
}

/// `Plan: 12 to add, 2 to change, 1 to replace, 0 to destroy, 1 to read.`
fn plan_line(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy, {} to read.",
        s.create, s.update, s.replace, s.delete, s.read
    )
}

#[derive(Debug, Clone, Copy, Default)]
struct Severities {
    errors: usize,
    warnings: usize,
    notes: usize,
}

fn severities(plan: &Plan) -> Severities {
    let mut tally = Severities::default();
    for diagnostic in &plan.diagnostics {
        match diagnostic.finding.severity {
            Severity::Error => tally.errors += 1,
            Severity::Warning => tally.warnings += 1,
            Severity::Note => tally.notes += 1,
        }
    }
    tally
}

/// `1 error, 2 warnings, 0 notes`: the same wording as lint's summary line.
fn severities_line(plan: &Plan) -> String {
    let s = severities(plan);
    format!("{}, {}, {}", plural(s.errors, "error"), plural(s.warnings, "warning"), plural(s.notes, "note"))
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// `specs/seed.yaml:24:7` when the finding has a span and the source is known.
fn location(ctx: &RenderContext, finding: &Finding) -> Option<String> {
    let (source, span) = (ctx.source.as_ref()?, finding.span?);
    let (start, _) = source.range(span);
    Some(format!("{}:{}:{}", source.path, start.line, start.column))
}

/// Diagnostics by the address they concern, in the plan's order. Indexed once per render, so
/// a 1,000-consumer plan is not scanned once per change.
fn diagnostics_by_address(plan: &Plan) -> BTreeMap<&Address, Vec<&Finding>> {
    let mut by_address: BTreeMap<&Address, Vec<&Finding>> = BTreeMap::new();
    for diagnostic in &plan.diagnostics {
        by_address.entry(&diagnostic.address).or_default().push(&diagnostic.finding);
    }
    by_address
}

/// Findings about the spec itself (lint's, at the plan's `spec` address), in the plan's order.
fn spec_findings(plan: &Plan) -> Vec<&Finding> {
    plan.diagnostics.iter().filter(|d| d.is_spec()).map(|d| &d.finding).collect()
}

/// Diagnostics about nodes that are not listed (no planned change, or not in the plan), in
/// the plan's order. Spec findings are not about a node: they have their own group.
fn unmatched_diagnostics(plan: &Plan) -> Vec<(&Address, &Finding)> {
    let listed: BTreeSet<&Address> = listed(plan).map(|c| &c.address).collect();
    plan.diagnostics
        .iter()
        .filter(|d| !listed.contains(&d.address) && !d.is_spec())
        .map(|d| (&d.address, &d.finding))
        .collect()
}
