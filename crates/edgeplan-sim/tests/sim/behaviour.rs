//! The world's modelled behaviours (issue 3, item 6), each shown failing and then working,
//! driven through the engine as a user would: plan, apply some of it, look again.

use std::sync::Arc;

use base64::Engine as _;
use edgeplan_engine::{Session, StepError};
use edgeplan_model::attr;
use edgeplan_model::{Action, Address, BackendError, Observed, Ownership, SecretText, Value};
use edgeplan_plan::Reason;
use edgeplan_sim::{SgRule, SimConnector, TransitionKind, World};
use edgeplan_testkit::recording::RecordingConnector;
use edgeplan_testkit::{run, seed_stack};

use crate::common::*;

/// The seed's policy, private subnet and tunnel Service: the controller builds the NLB.
fn nlb_requested(sim: &Sim) {
    sim.apply(&["provider.lb_controller_policy"]);
    sim.apply(&PRIVATE_SUBNET);
    sim.apply(&["provider.tunnel_service"]);
}

/// Let the LB controller's pending retry of a Service it could not build happen. Returns how
/// long that was: it retries with backoff, and IAM or route changes are not events it watches.
fn controller_retries(sim: &Sim) -> u64 {
    let world = sim.world.snapshot();
    let retry = world.pending.iter().find(|t| t.kind == TransitionKind::ControllerRetry).expect("a retry is pending");
    let wait = retry.at.saturating_sub(world.now);
    sim.sleep(wait);
    wait
}

fn nlb_state(sim: &Sim) -> Option<String> {
    match sim.observe("provider.nlb") {
        Ok(Observed::Present(nlb)) => nlb.text(attr::STATE).map(str::to_string),
        _ => None,
    }
}

#[test]
fn the_controller_builds_no_nlb_until_the_policy_allows_describe_route_tables() {
    let sim = seed();
    // The plan says why before anything happens (trap 1).
    let planned = sim.plan();
    assert!(message(&planned, "EP201", "provider.lb_controller_policy").contains("ec2:DescribeRouteTables"));
    sim.apply(&PRIVATE_SUBNET);
    sim.apply(&["provider.tunnel_service"]);
    let service = sim.live("provider.tunnel_service");
    assert_eq!(service.text(attr::CONTROLLER_EVENT_REASON), Some("FailedBuildModel"));
    let event = service.text(attr::CONTROLLER_EVENT).expect("the controller's event");
    assert!(
        event.contains("failed to list subnets by reachability") && event.contains("ec2:DescribeRouteTables"),
        "{event}"
    );
    assert_eq!(service.get(attr::LOAD_BALANCER_HOSTNAME), Some(&Value::Null));
    sim.sleep(3600);
    assert!(sim.absent("provider.nlb"));
    assert!(sim.world.snapshot().region(ACCOUNT, REGION).expect("the region").load_balancers.is_empty());

    // The plan's policy version: the controller's next retry builds the NLB. After an hour of
    // failures its backoff is at the cap, 1000 s; nothing about IAM makes it look sooner.
    sim.apply(&["provider.lb_controller_policy"]);
    let policy = sim.live("provider.lb_controller_policy");
    assert_eq!(policy.text(attr::DEFAULT_VERSION), Some("v2"));
    assert_eq!(policy.get(attr::MISSING_ACTIONS), Some(&Value::List(Vec::new())));
    assert!(!codes(&sim.plan()).iter().any(|c| c.starts_with("EP201")));
    assert_eq!(nlb_state(&sim), None);
    let waited = controller_retries(&sim);
    assert!(waited > 0 && waited <= 1000, "{waited}");
    assert_eq!(nlb_state(&sim).as_deref(), Some("provisioning"));
    let nlb = sim.live("provider.nlb");
    assert_eq!(nlb.text(attr::SCHEME), Some("internal"));
    assert_eq!(nlb.get(attr::AVAILABILITY_ZONE_IDS), Some(&strings(&["euw1-az3"])));
    // Only in the private subnet edgeplan made (the public ones are not candidates).
    let subnet = sim.live("provider.nlb_subnet");
    assert_eq!(nlb.get(attr::SUBNET_IDS), Some(&Value::List(vec![s(&subnet.id)])));
    let service = sim.live("provider.tunnel_service");
    assert_eq!(service.text(attr::LOAD_BALANCER_HOSTNAME), nlb.text(attr::DNS_NAME));
    sim.sleep(179);
    assert_eq!(nlb_state(&sim).as_deref(), Some("provisioning"));
    sim.sleep(1);
    assert_eq!(nlb_state(&sim).as_deref(), Some("active"));
    assert_eq!(sim.waited("is active"), vec![180]);
}

#[test]
fn the_controller_wants_a_private_and_tagged_subnet() {
    let sim = seed();
    sim.apply(&["provider.lb_controller_policy"]);
    // A new subnet with no association is routed by the main table, to the IGW.
    sim.apply(&["provider.nlb_subnet"]);
    let subnet = sim.live("provider.nlb_subnet");
    assert_eq!(subnet.flag(attr::ROUTES_TO_IGW), Some(true));
    assert_eq!(subnet.text(attr::ROUTE_TABLE_ASSOCIATION), Some("main"));
    assert_eq!(subnet.text(attr::ROUTE_TABLE_ID), Some("rtb-0a1b2c3d4e5f60001"));
    let planned = sim.plan();
    assert!(message(&planned, "EP204", "provider.nlb_subnet").contains("igw-0a1b2c3d4e5f60001"));
    sim.apply(&["provider.tunnel_service"]);
    let event = sim.text("provider.tunnel_service", attr::CONTROLLER_EVENT).expect("an event");
    assert!(event.contains("is public") && event.contains("igw-0a1b2c3d4e5f60001"), "{event}");
    assert_eq!(nlb_state(&sim), None);

    // Its own route table makes it private, and the controller's next reconcile builds the NLB.
    sim.apply(&["provider.nlb_route_table", "provider.nlb_route_table_association"]);
    let subnet = sim.live("provider.nlb_subnet");
    assert_eq!(subnet.flag(attr::ROUTES_TO_IGW), Some(false));
    assert_eq!(subnet.text(attr::ROUTE_TABLE_ASSOCIATION), Some("explicit"));
    assert_eq!(subnet.text(attr::ROUTE_TABLE_ID), sim.live("provider.nlb_route_table").text(attr::ID));
    assert!(!codes(&sim.plan()).iter().any(|c| c.starts_with("EP204")));
    // The controller sees the route change at its next retry (one second after the first failure).
    assert_eq!(nlb_state(&sim), None);
    assert_eq!(controller_retries(&sim), 1);
    assert_eq!(nlb_state(&sim).as_deref(), Some("provisioning"));
}

