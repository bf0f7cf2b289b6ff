//! What apply checks before mutating (`check_assumptions`) and what destroy decides
//! (`decide_destroy`), over the seed spec's nodes.

mod common;

use common::{STACK, converged, derive, node, observe_all, observe_world, refs, seed_nodes, set};
use edgeplan_model::attr;
use edgeplan_model::{Action, Address, Identity, Observed, Ownership, Value};
use edgeplan_plan::{Reason, Shown, check_assumptions, decide, decide_destroy, matches_planned};

const NOTHING_MUTATED: fn(&Address) -> bool = |_| false;

#[test]
fn an_update_is_aborted_when_a_field_it_showed_has_moved() {
    let nodes = seed_nodes();
    let address = Address::provider("edge_compute");
    let observations =
        observe_world(&nodes, |a, o| set(a, o, "provider.edge_compute", attr::ENABLE_EDGE_COMPUTE, false));
    let plan = decide(STACK, &refs(&nodes), &[], &observations);
    let change = plan.change(&address).unwrap();
    assert_eq!(change.action, Action::Update);
    let node = node(&nodes, "provider.edge_compute");
    let observed = |enabled: bool| {
        let mut live = common::matching(&nodes, "provider.edge_compute");
        live.set(attr::ENABLE_EDGE_COMPUTE, enabled);
        Observed::Present(derive(node, &live))
    };

    // Unchanged since the plan: fine.
    assert_eq!(check_assumptions(node, change, &observed(false), NOTHING_MUTATED), Ok(()));

    // Someone turned it on in the UI meanwhile: the plan's "before" no longer holds; abort
    // with the field's diff rather than do what the plan did not show.
    let error = check_assumptions(node, change, &observed(true), NOTHING_MUTATED).unwrap_err();
    assert_eq!(error.len(), 1, "{error:?}");
    assert_eq!(
        (error[0].field.as_str(), error[0].planned.as_str(), error[0].now.as_str()),
        ("EnableEdgeComputeFeatures", "false", "true")
    );

    // Deleted meanwhile: abort too.
    let error = check_assumptions(node, change, &Observed::Absent, NOTHING_MUTATED).unwrap_err();
    assert_eq!((error[0].planned.as_str(), error[0].now.as_str()), ("exists", "absent"));
}

