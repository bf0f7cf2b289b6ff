//! The walker: starts every node whose dependencies succeeded, at most `parallelism` at a
//! time, and lets a failure stop only its dependents.
//!
//! Everything runs on the caller's task (no `spawn`): node futures borrow the backend, the plan
//! and the graph, and are polled together. On the simulated world the runtime's clock is
//! paused, so every wait is a timer the runtime skips to: an apply with 30 minutes of modelled
//! waits takes milliseconds and still reports the modelled makespan.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use edgeplan_model::backend::Operation;
use edgeplan_model::{Action, Address, Backend, Expr, Node, Observed, ResourceGraph, SecretText, Value};
use edgeplan_plan::{Change, Plan};
use tokio::time::Instant;

use crate::report::{ApplyReport, Event, Outcome, Progress, Status, StepError};
use crate::wait::{Check, Subject, WaitKind, check, waits_after};

/// Which way the walk goes: apply follows dependencies, destroy goes against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// How the executor paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Nodes in flight at once (Terraform's default is 10).
    pub parallelism: usize,
    /// Per-kind wait timeouts; a kind not listed uses [`WaitKind::default_timeout`].
    pub timeouts: BTreeMap<WaitKind, Duration>,
    /// First poll interval; doubled after every poll up to `max_interval`, with jitter.
    pub first_interval: Duration,
    pub max_interval: Duration,
    /// How long a retryable backend error (throttling, a dependency not ready) is retried.
    pub retry_timeout: Duration,
    /// Test-only fault hook: stop the walk right after this many mutations, as if the
    /// process had been killed there.
    pub stop_after_mutations: Option<usize>,
}

impl Default for ApplyOptions {
    fn default() -> ApplyOptions {
        ApplyOptions {
            parallelism: 10,
            timeouts: BTreeMap::new(),
            first_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            retry_timeout: Duration::from_secs(120),
            stop_after_mutations: None,
        }
    }
}

impl ApplyOptions {
    pub fn timeout(&self, kind: WaitKind) -> Duration {
        self.timeouts.get(&kind).copied().unwrap_or_else(|| kind.default_timeout())
    }
}

/// Reads a secret reference (`env:NAME`, `file:path`) when an operation needs its value.
pub trait Secrets {
    fn read(&self, reference: &str) -> Option<SecretText>;
}

/// No secrets available: references are passed on as references.
pub struct NoSecrets;

impl Secrets for NoSecrets {
    fn read(&self, _: &str) -> Option<SecretText> {
        None
    }
}

/// What to walk: the plan's changes, restricted to `only` when given.
pub struct Walk<'a> {
    pub stack: &'a str,
    pub graph: &'a ResourceGraph,
    pub plan: &'a Plan,
    pub direction: Direction,
    pub only: Option<&'a BTreeSet<Address>>,
}

/// A node's result: its outputs, for the nodes that reference them.
type NodeResult = Result<BTreeMap<String, Value>, StepError>;
type NodeFuture<'a> = Pin<Box<dyn Future<Output = NodeResult> + 'a>>;

struct Ctx<'a> {
    backend: &'a dyn Backend,
    walk: &'a Walk<'a>,
    options: &'a ApplyOptions,
    progress: &'a dyn Progress,
    start: Instant,
    mutations: Cell<usize>,
    stop: Cell<bool>,
}

impl Ctx<'_> {
    fn at(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    fn emit(&self, event: Event) {
        self.progress.event(self.at(), event);
    }

    /// Observe `address` together with what it depends on: a backend may find an object
    /// through a referenced node (an association through its subnet).
    async fn observe(&self, address: &Address) -> Result<Observed, StepError> {
        let graph = self.walk.graph;
        let nodes: Vec<&Node> = match graph.closure_with_dependencies([address]) {
            Ok(closure) => graph.iter().filter(|(a, _)| closure.contains(a)).map(|(_, n)| n).collect(),
            Err(_) => return Err(StepError::Observe { message: format!("{address} is not in the graph") }),
        };
        let observations = self.backend.observe(self.walk.stack, &nodes).await;
        match observations.into_iter().find(|o| &o.address == address).map(|o| o.result) {
            Some(Ok(observed)) => Ok(observed),
            Some(Err(err)) => Err(StepError::Observe { message: err.message }),
            None => Err(StepError::Observe { message: format!("the backend returned nothing for {address}") }),
        }
    }

    /// Exponential backoff with deterministic "equal jitter": half the interval fixed, half
    /// spread by a hash of the node and attempt, so runs are reproducible yet polls of many
    /// nodes do not line up.
    fn pause(&self, address: &Address, attempt: u32) -> Duration {
        let grown = self.options.first_interval.saturating_mul(2u32.saturating_pow(attempt.min(16)));
        let interval = grown.min(self.options.max_interval).max(Duration::from_millis(10));
        let spread = edgeplan_model::secret_fingerprint(format!("{address}/{attempt}").as_bytes());
        let fraction = u64::from_str_radix(spread.get(7..11).unwrap_or("8000"), 16).unwrap_or(0x8000);
        let half = interval / 2;
        half + half.mul_f64(fraction as f64 / f64::from(u16::MAX))
    }
}

