//! Every live rule (EP201–EP215) that judges a state of the world, firing and silent, on the
//! seed spec's nodes in a converged world with one thing changed at a time (with no changes
//! planned, the planned state is the observed one). Rules that speak only when the plan acts
//! (EP202, EP215, EP218) and the rules over planned changes are in `planned_state.rs`. What changes is what a backend reports (a policy
//! document, a route, a Deployment's args, the agent's Secret…); the engine's derivation
//! (`facts::derive`) turns it into the facts the rules read, as it does for real observations.

mod common;

use common::{
    PORTAINER_TUNNEL, STACK, VPCE_DNS, edge_key, edit_manifest, live_of, observe_world, refs, route, seed_nodes, set,
};
use edgeplan_model::attr;
use edgeplan_model::manifest::{Container, DeploymentSpec, PodSpec};
use edgeplan_model::{Address, BackendError, Identity, Manifest, Node, Observation, Observed, SecretText, Value};
use edgeplan_plan::{NodeDiagnostic, live_rules};

/// `CODE address` of each diagnostic on the converged world after `edit`.
fn codes_after(edit: impl Fn(&Address, &mut Observed)) -> Vec<String> {
    let nodes = seed_nodes();
    live_codes(&nodes, &observe_world(&nodes, edit))
}

fn diagnostics(nodes: &[Node], observations: &[Observation]) -> Vec<NodeDiagnostic> {
    live_rules(STACK, &refs(nodes), &[], observations)
}

fn live_codes(nodes: &[Node], observations: &[Observation]) -> Vec<String> {
    diagnostics(nodes, observations).into_iter().map(|d| format!("{} {}", d.finding.code(), d.address)).collect()
}

/// The message of the one diagnostic on the converged world after `edit`.
fn message_after(edit: impl Fn(&Address, &mut Observed)) -> String {
    let nodes = seed_nodes();
    let found = diagnostics(&nodes, &observe_world(&nodes, edit));
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0].finding.message.clone()
}

/// Portainer CE issues keys for its own host (EP215, a note): the converged world has one.
/// The "silent" worlds give Portainer a key that already points at the endpoint, so that
/// nothing at all is reported.
fn portainer_key_for_vpce(a: &Address, o: &mut Observed) {
    let key = edge_key(&format!("{VPCE_DNS}:8000"), common::ENVIRONMENT_ID);
    set(a, o, "consumer.prod.environment", attr::EDGE_KEY, Value::Secret(SecretText::new(key)));
}

fn silent_after(edit: impl Fn(&Address, &mut Observed)) -> Vec<String> {
    codes_after(|a, o| {
        portainer_key_for_vpce(a, o);
        edit(a, o);
    })
}

#[test]
fn a_converged_world_reports_nothing() {
    // Portainer's key points at its own host, as Portainer CE issues them: with no agent to
    // write, there is nothing to explain (EP215 speaks when the plan writes the agent's key).
    assert_eq!(codes_after(|_, _| {}), Vec::<String>::new());
    assert_eq!(silent_after(|_, _| {}), Vec::<String>::new());
}

#[test]
fn ep201_controller_policy_missing_actions() {
    // The ALB-era policy: the spec's document without ec2:DescribeRouteTables.
    let alb_era = common::POLICY.replacen("\"ec2:DescribeRouteTables\",", "", 1);
    assert_ne!(alb_era, common::POLICY);
    let codes =
        silent_after(|a, o| set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, alb_era.as_str()));
    assert_eq!(codes, ["EP201 provider.lb_controller_policy"]);
    let message = message_after(|a, o| {
        portainer_key_for_vpce(a, o);
        set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, alb_era.as_str());
    });
    assert!(message.contains("alb-ingress-controller") && message.ends_with("ec2:DescribeRouteTables"), "{message}");

    // A wildcard allows it; an unreadable document says nothing rather than guess.
    let wildcard = common::POLICY.replacen("\"ec2:DescribeRouteTables\",", "\"ec2:Describe*\",", 1);
    assert!(
        silent_after(|a, o| set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, wildcard.as_str()))
            .is_empty()
    );
    assert!(
        silent_after(|a, o| set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, "not json")).is_empty()
    );
}

