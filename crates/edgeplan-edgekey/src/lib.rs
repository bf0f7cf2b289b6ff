//! Portainer `EDGE_KEY`: parse, check, re-point and re-encode. Pure: no I/O, and no input
//! makes it panic.
//!
//! An `EDGE_KEY` is base64 (standard alphabet, **no** `=` padding: Go's `RawStdEncoding`) of
//! `portainer_url|tunnel_host:port|server_fingerprint|endpoint_id`. The agent decodes it with
//! the same encoding, so a `=`, a `-`, a space, any byte outside `A-Z a-z 0-9 + /` fails with
//! `illegal base64 data at input byte N`; only CR and LF are skipped. It then needs exactly four
//! `|`-separated fields with an integer last.
//!
//! - [`EdgeKey::parse`] is lenient: it reads a key pasted through a soft-wrapping viewer or
//!   with `=` padding, and [`EdgeKey::to_canonical`] writes it back the way the agent wants.
//! - [`check`] is strict: it lists every problem with byte offsets in the raw input, matching
//!   the offsets in the agent's errors.
//! - [`EdgeKey::with_tunnel_addr`] rewrites field 2, the supported way on Portainer CE to point
//!   the agent at another tunnel address (a VPC endpoint's DNS name).
//!
//! Invariant: key material never reaches `Debug`, `Display` or an error message. [`EdgeKey`] and
//! [`CanonicalKey`] implement neither; the key string comes out only through
//! [`CanonicalKey::expose_secret`], and [`EdgeKey::fingerprint`] is the safe way to tell two keys
//! apart in logs.
//!
//! ```compile_fail,E0277
//! let key = edgeplan_edgekey::EdgeKey::parse(b"YXxiOjF8Y3wx").unwrap();
//! let _ = format!("{:?}", key);
//! ```
//!
//! ```compile_fail,E0277
//! let key = edgeplan_edgekey::EdgeKey::parse(b"YXxiOjF8Y3wx").unwrap();
//! let _ = format!("{}", key);
//! ```
//!
//! ```compile_fail,E0277
//! let key = edgeplan_edgekey::EdgeKey::parse(b"YXxiOjF8Y3wx").unwrap();
//! let _ = format!("{:?}", key.to_canonical());
//! ```
//!
//! ```compile_fail,E0599
//! let key = edgeplan_edgekey::EdgeKey::parse(b"YXxiOjF8Y3wx").unwrap();
//! let _ = key.to_canonical().to_string();
//! ```
//!
//! The same code without the formatting compiles, so the failures above are about `Debug` and
//! `Display`:
//!
//! ```
//! let key = edgeplan_edgekey::EdgeKey::parse(b"YXxiOjF8Y3wx").unwrap(); // "a|b:1|c|1"
//! assert_eq!(key.tunnel_addr(), "b:1");
//! assert_eq!(key.to_canonical().expose_secret(), "YXxiOjF8Y3wx");
//! ```

mod check;
mod decode;
mod detect;
mod error;
mod fields;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub use crate::check::{AgentVerdict, Issue, IssueKind, Report, Severity, check};
pub use crate::detect::looks_like_key;
pub use crate::error::{KeyError, TunnelAddrProblem};
pub use crate::fields::validate_tunnel_addr;

/// A decoded `EDGE_KEY`: the four fields, exactly as the agent would split them.
///
/// Deliberately not `Debug`, `Display` or `Serialize`: see the crate docs.
#[derive(Clone, PartialEq, Eq)]
pub struct EdgeKey {
    portainer_url: String,
    tunnel_addr: String,
    server_fingerprint: String,
    // Kept as written (`+7`, `007`) so re-encoding changes only the encoding, never the content.
    endpoint_id_text: String,
    endpoint_id: i64,
}

impl EdgeKey {
    /// Reads a key leniently: ASCII whitespace anywhere (line wraps, spaces, CR/LF) and `=`
    /// padding at the end are ignored. The URL-safe alphabet (`-`, `_`) is not accepted, since the
    /// agent would not accept it either. Error offsets are byte offsets in `input`.
    pub fn parse(input: &[u8]) -> Result<EdgeKey, KeyError> {
        let symbols = decode::lenient_symbols(input)?;
        let decoded = decode::decode_symbols(&symbols)?;
        let [url, tunnel, fingerprint, id] = decode::split_fields(&decoded)?;
        Ok(EdgeKey {
            portainer_url: url.to_owned(),
            tunnel_addr: tunnel.to_owned(),
            server_fingerprint: fingerprint.to_owned(),
            endpoint_id_text: id.to_owned(),
            endpoint_id: decode::parse_endpoint_id(id)?,
        })
    }

    /// Field 1: the Portainer URL the agent polls.
    pub fn portainer_url(&self) -> &str {
        &self.portainer_url
    }

    /// Field 2: the chisel tunnel server as `host:port`.
    pub fn tunnel_addr(&self) -> &str {
        &self.tunnel_addr
    }

    /// Field 3: the chisel server's public key fingerprint (base64 SHA-256, or legacy MD5 hex).
    pub fn server_fingerprint(&self) -> &str {
        &self.server_fingerprint
    }

    /// Field 4: the Portainer environment (endpoint) id; `0` for a global key.
    pub fn endpoint_id(&self) -> i64 {
        self.endpoint_id
    }

    /// A global key (endpoint id 0) lets agents onboard themselves.
    pub fn is_global(&self) -> bool {
        self.endpoint_id == 0
    }

    /// The same key with field 2 replaced. `host_port` must be a bare `host:port` (port
    /// 1-65535, no scheme, whitespace or `|`).
    pub fn with_tunnel_addr(&self, host_port: &str) -> Result<EdgeKey, KeyError> {
        validate_tunnel_addr(host_port).map_err(KeyError::InvalidTunnelAddr)?;
        Ok(EdgeKey { tunnel_addr: host_port.to_owned(), ..self.clone() })
    }

    /// The key as the agent wants it: standard base64 alphabet, no padding, no whitespace.
    pub fn to_canonical(&self) -> CanonicalKey {
        let text = [self.portainer_url.as_str(), &self.tunnel_addr, &self.server_fingerprint, &self.endpoint_id_text]
            .join("|");
        CanonicalKey(decode::RAW_STD.encode(text))
    }

    /// `sha256:` and 16 hex characters identifying the key; safe to print and compare.
    pub fn fingerprint(&self) -> String {
        self.to_canonical().fingerprint()
    }
}

/// A key in canonical encoding. Like [`EdgeKey`] it has no `Debug` or `Display`: the string
/// comes out only through [`CanonicalKey::expose_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalKey(String);

impl CanonicalKey {
    /// The key itself, for writing where the agent will read it. Nowhere else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// `sha256:` and the first 16 hex characters of the SHA-256 of the canonical key.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
        format!("sha256:{hex}")
    }
}

#[cfg(test)]
mod tests;
