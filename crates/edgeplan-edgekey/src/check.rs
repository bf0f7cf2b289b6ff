//! `check`: every problem in a raw key, strictly, with byte offsets into the input as given.
//!
//! The offsets of encoding problems are the ones the agent reports in
//! `illegal base64 data at input byte N` when the same bytes are its `EDGE_KEY`.

use base64::Engine as _;

use crate::EdgeKey;
use crate::decode::{self, RAW_STD};
use crate::error::{KeyError, TunnelAddrProblem};
use crate::fields::{
    FingerprintShape, UrlShape, describe_byte, fingerprint_shape, is_std_symbol, url_shape, validate_tunnel_addr,
};

/// Past this many bad bytes the input is not a mangled key but something else; one summary
/// issue says how many more there are.
const MAX_ILLEGAL_BYTE_ISSUES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The agent rejects the key, or it would not work.
    Error,
    /// The agent accepts it, but something is off.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What an [`Issue`] is about. Variants whose [`IssueKind::is_about_decoded_key`] is true
/// concern the decoded fields and span the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueKind {
    /// Nothing but whitespace.
    Empty,
    /// `=` at the end: the agent decodes unpadded base64.
    Padding,
    /// CR/LF: `trailing` when after the key (beyond the one final line break, which is fine).
    LineBreak {
        trailing: bool,
    },
    /// Spaces, tabs, form feeds (`byte` is the first): fatal to the agent.
    Whitespace {
        byte: u8,
        trailing: bool,
    },
    /// `-` or `_`.
    UrlSafeAlphabet {
        byte: u8,
    },
    /// Any other byte outside the standard alphabet, including `=` before the end.
    IllegalByte {
        byte: u8,
    },
    /// The bad bytes past the first 20, as one issue.
    MoreIllegalBytes {
        count: usize,
    },
    /// 4n+1 base64 characters.
    ImpossibleLength {
        symbols: usize,
    },
    /// The last character has unused bits set; the agent ignores them.
    NonZeroTrailingBits,
    NotUtf8,
    FieldCount {
        found: usize,
    },
    EndpointIdNotInteger,
    NegativeEndpointId,
    UrlNotHttp,
    UrlInsecureHttp,
    TunnelAddrInvalid(TunnelAddrProblem),
    TunnelAddrHasScheme,
    ServerFingerprintEmpty,
    ServerFingerprintLegacyMd5,
    ServerFingerprintUnrecognized,
}

impl IssueKind {
    pub fn severity(self) -> Severity {
        match self {
            IssueKind::LineBreak { trailing: true }
            | IssueKind::NonZeroTrailingBits
            | IssueKind::NegativeEndpointId
            | IssueKind::UrlNotHttp
            | IssueKind::UrlInsecureHttp
            | IssueKind::TunnelAddrHasScheme
            | IssueKind::ServerFingerprintLegacyMd5
            | IssueKind::ServerFingerprintUnrecognized => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// A stable identifier for machine-readable output.
    pub fn code(self) -> &'static str {
        match self {
            IssueKind::Empty => "empty",
            IssueKind::Padding => "padding",
            IssueKind::LineBreak { .. } => "line-break",
            IssueKind::Whitespace { .. } => "whitespace",
            IssueKind::UrlSafeAlphabet { .. } => "url-safe-alphabet",
            IssueKind::IllegalByte { .. } => "illegal-byte",
            IssueKind::MoreIllegalBytes { .. } => "more-illegal-bytes",
            IssueKind::ImpossibleLength { .. } => "impossible-length",
            IssueKind::NonZeroTrailingBits => "non-zero-trailing-bits",
            IssueKind::NotUtf8 => "not-utf8",
            IssueKind::FieldCount { .. } => "field-count",
            IssueKind::EndpointIdNotInteger => "endpoint-id-not-integer",
            IssueKind::NegativeEndpointId => "negative-endpoint-id",
            IssueKind::UrlNotHttp => "url-not-http",
            IssueKind::UrlInsecureHttp => "url-insecure-http",
            IssueKind::TunnelAddrInvalid(_) => "tunnel-addr-invalid",
            IssueKind::TunnelAddrHasScheme => "tunnel-addr-has-scheme",
            IssueKind::ServerFingerprintEmpty => "server-fingerprint-empty",
            IssueKind::ServerFingerprintLegacyMd5 => "server-fingerprint-legacy-md5",
            IssueKind::ServerFingerprintUnrecognized => "server-fingerprint-unrecognized",
        }
    }

    /// True for problems in the decoded fields rather than at particular bytes.
    pub fn is_about_decoded_key(self) -> bool {
        matches!(
            self,
            IssueKind::NotUtf8
                | IssueKind::FieldCount { .. }
                | IssueKind::EndpointIdNotInteger
                | IssueKind::NegativeEndpointId
                | IssueKind::UrlNotHttp
                | IssueKind::UrlInsecureHttp
                | IssueKind::TunnelAddrInvalid(_)
                | IssueKind::TunnelAddrHasScheme
                | IssueKind::ServerFingerprintEmpty
                | IssueKind::ServerFingerprintLegacyMd5
                | IssueKind::ServerFingerprintUnrecognized
        )
    }
}

/// One problem. `offset` and `len` are bytes of the raw input; issues about the decoded key
/// use offset 0 and the whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub offset: usize,
    pub len: usize,
    pub kind: IssueKind,
    pub severity: Severity,
}

