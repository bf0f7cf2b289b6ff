//! The plan tells the truth (issue 9): live rules judged on the planned state as well as the
//! observed one. A trap the plan removes is "fixed by this plan"; one it leaves, or one it
//! creates, is an error; a create or update the observed state already shows must fail is an
//! error before anything is applied; notes speak only when the plan acts.

mod common;

use common::{
    PROVIDER_VPC, SPEC, STACK, VPCE_DNS, edge_key, edit_manifest, live_of, node_mut, nodes_from, observe_world, refs,
    route, seed_nodes, set, vpc_subnet,
};
use edgeplan_diag::Severity;
use edgeplan_model::attr;
use edgeplan_model::{Address, Expr, Identity, Manifest, Node, Observation, Observed, SecretText, Value};
use edgeplan_plan::{NodeDiagnostic, Plan, Shown, decide};

fn plan_of(nodes: &[Node], observations: &[Observation]) -> Plan {
    decide(STACK, &refs(nodes), &[], observations)
}

/// `severity CODE address` of every diagnostic of the plan.
fn codes(plan: &Plan) -> Vec<String> {
    plan.diagnostics.iter().map(|d| format!("{} {} {}", d.finding.severity, d.finding.code(), d.address)).collect()
}

/// Warnings and errors only: where the plan makes a new NLB subnet, the Service built on it is
/// replaced with it, and its port note (EP218) is not what these tests are about.
fn problems(plan: &Plan) -> Vec<String> {
    codes(plan).into_iter().filter(|c| !c.starts_with("note")).collect()
}

fn diagnostic<'p>(plan: &'p Plan, code: &str) -> &'p NodeDiagnostic {
    plan.diagnostics.iter().find(|d| d.finding.code() == code).unwrap_or_else(|| panic!("no {code}: {:?}", codes(plan)))
}

/// Portainer CE's keys point at its own host; the converged world's agent has the VPC
/// endpoint's. With Portainer's key pointing at the endpoint too, nothing at all is said.
fn quiet(a: &Address, o: &mut Observed) {
    let key = edge_key(&format!("{VPCE_DNS}:8000"), common::ENVIRONMENT_ID);
    set(a, o, "consumer.prod.environment", attr::EDGE_KEY, Value::Secret(SecretText::new(key)));
}

fn absent(a: &Address, o: &mut Observed, addresses: &[&str]) {
    if addresses.contains(&a.as_str()) {
        *o = Observed::Absent;
    }
}

/// The world before the NLB subnet exists: no subnet, route table or association, and the VPC
/// lists only its other subnets.
fn no_nlb_subnet_yet(a: &Address, o: &mut Observed) {
    absent(a, o, &["provider.nlb_subnet", "provider.nlb_route_table", "provider.nlb_route_table_association"]);
    if a.as_str() == "provider.vpc"
        && let Some(live) = live_of(o)
    {
        live.set(
            attr::SUBNETS,
            Value::List(vec![vpc_subnet("subnet-0a1b2c3d4e5f60011", "192.168.32.0/19", "eu-west-1a", "euw1-az1")]),
        );
    }
}

// --- item 1: every trap named with its cause -----------------------------------------------------

#[test]
fn the_chisel_port_is_explained_where_the_plan_creates_the_service() {
    let nodes = seed_nodes();
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.tunnel_service"]);
        }),
    );
    assert_eq!(codes(&plan), ["note EP218 provider.tunnel_service"]);
    let message = &diagnostic(&plan, "EP218").finding.message;
    for part in ["listens on 8000 for agents", "forwards to 30776", "portainer/portainer", "--tunnel-port=30776"] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // The Service exists as the plan wants it: nothing to explain.
    assert!(codes(&plan_of(&nodes, &observe_world(&nodes, quiet))).is_empty());
    // Portainer on its default port, agents on the same one: nothing differs, nothing to explain.
    let default_port = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.tunnel_service"]);
            edit_manifest(a, o, "provider.portainer_restart", "Deployment", |m| {
                if let Manifest::Deployment { spec, .. } = m
                    && let Some(pod) = &mut spec.template.spec
                {
                    pod.containers[0].args.clear();
                }
            });
        }),
    );
    assert!(!codes(&default_port).iter().any(|c| c.contains("EP218")), "{:?}", codes(&default_port));
}

