//! Rules for single bytes and for the four decoded fields, shared by `parse`, `check` and
//! `with_tunnel_addr`.

use crate::error::TunnelAddrProblem;

/// A byte of the standard base64 alphabet (`A-Z a-z 0-9 + /`), the only bytes the agent decodes.
pub(crate) fn is_std_symbol(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// A byte for a message: visible ASCII as itself in backticks, anything else escaped, so a
/// control byte can't reach the terminal.
pub(crate) fn describe_byte(byte: u8) -> String {
    match byte {
        b' ' => "a space".to_owned(),
        b'\t' => "a tab (`\\t`)".to_owned(),
        b'\r' => "a carriage return (`\\r`)".to_owned(),
        b'\n' => "a line feed (`\\n`)".to_owned(),
        b'`' => "a backtick".to_owned(),
        0x21..=0x7e => format!("`{}`", char::from(byte)),
        _ => format!("`\\x{byte:02x}`"),
    }
}

/// Checks a tunnel address as `with_tunnel_addr` will write it: `host:port`, nothing else.
///
/// ```
/// use edgeplan_edgekey::{validate_tunnel_addr, TunnelAddrProblem};
/// assert!(validate_tunnel_addr("vpce-0a1b.vpce-svc-0123.eu-west-1.vpce.amazonaws.com:8000").is_ok());
/// assert!(validate_tunnel_addr("[fd00::1]:8000").is_ok());
/// assert_eq!(validate_tunnel_addr("tcp://host:8000"), Err(TunnelAddrProblem::HasScheme));
/// assert_eq!(validate_tunnel_addr("host:0"), Err(TunnelAddrProblem::PortOutOfRange));
/// ```
pub fn validate_tunnel_addr(host_port: &str) -> Result<(), TunnelAddrProblem> {
    if host_port.is_empty() {
        return Err(TunnelAddrProblem::Empty);
    }
    if host_port.contains("://") {
        return Err(TunnelAddrProblem::HasScheme);
    }
    if host_port.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TunnelAddrProblem::Whitespace);
    }
    if host_port.contains('|') {
        return Err(TunnelAddrProblem::Pipe);
    }
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return Err(TunnelAddrProblem::MissingPort);
    };
    if host.is_empty() {
        return Err(TunnelAddrProblem::EmptyHost);
    }
    validate_host(host)?;
    validate_port(port)
}

/// A DNS name (labels of at most 63 characters, 253 in all, none empty, none starting or
/// ending with `-`), an IPv4 address, or an IPv6 address in brackets. The agent dials it as
/// written, so a host no resolver accepts fails only on the consumer cluster, much later.
fn validate_host(host: &str) -> Result<(), TunnelAddrProblem> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ok = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return if ok { Ok(()) } else { Err(TunnelAddrProblem::InvalidHost) };
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return Err(TunnelAddrProblem::InvalidHost);
    }
    if host.len() > 253 {
        return Err(TunnelAddrProblem::HostTooLong);
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(TunnelAddrProblem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(TunnelAddrProblem::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(TunnelAddrProblem::LabelHyphen);
        }
    }
    Ok(())
}

fn validate_port(port: &str) -> Result<(), TunnelAddrProblem> {
    // Check the digits ourselves: `u16::from_str` would also take a leading `+`.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TunnelAddrProblem::PortNotNumber);
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(TunnelAddrProblem::PortOutOfRange),
    }
}

/// How field 1, the Portainer URL, looks to the agent (it only `url.Parse`s it and warns on http).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlShape {
    Https,
    Http,
    NotHttpUrl,
}

pub(crate) fn url_shape(url: &str) -> UrlShape {
    let Some((scheme, rest)) = url.split_once("://") else {
        return UrlShape::NotHttpUrl;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let has_bad_char = url.chars().any(|c| c.is_whitespace() || c.is_control());
    if host.is_empty() || has_bad_char {
        return UrlShape::NotHttpUrl;
    }
    if scheme.eq_ignore_ascii_case("https") {
        UrlShape::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        UrlShape::Http
    } else {
        UrlShape::NotHttpUrl
    }
}

/// The chisel server fingerprint formats in field 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FingerprintShape {
    /// chisel >= 1.8: padded standard base64 of a SHA-256, 44 characters ending in `=`.
    Sha256Base64,
    /// Keys from before the chisel upgrade: MD5 as 16 hex pairs joined by `:`.
    LegacyMd5,
    Empty,
    Unrecognized,
}

