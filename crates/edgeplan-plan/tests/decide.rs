//! The decision function over the seed spec's nodes, with hand-built observations.

mod common;

use std::collections::BTreeMap;

use common::{
    STACK, agent_key_text, converged, edit_manifest, live_of, node_mut, observe_all, observe_world,
    portainer_deployment, portainer_key, refs, seed_nodes, set,
};
use edgeplan_model::attr;
use edgeplan_model::{
    Action, Address, BackendError, Expr, Identity, LiveObject, Manifest, Node, NodeKind, Observation, Observed,
    Ownership, SecretText, Value,
};
use edgeplan_plan::{Plan, Reason, Shown, decide, stale_nodes};

fn plan_of(nodes: &[Node], observations: &[Observation]) -> Plan {
    decide(STACK, &refs(nodes), &[], observations)
}

fn action_of(plan: &Plan, address: &str) -> Action {
    plan.changes.iter().find(|c| c.address.as_str() == address).map(|c| c.action).expect(address)
}

fn reasons_of<'p>(plan: &'p Plan, address: &str) -> &'p [Reason] {
    &plan.changes.iter().find(|c| c.address.as_str() == address).expect(address).reasons
}

fn drift(field: &str) -> Reason {
    Reason::Drift { field: field.to_string() }
}

#[test]
fn an_empty_world_creates_everything_reads_the_nlb_and_never_creates_what_it_adopts() {
    let nodes = seed_nodes();
    let plan = plan_of(&nodes, &observe_all(&nodes, |_| Observed::Absent));
    for change in &plan.changes {
        let expected = match change.address.as_str() {
            // Made by the LB controller: read and waited for.
            "provider.nlb" => (Action::Read, Reason::ManagedElsewhere),
            // The consumer's subnets and the provider VPC are named by ID in the spec: adopted,
            // never created.
            "consumer.prod.subnets" | "provider.vpc" => (Action::Read, Reason::NotFound),
            _ => (Action::Create, Reason::NotFound),
        };
        assert_eq!((change.action, change.reasons.as_slice()), (expected.0, &[expected.1][..]), "{}", change.address);
        assert!(change.before.is_empty(), "{}: nothing observed, nothing before", change.address);
    }
    let summary = plan.summary();
    assert_eq!((summary.create, summary.read), (nodes.len() - 3, 3));

    // The VPCE's service name is known only after apply; the SG rule's source CIDR is known
    // now, because the new subnet's CIDR is in the spec.
    let vpce = plan.change(&Address::consumer("prod", "vpce")).unwrap();
    assert_eq!(vpce.after["service_name"], Shown::KnownAfterApply);
    assert_eq!(vpce.after["vpc_endpoint_type"], Shown::Known(Value::str("Interface")));
    let rule = plan.change(&Address::provider("cluster_sg_rule")).unwrap();
    assert_eq!(rule.after["source_cidr"], Shown::Known(Value::str("192.168.0.0/24")));
    // Ordering-only references are neither shown nor compared.
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert!(!agent.after.contains_key("connection_state"), "{:?}", agent.after.keys());
}

#[test]
fn a_converged_world_has_no_changes() {
    let nodes = seed_nodes();
    let plan = plan_of(&nodes, &observe_world(&nodes, |_, _| {}));
    let summary = plan.summary();
    assert!(!summary.has_changes(), "{:#?}", plan.changes.iter().filter(|c| c.action.mutates()).collect::<Vec<_>>());
    assert_eq!(summary.read, 1, "the NLB is always read");
    assert_eq!(summary.no_op, nodes.len() - 1);
    for change in plan.changes.iter().filter(|c| c.action == Action::NoOp) {
        assert_eq!(change.reasons, [Reason::InSync], "{}", change.address);
    }
}

