//! Test support, shared by every crate's tests, the CLI's and xtask's benchmarks: the fixtures
//! (stacks loaded as the CLI loads them, simulated worlds in memory, sessions, converged
//! worlds) and [`conformance`], the behaviour every backend must show.
//!
//! Fixtures panic with a readable message when an example does not load: they are for tests.

pub mod conformance;
pub mod mixed;
pub mod moto;
pub mod recording;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgeplan_engine::secrets::{SecretError, SecretSource};
use edgeplan_engine::{ApplyOptions, ApplyReport, NoProgress, Planned, Session, Stack};
use edgeplan_model::SecretText;
use edgeplan_sim::{SimConnector, SimWorld, World};

/// The workspace root (this crate lives in `crates/edgeplan-testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A path under the workspace root.
pub fn path(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// Secrets given in the test, by reference (`env:AGENT_SECRET` → value). Tests never depend on
/// the process environment, which parallel tests share.
#[derive(Debug, Clone, Default)]
pub struct FixedSecrets(pub BTreeMap<String, String>);

impl FixedSecrets {
    /// The secrets the example specs reference, with dummy values.
    pub fn examples() -> FixedSecrets {
        FixedSecrets(
            [("env:AGENT_SECRET", "agent-secret-for-tests"), ("env:PARTNER_AGENT_SECRET", "partner-secret-for-tests")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn none() -> FixedSecrets {
        FixedSecrets::default()
    }
}

impl SecretSource for FixedSecrets {
    fn read(&self, reference: &str, _base_dir: &Path) -> Result<SecretText, SecretError> {
        match self.0.get(reference) {
            Some(value) if value.is_empty() => Err(SecretError::Empty),
            Some(value) => Ok(SecretText::new(value.as_str())),
            None if reference.starts_with("env:") => Err(SecretError::EnvUnset),
            None => Err(SecretError::FileMissing),
        }
    }
}

/// The spec's referenced files, from the file system (as the CLI reads them).
struct Files;

impl edgeplan_lint::FileSource for Files {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// Lint, parse and compile a spec file as the CLI does (documents inlined, secrets from
/// `secrets`). Panics with the findings if it does not lint clean.
pub fn load_stack_with(spec: &Path, secrets: &dyn SecretSource) -> Stack {
    let bytes = std::fs::read(spec).unwrap_or_else(|e| panic!("reading {}: {e}", spec.display()));
    let base_dir = spec.parent().unwrap_or(Path::new("."));
    let display = spec.display().to_string();
    let (report, spec_value) = edgeplan_lint::lint_and_parse(&display, &bytes, base_dir, &Files);
    let errors: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == edgeplan_diag::Severity::Error)
        .map(|f| format!("{}: {}", f.rule.code(), f.message))
        .collect();
    assert!(errors.is_empty(), "{display} does not lint clean:\n  {}", errors.join("\n  "));
    let spec_value = spec_value.unwrap_or_else(|| panic!("{display} does not parse"));
    Stack::from_spec(&display, report, spec_value, base_dir, secrets).unwrap_or_else(|e| panic!("{display}: {e}"))
}

/// [`load_stack_with`] the example secrets.
pub fn load_stack(spec: &Path) -> Stack {
    load_stack_with(spec, &FixedSecrets::examples())
}

/// An example spec (`spec`, relative to the repository) edited by `edit`, written with the
/// policy documents it references into a temporary directory (kept alive by the returned
/// handle) and loaded as [`load_stack`] does: a user's next version of the spec.
pub fn edited_stack(spec: &str, edit: impl FnOnce(&str) -> String) -> (tempfile::TempDir, Stack) {
    let original = std::fs::read_to_string(path(spec)).unwrap_or_else(|e| panic!("reading {spec}: {e}"));
    let edited = edit(&original);
    assert_ne!(edited, original, "the edit changes {spec}");
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
    for entry in std::fs::read_dir(path("specs/policies")).expect("the example policies") {
        let entry = entry.expect("an entry");
        std::fs::copy(entry.path(), dir.path().join("policies").join(entry.file_name())).expect("copy a policy");
    }
    let file = dir.path().join(Path::new(spec).file_name().expect("a file name"));
    std::fs::write(&file, edited).expect("write the edited spec");
    let stack = load_stack(&file);
    (dir, stack)
}

pub fn seed_stack() -> Stack {
    load_stack(&path("specs/seed.yaml"))
}

pub fn fleet_stack() -> Stack {
    load_stack(&path("specs/fleet.yaml"))
}

/// A world file, loaded.
pub fn world(relative: &str) -> World {
    let file = path(relative);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    edgeplan_sim::load(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A simulated world kept in memory.
pub fn sim(world: World) -> Arc<SimWorld> {
    SimWorld::in_memory(world)
}

/// A session of `stack` over the simulated world `world`.
pub fn session(stack: Stack, world: &Arc<SimWorld>) -> Session {
    Session::new(stack, Arc::new(SimConnector::new(Arc::clone(world))))
}

/// Run an engine future to completion as the CLI does: a current-thread runtime, driven so the
/// simulated world's virtual clock advances whenever everything waits.
pub fn run<F: std::future::Future>(session: &Session, future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    runtime.block_on(edgeplan_engine::drive(session.clock(), future))
}

/// Plan, then apply everything the plan decided (no lock, no verify).
pub fn plan_and_apply(session: &Session, options: &ApplyOptions) -> (Planned, ApplyReport) {
    run(session, async {
        let planned = session.plan().await;
        let report = session.apply(&planned, None, options, &NoProgress, None, false).await.expect("no lock to lose");
        (planned, report)
    })
}

/// The seed or fleet example applied to convergence: a session over the world it left.
pub fn converged(spec: &str, world_file: &str) -> (Session, Arc<SimWorld>) {
    let world = sim(world(world_file));
    let session = session(load_stack(&path(spec)), &world);
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    let failures: Vec<String> = report.failures().map(|(a, e)| format!("{a}: {e}")).collect();
    assert!(report.succeeded(), "{spec} on {world_file} does not converge:\n  {}", failures.join("\n  "));
    (session, world)
}
