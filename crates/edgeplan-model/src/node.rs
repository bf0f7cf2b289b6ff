//! Nodes of the resource graph.

use std::collections::BTreeMap;
use std::fmt;

use crate::attr::Attr;
use crate::kinds::{NodeKind, ScopeKind};
use crate::value::Value;

/// A node's stable address: `provider.<name>` or `consumer.<consumer>.<name>`. It is printed
/// in plans, tagged onto AWS resources and labelled onto Kubernetes objects, so it never
/// depends on ordering or on IDs AWS assigns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(String);

impl Address {
    pub fn provider(name: &str) -> Address {
        Address(format!("provider.{name}"))
    }

    pub fn consumer(consumer: &str, name: &str) -> Address {
        Address(format!("consumer.{consumer}.{name}"))
    }

    /// An address from its full text (`consumer.prod.vpce`), e.g. from an ownership tag.
    pub fn from_text(full: &str) -> Address {
        Address(full.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `provider` or `consumer.NAME`: the part shared by the nodes of one side.
    pub fn prefix(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(prefix, _)| prefix)
    }

    /// The consumer's name, for `consumer.NAME.…` addresses.
    pub fn consumer_name(&self) -> Option<&str> {
        self.0.strip_prefix("consumer.").and_then(|rest| rest.split_once('.')).map(|(name, _)| name)
    }

    /// The kind an address of this shape names (its last segment is the kind's address name).
    pub fn kind(&self) -> Option<NodeKind> {
        let (_, name) = self.0.rsplit_once('.')?;
        NodeKind::from_address_name(name)
    }

    /// The address of `kind` next to this one (same prefix).
    pub fn sibling(&self, kind: NodeKind) -> Address {
        Address(format!("{}.{}", self.prefix(), kind.address_name()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The API endpoint that serves a node. The engine groups nodes by scope and hands each group
/// to the one backend that serves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Aws {
        account: String,
        region: String,
        /// Where the credentials come from (an AWS profile); not part of what is addressed.
        profile: Option<String>,
    },
    Kubernetes {
        context: String,
    },
    Portainer {
        url: String,
    },
    /// Computed by the engine (the agent key).
    Engine,
}

impl Scope {
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Aws { .. } => ScopeKind::Aws,
            Scope::Kubernetes { .. } => ScopeKind::Kubernetes,
            Scope::Portainer { .. } => ScopeKind::Portainer,
            Scope::Engine => ScopeKind::Engine,
        }
    }

    /// What the scope addresses, without the credentials used to reach it: two AWS profiles
    /// on one account and region see the same objects.
    pub fn addressed(&self) -> Scope {
        match self {
            Scope::Aws { account, region, profile: Some(_) } => {
                Scope::Aws { account: account.clone(), region: region.clone(), profile: None }
            }
            other => other.clone(),
        }
    }

    /// The scope's record in the stack's inventory (a list of scopes, not a state file).
    pub fn to_record(&self) -> String {
        match self {
            Scope::Aws { account, region, profile: Some(profile) } => format!("aws:{account}:{region}:{profile}"),
            Scope::Aws { account, region, profile: None } => format!("aws:{account}:{region}"),
            Scope::Kubernetes { context } => format!("kube:{context}"),
            Scope::Portainer { url } => format!("portainer:{url}"),
            Scope::Engine => "engine".to_string(),
        }
    }

    pub fn from_record(record: &str) -> Option<Scope> {
        let (kind, rest) = record.split_once(':').unwrap_or((record, ""));
        match kind {
            "aws" => {
                let mut parts = rest.splitn(3, ':');
                let account = parts.next().filter(|a| !a.is_empty())?.to_string();
                let region = parts.next().filter(|r| !r.is_empty())?.to_string();
                let profile = parts.next().map(str::to_string);
                Some(Scope::Aws { account, region, profile })
            }
            "kube" if !rest.is_empty() => Some(Scope::Kubernetes { context: rest.to_string() }),
            "portainer" if !rest.is_empty() => Some(Scope::Portainer { url: rest.to_string() }),
            "engine" => Some(Scope::Engine),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Aws { account, region, profile: Some(profile) } => {
                write!(f, "AWS account {account} in {region} (profile {profile})")
            }
            Scope::Aws { account, region, profile: None } => write!(f, "AWS account {account} in {region}"),
            Scope::Kubernetes { context } => write!(f, "kube context `{context}`"),
            Scope::Portainer { url } => write!(f, "Portainer at {url}"),
            Scope::Engine => f.write_str("the engine"),
        }
    }
}

/// How edgeplan finds a node's live object again, with no state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Created and owned by edgeplan: found by its ownership (AWS tags, Kubernetes labels,
    /// Portainer tags) naming this stack and address.
    Owned,
    /// Named by ID in the spec: adopted, never deleted.
    Adopted { id: String },
    /// Found by a natural key (a Portainer environment name, a deployment name): may be
    /// created if missing, deleted only if it carries this stack's ownership.
    Named { name: String },
    /// Exists once per scope and is only ever updated (Portainer settings, a rollout).
    Singleton,
    /// Created by someone else (the LB controller): read, waited for, never written.
    ReadOnly,
}

/// What an object's tags, labels or Portainer tags say about who made it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ownership {
    pub stack: String,
    pub address: Address,
}

impl Ownership {
    pub fn new(stack: &str, address: &Address) -> Ownership {
        Ownership { stack: stack.to_string(), address: address.clone() }
    }
}

/// An output of another node, e.g. `provider.endpoint_service` → `service_name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub node: Address,
    pub output: Attr,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.output)
    }
}

/// A desired attribute: a literal, or another node's output ("known after apply" until that
/// node exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Lit(Value),
    Ref(Reference),
}

impl Expr {
    pub fn lit(value: impl Into<Value>) -> Expr {
        Expr::Lit(value.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub address: Address,
    pub kind: NodeKind,
    pub scope: Scope,
    pub identity: Identity,
    pub desired: BTreeMap<Attr, Expr>,
}

impl Node {
    /// Every other node this one reads an output of: its dependencies, with the attribute
    /// that needs each (the edge's "why").
    pub fn references(&self) -> impl Iterator<Item = (Attr, &Reference)> {
        self.desired.iter().filter_map(|(attribute, expr)| match expr {
            Expr::Ref(reference) => Some((*attribute, reference)),
            Expr::Lit(_) => None,
        })
    }

    /// The node a desired attribute references, if it is a reference.
    pub fn referenced(&self, attribute: Attr) -> Option<&Address> {
        match self.desired.get(&attribute) {
            Some(Expr::Ref(reference)) => Some(&reference.node),
            _ => None,
        }
    }

    /// A literal desired value.
    pub fn literal(&self, attribute: Attr) -> Option<&Value> {
        match self.desired.get(&attribute) {
            Some(Expr::Lit(value)) => Some(value),
            _ => None,
        }
    }
}
