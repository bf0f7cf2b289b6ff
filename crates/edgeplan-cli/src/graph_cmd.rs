//! `edgeplan graph`: the resource DAG a spec compiles to, as DOT or Mermaid.

use crate::args::{GraphArgs, GraphFormat};
use crate::exit;
use std::io::Write;

pub(crate) fn run(args: GraphArgs) -> u8 {
    let (_, spec) = match crate::spec_input::load_clean_spec(&args.spec) {
        Ok(loaded) => loaded,
        // Lint's loader has its own contract; here any failure is 1, as in every command
        // that works on a stack.
        Err(_) => return exit::FAILED,
    };
    let graph = match edgeplan_model::resource_graph(edgeplan_model::compile(&spec)) {
        Ok(graph) => graph,
        Err(err) => {
            eprintln!("error[edgeplan::graph]: {err}");
            eprintln!("  help: this is a bug in edgeplan's compiler; please report it with the spec");
            return exit::FAILED;
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
        Err(_) => exit::FAILED,
    }
}
