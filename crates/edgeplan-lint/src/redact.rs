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

/// Spans of every secret written inline in a parsed spec.
pub(crate) fn secret_spans(spec: &Spec) -> Vec<Span> {
    let mut spans = Vec::new();
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
    let mut spans = Vec::new();
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
    fn redaction_keeps_offsets() {
        let source = SourceFile::new("a.yaml", "k: sécret\nnext: 1\n");
        let redacted = redact(source.clone(), &[Span::new(3, 10)]);
        assert_eq!(redacted.text(), "k: *******\nnext: 1\n");
        assert_eq!(redacted.text().len(), source.text().len());
    }
}
