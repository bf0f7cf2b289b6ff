//! The engine against the simulated world: the seed and fleet worlds converge, a failure stops
//! only its dependents, a run stopped after any mutation resumes to the same world, removed
//! consumers are pruned, a destroy with a reduced spec removes everything, and what crosses
//! the seam is what the engine renders (keys, manifests), never something a backend derives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplan_engine::{ApplyOptions, ApplyReport, NoProgress, Session, Stack, Status, StepError};
use edgeplan_model::attr;
use edgeplan_model::manifest::Manifest;
use edgeplan_model::{Action, Expr, NodeKind, Scope, Value};
use edgeplan_plan::{Plan, Reason};
use edgeplan_sim::{SimConnector, SimWorld};
use edgeplan_testkit::recording::{Call, RecordingConnector};
use edgeplan_testkit::{
    converged, edited_stack, fleet_stack, path, plan_and_apply, run, seed_stack, session, sim, world,
};

fn seed() -> (Session, Arc<SimWorld>) {
    let world = sim(world("testdata/worlds/seed.yaml"));
    (session(seed_stack(), &world), world)
}

fn fleet() -> (Session, Arc<SimWorld>) {
    let world = sim(world("testdata/worlds/fleet.yaml"));
    (session(fleet_stack(), &world), world)
}

fn changes(plan: &Plan) -> Vec<String> {
    plan.changes.iter().filter(|c| c.action.mutates()).map(|c| format!("{} {}", c.action, c.address)).collect()
}

fn failures(report: &ApplyReport) -> Vec<String> {
    report.failures().map(|(address, error)| format!("{address}: {error}")).collect()
}

fn replan(session: &Session) -> Plan {
    run(session, session.plan()).plan
}

