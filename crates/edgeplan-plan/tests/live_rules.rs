//! Every live rule, firing and silent, on the seed spec's nodes in a converged world with one
//! thing changed at a time.

mod common;

use common::{converged, observe_all, refs, seed_nodes};
use edgeplan_model::backend::ObserveError;
use edgeplan_model::{Address, LiveObject, Node, Observation, Observed, Value};
use edgeplan_plan::live_rules;

/// Codes reported on a converged world after `edit` changed it.
fn codes_after(edit: impl Fn(&Address, &mut Observed)) -> Vec<String> {
    let nodes = seed_nodes();
    let world = converged(&nodes);
    let mut observations = observe_all(&nodes, |node: &Node| Observed::Present(world[&node.address].clone()));
    for observation in &mut observations {
        if let Ok(observed) = &mut observation.result {
            edit(&observation.address, observed);
        }
    }
    live_codes(&nodes, &observations)
}

fn live_codes(nodes: &[Node], observations: &[Observation]) -> Vec<String> {
    live_rules(&refs(nodes), observations).into_iter().map(|d| format!("{} {}", d.finding.code(), d.address)).collect()
}

fn set(address: &Address, observed: &mut Observed, target: &str, attribute: &str, value: Value) {
    if address.as_str() == target
        && let Observed::Present(live) = observed
    {
        live.attributes.insert(attribute.to_string(), value);
    }
}

fn live_of(observed: &mut Observed) -> Option<&mut LiveObject> {
    match observed {
        Observed::Present(live) => Some(live),
        Observed::Absent => None,
    }
}

#[test]
fn a_converged_world_is_silent() {
    assert_eq!(codes_after(|_, _| {}), Vec::<String>::new());
}

#[test]
fn controller_policy_missing_actions() {
    let codes = codes_after(|a, o| {
        set(a, o, "provider.lb_controller_policy", "missing_actions", Value::from(vec!["ec2:DescribeRouteTables"]))
    });
    assert_eq!(codes, ["EP201 provider.lb_controller_policy"]);
    let silent = codes_after(|a, o| set(a, o, "provider.lb_controller_policy", "missing_actions", Value::List(vec![])));
    assert!(silent.is_empty());
}

#[test]
fn policy_version_limit() {
    let codes = codes_after(|a, o| {
        set(a, o, "provider.lb_controller_policy", "version_count", Value::Int(5));
        set(a, o, "provider.lb_controller_policy", "oldest_non_default_version", Value::str("v1"));
    });
    assert_eq!(codes, ["EP202 provider.lb_controller_policy"]);
    assert!(codes_after(|a, o| set(a, o, "provider.lb_controller_policy", "version_count", Value::Int(4))).is_empty());
}

#[test]
fn target_port_mismatch() {
    let fire = codes_after(|a, o| {
        set(a, o, "provider.tunnel_service", "target_port", Value::Int(8000));
        set(a, o, "provider.portainer_restart", "tunnel_port", Value::Int(30776));
    });
    assert_eq!(fire, ["EP203 provider.tunnel_service"]);
    let silent = codes_after(|a, o| {
        set(a, o, "provider.tunnel_service", "target_port", Value::Int(30776));
        set(a, o, "provider.portainer_restart", "tunnel_port", Value::Int(30776));
    });
    assert!(silent.is_empty());
}

#[test]
fn nlb_subnet_public() {
    let fire = codes_after(|a, o| {
        set(a, o, "provider.nlb_subnet", "routes_to_igw", Value::Bool(true));
        set(a, o, "provider.nlb_subnet", "igw_route", Value::str("0.0.0.0/0 → igw-0abc"));
    });
    assert_eq!(fire, ["EP204 provider.nlb_subnet"]);
    assert!(codes_after(|a, o| set(a, o, "provider.nlb_subnet", "routes_to_igw", Value::Bool(false))).is_empty());
}

#[test]
fn no_sg_path_unless_the_controller_manages_backend_rules() {
    let absent_rule = |a: &Address, o: &mut Observed| {
        if a.as_str() == "provider.cluster_sg_rule" {
            *o = Observed::Absent;
        }
    };
    assert_eq!(codes_after(absent_rule), ["EP205 provider.cluster_sg_rule"]);
    let managed = codes_after(|a, o| {
        absent_rule(a, o);
        set(a, o, "provider.tunnel_service", "controller_manages_backend_sg_rules", Value::Bool(true));
    });
    assert!(managed.is_empty());
}

#[test]
fn edge_compute_off() {
    assert_eq!(
        codes_after(|a, o| set(a, o, "provider.edge_compute", "EnableEdgeComputeFeatures", Value::Bool(false))),
        ["EP206 provider.edge_compute"]
    );
}

#[test]
fn internet_facing_nlb() {
    assert_eq!(
        codes_after(|a, o| set(a, o, "provider.nlb", "scheme", Value::str("internet-facing"))),
        ["EP207 provider.nlb"]
    );
    assert!(codes_after(|a, o| set(a, o, "provider.nlb", "scheme", Value::str("internal"))).is_empty());
}

