//! `edgeplan destroy`, the stack lock and `edgeplan unlock` on scratch copies of the worlds.

mod common;

use std::collections::BTreeSet;

use common::{ScratchWorld, edgeplan, infrastructure};
use edgeplan_sim::{Lease, World};

fn world_of(scratch: &ScratchWorld) -> World {
    edgeplan_sim::load(&scratch.text()).expect("world loads")
}

/// Every object ID in the world, by kind: what "untouched" is checked against.
fn inventory(world: &World) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for account in &world.aws {
        for region in &account.regions {
            ids.extend(region.vpcs.iter().map(|v| format!("vpc {}", v.id)));
            ids.extend(region.subnets.iter().map(|s| format!("subnet {}", s.id)));
            ids.extend(region.route_tables.iter().map(|t| format!("route table {}", t.id)));
            ids.extend(region.security_groups.iter().map(|g| format!("security group {}", g.id)));
            ids.extend(region.load_balancers.iter().map(|l| format!("load balancer {}", l.arn)));
            ids.extend(region.endpoint_services.iter().map(|e| format!("endpoint service {}", e.service_id)));
            ids.extend(region.vpc_endpoints.iter().map(|e| format!("vpc endpoint {}", e.id)));
        }
        ids.extend(account.iam.policies.iter().map(|p| format!("policy {}", p.arn)));
        ids.extend(account.iam.roles.iter().map(|r| format!("role {}", r.name)));
    }
    for cluster in &world.kubernetes {
        ids.extend(
            cluster.deployments.iter().map(|d| format!("{} deployment {}/{}", cluster.context, d.namespace, d.name)),
        );
        ids.extend(cluster.services.iter().map(|s| format!("{} service {}/{}", cluster.context, s.namespace, s.name)));
        ids.extend(cluster.namespaces.iter().map(|n| format!("{} namespace {n}", cluster.context)));
    }
    for server in &world.portainer {
        ids.extend(server.environments.iter().map(|e| format!("environment {} {}", e.id, e.name)));
    }
    ids
}