#[test]
fn drift_updates_and_immutable_fields_replace_with_reasons() {
    let nodes = seed_nodes();
    let observations = observe_world(&nodes, |a, o| {
        set(a, o, "provider.nlb_subnet", attr::CIDR_BLOCK, "192.168.9.0/24");
        set(a, o, "provider.edge_compute", attr::ENABLE_EDGE_COMPUTE, false);
    });
    let plan = plan_of(&nodes, &observations);
    let subnet = plan.change(&Address::provider("nlb_subnet")).unwrap();
    assert_eq!(subnet.action, Action::Replace);
    assert_eq!(subnet.reasons, [Reason::ForcesReplacement { field: "cidr_block".into() }]);
    assert_eq!(subnet.before["cidr_block"], Shown::Known(Value::str("192.168.9.0/24")));
    assert_eq!(subnet.after["cidr_block"], Shown::Known(Value::str("192.168.0.0/24")));

    let settings = plan.change(&Address::provider("edge_compute")).unwrap();
    assert_eq!(settings.action, Action::Update);
    assert_eq!(settings.reasons, [drift("EnableEdgeComputeFeatures")]);
    // The restart stamps the settings checksum, which this update changes: it is planned
    // too, and says why.
    let restart = plan.change(&Address::provider("portainer_restart")).unwrap();
    assert_eq!(restart.action, Action::Update);
    assert!(
        matches!(&restart.reasons[..], [Reason::UpstreamChanging { field, upstream }]
            if field == "settings_checksum" && upstream.as_str() == "provider.edge_compute"),
        "{:?}",
        restart.reasons
    );
    assert_eq!(restart.after["settings_checksum"], Shown::KnownAfterApply);
}

#[test]
fn an_immutable_field_of_an_adopted_object_is_drift_not_a_replacement() {
    // edgeplan never deletes what it adopted, so it cannot replace it either.
    let mut nodes = seed_nodes();
    node_mut(&mut nodes, "provider.nlb_subnet").identity = Identity::Adopted { id: "subnet-0e1d2c3b4a5960001".into() };
    let observations =
        observe_world(&nodes, |a, o| set(a, o, "provider.nlb_subnet", attr::CIDR_BLOCK, "192.168.9.0/24"));
    let plan = plan_of(&nodes, &observations);
    assert_eq!(action_of(&plan, "provider.nlb_subnet"), Action::Update);
    assert_eq!(reasons_of(&plan, "provider.nlb_subnet"), [drift("cidr_block")]);
}

#[test]
fn secrets_are_shown_as_references_or_fingerprints_only() {
    let mut nodes = seed_nodes();
    // `agentSecret: {env: AGENT_SECRET}`, as compiled; not read (yet).
    node_mut(&mut nodes, "consumer.prod.agent")
        .desired
        .insert(attr::AGENT_SECRET, Expr::lit(Value::SecretRef("env:AGENT_SECRET".into())));

    let plan = plan_of(&nodes, &observe_all(&nodes, |_| Observed::Absent));
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert_eq!(agent.after["AGENT_SECRET"], Shown::Sensitive("env:AGENT_SECRET".into()));
    assert_eq!(agent.after["EDGE_KEY"], Shown::KnownAfterApply);

    // Once everything exists, the keys are shown by their fingerprints, before and after.
    let plan = plan_of(&nodes, &observe_world(&nodes, |_, _| {}));
    let fingerprint = SecretText::new(agent_key_text()).fingerprint();
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert_eq!(agent.before["EDGE_KEY"], Shown::Sensitive(fingerprint.clone()));
    assert_eq!(agent.after["EDGE_KEY"], Shown::Sensitive(fingerprint));
    let key = plan.change(&Address::consumer("prod", "agent_key")).unwrap();
    assert_eq!(key.after["portainer_key"], Shown::Sensitive(SecretText::new(portainer_key()).fingerprint()));
    // No key text anywhere in the plan.
    let everything = format!("{plan:?}");
    for text in [agent_key_text(), portainer_key()] {
        assert!(!everything.contains(&text), "a key leaked into the plan");
    }
}

#[test]
fn unobservable_nodes_are_read_not_guessed() {
    let nodes = seed_nodes();
    let mut observations = observe_world(&nodes, |_, _| {});
    observations[0].result = Err(BackendError::Throttled { message: "Rate exceeded".into() });
    let plan = plan_of(&nodes, &observations);
    assert_eq!(plan.changes[0].action, Action::Read);
    assert_eq!(plan.changes[0].reasons, [Reason::Unobservable]);
    // A node with no observation at all is not guessed either.
    let plan = plan_of(&nodes, &observations[1..]);
    assert_eq!((plan.changes[0].action, plan.changes[0].observed_fingerprint.as_str()), (Action::Read, "unobserved"));
}

