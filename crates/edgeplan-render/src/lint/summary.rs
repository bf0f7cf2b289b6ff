//! Counting findings, and the one-line tally the CLI prints after the diagnostics.

use edgeplan_diag::{FileReport, Severity};

/// How many findings of each kind a lint run produced. `errors`, `warnings` and `notes` count
/// active findings only; suppressed ones are counted once, in `suppressed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    pub suppressed: usize,
    pub files: usize,
}

pub fn summary(reports: &[FileReport]) -> Summary {
    let count = |severity| reports.iter().map(|report| report.count(severity)).sum();
    Summary {
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        notes: count(Severity::Note),
        suppressed: reports.iter().map(|report| report.suppressed.len()).sum(),
        files: reports.len(),
    }
}

/// `2 errors, 1 warning, 0 notes in 3 files (1 suppressed)`. The parenthesis is left out when
/// nothing was suppressed. No trailing newline.
pub fn human_summary(reports: &[FileReport]) -> String {
    let tally = summary(reports);
    let mut line = format!(
        "{}, {}, {} in {}",
        plural(tally.errors, "error"),
        plural(tally.warnings, "warning"),
        plural(tally.notes, "note"),
        plural(tally.files, "file"),
    );
    if tally.suppressed > 0 {
        line.push_str(&format!(" ({} suppressed)", tally.suppressed));
    }
    line
}

/// `1 error`, `2 errors`, `0 errors`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}
