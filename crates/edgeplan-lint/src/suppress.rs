//! Inline suppressions, as in tflint: `# edgeplan-ignore: EP150[, EP131] reason`.
//!
//! A comment on its own line applies to the next line with content; a trailing comment applies
//! to its own line. The reason is required; a directive without one suppresses nothing. Parse
//! errors and findings about directives themselves cannot be suppressed.

use edgeplan_diag::{Finding, Rule, RuleId, SourceFile, Span, find_rule};

const DIRECTIVE: &str = "edgeplan-ignore:";

struct Directive {
    /// The whole comment, for findings about the directive.
    span: Span,
    /// The 1-based line whose findings it silences.
    target_line: usize,
    rules: Vec<&'static Rule>,
    reason: String,
    used: bool,
}

pub(crate) fn apply(source: &SourceFile, findings: Vec<Finding>) -> (Vec<Finding>, Vec<(Finding, String)>) {
    let mut meta_findings = Vec::new();
    let mut directives = parse_directives(source, &mut meta_findings);
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for finding in findings {
        let line = finding.span.map(|s| source.line_col(s.start).line);
        let directive = directives.iter_mut().find(|d| {
            finding.rule.suppressible()
                && Some(d.target_line) == line
                && d.rules.iter().any(|r| r.id == finding.rule.id)
        });
        match directive {
            Some(directive) => {
                directive.used = true;
                suppressed.push((finding, directive.reason.clone()));
            }
            None => kept.push(finding),
        }
    }
    for directive in directives.iter().filter(|d| !d.used) {
        let codes: Vec<&str> = directive.rules.iter().map(|r| r.code()).collect();
        meta_findings.push(Finding::of(
            RuleId::UnusedIgnore,
            Some(directive.span),
            format!("edgeplan-ignore for {} matches no finding on line {}", codes.join(", "), directive.target_line),
        ));
    }
    kept.extend(meta_findings);
    (kept, suppressed)
}

fn parse_directives(source: &SourceFile, findings: &mut Vec<Finding>) -> Vec<Directive> {
    let text = source.text();
    let mut directives = Vec::new();
    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let Some(hash) = comment_start(line) else { continue };
        let comment = line[hash + 1..].trim_start();
        let Some(body) = comment.strip_prefix(DIRECTIVE) else { continue };
        let body_start = line_start + line.len() - body.len();
        let comment_span = Span::new(line_start + hash, line_start + line.len());
        let trailing = !line[..hash].trim().is_empty();
        let target_line = if trailing { index + 1 } else { next_content_line(source, index + 2) };

        let (rule_tokens, reason) = split_rules_and_reason(body);
        let mut rules = Vec::new();
        for (token_offset, token) in rule_tokens {
            let at = body_start + token_offset;
            match find_rule(token) {
                Some(rule) if rule.suppressible() => rules.push(rule),
                Some(rule) => findings.push(
                    Finding::of(
                        RuleId::UnknownRuleInIgnore,
                        Some(Span::new(at, at + token.len())),
                        format!("{} cannot be suppressed", rule.code()),
                    )
                    .with_help("parse errors and findings about edgeplan-ignore comments must be fixed, not ignored"),
                ),
                None => findings.push(
                    Finding::of(
                        RuleId::UnknownRuleInIgnore,
                        Some(Span::new(at, at + token.len())),
                        format!("unknown rule `{token}`"),
                    )
                    .with_label("no such rule"),
                ),
            }
        }
        if rules.is_empty()
            && !findings
                .iter()
                .any(|f| f.span.is_some_and(|s| comment_span.start <= s.start && s.end <= comment_span.end))
        {
            findings.push(
                Finding::of(RuleId::UnknownRuleInIgnore, Some(comment_span), "edgeplan-ignore names no rule")
                    .with_help("write `# edgeplan-ignore: EP150 reason`"),
            );
            continue;
        }
        if reason.is_empty() {
            findings.push(Finding::of(
                RuleId::IgnoreWithoutReason,
                Some(comment_span),
                "edgeplan-ignore without a reason suppresses nothing",
            ));
            continue;
        }
        if !rules.is_empty() {
            directives.push(Directive { span: comment_span, target_line, rules, reason, used: false });
        }
    }
    directives
}

/// Byte index of the `#` that starts a YAML comment on this line, if any. A comment starts at
/// the line start or after whitespace, outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') if previous.is_whitespace() || previous == ':' || i == 0 => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() || i == 0 => return Some(i),
            _ => {}
        }
        previous = c;
    }
    None
}

/// Leading comma-separated rule tokens (with their offsets in `body`), then the reason.
fn split_rules_and_reason(body: &str) -> (Vec<(usize, &str)>, String) {
    let mut tokens = Vec::new();
    let mut rest = body;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', ',']);
        let start = body.len() - trimmed.len();
        let end = trimmed.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(trimmed.len());
        if end == 0 {
            rest = trimmed;
            break;
        }
        tokens.push((start, &trimmed[..end]));
        let after = &trimmed[end..];
        let continues = after.trim_start_matches([' ', '\t']).starts_with(',');
        rest = after;
        if !continues {
            break;
        }
    }
    let reason = rest.trim().trim_start_matches(['#', '-', ':', '—']).trim().to_string();
    (tokens, reason)
}

/// The first line at or after `line` (1-based) that is neither blank nor a comment.
fn next_content_line(source: &SourceFile, line: usize) -> usize {
    (line..=source.line_count())
        .find(|&n| {
            let text = source.line_text(n).trim();
            !text.is_empty() && !text.starts_with('#')
        })
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_reason_split() {
        let (tokens, reason) = split_rules_and_reason(" EP150, EP131 staging only");
        assert_eq!(tokens.iter().map(|t| t.1).collect::<Vec<_>>(), ["EP150", "EP131"]);
        assert_eq!(reason, "staging only");
        let (tokens, reason) = split_rules_and_reason(" EP150 # approved in PR 12");
        assert_eq!(tokens.len(), 1);
        assert_eq!(reason, "approved in PR 12");
        let (_, reason) = split_rules_and_reason(" EP150");
        assert_eq!(reason, "");
    }

    #[test]
    fn comments_inside_quotes_are_not_comments() {
        assert_eq!(comment_start("a: \"x # y\""), None);
        assert_eq!(comment_start("a: b # c"), Some(5));
        assert_eq!(comment_start("# c"), Some(0));
        assert_eq!(comment_start("url: http://x#frag"), None);
    }
}
