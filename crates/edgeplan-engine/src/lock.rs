//! The stack lock: a `coordination.k8s.io/v1` Lease in the provider cluster, taken through the
//! [`LeaseStore`] of the backend that serves that cluster (the simulated world's, or a real
//! cluster's). Who may take it, taking it with optimistic concurrency, renewing it on a timer
//! (a third of its TTL) while an apply waits, and releasing it. Next to it, the stack's
//! inventory: the list of scopes it has touched, so a scope the spec no longer names is still
//! searched for what the stack owns there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeplan_model::{Backend, BackendError, Clock, LeaseRecord, LeaseStore, Scope};

/// Where the lease lives in the provider cluster.
pub const LEASE_NAMESPACE: &str = "default";
/// Long enough to outlive a pause; renewed every third of it while the lock is held.
pub const LEASE_SECONDS: u64 = 120;

pub fn lease_name(stack: &str) -> String {
    format!("edgeplan-{stack}")
}

/// The inventory's name: a ConfigMap next to the lease.
pub fn inventory_name(stack: &str) -> String {
    format!("edgeplan-{stack}-scopes")
}

/// Wall-clock Unix seconds: leases are between real processes, whatever clock the backends keep.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The lease as the lock sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    pub holder: String,
    pub duration_seconds: u64,
    pub acquired_at: u64,
    pub renewed_at: u64,
}

impl LeaseState {
    pub fn expires_at(&self) -> u64 {
        self.renewed_at.saturating_add(self.duration_seconds)
    }

    /// The holding process, `user@host:pid` (what `edgeplan unlock --holder` takes).
    pub fn process(&self) -> &str {
        holder_process(&self.holder)
    }

    /// What the holder said it is doing (`edgeplan apply specs/seed.yaml`), if it said.
    pub fn activity(&self) -> Option<&str> {
        holder_activity(&self.holder)
    }
}

/// Unix seconds as RFC 3339 in UTC (`2025-01-31T09:05:00Z`): what a person reads in a lock
/// message, instead of epoch seconds.
pub fn utc_timestamp(unix: u64) -> String {
    // Days to a civil date (Howard Hinnant's `civil_from_days`), on non-negative days.
    let (days, seconds) = (unix / 86_400, unix % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", seconds / 3_600, seconds / 60 % 60, seconds % 60)
}

/// What to do with the lease this process wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody holds it.
    Free,
    /// We already hold it (renew).
    Ours,
    /// Its holder stopped renewing: its TTL expired, or it names a process on this host that
    /// no longer runs. Take it over, saying whose it was.
    Abandoned { previous: LeaseState, why: String },
    /// Someone else holds it: refuse, naming them and when it expires.
    HeldBy(LeaseState),
}

/// Holder identities are `user@host:pid`, so a dead holder on this host is recognisable.
pub fn holder_identity(user: &str, host: &str, pid: u32) -> String {
    format!("{user}@{host}:{pid}")
}

/// A holder identity that also says what the holder is doing, as the lease's holder:
/// `user@host:pid (edgeplan apply specs/seed.yaml)`, so whoever is refused knows which run to
/// wait for. `doing` is the subcommand and the spec, never the whole command line (it may
/// carry secrets); control characters are replaced so the refusal stays one line.
pub fn holder_doing(identity: &str, doing: &str) -> String {
    let doing: String = doing.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    format!("{identity} ({doing})")
}

/// The process part of a lease holder: `user@host:pid`, without what it is doing.
pub fn holder_process(holder: &str) -> &str {
    holder.split_once(" (").map_or(holder, |(process, _)| process)
}

/// What a lease holder says it is doing, if it says.
pub fn holder_activity(holder: &str) -> Option<&str> {
    holder.split_once(" (").and_then(|(_, rest)| rest.strip_suffix(')')).filter(|doing| !doing.is_empty())
}

/// Decide the claim. `process_alive(host, pid)` answers for holders on this host (`None` when
/// it cannot tell).
pub fn claim(
    existing: Option<&LeaseState>,
    me: &str,
    now: u64,
    process_alive: impl Fn(&str, u32) -> Option<bool>,
) -> Claim {
    let Some(lease) = existing else { return Claim::Free };
    // The same process, whatever it said it was doing.
    if lease.holder == me || lease.process() == holder_process(me) {
        return Claim::Ours;
    }
    if now >= lease.expires_at() {
        let why = format!("its TTL of {}s expired {}s ago", lease.duration_seconds, now - lease.expires_at());
        return Claim::Abandoned { previous: lease.clone(), why };
    }
    if let Some((host, pid)) = host_and_pid(lease.process())
        && process_alive(host, pid) == Some(false)
    {
        return Claim::Abandoned { previous: lease.clone(), why: format!("process {pid} on {host} no longer runs") };
    }
    Claim::HeldBy(lease.clone())
}

fn host_and_pid(holder: &str) -> Option<(&str, u32)> {
    let (_, at) = holder.rsplit_once('@')?;
    let (host, pid) = at.rsplit_once(':')?;
    Some((host, pid.parse().ok()?))
}

