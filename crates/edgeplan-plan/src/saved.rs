//! Saved plans (`edgeplan plan -o FILE`): what apply will later execute, with the spec it was
//! made from, a fingerprint of everything the decisions depended on (the spec, the documents it
//! references), a salted digest of the secrets it read and, per node, a fingerprint of the
//! observed state each decision was made from. Apply refuses a saved plan whose inputs
//! changed, or names exactly the nodes whose live state moved since.
//!
//! A saved-plan file must be treated as sensitive, like the secrets themselves: it holds a
//! digest of each secret the spec references (AGENT_SECRET, chosen by a user and possibly
//! weak), salted so it matches nothing outside this file, but still open to an offline guess
//! by whoever has the file. That digest is kept only here: no plan output prints it.

use std::fmt;

use edgeplan_model::{Action, Address, Node, Observation};
use serde_json::{Value as Json, json};

use edgeplan_model::{Expr, Value, short_sha256};

use crate::model::{FORMAT_VERSION, Plan};

/// A saved plan as stored: enough to check staleness and to say what apply will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPlan {
    pub format_version: u32,
    pub stack: String,
    /// Where the spec was, so relative paths in it (policy documents, secret files) resolve.
    pub spec_path: String,
    /// The spec itself: applying a saved plan needs no other input. Lint-clean, so it holds
    /// secret *references* only.
    pub spec_text: String,
    /// [`spec_fingerprint`] of the spec text and compiled nodes the plan was made from.
    pub spec_fingerprint: String,
    /// The salt of [`SavedPlan::secrets_digest`], random per saved plan (hex).
    pub secrets_salt: String,
    /// [`secrets_digest`] of the secrets the plan was made with, under `secrets_salt`.
    pub secrets_digest: String,
    pub changes: Vec<SavedChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedChange {
    pub address: Address,
    pub action: Action,
    pub observed_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedPlanError {
    Malformed(String),
    NewerFormat {
        found: u32,
        supported: u32,
    },
    OtherSpec {
        saved: String,
        current: String,
    },
    /// A secret the spec references has another value than when the plan was made.
    OtherSecrets,
    OtherStack {
        saved: String,
        current: String,
    },
    /// Live state moved since planning, for exactly these nodes.
    Stale(Vec<Address>),
}

impl fmt::Display for SavedPlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SavedPlanError::Malformed(why) => write!(f, "the saved plan is not readable: {why}"),
            SavedPlanError::NewerFormat { found, supported } => {
                write!(f, "the saved plan has format {found}; this edgeplan reads up to {supported}")
            }
            SavedPlanError::OtherSpec { saved, current } => {
                write!(
                    f,
                    "the saved plan was made from other inputs ({saved}; now {current}): the spec, a document it \
                     references or a secret changed"
                )
            }
            // No digest in the message: it would be a digest of a secret.
            SavedPlanError::OtherSecrets => {
                write!(f, "the saved plan was made with other secret values: a secret the spec references changed")
            }
            SavedPlanError::OtherStack { saved, current } => {
                write!(f, "the saved plan is for stack `{saved}`, not `{current}`")
            }
            SavedPlanError::Stale(nodes) => {
                let list: Vec<&str> = nodes.iter().map(Address::as_str).collect();
                write!(f, "live state changed since the plan was made, for: {}", list.join(", "))
            }
        }
    }
}

impl std::error::Error for SavedPlanError {}

/// `sha256:` + 16 hex digits over the spec text and the compiled nodes' desired values in
/// canonical JSON (inlined documents; a secret as its reference, never its text or an
/// unsalted digest, which this fingerprint is printed next to): a saved plan is applied only
/// against exactly these inputs. Secret values are checked by [`secrets_digest`].
pub fn spec_fingerprint(spec_text: &str, nodes: &[&Node]) -> String {
    let nodes: Vec<Json> = nodes
        .iter()
        .map(|node| {
            let desired: serde_json::Map<String, Json> = node
                .desired
                .iter()
                .map(|(attr, expr)| {
                    let value = match expr {
                        Expr::Lit(Value::Secret(secret)) => json!({ "secret_ref": secret.reference() }),
                        Expr::Lit(value) => value.canonical(),
                        Expr::Ref(reference) => json!({ "ref": reference.to_string() }),
                    };
                    (attr.name().to_string(), value)
                })
                .collect();
            json!([node.address.as_str(), desired])
        })
        .collect();
    let input = json!({ "spec": spec_text, "nodes": nodes });
    short_sha256(input.to_string().as_bytes())
}

