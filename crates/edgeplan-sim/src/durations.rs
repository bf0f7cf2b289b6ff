//! The modelled wait that follows each node kind, for the apply benchmark's critical-path
//! lower bound.

use edgeplan_model::NodeKind;

use crate::world::TransitionKind;

/// The modelled seconds the simulated world takes to settle after a node of `kind` is
/// applied: the durations the executor waits for after each node kind (see `edgeplan_apply`'s
/// waits), taken from [`TransitionKind::duration`]. Every other kind is instant (0).
///
/// Summed along the resource graph's longest path, this is a lower bound on any apply's
/// makespan on the virtual clock.
pub fn modelled_seconds(kind: NodeKind) -> u64 {
    let transition = match kind {
        NodeKind::Nlb => TransitionKind::NlbActive,
        NodeKind::ClusterSgRule => TransitionKind::TargetsHealthy,
        NodeKind::ConnectionAcceptance => TransitionKind::VpceAvailable,
        NodeKind::PortainerRestart | NodeKind::AgentObjects => TransitionKind::RolloutComplete,
        _ => return 0,
    };
    transition.duration()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_kinds_take_their_transition_and_the_rest_are_instant() {
        assert_eq!(modelled_seconds(NodeKind::Nlb), 180);
        assert_eq!(modelled_seconds(NodeKind::ClusterSgRule), 90);
        assert_eq!(modelled_seconds(NodeKind::ConnectionAcceptance), 120);
        assert_eq!(modelled_seconds(NodeKind::PortainerRestart), 30);
        assert_eq!(modelled_seconds(NodeKind::AgentObjects), 30);
        assert_eq!(modelled_seconds(NodeKind::NlbSubnet), 0);
        assert_eq!(modelled_seconds(NodeKind::Vpce), 0);
        assert_eq!(modelled_seconds(NodeKind::LbControllerPolicy), 0);
    }
}
