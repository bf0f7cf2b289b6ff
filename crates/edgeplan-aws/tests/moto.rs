//! The AWS backend against a real moto_server (our launcher in `tools/moto/`, which adds the
//! PrivateLink connection API moto lacks): one test binary, one server, each test on a reset
//! server seeded with a simulated world's AWS side. Kubernetes and Portainer scopes are served
//! by the simulator; the test plays the LB controller in moto.

mod support;

use edgeplan_engine::{ApplyOptions, NoProgress, Planned, Session};
use edgeplan_model::ScopeKind;
use edgeplan_plan::Plan;
use edgeplan_testkit::{load_stack, world};

use support::{Clients, moto, runtime};

fn aws_changes(plan: &Plan, session: &Session) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action.mutates())
        .filter(|c| {
            session.stack.graph.node(&c.address).is_none_or(|n| n.scope.kind() == ScopeKind::Aws)
                && c.address.kind().is_some_and(|k| k.scope() == ScopeKind::Aws)
        })
        .map(|c| format!("{} {}", c.action, c.address))
        .collect()
}

fn plan_errors(plan: &Plan) -> Vec<String> {
    plan.diagnostics
        .iter()
        .filter(|d| d.finding.severity == edgeplan_diag::Severity::Error)
        .map(|d| format!("{}: {} {}", d.address, d.finding.rule.code(), d.finding.message))
        .collect()
}

/// Plan, then apply the AWS nodes and what they depend on.
async fn apply_aws(session: &Session, options: &ApplyOptions) -> (Planned, edgeplan_engine::ApplyReport) {
    let planned = session.plan().await;
    let only = support::aws_closure(&planned);
    let report = session.apply(&planned, Some(&only), options, &NoProgress, None, false).await.expect("no lock");
    (planned, report)
}

fn failures(report: &edgeplan_engine::ApplyReport) -> Vec<String> {
    report.failures().map(|(a, e)| format!("{a}: {e}")).collect()
}

#[test]
fn the_seed_converges_on_moto_and_a_second_plan_has_no_aws_changes() {
    let (moto, _turn) = moto();
    let rt = runtime();
    rt.block_on(async {
        let (clients, env) = support::seeded(
            moto.server.url(),
            moto.server.url(),
            world("testdata/worlds/seed.yaml"),
            &["staging", "prod"],
        )
        .await;
        let session = Session::new(load_stack(&support::repo("specs/seed.yaml")), env.connector.clone());
        let clock = session.clock();
        let (first, report) =
            edgeplan_engine::drive(clock.clone(), apply_aws(&session, &ApplyOptions::default())).await;
        assert!(!aws_changes(&first.plan, &session).is_empty());
        assert_eq!(plan_errors(&first.plan), Vec::<String>::new());
        assert!(report.succeeded(), "{:#?}", failures(&report));
        let again = edgeplan_engine::drive(clock, session.plan()).await;
        assert_eq!(aws_changes(&again.plan, &session), Vec::<String>::new());
        assert_eq!(env.controller.built(), 1);

        // Independent SDK calls: what AWS now holds.
        assertions::seed_converged(&clients).await;
    });
}

mod assertions {
    use aws_sdk_ec2::types::Filter;

    use super::Clients;

    fn tag_filter(key: &str, value: &str) -> Filter {
        Filter::builder().name(format!("tag:{key}")).values(value).build()
    }