#[test]
fn the_seed_world_converges_and_a_second_plan_has_no_changes() {
    let (session, _) = seed();
    let (first, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(first.plan.summary().has_changes());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert_eq!(report.mutations, changes(&first.plan).len());
    let again = replan(&session);
    assert!(changes(&again).is_empty(), "{:#?}", changes(&again));
    // The modelled waits happened on the virtual clock: restart 30 s + NLB 180 s + endpoint
    // 120 s + agent rollout 30 s at least.
    assert!(report.makespan.as_secs() >= 360, "{:?}", report.makespan);
    assert!(report.makespan.as_secs() < 420, "{:?}", report.makespan);
}

#[test]
fn the_fleet_world_converges_too() {
    let (session, _) = fleet();
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert!(changes(&replan(&session)).is_empty());
    assert!(run(&session, session.verify()).passed());
}

#[test]
fn applying_a_converged_world_changes_nothing() {
    let (session, world) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
    let before = edgeplan_sim::save(&world.snapshot());
    let (planned, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(!planned.plan.summary().has_changes());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert_eq!(report.mutations, 0);
    let strip = |text: &str| text.lines().filter(|l| !l.starts_with("now:")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(strip(&edgeplan_sim::save(&world.snapshot())), strip(&before));
}

fn resource_counts(world: &SimWorld) -> BTreeMap<&'static str, usize> {
    let world = world.snapshot();
    let mut counts = BTreeMap::new();
    for account in &world.aws {
        for region in &account.regions {
            *counts.entry("subnets").or_default() += region.subnets.len();
            *counts.entry("route_tables").or_default() += region.route_tables.len();
            *counts.entry("security_groups").or_default() += region.security_groups.len();
            *counts.entry("sg_rules").or_default() +=
                region.security_groups.iter().map(|g| g.ingress.len()).sum::<usize>();
            *counts.entry("load_balancers").or_default() += region.load_balancers.len();
            *counts.entry("endpoint_services").or_default() += region.endpoint_services.len();
            *counts.entry("vpc_endpoints").or_default() += region.vpc_endpoints.len();
        }
        for policy in &account.iam.policies {
            *counts.entry("policy_versions").or_default() += policy.versions.len();
        }
    }
    for cluster in &world.kubernetes {
        *counts.entry("services").or_default() += cluster.services.len();
        *counts.entry("deployments").or_default() += cluster.deployments.len();
        *counts.entry("secrets").or_default() += cluster.secrets.len();
        *counts.entry("config_maps").or_default() += cluster.config_maps.len();
        *counts.entry("objects").or_default() += cluster.objects.len();
    }
    for server in &world.portainer {
        *counts.entry("environments").or_default() += server.environments.len();
    }
    counts
}

fn stop_after_every_k_then_resume(world: fn() -> (Session, Arc<SimWorld>)) {
    let (reference, reference_world) = world();
    let (first, report) = plan_and_apply(&reference, &ApplyOptions::default());
    assert!(report.succeeded());
    let total = report.mutations;
    let expected = resource_counts(&reference_world);
    assert_eq!(total, changes(&first.plan).len());
    for k in 1..=total {
        let (session, world) = world();
        let stopped = ApplyOptions { stop_after_mutations: Some(k), ..ApplyOptions::default() };
        let (_, report) = plan_and_apply(&session, &stopped);
        assert!(report.interrupted, "k={k}");
        assert_eq!(report.mutations, k, "k={k}: the hook stops right after mutation k");
        let (_, resumed) = plan_and_apply(&session, &ApplyOptions::default());
        assert!(resumed.succeeded(), "k={k}: {:#?}", failures(&resumed));
        assert!(changes(&replan(&session)).is_empty(), "k={k}");
        assert_eq!(resource_counts(&world), expected, "k={k}: no duplicates, no orphans");
    }
}

#[test]
fn a_seed_run_stopped_after_any_mutation_resumes_to_the_same_world() {
    stop_after_every_k_then_resume(seed);
}

#[test]
fn a_fleet_run_stopped_after_any_mutation_resumes_to_the_same_world() {
    stop_after_every_k_then_resume(fleet);
}

#[test]
fn a_failure_in_one_consumer_stops_only_its_dependents() {
    let world = sim(world("testdata/worlds/fleet.yaml"));
    let mut stack = fleet_stack();
    // Break one consumer: its VPC endpoint's subnets do not exist.
    let victim = stack
        .graph
        .iter()
        .find(|(a, n)| n.kind == NodeKind::Vpce && a.consumer_name() == Some("analytics"))
        .map(|(a, _)| a.clone())
        .expect("a consumer VPCE");
    let mut nodes: Vec<_> = stack.graph.iter().map(|(_, n)| n.clone()).collect();
    for node in nodes.iter_mut().filter(|n| n.address == victim) {
        node.desired.insert(attr::SUBNET_IDS, Expr::lit(Value::List(vec![Value::str("subnet-does-not-exist")])));
    }
    stack.graph = edgeplan_model::resource_graph(nodes).expect("still a graph");
    let session = session(stack, &world);
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    let roots = failures(&report);
    assert_eq!(roots.len(), 1, "{roots:#?}");
    assert!(roots[0].starts_with(victim.as_str()), "{roots:#?}");
    let consumer = victim.prefix().to_string();
    for outcome in &report.outcomes {
        let mine = outcome.address.prefix() == consumer;
        match &outcome.status {
            Status::Succeeded { .. } => {}
            Status::Failed { error } => {
                assert!(
                    matches!(error, StepError::Execute { error: edgeplan_model::BackendError::NotFound { .. } }),
                    "{error}"
                )
            }
            Status::Skipped { root } => {
                assert_eq!(root, &victim);
                assert!(mine, "{} skipped outside the broken consumer", outcome.address);
            }
            Status::NotRun => panic!("{} not run", outcome.address),
        }
        if !mine {
            assert!(matches!(outcome.status, Status::Succeeded { .. }), "{}: {:?}", outcome.address, outcome.status);
        }
    }
    assert!(report.skipped_because_of(&victim).count() >= 2);
}

/// The fleet spec without one consumer (and without the allowed principal of its account, when
/// given), written next to the example's policies.
fn fleet_without(consumer: &str, principal: Option<&str>) -> (tempfile::TempDir, Stack) {
    edited_stack("specs/fleet.yaml", |text| {
        let start = text.find(&format!("\n    - name: {consumer}\n")).expect("the consumer is in the fleet spec") + 1;
        let end = text[start..].find("\n    - name: ").map_or(text.len(), |i| start + i + 1);
        let mut reduced = format!("{}{}", &text[..start], &text[end..]);
        if let Some(principal) = principal {
            reduced = reduced.replace(&format!("        - {principal}\n"), "");
        }
        reduced
    })
}

#[test]
fn a_consumer_removed_from_the_spec_is_pruned_and_the_rest_still_verifies() {
    let (_, world) = converged("specs/fleet.yaml", "testdata/worlds/fleet.yaml");
    let (_dir, reduced) = fleet_without("analytics", None);
    let session = session(reduced, &world);
    let planned = run(&session, session.plan());
    let deletes: Vec<(String, Vec<&'static str>)> = planned
        .plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| (c.address.to_string(), c.reasons.iter().map(Reason::code).collect()))
        .collect();
    // Its endpoint, the accepted connection and its agent (Secret and all) were the stack's; the
    // security group and the environment were adopted or pre-existing, so they stay.
    let expected: Vec<(String, Vec<&str>)> =
        ["consumer.analytics.vpce", "consumer.analytics.agent", "consumer.analytics.connection_acceptance"]
            .iter()
            .map(|a| (a.to_string(), vec!["removed-from-spec"]))
            .collect();
    let mut deletes_sorted = deletes.clone();
    deletes_sorted.sort();
    let mut expected_sorted = expected;
    expected_sorted.sort();
    assert_eq!(deletes_sorted, expected_sorted, "{deletes:#?}");
    assert_eq!(changes(&planned.plan).len(), 3, "only the removed consumer changes: {:#?}", changes(&planned.plan));
    let report = run(&session, session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, false))
        .expect("no lock to lose");
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert!(changes(&replan(&session)).is_empty());
    let verify = run(&session, session.verify());
    assert!(verify.passed(), "{verify:#?}");
    assert!(verify.checks.iter().all(|c| !c.scope.contains("analytics")));
    // Nothing of the removed consumer is left with the stack's ownership.
    let left = world.snapshot();
    let tagged = edgeplan_sim::save(&left);
    assert!(
        !tagged.contains("edgeplan.dev/address: consumer.analytics"),
        "the stack still owns something of analytics"
    );
}

#[test]
fn destroying_with_every_consumer_removed_still_removes_everything_the_stack_owns() {
    let (_, world) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
    let (_dir, reduced) = edited_stack("specs/seed.yaml", |text| {
        let start = text.find("  consumers:").expect("the seed has consumers");
        format!("{}  consumers: []\n", &text[..start])
    });
    let session = session(reduced, &world);
    let planned = run(&session, session.plan_destroy());
    assert!(
        planned.plan.changes.iter().any(|c| c.address.as_str() == "consumer.prod.vpce" && c.action == Action::Delete)
    );
    let report = run(&session, session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, true))
        .expect("no lock to lose");
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let left = edgeplan_sim::save(&world.snapshot());
    assert!(!left.contains("edgeplan.dev/stack"), "objects still carry the stack's ownership:\n{left}");
}

