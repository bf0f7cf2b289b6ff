//! `edgeplan graph`: the resource DAG a spec compiles to, as DOT or Mermaid.

use std::io::Write;
use std::path::Path;

use edgeplan_diag::{Severity, SourceFile};

use crate::args::{GraphArgs, GraphFormat};
use crate::exit;
use crate::lint_cmd::{FsFiles, read_spec, render_human};

pub(crate) fn run(args: GraphArgs) -> u8 {
    let path = &args.spec;
    let bytes = match read_spec(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("error[edgeplan::cannot-read]: cannot read {}: {err}", path.display());
            return exit::CANNOT_RUN;
        }
    };
    // A graph of a spec with errors would be a graph of something else: lint first.
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let report = edgeplan_lint::lint_bytes(&path.display().to_string(), &bytes, base_dir, &FsFiles);
    if report.count(Severity::Error) > 0 {
        eprint!("{}", render_human(std::slice::from_ref(&report)));
        return exit::FINDINGS;
    }
    let Ok(text) = std::str::from_utf8(&bytes) else { return exit::FINDINGS };
    let Ok(spec) = edgeplan_spec::parse(&SourceFile::new(path.display().to_string(), text)) else {
        return exit::FINDINGS;
    };
    let graph = match edgeplan_model::resource_graph(edgeplan_model::compile(&spec)) {
        Ok(graph) => graph,
        Err(err) => {
            eprintln!("error[edgeplan::graph]: {err}");
            eprintln!("  help: this is a bug in edgeplan's compiler; please report it with the spec");
            return exit::FINDINGS;
        }
    };
    let label = |address: &edgeplan_model::Address, node: &edgeplan_model::Node| format!("{address}\n{}", node.kind);
    let output = match args.format {
        GraphFormat::Dot => graph.to_dot(label),
        GraphFormat::Mermaid => graph.to_mermaid(label),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => exit::OK,
        Err(_) => exit::CANNOT_RUN,
    }
}
