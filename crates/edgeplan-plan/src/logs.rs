//! What an Edge agent's log lines say about its tunnel (portainer.md §6). The chisel client logs
//! at Info (`client: Connected (Latency …)` is the success line); the agent's own fatal key
//! error names the byte its Go decoder stopped at. The newest line that says anything wins.

use std::fmt;

/// The agent's state, as its logs tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// `client: Connected`: the tunnel is up.
    Connected,
    /// `illegal base64 data at input byte N`: the key's encoding (padding, whitespace, alphabet).
    KeyEncoding,
    /// `unable to associate Edge key` for another reason (`invalid key format`).
    KeyRejected,
    /// `Invalid fingerprint`: field 3 is another server's, or field 2 reaches another server.
    WrongServer,
    /// `client: Connection error`: field 2 cannot be reached (or `client: Disconnected`: it
    /// was, and the tunnel dropped).
    TunnelUnreachable,
    /// `an error occured during short poll` (sic): Portainer refuses or cannot be reached.
    PollFailing,
    /// Logs, none of which says anything about the tunnel yet.
    Running,
    /// No log lines (no pod yet, or logs unavailable).
    NoLogs,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Connected => "connected",
            AgentState::KeyEncoding => "key-encoding",
            AgentState::KeyRejected => "key-rejected",
            AgentState::WrongServer => "wrong-server",
            AgentState::TunnelUnreachable => "tunnel-unreachable",
            AgentState::PollFailing => "poll-failing",
            AgentState::Running => "running",
            AgentState::NoLogs => "no-logs",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classification and the line it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: AgentState,
    pub line: Option<String>,
}

fn classify_line(line: &str) -> Option<AgentState> {
    if line.contains("illegal base64 data at input byte") {
        Some(AgentState::KeyEncoding)
    } else if line.contains("unable to associate Edge key") || line.contains("Unable to associate Edge key") {
        Some(AgentState::KeyRejected)
    } else if line.contains("client: Invalid fingerprint") {
        Some(AgentState::WrongServer)
    } else if line.contains("client: Connected") {
        Some(AgentState::Connected)
    } else if line.contains("client: Connection error")
        || line.contains("client: Give up")
        // The tunnel was up and dropped; the next line is the error it meets reconnecting.
        || line.contains("client: Disconnected")
    {
        Some(AgentState::TunnelUnreachable)
    } else if line.contains("an error occured during short poll") {
        Some(AgentState::PollFailing)
    } else {
        None
    }
}

/// Classify recent log lines, oldest first.
pub fn classify(lines: &[String]) -> Verdict {
    if lines.is_empty() {
        return Verdict { state: AgentState::NoLogs, line: None };
    }
    lines
        .iter()
        .rev()
        .find_map(|line| classify_line(line).map(|state| Verdict { state, line: Some(line.clone()) }))
        .unwrap_or(Verdict { state: AgentState::Running, line: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(lines: &[&str]) -> AgentState {
        classify(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>()).state
    }

    #[test]
    fn each_log_line_the_reference_names_is_classified() {
        assert_eq!(of(&["2026/11/29 10:00:00 client: Connected (Latency 1.2ms)"]), AgentState::Connected);
        assert_eq!(
            of(&[r#"unable to associate Edge key | error="illegal base64 data at input byte 227""#]),
            AgentState::KeyEncoding
        );
        assert_eq!(of(&[r#"unable to associate Edge key | error="invalid key format""#]), AgentState::KeyRejected);
        assert_eq!(of(&["client: Invalid fingerprint (abc)"]), AgentState::WrongServer);
        assert_eq!(
            of(&["client: Connection error: dial tcp 10.0.0.1:8000: i/o timeout"]),
            AgentState::TunnelUnreachable
        );
        assert_eq!(of(&["an error occured during short poll | error=\"…\""]), AgentState::PollFailing);
        assert_eq!(of(&["agent running on Kubernetes platform"]), AgentState::Running);
        assert_eq!(of(&[]), AgentState::NoLogs);
    }

    #[test]
    fn the_newest_telling_line_wins() {
        let lines = ["client: Connection error: i/o timeout", "client: Connected (Latency 3ms)", "edge key loaded"];
        assert_eq!(of(&lines), AgentState::Connected);
        let lines = ["client: Connected (Latency 3ms)", "client: Connection error: EOF"];
        assert_eq!(of(&lines), AgentState::TunnelUnreachable);
        // A tunnel that dropped is not connected, even before the reconnect's error arrives.
        let lines = ["client: Connected (Latency 3ms)", "client: Disconnected"];
        assert_eq!(of(&lines), AgentState::TunnelUnreachable);
    }
}