#[test]
fn a_single_tier_vpc_is_explained_where_the_plan_creates_the_subnet() {
    let nodes = seed_nodes();
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            no_nlb_subnet_yet(a, o);
        }),
    );
    assert_eq!(problems(&plan), ["warning EP204 provider.nlb_subnet"]);
    let finding = &diagnostic(&plan, "EP204").finding;
    assert!(finding.message.contains(&format!("{PROVIDER_VPC} is single-tier")), "{}", finding.message);
    assert!(
        finding.message.contains("rtb-0a1b2c3d4e5f60001 has 0.0.0.0/0 → igw-0a1b2c3d4e5f60001"),
        "{}",
        finding.message
    );
    assert!(
        finding.help.starts_with(
            "fixed by this plan: edgeplan gives the new subnet its own route table (provider.nlb_route_table"
        ),
        "{}",
        finding.help
    );
    // A VPC whose main route table is private: a new subnet is private, nothing to say.
    let private = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            no_nlb_subnet_yet(a, o);
            set(a, o, "provider.vpc", attr::ROUTES, Value::List(vec![route("192.168.0.0/16", "local")]));
        }),
    );
    assert!(problems(&private).is_empty(), "{:?}", problems(&private));
}

// --- item 2: live rules judge the planned objects ------------------------------------------------

#[test]
fn an_explicit_tunnel_port_is_judged_on_the_service_the_plan_creates() {
    // `tunnelPort: 8000` on a Helm NodePort install (chisel on 30776): the Service does not
    // exist yet, so only the planned Service shows the trap. Apply would wait 10 minutes for
    // targets that never get healthy.
    let nodes = nodes_from(&SPEC.replace("tunnelPort: auto", "tunnelPort: 8000"));
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.tunnel_service", "provider.cluster_sg_rule"]);
        }),
    );
    let finding = &diagnostic(&plan, "EP203").finding;
    assert_eq!(
        (finding.severity, diagnostic(&plan, "EP203").address.as_str()),
        (Severity::Error, "provider.tunnel_service")
    );
    assert!(finding.message.contains("targets port 8000; the tunnel server listens on 30776"), "{}", finding.message);
    assert!(plan.has_errors());
    // `auto` plans the port chisel listens on.
    let plan = plan_of(
        &seed_nodes(),
        &observe_world(&seed_nodes(), |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.tunnel_service"]);
        }),
    );
    assert!(!plan.has_errors(), "{:?}", codes(&plan));
}

// --- item 3: "fixed by this plan" only when it is -------------------------------------------------

fn adopted_subnet_nodes() -> Vec<Node> {
    let spec = SPEC.replace(
        "      cidr: 192.168.0.0/24\n      availabilityZone: eu-west-1b",
        "      id: subnet-0e1d2c3b4a5960001",
    );
    assert_ne!(spec, SPEC);
    let nodes = nodes_from(&spec);
    assert!(matches!(common::node(&nodes, "provider.nlb_subnet").identity, Identity::Adopted { .. }));
    nodes
}

fn public(a: &Address, o: &mut Observed) {
    set(a, o, "provider.nlb_subnet", attr::ROUTE_TABLE_ID, "rtb-0a1b2c3d4e5f60001");
    set(a, o, "provider.nlb_subnet", attr::ROUTE_TABLE_ASSOCIATION, "main");
    set(a, o, "provider.nlb_subnet", attr::ROUTES, Value::List(vec![route("0.0.0.0/0", "igw-0a1b2c3d4e5f60001")]));
}

