//! The apply figures of `cargo xtask bench`, in-process on the virtual clock.
//!
//! For the seed and fleet worlds: the modelled makespan of `edgeplan_apply::apply` at the
//! default parallelism, the critical-path lower bound of the resource graph (the modelled waits
//! summed along its longest path, [`edgeplan_sim::modelled_seconds`]), their ratio, and the
//! makespan of a fully serial run (parallelism 1: the seed's hand runbook). The engine waits on
//! the simulated world's virtual clock, so modelled minutes pass in microseconds; the wall time
//! of the parallel apply is printed too, for information.
//!
//! A node the plan leaves alone (no-op) weighs nothing on the critical path: its object is
//! already where the wait would take it (the fleet world's Portainer already runs with Edge
//! Compute, so its restart is a no-op and waits 0 s). Counting it would make the "lower bound"
//! exceed what the executor can achieve; the DAG-only figure is printed beside it when the two
//! differ.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use edgeplan_engine::{ApplyOptions, NoProgress, clock};
use edgeplan_model::{Action, Address};

use crate::bench::{LABEL_WIDTH, format_duration, verdict};

/// The target: the parallel makespan within 5 % of the critical path.
const RATIO_TARGET: f64 = 1.05;
/// Timed runs of the parallel apply, for its (informative) wall time.
const WALL_RUNS: usize = 5;

/// A spec and the simulated world it is applied to, relative to the workspace root.
struct Case {
    name: &'static str,
    spec: &'static str,
    world: &'static str,
}

const CASES: [Case; 2] = [
    Case { name: "seed", spec: "specs/seed.yaml", world: "testdata/worlds/seed.yaml" },
    Case { name: "fleet", spec: "specs/fleet.yaml", world: "testdata/worlds/fleet.yaml" },
];

/// The figures of one case.
struct Figures {
    /// Modelled makespan at the default parallelism.
    makespan: Duration,
    /// Modelled makespan at parallelism 1.
    serial: Duration,
    /// The critical path's modelled seconds (no-op nodes weigh 0) and its nodes, in
    /// dependency order.
    lower_bound: Duration,
    critical_path: Vec<Address>,
    /// The critical path of the DAG alone, every node weighed as if the plan changed it.
    dag_bound: Duration,
    /// Wall time of the in-process parallel apply.
    wall_median: Duration,
    wall_min: Duration,
    wall_runs: usize,
    nodes: usize,
    mutations: usize,
}

impl Figures {
    /// Makespan over the lower bound; `None` when the graph has no modelled wait at all.
    fn ratio(&self) -> Option<f64> {
        (!self.lower_bound.is_zero()).then(|| self.makespan.as_secs_f64() / self.lower_bound.as_secs_f64())
    }
}

/// Print the apply lines; a case that cannot run is printed as FAILED and its label pushed to
/// `failures`. A missed target is reported, not fatal.
pub(crate) fn print_figures(root: &Path, failures: &mut Vec<String>) {
    for case in &CASES {
        let label = label(case);
        match measure(root, case, WALL_RUNS) {
            Ok(figures) => {
                for line in format_figures(&label, case, &figures) {
                    println!("{line}");
                }
            }
            Err(err) => {
                println!("{label:<LABEL_WIDTH$} FAILED: {err:#}");
                failures.push(label);
            }
        }
    }
}

fn label(case: &Case) -> String {
    format!("apply {} (virtual clock)", case.name)
}

fn measure(root: &Path, case: &Case, wall_runs: usize) -> Result<Figures> {
    let spec_path = root.join(case.spec);
    let stack = edgeplan_testkit::load_stack(&spec_path);
    let world_path = root.join(case.world);
    let world = std::fs::read_to_string(&world_path).with_context(|| format!("reading {}", world_path.display()))?;

    let parallel = ApplyOptions::default();
    let mut walls = Vec::with_capacity(wall_runs.max(1));
    let mut first: Option<Run> = None;
    for _ in 0..wall_runs.max(1) {
        let run = apply_once(&spec_path, &world, &parallel)?;
        walls.push(run.wall);
        match &first {
            None => first = Some(run),
            Some(earlier) if earlier.makespan != run.makespan => bail!(
                "the modelled makespan differs between identical runs ({} then {}): the figure is not reproducible",
                clock(earlier.makespan),
                clock(run.makespan)
            ),
            Some(_) => {}
        }
    }
    let parallel_run = first.context("no parallel run")?;
    let serial_run = apply_once(&spec_path, &world, &ApplyOptions { parallelism: 1, ..ApplyOptions::default() })?;

    let (seconds, path) = stack.graph.longest_path(|address, node| {
        if parallel_run.unchanged.contains(address) { 0 } else { edgeplan_sim::modelled_seconds(node.kind) }
    });
    let (dag_seconds, _) = stack.graph.longest_path(|_, node| edgeplan_sim::modelled_seconds(node.kind));
    walls.sort_unstable();
    Ok(Figures {
        makespan: parallel_run.makespan,
        serial: serial_run.makespan,
        lower_bound: Duration::from_secs(seconds),
        critical_path: path.into_iter().cloned().collect(),
        dag_bound: Duration::from_secs(dag_seconds),
        wall_median: median(&walls),
        wall_min: walls[0],
        wall_runs: walls.len(),
        nodes: stack.graph.len(),
        mutations: parallel_run.mutations,
    })
}