#[test]
fn an_untagged_subnet_is_not_used_for_an_internal_nlb() {
    let sim = seed();
    sim.apply(&["provider.lb_controller_policy"]);
    // Someone made the subnet without the controller's role tag.
    sim.execute("provider.nlb_subnet", Action::Create, |a| {
        let mut tags = a[&attr::TAGS].as_map().expect("the spec's tags").clone();
        assert!(tags.remove("kubernetes.io/role/internal-elb").is_some());
        a.insert(attr::TAGS, Value::Map(tags));
    })
    .expect("the subnet is created");
    sim.apply(&["provider.nlb_route_table", "provider.nlb_route_table_association"]);
    sim.apply(&["provider.tunnel_service"]);
    let event = sim.text("provider.tunnel_service", attr::CONTROLLER_EVENT).expect("an event");
    assert!(event.contains("not tagged kubernetes.io/role/internal-elb=1"), "{event}");
    assert_eq!(nlb_state(&sim), None);
    // The plan puts the tag back (tags are compared as a subset: others' tags are kept).
    let planned = sim.plan();
    let change = planned.plan.change(&Address::provider("nlb_subnet")).expect("the subnet's change");
    assert_eq!(change.action, Action::Update);
    assert!(change.reasons.contains(&Reason::Drift { field: attr::TAGS.to_string() }), "{:?}", change.reasons);
    sim.apply(&["provider.nlb_subnet"]);
    controller_retries(&sim);
    assert_eq!(nlb_state(&sim).as_deref(), Some("provisioning"));
}

#[test]
fn the_controller_retries_a_failed_service_with_backoff_and_at_once_when_the_service_changes() {
    let sim = seed();
    sim.apply(&PRIVATE_SUBNET);
    sim.apply(&["provider.tunnel_service"]);
    assert_eq!(sim.text("provider.tunnel_service", attr::CONTROLLER_EVENT_REASON).as_deref(), Some("FailedBuildModel"));
    // 1 s, 1 s, 2 s, 4 s, …: each retry waits as long as the Service has been failing.
    let waits: Vec<u64> = (0..6).map(|_| controller_retries(&sim)).collect();
    assert_eq!(waits, [1, 1, 2, 4, 8, 16]);
    sim.sleep(5000);
    let world = sim.world.snapshot();
    let retry = world.pending.iter().find(|t| t.kind == TransitionKind::ControllerRetry).expect("still retrying");
    assert!(retry.at - world.now <= 1000, "the backoff is capped at 1000 s: {retry:?}");
    // Repeated failures are one event, not one per retry.
    let failed = world.kubernetes[0].events.iter().filter(|e| e.reason == "FailedBuildModel").count();
    assert_eq!(failed, 1);
    // The policy is fixed: nothing happens until the retry...
    sim.apply(&["provider.lb_controller_policy"]);
    assert_eq!(nlb_state(&sim), None);
    // ...unless the Service changes, which the controller watches: it reconciles at once.
    sim.execute("provider.tunnel_service", Action::Update, |_| {}).expect("the Service is applied again");
    assert_eq!(nlb_state(&sim).as_deref(), Some("provisioning"));
    assert!(!sim.world.snapshot().pending.iter().any(|t| t.kind == TransitionKind::ControllerRetry));
}