/// Why the lock could not be taken or kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Someone else holds it.
    Held(LeaseState),
    /// The provider cluster's backend keeps no leases.
    NoLeases(Scope),
    /// The lease changed under us: another process took it over.
    Lost(String),
    Backend(BackendError),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(lease) => {
                write!(f, "held by {} until {}", lease.holder, utc_timestamp(lease.expires_at()))
            }
            LockError::NoLeases(scope) => write!(f, "{scope} cannot store the stack's lease"),
            LockError::Lost(why) => write!(f, "the lock was lost: {why}"),
            LockError::Backend(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for LockError {}

fn state(record: &LeaseRecord) -> LeaseState {
    LeaseState {
        holder: record.holder.clone(),
        duration_seconds: record.duration_seconds,
        acquired_at: record.acquired_at,
        renewed_at: record.renewed_at,
    }
}

/// A lease this process holds. Renew it with [`HeldLock::renew`] (or [`HeldLock::keep`] on a
/// timer); release it with [`HeldLock::release`].
pub struct HeldLock {
    backend: Arc<dyn Backend>,
    record: Mutex<LeaseRecord>,
    /// Set when the lease was taken over from a holder that stopped renewing: (holder, why).
    pub took_over: Option<(String, String)>,
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLock").field("record", &self.record()).finish()
    }
}

fn store(backend: &Arc<dyn Backend>) -> Result<&dyn LeaseStore, LockError> {
    backend.leases().ok_or_else(|| LockError::NoLeases(backend.scope().clone()))
}

/// Take the stack's lease for `holder`, or refuse naming who holds it. `process_alive(host,
/// pid)` answers for holders on this host (`None` when it cannot tell).
pub async fn acquire(
    backend: Arc<dyn Backend>,
    stack: &str,
    holder: &str,
    process_alive: impl Fn(&str, u32) -> Option<bool>,
) -> Result<HeldLock, LockError> {
    let leases = store(&backend)?;
    let name = lease_name(stack);
    let existing = leases.get_lease(LEASE_NAMESPACE, &name).await.map_err(LockError::Backend)?;
    let now = unix_now();
    let mut took_over = None;
    let wanted = |resource_version: String, acquired_at: u64| LeaseRecord {
        namespace: LEASE_NAMESPACE.to_string(),
        name: name.clone(),
        holder: holder.to_string(),
        duration_seconds: LEASE_SECONDS,
        acquired_at,
        renewed_at: now,
        resource_version,
    };
    let record = match (claim(existing.as_ref().map(state).as_ref(), holder, now, process_alive), existing) {
        (Claim::HeldBy(lease), _) => return Err(LockError::Held(lease)),
        (Claim::Free, _) | (_, None) => leases.create_lease(&wanted(String::new(), now)).await,
        (Claim::Ours, Some(current)) => {
            leases.replace_lease(&wanted(current.resource_version, current.acquired_at)).await
        }
        (Claim::Abandoned { previous, why }, Some(current)) => {
            took_over = Some((previous.holder, why));
            leases.replace_lease(&wanted(current.resource_version, now)).await
        }
    };
    let record = match record {
        Ok(record) => record,
        // Someone took it between our read and our write: theirs now.
        Err(BackendError::Conflict { .. }) => {
            let current = leases.get_lease(LEASE_NAMESPACE, &name).await.map_err(LockError::Backend)?;
            return Err(match current {
                Some(current) => LockError::Held(state(&current)),
                None => LockError::Lost("the lease changed while it was being taken".to_string()),
            });
        }
        Err(error) => return Err(LockError::Backend(error)),
    };
    Ok(HeldLock { backend, record: Mutex::new(record), took_over })
}

impl HeldLock {
    pub fn record(&self) -> LeaseRecord {
        self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Renew the lease now. A conflict means someone else wrote it: the lock is lost.
    pub async fn renew(&self) -> Result<(), LockError> {
        let mut wanted = self.record();
        wanted.renewed_at = unix_now();
        match store(&self.backend)?.replace_lease(&wanted).await {
            Ok(record) => {
                *self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = record;
                Ok(())
            }
            Err(BackendError::Conflict { message, .. }) => Err(LockError::Lost(message)),
            Err(error) => Err(LockError::Backend(error)),
        }
    }

    /// Renew every third of the TTL until the lock is lost (never returns otherwise): run it
    /// alongside an apply, so a 3-minute NLB wait never lets the lease expire.
    pub async fn keep(&self, clock: Arc<dyn Clock>) -> LockError {
        let period = Duration::from_secs(self.record().duration_seconds.max(3) / 3);
        loop {
            clock.sleep(period).await;
            // A transient failure is retried at the next tick; the TTL leaves room for two.
            if let Err(error @ (LockError::Lost(_) | LockError::NoLeases(_))) = self.renew().await {
                return error;
            }
        }
    }

    /// Release the lease (if it is still ours).
    pub async fn release(&self) -> Result<(), LockError> {
        let record = self.record();
        let leases = store(&self.backend)?;
        match leases.delete_lease(&record.namespace, &record.name, &record.resource_version).await {
            Ok(()) | Err(BackendError::NotFound { .. }) => Ok(()),
            Err(BackendError::Conflict { message, .. }) => Err(LockError::Lost(message)),
            Err(error) => Err(LockError::Backend(error)),
        }
    }

    /// [`HeldLock::release`] from a thread with no runtime (a signal handler).
    pub fn release_blocking(&self) -> Result<(), LockError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| LockError::Backend(BackendError::unsupported(e.to_string())))?;
        runtime.block_on(self.release())
    }
}

