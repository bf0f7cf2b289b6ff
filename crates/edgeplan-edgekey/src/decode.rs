//! Lenient base64 decoding, shared by `EdgeKey::parse` and `check`.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::KeyError;
use crate::fields::is_std_symbol;

/// Go's `base64.RawStdEncoding` as the agent uses it: standard alphabet, no padding, and
/// (Go's default, non-strict mode) unused bits in the last character are ignored.
pub(crate) const RAW_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The base64 characters of a pasted key: ASCII whitespace anywhere and `=` at the end are
/// dropped (a soft-wrapped or padded paste); anything else outside the standard alphabet is an
/// error naming its offset in `input`.
pub(crate) fn lenient_symbols(input: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut symbols: Vec<(usize, u8)> =
        input.iter().copied().enumerate().filter(|(_, byte)| !byte.is_ascii_whitespace()).collect();
    while symbols.last().is_some_and(|&(_, byte)| byte == b'=') {
        symbols.pop();
    }
    if symbols.is_empty() {
        return Err(KeyError::Empty);
    }
    if let Some(&(offset, byte)) = symbols.iter().find(|(_, byte)| !is_std_symbol(*byte)) {
        return Err(match byte {
            b'-' | b'_' => KeyError::UrlSafeAlphabet { offset, byte },
            _ => KeyError::IllegalByte { offset, byte },
        });
    }
    if symbols.len() % 4 == 1 {
        return Err(KeyError::ImpossibleLength { symbols: symbols.len() });
    }
    Ok(symbols.into_iter().map(|(_, byte)| byte).collect())
}

/// Decodes characters that passed `lenient_symbols` (or any other alphabet-only input).
pub(crate) fn decode_symbols(symbols: &[u8]) -> Result<Vec<u8>, KeyError> {
    // Every byte is in the alphabet and the length is not 4n+1, so this cannot fail; the
    // mapping only keeps a future base64 change from turning into a panic.
    RAW_STD.decode(symbols).map_err(|_| KeyError::ImpossibleLength { symbols: symbols.len() })
}

/// Splits decoded key text on `|` as the agent does; it needs exactly four fields.
pub(crate) fn split_fields(decoded: &[u8]) -> Result<[&str; 4], KeyError> {
    let text = std::str::from_utf8(decoded).map_err(|_| KeyError::NotUtf8)?;
    let parts: Vec<&str> = text.split('|').collect();
    match parts[..] {
        [url, tunnel, fingerprint, id] => Ok([url, tunnel, fingerprint, id]),
        _ => Err(KeyError::FieldCount { found: parts.len() }),
    }
}

/// Field 4 as the agent reads it with Go's `strconv.Atoi` on 64-bit: optional sign, decimal
/// digits, fits in i64. Rust's `i64::from_str` accepts exactly that.
pub(crate) fn parse_endpoint_id(text: &str) -> Result<i64, KeyError> {
    text.parse::<i64>().map_err(|_| KeyError::EndpointIdNotInteger)
}
