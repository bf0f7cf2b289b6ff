//! The backend of one AWS account and region: the seam's three calls, each translated to
//! EC2, ELBv2 and IAM calls by the modules beside this one.

use std::collections::BTreeMap;

use edgeplan_model::{
    Action, Address, Attr, Backend, BackendError, BoxFuture, Identity, NodeKind, Observed, Operation, OwnedObject,
    Request, Scope, Value,
};

use crate::{execute, observe, owned};
use edgeplan_model::join::both;

pub(crate) type Outcome = Result<Observed, BackendError>;

/// One account and region, reached with one profile's credentials.
pub struct AwsBackend {
    pub(crate) scope: Scope,
    pub(crate) account: String,
    pub(crate) region: String,
    pub(crate) profile: Option<String>,
    /// The account check ([`crate::connect::check_account`]), once per backend.
    pub(crate) signed_in: tokio::sync::OnceCell<Result<(), BackendError>>,
    /// Who the credentials are (an ARN), once known: named when AWS denies something.
    pub(crate) principal: std::sync::OnceLock<String>,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) iam: aws_sdk_iam::Client,
}

/// What identifies the object a node or an operation is about.
#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    pub(crate) stack: &'a str,
    pub(crate) address: &'a Address,
    pub(crate) kind: NodeKind,
    pub(crate) identity: &'a Identity,
    pub(crate) attributes: BTreeMap<Attr, Value>,
}

impl Query<'_> {
    pub(crate) fn text(&self, attr: Attr) -> Option<&str> {
        self.attributes.get(&attr).and_then(Value::as_str)
    }

    pub(crate) fn strings(&self, attr: Attr) -> Vec<String> {
        self.attributes.get(&attr).map(Value::strings).unwrap_or_default()
    }

    pub(crate) fn adopted(&self) -> Option<&str> {
        match self.identity {
            Identity::Adopted { id } => Some(id),
            _ => None,
        }
    }
}

impl AwsBackend {
    /// An access denial names who was denied, as well as the action.
    pub(crate) fn denied(&self, error: BackendError) -> BackendError {
        match (error, self.principal.get()) {
            (BackendError::AccessDenied { action, message }, Some(principal))
                if !message.contains(principal.as_str()) =>
            {
                BackendError::AccessDenied { action, message: format!("{message} (as {principal})") }
            }
            (other, _) => other,
        }
    }

    /// The account check, run once.
    async fn signed_in(&self) -> Result<(), BackendError> {
        self.signed_in.get_or_init(|| crate::connect::check_account(self)).await.clone()
    }
}

impl Backend for AwsBackend {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn observe<'a>(&'a self, stack: &'a str, requests: &'a [Request<'a>]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let queries: Vec<Query<'_>> = requests
                .iter()
                .map(|r| Query {
                    stack,
                    address: &r.node.address,
                    kind: r.node.kind,
                    identity: &r.node.identity,
                    attributes: r.attributes.clone(),
                })
                .collect();
            let (signed_in, outcomes) = both(self.signed_in(), Box::pin(observe::all(self, &queries))).await;
            if let Err(error) = signed_in {
                return vec![Err(error); queries.len()];
            }
            outcomes.into_iter().map(|r| r.map_err(|e| self.denied(e))).collect()
        })
    }

    fn execute<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            // A delete acts on the object as observed: its live attributes fill in what the
            // operation does not carry.
            let mut attributes = op.attributes.clone();
            if op.action == Action::Delete
                && let Some(live) = &op.live
            {
                for (key, value) in &live.attributes {
                    attributes.entry(*key).or_insert_with(|| value.clone());
                }
            }
            let q = Query {
                stack: op.ownership.stack.as_str(),
                address: &op.address,
                kind: op.kind,
                identity: &op.identity,
                attributes,
            };
            let result = async {
                // Nothing is written before the account is known to be the spec's.
                self.signed_in().await?;
                execute::run(self, op, &q).await?;
                match op.action {
                    Action::Delete => Ok(Observed::Absent),
                    _ => observe::all(self, std::slice::from_ref(&q)).await.pop().unwrap_or(Ok(Observed::Absent)),
                }
            };
            result.await.map_err(|e| self.denied(e))
        })
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        Box::pin(async move {
            let (signed_in, owned) = both(self.signed_in(), Box::pin(owned::list(self, stack))).await;
            signed_in?;
            owned.map_err(|e| self.denied(e))
        })
    }
}
