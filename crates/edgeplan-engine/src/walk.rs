//! The walker: starts every node whose predecessors succeeded, at most `parallelism` at a
//! time, and lets a failure stop only what comes after it.
//!
//! Creates and updates follow dependencies; deletes go against them (a dependent is deleted
//! before what it depends on, a connection is rejected before its endpoint goes), so one walk
//! carries an apply that also prunes, and a destroy.
//!
//! Everything runs on the caller's task (no `spawn`): node futures borrow the router, the plan
//! and the graph, and are polled together. Every wait sleeps on the backends' clock, so on the
//! simulated world 30 modelled minutes take milliseconds and the report shows the modelled
//! makespan.
//!
//! An upstream node that succeeded may still lack an output someone else fills in later (the
//! LB controller sets the Service's `status.loadBalancer` only once it has built the NLB). A
//! node whose reference names such an output waits for it, as for any other wait
//! ([`WaitKind::UpstreamOutput`]): polled with backoff, reported, bounded by `--timeout`.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use edgeplan_model::attr::Attr;
use edgeplan_model::{
    Action, Address, Clock, Expr, Identity, Node, Observation, Observed, Reference, ResourceGraph, Role, Subject,
    Value, WaitKind,
};
use edgeplan_plan::{Change, Plan, Shown};

use crate::report::{ApplyReport, Event, Outcome, Progress, Status, StepError};
use crate::router::Router;
use crate::wait::{Check, check};

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

/// What to walk: the plan's changes over the graph they were decided on, restricted to `only`.
pub struct Walk<'a> {
    pub graph: &'a ResourceGraph,
    pub plan: &'a Plan,
    /// What the plan was decided from: each node's outputs until the walk produces new ones
    /// (a delete looks its object up by what was observed, its upstream gone or not).
    pub observed: &'a [Observation],
    pub only: Option<&'a BTreeSet<Address>>,
    /// Wait after each node for what its dependents need ready (apply); a destroy has no
    /// dependents left to wait for.
    pub waits: bool,
}

/// Every node's outputs, as last known.
type Outputs = BTreeMap<Address, BTreeMap<Attr, Value>>;

/// What a node hands on: its own outputs, for the nodes that reference them, and fresher
/// outputs of the upstream nodes it had to wait for (so their other dependents need not).
struct Done {
    outputs: BTreeMap<Attr, Value>,
    refreshed: Outputs,
}

type NodeResult = Result<Done, StepError>;
type NodeFuture<'a> = Pin<Box<dyn Future<Output = NodeResult> + 'a>>;

/// Whether a reference can use `value`. An output that is declared but not filled in yet reads
/// as null; an empty string names nothing (a hostname, an ID) either.
fn usable(value: &Value) -> bool {
    !matches!(value, Value::Null) && value.as_str() != Some("")
}

/// The value `reference` names, if it is there yet.
fn output<'o>(outputs: &'o Outputs, reference: &Reference) -> Option<&'o Value> {
    outputs.get(&reference.node).and_then(|o| o.get(&reference.output)).filter(|v| usable(v))
}

/// References whose value `node` sends or looks its object up by (ordering-only ones are
/// neither) and that are not there yet.
fn missing<'n>(node: &'n Node, outputs: &Outputs) -> Vec<&'n Reference> {
    let decl = node.kind.decl();
    node.references()
        .filter(|(attribute, _)| decl.desired_decl(*attribute).is_some_and(|d| d.role != Role::Ordering))
        .map(|(_, reference)| reference)
        .filter(|reference| output(outputs, reference).is_none())
        .collect()
}

struct Ctx<'a> {
    router: &'a Router,
    clock: Arc<dyn Clock>,
    walk: &'a Walk<'a>,
    options: &'a ApplyOptions,
    progress: &'a dyn Progress,
    start: Duration,
    mutations: Cell<usize>,
    stop: Cell<bool>,
}

