//! The backend conformance suite: the behaviour every [`Backend`] must show, written once and
//! run against any implementation (the simulator now; aws-sdk-rust against moto, kube-rs
//! against a fake API server, a Portainer REST client against a fake Portainer later).
//!
//! # The harness
//!
//! A backend's test implements [`Harness`]:
//!
//! - [`Harness::fresh`] makes a new, isolated world and a [`Connector`] over it. Every check
//!   runs on a world of its own, so one failure never cascades into the next check.
//! - [`Harness::scopes`] lists, per [`Scope`], the [`Case`]s to create, update and delete, the
//!   [`Probe`]s that must fail with `NotFound`, and where the [`LeaseStore`] keeps its leases
//!   (for the one backend that has one).
//! - Each [`Case`] knows how to plant a *foreign* object in its world (someone else's object
//!   with the case's name or natural key), behind the backend's back: that needs the world
//!   itself (for the simulator, `SimWorld::edit`), which only the harness has.
//!
//! The suite talks to the backend through the [`Backend`] trait only, and builds operations
//! with the engine's own [`edgeplan_engine::router::operation`]: resolved attributes without
//! ordering-only ones, and the object as freshly observed (with
//! [`edgeplan_plan::facts::derive`] applied) as the operation's `live`.
//!
//! # The properties
//!
//! Per case: [`check_create`], [`check_retried_create`], [`check_update_delete`],
//! [`check_list_owned`], [`check_foreign`]. Per scope: [`check_not_found`] for every probe,
//! [`check_leases`] and [`check_batch`] (all cases of the scope side by side). [`run`] runs
//! everything and collects every failure into a [`Report`]; each check is also public and
//! returns `Result<(), String>`, the message naming the case and what was expected vs seen.
//!
//! Objects are created for [`STACK`]; [`OTHER_STACK`] is the other stack whose objects must never
//! show up as [`STACK`]'s. A harness world must hold no object of either stack.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use edgeplan_engine::router;
use edgeplan_model::backend::LeaseRecord;
use edgeplan_model::{
    Action, Address, Attr, Backend, BackendError, BoxFuture, Compare, Connector, Expr, LeaseStore, LiveObject, Node,
    Observed, Operation, OwnedObject, Ownership, Request, Role, Scope, Value,
};
use edgeplan_plan::{facts, manifests};

/// The stack every case is created for.
pub const STACK: &str = "conformance";
/// Another stack: its objects are never the [`STACK`]'s, and [`STACK`]'s never its.
pub const OTHER_STACK: &str = "conformance-other";

pub type Attributes = BTreeMap<Attr, Value>;

/// What a backend's test supplies to run the suite.
pub trait Harness {
    /// The backend's world, as the harness plants objects into it behind the backend's back
    /// (the simulator: `Arc<SimWorld>`; moto: a client of its server).
    type World;

    /// Names the backend in messages (`simulator`, `aws-sdk against moto`).
    fn name(&self) -> String;

    /// A new, isolated world and a connector over it (a new in-memory world; a reset server).
    fn fresh(&self) -> BoxFuture<'_, Fresh<Self::World>>;

    /// What to check, per scope.
    fn scopes(&self) -> Vec<ScopeSuite<Self::World>>;
}

/// A new world and a connector over it, or why not.
pub type Fresh<W> = Result<(W, Arc<dyn Connector>), String>;

/// Everything checked in one scope.
pub struct ScopeSuite<W> {
    pub scope: Scope,
    /// Nodes to create, update and delete; they must be creatable side by side in one world
    /// ([`check_batch`]).
    pub cases: Vec<Case<W>>,
    /// Operations that must fail with `NotFound` (a create whose parent does not exist).
    pub not_found: Vec<Probe>,
    /// Where the scope's [`LeaseStore`] keeps leases and inventories: `Some` exactly for a
    /// backend whose `leases()` is `Some` (a Kubernetes backend), `None` for the others.
    pub leases: Option<LeaseTarget>,
}

/// One node the backend creates, updates and deletes.
pub struct Case<W> {
    /// Names the case in messages (`VpceSecurityGroup`).
    pub name: String,
    /// The node as the compiler makes it: kind, address, scope, identity, desired literals and
    /// references. Its scope must be the suite's.
    pub node: Node,
    /// The attributes of a create, every reference resolved (secrets as `Value::Secret`).
    pub create: Attributes,
    /// An update of the created object.
    pub update: Update,
    /// Whether the API refuses to create the object over a foreign one with the same name or
    /// natural key. `true` (EC2 security group names, overlapping subnet CIDRs, duplicate
    /// security group rules, Portainer environment names): the create must fail with
    /// `BackendError::Conflict` and leave the foreign object as it was, never owned by the
    /// stack. `false` (Kubernetes server-side apply writes over an object of the same name):
    /// the create may succeed, and then what it returns must carry the stack's ownership, or be
    /// refused, and then only as a typed `Conflict` (a field manager holding the fields).
    pub conflict_on_foreign: bool,
    /// Plants the foreign object (see [`Foreign`]).
    pub plant_foreign: Plant<W>,
}

/// Plants, behind the backend's back, someone else's object with a case's name or natural key
/// (for a real-protocol backend, a call of its own client on the fake server: hence a future,
/// which takes what it needs from the world and the [`Foreign`] before it is returned).
pub type Plant<W> = Box<dyn Fn(&W, Foreign<'_>) -> BoxFuture<'static, Result<(), String>>>;

/// What a planted foreign object is.
#[derive(Debug, Clone, Copy)]
pub struct Foreign<'a> {
    /// The stack under test ([`STACK`]): the planted object must not be its, though a natural
    /// key may embed its name (a security group name does).
    pub stack: &'a str,
    /// The address of the case.
    pub address: &'a Address,
    /// The ownership the object carries: none (a hand-made object), or another stack's
    /// ([`OTHER_STACK`], at the case's address).
    pub owner: Option<&'a Ownership>,
}

