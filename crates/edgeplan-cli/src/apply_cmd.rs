//! `edgeplan apply (SPEC | PLAN)`: show the plan, confirm, execute it in dependency order, in
//! parallel, then verify end to end.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use edgeplan_engine::{ApplyOptions, ApplyReport, HeldLock, Planned, Progress, Session, Stack, Status, clock};
use edgeplan_model::{Address, WaitKind};
use edgeplan_plan::{Plan, SavedPlan};

use crate::args::{ApplyArgs, PlanFormat, ProgressMode};
use crate::engine::{load_beside_world, load_stack, load_stack_text, print, run};
use crate::exit;

/// Test-only fault hook: stop right after the k-th mutation, as if the process were killed.
pub(crate) const STOP_AFTER_ENV: &str = "EDGEPLAN_TEST_STOP_AFTER_MUTATIONS";
/// Exit code of a run stopped by the fault hook (a killed process has no say; tests need one).
const STOPPED: u8 = 3;

pub(crate) fn run_apply(args: ApplyArgs) -> u8 {
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error[edgeplan::usage]: {message}");
            return exit::CANNOT_RUN;
        }
    };
    let loaded = load_beside_world(args.world.as_deref(), || load_input(&args.input), |(stack, _)| stack);
    let ((stack, saved), connector) = match loaded {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let session = Session::new(stack, connector);
    run(&session, apply(&session, &args, saved.as_ref(), &options)).unwrap_or_else(|code| code)
}

async fn apply(session: &Session, args: &ApplyArgs, saved: Option<&SavedPlan>, options: &ApplyOptions) -> u8 {
    let lock = match crate::engine::lock(session, "apply").await {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let planned = session.plan().await;
    let nodes = session.stack.nodes();
    if let Some(saved) = saved
        && let Err(err) = saved.check(&session.stack.name, session.stack.source.text(), &nodes, &planned.observations)
    {
        eprintln!("error[edgeplan::stale-plan]: {err}");
        eprintln!("  help: run `edgeplan plan` again and review the new plan; a saved plan is applied only as made");
        release(&lock).await;
        return exit::FINDINGS;
    }
    // Same inputs, same observations (checked above): the pure decision gives the saved plan.
    if let Some(saved) = saved
        && !same_actions(saved, &planned.plan)
    {
        eprintln!("error[edgeplan::stale-plan]: the saved plan's actions differ from its inputs' decision");
        eprintln!("  help: run `edgeplan plan` again; this saved plan cannot be applied as made");
        release(&lock).await;
        return exit::FINDINGS;
    }
    print(&crate::plan_cmd::render(&planned, session, PlanFormat::Human));
    if crate::plan_cmd::has_errors(&planned.plan) {
        eprintln!("error[edgeplan::plan-errors]: the plan has errors; nothing was applied");
        eprintln!("  help: fix the errors above (each says how), then plan again");
        release(&lock).await;
        return exit::FINDINGS;
    }
    let selection = match select(&planned, args) {
        Ok(selection) => selection,
        Err(code) => {
            release(&lock).await;
            return code;
        }
    };
    let changes = planned
        .plan
        .changes
        .iter()
        .filter(|c| c.action.mutates() && selection.as_ref().is_none_or(|s| s.contains(&c.address)))
        .count();
    if changes > 0 && saved.is_none() && !args.auto_approve && !confirmed(changes, "apply") {
        release(&lock).await;
        return exit::CANNOT_RUN;
    }
    let progress = progress(args.progress);
    let report = session.apply(&planned, selection.as_ref(), options, progress.as_ref(), Some(&lock), false).await;
    drop(progress);
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error[edgeplan::lock-lost]: {err}; stopped");
            eprintln!("  help: another process took the stack lock over; plan again once it is done");
            return exit::FINDINGS;
        }
    };
    if report.interrupted {
        println!("\nStopped by {STOP_AFTER_ENV} after {} mutation(s).", report.mutations);
        // Like a killed process: the lease is left behind (a re-run on this host sees its
        // holder is gone and takes it over).
        return STOPPED;
    }
    print(&summary(&report, "Apply"));
    if !report.succeeded() {
        release(&lock).await;
        return exit::FINDINGS;
    }
    release(&lock).await;
    if args.no_verify {
        return exit::OK;
    }
    crate::verify_cmd::verify_and_report(session).await
}

pub(crate) async fn release(lock: &HeldLock) {
    if let Err(err) = lock.release().await {
        eprintln!("warning[edgeplan::lock]: the stack lock could not be released: {err}");
    }
}

fn options(args: &ApplyArgs) -> Result<ApplyOptions, String> {
    let mut options = ApplyOptions { parallelism: usize::from(args.parallelism), ..ApplyOptions::default() };
    for entry in &args.timeout {
        let (kind, duration) =
            entry.split_once('=').ok_or_else(|| format!("--timeout {entry}: expected KIND=DURATION"))?;
        let kind: WaitKind = kind.parse().map_err(|e| format!("--timeout {entry}: {e}"))?;
        options.timeouts.insert(kind, parse_duration(duration).map_err(|e| format!("--timeout {entry}: {e}"))?);
    }
    if let Ok(k) = std::env::var(STOP_AFTER_ENV) {
        options.stop_after_mutations = Some(k.parse().map_err(|_| format!("{STOP_AFTER_ENV}={k}: not a number"))?);
    }
    Ok(options)
}

