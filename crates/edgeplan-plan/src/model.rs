//! The plan's data model.

use std::collections::BTreeMap;
use std::fmt;

use edgeplan_diag::Finding;
use edgeplan_model::{
    Action, Address, BackendError, Canonical, LiveObject, NodeKind, Observed, Value, short_sha256_of,
};
use serde_json::json;

/// Bumped on any incompatible change to the saved-plan format; newer plans are refused.
/// 2: secrets are checked by a salted digest, no longer inside the spec fingerprint.
pub const FORMAT_VERSION: u32 = 2;

/// A value as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Known(Value),
    /// Depends on an output that does not exist yet ("(known after apply)").
    KnownAfterApply,
    /// A secret: only a reference or a fingerprint is ever kept.
    Sensitive(String),
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Known(value) => write!(f, "{value}"),
            Shown::KnownAfterApply => f.write_str("(known after apply)"),
            Shown::Sensitive(what) if what.is_empty() => f.write_str("(sensitive)"),
            Shown::Sensitive(what) => write!(f, "(sensitive: {what})"),
        }
    }
}

/// Why a node gets its action. Codes are stable: they appear in plan JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Nothing found for this node: it will be created.
    NotFound,
    /// A field differs from the spec and can be changed in place.
    Drift { field: String },
    /// A field differs and cannot be changed in place (e.g. a subnet's CIDR).
    ForcesReplacement { field: String },
    /// A field depends on another node's output that is not known yet.
    UpstreamChanging { field: String, upstream: Address },
    /// A field that cannot change in place refers to a node this plan replaces (or creates):
    /// this object is replaced with it.
    UpstreamReplaced { field: String, upstream: Address },
    /// Made by a controller from `upstream`, which this plan replaces: the controller deletes
    /// this object and makes a new one (the NLB, when its Service is recreated).
    RecreatedBy { upstream: Address },
    /// Created by someone else (the LB controller): edgeplan reads it and waits for it.
    ManagedElsewhere,
    /// Live state matches the spec.
    InSync,
    /// The live object could not be observed; see the node's diagnostics.
    Unobservable,
    /// IAM keeps at most 5 versions of a policy: the update deletes `field` (a version ID)
    /// first. Recorded so apply deletes exactly the version the plan showed.
    VersionLimit { field: String },
    /// Destroy: the object carries this stack's ownership tags or labels.
    OwnedByStack,
    /// Destroy: adopted by ID, pre-existing or owned by someone else; kept.
    NotOwned,
    /// Destroy: a setting or policy edgeplan only updates; kept as it is.
    NeverDeleted,
    /// Destroy: removed with the object it belongs to (a key with its agent).
    GoesWithParent,
    /// The stack owns it (its ownership tags or labels say so) and the spec no longer names it.
    RemovedFromSpec,
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotFound => "not-found",
            Reason::Drift { .. } => "drift",
            Reason::ForcesReplacement { .. } => "forces-replacement",
            Reason::UpstreamChanging { .. } => "upstream-changing",
            Reason::UpstreamReplaced { .. } => "upstream-replaced",
            Reason::RecreatedBy { .. } => "recreated-by-controller",
            Reason::ManagedElsewhere => "managed-elsewhere",
            Reason::InSync => "in-sync",
            Reason::Unobservable => "unobservable",
            Reason::VersionLimit { .. } => "version-limit",
            Reason::OwnedByStack => "owned-by-stack",
            Reason::NotOwned => "not-owned",
            Reason::NeverDeleted => "never-deleted",
            Reason::GoesWithParent => "goes-with-parent",
            Reason::RemovedFromSpec => "removed-from-spec",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotFound => f.write_str("does not exist"),
            Reason::Drift { field } => write!(f, "`{field}` differs from the spec"),
            Reason::ForcesReplacement { field } => write!(f, "`{field}` cannot change in place (forces replacement)"),
            Reason::UpstreamChanging { field, upstream } => {
                write!(f, "`{field}` depends on {upstream}, which changes in this plan")
            }
            Reason::UpstreamReplaced { field, upstream } => {
                write!(
                    f,
                    "`{field}` refers to {upstream}, which is replaced, and cannot change in place (forces replacement)"
                )
            }
            Reason::RecreatedBy { upstream } => {
                write!(
                    f,
                    "made by its controller from {upstream}, which is replaced: the controller deletes it and builds a new one"
                )
            }
            Reason::ManagedElsewhere => {
                f.write_str("created by the AWS Load Balancer Controller; edgeplan waits for it")
            }
            Reason::InSync => f.write_str("matches the spec"),
            Reason::Unobservable => f.write_str("could not be observed"),
            Reason::VersionLimit { field } => {
                write!(f, "the policy is at IAM's limit of 5 versions: `{field}` is deleted before the new default")
            }
            Reason::OwnedByStack => f.write_str("created by this stack (its ownership tags or labels prove it)"),
            Reason::NotOwned => {
                f.write_str("not created by this stack (adopted, pre-existing or another owner's): kept")
            }
            Reason::NeverDeleted => f.write_str("a setting or policy edgeplan only updates: kept as it is"),
            Reason::GoesWithParent => f.write_str("removed with the object it belongs to"),
            Reason::RemovedFromSpec => {
                f.write_str("removed from the spec: created by this stack (its ownership says so) and no longer wanted")
            }
        }
    }
}

