//! The simulated Portainer backend: one Portainer URL, answering as its REST API does
//! (portainer.md §2): settings with their PascalCase keys, environments created as Edge
//! environments (type 4) with Portainer's own EdgeKey, ownership through Portainer's tags, and
//! the Kubernetes proxy that only answers while the agent's tunnel is up.

use std::sync::Arc;

use base64::Engine as _;
use edgeplan_model::attr;
use edgeplan_model::backend::{ADDRESS_TAG, HttpResponse, STACK_TAG};
use edgeplan_model::{
    Action, Address, Backend, BackendError, BoxFuture, Identity, LiveObject, NodeKind, Observed, Operation,
    OwnedObject, Ownership, Request, Scope, SecretText, Value,
};

use crate::query::{DEFAULT_TUNNEL_PORT, tunnel_port, url_host};
use crate::store::SimWorld;
use crate::world::{Environment, PortainerServer, PortainerTag, World};

type Outcome = Result<Observed, BackendError>;

/// One Portainer server of the simulated world.
pub(crate) struct SimPortainer {
    pub(crate) world: Arc<SimWorld>,
    pub(crate) scope: Scope,
    pub(crate) url: String,
}

fn unreachable(url: &str) -> BackendError {
    BackendError::Transport { message: format!("the simulated world has no Portainer at {url}"), retryable: false }
}

/// Portainer's error body is `{"message", "details"}`; its status maps onto a typed error.
fn http_error(status: u16, message: &str) -> BackendError {
    match status {
        404 => BackendError::not_found(format!("404 {message}")),
        409 => BackendError::conflict(format!("409 {message}")),
        401 | 403 => BackendError::AccessDenied { action: None, message: format!("{status} {message}") },
        _ => BackendError::invalid(&status.to_string(), message),
    }
}

fn tag_name(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// Ownership as an environment's Portainer tags say it.
fn owner_of(server: &PortainerServer, env: &Environment) -> Option<Ownership> {
    let names: Vec<&str> =
        env.tag_ids.iter().filter_map(|id| server.tags.iter().find(|t| t.id == *id)).map(|t| t.name.as_str()).collect();
    let value = |key: &str| names.iter().find_map(|n| n.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')));
    Some(Ownership { stack: value(STACK_TAG)?.to_string(), address: Address::from_text(value(ADDRESS_TAG)?) })
}

impl SimPortainer {
    fn server<'w>(&self, world: &'w World) -> Result<&'w PortainerServer, BackendError> {
        world.portainer_server(&self.url).ok_or_else(|| unreachable(&self.url))
    }

    fn server_mut<'w>(&self, world: &'w mut World) -> Result<&'w mut PortainerServer, BackendError> {
        let url = self.url.clone();
        world.portainer_server_mut(&url).ok_or_else(|| unreachable(&url))
    }
}

fn find_env<'s>(server: &'s PortainerServer, identity: &Identity) -> Result<Option<&'s Environment>, BackendError> {
    Ok(match identity {
        Identity::Adopted { id } => {
            let id: i64 = id.parse().map_err(|_| {
                BackendError::invalid("400", format!("Invalid environment identifier route variable: {id}"))
            })?;
            server.environments.iter().find(|e| e.id == id)
        }
        Identity::Named { name } => server.environments.iter().find(|e| &e.name == name),
        _ => None,
    })
}

fn settings(server: &PortainerServer) -> LiveObject {
    LiveObject::new(format!("{}/api/settings", server.url.trim_end_matches('/')))
        .with(attr::ENABLE_EDGE_COMPUTE, server.settings.enable_edge_compute)
        .with(attr::CHECKIN_INTERVAL, i64::try_from(server.settings.checkin_interval).unwrap_or(i64::MAX))
        .with(attr::ENFORCE_EDGE_ID, server.settings.enforce_edge_id)
}