impl Ctx<'_> {
    fn at(&self) -> Duration {
        self.clock.now().saturating_sub(self.start)
    }

    fn emit(&self, event: Event) {
        self.progress.event(self.at(), event);
    }

    /// Observe `node` with its references resolved from what this apply produced.
    async fn observe(&self, node: &Node, outputs: &Outputs) -> Result<Observed, StepError> {
        let decl = node.kind.decl();
        let attributes: BTreeMap<Attr, Value> = node
            .desired
            .iter()
            .filter(|(attribute, _)| decl.desired_decl(**attribute).is_some_and(|d| d.role != Role::Ordering))
            .filter_map(|(attribute, expr)| match expr {
                Expr::Lit(value) => Some((*attribute, value.clone())),
                Expr::Ref(reference) => output(outputs, reference).map(|v| (*attribute, v.clone())),
            })
            .collect();
        let observation = self.router.observe_resolved(vec![(node, attributes)]).await;
        match observation.into_iter().next().map(|o| o.result) {
            Some(Ok(observed)) => Ok(observed),
            Some(Err(error)) => Err(StepError::Observe { message: error.to_string() }),
            None => Err(StepError::Observe { message: format!("nothing was observed for {}", node.address) }),
        }
    }

    /// Exponential backoff with deterministic "equal jitter": half the interval fixed, half
    /// spread by a hash of the node and attempt, so runs are reproducible yet polls of many
    /// nodes do not line up.
    fn pause(&self, address: &Address, attempt: u32) -> Duration {
        let grown = self.options.first_interval.saturating_mul(2u32.saturating_pow(attempt.min(16)));
        let interval = grown.min(self.options.max_interval).max(Duration::from_millis(10));
        let spread = edgeplan_model::short_sha256(format!("{address}/{attempt}").as_bytes());
        let fraction = u64::from_str_radix(spread.get(7..11).unwrap_or("8000"), 16).unwrap_or(0x8000);
        let half = interval / 2;
        half + half.mul_f64(fraction as f64 / f64::from(u16::MAX))
    }

    async fn sleep(&self, duration: Duration) {
        self.clock.sleep(duration).await;
    }
}

/// The two halves of a change. A replacement is both, as two operations: a backend never
/// replaces, it creates and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Delete the object (a prune, a destroy, or the old half of a replacement). A replaced
    /// object a controller made (the NLB) is not deleted by edgeplan: this waits until the
    /// controller has deleted it.
    Destroy,
    /// Create, update, read or wait: everything else.
    Apply,
}

type Step<'a> = (&'a Address, Phase);

/// The steps of one change, in the order a replacement runs them: the old object goes first
/// (its name, CIDR or endpoint service is then free), dependents' old objects before it.
fn phases(action: Action) -> &'static [Phase] {
    match action {
        Action::Delete => &[Phase::Destroy],
        Action::Replace => &[Phase::Destroy, Phase::Apply],
        _ => &[Phase::Apply],
    }
}

/// What the step does: the change as one backend operation. The new half of a replaced
/// controller-made object is read (and waited for), as it was made.
fn step_change(node: &Node, change: &Change, phase: Phase) -> Change {
    let action = match (change.action, phase) {
        (_, Phase::Destroy) => Action::Delete,
        (Action::Replace, Phase::Apply) if node.identity == Identity::ReadOnly => Action::Read,
        (Action::Replace, Phase::Apply) => Action::Create,
        (action, Phase::Apply) => action,
    };
    Change { action, ..change.clone() }
}

