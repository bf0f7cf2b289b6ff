//! The stack lock: a Lease in the provider cluster (in the simulated world, the cluster's
//! `leases`), taken by apply and destroy, renewed on every write, released on exit and on
//! SIGINT; `edgeplan unlock SPEC --holder ID` for the rare stuck case.

use std::path::Path;

use edgeplan_apply::{Claim, LeaseState, claim, holder_identity};
use edgeplan_sim::Lease;

use crate::args::UnlockArgs;
use crate::engine::{Stack, WorldFile, load_stack, lock_world_file, open_world, unix_now};
use crate::exit;

const LEASE_NAMESPACE: &str = "default";
/// Long enough to outlive a pause between writes; a dead holder on this host is detected
/// sooner (its process is gone).
const LEASE_SECONDS: u64 = 120;

fn lease_name(stack: &str) -> String {
    format!("edgeplan-{stack}")
}

fn provider_context(stack: &Stack) -> String {
    stack.spec.spec.provider.cluster.kube_context.value.clone()
}

fn me() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    holder_identity(&user, &hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// On this host, is `pid` running? (Linux: /proc; elsewhere: cannot tell.)
fn process_alive(host: &str, pid: u32) -> Option<bool> {
    (host == hostname() && Path::new("/proc/self").exists()).then(|| Path::new(&format!("/proc/{pid}")).exists())
}

fn state(lease: &Lease) -> LeaseState {
    LeaseState {
        holder: lease.holder_identity.clone(),
        duration_seconds: lease.lease_duration_seconds,
        acquired_at: lease.acquire_time,
        renewed_at: lease.renew_time,
    }
}

/// Released when dropped.
pub(crate) struct LeaseGuard<'w> {
    world: &'w WorldFile,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        let held = self.world.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some((context, name, holder)) = held {
            release_in_file(&self.world.path, &context, &name, &holder);
        }
    }
}

/// Take the stack's lease for `operation`, or refuse naming the holder and the expiry.
pub(crate) fn acquire<'w>(world: &'w WorldFile, stack: &Stack, operation: &str) -> Result<LeaseGuard<'w>, u8> {
    let (context, name, holder) = (provider_context(stack), lease_name(stack.name()), me());
    let _file = world.file_lock()?;
    // Re-read under the file lock: another process may have written since we loaded.
    let text = std::fs::read_to_string(&world.path).map_err(|err| {
        eprintln!("error[edgeplan::cannot-read]: cannot read world {}: {err}", world.path.display());
        exit::CANNOT_RUN
    })?;
    let fresh = edgeplan_sim::load(&text).map_err(|err| {
        eprintln!("error[edgeplan::world]: {}: {err}", world.path.display());
        exit::CANNOT_RUN
    })?;
    world.sim.with_world(|w| *w = fresh);
    let now = unix_now();
    let existing = world.sim.with_world(|w| {
        w.kubernetes.iter().filter(|c| c.context == context).flat_map(|c| &c.leases).find(|l| l.name == name).cloned()
    });
    match claim(existing.as_ref().map(state).as_ref(), &holder, now, process_alive) {
        Claim::Free | Claim::Ours => {}
        Claim::Abandoned { previous, why } => {
            eprintln!(
                "warning[edgeplan::lock-taken-over]: the lock of stack `{}` was held by {} and {why}; taking it over",
                stack.name(),
                previous.holder
            );
        }
        Claim::HeldBy(lease) => {
            eprintln!(
                "error[edgeplan::locked]: stack `{}` is locked by {} (Lease {LEASE_NAMESPACE}/{name} in `{context}`) \
                 until {} (in {}s); nothing was done",
                stack.name(),
                lease.holder,
                lease.expires_at(),
                lease.expires_at().saturating_sub(now)
            );
            eprintln!(
                "  help: wait for that {operation} to finish; if it is gone for good, run \
                 `edgeplan unlock SPEC --world FILE --holder {}`",
                lease.holder
            );
            return Err(exit::CANNOT_RUN);
        }
    }
    let lease = Lease {
        namespace: LEASE_NAMESPACE.to_string(),
        name: name.clone(),
        holder_identity: holder.clone(),
        lease_duration_seconds: LEASE_SECONDS,
        acquire_time: now,
        renew_time: now,
    };
    world.sim.with_world(|w| {
        if let Some(cluster) = w.kubernetes.iter_mut().find(|c| c.context == context) {
            cluster.leases.retain(|l| l.name != name);
            cluster.leases.push(lease);
        }
    });
    world.write_unlocked(&world.sim.save())?;
    *world.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((context.clone(), name.clone(), holder.clone()));
    let path = world.path.clone();
    // SIGINT: release the lease, then stop (the world is as far as the last write got).
    let _ = ctrlc::set_handler(move || {
        release_in_file(&path, &context, &name, &holder);
        eprintln!("\ninterrupted: lock released; run the same command again to continue");
        std::process::exit(130);
    });
    Ok(LeaseGuard { world })
}

/// Remove `holder`'s lease from the world file (under the file lock). Returns whether it was there.
fn release_in_file(path: &Path, context: &str, name: &str, holder: &str) -> bool {
    let Ok(_file) = lock_world_file(path) else { return false };
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let Ok(mut world) = edgeplan_sim::load(&text) else { return false };
    let mut removed = false;
    for cluster in world.kubernetes.iter_mut().filter(|c| c.context == context) {
        let before = cluster.leases.len();
        cluster.leases.retain(|l| !(l.name == name && l.holder_identity == holder));
        removed |= cluster.leases.len() != before;
    }
    if removed {
        let tmp = path.with_extension("yaml.tmp");
        let _ = std::fs::write(&tmp, edgeplan_sim::save(&world)).and_then(|()| std::fs::rename(&tmp, path));
    }
    removed
}

/// `edgeplan unlock SPEC --world FILE --holder ID`.
pub(crate) fn run(args: UnlockArgs) -> u8 {
    let stack = match load_stack(&args.spec) {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let world = match open_world(args.world.as_deref(), &stack.spec) {
        Ok(world) => world,
        Err(code) => return code,
    };
    let (context, name) = (provider_context(&stack), lease_name(stack.name()));
    if release_in_file(&world.path, &context, &name, &args.holder) {
        println!("Released the lock of stack `{}` held by {}.", stack.name(), args.holder);
        return exit::OK;
    }
    let current = world.sim.with_world(|w| {
        w.kubernetes.iter().filter(|c| c.context == context).flat_map(|c| &c.leases).find(|l| l.name == name).cloned()
    });
    match current {
        Some(lease) => eprintln!(
            "error[edgeplan::unlock]: the lock of stack `{}` is held by {}, not {}; nothing was released",
            stack.name(),
            lease.holder_identity,
            args.holder
        ),
        None => eprintln!("error[edgeplan::unlock]: stack `{}` is not locked", stack.name()),
    }
    eprintln!("  help: --holder must name the current holder exactly, as the refusal printed it");
    exit::FINDINGS
}
