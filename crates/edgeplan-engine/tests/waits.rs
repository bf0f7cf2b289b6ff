//! Waiting, not failing, on outputs that are not there yet (issue 9, item 6): a node whose
//! upstream succeeded may still lack an output someone else fills in later. The node waits for
//! it with the same backoff, progress lines and timeouts as every other wait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeplan_engine::{ApplyOptions, ApplyReport, Event, Planned, Progress, Session, Status, StepError};
use edgeplan_model::attr::{self, Attr};
use edgeplan_model::{
    Action, Address, Backend, BackendError, BoxFuture, Clock, Connector, HttpResponse, LeaseStore, NodeKind, Observed,
    Operation, OwnedObject, Request, Scope, Value, WaitKind,
};
use edgeplan_sim::{SimConnector, SimWorld, World};
use edgeplan_testkit::{run, seed_stack, session, sim, world};

/// Every progress event, with when it happened.
#[derive(Default)]
struct Recorded(Mutex<Vec<(Duration, Event)>>);

impl Progress for Recorded {
    fn event(&self, at: Duration, event: Event) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((at, event));
    }
}

impl Recorded {
    /// `(waiter, what was observed)` of every upstream-output wait.
    fn upstream_waits(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Waiting { address, wait: WaitKind::UpstreamOutput, observed, .. } => {
                    Some((address.to_string(), observed.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

fn apply(session: &Session, options: &ApplyOptions) -> (Planned, ApplyReport, Recorded) {
    let recorded = Recorded::default();
    let (planned, report) = run(session, async {
        let planned = session.plan().await;
        let report = session.apply(&planned, None, options, &recorded, None, false).await.expect("no lock to lose");
        (planned, report)
    });
    (planned, report, recorded)
}

fn failures(report: &ApplyReport) -> Vec<String> {
    report.failures().map(|(address, error)| format!("{address}: {error}")).collect()
}

/// The seed world with Edge Compute already on and Portainer's pods already running with it
/// (their settings checksum says so): the plan restarts nothing, so the tunnel Service is
/// created at once, alongside the controller's policy and the NLB subnet's own route table.
fn edge_compute_already_on() -> World {
    let mut world = world("testdata/worlds/seed.yaml");
    let server = &mut world.portainer[0];
    server.settings.enable_edge_compute = true;
    server.effective.enable_edge_compute = true;
    let deployment = server.deployment.clone();
    let portainer = world
        .kubernetes
        .iter_mut()
        .filter(|c| c.context == deployment.context)
        .flat_map(|c| c.deployments.iter_mut())
        .find(|d| d.namespace == deployment.namespace && d.name == deployment.name)
        .expect("Portainer's deployment");
    portainer.template_annotations.insert(
        edgeplan_plan::manifests::SETTINGS_CHECKSUM_ANNOTATION.to_string(),
        edgeplan_plan::facts::settings_checksum(Some(true)),
    );
    world
}

#[test]
fn with_edge_compute_already_on_the_first_apply_waits_for_the_services_hostname_and_converges() {
    let world = sim(edge_compute_already_on());
    let session = session(seed_stack(), &world);
    let (planned, report, recorded) = apply(&session, &ApplyOptions::default());
    let restart = planned.plan.change(&Address::provider("portainer_restart")).expect("the restart node");
    assert_eq!(restart.action, Action::NoOp, "nothing to restart: {:?}", restart.reasons);
    let service = planned.plan.change(&Address::provider("tunnel_service")).expect("the Service");
    assert_eq!(service.action, Action::Create);

    assert!(report.succeeded(), "{:#?}", failures(&report));
    // The Service was created before the controller could build its NLB (the subnet was still
    // public): the NLB read waited for the hostname the controller sets once it has, and said
    // why it was waiting.
    let waits = recorded.upstream_waits();
    assert!(!waits.is_empty(), "no upstream-output wait was reported");
    let (waiter, observed) = &waits[0];
    assert_eq!(waiter, "provider.nlb");
    assert!(
        observed.starts_with(
            "provider.tunnel_service (portainer/portainer-edge-tunnel) reports no `load_balancer_hostname` yet"
        ) && observed.contains("FailedBuildModel"),
        "{observed}"
    );
    assert!(run(&session, session.verify()).passed());
    let again = run(&session, session.plan());
    assert!(!again.plan.summary().has_changes(), "{:#?}", again.plan.changes);
}

/// A connector whose backends report `hidden` of every `kind` node as not there yet until the
/// clock reaches `until`: an output someone fills in later, whatever the backend.
struct Late {
    inner: SimConnector,
    kind: NodeKind,
    hidden: Attr,
    until: Duration,
}

struct LateBackend {
    inner: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    kind: NodeKind,
    hidden: Attr,
    until: Duration,
}

impl LateBackend {
    fn hide(&self, kind: NodeKind, result: &mut Result<Observed, BackendError>) {
        if kind == self.kind
            && self.clock.now() < self.until
            && let Ok(Observed::Present(live)) = result
        {
            live.set(self.hidden, Value::Null);
        }
    }
}

impl Connector for Late {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>> {
        Box::pin(async move {
            let inner = self.inner.connect(scope).await?;
            let backend: Arc<dyn Backend> = Arc::new(LateBackend {
                inner,
                clock: self.inner.clock(),
                kind: self.kind,
                hidden: self.hidden,
                until: self.until,
            });
            Ok(backend)
        })
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock()
    }
}

impl Backend for LateBackend {
    fn scope(&self) -> &Scope {
        self.inner.scope()
    }

    fn observe<'a>(
        &'a self,
        stack: &'a str,
        requests: &'a [Request<'a>],
    ) -> BoxFuture<'a, Vec<Result<Observed, BackendError>>> {
        Box::pin(async move {
            let mut results = self.inner.observe(stack, requests).await;
            for (request, result) in requests.iter().zip(results.iter_mut()) {
                self.hide(request.node.kind, result);
            }
            results
        })
    }

    fn execute<'a>(&'a self, operation: &'a Operation) -> BoxFuture<'a, Result<Observed, BackendError>> {
        Box::pin(async move {
            let mut result = self.inner.execute(operation).await;
            self.hide(operation.kind, &mut result);
            result
        })
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        self.inner.list_owned(stack)
    }

    fn http_get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<HttpResponse, BackendError>> {
        self.inner.http_get(path)
    }

    fn leases(&self) -> Option<&dyn LeaseStore> {
        self.inner.leases()
    }
}

fn late_session(world: &Arc<SimWorld>, kind: NodeKind, hidden: Attr, until: Duration) -> Session {
    let connector = Late { inner: SimConnector::new(Arc::clone(world)), kind, hidden, until };
    Session::new(seed_stack(), Arc::new(connector))
}

#[test]
fn a_declared_output_that_comes_late_is_waited_for_by_whatever_references_it() {
    // The endpoint's DNS name, which the agent's key points at, shows up only at 4 minutes
    // (the endpoint is created at 3m35s): the key waits for it instead of failing at once.
    let world = sim(world("testdata/worlds/seed.yaml"));
    let session = late_session(&world, NodeKind::Vpce, attr::DNS_NAME, Duration::from_secs(240));
    let (_, report, recorded) = apply(&session, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let waits = recorded.upstream_waits();
    assert!(
        waits.iter().any(|(waiter, observed)| waiter == "consumer.prod.agent_key"
            && observed.starts_with("consumer.prod.vpce (vpce-")
            && observed.ends_with("reports no `dns_name` yet")),
        "{waits:#?}"
    );
    // The key that was written points at the name that came.
    let dns = world
        .snapshot()
        .regions_of("123456789012")
        .flat_map(|r| r.vpc_endpoints.iter())
        .next()
        .and_then(|e| e.dns_entries.first().cloned())
        .expect("the endpoint");
    let verify = run(&session, session.verify());
    assert!(verify.passed(), "{verify:#?}");
    assert!(verify.checks.iter().any(|c| c.evidence.contains(&format!("{dns}:8000"))), "{verify:#?}");
}

#[test]
fn an_output_that_never_comes_times_out_with_what_was_last_seen_and_stops_only_its_dependents() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let session = late_session(&world, NodeKind::Vpce, attr::DNS_NAME, Duration::MAX);
    let options = ApplyOptions {
        timeouts: [(WaitKind::UpstreamOutput, Duration::from_secs(120))].into_iter().collect(),
        ..ApplyOptions::default()
    };
    let (_, report, recorded) = apply(&session, &options);
    assert!(!report.succeeded());
    let failed: Vec<(&Address, &StepError)> = report.failures().collect();
    assert_eq!(failed.len(), 1, "{:#?}", failures(&report));
    let (address, error) = failed[0];
    assert_eq!(address.as_str(), "consumer.prod.agent_key");
    let StepError::Timeout { wait, waited, last } = error else { panic!("not a timeout: {error}") };
    assert_eq!(*wait, WaitKind::UpstreamOutput);
    assert!(*waited >= Duration::from_secs(120) && *waited < Duration::from_secs(130), "{waited:?}");
    assert!(last.starts_with("consumer.prod.vpce (vpce-") && last.ends_with("reports no `dns_name` yet"), "{last}");
    assert!(
        error.to_string().starts_with("timed out after 2m0")
            && error.to_string().contains("waiting for upstream output: "),
        "{error}"
    );
    // It was reported while it waited, like every other wait.
    assert!(recorded.upstream_waits().len() > 3);
    // Only what needs the key is skipped; everything else converged.
    let skipped: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Skipped { .. }))
        .map(|o| o.address.as_str())
        .collect();
    assert_eq!(skipped, ["consumer.prod.agent"]);
    assert_eq!(report.count(|s| matches!(s, Status::Succeeded { .. })), report.outcomes.len() - 2);
}

#[test]
fn upstream_output_is_a_wait_kind_with_its_own_timeout() {
    assert_eq!("upstream-output".parse::<WaitKind>(), Ok(WaitKind::UpstreamOutput));
    assert_eq!(WaitKind::UpstreamOutput.describe(), "upstream output");
    // At least the LB controller's longest retry interval (1000 s).
    assert!(WaitKind::UpstreamOutput.default_timeout() >= Duration::from_secs(1000));
}