#[test]
fn ep202_policy_version_limit() {
    // A note about what an update deletes: with the policy as the spec wants it, nothing is
    // deleted and nothing is said, at the limit or not.
    let versions = |list: Vec<&'static str>, document: Option<&'static str>| {
        move |a: &Address, o: &mut Observed| {
            portainer_key_for_vpce(a, o);
            set(a, o, "provider.lb_controller_policy", attr::VERSIONS, list.clone());
            set(a, o, "provider.lb_controller_policy", attr::DEFAULT_VERSION, "v1");
            if let Some(document) = document {
                set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, document);
            }
        }
    };
    assert!(codes_after(versions(vec!["v1", "v2", "v3", "v4", "v5"], None)).is_empty());
    let nodes = seed_nodes();
    let plan = |list: Vec<&'static str>| {
        edgeplan_plan::decide(
            STACK,
            &refs(&nodes),
            &[],
            &observe_world(&nodes, versions(list, Some("{\"Statement\": []}"))),
        )
    };
    let updated = plan(vec!["v5", "v4", "v1", "v3", "v2"]);
    let notes: Vec<&str> = updated
        .diagnostics
        .iter()
        .filter(|d| d.finding.code() == "EP202")
        .map(|d| d.finding.message.as_str())
        .collect();
    // It names what goes: the oldest version that is not the default.
    assert!(matches!(notes[..], [note] if note.ends_with(": v2 will be deleted first")), "{notes:?}");
    assert!(plan(vec!["v1", "v2", "v3", "v4"]).diagnostics.iter().all(|d| d.finding.code() != "EP202"));
}

#[test]
fn ep203_target_port_mismatch() {
    let target_port = |port: u16| {
        move |a: &Address, o: &mut Observed| {
            portainer_key_for_vpce(a, o);
            edit_manifest(a, o, "provider.tunnel_service", "Service", |m| {
                if let Manifest::Service { spec, .. } = m {
                    spec.ports[0].target_port = port;
                }
            });
        }
    };
    // The chart runs chisel on --tunnel-port=30776; a Service targeting 8000 never gets healthy.
    assert_eq!(codes_after(target_port(8000)), ["EP203 provider.tunnel_service"]);
    assert!(message_after(target_port(8000)).contains("targets port 8000; the tunnel server listens on 30776"));
    assert!(codes_after(target_port(30776)).is_empty());

    // No --tunnel-port at all: Portainer's default, 8000.
    let default_port = |port: u16| {
        move |a: &Address, o: &mut Observed| {
            target_port(port)(a, o);
            edit_manifest(a, o, "provider.portainer_restart", "Deployment", |m| {
                if let Manifest::Deployment { spec: DeploymentSpec { template, .. }, .. } = m
                    && let Some(PodSpec { containers, .. }) = &mut template.spec
                {
                    containers[0] = Container { args: Vec::new(), ..containers[0].clone() };
                }
            });
        }
    };
    assert_eq!(codes_after(default_port(30776)), ["EP203 provider.tunnel_service"]);
    assert!(codes_after(default_port(8000)).is_empty());
}

#[test]
fn ep204_nlb_subnet_public() {
    let routes = |target: &'static str| {
        move |a: &Address, o: &mut Observed| {
            let routes = Value::List(vec![route("192.168.0.0/16", "local"), route("0.0.0.0/0", target)]);
            set(a, o, "provider.nlb_subnet", attr::ROUTES, routes);
        }
    };
    assert_eq!(silent_after(routes("igw-0a1b2c3d")), ["EP204 provider.nlb_subnet"]);
    let message = message_after(|a, o| {
        portainer_key_for_vpce(a, o);
        routes("igw-0a1b2c3d")(a, o);
    });
    assert!(message.contains("0.0.0.0/0 → igw-0a1b2c3d"), "{message}");
    // A default route through a NAT gateway keeps the subnet private.
    assert!(silent_after(routes("nat-0a1b2c3d")).is_empty());
}

