//! Portainer: where the tunnel really listens, and how agents reach the API.

use edgeplan_diag::{Finding, RuleId};
use edgeplan_spec::{PortainerInstall, TunnelPort};

use super::span;
use crate::Ctx;

/// The Helm chart's `service.edgeNodePort`, passed as `--tunnel-port` with `service.type: NodePort`.
const HELM_EDGE_NODE_PORT: u16 = 30776;
/// Portainer's own default `--tunnel-port`.
const DEFAULT_TUNNEL_PORT: u16 = 8000;

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let portainer = &ctx.spec.spec.provider.portainer;
    if let (Some(install), Some(port)) = (&portainer.install, &portainer.tunnel_port)
        && let TunnelPort::Port(given) = port.value
    {
        let real = match install.value {
            PortainerInstall::HelmNodePort => Some(HELM_EDGE_NODE_PORT),
            PortainerInstall::HelmLoadBalancer | PortainerInstall::HelmClusterIp => Some(DEFAULT_TUNNEL_PORT),
            PortainerInstall::Other => None,
        };
        if let Some(real) = real
            && real != given
        {
            let mut finding = Finding::of(
                RuleId::TunnelPortInstallMismatch,
                span(port),
                format!("tunnelPort {given}, but this install runs the tunnel server on {real}"),
            )
            .with_label(format!("really {real}"));
            if let Some(s) = span(install) {
                finding = finding.with_related(s, "installed with the Helm chart here");
            }
            ctx.push(finding);
        }
    }

    let url = &portainer.url;
    // Never quoted in a message: the finding names where the credentials are, not what they are.
    if let Some(userinfo) = crate::url_userinfo(url) {
        let what = if url[userinfo].contains(':') { "a user name and password" } else { "a user name" };
        ctx.push(
            Finding::of(RuleId::UrlCredentials, span(url), format!("portainer.url carries {what} before `@`"))
                .with_label("credentials redacted"),
        );
    }
    match url.split_once("://") {
        Some(("https", rest)) | Some(("http", rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let host_only = host
                .strip_prefix('[')
                .map_or_else(|| host.split(':').next().unwrap_or(""), |v6| v6.split(']').next().unwrap_or(""));
            if host_only.is_empty() || host_only.eq_ignore_ascii_case("localhost") {
                ctx.push(
                    Finding::of(
                        RuleId::InvalidValue,
                        span(url),
                        format!("Portainer refuses edge environments for host `{host_only}`"),
                    )
                    .with_help("use the address agents reach Portainer at"),
                );
            }
            if url.starts_with("http://") {
                ctx.push(Finding::of(
                    RuleId::PortainerUrlNotHttps,
                    span(url),
                    "agents would poll Portainer over plain http",
                ));
            }
        }
        _ => ctx.push(
            Finding::of(
                RuleId::InvalidValue,
                span(url),
                format!("`{}` is not an http(s) URL", crate::without_url_credentials(url)),
            )
            .with_help("write the full URL, e.g. https://portainer.example.com"),
        ),
    }
}