const SOFT_WRAP_HELP: &str = "this is what a copy-paste through a soft-wrapping viewer leaves behind. \
     The agent's Go decoder skips CR and LF but fails on a space, and if the byte in its \
     `illegal base64 data at input byte N` moves between attempts with the same key, stray \
     whitespace is the cause. Strip it (`tr -d '[:space:]'`) or run `edgeplan edge-key encode`";

impl Issue {
    fn at(offset: usize, len: usize, kind: IssueKind) -> Issue {
        Issue { offset, len, kind, severity: kind.severity() }
    }

    /// What is wrong, in one line. Never quotes the key or a field value.
    pub fn message(&self) -> String {
        let len = self.len;
        match self.kind {
            IssueKind::Empty => "the input holds no key: it is empty or only whitespace".to_owned(),
            IssueKind::Padding => format!("{len} `=` padding {} at the end of the key", plural(len, "byte", "bytes")),
            IssueKind::LineBreak { trailing: false } => "line break inside the key".to_owned(),
            IssueKind::LineBreak { trailing: true } => "more than one line break after the key".to_owned(),
            IssueKind::Whitespace { byte, trailing } => format!(
                "{} {} the key: the agent fails here with `illegal base64 data at input byte {}`",
                if len == 1 { describe_byte(byte) } else { format!("{len} whitespace bytes") },
                if trailing { "after" } else { "inside" },
                self.offset
            ),
            IssueKind::UrlSafeAlphabet { byte } => format!(
                "{} is from the URL-safe base64 alphabet, the agent only decodes the standard one",
                describe_byte(byte)
            ),
            IssueKind::IllegalByte { byte: b'=' } => "`=` in the middle of the key".to_owned(),
            IssueKind::IllegalByte { byte } => {
                format!("{} is not a base64 character", describe_byte(byte))
            }
            IssueKind::MoreIllegalBytes { count } => {
                format!("{count} more {} that are not base64 characters", plural(count, "byte", "bytes"))
            }
            IssueKind::ImpossibleLength { symbols } => {
                format!("the key has {symbols} base64 characters, a length no base64 encoding has (4n+1)")
            }
            IssueKind::NonZeroTrailingBits => "the last base64 character has unused bits set".to_owned(),
            IssueKind::NotUtf8 => "the decoded key is not UTF-8 text".to_owned(),
            IssueKind::FieldCount { found } => format!(
                "the decoded key has {found} `|`-separated {}, the agent needs exactly 4",
                plural(found, "field", "fields")
            ),
            IssueKind::EndpointIdNotInteger => "the decoded key's 4th field (endpoint id) is not an integer".to_owned(),
            IssueKind::NegativeEndpointId => "the decoded key's 4th field (endpoint id) is negative".to_owned(),
            IssueKind::UrlNotHttp => {
                "the decoded key's 1st field (Portainer URL) is not an absolute http(s) URL".to_owned()
            }
            IssueKind::UrlInsecureHttp => "the decoded key's 1st field (Portainer URL) uses http, not https".to_owned(),
            IssueKind::TunnelAddrInvalid(problem) => {
                format!("the decoded key's 2nd field (tunnel address) is not `host:port`: {problem}")
            }
            IssueKind::TunnelAddrHasScheme => {
                "the decoded key's 2nd field (tunnel address) has an http(s):// scheme".to_owned()
            }
            IssueKind::ServerFingerprintEmpty => {
                "the decoded key's 3rd field (tunnel server fingerprint) is empty".to_owned()
            }
            IssueKind::ServerFingerprintLegacyMd5 => {
                "the decoded key's 3rd field is a legacy MD5 server fingerprint (`aa:bb:…`)".to_owned()
            }
            IssueKind::ServerFingerprintUnrecognized => {
                "the decoded key's 3rd field (tunnel server fingerprint) is neither a 44-character \
                 base64 SHA-256 nor a legacy MD5 `aa:bb:…`"
                    .to_owned()
            }
        }
    }