#[test]
fn destroy_deletes_what_apply_created_and_leaves_the_seed_worlds_own_resources() {
    let scratch = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let original = inventory(&world_of(&scratch));
    let (code, out, err) =
        edgeplan(&["apply", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve", "--progress", "none"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let applied = inventory(&world_of(&scratch));
    let created: Vec<&String> = applied.difference(&original).collect();
    assert!(created.len() >= 6, "apply created the stack's objects: {created:#?}");

    let (code, out, err) =
        edgeplan(&["destroy", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve", "--progress", "plain"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Kept (destroy never touches these):"), "{out}");
    assert!(out.contains("consumer.prod.environment (portainer_environment): not created by this stack"), "{out}");
    let after = inventory(&world_of(&scratch));
    let lost: Vec<&String> = original.difference(&after).collect();
    assert!(lost.is_empty(), "pre-existing resources deleted: {lost:#?}");
    let left: Vec<&String> = after.difference(&original).collect();
    assert!(left.is_empty(), "created resources left behind: {left:#?}");

    // A second destroy has nothing to do, and does not even take the lock.
    let before = scratch.text();
    let (code, out, _) = edgeplan(&["destroy", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve"]);
    assert_eq!(code, 0);
    assert!(out.contains("Nothing to destroy"), "{out}");
    assert_eq!(scratch.text(), before, "a destroy with nothing to do rewrote the world file");
}

#[test]
fn destroy_without_a_terminal_refuses_unless_approved() {
    let scratch = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    edgeplan(&["apply", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve", "--progress", "none"]);
    let before = scratch.text();
    let (code, _, err) = edgeplan(&["destroy", "specs/seed.yaml", "--world", &scratch.path]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error[edgeplan::needs-approval]"), "{err}");
    assert_eq!(infrastructure(&scratch.text()), infrastructure(&before), "nothing changed");
}

fn with_lease(scratch: &ScratchWorld, holder: &str, renewed: u64) {
    let mut world = world_of(scratch);
    let cluster = world.kubernetes.iter_mut().find(|c| c.context == "staging").expect("provider cluster");
    cluster.leases.push(Lease {
        namespace: "default".into(),
        name: "edgeplan-portainer-edge".into(),
        holder_identity: holder.into(),
        lease_duration_seconds: 120,
        acquire_time: renewed,
        renew_time: renewed,
        resource_version: 1,
    });
    std::fs::write(&scratch.path, edgeplan_sim::save(&world)).expect("world written");
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

#[test]
fn a_second_apply_refuses_while_the_lock_is_held_and_unlock_releases_it() {
    let scratch = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let apply = ["apply", "specs/seed.yaml", "--world", scratch.path.as_str(), "--auto-approve", "--progress", "none"];
    // Applied, so that destroy has something to do and gets as far as the lock.
    let (code, out, err) = edgeplan(&apply);
    assert_eq!(code, 0, "{out}\n{err}");
    with_lease(&scratch, "alice@build-7:4242", now());
    let before = scratch.text();
    let (code, _, err) = edgeplan(&apply);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error[edgeplan::locked]") && err.contains("alice@build-7:4242"), "{err}");
    assert!(err.contains("until ") && err.contains("edgeplan unlock"), "{err}");
    assert_eq!(scratch.text(), before, "nothing was done, the file is not even rewritten");
    let (code, _, err) = edgeplan(&["destroy", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve"]);
    assert_eq!(code, 1, "destroy takes the same lock: {err}");
    assert_eq!(scratch.text(), before, "nothing was done, the file is not even rewritten");

    let (code, _, err) =
        edgeplan(&["unlock", "specs/seed.yaml", "--world", &scratch.path, "--holder", "bob@build-7:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("held by alice@build-7:4242, not bob@build-7:1"), "{err}");
    let (code, out, _) =
        edgeplan(&["unlock", "specs/seed.yaml", "--world", &scratch.path, "--holder", "alice@build-7:4242"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = edgeplan(&apply);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(world_of(&scratch).kubernetes.iter().all(|c| c.leases.is_empty()), "released at the end");
}

/// `YYYY-MM-DDTHH:MM:SSZ` at the start of `text`.
fn starts_with_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20
        && bytes[..20].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

#[test]
fn the_lock_refusal_shows_a_readable_time_and_what_the_holder_is_doing() {
    let scratch = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    // Held by another apply for 20 s already: 1m40s of its 120 s TTL are left.
    with_lease(&scratch, "alice@build-7:4242 (edgeplan apply specs/seed.yaml)", now() - 20);
    let (code, _, err) =
        edgeplan(&["apply", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve", "--progress", "none"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("locked by alice@build-7:4242, running `edgeplan apply specs/seed.yaml`"), "{err}");
    let until = err.split_once(" until ").map(|(_, rest)| rest).expect("an expiry");
    assert!(starts_with_rfc3339_utc(until), "a readable UTC time, not epoch seconds: {err}");
    assert!(until[20..].starts_with(" (in 1m40s") || until[20..].starts_with(" (in 1m39s"), "{err}");
    assert!(err.contains("--holder alice@build-7:4242`"), "unlock names the process: {err}");
    // The process is enough to name the holder.
    let (code, out, err) =
        edgeplan(&["unlock", "specs/seed.yaml", "--world", &scratch.path, "--holder", "alice@build-7:4242"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn an_expired_lease_is_taken_over() {
    let scratch = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    with_lease(&scratch, "alice@build-7:4242", now() - 600);
    let (code, out, err) =
        edgeplan(&["apply", "specs/seed.yaml", "--world", &scratch.path, "--auto-approve", "--progress", "none"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("warning[edgeplan::lock-taken-over]") && err.contains("expired"), "{err}");
}

#[test]
fn sigint_releases_the_lock() {
    a_signal_releases_the_lock("-INT");
}

#[test]
fn sigterm_releases_the_lock() {
    a_signal_releases_the_lock("-TERM");
}

fn a_signal_releases_the_lock(signal: &str) {
    // A test hook holds the lock for a while before apply walks the graph (on the virtual
    // clock the walk itself takes milliseconds): the signal arrives while the lock is held.
    let scratch = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let args = ["apply", "specs/seed.yaml", "--world", scratch.path.as_str(), "--auto-approve", "--progress", "none"];
    let mut child = common::command_in(&common::root(), &args, &[("EDGEPLAN_TEST_HOLD_LOCK_MS", "20000")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("edgeplan runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let holder = loop {
        let holders: Vec<String> = world_of(&scratch)
            .kubernetes
            .iter()
            .flat_map(|c| c.leases.iter().map(|l| l.holder_identity.clone()))
            .collect();
        if let Some(holder) = holders.into_iter().next() {
            break holder;
        }
        assert!(std::time::Instant::now() < deadline, "apply never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The lease says what its holder is doing: the subcommand and the spec, never the argv.
    assert!(holder.ends_with(&format!(":{} (edgeplan apply specs/seed.yaml)", child.id())), "{holder}");
    let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let code = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status.code();
        }
        assert!(std::time::Instant::now() < deadline, "apply did not stop on {signal}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code, Some(130), "{signal}");
    assert!(world_of(&scratch).kubernetes.iter().all(|c| c.leases.is_empty()), "{signal} released the lease");
}
