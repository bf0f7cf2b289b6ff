//! `xtask rss-probe -- <cmd> <args>…`: run one command and report its wall time and peak RSS.
//!
//! Why a separate process: `getrusage(RUSAGE_CHILDREN).ru_maxrss` is the largest peak RSS of
//! *any* child the caller has ever waited for, so inside `bench` it would report the biggest
//! earlier run (e.g. the 1,000-consumer spec) for every later, smaller one. A freshly exec'd
//! probe has waited for exactly one child, so its `RUSAGE_CHILDREN` maxrss is that child's
//! peak, recorded by the kernel when the child exits (no sampling race, unlike reading
//! `VmHWM` from /proc while the child may already be gone). The probe also times the run
//! itself, so the probe's own start-up is not counted in the wall time.
//!
//! One caveat, handled rather than hidden: Linux folds the pre-exec memory's high-water mark
//! into `ru_maxrss`, and std spawns with `posix_spawn` (vfork-style, sharing the probe's
//! memory), so a child's figure is never below the probe's peak at spawn time. The probe reports that
//! peak too; a figure at or below it is only an upper bound on the child's own.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};

/// Linux reports `ru_maxrss` in KiB; macOS in bytes.
const MAXRSS_UNIT_BYTES: u64 = if cfg!(target_os = "macos") { 1 } else { 1024 };

/// One measured run, as the probe reports it on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Measurement {
    pub(crate) wall: Duration,
    pub(crate) max_rss_bytes: u64,
    /// The probe's own peak RSS after the run (`None` off Linux): `max_rss_bytes` at or below
    /// it may be the probe's memory, not the child's.
    pub(crate) probe_peak_bytes: Option<u64>,
    /// `None` when the child was killed by a signal.
    pub(crate) exit_code: Option<i32>,
}

impl Measurement {
    /// Whether `max_rss_bytes` is the child's own peak rather than an upper bound on it.
    pub(crate) fn rss_is_exact(&self) -> bool {
        self.probe_peak_bytes.is_some_and(|floor| self.max_rss_bytes > floor)
    }
}

pub(crate) fn run(command: &[OsString]) -> Result<()> {
    let Some((program, args)) = command.split_first() else { bail!("rss-probe: no command given after `--`") };
    let start = Instant::now();
    // stdout goes to a null sink: only the work is measured, not a terminal or a pipe reader.
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("rss-probe: cannot run {}", program.to_string_lossy()))?;
    let wall = start.elapsed();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("rss-probe: getrusage(RUSAGE_CHILDREN)")?;
    let max_rss_bytes = u64::try_from(usage.max_rss()).unwrap_or(0) * MAXRSS_UNIT_BYTES;
    // Read after the run: the high-water mark only grows, so this bounds its value at exec.
    let probe_peak_bytes = own_peak_rss_bytes();
    println!("{}", format_line(&Measurement { wall, max_rss_bytes, probe_peak_bytes, exit_code: status.code() }));
    Ok(())
}

/// `VmHWM` of this process from /proc/self/status (Linux); `None` where there is no such file.
fn own_peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim();
    kib.parse::<u64>().ok().map(|kib| kib * 1024)
}

fn format_line(measurement: &Measurement) -> String {
    let exit = measurement.exit_code.map_or_else(|| "signal".to_string(), |code| code.to_string());
    let probe_peak = measurement.probe_peak_bytes.map_or_else(|| "unknown".to_string(), |bytes| bytes.to_string());
    format!(
        "wall_ns={} max_rss_bytes={} probe_peak_bytes={probe_peak} exit={exit}",
        measurement.wall.as_nanos(),
        measurement.max_rss_bytes
    )
}

/// Parse the probe's stdout line back into a [`Measurement`].
pub(crate) fn parse_line(line: &str) -> Result<Measurement> {
    let mut wall = None;
    let mut max_rss_bytes = None;
    let mut probe_peak_bytes = None;
    let mut exit_code = None;
    for field in line.split_whitespace() {
        match field.split_once('=') {
            Some(("wall_ns", value)) => wall = Some(Duration::from_nanos(value.parse().context("wall_ns")?)),
            Some(("max_rss_bytes", value)) => max_rss_bytes = Some(value.parse().context("max_rss_bytes")?),
            Some(("probe_peak_bytes", "unknown")) => probe_peak_bytes = Some(None),
            Some(("probe_peak_bytes", value)) => {
                probe_peak_bytes = Some(Some(value.parse().context("probe_peak_bytes")?))
            }
            Some(("exit", "signal")) => exit_code = Some(None),
            Some(("exit", value)) => exit_code = Some(Some(value.parse().context("exit")?)),
            _ => bail!("unexpected field `{field}`"),
        }
    }
    match (wall, max_rss_bytes, probe_peak_bytes, exit_code) {
        (Some(wall), Some(max_rss_bytes), Some(probe_peak_bytes), Some(exit_code)) => {
            Ok(Measurement { wall, max_rss_bytes, probe_peak_bytes, exit_code })
        }
        _ => bail!("incomplete rss-probe output `{line}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_line_round_trips() {
        for (probe_peak_bytes, exit_code) in [(Some(4_214_784), Some(0)), (None, Some(2)), (Some(1), None)] {
            let measurement = Measurement {
                wall: Duration::from_micros(2_345),
                max_rss_bytes: 6_512_640,
                probe_peak_bytes,
                exit_code,
            };
            assert_eq!(parse_line(&format_line(&measurement)).unwrap(), measurement);
        }
    }

    #[test]
    fn rss_at_or_below_the_probe_peak_is_only_a_bound() {
        let run = |probe_peak_bytes| Measurement {
            wall: Duration::ZERO,
            max_rss_bytes: 5_000_000,
            probe_peak_bytes,
            exit_code: Some(0),
        };
        assert!(run(Some(4_000_000)).rss_is_exact());
        assert!(!run(Some(5_000_000)).rss_is_exact());
        assert!(!run(None).rss_is_exact());
    }

    #[test]
    fn the_probe_reads_its_own_peak_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(own_peak_rss_bytes().is_some_and(|bytes| bytes > 0));
        }
    }

    #[test]
    fn a_truncated_probe_line_is_an_error() {
        assert!(parse_line("wall_ns=12").is_err());
    }
}