    /// How to fix it, in a sentence or two.
    pub fn help(&self) -> String {
        match self.kind {
            IssueKind::Empty => KeyError::Empty.help().to_owned(),
            IssueKind::Padding => format!(
                "the agent decodes raw (unpadded) base64 and fails with `illegal base64 data at \
                 input byte {}`: strip the `=`; `edgeplan edge-key encode` does",
                self.offset
            ),
            IssueKind::LineBreak { trailing: false } | IssueKind::Whitespace { trailing: false, .. } => {
                SOFT_WRAP_HELP.to_owned()
            }
            IssueKind::LineBreak { trailing: true } => {
                "one final line break is normal (a Secret file ends with one) and the agent skips \
                 CR/LF, but more suggests a paste artefact; `edgeplan edge-key encode` writes the \
                 bare key"
                    .to_owned()
            }
            IssueKind::Whitespace { trailing: true, .. } => {
                "the agent skips CR and LF but not spaces or tabs: strip them \
                 (`tr -d '[:space:]'`) or run `edgeplan edge-key encode`"
                    .to_owned()
            }
            IssueKind::UrlSafeAlphabet { byte } => KeyError::UrlSafeAlphabet { offset: 0, byte }.help().to_owned(),
            IssueKind::IllegalByte { byte } => KeyError::IllegalByte { offset: 0, byte }.help().to_owned(),
            IssueKind::MoreIllegalBytes { .. } => {
                "with this many bad bytes the input is probably not an EDGE_KEY at all".to_owned()
            }
            IssueKind::ImpossibleLength { symbols } => KeyError::ImpossibleLength { symbols }.help().to_owned(),
            IssueKind::NonZeroTrailingBits => {
                "the agent ignores them, but Portainer's encoder never sets them, so a character \
                 may have been altered; `edgeplan edge-key encode` writes the canonical form"
                    .to_owned()
            }
            IssueKind::NotUtf8 | IssueKind::FieldCount { .. } => KeyError::NotUtf8.help().to_owned(),
            IssueKind::EndpointIdNotInteger => {
                "field 4 is the Portainer environment id in decimal (0 for a global key); the \
                 agent fails with `invalid key format`"
                    .to_owned()
            }
            IssueKind::NegativeEndpointId => {
                "Portainer environment ids are positive (0 means a global key); the agent accepts \
                 this, but Portainer will not know the environment"
                    .to_owned()
            }
            IssueKind::UrlNotHttp => "field 1 should be the Portainer URL the agent polls, such as \
                 `https://portainer.example.com`"
                .to_owned(),
            IssueKind::UrlInsecureHttp => {
                "the agent logs an insecure-connection warning (\"This agent has been configured \
                 using an insecure connection\"); use https unless that is deliberate"
                    .to_owned()
            }
            IssueKind::TunnelAddrInvalid(_) => {
                "chisel dials this address; write `host:port` (for PrivateLink, the VPC endpoint's \
                 DNS name and port) with `edgeplan edge-key set-tunnel HOST:PORT`"
                    .to_owned()
            }
            IssueKind::TunnelAddrHasScheme => {
                "chisel accepts a scheme (https means wss through a TLS terminator), but Portainer \
                 writes a bare `host:port`; `edgeplan edge-key set-tunnel HOST:PORT` writes one"
                    .to_owned()
            }
            IssueKind::ServerFingerprintEmpty => {
                "the fingerprint is how the agent authenticates the tunnel server; copy the key \
                 again from Portainer"
                    .to_owned()
            }
            IssueKind::ServerFingerprintLegacyMd5 => {
                "chisel 1.10 still accepts it but logs `Specified deprecated MD5 fingerprint`; \
                 keys from current Portainer carry a base64 SHA-256"
                    .to_owned()
            }
            IssueKind::ServerFingerprintUnrecognized => {
                "chisel refuses a server whose fingerprint does not match; a copy path that turns \
                 `+` into a space (URL decoding) or re-encodes the key corrupts it, so copy the key \
                 again and let edgeplan (or `kubectl set env`) set it"
                    .to_owned()
            }
        }
    }
}

