//! `cargo xtask bench`: reproducible figures for the release binary, one line per benchmark.
//!
//! Each benchmark runs a whole `edgeplan` process (what a user or CI pays), several times,
//! through `xtask rss-probe` (see rss_probe.rs for why). The graph build and the apply figures
//! (apply_bench.rs) run in-process. Missing a target is reported, not fatal: only a failing run
//! makes the bench exit non-zero.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::rss_probe::{self, Measurement};
use crate::{apply_bench, fleet_spec, fleet_world, workspace};

const FLEET_CONSUMERS: usize = 1000;
const MIB: u64 = 1024 * 1024;
/// The widest label, so the figures line up.
pub(crate) const LABEL_WIDTH: usize = 36;

/// What one benchmark runs and what it should stay under.
struct Benchmark {
    label: String,
    command: Vec<OsString>,
    warmup_runs: usize,
    timed_runs: usize,
    median_under: Duration,
    max_rss_under_bytes: Option<u64>,
}

/// The figures of one benchmark's timed runs.
struct Summary {
    median: Duration,
    p95: Duration,
    min: Duration,
    max_rss_bytes: u64,
    /// False when the largest figure is at or below the probe's own peak: then it only
    /// bounds the child's peak from above (see rss_probe.rs).
    rss_is_exact: bool,
}

