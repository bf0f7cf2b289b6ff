//! How the executor tells "ready" from "not yet" from "never": predicates over the declared
//! attributes every backend reports (and the facts the engine derives), so the AWS, Kubernetes
//! and Portainer backends get the same waits as the simulated world. Which waits follow which
//! kind is declared with the kind ([`edgeplan_model::kinds`]).

use edgeplan_model::attr::{self, Attr, field};
use edgeplan_model::{Address, LiveObject, Observed, Value, WaitKind};

/// One look at the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    Ready,
    /// Not yet; what was observed, for the progress line and a timeout's message.
    NotYet(String),
    /// It will never get there by waiting (a rejected connection).
    Never(String),
}

fn is(state: Option<&str>, wanted: &str) -> bool {
    state.is_some_and(|s| s.eq_ignore_ascii_case(wanted))
}

pub(crate) fn check(kind: WaitKind, observed: &Observed) -> Check {
    if kind == WaitKind::Gone {
        return match observed {
            Observed::Absent => Check::Ready,
            Observed::Present(live) => Check::NotYet(match live.text(attr::STATE) {
                Some(state) => format!("{} still exists ({state})", live.id),
                None => format!("{} still exists", live.id),
            }),
        };
    }
    let Observed::Present(live) = observed else {
        return Check::NotYet(match kind {
            WaitKind::NlbActive | WaitKind::TargetsHealthy => "no load balancer yet".to_string(),
            _ => "not found".to_string(),
        });
    };
    let state = live.text(attr::STATE);
    match kind {
        WaitKind::NlbActive => match state {
            Some(s) if is(Some(s), "active") => Check::Ready,
            Some(s) if is(Some(s), "failed") => Check::Never(format!("load balancer {} failed", live.id)),
            Some(s) => Check::NotYet(format!("state {s}")),
            None => Check::NotYet("state not reported".to_string()),
        },
        WaitKind::TargetsHealthy => targets(live),
        WaitKind::ConnectionAccepted => match state {
            Some(s) if is(Some(s), "pendingAcceptance") => Check::NotYet("connection pendingAcceptance".to_string()),
            Some(s) if ["rejected", "failed", "expired", "deleted"].iter().any(|n| is(Some(s), n)) => {
                Check::Never(format!("connection {s}"))
            }
            Some(_) => Check::Ready,
            None => Check::NotYet("state not reported".to_string()),
        },
        WaitKind::VpceAvailable => match state {
            Some(s) if is(Some(s), "available") => Check::Ready,
            Some(s) if ["rejected", "failed", "expired", "deleted"].iter().any(|n| is(Some(s), n)) => {
                Check::Never(format!("endpoint {s}"))
            }
            Some(s) => Check::NotYet(format!("endpoint {s}")),
            None => Check::NotYet("state not reported".to_string()),
        },
        WaitKind::RolloutComplete => match live.flag(attr::ROLLOUT_COMPLETE) {
            Some(true) => Check::Ready,
            _ => Check::NotYet(rollout(live)),
        },
        WaitKind::AgentConnected => match live.text(attr::AGENT_STATE) {
            Some("connected") => Check::Ready,
            state => {
                let state = state.unwrap_or("no-logs");
                match live.text(attr::AGENT_MESSAGE) {
                    Some(line) => Check::NotYet(format!("agent {state}: {line}")),
                    None => Check::NotYet(format!("agent {state}")),
                }
            }
        },
        WaitKind::AgentCheckedIn => checked_in(live),
        // Judged per reference, by `upstream`: the subject is whichever node a reference names.
        WaitKind::UpstreamOutput => Check::Ready,
        WaitKind::Gone => Check::NotYet(format!("{} still exists", live.id)),
    }
}

/// What was last seen of `upstream` while its `output` is not there yet, for the progress line
/// and a timeout's message: that it does not exist, or that it exists without the output, and
/// the last word of whoever fills it in (the LB controller's event on the Service).
pub(crate) fn upstream(upstream: &Address, output: Attr, observed: &Observed) -> String {
    let Observed::Present(live) = observed else {
        return format!("{upstream} does not exist yet, so it has no `{output}`");
    };
    let mut line = format!("{upstream} ({}) reports no `{output}` yet", live.id);
    if let Some(reason) = live.text(attr::CONTROLLER_EVENT_REASON) {
        line.push_str(&format!("; the controller's last event: {reason}"));
        if let Some(message) = live.text(attr::CONTROLLER_EVENT) {
            line.push_str(&format!(": {message}"));
        }
    }
    line
}

