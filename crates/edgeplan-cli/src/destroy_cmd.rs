//! `edgeplan destroy SPEC`: delete what this stack owns, in reverse dependency order. What it
//! owns is found by ownership (tags, labels, Portainer tags) in every scope the spec names and
//! every scope its inventory remembers, so a destroy with a reduced spec still removes
//! everything; adopted and pre-existing resources are listed as kept, never touched.

use edgeplan_engine::{ApplyOptions, Planned, Session};
use edgeplan_model::{Action, Observed};
use edgeplan_plan::Reason;

use crate::args::{DestroyArgs, PlanFormat};
use crate::engine::{open, print, run};
use crate::exit;

pub(crate) fn run_destroy(args: DestroyArgs) -> u8 {
    let session = match open(&args.spec, args.world.as_deref()) {
        Ok(session) => session,
        Err(code) => return code,
    };
    run(&session, destroy(&session, &args)).unwrap_or_else(|code| code)
}

async fn destroy(session: &Session, args: &DestroyArgs) -> u8 {
    let lock = match crate::engine::lock(session, "destroy").await {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let planned = session.plan_destroy().await;
    let deletes = planned.plan.changes.iter().filter(|c| c.action == Action::Delete).count();
    let mut text = crate::plan_cmd::render(&planned, session, PlanFormat::Human);
    text.push_str(&kept(&planned));
    print(&text);
    if deletes == 0 {
        print("\nNothing to destroy: no live object carries this stack's ownership tags or labels.\n");
        crate::apply_cmd::release(&lock).await;
        return exit::OK;
    }
    if !args.auto_approve && !crate::apply_cmd::confirmed(deletes, "destroy") {
        crate::apply_cmd::release(&lock).await;
        return exit::CANNOT_RUN;
    }
    let options = ApplyOptions { parallelism: usize::from(args.parallelism), ..ApplyOptions::default() };
    let progress = crate::apply_cmd::progress(args.progress);
    let report = session.apply(&planned, None, &options, progress.as_ref(), Some(&lock), true).await;
    drop(progress);
    crate::apply_cmd::release(&lock).await;
    match report {
        Ok(report) => {
            print(&crate::apply_cmd::summary(&report, "Destroy"));
            if report.succeeded() { exit::OK } else { exit::FINDINGS }
        }
        Err(err) => {
            eprintln!("error[edgeplan::lock-lost]: {err}; stopped");
            exit::FINDINGS
        }
    }
}

/// What exists and stays, and why: the user sees that adopted and pre-existing resources are
/// safe before saying yes.
fn kept(planned: &Planned) -> String {
    let present = |address: &edgeplan_model::Address| {
        planned.observations.iter().any(|o| &o.address == address && matches!(o.result, Ok(Observed::Present(_))))
    };
    let lines: Vec<String> = planned
        .plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete && present(&c.address))
        .filter_map(|c| {
            let reason = c.reasons.iter().find(|r| {
                matches!(r, Reason::NotOwned | Reason::NeverDeleted | Reason::ManagedElsewhere | Reason::GoesWithParent)
            })?;
            Some(format!("    {} ({}): {reason}\n", c.address, c.kind))
        })
        .collect();
    if lines.is_empty() { String::new() } else { format!("\nKept (destroy never touches these):\n{}", lines.concat()) }
}