#[test]
fn ep205_no_sg_path() {
    let absent_rule = |a: &Address, o: &mut Observed| {
        if a.as_str() == "provider.cluster_sg_rule" {
            *o = Observed::Absent;
        }
    };
    assert_eq!(silent_after(absent_rule), ["EP205 provider.cluster_sg_rule"]);
    // The rule exists (the converged world): silent.
    assert!(silent_after(|_, _| {}).is_empty());
    // The controller manages the backend rules for this Service (aws.md §1a): no rule needed.
    let managed = |a: &Address, o: &mut Observed| {
        absent_rule(a, o);
        edit_manifest(a, o, "provider.tunnel_service", "Service", |m| {
            m.metadata_mut().annotations.insert(
                "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules".into(),
                "true".into(),
            );
        });
    };
    assert!(silent_after(managed).is_empty());
}

#[test]
fn ep206_edge_compute_off() {
    assert_eq!(
        silent_after(|a, o| set(a, o, "provider.edge_compute", attr::ENABLE_EDGE_COMPUTE, false)),
        ["EP206 provider.edge_compute"]
    );
    assert!(silent_after(|a, o| set(a, o, "provider.edge_compute", attr::ENABLE_EDGE_COMPUTE, true)).is_empty());
}

#[test]
fn ep207_internet_facing_nlb() {
    assert_eq!(silent_after(|a, o| set(a, o, "provider.nlb", attr::SCHEME, "internet-facing")), ["EP207 provider.nlb"]);
    assert!(silent_after(|a, o| set(a, o, "provider.nlb", attr::SCHEME, "internal")).is_empty());
}

#[test]
fn ep208_no_shared_az_id() {
    let consumer_azs = |azs: Vec<&'static str>| {
        move |a: &Address, o: &mut Observed| {
            set(a, o, "consumer.prod.subnets", attr::AVAILABILITY_ZONE_IDS, azs.clone());
        }
    };
    assert_eq!(silent_after(consumer_azs(vec!["euw1-az1"])), ["EP208 consumer.prod.vpce"]);
    // Known before the endpoint exists: that is when it matters.
    let before_the_endpoint = silent_after(|a, o| {
        consumer_azs(vec!["euw1-az1"])(a, o);
        if a.as_str() == "consumer.prod.vpce" {
            *o = Observed::Absent;
        }
    });
    assert!(before_the_endpoint.contains(&"EP208 consumer.prod.vpce".to_string()), "{before_the_endpoint:?}");
    // Every subnet in a shared AZ ID: silent.
    assert!(silent_after(consumer_azs(vec![common::SHARED_AZ_ID])).is_empty());
}

#[test]
fn ep232_endpoint_subnet_zone_unsupported() {
    let consumer_azs = |azs: Vec<&'static str>| {
        move |a: &Address, o: &mut Observed| {
            set(a, o, "consumer.prod.subnets", attr::AVAILABILITY_ZONE_IDS, azs.clone());
        }
    };
    // One subnet in the service's zone and one not: AWS refuses the whole CreateVpcEndpoint.
    assert_eq!(silent_after(consumer_azs(vec!["euw1-az1", common::SHARED_AZ_ID])), ["EP232 consumer.prod.vpce"]);
    assert!(silent_after(consumer_azs(vec![common::SHARED_AZ_ID])).is_empty());
}

#[test]
fn ep209_connection_pending_acceptance() {
    for state in ["pendingAcceptance", "PendingAcceptance"] {
        let codes = silent_after(|a, o| set(a, o, "consumer.prod.connection_acceptance", attr::STATE, state));
        assert_eq!(codes, ["EP209 consumer.prod.connection_acceptance"], "{state}");
    }
    assert!(silent_after(|a, o| set(a, o, "consumer.prod.connection_acceptance", attr::STATE, "available")).is_empty());
}

