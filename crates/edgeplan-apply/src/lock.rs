//! The stack lock's rules, shared by every backend that stores the lease (a Kubernetes
//! `coordination.k8s.io/v1` Lease in the provider cluster; its equivalent in the simulated
//! world): who may take it, and what a refusal says.

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

/// Decide the claim. `process_alive(host, pid)` answers for holders on this host (`None` when
/// it cannot tell).
pub fn claim(
    existing: Option<&LeaseState>,
    me: &str,
    now: u64,
    process_alive: impl Fn(&str, u32) -> Option<bool>,
) -> Claim {
    let Some(lease) = existing else { return Claim::Free };
    if lease.holder == me {
        return Claim::Ours;
    }
    if now >= lease.expires_at() {
        let why = format!("its TTL of {}s expired {}s ago", lease.duration_seconds, now - lease.expires_at());
        return Claim::Abandoned { previous: lease.clone(), why };
    }
    if let Some((host, pid)) = host_and_pid(&lease.holder)
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
    fn a_dead_process_on_this_host_is_taken_over_a_live_or_unknown_one_is_not() {
        let dead = |host: &str, pid: u32| Some(!(host == "h" && pid == 2));
        assert!(matches!(claim(Some(&lease("you@h:2", 90)), "me@h:1", 100, dead), Claim::Abandoned { .. }));
        assert!(matches!(claim(Some(&lease("you@other:2", 90)), "me@h:1", 100, |_, _| None), Claim::HeldBy(_)));
        assert!(matches!(claim(Some(&lease("odd-holder", 90)), "me@h:1", 100, dead), Claim::HeldBy(_)));
    }
}
