//! The shared simulated world behind every simulated backend: the world in memory, where it
//! is kept (a file for the CLI, memory for tests), and its virtual clock.
//!
//! The world is written back after every mutation, as a cloud keeps what was done: a killed
//! apply leaves the world as far as it got. Several processes may share one stored world (two
//! stacks applied at once on one world file): every change — an API call, time passing,
//! a lease — is made on the stored world as freshly read under the store's lock, never on this
//! process's copy, so no process overwrites what another one did. The copy in memory is what
//! reads see between changes; it follows the stored world after each one.

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

/// What a lease operation may change, per kube context: its leases, the resourceVersion counter
/// their writes move, and the inventory ConfigMaps. A transaction that leaves it as it was
/// stores nothing.
#[derive(Debug, Clone, PartialEq)]
struct SharedCluster {
    context: String,
    leases: Vec<Lease>,
    last_resource_version: u64,
    inventory: Vec<KeyValueObject>,
}

fn is_inventory(object: &KeyValueObject) -> bool {
    object.labels.contains_key(INVENTORY_LABEL)
}

fn shared(world: &World) -> Vec<SharedCluster> {
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

fn transport(message: String) -> BackendError {
    BackendError::Transport { message, retryable: false }
}

/// The simulated world the simulated backends share.
pub struct SimWorld {
    /// The stored world as this process last read or changed it, with its actors' reactions:
    /// what reads see until time passes or this process changes something.
    world: Mutex<World>,
    store: Box<dyn WorldStore>,
    clock: VirtualClock,
    /// The world's time when the virtual clock read zero: the clock counts from here. It moves
    /// on when the world itself moved ahead of the clock (settled, edited by hand, or moved on
    /// by another process), so the world never runs ahead of the clock the engine waits on.
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

    /// The world time the virtual clock stands at.
    fn target(&self) -> u64 {
        self.base.load(Ordering::SeqCst).saturating_add(self.clock.now().as_secs())
    }

    /// Let the world's clock catch up with the virtual clock (after counting from the world's
    /// own time if it moved on: another process may have moved it).
    fn catch_up(&self, world: &mut World) {
        self.resync(world);
        let target = self.target();
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

    /// Run `change` on the stored world, freshly read under the store's lock, and store it if
    /// `change` says it changed something; the copy in memory becomes that world (with its
    /// actors' reactions, which `reconciled` says `change` already ran). `memory` is this
    /// process's copy, held so the process's own changes take turns too.
    fn update(
        &self,
        memory: &mut World,
        reconciled: bool,
        change: &mut dyn FnMut(&mut World) -> bool,
    ) -> Result<(), BackendError> {
        let mut fresh = None;
        self.store
            .update(&mut |stored| {
                let changed = change(stored);
                fresh = Some(stored.clone());
                changed
            })
            .map_err(transport)?;
        if let Some(mut fresh) = fresh {
            if !reconciled {
                fresh.reconcile();
            }
            *memory = fresh;
        }
        Ok(())
    }

    /// Read the world as it is now. Time that passed is a change like any other: a world
    /// that moved on is stored, so the next process starts where this one left it.
    pub fn read<R>(&self, f: impl FnOnce(&World) -> R) -> Result<R, BackendError> {
        let mut world = self.lock();
        if world.now < self.target() {
            self.update(&mut world, true, &mut |stored| {
                let before = stored.now;
                self.catch_up(stored);
                stored.now != before
            })?;
        }
        Ok(f(&world))
    }

    /// Change the world (an API call), let its actors react, and store it.
    pub fn write<R>(&self, f: impl FnOnce(&mut World) -> R) -> Result<R, BackendError> {
        let mut world = self.lock();
        let mut f = Some(f);
        let mut result = None;
        self.update(&mut world, true, &mut |stored| {
            let Some(f) = f.take() else { return false };
            self.catch_up(stored);
            result = Some(f(stored));
            stored.reconcile();
            true
        })?;
        result.ok_or_else(|| transport("the world store did not run".into()))
    }

    /// Read and change what several processes share (leases, the inventory) on the stored
    /// world, under the store's lock; memory follows. The stored world is written back only if
    /// `f` changed what is shared.
    pub fn transact<R>(&self, mut f: impl FnMut(&mut World) -> R) -> Result<R, BackendError> {
        let mut world = self.lock();
        let mut result = None;
        self.update(&mut world, false, &mut |stored| {
            let before = shared(stored);
            result = Some(f(stored));
            shared(stored) != before
        })?;
        result.ok_or_else(|| transport("the world store did not run".into()))
    }

    /// A copy of the world as it is now.
    pub fn snapshot(&self) -> World {
        self.read(World::clone).unwrap_or_else(|_| self.lock().clone())
    }

    /// Let every pending transition happen (tests: "and then the world settles").
    pub fn run_until_settled(&self) -> crate::Settled {
        let mut world = self.lock();
        let mut settled = None;
        let stored = self.update(&mut world, true, &mut |stored| {
            self.catch_up(stored);
            settled = Some(stored.run_until_settled());
            self.resync(stored);
            true
        });
        match (stored, settled) {
            (Ok(()), Some(settled)) => settled,
            // The store failed: settle this process's copy, as the tests that call this expect.
            _ => {
                self.catch_up(&mut world);
                let settled = world.run_until_settled();
                self.resync(&world);
                settled
            }
        }
    }

    /// Change the world behind the backends' back (tests: someone edits it by hand). Like a
    /// person with an editor, it reads the stored world, changes it and writes it back.
    pub fn edit<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut world = self.lock();
        // Best effort: a store that cannot be read leaves the edit on this process's copy.
        let _ = self.update(&mut world, false, &mut |_| false);
        let result = f(&mut world);
        world.reconcile();
        self.resync(&world);
        let edited = world.clone();
        let _ = self.update(&mut world, true, &mut |stored| {
            *stored = edited.clone();
            true
        });
        result
    }
}
