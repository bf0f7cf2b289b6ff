//! What the executor waits for after a node, and how it tells "ready" from "not yet" from
//! "never": predicates over the normalized attributes every backend reports, so the AWS,
//! Kubernetes and Portainer backends get the same waits as the simulated world.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use edgeplan_model::{LiveObject, NodeKind, Observed, Value};

/// One kind of wait. The names are stable: `--timeout KIND=DURATION` uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaitKind {
    /// The controller's NLB exists and is `active`.
    NlbActive,
    /// Every NLB target passes its health checks.
    TargetsHealthy,
    /// The provider accepted the consumer's VPC endpoint connection.
    ConnectionAccepted,
    /// The VPC endpoint is `available`.
    VpceAvailable,
    /// A Deployment's new pods are ready.
    RolloutComplete,
    /// The Edge agent holds its tunnel and Portainer sees it check in.
    AgentCheckedIn,
}

impl WaitKind {
    pub const ALL: [WaitKind; 6] = [
        WaitKind::NlbActive,
        WaitKind::TargetsHealthy,
        WaitKind::ConnectionAccepted,
        WaitKind::VpceAvailable,
        WaitKind::RolloutComplete,
        WaitKind::AgentCheckedIn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WaitKind::NlbActive => "nlb-active",
            WaitKind::TargetsHealthy => "targets-healthy",
            WaitKind::ConnectionAccepted => "connection-accepted",
            WaitKind::VpceAvailable => "vpce-available",
            WaitKind::RolloutComplete => "rollout-complete",
            WaitKind::AgentCheckedIn => "agent-checked-in",
        }
    }

    /// What the progress line says the node is waiting for.
    pub fn describe(self) -> &'static str {
        match self {
            WaitKind::NlbActive => "load balancer active",
            WaitKind::TargetsHealthy => "targets healthy",
            WaitKind::ConnectionAccepted => "connection accepted",
            WaitKind::VpceAvailable => "VPC endpoint available",
            WaitKind::RolloutComplete => "rollout complete",
            WaitKind::AgentCheckedIn => "agent checked in",
        }
    }

    /// Default timeouts: a few times what AWS and Kubernetes usually take (NLB ~3 min,
    /// health ~90 s, endpoint ~2 min, rollout ~30 s).
    pub fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            WaitKind::NlbActive => 10 * 60,
            WaitKind::TargetsHealthy => 10 * 60,
            WaitKind::ConnectionAccepted => 5 * 60,
            WaitKind::VpceAvailable => 10 * 60,
            WaitKind::RolloutComplete => 5 * 60,
            WaitKind::AgentCheckedIn => 5 * 60,
        })
    }
}

impl fmt::Display for WaitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WaitKind {
    type Err = String;

    fn from_str(text: &str) -> Result<WaitKind, String> {
        WaitKind::ALL.into_iter().find(|k| k.name() == text).ok_or_else(|| {
            let names: Vec<&str> = WaitKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown wait `{text}`; expected one of {}", names.join(", "))
        })
    }
}

/// Which node a wait observes: the node itself, or (for target health, which the NLB reports)
/// the scope's NLB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    Itself,
    ScopeNode(NodeKind),
}

/// The waits that follow a node, in order. Every node gets them whatever its action: a node
/// the plan left alone is still waited for if a dependent needs it ready.
pub(crate) fn waits_after(kind: NodeKind) -> &'static [(WaitKind, Subject)] {
    match kind {
        NodeKind::Nlb => &[(WaitKind::NlbActive, Subject::Itself)],
        // The rule is what admits the health checks; the NLB reports their result.
        NodeKind::ClusterSgRule => &[(WaitKind::TargetsHealthy, Subject::ScopeNode(NodeKind::Nlb))],
        NodeKind::ConnectionAcceptance => {
            &[(WaitKind::ConnectionAccepted, Subject::Itself), (WaitKind::VpceAvailable, Subject::Itself)]
        }
        NodeKind::PortainerRestart => &[(WaitKind::RolloutComplete, Subject::Itself)],
        NodeKind::AgentObjects => {
            &[(WaitKind::RolloutComplete, Subject::Itself), (WaitKind::AgentCheckedIn, Subject::Itself)]
        }
        _ => &[],
    }
}

/// One look at the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    Ready,
    /// Not yet; what was observed, for the progress line and a timeout's message.
    NotYet(String),
    /// It will never get there by waiting (a rejected connection).
    Never(String),
}

pub(crate) fn check(kind: WaitKind, observed: &Observed) -> Check {
    let Observed::Present(live) = observed else {
        return Check::NotYet(match kind {
            WaitKind::NlbActive | WaitKind::TargetsHealthy => "no load balancer yet".to_string(),
            _ => "not found".to_string(),
        });
    };
    match kind {
        WaitKind::NlbActive => match text(live, "state") {
            Some("active") => Check::Ready,
            Some("failed") => Check::Never(format!("load balancer {} failed", live.id)),
            Some(state) => Check::NotYet(format!("state {state}")),
            None => Check::NotYet("state not reported".to_string()),
        },
        WaitKind::TargetsHealthy => targets(live),
        WaitKind::ConnectionAccepted => match text(live, "state") {
            Some("pendingAcceptance") => Check::NotYet("connection pendingAcceptance".to_string()),
            Some(state @ ("rejected" | "failed" | "expired" | "deleted")) => {
                Check::Never(format!("connection {state}"))
            }
            Some(_) => Check::Ready,
            None => Check::NotYet("state not reported".to_string()),
        },
        WaitKind::VpceAvailable => match text(live, "state") {
            Some("available") => Check::Ready,
            Some(state @ ("rejected" | "failed" | "expired" | "deleted")) => Check::Never(format!("endpoint {state}")),
            Some(state) => Check::NotYet(format!("endpoint {state}")),
            None => Check::NotYet("state not reported".to_string()),
        },
        WaitKind::RolloutComplete => match live.attributes.get("rollout_complete") {
            Some(Value::Bool(true)) => Check::Ready,
            _ => Check::NotYet(rollout(live)),
        },
        WaitKind::AgentCheckedIn => match live.attributes.get("tunnel_connected") {
            Some(Value::Bool(true)) => Check::Ready,
            _ => {
                let state = text(live, "agent_state").unwrap_or("no agent status");
                match text(live, "agent_message").filter(|m| !m.is_empty()) {
                    Some(message) => Check::NotYet(format!("agent {state}: {message}")),
                    None => Check::NotYet(format!("agent {state}")),
                }
            }
        },
    }
}