/// What must succeed before a step starts.
///
/// - An apply step waits for the apply steps of what the node depends on, and for the node's
///   own destroy step when it is replaced.
/// - A destroy step waits for the destroy steps of everything that depends on it, dependents
///   first. A controller-made object (read-only) is the exception: it goes *after* the object
///   it is made from (the NLB after its Service), and whatever depends on it goes before that
///   object (the endpoint service before the Service: the controller cannot delete an NLB an
///   endpoint service uses). Anything further up waits until it is gone (the subnet until the
///   NLB's interfaces have left it).
fn predecessors<'a>(
    graph: &'a ResourceGraph,
    address: &'a Address,
    phase: Phase,
    actions: &BTreeMap<&'a Address, Action>,
) -> Vec<Step<'a>> {
    let destroys = |a: &Address| actions.get(a).is_some_and(|action| phases(*action).contains(&Phase::Destroy));
    let applies = |a: &Address| actions.get(a).is_some_and(|action| phases(*action).contains(&Phase::Apply));
    let read_only = |a: &Address| graph.node(a).is_some_and(|n| n.identity == Identity::ReadOnly);
    let dependents = |a: &Address| graph.dependents(a).unwrap_or_default();
    let dependencies = |a: &Address| graph.dependencies(a).unwrap_or_default();
    let mut before: Vec<Step<'a>> = Vec::new();
    match phase {
        Phase::Apply => {
            before.extend(dependencies(address).into_iter().filter(|d| applies(d)).map(|d| (d, Phase::Apply)));
            if destroys(address) {
                before.push((address, Phase::Destroy));
            }
        }
        Phase::Destroy => {
            if read_only(address) {
                before.extend(dependencies(address).into_iter().filter(|d| destroys(d)).map(|d| (d, Phase::Destroy)));
            }
            // Dependents first, looking through the controller-made objects this one owns.
            let mut queue: Vec<&'a Address> = dependents(address);
            let mut seen: BTreeSet<&Address> = BTreeSet::new();
            while let Some(dependent) = queue.pop() {
                if !seen.insert(dependent) || !destroys(dependent) {
                    continue;
                }
                let owned = read_only(dependent) && dependencies(dependent).contains(&address);
                if owned {
                    queue.extend(dependents(dependent));
                } else {
                    before.push((dependent, Phase::Destroy));
                }
            }
            // Controller-made objects further down must be gone first.
            let mut queue: Vec<&'a Address> = dependents(address);
            let mut seen: BTreeSet<&Address> = BTreeSet::new();
            while let Some(next) = queue.pop() {
                if !seen.insert(next) {
                    continue;
                }
                queue.extend(dependents(next));
                let direct = dependencies(next).contains(&address);
                if read_only(next) && destroys(next) && !direct {
                    before.push((next, Phase::Destroy));
                }
            }
        }
    }
    before.sort();
    before.dedup();
    before
}

