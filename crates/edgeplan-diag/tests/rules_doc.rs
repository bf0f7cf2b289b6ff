//! docs/rules.md has exactly one `## {code} {name}` section per catalog rule, in catalog order.
//! Each heading's GitHub anchor is the rule's help URI, so a renamed rule or a missing section
//! would break every link a finding prints.

use edgeplan_diag::RULES;

const RULES_DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md");

fn rules_doc() -> String {
    std::fs::read_to_string(RULES_DOC_PATH).unwrap_or_else(|err| panic!("cannot read {RULES_DOC_PATH}: {err}"))
}

/// The text of every `## ` heading outside fenced code blocks, with its 1-based line number.
fn level_two_headings(doc: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut headings = Vec::new();
    for (index, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some(text) = line.strip_prefix("## ") {
            headings.push((index + 1, text.trim_end()));
        }
    }
    headings
}

/// Headings that look like rule sections: `EP` and three digits, then anything.
fn rule_headings(doc: &str) -> Vec<(usize, &str)> {
    level_two_headings(doc)
        .into_iter()
        .filter(|(_, text)| {
            let code = text.split_whitespace().next().unwrap_or("");
            code.len() == 5 && code.starts_with("EP") && code[2..].chars().all(|c| c.is_ascii_digit())
        })
        .collect()
}

fn expected_heading(code: &str, name: &str) -> String {
    format!("{code} {name}")
}

#[test]
fn every_rule_has_exactly_one_section() {
    let doc = rules_doc();
    let headings = rule_headings(&doc);
    let mut problems = Vec::new();
    for rule in RULES {
        let expected = expected_heading(rule.code(), rule.name);
        let lines: Vec<usize> = headings.iter().filter(|(_, text)| *text == expected).map(|(line, _)| *line).collect();
        match lines.len() {
            1 => {}
            0 => problems.push(format!("missing heading `## {expected}`")),
            _ => problems.push(format!("heading `## {expected}` appears {} times, on lines {lines:?}", lines.len())),
        }
    }
    assert!(problems.is_empty(), "docs/rules.md:\n  {}", problems.join("\n  "));
}

#[test]
fn no_section_names_a_rule_outside_the_catalog() {
    let known: Vec<String> = RULES.iter().map(|r| expected_heading(r.code(), r.name)).collect();
    let doc = rules_doc();
    let unknown: Vec<String> = rule_headings(&doc)
        .into_iter()
        .filter(|(_, text)| !known.iter().any(|k| k == text))
        .map(|(line, text)| format!("line {line}: `## {text}`"))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/rules.md has rule headings that match no catalog entry exactly (code and kebab name):\n  {}",
        unknown.join("\n  ")
    );
}

#[test]
fn sections_follow_catalog_order() {
    let catalog: Vec<String> = RULES.iter().map(|r| expected_heading(r.code(), r.name)).collect();
    let doc = rules_doc();
    let documented: Vec<String> = rule_headings(&doc)
        .into_iter()
        .map(|(_, text)| text.to_owned())
        .filter(|text| catalog.contains(text))
        .collect();
    // Compare with the catalog order restricted to what is documented, so that a missing section
    // is reported once (by `every_rule_has_exactly_one_section`), not here as well.
    let expected: Vec<&String> = catalog.iter().filter(|c| documented.contains(c)).collect();
    let actual: Vec<&String> = documented.iter().collect();
    if let Some(i) = (0..actual.len().min(expected.len())).find(|&i| actual[i] != expected[i]) {
        panic!(
            "docs/rules.md sections are not in catalog order: section {} is `## {}`, expected `## {}`",
            i + 1,
            actual[i],
            expected[i]
        );
    }
    assert_eq!(actual.len(), expected.len(), "docs/rules.md repeats a rule section");
}

#[test]
fn anchors_are_the_help_uris() {
    // GitHub's anchor for `## EP120 nlb-scheme-internal` is `#ep120-nlb-scheme-internal`:
    // lowercase, spaces to hyphens. Names are already lowercase kebab-case (a unit test in
    // rules.rs enforces it), so the heading text determines the anchor exactly.
    for rule in RULES {
        let heading = expected_heading(rule.code(), rule.name);
        let anchor = heading.to_ascii_lowercase().replace(' ', "-");
        assert_eq!(anchor, rule.anchor(), "{}", rule.code());
        assert!(rule.help_uri().ends_with(&format!("docs/rules.md#{anchor}")), "{}", rule.help_uri());
    }
}

#[test]
fn the_heading_scanner_ignores_code_blocks_and_other_headings() {
    let doc = "# title\n## Contents\n## EP001 yaml-syntax\n```yaml\n## EP999 not-a-rule\n```\n### EP002 sub\n## EP002 not-utf8\n";
    let headings: Vec<&str> = rule_headings(doc).into_iter().map(|(_, text)| text).collect();
    assert_eq!(headings, ["EP001 yaml-syntax", "EP002 not-utf8"]);
}
