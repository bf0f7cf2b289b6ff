//! World files that must be refused, and how.

use edgeplan_sim::{FORMAT_VERSION, World, WorldError, load, save};

#[test]
fn the_format_is_version_2_and_an_empty_world_round_trips() {
    assert_eq!(FORMAT_VERSION, 2);
    let world = World::default();
    assert_eq!(world.format_version, FORMAT_VERSION);
    assert_eq!(load(&save(&world)).expect("an empty world loads"), world);
    assert!(save(&world).contains("format_version: 2"));
}

#[test]
fn a_version_1_world_is_refused_for_its_version() {
    // A world as the old simulator wrote it: settings with a `revision`, fields this version
    // no longer knows. It is refused for its version, with a message that names both.
    let text = "\
format_version: 1
now: 0
portainer:
  - url: https://portainer.example.com
    deployment: {context: staging, namespace: portainer, name: portainer}
    server_fingerprint: rLfsA/fnmkVWQ1bQTpL12kFQegS/4lBf2Z1+Su87Zgc=
    settings:
      EnableEdgeComputeFeatures: false
      revision: 1
    effective:
      EnableEdgeComputeFeatures: false
      revision: 1
    environments: []
";
    assert_eq!(load(text), Err(WorldError::UnsupportedVersion { found: 1 }));
    let message = load(text).unwrap_err().to_string();
    assert!(message.contains("format_version 1") && message.contains("older") && message.contains("(2)"), "{message}");
    assert!(!message.contains("revision"), "refused for its version, not a field: {message}");
    // The same world at version 2 is refused for the field it does not know.
    let error = load(&text.replace("format_version: 1", "format_version: 2")).unwrap_err();
    assert!(matches!(&error, WorldError::Malformed { .. }) && error.to_string().contains("revision"), "{error}");
}

#[test]
fn empty_and_comment_only_files_are_refused() {
    assert_eq!(load(""), Err(WorldError::Empty));
    assert_eq!(load("# nothing here\n\n---\n"), Err(WorldError::Empty));
}

#[test]
fn a_newer_format_is_refused_for_its_version_even_with_unknown_fields() {
    let text = "format_version: 3\nteleporters: [{id: t-1}]\n";
    assert_eq!(load(text), Err(WorldError::NewerVersion { found: 3 }));
    let message = load(text).unwrap_err().to_string();
    assert!(message.contains("newer") && message.contains("upgrade edgeplan"), "{message}");
}

#[test]
fn missing_old_and_non_numeric_versions_are_refused() {
    assert_eq!(load("now: 3\n"), Err(WorldError::MissingVersion));
    assert_eq!(load("format_version: 0\n"), Err(WorldError::UnsupportedVersion { found: 0 }));
    assert!(matches!(load("format_version: one\n"), Err(WorldError::Malformed { .. })));
    assert!(matches!(load("format_version: -1\n"), Err(WorldError::Malformed { .. })));
    assert!(matches!(load("format_version: 2.5\n"), Err(WorldError::Malformed { .. })));
}

#[test]
fn malformed_yaml_is_refused_with_its_position() {
    let error = load("format_version: 2\naws:\n  - account: \"123\n").unwrap_err();
    let WorldError::Malformed { line, .. } = &error else { panic!("{error:?}") };
    assert!(line.is_some(), "{error}");
    assert!(error.location().is_some());

    let error = load("format_version: 2\nkubernetes: [\n").unwrap_err();
    assert!(matches!(error, WorldError::Malformed { .. }), "{error:?}");
}

#[test]
fn wrong_types_are_refused_at_the_value() {
    let error = load("format_version: 2\nnow: soon\n").unwrap_err();
    assert_eq!(error.location().map(|(line, _)| line), Some(2), "{error}");

    let text = "format_version: 2\naws:\n  - account: \"123456789012\"\n    regions:\n      - region: eu-west-1\n        vpcs:\n          - id: vpc-1\n            cidr: [10.0.0.0/16]\n";
    let error = load(text).unwrap_err();
    assert_eq!(error.location().map(|(line, _)| line), Some(8), "{error}");
}

#[test]
fn unknown_keys_are_refused() {
    let error =
        load("format_version: 2\nkubernetes:\n  - context: a\n    cluster_name: a\n    deployment: []\n").unwrap_err();
    assert!(error.to_string().contains("deployment"), "{error}");
    assert!(error.location().is_some());
}

#[test]
fn impossible_worlds_are_refused_with_the_path() {
    let text = "format_version: 2\naws:\n  - account: \"123456789012\"\n    regions:\n      - region: eu-west-1\n        subnets:\n          - {id: subnet-1, vpc_id: vpc-nope, cidr: 10.0.0.0/24, availability_zone: eu-west-1a, availability_zone_id: euw1-az1}\n";
    let error = load(text).unwrap_err();
    let WorldError::Inconsistent { path, message } = &error else { panic!("{error:?}") };
    assert_eq!(path, "aws[0].regions[0].subnets[0]");
    assert!(message.contains("vpc-nope"));

    let text = "format_version: 2\naws:\n  - account: \"1\"\n    iam:\n      policies:\n        - {arn: a, name: p, default_version: v9, versions: [{id: v1, document: {}}]}\n";
    assert!(matches!(load(text), Err(WorldError::Inconsistent { .. })));
}

#[test]
fn arbitrary_text_never_panics() {
    let samples = [
        "format_version: 2\n&a [*a]\n",
        "format_version: 2\naws: {}\n",
        "format_version: 99999999999999999999999\n",
        "- 1\n- 2\n",
        "format_version: 2\nportainer:\n  - url: x\n",
        "\u{feff}format_version: 2\n",
        "format_version: 2\nnow: -5\n",
        "format_version: 2\n\tnow: 1\n",
    ];
    for text in samples {
        let _ = load(text);
    }
    for depth in [10, 40, 200] {
        let text = format!("format_version: 2\nnow: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        assert!(load(&text).is_err());
    }
}
