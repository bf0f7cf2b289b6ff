//! The AWS backend against a real moto_server (our launcher in `tools/moto/`, which adds the
//! PrivateLink connection API moto lacks): one test binary, one server, each test on a reset
//! server seeded with a simulated world's AWS side. Kubernetes and Portainer scopes are served
//! by the simulator; the test plays the LB controller in moto.

mod support;

use std::collections::BTreeSet;

use edgeplan_engine::{ApplyOptions, NoProgress, Planned, Session};
use edgeplan_model::{Address, ScopeKind};
use edgeplan_plan::Plan;
use edgeplan_testkit::{load_stack, world};

use support::{Clients, mixed, moto, runtime};

/// The AWS nodes of a plan's graph, and everything they depend on (Terraform's `-target`).
fn aws_closure(planned: &Planned) -> BTreeSet<Address> {
    let aws: Vec<Address> = planned
        .graph
        .iter()
        .filter(|(_, node)| node.scope.kind() == ScopeKind::Aws)
        .map(|(address, _)| address.clone())
        .collect();
    planned
        .graph
        .closure_with_dependencies(&aws)
        .expect("the AWS nodes are in the graph")
        .into_iter()
        .cloned()
        .collect()
}

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
    let only = aws_closure(&planned);
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
        let clients = Clients::new(moto.server.url()).await;
        support::seed::seed(&clients, &world("testdata/worlds/seed.yaml")).await.expect("seed moto");
        let env = mixed(moto.server.url(), world("testdata/worlds/seed.yaml"), &["staging", "prod"]).await;
        let session = Session::new(load_stack(&support::repo("specs/seed.yaml")), env.connector.clone());
        let clock = session.clock();
        let (first, report) =
            edgeplan_engine::drive(clock.clone(), apply_aws(&session, &ApplyOptions::default())).await;
        assert!(!aws_changes(&first.plan, &session).is_empty());
        assert!(report.succeeded(), "{:#?}\nplan errors: {:#?}", failures(&report), plan_errors(&first.plan));
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