#[test]
fn a_saved_plan_names_exactly_the_nodes_that_moved() {
    let nodes = seed_nodes();
    let observations = observe_world(&nodes, |_, _| {});
    let plan = plan_of(&nodes, &observations);
    assert_eq!(stale_nodes(&plan, &observations), Vec::<Address>::new());

    let mut moved = observations.clone();
    let vpce = moved.iter_mut().find(|o| o.address == Address::consumer("prod", "vpce")).unwrap();
    vpce.result = Ok(Observed::Absent);
    assert_eq!(stale_nodes(&plan, &moved), [Address::consumer("prod", "vpce")]);
    assert_eq!(action_of(&plan, "consumer.prod.vpce"), Action::NoOp);
    // A node missing from the fresh observations is stale too.
    assert_eq!(stale_nodes(&plan, &observations[1..]), [observations[0].address.clone()]);
}

#[test]
fn json_documents_equal_after_normalization_are_not_drift() {
    let nodes = seed_nodes();
    let compact =
        |document: &str| serde_json::to_string(&serde_json::from_str::<serde_json::Value>(document).unwrap()).unwrap();
    let with_document = |document: String| {
        observe_world(&nodes, move |a, o| {
            set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, document.as_str())
        })
    };
    // IAM returns the spec's pretty-printed document compact: the same policy.
    let plan = plan_of(&nodes, &with_document(compact(common::POLICY)));
    let change = plan.change(&Address::provider("lb_controller_policy")).unwrap();
    assert_eq!(change.action, Action::NoOp, "{:?}", change.reasons);

    let other = common::POLICY.replacen("\"ec2:DescribeRouteTables\",", "", 1);
    assert_ne!(other, common::POLICY);
    let plan = plan_of(&nodes, &with_document(compact(&other)));
    assert_eq!(action_of(&plan, "provider.lb_controller_policy"), Action::Update);
    assert_eq!(reasons_of(&plan, "provider.lb_controller_policy"), [drift("policy_document")]);
    // A new default version is made: whatever reads it waits for it.
    let nlb = plan.change(&Address::provider("nlb")).unwrap();
    assert_eq!(nlb.action, Action::Read);
}

#[test]
fn at_the_version_limit_the_plan_names_the_version_it_deletes() {
    let nodes = seed_nodes();
    let other = common::POLICY.replacen("\"ec2:DescribeRouteTables\",", "", 1);
    let with_versions = |versions: Vec<&'static str>| {
        let other = other.clone();
        observe_world(&nodes, move |a, o| {
            set(a, o, "provider.lb_controller_policy", attr::POLICY_DOCUMENT, other.as_str());
            set(a, o, "provider.lb_controller_policy", attr::VERSIONS, versions.clone());
            set(a, o, "provider.lb_controller_policy", attr::DEFAULT_VERSION, "v2");
        })
    };
    let plan = plan_of(&nodes, &with_versions(vec!["v5", "v2", "v3", "v4", "v6"]));
    let change = plan.change(&Address::provider("lb_controller_policy")).unwrap();
    // The default cannot be deleted: the oldest other version goes, as IAM numbers them.
    assert_eq!(change.after["delete_version"], Shown::Known(Value::str("v3")));
    assert!(change.reasons.contains(&Reason::VersionLimit { field: "delete_version".into() }), "{:?}", change.reasons);

    let plan = plan_of(&nodes, &with_versions(vec!["v2", "v3", "v4", "v5"]));
    let change = plan.change(&Address::provider("lb_controller_policy")).unwrap();
    assert_eq!(change.action, Action::Update);
    assert!(!change.after.contains_key("delete_version"));
    assert_eq!(change.reasons, [drift("policy_document")]);

    // At the limit with nothing to update, nothing is deleted.
    let observations = observe_world(&nodes, |a, o| {
        set(a, o, "provider.lb_controller_policy", attr::VERSIONS, vec!["v1", "v2", "v3", "v4", "v5"]);
    });
    let change = plan_of(&nodes, &observations).change(&Address::provider("lb_controller_policy")).cloned().unwrap();
    assert_eq!((change.action, change.after.contains_key("delete_version")), (Action::NoOp, false));
}

