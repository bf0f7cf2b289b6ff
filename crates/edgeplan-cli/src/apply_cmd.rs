//! `edgeplan apply (SPEC | PLAN)`: show the plan, confirm, execute it in dependency order, in
//! parallel, then verify end to end.
//!
//! The order is chosen so that everything that can refuse does so before the stack lock is
//! taken, leaving the world as it was: the flags, the inputs, a stale saved plan, an unknown
//! address, a plan with errors, a missing approval. Only then is the lock taken, and the plan
//! that was shown and approved is checked again under it (as a saved plan is): if the world
//! moved in between, the run is refused and the lock's own writes are taken back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use edgeplan_engine::{ApplyOptions, ApplyReport, Planned, Progress, Session, Stack, Status, clock};
use edgeplan_model::{Address, ResourceGraph, WaitKind};
use edgeplan_plan::{Plan, SavedPlan};

use crate::args::{ApplyArgs, PlanFormat, ProgressMode};
use crate::engine::{WorldFile, load_beside_world, load_stack, load_stack_text, print, release, release_refused, run};
use crate::exit;

/// Test-only fault hook: stop right after the k-th mutation, as if the process were killed.
pub(crate) const STOP_AFTER_ENV: &str = "EDGEPLAN_TEST_STOP_AFTER_MUTATIONS";
/// Test-only hooks, in milliseconds: pause after the plan is approved and before the lock is
/// taken (a test changes the world there), or hold the lock before walking (on the virtual
/// clock a walk takes milliseconds; the signal tests need the lock held while they signal).
pub(crate) const PAUSE_BEFORE_LOCK_ENV: &str = "EDGEPLAN_TEST_PAUSE_BEFORE_LOCK_MS";
pub(crate) const HOLD_LOCK_ENV: &str = "EDGEPLAN_TEST_HOLD_LOCK_MS";
/// Exit code of a run stopped by the fault hook (a killed process has no say; tests need one).
pub(crate) const STOPPED: u8 = 3;
/// The longest wait timeout accepted: far beyond any modelled wait, and far from overflowing
/// any clock arithmetic.
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

pub(crate) fn run_apply(args: ApplyArgs) -> u8 {
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error[edgeplan::usage]: {message}");
            eprintln!("  help: see `edgeplan apply --help`");
            return exit::FAILED;
        }
    };
    let loaded = load_beside_world(args.world.as_deref(), || load_input(&args.input), |(stack, _)| stack);
    let ((stack, saved), connector, file) = match loaded {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let session = Session::new(stack, connector);
    run(&session, apply(&session, &args, saved.as_ref(), &options, &file)).unwrap_or_else(|code| code)
}

