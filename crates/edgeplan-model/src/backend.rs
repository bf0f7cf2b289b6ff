//! The seam between the engine and the systems it drives.
//!
//! A [`Backend`] serves exactly one [`Scope`]: an AWS account and region, a kube context, or a
//! Portainer URL. The engine groups nodes by scope, resolves every reference before it asks, and
//! sends each group to the backend [`Connector::connect`] returns for that scope. A backend
//! translates nodes to its one API and back, and nothing more:
//!
//! - it never reads another scope (the LB controller's configuration, Portainer's settings,
//!   another account's endpoints);
//! - it never decides (diffing, live rules, plan decisions and domain facts are the engine's);
//! - it reports raw API facts under the attribute names its kinds declare ([`crate::kinds`]),
//!   secrets as [`Value::Secret`], and who owns an object as an [`Ownership`] read from the
//!   object's own tags, labels or Portainer tags.
//!
//! The shape suits the real APIs: `observe` takes every node of the scope at once so a backend
//! batches per kind (one `DescribeSubnets` for all subnets, one LIST per Kubernetes kind),
//! `execute` takes one operation whose values are all resolved, `list_owned` finds what the
//! stack owns with one tag-filtered call per kind.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::attr::Attr;
use crate::kinds::NodeKind;
use crate::manifest::{Manifest, ObjectRef};
use crate::node::{Address, Identity, Node, Ownership, Scope};
use crate::value::Value;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tag (AWS), label (Kubernetes) and Portainer tag keys that prove ownership without a state file.
pub const STACK_TAG: &str = "edgeplan.dev/stack";
pub const ADDRESS_TAG: &str = "edgeplan.dev/address";
/// Server-side apply field manager for every Kubernetes object edgeplan writes.
pub const FIELD_MANAGER: &str = "edgeplan";

/// A live object, as the backend read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    /// The provider's ID (subnet-…, an ARN, a Portainer environment ID, namespace/name).
    pub id: String,
    /// Raw facts under the kind's declared names; the engine adds what it derives.
    pub attributes: BTreeMap<Attr, Value>,
    /// Who the object's tags, labels or Portainer tags say made it.
    pub owner: Option<Ownership>,
    /// Kubernetes nodes: the live objects, which the engine reads its attributes from.
    pub manifests: Vec<Manifest>,
}

impl LiveObject {
    pub fn new(id: impl Into<String>) -> LiveObject {
        LiveObject { id: id.into(), attributes: BTreeMap::new(), owner: None, manifests: Vec::new() }
    }

    pub fn with(mut self, attr: Attr, value: impl Into<Value>) -> LiveObject {
        self.attributes.insert(attr, value.into());
        self
    }

    pub fn set(&mut self, attr: Attr, value: impl Into<Value>) {
        self.attributes.insert(attr, value.into());
    }

    pub fn get(&self, attr: Attr) -> Option<&Value> {
        self.attributes.get(&attr)
    }

    pub fn text(&self, attr: Attr) -> Option<&str> {
        self.get(attr).and_then(Value::as_str)
    }

    pub fn int(&self, attr: Attr) -> Option<i64> {
        self.get(attr).and_then(Value::as_int)
    }

    pub fn flag(&self, attr: Attr) -> Option<bool> {
        self.get(attr).and_then(Value::as_bool)
    }

    /// Does the object say this stack made it for this address?
    pub fn owned_by(&self, stack: &str, address: &Address) -> bool {
        self.owner.as_ref().is_some_and(|o| o.stack == stack && &o.address == address)
    }
}

/// What a backend found for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Absent,
    Present(LiveObject),
}

impl Observed {
    pub fn live(&self) -> Option<&LiveObject> {
        match self {
            Observed::Present(live) => Some(live),
            Observed::Absent => None,
        }
    }
}

