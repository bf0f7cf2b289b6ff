//! Replacements (issue 9 item 5): a change that forces a replacement shows its whole cascade in
//! the plan, and apply carries it out in an order the APIs accept. Changing the NLB subnet's
//! CIDR on an applied world replaces the subnet; the NLB cannot move to another subnet in the
//! same zone, so the Service is recreated and the controller builds a new NLB; an NLB cannot be
//! taken from its endpoint service, so that is replaced, and with it every consumer's endpoint
//! and connection; the agents get keys for the new endpoints. Old objects go first, dependents
//! before what they depend on; nothing is left behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplan_engine::{ApplyOptions, ApplyReport, Session, Stack};
use edgeplan_model::{Action, Address, Operation};
use edgeplan_plan::{Plan, Reason};
use edgeplan_sim::{SimConnector, SimWorld};
use edgeplan_testkit::recording::RecordingConnector;
use edgeplan_testkit::{converged, edited_stack, plan_and_apply, run, session};

/// The NLB subnet's CIDR in each example, and a free block of the same VPC to move it to.
fn subnet_move(spec: &str) -> (&'static str, &'static str) {
    match spec {
        "specs/seed.yaml" => ("192.168.0.0/24", "192.168.7.0/24"),
        "specs/fleet.yaml" => ("10.0.250.0/26", "10.0.251.0/26"),
        other => panic!("no subnet move for {other}"),
    }
}

/// The example spec with its NLB subnet moved.
fn moved_subnet(spec: &str) -> (tempfile::TempDir, Stack) {
    let (from, to) = subnet_move(spec);
    edited_stack(spec, |text| {
        assert_eq!(text.matches(&format!("cidr: {from}")).count(), 1, "{spec}");
        text.replace(&format!("cidr: {from}"), &format!("cidr: {to}"))
    })
}

fn actions(plan: &Plan) -> BTreeMap<String, Action> {
    plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| (c.address.to_string(), c.action)).collect()
}

fn failures(report: &ApplyReport) -> Vec<String> {
    report.failures().map(|(address, error)| format!("{address}: {error}")).collect()
}

/// How many of each thing the world holds, and which subnet CIDRs exist: a replacement that
/// leaves an old NLB, endpoint service or endpoint behind shows here.
fn inventory(world: &SimWorld) -> (BTreeMap<&'static str, usize>, Vec<String>) {
    let world = world.snapshot();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut cidrs = Vec::new();
    for account in &world.aws {
        for region in &account.regions {
            *counts.entry("load_balancers").or_default() += region.load_balancers.len();
            *counts.entry("endpoint_services").or_default() += region.endpoint_services.len();
            *counts.entry("vpc_endpoints").or_default() +=
                region.vpc_endpoints.iter().filter(|e| e.state != "deleted").count();
            *counts.entry("subnets").or_default() += region.subnets.len();
            let rules: usize = region.security_groups.iter().map(|g| g.ingress.len()).sum();
            *counts.entry("sg_rules").or_default() += rules;
            let associations: usize = region.route_tables.iter().map(|t| t.associations.len()).sum();
            *counts.entry("route_table_associations").or_default() += associations;
            cidrs.extend(region.subnets.iter().map(|s| s.cidr.clone()));
        }
    }
    for cluster in &world.kubernetes {
        *counts.entry("services").or_default() += cluster.services.len();
    }
    cidrs.sort();
    (counts, cidrs)
}

