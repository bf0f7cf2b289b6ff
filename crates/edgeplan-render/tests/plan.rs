//! The plan renderers on plans decided from the example specs and synthetic worlds: full-output
//! snapshots of every format, plus the promises that hold across formats (the same changed
//! addresses everywhere, secrets only in their redacted form, no noise for equal JSON).

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_diag::{Finding, RuleId, SourceFile, Span};
use edgeplan_model::attr::{self, Attr};
use edgeplan_model::{
    Address, Expr, Identity, LiveObject, Node, NodeKind, Observation, Observed, Ownership, Role, Scope, SecretText,
    Value, compile, resource_graph,
};
use edgeplan_plan::{NodeDiagnostic, Plan, Reason, Shown, decide, facts};
use edgeplan_render::plan::{self, RenderContext};
use insta::assert_snapshot;

const SEED: &str = include_str!("../../../specs/seed.yaml");
const FLEET: &str = include_str!("../../../specs/fleet.yaml");
const POLICY: &str = include_str!("../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");

/// A plaintext secret deployed in live state: it must never reach any output.
const PLAINTEXT_SECRET: &str = "hunter2-plaintext-agent-secret";
/// A chisel server fingerprint in the shape Portainer issues.
const SERVER_FINGERPRINT: &str = "SHF+e25zLvC20boxYUsDHmLHWlyQt57LCHls6hSeJjg=";

/// A spec compiled into nodes in the resource graph's order, with the graph's edges.
struct Compiled {
    source: SourceFile,
    stack: String,
    nodes: Vec<Node>,
    edges: Vec<(Address, Address)>,
}

fn compiled(path: &str, text: &str) -> Compiled {
    let source = SourceFile::new(path, text);
    let spec = edgeplan_spec::parse(&source).expect("example spec parses");
    let stack = spec.metadata.name.value.clone();
    let mut nodes = compile(&spec);
    // The engine compares the policy document the spec names by its text, as read from the
    // file; the compiler keeps the path.
    for node in &mut nodes {
        if node.desired.contains_key(&attr::POLICY_DOCUMENT) {
            node.desired.insert(attr::POLICY_DOCUMENT, Expr::lit(POLICY));
        }
    }
    let graph = resource_graph(nodes).expect("example spec compiles to a DAG");
    let nodes = graph.topological_order().into_iter().map(|a| graph.node(a).expect("in graph").clone()).collect();
    let edges = graph.edges().map(|(from, to, _)| (from.clone(), to.clone())).collect();
    Compiled { source, stack, nodes, edges }
}

/// Read the secrets the spec references, as the engine does before deciding: the value of
/// `env:NAME` here is `name`'s text.
fn read_secrets(compiled: &mut Compiled) {
    for node in &mut compiled.nodes {
        for expr in node.desired.values_mut() {
            if let Expr::Lit(Value::SecretRef(reference)) = expr {
                *expr = Expr::lit(Value::Secret(SecretText::new(format!("value-of-{reference}"))));
            }
        }
    }
}

/// Standard-alphabet base64, with or without `=` padding.
fn base64(bytes: &[u8], pad: bool) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    if pad { STANDARD.encode(bytes) } else { STANDARD_NO_PAD.encode(bytes) }
}

/// The EDGE_KEY Portainer issues for an environment: field 2 is its own host and tunnel port.
fn portainer_key(url: &str, endpoint_id: usize) -> String {
    let host = url.trim_start_matches("https://");
    base64(format!("{url}|{host}:30776|{SERVER_FINGERPRINT}|{endpoint_id}").as_bytes(), false)
}

fn vpce_dns(address: &Address) -> String {
    let consumer = address.consumer_name().unwrap_or("provider");
    format!("vpce-0{consumer}-0abc1234.vpce-svc-0def1234567890abc.eu-west-1.vpce.amazonaws.com")
}

/// Desired attributes as the engine resolves them for a request: literals as written,
/// references from the upstream object with its derived facts.
fn resolve(node: &Node, derived: &BTreeMap<Address, LiveObject>) -> BTreeMap<Attr, Value> {
    let decl = node.kind.decl();
    node.desired
        .iter()
        .filter(|(a, _)| decl.desired_decl(**a).is_some_and(|d| d.role != Role::Ordering))
        .map(|(attribute, expr)| {
            let value = match expr {
                Expr::Lit(value) => value.clone(),
                Expr::Ref(reference) => derived[&reference.node].get(reference.output).cloned().unwrap_or(Value::Null),
            };
            (*attribute, value)
        })
        .collect()
}

