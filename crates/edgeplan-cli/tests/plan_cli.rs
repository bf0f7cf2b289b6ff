//! `edgeplan plan` on the embedded simulated worlds: golden output and exit codes.

mod common;

use common::edgeplan;

#[test]
fn seed_world_plan_in_every_format() {
    for format in ["human", "json", "markdown"] {
        let (code, stdout, stderr) =
            edgeplan(&["plan", "specs/seed.yaml", "--world", "testdata/worlds/seed.yaml", "--format", format]);
        assert_eq!(code, 0, "{stderr}");
        insta::assert_snapshot!(format!("seed_{format}"), stdout);
    }
}

#[test]
fn the_seed_plan_names_the_traps_and_their_fixes() {
    let (_, human, _) = edgeplan(&["plan", "specs/seed.yaml", "--world", "testdata/worlds/seed.yaml"]);
    // Trap 1: the ALB-era policy, fixed by a new policy version.
    assert!(human.contains("warning[EP201]") && human.contains("ec2:DescribeRouteTables"), "{human}");
    // Trap 2: the Service targets the real tunnel port read from --tunnel-port.
    assert!(human.lines().any(|l| l.trim_start().starts_with("+ target_port") && l.ends_with("= 30776")), "{human}");
    // Trap 3: the security group rule, created.
    assert!(human.contains("warning[EP205]"), "{human}");
    // Trap 4: Edge Compute turned on, Portainer restarted after it.
    assert!(human.contains("warning[EP206]") && human.contains("provider.portainer_restart"), "{human}");
    // Traps 5/6: Portainer's key points at its own host:30776; the agent gets a rewritten copy.
    assert!(human.contains("note[EP215]") && human.contains("portainer.example.com:30776"), "{human}");
    // Single-tier VPC: the NLB gets its own subnet with a route table without an IGW route.
    assert!(human.contains("+ provider.nlb_route_table (aws_route_table) will be created"), "{human}");
}

#[test]
fn fleet_world_plan() {
    let (code, stdout, stderr) = common::edgeplan_with_env(
        &["plan", "specs/fleet.yaml", "--world", "testdata/worlds/fleet.yaml"],
        &[("AGENT_SECRET", "agent-secret-for-tests"), ("PARTNER_AGENT_SECRET", "p4rtner")],
    );
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("fleet_human", stdout);
}

#[test]
fn detailed_exitcode_is_two_with_changes() {
    let (code, _, _) =
        edgeplan(&["plan", "specs/seed.yaml", "--world", "testdata/worlds/seed.yaml", "--detailed-exitcode"]);
    assert_eq!(code, 2);
}

#[test]
fn with_detailed_exitcode_two_means_changes_and_nothing_else() {
    // Everything that is not "a plan with changes" is 0 or 1, as in Terraform: CI branches on 2.
    let dir = tempfile::tempdir().expect("temp dir");
    let unwritable = dir.path().join("no-such-directory/seed.plan.json");
    let unwritable = unwritable.to_str().expect("utf-8");
    let world = "testdata/worlds/seed.yaml";
    let cases: [(&[&str], &str); 10] = [
        (&["plan", "--detailed-exitcode", "--bogus", "specs/seed.yaml", "--world", world], "an unknown flag"),
        (&["plan", "--detailed-exitcode", "--world", world], "no spec argument"),
        (&["plan", "--detailed-exitcode", "--format", "xml", "specs/seed.yaml", "--world", world], "a bad value"),
        (&["plan", "--detailed-exitcode", "specs/no-such-spec.yaml", "--world", world], "a missing spec"),
        (&["plan", "--detailed-exitcode", "specs/seed.yaml", "--world", world, "-o", unwritable], "an unwritable -o"),
        (&["plan", "--detailed-exitcode", "specs/seed.yaml"], "no world"),
        (&["plan", "--detailed-exitcode", "specs/seed.yaml", "--world", "testdata/bad/empty.yaml"], "a bad world"),
        (&["plan", "--detailed-exitcode", "specs/seed.yaml", "--world", "/nonexistent/world.yaml"], "no world file"),
        (&["plan", "--detailed-exitcode", "specs/fleet.yaml", "--world", world], "a world for another spec"),
        (
            &["plan", "--detailed-exitcode", "testdata/bad/scheme-internet-facing.yaml", "--world", world],
            "a spec with errors",
        ),
    ];
    for (args, what) in cases {
        let (code, _, stderr) = edgeplan(args);
        assert_eq!(code, 1, "{what}: {stderr}");
    }
}