pub(crate) fn run() -> Result<()> {
    let root = workspace::root();
    build_release_binary(&root)?;
    let edgeplan = workspace::target_dir().join("release").join(format!("edgeplan{}", std::env::consts::EXE_SUFFIX));
    let fleet_spec = write_fleet_spec(&root)?;
    require_clean_lint(&edgeplan, &fleet_spec)?;
    let fleet_world = write_fleet_world()?;
    require_plan_runs(&edgeplan, &fleet_spec, &fleet_world)?;

    println!();
    let mut failures = Vec::new();
    let mut any_rss_bound = false;
    for benchmark in benchmarks(&root, &edgeplan, &fleet_spec, &fleet_world) {
        match measure(&benchmark) {
            Ok(summary) => {
                any_rss_bound |= !summary.rss_is_exact;
                println!("{}", format_result(&benchmark, &summary));
            }
            Err(err) => {
                println!("{:<LABEL_WIDTH$} FAILED: {err:#}", benchmark.label);
                failures.push(benchmark.label);
            }
        }
    }
    match graph_build(&fleet_spec) {
        Ok(line) => println!("{line}"),
        Err(err) => {
            println!("{:<LABEL_WIDTH$} FAILED: {err:#}", GRAPH_BUILD_LABEL);
            failures.push(GRAPH_BUILD_LABEL.to_string());
        }
    }
    apply_bench::print_figures(&root, &mut failures);
    crate::moto_bench::print_figures(&root, &mut failures);
    println!();
    if any_rss_bound {
        println!("≤ RSS: at or below the probe's own peak, so only an upper bound (see xtask/src/rss_probe.rs)");
    }
    println!("machine: {}", machine_description());
    println!("reproduce: cargo xtask bench");
    if !failures.is_empty() {
        bail!("{} benchmark(s) failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}

/// The list to extend: one entry per printed line.
fn benchmarks(root: &Path, edgeplan: &Path, fleet_spec: &Path, fleet_world: &Path) -> Vec<Benchmark> {
    let lint_json = |spec: &Path| -> Vec<OsString> {
        vec![edgeplan.into(), "lint".into(), "--format".into(), "json".into(), spec.into()]
    };
    vec![
        Benchmark {
            label: "lint specs/seed.yaml".to_string(),
            command: lint_json(&root.join("specs/seed.yaml")),
            warmup_runs: 3,
            timed_runs: 50,
            median_under: Duration::from_millis(10),
            max_rss_under_bytes: None,
        },
        Benchmark {
            label: format!("lint fleet-{FLEET_CONSUMERS} ({FLEET_CONSUMERS} consumers)"),
            command: lint_json(fleet_spec),
            warmup_runs: 2,
            timed_runs: 20,
            median_under: Duration::from_millis(150),
            max_rss_under_bytes: Some(100 * MIB),
        },
        Benchmark {
            label: format!("plan fleet-{FLEET_CONSUMERS} on a generated world"),
            command: plan_json(edgeplan, fleet_spec, fleet_world),
            warmup_runs: 2,
            timed_runs: 10,
            median_under: Duration::from_millis(300),
            max_rss_under_bytes: Some(200 * MIB),
        },
    ]
}

fn plan_json(edgeplan: &Path, spec: &Path, world: &Path) -> Vec<OsString> {
    vec![edgeplan.into(), "plan".into(), spec.into(), "--world".into(), world.into(), "--format".into(), "json".into()]
}

const GRAPH_BUILD_LABEL: &str = "graph build (1000 consumers)";
const GRAPH_BUILD_RUNS: usize = 20;

/// In-process: `resource_graph(compile(spec))` for the fleet spec, parsed once outside the
/// timing. No policy documents are inlined (the CLI's only step between the two).
fn graph_build(fleet_spec: &Path) -> Result<String> {
    let text = std::fs::read_to_string(fleet_spec).with_context(|| format!("reading {}", fleet_spec.display()))?;
    let source = edgeplan_diag::SourceFile::new(fleet_spec.display().to_string(), text);
    let spec = edgeplan_spec::parse(&source).map_err(|finding| anyhow::anyhow!("{}", finding.message))?;
    let mut walls = Vec::with_capacity(GRAPH_BUILD_RUNS);
    let mut counts = (0, 0);
    for _ in 0..GRAPH_BUILD_RUNS {
        let start = std::time::Instant::now();
        let graph =
            edgeplan_model::resource_graph(edgeplan_model::compile(&spec)).map_err(|err| anyhow::anyhow!("{err}"))?;
        walls.push(start.elapsed());
        counts = (graph.len(), graph.edges().len());
        drop(std::hint::black_box(graph));
    }
    walls.sort_unstable();
    let min = walls[0];
    let middle = walls.len() / 2;
    let median = (walls[middle - 1] + walls[middle]) / 2;
    Ok(format!(
        "{:<LABEL_WIDTH$} median {:>8}  min {:>8}  ({} nodes, {} edges; {GRAPH_BUILD_RUNS} runs in-process)",
        GRAPH_BUILD_LABEL,
        format_duration(median),
        format_duration(min),
        counts.0,
        counts.1,
    ))
}

fn build_release_binary(root: &Path) -> Result<()> {
    // `cargo run` sets CARGO to the cargo that runs us; use the same toolchain.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building: cargo build --release --locked -p edgeplan-cli");
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "-p", "edgeplan-cli"])
        .current_dir(root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release --locked -p edgeplan-cli failed ({status})");
    }
    Ok(())
}

/// Write target/bench/fleet-N.yaml and the policy documents it references next to it, so its
/// relative `policyDocument` path resolves as in specs/.
fn write_fleet_spec(root: &Path) -> Result<PathBuf> {
    let bench_dir = workspace::target_dir().join("bench");
    copy_policies(&root.join("specs/policies"), &bench_dir.join("policies"))?;
    let seed_path = root.join("specs/seed.yaml");
    let seed = std::fs::read_to_string(&seed_path).with_context(|| format!("reading {}", seed_path.display()))?;
    let yaml = fleet_spec::generate(&seed, FLEET_CONSUMERS)?;
    let path = bench_dir.join(format!("fleet-{FLEET_CONSUMERS}.yaml"));
    std::fs::write(&path, &yaml).with_context(|| format!("writing {}", path.display()))?;
    println!("generated: {} ({} consumers, {} KiB)", workspace::display(&path), FLEET_CONSUMERS, yaml.len() / 1024);
    Ok(path)
}

/// Write target/bench/fleet-N.world.yaml, the simulated world the fleet spec is planned on.
fn write_fleet_world() -> Result<PathBuf> {
    let path = workspace::target_dir().join("bench").join(format!("fleet-{FLEET_CONSUMERS}.world.yaml"));
    let yaml = fleet_world::generate(FLEET_CONSUMERS)?;
    std::fs::write(&path, &yaml).with_context(|| format!("writing {}", path.display()))?;
    println!("generated: {} ({} KiB)", workspace::display(&path), yaml.len() / 1024);
    Ok(path)
}

fn copy_policies(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let source = entry.with_context(|| format!("reading {}", from.display()))?.path();
        if let Some(name) = source.file_name()
            && source.is_file()
        {
            std::fs::copy(&source, to.join(name)).with_context(|| format!("copying {}", source.display()))?;
        }
    }
    Ok(())
}

