//! Text → [`Spec`], or the one finding that explains why not.
//!
//! The YAML crate stops at the first error, so parse failures are a single finding; every
//! well-typed spec then goes through all static rules at once (in `edgeplan-lint`).

use edgeplan_diag::{Finding, RuleId, SourceFile, Span};
use serde_saphyr::{Error as YamlError, Location};

use crate::Spec;
use crate::scalars::HELP_MARK;

/// Larger specs are refused before parsing: a 1,000-consumer spec is about 1.5 MB.
pub const MAX_SPEC_BYTES: usize = 8 * 1024 * 1024;
/// Maximum nesting depth; the deepest legitimate path in a spec is 7.
const MAX_DEPTH: usize = 32;

pub const API_VERSION: &str = "edgeplan.dev/v1alpha1";
pub const KIND: &str = "Topology";

/// Decode bytes as UTF-8 text, or explain where they stop being UTF-8.
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, Finding> {
    std::str::from_utf8(bytes).map_err(|err| {
        let at = err.valid_up_to();
        let bad = err.error_len().unwrap_or(1);
        Finding::of(RuleId::NotUtf8, Some(Span::new(at, at + bad)), format!("invalid UTF-8 at byte {at}"))
            .with_label("not UTF-8")
    })
}

/// Parse a spec's text. The source is needed to turn the YAML crate's line/column
/// positions into byte spans.
pub fn parse(source: &SourceFile) -> Result<Spec, Finding> {
    let text = source.text();
    if text.len() > MAX_SPEC_BYTES {
        return Err(Finding::of(
            RuleId::ResourceLimit,
            None,
            format!("the spec is larger than {} MiB", MAX_SPEC_BYTES / (1024 * 1024)),
        )
        .with_help("split the consumers over several specs (one stack each)"));
    }
    if is_blank(text) {
        return Err(Finding::of(RuleId::EmptySpec, None, "the spec is empty"));
    }
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 100_000,
        },
    };
    // A typed parse stops at the first *type* error, which for a mis-indented key is a
    // misleading "missing key" reported before the real syntax error: when it fails, a
    // syntax-only pass says whether the YAML itself is broken, and that is reported first.
    // Only the first document is parsed when what follows it is empty (a trailing `---`): its
    // byte offsets are the file's, so every span still points into the whole source.
    let document = without_trailing_empty_documents(text);
    let spec: Spec = match serde_saphyr::from_str_with_options(document, options.clone()) {
        Ok(spec) => spec,
        Err(typed) => {
            serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(document, options)
                .map_err(|err| to_finding(source, &err))?;
            return Err(to_finding(source, &typed));
        }
    };
    check_header(&spec)?;
    Ok(spec)
}

fn is_blank(text: &str) -> bool {
    // Any YAML line break, CR alone included: a CR-only file is not one long comment.
    text.split(['\n', '\r']).all(is_empty_line)
}

/// A line that holds no content: blank, a comment, or a document marker on its own.
fn is_empty_line(line: &str) -> bool {
    let line = line.trim();
    let marker = line.strip_prefix("---").or_else(|| line.strip_prefix("...")).map(str::trim_start);
    line.is_empty() || line.starts_with('#') || marker.is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
}

/// `text` up to the first document marker (`---` or `...` at column 0) after which nothing but
/// blank lines, comments and more markers follow; all of `text` otherwise.
fn without_trailing_empty_documents(text: &str) -> &str {
    let mut offset = 0;
    let mut seen_content = false;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let is_marker = (line.starts_with("---") || line.starts_with("..."))
            && line[3..].chars().next().is_none_or(char::is_whitespace);
        if seen_content && is_marker && text[start..].split(['\n', '\r']).all(is_empty_line) {
            return &text[..start];
        }
        seen_content |= !is_empty_line(line);
    }
    text
}

/// The text with each CR that is not part of a CRLF turned into LF. YAML reads a lone CR as a
/// line break; every line/column computation here reads LF. One byte for one byte, so byte
/// offsets are the same in both texts.
pub fn normalize_line_breaks(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let lone_cr = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !(0..bytes.len()).any(lone_cr) {
        return std::borrow::Cow::Borrowed(text);
    }
    let normalized: String = text.char_indices().map(|(i, c)| if c == '\r' && lone_cr(i) { '\n' } else { c }).collect();
    std::borrow::Cow::Owned(normalized)
}

