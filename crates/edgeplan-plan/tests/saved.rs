//! Saved plans against hand-built observations of the seed world: round trip, refusals, and
//! staleness that names exactly the nodes whose live state moved.

mod common;

use common::{SPEC, STACK, agent_key_text, node_mut, observe_world, portainer_key, refs, seed_nodes, set};
use edgeplan_model::attr;
use edgeplan_model::{Address, Expr, Manifest, Node, Observation, Observed, SecretText, Value};
use edgeplan_plan::{SavedPlan, SavedPlanError, decide};

fn converged(nodes: &[Node]) -> Vec<Observation> {
    observe_world(nodes, |_, _| {})
}

fn saved_plan(nodes: &[Node], observations: &[Observation]) -> SavedPlan {
    let plan = decide(STACK, &refs(nodes), &[], observations);
    SavedPlan::from_plan(&plan, "specs/seed.yaml", SPEC, &refs(nodes))
}

#[test]
fn a_saved_plan_round_trips_and_is_fresh_against_an_unchanged_world() {
    let nodes = seed_nodes();
    let saved = saved_plan(&nodes, &converged(&nodes));
    let json = saved.to_json();
    let reread = SavedPlan::from_json(&json).expect("reads back");
    assert_eq!(reread, saved);
    assert_eq!(reread.changes.len(), nodes.len());
    assert_eq!(reread.check(STACK, SPEC, &refs(&nodes), &converged(&nodes)), Ok(()));
    assert_eq!(reread.spec_text, SPEC, "the spec travels with the plan");
    // The world holds Portainer's key and the agent's: neither is in the file, whole or in
    // part (both start with the base64 of `https:`).
    assert!(!json.contains("aHR0cHM6"), "no key in a saved plan");
    for key in [portainer_key(), agent_key_text()] {
        assert!(!json.contains(&key));
    }
    assert!(json.ends_with('\n'));
}

#[test]
fn a_moved_world_names_exactly_the_nodes_that_moved() {
    let nodes = seed_nodes();
    let saved = saved_plan(&nodes, &converged(&nodes));
    // Someone renamed the environment in the Portainer UI after the plan was made.
    let renamed = observe_world(&nodes, |a, o| set(a, o, "consumer.prod.environment", attr::NAME, "prod-renamed"));
    let error = saved.check(STACK, SPEC, &refs(&nodes), &renamed).unwrap_err();
    assert_eq!(error, SavedPlanError::Stale(vec![Address::consumer("prod", "environment")]));
    assert!(error.to_string().ends_with("for: consumer.prod.environment"), "{error}");

    // Someone rotated the key in the agent's Secret: only a fingerprint moved, and that is
    // enough.
    let rotated = observe_world(&nodes, |a, o| {
        common::edit_manifest(a, o, "consumer.prod.agent", "Secret", |m| {
            if let Manifest::Secret { data, .. } = m {
                data.insert("EDGE_KEY".into(), SecretText::new(common::edge_key("elsewhere:8000", "3")));
            }
        });
    });
    let error = saved.check(STACK, SPEC, &refs(&nodes), &rotated).unwrap_err();
    assert_eq!(error, SavedPlanError::Stale(vec![Address::consumer("prod", "agent")]));

    // Two nodes moved, in plan order; one disappeared.
    let moved = observe_world(&nodes, |a, o| {
        set(a, o, "provider.edge_compute", attr::ENABLE_EDGE_COMPUTE, false);
        if a.as_str() == "consumer.prod.vpce" {
            *o = Observed::Absent;
        }
    });
    let SavedPlanError::Stale(stale) = saved.check(STACK, SPEC, &refs(&nodes), &moved).unwrap_err() else {
        panic!("expected Stale")
    };
    assert_eq!(stale, [Address::provider("edge_compute"), Address::consumer("prod", "vpce")]);
}