    pub(crate) async fn seed_converged(clients: &Clients) {
        let stack = "portainer-edge";
        // The NLB subnet: tagged for the controller and as ours, routed by a table with no IGW route.
        let subnets = clients
            .ec2
            .describe_subnets()
            .filters(tag_filter("edgeplan.dev/address", "provider.nlb_subnet"))
            .send()
            .await
            .expect("DescribeSubnets");
        let [subnet] = subnets.subnets() else { panic!("one NLB subnet: {:?}", subnets.subnets()) };
        let tags: Vec<(String, String)> = subnet
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
            .collect();
        for wanted in [
            ("kubernetes.io/role/internal-elb", "1"),
            ("kubernetes.io/cluster/my-cluster", "shared"),
            ("edgeplan.dev/stack", stack),
        ] {
            assert!(tags.contains(&(wanted.0.to_string(), wanted.1.to_string())), "{wanted:?} in {tags:?}");
        }
        assert_eq!(subnet.cidr_block(), Some("192.168.0.0/24"));
        assert_eq!(subnet.availability_zone(), Some("eu-west-1b"));
        let subnet_id = subnet.subnet_id().unwrap_or_default();
        let tables = clients
            .ec2
            .describe_route_tables()
            .filters(Filter::builder().name("association.subnet-id").values(subnet_id).build())
            .send()
            .await
            .expect("DescribeRouteTables");
        let [table] = tables.route_tables() else { panic!("one explicit table for {subnet_id}") };
        assert!(
            table.routes().iter().all(|r| !r.gateway_id().unwrap_or_default().starts_with("igw")),
            "no IGW route: {:?}",
            table.routes()
        );

        // The cluster SG rule, exactly once.
        let rules = clients
            .ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values("sg-0a1b2c3d4e5f60011").build())
            .send()
            .await
            .expect("DescribeSecurityGroupRules");
        let tunnel: Vec<_> = rules
            .security_group_rules()
            .iter()
            .filter(|r| r.from_port() == Some(30776) && r.cidr_ipv4() == Some("192.168.0.0/24"))
            .collect();
        assert_eq!(tunnel.len(), 1, "{:?}", rules.security_group_rules());

        // The controller policy: its default version has ec2:DescribeRouteTables; ≤ 5 versions.
        let attached = clients
            .iam
            .list_attached_role_policies()
            .role_name("alb-ingress-controller")
            .send()
            .await
            .expect("ListAttachedRolePolicies");
        let arn = attached.attached_policies()[0].policy_arn().unwrap_or_default().to_string();
        let policy = clients.iam.get_policy().policy_arn(&arn).send().await.expect("GetPolicy");
        let default = policy.policy().and_then(|p| p.default_version_id()).unwrap_or_default().to_string();
        let version = clients
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&default)
            .send()
            .await
            .expect("GetPolicyVersion");
        let document = version.policy_version().and_then(|v| v.document()).unwrap_or_default();
        assert!(document.contains("ec2:DescribeRouteTables") || document.contains("ec2%3ADescribeRouteTables"));
        let versions = clients.iam.list_policy_versions().policy_arn(&arn).send().await.expect("ListPolicyVersions");
        assert!(versions.versions().len() <= 5);

        // The endpoint service: the consumer account allowed.
        let services = clients
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .filters(tag_filter("edgeplan.dev/stack", stack))
            .send()
            .await
            .expect("DescribeVpcEndpointServiceConfigurations");
        let [service] = services.service_configurations() else { panic!("one endpoint service") };
        let service_id = service.service_id().unwrap_or_default();
        let permissions = clients
            .ec2
            .describe_vpc_endpoint_service_permissions()
            .service_id(service_id)
            .send()
            .await
            .expect("DescribeVpcEndpointServicePermissions");
        let principals: Vec<&str> = permissions.allowed_principals().iter().filter_map(|p| p.principal()).collect();
        assert_eq!(principals, ["arn:aws:iam::123456789012:root"]);

        // The endpoint: Interface, in the consumer's subnet, its connection available.
        let endpoints = clients
            .ec2
            .describe_vpc_endpoints()
            .filters(tag_filter("edgeplan.dev/address", "consumer.prod.vpce"))
            .send()
            .await
            .expect("DescribeVpcEndpoints");
        let [endpoint] = endpoints.vpc_endpoints() else { panic!("one endpoint") };
        assert_eq!(endpoint.vpc_endpoint_type().map(|t| t.as_str()), Some("Interface"));
        assert_eq!(endpoint.subnet_ids(), ["subnet-0a1b2c3d4e5f60021"]);
        let connections = clients
            .ec2
            .describe_vpc_endpoint_connections()
            .filters(Filter::builder().name("service-id").values(service_id).build())
            .send()
            .await
            .expect("DescribeVpcEndpointConnections");
        let states: Vec<&str> = connections
            .vpc_endpoint_connections()
            .iter()
            .filter_map(|c| c.vpc_endpoint_state())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(states.len(), 1, "{states:?}");
        assert!(states[0].eq_ignore_ascii_case("available"), "{states:?}");
    }
}

