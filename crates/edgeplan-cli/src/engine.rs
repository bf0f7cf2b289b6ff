//! What every command that touches live state shares: the stack (a lint-clean spec compiled
//! to its resource graph, with referenced documents and secrets read), the backend (today the
//! simulated world file), observing, and the async runtime.

use std::path::{Path, PathBuf};

use edgeplan_diag::SourceFile;
use edgeplan_model::backend::{BoxFuture, ExecuteError, Operation};
use edgeplan_model::{Backend, Expr, Node, NodeKind, Observation, Observed, ResourceGraph, SecretText, Value};
use edgeplan_spec::Spec;

use crate::exit;

/// A spec ready to plan: parsed, lint-clean, compiled, documents inlined.
pub(crate) struct Stack {
    pub(crate) source: SourceFile,
    pub(crate) spec: Spec,
    pub(crate) graph: ResourceGraph,
    /// The spec's directory: relative paths in the spec resolve against it.
    pub(crate) base_dir: PathBuf,
}

impl Stack {
    pub(crate) fn name(&self) -> &str {
        &self.spec.metadata.name.value
    }

    /// Nodes in dependency order.
    pub(crate) fn nodes(&self) -> Vec<&Node> {
        self.graph.iter().map(|(_, node)| node).collect()
    }

    pub(crate) fn edges(&self) -> Vec<(edgeplan_model::Address, edgeplan_model::Address)> {
        self.graph.edges().map(|(from, to, _)| (from.clone(), to.clone())).collect()
    }
}

/// Read, lint and compile the spec at `path`.
pub(crate) fn load_stack(path: &Path) -> Result<Stack, u8> {
    let (source, spec) = crate::spec_input::load_clean_spec(path)?;
    compile_stack(source, spec, path.parent().unwrap_or(Path::new(".")))
}

/// Compile a spec given as text (a saved plan carries its spec).
pub(crate) fn load_stack_text(display: &str, text: &str, base_dir: &Path) -> Result<Stack, u8> {
    let (source, spec) = crate::spec_input::load_clean_text(display, text.as_bytes(), base_dir)?;
    compile_stack(source, spec, base_dir)
}

fn compile_stack(source: SourceFile, spec: Spec, base_dir: &Path) -> Result<Stack, u8> {
    let mut nodes = edgeplan_model::compile(&spec);
    inline_policy_documents(&mut nodes, base_dir)?;
    read_secrets(&mut nodes, &FsSecrets { base_dir: base_dir.to_path_buf() });
    let graph = edgeplan_model::resource_graph(nodes).map_err(|err| {
        eprintln!("error[edgeplan::graph]: {err}");
        eprintln!("  help: this is a bug in edgeplan's compiler; please report it with the spec");
        exit::FINDINGS
    })?;
    Ok(Stack { source, spec, graph, base_dir: base_dir.to_path_buf() })
}

/// The spec names the controller policy by path; the plan compares its content.
fn inline_policy_documents(nodes: &mut [Node], base_dir: &Path) -> Result<(), u8> {
    for node in nodes.iter_mut().filter(|n| n.kind == NodeKind::LbControllerPolicy) {
        let Some(Expr::Lit(Value::Str(path))) = node.desired.get("policy_document").cloned() else { continue };
        let text = std::fs::read_to_string(base_dir.join(&path)).map_err(|err| {
            eprintln!("error[edgeplan::cannot-read]: cannot read policy document {path}: {err}");
            eprintln!("  help: the path is relative to the spec's directory");
            exit::CANNOT_RUN
        })?;
        node.desired.insert("policy_document", Expr::lit(text));
    }
    Ok(())
}

/// Secrets given by reference are read now when available, so the plan compares their
/// fingerprints with live ones (an AGENT_SECRET that drifted shows as a change) and apply
/// hands the value to the backend. One that is not available stays a reference: the plan
/// cannot compare it, and a backend that needs it says so.
fn read_secrets(nodes: &mut [Node], secrets: &FsSecrets) {
    use edgeplan_apply::Secrets as _;
    for node in nodes {
        for expr in node.desired.values_mut() {
            if let Expr::Lit(Value::SecretRef(reference)) = expr
                && let Some(secret) = secrets.read(reference)
            {
                *expr = Expr::Lit(Value::Secret(secret));
            }
        }
    }
}

/// `env:NAME` from the environment, `file:PATH` relative to the spec (one trailing newline
/// dropped, as `echo … > file` adds one). Values never reach argv, logs or output.
pub(crate) struct FsSecrets {
    pub(crate) base_dir: PathBuf,
}

impl edgeplan_apply::Secrets for FsSecrets {
    fn read(&self, reference: &str) -> Option<SecretText> {
        let text = if let Some(name) = reference.strip_prefix("env:") {
            std::env::var(name).ok()?
        } else if let Some(path) = reference.strip_prefix("file:") {
            std::fs::read_to_string(self.base_dir.join(path)).ok()?
        } else {
            return None;
        };
        let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        (!text.is_empty()).then(|| SecretText::new(text))
    }
}

/// The simulated world in its file. Every mutation is written back at once, as a cloud keeps
/// what was done: a killed apply leaves the world as far as it got.
pub(crate) struct WorldFile {
    pub(crate) sim: edgeplan_sim::SimBackend,
    pub(crate) path: PathBuf,
    /// The lease this process holds (provider context, lease name, holder): renewed on every
    /// write, as a Kubernetes client renews its Lease while it works.
    pub(crate) held: std::sync::Mutex<Option<(String, String, String)>>,
}

impl WorldFile {
    pub(crate) fn save(&self) -> Result<(), u8> {
        let _guard = self.file_lock()?;
        self.renew();
        self.write_unlocked(&self.sim.save())
    }