fn check_header(spec: &Spec) -> Result<(), Finding> {
    if spec.api_version.value != API_VERSION {
        return Err(Finding::of(
            RuleId::UnsupportedVersion,
            Some(spec.api_version.span),
            format!("apiVersion `{}` is not supported", spec.api_version.value),
        )
        .with_label(format!("expected {API_VERSION}")));
    }
    if spec.kind.value != KIND {
        return Err(Finding::of(
            RuleId::UnsupportedVersion,
            Some(spec.kind.span),
            format!("kind `{}` is not supported", spec.kind.value),
        )
        .with_label(format!("expected {KIND}")));
    }
    Ok(())
}

/// Map a YAML/serde error to a finding with a precise span.
fn to_finding(source: &SourceFile, err: &YamlError) -> Finding {
    let err = unwrap_wrappers(err);
    let span = err.location().and_then(|loc| span_of(source, loc));
    // Errors a value's own visitor raises are located at its key: point at the value.
    let span = match err {
        YamlError::SerdeInvalidType { .. } | YamlError::SerdeInvalidValue { .. } | YamlError::Message { .. } => {
            span.map(|s| value_after_key(source.text(), s).unwrap_or(s))
        }
        _ => span,
    };
    let message = describe(err);
    let finding = match err {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            let help = match did_you_mean(field, expected) {
                Some(best) => format!("did you mean `{best}`? Valid keys here: {}", expected.join(", ")),
                None => format!("valid keys here: {}", expected.join(", ")),
            };
            Finding::of(RuleId::UnknownKey, span, format!("unknown key `{field}`")).with_help(help)
        }
        YamlError::SerdeUnknownVariant { variant, expected, .. } => {
            let help = match did_you_mean(variant, expected) {
                Some(best) => format!("did you mean `{best}`? Allowed: {}", expected.join(", ")),
                None => format!("allowed: {}", expected.join(", ")),
            };
            Finding::of(RuleId::WrongType, span, format!("unknown value `{variant}`")).with_help(help)
        }
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().unwrap_or("?");
            Finding::of(RuleId::DuplicateKey, span, format!("duplicate key `{key}`"))
        }
        YamlError::SerdeMissingField { field, .. } => {
            return Finding::of(RuleId::MissingField, span, format!("missing required key `{field}`"))
                .with_label(format!("the mapping that lacks `{field}` ends here"));
        }
        YamlError::Unexpected { expected, .. } => {
            let wanted = match *expected {
                "string scalar" => "a single value",
                "sequence start" => "a list",
                "mapping start" => "a mapping",
                other => other,
            };
            return Finding::of(RuleId::WrongType, span, format!("expected {wanted} here"))
                .with_label(format!("expected {wanted}"))
                .with_help("see schemas/edgeplan.schema.json for the expected shape");
        }
        YamlError::NullIntoString { .. } => Finding::of(RuleId::WrongType, span, message)
            .with_help("write a value, or quote it (\"\") if an empty string is really meant"),
        YamlError::Message { .. } if message.contains(HELP_MARK) => {
            // Our own visitors' words: a message and its help line.
            let (message, help) = message.rsplit_once(HELP_MARK).unwrap_or((&message, ""));
            let label = if message.contains("quoted string") { "quoted: a string" } else { message };
            return Finding::of(RuleId::WrongType, span, message).with_label(label).with_help(help);
        }
        YamlError::SerdeInvalidType { unexpected, expected, .. } => {
            let written = span.and_then(|s| source.text().get(s.start..s.end)).unwrap_or("");
            let collection = matches!(unexpected.as_str(), "sequence" | "map");
            let message = if !collection && !written.is_empty() && !written.contains('\n') {
                format!("`{written}` is not {expected}")
            } else {
                format!("expected {expected} here, not {}", with_article(unexpected))
            };
            return Finding::of(RuleId::WrongType, span, message).with_label(format!("expected {expected}"));
        }
        YamlError::SerdeInvalidValue { expected, .. } => {
            let written = span.and_then(|s| source.text().get(s.start..s.end)).unwrap_or("");
            let message = if written.is_empty() || written.contains('\n') {
                format!("expected {expected} here")
            } else {
                format!("`{written}` is not {expected}")
            };
            return Finding::of(RuleId::WrongType, span, message).with_label(format!("expected {expected}"));
        }
        YamlError::SerdeInvalidLength { .. }
        | YamlError::InvalidBooleanStrict { .. }
        | YamlError::UnexpectedValueForUnit { .. }
        | YamlError::Message { .. }
        | YamlError::NonFiniteFloat { .. } => Finding::of(RuleId::WrongType, span, message),
        YamlError::InvalidScalar { .. } => {
            let written = span.and_then(|s| source.text().get(s.start..s.end)).unwrap_or("");
            let (message, label) = scalar_message(&message, written);
            return Finding::of(RuleId::WrongType, span, message).with_label(label);
        }
        YamlError::Budget { breach, .. } => {
            return Finding::of(RuleId::ResourceLimit, span, budget_message(breach)).with_label("limit reached here");
        }
        YamlError::AliasReplayCounterOverflow { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => Finding::of(RuleId::ResourceLimit, span, message),
        YamlError::MultipleDocuments { .. } => {
            return Finding::of(RuleId::YamlSyntax, span, "a second YAML document starts here")
                .with_label("second document")
                .with_help("put one spec in a file; remove the second `---` document");
        }
        _ if message.contains("recursion limit") => {
            return Finding::of(RuleId::ResourceLimit, span, format!("nesting deeper than {MAX_DEPTH} levels"))
                .with_label("too deep");
        }
        _ => syntax_finding(source, span, message),
    };
    finding.with_label(label_for(err))
}

