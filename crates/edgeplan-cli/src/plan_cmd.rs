//! `edgeplan plan`: compile, observe, decide, render. The backend today is the simulated
//! world (`--world`); the AWS, Kubernetes and Portainer backends plug into the same trait.

use std::io::Write;
use std::path::Path;

use edgeplan_diag::Severity;
use edgeplan_model::{Backend, Expr, Node, NodeKind, Value};
use edgeplan_render::plan::RenderContext;

use crate::args::{PlanArgs, PlanFormat};
use crate::exit;

/// `--detailed-exitcode`: changes present.
const CHANGES: u8 = 2;

pub(crate) fn run(args: PlanArgs) -> u8 {
    let (source, spec) = match crate::spec_input::load_clean_spec(&args.spec) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let Some(world_path) = &args.world else {
        eprintln!("error[edgeplan::no-backend]: no backend to observe live state");
        eprintln!("  help: pass --world FILE to plan against a simulated world, e.g. testdata/worlds/seed.yaml");
        return exit::CANNOT_RUN;
    };
    let backend = match load_world(world_path) {
        Ok(backend) => backend,
        Err(code) => return code,
    };
    let missing = world_mismatch(&backend.snapshot(), &spec);
    if !missing.is_empty() {
        eprintln!(
            "error[edgeplan::world]: {} does not describe this spec: no {}",
            world_path.display(),
            missing.join(", no ")
        );
        eprintln!("  help: use the world made for this spec (testdata/worlds/<name>.yaml), or add what is missing");
        return exit::CANNOT_RUN;
    }
    let base_dir = args.spec.parent().unwrap_or(Path::new("."));
    let mut nodes = edgeplan_model::compile(&spec);
    if let Err(code) = inline_policy_documents(&mut nodes, base_dir) {
        return code;
    }
    let graph = match edgeplan_model::resource_graph(nodes) {
        Ok(graph) => graph,
        Err(err) => {
            eprintln!("error[edgeplan::graph]: {err}");
            eprintln!("  help: this is a bug in edgeplan's compiler; please report it with the spec");
            return exit::FINDINGS;
        }
    };
    let ordered: Vec<&Node> = graph.iter().map(|(_, node)| node).collect();
    let stack = spec.metadata.name.value.as_str();
    let observations = match block_on(backend.observe(stack, &ordered)) {
        Ok(observations) => observations,
        Err(err) => {
            eprintln!("error[edgeplan::runtime]: {err}");
            return exit::CANNOT_RUN;
        }
    };
    let plan = edgeplan_plan::decide(stack, &ordered, &observations);
    if let Some(out) = &args.out {
        let saved = edgeplan_plan::SavedPlan::from_plan(&plan, source.text());
        if let Err(err) = std::fs::write(out, saved.to_json()) {
            eprintln!("error[edgeplan::cannot-write]: cannot write {}: {err}", out.display());
            return exit::CANNOT_RUN;
        }
    }
    let context = RenderContext {
        source: Some(source),
        edges: graph.edges().map(|(from, to, _)| (from.clone(), to.clone())).collect(),
        ..RenderContext::default()
    };
    let output = match args.format {
        PlanFormat::Human => edgeplan_render::plan::human(&plan, &context),
        PlanFormat::Json => edgeplan_render::plan::json(&plan, &context),
        PlanFormat::Markdown => edgeplan_render::plan::markdown(&plan, &context),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return exit::CANNOT_RUN;
    }
    let errors = plan.diagnostics.iter().any(|d| d.finding.severity == Severity::Error);
    match (errors, args.detailed_exitcode, plan.summary().has_changes()) {
        (true, _, _) => exit::FINDINGS,
        (false, true, true) => CHANGES,
        _ => exit::OK,
    }
}

fn load_world(path: &Path) -> Result<edgeplan_sim::SimBackend, u8> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        eprintln!("error[edgeplan::cannot-read]: cannot read world {}: {err}", path.display());
        exit::CANNOT_RUN
    })?;
    edgeplan_sim::SimBackend::load(&text).map_err(|err| {
        eprintln!("error[edgeplan::world]: {}: {err}", path.display());
        eprintln!("  help: world files are written by edgeplan; start from testdata/worlds/seed.yaml");
        exit::CANNOT_RUN
    })
}

/// What the spec's provider and consumers need that the world lacks: a world made for another
/// spec is refused up front instead of producing a plan that creates everything.
fn world_mismatch(world: &edgeplan_sim::World, spec: &edgeplan_spec::Spec) -> Vec<String> {
    let mut missing = Vec::new();
    let provider = &spec.spec.provider;
    let mut aws = vec![&provider.aws];
    let mut contexts = vec![provider.cluster.kube_context.value.as_str()];
    for consumer in spec.spec.consumers.iter() {
        aws.push(&consumer.aws);
        contexts.push(consumer.cluster.kube_context.value.as_str());
    }
    for target in aws {
        let (account, region) = (target.account_id.value.as_str(), target.region.value.as_str());
        let found = world.aws.iter().any(|a| a.account == account && a.regions.iter().any(|r| r.region == region));
        let entry = format!("AWS account {account} in {region}");
        if !found && !missing.contains(&entry) {
            missing.push(entry);
        }
    }
    for context in contexts {
        let entry = format!("kube context `{context}`");
        if !world.kubernetes.iter().any(|c| c.context == context) && !missing.contains(&entry) {
            missing.push(entry);
        }
    }
    if !world.portainer.iter().any(|p| p.url == provider.portainer.url.value) {
        missing.push(format!("Portainer at {}", provider.portainer.url.value));
    }
    missing
}

/// The spec names the controller policy by path; the plan compares its content.
fn inline_policy_documents(nodes: &mut [Node], base_dir: &Path) -> Result<(), u8> {
    for node in nodes.iter_mut().filter(|n| n.kind == NodeKind::LbControllerPolicy) {
        let Some(Expr::Lit(Value::Str(path))) = node.desired.get("policy_document").cloned() else { continue };
        let text = std::fs::read_to_string(base_dir.join(&path)).map_err(|err| {
            eprintln!("error[edgeplan::cannot-read]: cannot read policy document {path}: {err}");
            exit::CANNOT_RUN
        })?;
        node.desired.insert("policy_document", Expr::lit(text));
    }
    Ok(())
}

/// Backends are async (real ones wait on the network); one current-thread runtime per command.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> std::io::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    Ok(runtime.block_on(future))
}