/// Put `key` in the agent's Secret, as `kubectl edit` (or the install script) would.
fn agent_runs_with(key: String) -> impl Fn(&Address, &mut Observed) {
    move |a, o| {
        portainer_key_for_vpce(a, o);
        edit_manifest(a, o, "consumer.prod.agent", "Secret", |m| {
            if let Manifest::Secret { data, .. } = m {
                data.insert("EDGE_KEY".into(), SecretText::new(key.as_str()));
            }
        });
    }
}

#[test]
fn ep210_agent_key_not_canonical() {
    // Trap 5: the same key, re-encoded with `=` padding.
    let text = format!("{}|{VPCE_DNS}:8000|{}|3", common::PORTAINER_URL, common::SERVER_FINGERPRINT);
    let padded = common::base64(text.as_bytes(), true);
    let canonical = common::base64(text.as_bytes(), false);
    assert!(padded.ends_with('=') && padded.len() > canonical.len(), "the fixture needs padding");
    assert_eq!(codes_after(agent_runs_with(padded.clone())), ["EP210 consumer.prod.agent"]);
    let message = message_after(agent_runs_with(padded.clone()));
    assert!(message.ends_with(&format!("illegal base64 data at input byte {}", canonical.len())), "{message}");
    assert!(!message.contains(&canonical), "the key is never quoted");
    assert!(codes_after(agent_runs_with(canonical)).is_empty());
}

#[test]
fn ep211_agent_key_wrong_tunnel() {
    // Portainer's key as issued, unedited: the agent would dial Portainer's host.
    let codes = codes_after(agent_runs_with(edge_key(PORTAINER_TUNNEL, "3")));
    assert_eq!(codes, ["EP211 consumer.prod.agent"]);
    let message = message_after(agent_runs_with(edge_key(PORTAINER_TUNNEL, "3")));
    assert!(message.contains(&format!("is {PORTAINER_TUNNEL}, not {VPCE_DNS}:8000")), "{message}");
    // The endpoint, but not on the listener port.
    assert_eq!(
        codes_after(agent_runs_with(edge_key(&format!("{VPCE_DNS}:30776"), "3"))),
        ["EP211 consumer.prod.agent"]
    );
    assert!(codes_after(agent_runs_with(edge_key(&format!("{VPCE_DNS}:8000"), "3"))).is_empty());
}

fn agent_edge_id(a: &Address, o: &mut Observed, id: &'static str) {
    edit_manifest(a, o, "consumer.prod.agent", "ConfigMap", |m| {
        if let Manifest::ConfigMap { data, .. } = m {
            data.insert("EDGE_ID".into(), id.into());
        }
    });
}

#[test]
fn ep212_edge_id_mismatch() {
    let fire = silent_after(|a, o| agent_edge_id(a, o, "0e0e0e0e-0000-4000-a000-000000000000"));
    assert_eq!(fire, ["EP212 consumer.prod.agent"]);
    // The converged agent runs with Portainer's EdgeID.
    assert!(silent_after(|a, o| agent_edge_id(a, o, common::EDGE_ID)).is_empty());
    // An environment without an EdgeID takes whichever agent polls first: nothing to compare.
    let unset = silent_after(|a, o| {
        set(a, o, "consumer.prod.environment", attr::EDGE_ID, "");
        agent_edge_id(a, o, "0e0e0e0e-0000-4000-a000-000000000000");
    });
    assert!(unset.is_empty(), "{unset:?}");
}

