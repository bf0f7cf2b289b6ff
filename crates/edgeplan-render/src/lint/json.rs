//! `edgeplan lint --format json`: one pretty-printed document for scripts.

use edgeplan_diag::{FileReport, Finding, SourceFile};
use serde::Serialize;

use crate::diagnostic_json::{DiagnosticJson, diagnostic_json};

/// Bumped only when a key is removed or changes meaning; new keys do not bump it.
pub const JSON_FORMAT_VERSION: &str = "1";

// Structs rather than `serde_json::Value`: field order is the declaration order whatever
// features serde_json is built with, so the output is stable.

#[derive(Serialize)]
struct Document<'a> {
    format_version: &'static str,
    files: usize,
    summary: Counts,
    diagnostics: Vec<Diagnostic<'a>>,
    suppressed: Vec<SuppressedDiagnostic<'a>>,
}

#[derive(Serialize)]
struct Counts {
    errors: usize,
    warnings: usize,
    notes: usize,
    suppressed: usize,
}

type Diagnostic<'a> = DiagnosticJson<'a>;

#[derive(Serialize)]
struct SuppressedDiagnostic<'a> {
    #[serde(flatten)]
    diagnostic: Diagnostic<'a>,
    reason: &'a str,
}

/// The JSON report: `format_version`, `files`, `summary`, `diagnostics` and `suppressed`.
/// `file` is the path exactly as the user gave it.
pub fn json(reports: &[FileReport]) -> String {
    let tally = super::summary(reports);
    let document = Document {
        format_version: JSON_FORMAT_VERSION,
        files: tally.files,
        summary: Counts {
            errors: tally.errors,
            warnings: tally.warnings,
            notes: tally.notes,
            suppressed: tally.suppressed,
        },
        diagnostics: reports
            .iter()
            .flat_map(|report| report.findings.iter().map(|finding| diagnostic(&report.source, finding)))
            .collect(),
        suppressed: reports
            .iter()
            .flat_map(|report| {
                report.suppressed.iter().map(|(finding, reason)| SuppressedDiagnostic {
                    diagnostic: diagnostic(&report.source, finding),
                    reason,
                })
            })
            .collect(),
    };
    // Plain structs with string keys: serialization cannot fail.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// The file is always known in lint, so `file` is always a string here.
fn diagnostic<'a>(source: &'a SourceFile, finding: &'a Finding) -> Diagnostic<'a> {
    diagnostic_json(Some(source), finding)
}