#[test]
fn a_removed_consumer_whose_account_is_out_of_reach_is_still_revoked_on_the_provider_side() {
    let (_, world) = converged("specs/fleet.yaml", "testdata/worlds/fleet.yaml");
    let (_dir, reduced) = fleet_without("partner", Some("arn:aws:iam::210987654321:root"));
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let partner_account = Scope::Aws {
        account: "210987654321".to_string(),
        region: "eu-west-1".to_string(),
        profile: Some("partner".to_string()),
    };
    recording.make_unreachable(partner_account.clone());
    let session = Session::new(reduced, recording.clone());
    let planned = run(&session, session.plan());
    // The provider rejects the connection from the partner's endpoint and drops its principal.
    let rejected: Vec<String> = planned
        .plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && c.kind == NodeKind::ConnectionAcceptance)
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let permissions =
        planned.plan.change(&edgeplan_model::Address::provider("endpoint_service_permissions")).expect("permissions");
    assert_eq!(permissions.action, Action::Update, "{permissions:#?}");
    // The plan says what is left behind in the account it cannot reach.
    let left_behind: Vec<&str> = planned
        .plan
        .diagnostics
        .iter()
        .filter(|d| d.finding.rule.id == edgeplan_diag::RuleId::LiveLeftBehind)
        .map(|d| d.finding.message.as_str())
        .collect();
    assert_eq!(left_behind.len(), 1, "{left_behind:?}");
    assert!(left_behind[0].contains("210987654321"), "{}", left_behind[0]);
    let report = run(&session, session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, false))
        .expect("no lock to lose");
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let snapshot = world.snapshot();
    let partner_endpoint = snapshot
        .regions_of("210987654321")
        .flat_map(|r| r.vpc_endpoints.iter())
        .next()
        .expect("the partner's endpoint is left behind");
    assert_eq!(partner_endpoint.state, "rejected");
}

