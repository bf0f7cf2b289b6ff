//! A connector that serves AWS scopes from a real-protocol backend (aws-sdk-rust against
//! moto) and every other scope from the simulated world, on the simulated world's virtual
//! clock. The clock does not jump while a real call is in flight: time moves only when
//! everything waits on time alone, as [`edgeplan_engine::drive`] expects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edgeplan_model::{
    Backend, BackendError, BoxFuture, Clock, Connector, LeaseStore, Observed, Operation, OwnedObject, Request, Scope,
    ScopeKind,
};

/// Called after every successful operation on a simulated scope, with its result: where a
/// test plays a controller's part across the two worlds (the LB controller building the NLB
/// in moto once the tunnel Service exists).
pub type AfterExecute =
    Arc<dyn Fn(&Scope, &Operation, &Observed) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

pub struct MixedConnector {
    aws: Arc<dyn Connector>,
    sim: Arc<dyn Connector>,
    in_flight: Arc<AtomicUsize>,
    after_execute: Option<AfterExecute>,
}

impl MixedConnector {
    pub fn new(
        aws: Arc<dyn Connector>,
        sim: Arc<dyn Connector>,
        after_execute: Option<AfterExecute>,
    ) -> MixedConnector {
        MixedConnector { aws, sim, in_flight: Arc::new(AtomicUsize::new(0)), after_execute }
    }
}

/// Counts a real call in flight for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connector for MixedConnector {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>> {
        Box::pin(async move {
            if scope.kind() == ScopeKind::Aws {
                let _guard = InFlight::new(&self.in_flight);
                let inner = self.aws.connect(scope).await?;
                let tracked: Arc<dyn Backend> =
                    Arc::new(Tracked { inner, in_flight: Arc::clone(&self.in_flight), after: None });
                return Ok(tracked);
            }
            let inner = self.sim.connect(scope).await?;
            let tracked: Arc<dyn Backend> =
                Arc::new(Tracked { inner, in_flight: Arc::clone(&self.in_flight), after: self.after_execute.clone() });
            Ok(tracked)
        })
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(HeldClock { inner: self.sim.clock(), in_flight: Arc::clone(&self.in_flight) })
    }
}

/// The simulated world's clock, held still while a real call is in flight.
struct HeldClock {
    inner: Arc<dyn Clock>,
    in_flight: Arc<AtomicUsize>,
}

impl Clock for HeldClock {
    fn now(&self) -> Duration {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.inner.sleep(duration)
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.inner.idle()
    }
}

struct Tracked {
    inner: Arc<dyn Backend>,
    in_flight: Arc<AtomicUsize>,
    after: Option<AfterExecute>,
}

impl Backend for Tracked {
    fn scope(&self) -> &Scope {
        self.inner.scope()
    }

    fn observe<'a>(
        &'a self,
        stack: &'a str,
        requests: &'a [Request<'a>],
    ) -> BoxFuture<'a, Vec<Result<Observed, BackendError>>> {
        Box::pin(async move {
            let _guard = InFlight::new(&self.in_flight);
            self.inner.observe(stack, requests).await
        })
    }

    fn execute<'a>(&'a self, operation: &'a Operation) -> BoxFuture<'a, Result<Observed, BackendError>> {
        Box::pin(async move {
            let _guard = InFlight::new(&self.in_flight);
            let observed = self.inner.execute(operation).await?;
            if let Some(after) = &self.after {
                after(self.inner.scope(), operation, &observed)
                    .await
                    .map_err(|message| BackendError::Transport { message, retryable: false })?;
            }
            Ok(observed)
        })
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        Box::pin(async move {
            let _guard = InFlight::new(&self.in_flight);
            self.inner.list_owned(stack).await
        })
    }

    fn http_get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<edgeplan_model::HttpResponse, BackendError>> {
        self.inner.http_get(path)
    }

    fn leases(&self) -> Option<&dyn LeaseStore> {
        self.inner.leases()
    }
}
