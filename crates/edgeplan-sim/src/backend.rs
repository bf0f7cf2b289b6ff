//! [`SimBackend`]: the world behind the [`Backend`] trait.

use std::sync::{Mutex, MutexGuard};

use edgeplan_model::backend::{BoxFuture, ExecuteError, HttpResponse, ObserveError, Operation};
use edgeplan_model::{Backend, Node, Observation, Observed, Scope};

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
    /// When set, the world's clock follows the async runtime's: (runtime instant, world time)
    /// at the moment it was attached. See [`SimBackend::follow_runtime_clock`].
    anchor: Mutex<Option<(tokio::time::Instant, u64)>>,
}

impl SimBackend {
    pub fn new(world: World) -> SimBackend {
        SimBackend { world: Mutex::new(world), anchor: Mutex::new(None) }
    }

    /// Make the world's virtual clock follow the tokio runtime's clock from now on: every
    /// call first lets the world catch up with the time that passed on the runtime. With a
    /// paused runtime (`start_paused`), an executor's `sleep`s skip ahead instantly and the
    /// world sees exactly the modelled time pass.
    pub fn follow_runtime_clock(&self) {
        let now = self.now();
        *self.anchor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((tokio::time::Instant::now(), now));
    }

    /// Bring the world's clock up to the runtime's (when following it).
    fn catch_up(&self, world: &mut World) {
        let anchor = *self.anchor.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((instant, base)) = anchor {
            let target = base.saturating_add(instant.elapsed().as_secs());
            if target > world.now {
                world.advance(target - world.now);
            }
        }
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
        let mut world = self.lock();
        self.catch_up(&mut world);
        let observations = crate::observe::observe_all(&world, stack, nodes);
        Box::pin(std::future::ready(observations))
    }

    fn execute<'a>(
        &'a self,
        stack: &'a str,
        operation: &'a Operation,
    ) -> BoxFuture<'a, Result<Observed, ExecuteError>> {
        let mut world = self.lock();
        self.catch_up(&mut world);
        let result = crate::execute::execute(&mut world, stack, operation);
        Box::pin(std::future::ready(result))
    }

    fn http_get<'a>(&'a self, scope: &'a Scope, path: &'a str) -> BoxFuture<'a, Result<HttpResponse, ObserveError>> {
        let mut world = self.lock();
        self.catch_up(&mut world);
        let result = crate::http::get(&world, scope, path);
        Box::pin(std::future::ready(result))
    }
}