#[test]
fn the_agent_key_and_manifests_come_from_the_engine() {
    let world = sim(world("testdata/worlds/seed.yaml"));
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let session = Session::new(seed_stack(), recording.clone());
    let (_, report) = plan_and_apply(&session, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    let operations = recording.operations();
    // The key node is the engine's own: no backend is ever asked about it.
    assert!(operations.iter().all(|op| op.kind != NodeKind::AgentKey));
    assert!(recording.calls().iter().all(|c| match c {
        Call::Observe { addresses, .. } => addresses.iter().all(|a| !a.ends_with(".agent_key")),
        _ => true,
    }));
    let agent = operations.iter().find(|op| op.kind == NodeKind::AgentObjects).expect("the agent was applied");
    let kinds: Vec<&str> = agent.manifests.iter().map(Manifest::kind).collect();
    assert_eq!(
        kinds,
        ["Namespace", "ServiceAccount", "ClusterRoleBinding", "Service", "ConfigMap", "Secret", "Deployment"]
    );
    let key = agent
        .manifests
        .iter()
        .find_map(|m| match m {
            Manifest::Secret { data, .. } => data.get("EDGE_KEY").cloned(),
            _ => None,
        })
        .expect("the Secret holds EDGE_KEY");
    // Canonical (the agent's decoder accepts it, no padding) and re-pointed at the endpoint.
    let parsed = edgeplan_edgekey::EdgeKey::parse(key.expose().as_bytes()).expect("a key");
    assert_eq!(parsed.to_canonical().expose_secret(), key.expose());
    let vpce_dns = world
        .snapshot()
        .regions_of("123456789012")
        .flat_map(|r| r.vpc_endpoints.iter())
        .next()
        .and_then(|e| e.dns_entries.first().cloned())
        .expect("the endpoint exists");
    assert_eq!(parsed.tunnel_addr(), format!("{vpce_dns}:8000"));
    // Nothing the engine sent holds a key in clear outside that Secret.
    let debug = format!("{operations:?}");
    assert!(!debug.contains(key.expose()), "an operation prints the key");
}

#[test]
fn observing_is_one_batched_call_per_scope_per_layer() {
    let world = sim(world("testdata/worlds/fleet.yaml"));
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let session = Session::new(fleet_stack(), recording.clone());
    run(&session, session.router.observe_all(&session.stack.nodes()));
    let mut per_scope: BTreeMap<String, usize> = BTreeMap::new();
    for call in recording.calls() {
        if let Call::Observe { scope, .. } = call {
            *per_scope.entry(scope.to_record()).or_default() += 1;
        }
    }
    // Two layers at most: a lookup that needs an upstream output (a subnet's association, the
    // NLB by the Service's hostname, a connection by its endpoint) waits one layer.
    assert!(per_scope.values().all(|calls| *calls <= 2), "{per_scope:#?}");
    assert_eq!(per_scope.len(), session.stack.scopes().len(), "{per_scope:#?}");
}

#[test]
fn discovery_lists_each_api_endpoint_once() {
    // The fleet reaches account 123456789012 in eu-west-1 through three profiles (platform,
    // prod, analytics): the same objects, listed once.
    let world = sim(world("testdata/worlds/fleet.yaml"));
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let session = Session::new(fleet_stack(), recording.clone());
    run(&session, session.plan());
    let listed: Vec<Scope> = recording
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::ListOwned { scope } => Some(scope),
            _ => None,
        })
        .collect();
    let endpoints: BTreeSet<Scope> = listed.iter().map(Scope::addressed).collect();
    assert_eq!(listed.len(), endpoints.len(), "{listed:#?}");
    let shared = Scope::Aws { account: "123456789012".into(), region: "eu-west-1".into(), profile: None };
    assert!(endpoints.contains(&shared), "{endpoints:#?}");
    let profiles = session.stack.scopes().iter().filter(|s| s.addressed() == shared).count();
    assert_eq!(profiles, 3, "the fleet names three profiles on the shared account");
}

