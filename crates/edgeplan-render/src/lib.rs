//! Output formats for edgeplan's results.
//!
//! Renderers only read: they turn already-decided findings into text and decide nothing
//! (no filtering, no re-ordering beyond what a format demands, no exit codes). The miette
//! terminal rendering lives in the CLI, the only crate that knows about the terminal.

mod diagnostic_json;
pub mod lint;
pub mod plan;
