//! Where things are, independent of the directory `cargo xtask` was started from.

use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().map_or_else(|| xtask_dir.join(".."), Path::to_path_buf)
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` like cargo itself does.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// `path` relative to the workspace root when it is inside it, for messages.
pub(crate) fn display(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}