/// serde's words for what it found (`sequence`, `map`, `integer \`5\``), as a noun phrase.
fn with_article(unexpected: &str) -> String {
    match unexpected {
        "sequence" => "a list".to_string(),
        "map" => "a mapping".to_string(),
        "unit value" | "null" => "an empty value".to_string(),
        other if other.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {other}"),
        other => format!("a {other}"),
    }
}

/// The span of the value written after the key at `key`, when `key` is a mapping key with its
/// value on the same line (a scalar, or a flow collection opening there). serde's errors from
/// a value's visitor carry the location of the key.
fn value_after_key(text: &str, key: Span) -> Option<Span> {
    let rest = text.get(key.end..)?;
    let after_colon = rest.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    let value = after_colon.trim_start_matches([' ', '\t']);
    let start = text.len() - value.len();
    let line = value.split(['\n', '\r']).next().unwrap_or("");
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let before = text.get(..key.start)?.rsplit(['\n', '\r']).next().unwrap_or("");
    let in_flow = before.contains(['{', '[']);
    let len = scalar_len(line, in_flow);
    (len > 0).then(|| Span::new(start, start + len))
}

/// Length of the scalar (or flow collection) that starts `line`.
fn scalar_len(line: &str, in_flow: bool) -> usize {
    let mut chars = line.char_indices();
    match chars.next() {
        Some((_, quote @ ('"' | '\''))) => {
            // `\"` escapes a double quote; `''` is a single quote inside single quotes.
            let mut chars = chars.peekable();
            while let Some((i, c)) = chars.next() {
                let escape = quote == '"' && c == '\\';
                let doubled = c == quote && quote == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'');
                if escape || doubled {
                    chars.next();
                } else if c == quote {
                    return i + 1;
                }
            }
            line.len()
        }
        Some((_, '[' | '{')) => line.trim_end().len(),
        _ => {
            let end = line.find(" #").unwrap_or(line.len());
            let end = if in_flow { line[..end].find([',', '}', ']']).unwrap_or(end) } else { end };
            line[..end].trim_end().len()
        }
    }
}

/// "invalid u16" says nothing to a user; say what was written and what was expected.
fn scalar_message(message: &str, written: &str) -> (String, String) {
    let expected = match message.strip_prefix("invalid ") {
        // The spec's only u16 values are ports.
        Some("u16") => "a port number from 1 to 65535",
        Some("u32" | "u64" | "usize") => "a non-negative whole number",
        Some("i32" | "i64") => "a whole number",
        Some("boolean" | "bool") => "true or false",
        _ => return (message.to_string(), message.to_string()),
    };
    (format!("`{written}` is not {expected}"), format!("expected {expected}"))
}

fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => format!("nesting deeper than {MAX_DEPTH} levels"),
        B::Aliases { .. } | B::Anchors { .. } => "more than 1,000 YAML aliases or anchors".to_string(),
        B::RecordedAnchorEvents { .. } => "YAML aliases expand to too much content (an alias bomb?)".to_string(),
        B::Documents { .. } => "more than one YAML document".to_string(),
        B::Nodes { .. } | B::Events { .. } => "too many YAML nodes".to_string(),
        B::ScalarBytes { .. } => "too much text in YAML values".to_string(),
        _ => "the spec exceeds a parser limit".to_string(),
    }
}