#[test]
fn targets_are_healthy_only_with_the_real_port_an_sg_rule_and_a_listening_tunnel() {
    let sim = seed();
    nlb_requested(&sim);
    // Trap 2: the Service forwards to Portainer's --tunnel-port, read from its Deployment.
    assert_eq!(sim.live("provider.portainer_restart").int(attr::TUNNEL_PORT), Some(30776));
    assert_eq!(sim.live("provider.tunnel_service").int(attr::TARGET_PORT), Some(30776));
    assert_eq!(sim.target(), ("initial".to_string(), s("Elb.RegistrationInProgress")));
    sim.sleep(180);

    // No rule admits the NLB subnet: health checks time out (trap 3).
    assert_eq!(sim.target(), ("unhealthy".to_string(), s("Target.Timeout")));
    sim.execute("provider.cluster_sg_rule", Action::Create, |_| {}).expect("the rule is created");
    let rule = sim.live("provider.cluster_sg_rule");
    assert_eq!(rule.text(attr::SOURCE_CIDR), Some("192.168.0.0/24"));
    assert_eq!(rule.int(attr::PORT), Some(30776));
    assert_eq!(rule.text(attr::SECURITY_GROUP_ID), Some("sg-0a1b2c3d4e5f60011"));
    // Admitted, but chisel is not listening while Edge Compute is off (trap 4).
    assert_eq!(sim.target(), ("unhealthy".to_string(), s("Target.FailedHealthChecks")));
    let before = sim.text("provider.edge_compute", attr::SETTINGS_CHECKSUM);
    sim.apply(&["provider.edge_compute"]);
    let settings = sim.live("provider.edge_compute");
    assert_eq!(settings.flag(attr::ENABLE_EDGE_COMPUTE), Some(true));
    assert_ne!(settings.text(attr::SETTINGS_CHECKSUM).map(str::to_string), before);
    let server = |sim: &Sim| sim.world.snapshot().portainer[0].clone();
    assert!(server(&sim).restart_pending(), "stored, not yet effective");
    sim.sleep(600);
    assert_eq!(sim.target().0, "unhealthy", "the setting waits for a restart");

    // The plan restarts Portainer: the new settings' checksum is not on its pods.
    let planned = sim.plan();
    let restart = planned.plan.change(&Address::provider("portainer_restart")).expect("the restart's change");
    assert_eq!(restart.action, Action::Update);
    assert!(restart.reasons.contains(&Reason::Drift { field: attr::SETTINGS_CHECKSUM.to_string() }));
    sim.execute("provider.portainer_restart", Action::Update, |_| {}).expect("the restart");
    assert_eq!(sim.live("provider.portainer_restart").flag(attr::ROLLOUT_COMPLETE), Some(false));
    sim.sleep(29);
    assert!(!server(&sim).tunnel_listening());
    sim.sleep(1);
    assert!(server(&sim).tunnel_listening());
    assert!(!server(&sim).restart_pending());
    assert_eq!(sim.live("provider.portainer_restart").flag(attr::ROLLOUT_COMPLETE), Some(true));
    assert_eq!(sim.target(), ("initial".to_string(), s("Elb.InitialHealthChecking")));
    sim.sleep(89);
    assert_eq!(sim.target().0, "initial");
    sim.sleep(1);
    assert_eq!(sim.target(), ("healthy".to_string(), Value::Null));
    assert_eq!(sim.waited("passed health checks"), vec![90]);
    assert_eq!(sim.waited("rollout of portainer/portainer complete"), vec![30]);

    // targetPort 8000 (the seed's first Service): nothing listens there (trap 2), even once a
    // rule admits it. The plan says so.
    sim.execute("provider.tunnel_service", Action::Update, |a| {
        a.insert(attr::TARGET_PORT, Value::Int(8000));
    })
    .expect("the Service is updated");
    assert!(message(&sim.plan(), "EP203", "provider.tunnel_service").contains("listens on 30776"));
    assert_eq!(sim.target(), ("unhealthy".to_string(), s("Target.Timeout")));
    sim.world.edit(|world| {
        let region = world.aws[0].regions.iter_mut().find(|r| r.region == REGION).expect("the region");
        let group = region.security_groups.iter_mut().find(|g| g.id == "sg-0a1b2c3d4e5f60011").expect("the group");
        group.ingress.push(SgRule {
            id: "sgr-manual-8000".to_string(),
            protocol: "tcp".to_string(),
            from_port: 8000,
            to_port: 8000,
            cidr: Some("192.168.0.0/24".to_string()),
            source_group: None,
            description: String::new(),
            tags: Default::default(),
            client_token: None,
        });
    });
    sim.sleep(1);
    assert_eq!(sim.target(), ("unhealthy".to_string(), s("Target.FailedHealthChecks")));
    // The plan puts the real port back.
    let planned = sim.plan();
    let change = planned.plan.change(&Address::provider("tunnel_service")).expect("the Service's change");
    assert_eq!(change.reasons, vec![Reason::Drift { field: attr::TARGET_PORT.to_string() }]);
    sim.apply(&["provider.tunnel_service"]);
    sim.sleep(90);
    assert_eq!(sim.target().0, "healthy");
}

#[test]
fn an_endpoint_service_needs_an_active_nlb() {
    let sim = seed();
    let error = sim.execute("provider.endpoint_service", Action::Create, |_| {}).unwrap_err();
    assert!(
        matches!(&error, BackendError::Invalid { code, message }
            if code == "InvalidParameter" && message.contains("exactly one of network_load_balancer_arn")),
        "{error:?}"
    );
    nlb_requested(&sim);
    let error = sim.execute("provider.endpoint_service", Action::Create, |_| {}).unwrap_err();
    assert!(matches!(&error, BackendError::Throttled { .. }), "{error:?}");
    assert!(error.retryable() && error.to_string().contains("provisioning"), "{error}");
    assert!(sim.absent("provider.endpoint_service"));
    sim.sleep(180);
    sim.apply(&["provider.endpoint_service"]);
    let service = sim.live("provider.endpoint_service");
    assert_eq!(service.text(attr::STATE), Some("Available"));
    assert_eq!(service.get(attr::AVAILABILITY_ZONE_IDS), Some(&strings(&["euw1-az3"])));
    assert_eq!(service.text(attr::NETWORK_LOAD_BALANCER_ARN), sim.live("provider.nlb").text(attr::ARN));
    let name = service.text(attr::SERVICE_NAME).expect("a service name");
    assert!(name.starts_with("com.amazonaws.vpce.eu-west-1.vpce-svc-0"), "{name}");
}

