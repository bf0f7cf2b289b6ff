//! One engine session: a stack, the backends its scopes route to, and the operations every
//! command performs the same way: plan (with ownership discovery), apply under the stack lock
//! (renewed on a timer), destroy, verify. The CLI, xtask and the tests all go through this.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use edgeplan_model::{
    Address, Backend, BackendError, Clock, Connector, Node, NodeKind, Observation, ResourceGraph, Scope,
};
use edgeplan_plan::{NodeDiagnostic, Plan};

use crate::discovery::{discover, execution_graph, list_everywhere, scope_address};
use crate::lock::{HeldLock, LockError, read_inventory, write_inventory};
use crate::report::{ApplyReport, Progress};
use crate::router::Router;
use crate::stack::Stack;
use crate::verify::{VerifyReport, environment_id, kubernetes_probe_path};
use crate::walk::{ApplyOptions, Walk};

pub struct Session {
    pub stack: Stack,
    pub router: Router,
}

/// A plan and everything it was decided on.
pub struct Planned {
    /// What apply walks: the spec's nodes and the orphans the plan deletes.
    pub graph: ResourceGraph,
    pub plan: Plan,
    /// Every node's observation, orphans included.
    pub observations: Vec<Observation>,
    /// The scopes searched: the spec's and the inventory's.
    pub scopes: Vec<Scope>,
    /// Scopes that could not be searched for what the stack owns.
    pub unreachable: Vec<(Scope, BackendError)>,
}

impl Planned {
    pub fn nodes(&self) -> Vec<&Node> {
        self.graph.iter().map(|(_, n)| n).collect()
    }
}

impl Session {
    pub fn new(stack: Stack, connector: Arc<dyn Connector>) -> Session {
        let router = Router::new(connector, &stack.name);
        Session { stack, router }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.router.clock()
    }

    /// The backend of the provider cluster: the lock and the inventory live there.
    pub async fn provider_backend(&self) -> Result<Arc<dyn Backend>, BackendError> {
        self.router.backend(&self.stack.provider_cluster()).await
    }

    /// The spec's scopes and those the inventory remembers.
    async fn scopes(&self) -> (Vec<Scope>, Vec<NodeDiagnostic>) {
        let mut scopes = self.stack.scopes();
        let mut diagnostics = Vec::new();
        let remembered = match self.provider_backend().await {
            Ok(backend) => read_inventory(&backend, &self.stack.name).await,
            Err(error) => Err(LockError::Backend(error)),
        };
        match remembered {
            Ok(remembered) => {
                let mut known: BTreeSet<Scope> = scopes.iter().cloned().collect();
                scopes.extend(remembered.into_iter().filter(|scope| known.insert(scope.clone())));
            }
            Err(error) => diagnostics.push(NodeDiagnostic {
                address: scope_address(&self.stack.provider_cluster()),
                finding: edgeplan_diag::Finding::of(
                    edgeplan_diag::RuleId::LiveLeftBehind,
                    None,
                    format!(
                        "the stack's inventory of scopes could not be read ({error}): only the scopes the spec names \
                         are searched for what the stack owns"
                    ),
                ),
            }),
        }
        (scopes, diagnostics)
    }

    /// Observe, discover what the stack owns beyond the spec, and decide.
    pub async fn plan(&self) -> Planned {
        self.planned(false).await
    }

    /// The destroy plan: everything the stack owns, the spec's nodes and orphans alike.
    pub async fn plan_destroy(&self) -> Planned {
        self.planned(true).await
    }

