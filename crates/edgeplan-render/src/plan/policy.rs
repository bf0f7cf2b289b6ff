//! The semantic change of an IAM policy document, for the plan's readers: which actions each
//! statement effect gains and loses, and which actions keep their name but are granted under
//! other resources, conditions or principals. A line diff of two policies says the same thing
//! in hundreds of lines (the seed's ALB-era policy to the v2.13.2 one is 253 of them).
//!
//! Pure presentation of the before/after documents the plan already holds: nothing here is
//! judged (the live rules say which actions are missing; this only lists what changes).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

/// What a policy document grants, statement by statement, folded by effect and action.
#[derive(Debug, Default)]
pub(super) struct Grants {
    statements: usize,
    /// `("Allow", "Action")` → action (lowercased: IAM compares actions case-insensitively)
    /// → where it is granted.
    groups: BTreeMap<(String, &'static str), BTreeMap<String, Grant>>,
    /// Top-level keys other than `Statement` (`Version`, `Id`), as canonical JSON.
    top: BTreeMap<String, String>,
}

/// One action under one effect: its spelling and the scopes it is granted in.
#[derive(Debug, Default)]
struct Grant {
    name: String,
    aspects: BTreeMap<Aspect, BTreeSet<String>>,
}

/// What else a statement says about the actions it lists, besides its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Aspect {
    Resources,
    Conditions,
    Principals,
}

impl Aspect {
    const ALL: [Aspect; 3] = [Aspect::Resources, Aspect::Conditions, Aspect::Principals];

    fn noun(self) -> &'static str {
        match self {
            Aspect::Resources => "resources",
            Aspect::Conditions => "conditions",
            Aspect::Principals => "principals",
        }
    }
}

/// The grants of a document that is an IAM policy (a JSON object whose `Statement` is an object
/// or an array of objects); `None` for any other text.
pub(super) fn grants(text: &str) -> Option<Grants> {
    let document: Json = serde_json::from_str(text).ok()?;
    let object = document.as_object()?;
    let statements: Vec<&serde_json::Map<String, Json>> = match object.get("Statement")? {
        Json::Array(items) => items.iter().map(Json::as_object).collect::<Option<_>>()?,
        Json::Object(one) => vec![one],
        _ => return None,
    };
    let mut grants = Grants { statements: statements.len(), ..Grants::default() };
    for (key, value) in object {
        if key != "Statement" {
            grants.top.insert(key.clone(), canonical(value));
        }
    }
    for statement in statements {
        let effect = statement.get("Effect").and_then(Json::as_str).unwrap_or("(no Effect)").to_string();
        let mut aspects: BTreeMap<Aspect, BTreeSet<String>> = BTreeMap::new();
        let resources = aspects.entry(Aspect::Resources).or_default();
        resources.extend(strings(statement.get("Resource")));
        resources.extend(strings(statement.get("NotResource")).into_iter().map(|r| format!("not {r}")));
        // A statement without a condition grants unconditionally: that is a scope too.
        let condition = statement.get("Condition").map_or_else(|| "none".to_string(), canonical);
        aspects.entry(Aspect::Conditions).or_default().insert(condition);
        for key in ["Principal", "NotPrincipal"] {
            if let Some(principal) = statement.get(key) {
                aspects.entry(Aspect::Principals).or_default().insert(format!("{key} {}", canonical(principal)));
            }
        }
        for kind in ["Action", "NotAction"] {
            for action in strings(statement.get(kind)) {
                let group = grants.groups.entry((effect.clone(), kind)).or_default();
                let grant = group.entry(action.to_lowercase()).or_default();
                if grant.name.is_empty() {
                    grant.name = action;
                }
                for (aspect, values) in &aspects {
                    grant.aspects.entry(*aspect).or_default().extend(values.iter().cloned());
                }
            }
        }
    }
    Some(grants)
}