/// One node's planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub address: Address,
    pub kind: NodeKind,
    pub action: Action,
    pub reasons: Vec<Reason>,
    /// Observed values of the fields the spec sets (absent for a create).
    pub before: BTreeMap<String, Shown>,
    /// Desired values, with references resolved where known.
    pub after: BTreeMap<String, Shown>,
    /// Fingerprint of the observed state this change was decided from (saved-plan staleness).
    pub observed_fingerprint: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub read: usize,
    pub no_op: usize,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.replace + self.delete > 0
    }
}

/// A diagnostic about live state (a "live rule"), attached to the node it concerns. Same rule
/// catalog, severities and renderers as lint; `finding.span` points into the spec when the
/// spec line that causes it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDiagnostic {
    pub address: Address,
    pub finding: Finding,
}

/// The address of diagnostics about the spec as a whole (lint's findings), not one node.
pub const SPEC_ADDRESS: &str = "spec";

impl NodeDiagnostic {
    /// A finding about the spec as a whole: lint's warnings and notes, carried into the plan.
    pub fn spec(finding: Finding) -> NodeDiagnostic {
        NodeDiagnostic { address: Address::from_text(SPEC_ADDRESS), finding }
    }

    /// Is this about the spec as a whole (renderers group these as "Spec findings")?
    pub fn is_spec(&self) -> bool {
        self.address.as_str() == SPEC_ADDRESS
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    /// Changes in dependency order.
    pub changes: Vec<Change>,
    pub diagnostics: Vec<NodeDiagnostic>,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
                Action::Read => summary.read += 1,
                Action::NoOp => summary.no_op += 1,
            }
        }
        summary
    }

    /// Apply refuses a plan with an error diagnostic before it changes anything.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.finding.severity == edgeplan_diag::Severity::Error)
    }

    pub fn diagnostics_of<'a>(&'a self, address: &'a Address) -> impl Iterator<Item = &'a Finding> + 'a {
        self.diagnostics.iter().filter(move |d| &d.address == address).map(|d| &d.finding)
    }

    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

/// A short, stable fingerprint of an observation: `sha256:` + 16 hex digits over its canonical
/// JSON (ordered maps, secrets as their fingerprints), never over `Debug` output.
pub fn fingerprint(observed: &Result<Observed, BackendError>) -> String {
    match observed {
        Ok(Observed::Absent) => short_sha256_of(&"absent"),
        Ok(Observed::Present(live)) => short_sha256_of(&CanonicalLive(live)),
        Err(error) => short_sha256_of(&json!({ "error": error.code(), "message": error.to_string() })),
    }
}

/// A live object as `{"attributes", "id", "objects", "owner"}`, keys sorted as a JSON object's
/// are, attributes by name: streamed into the fingerprint's hash without building it.
struct CanonicalLive<'a>(&'a LiveObject);

impl serde::Serialize for CanonicalLive<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let live = self.0;
        let mut attributes: Vec<(&str, Canonical<'_>)> =
            live.attributes.iter().map(|(k, v)| (k.name(), Canonical(v))).collect();
        attributes.sort_by_key(|(name, _)| *name);
        let objects: Vec<String> = live.manifests.iter().map(|m| m.key()).collect();
        let owner = live.owner.as_ref().map(|o| (o.stack.as_str(), o.address.as_str()));
        let mut out = serializer.serialize_map(Some(4))?;
        out.serialize_entry("attributes", &SortedEntries(&attributes))?;
        out.serialize_entry("id", &live.id)?;
        out.serialize_entry("objects", &objects)?;
        out.serialize_entry("owner", &owner)?;
        out.end()
    }
}

struct SortedEntries<'a>(&'a [(&'a str, Canonical<'a>)]);

impl serde::Serialize for SortedEntries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The canonical text of a value, for fingerprints.
pub(crate) fn canonical_text(value: &Value) -> String {
    value.canonical().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplan_model::attr;

    /// The fingerprint as first defined: the canonical JSON tree, printed, hashed.
    fn built(observed: &Result<Observed, BackendError>) -> String {
        let canonical = match observed {
            Ok(Observed::Absent) => json!("absent"),
            Ok(Observed::Present(live)) => {
                let attributes: serde_json::Map<String, serde_json::Value> =
                    live.attributes.iter().map(|(k, v)| (k.name().to_string(), v.canonical())).collect();
                let owner = live.owner.as_ref().map(|o| json!([o.stack, o.address.as_str()]));
                let objects: Vec<serde_json::Value> = live.manifests.iter().map(|m| json!(m.key())).collect();
                json!({ "id": live.id, "attributes": attributes, "owner": owner, "objects": objects })
            }
            Err(error) => json!({ "error": error.code(), "message": error.to_string() }),
        };
        edgeplan_model::short_sha256(canonical.to_string().as_bytes())
    }

    #[test]
    fn the_streamed_fingerprint_is_the_canonical_jsons() {
        let mut live = LiveObject::new("subnet-0123")
            .with(attr::CIDR_BLOCK, "192.168.0.0/24")
            .with(attr::VPC_ID, "vpc-1")
            .with(attr::AGENT_SECRET, Value::Secret(edgeplan_model::SecretText::new("weak")))
            .with(attr::ROUTES, Value::List(vec![Value::Int(1), Value::Null]));
        let unowned = Ok(Observed::Present(live.clone()));
        live.owner = Some(edgeplan_model::Ownership::new("stack", &Address::provider("nlb_subnet")));
        for observed in
            [Ok(Observed::Absent), unowned, Ok(Observed::Present(live)), Err(BackendError::conflict("two objects"))]
        {
            assert_eq!(fingerprint(&observed), built(&observed));
        }
    }
}
