//! `edgeplan apply` and `verify` on scratch copies of the simulated worlds: the recorded apply,
//! the converged world's plan (no changes, exit 0 with --detailed-exitcode), approvals, saved
//! plans, targeting and the fault hook.

mod common;

use common::{ScratchWorld, edgeplan, edgeplan_with_env, infrastructure};

/// The secrets the fleet spec references (`env:`), as a user exports them.
const FLEET_SECRETS: [(&str, &str); 2] =
    [("AGENT_SECRET", "agent-secret-for-tests"), ("PARTNER_AGENT_SECRET", "p4rtner")];

fn apply(spec: &str, world: &ScratchWorld, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["apply", spec, "--world", &world.path, "--auto-approve", "--progress", "plain"];
    args.extend_from_slice(extra);
    edgeplan_with_env(&args, &FLEET_SECRETS)
}

#[test]
fn the_seed_world_is_applied_verified_and_then_has_no_changes() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // The plan itself is pinned by plan_cli's snapshots; this pins the progress, report and verify.
    let recorded = stdout.find("\n[").map_or(stdout.as_str(), |at| &stdout[at + 1..]);
    insta::assert_snapshot!("seed_apply_plain", recorded.replace(&world.path, "WORLD"));
    assert!(stdout.contains("Verify passed: 8 checks."), "{stdout}");

    // The converged world (issue 3): no changes in any format, exit 0 with --detailed-exitcode.
    for format in ["human", "json", "markdown"] {
        let (code, plan, stderr) =
            edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "--format", format, "--detailed-exitcode"]);
        assert_eq!(code, 0, "{format}: {plan}\n{stderr}");
        insta::assert_snapshot!(format!("converged_{format}"), plan);
    }
    let (code, verify, _) = edgeplan(&["verify", "specs/seed.yaml", "--world", &world.path]);
    assert_eq!(code, 0, "{verify}");
}

#[test]
fn the_fleet_world_is_applied_and_then_has_no_changes() {
    let world = ScratchWorld::copy_of("testdata/worlds/fleet.yaml");
    let (code, stdout, stderr) = apply("specs/fleet.yaml", &world, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Two provider links (cluster security group, NLB targets), then per consumer: endpoint security
    // group, connection, key, EDGE_ID, check-in, the tunnel end to end.
    assert!(stdout.contains("Verify passed: 20 checks."), "{stdout}");
    let (code, plan, _) =
        edgeplan_with_env(&["plan", "specs/fleet.yaml", "--world", &world.path, "--detailed-exitcode"], &FLEET_SECRETS);
    assert_eq!(code, 0, "{plan}");
}

#[test]
fn verify_on_the_untouched_seed_world_fails_with_causes() {
    let (code, stdout, _) = edgeplan(&["verify", "specs/seed.yaml", "--world", "testdata/worlds/seed.yaml"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!("seed_verify_before_apply", stdout);
}

#[test]
fn without_a_terminal_apply_refuses_unless_approved() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let before = world.text();
    let (code, _, stderr) = edgeplan(&["apply", "specs/seed.yaml", "--world", &world.path]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("error[edgeplan::needs-approval]") && stderr.contains("--auto-approve"), "{stderr}");
    // The lock was taken and released (the file is rewritten); the world itself is the same.
    assert_eq!(infrastructure(&world.text()), infrastructure(&before), "nothing changed");
}

#[test]
fn a_saved_plan_applies_as_made_and_a_stale_one_is_refused_naming_the_nodes() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let saved = world.file("seed.plan.json");
    let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "-o", &saved]);
    assert_eq!(code, 0, "{stderr}");

    // Someone renames the environment in the Portainer UI after the plan was made.
    let moved = world.text().replacen("Name: prod\n", "Name: prod-renamed\n", 1);
    assert_ne!(moved, world.text());
    let original = world.text();
    std::fs::write(&world.path, &moved).unwrap();
    let (code, _, stderr) = edgeplan(&["apply", &saved, "--world", &world.path, "--progress", "none"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error[edgeplan::stale-plan]") && stderr.contains("consumer.prod.environment"), "{stderr}");
    assert!(!stderr.contains("provider."), "only the nodes that moved are named: {stderr}");
    let now = std::fs::read_to_string(&world.path).expect("world readable");
    assert_eq!(infrastructure(&now), infrastructure(&moved), "nothing changed");

    // Against the world it was made from, the saved plan applies without a prompt.
    std::fs::write(&world.path, &original).unwrap();
    let (code, stdout, stderr) = edgeplan(&["apply", &saved, "--world", &world.path, "--progress", "none"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, _, _) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "--detailed-exitcode"]);
    assert_eq!(code, 0);
}