/// Portainer's view: Type 7 (the agent reported its platform), Heartbeat, a check-in date.
fn checked_in(env: &LiveObject) -> Check {
    let kind = env.int(attr::TYPE_ID);
    let heartbeat = env.flag(attr::HEARTBEAT) == Some(true);
    let last = env.int(attr::LAST_CHECK_IN_DATE).unwrap_or(0);
    if kind == Some(7) && heartbeat && last > 0 {
        Check::Ready
    } else {
        Check::NotYet(format!(
            "environment {}: Type {}, Heartbeat {heartbeat}, LastCheckInDate {last}",
            env.id,
            kind.map_or_else(|| "?".to_string(), |k| k.to_string())
        ))
    }
}

fn rollout(live: &LiveObject) -> String {
    match (live.int(attr::GENERATION), live.int(attr::OBSERVED_GENERATION), live.int(attr::READY_REPLICAS)) {
        (Some(want), Some(seen), _) if seen < want => format!("generation {seen} of {want} observed"),
        (_, _, Some(ready)) => {
            let updated = live.int(attr::UPDATED_REPLICAS).unwrap_or(0);
            format!("new pods not ready ({updated} updated, {ready} ready)")
        }
        _ => "new pods not ready".to_string(),
    }
}

/// Healthy when every target is; otherwise the first unhealthy one, as AWS reports it
/// ("target 10.0.3.7:30776 unhealthy: Target.FailedHealthChecks").
pub(crate) fn targets(live: &LiveObject) -> Check {
    let health = live.get(attr::TARGET_HEALTH).map(Value::as_list).unwrap_or(&[]);
    if health.is_empty() {
        return Check::NotYet("no registered targets".to_string());
    }
    let unhealthy = health.iter().find_map(|entry| {
        let entry = entry.as_map()?;
        let value = |k: &str| entry.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        let state = value(field::STATE).unwrap_or_default();
        (state != "healthy").then(|| {
            let mut line = format!(
                "target {}:{} {state}",
                value(field::TARGET).unwrap_or_else(|| "?".into()),
                value(field::PORT).unwrap_or_else(|| "?".into())
            );
            if let Some(reason) = value(field::REASON).filter(|r| r != "null") {
                line.push_str(&format!(": {reason}"));
            }
            line
        })
    });
    match unhealthy {
        Some(line) => Check::NotYet(line),
        None => Check::Ready,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeplan_model::Attr;

    use super::*;

    fn live(pairs: &[(Attr, Value)]) -> Observed {
        let mut object = LiveObject::new("x");
        for (attr, value) in pairs {
            object.set(*attr, value.clone());
        }
        Observed::Present(object)
    }

    #[test]
    fn a_missing_upstream_output_names_the_node_the_output_and_the_controller_event() {
        let service = Address::provider("tunnel_service");
        assert_eq!(
            upstream(&service, attr::LOAD_BALANCER_HOSTNAME, &Observed::Absent),
            "provider.tunnel_service does not exist yet, so it has no `load_balancer_hostname`"
        );
        let failing = live(&[
            (attr::CONTROLLER_EVENT_REASON, "FailedBuildModel".into()),
            (attr::CONTROLLER_EVENT, "Failed build model due to …DescribeRouteTables".into()),
        ]);
        assert_eq!(
            upstream(&service, attr::LOAD_BALANCER_HOSTNAME, &failing),
            "provider.tunnel_service (x) reports no `load_balancer_hostname` yet; the controller's last event: \
             FailedBuildModel: Failed build model due to …DescribeRouteTables"
        );
    }

    #[test]
    fn nlb_states() {
        assert_eq!(check(WaitKind::NlbActive, &Observed::Absent), Check::NotYet("no load balancer yet".into()));
        assert_eq!(
            check(WaitKind::NlbActive, &live(&[(attr::STATE, "provisioning".into())])),
            Check::NotYet("state provisioning".into())
        );
        assert_eq!(check(WaitKind::NlbActive, &live(&[(attr::STATE, "active".into())])), Check::Ready);
        assert!(matches!(check(WaitKind::NlbActive, &live(&[(attr::STATE, "failed".into())])), Check::Never(_)));
    }

    #[test]
    fn an_unhealthy_target_is_named_with_its_reason() {
        let entry = |state: &str, reason: Option<&str>| {
            let mut map = BTreeMap::new();
            map.insert(field::TARGET.to_string(), Value::str("10.0.3.7"));
            map.insert(field::PORT.to_string(), Value::Int(30776));
            map.insert(field::STATE.to_string(), Value::str(state));
            map.insert(field::REASON.to_string(), reason.map_or(Value::Null, Value::str));
            Value::Map(map)
        };
        let observed =
            live(&[(attr::TARGET_HEALTH, Value::List(vec![entry("unhealthy", Some("Target.FailedHealthChecks"))]))]);
        assert_eq!(
            check(WaitKind::TargetsHealthy, &observed),
            Check::NotYet("target 10.0.3.7:30776 unhealthy: Target.FailedHealthChecks".into())
        );
        let healthy = live(&[(attr::TARGET_HEALTH, Value::List(vec![entry("healthy", None)]))]);
        assert_eq!(check(WaitKind::TargetsHealthy, &healthy), Check::Ready);
        let none = live(&[(attr::TARGET_HEALTH, Value::List(Vec::new()))]);
        assert_eq!(check(WaitKind::TargetsHealthy, &none), Check::NotYet("no registered targets".into()));
    }

    #[test]
    fn connections_compare_states_case_insensitively() {
        let pending = live(&[(attr::STATE, "pendingAcceptance".into())]);
        assert!(matches!(check(WaitKind::ConnectionAccepted, &pending), Check::NotYet(_)));
        assert!(matches!(check(WaitKind::VpceAvailable, &pending), Check::NotYet(_)));
        let accepted = live(&[(attr::STATE, "pending".into())]);
        assert_eq!(check(WaitKind::ConnectionAccepted, &accepted), Check::Ready);
        assert_eq!(check(WaitKind::VpceAvailable, &accepted), Check::NotYet("endpoint pending".into()));
        assert_eq!(check(WaitKind::VpceAvailable, &live(&[(attr::STATE, "Available".into())])), Check::Ready);
        assert!(matches!(check(WaitKind::VpceAvailable, &live(&[(attr::STATE, "rejected".into())])), Check::Never(_)));
    }

    #[test]
    fn agents_and_check_ins() {
        let crashing = live(&[
            (attr::AGENT_STATE, "key-encoding".into()),
            (
                attr::AGENT_MESSAGE,
                "unable to associate Edge key | error=\"illegal base64 data at input byte 227\"".into(),
            ),
        ]);
        assert_eq!(
            check(WaitKind::AgentConnected, &crashing),
            Check::NotYet(
                "agent key-encoding: unable to associate Edge key | error=\"illegal base64 data at input byte 227\""
                    .into()
            )
        );
        assert_eq!(check(WaitKind::AgentConnected, &live(&[(attr::AGENT_STATE, "connected".into())])), Check::Ready);
        let env = |type_id: i64, heartbeat: bool, last: i64| {
            live(&[
                (attr::TYPE_ID, Value::Int(type_id)),
                (attr::HEARTBEAT, heartbeat.into()),
                (attr::LAST_CHECK_IN_DATE, Value::Int(last)),
            ])
        };
        assert_eq!(check(WaitKind::AgentCheckedIn, &env(7, true, 100)), Check::Ready);
        assert!(matches!(check(WaitKind::AgentCheckedIn, &env(4, false, 0)), Check::NotYet(_)));
        assert!(matches!(check(WaitKind::AgentCheckedIn, &env(7, false, 100)), Check::NotYet(_)));
        assert_eq!(
            check(
                WaitKind::RolloutComplete,
                &live(&[
                    (attr::ROLLOUT_COMPLETE, false.into()),
                    (attr::GENERATION, Value::Int(3)),
                    (attr::OBSERVED_GENERATION, Value::Int(2))
                ])
            ),
            Check::NotYet("generation 2 of 3 observed".into())
        );
    }
}