#[test]
fn an_unread_secret_never_reaches_a_backend() {
    let world = sim(world("testdata/worlds/fleet.yaml"));
    let stack = edgeplan_testkit::load_stack_with(&path("specs/fleet.yaml"), &edgeplan_testkit::FixedSecrets::none());
    assert!(!stack.unreadable.is_empty());
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let session = Session::new(stack, recording.clone());
    let (planned, report) = plan_and_apply(&session, &ApplyOptions::default());
    let errors: Vec<String> = planned
        .plan
        .diagnostics
        .iter()
        .filter(|d| d.finding.rule.id == edgeplan_diag::RuleId::SecretUnreadable)
        .map(|d| d.finding.message.clone())
        .collect();
    assert!(errors.iter().any(|m| m.contains("env:AGENT_SECRET")), "{errors:#?}");
    // Even asked to apply anyway, the executor refuses to resolve the agents' secrets.
    assert!(!report.succeeded());
    for op in recording.operations() {
        assert_ne!(op.kind, NodeKind::AgentObjects, "an agent was applied with an unread secret");
        assert!(!format!("{op:?}").contains("<env:"), "a placeholder reached a backend");
    }
}

// --- issue 9: the plan tells the truth ------------------------------------------------------------

/// The seed spec with each `(from, to)` replaced once, written next to the example's policies.
fn seed_variant(edits: &[(&str, &str)]) -> (tempfile::TempDir, Stack) {
    edited_stack("specs/seed.yaml", |text| {
        let mut text = text.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "the seed spec has no `{from}`");
            text = text.replacen(from, to, 1);
        }
        text
    })
}

/// `severity CODE address` of each diagnostic.
fn diagnostic_codes(plan: &Plan) -> Vec<String> {
    plan.diagnostics.iter().map(|d| format!("{} {} {}", d.finding.severity, d.finding.code(), d.address)).collect()
}

#[test]
fn the_seed_plan_explains_all_six_traps() {
    let (session, _) = seed();
    let plan = replan(&session);
    let codes = diagnostic_codes(&plan);
    for expected in [
        // Trap 1: the ALB-era policy; the plan applies the spec's document.
        "warning EP201 provider.lb_controller_policy",
        // Trap 2: chisel on --tunnel-port=30776; the Service forwards 8000 to it.
        "note EP218 provider.tunnel_service",
        // Trap 3: no security group rule; the plan adds one.
        "warning EP205 provider.cluster_sg_rule",
        // Trap 4: Edge Compute off; the plan turns it on and restarts Portainer.
        "warning EP206 provider.edge_compute",
        // Traps 5 and 6: the agent gets a canonical copy of Portainer's key, through the API.
        "note EP215 consumer.prod.environment",
        // The single-tier VPC: its main route table goes to an IGW; the subnet gets its own.
        "warning EP204 provider.nlb_subnet",
    ] {
        assert!(codes.contains(&expected.to_string()), "{expected} missing from {codes:#?}");
    }
    // Every one says its cause and edgeplan's fix; the four the plan removes say so.
    for diagnostic in plan.diagnostics.iter().filter(|d| !d.is_spec()) {
        assert!(!diagnostic.finding.message.is_empty() && !diagnostic.finding.help.is_empty());
        if diagnostic.finding.severity == edgeplan_diag::Severity::Warning {
            assert!(diagnostic.finding.help.starts_with("fixed by this plan: "), "{diagnostic:#?}");
        }
    }
    let tunnel = plan.diagnostics.iter().find(|d| d.finding.code() == "EP218").expect("EP218");
    assert!(tunnel.finding.message.contains("--tunnel-port=30776"), "{}", tunnel.finding.message);
    let vpc = plan.diagnostics.iter().find(|d| d.finding.code() == "EP204").expect("EP204");
    assert!(vpc.finding.message.contains("0.0.0.0/0 → igw-0a1b2c3d4e5f60001"), "{}", vpc.finding.message);
    assert!(!plan.has_errors(), "{codes:#?}");
}