#[test]
fn a_vpc_endpoint_needs_a_shared_az_id_and_waits_for_acceptance() {
    // The user names a subnet in eu-west-1a: euw1-az1 in this account, and the NLB is in
    // euw1-az3 only. The plan says so, and the endpoint cannot be made there.
    let elsewhere = strings(&["subnet-0a1b2c3d4e5f60022"]);
    let stack = with_literal(seed_stack(), "consumer.prod.subnets", attr::SUBNET_IDS, elsewhere.clone());
    let stack = with_literal(stack, "consumer.prod.vpce", attr::SUBNET_IDS, elsewhere);
    let sim = over(stack, edgeplan_testkit::world(SEED_WORLD_FILE));
    sim.apply_provider();
    sim.apply(&["consumer.prod.subnets", "consumer.prod.vpce_security_group"]);
    let planned = sim.plan();
    assert!(message(&planned, "EP208", "consumer.prod.vpce").contains("euw1-az1"));
    let report = sim.try_apply(&["consumer.prod.vpce"]);
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("does not support the availability zone of the subnet: subnet-0a1b2c3d4e5f60022"),
        "{failed:?}"
    );

    // The seed's own spec: its subnet is in euw1-az3.
    let sim = seed();
    sim.apply_provider();
    sim.apply(&["consumer.prod.vpce_security_group"]);
    let vpce = "consumer.prod.vpce";
    // As AWS: every subnet must be in a supported AZ, not just one.
    let error = sim
        .execute(vpce, Action::Create, |a| {
            a.insert(attr::SUBNET_IDS, strings(&["subnet-0a1b2c3d4e5f60021", "subnet-0a1b2c3d4e5f60022"]));
        })
        .unwrap_err();
    assert!(matches!(&error, BackendError::Invalid { .. }) && error.to_string().contains("subnet-0a1b2c3d4e5f60022"));
    // CreateVpcEndpoint's default type is Gateway.
    let error = sim
        .execute(vpce, Action::Create, |a| {
            a.remove(&attr::VPC_ENDPOINT_TYPE);
        })
        .unwrap_err();
    assert!(error.to_string().contains("Gateway"), "{error}");
    assert!(sim.absent(vpce), "a refused create makes nothing");

    let planned = sim.plan();
    assert!(!codes(&planned).iter().any(|c| c.starts_with("EP208")), "{:?}", codes(&planned));
    assert_eq!(sim.live("consumer.prod.subnets").get(attr::AVAILABILITY_ZONE_IDS), Some(&strings(&["euw1-az3"])));
    sim.apply(&[vpce]);
    let endpoint = sim.live(vpce);
    assert_eq!(endpoint.text(attr::STATE), Some("pendingAcceptance"));
    let dns = endpoint.text(attr::DNS_NAME).expect("a DNS name");
    assert!(dns.starts_with(&format!("{}-", endpoint.id)) && dns.ends_with(".vpce.amazonaws.com"), "{dns}");
    // Nobody accepts it by waiting.
    sim.sleep(24 * 3600);
    let acceptance = "consumer.prod.connection_acceptance";
    assert_eq!(sim.live(acceptance).text(attr::STATE), Some("pendingAcceptance"));
    assert!(codes(&sim.plan()).contains(&format!("EP209 {acceptance}")));
    sim.execute(acceptance, sim.planned_action(acceptance), |_| {}).expect("accepted");
    assert_eq!(sim.live(vpce).text(attr::STATE), Some("pending"));
    assert_eq!(sim.live(acceptance).flag(attr::ACCEPTED), Some(true));
    sim.sleep(119);
    assert_eq!(sim.live(vpce).text(attr::STATE), Some("pending"));
    sim.sleep(1);
    assert_eq!(sim.live(vpce).text(attr::STATE), Some("available"));
    assert_eq!(sim.waited("is available"), vec![120]);
}

#[test]
fn a_consumer_not_allowed_by_the_service_cannot_see_it() {
    let sim = seed();
    let without_permissions = sim.addresses(|a| a.starts_with("provider.") && !a.ends_with("_permissions"));
    sim.apply(&without_permissions.iter().map(String::as_str).collect::<Vec<_>>());
    sim.apply(&["consumer.prod.vpce_security_group"]);
    let report = sim.try_apply(&["consumer.prod.vpce"]);
    let errors: Vec<&StepError> = report.failures().map(|(_, e)| e).collect();
    assert!(
        matches!(errors.as_slice(), [StepError::Execute { error: BackendError::NotFound { message } }]
            if message.starts_with("InvalidServiceName")),
        "{errors:?}"
    );
    // Once the account is allowed, the same endpoint can be made.
    sim.apply(&["provider.endpoint_service_permissions", "consumer.prod.vpce"]);
    assert_eq!(sim.live("consumer.prod.vpce").text(attr::STATE), Some("pendingAcceptance"));
}

/// Everything but the agent applied and settled: the tunnel path is ready.
fn ready_for_the_agent() -> Sim {
    let sim = seed();
    let all_but_agent = sim.addresses(|a| a != "consumer.prod.agent");
    sim.apply(&all_but_agent.iter().map(String::as_str).collect::<Vec<_>>());
    sim.settle();
    sim
}

/// The world's own view of the agent: what it is doing and the line that says so.
fn agent_status(sim: &Sim) -> (String, String) {
    let world = sim.world.snapshot();
    let cluster = world.cluster("prod").expect("the prod cluster");
    let agent = cluster.deployments.iter().find(|d| d.name == "portainer-agent").expect("the agent");
    let status = agent.agent_status.clone().expect("the agent's status");
    (status.state, status.message)
}

fn probe(sim: &Sim, environment_id: &str) -> edgeplan_model::HttpResponse {
    let scope = sim.node("consumer.prod.environment").scope.clone();
    let path = edgeplan_engine::kubernetes_probe_path(environment_id.parse().expect("an ID"));
    run(&sim.session, sim.session.router.http_get(&scope, &path)).expect("Portainer answers")
}