#[test]
fn secrets_are_compared_by_fingerprint() {
    let mut nodes = seed_nodes();
    // The engine has read `agentSecret: {env: AGENT_SECRET}`.
    node_mut(&mut nodes, "consumer.prod.agent")
        .desired
        .insert(attr::AGENT_SECRET, Expr::lit(Value::Secret(SecretText::new("s3cret-agent-secret"))));
    let with_secrets = |nodes: &[Node], edge_key: String, agent_secret: &'static str| {
        observe_world(nodes, move |a, o| {
            edit_manifest(a, o, "consumer.prod.agent", "Secret", |m| {
                if let Manifest::Secret { data, .. } = m {
                    data.insert("EDGE_KEY".into(), SecretText::new(edge_key.as_str()));
                    data.insert("AGENT_SECRET".into(), SecretText::new(agent_secret));
                }
            });
            // The rendered agent has no AGENT_SECRET env var without one: add it as the
            // Deployment would carry it.
            edit_manifest(a, o, "consumer.prod.agent", "Deployment", |m| {
                if let Manifest::Deployment { spec, .. } = m
                    && let Some(pod) = &mut spec.template.spec
                    && !pod.containers[0].env.iter().any(|e| e.name == "AGENT_SECRET")
                {
                    pod.containers[0].env.push(edgeplan_model::manifest::EnvVar {
                        name: "AGENT_SECRET".into(),
                        source: edgeplan_model::manifest::EnvSource::SecretKey {
                            name: edgeplan_plan::manifests::AGENT_KEY_SECRET.into(),
                            key: "AGENT_SECRET".into(),
                        },
                    });
                }
            });
        })
    };
    let plan = plan_of(&nodes, &with_secrets(&nodes, agent_key_text(), "s3cret-agent-secret"));
    assert_eq!(action_of(&plan, "consumer.prod.agent"), Action::NoOp, "{:?}", reasons_of(&plan, "consumer.prod.agent"));

    let plan = plan_of(&nodes, &with_secrets(&nodes, agent_key_text(), "another-secret"));
    assert_eq!(reasons_of(&plan, "consumer.prod.agent"), [drift("AGENT_SECRET")]);
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert_eq!(agent.before["AGENT_SECRET"], Shown::Sensitive(SecretText::new("another-secret").fingerprint()));
    assert_eq!(agent.after["AGENT_SECRET"], Shown::Sensitive(SecretText::new("s3cret-agent-secret").fingerprint()));

    // Another key: the agent's key differs from the one the engine computes.
    let other_key = common::edge_key(&format!("{}:8000", common::VPCE_DNS), "4");
    let plan = plan_of(&nodes, &with_secrets(&nodes, other_key, "s3cret-agent-secret"));
    assert_eq!(reasons_of(&plan, "consumer.prod.agent"), [drift("EDGE_KEY")]);

    // A secret reference that could not be read is not compared: its own diagnostic stops
    // the plan, and a guess here would only add noise.
    node_mut(&mut nodes, "consumer.prod.agent")
        .desired
        .insert(attr::AGENT_SECRET, Expr::lit(Value::SecretRef("env:AGENT_SECRET".into())));
    let observations = with_secrets(&nodes, agent_key_text(), "whatever-is-deployed");
    let plan = plan_of(&nodes, &observations);
    assert_eq!(action_of(&plan, "consumer.prod.agent"), Action::NoOp);
}

#[test]
fn a_trap_the_plan_fixes_is_a_warning_and_says_so() {
    let nodes = seed_nodes();
    let observations = observe_world(&nodes, |a, o| {
        if a.as_str() == "provider.cluster_sg_rule" {
            *o = Observed::Absent;
        }
    });
    let plan = plan_of(&nodes, &observations);
    assert_eq!(action_of(&plan, "provider.cluster_sg_rule"), Action::Create);
    let rule = plan.diagnostics.iter().find(|d| d.finding.code() == "EP205").expect("EP205 on the missing rule");
    assert_eq!(rule.finding.severity, edgeplan_diag::Severity::Warning);
    assert!(rule.finding.help.starts_with("fixed by this plan: "));

    // A trap the plan does not fix keeps its severity.
    let observations = observe_world(&nodes, |a, o| set(a, o, "provider.nlb", attr::SCHEME, "internet-facing"));
    let plan = plan_of(&nodes, &observations);
    let nlb = plan.diagnostics.iter().find(|d| d.finding.code() == "EP207").expect("EP207");
    assert_eq!(nlb.finding.severity, edgeplan_diag::Severity::Error);
    assert!(!nlb.finding.help.starts_with("fixed by this plan"));
}