/// A failure of one call, typed so the engine can say what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The object (or its parent) does not exist.
    NotFound { message: String },
    /// Rate limiting or a service that is briefly unavailable: worth retrying.
    Throttled { message: String },
    /// The credentials lack a permission; `action` names it when the API says which
    /// (`ec2:DescribeRouteTables`), so the diagnostic can.
    AccessDenied { action: Option<String>, message: String },
    /// Someone else holds the object or the fields: another field manager (named, with the
    /// fields), a name taken by a foreign object, a stale resource version.
    Conflict { message: String, manager: Option<String>, fields: Vec<String> },
    /// The API refused the request as invalid; `code` is its own error code.
    Invalid { code: String, message: String },
    /// The scope could not be reached: no such context, connection refused, TLS, a timeout.
    Transport { message: String, retryable: bool },
    /// This backend has no such operation (a lease on AWS, an HTTP probe on Kubernetes).
    Unsupported { message: String },
}

impl BackendError {
    pub fn retryable(&self) -> bool {
        match self {
            BackendError::Throttled { .. } => true,
            BackendError::Transport { retryable, .. } => *retryable,
            _ => false,
        }
    }

    pub fn invalid(code: &str, message: impl Into<String>) -> BackendError {
        BackendError::Invalid { code: code.to_string(), message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> BackendError {
        BackendError::NotFound { message: message.into() }
    }

    pub fn conflict(message: impl Into<String>) -> BackendError {
        BackendError::Conflict { message: message.into(), manager: None, fields: Vec::new() }
    }

    pub fn unsupported(message: impl Into<String>) -> BackendError {
        BackendError::Unsupported { message: message.into() }
    }

    /// A stable code for reports and JSON.
    pub fn code(&self) -> &str {
        match self {
            BackendError::NotFound { .. } => "not-found",
            BackendError::Throttled { .. } => "throttled",
            BackendError::AccessDenied { .. } => "access-denied",
            BackendError::Conflict { .. } => "conflict",
            BackendError::Invalid { code, .. } => code,
            BackendError::Transport { .. } => "transport",
            BackendError::Unsupported { .. } => "unsupported",
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NotFound { message } | BackendError::Throttled { message } => f.write_str(message),
            BackendError::AccessDenied { action: Some(action), message } => {
                write!(f, "not authorized to perform {action}: {message}")
            }
            BackendError::AccessDenied { action: None, message } => write!(f, "access denied: {message}"),
            BackendError::Conflict { message, manager: Some(manager), fields } if !fields.is_empty() => {
                write!(f, "{message} (field manager `{manager}` owns {})", fields.join(", "))
            }
            BackendError::Conflict { message, .. } => f.write_str(message),
            BackendError::Invalid { code, message } => write!(f, "{code}: {message}"),
            BackendError::Transport { message, .. } => write!(f, "cannot reach the API: {message}"),
            BackendError::Unsupported { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for BackendError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub address: Address,
    pub result: Result<Observed, BackendError>,
}

/// What the plan decided for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    NoOp,
    Read,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    /// Terraform's symbols, which users already read fluently.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Read => "<=",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    pub fn mutates(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Replace | Action::Delete)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node to observe, its references resolved by the engine (an attribute whose upstream
/// does not exist yet is simply absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub node: &'a Node,
    pub attributes: BTreeMap<Attr, Value>,
    /// Kubernetes nodes: the objects the node consists of, for the backend to fetch.
    pub objects: Vec<ObjectRef>,
}

/// One mutation, fully resolved. `apply` executes exactly what the plan recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub address: Address,
    pub kind: NodeKind,
    pub identity: Identity,
    pub action: Action,
    /// Desired attributes with every reference replaced by the upstream node's value, secrets
    /// as their values, plus parameters the plan decided (which policy version to delete).
    pub attributes: BTreeMap<Attr, Value>,
    /// Kubernetes nodes: the objects to apply, rendered by the engine, applied as they are.
    pub manifests: Vec<Manifest>,
    /// What a created object must carry.
    pub ownership: Ownership,
    /// Idempotency token (EC2 `ClientToken`): the same operation gets the same token, so a
    /// retried or resumed create finds its object instead of making a second one.
    pub client_token: String,
    /// The object as observed just before (update, replace, delete): what to act on.
    pub live: Option<LiveObject>,
}

impl Operation {
    pub fn get(&self, attr: Attr) -> Option<&Value> {
        self.attributes.get(&attr)
    }

    pub fn text(&self, attr: Attr) -> Option<&str> {
        self.get(attr).and_then(Value::as_str)
    }
}

/// An object found by ownership discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedObject {
    pub kind: NodeKind,
    /// From the object's ownership; `None` for records that carry none of their own (a
    /// connection to the stack's endpoint service).
    pub address: Option<Address>,
    pub object: LiveObject,
}

/// The answer to [`Backend::http_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// A `coordination.k8s.io/v1` Lease, as the stack lock uses it. Times are Unix seconds of the
/// wall clock: the lock is between real processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub namespace: String,
    pub name: String,
    pub holder: String,
    pub duration_seconds: u64,
    pub acquired_at: u64,
    pub renewed_at: u64,
    /// Optimistic concurrency: a replace or delete with a stale version is a conflict.
    pub resource_version: String,
}

/// A backend: one scope, observed in batches, changed one operation at a time.
pub trait Backend: Send + Sync {
    fn scope(&self) -> &Scope;

