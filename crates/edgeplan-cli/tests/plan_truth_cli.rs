//! Issue 9, through the binary: a plan with an error is refused by `apply` before anything
//! changes, and `plan` shows what lint says about the spec.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Exit code, stdout and stderr of `edgeplan ARGS` run in `dir`.
fn edgeplan(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_edgeplan"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("PORTAINER_API_KEY", "ptr_for_tests")
        .output()
        .expect("edgeplan runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A scratch directory with the seed world and the seed spec edited by `edits`.
fn scratch(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(root().join("testdata/worlds/seed.yaml"), dir.path().join("world.yaml")).expect("copy the world");
    std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
    for entry in std::fs::read_dir(root().join("specs/policies")).expect("the example policies") {
        let entry = entry.expect("an entry");
        std::fs::copy(entry.path(), dir.path().join("policies").join(entry.file_name())).expect("copy a policy");
    }
    let mut spec = std::fs::read_to_string(root().join("specs/seed.yaml")).expect("the seed spec");
    for (from, to) in edits {
        assert!(spec.contains(from), "no `{from}` in the seed spec");
        spec = spec.replacen(from, to, 1);
    }
    std::fs::write(dir.path().join("seed.yaml"), spec).expect("write the spec");
    dir
}

/// The world's infrastructure, without what taking and releasing the stack lock moves.
fn infrastructure(path: &Path) -> edgeplan_sim::World {
    let mut world = edgeplan_sim::load(&std::fs::read_to_string(path).expect("the world")).expect("a world");
    for cluster in &mut world.kubernetes {
        cluster.last_resource_version = 0;
        cluster.leases.clear();
    }
    world
}

#[test]
fn apply_refuses_a_plan_with_errors_before_changing_anything() {
    // An adopted NLB subnet routed to an internet gateway: the plan would tag it, update the
    // controller's policy and restart Portainer, and the controller would still refuse the
    // subnet. The plan says so as an error, and apply does nothing.
    let dir = scratch(&[(
        "      cidr: 192.168.0.0/24\n      availabilityZone: eu-west-1b",
        "      id: subnet-0a1b2c3d4e5f60012",
    )]);
    let world = dir.path().join("world.yaml");
    let before = infrastructure(&world);
    let (code, stdout, stderr) =
        edgeplan(dir.path(), &["apply", "seed.yaml", "--world", "world.yaml", "--auto-approve", "--progress", "none"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("error[EP204]"), "{stdout}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    assert_eq!(infrastructure(&world), before, "a refused apply changed the world");
}

#[test]
fn plan_shows_lint_findings_about_the_spec() {
    let dir = scratch(&[("acceptanceRequired: true", "acceptanceRequired: false")]);
    let (code, stdout, stderr) = edgeplan(dir.path(), &["plan", "seed.yaml", "--world", "world.yaml"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("warning[EP150]"), "{stdout}");
    let (_, markdown, _) =
        edgeplan(dir.path(), &["plan", "seed.yaml", "--world", "world.yaml", "--format", "markdown"]);
    assert!(markdown.contains("EP150"), "the PR comment drops lint's warning:\n{markdown}");
}