/// What the backend of `node` reports in a world where everything matches the spec.
fn raw_object(stack: &str, index: usize, node: &Node, resolved: &BTreeMap<Attr, Value>) -> LiveObject {
    let id = format!("id-of-{}", node.address);
    let mut live = LiveObject::new(id.as_str());
    live.owner = Some(Ownership::new(stack, &node.address));
    live.attributes.extend(resolved.iter().map(|(a, v)| (*a, v.clone())));
    let text = |a: Attr| resolved.get(&a).and_then(Value::as_str).unwrap_or_default().to_string();
    match node.kind {
        NodeKind::LbControllerPolicy => {
            live.set(attr::POLICY_ARN, id.as_str());
            live.set(attr::DEFAULT_VERSION, "v1");
            live.set(attr::VERSIONS, vec!["v1"]);
        }
        NodeKind::NlbSubnet => {
            live.set(
                attr::ROUTES,
                Value::List(vec![Value::from(BTreeMap::from([
                    ("destination".to_string(), "10.0.0.0/8".to_string()),
                    ("target".to_string(), "local".to_string()),
                ]))]),
            );
        }
        NodeKind::PortainerRestart => {
            live.set(attr::TUNNEL_PORT, 30776_i64);
            live.set(attr::SELECTOR, BTreeMap::from([("app.kubernetes.io/name".to_string(), "portainer".to_string())]));
        }
        NodeKind::TunnelService => {
            live.set(attr::LOAD_BALANCER_HOSTNAME, "k8s-portaine-tunnel-0123.elb.eu-west-1.amazonaws.com")
        }
        NodeKind::Nlb => {
            live.set(attr::ARN, id.as_str());
            live.set(attr::DNS_NAME, text(attr::HOSTNAME));
            live.set(attr::STATE, "active");
            live.set(attr::AVAILABILITY_ZONE_IDS, vec!["euw1-az3"]);
        }
        NodeKind::EndpointService => {
            live.set(attr::SERVICE_ID, "vpce-svc-0def1234567890abc");
            live.set(attr::SERVICE_NAME, "com.amazonaws.vpce.eu-west-1.vpce-svc-0def1234567890abc");
        }
        NodeKind::ConsumerSubnets => live.set(attr::AVAILABILITY_ZONE_IDS, vec!["euw1-az3"]),
        NodeKind::Vpce => live.set(attr::DNS_NAME, vpce_dns(&node.address)),
        NodeKind::ConnectionAcceptance => live.set(attr::STATE, "available"),
        NodeKind::PortainerEnvironment => {
            live = LiveObject::new(index.to_string());
            live.owner = Some(Ownership::new(stack, &node.address));
            live.set(attr::URL, text(attr::URL));
            live.set(attr::TYPE_ID, 7_i64);
            live.set(attr::EDGE_ID, format!("6d4c1a2b-9e8f-4a7b-b6c5-{index:012}"));
            live.set(attr::EDGE_KEY, Value::Secret(SecretText::new(portainer_key(&text(attr::URL), index))));
        }
        NodeKind::AgentKey => {
            // Computed by the engine: Portainer's key pointed at the endpoint.
            let portainer = resolved.get(&attr::PORTAINER_KEY).and_then(Value::as_secret).expect("Portainer's key");
            let port = resolved.get(&attr::TUNNEL_PORT).and_then(Value::as_int).expect("a port");
            let key = facts::agent_key(portainer, &text(attr::TUNNEL_HOST), u16::try_from(port).expect("a port"))
                .expect("re-pointable");
            live = LiveObject::new(key.fingerprint())
                .with(attr::PORTAINER_KEY, Value::Secret(portainer.clone()))
                .with(attr::TUNNEL_HOST, text(attr::TUNNEL_HOST))
                .with(attr::TUNNEL_PORT, port)
                .with(attr::KEY, Value::Secret(key));
        }
        NodeKind::AgentObjects => {
            // What the agent's key says, as the engine reads it from the agent's Secret.
            let key = resolved.get(&attr::AGENT_EDGE_KEY).and_then(Value::as_secret).map(|k| k.expose().to_string());
            facts::describe_key(&mut live, key.as_deref());
        }
        _ => {}
    }
    live
}

/// The raw objects of a world where everything matches the spec, in node order.
fn converged(compiled: &Compiled) -> BTreeMap<Address, LiveObject> {
    let mut raw = BTreeMap::new();
    let mut derived: BTreeMap<Address, LiveObject> = BTreeMap::new();
    for (index, node) in compiled.nodes.iter().enumerate() {
        let object = raw_object(&compiled.stack, index, node, &resolve(node, &derived));
        derived.insert(node.address.clone(), derive(&compiled.stack, node, object.clone()));
        raw.insert(node.address.clone(), object);
    }
    raw
}

fn derive(stack: &str, node: &Node, mut live: LiveObject) -> LiveObject {
    facts::derive(stack, node, &mut live);
    live
}

/// Observations as the engine makes them: present objects with their derived facts.
fn observe(compiled: &Compiled, observed: impl Fn(&Node) -> Observed) -> Vec<Observation> {
    compiled
        .nodes
        .iter()
        .map(|node| {
            let result = match observed(node) {
                Observed::Present(live) => Observed::Present(derive(&compiled.stack, node, live)),
                Observed::Absent => Observed::Absent,
            };
            Observation { address: node.address.clone(), result: Ok(result) }
        })
        .collect()
}