/// `edgeplan unlock`: release the stack's lease if `holder` holds it (the holder as the lease
/// names it, or just its process, `user@host:pid`).
pub async fn force_release(backend: Arc<dyn Backend>, stack: &str, holder: &str) -> Result<(), LockError> {
    let leases = store(&backend)?;
    let name = lease_name(stack);
    let Some(current) = leases.get_lease(LEASE_NAMESPACE, &name).await.map_err(LockError::Backend)? else {
        return Err(LockError::Lost("the stack is not locked".to_string()));
    };
    if current.holder != holder && holder_process(&current.holder) != holder {
        return Err(LockError::Held(state(&current)));
    }
    leases.delete_lease(LEASE_NAMESPACE, &name, &current.resource_version).await.map_err(LockError::Backend)
}

/// The scopes the stack has touched (its inventory), or none yet.
pub async fn read_inventory(backend: &Arc<dyn Backend>, stack: &str) -> Result<Vec<Scope>, LockError> {
    let leases = store(backend)?;
    let records = leases.get_inventory(LEASE_NAMESPACE, &inventory_name(stack)).await.map_err(LockError::Backend)?;
    Ok(records.unwrap_or_default().iter().filter_map(|r| Scope::from_record(r)).collect())
}

/// Replace the inventory (an empty list removes it).
pub async fn write_inventory(backend: &Arc<dyn Backend>, stack: &str, scopes: &[Scope]) -> Result<(), LockError> {
    let leases = store(backend)?;
    let mut records: Vec<String> = scopes.iter().filter(|s| **s != Scope::Engine).map(Scope::to_record).collect();
    records.sort();
    records.dedup();
    leases.put_inventory(LEASE_NAMESPACE, &inventory_name(stack), &records).await.map_err(LockError::Backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_at: u64) -> LeaseState {
        LeaseState { holder: holder.to_string(), duration_seconds: 60, acquired_at: renewed_at, renewed_at }
    }

    const ALIVE: fn(&str, u32) -> Option<bool> = |_, _| Some(true);

    #[test]
    fn free_ours_held_and_expired() {
        assert_eq!(claim(None, "me@h:1", 100, ALIVE), Claim::Free);
        assert_eq!(claim(Some(&lease("me@h:1", 90)), "me@h:1", 100, ALIVE), Claim::Ours);
        assert_eq!(claim(Some(&lease("you@h:2", 90)), "me@h:1", 100, ALIVE), Claim::HeldBy(lease("you@h:2", 90)));
        match claim(Some(&lease("you@h:2", 10)), "me@h:1", 100, ALIVE) {
            Claim::Abandoned { why, .. } => assert_eq!(why, "its TTL of 60s expired 30s ago"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_holder_says_what_it_is_doing_and_is_still_recognised_by_its_process() {
        let holder = holder_doing("me@h:1", "edgeplan apply specs/seed.yaml");
        assert_eq!(holder, "me@h:1 (edgeplan apply specs/seed.yaml)");
        assert_eq!(holder_process(&holder), "me@h:1");
        assert_eq!(holder_activity(&holder), Some("edgeplan apply specs/seed.yaml"));
        assert_eq!(holder_process("me@h:1"), "me@h:1");
        assert_eq!(holder_activity("me@h:1"), None);
        assert_eq!(holder_doing("me@h:1", "edgeplan apply a\nb"), "me@h:1 (edgeplan apply a?b)");
        // Our own lease, whatever it said; a dead process is recognised through the suffix.
        assert_eq!(claim(Some(&lease(&holder, 90)), "me@h:1 (edgeplan destroy x)", 100, ALIVE), Claim::Ours);
        let dead = |_: &str, _: u32| Some(false);
        let theirs = holder_doing("you@h:2", "edgeplan apply specs/seed.yaml");
        assert!(matches!(claim(Some(&lease(&theirs, 90)), "me@h:1", 100, dead), Claim::Abandoned { .. }));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc_timestamp(4_107_542_399), "2100-02-28T23:59:59Z");
        assert!(utc_timestamp(u64::MAX).ends_with('Z'), "no overflow on any input");
    }

    #[test]
    fn a_dead_process_on_this_host_is_taken_over_a_live_or_unknown_one_is_not() {
        let dead = |host: &str, pid: u32| Some(!(host == "h" && pid == 2));
        assert!(matches!(claim(Some(&lease("you@h:2", 90)), "me@h:1", 100, dead), Claim::Abandoned { .. }));
        assert!(matches!(claim(Some(&lease("you@other:2", 90)), "me@h:1", 100, |_, _| None), Claim::HeldBy(_)));
        assert!(matches!(claim(Some(&lease("odd-holder", 90)), "me@h:1", 100, dead), Claim::HeldBy(_)));
    }
}
