//! `edgeplan lint --format json`: one pretty-printed document for scripts.

use edgeplan_diag::{FileReport, Finding, SourceFile};
use serde::Serialize;

use super::Region;

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

/// `code`, `severity`, `message`, `help`, `file`, `line`, `column`, `end_line` and `end_column`
/// are a public contract: always present, positions `null` for a finding without a span.
#[derive(Serialize)]
struct Diagnostic<'a> {
    code: &'static str,
    name: &'static str,
    severity: &'static str,
    message: &'a str,
    help: &'a str,
    help_uri: String,
    file: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    related: Vec<RelatedLocation<'a>>,
}

#[derive(Serialize)]
struct RelatedLocation<'a> {
    message: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
}

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

fn diagnostic<'a>(source: &'a SourceFile, finding: &'a Finding) -> Diagnostic<'a> {
    let region = finding.span.map(|span| Region::of(source, span));
    Diagnostic {
        code: finding.code(),
        name: finding.rule.name,
        severity: finding.severity.as_str(),
        message: &finding.message,
        help: &finding.help,
        help_uri: finding.rule.help_uri(),
        file: &source.path,
        line: region.map(|r| r.line),
        column: region.map(|r| r.column),
        end_line: region.map(|r| r.end_line),
        end_column: region.map(|r| r.end_column),
        related: finding
            .related
            .iter()
            .map(|related| {
                let region = Region::of(source, related.span);
                RelatedLocation {
                    message: &related.message,
                    line: region.line,
                    column: region.column,
                    end_line: region.end_line,
                    end_column: region.end_column,
                }
            })
            .collect(),
    }
}