/// Walk the plan: execute what it decided, wait for what must be ready, and report.
pub async fn apply(router: &Router, walk: &Walk<'_>, options: &ApplyOptions, progress: &dyn Progress) -> ApplyReport {
    let clock = router.clock();
    let ctx = Ctx {
        router,
        start: clock.now(),
        clock,
        walk,
        options,
        progress,
        mutations: Cell::new(0),
        stop: Cell::new(false),
    };
    let changes: Vec<&Change> =
        walk.plan.changes.iter().filter(|c| walk.only.is_none_or(|only| only.contains(&c.address))).collect();
    let actions: BTreeMap<&Address, Action> = changes.iter().map(|c| (&c.address, c.action)).collect();
    let by_address: BTreeMap<&Address, &Change> = changes.iter().map(|c| (&c.address, *c)).collect();
    let steps: Vec<Step<'_>> =
        changes.iter().flat_map(|c| phases(c.action).iter().map(move |phase| (&c.address, *phase))).collect();
    let before: BTreeMap<Step<'_>, Vec<Step<'_>>> =
        steps.iter().map(|step| (*step, predecessors(walk.graph, step.0, step.1, &actions))).collect();
    let priority = heights(&steps, &before);

    let mut status: BTreeMap<Step<'_>, Status> = BTreeMap::new();
    // What the plan was decided from: a destroy step looks its object up by these (the old
    // subnet's ID, the old endpoint's), whatever the walk has replaced since.
    let observed: Outputs = walk
        .observed
        .iter()
        .filter_map(|o| Some((o.address.clone(), o.result.as_ref().ok()?.live()?.attributes.clone())))
        .collect();
    let mut outputs = observed.clone();
    let mut running: Vec<(Step<'_>, NodeFuture<'_>)> = Vec::new();
    let mut started_at: BTreeMap<Step<'_>, Duration> = BTreeMap::new();
    let mut interrupted = false;
    loop {
        if !interrupted {
            let mut ready: Vec<Step<'_>> = steps
                .iter()
                .copied()
                .filter(|step| !status.contains_key(step) && !running.iter().any(|(s, _)| s == step))
                .filter(|step| before[step].iter().all(|d| matches!(status.get(d), Some(Status::Succeeded { .. }))))
                .collect();
            // Longest remaining chain first: at a low parallelism the critical path still starts early.
            ready.sort_by_key(|step| std::cmp::Reverse(priority.get(step).copied().unwrap_or(0)));
            for step in ready {
                if running.len() >= options.parallelism.max(1) {
                    break;
                }
                let Some(node) = walk.graph.node(step.0) else { continue };
                let change = step_change(node, by_address[step.0], step.1);
                ctx.emit(Event::Started { address: step.0.clone(), action: change.action });
                started_at.insert(step, ctx.at());
                let future: NodeFuture<'_> = match step.1 {
                    Phase::Destroy if node.identity == Identity::ReadOnly => {
                        Box::pin(wait_gone(&ctx, node, observed.clone()))
                    }
                    Phase::Destroy => Box::pin(run_node(&ctx, node, change, observed.clone())),
                    Phase::Apply => Box::pin(run_node(&ctx, node, change, outputs.clone())),
                };
                running.push((step, future));
            }
        }
        if running.is_empty() {
            break;
        }
        let Some((step, result)) = next_finished(&mut running, &ctx.stop).await else {
            interrupted = true;
            break;
        };
        let action = match walk.graph.node(step.0) {
            Some(node) => step_change(node, by_address[step.0], step.1).action,
            None => by_address[step.0].action,
        };
        match result {
            Ok(done) => {
                let finished = ctx.at();
                let started = started_at.get(&step).copied().unwrap_or_default();
                outputs.extend(done.refreshed);
                if step.1 == Phase::Apply {
                    outputs.insert(step.0.clone(), done.outputs);
                }
                status.insert(step, Status::Succeeded { started, finished });
                ctx.emit(Event::Succeeded { address: step.0.clone(), action, took: finished.saturating_sub(started) });
            }
            Err(error) => {
                ctx.emit(Event::Failed { address: step.0.clone(), error: error.clone() });
                status.insert(step, Status::Failed { error });
                // Everything after it in this walk is skipped now, pointing at the root cause.
                for later in &steps {
                    if !status.contains_key(later) && comes_after(*later, step, &before) {
                        if later.0 != step.0 {
                            ctx.emit(Event::Skipped { address: later.0.clone(), root: step.0.clone() });
                        }
                        status.insert(*later, Status::Skipped { root: step.0.clone() });
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
            status: combined(phases(c.action).iter().map(|phase| status.remove(&(&c.address, *phase)))),
        })
        .collect();
    ApplyReport { outcomes, makespan, mutations: ctx.mutations.get(), interrupted }
}

/// One change's status from its steps': a failure or skip of either step is the change's; it
/// succeeded when every step did, from the first one's start to the last one's end.
fn combined(statuses: impl Iterator<Item = Option<Status>>) -> Status {
    let mut span: Option<(Duration, Duration)> = None;
    for status in statuses {
        match status {
            Some(Status::Succeeded { started, finished }) => {
                span = Some(span.map_or((started, finished), |(first, _)| (first, finished)));
            }
            Some(other) => return other,
            None => return Status::NotRun,
        }
    }
    span.map_or(Status::NotRun, |(started, finished)| Status::Succeeded { started, finished })
}

/// Poll every running step's future; return the first that finishes. `None` once the fault
/// hook asked to stop (the remaining futures are dropped mid-flight, like a killed process).
async fn next_finished<'a>(
    running: &mut Vec<(Step<'a>, NodeFuture<'a>)>,
    stop: &Cell<bool>,
) -> Option<(Step<'a>, NodeResult)> {
    std::future::poll_fn(|cx| {
        for index in 0..running.len() {
            if stop.get() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(result) = running[index].1.as_mut().poll(cx) {
                let (step, _) = running.swap_remove(index);
                return Poll::Ready(Some((step, result)));
            }
        }
        if stop.get() { Poll::Ready(None) } else { Poll::Pending }
    })
    .await
}

fn comes_after<'a>(step: Step<'a>, root: Step<'a>, before: &BTreeMap<Step<'a>, Vec<Step<'a>>>) -> bool {
    let mut stack: Vec<Step<'a>> = before.get(&step).cloned().unwrap_or_default();
    let mut seen = BTreeSet::new();
    while let Some(next) = stack.pop() {
        if next == root {
            return true;
        }
        if seen.insert(next) {
            stack.extend(before.get(&next).into_iter().flatten().copied());
        }
    }
    false
}