#[test]
fn a_public_adopted_subnet_is_an_error_even_when_the_plan_changes_it() {
    let nodes = adopted_subnet_nodes();
    // The plan updates the subnet (a missing tag) but does not touch its routing: the trap
    // stays, and says what to do.
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            public(a, o);
            set(a, o, "provider.nlb_subnet", attr::TAGS, Value::from(std::collections::BTreeMap::new()));
        }),
    );
    assert_eq!(plan.change(&Address::provider("nlb_subnet")).unwrap().action, edgeplan_model::Action::Update);
    let finding = &diagnostic(&plan, "EP204").finding;
    assert_eq!(finding.severity, Severity::Error);
    assert!(!finding.help.contains("fixed by this plan"), "{}", finding.help);
    assert!(finding.help.contains("associate subnet-0e1d2c3b4a5960001 with a route table"), "{}", finding.help);
    assert!(plan.has_errors());
    // Private: nothing.
    let plan = plan_of(&nodes, &observe_world(&nodes, quiet));
    assert!(codes(&plan).is_empty(), "{:?}", codes(&plan));
}

#[test]
fn a_trap_is_fixed_by_the_plan_only_when_a_planned_change_removes_it() {
    let nodes = seed_nodes();
    // The Service targets 8000 and the plan sets it to 30776: fixed.
    let wrong_target = |a: &Address, o: &mut Observed| {
        quiet(a, o);
        edit_manifest(a, o, "provider.tunnel_service", "Service", |m| {
            if let Manifest::Service { spec, .. } = m {
                spec.ports[0].target_port = 8000;
            }
        });
    };
    let plan = plan_of(&nodes, &observe_world(&nodes, wrong_target));
    let finding = &diagnostic(&plan, "EP203").finding;
    assert_eq!(finding.severity, Severity::Warning);
    assert!(finding.help.starts_with("fixed by this plan: "), "{}", finding.help);
    // The policy is updated (another document), but the spec's document lacks an action too:
    // the update does not remove the cause.
    let mut nodes = seed_nodes();
    let lacking = common::POLICY.replacen("\"ec2:DescribeRouteTables\",", "", 1);
    node_mut(&mut nodes, "provider.lb_controller_policy").desired.insert(attr::POLICY_DOCUMENT, Expr::lit(lacking));
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(
                a,
                o,
                "provider.lb_controller_policy",
                attr::POLICY_DOCUMENT,
                "{\"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"ec2:DescribeSubnets\", \"Resource\": \"*\"}]}",
            );
        }),
    );
    assert_eq!(plan.change(&Address::provider("lb_controller_policy")).unwrap().action, edgeplan_model::Action::Update);
    let finding = &diagnostic(&plan, "EP201").finding;
    assert_eq!(finding.severity, Severity::Error, "{}", finding.help);
    assert!(finding.message.ends_with("ec2:DescribeRouteTables"), "{}", finding.message);
}

// --- item 4: failures the observed state already shows -------------------------------------------

fn new_subnet_plan(spec: &str) -> Plan {
    let nodes = nodes_from(spec);
    plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            no_nlb_subnet_yet(a, o);
            // A VPC with a private main route table: only the rule under test speaks.
            set(a, o, "provider.vpc", attr::ROUTES, Value::List(vec![route("192.168.0.0/16", "local")]));
        }),
    )
}