/// An update of a created object.
pub struct Update {
    /// The attributes of the update, every reference resolved. Literals of the case's node are
    /// replaced by these values for the update and everything after it.
    pub attributes: Attributes,
    /// The attribute the update changes: a compared one of the kind, observed changed after.
    /// An immutable one makes the operation a replace, as the plan decides it.
    pub changes: Attr,
}

/// An operation that must fail with `BackendError::NotFound`.
pub struct Probe {
    pub name: String,
    pub node: Node,
    pub action: Action,
    pub attributes: Attributes,
}

/// Where the lease checks write.
#[derive(Debug, Clone)]
pub struct LeaseTarget {
    pub namespace: String,
    /// The lease's name; the inventory is kept under `<name>-inventory`.
    pub name: String,
}

/// Building cases: what every harness writes its nodes and updates with.
pub mod cases {
    use std::collections::BTreeMap;

    use edgeplan_model::{Address, Attr, Expr, Node, Reference, Value};

    use super::{Attributes, Update};

    /// `node` with `attributes` as literals.
    pub fn lit(mut node: Node, attributes: &Attributes) -> Node {
        for (attribute, value) in attributes {
            node.desired.insert(*attribute, Expr::Lit(value.clone()));
        }
        node
    }

    /// `node` with `attribute` referencing `upstream`'s `output`.
    pub fn reference(mut node: Node, attribute: Attr, upstream: Address, output: Attr) -> Node {
        node.desired.insert(attribute, Expr::Ref(Reference { node: upstream, output }));
        node
    }

    pub fn attrs(pairs: impl IntoIterator<Item = (Attr, Value)>) -> Attributes {
        pairs.into_iter().collect()
    }

    /// A string map value (tags, labels, annotations).
    pub fn map(pairs: &[(&str, &str)]) -> Value {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Value::from(map)
    }

    pub fn strings(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::str(*s)).collect())
    }

    /// `attributes` with `changes` set to `value`.
    pub fn changed(attributes: &Attributes, changes: Attr, value: Value) -> Update {
        let mut attributes = attributes.clone();
        attributes.insert(changes, value);
        Update { attributes, changes }
    }
}

// ----- the report ---------------------------------------------------------------------------

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// The case is well-formed (a harness defect otherwise).
    Case,
    /// Property 1: absent → create → present, owned.
    Create,
    /// Property 2: a create retried with the same client token makes no duplicate.
    RetriedCreate,
    /// Property 3: update (observed changed), delete, absent.
    UpdateDelete,
    /// Property 4: `list_owned` finds exactly what was created.
    ListOwned,
    /// Property 5: a foreign object is never owned; creating over it conflicts where the API says
    /// so.
    Foreign,
    /// Property 6: `NotFound` for a missing parent.
    NotFound,
    /// Property 6: the lease store's optimistic concurrency and the inventory.
    Leases,
    /// All cases of a scope side by side: one batched observe, one `list_owned`.
    Batch,
}

impl Property {
    pub fn name(self) -> &'static str {
        match self {
            Property::Case => "case",
            Property::Create => "create",
            Property::RetriedCreate => "retried-create",
            Property::UpdateDelete => "update-delete",
            Property::ListOwned => "list-owned",
            Property::Foreign => "foreign",
            Property::NotFound => "not-found",
            Property::Leases => "leases",
            Property::Batch => "batch",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One check that ran.
#[derive(Debug, Clone)]
pub struct Check {
    pub property: Property,
    pub scope: Scope,
    /// The case or probe, or `scope` for a scope-wide check.
    pub subject: String,
    pub result: Result<(), String>,
}

/// Every check that ran, and how it went.
#[derive(Debug, Clone)]
pub struct Report {
    pub harness: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.result.is_err())
    }

    /// Did a check of `property` on `subject` run?
    pub fn ran(&self, property: Property, subject: &str) -> bool {
        self.checks.iter().any(|c| c.property == property && c.subject == subject)
    }

