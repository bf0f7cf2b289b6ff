//! What every command that touches live state shares: loading the stack, opening the backends
//! (today the simulated world, kept in its file), the async runtime, and the stack lock with
//! its SIGINT/SIGTERM release. The operations themselves are the engine's
//! ([`edgeplan_engine::Session`]).
//!
//! Every helper here prints what went wrong and returns [`exit::FAILED`]: the commands that
//! touch live state exit 1 on any failure, as Terraform does (2 is `plan
//! --detailed-exitcode`'s "changes", never an error).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeplan_engine::lock::{holder_doing, unix_now, utc_timestamp};
use edgeplan_engine::{HeldLock, LockError, Session, Stack, holder_identity};
use edgeplan_sim::{SimConnector, SimWorld, World, WorldStore};
use edgeplan_spec::Spec;

use crate::exit;

/// Read, lint and compile the spec at `path`.
pub(crate) fn load_stack(path: &Path) -> Result<Stack, u8> {
    // Whatever code lint's loader picked (it has its own contract), here a failure is 1.
    let (report, spec) = crate::spec_input::load_clean_spec(path).map_err(|_| exit::FAILED)?;
    compile_stack(&path.display().to_string(), report, spec, path.parent().unwrap_or(Path::new(".")))
}

/// Compile a spec given as text (a saved plan carries its spec).
pub(crate) fn load_stack_text(display: &str, text: &str, base_dir: &Path) -> Result<Stack, u8> {
    let (report, spec) =
        crate::spec_input::load_clean_text(display, text.as_bytes(), base_dir).map_err(|_| exit::FAILED)?;
    compile_stack(display, report, spec, base_dir)
}

fn compile_stack(display: &str, report: edgeplan_diag::FileReport, spec: Spec, base_dir: &Path) -> Result<Stack, u8> {
    Stack::from_spec(display, report, spec, base_dir, &edgeplan_engine::secrets::SystemSecrets).map_err(|err| match err
    {
        edgeplan_engine::StackError::Document { .. } => {
            eprintln!("error[edgeplan::cannot-read]: {err}");
            eprintln!("  help: the path is relative to the spec's directory and must be a regular file");
            exit::FAILED
        }
        edgeplan_engine::StackError::Graph(_) => {
            eprintln!("error[edgeplan::graph]: {err}");
            eprintln!("  help: this is a bug in edgeplan's compiler; please report it with the spec");
            exit::FAILED
        }
    })
}

/// A simulated world kept in its file: every change is written back at once (write, then
/// rename), under an OS lock on `<world>.lock` so processes take turns. The file is the one a
/// symlink points to (the link stays a link), and a rewrite keeps its mode: a world file may
/// hold secrets.
pub(crate) struct WorldFile {
    /// The path as given, for messages.
    pub(crate) path: PathBuf,
    /// The file itself: a symlink resolved when the world was opened.
    real: PathBuf,
    /// The file's text as this process last read or wrote it, parsed: a file nobody else
    /// changed since is not parsed again (a large world takes longer to parse than to plan).
    last: Mutex<Option<(String, World)>>,
    /// What this process wrote, to take back when a run is refused after all.
    writes: Mutex<Writes>,
}

/// This process's writes to a world file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Writes {
    None,
    /// Only ours, one after the other: the text before the first and after the last.
    Ours {
        before: String,
        after: String,
    },
    /// Someone else wrote between two of ours: ours cannot be taken back alone.
    Interleaved,
}

impl WorldFile {
    pub(crate) fn new(path: &Path, text: String, world: World) -> WorldFile {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        WorldFile {
            path: path.to_path_buf(),
            real,
            last: Mutex::new(Some((text, world))),
            writes: Mutex::new(Writes::None),
        }
    }

    /// `<file>.<suffix>` next to the file itself.
    fn beside(&self, suffix: &str) -> PathBuf {
        let mut name = self.real.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
        name.push(suffix);
        self.real.with_file_name(name)
    }