/// Longest chain of steps that wait on each step (itself included).
fn heights<'a>(steps: &[Step<'a>], before: &BTreeMap<Step<'a>, Vec<Step<'a>>>) -> BTreeMap<Step<'a>, usize> {
    let mut height: BTreeMap<Step<'a>, usize> = BTreeMap::new();
    // Iterate until stable so any order is right. Each pass is linear; graphs are shallow.
    for _ in 0..steps.len().max(1) {
        let mut changed = false;
        for step in steps.iter().rev() {
            let own = height.get(step).copied().unwrap_or(1).max(1);
            for predecessor in &before[step] {
                let entry = height.entry(*predecessor).or_insert(1);
                if *entry < own + 1 {
                    *entry = own + 1;
                    changed = true;
                }
            }
            height.entry(*step).or_insert(1);
        }
        if !changed {
            break;
        }
    }
    height
}

/// The operation's attributes: literals as written (secrets already read when the stack was
/// loaded), references from the upstream node's actual outputs. A value the plan showed must
/// still be that value.
fn resolve(node: &Node, change: &Change, outputs: &Outputs) -> Result<BTreeMap<Attr, Value>, StepError> {
    let mut attributes = BTreeMap::new();
    // Only a mutation sends attributes anywhere.
    if !change.action.mutates() {
        return Ok(attributes);
    }
    // A delete acts on the object as observed: its references are what was observed when the
    // plan was made (upstream nodes may be gone or replaced since), never a placeholder.
    let references = change.action != Action::Delete;
    let decl = node.kind.decl();
    for (field, expr) in &node.desired {
        if decl.desired_decl(*field).is_some_and(|d| d.role == Role::Ordering) {
            continue;
        }
        let value = match expr {
            Expr::Lit(Value::SecretRef(reference)) if references => {
                // The plan refuses unread secrets; never hand a placeholder to a backend.
                return Err(StepError::Unresolved {
                    field: field.to_string(),
                    message: format!("the secret `{reference}` was not read"),
                });
            }
            Expr::Lit(value) => value.clone(),
            // A delete is given the object as observed when the plan was made.
            Expr::Ref(reference) if !references => match output(outputs, reference) {
                Some(value) => value.clone(),
                None => continue,
            },
            Expr::Ref(reference) => {
                // Only reachable if the upstream node is not in the graph: a declared output
                // that is not there yet was waited for first.
                let Some(value) = output(outputs, reference).cloned() else {
                    return Err(StepError::Unresolved {
                        field: field.to_string(),
                        message: format!("{} reported no `{}`", reference.node, reference.output),
                    });
                };
                if let Some(planned) = change.after.get(field.name())
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
        attributes.insert(*field, value);
    }
    // Parameters the plan decided beyond the spec (which policy version to delete) are
    // executed as recorded.
    for (field, shown) in &change.after {
        if let (Some(attr), Shown::Known(value)) = (Attr::parse(field), shown)
            && !attributes.contains_key(&attr)
        {
            attributes.insert(attr, value.clone());
        }
    }
    Ok(attributes)
}

/// A replaced object its controller made (the NLB, once its Service is deleted): wait until
/// the controller has deleted it, looking it up as it was when the plan was made.
async fn wait_gone<'a>(ctx: &'a Ctx<'a>, node: &'a Node, observed: Outputs) -> NodeResult {
    wait(ctx, &node.address, node, WaitKind::Gone, &observed).await?;
    Ok(Done { outputs: BTreeMap::new(), refreshed: Outputs::new() })
}

async fn run_node<'a>(ctx: &'a Ctx<'a>, node: &'a Node, change: Change, mut outputs: Outputs) -> NodeResult {
    let change = &change;
    // A delete acts on the object as observed; everything else needs what it references, and
    // an apply also needs it to look the object up and wait for it.
    let mut refreshed = Outputs::new();
    if change.action != Action::Delete && (ctx.walk.waits || change.action.mutates()) {
        refreshed = upstream_outputs(ctx, node, &mut outputs).await?;
    }
    let attributes = resolve(node, change, &outputs)?;
    let mut last: Option<Observed> = None;
    if change.action.mutates() {
        // Re-observe right before mutating: never do what the plan did not show.
        let fresh = ctx.observe(node, &outputs).await?;
        let mutated = |upstream: &Address| ctx.walk.plan.change(upstream).is_some_and(|c| c.action.mutates());
        edgeplan_plan::check_assumptions(node, change, &fresh, mutated)
            .map_err(|moved| StepError::PlanMismatch { moved })?;
        let live = fresh.live().cloned();
        last = Some(execute(ctx, node, change.action, attributes, live).await?);
        ctx.mutations.set(ctx.mutations.get() + 1);
        if ctx.options.stop_after_mutations.is_some_and(|k| ctx.mutations.get() >= k) {
            ctx.stop.set(true);
        }
    }
    // Waits make dependents' preconditions true; a deleted node has none.
    if ctx.walk.waits && change.action != Action::Delete {
        for (kind, subject) in node.kind.decl().waits {
            let target = match subject {
                Subject::Itself => node,
                Subject::Sibling(kind) => match ctx.walk.graph.node(&node.address.sibling(*kind)) {
                    Some(sibling) => sibling,
                    None => continue,
                },
            };
            let observed = wait(ctx, &node.address, target, *kind, &outputs).await?;
            if target.address == node.address {
                last = Some(observed);
            }
        }
    }
    let observed = match last {
        Some(observed) => observed,
        None if change.action == Action::Delete => Observed::Absent,
        // A destroy needs no outputs of what it leaves alone: what was observed stands.
        None if !ctx.walk.waits => {
            return Ok(Done { outputs: outputs.get(&node.address).cloned().unwrap_or_default(), refreshed });
        }
        None => ctx.observe(node, &outputs).await?,
    };
    let own = match observed {
        Observed::Present(live) => live.attributes,
        Observed::Absent => BTreeMap::new(),
    };
    Ok(Done { outputs: own, refreshed })
}