    /// Every failure, one paragraph each.
    pub fn describe_failures(&self) -> String {
        self.failures()
            .map(|c| {
                let message = c.result.as_ref().err().map_or("", String::as_str);
                format!("[{}] {message}", c.property)
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// Panic with every failure if any check failed.
    pub fn assert_conforms(&self) {
        let failed = self.failures().count();
        assert!(
            failed == 0,
            "{}: {failed} of {} conformance checks failed:\n\n{}",
            self.harness,
            self.checks.len(),
            self.describe_failures()
        );
    }
}

/// Run every check of `harness` and collect every failure.
pub async fn run<H: Harness>(harness: &H) -> Report {
    let mut report = Report { harness: harness.name(), checks: Vec::new() };
    let mut record = |property: Property, scope: &Scope, subject: &str, result: Result<(), String>| {
        report.checks.push(Check { property, scope: scope.clone(), subject: subject.to_string(), result });
    };
    for suite in harness.scopes() {
        let scope = &suite.scope;
        for case in &suite.cases {
            let valid = validate_case(scope, case);
            let usable = valid.is_ok();
            record(Property::Case, scope, &case.name, valid);
            if !usable {
                continue;
            }
            record(Property::Create, scope, &case.name, check_create(harness, scope, case).await);
            record(Property::RetriedCreate, scope, &case.name, check_retried_create(harness, scope, case).await);
            record(Property::UpdateDelete, scope, &case.name, check_update_delete(harness, scope, case).await);
            record(Property::ListOwned, scope, &case.name, check_list_owned(harness, scope, case).await);
            record(Property::Foreign, scope, &case.name, check_foreign(harness, scope, case).await);
        }
        for probe in &suite.not_found {
            record(Property::NotFound, scope, &probe.name, check_not_found(harness, scope, probe).await);
        }
        record(Property::Leases, scope, "scope", check_leases(harness, scope, suite.leases.as_ref()).await);
        if !suite.cases.is_empty() {
            record(Property::Batch, scope, "scope", check_batch(harness, &suite).await);
        }
    }
    report
}

/// [`run`] on a current-thread runtime (enough for in-process backends).
pub fn run_blocking<H: Harness>(harness: &H) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    runtime.block_on(run(harness))
}

// ----- comparisons ------------------------------------------------------------------------

/// Does `observed` satisfy `desired` under the kind's declared comparison?
pub fn matches(compare: Compare, desired: &Value, observed: Option<&Value>) -> bool {
    let observed = observed.unwrap_or(&Value::Null);
    match compare {
        Compare::Exact => observed == desired,
        Compare::Set => {
            let set = |v: &Value| v.as_list().iter().cloned().collect::<BTreeSet<Value>>();
            matches!(observed, Value::List(_)) && set(desired) == set(observed)
        }
        Compare::Subset => match (desired.as_map(), observed.as_map()) {
            (Some(desired), Some(observed)) => desired.iter().all(|(k, v)| observed.get(k) == Some(v)),
            _ => false,
        },
        Compare::Json => {
            let parse = |v: &Value| v.as_str().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
            match (parse(desired), parse(observed)) {
                (Some(a), Some(b)) => a == b,
                _ => observed == desired,
            }
        }
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "(absent)".to_string(), Value::to_string)
}

// ----- the engine's way of calling a backend ------------------------------------------------

/// A node with its literals replaced by `attributes` (the spec as an update changed it).
fn with_literals(node: &Node, attributes: &Attributes) -> Node {
    let mut node = node.clone();
    for (attribute, expr) in &mut node.desired {
        if let (Expr::Lit(_), Some(value)) = (&*expr, attributes.get(attribute)) {
            *expr = Expr::Lit(value.clone());
        }
    }
    node
}

fn is_ordering(node: &Node, attribute: Attr) -> bool {
    node.kind.decl().desired_decl(attribute).is_some_and(|d| d.role == Role::Ordering)
}

/// Resolved attributes as the engine sends them: without ordering-only ones.
fn sent(node: &Node, attributes: &Attributes) -> Attributes {
    attributes.iter().filter(|(a, _)| !is_ordering(node, **a)).map(|(a, v)| (*a, v.clone())).collect()
}

/// A delete's attributes: the node's literals only (references to upstream nodes that may be
/// gone are not resolved).
fn literals(node: &Node) -> Attributes {
    node.desired
        .iter()
        .filter(|(a, _)| !is_ordering(node, **a))
        .filter_map(|(a, e)| match e {
            Expr::Lit(value) => Some((*a, value.clone())),
            Expr::Ref(_) => None,
        })
        .collect()
}

/// The operation the engine would send (ordering-only attributes are never sent).
fn operation(
    stack: &str,
    node: &Node,
    action: Action,
    attributes: &Attributes,
    live: Option<&LiveObject>,
) -> Result<Operation, String> {
    router::operation(stack, node, action, sent(node, attributes), live.cloned())
        .map_err(|e| format!("the engine cannot build the {action} of {}: {e}", node.address))
}

/// The action the plan takes to change `attribute`: a replace if it is immutable.
fn update_action(node: &Node, attribute: Attr) -> Action {
    match node.kind.decl().desired_decl(attribute).map(|d| d.role) {
        Some(Role::Immutable) => Action::Replace,
        _ => Action::Update,
    }
}

/// A connected backend, checked to serve the scope it was opened for.
async fn connect(connector: &dyn Connector, scope: &Scope) -> Result<Arc<dyn Backend>, String> {
    let backend = connector.connect(scope).await.map_err(|e| format!("connecting to {scope} failed: {e:?}"))?;
    if backend.scope() != scope {
        return Err(format!("connected for {scope}, the backend says it serves {}", backend.scope()));
    }
    Ok(backend)
}

/// Observe one node, as the engine asks (one request, objects named for Kubernetes kinds).
async fn observe(
    backend: &dyn Backend,
    node: &Node,
    attributes: &Attributes,
) -> Result<Result<Observed, BackendError>, String> {
    let request = Request { node, attributes: sent(node, attributes), objects: manifests::object_refs(node) };
    let requests = [request];
    let mut answers = backend.observe(STACK, &requests).await;
    if answers.len() != 1 {
        return Err(format!("observe answered {} results for 1 request", answers.len()));
    }
    Ok(answers.remove(0))
}

/// Observe one node that must be observable.
async fn observe_ok(backend: &dyn Backend, node: &Node, attributes: &Attributes) -> Result<Observed, String> {
    observe(backend, node, attributes).await?.map_err(|e| format!("observe failed: {e:?}"))
}

/// The object as the engine holds it: with its facts derived (Kubernetes attributes are read
/// from the objects here).
fn derived(node: &Node, observed: &Observed) -> Option<LiveObject> {
    observed.live().map(|live| {
        let mut live = live.clone();
        facts::derive(STACK, node, &mut live);
        live
    })
}

fn describe_owner(live: &LiveObject) -> String {
    live.owner.as_ref().map_or_else(|| "no ownership".to_string(), |o| format!("ownership {}/{}", o.stack, o.address))
}

fn describe(result: &Result<Observed, BackendError>) -> String {
    match result {
        Ok(Observed::Absent) => "Ok(absent)".to_string(),
        Ok(Observed::Present(live)) => format!("Ok(present {} with {})", live.id, describe_owner(live)),
        Err(error) => format!("Err({error:?})"),
    }
}

/// The created object, which must be present and owned by `stack` at the node's address.
fn owned_present(result: Result<Observed, BackendError>, node: &Node, what: &str) -> Result<LiveObject, String> {
    match result {
        Ok(Observed::Present(live)) if live.owned_by(STACK, &node.address) => Ok(live),
        other => Err(format!(
            "{what}: expected the object present with ownership {STACK}/{}, saw {}",
            node.address,
            describe(&other)
        )),
    }
}

/// Observe, then create as the engine does (the fresh observation as `live`). Returns the
/// created object.
async fn create(backend: &dyn Backend, case_node: &Node, attributes: &Attributes) -> Result<LiveObject, String> {
    let before = observe_ok(backend, case_node, attributes).await?;
    let live = derived(case_node, &before);
    let op = operation(STACK, case_node, Action::Create, attributes, live.as_ref())?;
    owned_present(backend.execute(&op).await, case_node, "create")
}

async fn list(backend: &dyn Backend, stack: &str) -> Result<Vec<OwnedObject>, String> {
    backend.list_owned(stack).await.map_err(|e| format!("list_owned({stack}) failed: {e:?}"))
}

fn describe_owned(objects: &[OwnedObject]) -> String {
    if objects.is_empty() {
        return "nothing".to_string();
    }
    objects
        .iter()
        .map(|o| {
            let address = o.address.as_ref().map_or("(no address)", Address::as_str);
            format!("{} {} at {address}", o.kind, o.object.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `list_owned(STACK)` finds exactly one object for `node`, and nothing else.
fn exactly_one(objects: &[OwnedObject], node: &Node, id: &str) -> Result<(), String> {
    let at: Vec<&OwnedObject> = objects.iter().filter(|o| o.address.as_ref() == Some(&node.address)).collect();
    let others = objects.len() - at.len();
    let [only] = at.as_slice() else {
        return Err(format!(
            "list_owned({STACK}): expected exactly one object at {}, saw {} ({})",
            node.address,
            at.len(),
            describe_owned(objects)
        ));
    };
    if others > 0 {
        return Err(format!("list_owned({STACK}): expected only {}, saw {}", node.address, describe_owned(objects)));
    }
    if only.kind != node.kind || only.object.id != id {
        return Err(format!(
            "list_owned({STACK}): expected {} {id} at {}, saw {} {}",
            node.kind, node.address, only.kind, only.object.id
        ));
    }
    if let Some(owner) = &only.object.owner
        && owner.stack != STACK
    {
        return Err(format!("list_owned({STACK}) returned an object owned by {}", owner.stack));
    }
    Ok(())
}

fn nothing_at(objects: &[OwnedObject], address: &Address, stack: &str) -> Result<(), String> {
    if objects.iter().any(|o| o.address.as_ref() == Some(address)) {
        return Err(format!("list_owned({stack}): expected nothing at {address}, saw {}", describe_owned(objects)));
    }
    Ok(())
}

fn empty(objects: &[OwnedObject], stack: &str) -> Result<(), String> {
    if objects.is_empty() {
        Ok(())
    } else {
        Err(format!("list_owned({stack}): expected nothing, saw {}", describe_owned(objects)))
    }
}

fn label(scope: &Scope, name: &str) -> impl Fn(String) -> String {
    let prefix = format!("{scope} / {name}");
    move |message| format!("{prefix}: {message}")
}

// ----- the checks ---------------------------------------------------------------------------

/// The case is usable: in the suite's scope, its kind served by this kind of scope, the
/// update's attribute a compared one of the kind, and actually changed.
pub fn validate_case<W>(scope: &Scope, case: &Case<W>) -> Result<(), String> {
    let at = label(scope, &case.name);
    let node = &case.node;
    if &node.scope != scope || node.kind.scope() != scope.kind() {
        return Err(at(format!("a {} node in {} is not served by this scope", node.kind, node.scope)));
    }
    if let Some(missing) = node.kind.decl().lookup.iter().find(|a| !case.create.contains_key(a)) {
        return Err(at(format!("the create lacks the lookup attribute `{missing}`: the engine would not observe it")));
    }
    let changes = case.update.changes;
    match node.kind.decl().desired_decl(changes).map(|d| d.role) {
        Some(Role::Compared | Role::Immutable) => {}
        _ => return Err(at(format!("the update changes `{changes}`, which {} does not compare", node.kind))),
    }
    match (case.create.get(&changes), case.update.attributes.get(&changes)) {
        (Some(before), Some(after)) if before != after => {}
        _ => return Err(at(format!("the create and the update must both set `{changes}`, to different values"))),
    }
    Ok(())
}

/// Property 1: absent before; a create returns the object owned by the stack; observing finds it,
/// owned, with the same ID (and, for Kubernetes kinds, every object the engine rendered).
pub async fn check_create<H: Harness>(harness: &H, scope: &Scope, case: &Case<H::World>) -> Result<(), String> {
    let at = label(scope, &case.name);
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, scope).await.map_err(&at)?;
    let node = &case.node;
    let before = observe_ok(&*backend, node, &case.create).await.map_err(&at)?;
    if let Observed::Present(live) = &before {
        return Err(at(format!("expected absent before the create, saw {} with {}", live.id, describe_owner(live))));
    }
    let op = operation(STACK, node, Action::Create, &case.create, None).map_err(&at)?;
    let created = owned_present(backend.execute(&op).await, node, "create").map_err(&at)?;
    let after = observe_ok(&*backend, node, &case.create).await.map_err(&at)?;
    let observed = owned_present(Ok(after), node, "observe after the create").map_err(&at)?;
    if observed.id != created.id {
        return Err(at(format!("the create returned {}, observing found {}", created.id, observed.id)));
    }
    let fetched: BTreeSet<_> = observed.manifests.iter().map(|m| m.object_ref()).collect();
    let missing: Vec<String> = op
        .manifests
        .iter()
        .map(|m| m.object_ref())
        .filter(|r| !fetched.contains(r))
        .map(|r| format!("{}/{}", r.kind, r.name))
        .collect();
    if !missing.is_empty() {
        return Err(at(format!(
            "observing after the create fetched {} of the {} applied objects; missing {}",
            op.manifests.len() - missing.len(),
            op.manifests.len(),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Property 2: the same create sent twice (a retried or resumed apply: same operation, same client
/// token) makes one object: the retry succeeds with the same object, observing finds it, and
/// `list_owned` finds exactly one.
pub async fn check_retried_create<H: Harness>(harness: &H, scope: &Scope, case: &Case<H::World>) -> Result<(), String> {
    let at = label(scope, &case.name);
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, scope).await.map_err(&at)?;
    let node = &case.node;
    let op = operation(STACK, node, Action::Create, &case.create, None).map_err(&at)?;
    let first = owned_present(backend.execute(&op).await, node, "create").map_err(&at)?;
    let second = owned_present(backend.execute(&op).await, node, "the same create, retried").map_err(&at)?;
    if second.id != first.id {
        return Err(at(format!("the retried create made {} besides {}", second.id, first.id)));
    }
    let observed = observe(&*backend, node, &case.create).await.map_err(&at)?;
    let observed = owned_present(observed, node, "observe after the retried create").map_err(&at)?;
    if observed.id != first.id {
        return Err(at(format!("observing after the retried create found {}, not {}", observed.id, first.id)));
    }
    let owned = list(&*backend, STACK).await.map_err(&at)?;
    exactly_one(&owned, node, &first.id).map_err(&at)
}

/// Property 3: update (a replace for an immutable attribute): the changed attribute is observed
/// with the update's value, and changed. Then delete: absent, not listed; the same delete again
/// succeeds (a retried delete finds nothing left to do).
pub async fn check_update_delete<H: Harness>(harness: &H, scope: &Scope, case: &Case<H::World>) -> Result<(), String> {
    let at = label(scope, &case.name);
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, scope).await.map_err(&at)?;
    let changes = case.update.changes;
    let compare = case.node.kind.decl().desired_decl(changes).map_or(Compare::Exact, |d| d.compare);
    create(&*backend, &case.node, &case.create).await.map_err(&at)?;

    let node = with_literals(&case.node, &case.update.attributes);
    let attributes = &case.update.attributes;
    let fresh = observe_ok(&*backend, &node, attributes).await.map_err(&at)?;
    let live =
        derived(&node, &fresh).ok_or_else(|| at("observing right after the create found nothing".to_string()))?;
    let before = live.get(changes).cloned();
    if !matches(compare, &case.create[&changes], before.as_ref()) {
        return Err(at(format!(
            "after the create, `{changes}` should be {} ({compare:?}), saw {}",
            case.create[&changes],
            shown(before.as_ref())
        )));
    }
    let action = update_action(&node, changes);
    if action == Action::Replace {
        // As the executor runs a replacement: the old object's delete, then the create (a
        // backend never receives a `Replace`).
        let old = with_literals(&case.node, &case.create);
        let delete = operation(STACK, &old, Action::Delete, &literals(&old), Some(&live)).map_err(&at)?;
        match backend.execute(&delete).await {
            Ok(Observed::Absent) => {}
            other => {
                return Err(at(format!("the replacement's delete: expected Ok(absent), saw {}", describe(&other))));
            }
        }
        let op = operation(STACK, &node, Action::Create, attributes, None).map_err(&at)?;
        owned_present(backend.execute(&op).await, &node, &format!("the replacement's create changing `{changes}`"))
            .map_err(&at)?;
    } else {
        let op = operation(STACK, &node, action, attributes, Some(&live)).map_err(&at)?;
        owned_present(backend.execute(&op).await, &node, &format!("{action} changing `{changes}`")).map_err(&at)?;
    }
    let observed = observe(&*backend, &node, attributes).await.map_err(&at)?;
    let observed = owned_present(observed, &node, &format!("observe after the {action}")).map_err(&at)?;
    let live = derived(&node, &Observed::Present(observed)).unwrap_or_else(|| LiveObject::new(""));
    let after = live.get(changes);
    if !matches(compare, &attributes[&changes], after) || after == before.as_ref() {
        return Err(at(format!(
            "after the {action}, `{changes}` should be {} ({compare:?}) and changed from {}, saw {}",
            attributes[&changes],
            shown(before.as_ref()),
            shown(after)
        )));
    }

    let delete = operation(STACK, &node, Action::Delete, &literals(&node), Some(&live)).map_err(&at)?;
    match backend.execute(&delete).await {
        Ok(Observed::Absent) => {}
        other => return Err(at(format!("delete: expected Ok(absent), saw {}", describe(&other)))),
    }
    match observe(&*backend, &node, attributes).await.map_err(&at)? {
        Ok(Observed::Absent) => {}
        other => return Err(at(format!("observe after the delete: expected Ok(absent), saw {}", describe(&other)))),
    }
    let owned = list(&*backend, STACK).await.map_err(&at)?;
    nothing_at(&owned, &node.address, STACK).map_err(&at)?;
    match backend.execute(&delete).await {
        Ok(Observed::Absent) => Ok(()),
        other => Err(at(format!("the same delete, retried: expected Ok(absent), saw {}", describe(&other)))),
    }
}

/// Property 4: `list_owned(STACK)` finds nothing before, exactly the created object after (its
/// kind, address and ID); `list_owned(OTHER_STACK)` never finds it.
pub async fn check_list_owned<H: Harness>(harness: &H, scope: &Scope, case: &Case<H::World>) -> Result<(), String> {
    let at = label(scope, &case.name);
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, scope).await.map_err(&at)?;
    empty(&list(&*backend, STACK).await.map_err(&at)?, STACK).map_err(&at)?;
    empty(&list(&*backend, OTHER_STACK).await.map_err(&at)?, OTHER_STACK).map_err(&at)?;
    let created = create(&*backend, &case.node, &case.create).await.map_err(&at)?;
    exactly_one(&list(&*backend, STACK).await.map_err(&at)?, &case.node, &created.id).map_err(&at)?;
    empty(&list(&*backend, OTHER_STACK).await.map_err(&at)?, OTHER_STACK).map_err(&at)
}

/// Property 5: a foreign object with the case's name (hand-made, or another stack's) is never
/// reported as the stack's, by observe or `list_owned` (another stack's is listed for that stack).
/// Creating over it is a `Conflict` that leaves it foreign where the case expects one, else a
/// create that returns the stack's object (or a typed `Conflict`).
pub async fn check_foreign<H: Harness>(harness: &H, scope: &Scope, case: &Case<H::World>) -> Result<(), String> {
    let other = Ownership::new(OTHER_STACK, &case.node.address);
    for owner in [None, Some(&other)] {
        let variant = match owner {
            None => format!("{} (foreign, no ownership)", case.name),
            Some(_) => format!("{} (foreign, owned by {OTHER_STACK})", case.name),
        };
        let at = label(scope, &variant);
        foreign_variant(harness, scope, case, owner).await.map_err(at)?;
    }
    Ok(())
}

async fn foreign_variant<H: Harness>(
    harness: &H,
    scope: &Scope,
    case: &Case<H::World>,
    owner: Option<&Ownership>,
) -> Result<(), String> {
    let node = &case.node;
    let (world, connector) = harness.fresh().await?;
    let backend = connect(&*connector, scope).await?;
    (case.plant_foreign)(&world, Foreign { stack: STACK, address: &node.address, owner })
        .await
        .map_err(|e| format!("planting the foreign object failed: {e}"))?;
    let not_ours = |observed: &Observed, when: &str| -> Result<(), String> {
        match observed.live().and_then(|l| l.owner.as_ref()) {
            Some(o) if o.stack == STACK => {
                Err(format!("{when}: the foreign object is reported with {STACK}'s ownership ({})", o.address))
            }
            _ => Ok(()),
        }
    };
    let observed = observe_ok(&*backend, node, &case.create).await?;
    not_ours(&observed, "observe")?;
    empty(&list(&*backend, STACK).await?, STACK)?;
    if owner.is_some() {
        let theirs = list(&*backend, OTHER_STACK).await?;
        if !theirs.iter().any(|o| o.address.as_ref() == Some(&node.address)) {
            return Err(format!(
                "list_owned({OTHER_STACK}) does not find the object planted with its ownership at {} (saw {})",
                node.address,
                describe_owned(&theirs)
            ));
        }
    }
    let live = derived(node, &observed);
    let op = operation(STACK, node, Action::Create, &case.create, live.as_ref())?;
    let result = backend.execute(&op).await;
    match (&result, case.conflict_on_foreign) {
        (Err(BackendError::Conflict { .. }), _) => {
            let after = observe_ok(&*backend, node, &case.create).await?;
            not_ours(&after, "observe after the refused create")?;
            empty(&list(&*backend, STACK).await?, STACK)
        }
        (_, true) => Err(format!("create over the foreign object: expected Err(Conflict), saw {}", describe(&result))),
        (Ok(Observed::Present(live)), false) if live.owned_by(STACK, &node.address) => {
            exactly_one(&list(&*backend, STACK).await?, node, &live.id)
        }
        (_, false) => Err(format!(
            "create over the foreign object: expected it written with ownership {STACK}/{} or Err(Conflict), saw {}",
            node.address,
            describe(&result)
        )),
    }
}

/// Property 6: the probe fails with `NotFound`, and leaves nothing behind.
pub async fn check_not_found<H: Harness>(harness: &H, scope: &Scope, probe: &Probe) -> Result<(), String> {
    let at = label(scope, &probe.name);
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, scope).await.map_err(&at)?;
    let observed = observe_ok(&*backend, &probe.node, &probe.attributes).await.map_err(&at)?;
    let live = derived(&probe.node, &observed);
    let op = operation(STACK, &probe.node, probe.action, &probe.attributes, live.as_ref()).map_err(&at)?;
    match backend.execute(&op).await {
        Err(BackendError::NotFound { .. }) => {}
        other => return Err(at(format!("{}: expected Err(NotFound), saw {}", probe.action, describe(&other)))),
    }
    empty(&list(&*backend, STACK).await.map_err(&at)?, STACK).map_err(&at)
}

/// Property 6: a backend has a lease store exactly when the suite says so. With one: a missing
/// lease is `Ok(None)`; creating an existing one is `Conflict`; replacing or deleting at a stale
/// resource version is `Conflict`, including a version of a lease that was deleted and created
/// again since (resource versions never come back, as on an API server); deleting a missing one
/// is `NotFound`; the inventory round-trips, and storing it empty removes it.
pub async fn check_leases<H: Harness>(harness: &H, scope: &Scope, target: Option<&LeaseTarget>) -> Result<(), String> {
    let at = label(scope, "leases");
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, scope).await.map_err(&at)?;
    match (target, backend.leases()) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(at("the backend has a lease store the suite does not expect".to_string())),
        (Some(_), None) => Err(at("expected a lease store, the backend has none".to_string())),
        (Some(target), Some(store)) => {
            // Both halves run: a failure of one says nothing about the other.
            let failures: Vec<String> = [leases(store, target).await, inventory(store, target).await]
                .into_iter()
                .filter_map(Result::err)
                .collect();
            if failures.is_empty() { Ok(()) } else { Err(at(failures.join("; "))) }
        }
    }
}

fn is_conflict<T>(result: &Result<T, BackendError>) -> bool {
    matches!(result, Err(BackendError::Conflict { .. }))
}

fn outcome<T: fmt::Debug>(result: &Result<T, BackendError>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(error) => format!("Err({error:?})"),
    }
}

async fn leases(store: &dyn LeaseStore, target: &LeaseTarget) -> Result<(), String> {
    let (namespace, name) = (target.namespace.as_str(), target.name.as_str());
    let fail = |what: &str, result: String| Err(format!("{what}: {result}"));
    let got = store.get_lease(namespace, name).await;
    if !matches!(got, Ok(None)) {
        return fail("get of a missing lease: expected Ok(None), saw", outcome(&got));
    }
    let wanted = LeaseRecord {
        namespace: namespace.to_string(),
        name: name.to_string(),
        holder: "conformance-holder-1".to_string(),
        duration_seconds: 30,
        acquired_at: 1_700_000_000,
        renewed_at: 1_700_000_000,
        resource_version: String::new(),
    };
    let created = store.create_lease(&wanted).await.map_err(|e| format!("create of a new lease failed: {e:?}"))?;
    let again = store.create_lease(&wanted).await;
    if !is_conflict(&again) {
        return fail("create of an existing lease: expected Err(Conflict), saw", outcome(&again));
    }
    let read = store.get_lease(namespace, name).await.map_err(|e| format!("get after the create failed: {e:?}"))?;
    let same = |r: &LeaseRecord| {
        r.holder == wanted.holder
            && r.duration_seconds == wanted.duration_seconds
            && r.acquired_at == wanted.acquired_at
    };
    match &read {
        Some(r) if same(r) && r.resource_version == created.resource_version => {}
        other => {
            return Err(format!(
                "get after the create: expected holder {} at version {}, saw {other:?}",
                wanted.holder, created.resource_version
            ));
        }
    }
    let renewed = LeaseRecord {
        holder: "conformance-holder-2".to_string(),
        renewed_at: wanted.renewed_at + 10,
        ..created.clone()
    };
    let replaced =
        store.replace_lease(&renewed).await.map_err(|e| format!("replace at the current version failed: {e:?}"))?;
    if replaced.resource_version == created.resource_version || replaced.holder != renewed.holder {
        return Err(format!(
            "replace at the current version: expected holder {} at a new version (was {}), saw {replaced:?}",
            renewed.holder, created.resource_version
        ));
    }
    let stale =
        store.replace_lease(&LeaseRecord { holder: "conformance-holder-3".to_string(), ..created.clone() }).await;
    if !is_conflict(&stale) {
        return fail("replace at a stale version: expected Err(Conflict), saw", outcome(&stale));
    }
    let stale = store.delete_lease(namespace, name, &created.resource_version).await;
    if !is_conflict(&stale) {
        return fail("delete at a stale version: expected Err(Conflict), saw", outcome(&stale));
    }
    match store.get_lease(namespace, name).await {
        Ok(Some(r)) if r.holder == renewed.holder && r.resource_version == replaced.resource_version => {}
        other => return fail("get after the refused writes: expected the replaced lease, saw", outcome(&other)),
    }
    store
        .delete_lease(namespace, name, &replaced.resource_version)
        .await
        .map_err(|e| format!("delete at the current version failed: {e:?}"))?;
    let gone = store.get_lease(namespace, name).await;
    if !matches!(gone, Ok(None)) {
        return fail("get after the delete: expected Ok(None), saw", outcome(&gone));
    }
    let missing = store.delete_lease(namespace, name, &replaced.resource_version).await;
    if !matches!(missing, Err(BackendError::NotFound { .. })) {
        return fail("delete of a missing lease: expected Err(NotFound), saw", outcome(&missing));
    }

    // Created again, it is a new object: every version of the deleted one is stale for it (a
    // holder that lost its lease to `unlock` must not overwrite or delete the next holder's).
    let next = LeaseRecord { holder: "conformance-holder-4".to_string(), ..wanted.clone() };
    let reborn = store.create_lease(&next).await.map_err(|e| format!("create after the delete failed: {e:?}"))?;
    let old = [&created.resource_version, &replaced.resource_version];
    let stale =
        store.replace_lease(&LeaseRecord { holder: "conformance-holder-1".to_string(), ..created.clone() }).await;
    if !is_conflict(&stale) {
        return Err(format!(
            "replace at version {} of the deleted lease, after it was created again (at version {}; the \
             deleted one had {old:?}): expected Err(Conflict), saw {}",
            created.resource_version,
            reborn.resource_version,
            outcome(&stale)
        ));
    }
    for version in old {
        let stale = store.delete_lease(namespace, name, version).await;
        if !is_conflict(&stale) {
            return Err(format!(
                "delete at version {version} of the deleted lease, after it was created again (at version {}): \
                 expected Err(Conflict), saw {}",
                reborn.resource_version,
                outcome(&stale)
            ));
        }
    }
    Ok(())
}

/// The inventory round-trips; storing it empty removes it.
async fn inventory(store: &dyn LeaseStore, target: &LeaseTarget) -> Result<(), String> {
    let (namespace, name) = (target.namespace.as_str(), target.name.as_str());
    let fail = |what: &str, result: String| Err(format!("{what}: {result}"));
    let inventory = format!("{name}-inventory");
    let records = vec![
        Scope::Kubernetes { context: "conformance".to_string() }.to_record(),
        Scope::Aws { account: "123456789012".to_string(), region: "eu-west-1".to_string(), profile: None }.to_record(),
    ];
    let got = store.get_inventory(namespace, &inventory).await;
    if !matches!(got, Ok(None)) {
        return fail("get of a missing inventory: expected Ok(None), saw", outcome(&got));
    }
    store
        .put_inventory(namespace, &inventory, &records)
        .await
        .map_err(|e| format!("put of the inventory failed: {e:?}"))?;
    let got = store.get_inventory(namespace, &inventory).await;
    if got.as_ref().ok() != Some(&Some(records.clone())) {
        return Err(format!("get after put: expected Ok(Some({records:?})), saw {}", outcome(&got)));
    }
    let fewer = vec![records[0].clone()];
    store
        .put_inventory(namespace, &inventory, &fewer)
        .await
        .map_err(|e| format!("replacing the inventory failed: {e:?}"))?;
    let got = store.get_inventory(namespace, &inventory).await;
    if got.as_ref().ok() != Some(&Some(fewer.clone())) {
        return Err(format!("get after a second put: expected Ok(Some({fewer:?})), saw {}", outcome(&got)));
    }
    store
        .put_inventory(namespace, &inventory, &[])
        .await
        .map_err(|e| format!("putting an empty inventory failed: {e:?}"))?;
    let got = store.get_inventory(namespace, &inventory).await;
    if !matches!(got, Ok(None)) {
        return fail("get after putting it empty: expected Ok(None) (removed), saw", outcome(&got));
    }
    Ok(())
}

/// Every case of the scope created in one world: one batched observe answers once per request,
/// in order, each the stack's own object; `list_owned` finds exactly the created objects, one
/// per address; another stack finds none of them.
pub async fn check_batch<H: Harness>(harness: &H, suite: &ScopeSuite<H::World>) -> Result<(), String> {
    let at = label(&suite.scope, "all cases");
    let (_world, connector) = harness.fresh().await.map_err(&at)?;
    let backend = connect(&*connector, &suite.scope).await.map_err(&at)?;
    let mut ids = Vec::new();
    for case in &suite.cases {
        let created =
            create(&*backend, &case.node, &case.create).await.map_err(|e| at(format!("{}: {e}", case.name)))?;
        ids.push(created.id);
    }
    let requests: Vec<Request<'_>> = suite
        .cases
        .iter()
        .map(|c| Request {
            node: &c.node,
            attributes: sent(&c.node, &c.create),
            objects: manifests::object_refs(&c.node),
        })
        .collect();
    let answers = backend.observe(STACK, &requests).await;
    if answers.len() != requests.len() {
        return Err(at(format!("observe answered {} results for {} requests", answers.len(), requests.len())));
    }
    for ((case, id), answer) in suite.cases.iter().zip(&ids).zip(answers) {
        let live = owned_present(answer, &case.node, &format!("batched observe of {}", case.name)).map_err(&at)?;
        if &live.id != id {
            return Err(at(format!(
                "batched observe of {}: expected {id}, saw {} (answers out of order?)",
                case.name, live.id
            )));
        }
    }
    let owned = list(&*backend, STACK).await.map_err(&at)?;
    let mut seen: BTreeMap<&Address, usize> = BTreeMap::new();
    for object in &owned {
        let address = object
            .address
            .as_ref()
            .ok_or_else(|| at(format!("list_owned({STACK}) returned {} without an address", object.object.id)))?;
        *seen.entry(address).or_default() += 1;
    }
    let wanted: BTreeMap<&Address, usize> = suite.cases.iter().map(|c| (&c.node.address, 1)).collect();
    if seen != wanted {
        return Err(at(format!(
            "list_owned({STACK}): expected one object at each of {}, saw {}",
            wanted.keys().map(|a| a.as_str()).collect::<Vec<_>>().join(", "),
            describe_owned(&owned)
        )));
    }
    for (case, id) in suite.cases.iter().zip(&ids) {
        let listed = owned.iter().find(|o| o.address.as_ref() == Some(&case.node.address));
        if let Some(listed) = listed.filter(|o| o.kind != case.node.kind || &o.object.id != id) {
            return Err(at(format!(
                "list_owned({STACK}) at {}: expected {} {id}, saw {} {}",
                case.node.address, case.node.kind, listed.kind, listed.object.id
            )));
        }
    }
    empty(&list(&*backend, OTHER_STACK).await.map_err(&at)?, OTHER_STACK).map_err(&at)
}