    /// Take the OS lock every process writing this world takes (released when dropped).
    fn os_lock(&self) -> Result<std::fs::File, String> {
        let path = self.beside(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        lock.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(lock)
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

    /// Replace the file's contents (under the OS lock): a temporary file next to it, with its
    /// mode, renamed over it. A symlink is written through, never replaced.
    fn write_text(&self, text: &str) -> Result<(), String> {
        let failed = |e: std::io::Error| format!("cannot write world {}: {e}", self.path.display());
        let tmp = self.beside(".tmp");
        let permissions = std::fs::metadata(&self.real).map_err(failed)?.permissions();
        // A leftover from a killed run is ours to replace (we hold the lock).
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            // Nobody else may read it before it has the world file's own mode.
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        let written = options
            .open(&tmp)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .and_then(|()| std::fs::set_permissions(&tmp, permissions))
            .and_then(|()| std::fs::rename(&tmp, &self.real));
        if let Err(err) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(failed(err));
        }
        Ok(())
    }

    /// Take back every write this process made, if nobody else wrote since its first: the
    /// file is again byte for byte what it was (a refused run leaves no trace, not even the
    /// lock it took and released). Whether it did.
    pub(crate) fn undo(&self) -> Result<bool, String> {
        let _lock = self.os_lock()?;
        let mut writes = self.writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Writes::Ours { before, after } = &*writes else { return Ok(false) };
        if read_world_text(&self.real)? != *after {
            return Ok(false);
        }
        self.write_text(before)?;
        *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        *writes = Writes::None;
        Ok(true)
    }
}

impl WorldStore for WorldFile {
    fn update(&self, change: &mut dyn FnMut(&mut World) -> bool) -> Result<(), String> {
        let _lock = self.os_lock()?;
        let before = read_world_text(&self.real)?;
        let mut world = self.parse(before.clone())?;
        if !change(&mut world) {
            return Ok(());
        }
        let text = edgeplan_sim::save(&world);
        self.write_text(&text)?;
        let mut writes = self.writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *writes = match std::mem::replace(&mut *writes, Writes::Interleaved) {
            Writes::None => Writes::Ours { before, after: text.clone() },
            Writes::Ours { before: first, after } if after == before => {
                Writes::Ours { before: first, after: text.clone() }
            }
            Writes::Ours { .. } | Writes::Interleaved => Writes::Interleaved,
        };
        drop(writes);
        self.remember(text, world);
        Ok(())
    }
}

/// The [`WorldStore`] the simulated world writes through, shared with the command that may
/// take its writes back ([`WorldFile::undo`]).
struct SharedFile(Arc<WorldFile>);

impl WorldStore for SharedFile {
    fn update(&self, change: &mut dyn FnMut(&mut World) -> bool) -> Result<(), String> {
        self.0.update(change)
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
) -> Result<(T, Arc<SimConnector>, Arc<WorldFile>), u8> {
    std::thread::scope(|threads| {
        let reading = world.map(|path| threads.spawn(move || read_world(path)));
        let loaded = load()?;
        let read = reading.map(|thread| {
            thread.join().unwrap_or_else(|_| WorldRead::Unreadable("reading the world file failed".to_string()))
        });
        let (connector, file) = open_world(world, read, stack(&loaded))?;
        Ok((loaded, connector, file))
    })
}

/// The backends for `--world FILE`: the simulated world, refusing one made for another spec.
fn open_world(
    path: Option<&Path>,
    read: Option<WorldRead>,
    stack: &Stack,
) -> Result<(Arc<SimConnector>, Arc<WorldFile>), u8> {
    let (Some(path), Some(read)) = (path, read) else {
        eprintln!("error[edgeplan::no-backend]: no backend to observe live state");
        eprintln!("  help: pass --world FILE to use a simulated world, e.g. testdata/worlds/seed.yaml");
        return Err(exit::FAILED);
    };
    let (text, world) = match read {
        WorldRead::Unreadable(err) => {
            eprintln!("error[edgeplan::cannot-read]: {err}");
            eprintln!("  help: a world file is a regular YAML file written by edgeplan");
            return Err(exit::FAILED);
        }
        WorldRead::Malformed(err) => {
            eprintln!("error[edgeplan::world]: {}: {err}", path.display());
            eprintln!("  help: world files are written by edgeplan; start from testdata/worlds/seed.yaml");
            return Err(exit::FAILED);
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
        return Err(exit::FAILED);
    }
    let file = Arc::new(WorldFile::new(path, text, world.clone()));
    let shared = SimWorld::new(world, Box::new(SharedFile(Arc::clone(&file))));
    Ok((Arc::new(SimConnector::new(shared)), file))
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
    open_with_file(spec, world).map(|(session, _)| session)
}

/// [`open`], with the world file (to take a refused run's writes back).
pub(crate) fn open_with_file(spec: &Path, world: Option<&Path>) -> Result<(Session, Arc<WorldFile>), u8> {
    let (stack, connector, file) = load_beside_world(world, || load_stack(spec), |stack| stack)?;
    Ok((Session::new(stack, connector), file))
}

/// Run the engine's future to completion: on a plain current-thread runtime (real timers for
/// real backends), driven so the simulated world's virtual clock advances whenever everything
/// waits.
pub(crate) fn run<F: Future>(session: &Session, future: F) -> Result<F::Output, u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(|err| {
        eprintln!("error[edgeplan::runtime]: {err}");
        exit::FAILED
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

/// This process, as a lease holder, with what it is doing: `user@host:pid (edgeplan apply
/// SPEC)`. The subcommand and the path as given, never the whole command line.
fn me(operation: &str, input: &Path) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    let process = holder_identity(&user, &hostname(), std::process::id());
    holder_doing(&process, &format!("edgeplan {operation} {}", input.display()))
}

/// On this host, is `pid` running? (Linux: /proc; elsewhere: cannot tell.)
fn process_alive(host: &str, pid: u32) -> Option<bool> {
    (host == hostname() && Path::new("/proc/self").exists()).then(|| Path::new(&format!("/proc/{pid}")).exists())
}

/// Take the stack lock for `operation` on `input` (the spec or saved plan, as given), or print
/// who holds it, doing what, and until when. SIGINT and SIGTERM release it.
pub(crate) async fn lock(session: &Session, operation: &str, input: &Path) -> Result<Arc<HeldLock>, u8> {
    match session.lock(&me(operation, input), process_alive).await {
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
            let doing = lease.activity().map(|doing| format!(", running `{doing}`")).unwrap_or_default();
            let left = Duration::from_secs(lease.expires_at().saturating_sub(unix_now()));
            eprintln!(
                "error[edgeplan::locked]: stack `{}` is locked by {}{doing} since {}, until {} (in {}; Lease \
                 {}/{record_name} in {}); nothing was done",
                session.stack.name,
                lease.process(),
                utc_timestamp(lease.acquired_at),
                utc_timestamp(lease.expires_at()),
                edgeplan_engine::clock(left),
                edgeplan_engine::lock::LEASE_NAMESPACE,
                session.stack.provider_cluster(),
            );
            let what = lease.activity().map_or_else(|| format!("that {operation}"), |doing| format!("`{doing}`"));
            eprintln!(
                "  help: wait for {what} to finish; if it is gone for good, run \
                 `edgeplan unlock SPEC --world FILE --holder {}`",
                lease.process()
            );
            Err(exit::FAILED)
        }
        Err(err) => {
            eprintln!("error[edgeplan::lock]: cannot take the stack lock: {err}");
            eprintln!("  help: the lock is a Lease in the provider cluster; check access to its kube context");
            Err(exit::FAILED)
        }
    }
}

/// Release the lock of a run that was refused after taking it, and take back the writes that
/// taking and releasing it made (when nobody else wrote the world meanwhile): a refused run
/// leaves the world file as it found it.
pub(crate) async fn release_refused(lock: &HeldLock, file: &WorldFile) {
    release(lock).await;
    if let Err(err) = file.undo() {
        eprintln!("warning[edgeplan::world]: {err}");
    }
}

pub(crate) async fn release(lock: &HeldLock) {
    if let Err(err) = lock.release().await {
        eprintln!("warning[edgeplan::lock]: the stack lock could not be released: {err}");
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

    fn tick(file: &WorldFile) {
        file.update(&mut |world| {
            world.now += 1;
            true
        })
        .expect("the store writes");
    }

    #[test]
    fn a_run_that_wrote_alone_can_take_its_writes_back_byte_for_byte() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("world.yaml");
        std::fs::write(&path, SEED).expect("written");
        let file = WorldFile::new(&path, SEED.to_string(), edgeplan_sim::load(SEED).expect("loads"));
        assert!(!file.undo().expect("undo"), "nothing written, nothing to take back");
        tick(&file);
        tick(&file);
        assert_ne!(std::fs::read_to_string(&path).expect("read"), SEED);
        assert!(file.undo().expect("undo"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), SEED, "the hand-written file, comments and all");
        assert!(!file.undo().expect("undo"), "taken back once");
    }

    #[test]
    fn writes_are_not_taken_back_over_someone_elses() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("world.yaml");
        std::fs::write(&path, SEED).expect("written");
        let world = edgeplan_sim::load(SEED).expect("loads");
        let ours = WorldFile::new(&path, SEED.to_string(), world.clone());
        let theirs = WorldFile::new(&path, SEED.to_string(), world);
        // Someone wrote after our last write: undoing would lose their write.
        tick(&ours);
        tick(&theirs);
        assert!(!ours.undo().expect("undo"));
        // Someone wrote between two of ours: ours cannot be taken back alone either.
        let ours = WorldFile::new(&path, SEED.to_string(), edgeplan_sim::load(SEED).expect("loads"));
        tick(&ours);
        tick(&theirs);
        tick(&ours);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!ours.undo().expect("undo"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }

    #[cfg(unix)]
    #[test]
    fn a_rewrite_keeps_the_mode_and_goes_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("world.yaml");
        std::fs::write(&path, SEED).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let file = WorldFile::new(&link, SEED.to_string(), edgeplan_sim::load(SEED).expect("loads"));
        tick(&file);
        assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink());
        assert_ne!(std::fs::read_to_string(&path).expect("read"), SEED, "written through the link");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o640);
        assert!(file.undo().expect("undo"));
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o640);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