/// A spec with errors would time the error path, not the full rule set: refuse to bench it.
fn require_clean_lint(edgeplan: &Path, spec: &Path) -> Result<()> {
    let output = Command::new(edgeplan)
        .args([OsString::from("lint"), "--format".into(), "json".into(), spec.into()])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", edgeplan.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim_end();
    bail!(
        "the generated {} does not lint clean ({}): {}{}{stderr}\nreproduce: {} lint {}",
        workspace::display(spec),
        output.status,
        finding_counts(&stdout),
        if stderr.is_empty() { "" } else { "\n" },
        workspace::display(edgeplan),
        workspace::display(spec),
    )
}

/// The plan bench must time a plan, not an error: run it once and show why it fails.
fn require_plan_runs(edgeplan: &Path, spec: &Path, world: &Path) -> Result<()> {
    let command = plan_json(edgeplan, spec, world);
    let output = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", edgeplan.display()))?;
    if output.status.success() {
        println!("planned: {}", plan_summary(&String::from_utf8_lossy(&output.stdout)));
        return Ok(());
    }
    bail!(
        "`{}` failed ({}):\n{}",
        display_command(&command),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim_end()
    )
}

/// "create 3, update 1, …" from the JSON plan: every object with a string `action` counts.
fn plan_summary(plan: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(plan) else {
        return "a plan that is not JSON".to_string();
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    count_strings(&json, "action", &mut counts);
    counts.iter().map(|(action, count)| format!("{action} {count}")).collect::<Vec<_>>().join(", ")
}

fn count_strings(value: &serde_json::Value, key: &str, counts: &mut std::collections::BTreeMap<String, usize>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(text)) = map.get(key) {
                *counts.entry(text.clone()).or_default() += 1;
            }
            map.values().for_each(|v| count_strings(v, key, counts));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| count_strings(v, key, counts)),
        _ => {}
    }
}

