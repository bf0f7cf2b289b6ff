//! `edgeplan plan --format json`: the plan model as one document for scripts and policy
//! checks. Secrets keep their redaction here too: Terraform's `show -json` prints sensitive
//! values in plain text; this never has them to print.

use std::collections::BTreeMap;

use edgeplan_diag::SourceFile;
use edgeplan_model::Value;
use edgeplan_plan::{Change, NodeDiagnostic, Plan, Reason, Shown};
use serde::Serialize;

use crate::diagnostic_json::{DiagnosticJson, diagnostic_json};

use super::RenderContext;

/// Bumped only when a key is removed or changes meaning; new keys do not bump it.
pub const JSON_FORMAT_VERSION: &str = "1";

// Structs rather than `serde_json::Value` for the document: field order is the declaration
// order whatever features serde_json is built with, so the output is stable.

#[derive(Serialize)]
struct Document<'a> {
    format_version: &'static str,
    stack: &'a str,
    summary: Counts,
    changes: Vec<ChangeJson<'a>>,
    diagnostics: Vec<Diagnostic<'a>>,
}

#[derive(Serialize)]
struct Counts {
    create: usize,
    update: usize,
    replace: usize,
    delete: usize,
    read: usize,
    no_op: usize,
}

#[derive(Serialize)]
struct ChangeJson<'a> {
    address: &'a str,
    kind: &'static str,
    action: &'static str,
    reasons: Vec<ReasonJson<'a>>,
    before: BTreeMap<&'a str, Json>,
    after: BTreeMap<&'a str, Json>,
}

#[derive(Serialize)]
struct ReasonJson<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
}

/// A shown value: JSON for a known value, a marker object for the other two.
#[derive(Serialize)]
#[serde(untagged)]
enum Json {
    Value(serde_json::Value),
    Unknown {
        unknown: bool,
    },
    Sensitive {
        sensitive: bool,
        /// The reference the plan gives (`env:AGENT_SECRET`), `null` without one.
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
}

/// Lint's diagnostic keys (`code`, `severity`, `message`, `help`, `file`, `line`, `column`,
/// `end_line`, `end_column`, always present) plus the `address` of the node it concerns.
/// `file` and positions are `null` when the spec is not known or the finding has no span.
#[derive(Serialize)]
struct Diagnostic<'a> {
    address: &'a str,
    #[serde(flatten)]
    diagnostic: DiagnosticJson<'a>,
}

/// The JSON plan: `format_version`, `stack`, `summary`, `changes` (every node, no-ops
/// included, in dependency order) and `diagnostics`. Values are JSON; a value known only after
/// apply is `{"unknown": true}`, a secret `{"sensitive": true, "ref": "env:NAME"}` (`"ref":
/// null` when the plan gives no reference). The values are full: a long policy document is
/// here whole, however the text formats shorten it.
pub fn json(plan: &Plan, ctx: &RenderContext) -> String {
    let s = plan.summary();
    let document = Document {
        format_version: JSON_FORMAT_VERSION,
        stack: &plan.stack,
        summary: Counts {
            create: s.create,
            update: s.update,
            replace: s.replace,
            delete: s.delete,
            read: s.read,
            no_op: s.no_op,
        },
        changes: plan.changes.iter().map(change).collect(),
        diagnostics: plan.diagnostics.iter().map(|d| diagnostic(ctx.source.as_ref(), d)).collect(),
    };
    // Plain structs with string keys: serialization cannot fail.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn change(change: &Change) -> ChangeJson<'_> {
    ChangeJson {
        address: change.address.as_str(),
        kind: change.kind.as_str(),
        action: change.action.as_str(),
        reasons: change.reasons.iter().map(reason).collect(),
        before: values(&change.before),
        after: values(&change.after),
    }
}

fn values(map: &BTreeMap<String, Shown>) -> BTreeMap<&str, Json> {
    map.iter().map(|(field, shown)| (field.as_str(), shown_json(shown))).collect()
}

fn reason(reason: &Reason) -> ReasonJson<'_> {
    let (field, upstream) = match reason {
        Reason::Drift { field } | Reason::ForcesReplacement { field } | Reason::VersionLimit { field } => {
            (Some(field.as_str()), None)
        }
        Reason::UpstreamChanging { field, upstream } | Reason::UpstreamReplaced { field, upstream } => {
            (Some(field.as_str()), Some(upstream.as_str()))
        }
        Reason::RecreatedBy { upstream } => (None, Some(upstream.as_str())),
        Reason::NotFound
        | Reason::ManagedElsewhere
        | Reason::InSync
        | Reason::Unobservable
        | Reason::OwnedByStack
        | Reason::NotOwned
        | Reason::NeverDeleted
        | Reason::GoesWithParent
        | Reason::RemovedFromSpec => (None, None),
    };
    ReasonJson { code: reason.code(), message: reason.to_string(), field, upstream }
}

fn shown_json(shown: &Shown) -> Json {
    match shown {
        Shown::Known(value) => Json::Value(value_json(value)),
        Shown::KnownAfterApply => Json::Unknown { unknown: true },
        Shown::Sensitive(reference) => Json::Sensitive { sensitive: true, reference: reference_of(reference) },
    }
}

fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(n) => serde_json::Value::from(*n),
        Value::Str(text) => serde_json::Value::String(text.clone()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(value_json).collect()),
        Value::Map(map) => serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()),
        // A secret nested in a value keeps the same marker as a sensitive field; nothing
        // derived from a secret's text (a digest) is ever printed.
        Value::SecretRef(reference) => serde_json::json!({ "sensitive": true, "ref": reference_of(reference) }),
        Value::Secret(_) => serde_json::json!({ "sensitive": true, "ref": null }),
    }
}

fn reference_of(reference: &str) -> Option<String> {
    (!reference.trim().is_empty()).then(|| reference.to_string())
}

fn diagnostic<'a>(source: Option<&'a SourceFile>, node: &'a NodeDiagnostic) -> Diagnostic<'a> {
    Diagnostic { address: node.address.as_str(), diagnostic: diagnostic_json(source, &node.finding) }
}
