//! The decision function over the seed spec's nodes, with hand-built observations.

mod common;

use common::{converged, matching, observe_all, refs, seed_nodes};
use edgeplan_model::backend::ObserveError;
use edgeplan_model::{Action, Address, Observed, Value};
use edgeplan_plan::{Reason, Shown, decide, stale_nodes};

fn action_of(plan: &edgeplan_plan::Plan, address: &str) -> Action {
    plan.changes.iter().find(|c| c.address.as_str() == address).map(|c| c.action).expect(address)
}

#[test]
fn an_empty_world_creates_everything_and_reads_the_nlb() {
    let nodes = seed_nodes();
    let observations = observe_all(&nodes, |_| Observed::Absent);
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    for change in &plan.changes {
        let expected = if change.address.as_str() == "provider.nlb" { Action::Read } else { Action::Create };
        assert_eq!(change.action, expected, "{}", change.address);
    }
    let summary = plan.summary();
    assert_eq!((summary.create, summary.read), (nodes.len() - 1, 1));

    // The VPCE's service name is known only after apply; the SG rule's source CIDR is known
    // now, because the new subnet's CIDR is in the spec.
    let vpce = plan.change(&Address::consumer("prod", "vpce")).unwrap();
    assert_eq!(vpce.after["service_name"], Shown::KnownAfterApply);
    let rule = plan.change(&Address::provider("cluster_sg_rule")).unwrap();
    assert_eq!(rule.after["source_cidr"], Shown::Known(Value::str("192.168.0.0/24")));
}

#[test]
fn a_converged_world_has_no_changes() {
    let nodes = seed_nodes();
    let world = converged(&nodes);
    let observations = observe_all(&nodes, |node| Observed::Present(world[&node.address].clone()));
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    let summary = plan.summary();
    assert!(!summary.has_changes(), "{:#?}", plan.changes.iter().filter(|c| c.action.mutates()).collect::<Vec<_>>());
    assert_eq!(summary.read, 1, "the NLB is always read");
}

#[test]
fn drift_updates_and_immutable_fields_replace_with_reasons() {
    let nodes = seed_nodes();
    let observations = observe_all(&nodes, |node| {
        let mut live = matching(node);
        if node.address.as_str() == "provider.nlb_subnet" {
            live.attributes.insert("cidr_block".into(), Value::str("192.168.9.0/24"));
        }
        if node.address.as_str() == "provider.edge_compute" {
            live.attributes.insert("EnableEdgeComputeFeatures".into(), Value::Bool(false));
        }
        Observed::Present(live)
    });
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    let subnet = plan.change(&Address::provider("nlb_subnet")).unwrap();
    assert_eq!(subnet.action, Action::Replace);
    assert!(subnet.reasons.contains(&Reason::ForcesReplacement { field: "cidr_block".into() }));
    assert_eq!(subnet.before["cidr_block"], Shown::Known(Value::str("192.168.9.0/24")));

    let settings = plan.change(&Address::provider("edge_compute")).unwrap();
    assert_eq!(settings.action, Action::Update);
    assert_eq!(settings.reasons, [Reason::Drift { field: "EnableEdgeComputeFeatures".into() }]);
    // The restart depends on the settings revision, which changes: it is planned too, and
    // says why.
    let restart = plan.change(&Address::provider("portainer_restart")).unwrap();
    assert_eq!(restart.action, Action::Update);
    assert!(
        matches!(&restart.reasons[..], [Reason::UpstreamChanging { upstream, .. }] if upstream.as_str() == "provider.edge_compute")
    );
}

#[test]
fn secrets_are_shown_as_references_or_fingerprints_only() {
    let nodes = seed_nodes();
    let observations = observe_all(&nodes, |_| Observed::Absent);
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    let settings = plan.change(&Address::provider("edge_compute")).unwrap();
    assert_eq!(settings.after["api_key"], Shown::Sensitive("env:PORTAINER_API_KEY".into()));
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert_eq!(agent.after["EDGE_KEY"], Shown::KnownAfterApply);
}

#[test]
fn unobservable_nodes_are_read_not_guessed() {
    let nodes = seed_nodes();
    let mut observations = observe_all(&nodes, |n| Observed::Present(matching(n)));
    observations[0].result = Err(ObserveError { message: "AccessDenied".into(), retryable: false });
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    assert_eq!(plan.changes[0].action, Action::Read);
    assert_eq!(plan.changes[0].reasons, [Reason::Unobservable]);
}

