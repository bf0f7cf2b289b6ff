//! Reading a spec for the commands that act on it (graph, plan): read, lint, parse. A spec
//! with error findings is refused with those findings, never half-used.

use std::path::Path;

use edgeplan_diag::{FileReport, Severity};
use edgeplan_spec::Spec;

use crate::exit;
use crate::lint_cmd::{FsFiles, read_spec, render_human};

/// The lint-clean spec and lint's report on it (its source, and the warnings and notes the
/// plan carries), or the exit code after the problem was printed.
pub(crate) fn load_clean_spec(path: &Path) -> Result<(FileReport, Spec), u8> {
    let bytes = read_spec(path).map_err(|err| {
        // A key pasted where the spec's path belongs is not printed back.
        let shown = crate::lint_cmd::shown_path(path, &path.display().to_string());
        eprintln!("error[edgeplan::cannot-read]: cannot read {shown}: {err}");
        eprintln!("  help: check the path and permissions");
        exit::CANNOT_RUN
    })?;
    load_clean_text(&path.display().to_string(), &bytes, path.parent().unwrap_or(Path::new(".")))
}

/// [`load_clean_spec`] for a spec given as bytes (a saved plan carries its spec).
pub(crate) fn load_clean_text(display: &str, bytes: &[u8], base_dir: &Path) -> Result<(FileReport, Spec), u8> {
    let (report, spec) = edgeplan_lint::lint_and_parse(display, bytes, base_dir, &FsFiles);
    if report.count(Severity::Error) > 0 {
        eprint!("{}", render_human(std::slice::from_ref(&report)));
        return Err(exit::FINDINGS);
    }
    // No error findings means it parsed (a parse failure is an error finding). A lint-clean
    // spec holds no inline secrets, so the report's redacted source is the spec's text.
    let spec = spec.ok_or(exit::FINDINGS)?;
    Ok((report, spec))
}