fn text<'o>(live: &'o LiveObject, key: &str) -> Option<&'o str> {
    live.attributes.get(key).and_then(Value::as_str)
}

fn rollout(live: &LiveObject) -> String {
    match (live.attributes.get("generation"), live.attributes.get("ready_generation")) {
        (Some(Value::Int(want)), Some(Value::Int(ready))) => format!("generation {ready} of {want} ready"),
        _ => "new pods not ready".to_string(),
    }
}

/// Healthy when every target is; otherwise the first unhealthy one, as AWS reports it
/// ("target 10.0.3.7:30776 unhealthy: Target.FailedHealthChecks").
fn targets(live: &LiveObject) -> Check {
    if live.attributes.get("targets_healthy") == Some(&Value::Bool(true)) {
        return Check::Ready;
    }
    let Some(Value::List(health)) = live.attributes.get("target_health") else {
        return Check::NotYet("target health not reported".to_string());
    };
    let unhealthy = health.iter().find_map(|entry| {
        let Value::Map(entry) = entry else { return None };
        let field = |k: &str| entry.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        let state = field("state").unwrap_or_default();
        (state != "healthy").then(|| {
            let mut line = format!(
                "target {}:{} {state}",
                field("target").unwrap_or_else(|| "?".into()),
                field("port").unwrap_or_else(|| "?".into())
            );
            if let Some(reason) = field("reason").filter(|r| r != "null") {
                line.push_str(&format!(": {reason}"));
            }
            line
        })
    });
    Check::NotYet(unhealthy.unwrap_or_else(|| "no registered targets".to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn live(pairs: &[(&str, Value)]) -> Observed {
        Observed::Present(LiveObject {
            id: "x".into(),
            attributes: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            outputs: BTreeMap::new(),
            owned: true,
        })
    }

    #[test]
    fn names_round_trip() {
        for kind in WaitKind::ALL {
            assert_eq!(kind.name().parse::<WaitKind>(), Ok(kind));
        }
        assert!("nlb".parse::<WaitKind>().unwrap_err().contains("nlb-active"));
    }

    #[test]
    fn nlb_states() {
        assert_eq!(check(WaitKind::NlbActive, &Observed::Absent), Check::NotYet("no load balancer yet".into()));
        assert_eq!(
            check(WaitKind::NlbActive, &live(&[("state", "provisioning".into())])),
            Check::NotYet("state provisioning".into())
        );
        assert_eq!(check(WaitKind::NlbActive, &live(&[("state", "active".into())])), Check::Ready);
        assert!(matches!(check(WaitKind::NlbActive, &live(&[("state", "failed".into())])), Check::Never(_)));
    }

    #[test]
    fn an_unhealthy_target_is_named_with_its_reason() {
        let mut entry = BTreeMap::new();
        entry.insert("target".to_string(), Value::str("10.0.3.7"));
        entry.insert("port".to_string(), Value::Int(30776));
        entry.insert("state".to_string(), Value::str("unhealthy"));
        entry.insert("reason".to_string(), Value::str("Target.FailedHealthChecks"));
        let observed =
            live(&[("targets_healthy", false.into()), ("target_health", Value::List(vec![Value::Map(entry)]))]);
        assert_eq!(
            check(WaitKind::TargetsHealthy, &observed),
            Check::NotYet("target 10.0.3.7:30776 unhealthy: Target.FailedHealthChecks".into())
        );
    }

    #[test]
    fn connections() {
        let pending = live(&[("state", "pendingAcceptance".into())]);
        assert!(matches!(check(WaitKind::ConnectionAccepted, &pending), Check::NotYet(_)));
        assert!(matches!(check(WaitKind::VpceAvailable, &pending), Check::NotYet(_)));
        let accepted = live(&[("state", "pending".into())]);
        assert_eq!(check(WaitKind::ConnectionAccepted, &accepted), Check::Ready);
        assert_eq!(check(WaitKind::VpceAvailable, &accepted), Check::NotYet("endpoint pending".into()));
        assert!(matches!(check(WaitKind::VpceAvailable, &live(&[("state", "rejected".into())])), Check::Never(_)));
    }

    #[test]
    fn agents() {
        let crashing = live(&[
            ("tunnel_connected", false.into()),
            ("agent_state", "crashloop".into()),
            ("agent_message", "illegal base64 data at input byte 227".into()),
        ]);
        assert_eq!(
            check(WaitKind::AgentCheckedIn, &crashing),
            Check::NotYet("agent crashloop: illegal base64 data at input byte 227".into())
        );
        assert_eq!(check(WaitKind::AgentCheckedIn, &live(&[("tunnel_connected", true.into())])), Check::Ready);
        assert_eq!(
            check(
                WaitKind::RolloutComplete,
                &live(&[
                    ("rollout_complete", false.into()),
                    ("generation", Value::Int(3)),
                    ("ready_generation", Value::Int(2))
                ])
            ),
            Check::NotYet("generation 2 of 3 ready".into())
        );
    }
}