fn decided(compiled: &Compiled, observations: &[Observation]) -> Plan {
    let nodes: Vec<&Node> = compiled.nodes.iter().collect();
    decide(&compiled.stack, &nodes, &[], observations)
}

fn context(compiled: &Compiled) -> RenderContext {
    RenderContext { source: Some(compiled.source.clone()), edges: compiled.edges.clone(), width: 100 }
}

/// The span of the first `needle` after `anchor` in the spec.
fn span_of(text: &str, anchor: &str, needle: &str) -> Span {
    let base = text.find(anchor).expect("anchor in spec");
    let start = base + text[base..].find(needle).expect("needle in spec");
    Span::new(start, start + needle.len())
}

fn diagnostic(address: Address, finding: Finding) -> NodeDiagnostic {
    NodeDiagnostic { address, finding }
}

/// The policy document as IAM returns it: compact, and (optionally) without one action.
fn live_policy(without: Option<&str>) -> String {
    let mut document: serde_json::Value = serde_json::from_str(POLICY).expect("policy is JSON");
    if let Some(action) = without {
        for statement in document["Statement"].as_array_mut().expect("statements") {
            if let Some(actions) = statement["Action"].as_array_mut() {
                actions.retain(|a| a != action);
            }
        }
    }
    serde_json::to_string(&document).expect("serializes")
}

/// The agent key the seed's agent runs with after trap 5: canonical text re-encoded with
/// `=` padding.
fn mangled_key() -> String {
    let text = format!(
        "https://portainer.example.com|vpce-0prod-0abc1234.vpce-svc-0def1234567890abc.eu-west-1.vpce.amazonaws.com:8000|{SERVER_FINGERPRINT}|1"
    );
    base64(text.as_bytes(), true)
}

// --- the scenarios ------------------------------------------------------------------------------

fn seed_empty() -> (Plan, RenderContext) {
    let seed = compiled("specs/seed.yaml", SEED);
    let plan = decided(&seed, &observe(&seed, |_| Observed::Absent));
    (plan, context(&seed))
}

fn seed_converged() -> (Plan, RenderContext) {
    let seed = compiled("specs/seed.yaml", SEED);
    let world = converged(&seed);
    let plan = decided(&seed, &observe(&seed, |node| Observed::Present(world[&node.address].clone())));
    (plan, context(&seed))
}

/// The seed's traps as drift: the ALB-era policy (one action short), a subnet with the wrong
/// CIDR, no security group rule, Edge Compute off (the restart follows), a padded agent key
/// and a connection pending acceptance. The backends report raw facts (a policy document, a
/// key, a state); the engine derives what the live rules read (`missing_actions`,
/// `edge_key_valid`, `accepted`…).
fn seed_drift() -> (Plan, RenderContext) {
    let seed = compiled("specs/seed.yaml", SEED);
    let world = converged(&seed);
    let observations = observe(&seed, |node| {
        if node.address == Address::provider("cluster_sg_rule") {
            return Observed::Absent;
        }
        let mut live = world[&node.address].clone();
        match node.address.as_str() {
            "provider.lb_controller_policy" => {
                live.set(attr::POLICY_DOCUMENT, live_policy(Some("ec2:DescribeRouteTables")));
            }
            "provider.nlb_subnet" => live.set(attr::CIDR_BLOCK, "192.168.9.0/24"),
            "provider.edge_compute" => live.set(attr::ENABLE_EDGE_COMPUTE, false),
            "consumer.prod.agent" => {
                live.set(attr::AGENT_EDGE_KEY, Value::Secret(SecretText::new(mangled_key())));
                facts::describe_key(&mut live, Some(&mangled_key()));
            }
            "consumer.prod.connection_acceptance" => live.set(attr::STATE, "pendingAcceptance"),
            _ => {}
        }
        Observed::Present(live)
    });
    let mut plan = decided(&seed, &observations);
    // By hand: a live diagnostic that knows the spec line behind it.
    plan.diagnostics.push(diagnostic(
        Address::provider("tunnel_service"),
        Finding::of(
            RuleId::LiveTargetPortMismatch,
            Some(span_of(SEED, "tunnelPort:", "auto")),
            "the Service targets port 8000; the tunnel server listens on 30776 (--tunnel-port)",
        ),
    ));
    (plan, context(&seed))
}

fn fleet_empty() -> (Plan, RenderContext) {
    let fleet = compiled("specs/fleet.yaml", FLEET);
    let plan = decided(&fleet, &observe(&fleet, |_| Observed::Absent));
    (plan, context(&fleet))
}