#[test]
fn ep219_a_new_subnet_must_fit_the_vpc_as_it_is() {
    let overlapping = new_subnet_plan(&SPEC.replace("cidr: 192.168.0.0/24", "cidr: 192.168.33.0/24"));
    assert_eq!(problems(&overlapping), ["error EP219 provider.nlb_subnet"]);
    let message = &diagnostic(&overlapping, "EP219").finding.message;
    assert!(message.contains("overlaps subnet-0a1b2c3d4e5f60011 (192.168.32.0/19)"), "{message}");
    assert!(message.contains("InvalidSubnet.Conflict"), "{message}");
    // Outside the VPC's own CIDR (whatever vpc.cidr says).
    let outside = new_subnet_plan(&SPEC.replace("cidr: 192.168.0.0/24", "cidr: 10.0.0.0/24"));
    assert_eq!(problems(&outside), ["error EP219 provider.nlb_subnet"]);
    assert!(diagnostic(&outside, "EP219").finding.message.contains("is not inside 192.168.0.0/16"));
    // A free block inside the VPC.
    assert!(problems(&new_subnet_plan(SPEC)).is_empty(), "{:?}", problems(&new_subnet_plan(SPEC)));
}

/// The seed spec with the NLB subnet's zone lines replaced.
fn nlb_zone(lines: &str) -> String {
    let spec = SPEC.replace(
        "      cidr: 192.168.0.0/24\n      availabilityZone: eu-west-1b\n",
        &format!("      cidr: 192.168.0.0/24\n{lines}"),
    );
    assert_ne!(spec, SPEC);
    spec
}

#[test]
fn ep220_a_new_subnet_needs_a_zone_of_this_account() {
    let unknown = new_subnet_plan(&nlb_zone("      availabilityZone: eu-west-1z\n"));
    assert_eq!(problems(&unknown), ["error EP220 provider.nlb_subnet"]);
    assert!(diagnostic(&unknown, "EP220").finding.message.contains("eu-west-1a (euw1-az1)"));
    let disagree =
        new_subnet_plan(&nlb_zone("      availabilityZone: eu-west-1b\n      availabilityZoneId: euw1-az1\n"));
    assert_eq!(problems(&disagree), ["error EP220 provider.nlb_subnet"]);
    assert!(
        diagnostic(&disagree, "EP220").finding.message.contains("eu-west-1b is euw1-az2 in this account, not euw1-az1")
    );
    let by_id = new_subnet_plan(&nlb_zone("      availabilityZoneId: euw1-az9\n"));
    assert_eq!(problems(&by_id), ["error EP220 provider.nlb_subnet"]);
    assert!(problems(&new_subnet_plan(SPEC)).is_empty());
}

#[test]
fn ep208_the_endpoint_zone_is_judged_before_the_nlb_exists() {
    // Nothing of the provider's PrivateLink side exists yet: the NLB will be built in the NLB
    // subnet's zone (eu-west-1b is euw1-az2 here), which the consumer's subnet is not in.
    let nodes = seed_nodes();
    let before_the_nlb = |consumer_zone: &'static str| {
        plan_of(
            &nodes,
            &observe_world(&nodes, move |a, o| {
                quiet(a, o);
                absent(a, o, &["provider.nlb", "provider.endpoint_service", "consumer.prod.vpce"]);
                set(a, o, "consumer.prod.subnets", attr::AVAILABILITY_ZONE_IDS, vec![consumer_zone]);
            }),
        )
    };
    let plan = before_the_nlb("euw1-az1");
    assert!(codes(&plan).contains(&"error EP208 consumer.prod.vpce".to_string()), "{:?}", codes(&plan));
    let plan = before_the_nlb(common::SHARED_AZ_ID);
    assert!(!codes(&plan).iter().any(|c| c.contains("EP208")), "{:?}", codes(&plan));
}

#[test]
fn ep221_the_endpoint_goes_in_its_subnets_vpc() {
    let nodes = seed_nodes();
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(a, o, "consumer.prod.subnets", attr::VPC_IDS, vec![PROVIDER_VPC]);
        }),
    );
    assert_eq!(codes(&plan), ["error EP221 consumer.prod.vpce"]);
    assert!(
        diagnostic(&plan, "EP221")
            .finding
            .message
            .contains("vpc.id is vpc-0a1b2c3d4e5f60002, but the consumer's subnets are in vpc-0a1b2c3d4e5f60001")
    );
    assert!(codes(&plan_of(&nodes, &observe_world(&nodes, quiet))).is_empty());
}

