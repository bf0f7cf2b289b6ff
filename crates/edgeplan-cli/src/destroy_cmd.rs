//! `edgeplan destroy SPEC`: delete what this stack owns, in reverse dependency order. Ownership
//! is proven by the live objects' tags, labels and field manager; adopted and pre-existing
//! resources are listed as kept, never touched.

use std::io::Write;

use edgeplan_apply::{ApplyOptions, Direction, Walk};
use edgeplan_model::{Action, Backend, Observed};
use edgeplan_plan::{Plan, Reason};

use crate::args::{DestroyArgs, PlanFormat};
use crate::engine::{FsSecrets, load_stack, open_world, runtime};
use crate::exit;

pub(crate) fn run(args: DestroyArgs) -> u8 {
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
    let _lease = match crate::lock_cmd::acquire(&world, &stack, "destroy") {
        Ok(lease) => lease,
        Err(code) => return code,
    };
    let nodes = stack.nodes();
    let observations = runtime.block_on(world.observe(stack.name(), &nodes));
    let plan = edgeplan_plan::decide_destroy(stack.name(), &nodes, &observations);
    let deletes = plan.changes.iter().filter(|c| c.action == Action::Delete).count();
    let mut text = crate::plan_cmd::render(&plan, &stack, PlanFormat::Human);
    text.push_str(&kept(&plan, &observations));
    print(&text);
    if deletes == 0 {
        print("\nNothing to destroy: no live object carries this stack's ownership tags or labels.\n");
        return exit::OK;
    }
    if !args.auto_approve && !crate::apply_cmd::confirmed(deletes, "destroy") {
        return exit::CANNOT_RUN;
    }
    let walk =
        Walk { stack: stack.name(), graph: &stack.graph, plan: &plan, direction: Direction::Reverse, only: None };
    let options = ApplyOptions { parallelism: usize::from(args.parallelism), ..ApplyOptions::default() };
    let progress = crate::apply_cmd::progress(args.progress);
    let secrets = FsSecrets { base_dir: stack.base_dir.clone() };
    let report = runtime.block_on(edgeplan_apply::apply(&world, &walk, &secrets, &options, progress.as_ref()));
    drop(progress);
    if let Err(code) = world.save() {
        return code;
    }
    print(&crate::apply_cmd::summary(&report, "Destroy"));
    if report.succeeded() { exit::OK } else { exit::FINDINGS }
}

/// What exists and stays, and why: the user sees that adopted and pre-existing resources are
/// safe before saying yes.
fn kept(plan: &Plan, observations: &[edgeplan_model::Observation]) -> String {
    let present = |address: &edgeplan_model::Address| {
        observations.iter().any(|o| &o.address == address && matches!(o.result, Ok(Observed::Present(_))))
    };
    let lines: Vec<String> = plan
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

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
