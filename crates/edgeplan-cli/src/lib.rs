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

/// Exit codes (documented in README.md). `plan`, `apply`, `destroy`, `unlock`, `verify` and
/// `graph` follow Terraform: 0 success, 1 any failure (a usage error, an unreadable input,
/// error findings, a refusal, a failed check), and 2 only for `plan --detailed-exitcode` with
/// changes. `lint` and `edge-key` keep their own documented contract: 2 is "could not run".
pub mod exit {
    /// No error-level findings / success.
    pub const OK: u8 = 0;
    /// Something went wrong: error findings, a failed check, a refusal, or edgeplan could not run.
    pub const FAILED: u8 = 1;
    /// Error findings, or a failed check (lint and edge-key: as opposed to [`CANNOT_RUN`]).
    pub const FINDINGS: u8 = FAILED;
    /// `plan --detailed-exitcode`: the plan has changes. Nothing else exits 2 in the commands
    /// that touch live state.
    pub const CHANGES: u8 = 2;
    /// `lint` and `edge-key` only: edgeplan could not run (usage error, unreadable input).
    pub const CANNOT_RUN: u8 = 2;
}

/// Terraform's contract for the commands that touch live state: whichever helper reported a
/// failure, and with whatever code, the command exits 1 (apply's test-hook stop keeps its 3).
fn failure_is_one(code: u8) -> u8 {
    match code {
        exit::OK | apply_cmd::STOPPED => code,
        _ => exit::FAILED,
    }
}

/// The subcommand a command line names, read before clap (which has failed): the first
/// argument that is not an option (the top level's options take no values).
fn subcommand_of(args: &[std::ffi::OsString]) -> Option<&std::ffi::OsStr> {
    args.iter().skip(1).map(std::ffi::OsString::as_os_str).find(|a| !a.to_string_lossy().starts_with('-'))
}

pub fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match args::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(err) => {
            // clap exits 2 on a usage error; only lint and edge-key document 2 for that.
            let code = match subcommand_of(&argv).and_then(std::ffi::OsStr::to_str) {
                _ if !err.use_stderr() => exit::OK,
                Some("lint" | "edge-key") => exit::CANNOT_RUN,
                _ => exit::FAILED,
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        args::Command::Lint(args) => lint_cmd::run(args),
        args::Command::EdgeKey(args) => edge_key_cmd::run(args),
        args::Command::Plan(args) => plan_cmd::run_plan(args),
        args::Command::Apply(args) => failure_is_one(apply_cmd::run_apply(args)),
        args::Command::Graph(args) => failure_is_one(graph_cmd::run(args)),
        args::Command::Verify(args) => failure_is_one(verify_cmd::run_verify(args)),
        args::Command::Destroy(args) => failure_is_one(destroy_cmd::run_destroy(args)),
        args::Command::Unlock(args) => failure_is_one(lock_cmd::run_unlock(args)),
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_is_the_first_argument_that_is_not_an_option() {
        let argv = |args: &[&str]| args.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(subcommand_of(&argv(&["edgeplan", "lint", "--bogus"])), Some("lint".as_ref()));
        assert_eq!(subcommand_of(&argv(&["edgeplan", "--bogus", "plan"])), Some("plan".as_ref()));
        assert_eq!(subcommand_of(&argv(&["edgeplan", "--version"])), None);
        assert_eq!(subcommand_of(&argv(&["edgeplan"])), None);
    }

    #[test]
    fn a_live_state_command_never_exits_two_on_a_failure() {
        assert_eq!(failure_is_one(exit::OK), exit::OK);
        assert_eq!(failure_is_one(exit::CANNOT_RUN), exit::FAILED);
        assert_eq!(failure_is_one(exit::FINDINGS), exit::FAILED);
        assert_eq!(failure_is_one(apply_cmd::STOPPED), apply_cmd::STOPPED);
    }
}
