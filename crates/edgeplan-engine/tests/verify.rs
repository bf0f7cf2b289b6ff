//! verify is end to end (issue 9, item 7): after a converged apply, each link of the tunnel's
//! path is broken in turn; verify fails and names exactly that link, with what to do, and the
//! request through the tunnel names it as the reason. Links shared by every consumer are
//! reported once.

use std::sync::Arc;
use std::time::Duration;

use edgeplan_engine::{Session, VerifyCheck, VerifyReport, checks};
use edgeplan_sim::{SimWorld, World};
use edgeplan_testkit::{converged, run};

const STACK_ADDRESS: &str = "edgeplan.dev/address";

fn seed() -> (Session, Arc<SimWorld>) {
    converged("specs/seed.yaml", "testdata/worlds/seed.yaml")
}

fn verify(session: &Session) -> VerifyReport {
    run(session, session.verify())
}

fn labels<'a>(checks: impl Iterator<Item = &'a VerifyCheck>) -> Vec<String> {
    checks.map(VerifyCheck::label).collect()
}

fn check<'a>(report: &'a VerifyReport, label: &str) -> &'a VerifyCheck {
    report.checks.iter().find(|c| c.label() == label).unwrap_or_else(|| panic!("no check {label}:\n{report}"))
}

/// Verify fails; the only root cause is `link`, it says what to do, and the request through
/// the tunnel fails because of it.
fn broken_at(report: &VerifyReport, link: &str) {
    assert!(!report.passed(), "{report}");
    assert_eq!(labels(report.root_failures()), [link], "{report}");
    let root = check(report, link);
    assert!(root.help.as_deref().is_some_and(|h| !h.is_empty()), "{report}");
    let tunnel = check(report, &format!("consumer prod: {}", checks::TUNNEL));
    assert!(!tunnel.passed, "{report}");
    assert_eq!(tunnel.because, [link], "{report}");
    // Every other failure names the broken link (or one that does), not a cause of its own.
    for failed in report.checks.iter().filter(|c| !c.passed && c.label() != link) {
        assert!(!failed.because.is_empty() && failed.help.is_none(), "{failed:#?}");
    }
}

fn let_time_pass(session: &Session, seconds: u64) {
    run(session, session.clock().sleep(Duration::from_secs(seconds)));
}

fn owned_by(tags: &std::collections::BTreeMap<String, String>, address: &str) -> bool {
    tags.get(STACK_ADDRESS).is_some_and(|a| a == address)
}

#[test]
fn a_converged_seed_passes_every_link_once() {
    let (session, _) = seed();
    let report = verify(&session);
    assert!(report.passed(), "{report}");
    assert_eq!(
        labels(report.checks.iter()),
        [
            format!("provider: {}", checks::CLUSTER_SECURITY_GROUP),
            format!("provider: {}", checks::TARGETS),
            format!("consumer prod: {}", checks::ENDPOINT_SECURITY_GROUP),
            format!("consumer prod: {}", checks::CONNECTION),
            format!("consumer prod: {}", checks::KEY),
            format!("consumer prod: {}", checks::EDGE_ID),
            format!("consumer prod: {}", checks::CHECKED_IN),
            format!("consumer prod: {}", checks::TUNNEL),
        ]
    );
    insta::assert_snapshot!("seed_converged", report.to_string());
}

#[test]
fn an_endpoint_security_group_without_ingress_fails_that_link() {
    let (session, world) = seed();
    world.edit(|w: &mut World| {
        for group in w.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.security_groups.iter_mut()) {
            if owned_by(&group.tags, "consumer.prod.vpce_security_group") {
                group.ingress.clear();
            }
        }
    });
    let report = verify(&session);
    broken_at(&report, &format!("consumer prod: {}", checks::ENDPOINT_SECURITY_GROUP));
    let link = check(&report, &format!("consumer prod: {}", checks::ENDPOINT_SECURITY_GROUP));
    assert!(link.evidence.contains("admits nothing on TCP 8000 from 192.168.0.0/16"), "{}", link.evidence);
    // The world agrees: the agent's dial times out at the endpoint, and its log says so.
    let tunnel = check(&report, &format!("consumer prod: {}", checks::TUNNEL));
    assert!(tunnel.evidence.contains("500 \"Unable to get the active tunnel\""), "{}", tunnel.evidence);
    assert!(tunnel.causes.iter().any(|c| c.present && c.evidence.contains("i/o timeout")), "{tunnel:#?}");
    insta::assert_snapshot!("seed_endpoint_security_group_emptied", report.to_string());
}

#[test]
fn a_deleted_cluster_security_group_rule_fails_that_link_and_target_health_follows() {
    let (session, world) = seed();
    world.edit(|w: &mut World| {
        for group in w.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.security_groups.iter_mut()) {
            group.ingress.retain(|rule| !owned_by(&rule.tags, "provider.cluster_sg_rule"));
        }
    });
    let report = verify(&session);
    broken_at(&report, &format!("provider: {}", checks::CLUSTER_SECURITY_GROUP));
    let targets = check(&report, &format!("provider: {}", checks::TARGETS));
    assert!(!targets.passed && targets.evidence.contains("Target.Timeout"), "{report}");
    assert_eq!(targets.because, [format!("provider: {}", checks::CLUSTER_SECURITY_GROUP)]);
}