/// One apply's figures.
struct Run {
    makespan: Duration,
    wall: Duration,
    mutations: usize,
    /// The nodes the plan left alone.
    unchanged: BTreeSet<Address>,
}

/// Plan and apply the stack on a fresh in-memory copy of the world, driven on the world's
/// virtual clock as the CLI runs it. `wall` covers the apply only.
fn apply_once(spec_path: &Path, world: &str, options: &ApplyOptions) -> Result<Run> {
    let world = edgeplan_sim::load(world).map_err(|err| anyhow!("loading the world: {err}"))?;
    let world = edgeplan_testkit::sim(world);
    let session = edgeplan_testkit::session(edgeplan_testkit::load_stack(spec_path), &world);
    let (report, wall, unchanged) = edgeplan_testkit::run(&session, async {
        let planned = session.plan().await;
        let start = Instant::now();
        let report = session.apply(&planned, None, options, &NoProgress, None, false).await;
        let wall = start.elapsed();
        let unchanged: BTreeSet<Address> =
            planned.plan.changes.iter().filter(|c| c.action == Action::NoOp).map(|c| c.address.clone()).collect();
        (report, wall, unchanged)
    });
    let report = report.map_err(|err| anyhow!("the lock was lost: {err}"))?;
    if !report.succeeded() {
        let failures: Vec<String> = report.failures().map(|(address, error)| format!("{address}: {error}")).collect();
        bail!(
            "apply at parallelism {} did not succeed{}{}",
            options.parallelism,
            if report.interrupted { " (interrupted)" } else { "" },
            if failures.is_empty() { String::new() } else { format!(":\n  {}", failures.join("\n  ")) }
        );
    }
    Ok(Run { makespan: report.makespan, wall, mutations: report.mutations, unchanged })
}

/// Median of sorted, non-empty `walls`.
fn median(walls: &[Duration]) -> Duration {
    let middle = walls.len() / 2;
    if walls.len().is_multiple_of(2) { (walls[middle - 1] + walls[middle]) / 2 } else { walls[middle] }
}

fn format_figures(label: &str, case: &Case, figures: &Figures) -> Vec<String> {
    let ratio = match figures.ratio() {
        Some(ratio) => format!("ratio {ratio:.3} (target ≤ {RATIO_TARGET} {})", verdict(ratio <= RATIO_TARGET)),
        None => "ratio n/a (no modelled wait on any path)".to_string(),
    };
    let serial_ratio = if figures.makespan.is_zero() {
        String::new()
    } else {
        format!(" ({:.2}× the parallel run)", figures.serial.as_secs_f64() / figures.makespan.as_secs_f64())
    };
    let dag_bound = if figures.dag_bound == figures.lower_bound {
        String::new()
    } else {
        format!(" ({} if no-op nodes waited)", clock(figures.dag_bound))
    };
    let path: Vec<String> = figures.critical_path.iter().map(ToString::to_string).collect();
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    vec![
        format!(
            "{label:<LABEL_WIDTH$} makespan {}  critical path {}{dag_bound}  {ratio}  serial {}{serial_ratio}",
            clock(figures.makespan),
            clock(figures.lower_bound),
            clock(figures.serial),
        ),
        format!("{:<LABEL_WIDTH$}   critical path: {}", "", path.join(" → ")),
        format!(
            "{:<LABEL_WIDTH$} median {:>8}  min {:>8}  ({} nodes, {} mutations, parallelism {}; {} runs \
             in-process, {profile} build)",
            format!("apply {} (wall, virtual clock)", case.name),
            format_duration(figures.wall_median),
            format_duration(figures.wall_min),
            figures.nodes,
            figures.mutations,
            ApplyOptions::default().parallelism,
            figures.wall_runs,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The makespan is at least the critical path and at most 5 % over it; serial is slower.
    fn assert_within_target(case: &Case) {
        let figures = measure(&crate::workspace::root(), case, 1).expect("the apply succeeds");
        assert!(figures.lower_bound > Duration::ZERO, "{:?}", figures.critical_path);
        assert!(figures.dag_bound >= figures.lower_bound, "{:?} < {:?}", figures.dag_bound, figures.lower_bound);
        assert!(figures.makespan >= figures.lower_bound, "{:?} < {:?}", figures.makespan, figures.lower_bound);
        let ratio = figures.ratio().expect("a modelled wait");
        assert!(ratio <= RATIO_TARGET, "ratio {ratio:.3}: {:?} over {:?}", figures.makespan, figures.lower_bound);
        assert!(figures.serial >= figures.makespan, "{:?} < {:?}", figures.serial, figures.makespan);
    }

    #[test]
    fn the_seed_apply_is_within_five_percent_of_its_critical_path() {
        assert_within_target(&CASES[0]);
    }

    #[test]
    fn the_fleet_apply_is_within_five_percent_of_its_critical_path() {
        assert_within_target(&CASES[1]);
    }
}
