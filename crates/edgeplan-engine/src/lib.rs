//! The engine: everything between a stack and its backends that is not pure deciding.
//!
//! - [`router`]: groups nodes by scope and sends each group to the one backend serving it,
//!   every reference resolved; observes layer by layer where a lookup needs an upstream output;
//!   computes the engine's own nodes (the agent key), renders Kubernetes objects and derives the
//!   domain facts (`edgeplan_plan::facts`) every observation is judged by.
//! - [`walk`]: the executor. A node starts as soon as its predecessors succeeded (dependencies
//!   for creates and updates, dependents for deletes), at most [`ApplyOptions::parallelism`] at
//!   a time; a failure stops only what comes after it, reported as skipped *because of* it.
//!   Before a node mutates, it re-observes its object and compares it with the plan's "before";
//!   apply never re-decides.
//! - [`discovery`]: what the stack owns beyond the spec, found by ownership in every scope the
//!   spec names or the inventory remembers; the orphans the plan deletes.
//! - [`lock`]: the stack lock (a Lease in the provider cluster, renewed on a timer) and the
//!   inventory of scopes next to it.
//! - [`session`]: plan, apply, destroy and verify, the same for every command, xtask and test.
//! - [`stack`] and [`secrets`]: the spec compiled with its documents inlined and its secrets
//!   read (bounded, non-blocking; a secret resolves or the plan stops).
//!
//! Architecture invariants: no backend knowledge (only the `Backend` and `Connector` traits
//! and declared attributes); no `spawn` (futures borrow and are polled together on the
//! caller's task); time only through the backends' [`edgeplan_model::Clock`], driven by
//! [`clock::drive`], so the simulated world's virtual clock runs modelled waits instantly
//! without any test-only runtime feature.

pub mod clock;
pub mod discovery;
pub mod lock;
mod report;
pub mod router;
pub mod secrets;
pub mod session;
pub mod stack;
mod verify;
mod wait;
pub mod walk;

pub use clock::{WallClock, drive};
pub use lock::{Claim, HeldLock, LeaseState, LockError, claim, holder_identity};
pub use report::{ApplyReport, Event, NoProgress, Outcome, Progress, Status, StepError, clock};
pub use router::Router;
pub use session::{Planned, Session};
pub use stack::{Stack, StackError};
pub use verify::{Cause, VerifyCheck, VerifyReport, checks, environment_id, kubernetes_probe_path, verify};
pub use walk::{ApplyOptions, Walk, apply};