/// `GET /api/endpoints/{id}`, with the heartbeat Portainer computes on read.
fn environment(world: &World, server: &PortainerServer, env: &Environment) -> LiveObject {
    let interval = if env.checkin_interval == 0 { server.settings.checkin_interval } else { env.checkin_interval };
    let heartbeat = env.last_check_in > 0
        && world.now.saturating_sub(env.last_check_in) <= interval.saturating_mul(2).saturating_add(20);
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let mut live = LiveObject::new(env.id.to_string())
        .with(attr::NAME, env.name.as_str())
        .with(attr::TYPE_ID, env.env_type)
        .with(attr::URL, env.url.as_str())
        .with(attr::EDGE_ID, if env.edge_id.is_empty() { Value::Null } else { Value::str(env.edge_id.as_str()) })
        .with(
            attr::EDGE_KEY,
            if env.edge_key.is_empty() { Value::Null } else { Value::Secret(SecretText::new(env.edge_key.as_str())) },
        )
        .with(attr::LAST_CHECK_IN_DATE, int(env.last_check_in))
        .with(attr::HEARTBEAT, heartbeat)
        .with(attr::USER_TRUSTED, env.user_trusted)
        .with(attr::TAG_IDS, Value::List(env.tag_ids.iter().map(|id| Value::Int(*id)).collect()))
        .with(attr::CHECKIN_INTERVAL, int(interval));
    live.owner = owner_of(server, env);
    live
}