/// A consumer the spec no longer names (`staging`): what the stack made for it is found by
/// its ownership and deleted.
fn staging_orphans(stack: &str) -> Vec<(Node, LiveObject)> {
    let scope = Scope::Aws { account: "123456789012".into(), region: "eu-west-1".into(), profile: None };
    [(NodeKind::Vpce, "vpce-0staging000000001"), (NodeKind::VpceSecurityGroup, "sg-0staging000000002")]
        .into_iter()
        .map(|(kind, id)| {
            let address = Address::consumer("staging", kind.address_name());
            let mut live = LiveObject::new(id);
            live.owner = Some(Ownership::new(stack, &address));
            let node =
                Node { address, kind, scope: scope.clone(), identity: Identity::Owned, desired: BTreeMap::new() };
            (node, live)
        })
        .collect()
}

/// A fleet where `partner` is new: its nodes are absent (but for the subnets the spec names)
/// and the endpoint service must allow its account. The live policy is the spec's, reformatted by IAM (not a change) and at its
/// version limit; `analytics` runs with another AGENT_SECRET than the one read from the
/// environment (shown by fingerprints only), and `staging` was removed from the spec.
fn fleet_drift() -> (Plan, RenderContext) {
    let mut fleet = compiled("specs/fleet.yaml", FLEET);
    read_secrets(&mut fleet);
    let world = converged(&fleet);
    let mut observations = observe(&fleet, |node| {
        // The new consumer's subnets exist (the spec names them by ID); nothing else of it.
        if node.address.as_str().starts_with("consumer.partner.") && node.kind != NodeKind::ConsumerSubnets {
            return Observed::Absent;
        }
        let mut live = world[&node.address].clone();
        match node.address.as_str() {
            "provider.lb_controller_policy" => {
                live.set(attr::POLICY_DOCUMENT, live_policy(None));
                live.set(attr::VERSIONS, vec!["v1", "v2", "v3", "v4", "v5"]);
                live.set(attr::DEFAULT_VERSION, "v5");
            }
            "provider.endpoint_service_permissions" => {
                live.set(attr::ALLOWED_PRINCIPALS, vec!["arn:aws:iam::123456789012:root"]);
            }
            "consumer.analytics.agent" => {
                live.set(attr::AGENT_SECRET, Value::Secret(SecretText::new(PLAINTEXT_SECRET)));
            }
            _ => {}
        }
        Observed::Present(live)
    });
    let orphans = staging_orphans(&fleet.stack);
    for (node, live) in &orphans {
        let result = Ok(Observed::Present(derive(&fleet.stack, node, live.clone())));
        observations.push(Observation { address: node.address.clone(), result });
    }
    let nodes: Vec<&Node> = fleet.nodes.iter().collect();
    let orphan_nodes: Vec<&Node> = orphans.iter().map(|(node, _)| node).collect();
    let plan = decide(&fleet.stack, &nodes, &orphan_nodes, &observations);
    (plan, context(&fleet))
}

type Scenario = fn() -> (Plan, RenderContext);

const SCENARIOS: [(&str, Scenario); 5] = [
    ("seed_empty", seed_empty),
    ("seed_converged", seed_converged),
    ("seed_drift", seed_drift),
    ("fleet_empty", fleet_empty),
    ("fleet_drift", fleet_drift),
];

// --- snapshots ----------------------------------------------------------------------------------

#[test]
fn human_snapshots() {
    for (name, scenario) in SCENARIOS {
        let (plan, ctx) = scenario();
        assert_snapshot!(format!("{name}_human"), plan::human(&plan, &ctx));
    }
}

#[test]
fn json_snapshots() {
    for (name, scenario) in SCENARIOS {
        let (plan, ctx) = scenario();
        assert_snapshot!(format!("{name}_json"), plan::json(&plan, &ctx));
    }
}

#[test]
fn markdown_snapshots() {
    for (name, scenario) in SCENARIOS {
        let (plan, ctx) = scenario();
        assert_snapshot!(format!("{name}_markdown"), plan::markdown(&plan, &ctx));
    }
}

// --- promises across formats --------------------------------------------------------------------

const SYMBOLS: [&str; 5] = ["+", "~", "-/+", "<=", "-"];

/// Addresses of the change headers in the human output.
fn human_addresses(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with("      ") && line.contains(") will ") || line.contains(") must be replaced"))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let symbol = words.next()?;
            SYMBOLS.contains(&symbol).then(|| words.next().map(str::to_string))?
        })
        .collect()
}

fn json_addresses(text: &str) -> BTreeSet<String> {
    let document: serde_json::Value = serde_json::from_str(text).expect("JSON plan parses");
    document["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| c["address"].as_str().expect("address").to_string())
        .collect()
}

fn markdown_addresses(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("<summary><code>"))
        .filter_map(|rest| rest.split("</code>").next()?.split(' ').nth(1).map(str::to_string))
        .collect()
}

fn mermaid_nodes(text: &str) -> usize {
    text.lines().filter(|line| line.starts_with("    ") && line.contains("[\"") && line.contains(":::")).count()
}