#[test]
fn unhealthy_targets_fail_that_link() {
    let (session, world) = seed();
    // Portainer restarted with Edge Compute off: chisel accepts nothing (seed trap 4).
    world.edit(|w: &mut World| {
        w.portainer[0].settings.enable_edge_compute = false;
        w.portainer[0].effective.enable_edge_compute = false;
    });
    let report = verify(&session);
    broken_at(&report, &format!("provider: {}", checks::TARGETS));
    let targets = check(&report, &format!("provider: {}", checks::TARGETS));
    assert!(targets.evidence.contains("Target.FailedHealthChecks"), "{report}");
    assert!(targets.help.as_deref().is_some_and(|h| h.contains("Edge Compute")), "{report}");
}

#[test]
fn a_rejected_endpoint_connection_fails_that_link() {
    let (session, world) = seed();
    world.edit(|w: &mut World| {
        for endpoint in w.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.vpc_endpoints.iter_mut()) {
            endpoint.state = "rejected".to_string();
        }
    });
    let report = verify(&session);
    broken_at(&report, &format!("consumer prod: {}", checks::CONNECTION));
    let link = check(&report, &format!("consumer prod: {}", checks::CONNECTION));
    assert!(link.evidence.contains("connection rejected, endpoint rejected"), "{}", link.evidence);
}

/// Replace the agent's EDGE_KEY (the Secret it reads) with `edit(key)`.
fn edit_agent_key(world: &SimWorld, edit: impl Fn(&str) -> String) {
    world.edit(|w: &mut World| {
        let secret = w
            .kubernetes
            .iter_mut()
            .flat_map(|c| c.secrets.iter_mut())
            .find(|s| s.data.contains_key("EDGE_KEY"))
            .expect("the agent's Secret");
        let key = secret.data["EDGE_KEY"].clone();
        secret.data.insert("EDGE_KEY".to_string(), edit(&key));
    });
}

#[test]
fn a_padded_key_fails_the_key_link_and_the_agent_stops_checking_in() {
    let (session, world) = seed();
    edit_agent_key(&world, |key| format!("{key}="));
    let report = verify(&session);
    let key = format!("consumer prod: {}", checks::KEY);
    broken_at(&report, &key);
    assert!(check(&report, &key).evidence.contains("illegal base64 data at input byte"), "{report}");
    // The agent no longer polls: once Portainer's heartbeat window passes, the check-in fails
    // too, because of the key.
    let_time_pass(&session, 60);
    let report = verify(&session);
    broken_at(&report, &key);
    let checked_in = check(&report, &format!("consumer prod: {}", checks::CHECKED_IN));
    assert!(!checked_in.passed && checked_in.evidence.contains("Heartbeat false"), "{report}");
    assert_eq!(checked_in.because, [key]);
}

#[test]
fn a_key_pointing_at_another_port_fails_the_key_link() {
    let (session, world) = seed();
    edit_agent_key(&world, |key| {
        let parsed = edgeplan_edgekey::EdgeKey::parse(key.as_bytes()).expect("the agent's key");
        let host = parsed.tunnel_addr().rsplit_once(':').expect("host:port").0.to_string();
        let moved = parsed.with_tunnel_addr(&format!("{host}:9000")).expect("a valid address");
        moved.to_canonical().expose_secret().to_string()
    });
    let report = verify(&session);
    let key = format!("consumer prod: {}", checks::KEY);
    broken_at(&report, &key);
    assert!(check(&report, &key).evidence.contains(":9000, not vpce-"), "{report}");
}

#[test]
fn an_edge_id_portainer_does_not_know_fails_that_link() {
    let (session, world) = seed();
    // The environment was associated with another agent: Portainer refuses this one's polls.
    world.edit(|w: &mut World| w.portainer[0].environments[0].edge_id = "someone-elses-edge-id".to_string());
    let report = verify(&session);
    let edge_id = format!("consumer prod: {}", checks::EDGE_ID);
    broken_at(&report, &edge_id);
    assert!(check(&report, &edge_id).evidence.contains("environment EdgeID someone-elses-edge-id"), "{report}");
    let_time_pass(&session, 60);
    let report = verify(&session);
    broken_at(&report, &edge_id);
    assert_eq!(check(&report, &format!("consumer prod: {}", checks::CHECKED_IN)).because, [edge_id]);
}

