//! The AWS backend's figures against moto: `crates/edgeplan-aws/examples/moto_bench.rs` (it
//! needs the AWS SDK, which only that crate builds), run here and quoted next to the anchor
//! the AWS backend issue measured for Terraform.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The fleets measured: the seed spec, then N consumers. Not 1,000: moto (one Python process)
/// had not finished applying that fleet's AWS side after 40 minutes on 2 cores.
const SIZES: [&str; 3] = ["seed", "10", "100"];

/// Terraform 1.11.4 with the AWS provider 5.100.0 on the AWS half of this topology, measured
/// against moto on this kind of machine (issue 10's anchor).
const ANCHOR: [&str; 2] = [
    "anchor: Terraform 1.11.4 + AWS provider 5.100.0: 10 + 5N calls per no-change plan (N = 100: 510, none batched)",
    "        its N = 100 no-change plan at 50 ms per call: 12.8 s = 256 × 50 ms (7.9 s of it start-up)",
];

pub(crate) fn print_figures(root: &Path, failures: &mut Vec<String>) {
    match run(root) {
        Ok(output) => {
            print!("{output}");
            for line in ANCHOR {
                println!("{line}");
            }
        }
        Err(err) => {
            println!("AWS backend against moto FAILED: {err:#}");
            failures.push("AWS backend against moto".to_string());
        }
    }
}

fn run(root: &Path) -> Result<String> {
    // Release, as the other figures: the first build of aws-sdk-ec2 in release takes about 9
    // minutes on 2 cores, then it is cached.
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["run", "--release", "--quiet", "--locked", "-p", "edgeplan-aws", "--example", "moto_bench", "--"])
        .args(SIZES)
        .output()
        .context("running the moto benchmark")?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
