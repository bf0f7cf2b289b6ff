//! A connector that records what the engine sends to each backend, and can make a scope
//! unreachable: for engine-level tests of what crosses the seam. It wraps real backends (the
//! simulated ones): it never answers in their place.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use edgeplan_model::{
    Backend, BackendError, BoxFuture, Clock, Connector, HttpResponse, LeaseStore, Observed, Operation, OwnedObject,
    Request, Scope,
};

/// One call that crossed the seam.
#[derive(Debug, Clone)]
pub enum Call {
    /// An observe batch: the scope and the addresses asked for, in order.
    Observe {
        scope: Scope,
        addresses: Vec<String>,
    },
    Execute {
        scope: Scope,
        operation: Box<Operation>,
    },
    ListOwned {
        scope: Scope,
    },
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    unreachable: Mutex<BTreeSet<Scope>>,
}

/// Records every call; refuses to connect to scopes marked unreachable.
pub struct RecordingConnector {
    inner: Arc<dyn Connector>,
    shared: Arc<Shared>,
}

impl RecordingConnector {
    pub fn new(inner: Arc<dyn Connector>) -> RecordingConnector {
        RecordingConnector { inner, shared: Arc::new(Shared::default()) }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn clear(&self) {
        self.shared.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// From now on, connecting to `scope` fails as an expired credential or a deleted context does.
    pub fn make_unreachable(&self, scope: Scope) {
        self.shared.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(scope);
    }

    /// The operations executed, in order.
    pub fn operations(&self) -> Vec<Operation> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Execute { operation, .. } => Some(*operation),
                _ => None,
            })
            .collect()
    }
}

struct Recording {
    inner: Arc<dyn Backend>,
    shared: Arc<Shared>,
}

impl Recording {
    fn record(&self, call: Call) {
        self.shared.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(call);
    }
}

impl Backend for Recording {
    fn scope(&self) -> &Scope {
        self.inner.scope()
    }

    fn observe<'a>(
        &'a self,
        stack: &'a str,
        requests: &'a [Request<'a>],
    ) -> BoxFuture<'a, Vec<Result<Observed, BackendError>>> {
        let addresses = requests.iter().map(|r| r.node.address.to_string()).collect();
        self.record(Call::Observe { scope: self.scope().clone(), addresses });
        self.inner.observe(stack, requests)
    }

    fn execute<'a>(&'a self, operation: &'a Operation) -> BoxFuture<'a, Result<Observed, BackendError>> {
        self.record(Call::Execute { scope: self.scope().clone(), operation: Box::new(operation.clone()) });
        self.inner.execute(operation)
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        self.record(Call::ListOwned { scope: self.scope().clone() });
        self.inner.list_owned(stack)
    }

    fn http_get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<HttpResponse, BackendError>> {
        self.inner.http_get(path)
    }

    fn leases(&self) -> Option<&dyn LeaseStore> {
        self.inner.leases()
    }
}

impl Connector for RecordingConnector {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>> {
        Box::pin(async move {
            let refused =
                self.shared.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(scope);
            if refused {
                return Err(BackendError::Transport {
                    message: format!("{scope}: the credentials have expired"),
                    retryable: false,
                });
            }
            let inner = self.inner.connect(scope).await?;
            let backend: Arc<dyn Backend> = Arc::new(Recording { inner, shared: Arc::clone(&self.shared) });
            Ok(backend)
        })
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock()
    }
}
