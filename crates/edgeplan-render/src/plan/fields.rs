//! Field-level lines of one change, shared by the human and markdown renderers.
//!
//! Which fields changed is read from the plan's reasons (each names its field), never
//! re-decided from before/after: a field `decide` deliberately does not diff (the API key that
//! authenticates a call) must not show up as a change. Presentation rules apply on top:
//! - long values (multi-line or > 80 characters, lists and maps of more than 3 items) are shown
//!   as a line diff rather than `before -> after`;
//! - a string that parses as a JSON object or array (an IAM policy) is compared and shown
//!   normalized (keys sorted, pretty-printed), so a formatting-only difference is no change;
//! - an IAM policy document leads with its semantic change (actions added and removed per
//!   effect, actions whose resources or conditions differ), computed from the two documents;
//! - a line diff or a multi-line value longer than [`FOLD_OVER`] lines is [`Folded`]: the human
//!   output shows its first [`PREVIEW`] lines and says where the rest is, markdown puts all of
//!   it in a collapsed block (and JSON always has the full values);
//! - a secret is `(sensitive)` or `(sensitive: env:NAME)`, never more, and a changed secret
//!   says so in words, since its two sides may print the same.

use std::collections::{BTreeMap, BTreeSet};

use edgeplan_model::{Action, Value};
use edgeplan_plan::{Change, Reason, Shown};
use similar::{Algorithm, ChangeTag, TextDiff};

use super::policy;

/// Strings longer than this (in characters) are diffed line by line.
const LONG_STRING: usize = 80;
/// Lists and maps with more items than this (or longer than `LONG_STRING` on one line) are
/// shown one item per line.
const LONG_COLLECTION: usize = 3;
/// Unchanged lines kept around each changed line of a diff.
const CONTEXT: usize = 3;
/// A diff or value of more lines than this is folded.
const FOLD_OVER: usize = 12;
/// Lines of a folded diff or value the human output shows.
pub(super) const PREVIEW: usize = 6;
/// Where a value line's text starts in the human layout (field indent, one level, sign):
/// wrapped lists are wrapped to the width left after it.
const VALUE_COLUMN: usize = 12;

/// One output line. `depth` 0 is a field line, 1 a line of its value; each renderer lays
/// out `sign` and `text` its own way (indented for a terminal, sign in column 0 for a
/// markdown `diff` block, which colours `+` and `-` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub(super) depth: usize,
    pub(super) sign: char,
    pub(super) text: String,
}

/// A long line diff or value, kept whole: each renderer decides how much of it to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Folded {
    pub(super) field: String,
    /// `line diff` or `value`.
    pub(super) what: &'static str,
    /// A JSON document, shown with its keys sorted.
    pub(super) json: bool,
    pub(super) lines: Vec<Line>,
}

impl Folded {
    /// `line diff (JSON, keys sorted)`.
    pub(super) fn title(&self) -> String {
        if self.json { format!("{} (JSON, keys sorted)", self.what) } else { self.what.to_string() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    Line(Line),
    Folded(Folded),
}

#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) entries: Vec<Entry>,
    /// Fields a reason names whose values are equal once normalized: formatting only.
    pub(super) formatting_only: BTreeSet<String>,
}

impl Fields {
    fn line(&mut self, depth: usize, sign: char, text: impl Into<String>) {
        self.entries.push(Entry::Line(Line { depth, sign, text: text.into() }));
    }

    /// The lines of a long value: folded when there are too many of them, titled when a
    /// summary stands between them and the field line.
    fn body(&mut self, field: &str, what: &'static str, json: bool, lines: Vec<Line>, titled: bool) {
        let folded = Folded { field: field.to_string(), what, json, lines };
        if folded.lines.len() > FOLD_OVER {
            self.entries.push(Entry::Folded(folded));
            return;
        }
        if titled {
            self.line(1, ' ', format!("# {}:", folded.title()));
        }
        self.entries.extend(folded.lines.into_iter().map(Entry::Line));
    }

