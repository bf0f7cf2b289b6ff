//! What an apply did, node by node, and the progress events it emits on the way.

use std::fmt;
use std::time::Duration;

use edgeplan_model::{Action, Address};

use edgeplan_model::{BackendError, WaitKind};

/// Why a node failed. Only a node's *own* failure is one of these; its dependents are
/// [`Status::Skipped`] and point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The live object moved since the plan was made: the node did nothing.
    PlanMismatch { moved: Vec<edgeplan_plan::Moved> },
    /// A reference could not be resolved from the upstream node's outputs.
    Unresolved { field: String, message: String },
    /// The backend refused the operation (typed: not found, access denied with the action,
    /// conflict, invalid with the API's code, transport).
    Execute { error: BackendError },
    /// Observing failed while checking or waiting.
    Observe { message: String },
    /// A wait ran out of time; `last` is what was last observed.
    Timeout { wait: WaitKind, waited: Duration, last: String },
    /// A wait saw a state that waiting cannot fix.
    Never { wait: WaitKind, observed: String },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::PlanMismatch { moved } => {
                f.write_str("live state changed since the plan was made; nothing was done:")?;
                for m in moved {
                    write!(f, "\n  ~ {}: planned {} → now {}", m.field, m.planned, m.now)?;
                }
                Ok(())
            }
            StepError::Unresolved { field, message } => write!(f, "cannot resolve `{field}`: {message}"),
            StepError::Execute { error } => write!(f, "{error}"),
            StepError::Observe { message } => write!(f, "cannot observe: {message}"),
            StepError::Timeout { wait, waited, last } => {
                write!(f, "timed out after {} waiting for {}: {last}", clock(*waited), wait.describe())
            }
            StepError::Never { wait, observed } => {
                write!(f, "{} cannot happen: {observed}", wait.describe())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Succeeded {
        started: Duration,
        finished: Duration,
    },
    Failed {
        error: StepError,
    },
    /// Not run because `root` failed (a root cause, never another skipped node).
    Skipped {
        root: Address,
    },
    /// Not run: the apply was interrupted before it got there.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub address: Address,
    pub action: Action,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// One per node, in the order the walk was given them.
    pub outcomes: Vec<Outcome>,
    /// Time from start to the last node's end (virtual time on the simulated world).
    pub makespan: Duration,
    /// Backend operations that changed something.
    pub mutations: usize,
    /// The fault hook stopped the walk.
    pub interrupted: bool,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        !self.interrupted && self.outcomes.iter().all(|o| matches!(o.status, Status::Succeeded { .. }))
    }

    /// Root causes only: the nodes that failed themselves.
    pub fn failures(&self) -> impl Iterator<Item = (&Address, &StepError)> {
        self.outcomes.iter().filter_map(|o| match &o.status {
            Status::Failed { error } => Some((&o.address, error)),
            _ => None,
        })
    }

    pub fn skipped_because_of<'a>(&'a self, root: &'a Address) -> impl Iterator<Item = &'a Address> + 'a {
        self.outcomes.iter().filter_map(move |o| match &o.status {
            Status::Skipped { root: r } if r == root => Some(&o.address),
            _ => None,
        })
    }

    pub fn count(&self, f: impl Fn(&Status) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.status)).count()
    }
}

/// A progress event. `at` is the time since the walk started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        address: Address,
        action: Action,
    },
    /// Still waiting; emitted on every poll (renderers decide how often to print).
    Waiting {
        address: Address,
        wait: WaitKind,
        waited: Duration,
        observed: String,
    },
    Succeeded {
        address: Address,
        action: Action,
        took: Duration,
    },
    Failed {
        address: Address,
        error: StepError,
    },
    Skipped {
        address: Address,
        root: Address,
    },
}

/// Receives progress events. Implementations must be cheap: they are called inline.
pub trait Progress {
    fn event(&self, at: Duration, event: Event);
}

/// Discards every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: Duration, _: Event) {}
}

/// `4m05s`, `35s`: short, fixed vocabulary for progress lines and reports.
pub fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 { format!("{}m{:02}s", seconds / 60, seconds % 60) } else { format!("{seconds}s") }
}
