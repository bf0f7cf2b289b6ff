//! The plan renderers on the real seed plan: `specs/seed.yaml` planned on
//! `testdata/worlds/seed.yaml` (the seed account with every trap in it) through the engine, as
//! `edgeplan plan` plans it. Before the semantic IAM summary its human output was 377 lines, 253
//! of them the policy's line diff; the promise is half of that with nothing of substance lost.

use std::collections::BTreeSet;

use edgeplan_model::Action;
use edgeplan_plan::{Plan, Shown};
use edgeplan_render::plan::{self, RenderContext};

/// Half of the 377 lines the seed plan printed before.
const HALF_OF_BEFORE: usize = 188;

fn seed_plan() -> (Plan, RenderContext) {
    let world = edgeplan_testkit::sim(edgeplan_testkit::world("testdata/worlds/seed.yaml"));
    let session = edgeplan_testkit::session(edgeplan_testkit::seed_stack(), &world);
    let planned = edgeplan_testkit::run(&session, session.plan());
    let edges = planned.graph.edges().map(|(from, to, _)| (from.clone(), to.clone())).collect();
    let ctx = RenderContext { source: Some(session.stack.source.clone()), edges, ..RenderContext::default() };
    (planned.plan, ctx)
}

/// Words separated by single spaces: prose as the human format wraps it.
fn prose(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines of the human output under one change's header, up to the next header.
fn block_of<'a>(human: &'a str, address: &str) -> Vec<&'a str> {
    let mut lines = human.lines().skip_while(|line| !line.contains(&format!(" {address} (")));
    let header = lines.next().into_iter();
    header.chain(lines.take_while(|line| !line.is_empty())).collect()
}

/// The policy document's text on one side of its change.
fn document(shown: Option<&Shown>) -> serde_json::Value {
    match shown {
        Some(Shown::Known(edgeplan_model::Value::Str(text))) => serde_json::from_str(text).expect("a JSON policy"),
        other => panic!("no policy document: {other:?}"),
    }
}

/// Every `Effect: Allow` action a policy document lists.
fn allowed(document: &serde_json::Value) -> BTreeSet<String> {
    let statements = document["Statement"].as_array().expect("statements");
    let mut actions = BTreeSet::new();
    for statement in statements.iter().filter(|s| s["Effect"] == "Allow") {
        match &statement["Action"] {
            serde_json::Value::String(one) => {
                actions.insert(one.clone());
            }
            serde_json::Value::Array(items) => {
                actions.extend(items.iter().filter_map(|a| a.as_str().map(String::from)))
            }
            _ => {}
        }
    }
    actions
}

/// The `Allow` actions the semantic summary lists with `sign`, read back as full names: an
/// entry is `+ Allow ec2: DescribeRouteTables, DescribeVpcs,` with continuation lines, or a
/// whole name (`- Allow elasticloadbalancing:*`).
fn summarised(block: &[&str], sign: char) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut service: Option<String> = None;
    let mut current = ' ';
    let lines = block.iter().map(|l| l.trim()).skip_while(|l| !l.starts_with("~ policy_document = IAM policy")).skip(1);
    for line in lines.take_while(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let Some(first) = words.next().and_then(|w| w.chars().next()) else { continue };
        let mut words = words.peekable();
        if words.peek() == Some(&"Allow") {
            words.next();
            current = first;
            service = words.next_if(|w| w.ends_with(':')).map(|w| w.trim_end_matches(':').to_string());
        } else if words.peek().is_some_and(|w| w.starts_with("Allow,")) {
            current = '~';
            continue;
        }
        if current != sign || first != sign {
            continue;
        }
        for word in words {
            let action = word.trim_end_matches(',');
            names.insert(match &service {
                Some(service) => format!("{service}:{action}"),
                None => action.to_string(),
            });
        }
    }
    names
}

#[test]
fn the_seed_plan_is_at_most_half_as_long_as_before() {
    let (plan, ctx) = seed_plan();
    let human = plan::human(&plan, &ctx);
    let lines = human.lines().count();
    assert!(lines <= HALF_OF_BEFORE, "{lines} lines, more than {HALF_OF_BEFORE}:\n{human}");
    // Tighter, not looser: never two blank lines in a row, and none at the end.
    assert!(!human.contains("\n\n\n") && !human.ends_with("\n\n"), "{human}");
}

#[test]
fn the_iam_summary_lists_the_actions_added_and_removed() {
    let (plan, ctx) = seed_plan();
    let human = plan::human(&plan, &ctx);
    let block = block_of(&human, "provider.lb_controller_policy");
    let added = summarised(&block, '+');
    let removed = summarised(&block, '-');
    // The action trap 1 is about, and the other two EP201 names.
    for action in ["ec2:DescribeRouteTables", "ec2:DescribeAvailabilityZones", "ec2:DescribeNetworkInterfaces"] {
        assert!(added.contains(action), "{action} not listed as added:\n{}", block.join("\n"));
    }
    assert_eq!(removed, BTreeSet::from(["elasticloadbalancing:*".to_string()]), "{}", block.join("\n"));
    // Exactly what the two documents the plan holds differ by.
    let change = plan.changes.iter().find(|c| c.address.as_str() == "provider.lb_controller_policy").expect("policy");
    let (before, after) = (
        allowed(&document(change.before.get("policy_document"))),
        allowed(&document(change.after.get("policy_document"))),
    );
    assert_eq!(added, after.difference(&before).cloned().collect::<BTreeSet<_>>());
    assert_eq!(removed, before.difference(&after).cloned().collect::<BTreeSet<_>>());
    let trimmed: Vec<&str> = block.iter().map(|l| l.trim()).collect();
    assert!(
        trimmed.contains(&"~ Allow, conditions differ: ec2:AuthorizeSecurityGroupIngress, ec2:CreateTags,"),
        "the actions whose conditions changed: {trimmed:#?}"
    );
    assert!(trimmed.contains(&"~ Allow, resources differ: ec2:CreateTags"), "{trimmed:#?}");
}

