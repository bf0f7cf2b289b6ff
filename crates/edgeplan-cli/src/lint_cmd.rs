//! `edgeplan lint`: read specs, run the static rules, render findings, pick the exit code.

use std::io::Write;
use std::path::Path;

use edgeplan_diag::{FileReport, FindingDiagnostic, Severity};
use edgeplan_lint::FileSource;

use crate::args::{LintArgs, LintFormat};
use crate::exit;

/// Referenced files (policy documents, EDGE_KEY files) are small; refuse anything huge.
const MAX_REFERENCED_FILE_BYTES: u64 = 1024 * 1024;

/// Reads files a spec references from the file system.
pub(crate) struct FsFiles;

impl FileSource for FsFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() > MAX_REFERENCED_FILE_BYTES {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "file larger than 1 MiB"));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_REFERENCED_FILE_BYTES), &mut bytes)?;
        Ok(bytes)
    }
}

pub(crate) fn run(args: LintArgs) -> u8 {
    let mut reports = Vec::new();
    let mut unreadable = false;
    for path in &args.specs {
        match read_spec(path) {
            Ok(bytes) => {
                let base_dir = path.parent().unwrap_or(Path::new("."));
                reports.push(edgeplan_lint::lint_bytes(&path.display().to_string(), &bytes, base_dir, &FsFiles));
            }
            Err(err) => {
                eprintln!("error[edgeplan::cannot-read]: cannot read {}: {err}", path.display());
                eprintln!("  help: check the path and permissions; nothing was linted in this file");
                unreadable = true;
            }
        }
    }
    let output = match args.format {
        LintFormat::Human => render_human(&reports),
        LintFormat::Json => edgeplan_render::lint::json(&reports),
        LintFormat::Sarif => edgeplan_render::lint::sarif(&reports),
        LintFormat::Github => edgeplan_render::lint::github(&reports),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return exit::CANNOT_RUN;
    }
    if unreadable {
        return exit::CANNOT_RUN;
    }
    exit_code(&reports, args.max_warnings)
}

pub(crate) fn read_spec(path: &Path) -> std::io::Result<Vec<u8>> {
    // Read one byte past the limit so an oversized spec becomes a finding, not an OOM.
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let limit = edgeplan_spec::MAX_SPEC_BYTES as u64 + 1;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut bytes)?;
    Ok(bytes)
}

fn exit_code(reports: &[FileReport], max_warnings: Option<usize>) -> u8 {
    let errors: usize = reports.iter().map(|r| r.count(Severity::Error)).sum();
    let warnings: usize = reports.iter().map(|r| r.count(Severity::Warning)).sum();
    if errors > 0 || max_warnings.is_some_and(|max| warnings > max) { exit::FINDINGS } else { exit::OK }
}

pub(crate) fn render_human(reports: &[FileReport]) -> String {
    let handler = crate::diagnostics::report_handler();
    let mut out = String::new();
    for report in reports {
        for finding in &report.findings {
            let diagnostic = FindingDiagnostic { finding, source: &report.source };
            if handler.render_report(&mut out, &diagnostic).is_err() {
                out.push_str(&format!("{}: {}: {}\n", report.source.path, finding.code(), finding.message));
            }
            out.push('\n');
        }
    }
    out.push_str(&edgeplan_render::lint::human_summary(reports));
    out.push('\n');
    out
}