/// What the stack owns in moto, by kind, as independent calls count it (endpoints that are
/// `deleted` and connections aside).
async fn owned_counts(clients: &Clients, stack: &str) -> std::collections::BTreeMap<&'static str, usize> {
    use aws_sdk_ec2::types::Filter;
    let by_stack = || Filter::builder().name("tag:edgeplan.dev/stack").values(stack).build();
    let ec2 = &clients.ec2;
    let subnets = ec2.describe_subnets().filters(by_stack()).send().await.expect("subnets").subnets().len();
    let tables = ec2.describe_route_tables().filters(by_stack()).send().await.expect("tables").route_tables().len();
    let groups =
        ec2.describe_security_groups().filters(by_stack()).send().await.expect("groups").security_groups().len();
    let rules = ec2
        .describe_security_group_rules()
        .filters(by_stack())
        .send()
        .await
        .expect("rules")
        .security_group_rules()
        .len();
    let services = ec2
        .describe_vpc_endpoint_service_configurations()
        .filters(by_stack())
        .send()
        .await
        .expect("services")
        .service_configurations()
        .len();
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(by_stack())
        .send()
        .await
        .expect("endpoints")
        .vpc_endpoints()
        .iter()
        .filter(|e| !e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted")))
        .count();
    [
        ("subnets", subnets),
        ("route tables", tables),
        ("security groups", groups),
        ("security group rules", rules),
        ("endpoint services", services),
        ("endpoints", endpoints),
    ]
    .into_iter()
    .collect()
}

/// The seed's AWS side, converged: one of each, and the endpoint group's one ingress rule.
fn seed_counts() -> std::collections::BTreeMap<&'static str, usize> {
    [
        ("subnets", 1),
        ("route tables", 1),
        ("security groups", 1),
        ("security group rules", 2),
        ("endpoint services", 1),
        ("endpoints", 1),
    ]
    .into_iter()
    .collect()
}

#[test]
fn throttling_and_server_errors_on_a_fifth_of_calls_still_converge_with_no_duplicates() {
    let (moto, _turn) = moto();
    let proxy = edgeplan_testkit::moto::start_proxy(
        moto.server.url(),
        edgeplan_testkit::moto::Faults { throttle: 0.2, server_error: 0.05, latency_ms: 0, seed: 7 },
    )
    .expect("start the fault proxy");
    let rt = runtime();
    rt.block_on(async {
        let (clients, env) =
            support::seeded(moto.server.url(), proxy.url(), world("testdata/worlds/seed.yaml"), &["staging", "prod"])
                .await;
        let session = Session::new(load_stack(&support::repo("specs/seed.yaml")), env.connector.clone());
        let clock = session.clock();
        let (first, report) =
            edgeplan_engine::drive(clock.clone(), apply_aws(&session, &ApplyOptions::default())).await;
        assert_eq!(plan_errors(&first.plan), Vec::<String>::new());
        assert!(report.succeeded(), "{:#?}", failures(&report));
        let again = edgeplan_engine::drive(clock, session.plan()).await;
        assert_eq!(aws_changes(&again.plan, &session), Vec::<String>::new());
        assert_eq!(owned_counts(&clients, "portainer-edge").await, seed_counts());
        let stats = edgeplan_testkit::moto::proxy_stats(&proxy).expect("proxy stats");
        let throttled = stats["throttled"].as_u64().unwrap_or(0);
        let errors = stats["server_errors"].as_u64().unwrap_or(0);
        assert!(throttled > 0 && errors > 0, "faults were injected: {stats}");
        let attempts: u64 = env.counts.snapshot().values().map(|c| c.attempts).sum();
        let operations = env.counts.total_operations();
        assert!(attempts > operations, "the SDK retried: {attempts} attempts for {operations} operations");
    });
}

