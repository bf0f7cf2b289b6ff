//! The plan renderers on plans decided from the example specs and synthetic worlds: full-output
//! snapshots of every format, plus the promises that hold across formats (the same changed
//! addresses everywhere, secrets only in their redacted form, no noise for equal JSON).

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_diag::{Finding, RuleId, SourceFile, Span};
use edgeplan_model::{Address, Expr, LiveObject, Node, Observation, Observed, Value, compile, resource_graph};
use edgeplan_plan::{NodeDiagnostic, Plan, Shown, decide};
use edgeplan_render::plan::{self, RenderContext};
use insta::assert_snapshot;
use sha2::{Digest, Sha256};

const SEED: &str = include_str!("../../../specs/seed.yaml");
const FLEET: &str = include_str!("../../../specs/fleet.yaml");
const POLICY: &str = include_str!("../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");

/// A plaintext secret planted in live state: it must never reach any output.
const PLAINTEXT_SECRET: &str = "hunter2-plaintext-agent-secret";

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
    // The plan compares the policy document the spec names by its text, as read from the
    // file; the compiler keeps the path.
    for node in &mut nodes {
        if node.desired.contains_key("policy_document") {
            node.desired.insert("policy_document", Expr::lit(POLICY));
        }
    }
    let graph = resource_graph(nodes).expect("example spec compiles to a DAG");
    let nodes = graph.topological_order().into_iter().map(|a| graph.node(a).expect("in graph").clone()).collect();
    let edges = graph.edges().map(|(from, to, _)| (from.clone(), to.clone())).collect();
    Compiled { source, stack, nodes, edges }
}

/// Secret outputs are reported as fingerprints, never as text, as backends do.
fn secret_output(output: &str) -> bool {
    matches!(output, "key" | "edge_key")
}

fn fingerprint_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Live objects for a world where everything matches the spec; references resolve to the
/// upstream object's outputs.
fn converged(nodes: &[Node]) -> BTreeMap<Address, LiveObject> {
    let mut world: BTreeMap<Address, LiveObject> = BTreeMap::new();
    for node in nodes {
        let attributes: BTreeMap<String, Value> = node
            .desired
            .iter()
            .map(|(field, expr)| {
                let value = match expr {
                    Expr::Lit(value) => value.clone(),
                    Expr::Ref(reference) => world[&reference.node].outputs[reference.output].clone(),
                };
                (field.to_string(), value)
            })
            .collect();
        let outputs = node
            .kind
            .outputs()
            .iter()
            .map(|output| {
                let value = if secret_output(output) {
                    Value::Str(fingerprint_of(&format!("{}.{output}", node.address)))
                } else {
                    attributes.get(*output).cloned().unwrap_or_else(|| Value::Str(format!("{}.{output}", node.address)))
                };
                (output.to_string(), value)
            })
            .collect();
        let live = LiveObject { id: format!("id-of-{}", node.address), attributes, outputs, owned: true };
        world.insert(node.address.clone(), live);
    }
    world
}

fn observe(nodes: &[Node], observed: impl Fn(&Node) -> Observed) -> Vec<Observation> {
    nodes.iter().map(|node| Observation { address: node.address.clone(), result: Ok(observed(node)) }).collect()
}

