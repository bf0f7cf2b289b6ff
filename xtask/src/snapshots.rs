//! `cargo xtask snapshots --references FILE`: fail on insta snapshots no test uses.
//!
//! insta appends every snapshot file a test asserts to `INSTA_SNAPSHOT_REFERENCES_FILE`; CI
//! runs the tests with it set, then checks every committed `.snap` file is in that list. An
//! orphaned snapshot is a test that was renamed or removed and left its golden output behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::workspace;

/// Every `.snap` file under `crates/` and `xtask/`.
fn committed(root: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.join("crates"), root.join("xtask")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "snap") {
                found.insert(path.canonicalize()?);
            }
        }
    }
    Ok(found)
}

/// The snapshot files `references` (one path per line) names that exist.
fn referenced(references: &Path) -> Result<BTreeSet<PathBuf>> {
    let text = std::fs::read_to_string(references).with_context(|| format!("reading {}", references.display()))?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| Path::new(l.trim()).canonicalize().ok()).collect())
}

/// The committed snapshots no test referenced.
pub(crate) fn unreferenced(root: &Path, references: &Path) -> Result<Vec<PathBuf>> {
    let used = referenced(references)?;
    Ok(committed(root)?.into_iter().filter(|p| !used.contains(p)).collect())
}

pub(crate) fn check(references: &Path) -> Result<()> {
    let root = workspace::root();
    let orphans = unreferenced(&root, references)?;
    if orphans.is_empty() {
        println!("snapshots: every committed snapshot is referenced by a test");
        return Ok(());
    }
    for orphan in &orphans {
        eprintln!("unreferenced snapshot: {}", workspace::display(orphan));
    }
    bail!("{} committed snapshot(s) no test uses: delete them or the test that lost them", orphans.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlisted_snapshot_is_reported_and_a_listed_one_is_not() {
        let dir = std::env::temp_dir().join(format!("edgeplan-snapshots-{}", std::process::id()));
        let snapshots = dir.join("crates/x/tests/snapshots");
        std::fs::create_dir_all(&snapshots).expect("mkdir");
        std::fs::create_dir_all(dir.join("xtask")).expect("mkdir");
        std::fs::write(snapshots.join("used.snap"), "").expect("write");
        std::fs::write(snapshots.join("orphan.snap"), "").expect("write");
        let references = dir.join("refs");
        std::fs::write(&references, format!("{}\n", snapshots.join("used.snap").display())).expect("write");
        let orphans = unreferenced(&dir, &references).expect("listed");
        let names: Vec<String> =
            orphans.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["orphan.snap"]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