    /// The semantic summary of a policy change, wrapped to `width` columns.
    fn summary(&mut self, summary: &policy::Summary, width: usize) {
        for entry in &summary.entries {
            // Names come from the document: escaped like any value, so none can move the cursor.
            let entry = policy::Entry {
                head: printable(&entry.head),
                items: entry.items.iter().map(|item| printable(item)).collect(),
                ..entry.clone()
            };
            for text in policy::wrap(&entry, width.saturating_sub(VALUE_COLUMN).max(40)) {
                self.line(1, entry.sign, text);
            }
        }
    }
}

/// The field lines of one change; `width` is the human layout's, for wrapped lists.
pub(super) fn fields(change: &Change, width: usize) -> Fields {
    match change.action {
        Action::Create => all(&change.after, '+', width),
        Action::Delete => all(&change.before, '-', width),
        Action::Update | Action::Replace => changed(change, width),
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

fn all(values: &BTreeMap<String, Shown>, sign: char, width: usize) -> Fields {
    let label_width = values.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut fields = Fields::default();
    for (name, shown) in values {
        let label = format!("{name:<label_width$}");
        match shown {
            Shown::Known(value) if is_multiline(value) => {
                let block = Block::of(value);
                let summary = grants(value).map(|grants| {
                    if sign == '-' {
                        policy::summary(Some(&grants), None)
                    } else {
                        policy::summary(None, Some(&grants))
                    }
                });
                let opener = summary.as_ref().map_or_else(|| block.opener.clone(), |s| s.headline.clone());
                fields.line(0, sign, format!("{label} = {opener}"));
                if let Some(summary) = &summary {
                    fields.summary(summary, width);
                }
                let body = block.body.into_iter().map(|text| Line { depth: 1, sign: ' ', text }).collect();
                fields.body(name, "value", block.json, body, summary.is_some());
                if let Some(closer) = block.closer {
                    fields.line(0, ' ', closer);
                }
            }
            other => fields.line(0, sign, format!("{label} = {}", inline(other))),
        }
    }
    fields
}

fn changed(change: &Change, width: usize) -> Fields {
    let mut named: BTreeSet<&str> = BTreeSet::new();
    let mut forcing: BTreeSet<&str> = BTreeSet::new();
    for reason in &change.reasons {
        match reason {
            Reason::Drift { field } | Reason::UpstreamChanging { field, .. } | Reason::VersionLimit { field } => {
                named.insert(field);
            }
            Reason::ForcesReplacement { field } | Reason::UpstreamReplaced { field, .. } => {
                named.insert(field);
                forcing.insert(field);
            }
            Reason::NotFound
            | Reason::ManagedElsewhere
            | Reason::RecreatedBy { .. }
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
    let label_width = shown.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    for name in &shown {
        let label = format!("{name:<label_width$}");
        let change_of = FieldChange {
            name,
            label: &label,
            before: change.before.get(*name),
            after: change.after.get(*name),
            forces: forcing.contains(name),
        };
        field_change(&mut fields, &change_of, width);
    }
    let all_fields: BTreeSet<&String> = change.before.keys().chain(change.after.keys()).collect();
    let hidden = all_fields.len().saturating_sub(shown.len());
    if hidden > 0 {
        let noun = if hidden == 1 { "attribute" } else { "attributes" };
        fields.line(0, ' ', format!("# ({hidden} unchanged {noun} hidden)"));
    }
    fields
}

/// One changed field of an update or replacement.
struct FieldChange<'a> {
    name: &'a str,
    /// The name padded to the block's width.
    label: &'a str,
    before: Option<&'a Shown>,
    after: Option<&'a Shown>,
    forces: bool,
}

/// ` # value changes, forces replacement`: Terraform's trailing comment, or nothing.
fn comment(notes: &[&str]) -> String {
    if notes.is_empty() { String::new() } else { format!(" # {}", notes.join(", ")) }
}

fn field_change(fields: &mut Fields, field: &FieldChange<'_>, width: usize) {
    let label = field.label;
    let forces: &[&str] = if field.forces { &["forces replacement"] } else { &[] };
    match (field.before, field.after) {
        (None | Some(Shown::Known(Value::Null)), Some(after)) => {
            fields.line(0, '+', format!("{label} = {}{}", inline(after), comment(forces)));
        }
        (Some(before), None) => {
            fields.line(0, '-', format!("{label} = {}{}", inline(before), comment(forces)));
        }
        // Two redacted sides may read the same (`env:AGENT_SECRET` both times): say in words
        // that the value changes.
        (Some(before), Some(after)) if is_sensitive(before) || is_sensitive(after) => {
            let (b, a) = (inline(before), inline(after));
            let shown = if b == a { a } else { format!("{b} -> {a}") };
            let mut notes = vec!["value changes"];
            notes.extend(forces);
            fields.line(0, '~', format!("{label} = {shown}{}", comment(&notes)));
        }
        (Some(Shown::Known(b)), Some(Shown::Known(a))) if is_long(b) || is_long(a) || too_wide(b, a) => {
            if !line_diff(fields, field, b, a, width) {
                // Equal line by line yet different values (a trailing newline): say it inline,
                // where string escapes make the difference visible.
                let text = format!("{label} = {} -> {}{}", inline_value(b), inline_value(a), comment(forces));
                fields.line(0, '~', text);
            }
        }
        (Some(before), Some(after)) => {
            fields.line(0, '~', format!("{label} = {} -> {}{}", inline(before), inline(after), comment(forces)));
        }
        (None, None) => {}
    }
}

/// A redacted value, or one with a secret inside.
fn is_sensitive(shown: &Shown) -> bool {
    fn has_secret(value: &Value) -> bool {
        match value {
            Value::Secret(_) | Value::SecretRef(_) => true,
            Value::List(items) => items.iter().any(has_secret),
            Value::Map(map) => map.values().any(has_secret),
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Str(_) => false,
        }
    }
    match shown {
        Shown::Sensitive(_) => true,
        Shown::Known(value) => has_secret(value),
        Shown::KnownAfterApply => false,
    }
}

/// The grants of a value that is an IAM policy document.
fn grants(value: &Value) -> Option<policy::Grants> {
    match value {
        Value::Str(text) => policy::grants(text),
        _ => None,
    }
}

/// A unified line diff of two long values, after the semantic summary when they are IAM
/// policies; false if their lines are equal.
fn line_diff(fields: &mut Fields, field: &FieldChange<'_>, before: &Value, after: &Value, width: usize) -> bool {
    let (old, new) = (Block::of(before), Block::of(after));
    let old_lines: Vec<&str> = old.body.iter().map(String::as_str).collect();
    let new_lines: Vec<&str> = new.body.iter().map(String::as_str).collect();
    // Patience keeps a JSON document's structure lines (`],`, `}`) from pairing up wrongly.
    let diff = TextDiff::configure().algorithm(Algorithm::Patience).diff_slices(&old_lines, &new_lines);
    let groups = diff.grouped_ops(CONTEXT);
    if groups.is_empty() {
        return false;
    }
    let summary = match (grants(before), grants(after)) {
        (Some(b), Some(a)) => Some(policy::summary(Some(&b), Some(&a))),
        _ => None,
    };
    let opener = match &summary {
        Some(summary) => summary.headline.clone(),
        None if old.opener == new.opener => new.opener,
        None => format!("{} -> {}", old.opener, new.opener),
    };
    let forces: &[&str] = if field.forces { &["forces replacement"] } else { &[] };
    fields.line(0, '~', format!("{} = {opener}{}", field.label, comment(forces)));
    if let Some(summary) = &summary {
        fields.summary(summary, width);
    }
    let mut body = Vec::new();
    let mut next_old = 0;
    for group in &groups {
        let Some(first) = group.first() else { continue };
        let skipped = first.old_range().start.saturating_sub(next_old);
        body.extend(unchanged_lines(skipped));
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                body.push(Line { depth: 1, sign, text: change.value().to_string() });
            }
            next_old = op.old_range().end;
        }
    }
    body.extend(unchanged_lines(old_lines.len().saturating_sub(next_old)));
    fields.body(field.name, "line diff", old.json && new.json, body, summary.is_some());
    if let Some(closer) = new.closer {
        fields.line(0, ' ', closer);
    }
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
    /// A JSON document, normalized.
    json: bool,
}

impl Block {
    fn of(value: &Value) -> Block {
        match value {
            Value::Str(text) => match normalized_json(text) {
                Some(json) => {
                    Block { opener: "(JSON, keys sorted)".to_string(), body: lines_of(&json), closer: None, json: true }
                }
                None => Block { opener: "<<EOT".to_string(), body: lines_of(text), closer: Some("EOT"), json: false },
            },
            Value::List(items) => Block {
                opener: "[".to_string(),
                body: items.iter().map(|item| format!("{},", inline_value(item))).collect(),
                closer: Some("]"),
                json: false,
            },
            Value::Map(map) => Block {
                opener: "{".to_string(),
                body: map.iter().map(|(key, item)| format!("{key:?} = {}", inline_value(item))).collect(),
                closer: Some("}"),
                json: false,
            },
            other => Block { opener: inline_value(other), body: Vec::new(), closer: None, json: false },
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

/// The one text form of a secret, in every text format: `(sensitive)`, with the reference the
/// plan gives (`env:AGENT_SECRET`) when it gives one. Nothing is derived from the secret here.
pub(super) fn sensitive(reference: &str) -> String {
    if reference.trim().is_empty() {
        "(sensitive)".to_string()
    } else {
        format!("(sensitive: {})", printable(reference))
    }
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
        // A secret's text is never shown, nor anything computed from it (a digest of a weak
        // user-chosen secret can be brute-forced offline).
        Value::Secret(_) => sensitive(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(fields: &Fields) -> String {
        let line = |l: &Line| format!("{}{} {}\n", "    ".repeat(l.depth), l.sign, l.text);
        fields
            .entries
            .iter()
            .map(|entry| match entry {
                Entry::Line(l) => line(l),
                Entry::Folded(f) => format!("[{} of {}: {} lines]\n", f.title(), f.field, f.lines.len()),
            })
            .collect()
    }

    fn field<'a>(label: &'a str, before: Option<&'a Shown>, after: Option<&'a Shown>) -> FieldChange<'a> {
        FieldChange { name: label.trim_end(), label, before, after, forces: false }
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
        let mut fields = Fields::default();
        let change = field("list", None, None);
        assert!(line_diff(&mut fields, &change, &before, &Value::from(items), 100));
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
        assert_eq!(text(&fields).lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn long_diffs_are_folded_whole_and_short_ones_are_not() {
        let before = Value::from((1..=40).map(|n| format!("item-{n}")).collect::<Vec<_>>());
        let after = Value::from((1..=40).map(|n| format!("item-{}", n * 2)).collect::<Vec<_>>());
        let mut fields = Fields::default();
        assert!(line_diff(&mut fields, &field("list", None, None), &before, &after, 100));
        let [Entry::Line(head), Entry::Folded(folded), Entry::Line(closer)] = fields.entries.as_slice() else {
            panic!("{}", text(&fields));
        };
        assert_eq!((head.text.as_str(), closer.text.as_str()), ("list = [", "]"));
        assert_eq!((folded.field.as_str(), folded.title().as_str()), ("list", "line diff"));
        // All of it is kept for whoever shows it in full.
        assert!(folded.lines.len() > FOLD_OVER && folded.lines.iter().any(|l| l.text == "\"item-80\","));
    }

    #[test]
    fn a_changed_secret_says_so_and_shows_no_digest() {
        let reference = Shown::Sensitive("env:AGENT_SECRET".to_string());
        let mut fields = Fields::default();
        field_change(&mut fields, &field("AGENT_SECRET", Some(&reference), Some(&reference)), 100);
        field_change(&mut fields, &field("token", Some(&Shown::Sensitive(String::new())), Some(&reference)), 100);
        let nested = Shown::Known(Value::List(vec![Value::Secret(edgeplan_model::SecretText::new("hunter2"))]));
        let other = Shown::Known(Value::List(vec![Value::Secret(edgeplan_model::SecretText::new("hunter3"))]));
        field_change(&mut fields, &field("secrets", Some(&nested), Some(&other)), 100);
        assert_eq!(
            text(&fields),
            "~ AGENT_SECRET = (sensitive: env:AGENT_SECRET) # value changes\n\
             ~ token = (sensitive) -> (sensitive: env:AGENT_SECRET) # value changes\n\
             ~ secrets = [(sensitive)] # value changes\n"
        );
    }

    #[test]
    fn policy_summaries_escape_control_characters() {
        let before =
            Value::str(r#"{"Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}"#);
        let after = Value::str(
            r#"{"Statement": [{"Effect": "Allow\u001b[2J", "Action": ["ec2:Describe\u001b[31mVpcs", "ec2:DescribeVpcs"], "Resource": "*"}]}"#,
        );
        let mut fields = Fields::default();
        assert!(line_diff(&mut fields, &field("policy", None, None), &before, &after, 100));
        let text = text(&fields);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("+ Allow\\u{1b}[2J ec2: Describe\\u{1b}[31mVpcs, DescribeVpcs"), "{text}");
    }

    #[test]
    fn control_characters_are_escaped() {
        let value = Value::str("line one\nred \u{1b}[31m\n");
        let block = Block::of(&value);
        assert_eq!(block.body, ["line one", "red \\u{1b}[31m"]);
        assert_eq!(inline_value(&value), "\"line one\\nred \\u{1b}[31m\\n\"");
    }
}