#[test]
fn every_format_lists_the_same_changes() {
    for (name, scenario) in SCENARIOS {
        let (plan, ctx) = scenario();
        let expected: BTreeSet<String> = plan
            .changes
            .iter()
            .filter(|c| c.action != edgeplan_model::Action::NoOp)
            .map(|c| c.address.to_string())
            .collect();
        let markdown = plan::markdown(&plan, &ctx);
        assert_eq!(human_addresses(&plan::human(&plan, &ctx)), expected, "{name}: human");
        assert_eq!(json_addresses(&plan::json(&plan, &ctx)), expected, "{name}: json");
        assert_eq!(markdown_addresses(&markdown), expected, "{name}: markdown");
        // The graph is drawn only when something changes (not for the NLB read alone).
        let graphed = if plan.summary().has_changes() { expected.len() } else { 0 };
        assert_eq!(mermaid_nodes(&markdown), graphed, "{name}: mermaid");
    }
}

/// Every secret label (`env:NAME`, a `sha256:` fingerprint) the plan holds.
fn secret_labels(plan: &Plan) -> BTreeSet<String> {
    fn nested(value: &Value, labels: &mut BTreeSet<String>) {
        match value {
            Value::SecretRef(reference) => {
                labels.insert(reference.clone());
            }
            Value::List(items) => items.iter().for_each(|v| nested(v, labels)),
            Value::Map(map) => map.values().for_each(|v| nested(v, labels)),
            _ => {}
        }
    }
    let mut labels = BTreeSet::new();
    for change in &plan.changes {
        for shown in change.before.values().chain(change.after.values()) {
            match shown {
                Shown::Sensitive(label) => {
                    labels.insert(label.clone());
                }
                Shown::Known(value) => nested(value, &mut labels),
                Shown::KnownAfterApply => {}
            }
        }
    }
    labels
}

#[test]
fn secrets_appear_only_in_their_redacted_form() {
    let mut seen = BTreeSet::new();
    for (name, scenario) in SCENARIOS {
        let (plan, ctx) = scenario();
        let (human, json, markdown) = (plan::human(&plan, &ctx), plan::json(&plan, &ctx), plan::markdown(&plan, &ctx));
        for text in [&human, &json, &markdown] {
            assert!(!text.contains(PLAINTEXT_SECRET), "{name}: a live secret leaked");
            assert!(!text.contains("value-of-env:"), "{name}: a secret read from the environment leaked");
            // Every EDGE_KEY in these worlds starts with the base64 of `https:`.
            assert!(!text.contains("aHR0cHM6"), "{name}: a key leaked");
            assert!(!text.contains(&mangled_key()[..40]), "{name}: a key leaked");
        }
        for label in secret_labels(&plan) {
            let redacted = format!("(sensitive: {label})");
            for (format, text) in [("human", &human), ("markdown", &markdown)] {
                assert_eq!(text.matches(&label).count(), text.matches(&redacted).count(), "{name} {format}: {label}");
            }
            let in_json = format!("\"ref\": \"{label}\"");
            assert_eq!(json.matches(&label).count(), json.matches(&in_json).count(), "{name} json: {label}");
            if human.contains(&redacted) {
                seen.insert(label);
            }
        }
    }
    // The scenarios do exercise references (secrets not read yet). Which other labels the plan
    // gives (none, or a fingerprint of a key Portainer issued) is the plan's to decide; the
    // renderers print exactly what it gives.
    for label in ["env:AGENT_SECRET", "env:PARTNER_AGENT_SECRET"] {
        assert!(seen.contains(label), "no scenario shows {label}: {seen:?}");
    }
}

#[test]
fn json_redacts_secrets_as_marker_objects() {
    let (plan, ctx) = fleet_drift();
    let document: serde_json::Value = serde_json::from_str(&plan::json(&plan, &ctx)).expect("parses");
    let agent = document["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "consumer.analytics.agent")
        .expect("agent change");
    // Read from the environment and deployed: both compared, and shown, by fingerprint.
    let read = SecretText::new("value-of-env:AGENT_SECRET").fingerprint();
    let deployed = SecretText::new(PLAINTEXT_SECRET).fingerprint();
    assert_eq!(agent["action"], "update");
    assert_eq!(agent["after"]["AGENT_SECRET"], serde_json::json!({"sensitive": true, "ref": read}));
    assert_eq!(agent["before"]["AGENT_SECRET"], serde_json::json!({"sensitive": true, "ref": deployed}));
    assert_eq!(agent["reasons"][0]["field"], "AGENT_SECRET");
    let vpce = document["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "consumer.partner.vpce")
        .expect("vpce change");
    assert_eq!(vpce["after"]["security_group_id"], serde_json::json!({"unknown": true}));
    assert_eq!(vpce["before"], serde_json::json!({}));
}

#[test]
fn a_converged_world_says_no_changes() {
    let (plan, ctx) = seed_converged();
    let human = plan::human(&plan, &ctx);
    assert!(human.starts_with("No changes."), "{human}");
    // Only the NLB, which is always read, is listed.
    assert_eq!(human_addresses(&human), BTreeSet::from(["provider.nlb".to_string()]));
    assert!(plan::markdown(&plan, &ctx).contains("**No changes.**"));
}

#[test]
fn a_policy_that_differs_only_in_formatting_is_not_shown_as_changed() {
    let (plan, ctx) = fleet_drift();
    let human = plan::human(&plan, &ctx);
    let markdown = plan::markdown(&plan, &ctx);
    for text in [&human, &markdown] {
        assert!(!text.contains("policy_document ="), "{text}");
        assert!(!text.contains("\"Statement\""), "no diff of an equal document");
        // decide compares JSON documents normalized, so no change is planned for it at all.
        assert!(!text.contains("policy_document"), "{text}");
    }
}

/// The lines of the human output under one change's header, up to the next header.
fn block_of<'a>(human: &'a str, address: &str) -> Vec<&'a str> {
    let mut lines = human.lines().skip_while(|line| !line.contains(&format!(" {address} (")));
    let header = lines.next().into_iter();
    header.chain(lines.take_while(|line| !line.is_empty())).collect()
}

