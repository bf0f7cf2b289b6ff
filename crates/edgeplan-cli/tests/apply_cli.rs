//! `edgeplan apply` and `verify` on scratch copies of the simulated worlds: the recorded apply,
//! the converged world's plan (no changes, exit 0 with --detailed-exitcode), approvals, saved
//! plans, targeting and the fault hook.

mod common;

use std::path::Path;

use common::{ScratchWorld, command_in, copy_policies, edgeplan, edgeplan_in, edgeplan_with_env, infrastructure, root};

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
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error[edgeplan::needs-approval]") && stderr.contains("--auto-approve"), "{stderr}");
    // Refused before the lock was taken: the hand-written file is not even rewritten.
    assert_eq!(world.text(), before, "nothing changed");
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
    assert!(stdout.contains("Applying 3 of 19 nodes"), "{stdout}");
    assert!(stdout.contains("3 change(s) made"), "{stdout}");
    let (code, _, stderr) = apply("specs/seed.yaml", &world, &["--exclude", "consumer.nope"]);
    assert_eq!(code, 1);
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
    assert_eq!(code, 1, "an unknown wait kind is a usage error");
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

// ----- issue 9, item 8: exit codes, targets ------------------------------------------------

#[test]
fn no_command_but_lint_and_edge_key_exits_two_on_a_failure() {
    // 2 is `plan --detailed-exitcode`'s "changes"; everywhere else a failure is 1, as in
    // Terraform, so CI can tell "changes" from "broken" (lint and edge-key keep their own
    // documented 2 for "could not run").
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let w = world.path.as_str();
    let cases: [(&[&str], &str); 16] = [
        (&[], "no command"),
        (&["frobnicate"], "unknown command"),
        (&["--bogus"], "unknown top-level flag"),
        (&["apply", "--bogus", "specs/seed.yaml", "--world", w], "apply: unknown flag"),
        (&["apply", "--world", w], "apply: no spec"),
        (&["apply", "specs/no-such-spec.yaml", "--world", w, "--auto-approve"], "apply: missing spec"),
        (&["apply", "specs/seed.yaml", "--world", w, "--timeout", "nlb=1m"], "apply: unknown wait kind"),
        (&["apply", "specs/seed.yaml", "--world", w], "apply: changes and no approval"),
        (
            &["apply", "specs/seed.yaml", "--world", w, "--auto-approve", "--target", "provider.nope"],
            "apply: bad target",
        ),
        (&["apply", "specs/seed.yaml", "--auto-approve"], "apply: no world"),
        (&["destroy", "specs/no-such-spec.yaml", "--world", w, "--auto-approve"], "destroy: missing spec"),
        (&["destroy", "--parallelism", "0", "specs/seed.yaml", "--world", w], "destroy: bad flag value"),
        (&["verify", "specs/seed.yaml"], "verify: no world"),
        (&["graph", "specs/no-such-spec.yaml"], "graph: missing spec"),
        (&["unlock", "specs/seed.yaml", "--world", w], "unlock: no --holder"),
        (&["unlock", "specs/no-such-spec.yaml", "--world", w, "--holder", "a@b:1"], "unlock: missing spec"),
    ];
    for (args, what) in cases {
        let (code, _, stderr) = edgeplan(args);
        assert_eq!(code, 1, "{what}: {stderr}");
    }
}

#[test]
fn a_bad_address_is_refused_before_the_lock_and_the_plan_with_a_suggestion() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let before = std::fs::read(&world.path).expect("world readable");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--target", "provider.nlb_subnett"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "the plan is not printed: {stdout}");
    assert!(stderr.contains("error[edgeplan::unknown-address]"), "{stderr}");
    assert!(stderr.contains("did you mean `provider.nlb_subnet`?"), "{stderr}");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--exclude", "consumer.prdo"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "the plan is not printed: {stdout}");
    assert!(stderr.contains("did you mean `consumer.prod`?"), "{stderr}");
    assert_eq!(std::fs::read(&world.path).expect("world readable"), before, "the lock was never taken");
}

/// The nodes of the seed spec's one consumer.
const SEED_CONSUMER_NODES: [&str; 7] =
    ["agent", "agent_key", "connection_acceptance", "environment", "subnets", "vpce", "vpce_security_group"];

