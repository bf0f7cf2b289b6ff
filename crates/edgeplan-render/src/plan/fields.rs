//! Field-level lines of one change, shared by the human and markdown renderers.
//!
//! Which fields changed is read from the plan's reasons (each names its field), never
//! re-decided from before/after: a field `decide` deliberately does not diff (the API key that
//! authenticates a call) must not show up as a change. Two presentation rules apply on top:
//! - long values (multi-line or > 80 characters, lists and maps of more than 3 items) are shown
//!   as a line diff rather than `before -> after`;
//! - a string that parses as a JSON object or array (an IAM policy) is compared and shown
//!   normalized (keys sorted, pretty-printed), so a formatting-only difference is no change.

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_model::{Action, Value};
use edgeplan_plan::{Change, Reason, Shown};
use similar::{Algorithm, ChangeTag, TextDiff};

/// Strings longer than this (in characters) are diffed line by line.
const LONG_STRING: usize = 80;
/// Lists and maps with more items than this (or longer than `LONG_STRING` on one line) are
/// shown one item per line.
const LONG_COLLECTION: usize = 3;
/// Unchanged lines kept around each changed line of a diff.
const CONTEXT: usize = 3;

/// One output line. `depth` 0 is a field line, 1 a line of its value; each renderer lays
/// out `sign` and `text` its own way (indented for a terminal, sign in column 0 for a
/// markdown `diff` block, which colours `+` and `-` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub(super) depth: usize,
    pub(super) sign: char,
    pub(super) text: String,
}

#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) lines: Vec<Line>,
    /// Fields a reason names whose values are equal once normalized: formatting only.
    pub(super) formatting_only: BTreeSet<String>,
}

/// The field lines of one change.
pub(super) fn fields(change: &Change) -> Fields {
    match change.action {
        Action::Create => all(&change.after, '+'),
        Action::Delete => all(&change.before, '-'),
        Action::Update | Action::Replace => changed(change),
        // A read writes nothing: its reasons and diagnostics say what it waits for.
        Action::Read | Action::NoOp => Fields::default(),
    }
}

/// Whether a reason is about a field whose values differ only in formatting.
pub(super) fn is_formatting_only(reason: &Reason, fields: &Fields) -> Option<String> {
    match reason {
        Reason::Drift { field } | Reason::ForcesReplacement { field } if fields.formatting_only.contains(field) => {
            Some(field.clone())
        }
        _ => None,
    }
}

fn all(values: &BTreeMap<String, Shown>, sign: char) -> Fields {
    let width = values.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut lines = Vec::new();
    for (name, shown) in values {
        let label = format!("{name:<width$}");
        match shown {
            Shown::Known(value) if is_multiline(value) => {
                let block = Block::of(value);
                lines.push(Line { depth: 0, sign, text: format!("{label} = {}", block.opener) });
                lines.extend(block.body.into_iter().map(|text| Line { depth: 1, sign: ' ', text }));
                lines.extend(block.closer.map(|text| Line { depth: 0, sign: ' ', text: text.to_string() }));
            }
            other => lines.push(Line { depth: 0, sign, text: format!("{label} = {}", inline(other)) }),
        }
    }
    Fields { lines, formatting_only: BTreeSet::new() }
}

fn changed(change: &Change) -> Fields {
    let mut named: BTreeSet<&str> = BTreeSet::new();
    let mut forcing: BTreeSet<&str> = BTreeSet::new();
    for reason in &change.reasons {
        match reason {
            Reason::Drift { field } | Reason::UpstreamChanging { field, .. } | Reason::VersionLimit { field } => {
                named.insert(field);
            }
            Reason::ForcesReplacement { field } => {
                named.insert(field);
                forcing.insert(field);
            }
            Reason::NotFound
            | Reason::ManagedElsewhere
            | Reason::InSync
            | Reason::Unobservable
            | Reason::OwnedByStack
            | Reason::NotOwned
            | Reason::NeverDeleted
            | Reason::GoesWithParent
            | Reason::RemovedFromSpec => {}
        }
    }
    let mut fields = Fields::default();
    let mut shown: Vec<&str> = Vec::new();
    for name in &named {
        let (before, after) = (change.before.get(*name), change.after.get(*name));
        if let (Some(Shown::Known(b)), Some(Shown::Known(a))) = (before, after)
            && semantically_equal(b, a)
        {
            fields.formatting_only.insert((*name).to_string());
        } else {
            shown.push(name);
        }
    }
    let width = shown.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    for name in &shown {
        let label = format!("{name:<width$}");
        let suffix = if forcing.contains(name) { " # forces replacement" } else { "" };
        field_change(&mut fields.lines, &label, change.before.get(*name), change.after.get(*name), suffix);
    }
    let all_fields: BTreeSet<&String> = change.before.keys().chain(change.after.keys()).collect();
    let hidden = all_fields.len().saturating_sub(shown.len());
    if hidden > 0 {
        let noun = if hidden == 1 { "attribute" } else { "attributes" };
        fields.lines.push(Line { depth: 0, sign: ' ', text: format!("# ({hidden} unchanged {noun} hidden)") });
    }
    fields
}

