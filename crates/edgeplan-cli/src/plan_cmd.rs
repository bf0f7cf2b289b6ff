//! `edgeplan plan`: compile, observe, decide, render. The backend today is the simulated
//! world (`--world`); the AWS, Kubernetes and Portainer backends plug into the same trait.

use std::io::Write;

use edgeplan_diag::Severity;
use edgeplan_model::Backend;
use edgeplan_plan::Plan;
use edgeplan_render::plan::RenderContext;

use crate::args::{PlanArgs, PlanFormat};
use crate::engine::{Stack, load_stack, open_world, runtime};
use crate::exit;

/// `--detailed-exitcode`: changes present.
const CHANGES: u8 = 2;

pub(crate) fn run(args: PlanArgs) -> u8 {
    let stack = match load_stack(&args.spec) {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let world = match open_world(args.world.as_deref(), &stack.spec) {
        Ok(world) => world,
        Err(code) => return code,
    };
    let runtime = match runtime(&world) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let nodes = stack.nodes();
    let observations = runtime.block_on(world.observe(stack.name(), &nodes));
    let plan = edgeplan_plan::decide(stack.name(), &nodes, &observations);
    if let Some(out) = &args.out {
        let saved =
            edgeplan_plan::SavedPlan::from_plan(&plan, &args.spec.display().to_string(), stack.source.text(), &nodes);
        if let Err(err) = std::fs::write(out, saved.to_json()) {
            eprintln!("error[edgeplan::cannot-write]: cannot write {}: {err}", out.display());
            return exit::CANNOT_RUN;
        }
    }
    let output = render(&plan, &stack, args.format);
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return exit::CANNOT_RUN;
    }
    match (has_errors(&plan), args.detailed_exitcode, plan.summary().has_changes()) {
        (true, _, _) => exit::FINDINGS,
        (false, true, true) => CHANGES,
        _ => exit::OK,
    }
}

pub(crate) fn render(plan: &Plan, stack: &Stack, format: PlanFormat) -> String {
    let context =
        RenderContext { source: Some(stack.source.clone()), edges: stack.edges(), ..RenderContext::default() };
    match format {
        PlanFormat::Human => edgeplan_render::plan::human(plan, &context),
        PlanFormat::Json => edgeplan_render::plan::json(plan, &context),
        PlanFormat::Markdown => edgeplan_render::plan::markdown(plan, &context),
    }
}

pub(crate) fn has_errors(plan: &Plan) -> bool {
    plan.diagnostics.iter().any(|d| d.finding.severity == Severity::Error)
}
