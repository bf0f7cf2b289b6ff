//! Running the built binary from the repository root, as a user would.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::Command;

/// The repository root.
pub fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Exit code, stdout and stderr of `edgeplan ARGS` run in the repository root, without colour.
pub fn edgeplan(args: &[&str]) -> (i32, String, String) {
    edgeplan_with_env(args, &[])
}

/// [`edgeplan`] with extra environment variables.
pub fn edgeplan_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    edgeplan_in(&root(), args, env)
}

/// `edgeplan ARGS` run in `dir` with extra environment variables (stdin is not a terminal).
pub fn edgeplan_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = command_in(dir, args, env).output().expect("edgeplan runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The command [`edgeplan_in`] runs, to spawn it instead.
pub fn command_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgeplan"));
    command.args(args).envs(env.iter().copied()).current_dir(dir).env("NO_COLOR", "1");
    command
}

/// A copy of `specs/policies` under `dir`, for specs written there (their documents are
/// relative to the spec).
pub fn copy_policies(dir: &Path) {
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    for entry in std::fs::read_dir(root().join("specs/policies")).expect("policies") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join("policies").join(entry.file_name())).expect("copy");
    }
}

/// A scratch copy of a world file (apply writes worlds back), removed on drop.
pub struct ScratchWorld {
    pub dir: tempfile::TempDir,
    pub path: String,
}

impl ScratchWorld {
    pub fn copy_of(world: &str) -> ScratchWorld {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("world.yaml");
        std::fs::copy(root().join(world), &path).expect("copy world");
        ScratchWorld { path: path.display().to_string(), dir }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).expect("world readable")
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// The world a file describes, less the clusters' resourceVersion counters: taking and
/// releasing the stack lock moves them (as it moves a real API server's), and nothing else.
#[allow(dead_code)] // not every test binary compares worlds
pub fn infrastructure(text: &str) -> Option<edgeplan_sim::World> {
    let mut world = edgeplan_sim::load(text).ok()?;
    for cluster in &mut world.kubernetes {
        cluster.last_resource_version = 0;
    }
    Some(world)
}