async fn apply(
    session: &Session,
    args: &ApplyArgs,
    saved: Option<&SavedPlan>,
    options: &ApplyOptions,
    file: &WorldFile,
) -> u8 {
    // Everything up to the lock only reads: a refusal leaves the world file as it was.
    let planned = session.plan().await;
    if let Some(saved) = saved
        && let Err(err) = check_saved(saved, session, &planned)
    {
        eprintln!("error[edgeplan::stale-plan]: {err}");
        eprintln!("  help: run `edgeplan plan` again and review the new plan; a saved plan is applied only as made");
        return exit::FAILED;
    }
    let selection = match select(&planned.graph, args) {
        Ok(selection) => selection,
        Err(code) => return code,
    };
    print(&crate::plan_cmd::render(&planned, session, PlanFormat::Human));
    if let Some(selected) = &selection {
        announce(&planned.graph, selected);
    }
    if crate::plan_cmd::has_errors(&planned.plan) {
        eprintln!("error[edgeplan::plan-errors]: the plan has errors; nothing was applied");
        eprintln!("  help: fix the errors above (each says how), then plan again");
        return exit::FAILED;
    }
    let changes = planned
        .plan
        .changes
        .iter()
        .filter(|c| c.action.mutates() && selection.as_ref().is_none_or(|s| s.contains(&c.address)))
        .count();
    if changes > 0 && saved.is_none() && !args.auto_approve && !confirmed(changes, "apply") {
        return exit::FAILED;
    }

    pause_for_tests(PAUSE_BEFORE_LOCK_ENV);
    let lock = match crate::engine::lock(session, "apply", &args.input).await {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    pause_for_tests(HOLD_LOCK_ENV);
    // The plan shown and approved must still be what the world gives, now that nobody else
    // can change the stack.
    let current = session.plan().await;
    let still = match saved {
        Some(saved) => check_saved(saved, session, &current),
        None => unchanged(&planned.plan, &current.plan),
    };
    if let Err(err) = still {
        eprintln!("error[edgeplan::stale-plan]: {err}");
        eprintln!("  help: the world changed after the plan above was made; run apply again to see the new plan");
        release_refused(&lock, file).await;
        return exit::FAILED;
    }
    let progress = progress(args.progress);
    let report = session.apply(&current, selection.as_ref(), options, progress.as_ref(), Some(&lock), false).await;
    drop(progress);
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error[edgeplan::lock-lost]: {err}; stopped");
            eprintln!("  help: another process took the stack lock over; plan again once it is done");
            return exit::FAILED;
        }
    };
    if report.interrupted {
        println!("\nStopped by {STOP_AFTER_ENV} after {} mutation(s).", report.mutations);
        // Like a killed process: the lease is left behind (a re-run on this host sees its
        // holder is gone and takes it over).
        return STOPPED;
    }
    print(&summary(&report, "Apply"));
    release(&lock).await;
    if !report.succeeded() {
        return exit::FAILED;
    }
    if args.no_verify {
        return exit::OK;
    }
    let undone = left_undone(&current.plan, selection.as_ref());
    if !undone.is_empty() {
        // Verify checks the whole tunnel: on a partly applied stack it would fail on what it
        // was told to leave alone, not on what was applied.
        println!(
            "\nVerify skipped: --target/--exclude left {} node(s) with changes unapplied (among those left out \
             above), so the end-to-end check cannot pass yet.\n  Apply the rest, then run `edgeplan verify SPEC \
             --world FILE`.",
            undone.len()
        );
        return exit::OK;
    }
    crate::verify_cmd::verify_and_report(session).await
}

/// A test hook's pause: `variable` milliseconds of doing nothing.
fn pause_for_tests(variable: &str) {
    if let Some(ms) = std::env::var(variable).ok().and_then(|ms| ms.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// May `saved` be applied on what `planned` observed? Same inputs, same observations, hence
/// (the decision being pure) the same actions.
fn check_saved(saved: &SavedPlan, session: &Session, planned: &Planned) -> Result<(), String> {
    let nodes = session.stack.nodes();
    saved
        .check(&session.stack.name, session.stack.source.text(), &nodes, &planned.observations)
        .map_err(|err| err.to_string())?;
    if same_actions(saved, &planned.plan) {
        Ok(())
    } else {
        Err("the saved plan's actions differ from its inputs' decision".to_string())
    }
}

/// Is `now` the plan that was shown (`shown`)? The same nodes with the same actions, decided on
/// the same observed state; otherwise the nodes that differ.
pub(crate) fn unchanged(shown: &Plan, now: &Plan) -> Result<(), String> {
    let key = |plan: &Plan| -> BTreeMap<Address, (String, String)> {
        plan.changes
            .iter()
            .map(|c| (c.address.clone(), (c.action.as_str().to_string(), c.observed_fingerprint.clone())))
            .collect()
    };
    let (before, after) = (key(shown), key(now));
    let moved: Vec<&str> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|address| before.get(*address) != after.get(*address))
        .map(Address::as_str)
        .collect();
    if moved.is_empty() {
        Ok(())
    } else {
        Err(format!("live state changed since the plan above was made, for: {}", moved.join(", ")))
    }
}

pub(crate) fn options(args: &ApplyArgs) -> Result<ApplyOptions, String> {
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

/// `1m30s`, `90s`, `15m`, `1h`, `1h30m`, or plain seconds (`45`): hours, minutes and seconds,
/// each at most once and in that order, above zero and at most a week.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration like 90s, 1m30s, 15m or 1h");
    let mut rest = text.trim();
    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        return bounded(rest.parse().map_err(|_| bad())?, text);
    }
    let mut seconds: u64 = 0;
    let mut previous_rank = None;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let (rank, scale) = match &rest[..letters] {
            "h" => (0, 3600),
            "m" => (1, 60),
            "s" => (2, 1),
            _ => return Err(bad()),
        };
        rest = &rest[letters..];
        if previous_rank.is_some_and(|previous| rank <= previous) {
            return Err(format!("`{text}`: write hours, minutes and seconds once each, in that order (1h30m, 2m30s)"));
        }
        previous_rank = Some(rank);
        seconds = number.checked_mul(scale).and_then(|s| seconds.checked_add(s)).ok_or_else(bad)?;
    }
    if previous_rank.is_none() {
        return Err(bad());
    }
    bounded(seconds, text)
}