#[test]
fn the_agent_connects_only_with_the_canonical_key_pointed_at_the_endpoint() {
    let sim = ready_for_the_agent();
    let agent = "consumer.prod.agent";
    let original = sim.world.snapshot().portainer[0].environments[0].edge_key.clone();

    // Portainer's own key: the agent polls, but dials the public host on 30776.
    sim.execute(agent, Action::Create, |a| {
        a.insert(attr::AGENT_EDGE_KEY, Value::Secret(SecretText::new(original.as_str())));
    })
    .expect("the agent is created");
    let live = sim.live(agent);
    // New pods: no logs yet (the sim's status says `starting`).
    assert_eq!(live.text(attr::AGENT_STATE), Some("no-logs"));
    assert_eq!(live.flag(attr::ROLLOUT_COMPLETE), Some(false));
    assert_eq!(agent_status(&sim).0, "starting");
    sim.settle();
    let (state, line) = agent_status(&sim);
    assert_eq!(state, "polling");
    assert!(line.contains("portainer.example.com:30776") && line.contains("i/o timeout"), "{line}");
    let live = sim.live(agent);
    assert_eq!(live.text(attr::AGENT_STATE), Some("tunnel-unreachable"));
    let message = live.text(attr::AGENT_MESSAGE).expect("the line");
    assert!(message.contains("portainer.example.com:30776") && message.contains("i/o timeout"), "{message}");
    assert!(codes(&sim.plan()).contains(&format!("EP211 {agent}")));
    // It polled: Portainer registered its EDGE_ID and platform, and sees a heartbeat…
    let env = sim.live("consumer.prod.environment");
    assert_eq!(env.int(attr::TYPE_ID), Some(7));
    assert_eq!(env.text(attr::EDGE_ID), live.text(attr::AGENT_EDGE_ID));
    assert_eq!(env.flag(attr::HEARTBEAT), Some(true));
    // …but has no tunnel to proxy the Kubernetes API through.
    let answer = probe(&sim, &env.id);
    assert_eq!(answer.status, 500);
    assert!(answer.body.contains("Unable to get the active tunnel"), "{}", answer.body);
    assert!(!sim.world.snapshot().portainer[0].environments[0].tunnel_connected);

    // A soft-wrapped paste with a space: the agent's decoder stops there (trap 6b).
    let mangled = format!("{} {}", &original[..100], &original[100..]);
    sim.execute(agent, Action::Update, |a| {
        a.insert(attr::AGENT_EDGE_KEY, Value::Secret(SecretText::new(mangled.as_str())));
    })
    .expect("the agent is updated");
    sim.settle();
    let (state, line) = agent_status(&sim);
    assert_eq!(state, "crash_loop");
    assert!(line.contains("illegal base64 data at input byte 100"), "{line}");
    let live = sim.live(agent);
    assert_eq!(live.text(attr::AGENT_STATE), Some("key-encoding"));
    assert!(live.text(attr::AGENT_MESSAGE).is_some_and(|m| m.contains("illegal base64 data at input byte 100")));
    assert_eq!(live.flag(attr::KEY_CANONICAL), Some(false));
    assert!(codes(&sim.plan()).contains(&format!("EP210 {agent}")));

    // The plan's key: Portainer's key, field 2 = the endpoint's DNS on 8000, canonical.
    sim.apply(&[agent]);
    assert_eq!(agent_status(&sim), ("connected".to_string(), "client: Connected".to_string()));
    let live = sim.live(agent);
    assert_eq!(live.text(attr::AGENT_STATE), Some("connected"));
    assert!(live.text(attr::AGENT_MESSAGE).is_some_and(|m| m.starts_with("client: Connected")));
    let key = sim.live("consumer.prod.agent_key");
    assert_eq!(live.get(attr::AGENT_EDGE_KEY), key.get(attr::KEY));
    assert!(matches!(live.get(attr::AGENT_EDGE_KEY), Some(Value::Secret(_))));
    assert_eq!(live.flag(attr::KEY_CANONICAL), Some(true));
    let tunnel = live.text(attr::KEY_TUNNEL).expect("field 2");
    assert!(tunnel.starts_with("vpce-0") && tunnel.ends_with(".vpce.amazonaws.com:8000"), "{tunnel}");
    assert_eq!(Some(tunnel.trim_end_matches(":8000")), sim.live("consumer.prod.vpce").text(attr::DNS_NAME));
    let env = sim.live("consumer.prod.environment");
    assert_eq!(probe(&sim, &env.id).status, 200);
    assert!(sim.world.snapshot().portainer[0].environments[0].tunnel_connected);
    assert!(run(&sim.session, sim.session.verify()).passed());
    // The key never appears in what is observed.
    let world = sim.world.snapshot();
    let secret = world.cluster("prod").expect("prod").secrets.iter().find_map(|o| o.data.get("EDGE_KEY")).cloned();
    let secret = secret.expect("the agent's Secret holds its key");
    assert!(!format!("{:?}", sim.observe_all()).contains(&secret));

    // A key for the endpoint with another server's fingerprint in field 3: chisel refuses it.
    let vpce_dns = sim.text("consumer.prod.vpce", attr::DNS_NAME).expect("the endpoint's DNS name");
    let other_server = format!("{PORTAINER_URL}|{vpce_dns}:8000|kYn0UODEPbbKqmZaOLDuafHfTiFFLm7Da0GQxNcIxUQ=|1");
    let other_server = base64::engine::general_purpose::STANDARD_NO_PAD.encode(other_server);
    sim.execute(agent, Action::Update, |a| {
        a.insert(attr::AGENT_EDGE_KEY, Value::Secret(SecretText::new(other_server.as_str())));
    })
    .expect("the agent is updated");
    sim.settle();
    let (state, line) = agent_status(&sim);
    assert_eq!(state, "polling");
    assert!(line.starts_with("client: Invalid fingerprint"), "{line}");
    let live = sim.live(agent);
    assert_eq!(live.flag(attr::KEY_CANONICAL), Some(true), "a well-formed key");
    assert_eq!(live.text(attr::AGENT_STATE), Some("wrong-server"));
    assert!(!sim.world.snapshot().portainer[0].environments[0].tunnel_connected);

    // Another EDGE_ID than the one the environment registered is refused.
    sim.execute(agent, Action::Update, |a| {
        a.insert(attr::AGENT_EDGE_ID, s("00000000-0000-4000-8000-000000000000"));
    })
    .expect("the agent is updated");
    sim.settle();
    let (state, line) = agent_status(&sim);
    assert_eq!(state, "poll_rejected");
    assert!(line.contains("invalid Edge identifier"), "{line}");
    let live = sim.live(agent);
    assert_eq!(live.text(attr::AGENT_STATE), Some("poll-failing"));
    assert!(live.text(attr::AGENT_MESSAGE).is_some_and(|m| m.contains("invalid Edge identifier")));
    assert!(codes(&sim.plan()).contains(&format!("EP212 {agent}")));
}

#[test]
fn the_seed_converges_and_a_second_plan_changes_nothing() {
    let (session, world) = edgeplan_testkit::converged("specs/seed.yaml", SEED_WORLD_FILE);
    let sim = Sim { world, session };
    assert!(sim.settle().settled);
    assert_eq!(sim.live("consumer.prod.agent").text(attr::AGENT_STATE), Some("connected"));
    let again = sim.plan();
    let changed: Vec<String> =
        again.plan.changes.iter().filter(|c| c.action.mutates()).map(|c| c.address.to_string()).collect();
    assert!(changed.is_empty(), "{changed:?}");
    // Realistic waits on the clock, none on the wall.
    let world = sim.world.snapshot();
    assert!(world.now >= 180 + 90, "{}", world.now);
    assert!(world.pending.is_empty());
    for wait in [180, 90, 120, 30] {
        assert!(world.history.iter().any(|e| e.waited == Some(wait)), "no {wait} s wait in {:#?}", world.history);
    }
}