#[test]
fn the_plan_shows_the_whole_cascade_of_a_replaced_subnet_and_why() {
    let (_, world) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
    let (_dir, moved) = moved_subnet("specs/seed.yaml");
    let session = session(moved, &world);
    let planned = run(&session, session.plan());
    let replaced = |address: &str| (address.to_string(), Action::Replace);
    let updated = |address: &str| (address.to_string(), Action::Update);
    let expected: BTreeMap<String, Action> = [
        replaced("provider.nlb_subnet"),
        replaced("provider.nlb_route_table_association"),
        replaced("provider.tunnel_service"),
        replaced("provider.cluster_sg_rule"),
        replaced("provider.nlb"),
        replaced("provider.endpoint_service"),
        replaced("provider.endpoint_service_permissions"),
        replaced("consumer.prod.vpce"),
        replaced("consumer.prod.connection_acceptance"),
        updated("consumer.prod.agent_key"),
        updated("consumer.prod.agent"),
    ]
    .into_iter()
    .collect();
    assert_eq!(actions(&planned.plan), expected);
    // Each replacement says what forces it: the root by its own field, the rest by what they
    // refer to, the NLB by the controller that rebuilds it.
    let reasons = |address: &str| planned.plan.change(&Address::from_text(address)).expect(address).reasons.clone();
    assert!(
        reasons("provider.nlb_subnet")
            .iter()
            .any(|r| matches!(r, Reason::ForcesReplacement { field } if field == "cidr_block"))
    );
    assert!(reasons("provider.tunnel_service").iter().any(
        |r| matches!(r, Reason::UpstreamReplaced { field, upstream } if field == "subnet_id" && upstream.as_str() == "provider.nlb_subnet")
    ));
    assert!(
        reasons("provider.nlb")
            .iter()
            .any(|r| matches!(r, Reason::RecreatedBy { upstream } if upstream.as_str() == "provider.tunnel_service"))
    );
    assert!(
        reasons("consumer.prod.vpce")
            .iter()
            .any(|r| matches!(r, Reason::UpstreamReplaced { field, .. } if field == "service_name"))
    );
    assert!(!planned.plan.has_errors(), "{:#?}", planned.plan.diagnostics);
    // And what it means for the agents, on the field that starts it.
    let warning = planned
        .plan
        .diagnostics
        .iter()
        .find(|d| d.finding.rule.id == edgeplan_diag::RuleId::LiveReplacementInterruptsTunnels)
        .expect("EP231");
    assert_eq!(warning.address.as_str(), "provider.nlb_subnet");
    assert!(
        warning.finding.message.contains("provider.nlb, provider.endpoint_service, consumer.prod.vpce"),
        "{}",
        warning.finding.message
    );
    assert!(warning.finding.message.contains("the agents of prod"), "{}", warning.finding.message);
}

#[test]
fn a_replacement_off_the_tunnels_path_is_not_a_warning_about_it() {
    // Portainer moves its chisel port: the cluster SG rule's port cannot change in place, so
    // the rule is replaced; the Service's target port is updated in place; no endpoint moves.
    let (session, world) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
    world.edit(|w| {
        for cluster in &mut w.kubernetes {
            for deployment in cluster.deployments.iter_mut().filter(|d| d.name == "portainer") {
                for arg in &mut deployment.containers[0].args {
                    if arg.starts_with("--tunnel-port=") {
                        *arg = "--tunnel-port=30777".to_string();
                    }
                }
            }
        }
    });
    let planned = run(&session, session.plan());
    assert_eq!(
        actions(&planned.plan).get("provider.cluster_sg_rule"),
        Some(&Action::Replace),
        "{:#?}",
        actions(&planned.plan)
    );
    assert!(
        actions(&planned.plan).values().filter(|a| **a == Action::Replace).count() == 1,
        "{:#?}",
        actions(&planned.plan)
    );
    assert!(
        !planned
            .plan
            .diagnostics
            .iter()
            .any(|d| d.finding.rule.id == edgeplan_diag::RuleId::LiveReplacementInterruptsTunnels),
        "{:#?}",
        planned.plan.diagnostics
    );
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert!(run(&session, session.verify()).passed());
}

/// Apply the moved-subnet spec on a converged world; it must converge, verify, and leave the
/// world with exactly what a fresh apply of that spec would hold.
fn replace_and_converge(spec: &str, world_file: &str) {
    let (_, world) = converged(spec, world_file);
    let (before, before_cidrs) = inventory(&world);
    let (_dir, moved) = moved_subnet(spec);
    let session = session(moved, &world);
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let verified = run(&session, session.verify());
    assert!(verified.passed(), "{verified:#?}");
    let again = run(&session, session.plan());
    assert!(actions(&again.plan).values().all(|a| *a == Action::Read), "{:#?}", actions(&again.plan));
    // Nothing orphaned: the same number of everything, the old subnet gone.
    let (from, to) = subnet_move(spec);
    let (after, after_cidrs) = inventory(&world);
    assert_eq!(after, before);
    assert!(before_cidrs.contains(&from.to_string()));
    assert!(!after_cidrs.contains(&from.to_string()), "{after_cidrs:?}");
    assert!(after_cidrs.contains(&to.to_string()), "{after_cidrs:?}");
}