impl Backend for SimPortainer {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn observe<'a>(&'a self, _stack: &'a str, requests: &'a [Request<'a>]) -> BoxFuture<'a, Vec<Outcome>> {
        let outcomes = self
            .world
            .read(|world| {
                requests.iter().map(|r| observe(world, self.server(world)?, r.node.kind, &r.node.identity)).collect()
            })
            .unwrap_or_else(|error| vec![Err(error); requests.len()]);
        Box::pin(std::future::ready(outcomes))
    }

    fn execute<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Outcome> {
        let result =
            self.world.write(|world| execute(self, world, op)).and_then(|r| r).and_then(|()| match op.action {
                Action::Delete => Ok(Observed::Absent),
                _ => {
                    self.world.read(|world| observe(world, self.server(world)?, op.kind, &op.identity)).and_then(|r| r)
                }
            });
        Box::pin(std::future::ready(result))
    }

    fn list_owned<'a>(&'a self, stack: &'a str) -> BoxFuture<'a, Result<Vec<OwnedObject>, BackendError>> {
        let result = self
            .world
            .read(|world| {
                let server = self.server(world)?;
                Ok(server
                    .environments
                    .iter()
                    .filter_map(|env| {
                        let owner = owner_of(server, env).filter(|o| o.stack == stack)?;
                        let kind = owner.address.kind()?;
                        Some(OwnedObject {
                            kind,
                            address: Some(owner.address),
                            object: environment(world, server, env),
                        })
                    })
                    .collect())
            })
            .and_then(|r| r);
        Box::pin(std::future::ready(result))
    }

    fn http_get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<HttpResponse, BackendError>> {
        let result = self.world.read(|world| crate::http::get(world, &self.url, path)).and_then(|r| r);
        Box::pin(std::future::ready(result))
    }
}

fn observe(world: &World, server: &PortainerServer, kind: NodeKind, identity: &Identity) -> Outcome {
    match kind {
        NodeKind::EdgeComputeSetting => Ok(Observed::Present(settings(server))),
        NodeKind::PortainerEnvironment => Ok(find_env(server, identity)?
            .map_or(Observed::Absent, |env| Observed::Present(environment(world, server, env)))),
        other => Err(BackendError::unsupported(format!("{other} is not a Portainer resource"))),
    }
}

fn execute(portainer: &SimPortainer, world: &mut World, op: &Operation) -> Result<(), BackendError> {
    match (op.kind, op.action) {
        (_, Action::NoOp | Action::Read) => Ok(()),
        (NodeKind::EdgeComputeSetting, Action::Delete) => {
            Err(BackendError::invalid("OperationNotPermitted", "Portainer's settings are never deleted"))
        }
        // PUT /api/settings: pointer fields, so only what is sent changes.
        (NodeKind::EdgeComputeSetting, _) => {
            let server = portainer.server_mut(world)?;
            if let Some(enable) = op.get(attr::ENABLE_EDGE_COMPUTE).and_then(Value::as_bool) {
                server.settings.enable_edge_compute = enable;
            }
            Ok(())
        }
        (NodeKind::PortainerEnvironment, Action::Delete) => delete_environment(portainer, world, op),
        (NodeKind::PortainerEnvironment, Action::Update) => {
            let server = portainer.server_mut(world)?;
            let Some(index) = find_env(server, &op.identity)?.map(|e| e.id) else {
                return Err(http_error(
                    404,
                    "Unable to find an environment with the specified identifier inside the database",
                ));
            };
            if let (Some(url), Some(env)) = (op.text(attr::URL), server.environments.iter_mut().find(|e| e.id == index))
            {
                // Editing the URL does not re-key: Portainer keeps the EdgeKey it generated.
                env.url = url.to_string();
            }
            Ok(())
        }
        (NodeKind::PortainerEnvironment, Action::Create | Action::Replace) => create_environment(portainer, world, op),
        (other, _) => Err(BackendError::unsupported(format!("{other} is not a Portainer resource"))),
    }
}

/// The ID of the tag called `name`, created if missing (`POST /api/tags`).
fn tag_id(server: &mut PortainerServer, name: &str) -> i64 {
    if let Some(tag) = server.tags.iter().find(|t| t.name == name) {
        return tag.id;
    }
    let id = server.tags.iter().map(|t| t.id).max().unwrap_or(0).saturating_add(1);
    server.tags.push(PortainerTag { id, name: name.to_string() });
    id
}

/// `POST /api/endpoints` with `EndpointCreationType=4`: Portainer generates the EdgeKey from the
/// URL's host and its own `--tunnel-port` (portainer.md §1).
fn create_environment(portainer: &SimPortainer, world: &mut World, op: &Operation) -> Result<(), BackendError> {
    let Identity::Named { name } = &op.identity else {
        return Err(BackendError::invalid(
            "400",
            format!("{}: an adopted environment must exist; edgeplan cannot create it with an ID", op.address),
        ));
    };
    let server = portainer.server(world)?;
    if let Some(existing) = server.environments.iter().find(|e| &e.name == name) {
        // Ours already (a resumed apply): nothing to do. Anyone else's: the name is taken.
        return if owner_of(server, existing).as_ref() == Some(&op.ownership) {
            Ok(())
        } else {
            Err(http_error(409, "Name is not unique"))
        };
    }
    if op.get(attr::CREATE_IF_MISSING).and_then(Value::as_bool) == Some(false) {
        return Err(http_error(404, &format!("environment `{name}` does not exist and environment.create is false")));
    }
    let env_url = op.text(attr::URL).unwrap_or(&server.url).to_string();
    let host = url_host(&env_url).to_string();
    if host.is_empty() || host == "localhost" {
        return Err(http_error(400, "Invalid environment URL: the Edge agent cannot reach it"));
    }
    // Field 2 is the URL's host and the server's own --tunnel-port.
    let deployment = &server.deployment;
    let port = match world
        .cluster(&deployment.context)
        .and_then(|c| c.deployments.iter().find(|d| d.namespace == deployment.namespace && d.name == deployment.name))
    {
        Some(running) => tunnel_port(running).map_err(|m| http_error(500, &m))?,
        None => DEFAULT_TUNNEL_PORT,
    };
    let id = server.environments.iter().map(|e| e.id).max().unwrap_or(0).max(0).saturating_add(1);
    let text = format!("{env_url}|{host}:{port}|{}|{id}", server.server_fingerprint);
    let edge_key = base64::engine::general_purpose::STANDARD_NO_PAD.encode(text);
    let enforce = server.settings.enforce_edge_id;
    let edge_id = if enforce { format!("{:08x}-0000-4000-8000-{:012x}", id, world.now) } else { String::new() };
    let server = portainer.server_mut(world)?;
    let tag_ids = vec![
        tag_id(server, &tag_name(STACK_TAG, &op.ownership.stack)),
        tag_id(server, &tag_name(ADDRESS_TAG, op.ownership.address.as_str())),
    ];
    server.environments.push(Environment {
        id,
        name: name.clone(),
        env_type: 4,
        url: env_url,
        edge_id,
        edge_key,
        last_check_in: 0,
        checkin_interval: 0,
        user_trusted: true,
        tag_ids,
        tunnel_connected: false,
    });
    Ok(())
}

/// `DELETE /api/endpoints/{id}`, only for an environment whose tags say the stack made it.
fn delete_environment(portainer: &SimPortainer, world: &mut World, op: &Operation) -> Result<(), BackendError> {
    let server = portainer.server_mut(world)?;
    let owned: Vec<i64> = server
        .environments
        .iter()
        .filter(|e| owner_of(server, e).as_ref() == Some(&op.ownership))
        .map(|e| e.id)
        .collect();
    if owned.is_empty() {
        if let Identity::Named { name } = &op.identity
            && server.environments.iter().any(|e| &e.name == name)
        {
            return Err(BackendError::invalid(
                "OperationNotPermitted",
                format!("environment `{name}` was not created by edgeplan"),
            ));
        }
        return Ok(());
    }
    server.environments.retain(|e| !owned.contains(&e.id));
    Ok(())
}