#[test]
fn creates_are_idempotent_by_client_token() {
    let world = edgeplan_testkit::sim(edgeplan_testkit::world(SEED_WORLD_FILE));
    let recording = Arc::new(RecordingConnector::new(Arc::new(SimConnector::new(Arc::clone(&world)))));
    let sim = Sim { world, session: Session::new(seed_stack(), recording.clone()) };
    sim.apply_provider();
    let recorded = |address: &str| {
        recording
            .operations()
            .into_iter()
            .find(|op| op.address.as_str() == address && op.action.mutates())
            .unwrap_or_else(|| panic!("{address} was not applied"))
    };
    let replay = |op: &edgeplan_model::Operation| {
        run(&sim.session, async {
            let backend = sim.session.router.backend(&sim.node(op.address.as_str()).scope).await?;
            backend.execute(op).await
        })
    };
    let region = |sim: &Sim| sim.world.snapshot().region(ACCOUNT, REGION).expect("the region").clone();

    // The same CreateSubnet again (a retried apply) finds the subnet the first one made.
    let subnets = region(&sim).subnets.len();
    let created = recorded("provider.nlb_subnet");
    assert_eq!(created.action, Action::Create);
    let again = replay(&created).expect("a retried create succeeds");
    assert_eq!(again.live().map(|l| l.id.clone()), Some(sim.live("provider.nlb_subnet").id));
    assert_eq!(region(&sim).subnets.len(), subnets);
    // Another token is another create, which EC2 refuses for the same CIDR.
    let mut other = created.clone();
    other.client_token = "another".to_string();
    let error = replay(&other).unwrap_err();
    assert!(matches!(&error, BackendError::Conflict { message, .. } if message.starts_with("InvalidSubnet.Conflict")));
    assert_eq!(region(&sim).subnets.len(), subnets);

    // A retried SG rule is not a duplicate; a new one is.
    let rules = |sim: &Sim| region(sim).security_groups.iter().map(|g| g.ingress.len()).sum::<usize>();
    let count = rules(&sim);
    let rule = recorded("provider.cluster_sg_rule");
    replay(&rule).expect("a retried rule succeeds");
    assert_eq!(rules(&sim), count);
    let mut other = rule.clone();
    other.client_token = "another".to_string();
    let error = replay(&other).unwrap_err();
    assert!(
        matches!(&error, BackendError::Conflict { message, .. } if message.starts_with("InvalidPermission.Duplicate")),
        "{error:?}"
    );

    // The same endpoint create three times (same attributes, so the same token): one endpoint.
    sim.apply(&["consumer.prod.vpce_security_group"]);
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let created = sim.execute("consumer.prod.vpce", Action::Create, |_| {}).expect("created");
            created.live().expect("present").id.clone()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(region(&sim).vpc_endpoints.len(), 1);

    // A retried policy update adds no version; another update adds one, once.
    let versions = |sim: &Sim| sim.world.snapshot().aws[0].iam.policies[0].versions.len();
    let before = versions(&sim);
    let update = recorded("provider.lb_controller_policy");
    assert_eq!(update.action, Action::Update);
    for _ in 0..2 {
        replay(&update).expect("a retried update succeeds");
    }
    assert_eq!(versions(&sim), before);
    let mut other = update.clone();
    other.client_token = "another".to_string();
    for _ in 0..2 {
        replay(&other).expect("an update succeeds");
    }
    assert_eq!(versions(&sim), before + 1);
}

#[test]
fn a_sixth_policy_version_is_refused_like_iam() {
    let sim = fleet();
    let policy = "provider.lb_controller_policy";
    let error = sim.execute(policy, Action::Update, |_| {}).unwrap_err();
    assert!(
        matches!(&error, BackendError::Invalid { code, message }
            if code == "LimitExceeded" && message.starts_with("A managed policy can have up to 5 versions")),
        "{error:?}"
    );
    assert!(!error.retryable());
    let error = sim.execute(policy, Action::Update, |a| {
        a.insert(attr::DELETE_VERSION, s("v5"));
    });
    assert!(
        matches!(&error, Err(BackendError::Conflict { message, .. }) if message.starts_with("DeleteConflict")),
        "{error:?}"
    );
    let versions = strings(&["v1", "v2", "v3", "v4", "v5"]);
    assert_eq!(sim.live(policy).get(attr::VERSIONS), Some(&versions), "a refused update changes nothing");

    // The plan names the oldest version that is not the default, and apply deletes it first.
    let planned = sim.plan();
    assert!(message(&planned, "EP202", policy).contains("v1 will be deleted first"));
    let change = planned.plan.change(&Address::provider("lb_controller_policy")).expect("the policy's change");
    assert!(change.reasons.contains(&Reason::VersionLimit { field: attr::DELETE_VERSION.to_string() }));
    sim.apply(&[policy]);
    let live = sim.live(policy);
    assert_eq!(live.get(attr::VERSIONS), Some(&strings(&["v2", "v3", "v4", "v5", "v6"])));
    assert_eq!(live.text(attr::DEFAULT_VERSION), Some("v6"));
    assert_eq!(live.get(attr::MISSING_ACTIONS), Some(&Value::List(Vec::new())));
}