#[test]
fn every_link_restored_by_apply_passes_again() {
    let (session, world) = seed();
    world.edit(|w: &mut World| {
        for group in w.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.security_groups.iter_mut()) {
            if owned_by(&group.tags, "consumer.prod.vpce_security_group") {
                group.ingress.clear();
            }
            group.ingress.retain(|rule| !owned_by(&rule.tags, "provider.cluster_sg_rule"));
        }
    });
    let report = verify(&session);
    assert_eq!(
        labels(report.root_failures()),
        [
            format!("provider: {}", checks::CLUSTER_SECURITY_GROUP),
            format!("consumer prod: {}", checks::ENDPOINT_SECURITY_GROUP)
        ],
        "{report}"
    );
    let (_, applied) = edgeplan_testkit::plan_and_apply(&session, &edgeplan_engine::ApplyOptions::default());
    assert!(applied.succeeded());
    let report = verify(&session);
    assert!(report.passed(), "{report}");
}

#[test]
fn the_fleets_shared_links_are_reported_once_and_named_by_each_consumer() {
    let (session, world) = converged("specs/fleet.yaml", "testdata/worlds/fleet.yaml");
    let report = verify(&session);
    assert!(report.passed(), "{report}");
    let mut seen = std::collections::BTreeSet::new();
    for check in &report.checks {
        assert!(seen.insert(check.label()), "{} is reported twice:\n{report}", check.label());
    }
    // Two provider links, six per consumer.
    assert_eq!(report.checks.len(), 2 + 3 * 6, "{report}");

    // A shared link breaks: it is one failed check, and each consumer's tunnel names it.
    world.edit(|w: &mut World| w.portainer[0].effective.enable_edge_compute = false);
    let report = verify(&session);
    let targets = format!("provider: {}", checks::TARGETS);
    assert_eq!(labels(report.root_failures()), [targets.as_str()], "{report}");
    let failing = check(&report, &targets).evidence.clone();
    let mentions = report
        .checks
        .iter()
        .map(|c| {
            usize::from(c.evidence.contains(&failing))
                + c.causes.iter().filter(|cause| cause.evidence.contains(&failing)).count()
        })
        .sum::<usize>();
    assert_eq!(mentions, 1, "the unhealthy target is reported {mentions} times:\n{report}");
    let tunnels: Vec<&VerifyCheck> = report.checks.iter().filter(|c| c.name == checks::TUNNEL).collect();
    assert_eq!(tunnels.len(), 3);
    for tunnel in tunnels {
        assert_eq!(tunnel.because, [targets.as_str()], "{report}");
    }
    insta::assert_snapshot!("fleet_targets_unhealthy", report.to_string());
}

#[test]
fn in_the_fleet_the_controller_admits_the_nlb_so_a_missing_rule_of_edgeplans_breaks_nothing() {
    // The fleet's LB controller manages the pods' backend rule itself: healthy targets prove
    // the NLB reaches the pods, so edgeplan's own rule is not a link there.
    let (session, world) = converged("specs/fleet.yaml", "testdata/worlds/fleet.yaml");
    world.edit(|w: &mut World| {
        for group in w.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.security_groups.iter_mut()) {
            group.ingress.retain(|rule| !owned_by(&rule.tags, "provider.cluster_sg_rule"));
        }
    });
    let report = verify(&session);
    assert!(report.passed(), "{report}");
    let link = check(&report, &format!("provider: {}", checks::CLUSTER_SECURITY_GROUP));
    assert!(link.evidence.contains("another rule admits the NLB"), "{}", link.evidence);
}

#[test]
fn an_adopted_endpoint_group_is_the_users_to_fix() {
    // The fleet's analytics consumer adopts its endpoint group: edgeplan says which rule to add.
    let (session, world) = converged("specs/fleet.yaml", "testdata/worlds/fleet.yaml");
    world.edit(|w: &mut World| {
        for group in w.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.security_groups.iter_mut()) {
            if group.name == "analytics-portainer-endpoint" {
                group.ingress.clear();
            }
        }
    });
    let report = verify(&session);
    let link = format!("consumer analytics: {}", checks::ENDPOINT_SECURITY_GROUP);
    assert_eq!(labels(report.root_failures()), [link.as_str()], "{report}");
    let help = check(&report, &link).help.clone().unwrap_or_default();
    assert!(help.starts_with("add an ingress rule to sg-0f1e2d3c4b5a60032 for TCP 8000 from 10.2.0.0/16"), "{help}");
    // The other consumers' tunnels are untouched.
    assert!(check(&report, &format!("consumer prod: {}", checks::TUNNEL)).passed, "{report}");
    assert!(check(&report, &format!("consumer partner: {}", checks::TUNNEL)).passed, "{report}");
}

#[test]
fn verify_before_any_apply_names_what_is_missing_without_repeating_it() {
    let world = edgeplan_testkit::sim(edgeplan_testkit::world("testdata/worlds/seed.yaml"));
    let session = edgeplan_testkit::session(edgeplan_testkit::seed_stack(), &world);
    let report = verify(&session);
    assert!(!report.passed());
    let now = session.clock().now();
    assert_eq!(now, Duration::ZERO);
    // Nothing that follows from another failure carries advice of its own.
    for failed in report.checks.iter().filter(|c| !c.passed) {
        assert!(failed.is_root_failure() == failed.help.is_some(), "{failed:#?}");
    }
    insta::assert_snapshot!("seed_before_apply", report.to_string());
}
