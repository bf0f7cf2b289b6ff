//! Secrets written inline are blanked out of the report's source text, so no renderer (the
//! miette snippet in particular, which prints the lines around every finding) can show them.
//!
//! Blanking keeps every byte offset: each byte of a secret becomes `*`, so spans found on the
//! original text stay valid on the redacted one.

use edgeplan_diag::{SourceFile, Span};
use edgeplan_spec::{SecretRef, Spanned, Spec};

/// Name fragments that mark an env var as a secret when its value is written inline.
const SECRET_NAME_HINTS: &[&str] =
    &["SECRET", "PASSWORD", "PASSWD", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL"];

/// Keys whose scalar value is a secret, for text that did not parse into a `Spec`.
const SECRET_KEYS: &[&str] = &["apiKey", "agentSecret", "edgeKey"];

pub(crate) fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_HINTS.iter().any(|hint| upper.contains(hint))
}

/// The byte range of the user name and password in a URL (`scheme://user:password@host/…`).
pub fn url_userinfo(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let authority = &url[start..];
    let end = authority.find(['/', '?', '#']).unwrap_or(authority.len());
    let at = authority[..end].rfind('@')?;
    Some(start..start + at)
}

/// `url` with any user name and password replaced by `***`, for messages.
pub fn without_url_credentials(url: &str) -> std::borrow::Cow<'_, str> {
    match url_userinfo(url) {
        Some(range) => format!("{}***{}", &url[..range.start], &url[range.end..]).into(),
        None => url.into(),
    }
}

/// The `user:password` of every URL in the text (comments included), so no snippet shows it.
pub(crate) fn url_credential_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    for (index, _) in text.match_indices("://") {
        let start = index + 3;
        let rest = &text[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | ',' | ']' | '}'))
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            spans.push(Span::new(start, start + at));
        }
    }
    spans
}

/// Spans of every secret written inline in a parsed spec, and of credentials in URLs.
pub(crate) fn secret_spans(spec: &Spec, text: &str) -> Vec<Span> {
    let mut spans = url_credential_spans(text);
    let mut literal = |value: &Spanned<SecretRef>| {
        if matches!(value.value, SecretRef::Literal { .. }) {
            spans.push(value.span);
        }
    };
    literal(&spec.spec.provider.portainer.api_key);
    for consumer in spec.spec.consumers.iter() {
        consumer.agent.agent_secret.iter().for_each(&mut literal);
        consumer.environment.edge_key.iter().for_each(&mut literal);
    }
    for consumer in spec.spec.consumers.iter() {
        for var in consumer.agent.env.iter().flatten() {
            if is_secret_env_name(&var.name) {
                spans.push(var.value.value.span);
            }
        }
    }
    spans
}

/// Best effort for text that does not parse: the scalar after a secret key, and the `value:`
/// following a secret-looking `name:`.
pub(crate) fn textual_secret_spans(text: &str) -> Vec<Span> {
    let mut spans = url_credential_spans(text);
    let mut offset = 0;
    let mut previous_name_is_secret = false;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start().trim_start_matches("- ");
        let Some((key, value)) = trimmed.split_once(':') else { continue };
        let key = key.trim().trim_matches(['"', '\'']);
        let value_text = value.trim();
        let is_secret = SECRET_KEYS.contains(&key) || (key == "value" && previous_name_is_secret);
        previous_name_is_secret = key == "name" && is_secret_env_name(value_text.trim_matches(['"', '\'']));
        if is_secret && !value_text.is_empty() && !value_text.starts_with(['{', '#', '&', '*', '|', '>']) {
            let value_start = start + content.len() - value.trim_start().len();
            spans.push(Span::new(value_start, value_start + value_text.len()));
        }
    }
    spans
}

/// The source with every byte inside `spans` replaced by `*` (newlines kept).
pub(crate) fn redact(source: SourceFile, spans: &[Span]) -> SourceFile {
    if spans.iter().all(|s| s.is_empty()) {
        return source;
    }
    let mut bytes = source.text().as_bytes().to_vec();
    for span in spans {
        let end = span.end.min(bytes.len());
        for byte in bytes.iter_mut().take(end).skip(span.start) {
            if *byte != b'\n' && *byte != b'\r' {
                *byte = b'*';
            }
        }
    }
    // Replacing whole bytes of multi-byte characters can only produce ASCII, so this is UTF-8.
    let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    SourceFile::new(source.path.clone(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textual_spans_cover_secret_scalars_only() {
        let text = "apiKey: ptr_abc\nagentSecret:\n  env: X\n- name: DB_PASSWORD\n  value: \"hunter2\"\n- name: LOG\n  value: INFO\n";
        let spans = textual_secret_spans(text);
        let values: Vec<&str> = spans.iter().map(|s| &text[s.start..s.end]).collect();
        assert_eq!(values, ["ptr_abc", "\"hunter2\""]);
    }

    #[test]
    fn url_credentials_are_found_wherever_a_url_is() {
        let text = "url: https://admin:hunter2@p.example.com:9443/x # was http://u@h\nk: \"ftp://a:b@c\"\n";
        let spans = url_credential_spans(text);
        let values: Vec<&str> = spans.iter().map(|s| &text[s.start..s.end]).collect();
        assert_eq!(values, ["admin:hunter2", "u", "a:b"]);
        assert_eq!(without_url_credentials("https://admin:pw@host/a@b"), "https://***@host/a@b");
        assert_eq!(without_url_credentials("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn redaction_keeps_offsets() {
        let source = SourceFile::new("a.yaml", "k: sécret\nnext: 1\n");
        let redacted = redact(source.clone(), &[Span::new(3, 10)]);
        assert_eq!(redacted.text(), "k: *******\nnext: 1\n");
        assert_eq!(redacted.text().len(), source.text().len());
    }
}