#[test]
fn a_policy_missing_an_action_shows_exactly_that_line_added() {
    let (plan, ctx) = seed_drift();
    let human = plan::human(&plan, &ctx);
    let block = block_of(&human, "provider.lb_controller_policy");
    let changed: Vec<String> = block
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| l.starts_with("+ ") || l.starts_with("- "))
        .collect();
    // The semantic summary names the action; the (short, so whole) line diff shows its line.
    assert_eq!(changed, ["+ Allow ec2: DescribeRouteTables", "+ \"ec2:DescribeRouteTables\","], "{}", block.join("\n"));
    let trimmed: Vec<&str> = block.iter().map(|l| l.trim_start()).collect();
    assert!(trimmed.contains(&"~ policy_document = IAM policy, 16 statements: 1 action added"), "{trimmed:#?}");
    assert!(trimmed.contains(&"# line diff (JSON, keys sorted):"), "{trimmed:#?}");
    assert!(!trimmed.iter().any(|l| l.starts_with('…')), "a short diff is not cut: {trimmed:#?}");
}

#[test]
fn a_replacement_names_the_field_that_forces_it() {
    let (plan, ctx) = seed_drift();
    let human = plan::human(&plan, &ctx);
    let block = block_of(&human, "provider.nlb_subnet");
    assert!(block[0].starts_with("-/+ provider.nlb_subnet (aws_subnet) must be replaced"), "{block:?}");
    assert!(
        block
            .iter()
            .any(|l| l.trim_start() == "~ cidr_block = \"192.168.9.0/24\" -> \"192.168.0.0/24\" # forces replacement"),
        "{block:#?}"
    );
    assert!(block.iter().any(|l| l.trim_start().starts_with("# (") && l.ends_with("unchanged attributes hidden)")));
}

#[test]
fn edge_compute_is_turned_on_and_portainer_restarted_after_it() {
    let (plan, ctx) = seed_drift();
    let human = plan::human(&plan, &ctx);
    let settings = block_of(&human, "provider.edge_compute");
    assert!(settings.iter().any(|l| l.trim_start() == "~ EnableEdgeComputeFeatures = false -> true"), "{settings:#?}");
    assert!(settings.iter().any(|l| l.contains("warning[EP206]")));
    // Reasons wrap at the context's width: compare them as prose.
    let restart = block_of(&human, "provider.portainer_restart").iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    assert!(restart.contains("depends on provider.edge_compute, which changes in this plan"), "{restart}");
    let position = |address: &str| human.find(&format!(" {address} (")).expect(address);
    assert!(position("provider.edge_compute") < position("provider.portainer_restart"));
}

#[test]
fn diagnostics_carry_lint_keys_address_and_location() {
    const CONTRACT: [&str; 10] =
        ["address", "code", "severity", "message", "help", "file", "line", "column", "end_line", "end_column"];
    let (plan, ctx) = seed_drift();
    let document: serde_json::Value = serde_json::from_str(&plan::json(&plan, &ctx)).expect("parses");
    let diagnostics = document["diagnostics"].as_array().expect("diagnostics");
    let codes: BTreeSet<&str> = diagnostics.iter().filter_map(|d| d["code"].as_str()).collect();
    // The live rules' findings for the seed's traps, and the one added by hand.
    for code in ["EP201", "EP203", "EP205", "EP206", "EP209", "EP210"] {
        assert!(codes.contains(code), "{code} missing: {codes:?}");
    }
    for diagnostic in diagnostics {
        for key in CONTRACT {
            assert!(diagnostic.get(key).is_some(), "{key} missing in {diagnostic}");
        }
    }
    let by_code = |code: &str| diagnostics.iter().find(|d| d["code"] == code).expect(code);
    let port = by_code("EP203");
    assert_eq!(port["address"], "provider.tunnel_service");
    assert_eq!((&port["file"], &port["line"], &port["column"]), (&"specs/seed.yaml".into(), &41.into(), &19.into()));
    assert!(by_code("EP206")["line"].is_null());

    // Without the spec, no location is made up.
    let bare = plan::json(&plan, &RenderContext::default());
    let document: serde_json::Value = serde_json::from_str(&bare).expect("parses");
    for diagnostic in document["diagnostics"].as_array().expect("diagnostics") {
        assert!(diagnostic["file"].is_null() && diagnostic["line"].is_null(), "{diagnostic}");
    }
    assert!(plan::human(&plan, &ctx).contains("--> specs/seed.yaml:41:19"));
    assert!(!plan::human(&plan, &RenderContext::default()).contains("-->"));
}