pub(crate) fn fingerprint_shape(fingerprint: &str) -> FingerprintShape {
    let bytes = fingerprint.as_bytes();
    if bytes.is_empty() {
        return FingerprintShape::Empty;
    }
    if bytes.len() == 44 && bytes[43] == b'=' && bytes[..43].iter().all(|&b| is_std_symbol(b)) {
        return FingerprintShape::Sha256Base64;
    }
    let pairs: Vec<&str> = fingerprint.split(':').collect();
    let is_md5 =
        pairs.len() == 16 && pairs.iter().all(|pair| pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit()));
    if is_md5 { FingerprintShape::LegacyMd5 } else { FingerprintShape::Unrecognized }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_addr_rules() {
        assert_eq!(validate_tunnel_addr("portainer.example.com:30776"), Ok(()));
        assert_eq!(validate_tunnel_addr("10.0.0.1:8000"), Ok(()));
        assert_eq!(validate_tunnel_addr("[::1]:8000"), Ok(()));
        assert_eq!(validate_tunnel_addr("host:65535"), Ok(()));
        assert_eq!(validate_tunnel_addr(""), Err(TunnelAddrProblem::Empty));
        assert_eq!(validate_tunnel_addr("http://h:1"), Err(TunnelAddrProblem::HasScheme));
        assert_eq!(validate_tunnel_addr("h :1"), Err(TunnelAddrProblem::Whitespace));
        assert_eq!(validate_tunnel_addr("h:1\n"), Err(TunnelAddrProblem::Whitespace));
        assert_eq!(validate_tunnel_addr("h|x:1"), Err(TunnelAddrProblem::Pipe));
        assert_eq!(validate_tunnel_addr("host"), Err(TunnelAddrProblem::MissingPort));
        assert_eq!(validate_tunnel_addr(":8000"), Err(TunnelAddrProblem::EmptyHost));
        assert_eq!(validate_tunnel_addr("::1:8000"), Err(TunnelAddrProblem::InvalidHost));
        assert_eq!(validate_tunnel_addr("h/p:80"), Err(TunnelAddrProblem::InvalidHost));
        assert_eq!(validate_tunnel_addr("h:"), Err(TunnelAddrProblem::PortNotNumber));
        assert_eq!(validate_tunnel_addr("h:+80"), Err(TunnelAddrProblem::PortNotNumber));
        assert_eq!(validate_tunnel_addr("h:0"), Err(TunnelAddrProblem::PortOutOfRange));
        assert_eq!(validate_tunnel_addr("h:65536"), Err(TunnelAddrProblem::PortOutOfRange));
        assert_eq!(validate_tunnel_addr("h:99999999999"), Err(TunnelAddrProblem::PortOutOfRange));
    }

    #[test]
    fn host_labels_follow_dns_rules() {
        let label = "a".repeat(63);
        assert_eq!(validate_tunnel_addr(&format!("{label}.example.com:8000")), Ok(()));
        assert_eq!(validate_tunnel_addr(&format!("{label}a.example.com:8000")), Err(TunnelAddrProblem::LabelTooLong));
        assert_eq!(validate_tunnel_addr("vpce..amazonaws.com:8000"), Err(TunnelAddrProblem::EmptyLabel));
        assert_eq!(validate_tunnel_addr(".vpce.amazonaws.com:8000"), Err(TunnelAddrProblem::EmptyLabel));
        assert_eq!(validate_tunnel_addr("vpce.amazonaws.com.:8000"), Err(TunnelAddrProblem::EmptyLabel));
        assert_eq!(validate_tunnel_addr("-vpce.amazonaws.com:8000"), Err(TunnelAddrProblem::LabelHyphen));
        assert_eq!(validate_tunnel_addr("vpce-.amazonaws.com:8000"), Err(TunnelAddrProblem::LabelHyphen));
        let long = vec!["a".repeat(60); 5].join(".");
        assert_eq!(validate_tunnel_addr(&format!("{long}:8000")), Err(TunnelAddrProblem::HostTooLong));
        assert_eq!(validate_tunnel_addr("10.0.0.1:8000"), Ok(()));
        assert_eq!(validate_tunnel_addr("_svc.example.com:8000"), Ok(()));
    }

    #[test]
    fn url_shapes() {
        assert_eq!(url_shape("https://portainer.example.com"), UrlShape::Https);
        assert_eq!(url_shape("HTTPS://p.example.com:9443/"), UrlShape::Https);
        assert_eq!(url_shape("http://10.116.1.178:9000"), UrlShape::Http);
        assert_eq!(url_shape("portainer.example.com"), UrlShape::NotHttpUrl);
        assert_eq!(url_shape("ftp://p.example.com"), UrlShape::NotHttpUrl);
        assert_eq!(url_shape("https://"), UrlShape::NotHttpUrl);
        assert_eq!(url_shape("https://a b"), UrlShape::NotHttpUrl);
    }

    #[test]
    fn fingerprint_shapes() {
        let sha = "SHF+e25zLvC20boxYUsDHmLHWlyQt57LCHls6hSeJjg=";
        assert_eq!(fingerprint_shape(sha), FingerprintShape::Sha256Base64);
        let md5 = "4b:1c:cb:00:11:22:33:44:55:66:77:88:99:aa:bb:cc";
        assert_eq!(fingerprint_shape(md5), FingerprintShape::LegacyMd5);
        assert_eq!(fingerprint_shape(""), FingerprintShape::Empty);
        // What the install script's substitution can leave: `+` turned into a space.
        let mangled = "SHF e25zLvC20boxYUsDHmLHWlyQt57LCHls6hSeJjg=";
        assert_eq!(fingerprint_shape(mangled), FingerprintShape::Unrecognized);
    }

    #[test]
    fn bytes_are_described_escaped() {
        assert_eq!(describe_byte(b'-'), "`-`");
        assert_eq!(describe_byte(b' '), "a space");
        assert_eq!(describe_byte(0x1b), "`\\x1b`");
        assert_eq!(describe_byte(0xef), "`\\xef`");
    }
}
