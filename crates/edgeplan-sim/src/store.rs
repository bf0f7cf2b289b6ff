//! The shared simulated world behind every simulated backend: the world in memory, where it
//! is kept (a file for the CLI, memory for tests), and its virtual clock.
//!
//! The world is written back after every mutation, as a cloud keeps what was done: a killed
//! apply leaves the world as far as it got. Leases and the stack's inventory are the one thing
//! several processes write: they are read, changed and stored under the store's lock, and a
//! plain write-back never overwrites them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use edgeplan_model::{BackendError, Clock};

use crate::clock::VirtualClock;
use crate::world::{KeyValueObject, Lease, World};

/// Label marking the ConfigMap that holds a stack's inventory of scopes.
pub const INVENTORY_LABEL: &str = "edgeplan.dev/inventory";

/// Where a world is kept.
pub trait WorldStore: Send + Sync {
    /// Load the stored world and let `change` look at it and change it, exclusively (other
    /// processes wait); store it only if `change` says it changed something (a read must never
    /// rewrite a hand-written world file).
    fn update(&self, change: &mut dyn FnMut(&mut World) -> bool) -> Result<(), String>;
}

/// A world kept only in memory (tests, benchmarks).
#[derive(Debug)]
pub struct MemoryStore(Mutex<World>);

impl MemoryStore {
    pub fn new(world: World) -> MemoryStore {
        MemoryStore(Mutex::new(world))
    }
}

impl WorldStore for MemoryStore {
    fn update(&self, change: &mut dyn FnMut(&mut World) -> bool) -> Result<(), String> {
        change(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        Ok(())
    }
}

/// What several processes write, per kube context: its leases, the resourceVersion counter
/// their writes move, and the inventory ConfigMaps.
#[derive(Debug, Clone, PartialEq)]
struct SharedCluster {
    context: String,
    leases: Vec<Lease>,
    last_resource_version: u64,
    inventory: Vec<KeyValueObject>,
}

type Shared = Vec<SharedCluster>;

fn is_inventory(object: &KeyValueObject) -> bool {
    object.labels.contains_key(INVENTORY_LABEL)
}

fn take_shared(world: &World) -> Shared {
    world
        .kubernetes
        .iter()
        .map(|c| SharedCluster {
            context: c.context.clone(),
            leases: c.leases.clone(),
            last_resource_version: c.last_resource_version,
            inventory: c.config_maps.iter().filter(|o| is_inventory(o)).cloned().collect(),
        })
        .collect()
}

fn put_shared(world: &mut World, shared: &Shared) {
    for cluster in &mut world.kubernetes {
        let Some(theirs) = shared.iter().find(|s| s.context == cluster.context) else {
            continue;
        };
        cluster.leases = theirs.leases.clone();
        cluster.last_resource_version = theirs.last_resource_version;
        cluster.config_maps.retain(|o| !is_inventory(o));
        cluster.config_maps.extend(theirs.inventory.iter().cloned());
    }
}

/// The simulated world the simulated backends share.
pub struct SimWorld {
    world: Mutex<World>,
    store: Box<dyn WorldStore>,
    clock: VirtualClock,
    /// The world's time when the virtual clock read zero: the clock counts from here. It moves
    /// on when the world itself moved ahead of the clock (settled, or edited by hand), so the
    /// world never runs ahead of the clock the engine waits on.
    base: AtomicU64,
}

impl std::fmt::Debug for SimWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimWorld").field("now", &self.lock().now).finish()
    }
}

impl SimWorld {
    pub fn new(mut world: World, store: Box<dyn WorldStore>) -> Arc<SimWorld> {
        // The actors react to the world as written (an agent with a bad key logs its error at
        // once): the first read sees what a real cluster would show. Stored on the next write.
        world.reconcile();
        let base = world.now;
        Arc::new(SimWorld { world: Mutex::new(world), store, clock: VirtualClock::new(), base: AtomicU64::new(base) })
    }

    /// A world kept in memory only.
    pub fn in_memory(world: World) -> Arc<SimWorld> {
        let store = MemoryStore::new(world.clone());
        SimWorld::new(world, Box::new(store))
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic elsewhere while holding the lock leaves a world that is still plain data.
        self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Let the world's clock catch up with the virtual clock.
    fn catch_up(&self, world: &mut World) {
        let target = self.base.load(Ordering::SeqCst).saturating_add(self.clock.now().as_secs());
        if target > world.now {
            world.advance(target - world.now);
        }
    }

    /// After the world moved on by itself, let the virtual clock count from its new time:
    /// otherwise the world would stand still until the clock caught up, and every modelled
    /// wait after it would take that much longer.
    fn resync(&self, world: &World) {
        let clock = self.clock.now().as_secs();
        if world.now > self.base.load(Ordering::SeqCst).saturating_add(clock) {
            self.base.store(world.now - clock, Ordering::SeqCst);
        }
    }

    /// The virtual clock the engine waits on.
    pub fn clock(&self) -> VirtualClock {
        self.clock.clone()
    }

    /// Read the world as it is now. Time that passed is a change like any other: a world
    /// that moved on is stored, so the next process starts where this one left it.
    pub fn read<R>(&self, f: impl FnOnce(&World) -> R) -> Result<R, BackendError> {
        let mut world = self.lock();
        let before = world.now;
        self.catch_up(&mut world);
        if world.now != before {
            self.persist(&world)?;
        }
        Ok(f(&world))
    }

    /// Change the world (an API call), let its actors react, and store it.
    pub fn write<R>(&self, f: impl FnOnce(&mut World) -> R) -> Result<R, BackendError> {
        let mut world = self.lock();
        self.catch_up(&mut world);
        let result = f(&mut world);
        world.reconcile();
        self.persist(&world)?;
        Ok(result)
    }

    fn persist(&self, world: &World) -> Result<(), BackendError> {
        self.store
            .update(&mut |stored| {
                let shared = take_shared(stored);
                *stored = world.clone();
                put_shared(stored, &shared);
                true
            })
            .map_err(|message| BackendError::Transport { message, retryable: false })
    }

    /// Read and change what several processes share (leases, the inventory) on the stored
    /// world, under the store's lock; memory follows. The stored world is written back only if
    /// `f` changed what is shared.
    pub fn transact<R>(&self, mut f: impl FnMut(&mut World) -> R) -> Result<R, BackendError> {
        let mut result = None;
        let mut shared = Vec::new();
        self.store
            .update(&mut |stored| {
                let before = take_shared(stored);
                result = Some(f(stored));
                shared = take_shared(stored);
                shared != before
            })
            .map_err(|message| BackendError::Transport { message, retryable: false })?;
        put_shared(&mut self.lock(), &shared);
        result
            .ok_or_else(|| BackendError::Transport { message: "the world store did not run".into(), retryable: false })
    }

    /// A copy of the world as it is now.
    pub fn snapshot(&self) -> World {
        let mut world = self.lock();
        self.catch_up(&mut world);
        world.clone()
    }

    /// Let every pending transition happen (tests: "and then the world settles").
    pub fn run_until_settled(&self) -> crate::Settled {
        let mut world = self.lock();
        self.catch_up(&mut world);
        let settled = world.run_until_settled();
        self.resync(&world);
        settled
    }

    /// Change the world behind the backends' back (tests: someone edits it by hand).
    pub fn edit<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut world = self.lock();
        let result = f(&mut world);
        world.reconcile();
        self.resync(&world);
        result
    }
}