    /// Observe `requests` (all in this backend's scope) for `stack`. Returns exactly one result
    /// per request, in the same order.
    fn observe<'a>(
        &'a self,
        stack: &'a str,
        requests: &'a [Request<'a>],
    ) -> BoxFuture<'a, Vec<Result<Observed, BackendError>>>;

    /// Execute one operation the plan decided, and return what now exists.
    fn execute<'a>(&'a self, operation: &'a Operation) -> BoxFuture<'a, Result<Observed, BackendError>>;

    /// Every object in this scope that carries `stack`'s ownership, one tag- or label-filtered
    /// call per kind; what pruning and destroy start from.
    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>>;

    /// A GET on this scope's HTTP API, authenticated as the backend is (verify's end-to-end
    /// check through Portainer's Kubernetes proxy).
    fn http_get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<HttpResponse, BackendError>> {
        let _ = path;
        Box::pin(std::future::ready(Err(BackendError::unsupported(format!(
            "{} has no HTTP API to probe",
            self.scope()
        )))))
    }

    /// The stack lock and the inventory of scopes live in the provider cluster: only a
    /// Kubernetes backend has them.
    fn leases(&self) -> Option<&dyn LeaseStore> {
        None
    }
}

/// Leases and the inventory of scopes (a ConfigMap next to the lease), in one cluster.
pub trait LeaseStore: Send + Sync {
    fn get_lease<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LeaseRecord>, BackendError>>;

    /// Create; `Conflict` if it exists.
    fn create_lease<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<LeaseRecord, BackendError>>;

    /// Replace at `lease.resource_version`; `Conflict` if someone wrote since.
    fn replace_lease<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<LeaseRecord, BackendError>>;

    /// Delete at `resource_version`; `Conflict` if someone wrote since, `NotFound` if gone.
    fn delete_lease<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        resource_version: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The scope records (see [`Scope::to_record`]) kept under `name`, if any.
    fn get_inventory<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, BackendError>>;

    /// Store the scope records under `name` (empty: remove it).
    fn put_inventory<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        records: &'a [String],
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// Time, as the backends' world keeps it: the wall clock for real systems, the simulated
/// world's virtual clock for `--world`.
pub trait Clock: Send + Sync {
    /// Time since the clock started.
    fn now(&self) -> Duration;

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Called by the engine's driver when every task it runs is waiting: a virtual clock jumps
    /// to the next deadline and returns true; the wall clock has nothing to do.
    fn idle(&self) -> bool {
        false
    }
}

/// Opens the backend for a scope: one client per AWS account and region, kube context or
/// Portainer URL, with that scope's own credentials.
pub trait Connector: Send + Sync {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>>;

    fn clock(&self) -> Arc<dyn Clock>;
}