#[test]
fn the_fault_hook_stops_after_k_mutations_and_a_rerun_converges() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let args = ["apply", "specs/seed.yaml", "--world", world.path.as_str(), "--auto-approve", "--progress", "none"];
    let (code, stdout, _) = edgeplan_with_env(&args, &[("EDGEPLAN_TEST_STOP_AFTER_MUTATIONS", "7")]);
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("after 7 mutation(s)"), "{stdout}");
    let (code, stdout, stderr) = edgeplan(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, _, _) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "--detailed-exitcode"]);
    assert_eq!(code, 0);
}

#[test]
fn targeting_is_announced_and_limits_the_walk() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let (code, stdout, stderr) =
        apply("specs/seed.yaml", &world, &["--target", "provider.nlb_route_table_association", "--no-verify"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Warning: resource targeting is in effect"), "{stdout}");
    assert!(stdout.contains("Applying 3 of 18 nodes"), "{stdout}");
    assert!(stdout.contains("3 change(s) made"), "{stdout}");
    let (code, _, stderr) = apply("specs/seed.yaml", &world, &["--exclude", "consumer.nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("consumer.nope"), "{stderr}");
}

#[test]
fn a_wait_that_times_out_says_what_it_last_observed() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--timeout", "targets-healthy=30s"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report = stdout.split_once("\nApply failed").map(|(_, r)| r).unwrap_or_default();
    assert!(report.contains("1 failed, 0 skipped"), "{report}");
    assert!(
        report.contains("✗ provider.cluster_sg_rule")
            && report.contains("timed out after 30s waiting for targets healthy: target portainer/portainer:30776"),
        "{report}"
    );
    // Independent branches carried on: the consumer converged.
    assert!(stdout.contains("✓ consumer.prod.agent: created"), "{stdout}");
    let (code, _, _) = edgeplan(&["apply", "specs/seed.yaml", "--timeout", "nlb=1m", "--world", &world.path]);
    assert_eq!(code, 2, "an unknown wait kind is a usage error");
}

#[test]
fn an_unset_agent_secret_stops_the_plan_and_apply_changes_nothing() {
    let world = ScratchWorld::copy_of("testdata/worlds/fleet.yaml");
    let before = world.text();
    // Only the partner's secret is exported: AGENT_SECRET is not.
    let partner_only = [FLEET_SECRETS[1]];
    let (code, plan, stderr) =
        edgeplan_with_env(&["plan", "specs/fleet.yaml", "--world", &world.path, "--detailed-exitcode"], &partner_only);
    assert_eq!(code, 1, "{plan}\n{stderr}");
    assert!(plan.contains("error[EP216]") && plan.contains("`env:AGENT_SECRET` cannot be read"), "{plan}");
    assert!(plan.contains("specs/fleet.yaml:69:"), "the diagnostic points at the spec line: {plan}");
    let args = ["apply", "specs/fleet.yaml", "--world", world.path.as_str(), "--auto-approve", "--progress", "none"];
    let (code, _, stderr) = edgeplan_with_env(&args, &partner_only);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the plan has errors; nothing was applied"), "{stderr}");
    assert_eq!(infrastructure(&world.text()), infrastructure(&before), "nothing changed");
    // A `file:` reference to a missing file, a directory or a FIFO stops it the same way.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
    for entry in std::fs::read_dir("../../specs/policies").expect("policies") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join("policies").join(entry.file_name())).expect("copy");
    }
    let fifo = dir.path().join("agent.secret");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()), "mkfifo");
    let spec = std::fs::read_to_string("../../specs/fleet.yaml").expect("spec");
    let spec = spec.replace("env: AGENT_SECRET", "file: agent.secret");
    let spec_path = dir.path().join("fleet.yaml");
    std::fs::write(&spec_path, spec).expect("write spec");
    let (code, plan, _) =
        edgeplan_with_env(&["plan", spec_path.to_str().expect("utf-8"), "--world", &world.path], &FLEET_SECRETS);
    assert_eq!(code, 1, "{plan}");
    assert!(plan.contains("`file:agent.secret` cannot be read: it is a FIFO, not a regular file"), "{plan}");
}
