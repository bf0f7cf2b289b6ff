//! `edgeplan destroy SPEC`: delete what this stack owns, in reverse dependency order. What it
//! owns is found by ownership (tags, labels, Portainer tags) in every scope the spec names and
//! every scope its inventory remembers, so a destroy with a reduced spec still removes
//! everything; adopted and pre-existing resources are listed as kept, never touched.
//!
//! As in apply, whatever can refuse does so before the stack lock is taken, and the destroy
//! plan that was shown and approved is checked again under it.

use edgeplan_engine::{ApplyOptions, Planned, Session};
use edgeplan_model::{Action, Observed};
use edgeplan_plan::Reason;

use crate::args::{DestroyArgs, PlanFormat};
use crate::engine::{WorldFile, open_with_file, print, release, release_refused, run};
use crate::exit;

pub(crate) fn run_destroy(args: DestroyArgs) -> u8 {
    let (session, file) = match open_with_file(&args.spec, args.world.as_deref()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    run(&session, destroy(&session, &args, &file)).unwrap_or_else(|code| code)
}

async fn destroy(session: &Session, args: &DestroyArgs, file: &WorldFile) -> u8 {
    // Up to the lock, only reads: a refusal leaves the world file as it was.
    let planned = session.plan_destroy().await;
    let deletes = planned.plan.changes.iter().filter(|c| c.action == Action::Delete).count();
    let mut text = crate::plan_cmd::render(&planned, session, PlanFormat::Human);
    text.push_str(&kept(&planned));
    print(&text);
    if deletes == 0 {
        print("\nNothing to destroy: no live object carries this stack's ownership tags or labels.\n");
        return exit::OK;
    }
    if !args.auto_approve && !crate::apply_cmd::confirmed(deletes, "destroy") {
        return exit::FAILED;
    }
    let lock = match crate::engine::lock(session, "destroy", &args.spec).await {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let current = session.plan_destroy().await;
    if let Err(err) = crate::apply_cmd::unchanged(&planned.plan, &current.plan) {
        eprintln!("error[edgeplan::stale-plan]: {err}");
        eprintln!("  help: the world changed after the plan above was made; run destroy again to see the new plan");
        release_refused(&lock, file).await;
        return exit::FAILED;
    }
    let options = ApplyOptions { parallelism: usize::from(args.parallelism), ..ApplyOptions::default() };
    let progress = crate::apply_cmd::progress(args.progress);
    let report = session.apply(&current, None, &options, progress.as_ref(), Some(&lock), true).await;
    drop(progress);
    release(&lock).await;
    match report {
        Ok(report) => {
            print(&crate::apply_cmd::summary(&report, "Destroy"));
            if report.succeeded() { exit::OK } else { exit::FAILED }
        }
        Err(err) => {
            eprintln!("error[edgeplan::lock-lost]: {err}; stopped");
            exit::FAILED
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