/// `90s`, `15m`, `1h`, or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) =
        text.trim().split_at(text.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(text.trim().len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 90s, 15m or 1h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("`{text}` is not a duration like 90s, 15m or 1h")),
    };
    Ok(Duration::from_secs(seconds))
}

/// A saved plan (JSON with a `format_version`) or a spec.
fn load_input(path: &Path) -> Result<(Stack, Option<SavedPlan>), u8> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        eprintln!("error[edgeplan::cannot-read]: cannot read {}: {err}", path.display());
        exit::CANNOT_RUN
    })?;
    if !text.trim_start().starts_with('{') {
        return Ok((load_stack(path)?, None));
    }
    let saved = SavedPlan::from_json(&text).map_err(|err| {
        eprintln!("error[edgeplan::saved-plan]: {}: {err}", path.display());
        eprintln!("  help: saved plans are written by `edgeplan plan -o`; make a new one");
        exit::CANNOT_RUN
    })?;
    let base_dir = Path::new(&saved.spec_path).parent().unwrap_or(Path::new(".")).to_path_buf();
    let stack = load_stack_text(&saved.spec_path, &saved.spec_text, &base_dir)?;
    Ok((stack, Some(saved)))
}

fn same_actions(saved: &SavedPlan, plan: &Plan) -> bool {
    saved.changes.len() == plan.changes.len()
        && saved.changes.iter().zip(&plan.changes).all(|(s, c)| s.address == c.address && s.action == c.action)
}

/// `--target` / `--exclude`: the nodes to walk, announced loudly (like Terraform, these are
/// for exceptional cases and leave the stack partly applied).
fn select(planned: &Planned, args: &ApplyArgs) -> Result<Option<BTreeSet<Address>>, u8> {
    if args.target.is_empty() && args.exclude.is_empty() {
        return Ok(None);
    }
    let unknown = |err: edgeplan_graph::NotInGraph<Address>| -> u8 {
        eprintln!("error[edgeplan::unknown-address]: {err}");
        eprintln!("  help: `edgeplan graph SPEC` lists every address");
        exit::CANNOT_RUN
    };
    let graph = &planned.graph;
    let mut selected: BTreeSet<Address> = graph.iter().map(|(a, _)| a.clone()).collect();
    if !args.target.is_empty() {
        let targets: Vec<Address> = args.target.iter().map(|t| Address::from_text(t)).collect();
        let closure = graph.closure_with_dependencies(&targets).map_err(unknown)?;
        selected.retain(|a| closure.contains(a));
    }
    if !args.exclude.is_empty() {
        let excluded: Vec<Address> = args.exclude.iter().map(|t| Address::from_text(t)).collect();
        let kept = graph.without_dependents(&excluded).map_err(unknown)?;
        selected.retain(|a| kept.contains(a));
    }
    let left_out = graph.len() - selected.len();
    println!();
    println!("Warning: resource targeting is in effect");
    println!("  Applying {} of {} nodes; {left_out} left out:", selected.len(), graph.len());
    for (address, _) in graph.iter().filter(|(a, _)| !selected.contains(*a)) {
        println!("    {address}");
    }
    println!("  --target adds what the targets depend on; --exclude also drops what depends on the excluded.");
    println!("  The stack stays partly applied until a full apply; use this only for exceptional cases.");
    Ok(Some(selected))
}

pub(crate) fn progress(mode: ProgressMode) -> Box<dyn Progress> {
    match (mode, std::io::stdout().is_terminal()) {
        (ProgressMode::None, _) => Box::new(edgeplan_engine::NoProgress),
        (ProgressMode::Fancy, _) | (ProgressMode::Auto, true) => Box::new(crate::progress::Fancy::new()),
        (ProgressMode::Plain, _) | (ProgressMode::Auto, false) => Box::new(crate::progress::Plain::default()),
    }
}

/// Ask on the terminal; refuse without one.
pub(crate) fn confirmed(changes: usize, verb: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error[edgeplan::needs-approval]: {changes} change(s) to {verb} and no terminal to confirm them");
        eprintln!("  help: review the plan above, then pass --auto-approve (or apply a saved plan from `plan -o`)");
        return false;
    }
    print!("\n{verb} these {changes} change(s)? Only 'yes' is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        true
    } else {
        eprintln!("Cancelled: nothing was changed.");
        false
    }
}

/// The final report: counts, then root causes only, each with what it held up.
pub(crate) fn summary(report: &ApplyReport, verb: &str) -> String {
    let count = |f: fn(&Status) -> bool| report.count(f);
    let succeeded = count(|s| matches!(s, Status::Succeeded { .. }));
    let failed = count(|s| matches!(s, Status::Failed { .. }));
    let skipped = count(|s| matches!(s, Status::Skipped { .. }));
    let mut out = String::new();
    let outcome = if failed == 0 { "complete" } else { "failed" };
    out.push_str(&format!(
        "\n{verb} {outcome}: {} change(s) made, {succeeded} node(s) succeeded, {failed} failed, {skipped} skipped; \
         {} elapsed.\n",
        report.mutations,
        clock(report.makespan)
    ));
    for (address, error) in report.failures() {
        out.push_str(&format!("\n✗ {address}\n  {}\n", error.to_string().replace('\n', "\n  ")));
        let held: Vec<&str> = report.skipped_because_of(address).map(Address::as_str).collect();
        if !held.is_empty() {
            out.push_str(&format!("  held up {}: {}\n", held.len(), held.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 days").is_err());
    }
}
