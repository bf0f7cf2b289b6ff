//! The AWS backend's benchmark against moto (run by `cargo xtask bench`):
//!
//! - API calls one plan makes, counted by the SDK interceptor, per operation and in total,
//!   for the seed spec and for fleets of N consumers whose AWS side already exists in moto
//!   (applied by edgeplan first);
//! - the wall time of a whole process that makes that plan with 50 ms injected before every
//!   AWS call (our fault proxy), divided by 50 ms.
//!
//! Usage: `moto_bench [N ...]` (default: seed 10 100). The fleets are the seed spec with N
//! consumers in the provider's account (one profile), each in a VPC, subnet and main route
//! table of its own; Kubernetes and Portainer are simulated, as in the tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgeplan_engine::{ApplyOptions, NoProgress, Session};
use edgeplan_model::ScopeKind;
use edgeplan_sim::{RouteTable, Subnet, Vpc, World};
use edgeplan_testkit::moto::{self, Faults};

const LATENCY_MS: u64 = 50;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("plan-once") {
        // The child: one whole process, one plan.
        let [_, url, spec, world] = args.as_slice() else { panic!("plan-once URL SPEC WORLD") };
        plan_once(url, Path::new(spec), Path::new(world));
        return;
    }
    let sizes: Vec<String> = if args.is_empty() { vec!["seed".into(), "10".into(), "100".into()] } else { args };
    let server = moto::start_moto().expect("start moto");
    let dir = tempfile::tempdir().expect("a temp dir");
    println!("AWS API calls and latency-bound wall time of one plan, against moto (edgeplan-moto, 2 cores)");
    for size in &sizes {
        let consumers = if size == "seed" { 0 } else { size.parse().expect("a number of consumers") };
        moto::reset(&server).expect("reset");
        let (spec, world) = write_fleet(dir.path(), consumers);
        let label = if consumers == 0 { "seed (1 consumer)".to_string() } else { format!("fleet-{consumers}") };
        let runtime = support::runtime();
        let applied = runtime.block_on(prepare(server.url(), &spec, &world));
        let (calls, by_operation) = runtime.block_on(count_plan(server.url(), &spec, &world));
        let proxy = moto::start_proxy(server.url(), Faults { latency_ms: LATENCY_MS, ..Faults::default() })
            .expect("start the latency proxy");
        let (direct, _) = median_process_wall(server.url(), &spec, &world);
        let (slowed, cpu) = median_process_wall(proxy.url(), &spec, &world);
        let ratio = slowed.as_secs_f64() / (LATENCY_MS as f64 / 1000.0);
        // What the latency alone added, in round trips: the calls that ran one after another.
        let sequential = (slowed.as_secs_f64() - direct.as_secs_f64()) / (LATENCY_MS as f64 / 1000.0);
        println!(
            "{label:<18} plan: {calls:>3} AWS calls   whole process: {:.2} s at {LATENCY_MS} ms/call = {ratio:.1} × {LATENCY_MS} ms ({:.2} s with no added latency; latency added {sequential:.1} × {LATENCY_MS} ms; edgeplan's CPU {:.2} s)   (AWS side applied first: {applied} mutations)",
            slowed.as_secs_f64(),
            direct.as_secs_f64(),
            cpu.as_secs_f64(),
        );
        let line: Vec<String> = by_operation.iter().map(|(op, n)| format!("{op} {n}")).collect();
        println!("{:<18}   by operation: {}", "", line.join(", "));
    }
}