#[test]
fn a_saved_plan_names_exactly_the_nodes_that_moved() {
    let nodes = seed_nodes();
    let world = converged(&nodes);
    let observations = observe_all(&nodes, |node| Observed::Present(world[&node.address].clone()));
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    assert_eq!(stale_nodes(&plan, &observations), Vec::<Address>::new());

    let mut moved = observations.clone();
    let vpce = moved.iter_mut().find(|o| o.address == Address::consumer("prod", "vpce")).unwrap();
    vpce.result = Ok(Observed::Absent);
    assert_eq!(stale_nodes(&plan, &moved), [Address::consumer("prod", "vpce")]);
    assert_eq!(action_of(&plan, "consumer.prod.vpce"), Action::NoOp);
}

#[test]
fn json_documents_equal_after_normalization_are_not_drift() {
    let mut nodes = seed_nodes();
    let policy = nodes.iter_mut().find(|n| n.address.as_str() == "provider.lb_controller_policy").unwrap();
    policy.desired.insert(
        "policy_document",
        edgeplan_model::Expr::lit("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}"),
    );
    let world = converged(&nodes);
    let observations = observe_all(&nodes, |node| {
        let mut live = world[&node.address].clone();
        if node.address.as_str() == "provider.lb_controller_policy" {
            live.attributes.insert("policy_document".into(), Value::str(r#"{"Statement":[],"Version":"2012-10-17"}"#));
        }
        Observed::Present(live)
    });
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    let change = plan.change(&Address::provider("lb_controller_policy")).unwrap();
    assert_eq!(change.action, Action::NoOp, "{:?}", change.reasons);

    let observations = observe_all(&nodes, |node| {
        let mut live = world[&node.address].clone();
        if node.address.as_str() == "provider.lb_controller_policy" {
            live.attributes
                .insert("policy_document".into(), Value::str(r#"{"Statement":[{}],"Version":"2012-10-17"}"#));
        }
        Observed::Present(live)
    });
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    assert_eq!(action_of(&plan, "provider.lb_controller_policy"), Action::Update);
}

#[test]
fn a_different_key_fingerprint_is_drift_but_an_unread_secret_reference_is_not() {
    let nodes = seed_nodes();
    let world = converged(&nodes);
    let with_agent = |edge_key: &str, agent_secret: Option<&str>| {
        observe_all(&nodes, |node| {
            let mut live = world[&node.address].clone();
            if node.address.as_str() == "consumer.prod.agent_key" {
                live.outputs.insert("key".into(), Value::str("sha256:1111111111111111"));
            }
            if node.address.as_str() == "consumer.prod.agent" {
                live.attributes.insert("EDGE_KEY".into(), Value::str(edge_key));
                if let Some(secret) = agent_secret {
                    live.attributes.insert("AGENT_SECRET".into(), Value::str(secret));
                }
            }
            Observed::Present(live)
        })
    };
    let plan = decide("portainer-edge", &refs(&nodes), &with_agent("sha256:2222222222222222", None));
    assert_eq!(action_of(&plan, "consumer.prod.agent"), Action::Update);
    let plan = decide("portainer-edge", &refs(&nodes), &with_agent("sha256:1111111111111111", None));
    assert_eq!(action_of(&plan, "consumer.prod.agent"), Action::NoOp);
}

#[test]
fn a_trap_the_plan_fixes_is_a_warning_and_says_so() {
    let nodes = seed_nodes();
    let observations = observe_all(&nodes, |_| Observed::Absent);
    let plan = decide("portainer-edge", &refs(&nodes), &observations);
    let rule = plan.diagnostics.iter().find(|d| d.finding.code() == "EP205").expect("EP205 on the missing rule");
    assert_eq!(rule.finding.severity, edgeplan_diag::Severity::Warning);
    assert!(rule.finding.help.starts_with("fixed by this plan: "));
}

#[test]
fn lists_are_compared_as_sets() {
    let mut nodes = seed_nodes();
    let permissions = nodes.iter_mut().find(|n| n.address.as_str() == "provider.endpoint_service_permissions").unwrap();
    let (a, b) = ("arn:aws:iam::123456789012:root", "arn:aws:iam::210987654321:root");
    permissions.desired.insert("allowed_principals", edgeplan_model::Expr::lit(vec![b, a]));
    let world = converged(&nodes);
    let with_principals = |principals: Vec<&str>| {
        observe_all(&nodes, |node| {
            let mut live = world[&node.address].clone();
            if node.address.as_str() == "provider.endpoint_service_permissions" {
                live.attributes.insert("allowed_principals".into(), Value::from(principals.clone()));
            }
            Observed::Present(live)
        })
    };
    // AWS returns the same principals in its own order: no change.
    let plan = decide("portainer-edge", &refs(&nodes), &with_principals(vec![a, b]));
    assert_eq!(action_of(&plan, "provider.endpoint_service_permissions"), Action::NoOp);
    // One principal missing: a real change.
    let plan = decide("portainer-edge", &refs(&nodes), &with_principals(vec![a]));
    assert_eq!(action_of(&plan, "provider.endpoint_service_permissions"), Action::Update);
}