#[test]
fn the_long_policy_diff_is_short_in_human_and_whole_in_markdown_and_json() {
    let (plan, ctx) = seed_plan();
    let human = plan::human(&plan, &ctx);
    let block = block_of(&human, "provider.lb_controller_policy");
    let trimmed: Vec<&str> = block.iter().map(|l| l.trim()).collect();
    let cut = "# line diff (JSON, keys sorted), first 6 of ";
    let title = trimmed.iter().position(|l| l.starts_with(cut));
    let title = title.unwrap_or_else(|| panic!("no cut line diff: {trimmed:#?}"));
    let total: usize = trimmed[title].trim_start_matches(cut).trim_end_matches(" lines:").parse().expect("a count");
    assert!(total > 200, "the seed's policy diff is long: {total}");
    // The preview's lines, then how many more there are and where they are.
    let more = format!("… {} more lines (in full: --format markdown or --format json)", total - 6);
    assert_eq!(trimmed[title + 7], more, "{trimmed:#?}");

    // Markdown folds all of it into a collapsed block of its own.
    let markdown = plan::markdown(&plan, &ctx);
    let summary =
        format!("<summary><code>policy_document</code>: full line diff (JSON, keys sorted), {total} lines</summary>");
    let folded: Vec<&str> = markdown
        .lines()
        .skip_while(|l| *l != summary)
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert_eq!(folded.len(), total, "{markdown}");
    let line = |sign: char, text: &str| folded.iter().any(|l| l.strip_prefix(sign).is_some_and(|r| r.trim() == text));
    assert!(line('+', "\"ec2:DescribeRouteTables\","), "{folded:#?}");
    assert!(line('-', "\"elasticloadbalancing:*\","), "{folded:#?}");

    // JSON keeps both documents whole.
    let json: serde_json::Value = serde_json::from_str(&plan::json(&plan, &ctx)).expect("parses");
    let change =
        json["changes"].as_array().expect("changes").iter().find(|c| c["address"] == "provider.lb_controller_policy");
    let change = change.expect("the policy");
    let model = plan.changes.iter().find(|c| c.address.as_str() == "provider.lb_controller_policy").expect("policy");
    for (side, values) in [("before", &model.before), ("after", &model.after)] {
        let text = change[side]["policy_document"].as_str().expect("a document");
        assert_eq!(serde_json::from_str::<serde_json::Value>(text).ok(), Some(document(values.get("policy_document"))));
    }
}

/// Tighter, with nothing of substance lost: every listed change with every reason, every
/// diagnostic with its help (and location when it has one), every field a change sets.
#[test]
fn nothing_of_substance_is_lost() {
    let (plan, ctx) = seed_plan();
    let human = plan::human(&plan, &ctx);
    let text = prose(&human);
    for change in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let block = block_of(&human, change.address.as_str());
        assert!(!block.is_empty(), "{} not listed", change.address);
        let block_prose = prose(&block.join("\n"));
        for reason in &change.reasons {
            assert!(
                block_prose.contains(&format!("because: {}", prose(&reason.to_string()))),
                "{reason}: {block_prose}"
            );
        }
        let sets: Vec<&String> = match change.action {
            Action::Create => change.after.keys().collect(),
            Action::Delete => change.before.keys().collect(),
            _ => change.reasons.iter().filter_map(reason_field).collect(),
        };
        for field in sets {
            let shown = block.iter().map(|l| l.trim()).any(|l| {
                ["+ ", "- ", "~ "]
                    .iter()
                    .any(|sign| l.strip_prefix(sign).is_some_and(|r| r.starts_with(&format!("{field} "))))
            });
            assert!(shown, "{}: field {field} not shown:\n{}", change.address, block.join("\n"));
        }
    }
    for diagnostic in &plan.diagnostics {
        let finding = &diagnostic.finding;
        let head = format!("{}[{}]: {}", finding.severity, finding.code(), prose(&finding.message));
        assert!(text.contains(&head), "{head}");
        assert!(text.contains(&format!("help: {}", prose(&finding.help))), "{}", finding.help);
        if let (Some(source), Some(span)) = (&ctx.source, finding.span) {
            let (start, _) = source.range(span);
            assert!(text.contains(&format!("--> {}:{}:{}", source.path, start.line, start.column)), "{head}");
        }
    }
}

fn reason_field(reason: &edgeplan_plan::Reason) -> Option<&String> {
    use edgeplan_plan::Reason;
    match reason {
        Reason::Drift { field }
        | Reason::ForcesReplacement { field }
        | Reason::UpstreamChanging { field, .. }
        | Reason::VersionLimit { field } => Some(field),
        _ => None,
    }
}