#[test]
fn lists_are_compared_as_sets() {
    let mut nodes = seed_nodes();
    let (a, b) = ("arn:aws:iam::123456789012:root", "arn:aws:iam::210987654321:root");
    node_mut(&mut nodes, "provider.endpoint_service_permissions")
        .desired
        .insert(attr::ALLOWED_PRINCIPALS, Expr::lit(vec![b, a]));
    let with_principals = |principals: Vec<&'static str>| {
        observe_world(&nodes, move |addr, o| {
            set(addr, o, "provider.endpoint_service_permissions", attr::ALLOWED_PRINCIPALS, principals.clone());
        })
    };
    // AWS returns the same principals in its own order: no change.
    let plan = plan_of(&nodes, &with_principals(vec![a, b]));
    assert_eq!(action_of(&plan, "provider.endpoint_service_permissions"), Action::NoOp);
    // One principal missing: a real change.
    let plan = plan_of(&nodes, &with_principals(vec![a]));
    assert_eq!(action_of(&plan, "provider.endpoint_service_permissions"), Action::Update);
    // One too many is a change too: a set, not a subset.
    let plan = plan_of(&nodes, &with_principals(vec![a, b, "arn:aws:iam::999999999999:root"]));
    assert_eq!(action_of(&plan, "provider.endpoint_service_permissions"), Action::Update);
}

#[test]
fn maps_compared_as_subsets_ignore_entries_of_other_owners() {
    let nodes = seed_nodes();
    // The converged subnet already carries an AWS `Name` tag the spec does not set.
    let subnet = common::matching(&nodes, "provider.nlb_subnet");
    let tags = subnet.get(attr::TAGS).map(Value::string_map).unwrap_or_default();
    assert!(tags.contains_key("Name"), "{tags:?}");
    let plan = plan_of(
        &nodes,
        &observe_world(&nodes, |a, o| {
            if a.as_str() == "provider.nlb_subnet"
                && let Some(live) = live_of(o)
            {
                let mut tags = live.get(attr::TAGS).map(Value::string_map).unwrap_or_default();
                tags.insert("team".into(), "platform".into());
                live.set(attr::TAGS, tags);
            }
        }),
    );
    assert_eq!(action_of(&plan, "provider.nlb_subnet"), Action::NoOp);

    // A desired tag missing, or with another value, is drift (in place: tags are not immutable).
    for edit in [None, Some("owned")] {
        let plan = plan_of(
            &nodes,
            &observe_world(&nodes, |a, o| {
                if a.as_str() == "provider.nlb_subnet"
                    && let Some(live) = live_of(o)
                {
                    let mut tags = live.get(attr::TAGS).map(Value::string_map).unwrap_or_default();
                    match edit {
                        None => tags.remove("kubernetes.io/role/internal-elb"),
                        Some(value) => tags.insert("kubernetes.io/cluster/my-cluster".into(), value.into()),
                    };
                    live.set(attr::TAGS, tags);
                }
            }),
        );
        assert_eq!(action_of(&plan, "provider.nlb_subnet"), Action::Update, "{edit:?}");
        assert_eq!(reasons_of(&plan, "provider.nlb_subnet"), [drift("tags")], "{edit:?}");
    }

    // The Service's annotations: another tool's are no drift, a missing one of the spec's is.
    let with_annotations = |edit: fn(&mut BTreeMap<String, String>)| {
        plan_of(
            &nodes,
            &observe_world(&nodes, move |a, o| {
                edit_manifest(a, o, "provider.tunnel_service", "Service", |m| edit(&mut m.metadata_mut().annotations));
            }),
        )
    };
    let plan = with_annotations(|annotations| {
        annotations.insert("meta.helm.sh/release-name".into(), "portainer".into());
        annotations.insert("service.beta.kubernetes.io/aws-load-balancer-name".into(), "edge".into());
    });
    assert_eq!(
        action_of(&plan, "provider.tunnel_service"),
        Action::NoOp,
        "{:?}",
        reasons_of(&plan, "provider.tunnel_service")
    );
    let plan = with_annotations(|annotations| {
        annotations.remove("service.beta.kubernetes.io/aws-load-balancer-scheme");
    });
    assert_eq!(reasons_of(&plan, "provider.tunnel_service"), [drift("annotations")]);
}