#[test]
fn no_shared_az_id() {
    let fire = codes_after(|a, o| set(a, o, "consumer.prod.vpce", "shared_availability_zone_ids", Value::List(vec![])));
    assert_eq!(fire, ["EP208 consumer.prod.vpce"]);
    let silent = codes_after(|a, o| {
        set(a, o, "consumer.prod.vpce", "shared_availability_zone_ids", Value::from(vec!["euw1-az3"]))
    });
    assert!(silent.is_empty());
}

#[test]
fn connection_pending_acceptance() {
    let fire = codes_after(|a, o| {
        set(a, o, "consumer.prod.connection_acceptance", "connection_state", Value::str("pendingAcceptance"))
    });
    assert_eq!(fire, ["EP209 consumer.prod.connection_acceptance"]);
    let silent = codes_after(|a, o| {
        set(a, o, "consumer.prod.connection_acceptance", "connection_state", Value::str("available"))
    });
    assert!(silent.is_empty());
}

#[test]
fn agent_key_not_canonical_and_wrong_tunnel() {
    let vpce_dns = "vpce-0abc-1234.vpce-svc-0def.eu-west-1.vpce.amazonaws.com";
    let with_vpce = |a: &Address, o: &mut Observed| {
        if a.as_str() == "consumer.prod.vpce"
            && let Some(live) = live_of(o)
        {
            live.outputs.insert("dns_name".into(), Value::str(vpce_dns));
        }
    };
    let fire = codes_after(|a, o| {
        with_vpce(a, o);
        set(a, o, "consumer.prod.agent", "edge_key_present", Value::Bool(true));
        set(a, o, "consumer.prod.agent", "edge_key_valid", Value::Bool(false));
        set(a, o, "consumer.prod.agent", "edge_key_tunnel", Value::str("portainer.example.com:30776"));
    });
    assert_eq!(fire, ["EP210 consumer.prod.agent", "EP211 consumer.prod.agent"]);
    let silent = codes_after(|a, o| {
        with_vpce(a, o);
        set(a, o, "consumer.prod.agent", "edge_key_present", Value::Bool(true));
        set(a, o, "consumer.prod.agent", "edge_key_valid", Value::Bool(true));
        set(a, o, "consumer.prod.agent", "edge_key_tunnel", Value::str(format!("{vpce_dns}:8000")));
    });
    assert!(silent.is_empty(), "{silent:?}");
}

#[test]
fn edge_id_mismatch() {
    let fire = codes_after(|a, o| {
        set(a, o, "consumer.prod.environment", "edge_id", Value::str("6d4c-…-a"));
        set(a, o, "consumer.prod.agent", "EDGE_ID", Value::str("6d4c-…-b"));
    });
    assert_eq!(fire, ["EP212 consumer.prod.agent"]);
    let silent = codes_after(|a, o| {
        set(a, o, "consumer.prod.environment", "edge_id", Value::str("same"));
        set(a, o, "consumer.prod.agent", "EDGE_ID", Value::str("same"));
    });
    assert!(silent.is_empty());
}

#[test]
fn unobservable_and_adopted_missing() {
    let nodes = seed_nodes();
    let world = converged(&nodes);
    let mut observations = observe_all(&nodes, |node: &Node| Observed::Present(world[&node.address].clone()));
    observations[0].result =
        Err(ObserveError { message: "AccessDenied on iam:GetPolicyVersion".into(), retryable: false });
    assert_eq!(live_codes(&nodes, &observations), ["EP213 provider.lb_controller_policy"]);

    // The seed discovers its cluster SG (owned rule); adopt a subnet to exercise EP214.
    let mut nodes = nodes;
    let subnet = nodes.iter_mut().find(|n| n.address.as_str() == "provider.nlb_subnet").unwrap();
    subnet.identity = edgeplan_model::Identity::Adopted { id: "subnet-0a1b2c3d4e5f60099".into() };
    let mut observations = observe_all(&nodes, |node: &Node| Observed::Present(world[&node.address].clone()));
    observations.iter_mut().find(|o| o.address.as_str() == "provider.nlb_subnet").unwrap().result =
        Ok(Observed::Absent);
    assert_eq!(live_codes(&nodes, &observations), ["EP214 provider.nlb_subnet"]);
}

#[test]
fn portainer_key_pointing_at_its_own_host() {
    let fire = codes_after(|a, o| {
        set(a, o, "consumer.prod.environment", "edge_key_tunnel", Value::str("portainer.example.com:30776"))
    });
    assert_eq!(fire, ["EP215 consumer.prod.environment"]);
    let silent = codes_after(|a, o| {
        set(
            a,
            o,
            "consumer.prod.environment",
            "edge_key_tunnel",
            Value::str("vpce-0a-1.vpce-svc-0b.eu-west-1.vpce.amazonaws.com:8000"),
        )
    });
    assert!(silent.is_empty());
}
