//! `edgeplan graph`: the resource DAG of the example specs, pinned.

mod common;

use common::edgeplan;

#[test]
fn seed_graph_as_dot_and_mermaid() {
    let (code, dot, stderr) = edgeplan(&["graph", "specs/seed.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("seed_dot", dot);
    let (code, mermaid, _) = edgeplan(&["graph", "--format", "mermaid", "specs/seed.yaml"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("seed_mermaid", mermaid);
}

#[test]
fn fleet_graph_has_one_agent_chain_per_consumer() {
    let (code, dot, _) = edgeplan(&["graph", "specs/fleet.yaml"]);
    assert_eq!(code, 0);
    for consumer in ["prod", "analytics", "partner"] {
        let edge = format!("\"consumer.{consumer}.agent_key\" -> \"consumer.{consumer}.agent\"");
        assert!(dot.contains(&edge), "missing {edge}");
    }
}

#[test]
fn a_spec_with_errors_gets_its_findings_not_a_graph() {
    let (code, stdout, stderr) = edgeplan(&["graph", "testdata/bad/scheme-internet-facing.yaml"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("EP120"), "{stderr}");
    let (code, _, _) = edgeplan(&["graph", "testdata/bad/does-not-exist.yaml"]);
    assert_eq!(code, 1, "a failure is 1 in every command but lint and edge-key");
}