fn decided(compiled: &Compiled, observations: &[Observation]) -> Plan {
    let nodes: Vec<&Node> = compiled.nodes.iter().collect();
    decide(&compiled.stack, &nodes, observations)
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

// --- the scenarios ------------------------------------------------------------------------------

fn seed_empty() -> (Plan, RenderContext) {
    let seed = compiled("specs/seed.yaml", SEED);
    let plan = decided(&seed, &observe(&seed.nodes, |_| Observed::Absent));
    (plan, context(&seed))
}

fn seed_converged() -> (Plan, RenderContext) {
    let seed = compiled("specs/seed.yaml", SEED);
    let world = converged(&seed.nodes);
    let plan = decided(&seed, &observe(&seed.nodes, |node| Observed::Present(world[&node.address].clone())));
    (plan, context(&seed))
}

/// The seed's traps as drift: the ALB-era policy (one action short), a subnet with the wrong
/// CIDR, no security group rule, Edge Compute off (the restart follows), a mangled agent key
/// and a connection pending acceptance. The live rules see them through the attributes a
/// backend reports (`missing_actions`, `edge_key_valid`, …).
fn seed_drift() -> (Plan, RenderContext) {
    let seed = compiled("specs/seed.yaml", SEED);
    let world = converged(&seed.nodes);
    let observations = observe(&seed.nodes, |node| {
        if node.address == Address::provider("cluster_sg_rule") {
            return Observed::Absent;
        }
        let mut live = world[&node.address].clone();
        let mut set = |field: &str, value: Value| {
            live.attributes.insert(field.into(), value);
        };
        match node.address.as_str() {
            "provider.lb_controller_policy" => {
                set("policy_document", Value::Str(live_policy(Some("ec2:DescribeRouteTables"))));
                set("missing_actions", Value::from(vec!["ec2:DescribeRouteTables"]));
            }
            "provider.nlb_subnet" => set("cidr_block", Value::str("192.168.9.0/24")),
            "provider.edge_compute" => set("EnableEdgeComputeFeatures", Value::Bool(false)),
            "consumer.prod.agent" => {
                set("EDGE_KEY", Value::Str(fingerprint_of("mangled key")));
                set("edge_key_present", Value::Bool(true));
                set("edge_key_valid", Value::Bool(false));
                set("edge_key_agent_error", Value::str("illegal base64 data at input byte 76"));
            }
            "consumer.prod.connection_acceptance" => set("connection_state", Value::str("pendingAcceptance")),
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
    let plan = decided(&fleet, &observe(&fleet.nodes, |_| Observed::Absent));
    (plan, context(&fleet))
}

/// A fleet where `partner` is new: its nodes are absent and the endpoint service must allow
/// its account. The live policy is the spec's, reformatted by IAM (not a change) and at its
/// version limit, and `analytics` runs with a plaintext AGENT_SECRET (never shown).
fn fleet_drift() -> (Plan, RenderContext) {
    let fleet = compiled("specs/fleet.yaml", FLEET);
    let world = converged(&fleet.nodes);
    let observations = observe(&fleet.nodes, |node| {
        if node.address.as_str().starts_with("consumer.partner.") {
            return Observed::Absent;
        }
        let mut live = world[&node.address].clone();
        match node.address.as_str() {
            "provider.lb_controller_policy" => {
                live.attributes.insert("policy_document".into(), Value::Str(live_policy(None)));
                live.attributes.insert("version_count".into(), Value::Int(5));
                live.attributes.insert("oldest_non_default_version".into(), Value::str("v1"));
            }
            "provider.endpoint_service_permissions" => {
                live.attributes
                    .insert("allowed_principals".into(), Value::from(vec!["arn:aws:iam::123456789012:root"]));
            }
            "consumer.analytics.agent" => {
                live.attributes.insert("AGENT_SECRET".into(), Value::str(PLAINTEXT_SECRET));
            }
            _ => {}
        }
        Observed::Present(live)
    });
    let plan = decided(&fleet, &observations);
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
            assert!(!text.contains("mangled key"), "{name}: a live secret leaked");
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
    // The scenarios do exercise references, fingerprints and hidden values.
    for label in ["env:PORTAINER_API_KEY", "env:AGENT_SECRET"] {
        assert!(seen.contains(label), "no scenario shows {label}: {seen:?}");
    }
    assert!(seen.iter().any(|l| l.starts_with("sha256:")), "no scenario shows a fingerprint: {seen:?}");
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
    assert_eq!(agent["after"]["AGENT_SECRET"], serde_json::json!({"sensitive": true, "ref": "env:AGENT_SECRET"}));
    assert_eq!(agent["before"]["AGENT_SECRET"], serde_json::json!({"sensitive": true, "ref": "value hidden"}));
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
    assert_eq!(changed, ["+ \"ec2:DescribeRouteTables\","], "{}", block.join("\n"));
    assert!(block.iter().any(|l| l.trim_start() == "~ policy_document = (JSON, keys sorted)"));
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
    for class in ["create", "update", "replace", "read"] {
        let wanted = format!("classDef {class} ");
        assert!(mermaid.iter().any(|l| l.trim().starts_with(&wanted)), "classDef {class}: {mermaid:#?}");
    }
}
