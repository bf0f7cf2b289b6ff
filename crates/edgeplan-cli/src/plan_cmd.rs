//! `edgeplan plan`: compile, observe, discover what the stack owns, decide, render. The backend
//! today is the simulated world (`--world`); the AWS, Kubernetes and Portainer backends plug
//! into the same session.

use edgeplan_diag::Severity;
use edgeplan_engine::{Planned, Session};
use edgeplan_plan::Plan;
use edgeplan_render::plan::RenderContext;

use crate::args::{PlanArgs, PlanFormat};
use crate::engine::{open, print, run};
use crate::exit;

/// `--detailed-exitcode`: changes present.
const CHANGES: u8 = 2;

pub(crate) fn run_plan(args: PlanArgs) -> u8 {
    let session = match open(&args.spec, args.world.as_deref()) {
        Ok(session) => session,
        Err(code) => return code,
    };
    let planned = match run(&session, session.plan()) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    if let Some(out) = &args.out {
        let saved = edgeplan_plan::SavedPlan::from_plan(
            &planned.plan,
            &args.spec.display().to_string(),
            session.stack.source.text(),
            &session.stack.nodes(),
        );
        if let Err(err) = std::fs::write(out, saved.to_json()) {
            eprintln!("error[edgeplan::cannot-write]: cannot write {}: {err}", out.display());
            return exit::CANNOT_RUN;
        }
    }
    print(&render(&planned, &session, args.format));
    match (has_errors(&planned.plan), args.detailed_exitcode, planned.plan.summary().has_changes()) {
        (true, _, _) => exit::FINDINGS,
        (false, true, true) => CHANGES,
        _ => exit::OK,
    }
}

pub(crate) fn render(planned: &Planned, session: &Session, format: PlanFormat) -> String {
    let edges = planned.graph.edges().map(|(from, to, _)| (from.clone(), to.clone())).collect();
    let context = RenderContext { source: Some(session.stack.source.clone()), edges, ..RenderContext::default() };
    match format {
        PlanFormat::Human => edgeplan_render::plan::human(&planned.plan, &context),
        PlanFormat::Json => edgeplan_render::plan::json(&planned.plan, &context),
        PlanFormat::Markdown => edgeplan_render::plan::markdown(&planned.plan, &context),
    }
}

pub(crate) fn has_errors(plan: &Plan) -> bool {
    plan.diagnostics.iter().any(|d| d.finding.severity == Severity::Error)
}