/// "N error, M warning" from the JSON report: every object with a string `severity` is a
/// finding. Falls back to the report's last line (the human summary) if it is not JSON.
fn finding_counts(report: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(report) else {
        return report.lines().last().unwrap_or("no output").to_string();
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    count_strings(&json, "severity", &mut counts);
    if counts.is_empty() {
        return "no findings with a severity in the JSON report".to_string();
    }
    counts.iter().map(|(severity, count)| format!("{count} {severity}")).collect::<Vec<_>>().join(", ")
}

fn measure(benchmark: &Benchmark) -> Result<Summary> {
    for _ in 0..benchmark.warmup_runs {
        probe(&benchmark.command)?;
    }
    let mut runs = Vec::with_capacity(benchmark.timed_runs);
    for _ in 0..benchmark.timed_runs {
        runs.push(probe(&benchmark.command)?);
    }
    summarize(&runs).context("no timed runs")
}

/// One run through `xtask rss-probe`; any exit code but 0 is a failed run.
fn probe(command: &[OsString]) -> Result<Measurement> {
    let xtask = std::env::current_exe().context("cannot find the running xtask executable")?;
    let output = Command::new(&xtask)
        .arg("rss-probe")
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run xtask rss-probe")?;
    if !output.status.success() {
        bail!("xtask rss-probe failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let measurement = rss_probe::parse_line(stdout.trim()).context("reading rss-probe output")?;
    match measurement.exit_code {
        Some(0) => Ok(measurement),
        Some(code) => bail!("`{}` exited with {code}", display_command(command)),
        None => bail!("`{}` was killed by a signal", display_command(command)),
    }
}

fn display_command(command: &[OsString]) -> String {
    command.iter().map(|part| workspace::display(Path::new(part))).collect::<Vec<_>>().join(" ")
}

fn summarize(runs: &[Measurement]) -> Option<Summary> {
    let mut walls: Vec<Duration> = runs.iter().map(|run| run.wall).collect();
    walls.sort_unstable();
    let min = *walls.first()?;
    let middle = walls.len() / 2;
    let median = if walls.len().is_multiple_of(2) { (walls[middle - 1] + walls[middle]) / 2 } else { walls[middle] };
    // Nearest-rank percentile: the smallest run that at least 95 % of runs do not exceed.
    let p95 = walls[(walls.len() * 95).div_ceil(100) - 1];
    let largest = runs.iter().max_by_key(|run| run.max_rss_bytes)?;
    Some(Summary { median, p95, min, max_rss_bytes: largest.max_rss_bytes, rss_is_exact: largest.rss_is_exact() })
}

fn format_result(benchmark: &Benchmark, summary: &Summary) -> String {
    let mut targets = vec![format!(
        "< {} ms {}",
        benchmark.median_under.as_millis(),
        verdict(summary.median < benchmark.median_under)
    )];
    if let Some(limit) = benchmark.max_rss_under_bytes {
        targets.push(format!("< {} {}", format_mib(limit), verdict(summary.max_rss_bytes < limit)));
    }
    let rss = format!("{}{}", if summary.rss_is_exact { "" } else { "≤" }, format_mib(summary.max_rss_bytes));
    format!(
        "{:<LABEL_WIDTH$} median {:>8}  p95 {:>8}  min {:>8}  max RSS {:>9}  (target median {})",
        benchmark.label,
        format_duration(summary.median),
        format_duration(summary.p95),
        format_duration(summary.min),
        rss,
        targets.join(", "),
    )
}

pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

pub(crate) fn format_duration(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

fn format_mib(bytes: u64) -> String {
    let mib = bytes as f64 / MIB as f64;
    if mib < 10.0 { format!("{mib:.1} MiB") } else { format!("{mib:.0} MiB") }
}

/// Enough to compare figures across machines: CPUs, CPU model, OS, compiler.
fn machine_description() -> String {
    let cpus = std::thread::available_parallelism().map_or_else(|_| "?".to_string(), |n| n.to_string());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, v)| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc_version =
        Command::new(rustc).arg("-V").output().ok().filter(|output| output.status.success()).map_or_else(
            || "rustc: unknown".to_string(),
            |output| String::from_utf8_lossy(&output.stdout).trim().to_string(),
        );
    format!("nproc {cpus}, {model}, {}-{}, {rustc_version}", std::env::consts::OS, std::env::consts::ARCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(ms: u64, rss: u64) -> Measurement {
        Measurement {
            wall: Duration::from_millis(ms),
            max_rss_bytes: rss,
            probe_peak_bytes: Some(MIB),
            exit_code: Some(0),
        }
    }

    #[test]
    fn summary_of_twenty_runs() {
        let runs: Vec<Measurement> = (1..=20).rev().map(|ms| run_of(ms, ms * MIB)).collect();
        let summary = summarize(&runs).unwrap();
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(summary.median, Duration::from_micros(10_500));
        assert_eq!(summary.p95, Duration::from_millis(19));
        assert_eq!(summary.max_rss_bytes, 20 * MIB);
        assert!(summary.rss_is_exact);
    }

    #[test]
    fn no_runs_no_summary() {
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn finding_counts_from_json_and_from_human_output() {
        let json = r#"{"files":[{"findings":[{"severity":"error"},{"severity":"warning"},{"severity":"error"}]}]}"#;
        assert_eq!(finding_counts(json), "2 error, 1 warning");
        assert_eq!(finding_counts("…\n3 errors, 0 warnings\n"), "3 errors, 0 warnings");
    }
}
