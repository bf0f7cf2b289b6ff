//! Keys never leave the simulation as text. Observations describe an EDGE_KEY by fingerprint
//! (`sha256:` + 16 hex, what the plan engine shows for sensitive values), and `execute` finds
//! the key a fingerprint stands for by deriving the candidates itself.

use edgeplan_edgekey::EdgeKey;

use crate::query::DEFAULT_TUNNEL_PORT;
use crate::world::World;

/// The fingerprint of a key as written: the digest of its bytes ([`EdgeKey::fingerprint`] of a canonical
/// key is the same digest), so a padded or wrapped copy of the same key
/// compares different from the key the agent needs.
pub fn key_fingerprint(raw: &str) -> String {
    // A canonical key's fingerprint (`EdgeKey::fingerprint`) is this same digest of its text.
    edgeplan_model::secret_fingerprint(raw.as_bytes())
}

/// Where a Portainer environment's key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvRef {
    pub(crate) url: String,
    pub(crate) id: i64,
}

/// The environment whose EdgeKey has this fingerprint.
pub(crate) fn env_by_key_fingerprint(world: &World, fingerprint: &str) -> Option<EnvRef> {
    world.portainer.iter().find_map(|server| {
        server
            .environments
            .iter()
            .find(|e| !e.edge_key.is_empty() && key_fingerprint(&e.edge_key) == fingerprint)
            .map(|e| EnvRef { url: server.url.clone(), id: e.id })
    })
}

/// The EdgeKey Portainer holds for an environment, parsed. Errors never quote the key.
pub(crate) fn environment_key(world: &World, env: &EnvRef) -> Result<EdgeKey, String> {
    let server = world.portainer_server(&env.url).ok_or_else(|| format!("no Portainer at {}", env.url))?;
    let found = server
        .environments
        .iter()
        .find(|e| e.id == env.id)
        .ok_or_else(|| format!("no environment {} at {}", env.id, env.url))?;
    EdgeKey::parse(found.edge_key.as_bytes())
        .map_err(|e| format!("environment {}'s EdgeKey does not parse: {e}", env.id))
}

/// The key text behind `fingerprint` for an agent in kube `context`: some environment's key with
/// field 2 re-pointed at a VPC endpoint of the agent's VPC (on any NLB listener port), or an
/// environment's key as it is.
pub(crate) fn derive_agent_key(world: &World, context: &str, fingerprint: &str) -> Result<String, String> {
    let mut hosts: Vec<&str> = Vec::new();
    if let Some(aws) = world.cluster(context).and_then(|c| c.aws.as_ref())
        && let Some(region) = world.region(&aws.account, &aws.region)
    {
        for endpoint in region.vpc_endpoints.iter().filter(|e| e.vpc_id == aws.vpc_id) {
            hosts.extend(endpoint.dns_entries.iter().map(String::as_str));
        }
    }
    let mut ports: Vec<u16> = world
        .regions()
        .flat_map(|(_, r)| r.load_balancers.iter())
        .flat_map(|lb| lb.listeners.iter().map(|l| l.port))
        .collect();
    ports.push(DEFAULT_TUNNEL_PORT);
    ports.sort_unstable();
    ports.dedup();
    for server in &world.portainer {
        for env in &server.environments {
            let Ok(key) = EdgeKey::parse(env.edge_key.as_bytes()) else { continue };
            if key.fingerprint() == fingerprint {
                return Ok(key.to_canonical().expose_secret().to_string());
            }
            for host in &hosts {
                for port in &ports {
                    if let Ok(derived) = key.with_tunnel_addr(&format!("{host}:{port}"))
                        && derived.fingerprint() == fingerprint
                    {
                        return Ok(derived.to_canonical().expose_secret().to_string());
                    }
                }
            }
        }
    }
    Err(format!("no key the simulated world can derive has the fingerprint {fingerprint}"))
}