#[test]
fn portainer_restarts_unless_its_pods_carry_the_current_settings_checksum() {
    let nodes = seed_nodes();
    let with_deployment = |checksum: Option<&'static str>| {
        observe_world(&nodes, move |a, o| {
            if a.as_str() == "provider.portainer_restart"
                && let Some(live) = live_of(o)
            {
                live.manifests = vec![portainer_deployment(checksum)];
            }
        })
    };
    // Never restarted by edgeplan: nothing says which settings the pods run with, so they roll
    // once (a crash between a settings change and its restart must never lose the restart).
    let plan = plan_of(&nodes, &with_deployment(None));
    assert_eq!(action_of(&plan, "provider.portainer_restart"), Action::Update);
    let restart = plan.change(&Address::provider("portainer_restart")).unwrap();
    assert_eq!(restart.before["settings_checksum"], Shown::Known(Value::Null));

    // Restarted with the current settings: nothing to do.
    let current = edgeplan_plan::facts::settings_checksum(Some(true));
    let stamped: &'static str = Box::leak(current.clone().into_boxed_str());
    let plan = plan_of(&nodes, &with_deployment(Some(stamped)));
    assert_eq!(action_of(&plan, "provider.portainer_restart"), Action::NoOp);

    // Restarted with other settings: the pods must roll.
    let plan = plan_of(&nodes, &with_deployment(Some("sha256:0000000000000000")));
    assert_eq!(action_of(&plan, "provider.portainer_restart"), Action::Update);
    assert_eq!(reasons_of(&plan, "provider.portainer_restart"), [drift("settings_checksum")]);
    let restart = plan.change(&Address::provider("portainer_restart")).unwrap();
    let current = edgeplan_plan::facts::settings_checksum(Some(true));
    assert_eq!(restart.after["settings_checksum"], Shown::Known(Value::Str(current)));
}

fn orphan(address: &str, kind: NodeKind) -> Node {
    let scope =
        edgeplan_model::Scope::Aws { account: "123456789012".into(), region: "eu-west-1".into(), profile: None };
    Node { address: Address::from_text(address), kind, scope, identity: Identity::Owned, desired: BTreeMap::new() }
}

#[test]
fn owned_objects_the_spec_no_longer_names_are_deleted() {
    let nodes = seed_nodes();
    let mut observations = observe_world(&nodes, |_, _| {});
    let gone = orphan("consumer.staging.vpce", NodeKind::Vpce);
    let vanished = orphan("consumer.staging.vpce_security_group", NodeKind::VpceSecurityGroup);
    let unreachable = orphan("consumer.staging.agent", NodeKind::AgentObjects);
    let mut object = LiveObject::new("vpce-0old000000000001").with(attr::STATE, "available");
    object.owner = Some(Ownership::new(STACK, &gone.address));
    observations.push(Observation { address: gone.address.clone(), result: Ok(Observed::Present(object)) });
    observations.push(Observation { address: vanished.address.clone(), result: Ok(Observed::Absent) });
    observations.push(Observation {
        address: unreachable.address.clone(),
        result: Err(BackendError::Transport { message: "no such context".into(), retryable: false }),
    });

    let plan = decide(STACK, &refs(&nodes), &[&gone, &vanished, &unreachable], &observations);
    // The spec's nodes are decided as before, and come first.
    assert!(plan.changes[..nodes.len()].iter().all(|c| !c.action.mutates()));
    assert_eq!(plan.changes.len(), nodes.len() + 3);

    let change = plan.change(&gone.address).unwrap();
    assert_eq!((change.action, change.kind), (Action::Delete, NodeKind::Vpce));
    assert_eq!(change.reasons, [Reason::RemovedFromSpec]);
    assert_eq!(change.reasons[0].code(), "removed-from-spec");
    assert_eq!(change.before["id"], Shown::Known(Value::str("vpce-0old000000000001")));
    assert!(change.after.is_empty());
    assert_ne!(change.observed_fingerprint, "unobserved");

    let change = plan.change(&vanished.address).unwrap();
    assert_eq!((change.action, &change.reasons[..]), (Action::NoOp, &[Reason::NotFound][..]));
    let change = plan.change(&unreachable.address).unwrap();
    assert_eq!((change.action, &change.reasons[..]), (Action::Read, &[Reason::Unobservable][..]));

    let summary = plan.summary();
    assert_eq!((summary.delete, summary.has_changes()), (1, true));
}

