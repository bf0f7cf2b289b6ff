//! Renderers for `edgeplan lint`: `&[FileReport]` in, the whole output text out.
//!
//! Every function keeps the caller's order of files and findings (`FileReport::sort` makes it
//! deterministic), so equal input always renders byte-for-byte equal output. The document
//! formats ([`json`], [`sarif`], [`github`]) end with a newline and can be written verbatim;
//! [`human_summary`] is one line without its newline.

mod github;
mod json;
mod sarif;
mod summary;

pub use github::{GITHUB_ANNOTATIONS_PER_SEVERITY, github};
pub use json::{JSON_FORMAT_VERSION, json};
pub use sarif::{INFORMATION_URI, sarif};
pub use summary::{Summary, human_summary, summary};

use edgeplan_diag::{SourceFile, Span};

/// A span as 1-based lines and character columns; the end is exclusive, as in SARIF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
}

impl Region {
    fn of(source: &SourceFile, span: Span) -> Region {
        let (start, end) = source.range(span);
        Region { line: start.line, column: start.column, end_line: end.line, end_column: end.column }
    }
}

/// The path as a repository-relative, forward-slash path: what SARIF uploads and GitHub
/// annotations match against the checkout. `./specs/a.yaml` and `specs\a.yaml` both become
/// `specs/a.yaml`.
fn repo_path(path: &str) -> String {
    let forward = path.replace('\\', "/");
    let mut rest = forward.as_str();
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped;
    }
    rest.to_string()
}