#[test]
fn lint_findings_are_part_of_the_plan_with_suppressions_honoured() {
    let risky = [
        ("        - arn:aws:iam::123456789012:root", "        - \"*\""),
        ("acceptanceRequired: true", "acceptanceRequired: false"),
        ("tunnelPort: auto", "tunnelPort: 8000"),
    ];
    let world = sim(world("testdata/worlds/seed.yaml"));
    let (_dir, stack) = seed_variant(&risky);
    let plan = replan(&session(stack, &world));
    let spec: Vec<String> = plan
        .diagnostics
        .iter()
        .filter(|d| d.is_spec())
        .map(|d| format!("{} {}", d.finding.severity, d.finding.code()))
        .collect();
    for expected in ["warning EP117", "warning EP150", "warning EP130"] {
        assert!(spec.contains(&expected.to_string()), "{expected} missing from {spec:#?}");
    }
    // The explicit port is judged on the Service the plan creates: apply would wait ten
    // modelled minutes for targets that never get healthy.
    assert!(diagnostic_codes(&plan).contains(&"error EP203 provider.tunnel_service".to_string()));
    // A suppressed finding stays out, as in `edgeplan lint`.
    let (_dir, stack) = seed_variant(&[
        risky[0],
        (
            "      acceptanceRequired: true",
            "      # edgeplan-ignore: EP150 staging only, approved in #42\n      acceptanceRequired: false",
        ),
    ]);
    let plan = replan(&session(stack, &world));
    let spec: Vec<&str> = plan.diagnostics.iter().filter(|d| d.is_spec()).map(|d| d.finding.code()).collect();
    assert!(spec.contains(&"EP117") && !spec.contains(&"EP150"), "{spec:?}");
}

#[test]
fn a_public_adopted_nlb_subnet_is_an_error_the_plan_does_not_fix() {
    // The seed's staging-public-1b, adopted by ID: routed by the VPC's main table to an IGW. The
    // plan tags it (a change on the node) but never touches its routing.
    let (_dir, stack) = seed_variant(&[(
        "      cidr: 192.168.0.0/24\n      availabilityZone: eu-west-1b",
        "      id: subnet-0a1b2c3d4e5f60012",
    )]);
    let world = sim(world("testdata/worlds/seed.yaml"));
    let session = session(stack, &world);
    let planned = run(&session, session.plan());
    let subnet = planned.plan.change(&edgeplan_model::Address::provider("nlb_subnet")).expect("the subnet");
    assert_eq!(subnet.action, Action::Update, "{subnet:#?}");
    let public = planned.plan.diagnostics.iter().find(|d| d.finding.code() == "EP204").expect("EP204");
    assert_eq!(public.finding.severity, edgeplan_diag::Severity::Error);
    assert!(!public.finding.help.contains("fixed by this plan"), "{}", public.finding.help);
    assert!(
        public.finding.help.contains("associate subnet-0a1b2c3d4e5f60012 with a route table"),
        "{}",
        public.finding.help
    );
    assert!(planned.plan.has_errors());
    // Applied anyway (the CLI refuses; the engine is told to), it fails where the plan said:
    // the controller never builds the NLB.
    let report = run(&session, session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, false))
        .expect("no lock to lose");
    assert!(!report.succeeded());
    assert!(
        failures(&report).iter().any(|f| f.starts_with("provider.nlb") && f.contains("public")),
        "{:#?}",
        failures(&report)
    );
}