/// What the agent itself would do with the raw input as its `EDGE_KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentVerdict {
    /// It parses. The tunnel address and fingerprint are only tested when chisel connects.
    Accepts,
    /// Go's base64 decoder stops here.
    IllegalBase64 { offset: usize },
    /// Decodes, but not to 4 fields with an integer last.
    InvalidKeyFormat,
}

impl AgentVerdict {
    /// The `error=` text of the agent's fatal `unable to associate Edge key` log line.
    pub fn agent_error(self) -> Option<String> {
        match self {
            AgentVerdict::Accepts => None,
            AgentVerdict::IllegalBase64 { offset } => Some(format!("illegal base64 data at input byte {offset}")),
            AgentVerdict::InvalidKeyFormat => Some("invalid key format".to_owned()),
        }
    }
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    issues: Vec<Issue>,
    fingerprint: Option<String>,
    agent_verdict: AgentVerdict,
}

impl Report {
    /// In input order; issues about the decoded key come after the encoding ones.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// No error-severity issues (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.error_count() == 0
    }

    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.issues.iter().filter(|issue| issue.severity == severity).count()
    }

    /// [`EdgeKey::fingerprint`] of the key as [`EdgeKey::parse`] reads it, if it does.
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    pub fn agent_verdict(&self) -> AgentVerdict {
        self.agent_verdict
    }
}

/// Checks a raw key strictly: everything the agent rejects, plus what would stop it working
/// later. One final `\n` or `\r\n` is not an issue: Secret files end with one and the agent
/// skips it.
pub fn check(input: &[u8]) -> Report {
    let mut issues = encoding_issues(input);
    let last_symbol = input.iter().rposition(|&byte| is_std_symbol(byte)).unwrap_or(0);
    match decode::lenient_symbols(input) {
        Err(KeyError::Empty) => issues.push(Issue::at(0, input.len(), IssueKind::Empty)),
        Err(KeyError::ImpossibleLength { symbols }) => {
            issues.push(Issue::at(last_symbol, 1, IssueKind::ImpossibleLength { symbols }));
        }
        // Bad bytes: `encoding_issues` reported each one already.
        Err(_) => {}
        Ok(symbols) => {
            if let Ok(decoded) = decode::decode_symbols(&symbols) {
                if RAW_STD.encode(&decoded).as_bytes() != symbols.as_slice() {
                    issues.push(Issue::at(last_symbol, 1, IssueKind::NonZeroTrailingBits));
                }
                for kind in decoded_key_issues(&decoded) {
                    issues.push(Issue::at(0, input.len(), kind));
                }
            }
        }
    }
    Report {
        issues,
        fingerprint: EdgeKey::parse(input).ok().map(|key| key.fingerprint()),
        agent_verdict: agent_verdict(input),
    }
}

/// The input without the one final line break that needs no issue.
fn without_final_line_break(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\r\n").or_else(|| input.strip_suffix(b"\n")).unwrap_or(input)
}

fn is_line_break(byte: u8) -> bool {
    byte == b'\r' || byte == b'\n'
}

fn is_blank(byte: u8) -> bool {
    byte.is_ascii_whitespace() && !is_line_break(byte)
}