#[test]
fn consumer_name_selects_all_of_that_consumers_nodes() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--exclude", "consumer.prod", "--no-verify"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Applying 12 of 19 nodes; 7 left out"), "{stdout}");
    for node in SEED_CONSUMER_NODES {
        assert!(stdout.contains(&format!("    consumer.prod.{node}\n")), "{node} left out: {stdout}");
    }
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--target", "consumer.prod", "--no-verify"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("✓ consumer.prod.agent: created"), "{stdout}");
    let (code, plan, _) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "--detailed-exitcode"]);
    assert_eq!(code, 0, "the consumer's nodes and what they depend on were all applied: {plan}");
}

#[test]
fn a_targeted_apply_verifies_only_when_it_left_nothing_undone() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let (code, stdout, stderr) =
        apply("specs/seed.yaml", &world, &["--target", "provider.nlb_route_table_association"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains("Verify:"), "verify did not run on a partly applied stack: {stdout}");
    assert!(
        stdout.contains("Verify skipped:") && stdout.contains("left 12 node(s) with changes unapplied"),
        "{stdout}"
    );
    assert!(stdout.contains("edgeplan verify"), "it says how to verify later: {stdout}");
    // Once the rest is applied, a targeted apply that leaves out only unchanged nodes verifies.
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--no-verify"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--target", "consumer.prod.agent"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Verify passed: 8 checks."), "{stdout}");
}

// ----- issue 9, item 9: files -------------------------------------------------------------

