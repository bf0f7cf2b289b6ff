//! Reading a spec for the commands that act on it (graph, plan): read, lint, parse. A spec
//! with error findings is refused with those findings, never half-used.

use std::path::Path;

use edgeplan_diag::{Severity, SourceFile};
use edgeplan_spec::Spec;

use crate::exit;
use crate::lint_cmd::{FsFiles, read_spec, render_human};

/// The lint-clean spec and its source, or the exit code after the problem was printed.
pub(crate) fn load_clean_spec(path: &Path) -> Result<(SourceFile, Spec), u8> {
    let bytes = read_spec(path).map_err(|err| {
        eprintln!("error[edgeplan::cannot-read]: cannot read {}: {err}", path.display());
        eprintln!("  help: check the path and permissions");
        exit::CANNOT_RUN
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let report = edgeplan_lint::lint_bytes(&path.display().to_string(), &bytes, base_dir, &FsFiles);
    if report.count(Severity::Error) > 0 {
        eprint!("{}", render_human(std::slice::from_ref(&report)));
        return Err(exit::FINDINGS);
    }
    let text = String::from_utf8(bytes).map_err(|_| exit::FINDINGS)?;
    let source = SourceFile::new(path.display().to_string(), text);
    let spec = edgeplan_spec::parse(&source).map_err(|_| exit::FINDINGS)?;
    Ok((source, spec))
}
