//! `edgeplan lint --format github`: workflow commands that GitHub Actions turns into
//! annotations on the pull request's diff.

use edgeplan_diag::{FileReport, Finding, Severity, SourceFile};

use super::summary::plural;
use super::{Region, repo_path};

/// GitHub shows at most this many annotations of each severity per step and drops the rest.
pub const GITHUB_ANNOTATIONS_PER_SEVERITY: usize = 10;

/// One `::error`/`::warning`/`::notice` line per finding, errors first, then warnings, then
/// notes, each group in the caller's order:
///
/// ```text
/// ::error file=specs/a.yaml,line=3,col=5,endLine=3,endColumn=19,title=EP120 nlb-scheme-internal::message. help: …
/// ```
///
/// A finding without a span gets `file=` as its only location. Suppressed findings are not
/// annotated: the comment that silenced them is in the diff already.
///
/// GitHub keeps only the first [`GITHUB_ANNOTATIONS_PER_SEVERITY`] annotations of each
/// severity in a step, so more lines would be silently lost; this emits only those that will be
/// shown, and then one `::notice title=edgeplan::N more findings not annotated; …` so the loss
/// is visible. That notice is itself a notice, so when it is needed the notes give up one
/// slot (9 instead of 10) to keep it among the ten GitHub shows. The JSON and SARIF reports
/// always carry every finding.
pub fn github(reports: &[FileReport]) -> String {
    let of_severity = |severity: Severity| {
        reports
            .iter()
            .flat_map(move |report| report.findings.iter().map(move |finding| (&report.source, finding)))
            .filter(move |(_, finding)| finding.severity == severity)
            .collect::<Vec<_>>()
    };
    let errors = of_severity(Severity::Error);
    let warnings = of_severity(Severity::Warning);
    let notes = of_severity(Severity::Note);

    let limit = GITHUB_ANNOTATIONS_PER_SEVERITY;
    let needs_overflow_notice = errors.len() > limit || warnings.len() > limit || notes.len() > limit;
    let note_limit = if needs_overflow_notice { limit - 1 } else { limit };

    let mut out = String::new();
    let mut not_annotated = 0;
    for (group, group_limit) in [(errors, limit), (warnings, limit), (notes, note_limit)] {
        not_annotated += group.len().saturating_sub(group_limit);
        for (source, finding) in group.into_iter().take(group_limit) {
            out.push_str(&annotation(source, finding));
            out.push('\n');
        }
    }
    if not_annotated > 0 {
        out.push_str(&format!(
            "::notice title=edgeplan::{} not annotated; see the SARIF/JSON report\n",
            plural(not_annotated, "more finding")
        ));
    }
    out
}

fn annotation(source: &SourceFile, finding: &Finding) -> String {
    let command = match finding.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    };
    let mut properties = format!("file={}", escape_property(&repo_path(&source.path)));
    if let Some(span) = finding.span {
        let region = Region::of(source, span);
        properties.push_str(&format!(
            ",line={},col={},endLine={},endColumn={}",
            region.line, region.column, region.end_line, region.end_column
        ));
    }
    let title = format!("{} {}", finding.code(), finding.rule.name);
    properties.push_str(&format!(",title={}", escape_property(&title)));
    let message = format!("{}. help: {}", finding.message, finding.help);
    format!("::{command} {properties}::{}", escape_data(&message))
}

/// The actions toolkit's `escapeData`: the message may not contain a raw newline, and `%`
/// starts an escape.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// The actions toolkit's `escapeProperty`: as [`escape_data`], plus `:` and `,`, which end a
/// property.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_actions_toolkit() {
        assert_eq!(escape_data("100%: a,b\r\nc"), "100%25: a,b%0D%0Ac");
        assert_eq!(escape_property("100%: a,b\r\nc"), "100%25%3A a%2Cb%0D%0Ac");
        // `%` first, so the escapes themselves are not escaped again.
        assert_eq!(escape_property("%3A"), "%253A");
    }
}