/// Walk the plan: execute what it decided, wait for what must be ready, and report.
pub async fn apply(
    backend: &dyn Backend,
    walk: &Walk<'_>,
    secrets: &dyn Secrets,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> ApplyReport {
    let ctx = Ctx {
        backend,
        walk,
        options,
        progress,
        start: Instant::now(),
        mutations: Cell::new(0),
        stop: Cell::new(false),
    };
    let changes: Vec<&Change> =
        walk.plan.changes.iter().filter(|c| walk.only.is_none_or(|only| only.contains(&c.address))).collect();
    let in_walk: BTreeSet<&Address> = changes.iter().map(|c| &c.address).collect();
    let before: BTreeMap<&Address, Vec<&Address>> = changes
        .iter()
        .map(|c| {
            let next = match walk.direction {
                Direction::Forward => walk.graph.dependencies(&c.address),
                Direction::Reverse => walk.graph.dependents(&c.address),
            };
            (&c.address, next.unwrap_or_default().into_iter().filter(|a| in_walk.contains(a)).collect())
        })
        .collect();
    let priority = heights(&changes, &before);

    let mut status: BTreeMap<&Address, Status> = BTreeMap::new();
    let mut outputs: BTreeMap<Address, BTreeMap<String, Value>> = BTreeMap::new();
    let mut running: Vec<(&Address, NodeFuture<'_>)> = Vec::new();
    let mut started_at: BTreeMap<&Address, Duration> = BTreeMap::new();
    let mut interrupted = false;
    loop {
        if !interrupted {
            let mut ready: Vec<&Change> = changes
                .iter()
                .copied()
                .filter(|c| !status.contains_key(&c.address) && !running.iter().any(|(a, _)| *a == &c.address))
                .filter(|c| before[&c.address].iter().all(|d| matches!(status.get(d), Some(Status::Succeeded { .. }))))
                .collect();
            // Longest remaining chain first: at a low parallelism the critical path still starts early.
            ready.sort_by_key(|c| std::cmp::Reverse(priority.get(&c.address).copied().unwrap_or(0)));
            for change in ready {
                if running.len() >= options.parallelism.max(1) {
                    break;
                }
                let Some(node) = walk.graph.node(&change.address) else { continue };
                ctx.emit(Event::Started { address: change.address.clone(), action: change.action });
                started_at.insert(&change.address, ctx.at());
                let references = walk.direction == Direction::Forward && change.action != Action::Delete;
                let future: NodeFuture<'_> = match resolve(node, change, &outputs, secrets, references) {
                    Ok(attributes) => Box::pin(run_node(&ctx, node, change, attributes)),
                    Err(error) => Box::pin(std::future::ready(Err(error))),
                };
                running.push((&change.address, future));
            }
        }
        if running.is_empty() {
            break;
        }
        let Some((address, result)) = next_finished(&mut running, &ctx.stop).await else {
            interrupted = true;
            break;
        };
        let change = changes.iter().find(|c| &c.address == address).copied();
        let action = change.map_or(Action::NoOp, |c| c.action);
        match result {
            Ok(node_outputs) => {
                let finished = ctx.at();
                let started = started_at.get(address).copied().unwrap_or_default();
                outputs.insert(address.clone(), node_outputs);
                status.insert(address, Status::Succeeded { started, finished });
                ctx.emit(Event::Succeeded { address: address.clone(), action, took: finished.saturating_sub(started) });
            }
            Err(error) => {
                ctx.emit(Event::Failed { address: address.clone(), error: error.clone() });
                status.insert(address, Status::Failed { error });
                // Everything downstream in this walk is skipped now, pointing at the root cause.
                for change in &changes {
                    if !status.contains_key(&change.address) && depends_on(&change.address, address, &before) {
                        ctx.emit(Event::Skipped { address: change.address.clone(), root: address.clone() });
                        status.insert(&change.address, Status::Skipped { root: address.clone() });
                    }
                }
            }
        }
        if ctx.stop.get() {
            interrupted = true;
            break;
        }
    }
    let makespan = ctx.at();
    let outcomes = changes
        .iter()
        .map(|c| Outcome {
            address: c.address.clone(),
            action: c.action,
            status: status.remove(&c.address).unwrap_or(Status::NotRun),
        })
        .collect();
    ApplyReport { outcomes, makespan, mutations: ctx.mutations.get(), interrupted }
}

/// Poll every running node future; return the first that finishes. `None` once the fault
/// hook asked to stop (the remaining futures are dropped mid-flight, like a killed process).
async fn next_finished<'a>(
    running: &mut Vec<(&'a Address, NodeFuture<'a>)>,
    stop: &Cell<bool>,
) -> Option<(&'a Address, NodeResult)> {
    std::future::poll_fn(|cx| {
        for index in 0..running.len() {
            if stop.get() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(result) = running[index].1.as_mut().poll(cx) {
                let (address, _) = running.swap_remove(index);
                return Poll::Ready(Some((address, result)));
            }
        }
        if stop.get() { Poll::Ready(None) } else { Poll::Pending }
    })
    .await
}