fn field_change(lines: &mut Vec<Line>, label: &str, before: Option<&Shown>, after: Option<&Shown>, suffix: &str) {
    match (before, after) {
        (None | Some(Shown::Known(Value::Null)), Some(after)) => {
            lines.push(Line { depth: 0, sign: '+', text: format!("{label} = {}{suffix}", inline(after)) });
        }
        (Some(before), None) => {
            lines.push(Line { depth: 0, sign: '-', text: format!("{label} = {}{suffix}", inline(before)) });
        }
        (Some(Shown::Known(b)), Some(Shown::Known(a))) if is_long(b) || is_long(a) || too_wide(b, a) => {
            if !line_diff(lines, label, b, a, suffix) {
                // Equal line by line yet different values (a trailing newline): say it inline,
                // where string escapes make the difference visible.
                let text = format!("{label} = {} -> {}{suffix}", inline_value(b), inline_value(a));
                lines.push(Line { depth: 0, sign: '~', text });
            }
        }
        (Some(before), Some(after)) => {
            lines.push(Line {
                depth: 0,
                sign: '~',
                text: format!("{label} = {} -> {}{suffix}", inline(before), inline(after)),
            });
        }
        (None, None) => {}
    }
}

/// A unified line diff of two long values; false if their lines are equal.
fn line_diff(lines: &mut Vec<Line>, label: &str, before: &Value, after: &Value, suffix: &str) -> bool {
    let (old, new) = (Block::of(before), Block::of(after));
    let old_lines: Vec<&str> = old.body.iter().map(String::as_str).collect();
    let new_lines: Vec<&str> = new.body.iter().map(String::as_str).collect();
    // Patience keeps a JSON document's structure lines (`],`, `}`) from pairing up wrongly.
    let diff = TextDiff::configure().algorithm(Algorithm::Patience).diff_slices(&old_lines, &new_lines);
    let groups = diff.grouped_ops(CONTEXT);
    if groups.is_empty() {
        return false;
    }
    let opener = if old.opener == new.opener { new.opener } else { format!("{} -> {}", old.opener, new.opener) };
    lines.push(Line { depth: 0, sign: '~', text: format!("{label} = {opener}{suffix}") });
    let mut next_old = 0;
    for group in &groups {
        let Some(first) = group.first() else { continue };
        let skipped = first.old_range().start.saturating_sub(next_old);
        lines.extend(unchanged_lines(skipped));
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                lines.push(Line { depth: 1, sign, text: change.value().to_string() });
            }
            next_old = op.old_range().end;
        }
    }
    lines.extend(unchanged_lines(old_lines.len().saturating_sub(next_old)));
    lines.extend(new.closer.map(|text| Line { depth: 0, sign: ' ', text: text.to_string() }));
    true
}

/// Terraform's fold marker, for the lines a diff leaves out.
fn unchanged_lines(count: usize) -> Option<Line> {
    let noun = if count == 1 { "line" } else { "lines" };
    (count > 0).then(|| Line { depth: 1, sign: ' ', text: format!("# ({count} unchanged {noun} hidden)") })
}

/// A long value laid out one line per element.
struct Block {
    /// What follows `name = `.
    opener: String,
    body: Vec<String>,
    closer: Option<&'static str>,
}

impl Block {
    fn of(value: &Value) -> Block {
        match value {
            Value::Str(text) => match normalized_json(text) {
                Some(json) => Block { opener: "(JSON, keys sorted)".to_string(), body: lines_of(&json), closer: None },
                None => Block { opener: "<<EOT".to_string(), body: lines_of(text), closer: Some("EOT") },
            },
            Value::List(items) => Block {
                opener: "[".to_string(),
                body: items.iter().map(|item| format!("{},", inline_value(item))).collect(),
                closer: Some("]"),
            },
            Value::Map(map) => Block {
                opener: "{".to_string(),
                body: map.iter().map(|(key, item)| format!("{key:?} = {}", inline_value(item))).collect(),
                closer: Some("}"),
            },
            other => Block { opener: inline_value(other), body: Vec::new(), closer: None },
        }
    }
}

/// Lines with control characters escaped, so a value cannot move the cursor or forge lines.
fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(printable).collect()
}

fn printable(line: &str) -> String {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return line.to_string();
    }
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { c.escape_debug().to_string() } else { c.to_string() })
        .collect()
}

/// Long values get a line diff instead of `before -> after`.
fn is_long(value: &Value) -> bool {
    match value {
        Value::Str(text) => {
            text.contains('\n') || text.chars().count() > LONG_STRING || normalized_json(text).is_some()
        }
        // A short list of long items (ARNs) reads better one per line too.
        Value::List(items) => items.len() > LONG_COLLECTION || inline_value(value).chars().count() > LONG_STRING,
        Value::Map(map) => map.len() > LONG_COLLECTION || inline_value(value).chars().count() > LONG_STRING,
        _ => false,
    }
}