fn encoding_issues(input: &[u8]) -> Vec<Issue> {
    let body = without_final_line_break(input);
    let mut issues = Vec::new();
    let mut illegal_reported = 0;
    let mut first_omitted: Option<usize> = None;
    let mut omitted = 0;
    let mut start = 0;
    while start < body.len() {
        let byte = body[start];
        if is_std_symbol(byte) {
            start += 1;
            continue;
        }
        let same_class: fn(u8) -> bool = if is_line_break(byte) {
            is_line_break
        } else if is_blank(byte) {
            is_blank
        } else if byte == b'=' {
            |b| b == b'='
        } else {
            // Other bad bytes get one issue each, so each offset is named.
            |_| false
        };
        let end = start + 1 + body[start + 1..].iter().take_while(|&&b| same_class(b)).count();
        let rest = &body[end..];
        let trailing = rest.is_empty();
        let kind = match byte {
            b'\r' | b'\n' => Some(IssueKind::LineBreak { trailing }),
            _ if is_blank(byte) => Some(IssueKind::Whitespace { byte, trailing }),
            b'=' if rest.iter().all(|&b| b == b'=' || b.is_ascii_whitespace()) => Some(IssueKind::Padding),
            _ => None,
        };
        match kind {
            Some(kind) => issues.push(Issue::at(start, end - start, kind)),
            None if illegal_reported < MAX_ILLEGAL_BYTE_ISSUES => {
                illegal_reported += 1;
                let kind = match byte {
                    b'-' | b'_' => IssueKind::UrlSafeAlphabet { byte },
                    _ => IssueKind::IllegalByte { byte },
                };
                issues.push(Issue::at(start, end - start, kind));
            }
            None => {
                first_omitted.get_or_insert(start);
                omitted += end - start;
            }
        }
        start = end;
    }
    if let Some(offset) = first_omitted {
        let kind = IssueKind::MoreIllegalBytes { count: omitted };
        issues.push(Issue::at(offset, body.len() - offset, kind));
        issues.sort_by_key(|issue| issue.offset);
    }
    issues
}

fn decoded_key_issues(decoded: &[u8]) -> Vec<IssueKind> {
    let [url, tunnel, fingerprint, id] = match decode::split_fields(decoded) {
        Ok(fields) => fields,
        Err(KeyError::FieldCount { found }) => return vec![IssueKind::FieldCount { found }],
        Err(_) => return vec![IssueKind::NotUtf8],
    };
    let mut kinds = Vec::new();
    match url_shape(url) {
        UrlShape::Https => {}
        UrlShape::Http => kinds.push(IssueKind::UrlInsecureHttp),
        UrlShape::NotHttpUrl => kinds.push(IssueKind::UrlNotHttp),
    }
    // chisel itself prefixes `http://` when there is no scheme, so one is legal, just unusual.
    let scheme_len = ["http://", "https://"]
        .iter()
        .find(|scheme| tunnel.get(..scheme.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme)))
        .map_or(0, |scheme| scheme.len());
    if scheme_len > 0 {
        kinds.push(IssueKind::TunnelAddrHasScheme);
    }
    if let Err(problem) = validate_tunnel_addr(&tunnel[scheme_len..]) {
        kinds.push(IssueKind::TunnelAddrInvalid(problem));
    }
    match fingerprint_shape(fingerprint) {
        FingerprintShape::Sha256Base64 => {}
        FingerprintShape::LegacyMd5 => kinds.push(IssueKind::ServerFingerprintLegacyMd5),
        FingerprintShape::Empty => kinds.push(IssueKind::ServerFingerprintEmpty),
        FingerprintShape::Unrecognized => kinds.push(IssueKind::ServerFingerprintUnrecognized),
    }
    match decode::parse_endpoint_id(id) {
        Err(_) => kinds.push(IssueKind::EndpointIdNotInteger),
        Ok(id) if id < 0 => kinds.push(IssueKind::NegativeEndpointId),
        Ok(_) => {}
    }
    kinds
}

/// Replays the agent: Go's `RawStdEncoding.DecodeString` (skips CR/LF, stops at the first other
/// non-alphabet byte, ignores unused trailing bits), then `ParseEdgeKey`'s split.
fn agent_verdict(input: &[u8]) -> AgentVerdict {
    let mut symbols = Vec::with_capacity(input.len());
    for (offset, &byte) in input.iter().enumerate() {
        if is_std_symbol(byte) {
            symbols.push(byte);
        } else if !is_line_break(byte) {
            return AgentVerdict::IllegalBase64 { offset };
        }
    }
    if symbols.len() % 4 == 1 {
        // Go's `decodeQuantum` reports a lone last character at `len(src) - 1`.
        return AgentVerdict::IllegalBase64 { offset: input.len().saturating_sub(1) };
    }
    let Ok(decoded) = decode::decode_symbols(&symbols) else {
        return AgentVerdict::InvalidKeyFormat;
    };
    let fields: Vec<&[u8]> = decoded.split(|&byte| byte == b'|').collect();
    let id_is_integer = match fields[..] {
        [_, _, _, id] => std::str::from_utf8(id).is_ok_and(|id| decode::parse_endpoint_id(id).is_ok()),
        _ => false,
    };
    if id_is_integer { AgentVerdict::Accepts } else { AgentVerdict::InvalidKeyFormat }
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}