#[test]
fn the_json_summary_counts_every_change() {
    for (name, scenario) in SCENARIOS {
        let (plan, ctx) = scenario();
        let document: serde_json::Value = serde_json::from_str(&plan::json(&plan, &ctx)).expect("parses");
        assert_eq!(document["format_version"], "1");
        let total: u64 = document["summary"].as_object().expect("summary").values().filter_map(|v| v.as_u64()).sum();
        assert_eq!(total as usize, plan.changes.len(), "{name}");
    }
}

#[test]
fn mermaid_ids_are_sanitised_and_edges_stay_among_changes() {
    let (plan, ctx) = seed_drift();
    let markdown = plan::markdown(&plan, &ctx);
    let mermaid: Vec<&str> =
        markdown.lines().skip_while(|l| *l != "```mermaid").skip(1).take_while(|l| *l != "```").collect();
    let ids: BTreeSet<&str> =
        mermaid.iter().filter_map(|l| l.trim().split('[').next().filter(|_| l.contains("[\""))).collect();
    for id in &ids {
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{id}");
    }
    for edge in mermaid.iter().filter(|l| l.contains(" --> ")) {
        let (from, to) = edge.trim().split_once(" --> ").expect("edge");
        assert!(ids.contains(from) && ids.contains(to), "{edge}");
    }
    assert!(mermaid.iter().any(|l| l.trim() == "provider_edge_compute --> provider_portainer_restart"));
    // Every class a node uses is defined (the drift plan creates, updates and replaces).
    let used: BTreeSet<&str> =
        mermaid.iter().filter_map(|l| l.rsplit_once(":::").map(|(_, class)| class.trim())).collect();
    assert!(["create", "update", "replace"].iter().all(|c| used.contains(c)), "{used:?}");
    for class in used {
        let wanted = format!("classDef {class} ");
        assert!(mermaid.iter().any(|l| l.trim().starts_with(&wanted)), "classDef {class}: {mermaid:#?}");
    }
}