fn depends_on(node: &Address, root: &Address, before: &BTreeMap<&Address, Vec<&Address>>) -> bool {
    let mut stack: Vec<&Address> = before.get(node).cloned().unwrap_or_default();
    let mut seen = BTreeSet::new();
    while let Some(next) = stack.pop() {
        if next == root {
            return true;
        }
        if seen.insert(next) {
            stack.extend(before.get(next).into_iter().flatten().copied());
        }
    }
    false
}

/// Longest chain of nodes that wait on each node (itself included).
fn heights<'a>(
    changes: &[&'a Change],
    before: &BTreeMap<&'a Address, Vec<&'a Address>>,
) -> BTreeMap<&'a Address, usize> {
    let mut height: BTreeMap<&Address, usize> = BTreeMap::new();
    // `changes` is in dependency order for the forward walk; iterate until stable so the
    // reverse walk (and any order) is right too. Each pass is linear; graphs are shallow.
    for _ in 0..changes.len().max(1) {
        let mut changed = false;
        for change in changes.iter().rev() {
            let own = height.get(&change.address).copied().unwrap_or(1).max(1);
            for dependency in &before[&change.address] {
                let entry = height.entry(dependency).or_insert(1);
                if *entry < own + 1 {
                    *entry = own + 1;
                    changed = true;
                }
            }
            height.entry(&change.address).or_insert(1);
        }
        if !changed {
            break;
        }
    }
    height
}

/// The operation's attributes: literals as written, references from the upstream node's
/// actual outputs, secrets read now. A value the plan showed must still be that value.
fn resolve(
    node: &Node,
    change: &Change,
    outputs: &BTreeMap<Address, BTreeMap<String, Value>>,
    secrets: &dyn Secrets,
    references: bool,
) -> Result<BTreeMap<String, Value>, StepError> {
    let mut attributes = BTreeMap::new();
    for (field, expr) in &node.desired {
        // A delete addresses the object as observed (its live attributes are added before it
        // runs), and a reverse walk produces no upstream outputs: references are skipped.
        if !references && matches!(expr, Expr::Ref(_)) {
            continue;
        }
        let value = match expr {
            Expr::Lit(Value::SecretRef(reference)) => {
                secrets.read(reference).map_or_else(|| Value::SecretRef(reference.clone()), Value::Secret)
            }
            Expr::Lit(value) => value.clone(),
            Expr::Ref(reference) => {
                let found = outputs.get(&reference.node).and_then(|o| o.get(reference.output)).cloned();
                let Some(value) = found else {
                    return Err(StepError::Unresolved {
                        field: field.to_string(),
                        message: format!("{} reported no `{}`", reference.node, reference.output),
                    });
                };
                if let Some(planned) = change.after.get(*field)
                    && !edgeplan_plan::matches_planned(planned, &value)
                {
                    return Err(StepError::PlanMismatch {
                        moved: vec![edgeplan_plan::Moved {
                            field: field.to_string(),
                            planned: planned.to_string(),
                            now: value.to_string(),
                        }],
                    });
                }
                value
            }
        };
        attributes.insert(field.to_string(), value);
    }
    // Parameters the plan decided beyond the spec (which policy version to delete) are
    // executed as recorded.
    for (field, shown) in &change.after {
        if let (false, edgeplan_plan::Shown::Known(value)) = (attributes.contains_key(field), shown) {
            attributes.insert(field.clone(), value.clone());
        }
    }
    Ok(attributes)
}

