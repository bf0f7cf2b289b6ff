//! The plan: for every node, an action, the reasons for it, and field-level before/after.
//!
//! Terraform's lesson, kept as an invariant: the plan is a data model. Renderers (human, JSON,
//! markdown) only read it, and `apply` executes exactly what it records: it never re-decides.
//! Deciding is one pure function, [`decide`], over desired nodes (in dependency order) and
//! what the backends observed; no backend re-implements it.

mod assumptions;
mod decide;
mod destroy;
pub mod facts;
pub mod logs;
pub mod manifests;
mod model;
mod planned;
mod rules;
mod saved;

pub use assumptions::{Moved, check_assumptions, matches_planned};
pub use decide::{decide, stale_nodes};
pub use destroy::decide_destroy;
pub use model::{Change, FORMAT_VERSION, NodeDiagnostic, Plan, Reason, SPEC_ADDRESS, Shown, Summary, fingerprint};
pub use rules::{finding_subject, live_rules};
pub use saved::{SavedChange, SavedPlan, SavedPlanError, spec_fingerprint};