#[test]
fn other_specs_stacks_and_newer_formats_are_refused() {
    let nodes = seed_nodes();
    let fresh = converged(&nodes);
    let saved = saved_plan(&nodes, &fresh);
    let edited_spec = SPEC.replace("listenerPort: 8000", "listenerPort: 8001");
    assert_ne!(edited_spec, SPEC);
    assert!(matches!(saved.check(STACK, &edited_spec, &refs(&nodes), &fresh), Err(SavedPlanError::OtherSpec { .. })));
    // A changed input the spec only references (a policy document's content) is another input too.
    let mut edited_nodes = nodes.clone();
    node_mut(&mut edited_nodes, "provider.lb_controller_policy").desired.insert(attr::POLICY_DOCUMENT, Expr::lit("{}"));
    assert!(matches!(saved.check(STACK, SPEC, &refs(&edited_nodes), &fresh), Err(SavedPlanError::OtherSpec { .. })));
    assert!(matches!(saved.check("other-stack", SPEC, &refs(&nodes), &fresh), Err(SavedPlanError::OtherStack { .. })));
    let newer = saved.to_json().replacen("\"format_version\": 2", "\"format_version\": 99", 1);
    assert_eq!(SavedPlan::from_json(&newer), Err(SavedPlanError::NewerFormat { found: 99, supported: 2 }));
    assert!(matches!(SavedPlan::from_json("{\"format_version\": 2}"), Err(SavedPlanError::Malformed(_))));
    // Format 1 put secrets' digests inside the spec fingerprint: refused, saying what to do.
    let older = saved.to_json().replacen("\"format_version\": 2", "\"format_version\": 1", 1);
    assert!(
        matches!(SavedPlan::from_json(&older), Err(SavedPlanError::Malformed(why)) if why.contains("run `edgeplan plan -o` again"))
    );
    assert!(matches!(SavedPlan::from_json("not json"), Err(SavedPlanError::Malformed(_))));
    let unknown_action = saved.to_json().replacen("\"action\": \"no-op\"", "\"action\": \"explode\"", 1);
    assert!(matches!(SavedPlan::from_json(&unknown_action), Err(SavedPlanError::Malformed(_))));
}

fn with_secret(text: &str) -> Vec<Node> {
    let mut nodes = seed_nodes();
    let secret = SecretText::new(text).referenced("env:AGENT_SECRET");
    node_mut(&mut nodes, "consumer.prod.agent").desired.insert(attr::AGENT_SECRET, Expr::lit(Value::Secret(secret)));
    nodes
}

#[test]
fn a_changed_secret_is_another_input_and_never_written() {
    let nodes = with_secret("first-agent-secret");
    let fresh = converged(&nodes);
    let saved = saved_plan(&nodes, &fresh);
    assert_eq!(saved.check(STACK, SPEC, &refs(&nodes), &fresh), Ok(()));
    assert!(!saved.to_json().contains("first-agent-secret"));
    // The same spec text, another secret value: the plan was made from other inputs, and the
    // error says so without a digest.
    let rotated = with_secret("second-agent-secret");
    let error = saved.check(STACK, SPEC, &refs(&rotated), &fresh).unwrap_err();
    assert_eq!(error, SavedPlanError::OtherSecrets);
    assert!(!error.to_string().contains("sha256"), "{error}");
}

#[test]
fn a_saved_plan_holds_no_unsalted_digest_of_a_secret_the_user_chose() {
    // An unsalted digest of a weak AGENT_SECRET can be brute-forced offline: the spec
    // fingerprint (printed when a saved plan is refused) does not depend on the secret at all,
    // and the file's own digest is salted, with a salt of its own.
    let (first, second) = (with_secret("hunter2"), with_secret("hunter3"));
    let fresh = converged(&first);
    let one = saved_plan(&first, &fresh);
    let other = saved_plan(&second, &fresh);
    assert_eq!(one.spec_fingerprint, other.spec_fingerprint);
    assert_ne!(one.secrets_salt, saved_plan(&first, &fresh).secrets_salt, "a fresh salt per file");
    let json = one.to_json();
    for digest in
        [SecretText::new("hunter2").fingerprint(), SecretText::new("hunter2").fingerprint().replace("sha256:", "")]
    {
        assert!(!json.contains(&digest), "an unsalted digest in the file");
    }
    // The salted digest is reproducible from the file alone (that is how apply checks it).
    let plan = decide(STACK, &refs(&first), &[], &fresh);
    let again = SavedPlan::from_plan_salted(&plan, "specs/seed.yaml", SPEC, &refs(&first), &one.secrets_salt);
    assert_eq!(again.secrets_digest, one.secrets_digest);
    assert_eq!(SavedPlan::from_json(&json).expect("reads back").check(STACK, SPEC, &refs(&first), &fresh), Ok(()));
}
