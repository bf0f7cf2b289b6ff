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

pub(crate) fn run_plan(args: PlanArgs) -> u8 {
    // Any failure is 1, whoever reported it: with --detailed-exitcode, CI branches on 2
    // meaning "changes", so nothing else may produce it.
    match plan(&args) {
        Ok(Outcome { errors: true, .. }) | Err(_) => exit::FAILED,
        Ok(Outcome { changes: true, .. }) if args.detailed_exitcode => exit::CHANGES,
        Ok(_) => exit::OK,
    }
}

/// What a plan that could be made says.
struct Outcome {
    errors: bool,
    changes: bool,
}

fn plan(args: &PlanArgs) -> Result<Outcome, u8> {
    let session = open(&args.spec, args.world.as_deref())?;
    let planned = run(&session, session.plan())?;
    if let Some(out) = &args.out {
        // The spec's path made absolute: its relative documents resolve from wherever the
        // saved plan is applied.
        let spec_path = std::path::absolute(&args.spec).unwrap_or_else(|_| args.spec.clone());
        let saved = edgeplan_plan::SavedPlan::from_plan(
            &planned.plan,
            &spec_path.display().to_string(),
            session.stack.source.text(),
            &session.stack.nodes(),
        );
        if let Err(err) = write_private(out, &saved.to_json()) {
            eprintln!("error[edgeplan::cannot-write]: cannot write {}: {err}", out.display());
            eprintln!("  help: -o takes a file path in a directory that exists and is writable");
            return Err(exit::FAILED);
        }
    }
    print(&render(&planned, &session, args.format));
    Ok(Outcome { errors: has_errors(&planned.plan), changes: planned.plan.summary().has_changes() })
}

/// Write a saved plan: a new file readable by its owner only (it carries the spec and a digest
/// of the secrets it read); an existing one keeps its mode, as a world file does.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
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
