//! The slice of Portainer's HTTP API that verify uses, answered from the world as Portainer
//! answers it (portainer.md, "Kubernetes proxy"): `GET /api/endpoints/{id}/kubernetes/…` is
//! proxied through the agent's chisel tunnel, so it is 200 only while the tunnel is up.

use edgeplan_model::BackendError;
use edgeplan_model::backend::HttpResponse;
use serde_json::json;

use crate::world::World;

pub(crate) fn get(world: &World, url: &str, path: &str) -> Result<HttpResponse, BackendError> {
    let server = world.portainer_server(url).ok_or_else(|| BackendError::Transport {
        message: format!("the simulated world has no Portainer at {url}"),
        retryable: false,
    })?;
    let Some(rest) = path.strip_prefix("/api/endpoints/") else { return Ok(status(404, "Not found")) };
    let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(id) = id.parse::<i64>() else { return Ok(status(400, "Invalid environment identifier route variable")) };
    let Some(env) = server.environments.iter().find(|e| e.id == id) else {
        return Ok(status(404, "Unable to find an environment with the specified identifier inside the database"));
    };
    let Some(kube_path) = rest.strip_prefix("kubernetes/") else { return Ok(status(404, "Not found")) };
    if env.env_type != 7 {
        // Only an Edge agent on Kubernetes (Type 7) has a Kubernetes proxy.
        return Ok(status(404, "Not found"));
    }
    if env.edge_id.is_empty() {
        return Ok(status(500, "No Edge agent registered with the environment"));
    }
    if !env.tunnel_connected {
        return Ok(HttpResponse {
            status: 500,
            body: json!({"message": "Unable to get the active tunnel", "details": "Unable to open the tunnel"})
                .to_string(),
        });
    }
    // Through the tunnel: the agent answers from its own cluster's API.
    let cluster = world.kubernetes.iter().find(|c| {
        c.deployments.iter().any(|d| crate::query::env_value(c, d, "EDGE_ID").as_deref() == Some(env.edge_id.as_str()))
    });
    match (kube_path, cluster) {
        ("api/v1/namespaces", Some(cluster)) => {
            let items: Vec<_> = cluster
                .namespaces
                .iter()
                .map(|n| json!({"metadata": {"name": n}, "status": {"phase": "Active"}}))
                .collect();
            Ok(HttpResponse {
                status: 200,
                body: json!({"kind": "NamespaceList", "apiVersion": "v1", "items": items}).to_string(),
            })
        }
        (_, None) => Ok(status(502, "agent unreachable")),
        _ => Ok(status(404, "the server could not find the requested resource")),
    }
}

fn status(code: u16, message: &str) -> HttpResponse {
    HttpResponse { status: code, body: json!({ "message": message }).to_string() }
}
