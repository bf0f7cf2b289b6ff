//! The shipped worlds load, round-trip, and every node of their spec observes cleanly.

use edgeplan_model::{Observed, Value};
use edgeplan_sim::{load, save};

use crate::common::*;

#[test]
fn both_worlds_observe_every_node_of_their_spec_without_error() {
    for (name, (backend, nodes), stack) in [("seed", seed(), SEED_STACK), ("fleet", fleet(), FLEET_STACK)] {
        let observed = observe_all(&backend, stack, &nodes);
        assert_eq!(observed.len(), nodes.len(), "{name}");
        for (address, result) in &observed {
            assert!(result.is_ok(), "{name}: {address}: {result:?}");
        }
    }
}

#[test]
fn worlds_round_trip_through_save_and_load() {
    for text in [SEED_WORLD, FLEET_WORLD] {
        let world = load(text).unwrap();
        let saved = save(&world);
        assert_eq!(load(&saved).unwrap(), world);
        // Saving is deterministic.
        assert_eq!(save(&load(&saved).unwrap()), saved);
    }
}

#[test]
fn a_world_after_an_apply_round_trips_too() {
    let (backend, nodes) = seed();
    apply_all(&backend, SEED_STACK, &nodes);
    backend.run_until_settled();
    let world = backend.snapshot();
    assert_eq!(load(&backend.save()).unwrap(), world);
}

#[test]
fn the_seed_world_shows_every_trap() {
    let (backend, nodes) = seed();
    let policy = live(&backend, SEED_STACK, &nodes, "provider.lb_controller_policy");
    let missing = attr(&policy, "missing_actions");
    assert!(matches!(missing, Value::List(list) if list.contains(&s("ec2:DescribeRouteTables"))), "{missing}");
    assert_eq!(attr(&policy, "default_version"), &s("v1"));
    assert_eq!(policy.outputs["policy_arn"], s("arn:aws:iam::123456789012:policy/ALBIngressControllerIAMPolicy"));

    // The NLB subnet does not exist yet; nothing else routes privately either.
    assert!(absent(&backend, SEED_STACK, &nodes, "provider.nlb_subnet"));
    let world = backend.snapshot();
    let region = world.region("123456789012", "eu-west-1").unwrap();
    let igw = region.igw_route("subnet-0a1b2c3d4e5f60012").unwrap();
    assert!(igw.target.starts_with("igw-"));

    let restart = live(&backend, SEED_STACK, &nodes, "provider.portainer_restart");
    assert_eq!(attr(&restart, "tunnel_port"), &Value::Int(30776));
    assert_eq!(restart.outputs["tunnel_port"], Value::Int(30776));
    assert_eq!(attr(&restart, "edge_compute_effective"), &Value::Bool(false));
    assert_eq!(attr(&restart, "tunnel_listening"), &Value::Bool(false));

    let settings = live(&backend, SEED_STACK, &nodes, "provider.edge_compute");
    assert_eq!(attr(&settings, "EnableEdgeComputeFeatures"), &Value::Bool(false));
    assert_eq!(attr(&settings, "pending_restart"), &Value::Bool(false));

    // The cluster SG is discovered by its tag and has no rule for the tunnel.
    assert!(absent(&backend, SEED_STACK, &nodes, "provider.cluster_sg_rule"));
    assert!(absent(&backend, SEED_STACK, &nodes, "provider.tunnel_service"));
    assert!(absent(&backend, SEED_STACK, &nodes, "provider.nlb"));

    let env = live(&backend, SEED_STACK, &nodes, "consumer.prod.environment");
    assert_eq!(env.id, "1");
    assert_eq!(attr(&env, "type_id"), &Value::Int(4));
    assert_eq!(attr(&env, "edge_id"), &Value::Null);
    assert_eq!(attr(&env, "edge_key_tunnel"), &s("portainer.example.com:30776"));
    assert_eq!(attr(&env, "edge_key_canonical"), &Value::Bool(true));
    assert_eq!(attr(&env, "heartbeat"), &Value::Bool(false));
    // The key itself is nowhere in what is observed.
    let world_key = &world.portainer[0].environments[0].edge_key;
    let everything = format!("{:?}", observe_all(&backend, SEED_STACK, &nodes));
    assert!(!everything.contains(world_key.as_str()));
    assert!(matches!(&env.outputs["edge_key"], Value::Str(fp) if fp.starts_with("sha256:")));
    // An Edge ID to register, stable across runs.
    assert_eq!(
        env.outputs["edge_id"],
        live(&backend, SEED_STACK, &nodes, "consumer.prod.environment").outputs["edge_id"]
    );

    assert!(absent(&backend, SEED_STACK, &nodes, "consumer.prod.vpce"));
    assert!(absent(&backend, SEED_STACK, &nodes, "consumer.prod.agent_key"));
    assert!(absent(&backend, SEED_STACK, &nodes, "consumer.prod.agent"));
}