#[test]
fn a_run_stopped_after_any_mutation_resumes_to_the_same_aws_objects() {
    let (moto, _turn) = moto();
    let rt = runtime();
    rt.block_on(async {
        let mut k = 1;
        loop {
            edgeplan_testkit::moto::reset(&moto.server).expect("reset");
            let (clients, env) = support::seeded(
                moto.server.url(),
                moto.server.url(),
                world("testdata/worlds/seed.yaml"),
                &["staging", "prod"],
            )
            .await;
            let stack = || load_stack(&support::repo("specs/seed.yaml"));
            let stopped = Session::new(stack(), env.connector.clone());
            let options = ApplyOptions { stop_after_mutations: Some(k), ..ApplyOptions::default() };
            let (_, report) = edgeplan_engine::drive(stopped.clock(), apply_aws(&stopped, &options)).await;
            let finished_early = report.mutations >= k;
            // A new process: a new session over the same worlds.
            let resumed = Session::new(stack(), env.connector.clone());
            let clock = resumed.clock();
            let (_, report) =
                edgeplan_engine::drive(clock.clone(), apply_aws(&resumed, &ApplyOptions::default())).await;
            assert!(report.succeeded(), "stopped after {k}: {:#?}", failures(&report));
            let again = edgeplan_engine::drive(clock, resumed.plan()).await;
            assert_eq!(aws_changes(&again.plan, &resumed), Vec::<String>::new(), "stopped after {k}");
            assert_eq!(owned_counts(&clients, "portainer-edge").await, seed_counts(), "stopped after {k}");
            if !finished_early {
                break;
            }
            k += 1;
        }
        assert!(k > 10, "the seed's AWS side takes more than 10 mutations ({k})");
    });
}

/// The fleet example without its consumer in another account (moto serves one account here),
/// and without the NLB subnet's zone ID: the fleet world's eu-west-1b is euw1-az3, moto's is
/// not (which the plan reports as EP220, as it would for an account whose names map elsewhere).
fn fleet_in_one_account(text: &str) -> String {
    let text = text.replace("      availabilityZoneId: euw1-az3\n", "");
    let text = text.as_str();
    let start = text.find("    - name: partner\n").expect("the fleet has a partner consumer");
    let end = text[start + 4..].find("\n    - name: ").map_or(text.len(), |i| start + 4 + i + 1);
    format!("{}{}", &text[..start], &text[end..])
}

fn without_consumer(text: &str, name: &str) -> String {
    let marker = format!("    - name: {name}\n");
    let start = text.find(&marker).expect("the consumer is in the spec");
    let end = text[start + 4..].find("\n    - name: ").map_or(text.len(), |i| start + 4 + i + 1);
    format!("{}{}", &text[..start], &text[end..])
}