#[test]
fn the_top_level_help_speaks_to_users() {
    for flag in ["--help", "-h"] {
        let (code, help, stderr) = edgeplan(&[flag]);
        assert_eq!(code, 0, "{stderr}");
        for internal in ["argument parsing", "terminal rendering", "crate", "command line:"] {
            assert!(!help.contains(internal), "{flag} talks about `{internal}`: {help}");
        }
        // What edgeplan does, its main commands, and an example to start from.
        assert!(help.contains("Portainer Edge agent") && help.contains("PrivateLink"), "{help}");
        for command in ["lint", "plan", "apply", "verify", "destroy"] {
            assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "{command}: {help}");
        }
        assert!(help.contains("edgeplan plan specs/seed.yaml --world testdata/worlds/seed.yaml"), "{help}");
    }
}

#[test]
fn a_bad_world_or_no_world_cannot_run() {
    let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml", "--world", "testdata/bad/empty.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("error[edgeplan::world]"), "{stderr}");
    // A world made for another spec is refused, naming what it lacks.
    let (code, _, stderr) = edgeplan(&["plan", "specs/fleet.yaml", "--world", "testdata/worlds/seed.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("does not describe this spec") && stderr.contains("kube context `platform`"), "{stderr}");
    let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--world"), "{stderr}");
    let (code, _, stderr) =
        edgeplan(&["plan", "testdata/bad/scheme-internet-facing.yaml", "--world", "testdata/worlds/seed.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("EP120"), "{stderr}");
    // The world is read beside the spec, but a spec that does not load is all that is said.
    let (code, _, stderr) =
        edgeplan(&["plan", "testdata/bad/scheme-internet-facing.yaml", "--world", "testdata/bad/empty.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("EP120") && !stderr.contains("error[edgeplan::world]"), "{stderr}");
    let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml", "--world", "/nonexistent/world.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("error[edgeplan::cannot-read]") && stderr.contains("/nonexistent/world.yaml"), "{stderr}");
}

#[test]
fn no_secret_reference_is_resolved_or_printed_beyond_its_label() {
    for format in ["human", "json", "markdown"] {
        let (_, stdout, _) =
            edgeplan(&["plan", "specs/seed.yaml", "--world", "testdata/worlds/seed.yaml", "--format", format]);
        // The Portainer key in the world is only ever shown as a fingerprint.
        assert!(!stdout.contains("aHR0cHM6"), "{format}: an EDGE_KEY leaked");
    }
}

#[test]
fn a_saved_plan_is_written_and_reads_back() {
    let dir = std::env::temp_dir().join(format!("edgeplan-plan-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("seed.plan.json");
    let (code, _, stderr) =
        edgeplan(&["plan", "specs/seed.yaml", "--world", "testdata/worlds/seed.yaml", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let saved = edgeplan_plan::SavedPlan::from_json(&text).expect("a saved plan");
    assert_eq!(saved.stack, "portainer-edge");
    #[cfg(unix)]
    {
        // It carries the spec and a digest of the secrets: readable by its owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new saved plan is private");
    }
    assert_eq!(saved.changes.len(), 19);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn planning_never_rewrites_the_world_file() {
    let world = common::ScratchWorld::copy_of("testdata/worlds/seed.yaml");
    let before = world.text();
    for format in ["human", "json", "markdown"] {
        let (code, _, stderr) = edgeplan(&["plan", "specs/seed.yaml", "--world", &world.path, "--format", format]);
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, _, _) = edgeplan(&["verify", "specs/seed.yaml", "--world", &world.path]);
    assert_eq!(code, 1, "the untouched seed world does not verify");
    assert_eq!(world.text(), before, "a read-only command rewrote the hand-written world file");
}
