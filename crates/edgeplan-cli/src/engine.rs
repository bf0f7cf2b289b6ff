//! What every command that touches live state shares: loading the stack, opening the backends
//! (today the simulated world, kept in its file), the async runtime, and the stack lock with
//! its SIGINT/SIGTERM release. The operations themselves are the engine's
//! ([`edgeplan_engine::Session`]).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use edgeplan_engine::{HeldLock, LockError, Session, Stack, holder_identity};
use edgeplan_sim::{SimConnector, SimWorld, World, WorldStore};
use edgeplan_spec::Spec;

use crate::exit;

/// Read, lint and compile the spec at `path`.
pub(crate) fn load_stack(path: &Path) -> Result<Stack, u8> {
    let (source, spec) = crate::spec_input::load_clean_spec(path)?;
    compile_stack(&path.display().to_string(), source, spec, path.parent().unwrap_or(Path::new(".")))
}

/// Compile a spec given as text (a saved plan carries its spec).
pub(crate) fn load_stack_text(display: &str, text: &str, base_dir: &Path) -> Result<Stack, u8> {
    let (source, spec) = crate::spec_input::load_clean_text(display, text.as_bytes(), base_dir)?;
    compile_stack(display, source, spec, base_dir)
}

fn compile_stack(display: &str, source: edgeplan_diag::SourceFile, spec: Spec, base_dir: &Path) -> Result<Stack, u8> {
    Stack::from_spec(display, source, spec, base_dir, &edgeplan_engine::secrets::SystemSecrets).map_err(|err| match err
    {
        edgeplan_engine::StackError::Document { .. } => {
            eprintln!("error[edgeplan::cannot-read]: {err}");
            eprintln!("  help: the path is relative to the spec's directory and must be a regular file");
            exit::CANNOT_RUN
        }
        edgeplan_engine::StackError::Graph(_) => {
            eprintln!("error[edgeplan::graph]: {err}");
            eprintln!("  help: this is a bug in edgeplan's compiler; please report it with the spec");
            exit::FINDINGS
        }
    })
}

/// A simulated world kept in its file: every change is written back at once (write, then
/// rename), under an OS lock on `<world>.lock` so processes take turns.
pub(crate) struct WorldFile {
    pub(crate) path: PathBuf,
    /// The file's text as this process last read or wrote it, parsed: a file nobody else
    /// changed since is not parsed again (a large world takes longer to parse than to plan).
    last: Mutex<Option<(String, World)>>,
}

impl WorldFile {
    pub(crate) fn new(path: &Path, text: String, world: World) -> WorldFile {
        WorldFile { path: path.to_path_buf(), last: Mutex::new(Some((text, world))) }
    }

    fn lock_path(&self) -> PathBuf {
        self.path.with_extension("yaml.lock")
    }

    fn parse(&self, text: String) -> Result<World, String> {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, world)) = last.as_ref().filter(|(known, _)| *known == text) {
            return Ok(world.clone());
        }
        let world = edgeplan_sim::load(&text).map_err(|e| format!("{}: {e}", self.path.display()))?;
        *last = Some((text, world.clone()));
        Ok(world)
    }

    fn remember(&self, text: String, world: World) {
        *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((text, world));
    }
}

impl WorldStore for WorldFile {
    fn update(&self, change: &mut dyn FnMut(&mut World) -> bool) -> Result<(), String> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| format!("cannot open {}: {e}", self.lock_path().display()))?;
        lock.lock().map_err(|e| format!("cannot lock {}: {e}", self.lock_path().display()))?;
        let mut world = self.parse(read_world_text(&self.path)?)?;
        if !change(&mut world) {
            return Ok(());
        }
        let tmp = self.path.with_extension("yaml.tmp");
        let text = edgeplan_sim::save(&world);
        std::fs::write(&tmp, &text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("cannot write world {}: {e}", self.path.display()))?;
        self.remember(text, world);
        Ok(())
    }
}

/// A world file's text: a regular file of bounded size (a FIFO or a device is refused, never read).
fn read_world_text(path: &Path) -> Result<String, String> {
    edgeplan_engine::stack::read_document(path, edgeplan_sim::MAX_WORLD_BYTES as u64)
        .map_err(|e| format!("cannot read world {}: {e}", path.display()))
}