#[test]
fn az_ids_not_names_decide_across_accounts() {
    // The partner's eu-west-1b is euw1-az1; the NLB's zone is named eu-west-1b in the
    // provider's account but is euw1-az3. A spec naming the partner's eu-west-1b subnet is
    // caught by the plan (EP208) and refused by AWS.
    let elsewhere = strings(&["subnet-0a9b8c7d6e5f40012"]);
    let stack =
        with_literal(edgeplan_testkit::fleet_stack(), "consumer.partner.subnets", attr::SUBNET_IDS, elsewhere.clone());
    let stack = with_literal(stack, "consumer.partner.vpce", attr::SUBNET_IDS, elsewhere);
    let sim = over(stack, edgeplan_testkit::world(FLEET_WORLD_FILE));
    sim.apply_provider();
    sim.apply(&["consumer.partner.subnets", "consumer.partner.vpce_security_group"]);
    let nlb_subnet = sim.live("provider.nlb_subnet");
    assert_eq!(nlb_subnet.text(attr::AVAILABILITY_ZONE), Some("eu-west-1b"));
    let world = sim.world.snapshot();
    let partner = world.region(PARTNER_ACCOUNT, REGION).expect("the partner's region");
    let named_alike = partner.subnets.iter().find(|s| s.id == "subnet-0a9b8c7d6e5f40012").expect("the subnet");
    assert_eq!(named_alike.availability_zone, "eu-west-1b");
    assert!(message(&sim.plan(), "EP208", "consumer.partner.vpce").contains("euw1-az1"));
    let report = sim.try_apply(&["consumer.partner.vpce"]);
    assert!(failures(&report).iter().any(|f| f.contains("subnet-0a9b8c7d6e5f40012")), "{:?}", failures(&report));

    // The fleet's own spec names the partner's subnet in euw1-az3 (its eu-west-1a).
    let sim = fleet();
    sim.apply_provider();
    sim.settle();
    sim.apply(&["consumer.partner.vpce_security_group"]);
    let vpce = "consumer.partner.vpce";
    // As AWS: both partner subnets, one of them in a zone the service is not in.
    let error = sim
        .execute(vpce, Action::Create, |a| {
            a.insert(attr::SUBNET_IDS, strings(&["subnet-0a9b8c7d6e5f40011", "subnet-0a9b8c7d6e5f40012"]));
        })
        .unwrap_err();
    assert!(error.to_string().contains("subnet-0a9b8c7d6e5f40012"), "{error}");
    let subnets = sim.live("consumer.partner.subnets");
    assert_eq!(subnets.get(attr::AVAILABILITY_ZONE_IDS), sim.live("provider.nlb").get(attr::AVAILABILITY_ZONE_IDS));
    assert!(!codes(&sim.plan()).iter().any(|c| c.starts_with("EP208")));
    sim.apply(&[vpce]);
    let endpoint = sim.live(vpce);
    // Created in the partner's account, visible to the provider (its account is allowed).
    assert_eq!(endpoint.text(attr::STATE), Some("pendingAcceptance"));
    assert_eq!(endpoint.get(attr::SUBNET_IDS), Some(&strings(&["subnet-0a9b8c7d6e5f40011"])));
    let connection = sim.live("consumer.partner.connection_acceptance");
    assert_eq!(connection.text(attr::VPC_ENDPOINT_OWNER), Some(PARTNER_ACCOUNT));
}

#[test]
fn edgeplan_deletes_only_what_it_created() {
    let sim = seed();
    sim.apply_provider();
    for address in
        ["provider.lb_controller_policy", "provider.edge_compute", "provider.nlb", "consumer.prod.environment"]
    {
        let error = sim.execute(address, Action::Delete, |_| {}).unwrap_err();
        assert!(
            matches!(&error, BackendError::Invalid { code, .. } if code == "OperationNotPermitted"),
            "{address}: {error:?}"
        );
        assert!(matches!(sim.observe(address), Ok(Observed::Present(_))), "{address} is still there");
    }
    // The NLB still sits in the subnet edgeplan created.
    let error = sim.execute("provider.nlb_subnet", Action::Delete, |_| {}).unwrap_err();
    assert!(
        matches!(&error, BackendError::Conflict { message, .. } if message.starts_with("DependencyViolation")),
        "{error:?}"
    );

    // An environment edgeplan creates, it may delete.
    let sim = fleet();
    let partner = "consumer.partner.environment";
    sim.apply(&[partner]);
    let env = sim.live(partner);
    assert_eq!(env.owner, Some(Ownership::new("portainer-fleet", &Address::from_text(partner))));
    assert_eq!(env.int(attr::TYPE_ID), Some(4));
    assert_eq!(env.text(attr::KEY_TUNNEL), Some("portainer.platform.example.com:8000"));
    assert_eq!(sim.execute(partner, Action::Delete, |_| {}), Ok(Observed::Absent));
    assert!(sim.absent(partner));
}

#[test]
fn the_clock_moves_only_when_asked() {
    let sim = seed();
    nlb_requested(&sim);
    for _ in 0..3 {
        sim.observe_all();
        sim.plan();
    }
    assert_eq!(sim.now(), 0);
    assert_eq!(edgeplan_model::Clock::now(&*sim.session.clock()).as_secs(), 0);
    let next = sim.world.snapshot().next_transition().cloned().expect("the NLB is pending");
    assert_eq!((next.kind, next.at), (TransitionKind::NlbActive, 180));
    sim.sleep(100);
    assert_eq!(sim.now(), 100);
    assert_eq!(nlb_state(&sim).as_deref(), Some("provisioning"));
    let settled = sim.settle();
    assert_eq!(settled.elapsed, 80);
    assert!(settled.events.iter().any(|e| e.waited == Some(180) && e.message.contains("is active")), "{settled:?}");
    assert_eq!(sim.now(), 180);
    assert!(sim.world.snapshot().next_transition().is_none());
    assert!(sim.world.run_until_settled().settled);
    assert_eq!(sim.now(), 180, "a settled world stays put");

    // After the world settled, modelled time still passes as the clock does: a restart takes
    // 30 s of the engine's clock.
    sim.apply(&["provider.edge_compute"]);
    sim.execute("provider.portainer_restart", Action::Update, |_| {}).expect("the restart");
    sim.sleep(29);
    assert_eq!(sim.live("provider.portainer_restart").flag(attr::ROLLOUT_COMPLETE), Some(false));
    sim.sleep(1);
    assert_eq!(sim.live("provider.portainer_restart").flag(attr::ROLLOUT_COMPLETE), Some(true));
    assert_eq!(sim.now(), 210);
}