#[test]
fn ep222_an_endpoint_group_that_admits_nothing() {
    let spec = SPEC.replace("          allowedCidrs:\n            - 192.168.0.0/16", "          allowedCidrs: []");
    assert_ne!(spec, SPEC);
    let nodes = nodes_from(&spec);
    // Created by this plan, or already there as asked: either way nothing can reach the endpoint.
    for world in [
        observe_world(&nodes, |a, o| {
            quiet(a, o);
            absent(a, o, &["consumer.prod.vpce_security_group"]);
        }),
        observe_world(&nodes, quiet),
    ] {
        assert_eq!(codes(&plan_of(&nodes, &world)), ["error EP222 consumer.prod.vpce_security_group"]);
    }
    assert!(codes(&plan_of(&seed_nodes(), &observe_world(&seed_nodes(), quiet))).is_empty());
}

#[test]
fn ep223_one_endpoint_subnet_per_zone() {
    let spec = SPEC.replace(
        "        - id: subnet-0a1b2c3d4e5f60021\n          availabilityZone: eu-west-1b",
        "        - id: subnet-0a1b2c3d4e5f60021\n          availabilityZone: eu-west-1b\n        - id: subnet-0a1b2c3d4e5f60024\n          availabilityZone: eu-west-1b",
    );
    assert_ne!(spec, SPEC);
    let nodes = nodes_from(&spec);
    // Both subnets are in one zone (the fixture reports one AZ ID for the consumer's subnets).
    let plan = plan_of(&nodes, &observe_world(&nodes, quiet));
    assert_eq!(codes(&plan), ["error EP223 consumer.prod.vpce"]);
    assert!(diagnostic(&plan, "EP223").finding.message.contains("2 subnets are in only 1 Availability Zone(s)"));
    let two_zones = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(a, o, "consumer.prod.subnets", attr::AVAILABILITY_ZONE_IDS, vec![common::SHARED_AZ_ID, "euw1-az1"]);
            // Zones the endpoint service has nodes in, too (else EP232).
            set(a, o, "provider.nlb", attr::AVAILABILITY_ZONE_IDS, vec![common::SHARED_AZ_ID, "euw1-az1"]);
        }),
    );
    assert!(codes(&two_zones).is_empty(), "{:?}", codes(&two_zones));
}

#[test]
fn ep224_an_adopted_resource_cannot_change_an_immutable_field() {
    let nodes = adopted_subnet_nodes();
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(a, o, "provider.nlb_subnet", attr::VPC_ID, "vpc-0f0f0f0f0f0f0f0f0");
        }),
    );
    assert_eq!(codes(&plan), ["error EP224 provider.nlb_subnet"]);
    let message = &diagnostic(&plan, "EP224").finding.message;
    assert!(message.contains("subnet-0e1d2c3b4a5960001 is adopted and its `vpc_id` is \"vpc-0f0f0f0f0f0f0f0f0\", not \"vpc-0a1b2c3d4e5f60001\""), "{message}");
    assert!(codes(&plan_of(&nodes, &observe_world(&nodes, quiet))).is_empty());
}

#[test]
fn ep225_portainer_must_run_where_the_spec_says() {
    let nodes = seed_nodes();
    let missing = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.portainer_restart"]);
        }),
    );
    assert!(codes(&missing).contains(&"error EP225 provider.portainer_restart".to_string()), "{:?}", codes(&missing));
    assert!(diagnostic(&missing, "EP225").finding.message.contains("portainer/portainer does not exist"));
    let scaled = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            edit_manifest(a, o, "provider.portainer_restart", "Deployment", |m| {
                if let Manifest::Deployment { spec, .. } = m {
                    spec.replicas = Some(0);
                }
            });
        }),
    );
    assert_eq!(codes(&scaled), ["error EP225 provider.portainer_restart"]);
    assert!(codes(&plan_of(&nodes, &observe_world(&nodes, quiet))).is_empty());
}