#[test]
fn a_replaced_nlb_subnet_converges_verifies_and_leaves_nothing_behind_on_the_seed() {
    replace_and_converge("specs/seed.yaml", "testdata/worlds/seed.yaml");
}

#[test]
fn a_replaced_nlb_subnet_converges_for_every_consumer_of_the_fleet() {
    replace_and_converge("specs/fleet.yaml", "testdata/worlds/fleet.yaml");
}

#[test]
fn old_objects_go_first_dependents_before_what_they_depend_on() {
    let (_, world) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
    let (_dir, moved) = moved_subnet("specs/seed.yaml");
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let session = Session::new(moved, recording.clone());
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let operations: Vec<Operation> = recording.operations();
    // A backend is never asked to replace: it creates and deletes.
    assert!(operations.iter().all(|op| op.action != Action::Replace));
    let at = |address: &str, action: Action| {
        operations
            .iter()
            .position(|op| op.address.as_str() == address && op.action == action)
            .unwrap_or_else(|| panic!("no {action} of {address}"))
    };
    let deleted = |address: &str| at(address, Action::Delete);
    let created = |address: &str| at(address, Action::Create);
    // The connection and the endpoint go before the endpoint service (it refuses to go while
    // connections exist), the endpoint service before the Service (its NLB cannot be deleted
    // while a service uses it), the Service before the subnet its NLB sits in.
    assert!(deleted("consumer.prod.connection_acceptance") < deleted("consumer.prod.vpce"));
    assert!(deleted("consumer.prod.vpce") < deleted("provider.endpoint_service"));
    assert!(deleted("provider.endpoint_service_permissions") < deleted("provider.endpoint_service"));
    assert!(deleted("provider.endpoint_service") < deleted("provider.tunnel_service"));
    assert!(deleted("provider.tunnel_service") < deleted("provider.nlb_subnet"));
    assert!(deleted("provider.nlb_route_table_association") < deleted("provider.nlb_subnet"));
    // Then the new ones, in dependency order, each after its own old one.
    for address in ["provider.nlb_subnet", "provider.tunnel_service", "provider.endpoint_service", "consumer.prod.vpce"]
    {
        assert!(deleted(address) < created(address), "{address}");
    }
    assert!(created("provider.nlb_subnet") < created("provider.tunnel_service"));
    assert!(created("provider.endpoint_service") < created("consumer.prod.vpce"));
    // The NLB is the controller's: edgeplan deletes the Service, never the load balancer.
    assert!(operations.iter().all(|op| op.address.as_str() != "provider.nlb"));
}

#[test]
fn a_replacement_stopped_after_any_mutation_resumes_to_the_same_world() {
    let fresh = || {
        let (_, world) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
        let (dir, moved) = moved_subnet("specs/seed.yaml");
        (dir, session(moved, &world), world)
    };
    let (_dir, reference, reference_world) = fresh();
    let (_, report) = plan_and_apply(&reference, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let expected = inventory(&reference_world);
    let total = report.mutations;
    assert!(total >= 18, "{total} mutations: each replacement is a delete and a create");
    for k in 1..=total {
        let (_dir, session, world) = fresh();
        let stopped = ApplyOptions { stop_after_mutations: Some(k), ..ApplyOptions::default() };
        let (_, report) = plan_and_apply(&session, &stopped);
        assert!(report.interrupted, "k={k}");
        let (_, resumed) = plan_and_apply(&session, &ApplyOptions::default());
        assert!(resumed.succeeded(), "k={k}: {:#?}", failures(&resumed));
        let again = run(&session, session.plan());
        assert!(actions(&again.plan).values().all(|a| *a == Action::Read), "k={k}: {:#?}", actions(&again.plan));
        assert_eq!(inventory(&world), expected, "k={k}: no duplicates, no orphans");
        assert!(run(&session, session.verify()).passed(), "k={k}");
    }
}