#[test]
fn a_removed_consumer_is_pruned_and_the_others_are_left_as_they_are() {
    let (moto, _turn) = moto();
    let rt = runtime();
    rt.block_on(async {
        let (clients, env) = support::seeded(
            moto.server.url(),
            moto.server.url(),
            world("testdata/worlds/fleet.yaml"),
            &["platform", "prod", "analytics"],
        )
        .await;
        let (_dir, two) = edgeplan_testkit::edited_stack("specs/fleet.yaml", fleet_in_one_account);
        let stack_name = two.name.clone();
        let session = Session::new(two, env.connector.clone());
        let clock = session.clock();
        let (first, report) =
            edgeplan_engine::drive(clock.clone(), apply_aws(&session, &ApplyOptions::default())).await;
        assert_eq!(plan_errors(&first.plan), Vec::<String>::new());
        assert!(report.succeeded(), "{:#?}", failures(&report));
        let before = owned_counts(&clients, &stack_name).await;
        assert_eq!(before["endpoints"], 2, "{before:?}");

        let (_dir, one) = edgeplan_testkit::edited_stack("specs/fleet.yaml", |t| {
            without_consumer(&fleet_in_one_account(t), "analytics")
        });
        let session = Session::new(one, env.connector.clone());
        let clock = session.clock();
        let planned = edgeplan_engine::drive(clock.clone(), session.plan()).await;
        let deletes: Vec<String> = planned
            .plan
            .changes
            .iter()
            .filter(|c| c.action == edgeplan_model::Action::Delete)
            .map(|c| c.address.to_string())
            .collect();
        assert!(deletes.iter().any(|a| a == "consumer.analytics.vpce"), "{deletes:?}");
        let only = support::aws_closure(&planned);
        let report = edgeplan_engine::drive(
            clock.clone(),
            session.apply(&planned, Some(&only), &ApplyOptions::default(), &NoProgress, None, false),
        )
        .await
        .expect("no lock");
        assert!(report.succeeded(), "{:#?}", failures(&report));
        let after = owned_counts(&clients, &stack_name).await;
        assert_eq!(after["endpoints"], 1, "{after:?}");
        // The connection of the removed consumer was rejected; the other one is available.
        let endpoints = clients.ec2.describe_vpc_endpoints().send().await.expect("endpoints");
        let states: Vec<(String, String)> = endpoints
            .vpc_endpoints()
            .iter()
            .map(|e| {
                let address = e
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("edgeplan.dev/address"))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_string();
                (address, e.state().map(|s| s.as_str().to_string()).unwrap_or_default())
            })
            .collect();
        assert!(
            states.iter().any(|(a, s)| a == "consumer.prod.vpce" && s.eq_ignore_ascii_case("available")),
            "{states:?}"
        );
        let again = edgeplan_engine::drive(clock, session.plan()).await;
        let replaced: Vec<String> =
            again.plan.changes.iter().filter(|c| c.action.mutates()).map(|c| format!("{c:?}")).take(2).collect();
        assert_eq!(aws_changes(&again.plan, &session), Vec::<String>::new(), "{replaced:#?}");
    });
}

#[test]
fn destroy_removes_what_the_stack_made_and_leaves_everything_else() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let (moto, _turn) = moto();
    let rt = runtime();
    rt.block_on(async {
        let (clients, env) = support::seeded(
            moto.server.url(),
            moto.server.url(),
            world("testdata/worlds/seed.yaml"),
            &["staging", "prod"],
        )
        .await;
        let session = Session::new(load_stack(&support::repo("specs/seed.yaml")), env.connector.clone());
        let clock = session.clock();
        let (_, report) = edgeplan_engine::drive(clock.clone(), apply_aws(&session, &ApplyOptions::default())).await;
        assert!(report.succeeded(), "{:#?}", failures(&report));
        // Someone else's objects, one untagged and one of another stack, next to ours.
        let foreign_group = clients
            .ec2
            .create_security_group()
            .group_name("someone-elses")
            .description("not edgeplan's")
            .vpc_id("vpc-0a1b2c3d4e5f60002")
            .send()
            .await
            .expect("a foreign group");
        let other_stack = TagSpecification::builder()
            .resource_type(ResourceType::Subnet)
            .tags(Tag::builder().key("edgeplan.dev/stack").value("another-stack").build())
            .tags(Tag::builder().key("edgeplan.dev/address").value("provider.nlb_subnet").build())
            .build();
        let foreign_subnet = clients
            .ec2
            .create_subnet()
            .vpc_id("vpc-0a1b2c3d4e5f60001")
            .cidr_block("192.168.1.0/24")
            .tag_specifications(other_stack)
            .send()
            .await
            .expect("another stack's subnet");

        let planned = edgeplan_engine::drive(clock.clone(), session.plan_destroy()).await;
        let report = edgeplan_engine::drive(
            clock.clone(),
            session.apply(&planned, None, &ApplyOptions::default(), &NoProgress, None, true),
        )
        .await
        .expect("no lock");
        assert!(report.succeeded(), "{:#?}", failures(&report));
        let left = owned_counts(&clients, "portainer-edge").await;
        assert!(left.values().all(|n| *n == 0), "{left:?}");
        let group_id = foreign_group.group_id().unwrap_or_default();
        let groups = clients
            .ec2
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .expect("the foreign group is still there");
        assert_eq!(groups.security_groups().len(), 1);
        let subnet_id = foreign_subnet.subnet().and_then(|s| s.subnet_id()).unwrap_or_default();
        let subnets = clients.ec2.describe_subnets().subnet_ids(subnet_id).send().await.expect("the subnet is there");
        assert_eq!(subnets.subnets().len(), 1);
        // What the seed had stays: the VPCs, the cluster group, the controller's role and policy.
        let vpcs = clients.ec2.describe_vpcs().vpc_ids("vpc-0a1b2c3d4e5f60001").send().await.expect("vpc");
        assert_eq!(vpcs.vpcs().len(), 1);
        let attached = clients
            .iam
            .list_attached_role_policies()
            .role_name("alb-ingress-controller")
            .send()
            .await
            .expect("the role is there");
        assert_eq!(attached.attached_policies().len(), 1);
    });
}