/// SHA-256 (hex) of `salt` and every secret value the nodes hold, with where each is used.
/// Salted, so the digest of a weak secret matches no precomputed table and no other file.
pub(crate) fn secrets_digest(salt: &str, nodes: &[&Node]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(salt.as_bytes());
    for node in nodes {
        for (attr, expr) in &node.desired {
            if let Expr::Lit(Value::Secret(secret)) = expr {
                // Length-prefixed: no two different lists hash alike.
                for part in [node.address.as_str(), attr.name(), secret.expose()] {
                    hasher.update((part.len() as u64).to_le_bytes());
                    hasher.update(part.as_bytes());
                }
            }
        }
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh salt: 128 bits from the standard library's per-process random SipHash keys (seeded
/// from the OS), mixed with the time and a counter. A salt must differ between files; it need
/// not be secret.
fn fresh_salt() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |lane: u8| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(lane);
        hasher.write_u128(nanos);
        hasher.write_u64(count);
        hasher.write_u32(std::process::id());
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

fn action_from(text: &str) -> Option<Action> {
    [Action::NoOp, Action::Read, Action::Create, Action::Update, Action::Replace, Action::Delete]
        .into_iter()
        .find(|a| a.as_str() == text)
}

impl SavedPlan {
    pub fn from_plan(plan: &Plan, spec_path: &str, spec_text: &str, nodes: &[&Node]) -> SavedPlan {
        SavedPlan::from_plan_salted(plan, spec_path, spec_text, nodes, &fresh_salt())
    }

    /// [`SavedPlan::from_plan`] with a given salt (tests need a reproducible file).
    pub fn from_plan_salted(plan: &Plan, spec_path: &str, spec_text: &str, nodes: &[&Node], salt: &str) -> SavedPlan {
        SavedPlan {
            format_version: plan.format_version,
            stack: plan.stack.clone(),
            spec_path: spec_path.to_string(),
            spec_text: spec_text.to_string(),
            spec_fingerprint: spec_fingerprint(spec_text, nodes),
            secrets_salt: salt.to_string(),
            secrets_digest: secrets_digest(salt, nodes),
            changes: plan
                .changes
                .iter()
                .map(|c| SavedChange {
                    address: c.address.clone(),
                    action: c.action,
                    observed_fingerprint: c.observed_fingerprint.clone(),
                })
                .collect(),
        }
    }

    /// The file's text: JSON, stable order, no secrets (fingerprints only).
    pub fn to_json(&self) -> String {
        let changes: Vec<Json> = self
            .changes
            .iter()
            .map(|c| {
                json!({"address": c.address.as_str(), "action": c.action.as_str(), "observed_fingerprint": c.observed_fingerprint})
            })
            .collect();
        let document = json!({
            "format_version": self.format_version,
            "stack": self.stack,
            "spec_path": self.spec_path,
            "spec_fingerprint": self.spec_fingerprint,
            "secrets_salt": self.secrets_salt,
            "secrets_digest": self.secrets_digest,
            "spec_text": self.spec_text,
            "changes": changes,
        });
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Read a saved plan; a newer format is refused before anything else is interpreted.
    pub fn from_json(text: &str) -> Result<SavedPlan, SavedPlanError> {
        let malformed = |why: &str| SavedPlanError::Malformed(why.to_string());
        let document: Json = serde_json::from_str(text).map_err(|e| SavedPlanError::Malformed(e.to_string()))?;
        let version =
            document.get("format_version").and_then(Json::as_u64).ok_or_else(|| malformed("no format_version"))?;
        let version = u32::try_from(version).map_err(|_| malformed("format_version out of range"))?;
        if version > FORMAT_VERSION {
            return Err(SavedPlanError::NewerFormat { found: version, supported: FORMAT_VERSION });
        }
        if version < FORMAT_VERSION {
            return Err(malformed(&format!(
                "it has format {version}, from an older edgeplan that checked secrets differently: run `edgeplan plan -o` again"
            )));
        }
        let text_field = |name: &str| {
            document
                .get(name)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| malformed(&format!("no {name}")))
        };
        let stack = text_field("stack")?;
        let spec_fingerprint = text_field("spec_fingerprint")?;
        let spec_path = text_field("spec_path")?;
        let spec_text = text_field("spec_text")?;
        let secrets_salt = text_field("secrets_salt")?;
        let secrets_digest = text_field("secrets_digest")?;
        let changes = document
            .get("changes")
            .and_then(Json::as_array)
            .ok_or_else(|| malformed("no changes"))?
            .iter()
            .map(|c| {
                let field = |name: &str| {
                    c.get(name).and_then(Json::as_str).ok_or_else(|| malformed(&format!("a change has no {name}")))
                };
                Ok(SavedChange {
                    address: Address::from_text(field("address")?),
                    action: action_from(field("action")?).ok_or_else(|| malformed("unknown action"))?,
                    observed_fingerprint: field("observed_fingerprint")?.to_string(),
                })
            })
            .collect::<Result<Vec<_>, SavedPlanError>>()?;
        Ok(SavedPlan {
            format_version: version,
            stack,
            spec_path,
            spec_text,
            spec_fingerprint,
            secrets_salt,
            secrets_digest,
            changes,
        })
    }

    /// May this plan still be applied? Same stack, same inputs (`nodes` compiled now from
    /// `spec_text`), and no node whose live state moved; otherwise the error names exactly
    /// what differs.
    pub fn check(
        &self,
        stack: &str,
        spec_text: &str,
        nodes: &[&Node],
        fresh: &[Observation],
    ) -> Result<(), SavedPlanError> {
        if self.stack != stack {
            return Err(SavedPlanError::OtherStack { saved: self.stack.clone(), current: stack.to_string() });
        }
        let current = spec_fingerprint(spec_text, nodes);
        if self.spec_fingerprint != current {
            return Err(SavedPlanError::OtherSpec { saved: self.spec_fingerprint.clone(), current });
        }
        if secrets_digest(&self.secrets_salt, nodes) != self.secrets_digest {
            return Err(SavedPlanError::OtherSecrets);
        }
        let moved =
            crate::decide::moved(self.changes.iter().map(|c| (&c.address, c.observed_fingerprint.as_str())), fresh);
        if moved.is_empty() { Ok(()) } else { Err(SavedPlanError::Stale(moved)) }
    }
}