#[test]
fn ep226_the_tunnel_service_selects_pods_of_its_own_namespace() {
    let spec = SPEC.replace(
        "      name: portainer-edge-tunnel\n      namespace: portainer",
        "      name: portainer-edge-tunnel\n      namespace: edge",
    );
    assert_ne!(spec, SPEC);
    let nodes = nodes_from(&spec);
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.tunnel_service"]);
        }),
    );
    assert!(codes(&plan).contains(&"error EP226 provider.tunnel_service".to_string()), "{:?}", codes(&plan));
    let plan = plan_of(
        &seed_nodes(),
        &observe_world(&seed_nodes(), |a, o| {
            quiet(a, o);
            absent(a, o, &["provider.tunnel_service"]);
        }),
    );
    assert!(!codes(&plan).iter().any(|c| c.contains("EP226")), "{:?}", codes(&plan));
}

#[test]
fn ep227_an_environment_that_cannot_be_created() {
    let missing = |spec: &str| {
        let nodes = nodes_from(spec);
        plan_of(
            &nodes,
            &observe_world(&nodes, |a, o| {
                quiet(a, o);
                absent(a, o, &["consumer.prod.environment"]);
            }),
        )
    };
    let no_create = SPEC.replace("        name: prod\n", "        name: prod\n        create: false\n");
    assert_ne!(no_create, SPEC);
    assert!(codes(&missing(&no_create)).contains(&"error EP227 consumer.prod.environment".to_string()));
    let local = SPEC.replace("url: https://portainer.example.com", "url: https://localhost:9443");
    assert!(
        codes(&missing(&local)).contains(&"error EP227 consumer.prod.environment".to_string()),
        "{:?}",
        codes(&missing(&local))
    );
    assert!(!codes(&missing(SPEC)).iter().any(|c| c.contains("EP227")), "{:?}", codes(&missing(SPEC)));
}

#[test]
fn ep228_an_untrusted_environment_rejects_its_agent() {
    let nodes = seed_nodes();
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(a, o, "consumer.prod.environment", attr::USER_TRUSTED, false);
        }),
    );
    assert_eq!(codes(&plan), ["error EP228 consumer.prod.environment"]);
    assert!(codes(&plan_of(&nodes, &observe_world(&nodes, quiet))).is_empty());
}

#[test]
fn ep229_an_adopted_subnet_with_too_few_free_addresses() {
    let nodes = adopted_subnet_nodes();
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(a, o, "provider.nlb_subnet", attr::AVAILABLE_IP_ADDRESS_COUNT, 5_i64);
        }),
    );
    assert_eq!(codes(&plan), ["error EP229 provider.nlb_subnet"]);
    assert!(codes(&plan_of(&nodes, &observe_world(&nodes, quiet))).is_empty());
}

#[test]
fn ep230_an_nlb_behind_someone_elses_endpoint_service() {
    let nodes = seed_nodes();
    let with_services = |services: Vec<&'static str>| {
        plan_of(
            &nodes,
            &observe_world(&nodes, move |a, o| {
                quiet(a, o);
                absent(a, o, &["provider.endpoint_service"]);
                set(a, o, "provider.nlb", attr::ENDPOINT_SERVICE_IDS, services.clone());
            }),
        )
    };
    assert!(
        codes(&with_services(vec!["vpce-svc-0handmade000000001"]))
            .contains(&"error EP230 provider.endpoint_service".to_string())
    );
    assert!(!codes(&with_services(Vec::new())).iter().any(|c| c.contains("EP230")));
}

// --- item 12: the plan model's part of the noise ----------------------------------------------------

