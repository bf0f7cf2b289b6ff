//! The `edgeplan` binary's library half: argument parsing, terminal rendering, exit codes.
//! This is the only crate that renders miette reports or knows about the terminal.

mod apply_cmd;
pub mod args;
mod destroy_cmd;
mod diagnostics;
mod edge_key_cmd;
mod engine;
mod graph_cmd;
mod lint_cmd;
mod lock_cmd;
mod plan_cmd;
mod progress;
mod spec_input;
mod verify_cmd;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes shared by every command (documented in README.md).
pub mod exit {
    /// No error-level findings / success.
    pub const OK: u8 = 0;
    /// Error findings, or a failed check.
    pub const FINDINGS: u8 = 1;
    /// edgeplan could not run: usage error, unreadable input.
    pub const CANNOT_RUN: u8 = 2;
}

pub fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { exit::CANNOT_RUN } else { exit::OK };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        args::Command::Lint(args) => lint_cmd::run(args),
        args::Command::Apply(args) => apply_cmd::run_apply(args),
        args::Command::Graph(args) => graph_cmd::run(args),
        args::Command::Verify(args) => verify_cmd::run_verify(args),
        args::Command::Destroy(args) => destroy_cmd::run_destroy(args),
        args::Command::Unlock(args) => lock_cmd::run_unlock(args),
        args::Command::Plan(args) => plan_cmd::run_plan(args),
        args::Command::EdgeKey(args) => edge_key_cmd::run(args),
    };
    ExitCode::from(code)
}