/// The median wall time of 3 whole processes that each make one plan through `url`, and the
/// median CPU time they used.
fn median_process_wall(url: &str, spec: &Path, world: &Path) -> (Duration, Duration) {
    let mut runs: Vec<(Duration, Duration)> = (0..3)
        .map(|_| {
            let started = Instant::now();
            let output = std::process::Command::new(std::env::current_exe().expect("this program"))
                .args(["plan-once", url])
                .arg(spec)
                .arg(world)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run the plan process");
            assert!(output.status.success(), "the plan process failed");
            let cpu_ms: u64 = String::from_utf8_lossy(&output.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("cpu_ms "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            (started.elapsed(), Duration::from_millis(cpu_ms))
        })
        .collect();
    runs.sort();
    runs[runs.len() / 2]
}

/// This process's CPU time (user + system), from /proc (Linux; 0 elsewhere).
fn own_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may hold spaces) are space-separated; utime and stime
    // are the 14th and 15th fields, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The seed spec with `consumers` more consumers (0: the seed itself), and its world.
fn write_fleet(dir: &Path, consumers: usize) -> (PathBuf, PathBuf) {
    let seed = std::fs::read_to_string(support::repo("specs/seed.yaml")).expect("the seed spec");
    let mut spec = seed.clone();
    let mut world: World = edgeplan_testkit::world("testdata/worlds/seed.yaml");
    let region = &mut world.aws[0].regions[0];
    for number in 1..=consumers {
        let name = format!("c{number:04}");
        let vpc = format!("vpc-0c{number:015x}");
        let subnet = format!("subnet-0c{number:015x}");
        let cidr = format!("10.{}.{}.0/20", number >> 4, (number & 0xf) << 4);
        spec.push_str(&format!(
            "    - name: {name}
      aws:
        accountId: \"123456789012\"
        region: eu-west-1
        profile: prod
      cluster:
        name: prod-cluster
        kubeContext: prod
      vpc:
        id: {vpc}
        cidr: {cidr}
      subnets:
        - id: {subnet}
          availabilityZone: eu-west-1b
      endpointSecurityGroup:
        create:
          allowedCidrs:
            - {cidr}
      environment:
        name: edge-{name}
      agent:
        namespace: edge-{name}
        imageTag: 2.39.0
"
        ));
        region.vpcs.push(Vpc { id: vpc.clone(), cidr: cidr.clone(), tags: BTreeMap::new() });
        region.subnets.push(Subnet {
            id: subnet,
            vpc_id: vpc.clone(),
            cidr: cidr.clone(),
            availability_zone: "eu-west-1b".to_string(),
            availability_zone_id: "euw1-az3".to_string(),
            available_ips: 4091,
            tags: BTreeMap::new(),
            client_token: None,
        });
        region.route_tables.push(RouteTable {
            id: format!("rtb-0c{number:015x}"),
            vpc_id: vpc,
            main: true,
            associations: Vec::new(),
            routes: Vec::new(),
            tags: BTreeMap::new(),
            client_token: None,
        });
    }
    let spec_path = dir.join(format!("fleet-{consumers}.yaml"));
    let world_path = dir.join(format!("fleet-{consumers}.world.yaml"));
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    for entry in std::fs::read_dir(support::repo("specs/policies")).expect("the policies") {
        let entry = entry.expect("an entry");
        std::fs::copy(entry.path(), dir.join("policies").join(entry.file_name())).expect("copy a policy");
    }
    std::fs::write(&spec_path, spec).expect("write the spec");
    std::fs::write(&world_path, edgeplan_sim::save(&world)).expect("write the world");
    (spec_path, world_path)
}

fn load(spec: &Path, world: &Path) -> (edgeplan_engine::Stack, World) {
    let stack = edgeplan_testkit::load_stack(spec);
    let world = edgeplan_sim::load(&std::fs::read_to_string(world).expect("the world")).expect("a world");
    (stack, world)
}

/// Seed moto with the world's AWS side and apply the spec's AWS nodes: the fleet's AWS side
/// exists, as a no-change plan wants it.
async fn prepare(url: &str, spec: &Path, world_path: &Path) -> usize {
    let (stack, world) = load(spec, world_path);
    let (_, env) = support::seeded(url, url, world, &["staging", "prod"]).await;
    let session = Session::new(stack, env.connector.clone());
    let options = ApplyOptions { parallelism: 10, ..ApplyOptions::default() };
    let mutations = edgeplan_engine::drive(session.clock(), async {
        let planned = session.plan().await;
        let only = support::aws_closure(&planned);
        let report = session.apply(&planned, Some(&only), &options, &NoProgress, None, false).await.expect("no lock");
        let failures: Vec<String> = report.failures().map(|(a, e)| format!("{a}: {e}")).collect();
        assert!(report.succeeded(), "the fleet's AWS side does not apply: {failures:#?}");
        report.mutations
    })
    .await;
    // The simulated side as the apply left it (the tunnel Service and its status): what the
    // measured plans start from.
    std::fs::write(world_path, edgeplan_sim::save(&env.world.snapshot())).expect("write the world");
    mutations
}

/// One plan's AWS calls, by operation.
async fn count_plan(url: &str, spec: &Path, world: &Path) -> (u64, BTreeMap<String, u64>) {
    let (stack, world) = load(spec, world);
    let env = support::mixed(url, world, &["staging", "prod"]).await;
    let session = Session::new(stack, env.connector.clone());
    let planned = edgeplan_engine::drive(session.clock(), session.plan()).await;
    let aws_changes = planned
        .plan
        .changes
        .iter()
        .filter(|c| c.action.mutates() && c.address.kind().is_some_and(|k| k.scope() == ScopeKind::Aws))
        .count();
    assert_eq!(aws_changes, 0, "the AWS side is converged before it is measured");
    let by_operation: BTreeMap<String, u64> =
        env.counts.snapshot().into_iter().map(|(op, count)| (op, count.operations)).collect();
    (by_operation.values().sum(), by_operation)
}

fn plan_once(url: &str, spec: &Path, world: &Path) {
    let runtime = support::runtime();
    runtime.block_on(async {
        let (stack, world) = load(spec, world);
        let env = support::mixed(url, world, &["staging", "prod"]).await;
        let session = Session::new(stack, env.connector.clone());
        let planned = edgeplan_engine::drive(session.clock(), session.plan()).await;
        std::hint::black_box(planned.plan.changes.len());
        println!("cpu_ms {}", own_cpu_time().as_millis());
        if std::env::var_os("EDGEPLAN_BENCH_TIMELINE").is_some() {
            for (at, op) in env.counts.timeline() {
                eprintln!("{:>7.3} s  {op}", at.as_secs_f64());
            }
        }
    });
}
