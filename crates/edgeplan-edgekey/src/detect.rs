//! Telling a key apart from what was asked for, so that a key pasted in the wrong place (a
//! host, a file name, an extra argument) is refused without being echoed.

use base64::Engine as _;

use crate::EdgeKey;
use crate::decode::RAW_STD;

/// Shorter base64 than this is not worth calling a key (and is too short to carry one).
const MIN_SYMBOLS: usize = 32;

/// Whether `text` is, holds at its end, or begins with something that looks like an EDGE_KEY:
/// long base64 (either alphabet, padded or not) that decodes to `url|…`, the way a key starts.
/// Also true for a key glued to a `:port` or at the end of a path (`dir/<key>`), and for a
/// truncated key, since those are how a key lands where a host or a file name was expected.
pub fn looks_like_key(text: &str) -> bool {
    let mut candidates = vec![text];
    if let Some((head, _)) = text.rsplit_once(':') {
        candidates.push(head);
    }
    if let Some((_, tail)) = text.rsplit_once(['/', '\\']) {
        candidates.push(tail);
    }
    candidates.into_iter().any(candidate_is_key)
}

fn candidate_is_key(candidate: &str) -> bool {
    if EdgeKey::parse(candidate.as_bytes()).is_ok() {
        return true;
    }
    let symbols: String = candidate.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let symbols = symbols.trim_end_matches('=');
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_');
    if symbols.len() < MIN_SYMBOLS || !symbols.chars().all(base64) {
        return false;
    }
    // A truncated key still decodes: keep whole 4-character groups only.
    let standard: String = symbols
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let whole = &standard[..standard.len() / 4 * 4];
    let Ok(decoded) = RAW_STD.decode(whole) else { return false };
    let text = String::from_utf8_lossy(&decoded);
    text.get(..4).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http")) && text.contains('|')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `https://portainer.example.com|portainer.example.com:30776|<fingerprint>|7`.
    const KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";

    #[test]
    fn keys_are_recognised_wherever_they_were_pasted() {
        assert!(looks_like_key(KEY));
        assert!(looks_like_key(&format!("{KEY}=")));
        assert!(looks_like_key(&format!("{KEY}:8000")));
        assert!(looks_like_key(&format!("/tmp/{KEY}")));
        assert!(looks_like_key(&KEY[..60]), "a truncated key");
        assert!(looks_like_key(&KEY.replace('+', "-")), "the URL-safe alphabet");
        assert!(looks_like_key(&format!("{}\n{}", &KEY[..50], &KEY[50..])), "a soft-wrapped paste");
    }

    #[test]
    fn hosts_and_paths_are_not_keys() {
        for text in [
            "vpce-0a1b2c3d4e5f67890-abcd1234.vpce-svc-0123456789abcdef0.eu-west-1.vpce.amazonaws.com:8000",
            "keys/prod.edgekey",
            "/home/me/edge-key.txt",
            "aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgYSBrZXkgYXQgYWxs",
            "",
            "portainer.example.com:30776",
        ] {
            assert!(!looks_like_key(text), "{text}");
        }
    }
}