#[test]
fn a_refused_apply_leaves_the_world_file_byte_for_byte() {
    // The hand-written seed world, comments and all: a rewrite would show.
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let before = std::fs::read(&world.path).expect("world readable");
    let unchanged = |what: &str| {
        assert!(std::fs::read(&world.path).expect("world readable") == before, "{what} rewrote the world file");
    };
    let (code, _, stderr) = edgeplan(&["apply", "specs/seed.yaml", "--world", &world.path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error[edgeplan::needs-approval]"), "{stderr}");
    unchanged("needs approval");
    let (code, _, stderr) = apply("specs/seed.yaml", &world, &["--target", "provider.nope"]);
    assert_eq!(code, 1, "{stderr}");
    unchanged("a bad target");
    let (code, _, stderr) = apply("specs/seed.yaml", &world, &["--timeout", "nlb-active=soon"]);
    assert_eq!(code, 1, "{stderr}");
    unchanged("a bad timeout");

    // A stale saved plan.
    let saved = world.file("seed.plan.json");
    let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "-o", &saved]);
    assert_eq!(code, 0, "{stderr}");
    let moved = world.text().replacen("Name: prod\n", "Name: prod-renamed\n", 1);
    std::fs::write(&world.path, &moved).expect("written");
    let (code, _, stderr) = edgeplan(&["apply", &saved, "--world", &world.path, "--progress", "none"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error[edgeplan::stale-plan]"), "{stderr}");
    assert_eq!(world.text(), moved, "a stale saved plan rewrote the world file");

    // A destroy without approval, on an applied world.
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--no-verify"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let applied = world.text();
    let (code, _, stderr) = edgeplan(&["destroy", "specs/seed.yaml", "--world", &world.path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error[edgeplan::needs-approval]"), "{stderr}");
    assert_eq!(world.text(), applied, "a refused destroy rewrote the world file");
}

#[test]
fn the_approved_plan_is_checked_again_under_the_lock_and_a_refusal_there_leaves_no_trace() {
    use std::io::BufRead;
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let args = ["apply", "specs/seed.yaml", "--world", world.path.as_str(), "--auto-approve", "--progress", "none"];
    // A test hook pauses apply between the plan it printed and taking the lock.
    let mut child = command_in(&root(), &args, &[("EDGEPLAN_TEST_PAUSE_BEFORE_LOCK_MS", "3000")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("edgeplan starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the plan is printed");
    assert!(first.starts_with("Plan: "), "{first}");
    // Meanwhile someone renames the environment in the Portainer UI.
    let moved = world.text().replacen("Name: prod\n", "Name: prod-renamed\n", 1);
    assert_ne!(moved, world.text());
    std::fs::write(&world.path, &moved).expect("written");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("stdout");
    let output = child.wait_with_output().expect("edgeplan ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{rest}\n{stderr}");
    assert!(stderr.contains("error[edgeplan::stale-plan]") && stderr.contains("consumer.prod.environment"), "{stderr}");
    assert!(!rest.contains("Apply complete"), "nothing was applied: {rest}");
    // The lock was taken and released, and its writes taken back: the file is as it was left.
    assert_eq!(world.text(), moved, "the refused apply left a trace in the world file");
}

#[test]
fn a_saved_plan_applies_from_any_working_directory() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let saved = world.file("seed.plan.json");
    let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "-o", &saved]);
    assert_eq!(code, 0, "{stderr}");
    // Applied from the plan's own directory: the policy document still resolves against the
    // spec's directory as it was when the plan was made.
    let (code, stdout, stderr) =
        edgeplan_in(world.dir.path(), &["apply", &saved, "--world", &world.path, "--progress", "none"], &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Verify passed"), "{stdout}");
}

/// The seed spec, written as JSON (JSON is YAML: a spec may be either).
fn seed_spec_as_json() -> String {
    let spec = serde_json::json!({
        "apiVersion": "edgeplan.dev/v1alpha1",
        "kind": "Topology",
        "metadata": {"name": "portainer-edge"},
        "spec": {
            "provider": {
                "aws": {"accountId": "123456789012", "region": "eu-west-1", "profile": "staging"},
                "cluster": {"name": "my-cluster", "kubeContext": "staging"},
                "vpc": {"id": "vpc-0a1b2c3d4e5f60001", "cidr": "192.168.0.0/16"},
                "lbController": {
                    "roleName": "alb-ingress-controller",
                    "policyDocument": "policies/aws-load-balancer-controller-v2.13.2.json"
                },
                "nlbSubnet": {"cidr": "192.168.0.0/24", "availabilityZone": "eu-west-1b"},
                "clusterSecurityGroup": {"discover": true},
                "portainer": {
                    "url": "https://portainer.example.com",
                    "apiKey": {"env": "PORTAINER_API_KEY"},
                    "namespace": "portainer",
                    "deployment": "portainer",
                    "install": "helm-nodeport",
                    "tunnelPort": "auto"
                },
                "tunnelService": {
                    "name": "portainer-edge-tunnel",
                    "namespace": "portainer",
                    "listenerPort": 8000,
                    "annotations": {
                        "service.beta.kubernetes.io/aws-load-balancer-attributes": "load_balancing.cross_zone.enabled=true"
                    }
                },
                "endpointService": {
                    "acceptanceRequired": true,
                    "allowedPrincipals": ["arn:aws:iam::123456789012:root"]
                }
            },
            "consumers": [{
                "name": "prod",
                "aws": {"accountId": "123456789012", "region": "eu-west-1", "profile": "prod"},
                "cluster": {"name": "prod-cluster", "kubeContext": "prod"},
                "vpc": {"id": "vpc-0a1b2c3d4e5f60002", "cidr": "192.168.0.0/16"},
                "subnets": [{"id": "subnet-0a1b2c3d4e5f60021", "availabilityZone": "eu-west-1b"}],
                "endpointSecurityGroup": {"create": {"allowedCidrs": ["192.168.0.0/16"]}},
                "environment": {"name": "prod"},
                "agent": {"namespace": "portainer", "imageTag": "2.39.0", "insecurePoll": false}
            }]
        }
    });
    serde_json::to_string_pretty(&spec).expect("JSON")
}

#[test]
fn apply_tells_a_json_spec_from_a_saved_plan_by_its_format() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    copy_policies(world.dir.path());
    let spec = world.file("seed.json");
    std::fs::write(&spec, seed_spec_as_json()).expect("spec written");
    let (code, plan, stderr) = edgeplan(&["plan", &spec, "--world", &world.path]);
    assert_eq!(code, 0, "a JSON spec is a spec: {plan}\n{stderr}");
    let (code, stdout, stderr) = apply(&spec, &world, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Verify passed: 8 checks."), "{stdout}");
    // Something that is neither is refused as what it looks like, not as a saved plan.
    std::fs::write(&spec, "{\"apiVersion\": \"edgeplan.dev/v1alpha1\", \"kind\": \"Topology\"}").expect("written");
    let (code, _, stderr) = apply(&spec, &world, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("saved plan"), "{stderr}");
}

#[test]
fn timeouts_accept_compound_durations() {
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let (code, stdout, stderr) = apply("specs/seed.yaml", &world, &["--timeout", "targets-healthy=1m30s"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("timed out after 1m30s waiting for targets healthy"), "{stdout}");
    let (code, stdout, stderr) =
        apply("specs/seed.yaml", &world, &["--timeout", "targets-healthy=1h", "--timeout", "nlb-active=2m30s"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

/// The seed's account and its prod context, renamed so the seed stack and the fleet stack can
/// share one world file.
fn renamed_seed(text: &str) -> String {
    text.replace("123456789012", "111111111111").replace("context: prod\n", "context: seed-prod\n")
}

#[test]
fn two_stacks_applied_at_once_on_one_world_file_both_converge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed_world = renamed_seed(&std::fs::read_to_string(root().join("testdata/worlds/seed.yaml")).expect("seed"));
    let seed_world = edgeplan_sim::load(&seed_world).expect("the renamed seed world loads");
    let mut world = edgeplan_sim::load(&std::fs::read_to_string(root().join("testdata/worlds/fleet.yaml")).unwrap())
        .expect("the fleet world loads");
    world.aws.extend(seed_world.aws);
    world.kubernetes.extend(seed_world.kubernetes);
    world.portainer.extend(seed_world.portainer);
    let world_path = dir.path().join("world.yaml");
    std::fs::write(&world_path, edgeplan_sim::save(&world)).expect("world written");
    assert!(edgeplan_sim::load(&std::fs::read_to_string(&world_path).unwrap()).is_ok(), "one consistent world");
    copy_policies(dir.path());
    let spec = renamed_seed(&std::fs::read_to_string(root().join("specs/seed.yaml")).expect("spec"))
        .replace("kubeContext: prod\n", "kubeContext: seed-prod\n");
    let seed_spec = dir.path().join("seed.yaml");
    std::fs::write(&seed_spec, spec).expect("spec written");
    let fleet_spec = root().join("specs/fleet.yaml");

    let w = world_path.to_str().expect("utf-8");
    let (seed_spec, fleet_spec) = (seed_spec.to_str().expect("utf-8"), fleet_spec.to_str().expect("utf-8"));
    for spec in [seed_spec, fleet_spec] {
        let (code, plan, stderr) = edgeplan_in(dir.path(), &["plan", spec, "--world", w], &FLEET_SECRETS);
        assert_eq!(code, 0, "{plan}\n{stderr}");
    }
    // Both at once, as two processes.
    let run = |spec: &str| {
        command_in(dir.path(), &["apply", spec, "--world", w, "--auto-approve", "--progress", "none"], &FLEET_SECRETS)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("edgeplan starts")
    };
    let (seed_run, fleet_run) = (run(seed_spec), run(fleet_spec));
    for (name, child) in [("seed", seed_run), ("fleet", fleet_run)] {
        let output = child.wait_with_output().expect("edgeplan ran");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{name}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("Verify passed"), "{name}: {stdout}");
    }
    for spec in [seed_spec, fleet_spec] {
        let (code, plan, stderr) =
            edgeplan_in(dir.path(), &["plan", spec, "--world", w, "--detailed-exitcode"], &FLEET_SECRETS);
        assert_eq!(code, 0, "{spec} converged and stayed so: {plan}\n{stderr}");
        let (code, verify, _) = edgeplan_in(dir.path(), &["verify", spec, "--world", w], &FLEET_SECRETS);
        assert_eq!(code, 0, "{spec}: {verify}");
    }
}

#[cfg(unix)]
#[test]
fn rewriting_a_world_file_keeps_its_mode_and_writes_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let world = ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    std::fs::set_permissions(&world.path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = world.file("link.yaml");
    std::os::unix::fs::symlink(&world.path, &link).expect("symlink");
    let before = world.text();
    let (code, stdout, stderr) = edgeplan_with_env(
        &["apply", "specs/seed.yaml", "--world", &link, "--auto-approve", "--progress", "none"],
        &FLEET_SECRETS,
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let link_meta = std::fs::symlink_metadata(&link).expect("link");
    assert!(link_meta.file_type().is_symlink(), "the link was replaced by a file");
    assert_ne!(world.text(), before, "the apply was written to the link's target");
    let mode = std::fs::metadata(&world.path).expect("world").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the world file's mode changed");
    assert!(!Path::new(&world.file("link.yaml.tmp")).exists() && !Path::new(&world.file("world.yaml.tmp")).exists());
}
