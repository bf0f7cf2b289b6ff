//! Repository automation for edgeplan, run as `cargo xtask <task>`.
//!
//! Every task is a plain function; `clap` only parses the command line.

mod apply_bench;
mod bench;
mod dist;
mod fleet_spec;
mod fleet_world;
mod moto;
mod moto_bench;
mod rss_probe;
mod schema;
mod snapshots;
mod tidy;
mod workspace;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Repository automation for edgeplan: generated files and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write schemas/edgeplan.schema.json from the spec types.
    Schema {
        /// Write nothing; fail if the committed schema is stale (for CI).
        #[arg(long)]
        check: bool,
    },
    /// Write shell completions and man pages to target/dist/.
    Dist,
    /// Build the release binary and print reproducible lint timings and peak memory.
    Bench,
    /// Fail on committed insta snapshots that no test asserted (CI runs the tests with
    /// `INSTA_SNAPSHOT_REFERENCES_FILE` set, then this).
    Snapshots {
        /// The file insta wrote the referenced snapshots to.
        #[arg(long)]
        references: std::path::PathBuf,
    },
    /// Create or refresh the moto venv (tools/moto/requirements.txt), then run the self-test of
    /// the moto launcher and the fault proxy.
    Moto,
    /// Run one command; print its wall time and peak RSS (used by `bench`).
    #[command(hide = true)]
    RssProbe {
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let task = Xtask::parse().task;
    let result = match task {
        Task::Schema { check: false } => schema::write(),
        Task::Schema { check: true } => schema::check(),
        Task::Dist => dist::run(),
        Task::Bench => bench::run(),
        Task::Snapshots { references } => snapshots::check(&references),
        Task::Moto => moto::run(),
        Task::RssProbe { command } => rss_probe::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