#[test]
fn a_converged_plan_says_nothing() {
    // Portainer's key points at its own host (as Portainer CE issues them): the agent already
    // runs with edgeplan's key, so there is nothing to explain.
    let nodes = seed_nodes();
    let plan = plan_of(&nodes, &observe_world(&nodes, |_, _| {}));
    assert!(!plan.summary().has_changes());
    assert!(plan.diagnostics.is_empty(), "{:?}", codes(&plan));
    // At IAM's version limit with nothing to update: no version is deleted, nothing is said.
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            set(a, o, "provider.lb_controller_policy", attr::VERSIONS, vec!["v1", "v2", "v3", "v4", "v5"]);
        }),
    );
    assert!(plan.diagnostics.is_empty(), "{:?}", codes(&plan));
}

#[test]
fn notes_speak_when_the_plan_acts() {
    let nodes = seed_nodes();
    // The agent is (re)written: why its key is not Portainer's.
    let plan = plan_of(&nodes, &observe_world(&nodes, |a, o| absent(a, o, &["consumer.prod.agent"])));
    assert_eq!(codes(&plan), ["note EP215 consumer.prod.environment"]);
    // The policy is updated at the version limit: the version it deletes.
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            quiet(a, o);
            set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, "{\"Statement\": []}");
            set(a, o, "provider.lb_controller_policy", attr::VERSIONS, vec!["v1", "v2", "v3", "v4", "v5"]);
        }),
    );
    assert!(codes(&plan).contains(&"note EP202 provider.lb_controller_policy".to_string()), "{:?}", codes(&plan));
    assert!(
        diagnostic(&plan, "EP202").finding.message.ends_with(": v1 will be deleted first"),
        "{}",
        diagnostic(&plan, "EP202").finding.message
    );
}

#[test]
fn a_plan_that_creates_an_environment_shows_its_name() {
    let nodes = seed_nodes();
    let plan = plan_of(&nodes, &observe_world(&nodes, |a, o| absent(a, o, &["consumer.prod.environment"])));
    let environment = plan.change(&Address::consumer("prod", "environment")).unwrap();
    assert_eq!(environment.action, edgeplan_model::Action::Create);
    assert_eq!(environment.after["name"], Shown::Known(Value::str("prod")));
}

#[test]
fn a_secret_the_user_chose_is_shown_by_its_reference_and_never_by_a_digest() {
    let mut nodes = seed_nodes();
    let secret = SecretText::new("hunter2").referenced("env:AGENT_SECRET");
    node_mut(&mut nodes, "consumer.prod.agent")
        .desired
        .insert(attr::AGENT_SECRET, Expr::lit(Value::Secret(secret.clone())));
    let deployed = |value: &'static str| {
        observe_world(&nodes, move |a, o| {
            edit_manifest(a, o, "consumer.prod.agent", "Secret", |m| {
                if let Manifest::Secret { data, .. } = m {
                    data.insert("AGENT_SECRET".into(), SecretText::new(value));
                }
            });
        })
    };
    // Another value deployed: the plan says it changes, by reference.
    let plan = plan_of(&nodes, &deployed("old-secret"));
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert_eq!(agent.reasons, [edgeplan_plan::Reason::Drift { field: "AGENT_SECRET".into() }]);
    assert_eq!(agent.before["AGENT_SECRET"], Shown::Sensitive("differs from env:AGENT_SECRET".into()));
    assert_eq!(agent.after["AGENT_SECRET"], Shown::Sensitive("env:AGENT_SECRET".into()));
    // No digest of either value anywhere in the plan: renderers cannot print one.
    let everything = format!("{plan:?}");
    for digest in [secret.fingerprint(), SecretText::new("old-secret").fingerprint()] {
        assert!(!everything.contains(&digest), "{digest} in the plan");
    }
    // The same value deployed: no change.
    let plan = plan_of(&nodes, &deployed("hunter2"));
    assert_eq!(plan.change(&Address::consumer("prod", "agent")).unwrap().action, edgeplan_model::Action::NoOp);
    assert!(!format!("{plan:?}").contains(&secret.fingerprint()));
}
