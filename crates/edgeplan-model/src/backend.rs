//! The interface every backend implements: the simulated world, AWS, Kubernetes, Portainer.
//!
//! Backends **observe** and **act**; the engine **decides**. Diffing, live rules and plan
//! decisions are written once, in the engine, over the normalized state returned here.
//!
//! The shape is chosen for the real APIs to come:
//! - `observe` takes every node at once, so a backend batches as its API allows: one
//!   `DescribeSubnets` per account and region for all subnets, one LIST per cluster and kind,
//!   one `GET /api/endpoints` for all environments.
//! - `execute` takes one operation whose attributes are already resolved (no references left):
//!   a Kubernetes backend turns it into one server-side apply with the `edgeplan` field manager,
//!   an AWS backend into a create with a `ClientToken` and the ownership tags, a Portainer
//!   backend into one REST call.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::{Address, Node, Scope, Value};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tag (AWS) and label (Kubernetes) keys that prove ownership without a state file.
pub const STACK_TAG: &str = "edgeplan.dev/stack";
pub const ADDRESS_TAG: &str = "edgeplan.dev/address";
/// Server-side apply field manager for every Kubernetes object edgeplan writes.
pub const FIELD_MANAGER: &str = "edgeplan";

/// A live object, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    /// The provider's ID (subnet-…, an ARN, a Portainer environment ID, namespace/name).
    pub id: String,
    /// Attributes comparable with the node's desired attributes (same names).
    pub attributes: BTreeMap<String, Value>,
    /// Values other nodes may reference (`NodeKind::outputs`).
    pub outputs: BTreeMap<String, Value>,
    /// Carries this stack's ownership tags/labels (or field manager).
    pub owned: bool,
}

/// What a backend found for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Absent,
    Present(LiveObject),
}

/// A failure to observe one node. It becomes a diagnostic on that node, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserveError {
    pub message: String,
    /// Worth retrying (throttling, a timeout) as opposed to permanent (access denied).
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub address: Address,
    pub result: Result<Observed, ObserveError>,
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

/// One mutation, fully resolved. `apply` executes exactly what the plan recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub node: Node,
    pub action: Action,
    /// Desired attributes with every reference replaced by the upstream node's output.
    pub attributes: BTreeMap<String, Value>,
    /// Idempotency token (EC2 `ClientToken`): stable per stack, address and attempt, so a
    /// resumed apply never creates a duplicate.
    pub client_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteError {
    pub message: String,
    pub retryable: bool,
}

/// The answer to [`Backend::http_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// A backend: observes many nodes at once and executes one operation at a time.
pub trait Backend: Send + Sync {
    /// Observe `nodes` (of any scopes and kinds) for `stack`. Returns exactly one observation
    /// per node, in the same order.
    fn observe<'a>(&'a self, stack: &'a str, nodes: &'a [&'a Node]) -> BoxFuture<'a, Vec<Observation>>;

    /// Execute one operation the plan decided, and return what now exists.
    fn execute<'a>(&'a self, stack: &'a str, operation: &'a Operation)
    -> BoxFuture<'a, Result<Observed, ExecuteError>>;

    /// A GET on an API in `scope`, authenticated as the backend is (verify's end-to-end
    /// check: `GET /api/endpoints/{id}/kubernetes/api/v1/namespaces` through Portainer, which
    /// only answers 200 when the agent's tunnel works). Backends without HTTP APIs refuse.
    fn http_get<'a>(&'a self, scope: &'a Scope, path: &'a str) -> BoxFuture<'a, Result<HttpResponse, ObserveError>> {
        let _ = (scope, path);
        Box::pin(std::future::ready(Err(ObserveError {
            message: "this backend cannot send API requests".to_string(),
            retryable: false,
        })))
    }
}
