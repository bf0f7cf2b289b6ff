//! Test helpers: the example worlds under an engine session, driven as a user would (plan,
//! then apply some or all of it), with the few direct calls a test needs (one operation with
//! chosen attributes, the virtual clock asked to move, the world settled or edited by hand).
//!
//! Everything goes through the engine's router, so observations carry the facts the engine
//! derives (missing IAM actions, IGW routes, key validity, the agent's state from its logs)
//! exactly as a plan sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use edgeplan_engine::{ApplyOptions, ApplyReport, NoProgress, Planned, Session, Stack};
use edgeplan_model::attr::{Attr, field};
use edgeplan_model::{Action, Address, BackendError, Expr, LiveObject, Node, Observed, Role, Value};
use edgeplan_sim::{Settled, SimWorld, World};
use edgeplan_testkit::{fleet_stack, run, seed_stack, session, sim, world};

pub(crate) const SEED_WORLD_FILE: &str = "testdata/worlds/seed.yaml";
pub(crate) const FLEET_WORLD_FILE: &str = "testdata/worlds/fleet.yaml";
pub(crate) const SEED_WORLD: &str = include_str!("../../../../testdata/worlds/seed.yaml");
pub(crate) const FLEET_WORLD: &str = include_str!("../../../../testdata/worlds/fleet.yaml");

/// The seed's account and region (provider and consumer share them).
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const PARTNER_ACCOUNT: &str = "210987654321";
pub(crate) const REGION: &str = "eu-west-1";
pub(crate) const PORTAINER_URL: &str = "https://portainer.example.com";

/// The provider's private subnet for the NLB: the subnet, its own route table, the association.
pub(crate) const PRIVATE_SUBNET: [&str; 3] =
    ["provider.nlb_subnet", "provider.nlb_route_table", "provider.nlb_route_table_association"];

/// A simulated world and an engine session over it.
pub(crate) struct Sim {
    pub(crate) world: Arc<SimWorld>,
    pub(crate) session: Session,
}

pub(crate) fn seed() -> Sim {
    over(seed_stack(), world(SEED_WORLD_FILE))
}

pub(crate) fn fleet() -> Sim {
    over(fleet_stack(), world(FLEET_WORLD_FILE))
}

pub(crate) fn over(stack: Stack, world: World) -> Sim {
    let world = sim(world);
    let session = session(stack, &world);
    Sim { world, session }
}

/// `stack` with the literal `attribute` of the node at `address` replaced by `value` (a spec
/// edited by its user).
pub(crate) fn with_literal(mut stack: Stack, address: &str, attribute: Attr, value: Value) -> Stack {
    let mut nodes: Vec<Node> = stack.graph.iter().map(|(_, n)| n.clone()).collect();
    let node = nodes.iter_mut().find(|n| n.address.as_str() == address).unwrap_or_else(|| panic!("no node {address}"));
    node.desired.insert(attribute, Expr::lit(value));
    stack.graph = edgeplan_model::resource_graph(nodes).expect("still a graph");
    stack
}

/// `CODE address` of every diagnostic.
pub(crate) fn codes(planned: &Planned) -> Vec<String> {
    planned.plan.diagnostics.iter().map(|d| format!("{} {}", d.finding.code(), d.address)).collect()
}

