//! `cargo xtask dist`: shell completions and man pages, rendered from the CLI's own clap
//! definitions so they cannot drift from what the binary parses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use clap_complete::Shell;

use crate::workspace;

const BIN_NAME: &str = "edgeplan";

pub(crate) fn run() -> Result<()> {
    let dist_dir = workspace::target_dir().join("dist");
    let completions_dir = fresh_dir(&dist_dir.join("completions"))?;
    let man_dir = fresh_dir(&dist_dir.join("man"))?;

    let mut written = write_completions(&completions_dir)?;
    written.extend(write_man_pages(&man_dir)?);
    for path in &written {
        println!("wrote {}", workspace::display(path));
    }
    Ok(())
}

/// Empty (or create) `dir`, so a renamed subcommand leaves no stale page behind.
fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

fn write_completions(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for &shell in Shell::value_variants() {
        let mut command = edgeplan_cli::args::command();
        let path = clap_complete::generate_to(shell, &mut command, BIN_NAME, dir)
            .with_context(|| format!("writing {shell} completions to {}", dir.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `edgeplan.1`, then one page per visible subcommand (`edgeplan-lint.1`, …), recursively.
fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    // Building propagates the version and names subcommands `edgeplan-lint`; the implicit
    // `help` subcommand would only get a useless page.
    let mut command = edgeplan_cli::args::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_man_page_tree(command, dir, &mut written)?;
    Ok(written)
}

fn write_man_page_tree(command: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let subcommands: Vec<clap::Command> = command.get_subcommands().filter(|sub| !sub.is_hide_set()).cloned().collect();
    let man = clap_mangen::Man::new(command);
    let path = man.generate_to(dir).with_context(|| format!("writing a man page to {}", dir.display()))?;
    written.push(path);
    for subcommand in subcommands {
        write_man_page_tree(subcommand, dir, written)?;
    }
    Ok(())
}