#[test]
fn the_fleet_world_shows_its_traps() {
    let (backend, nodes) = fleet();
    let policy = live(&backend, FLEET_STACK, &nodes, "provider.lb_controller_policy");
    assert_eq!(attr(&policy, "version_count"), &Value::Int(5));
    assert_eq!(attr(&policy, "oldest_non_default_version"), &s("v1"));
    assert!(matches!(attr(&policy, "missing_actions"), Value::List(l) if l == &vec![s("ec2:DescribeRouteTables")]));

    let restart = live(&backend, FLEET_STACK, &nodes, "provider.portainer_restart");
    assert_eq!(attr(&restart, "tunnel_port"), &Value::Int(8000));
    assert_eq!(attr(&restart, "tunnel_listening"), &Value::Bool(true));

    // The adopted cluster SG exists; edgeplan's rule does not.
    assert!(absent(&backend, FLEET_STACK, &nodes, "provider.cluster_sg_rule"));

    // The install script's agent: found by name, not owned, padded key, stale EDGE_ID.
    let agent = live(&backend, FLEET_STACK, &nodes, "consumer.analytics.agent");
    assert!(!agent.owned);
    assert_eq!(attr(&agent, "edge_key_canonical"), &Value::Bool(false));
    assert!(
        matches!(attr(&agent, "edge_key_agent_error"), Value::Str(e) if e.starts_with("illegal base64 data at input byte"))
    );
    assert_eq!(attr(&agent, "edge_key_tunnel"), &s("portainer.platform.example.com:8000"));
    let env = live(&backend, FLEET_STACK, &nodes, "consumer.analytics.environment");
    assert_ne!(attr(&agent, "EDGE_ID"), attr(&env, "edge_id"));
    assert_eq!(attr(&env, "type"), &s("edge-agent-kubernetes"));
    assert_eq!(attr(&env, "heartbeat"), &Value::Bool(false));

    let sg = live(&backend, FLEET_STACK, &nodes, "consumer.analytics.vpce_security_group");
    assert_eq!(attr(&sg, "ingress_port"), &Value::Int(8000));
    assert!(!sg.owned);

    assert!(absent(&backend, FLEET_STACK, &nodes, "consumer.partner.environment"));
    // The agent crash-loops in the world too.
    backend.run_until_settled();
    let agent = live(&backend, FLEET_STACK, &nodes, "consumer.analytics.agent");
    assert_eq!(attr(&agent, "agent_state"), &s("crash_loop"));
}

#[test]
fn observing_an_unknown_scope_is_an_error_not_a_panic() {
    let (backend, _) = seed();
    let fleet_nodes = compile_spec(FLEET_SPEC);
    for (address, result) in observe_all(&backend, FLEET_STACK, &fleet_nodes) {
        match result {
            Err(error) => assert!(!error.message.is_empty(), "{address}"),
            Ok(Observed::Absent) => {}
            Ok(Observed::Present(object)) => panic!("{address}: found {object:?} in the wrong world"),
        }
    }
}

#[test]
fn objects_the_sim_cannot_interpret_are_observe_errors() {
    let (backend, nodes) = seed();
    backend.with_world(|world| {
        world.kubernetes[0].deployments[0].containers[0].args = vec!["--tunnel-port=thirty".to_string()];
        world.portainer[0].environments[0].edge_key = "not a key!".to_string();
        world.aws[0].iam.policies[0].versions[0].document = serde_json::json!({"Version": "2012-10-17"});
    });
    let observed = observe_all(&backend, SEED_STACK, &nodes);
    for address in ["provider.portainer_restart", "consumer.prod.environment", "provider.lb_controller_policy"] {
        let error = observed[address].as_ref().expect_err(address);
        assert!(!error.message.is_empty() && !error.retryable, "{address}: {error:?}");
    }
    // The error names the problem, never the key.
    assert!(!format!("{observed:?}").contains("not a key!"));
    // The controller's reconcile survives the same world.
    backend.advance(600);
}

#[test]
fn two_objects_claiming_one_address_are_an_observe_error() {
    let (backend, nodes) = seed();
    apply_node(&backend, SEED_STACK, &nodes, "provider.nlb_subnet", edgeplan_model::Action::Create).unwrap();
    backend.with_world(|world| {
        let region = &mut world.aws[0].regions[0];
        let mut copy = region.subnets.last().unwrap().clone();
        copy.id = "subnet-0copy".to_string();
        copy.cidr = "192.168.1.0/24".to_string();
        region.subnets.push(copy);
    });
    let error = observe_all(&backend, SEED_STACK, &nodes).remove("provider.nlb_subnet").unwrap().unwrap_err();
    assert!(error.message.contains("cannot tell which is its own"), "{}", error.message);
}

mod fuzz {
    use proptest::prelude::*;

    use crate::common::{FLEET_WORLD, SEED_WORLD};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Cutting and splicing a real world file never panics the loader.
        #[test]
        fn damaged_world_files_never_panic(cut in 0usize..6000, len in 0usize..200, insert in "[ -~\n]{0,12}", fleet in any::<bool>()) {
            let text = if fleet { FLEET_WORLD } else { SEED_WORLD };
            let mut bytes = text.as_bytes().to_vec();
            let start = cut.min(bytes.len());
            let end = (start + len).min(bytes.len());
            bytes.splice(start..end, insert.bytes());
            if let Ok(damaged) = String::from_utf8(bytes) {
                let _ = edgeplan_sim::load(&damaged);
            }
        }
    }
}