/// The message of the one diagnostic `code` on `address`.
pub(crate) fn message(planned: &Planned, code: &str, address: &str) -> String {
    let found: Vec<&str> = planned
        .plan
        .diagnostics
        .iter()
        .filter(|d| d.finding.code() == code && d.address.as_str() == address)
        .map(|d| d.finding.message.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{code} on {address}: {:#?}", codes(planned));
    found[0].to_string()
}

pub(crate) fn failures(report: &ApplyReport) -> Vec<String> {
    report.failures().map(|(address, error)| format!("{address}: {error}")).collect()
}

/// Health of the NLB's targets: `(target, port, state, reason)`.
pub(crate) type Health = (String, i64, String, Value);

impl Sim {
    pub(crate) fn node(&self, address: &str) -> &Node {
        self.session
            .stack
            .graph
            .iter()
            .find(|(a, _)| a.as_str() == address)
            .map(|(_, n)| n)
            .unwrap_or_else(|| panic!("no node {address}"))
    }

    /// Every node of the spec observed through the engine, by address.
    pub(crate) fn observe_all(&self) -> BTreeMap<String, Result<Observed, BackendError>> {
        let nodes = self.session.stack.nodes();
        run(&self.session, self.session.router.observe_all(&nodes))
            .into_iter()
            .map(|o| (o.address.to_string(), o.result))
            .collect()
    }

    pub(crate) fn observe(&self, address: &str) -> Result<Observed, BackendError> {
        self.observe_all().remove(address).unwrap_or_else(|| panic!("no node {address}"))
    }

    /// The live object at `address`, which must exist.
    pub(crate) fn live(&self, address: &str) -> LiveObject {
        match self.observe(address) {
            Ok(Observed::Present(live)) => live,
            other => panic!("{address}: expected a live object, got {other:?}"),
        }
    }

    pub(crate) fn absent(&self, address: &str) -> bool {
        matches!(self.observe(address), Ok(Observed::Absent))
    }

    pub(crate) fn text(&self, address: &str, attribute: Attr) -> Option<String> {
        self.live(address).text(attribute).map(str::to_string)
    }

    pub(crate) fn plan(&self) -> Planned {
        run(&self.session, self.session.plan())
    }

    /// The action the plan decides for `address` now.
    pub(crate) fn planned_action(&self, address: &str) -> Action {
        let planned = self.plan();
        planned.plan.change(&Address::from_text(address)).unwrap_or_else(|| panic!("no change for {address}")).action
    }

    /// Plan, then apply only `addresses` (`--target`), with the executor's waits.
    pub(crate) fn try_apply(&self, addresses: &[&str]) -> ApplyReport {
        let only: BTreeSet<Address> = addresses.iter().map(|a| Address::from_text(a)).collect();
        for address in &only {
            self.node(address.as_str());
        }
        run(&self.session, async {
            let planned = self.session.plan().await;
            self.session
                .apply(&planned, Some(&only), &ApplyOptions::default(), &NoProgress, None, false)
                .await
                .expect("no lock to lose")
        })
    }

    /// [`Sim::try_apply`], which must succeed.
    pub(crate) fn apply(&self, addresses: &[&str]) {
        let report = self.try_apply(addresses);
        assert!(report.succeeded(), "applying {addresses:?}: {:#?}", failures(&report));
    }

    /// Apply every provider node, waits included: the NLB active, its targets healthy.
    pub(crate) fn apply_provider(&self) {
        let provider = self.addresses(|a| a.starts_with("provider."));
        self.apply(&provider.iter().map(String::as_str).collect::<Vec<_>>());
    }

    pub(crate) fn addresses(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.session.stack.nodes().iter().map(|n| n.address.to_string()).filter(|a| keep(a)).collect()
    }

    /// The node's desired attributes as a backend receives them: literals as written, references
    /// from what is observed now (an upstream that does not exist leaves its attribute out).
    pub(crate) fn resolved(&self, address: &str) -> BTreeMap<Attr, Value> {
        let node = self.node(address);
        let observed = self.observe_all();
        let decl = node.kind.decl();
        node.desired
            .iter()
            .filter(|(attribute, _)| decl.desired_decl(**attribute).is_some_and(|d| d.role != Role::Ordering))
            .filter_map(|(attribute, expr)| match expr {
                Expr::Lit(value) => Some((*attribute, value.clone())),
                Expr::Ref(reference) => match observed.get(reference.node.as_str()) {
                    Some(Ok(Observed::Present(live))) => {
                        live.get(reference.output).filter(|v| **v != Value::Null).map(|v| (*attribute, v.clone()))
                    }
                    _ => None,
                },
            })
            .collect()
    }

    /// One operation through the engine's router (it renders manifests and computes the client
    /// token as apply does), with the resolved attributes changed by `edit`, acting on the object
    /// as observed now. No plan and no waits: what a retried or hand-made call does.
    pub(crate) fn execute(
        &self,
        address: &str,
        action: Action,
        edit: impl FnOnce(&mut BTreeMap<Attr, Value>),
    ) -> Result<Observed, BackendError> {
        let mut attributes = self.resolved(address);
        edit(&mut attributes);
        let live = self.observe(address).ok().and_then(|o| o.live().cloned());
        run(&self.session, self.session.router.execute(self.node(address), action, attributes, live))
    }

    /// Let `seconds` pass on the virtual clock the engine waits on (a user waiting).
    pub(crate) fn sleep(&self, seconds: u64) {
        run(&self.session, self.session.clock().sleep(Duration::from_secs(seconds)));
    }

    /// The world's time.
    pub(crate) fn now(&self) -> u64 {
        self.world.snapshot().now
    }

    /// Let every pending transition happen.
    pub(crate) fn settle(&self) -> Settled {
        let settled = self.world.run_until_settled();
        assert!(settled.settled, "the world never settled: {:#?}", self.world.snapshot().pending);
        settled
    }

    /// The waits the world's history reports for events whose message contains `part`.
    pub(crate) fn waited(&self, part: &str) -> Vec<u64> {
        self.world.snapshot().history.iter().filter(|e| e.message.contains(part)).filter_map(|e| e.waited).collect()
    }

    /// The NLB's target health, as `DescribeTargetHealth` reports it through the NLB node.
    pub(crate) fn health(&self) -> Vec<Health> {
        let nlb = self.live("provider.nlb");
        nlb.get(edgeplan_model::attr::TARGET_HEALTH)
            .map(Value::as_list)
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let t = t.as_map().expect("a target is a map");
                (
                    t[field::TARGET].as_str().expect("target").to_string(),
                    t[field::PORT].as_int().expect("port"),
                    t[field::STATE].as_str().expect("state").to_string(),
                    t[field::REASON].clone(),
                )
            })
            .collect()
    }

    /// The one target's `(state, reason)`.
    pub(crate) fn target(&self) -> (String, Value) {
        let health = self.health();
        assert_eq!(health.len(), 1, "{health:?}");
        (health[0].2.clone(), health[0].3.clone())
    }
}

pub(crate) fn s(text: &str) -> Value {
    Value::str(text)
}

pub(crate) fn strings(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| Value::str(*i)).collect())
}