#[test]
fn observed_only_facts_and_fields_known_only_after_apply_do_not_abort() {
    let nodes = seed_nodes();
    // The restart is updated because the settings change.
    let observations =
        observe_world(&nodes, |a, o| set(a, o, "provider.edge_compute", attr::ENABLE_EDGE_COMPUTE, false));
    let plan = decide(STACK, &refs(&nodes), &[], &observations);
    let address = Address::provider("portainer_restart");
    let change = plan.change(&address).unwrap();
    assert_eq!(change.action, Action::Update);
    let restart = node(&nodes, "provider.portainer_restart");
    let fresh = |checksum: Option<&str>, generation: i64, namespace: &str| {
        let mut live = common::matching(&nodes, "provider.portainer_restart");
        live.manifests = vec![common::portainer_deployment(checksum)];
        if let edgeplan_model::Manifest::Deployment { metadata, .. } = &mut live.manifests[0] {
            metadata.generation = Some(generation);
            metadata.namespace = Some(namespace.to_string());
        }
        Observed::Present(derive(restart, &live))
    };
    let planned = match &change.before["settings_checksum"] {
        Shown::Known(Value::Str(checksum)) => checksum.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(change.after["settings_checksum"], Shown::KnownAfterApply);
    // A rollout moved on (generation): not something the plan showed.
    assert_eq!(check_assumptions(restart, change, &fresh(Some(&planned), 9, "portainer"), NOTHING_MUTATED), Ok(()));
    // The checksum moved: the plan showed it only as "known after apply".
    assert_eq!(check_assumptions(restart, change, &fresh(Some("sha256:1"), 4, "portainer"), NOTHING_MUTATED), Ok(()));
    // A field the plan showed moved: abort.
    let error =
        check_assumptions(restart, change, &fresh(Some(&planned), 4, "elsewhere"), NOTHING_MUTATED).unwrap_err();
    assert_eq!(error.iter().map(|m| m.field.as_str()).collect::<Vec<_>>(), ["namespace"]);
}

#[test]
fn a_create_is_aborted_when_the_object_appeared_unless_its_parent_was_just_created() {
    let nodes = seed_nodes();
    let plan = decide(STACK, &refs(&nodes), &[], &observe_all(&nodes, |_| Observed::Absent));
    let address = Address::consumer("prod", "connection_acceptance");
    let node = node(&nodes, "consumer.prod.connection_acceptance");
    let change = plan.change(&address).unwrap();
    assert_eq!(change.action, Action::Create);
    let appeared = Observed::Present(derive(node, &converged(&nodes)[&address]));
    assert!(check_assumptions(node, change, &appeared, NOTHING_MUTATED).is_err(), "someone else made it");
    // The connection appears with the endpoint this apply created: expected.
    let vpce = Address::consumer("prod", "vpce");
    assert_eq!(check_assumptions(node, change, &appeared, |a| a == &vpce), Ok(()));
    assert_eq!(check_assumptions(node, change, &Observed::Absent, NOTHING_MUTATED), Ok(()));
}

#[test]
fn planned_upstream_values_match_semantically() {
    let pretty = Shown::Known(Value::str("{\n  \"a\": 1,\n  \"b\": [2]\n}"));
    assert!(matches_planned(&pretty, &Value::str(r#"{"b":[2],"a":1}"#)));
    assert!(!matches_planned(&pretty, &Value::str(r#"{"b":[3],"a":1}"#)));
    let set = Shown::Known(Value::from(vec!["a", "b"]));
    assert!(matches_planned(&set, &Value::from(vec!["b", "a"])));
    assert!(!matches_planned(&set, &Value::from(vec!["a"])));
    assert!(matches_planned(&Shown::KnownAfterApply, &Value::str("anything")));
}

#[test]
fn destroy_deletes_only_owned_objects_and_says_why_it_keeps_the_rest() {
    let nodes = seed_nodes();
    let mut world = converged(&nodes);
    // The environment was made in the Portainer UI: it carries no ownership tag.
    world.get_mut(&Address::consumer("prod", "environment")).unwrap().owner = None;
    // The route table carries another stack's tags.
    world.get_mut(&Address::provider("nlb_route_table")).unwrap().owner =
        Some(Ownership::new("other-stack", &Address::provider("nlb_route_table")));
    // The subnet carries this stack's tags, but for another address.
    world.get_mut(&Address::provider("nlb_subnet")).unwrap().owner =
        Some(Ownership::new(STACK, &Address::provider("some_other_subnet")));
    let observations = observe_all(&nodes, |n| Observed::Present(world[&n.address].clone()));
    let plan = decide_destroy(STACK, &refs(&nodes), &observations);
    assert_eq!(plan.changes.len(), nodes.len());
    for change in &plan.changes {
        let node = node(&nodes, change.address.as_str());
        let expected = match change.address.as_str() {
            "provider.lb_controller_policy" | "provider.edge_compute" | "provider.portainer_restart" => {
                Reason::NeverDeleted
            }
            "provider.nlb" => Reason::ManagedElsewhere,
            "consumer.prod.agent_key" => Reason::GoesWithParent,
            "consumer.prod.environment" | "provider.nlb_route_table" | "provider.nlb_subnet" => Reason::NotOwned,
            _ if matches!(node.identity, Identity::Adopted { .. }) => Reason::NotOwned,
            _ => Reason::OwnedByStack,
        };
        assert_eq!(change.reasons, vec![expected.clone()], "{}", change.address);
        let deletes = expected == Reason::OwnedByStack;
        assert_eq!(change.action == Action::Delete, deletes, "{}", change.address);
    }
    // The connection is rejected (deleted) with the stack, not left accepted.
    let connection = plan.change(&Address::consumer("prod", "connection_acceptance")).unwrap();
    assert_eq!(connection.action, Action::Delete);
    assert_eq!(plan.summary().delete, 9);
    // Nothing present, nothing to delete.
    let empty = decide_destroy(STACK, &refs(&nodes), &observe_all(&nodes, |_| Observed::Absent));
    assert!(empty.changes.iter().all(|c| c.action == Action::NoOp && c.reasons == vec![Reason::NotFound]));
}