/// Wait until every output `node` references is there: poll each upstream node that lacks one
/// (after refreshing what *it* references), with the same backoff, progress lines and timeout
/// as any other wait. Returns the upstream outputs that were refreshed.
async fn upstream_outputs(ctx: &Ctx<'_>, node: &Node, outputs: &mut Outputs) -> Result<Outputs, StepError> {
    let mut refreshed = Outputs::new();
    if missing(node, outputs).is_empty() {
        return Ok(refreshed);
    }
    let kind = WaitKind::UpstreamOutput;
    let begun = ctx.clock.now();
    let timeout = ctx.options.timeout(kind);
    let mut attempt = 0;
    loop {
        let mut last = None;
        for reference in missing(node, outputs) {
            let Some(upstream) = ctx.walk.graph.node(&reference.node) else {
                return Err(StepError::Unresolved {
                    field: reference.output.to_string(),
                    message: format!("{} is not in the graph", reference.node),
                });
            };
            let observed = refresh(ctx, upstream, outputs, &mut refreshed).await?;
            if output(outputs, reference).is_none() {
                last.get_or_insert_with(|| crate::wait::upstream(&reference.node, reference.output, &observed));
            }
        }
        let Some(what) = last else { return Ok(refreshed) };
        let waited = ctx.clock.now().saturating_sub(begun);
        if waited >= timeout {
            return Err(StepError::Timeout { wait: kind, waited, last: what });
        }
        ctx.emit(Event::Waiting { address: node.address.clone(), wait: kind, waited, observed: what });
        let pause =
            ctx.pause(&node.address, attempt).min(timeout.saturating_sub(waited).max(Duration::from_millis(10)));
        ctx.sleep(pause).await;
        attempt += 1;
    }
}