/// Two collections whose `before -> after` would not fit on a line: a line diff shows which
/// items changed instead of making the reader compare two lists by eye.
fn too_wide(before: &Value, after: &Value) -> bool {
    let collection = |v: &Value| matches!(v, Value::List(_) | Value::Map(_));
    collection(before)
        && collection(after)
        && inline_value(before).chars().count() + inline_value(after).chars().count() > LONG_STRING
}

/// Values a create or delete lays out over several lines. A long single-line string stays on
/// its line: splitting it would add nothing.
fn is_multiline(value: &Value) -> bool {
    match value {
        Value::Str(text) => {
            text.contains('\n') || (text.chars().count() > LONG_STRING && normalized_json(text).is_some())
        }
        other => is_long(other),
    }
}

/// Equal as values, or as JSON documents once normalized.
pub(super) fn semantically_equal(before: &Value, after: &Value) -> bool {
    if before == after {
        return true;
    }
    match (before, after) {
        (Value::Str(b), Value::Str(a)) => match (normalized_json(b), normalized_json(a)) {
            (Some(b), Some(a)) => b == a,
            _ => false,
        },
        _ => false,
    }
}

/// A JSON object or array, pretty-printed with keys sorted; `None` for anything else (a plain
/// string that happens to be valid JSON, such as `"8000"`, stays a string).
fn normalized_json(text: &str) -> Option<String> {
    let start = text.trim_start();
    if !(start.starts_with('{') || start.starts_with('[')) {
        return None;
    }
    // serde_json refuses documents nested deeper than 128 levels: they stay plain strings.
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    serde_json::to_string_pretty(&sorted(value)).ok()
}

/// Keys in sorted order whatever `serde_json`'s map type (`preserve_order` may be enabled by
/// another crate in the build).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A value on one line, as a field line shows it.
pub(super) fn inline(shown: &Shown) -> String {
    match shown {
        Shown::Known(value) => inline_value(value),
        Shown::KnownAfterApply => "(known after apply)".to_string(),
        Shown::Sensitive(reference) => sensitive(reference),
    }
}

/// The one text form of a secret, in every text format.
pub(super) fn sensitive(reference: &str) -> String {
    format!("(sensitive: {})", printable(reference))
}

/// Like `Value`'s `Display`, with Terraform's `=` in maps and secrets in their one form.
fn inline_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Str(text) => format!("{text:?}"),
        Value::List(items) => format!("[{}]", items.iter().map(inline_value).collect::<Vec<_>>().join(", ")),
        Value::Map(map) if map.is_empty() => "{}".to_string(),
        Value::Map(map) => {
            let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k:?} = {}", inline_value(v))).collect();
            format!("{{ {} }}", entries.join(", "))
        }
        Value::SecretRef(reference) => sensitive(reference),
        Value::Secret(secret) => sensitive(&secret.fingerprint()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> String {
        lines.iter().map(|l| format!("{}{} {}\n", "    ".repeat(l.depth), l.sign, l.text)).collect()
    }

    #[test]
    fn json_formatting_differences_are_equal() {
        let pretty = Value::str("{\n  \"b\": [1, 2],\n  \"a\": {\"y\": 1, \"x\": 2}\n}\n");
        let compact = Value::str(r#"{"a":{"x":2,"y":1},"b":[1,2]}"#);
        assert!(semantically_equal(&pretty, &compact));
        assert!(!semantically_equal(&pretty, &Value::str(r#"{"a":{"x":2,"y":1},"b":[2,1]}"#)));
        // Scalars that parse as JSON are strings, not documents.
        assert!(!semantically_equal(&Value::str("8000"), &Value::str("8000.0")));
    }

    #[test]
    fn long_lists_get_a_line_diff_with_folds() {
        let before = Value::from((1..=12).map(|n| format!("item-{n}")).collect::<Vec<_>>());
        let mut items: Vec<String> = (1..=12).map(|n| format!("item-{n}")).collect();
        items.insert(6, "new".to_string());
        let mut lines = Vec::new();
        assert!(line_diff(&mut lines, "list", &before, &Value::from(items), ""));
        let expected = [
            "~ list = [",
            "      # (3 unchanged lines hidden)",
            "      \"item-4\",",
            "      \"item-5\",",
            "      \"item-6\",",
            "    + \"new\",",
            "      \"item-7\",",
            "      \"item-8\",",
            "      \"item-9\",",
            "      # (3 unchanged lines hidden)",
            "  ]",
        ];
        assert_eq!(text(&lines).lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn control_characters_are_escaped() {
        let value = Value::str("line one\nred \u{1b}[31m\n");
        let block = Block::of(&value);
        assert_eq!(block.body, ["line one", "red \\u{1b}[31m"]);
        assert_eq!(inline_value(&value), "\"line one\\nred \\u{1b}[31m\\n\"");
    }
}
