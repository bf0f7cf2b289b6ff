//! The JSON shape of one diagnostic, shared by the lint and plan JSON outputs so the contract
//! (`code`, `severity`, `message`, `help`, `file`, `line`, `column`, `end_line`, `end_column`,
//! always present) is written once.

use edgeplan_diag::{Finding, SourceFile, Span};
use serde::Serialize;

/// Positions are `null` when the finding has no span or the source is not known.
#[derive(Serialize)]
pub(crate) struct DiagnosticJson<'a> {
    code: &'static str,
    name: &'static str,
    severity: &'static str,
    message: &'a str,
    help: &'a str,
    help_uri: String,
    file: Option<&'a str>,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    related: Vec<RelatedJson<'a>>,
}

#[derive(Serialize)]
struct RelatedJson<'a> {
    message: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
}

pub(crate) fn diagnostic_json<'a>(source: Option<&'a SourceFile>, finding: &'a Finding) -> DiagnosticJson<'a> {
    let range = |span: Span| source.map(|source| source.range(span));
    let primary = finding.span.and_then(range);
    DiagnosticJson {
        code: finding.code(),
        name: finding.rule.name,
        severity: finding.severity.as_str(),
        message: &finding.message,
        help: &finding.help,
        help_uri: finding.rule.help_uri(),
        file: source.map(|s| s.path.as_str()),
        line: primary.map(|(start, _)| start.line),
        column: primary.map(|(start, _)| start.column),
        end_line: primary.map(|(_, end)| end.line),
        end_column: primary.map(|(_, end)| end.column),
        related: finding
            .related
            .iter()
            .map(|related| {
                let range = range(related.span);
                RelatedJson {
                    message: &related.message,
                    line: range.map(|(start, _)| start.line),
                    column: range.map(|(start, _)| start.column),
                    end_line: range.map(|(_, end)| end.line),
                    end_column: range.map(|(_, end)| end.column),
                }
            })
            .collect(),
    }
}