    async fn planned(&self, destroy: bool) -> Planned {
        let nodes = self.stack.nodes();
        // The spec's reads and ownership discovery's listings need nothing of each other: both
        // at once, so a plan waits for the longer of the two, not their sum.
        let listing = async {
            let (scopes, diagnostics) = self.scopes().await;
            let listed = list_everywhere(&self.router, &scopes).await;
            (scopes, diagnostics, listed)
        };
        let (mut observations, (scopes, mut diagnostics, listed)) =
            crate::clock::both(Box::pin(self.router.observe_all(&nodes)), Box::pin(listing)).await;
        let discovery = discover(&self.stack.name, &self.stack.graph, listed, &observations);
        observations.extend(discovery.observations);
        diagnostics.extend(discovery.diagnostics);
        let orphans: Vec<&Node> = discovery.orphans.iter().collect();
        let mut plan = if destroy {
            let all: Vec<&Node> = nodes.iter().copied().chain(orphans.iter().copied()).collect();
            edgeplan_plan::decide_destroy(&self.stack.name, &all, &observations)
        } else {
            edgeplan_plan::decide(&self.stack.name, &nodes, &orphans, &observations)
        };
        if !destroy {
            self.stack.label(&mut plan.diagnostics);
            // A plan with nothing to do does not repeat the spec's notes (things that are fine,
            // such as overlapping VPCs PrivateLink does not mind); warnings always stand.
            let acts = plan.changes.iter().any(|c| c.action.mutates());
            plan.diagnostics.extend(
                self.stack
                    .diagnostics()
                    .into_iter()
                    .filter(|d| acts || !d.is_spec() || d.finding.severity > edgeplan_diag::Severity::Note),
            );
        }
        plan.diagnostics.extend(diagnostics);
        let graph = execution_graph(&self.stack.graph, &discovery.orphans);
        Planned { graph, plan, observations, scopes, unreachable: discovery.unreachable }
    }

    /// Take the stack lock (see [`crate::lock::acquire`]).
    pub async fn lock(
        &self,
        holder: &str,
        process_alive: impl Fn(&str, u32) -> Option<bool>,
    ) -> Result<HeldLock, LockError> {
        let backend = self.provider_backend().await.map_err(LockError::Backend)?;
        crate::lock::acquire(backend, &self.stack.name, holder, process_alive).await
    }

    /// Execute `planned` (restricted to `only`), renewing `lock` on a timer meanwhile. The
    /// inventory records every scope first, so a crash leaves them findable; a complete apply
    /// (or destroy) then keeps only the scopes that still hold something of the stack.
    pub async fn apply(
        &self,
        planned: &Planned,
        only: Option<&std::collections::BTreeSet<Address>>,
        options: &ApplyOptions,
        progress: &dyn Progress,
        lock: Option<&HeldLock>,
        destroy: bool,
    ) -> Result<ApplyReport, LockError> {
        let provider = self.provider_backend().await.map_err(LockError::Backend)?;
        if provider.leases().is_some() {
            write_inventory(&provider, &self.stack.name, &planned.scopes).await?;
        }
        let walk =
            Walk { graph: &planned.graph, plan: &planned.plan, observed: &planned.observations, only, waits: !destroy };
        let report = keeping(lock, self.clock(), crate::walk::apply(&self.router, &walk, options, progress)).await?;
        if report.succeeded() && only.is_none() && provider.leases().is_some() {
            let mut keep: Vec<Scope> = planned.unreachable.iter().map(|(s, _)| s.clone()).collect();
            if !destroy {
                keep.extend(self.stack.scopes());
            }
            write_inventory(&provider, &self.stack.name, &keep).await?;
        }
        Ok(report)
    }

    /// The end-to-end check: observe everything, then ask Portainer for each consumer's
    /// Kubernetes API through the agent's tunnel.
    pub async fn verify(&self) -> VerifyReport {
        let nodes = self.stack.nodes();
        let observations = self.router.observe_all(&nodes).await;
        let mut probes = BTreeMap::new();
        for node in nodes.iter().filter(|n| n.kind == NodeKind::PortainerEnvironment) {
            let id = observations
                .iter()
                .find(|o| o.address == node.address)
                .and_then(|o| o.result.as_ref().ok())
                .and_then(environment_id);
            if let Some(id) = id {
                let answer = self.router.http_get(&node.scope, &kubernetes_probe_path(id)).await;
                probes.insert(node.address.clone(), answer);
            }
        }
        crate::verify::verify(&self.stack.graph, &observations, &probes)
    }
}

/// Run `work`, renewing `lock` meanwhile; stop if the lock is lost.
async fn keeping<F: Future>(lock: Option<&HeldLock>, clock: Arc<dyn Clock>, work: F) -> Result<F::Output, LockError> {
    let mut work = std::pin::pin!(work);
    let mut keeper = lock.map(|l| Box::pin(l.keep(clock)));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if let Some(keeper) = keeper.as_mut()
            && let Poll::Ready(error) = keeper.as_mut().poll(cx)
        {
            return Poll::Ready(Err(error));
        }
        Poll::Pending
    })
    .await
}