#[test]
fn an_environment_without_an_edge_id_proposes_one_to_the_agent() {
    let nodes = seed_nodes();
    let observations = observe_world(&nodes, |a, o| set(a, o, "consumer.prod.environment", attr::EDGE_ID, ""));
    let plan = plan_of(&nodes, &observations);
    let proposed = edgeplan_plan::facts::proposed_edge_id(STACK, "consumer.prod.environment", 3);
    // The agent runs with Portainer's recorded EdgeID; the environment now has none, so the
    // agent is given the proposed one.
    let agent = plan.change(&Address::consumer("prod", "agent")).unwrap();
    assert_eq!(agent.after["EDGE_ID"], Shown::Known(Value::Str(proposed)));
    assert_eq!(agent.before["EDGE_ID"], Shown::Known(Value::str(common::EDGE_ID)));
    assert_eq!(agent.reasons, [drift("EDGE_ID")]);
}

#[test]
fn converged_world_helpers_agree_with_the_spec() {
    // Guard for the fixtures: every node of the seed has an object, and the raw objects of
    // Kubernetes nodes are live objects (manifests), not attributes.
    let nodes = seed_nodes();
    let world = converged(&nodes);
    assert_eq!(world.len(), nodes.len());
    for kind in [NodeKind::TunnelService, NodeKind::PortainerRestart, NodeKind::AgentObjects] {
        let node = nodes.iter().find(|n| n.kind == kind).unwrap();
        assert!(!world[&node.address].manifests.is_empty(), "{kind}");
    }
}

#[test]
fn extra_env_is_compared_as_a_subset_of_the_agents_literal_env() {
    // `agent.env` may override a variable of Portainer's manifest that edgeplan does not
    // manage (LOG_LEVEL): deployed as asked, it is no drift, on every run.
    let mut nodes = seed_nodes();
    let extra = BTreeMap::from([
        ("LOG_LEVEL".to_string(), "DEBUG".to_string()),
        ("HTTPS_PROXY".to_string(), "http://proxy:3128".to_string()),
    ]);
    node_mut(&mut nodes, "consumer.prod.agent").desired.insert(attr::EXTRA_ENV, Expr::lit(extra));
    let plan = plan_of(&nodes, &observe_world(&nodes, |_, _| {}));
    assert_eq!(action_of(&plan, "consumer.prod.agent"), Action::NoOp, "{:?}", reasons_of(&plan, "consumer.prod.agent"));

    // Someone set LOG_LEVEL back by hand: drift.
    let observations = observe_world(&nodes, |a, o| {
        edit_manifest(a, o, "consumer.prod.agent", "Deployment", |m| {
            if let Manifest::Deployment { spec, .. } = m
                && let Some(pod) = &mut spec.template.spec
            {
                for var in &mut pod.containers[0].env {
                    if var.name == "LOG_LEVEL" {
                        var.source = edgeplan_model::manifest::EnvSource::Value("INFO".into());
                    }
                }
            }
        });
    });
    let plan = plan_of(&nodes, &observations);
    assert_eq!(reasons_of(&plan, "consumer.prod.agent"), [drift("extra_env")]);
}

#[test]
fn a_sensitive_attribute_reported_as_plain_text_is_never_shown() {
    let nodes = seed_nodes();
    let observations = observe_world(&nodes, |a, o| {
        common::set(a, o, "consumer.prod.agent_key", attr::PORTAINER_KEY, "plain-text-key");
    });
    let plan = plan_of(&nodes, &observations);
    let key = plan.change(&Address::consumer("prod", "agent_key")).unwrap();
    let everything = format!("{:?}{:?}", key.before, key.after);
    assert!(!everything.contains("plain-text-key"), "{everything}");
    assert!(matches!(&key.before["portainer_key"], Shown::Sensitive(digest) if digest.starts_with("sha256:")));
}