/// A world file, read and parsed, or why not.
enum WorldRead {
    Unreadable(String),
    Malformed(edgeplan_sim::WorldError),
    Parsed { text: String, world: World },
}

fn read_world(path: &Path) -> WorldRead {
    match read_world_text(path) {
        Err(err) => WorldRead::Unreadable(err),
        Ok(text) => match edgeplan_sim::load(&text) {
            Err(err) => WorldRead::Malformed(err),
            Ok(world) => WorldRead::Parsed { text, world },
        },
    }
}

/// Load the spec (with `load`) while the world file is read and parsed on a second thread: on
/// a large fleet both take about as long, and neither needs the other until the world is
/// checked against the spec. Errors come out in the same order as one after the other: the
/// spec's first (a spec that does not load is all that is reported).
pub(crate) fn load_beside_world<T>(
    world: Option<&Path>,
    load: impl FnOnce() -> Result<T, u8>,
    stack: impl FnOnce(&T) -> &Stack,
) -> Result<(T, Arc<SimConnector>), u8> {
    std::thread::scope(|threads| {
        let reading = world.map(|path| threads.spawn(move || read_world(path)));
        let loaded = load()?;
        let read = reading.map(|thread| {
            thread.join().unwrap_or_else(|_| WorldRead::Unreadable("reading the world file failed".to_string()))
        });
        let connector = open_world(world, read, stack(&loaded))?;
        Ok((loaded, connector))
    })
}

/// The backends for `--world FILE`: the simulated world, refusing one made for another spec.
fn open_world(path: Option<&Path>, read: Option<WorldRead>, stack: &Stack) -> Result<Arc<SimConnector>, u8> {
    let (Some(path), Some(read)) = (path, read) else {
        eprintln!("error[edgeplan::no-backend]: no backend to observe live state");
        eprintln!("  help: pass --world FILE to use a simulated world, e.g. testdata/worlds/seed.yaml");
        return Err(exit::CANNOT_RUN);
    };
    let (text, world) = match read {
        WorldRead::Unreadable(err) => {
            eprintln!("error[edgeplan::cannot-read]: {err}");
            eprintln!("  help: a world file is a regular YAML file written by edgeplan");
            return Err(exit::CANNOT_RUN);
        }
        WorldRead::Malformed(err) => {
            eprintln!("error[edgeplan::world]: {}: {err}", path.display());
            eprintln!("  help: world files are written by edgeplan; start from testdata/worlds/seed.yaml");
            return Err(exit::CANNOT_RUN);
        }
        WorldRead::Parsed { text, world } => (text, world),
    };
    let missing = world_mismatch(&world, &stack.spec);
    if !missing.is_empty() {
        eprintln!(
            "error[edgeplan::world]: {} does not describe this spec: no {}",
            path.display(),
            missing.join(", no ")
        );
        eprintln!("  help: use the world made for this spec (testdata/worlds/<name>.yaml), or add what is missing");
        return Err(exit::CANNOT_RUN);
    }
    let file = WorldFile::new(path, text, world.clone());
    let shared = SimWorld::new(world, Box::new(file));
    Ok(Arc::new(SimConnector::new(shared)))
}

/// What the spec's provider and consumers need that the world lacks: a world made for another
/// spec is refused up front instead of producing a plan that creates everything.
fn world_mismatch(world: &World, spec: &Spec) -> Vec<String> {
    let mut missing = Vec::new();
    let provider = &spec.spec.provider;
    let mut aws = vec![&provider.aws];
    let mut contexts = vec![provider.cluster.kube_context.value.as_str()];
    for consumer in spec.spec.consumers.iter() {
        aws.push(&consumer.aws);
        contexts.push(consumer.cluster.kube_context.value.as_str());
    }
    for target in aws {
        let (account, region) = (target.account_id.value.as_str(), target.region.value.as_str());
        let entry = format!("AWS account {account} in {region}");
        if world.region(account, region).is_none() && !missing.contains(&entry) {
            missing.push(entry);
        }
    }
    for context in contexts {
        let entry = format!("kube context `{context}`");
        if world.cluster(context).is_none() && !missing.contains(&entry) {
            missing.push(entry);
        }
    }
    if world.portainer_server(&provider.portainer.url.value).is_none() {
        missing.push(format!("Portainer at {}", provider.portainer.url.value));
    }
    missing
}