    /// Write `text` as the world (the caller holds [`WorldFile::file_lock`]). Write then
    /// rename: a reader never sees half a world.
    pub(crate) fn write_unlocked(&self, text: &str) -> Result<(), u8> {
        let tmp = self.path.with_extension("yaml.tmp");
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path)).map_err(|err| {
            eprintln!("error[edgeplan::cannot-write]: cannot write world {}: {err}", self.path.display());
            exit::CANNOT_RUN
        })
    }

    /// Serializes read-check-write of the world file between edgeplan processes (the API
    /// server's job for a real cluster).
    pub(crate) fn file_lock(&self) -> Result<std::fs::File, u8> {
        lock_world_file(&self.path)
    }

    fn renew(&self) {
        let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((context, name, holder)) = held {
            let now = unix_now();
            self.sim.with_world(|world| {
                let lease = world
                    .kubernetes
                    .iter_mut()
                    .filter(|c| c.context == context)
                    .flat_map(|c| c.leases.iter_mut())
                    .find(|l| l.name == name && l.holder_identity == holder);
                if let Some(lease) = lease {
                    lease.renew_time = now;
                }
            });
        }
    }
}

/// An exclusive advisory lock on `<world>.lock`, held until the returned file is dropped.
pub(crate) fn lock_world_file(path: &Path) -> Result<std::fs::File, u8> {
    let lock_path = path.with_extension("yaml.lock");
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|err| {
            eprintln!("error[edgeplan::cannot-write]: cannot open {}: {err}", lock_path.display());
            exit::CANNOT_RUN
        })?;
    file.lock().map_err(|err| {
        eprintln!("error[edgeplan::cannot-write]: cannot lock {}: {err}", lock_path.display());
        exit::CANNOT_RUN
    })?;
    Ok(file)
}

/// Wall-clock Unix seconds (lease times).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Backend for WorldFile {
    fn observe<'a>(&'a self, stack: &'a str, nodes: &'a [&'a Node]) -> BoxFuture<'a, Vec<Observation>> {
        self.sim.observe(stack, nodes)
    }

    fn execute<'a>(
        &'a self,
        stack: &'a str,
        operation: &'a Operation,
    ) -> BoxFuture<'a, Result<Observed, ExecuteError>> {
        Box::pin(async move {
            let result = self.sim.execute(stack, operation).await;
            if self.save().is_err() {
                return Err(ExecuteError { message: "the world file could not be written".into(), retryable: false });
            }
            result
        })
    }

    fn http_get<'a>(
        &'a self,
        scope: &'a edgeplan_model::Scope,
        path: &'a str,
    ) -> BoxFuture<'a, Result<edgeplan_model::backend::HttpResponse, edgeplan_model::backend::ObserveError>> {
        self.sim.http_get(scope, path)
    }
}

/// Open the world file the spec runs against, refusing one made for another spec.
pub(crate) fn open_world(world: Option<&Path>, spec: &Spec) -> Result<WorldFile, u8> {
    let Some(path) = world else {
        eprintln!("error[edgeplan::no-backend]: no backend to observe live state");
        eprintln!("  help: pass --world FILE to use a simulated world, e.g. testdata/worlds/seed.yaml");
        return Err(exit::CANNOT_RUN);
    };
    let text = std::fs::read_to_string(path).map_err(|err| {
        eprintln!("error[edgeplan::cannot-read]: cannot read world {}: {err}", path.display());
        exit::CANNOT_RUN
    })?;
    let sim = edgeplan_sim::SimBackend::load(&text).map_err(|err| {
        eprintln!("error[edgeplan::world]: {}: {err}", path.display());
        eprintln!("  help: world files are written by edgeplan; start from testdata/worlds/seed.yaml");
        exit::CANNOT_RUN
    })?;
    let missing = world_mismatch(&sim.snapshot(), spec);
    if !missing.is_empty() {
        eprintln!(
            "error[edgeplan::world]: {} does not describe this spec: no {}",
            path.display(),
            missing.join(", no ")
        );
        eprintln!("  help: use the world made for this spec (testdata/worlds/<name>.yaml), or add what is missing");
        return Err(exit::CANNOT_RUN);
    }
    Ok(WorldFile { sim, path: path.to_path_buf(), held: std::sync::Mutex::new(None) })
}

/// What the spec's provider and consumers need that the world lacks: a world made for another
/// spec is refused up front instead of producing a plan that creates everything.
fn world_mismatch(world: &edgeplan_sim::World, spec: &Spec) -> Vec<String> {
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
        let found = world.aws.iter().any(|a| a.account == account && a.regions.iter().any(|r| r.region == region));
        let entry = format!("AWS account {account} in {region}");
        if !found && !missing.contains(&entry) {
            missing.push(entry);
        }
    }
    for context in contexts {
        let entry = format!("kube context `{context}`");
        if !world.kubernetes.iter().any(|c| c.context == context) && !missing.contains(&entry) {
            missing.push(entry);
        }
    }
    if !world.portainer.iter().any(|p| p.url == provider.portainer.url.value) {
        missing.push(format!("Portainer at {}", provider.portainer.url.value));
    }
    missing
}

/// One current-thread runtime per command. On the simulated world its clock is paused, so
/// modelled waits (an NLB's 3 minutes) pass instantly and the world's clock follows it.
pub(crate) fn runtime(world: &WorldFile) -> Result<tokio::runtime::Runtime, u8> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().map_err(|err| {
            eprintln!("error[edgeplan::runtime]: {err}");
            exit::CANNOT_RUN
        })?;
    runtime.block_on(async { world.sim.follow_runtime_clock() });
    Ok(runtime)
}
