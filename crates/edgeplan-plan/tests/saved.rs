//! Saved plans against the simulated seed world: round trip, refusals, and staleness that names
//! exactly the nodes whose live state moved.

use edgeplan_diag::SourceFile;
use edgeplan_model::{Address, Backend, Node, Observation, compile, resource_graph};
use edgeplan_plan::{SavedPlan, SavedPlanError, decide};
use edgeplan_sim::SimBackend;

const SPEC: &str = include_str!("../../../specs/seed.yaml");
const WORLD: &str = include_str!("../../../testdata/worlds/seed.yaml");

fn nodes() -> Vec<Node> {
    let spec = edgeplan_spec::parse(&SourceFile::new("seed.yaml", SPEC)).expect("seed parses");
    let graph = resource_graph(compile(&spec)).expect("acyclic");
    graph.iter().map(|(_, node)| node.clone()).collect()
}

fn observe(world: &str, nodes: &[Node]) -> Vec<Observation> {
    let backend = SimBackend::load(world).expect("world loads");
    let refs: Vec<&Node> = nodes.iter().collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(backend.observe("portainer-edge", &refs))
}

fn refs(nodes: &[Node]) -> Vec<&Node> {
    nodes.iter().collect()
}

fn saved_plan(nodes: &[Node]) -> SavedPlan {
    let refs: Vec<&Node> = nodes.iter().collect();
    let plan = decide("portainer-edge", &refs, &observe(WORLD, nodes));
    SavedPlan::from_plan(&plan, "specs/seed.yaml", SPEC, &refs)
}

#[test]
fn a_saved_plan_round_trips_and_is_fresh_against_an_unchanged_world() {
    let nodes = nodes();
    let saved = saved_plan(&nodes);
    let reread = SavedPlan::from_json(&saved.to_json()).expect("reads back");
    assert_eq!(reread, saved);
    assert_eq!(reread.check("portainer-edge", SPEC, &refs(&nodes), &observe(WORLD, &nodes)), Ok(()));
    assert!(!saved.to_json().contains("aHR0cHM6"), "no key in a saved plan");
    assert_eq!(reread.spec_text, SPEC, "the spec travels with the plan");
}

#[test]
fn a_moved_world_names_exactly_the_nodes_that_moved() {
    let nodes = nodes();
    let saved = saved_plan(&nodes);
    // Someone renamed the environment in the Portainer UI after the plan was made.
    let moved_world = WORLD.replacen("        Name: prod\n", "        Name: prod-renamed\n", 1);
    assert_ne!(moved_world, WORLD);
    let error = saved.check("portainer-edge", SPEC, &refs(&nodes), &observe(&moved_world, &nodes)).unwrap_err();
    let SavedPlanError::Stale(moved) = error else { panic!("expected Stale, got {error}") };
    assert!(moved.contains(&Address::consumer("prod", "environment")), "{moved:?}");
    assert!(
        moved.iter().all(|a| a.as_str().starts_with("consumer.prod.")),
        "only the environment and what reads it: {moved:?}"
    );
    assert!(!moved.iter().any(|a| a.as_str().starts_with("provider.")), "{moved:?}");
}

#[test]
fn other_specs_stacks_and_newer_formats_are_refused() {
    let nodes = nodes();
    let saved = saved_plan(&nodes);
    let fresh = observe(WORLD, &nodes);
    let edited_spec = SPEC.replace("listenerPort: 8000", "listenerPort: 8001");
    assert!(matches!(
        saved.check("portainer-edge", &edited_spec, &refs(&nodes), &fresh),
        Err(SavedPlanError::OtherSpec { .. })
    ));
    // A changed input the spec only references (a policy document's content) is another input too.
    let mut edited_nodes = nodes.clone();
    edited_nodes[0].desired.insert("policy_document", edgeplan_model::Expr::lit("{}"));
    assert!(matches!(
        saved.check("portainer-edge", SPEC, &refs(&edited_nodes), &fresh),
        Err(SavedPlanError::OtherSpec { .. })
    ));
    assert!(matches!(saved.check("other-stack", SPEC, &refs(&nodes), &fresh), Err(SavedPlanError::OtherStack { .. })));
    let newer = saved.to_json().replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    assert_eq!(SavedPlan::from_json(&newer), Err(SavedPlanError::NewerFormat { found: 99, supported: 1 }));
    assert!(matches!(SavedPlan::from_json("{\"format_version\": 1}"), Err(SavedPlanError::Malformed(_))));
    assert!(matches!(SavedPlan::from_json("not json"), Err(SavedPlanError::Malformed(_))));
}