/// What a spec case is about, its edits to the seed spec, the diagnostic the plan must show and
/// the node applying it anyway fails at.
type Case = (&'static str, &'static [(&'static str, &'static str)], &'static str, &'static str);

#[test]
fn failures_the_observed_state_already_shows_are_plan_errors() {
    // Each spec is lint-clean and each fails at apply on the seed world, after other changes:
    // the plan names the cause first, on the node that would fail, and applying anyway (the
    // CLI refuses; the engine is told to) fails exactly there.
    let cases: [Case; 5] = [
        (
            "the NLB subnet overlaps staging-public-1b",
            &[("cidr: 192.168.0.0/24", "cidr: 192.168.64.0/24")],
            "error EP219 provider.nlb_subnet",
            "provider.nlb_subnet",
        ),
        (
            "a zone the region does not have",
            &[
                (
                    "      availabilityZone: eu-west-1b\n    clusterSecurityGroup",
                    "      availabilityZone: eu-west-1z\n    clusterSecurityGroup",
                ),
                ("          availabilityZone: eu-west-1b", "          availabilityZone: eu-west-1z"),
            ],
            "error EP220 provider.nlb_subnet",
            "provider.nlb_subnet",
        ),
        (
            "the consumer's vpc.id is the provider's VPC, its subnets are prod's",
            &[("        id: vpc-0a1b2c3d4e5f60002", "        id: vpc-0a1b2c3d4e5f60001")],
            "error EP221 consumer.prod.vpce",
            "consumer.prod.vpce",
        ),
        (
            "allowedCidrs: [] admits no agent",
            &[("          allowedCidrs:\n            - 192.168.0.0/16", "          allowedCidrs: []")],
            "error EP222 consumer.prod.vpce_security_group",
            "consumer.prod.agent",
        ),
        (
            "an explicit tunnelPort: 8000 on the Helm NodePort install",
            &[("tunnelPort: auto", "tunnelPort: 8000")],
            "error EP203 provider.tunnel_service",
            "provider.cluster_sg_rule",
        ),
    ];
    for (case, edits, expected, failing) in cases {
        let (_dir, stack) = seed_variant(edits);
        let world = sim(world("testdata/worlds/seed.yaml"));
        let session = session(stack, &world);
        let planned = run(&session, session.plan());
        let codes = diagnostic_codes(&planned.plan);
        assert!(codes.contains(&expected.to_string()), "{case}: {expected} missing from {codes:#?}");
        let report = run(&session, session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, false))
            .expect("no lock to lose");
        let failed = failures(&report);
        assert!(failed.iter().any(|f| f.starts_with(failing)), "{case}: expected {failing} to fail: {failed:#?}");
    }
}

#[test]
fn a_converged_seed_plan_repeats_no_notes() {
    // EP215 and EP202 speak when the plan writes the agent's key or deletes a policy version;
    // lint's notes about the spec (EP115: the VPCs overlap, which PrivateLink does not mind)
    // only when the plan does something. With nothing to do, the plan says nothing.
    let (session, _) = converged("specs/seed.yaml", "testdata/worlds/seed.yaml");
    let plan = replan(&session);
    assert!(changes(&plan).is_empty());
    assert!(diagnostic_codes(&plan).is_empty(), "{:#?}", diagnostic_codes(&plan));
    // The same note is there when the plan acts.
    let (fresh, _) = seed();
    let first = run(&fresh, fresh.plan());
    assert!(
        diagnostic_codes(&first.plan).contains(&"note EP115 spec".to_string()),
        "{:#?}",
        diagnostic_codes(&first.plan)
    );
}