async fn run_node<'a>(
    ctx: &'a Ctx<'a>,
    node: &'a Node,
    change: &'a Change,
    mut attributes: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, StepError> {
    let mut last: Option<Observed> = None;
    if change.action.mutates() {
        // Re-observe right before mutating: never do what the plan did not show.
        let fresh = ctx.observe(&node.address).await?;
        let mutated = |upstream: &Address| ctx.walk.plan.change(upstream).is_some_and(|c| c.action.mutates());
        edgeplan_plan::check_assumptions(node, change, &fresh, mutated)
            .map_err(|moved| StepError::PlanMismatch { moved })?;
        if change.action == Action::Delete
            && let Observed::Present(live) = &fresh
        {
            // A delete addresses the object as it is now.
            for (key, value) in &live.attributes {
                attributes.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        last = Some(execute(ctx, node, change.action, attributes).await?);
        ctx.mutations.set(ctx.mutations.get() + 1);
        if ctx.options.stop_after_mutations.is_some_and(|k| ctx.mutations.get() >= k) {
            ctx.stop.set(true);
        }
    }
    // Waits make dependents' preconditions true; a destroy has no such dependents.
    if ctx.walk.direction == Direction::Forward && change.action != Action::Delete {
        for (kind, subject) in waits_after(node.kind) {
            let address = match subject {
                Subject::Itself => node.address.clone(),
                Subject::ScopeNode(kind) => match sibling(ctx.walk.graph, &node.address, *kind) {
                    Some(address) => address,
                    None => continue,
                },
            };
            let observed = wait(ctx, &node.address, &address, *kind).await?;
            if address == node.address {
                last = Some(observed);
            }
        }
    }
    let observed = match last {
        Some(observed) => observed,
        None if change.action == Action::Delete => Observed::Absent,
        None => ctx.observe(&node.address).await?,
    };
    Ok(match observed {
        Observed::Present(live) => live.outputs,
        Observed::Absent => BTreeMap::new(),
    })
}

/// The node of `kind` next to `address` (same `provider.` / `consumer.NAME.` prefix).
fn sibling(graph: &ResourceGraph, address: &Address, kind: edgeplan_model::NodeKind) -> Option<Address> {
    let prefix = address.as_str().rsplit_once('.').map_or("", |(p, _)| p);
    graph
        .iter()
        .find(|(a, n)| n.kind == kind && a.as_str().rsplit_once('.').is_some_and(|(p, _)| p == prefix))
        .map(|(a, _)| a.clone())
}

async fn execute(
    ctx: &Ctx<'_>,
    node: &Node,
    action: Action,
    attributes: BTreeMap<String, Value>,
) -> Result<Observed, StepError> {
    // Same stack, node, action and attributes → same token: a retried or resumed create finds
    // the object the first attempt made instead of making a second one.
    let token_source = format!("{}/{}/{action}/{attributes:?}", ctx.walk.stack, node.address);
    let client_token = format!("edgeplan-{}", &edgeplan_model::secret_fingerprint(token_source.as_bytes())[7..]);
    let operation = Operation { node: node.clone(), action, attributes, client_token };
    let first = Instant::now();
    let mut attempt = 0;
    loop {
        match ctx.backend.execute(ctx.walk.stack, &operation).await {
            Ok(observed) => return Ok(observed),
            Err(err) if err.retryable && first.elapsed() < ctx.options.retry_timeout => {
                tokio::time::sleep(ctx.pause(&node.address, attempt)).await;
                attempt += 1;
            }
            Err(err) => return Err(StepError::Execute { message: err.message }),
        }
    }
}

async fn wait(ctx: &Ctx<'_>, node: &Address, subject: &Address, kind: WaitKind) -> Result<Observed, StepError> {
    let begun = Instant::now();
    let timeout = ctx.options.timeout(kind);
    let mut attempt = 0;
    loop {
        let observed = ctx.observe(subject).await?;
        let waited = begun.elapsed();
        match check(kind, &observed) {
            Check::Ready => return Ok(observed),
            Check::Never(what) => return Err(StepError::Never { wait: kind, observed: what }),
            Check::NotYet(what) if waited >= timeout => {
                return Err(StepError::Timeout { wait: kind, waited, last: what });
            }
            Check::NotYet(what) => {
                ctx.emit(Event::Waiting { address: node.clone(), wait: kind, waited, observed: what });
            }
        }
        let pause = ctx.pause(node, attempt).min(timeout.saturating_sub(waited).max(Duration::from_millis(10)));
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}
