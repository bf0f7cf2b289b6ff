//! `cargo xtask moto`: the Python venv with moto_server for the AWS integration tests, then the
//! self-test of our moto launcher and fault proxy (`tools/moto/`).
//!
//! The venv is `$EDGEPLAN_MOTO_VENV` (relative to the workspace root), else `<repo>/.moto-venv`.
//! [`ensure_venv`] is idempotent and safe when two processes race: it holds an exclusive lock on
//! `<venv>.lock` while it looks and installs, and a venv whose stamp file holds the SHA-256 of
//! `tools/moto/requirements.txt` is up to date and not reinstalled. The AWS test harness finds
//! the venv the same way and can rely on the stamp to know it is complete.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::workspace;

/// Names another venv directory than the default.
pub(crate) const VENV_ENV: &str = "EDGEPLAN_MOTO_VENV";
/// The default venv directory, under the workspace root.
const DEFAULT_VENV: &str = ".moto-venv";
/// The pinned requirements, under the workspace root.
const REQUIREMENTS: &str = "tools/moto/requirements.txt";
/// Inside the venv: the SHA-256 (hex) of the requirements it was installed from.
pub(crate) const STAMP: &str = "edgeplan-requirements.sha256";

pub(crate) fn run() -> Result<()> {
    let root = workspace::root();
    let venv = venv_dir(&root, std::env::var_os(VENV_ENV));
    let python = ensure_venv(&venv, &root.join(REQUIREMENTS))?;
    let selftest = root.join("tools/moto/selftest.py");
    let status = Command::new(&python)
        .arg(&selftest)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", workspace::display(&selftest));
    }
    Ok(())
}

/// `configured` (the value of [`VENV_ENV`]) resolved against the workspace root, else the default.
pub(crate) fn venv_dir(root: &Path, configured: Option<OsString>) -> PathBuf {
    configured.filter(|dir| !dir.is_empty()).map_or_else(|| root.join(DEFAULT_VENV), |dir| root.join(dir))
}

/// The lock file beside the venv: inside it, it would vanish with a venv removed by hand.
pub(crate) fn lock_path(venv: &Path) -> PathBuf {
    let mut name = venv.file_name().map(OsString::from).unwrap_or_default();
    name.push(".lock");
    venv.with_file_name(name)
}

/// The venv's python if the venv was completely installed from requirements with this digest.
pub(crate) fn current_python(venv: &Path, digest: &str) -> Option<PathBuf> {
    let python = venv.join("bin/python");
    let stamp = std::fs::read_to_string(venv.join(STAMP)).ok()?;
    (stamp.trim() == digest && python.exists()).then_some(python)
}

/// Create or refresh the venv at `venv` from `requirements`; return its python.
pub(crate) fn ensure_venv(venv: &Path, requirements: &Path) -> Result<PathBuf> {
    let lock_path = lock_path(venv);
    if let Some(parent) = lock_path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // Released when `lock` drops: a second process waits here, then finds the venv current.
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;

    let digest = sha256_hex(requirements)?;
    if let Some(python) = current_python(venv, &digest) {
        println!("moto venv: up to date ({})", workspace::display(venv));
        return Ok(python);
    }
    let started = Instant::now();
    if !venv.join("bin/python").exists() {
        let mut create = Command::new("python3");
        create.args(["-m", "venv"]).arg(venv);
        run_step(&mut create, "python3 -m venv")?;
    }
    // A stamp must never outlive the install it vouches for, even a failed one.
    match std::fs::remove_file(venv.join(STAMP)) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).context("removing the old stamp");
        }
        _ => {}
    }
    let mut install = Command::new(venv.join("bin/pip"));
    install.args(["install", "--disable-pip-version-check", "-q", "-r"]).arg(requirements);
    run_step(&mut install, "pip install -r tools/moto/requirements.txt")?;
    let partial = venv.join(format!("{STAMP}.partial"));
    std::fs::write(&partial, format!("{digest}\n")).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, venv.join(STAMP)).context("writing the stamp")?;
    println!("moto venv: installed in {:.1} s ({})", started.elapsed().as_secs_f64(), workspace::display(venv));
    Ok(venv.join("bin/python"))
}

fn run_step(command: &mut Command, what: &str) -> Result<()> {
    let status = command.stdin(Stdio::null()).status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// SHA-256 of a file, in hex. Python computes it: the venv needs python3 anyway, and this keeps a
/// hashing crate out of xtask's dependencies.
fn sha256_hex(path: &Path) -> Result<String> {
    let output = Command::new("python3")
        .args(["-c", "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("cannot run python3 (needed for the moto venv)")?;
    if !output.status.success() {
        bail!("hashing {} failed: {}", path.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_is_the_configured_directory_under_the_root_else_the_default() {
        let root = Path::new("/repo");
        assert_eq!(venv_dir(root, None), Path::new("/repo/.moto-venv"));
        assert_eq!(venv_dir(root, Some("".into())), Path::new("/repo/.moto-venv"));
        assert_eq!(venv_dir(root, Some("cache/venv".into())), Path::new("/repo/cache/venv"));
        assert_eq!(venv_dir(root, Some("/opt/moto".into())), Path::new("/opt/moto"));
    }

    #[test]
    fn the_lock_sits_beside_the_venv() {
        assert_eq!(lock_path(Path::new("/repo/.moto-venv")), Path::new("/repo/.moto-venv.lock"));
    }

    #[test]
    fn a_venv_is_current_only_with_a_stamp_of_the_same_digest_and_a_python() {
        let venv = std::env::temp_dir().join(format!("edgeplan-moto-venv-{}", std::process::id()));
        std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
        assert_eq!(current_python(&venv, "abc"), None, "no stamp");
        std::fs::write(venv.join(STAMP), "abc\n").expect("write");
        assert_eq!(current_python(&venv, "abc"), None, "no python");
        std::fs::write(venv.join("bin/python"), "").expect("write");
        assert_eq!(current_python(&venv, "abc"), Some(venv.join("bin/python")));
        assert_eq!(current_python(&venv, "def"), None, "other requirements");
        std::fs::remove_dir_all(&venv).expect("cleanup");
    }
}