#[test]
fn a_rule_in_an_adopted_group_is_edgeplans_to_create_and_delete() {
    let sim = fleet();
    sim.apply(&["provider.lb_controller_policy", "provider.edge_compute", "provider.portainer_restart"]);
    sim.apply(&PRIVATE_SUBNET);
    sim.apply(&["provider.tunnel_service"]);
    // This controller admits the NLB to the pods itself (manage-backend-security-group-rules):
    // the targets turn healthy with no rule of edgeplan's.
    sim.sleep(180 + 90);
    assert_eq!(sim.target().0, "healthy");
    let address = "provider.cluster_sg_rule";
    assert!(sim.absent(address));
    sim.apply(&[address]);
    let rule = sim.live(address);
    assert_eq!(rule.owner, Some(Ownership::new("portainer-fleet", &Address::from_text(address))));
    assert_eq!(rule.text(attr::SECURITY_GROUP_ID), Some("sg-0f1e2d3c4b5a60011"));
    assert_eq!(rule.int(attr::PORT), Some(8000));
    assert_eq!(rule.text(attr::SOURCE_CIDR), Some("10.0.250.0/26"));
    assert_eq!(sim.execute(address, Action::Delete, |_| {}), Ok(Observed::Absent));
    assert!(sim.absent(address));
    // The adopted group and its other rule stay.
    let world = sim.world.snapshot();
    let region = world.region(ACCOUNT, REGION).expect("the region");
    let group = region.security_groups.iter().find(|g| g.id == "sg-0f1e2d3c4b5a60011").expect("the group");
    assert_eq!(group.ingress.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["sgr-0f1e2d3c4b5a60011"]);
    assert_eq!(sim.target().0, "healthy");
}

fn groups(world: &mut World) -> impl Iterator<Item = &mut edgeplan_sim::SecurityGroup> {
    world.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.security_groups.iter_mut())
}

fn owned(tags: &std::collections::BTreeMap<String, String>, address: &str) -> bool {
    tags.get(edgeplan_model::backend::ADDRESS_TAG).is_some_and(|a| a == address)
}

fn empty_the_endpoint_group(world: &mut World) {
    for group in groups(world).filter(|g| owned(&g.tags, "consumer.prod.vpce_security_group")) {
        group.ingress.clear();
    }
}

fn delete_the_cluster_rule(world: &mut World) {
    for group in groups(world) {
        group.ingress.retain(|rule| !owned(&rule.tags, "provider.cluster_sg_rule"));
    }
}

fn reject_the_connection(world: &mut World) {
    for endpoint in world.aws.iter_mut().flat_map(|a| a.regions.iter_mut()).flat_map(|r| r.vpc_endpoints.iter_mut()) {
        endpoint.state = "rejected".to_string();
    }
}

fn pad_the_key(world: &mut World) {
    let secret = world
        .kubernetes
        .iter_mut()
        .flat_map(|c| c.secrets.iter_mut())
        .find(|s| s.data.contains_key("EDGE_KEY"))
        .expect("the agent's Secret");
    let key = format!("{}=", secret.data["EDGE_KEY"]);
    secret.data.insert("EDGE_KEY".to_string(), key);
}

fn reassociate_the_environment(world: &mut World) {
    world.portainer[0].environments[0].edge_id = "another-agents-edge-id".to_string();
}

#[test]
fn a_connected_agent_loses_its_tunnel_when_any_link_breaks_and_portainer_sees_it() {
    type Break = fn(&mut World);
    // (link, how it breaks, whether the agent still polls Portainer over its public URL)
    let links: [(&str, Break, bool); 5] = [
        ("endpoint security group", empty_the_endpoint_group, true),
        ("cluster security group rule", delete_the_cluster_rule, true),
        ("endpoint connection", reject_the_connection, true),
        ("key", pad_the_key, false),
        ("EDGE_ID", reassociate_the_environment, false),
    ];
    for (link, breaks, still_polls) in links {
        let sim = seed();
        let everything = sim.addresses(|_| true);
        sim.apply(&everything.iter().map(String::as_str).collect::<Vec<_>>());
        sim.settle();
        let env = sim.live("consumer.prod.environment");
        assert_eq!(agent_status(&sim).0, "connected", "{link}");
        assert_eq!(probe(&sim, &env.id).status, 200, "{link}");

        sim.world.edit(breaks);
        // The agent's tunnel goes at once, its log says so, and Portainer holds no tunnel.
        let (state, line) = agent_status(&sim);
        assert_ne!(state, "connected", "{link}: {line}");
        let world = sim.world.snapshot();
        let agent = world.cluster("prod").and_then(|c| c.deployments.iter().find(|d| d.name == "portainer-agent"));
        let logs = agent.map(|a| a.logs.clone()).unwrap_or_default();
        let disconnected = logs.iter().position(|l| l == "client: Disconnected").expect("chisel's Disconnected line");
        assert_eq!(logs.last(), Some(&line), "{link}: {logs:#?}");
        assert!(disconnected + 1 < logs.len(), "{link}: what the agent met next follows: {logs:#?}");
        assert!(!world.portainer[0].environments[0].tunnel_connected, "{link}");
        let answer = probe(&sim, &env.id);
        assert_eq!(answer.status, 500, "{link}");
        assert!(answer.body.contains("Unable to get the active tunnel"), "{link}: {}", answer.body);
        match link {
            "endpoint security group" => assert!(line.contains("i/o timeout") && line.contains("security groups")),
            "cluster security group rule" => assert!(line.contains("no healthy target"), "{line}"),
            "endpoint connection" => assert!(line.contains("is rejected"), "{line}"),
            "key" => assert!(line.contains("illegal base64 data at input byte"), "{line}"),
            _ => assert!(line.contains("invalid Edge identifier"), "{line}"),
        }

        // Polls ride Portainer's public URL, not the tunnel: they stop only when the agent
        // cannot poll (a key it cannot read, an EDGE_ID Portainer refuses); then Portainer's
        // heartbeat goes stale (2 × check-in + 20 s).
        sim.sleep(60);
        let env = sim.live("consumer.prod.environment");
        assert_eq!(env.flag(attr::HEARTBEAT), Some(still_polls), "{link}");
        assert_eq!(probe(&sim, &env.id).status, 500, "{link}");
    }
}
