//! [`SimBackend`]: the world behind the [`Backend`] trait.

use std::sync::{Mutex, MutexGuard};

use edgeplan_model::backend::{BoxFuture, ExecuteError, Operation};
use edgeplan_model::{Backend, Node, Observation, Observed};

use crate::file::{WorldError, load, save};
use crate::sim::Settled;
use crate::world::{Event, World};

/// The simulated world as a backend for every scope: AWS, Kubernetes and Portainer at once.
///
/// Calls never wait: the futures are ready when returned, and slow effects (an NLB becoming
/// active, a rollout) happen only when the caller moves the virtual clock with
/// [`SimBackend::advance`] or [`SimBackend::run_until_settled`].
#[derive(Debug)]
pub struct SimBackend {
    world: Mutex<World>,
}

impl SimBackend {
    pub fn new(world: World) -> SimBackend {
        SimBackend { world: Mutex::new(world) }
    }

    /// Load a world file's text (see [`crate::load`]).
    pub fn load(text: &str) -> Result<SimBackend, WorldError> {
        load(text).map(SimBackend::new)
    }

    /// The world as a world file's text, for apply to write back.
    pub fn save(&self) -> String {
        save(&self.lock())
    }

    /// A copy of the world as it is now.
    pub fn snapshot(&self) -> World {
        self.lock().clone()
    }

    pub fn into_world(self) -> World {
        self.world.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Read or change the world directly (tests, and the executor's waits).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.lock())
    }

    /// Virtual seconds since the world began.
    pub fn now(&self) -> u64 {
        self.lock().now
    }

    /// See [`World::advance`].
    pub fn advance(&self, seconds: u64) -> Vec<Event> {
        self.lock().advance(seconds)
    }

    /// See [`World::step`].
    pub fn step(&self) -> Option<Vec<Event>> {
        self.lock().step()
    }

    /// See [`World::run_until_settled`].
    pub fn run_until_settled(&self) -> Settled {
        self.lock().run_until_settled()
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic elsewhere while holding the lock leaves a world that is still plain data.
        self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backend for SimBackend {
    fn observe<'a>(&'a self, stack: &'a str, nodes: &'a [&'a Node]) -> BoxFuture<'a, Vec<Observation>> {
        let observations = crate::observe::observe_all(&self.lock(), stack, nodes);
        Box::pin(std::future::ready(observations))
    }

    fn execute<'a>(
        &'a self,
        stack: &'a str,
        operation: &'a Operation,
    ) -> BoxFuture<'a, Result<Observed, ExecuteError>> {
        let result = crate::execute::execute(&mut self.lock(), stack, operation);
        Box::pin(std::future::ready(result))
    }
}