fn bounded(seconds: u64, text: &str) -> Result<Duration, String> {
    match Duration::from_secs(seconds) {
        Duration::ZERO => Err(format!("`{text}`: a timeout of 0 would fail every wait at once")),
        duration if duration > MAX_TIMEOUT => Err(format!("`{text}`: a timeout is at most 7 days (168h)")),
        duration => Ok(duration),
    }
}

/// A saved plan or a spec. A saved plan is told by its format marker: a JSON object with a
/// `format_version`, which no spec has (a spec may be JSON too, so a leading `{` says nothing).
fn load_input(path: &Path) -> Result<(Stack, Option<SavedPlan>), u8> {
    let text = edgeplan_engine::stack::read_document(path, MAX_INPUT_BYTES).map_err(|err| {
        eprintln!("error[edgeplan::cannot-read]: cannot read {}: {err}", path.display());
        eprintln!("  help: apply takes a spec or a plan saved with `edgeplan plan -o`");
        exit::FAILED
    })?;
    if !is_saved_plan(&text) {
        return Ok((load_stack(path)?, None));
    }
    let saved = SavedPlan::from_json(&text).map_err(|err| {
        eprintln!("error[edgeplan::saved-plan]: {}: {err}", path.display());
        eprintln!("  help: saved plans are written by `edgeplan plan -o`; make a new one");
        exit::FAILED
    })?;
    // Relative paths in the spec resolve against its directory as the plan recorded it (an
    // absolute path since plans record one, so the plan applies from any directory).
    let base_dir = Path::new(&saved.spec_path).parent().unwrap_or(Path::new(".")).to_path_buf();
    let stack = load_stack_text(&saved.spec_path, &saved.spec_text, &base_dir)?;
    Ok((stack, Some(saved)))
}

/// Inputs larger than this are refused before parsing (a 1,000-consumer spec is about 0.5 MiB;
/// a saved plan carries its spec).
const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Does `text` carry a saved plan's format marker?
fn is_saved_plan(text: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        .is_ok_and(|document| document.contains_key("format_version"))
}

fn same_actions(saved: &SavedPlan, plan: &Plan) -> bool {
    saved.changes.len() == plan.changes.len()
        && saved.changes.iter().zip(&plan.changes).all(|(s, c)| s.address == c.address && s.action == c.action)
}

/// `--target` / `--exclude`: the nodes to walk. Each argument is a node's address or a group
/// of them (`provider`, `consumer.NAME`); one that names neither is refused, with the closest
/// address, before anything is printed or locked.
fn select(graph: &ResourceGraph, args: &ApplyArgs) -> Result<Option<BTreeSet<Address>>, u8> {
    if args.target.is_empty() && args.exclude.is_empty() {
        return Ok(None);
    }
    let targets = resolve(graph, "--target", &args.target);
    let excluded = resolve(graph, "--exclude", &args.exclude);
    let (Ok(targets), Ok(excluded)) = (targets, excluded) else {
        return Err(exit::FAILED);
    };
    let mut selected: BTreeSet<Address> = graph.iter().map(|(a, _)| a.clone()).collect();
    // Every address was resolved against this graph: the closures cannot miss.
    if !targets.is_empty() {
        let closure = graph.closure_with_dependencies(&targets).map_err(|_| exit::FAILED)?;
        selected.retain(|a| closure.contains(a));
    }
    if !excluded.is_empty() {
        let kept = graph.without_dependents(&excluded).map_err(|_| exit::FAILED)?;
        selected.retain(|a| kept.contains(a));
    }
    Ok(Some(selected))
}

/// Announce targeting loudly (like Terraform: for exceptional cases, and it leaves the stack
/// partly applied).
fn announce(graph: &ResourceGraph, selected: &BTreeSet<Address>) {
    let left_out = graph.len() - selected.len();
    println!();
    println!("Warning: resource targeting is in effect");
    println!("  Applying {} of {} nodes; {left_out} left out:", selected.len(), graph.len());
    for (address, _) in graph.iter().filter(|(a, _)| !selected.contains(*a)) {
        println!("    {address}");
    }
    println!("  --target adds what the targets depend on; --exclude also drops what depends on the excluded.");
    println!("  The stack stays partly applied until a full apply; use this only for exceptional cases.");
}

