//! The executor: `apply` and `destroy` walk the resource graph and execute exactly what the
//! plan decided, through any [`Backend`](edgeplan_model::Backend).
//!
//! - A node starts as soon as every dependency in the walk succeeded, at most
//!   [`ApplyOptions::parallelism`] at a time, longest remaining chain first.
//! - A failure stops only its dependents, which are reported as skipped *because of* it: the
//!   report's failures are root causes only.
//! - Before a node mutates, it re-observes its object and compares it with the plan's
//!   "before" ([`edgeplan_plan::check_assumptions`]); a moved object aborts the node with a
//!   diff. Apply never re-decides: the action comes from the plan, and a reference whose
//!   upstream value differs from what the plan showed aborts the node too.
//! - After a node, the executor waits for what dependents need ready ([`WaitKind`]): polls
//!   with exponential backoff and jitter, per-kind timeouts, and a timeout message that says
//!   what was last observed.
//!
//! Architecture invariants: no backend knowledge (only the `Backend` trait and normalized
//! attributes); no I/O of its own; no `spawn`, so node futures may borrow; time only through
//! `tokio::time`, so a paused runtime runs modelled waits instantly.

mod lock;
mod report;
mod verify;
mod wait;
mod walk;

pub use lock::{Claim, LeaseState, claim, holder_identity};
pub use report::{ApplyReport, Event, NoProgress, Outcome, Progress, Status, StepError, clock};
pub use verify::{Cause, VerifyCheck, VerifyReport, environment_id, kubernetes_probe_path, verify};
pub use wait::WaitKind;
pub use walk::{ApplyOptions, Direction, NoSecrets, Secrets, Walk, apply};
