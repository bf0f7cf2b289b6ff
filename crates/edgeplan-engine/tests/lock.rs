//! The stack lock through the provider cluster's backend: taken with optimistic concurrency,
//! refused while held, renewed on a timer (a third of its TTL) while an apply waits, lost when
//! another process takes it over, and released.

use std::sync::Arc;

use edgeplan_engine::lock::{LEASE_NAMESPACE, LEASE_SECONDS, lease_name, read_inventory};
use edgeplan_engine::{ApplyOptions, LockError, NoProgress};
use edgeplan_testkit::{run, seed_stack, session, sim, world};

const ALIVE: fn(&str, u32) -> Option<bool> = |_, _| Some(true);

#[test]
fn a_held_lock_refuses_another_holder_and_release_frees_it() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let first = session(seed_stack(), &world);
    let second = session(seed_stack(), &world);
    let held = run(&first, first.lock("alice@host-a:1", ALIVE)).expect("free");
    match run(&second, second.lock("bob@host-b:2", ALIVE)) {
        Err(LockError::Held(lease)) => assert_eq!(lease.holder, "alice@host-a:1"),
        other => panic!("expected Held, got {other:?}"),
    }
    run(&first, held.release()).expect("released");
    let taken = run(&second, second.lock("bob@host-b:2", ALIVE)).expect("free again");
    assert_eq!(taken.record().holder, "bob@host-b:2");
}

#[test]
fn a_dead_holder_on_this_host_is_taken_over_and_says_so() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let first = session(seed_stack(), &world);
    let held = run(&first, first.lock("alice@host-a:1", ALIVE)).expect("free");
    std::mem::forget(held); // killed: no release
    let dead = |host: &str, pid: u32| Some(!(host == "host-a" && pid == 1));
    let second = session(seed_stack(), &world);
    let taken = run(&second, second.lock("alice@host-a:2", dead)).expect("taken over");
    let (previous, why) = taken.took_over.clone().expect("it says whose lock it took");
    assert_eq!(previous, "alice@host-a:1");
    assert!(why.contains("no longer runs"), "{why}");
}

#[test]
fn the_lease_is_renewed_on_a_timer_while_an_apply_waits() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let session = session(seed_stack(), &world);
    let (report, renewals) = run(&session, async {
        let held = session.lock("alice@host-a:1", ALIVE).await.expect("free");
        let before: u64 = held.record().resource_version.parse().expect("a number");
        let planned = session.plan().await;
        let report = session
            .apply(&planned, None, &ApplyOptions::default(), &NoProgress, Some(&held), false)
            .await
            .expect("the lock is kept");
        let after: u64 = held.record().resource_version.parse().expect("a number");
        held.release().await.expect("released");
        (report, after - before)
    });
    assert!(report.succeeded());
    // Six modelled minutes of waits, renewed every LEASE_SECONDS / 3: no renewal gap longer than
    // a third of the TTL, so a 3-minute NLB wait never lets the lease expire.
    let period = LEASE_SECONDS / 3;
    let expected = report.makespan.as_secs() / period;
    assert!(renewals >= expected, "{renewals} renewals in {:?} (one per {period}s expected)", report.makespan);
    assert!(renewals <= expected + 1, "{renewals} renewals in {:?}", report.makespan);
}

#[test]
fn an_apply_stops_when_another_process_takes_the_lock_over() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let session = session(seed_stack(), &world);
    let stack = session.stack.name.clone();
    let result = run(&session, async {
        let held = session.lock("alice@host-a:1", ALIVE).await.expect("free");
        // Someone else writes the lease (an operator's `unlock`, then another apply).
        let store_world = Arc::clone(&world);
        store_world
            .transact(|w| {
                for lease in w.kubernetes.iter_mut().flat_map(|c| c.leases.iter_mut()) {
                    if lease.name == lease_name(&stack) && lease.namespace == LEASE_NAMESPACE {
                        lease.holder_identity = "mallory@elsewhere:9".to_string();
                        lease.resource_version += 1;
                    }
                }
            })
            .expect("the world stores");
        let planned = session.plan().await;
        session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, Some(&held), false).await
    });
    match result {
        Err(LockError::Lost(message)) => assert!(message.contains("modified"), "{message}"),
        other => panic!("expected the lock to be lost, got {other:?}"),
    }
}

#[test]
fn apply_records_every_scope_in_the_inventory_and_keeps_those_of_the_spec() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let session = session(seed_stack(), &world);
    let scopes = run(&session, async {
        let planned = session.plan().await;
        let report =
            session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, false).await.expect("no lock");
        assert!(report.succeeded());
        let provider = session.provider_backend().await.expect("the provider cluster");
        read_inventory(&provider, &session.stack.name).await.expect("readable")
    });
    let mut expected = session.stack.scopes();
    expected.sort();
    let mut scopes = scopes;
    scopes.sort();
    assert_eq!(scopes, expected);
}
