//! What apply checks before mutating (`check_assumptions`) and what destroy decides
//! (`decide_destroy`), over the seed spec's nodes.

mod common;

use common::{converged, observe_all, refs, seed_nodes};
use edgeplan_model::{Action, Address, Identity, Observed, Value};
use edgeplan_plan::{Reason, check_assumptions, decide, decide_destroy};

const NOTHING_MUTATED: fn(&Address) -> bool = |_| false;

#[test]
fn an_update_is_aborted_when_a_field_it_showed_has_moved() {
    let nodes = seed_nodes();
    let mut world = converged(&nodes);
    let address = Address::provider("edge_compute");
    world.get_mut(&address).unwrap().attributes.insert("EnableEdgeComputeFeatures".into(), Value::Bool(false));
    let plan = decide("s", &refs(&nodes), &observe_all(&nodes, |n| Observed::Present(world[&n.address].clone())));
    let change = plan.change(&address).unwrap();
    assert_eq!(change.action, Action::Update);
    let node = nodes.iter().find(|n| n.address == address).unwrap();

    // Unchanged since the plan: fine.
    let same = Observed::Present(world[&address].clone());
    assert_eq!(check_assumptions(node, change, &same, NOTHING_MUTATED), Ok(()));

    // Someone turned it on in the UI meanwhile: the plan's "before" no longer holds; abort
    // with the field's diff rather than do what the plan did not show.
    let mut moved = world[&address].clone();
    moved.attributes.insert("EnableEdgeComputeFeatures".into(), Value::Bool(true));
    let error = check_assumptions(node, change, &Observed::Present(moved), NOTHING_MUTATED).unwrap_err();
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
fn a_create_is_aborted_when_the_object_appeared_unless_its_parent_was_just_created() {
    let nodes = seed_nodes();
    let plan = decide("s", &refs(&nodes), &observe_all(&nodes, |_| Observed::Absent));
    let address = Address::consumer("prod", "connection_acceptance");
    let node = nodes.iter().find(|n| n.address == address).unwrap();
    let change = plan.change(&address).unwrap();
    assert_eq!(change.action, Action::Create);
    let appeared = Observed::Present(converged(&nodes)[&address].clone());
    assert!(check_assumptions(node, change, &appeared, NOTHING_MUTATED).is_err(), "someone else made it");
    // The connection appears with the endpoint this apply created: expected.
    let vpce = Address::consumer("prod", "vpce");
    assert_eq!(check_assumptions(node, change, &appeared, |a| a == &vpce), Ok(()));
}

#[test]
fn destroy_deletes_only_owned_objects_and_says_why_it_keeps_the_rest() {
    let nodes = seed_nodes();
    let mut world = converged(&nodes);
    // The environment was made in the Portainer UI: not owned.
    world.get_mut(&Address::consumer("prod", "environment")).unwrap().owned = false;
    let observations = observe_all(&nodes, |n| Observed::Present(world[&n.address].clone()));
    let plan = decide_destroy("s", &refs(&nodes), &observations);
    for change in &plan.changes {
        let node = nodes.iter().find(|n| n.address == change.address).unwrap();
        let expected = match change.address.as_str() {
            "provider.lb_controller_policy" | "provider.edge_compute" | "provider.portainer_restart" => {
                Reason::NeverDeleted
            }
            "provider.nlb" => Reason::ManagedElsewhere,
            "consumer.prod.connection_acceptance" | "consumer.prod.agent_key" => Reason::GoesWithParent,
            "consumer.prod.environment" => Reason::NotOwned,
            _ if matches!(node.identity, Identity::Adopted { .. }) => Reason::NotOwned,
            _ => Reason::OwnedByStack,
        };
        assert_eq!(change.reasons, vec![expected.clone()], "{}", change.address);
        let deletes = expected == Reason::OwnedByStack;
        assert_eq!(change.action == Action::Delete, deletes, "{}", change.address);
    }
    // Nothing present, nothing to delete.
    let empty = decide_destroy("s", &refs(&nodes), &observe_all(&nodes, |_| Observed::Absent));
    assert!(empty.changes.iter().all(|c| c.action == Action::NoOp && c.reasons == vec![Reason::NotFound]));
}