/// One session over the simulated world for the spec at `spec`.
pub(crate) fn open(spec: &Path, world: Option<&Path>) -> Result<Session, u8> {
    let (stack, connector) = load_beside_world(world, || load_stack(spec), |stack| stack)?;
    Ok(Session::new(stack, connector))
}

/// Run the engine's future to completion: on a plain current-thread runtime (real timers for
/// real backends), driven so the simulated world's virtual clock advances whenever everything
/// waits.
pub(crate) fn run<F: Future>(session: &Session, future: F) -> Result<F::Output, u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(|err| {
        eprintln!("error[edgeplan::runtime]: {err}");
        exit::CANNOT_RUN
    })?;
    Ok(runtime.block_on(edgeplan_engine::drive(session.clock(), future)))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// This process, as a lease holder: `user@host:pid`.
fn me() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    holder_identity(&user, &hostname(), std::process::id())
}

/// On this host, is `pid` running? (Linux: /proc; elsewhere: cannot tell.)
fn process_alive(host: &str, pid: u32) -> Option<bool> {
    (host == hostname() && Path::new("/proc/self").exists()).then(|| Path::new(&format!("/proc/{pid}")).exists())
}

/// Take the stack lock for `operation`, or print who holds it. SIGINT and SIGTERM release it.
pub(crate) async fn lock(session: &Session, operation: &str) -> Result<Arc<HeldLock>, u8> {
    match session.lock(&me(), process_alive).await {
        Ok(held) => {
            if let Some((previous, why)) = &held.took_over {
                eprintln!(
                    "warning[edgeplan::lock-taken-over]: the lock of stack `{}` was held by {previous} and {why}; taking it over",
                    session.stack.name
                );
            }
            let held = Arc::new(held);
            let release = Arc::clone(&held);
            let _ = ctrlc::set_handler(move || {
                let _ = release.release_blocking();
                eprintln!("\ninterrupted: lock released; run the same command again to continue");
                std::process::exit(130);
            });
            Ok(held)
        }
        Err(LockError::Held(lease)) => {
            let record_name = edgeplan_engine::lock::lease_name(&session.stack.name);
            eprintln!(
                "error[edgeplan::locked]: stack `{}` is locked by {} (Lease {}/{record_name} in {}) until {} \
                 (in {}s); nothing was done",
                session.stack.name,
                lease.holder,
                edgeplan_engine::lock::LEASE_NAMESPACE,
                session.stack.provider_cluster(),
                lease.expires_at(),
                lease.expires_at().saturating_sub(edgeplan_engine::lock::unix_now())
            );
            eprintln!(
                "  help: wait for that {operation} to finish; if it is gone for good, run \
                 `edgeplan unlock SPEC --world FILE --holder {}`",
                lease.holder
            );
            Err(exit::CANNOT_RUN)
        }
        Err(err) => {
            eprintln!("error[edgeplan::lock]: cannot take the stack lock: {err}");
            eprintln!("  help: the lock is a Lease in the provider cluster; check access to its kube context");
            Err(exit::CANNOT_RUN)
        }
    }
}

pub(crate) fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../testdata/worlds/seed.yaml");

    fn now_of(file: &WorldFile) -> u64 {
        let mut seen = None;
        file.update(&mut |world| {
            seen = Some(world.now);
            false
        })
        .expect("the store reads");
        seen.expect("the change ran")
    }

    #[test]
    fn the_world_file_is_parsed_again_only_when_someone_else_changed_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("world.yaml");
        std::fs::write(&path, SEED).expect("written");
        let world = edgeplan_sim::load(SEED).expect("the seed world loads");
        let file = WorldFile::new(&path, SEED.to_string(), world.clone());
        assert_eq!(now_of(&file), world.now);
        // Another process moves the world on: the next update sees its version, not ours.
        let mut moved = world.clone();
        moved.now += 600;
        std::fs::write(&path, edgeplan_sim::save(&moved)).expect("written");
        assert_eq!(now_of(&file), world.now + 600);
        // This process's own write is remembered, and read back as written.
        file.update(&mut |world| {
            world.now += 1;
            true
        })
        .expect("the store writes");
        assert_eq!(now_of(&file), world.now + 601);
        assert_eq!(edgeplan_sim::load(&std::fs::read_to_string(&path).unwrap()).unwrap().now, world.now + 601);
    }
}
