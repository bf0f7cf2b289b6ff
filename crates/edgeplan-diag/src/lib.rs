//! One diagnostic vocabulary for every edgeplan check.
//!
//! Parse errors, static lint rules and (later) live-state rules share one ID space, one
//! [`Finding`] shape and one set of renderers. A finding carries a byte span into its source;
//! line and column are derived from the text, never stored twice.

mod rules;
mod source;

pub use rules::{DOCS_BASE_URL, RULES, Rule, RuleId, Stage, find_rule, rule};
pub use source::{LineCol, SourceFile, Span};

use std::fmt;

/// How bad a finding is. The order matters: `Error > Warning > Note`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secondary location that explains a finding ("the VPC CIDR is declared here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub span: Span,
    pub message: String,
}

/// One problem found in one source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    pub severity: Severity,
    /// One line, no trailing period.
    pub message: String,
    /// What to do about it, one line.
    pub help: String,
    /// Where in the source; `None` for findings about the file as a whole.
    pub span: Option<Span>,
    /// Text for the primary label; defaults to the message.
    pub label: Option<String>,
    pub related: Vec<Related>,
}

impl Finding {
    /// A finding with the rule's default severity and help.
    pub fn new(rule: &'static Rule, span: Option<Span>, message: impl Into<String>) -> Finding {
        Finding {
            rule,
            severity: rule.severity,
            message: one_line(message.into()),
            help: rule.help.to_string(),
            span,
            label: None,
            related: Vec::new(),
        }
    }

    /// Look the rule up by ID. Panics only on a typo in edgeplan's own code, which the
    /// catalog test (`every_rule_id_used_in_code_exists`) rules out.
    pub fn of(id: RuleId, span: Option<Span>, message: impl Into<String>) -> Finding {
        Finding::new(rule(id), span, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Finding {
        self.help = one_line(help.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Finding {
        self.label = Some(one_line(label.into()));
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    pub fn with_related(mut self, span: Span, message: impl Into<String>) -> Finding {
        self.related.push(Related { span, message: message.into() });
        self
    }

    pub fn code(&self) -> &'static str {
        self.rule.id.as_str()
    }
}

/// Messages quote user values, which may hold newlines or control characters: escape them so
/// every message stays one line in every format (and cannot forge output lines).
fn one_line(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The findings of one file, with the file they point into.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub source: SourceFile,
    pub findings: Vec<Finding>,
    /// Findings silenced by an `# edgeplan-ignore:` comment, with its reason.
    pub suppressed: Vec<(Finding, String)>,
}

impl FileReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }

    /// Sort findings by position, then rule, so every output format is deterministic.
    pub fn sort(&mut self) {
        self.findings.sort_by_key(|f| (f.span.map(|s| (s.start, s.end)), f.rule.id, f.message.clone()));
    }
}

/// A finding bound to its source, as a miette diagnostic. Rendering (fancy or not) is the
/// CLI's business; this only describes.
pub struct FindingDiagnostic<'a> {
    pub finding: &'a Finding,
    pub source: &'a SourceFile,
}

impl fmt::Debug for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FindingDiagnostic").field("code", &self.finding.code()).finish()
    }
}

impl fmt::Display for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.finding.message)
    }
}

impl std::error::Error for FindingDiagnostic<'_> {}

impl miette::Diagnostic for FindingDiagnostic<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(format!("{}/{}", self.finding.rule.code(), self.finding.rule.name)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.finding.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.finding.help))
    }

    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.finding.rule.help_uri()))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let primary = self.finding.span.map(|span| {
            let text = self.finding.label.clone().unwrap_or_else(|| self.finding.message.clone());
            miette::LabeledSpan::new_primary_with_span(Some(text), span.to_miette())
        });
        let related = self
            .finding
            .related
            .iter()
            .map(|r| miette::LabeledSpan::new_with_span(Some(r.message.clone()), r.span.to_miette()));
        Some(Box::new(primary.into_iter().chain(related)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let f = Finding::of(RuleId::InvalidCidr, None, "`a\nb\u{7}` bad").with_help("x\ry").with_label("t\tu");
        assert_eq!(f.message, "`a\\nb\\u{7}` bad");
        assert_eq!(f.help, "x\\ry");
        assert_eq!(f.label.as_deref(), Some("t\\tu"));
    }
}