/// Observe `node` again and record what it outputs now; the upstream nodes that lack an output
/// it needs are observed first, transitively, in dependency order.
async fn refresh(
    ctx: &Ctx<'_>,
    node: &Node,
    outputs: &mut Outputs,
    refreshed: &mut Outputs,
) -> Result<Observed, StepError> {
    let graph = ctx.walk.graph;
    let mut needed: BTreeSet<&Address> = BTreeSet::new();
    let mut queue: Vec<&Node> = vec![node];
    while let Some(next) = queue.pop() {
        if needed.insert(&next.address) {
            queue.extend(missing(next, outputs).into_iter().filter_map(|r| graph.node(&r.node)));
        }
    }
    let order: Vec<&Node> = if needed.len() == 1 {
        vec![node]
    } else {
        graph.topological_order().into_iter().filter(|a| needed.contains(a)).filter_map(|a| graph.node(a)).collect()
    };
    let mut observed = Observed::Absent;
    for next in order {
        observed = ctx.observe(next, outputs).await?;
        if let Observed::Present(live) = &observed {
            outputs.insert(next.address.clone(), live.attributes.clone());
            refreshed.insert(next.address.clone(), live.attributes.clone());
        }
    }
    Ok(observed)
}

async fn execute(
    ctx: &Ctx<'_>,
    node: &Node,
    action: Action,
    attributes: BTreeMap<Attr, Value>,
    live: Option<edgeplan_model::LiveObject>,
) -> Result<Observed, StepError> {
    let first = ctx.clock.now();
    let mut attempt = 0;
    loop {
        match ctx.router.execute(node, action, attributes.clone(), live.clone()).await {
            Ok(observed) => return Ok(observed),
            Err(err) if err.retryable() && ctx.clock.now().saturating_sub(first) < ctx.options.retry_timeout => {
                ctx.sleep(ctx.pause(&node.address, attempt)).await;
                attempt += 1;
            }
            Err(error) => return Err(StepError::Execute { error }),
        }
    }
}

async fn wait(
    ctx: &Ctx<'_>,
    waiter: &Address,
    subject: &Node,
    kind: WaitKind,
    outputs: &Outputs,
) -> Result<Observed, StepError> {
    let begun = ctx.clock.now();
    let timeout = ctx.options.timeout(kind);
    let mut attempt = 0;
    // A sibling subject (the NLB, for target health) may need an output its own upstream has
    // not filled in yet: it is refreshed on every look, never frozen at this node's start.
    let mut outputs = outputs.clone();
    let mut scratch = Outputs::new();
    loop {
        let observed = if subject.address != *waiter && !missing(subject, &outputs).is_empty() {
            refresh(ctx, subject, &mut outputs, &mut scratch).await?
        } else {
            ctx.observe(subject, &outputs).await?
        };
        let waited = ctx.clock.now().saturating_sub(begun);
        match check(kind, &observed) {
            Check::Ready => return Ok(observed),
            Check::Never(what) => return Err(StepError::Never { wait: kind, observed: what }),
            Check::NotYet(what) if waited >= timeout => {
                return Err(StepError::Timeout { wait: kind, waited, last: what });
            }
            Check::NotYet(what) => {
                ctx.emit(Event::Waiting { address: waiter.clone(), wait: kind, waited, observed: what });
            }
        }
        let pause = ctx.pause(waiter, attempt).min(timeout.saturating_sub(waited).max(Duration::from_millis(10)));
        ctx.sleep(pause).await;
        attempt += 1;
    }
}