#[test]
fn ep213_unobservable() {
    let nodes = seed_nodes();
    let mut observations = observe_world(&nodes, portainer_key_for_vpce);
    assert!(live_codes(&nodes, &observations).is_empty());
    let policy = observations.iter_mut().find(|o| o.address.as_str() == "provider.lb_controller_policy").unwrap();
    policy.result = Err(BackendError::AccessDenied {
        action: Some("iam:GetPolicyVersion".into()),
        message: "User is not authorized".into(),
    });
    let found = diagnostics(&nodes, &observations);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].finding.code(), found[0].address.as_str()), ("EP213", "provider.lb_controller_policy"));
    assert!(found[0].finding.message.contains("may not call iam:GetPolicyVersion"), "{}", found[0].finding.message);
}

#[test]
fn ep214_adopted_resource_missing() {
    let mut nodes = seed_nodes();
    let subnet = nodes.iter_mut().find(|n| n.address.as_str() == "provider.nlb_subnet").unwrap();
    subnet.identity = Identity::Adopted { id: "subnet-0a1b2c3d4e5f60099".into() };
    let absent_subnet = |a: &Address, o: &mut Observed| {
        portainer_key_for_vpce(a, o);
        if a.as_str() == "provider.nlb_subnet" {
            *o = Observed::Absent;
        }
    };
    let found = diagnostics(&nodes, &observe_world(&nodes, absent_subnet));
    let codes: Vec<String> = found.iter().map(|d| format!("{} {}", d.finding.code(), d.address)).collect();
    assert_eq!(codes, ["EP214 provider.nlb_subnet"]);
    assert!(found[0].finding.message.contains("subnet-0a1b2c3d4e5f60099"));
    // Present: silent. Owned and absent: it is simply created (the VPC's main route table is
    // what EP204 is about then, not a missing adopted subnet).
    assert!(live_codes(&nodes, &observe_world(&nodes, portainer_key_for_vpce)).is_empty());
    let created = live_codes(&seed_nodes(), &observe_world(&seed_nodes(), absent_subnet));
    assert!(!created.iter().any(|c| c.starts_with("EP214")), "{created:?}");
}

#[test]
fn ep215_portainer_key_pointing_at_its_own_host() {
    // Said when the plan writes the agent's key: why it is not Portainer's.
    let nodes = seed_nodes();
    let plan = |edit: fn(&Address, &mut Observed)| {
        let observations = observe_world(&nodes, |a, o| {
            edit(a, o);
            if a.as_str() == "consumer.prod.agent" {
                *o = Observed::Absent;
            }
        });
        let plan = edgeplan_plan::decide(STACK, &refs(&nodes), &[], &observations);
        plan.diagnostics
            .into_iter()
            .map(|d| (format!("{} {}", d.finding.code(), d.address), d.finding.message))
            .collect::<Vec<_>>()
    };
    let fire = plan(|_, _| {});
    assert_eq!(fire.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["EP215 consumer.prod.environment"]);
    assert!(fire[0].1.contains(PORTAINER_TUNNEL), "{}", fire[0].1);
    assert!(plan(portainer_key_for_vpce).is_empty());
    // No key (the environment was just created in the UI): nothing to say.
    let no_key = plan(|a, o| {
        if a.as_str() == "consumer.prod.environment"
            && let Some(live) = live_of(o)
        {
            live.attributes.remove(&attr::EDGE_KEY);
        }
    });
    assert!(no_key.is_empty(), "{no_key:?}");
}

#[test]
fn a_rule_that_cannot_tell_says_nothing() {
    // The Service targets 8000, but the restart node's Deployment was not found among its
    // live objects: the real tunnel port is unknown, so EP203 cannot tell and stays silent.
    let codes = silent_after(|a, o| {
        edit_manifest(a, o, "provider.tunnel_service", "Service", |m| {
            if let Manifest::Service { spec, .. } = m {
                spec.ports[0].target_port = 8000;
            }
        });
        if a.as_str() == "provider.portainer_restart"
            && let Some(live) = live_of(o)
        {
            live.manifests.clear();
        }
    });
    assert!(codes.is_empty(), "{codes:?}");
}