fn unwrap_wrappers(mut err: &YamlError) -> &YamlError {
    loop {
        match err {
            YamlError::WithSnippet { .. } => err = err.without_snippet(),
            YamlError::AliasError { error, .. } => err = error,
            _ => return err,
        }
    }
}

fn syntax_finding(source: &SourceFile, span: Option<Span>, message: String) -> Finding {
    // Only for tab errors: a tab inside a quoted value elsewhere on the line is legal.
    let line = span.filter(|_| message.contains("tab")).map(|s| source.line_col(s.start).line);
    let first_tab = line.and_then(|line| {
        let line_start = source.offset_of(line, 1);
        source.line_text(line).find('\t').map(|i| Span::new(line_start + i, line_start + i + 1))
    });
    match first_tab {
        Some(tab) => Finding::of(RuleId::YamlSyntax, Some(tab), message)
            .with_help("YAML forbids tabs for indentation: indent with spaces"),
        None => Finding::of(RuleId::YamlSyntax, span, message),
    }
}

/// The error's own words without the location the YAML crate appends or prepends: every
/// output format shows the location separately.
fn describe(err: &YamlError) -> String {
    let text = err.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = strip_location_prefix(text);
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => text,
    };
    text.trim().trim_end_matches('.').to_string()
}

fn strip_location_prefix(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("line ") else { return text };
    match rest.find(": ") {
        Some(i) if rest[..i].split(" column ").all(|n| n.chars().all(|c| c.is_ascii_digit())) => &rest[i + 2..],
        _ => text,
    }
}

fn label_for(err: &YamlError) -> String {
    match err {
        YamlError::SerdeUnknownField { .. } => "not a key here".to_string(),
        YamlError::DuplicateMappingKey { .. } => "second occurrence".to_string(),
        _ => describe(err),
    }
}

fn span_of(source: &SourceFile, loc: Location) -> Option<Span> {
    if loc.line() == 0 {
        return None;
    }
    // Scanner errors (tabs, unterminated quotes) carry line/column but no byte offset.
    let start = match loc.span().byte_offset() {
        Some(offset) => usize::try_from(offset).unwrap_or(usize::MAX).min(source.text().len()),
        None => source.offset_of(usize::try_from(loc.line()).unwrap_or(0), usize::try_from(loc.column()).unwrap_or(0)),
    };
    let len = loc.span().byte_len().and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
    // Point at a lone offending character rather than between two.
    let len = if len == 0 && source.text()[start..].starts_with('\t') { 1 } else { len };
    Some(Span::new(start, start.saturating_add(len).min(source.text().len())))
}

/// The closest expected word, if any is close: same letters ignoring case and `_`/`-`, or a
/// small edit distance.
pub fn did_you_mean<'a>(got: &str, expected: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
    let folded = fold(got);
    if let Some(exact) = expected.iter().find(|e| fold(e) == folded) {
        return Some(exact);
    }
    expected
        .iter()
        .map(|e| (strsim::jaro_winkler(&folded, &fold(e)), *e))
        .filter(|(score, _)| *score >= 0.82)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_handles_case_separators_and_typos() {
        let keys = ["accountId", "region", "profile"];
        assert_eq!(did_you_mean("account_id", &keys), Some("accountId"));
        assert_eq!(did_you_mean("regoin", &keys), Some("region"));
        assert_eq!(did_you_mean("zzz", &keys), None);
    }

    #[test]
    fn the_value_after_a_key_is_found_on_its_line() {
        fn at(text: &str) -> Option<&str> {
            let key = Span::new(0, text.find(':').unwrap_or(0));
            value_after_key(text, key).map(|s| &text[s.start..s.end])
        }
        assert_eq!(at("tunnelPort: 0 # why\n"), Some("0"));
        assert_eq!(at("k: \"a \\\" b\" # c"), Some("\"a \\\" b\""));
        assert_eq!(at("k: 'it''s' x"), Some("'it''s'"));
        assert_eq!(at("k: [1, 2]\n"), Some("[1, 2]"));
        assert_eq!(at("k:\n  - 1\n"), None);
        assert_eq!(at("k: # only a comment\n"), None);
        let flow = "{a: x, b: y}";
        assert_eq!(value_after_key(flow, Span::new(1, 2)).map(|s| &flow[s.start..s.end]), Some("x"));
    }

    #[test]
    fn location_prefix_is_stripped() {
        assert_eq!(strip_location_prefix("line 3 column 2: tabs disallowed"), "tabs disallowed");
        assert_eq!(strip_location_prefix("line of sight: x"), "line of sight: x");
    }
}