/// A string or an array of strings (IAM accepts both); anything else lists nothing.
fn strings(value: Option<&Json>) -> Vec<String> {
    match value {
        Some(Json::String(one)) => vec![one.clone()],
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// JSON text with object keys sorted, so equal documents compare equal.
fn canonical(value: &Json) -> String {
    fn sorted(value: &Json) -> Json {
        match value {
            Json::Object(map) => {
                let mut entries: Vec<(&String, &Json)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Json::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// One line of the summary before wrapping: a sign, what it is about, and the names it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) sign: char,
    /// `Allow ec2:`, `Deny NotAction iam:`, `Allow, conditions differ:` …
    pub(super) head: String,
    pub(super) items: Vec<String>,
    /// Columns continuation lines are indented by.
    pub(super) hang: usize,
}

/// Actions added or removed, one entry per service, as the IAM console summarises a policy:
/// `+ Allow ec2: DescribeRouteTables, DescribeVpcs`. The service prefix is written once, which
/// halves the length of the seed's list (40 of its actions are `elasticloadbalancing:`).
fn by_service(sign: char, effect: &str, grants: &[&Grant]) -> Vec<Entry> {
    let mut services: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for grant in grants {
        // A whole-service wildcard reads best whole: `elasticloadbalancing:*`.
        let (service, action) = match grant.name.split_once(':') {
            Some((_, "*")) | None => ("", grant.name.as_str()),
            Some(pair) => pair,
        };
        let entry = services.entry(service.to_lowercase()).or_insert_with(|| (service.to_string(), Vec::new()));
        entry.1.push(action.to_string());
    }
    services
        .into_values()
        .map(|(service, mut items)| {
            items.sort_by_key(|item| item.to_lowercase());
            let head = if service.is_empty() { effect.to_string() } else { format!("{effect} {service}:") };
            // Continuation lines sit two columns in from the effect.
            Entry { sign, head, items, hang: effect.chars().count() + 2 }
        })
        .collect()
}

/// The semantic change between two policies (either may be absent: a create or a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Summary {
    /// What follows `field = `: `IAM policy, 1 statement -> 16 statements`.
    pub(super) headline: String,
    pub(super) entries: Vec<Entry>,
}

pub(super) fn summary(before: Option<&Grants>, after: Option<&Grants>) -> Summary {
    let statements = |g: &Grants| plural(g.statements, "statement");
    let headline = match (before, after) {
        (Some(b), Some(a)) if b.statements == a.statements => format!("IAM policy, {}", statements(a)),
        (Some(b), Some(a)) => format!("IAM policy, {} -> {}", statements(b), statements(a)),
        (Some(only), None) | (None, Some(only)) => format!("IAM policy, {}", statements(only)),
        (None, None) => "IAM policy".to_string(),
    };
    // `Version` and `Id` are compared only between two documents: a new one does not change them.
    let compare_top = before.is_some() && after.is_some();
    let empty = Grants::default();
    let (before, after) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    let mut entries = Vec::new();
    let mut tally: BTreeMap<char, usize> = BTreeMap::new();
    let keys: BTreeSet<&(String, &'static str)> = before.groups.keys().chain(after.groups.keys()).collect();
    let none = BTreeMap::new();
    for key in keys {
        let (effect, kind) = key;
        let head = if *kind == "Action" { effect.clone() } else { format!("{effect} {kind}") };
        let old = before.groups.get(key).unwrap_or(&none);
        let new = after.groups.get(key).unwrap_or(&none);
        let added: Vec<&Grant> = new.iter().filter(|(k, _)| !old.contains_key(*k)).map(|(_, g)| g).collect();
        let removed: Vec<&Grant> = old.iter().filter(|(k, _)| !new.contains_key(*k)).map(|(_, g)| g).collect();
        *tally.entry('+').or_default() += added.len();
        *tally.entry('-').or_default() += removed.len();
        entries.extend(by_service('+', &head, &added));
        entries.extend(by_service('-', &head, &removed));
        for aspect in Aspect::ALL {
            let differ: Vec<String> = new
                .iter()
                .filter_map(|(k, grant)| {
                    let previous = old.get(k)?;
                    (previous.aspects.get(&aspect) != grant.aspects.get(&aspect)).then(|| grant.name.clone())
                })
                .collect();
            if !differ.is_empty() {
                let head = format!("{head}, {} differ:", aspect.noun());
                entries.push(Entry { sign: '~', hang: head.chars().count(), head, items: differ });
            }
        }
    }
    let top: BTreeSet<&String> = before.top.keys().chain(after.top.keys()).filter(|_| compare_top).collect();
    for key in top {
        let (old, new) = (before.top.get(key), after.top.get(key));
        if old != new {
            let shown = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(none)".to_string());
            let items = vec![format!("{} -> {}", shown(old), shown(new))];
            entries.push(Entry { sign: '~', head: key.clone(), items, hang: key.chars().count() });
        }
    }
    // The counts, so the size of the change is read before its list.
    let count = |sign: char| tally.get(&sign).copied().unwrap_or(0);
    let (added, removed) = (count('+'), count('-'));
    let counts: Vec<String> = [(added, "added"), (removed, "removed")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .enumerate()
        .map(|(i, (n, what))| if i == 0 { format!("{} {what}", plural(n, "action")) } else { format!("{n} {what}") })
        .collect();
    let headline = match (compare_top, added + removed) {
        (_, 0) => headline,
        (true, _) => format!("{headline}: {}", counts.join(", ")),
        // A new (or deleted) policy has actions; nothing is added to it.
        (false, n) => format!("{headline}, {}", plural(n, "action")),
    };
    Summary { headline, entries }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// `head item, item,` wrapped at `width` columns, continuation lines indented by the entry's
/// hang; a name is never split, so it stays copyable and searchable.
pub(super) fn wrap(entry: &Entry, width: usize) -> Vec<String> {
    let hang = " ".repeat(entry.hang);
    let mut lines = Vec::new();
    let mut line = entry.head.clone();
    let mut empty = true;
    for (i, item) in entry.items.iter().enumerate() {
        let word = if i + 1 < entry.items.len() { format!("{item},") } else { item.clone() };
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, hang.clone()));
        }
        line.push(' ');
        line.push_str(&word);
        empty = false;
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(statements: &str) -> Grants {
        grants(&format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#)).expect("a policy")
    }

    #[test]
    fn actions_added_removed_and_rescoped_per_effect() {
        let before = policy(
            r#"[{"Effect": "Allow", "Action": ["elasticloadbalancing:*", "ec2:CreateTags", "ec2:DescribeVpcs"], "Resource": "*"},
                {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}]"#,
        );
        let after = policy(
            r#"[{"Effect": "Allow", "Action": ["EC2:describevpcs", "ec2:DescribeRouteTables"], "Resource": "*"},
                {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "arn:aws:ec2:*:*:security-group/*",
                 "Condition": {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}}]"#,
        );
        let summary = summary(Some(&before), Some(&after));
        assert_eq!(summary.headline, "IAM policy, 2 statements: 1 action added, 2 removed");
        let entry = |sign: char, head: &str, items: &[&str], hang: usize| Entry {
            sign,
            head: head.to_string(),
            items: items.iter().map(|s| s.to_string()).collect(),
            hang,
        };
        assert_eq!(
            summary.entries,
            [
                entry('+', "Allow ec2:", &["DescribeRouteTables"], 7),
                entry('-', "Allow", &["elasticloadbalancing:*"], 7),
                entry('~', "Allow, resources differ:", &["ec2:CreateTags"], 24),
                entry('~', "Allow, conditions differ:", &["ec2:CreateTags"], 25),
                entry('-', "Deny", &["iam:*"], 6),
            ],
            "a case-only respelling (EC2:describevpcs) is no change"
        );
    }

    #[test]
    fn a_new_policy_lists_everything_as_added_and_other_text_is_no_policy() {
        let only = policy(r#"{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}"#);
        let summary = summary(None, Some(&only));
        assert_eq!(summary.headline, "IAM policy, 1 statement, 1 action");
        assert_eq!(summary.entries.len(), 1);
        assert_eq!((summary.entries[0].sign, summary.entries[0].head.as_str()), ('+', "Allow NotAction"));
        assert_eq!(summary.entries[0].items, ["iam:*"]);
        for text in [r#"{"a": 1}"#, "[1, 2]", r#"{"Statement": [1]}"#, "not json", r#"{"Statement": "x"}"#] {
            assert!(grants(text).is_none(), "{text}");
        }
    }

    #[test]
    fn wrapping_hangs_items_and_never_splits_one() {
        let entry = Entry {
            sign: '+',
            head: "Allow ec2:".to_string(),
            items: ["DescribeRouteTables", "DescribeVpcs", "AnActionLongerThanTheWholeLineCanHold"]
                .map(str::to_string)
                .to_vec(),
            hang: 7,
        };
        assert_eq!(
            wrap(&entry, 36),
            [
                "Allow ec2: DescribeRouteTables,",
                "        DescribeVpcs,",
                "        AnActionLongerThanTheWholeLineCanHold"
            ]
        );
    }
}
