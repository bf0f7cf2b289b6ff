//! Why `EdgeKey::parse` or `EdgeKey::with_tunnel_addr` refused its input.
//!
//! Invariant: no message carries the key or a decoded field value. The only input shown is a
//! single offending byte, escaped.

use crate::fields::describe_byte;

/// A key `EdgeKey::parse` cannot read, or a tunnel address `with_tunnel_addr` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("the input holds no key: it is empty or only whitespace")]
    Empty,
    #[error(
        "byte {offset}: {} is from the URL-safe base64 alphabet, Portainer keys use the standard one",
        describe_byte(*byte)
    )]
    UrlSafeAlphabet { offset: usize, byte: u8 },
    #[error("byte {offset}: {} is not a base64 character", describe_byte(*byte))]
    IllegalByte { offset: usize, byte: u8 },
    #[error(
        "the key has {symbols} base64 characters, a length no base64 encoding has (4n+1), \
         so a character was lost or added"
    )]
    ImpossibleLength { symbols: usize },
    #[error("the decoded key is not UTF-8 text")]
    NotUtf8,
    #[error("the decoded key has {found} `|`-separated fields, the agent needs exactly 4")]
    FieldCount { found: usize },
    #[error("the decoded key's 4th field (endpoint id) is not an integer")]
    EndpointIdNotInteger,
    #[error("invalid tunnel address: {0}")]
    InvalidTunnelAddr(TunnelAddrProblem),
}

impl KeyError {
    /// One sentence on how to fix it, for a `help:` line.
    pub fn help(&self) -> &'static str {
        match self {
            KeyError::Empty => {
                "copy the EDGE_KEY from Portainer's \"Add Edge Environment\" page (Environments > Add environment)"
            }
            KeyError::UrlSafeAlphabet { .. } => {
                "the key was re-encoded with a URL-safe encoder: in the standard alphabet `-` is `+` and `_` is `/`; \
                 the agent rejects `-` and `_`"
            }
            KeyError::IllegalByte { byte: b'=', .. } => {
                "`=` can only be padding at the very end (and the agent accepts none): two keys, \
                 or a key and its padding, were probably pasted together"
            }
            KeyError::IllegalByte { .. } => {
                "the standard base64 alphabet is A-Z, a-z, 0-9, `+` and `/`; quotes, `\\` escapes and \
                 an editor's byte-order mark are common culprits"
            }
            KeyError::ImpossibleLength { .. } => {
                "copy the key again from Portainer, on one line; a truncated or re-encoded key has an \
                 impossible base64 length"
            }
            KeyError::NotUtf8 | KeyError::FieldCount { .. } | KeyError::EndpointIdNotInteger => {
                "a Portainer key decodes to `portainer_url|tunnel_host:port|server_fingerprint|endpoint_id`; \
                 this one does not, so copy it again from Portainer"
            }
            KeyError::InvalidTunnelAddr(_) => {
                "give the tunnel address as `host:port`, e.g. `vpce-0123-abcd.vpce-svc-0123.eu-west-1.vpce.amazonaws.com:8000`, \
                 with no scheme"
            }
        }
    }
}

/// What is wrong with a `host:port` tunnel address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelAddrProblem {
    #[error("it is empty")]
    Empty,
    #[error("it has a scheme (`://`), the key holds a bare `host:port`")]
    HasScheme,
    #[error("it contains whitespace or a control character")]
    Whitespace,
    #[error("it contains `|`, the key's field separator")]
    Pipe,
    #[error("it has no `:port`")]
    MissingPort,
    #[error("the host before `:port` is empty")]
    EmptyHost,
    #[error("the host may hold only letters, digits, `-`, `.` and `_`, or be an IPv6 address in brackets")]
    InvalidHost,
    #[error("the host has an empty label (a leading, trailing or doubled `.`)")]
    EmptyLabel,
    #[error("a label of the host is longer than 63 characters, the DNS limit")]
    LabelTooLong,
    #[error("the host is longer than 253 characters, the DNS limit")]
    HostTooLong,
    #[error("a label of the host starts or ends with `-`")]
    LabelHyphen,
    #[error("the port is not a decimal number")]
    PortNotNumber,
    #[error("the port is outside 1-65535")]
    PortOutOfRange,
}