#[test]
fn the_backend_conformance_suite_passes_against_moto() {
    let (moto, _turn) = moto();
    let harness = support::conformance::MotoHarness::new(&moto.server);
    let report = runtime().block_on(edgeplan_testkit::conformance::run(&harness));
    report.assert_conforms();
    use edgeplan_testkit::conformance::Property;
    for property in
        [Property::Create, Property::RetriedCreate, Property::UpdateDelete, Property::ListOwned, Property::Foreign]
    {
        for case in ["NlbSubnet", "ClusterSgRule", "VpceSecurityGroup"] {
            assert!(report.ran(property, case), "{property} ran for {case}");
        }
    }
}

#[test]
fn a_policy_at_five_versions_loses_the_one_the_plan_named_and_gains_the_enforced_one() {
    let (moto, _turn) = moto();
    let rt = runtime();
    rt.block_on(async {
        // The seed's ALB-era policy, edited four times since: five versions, the limit.
        let mut seed = world("testdata/worlds/seed.yaml");
        let policy = &mut seed.aws[0].iam.policies[0];
        let first = policy.versions[0].clone();
        for n in 2..=5 {
            let mut version = first.clone();
            version.id = format!("v{n}");
            policy.versions.push(version);
        }
        policy.default_version = "v5".to_string();
        let (clients, env) = support::seeded(moto.server.url(), moto.server.url(), seed, &["staging", "prod"]).await;
        let session = Session::new(load_stack(&support::repo("specs/seed.yaml")), env.connector.clone());
        let clock = session.clock();
        let (first, report) =
            edgeplan_engine::drive(clock.clone(), apply_aws(&session, &ApplyOptions::default())).await;
        assert_eq!(plan_errors(&first.plan), Vec::<String>::new());
        assert!(report.succeeded(), "{:#?}", failures(&report));
        let arn = "arn:aws:iam::123456789012:policy/ALBIngressControllerIAMPolicy";
        let versions = clients.iam.list_policy_versions().policy_arn(arn).send().await.expect("ListPolicyVersions");
        let ids: Vec<&str> = versions.versions().iter().filter_map(|v| v.version_id()).collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        assert!(!ids.contains(&"v1"), "the oldest non-default version went: {ids:?}");
        let default = versions.versions().iter().find(|v| v.is_default_version()).and_then(|v| v.version_id());
        assert_eq!(default, Some("v6"));
        let document =
            clients.iam.get_policy_version().policy_arn(arn).version_id("v6").send().await.expect("GetPolicyVersion");
        let text = document.policy_version().and_then(|v| v.document()).unwrap_or_default();
        assert!(text.contains("ec2:DescribeRouteTables") || text.contains("ec2%3ADescribeRouteTables"));
    });
}
