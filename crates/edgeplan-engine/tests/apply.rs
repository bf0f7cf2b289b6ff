//! The executor against the simulated world: the seed and fleet worlds converge, a failure
//! stops only its dependents, and a run stopped after any mutation resumes to the same world.

use std::collections::BTreeMap;

use edgeplan_apply::{ApplyOptions, ApplyReport, Direction, NoProgress, NoSecrets, Status, StepError, Walk, apply};
use edgeplan_diag::SourceFile;
use edgeplan_model::{Backend, Expr, Node, NodeKind, ResourceGraph, Value};
use edgeplan_plan::Plan;
use edgeplan_sim::SimBackend;

const POLICY: &str = include_str!("../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");

struct Fixture {
    stack: String,
    graph: ResourceGraph,
}

fn fixture(spec_text: &str) -> Fixture {
    let spec = edgeplan_spec::parse(&SourceFile::new("spec.yaml", spec_text)).expect("spec parses");
    let mut nodes = edgeplan_model::compile(&spec);
    for node in nodes.iter_mut().filter(|n| n.kind == NodeKind::LbControllerPolicy) {
        node.desired.insert("policy_document", Expr::lit(POLICY));
    }
    Fixture { stack: spec.metadata.name.value.clone(), graph: edgeplan_model::resource_graph(nodes).expect("graph") }
}

fn seed() -> (Fixture, SimBackend) {
    (
        fixture(include_str!("../../../specs/seed.yaml")),
        SimBackend::load(include_str!("../../../testdata/worlds/seed.yaml")).expect("world loads"),
    )
}

fn fleet() -> (Fixture, SimBackend) {
    (
        fixture(include_str!("../../../specs/fleet.yaml")),
        SimBackend::load(include_str!("../../../testdata/worlds/fleet.yaml")).expect("world loads"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime")
}

async fn plan(fixture: &Fixture, backend: &SimBackend) -> Plan {
    let nodes: Vec<&Node> = fixture.graph.iter().map(|(_, n)| n).collect();
    let observations = backend.observe(&fixture.stack, &nodes).await;
    edgeplan_plan::decide(&fixture.stack, &nodes, &observations)
}

fn run(fixture: &Fixture, backend: &SimBackend, options: &ApplyOptions) -> (Plan, ApplyReport) {
    runtime().block_on(async {
        backend.follow_runtime_clock();
        let plan = plan(fixture, backend).await;
        let walk = Walk {
            stack: &fixture.stack,
            graph: &fixture.graph,
            plan: &plan,
            direction: Direction::Forward,
            only: None,
        };
        let report = apply(backend, &walk, &NoSecrets, options, &NoProgress).await;
        (plan, report)
    })
}

fn replan(fixture: &Fixture, backend: &SimBackend) -> Plan {
    runtime().block_on(plan(fixture, backend))
}

fn changes(plan: &Plan) -> Vec<String> {
    plan.changes.iter().filter(|c| c.action.mutates()).map(|c| format!("{} {}", c.action, c.address)).collect()
}

fn failures(report: &ApplyReport) -> Vec<String> {
    report.failures().map(|(address, error)| format!("{address}: {error}")).collect()
}

#[test]
fn the_seed_world_converges_and_a_second_plan_has_no_changes() {
    let (fixture, backend) = seed();
    let (first, report) = run(&fixture, &backend, &ApplyOptions::default());
    assert!(first.summary().has_changes());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert_eq!(report.mutations, changes(&first).len());
    assert!(changes(&replan(&fixture, &backend)).is_empty(), "{:#?}", changes(&replan(&fixture, &backend)));
    // The modelled waits happened on the virtual clock: restart 30 s + NLB 180 s + endpoint
    // 120 s + agent rollout 30 s at least.
    assert!(report.makespan.as_secs() >= 360, "{:?}", report.makespan);
    assert!(report.makespan.as_secs() < 420, "{:?}", report.makespan);
}

#[test]
fn the_fleet_world_converges_too() {
    let (fixture, backend) = fleet();
    let (_, report) = run(&fixture, &backend, &ApplyOptions::default());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert!(changes(&replan(&fixture, &backend)).is_empty());
}

#[test]
fn applying_a_converged_world_changes_nothing() {
    let (fixture, backend) = seed();
    run(&fixture, &backend, &ApplyOptions::default());
    let before = backend.save();
    let (plan, report) = run(&fixture, &backend, &ApplyOptions::default());
    assert!(!plan.summary().has_changes());
    assert!(report.succeeded(), "{:#?}", failures(&report));
    assert_eq!(report.mutations, 0);
    let strip = |text: &str| text.lines().filter(|l| !l.starts_with("now:")).count();
    assert_eq!(strip(&backend.save()), strip(&before));
}

fn resource_counts(backend: &SimBackend) -> BTreeMap<&'static str, usize> {
    let world = backend.snapshot();
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

fn stop_after_every_k_then_resume(world: fn() -> (Fixture, SimBackend)) {
    let (fixture, reference) = world();
    let (first, report) = run(&fixture, &reference, &ApplyOptions::default());
    assert!(report.succeeded());
    let total = report.mutations;
    let expected = resource_counts(&reference);
    assert_eq!(total, changes(&first).len());
    for k in 1..=total {
        let (_, backend) = world();
        let stopped = ApplyOptions { stop_after_mutations: Some(k), ..ApplyOptions::default() };
        let (_, report) = run(&fixture, &backend, &stopped);
        assert!(report.interrupted, "k={k}");
        assert_eq!(report.mutations, k, "k={k}: the hook stops right after mutation k");
        let (_, resumed) = run(&fixture, &backend, &ApplyOptions::default());
        assert!(resumed.succeeded(), "k={k}: {:#?}", failures(&resumed));
        assert!(changes(&replan(&fixture, &backend)).is_empty(), "k={k}");
        assert_eq!(resource_counts(&backend), expected, "k={k}: no duplicates, no orphans");
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
    let (fixture, backend) = fleet();
    // Break one consumer: its VPC endpoint's subnets are in no AZ the service offers.
    let victim = fixture
        .graph
        .iter()
        .find(|(a, n)| n.kind == NodeKind::Vpce && a.as_str().starts_with("consumer."))
        .map(|(a, _)| a.clone())
        .expect("a consumer VPCE");
    let mut graph_nodes: Vec<Node> = fixture.graph.iter().map(|(_, n)| n.clone()).collect();
    for node in graph_nodes.iter_mut().filter(|n| n.address == victim) {
        node.desired.insert("subnet_ids", Expr::lit(Value::List(vec![Value::str("subnet-does-not-exist")])));
    }
    let broken = Fixture { stack: fixture.stack.clone(), graph: edgeplan_model::resource_graph(graph_nodes).unwrap() };
    let (_, report) = run(&broken, &backend, &ApplyOptions::default());
    let roots = failures(&report);
    assert_eq!(roots.len(), 1, "{roots:#?}");
    assert!(roots[0].starts_with(victim.as_str()), "{roots:#?}");
    let consumer = victim.as_str().rsplit_once('.').unwrap().0;
    for outcome in &report.outcomes {
        let mine = outcome.address.as_str().starts_with(&format!("{consumer}."));
        match &outcome.status {
            Status::Succeeded { .. } => {}
            Status::Failed { error } => assert!(matches!(error, StepError::Execute { .. }), "{error}"),
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