#[test]
fn objects_removed_from_the_spec_are_shown_as_destroyed_with_their_reason() {
    let (plan, ctx) = fleet_drift();
    let human = plan::human(&plan, &ctx);
    assert!(human.starts_with("Plan: 6 to add, 2 to change, 0 to replace, 2 to destroy, 1 to read."), "{human}");
    let block = block_of(&human, "consumer.staging.vpce");
    assert!(block[0].starts_with("  - consumer.staging.vpce (aws_vpc_endpoint) will be destroyed"), "{block:#?}");
    let prose = block.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    assert!(prose.contains("because: removed from the spec: created by this stack"), "{prose}");
    assert!(block.iter().any(|l| l.trim() == "- id = \"vpce-0staging000000001\""), "{block:#?}");

    let document: serde_json::Value = serde_json::from_str(&plan::json(&plan, &ctx)).expect("parses");
    let change = document["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "consumer.staging.vpce_security_group")
        .expect("the orphan's change");
    assert_eq!((&change["action"], &change["reasons"][0]["code"]), (&"delete".into(), &"removed-from-spec".into()));
    assert_eq!(change["before"]["id"], "sg-0staging000000002");

    let markdown = plan::markdown(&plan, &ctx);
    assert!(markdown.contains("<summary><code>- consumer.staging.vpce</code>"), "{markdown}");
    assert!(markdown.lines().any(|l| l.trim().starts_with("classDef delete ")));
}

/// A plan may give a secret's reference (`env:AGENT_SECRET`) or nothing; the renderers print
/// that and nothing derived from the secret, and say in words when the value changes, since
/// both sides may read the same.
#[test]
fn secrets_are_sensitive_with_their_reference_and_say_when_they_change() {
    let (mut plan, ctx) = seed_converged();
    let agent = plan.changes.iter_mut().find(|c| c.address.as_str() == "consumer.prod.agent").expect("the agent");
    agent.action = edgeplan_model::Action::Update;
    agent.reasons =
        ["AGENT_SECRET", "EDGE_KEY", "env"].map(|field| Reason::Drift { field: field.to_string() }).to_vec();
    let reference = Shown::Sensitive("env:AGENT_SECRET".to_string());
    let unnamed = Shown::Sensitive(String::new());
    let nested = |text: &str| {
        Shown::Known(Value::Map(BTreeMap::from([("TOKEN".to_string(), Value::Secret(SecretText::new(text)))])))
    };
    for (field, before, after) in [
        ("AGENT_SECRET", reference.clone(), reference.clone()),
        ("EDGE_KEY", unnamed.clone(), unnamed.clone()),
        ("env", nested(PLAINTEXT_SECRET), nested("another-plaintext")),
    ] {
        agent.before.insert(field.to_string(), before);
        agent.after.insert(field.to_string(), after);
    }
    let human = plan::human(&plan, &ctx);
    let block: Vec<&str> = block_of(&human, "consumer.prod.agent").iter().map(|l| l.trim()).collect();
    for wanted in [
        "~ AGENT_SECRET = (sensitive: env:AGENT_SECRET) # value changes",
        "~ EDGE_KEY     = (sensitive) # value changes",
        "~ env          = { \"TOKEN\" = (sensitive) } # value changes",
    ] {
        assert!(block.contains(&wanted), "{wanted}: {block:#?}");
    }
    let markdown = plan::markdown(&plan, &ctx);
    assert!(markdown.contains("\n~ AGENT_SECRET = (sensitive: env:AGENT_SECRET) # value changes\n"), "{markdown}");
    let json = plan::json(&plan, &ctx);
    for text in [&human, &markdown, &json] {
        for secret in [PLAINTEXT_SECRET, "another-plaintext"] {
            assert!(!text.contains(secret), "a secret leaked");
            assert!(!text.contains(&SecretText::new(secret).fingerprint()), "a digest of a secret leaked");
        }
    }
    let document: serde_json::Value = serde_json::from_str(&json).expect("parses");
    let change =
        document["changes"].as_array().expect("changes").iter().find(|c| c["address"] == "consumer.prod.agent");
    let change = change.expect("the agent");
    let marker = |reference: serde_json::Value| serde_json::json!({"sensitive": true, "ref": reference});
    assert_eq!(change["after"]["AGENT_SECRET"], marker("env:AGENT_SECRET".into()));
    assert_eq!(change["after"]["EDGE_KEY"], marker(serde_json::Value::Null));
    assert_eq!(change["before"]["env"]["TOKEN"], marker(serde_json::Value::Null));
}

/// Lint findings the plan carries are about the spec, not a node: they are a group of their
/// own, located in the spec, in human and markdown; JSON keeps its diagnostic shape.
#[test]
fn spec_findings_are_a_group_of_their_own_with_their_location() {
    let (mut plan, ctx) = seed_empty();
    let span = span_of(SEED, "consumers:", "192.168.0.0/16");
    let message = "consumer `prod` VPC 192.168.0.0/16 overlaps the provider VPC 192.168.0.0/16";
    let finding = Finding::of(RuleId::VpcCidrOverlap, Some(span), message);
    let help = finding.help.clone();
    plan.diagnostics.push(NodeDiagnostic::spec(finding));
    let source = ctx.source.as_ref().expect("the spec");
    let (start, _) = source.range(span);
    let location = format!("specs/seed.yaml:{}:{}", start.line, start.column);
    assert_eq!(location, "specs/seed.yaml:64:15", "the consumer's VPC CIDR");

    let human = plan::human(&plan, &ctx);
    let group: Vec<&str> = human.lines().skip_while(|l| *l != "Spec findings:").take_while(|l| !l.is_empty()).collect();
    let prose = group.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    assert!(group.len() >= 4 && group[1].starts_with("  note[EP115]: "), "{human}");
    assert!(group.contains(&format!("    --> {location}").as_str()), "{group:#?}");
    assert!(prose.contains(message) && prose.contains(&format!("help: {help}")), "{prose}");
    // Before the changes, and not listed as if `spec` were a node.
    assert!(human.find("Spec findings:") < human.find(" will be created"), "{human}");
    assert!(!human.lines().any(|l| l.trim() == "spec"), "{human}");

    let markdown = plan::markdown(&plan, &ctx);
    let item = markdown.lines().skip_while(|l| *l != "**Spec findings**").find(|l| l.starts_with("- "));
    let item = item.unwrap_or_else(|| panic!("no spec findings group: {markdown}"));
    assert!(item.starts_with("- **note** `EP115`: consumer `prod` VPC"), "{item}");
    assert!(item.contains(&format!("(`{location}`)")) && item.contains("<br>help: nothing to do"), "{item}");

    let document: serde_json::Value = serde_json::from_str(&plan::json(&plan, &ctx)).expect("parses");
    let spec = document["diagnostics"].as_array().expect("diagnostics").iter().find(|d| d["address"] == "spec");
    let spec = spec.expect("the spec finding");
    assert_eq!((&spec["code"], &spec["line"], &spec["column"]), (&"EP115".into(), &64.into(), &15.into()));
}
