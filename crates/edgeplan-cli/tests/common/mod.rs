//! Running the built binary from the repository root, as a user would.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::Command;

/// Exit code, stdout and stderr of `edgeplan ARGS` run in the repository root, without colour.
pub fn edgeplan(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_edgeplan"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("NO_COLOR", "1")
        .output()
        .expect("edgeplan runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