/// The addresses `given` names in `graph`: nodes, and groups standing for all their nodes.
/// Every unknown one is reported, with a "did you mean".
fn resolve(graph: &ResourceGraph, flag: &str, given: &[String]) -> Result<Vec<Address>, ()> {
    let nodes: BTreeSet<&str> = graph.iter().map(|(a, _)| a.as_str()).collect();
    let mut groups: BTreeMap<&str, Vec<Address>> = BTreeMap::new();
    for (address, _) in graph.iter() {
        groups.entry(address.prefix()).or_default().push(address.clone());
    }
    let mut resolved = Vec::new();
    let mut unknown = false;
    for text in given {
        let text = text.trim();
        if nodes.contains(text) {
            resolved.push(Address::from_text(text));
        } else if let Some(members) = groups.get(text) {
            resolved.extend(members.iter().cloned());
        } else {
            unknown = true;
            eprintln!(
                "error[edgeplan::unknown-address]: {flag} {text}: no node or consumer of this stack has that address"
            );
            let candidates = nodes.iter().copied().chain(groups.keys().copied());
            match closest(text, candidates) {
                Some(best) => eprintln!("  help: did you mean `{best}`? (`edgeplan graph SPEC` lists every address)"),
                None => eprintln!(
                    "  help: `edgeplan graph SPEC` lists every address; `consumer.NAME` selects all of a consumer's nodes"
                ),
            }
        }
    }
    if unknown { Err(()) } else { Ok(resolved) }
}

/// The candidate nearest to `text` by edit distance, if near enough to be a typo of it.
fn closest<'a>(text: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    // No address is this long: no suggestion, and no quadratic work on a pasted blob.
    if text.len() > MAX_SUGGESTED_LEN {
        return None;
    }
    let limit = (text.chars().count() / 3).max(2);
    candidates
        .map(|candidate| (edit_distance(text, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// The longest `--target`/`--exclude` text a "did you mean" is looked for.
const MAX_SUGGESTED_LEN: usize = 256;

/// Levenshtein distance, over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The nodes the plan would change that `selection` left out: what verify would trip over.
fn left_undone<'a>(plan: &'a Plan, selection: Option<&BTreeSet<Address>>) -> Vec<&'a Address> {
    let Some(selection) = selection else { return Vec::new() };
    plan.changes.iter().filter(|c| c.action.mutates() && !selection.contains(&c.address)).map(|c| &c.address).collect()
}

pub(crate) fn progress(mode: ProgressMode) -> Box<dyn Progress> {
    match (mode, std::io::stdout().is_terminal()) {
        (ProgressMode::None, _) => Box::new(edgeplan_engine::NoProgress),
        (ProgressMode::Fancy, _) | (ProgressMode::Auto, true) => Box::new(crate::progress::Fancy::new()),
        (ProgressMode::Plain, _) | (ProgressMode::Auto, false) => Box::new(crate::progress::Plain::default()),
    }
}

/// Ask on the terminal; refuse without one. Asked before the stack lock is taken: a prompt
/// left open blocks nobody, and the plan is checked again under the lock.
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

    #[test]
    fn compound_durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h0m5s"), Ok(Duration::from_secs(3605)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        for bad in ["", "s", "1m30", "30s1m", "1m1m", "1.5m", "-1m", "1d", "0s", "0", "169h", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("168h"), Ok(MAX_TIMEOUT));
    }

    #[test]
    fn a_saved_plan_is_told_by_its_format_marker_not_its_first_character() {
        assert!(is_saved_plan("{\"format_version\": 1, \"stack\": \"s\"}"));
        assert!(!is_saved_plan("{\"apiVersion\": \"edgeplan.dev/v1alpha1\", \"kind\": \"Topology\"}"));
        assert!(!is_saved_plan("apiVersion: edgeplan.dev/v1alpha1\n"));
        assert!(!is_saved_plan("{"));
    }

    #[test]
    fn the_closest_address_is_suggested_only_when_close() {
        let addresses = ["provider.nlb", "provider.nlb_subnet", "consumer.prod", "consumer.prod.vpce"];
        assert_eq!(closest("provider.nlb_subnett", addresses.into_iter()), Some("provider.nlb_subnet"));
        assert_eq!(closest("consumer.prdo", addresses.into_iter()), Some("consumer.prod"));
        assert_eq!(closest("something.else.entirely", addresses.into_iter()), None);
        assert_eq!(closest(&"x".repeat(100_000), addresses.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
