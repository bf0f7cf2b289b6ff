//! The lint renderers on hand-made reports: full-output snapshots plus the structural
//! promises (JSON contract keys, SARIF rule indexes, fingerprints, GitHub limits).

use edgeplan_diag::{FileReport, Finding, RULES, RuleId, Severity, SourceFile, Span};
use edgeplan_render::lint;
use insta::assert_snapshot;
use serde_json::Value;

const SPEC: &str = "\
apiVersion: edgeplan.dev/v1alpha1
kind: Topology
metadata:
  name: Zürich-Edge
portainer: {site: Zürich, url: \"http://portainer.example.com:9443\"}
service:
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-scheme: internet-facing
endpointService:
  acceptanceRequired: false # edgeplan-ignore: EP150 staging only, approved in #123
";

/// The span of the first occurrence of `needle` at or after `after`.
fn span_of(text: &str, needle: &str, after: &str) -> Span {
    let base = text.find(after).expect("anchor in fixture");
    let start = base + text[base..].find(needle).expect("needle in fixture");
    Span::new(start, start + needle.len())
}

/// One spec with a multi-byte line, a related location, text that needs escaping and a
/// suppressed finding; one file-level finding without a span in another file.
fn reports() -> Vec<FileReport> {
    let source = SourceFile::new("./specs/zürich.yaml", SPEC);
    let findings = vec![
        Finding::of(
            RuleId::InvalidName,
            Some(span_of(SPEC, "Zürich-Edge", "name:")),
            "`Zürich-Edge` is not a DNS-1123 label",
        ),
        Finding::of(
            RuleId::PortainerUrlNotHttps,
            Some(span_of(SPEC, "\"http://portainer.example.com:9443\"", "url:")),
            "portainer.url is http://portainer.example.com:9443, not https,\n100% of agent traffic is plaintext",
        ),
        Finding::of(
            RuleId::SchemeNotInternal,
            Some(span_of(SPEC, "internet-facing", "scheme:")),
            "the tunnel NLB would be internet-facing",
        )
        .with_related(span_of(SPEC, "annotations", "service:"), "annotations are declared here"),
    ];
    let suppressed = vec![(
        Finding::of(
            RuleId::AcceptanceNotRequired,
            Some(span_of(SPEC, "false", "acceptanceRequired")),
            "the endpoint service accepts connections without approval",
        ),
        "staging only, approved in #123".to_string(),
    )];
    let empty = FileReport {
        source: SourceFile::new("specs/empty.yaml", "# nothing here\n"),
        findings: vec![Finding::of(RuleId::EmptySpec, None, "the spec has no content")],
        suppressed: Vec::new(),
    };
    vec![FileReport { source, findings, suppressed }, empty]
}

/// The driver version changes with every release; keep it out of the snapshot.
fn without_version(sarif: &str) -> String {
    sarif.replace(&format!("\"version\": \"{}\",", env!("CARGO_PKG_VERSION")), "\"version\": \"[version]\",")
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("renderer output is JSON")
}

#[test]
fn json_snapshot() {
    assert_snapshot!(lint::json(&reports()));
}

#[test]
fn sarif_snapshot() {
    assert_snapshot!(without_version(&lint::sarif(&reports())));
}

#[test]
fn github_snapshot() {
    assert_snapshot!(lint::github(&reports()));
}

#[test]
fn human_summary_counts_and_pluralizes() {
    assert_eq!(lint::human_summary(&reports()), "3 errors, 1 warning, 0 notes in 2 files (1 suppressed)");
    assert_eq!(lint::human_summary(&[]), "0 errors, 0 warnings, 0 notes in 0 files");
    assert_eq!(lint::summary(&reports()), lint::Summary { errors: 3, warnings: 1, notes: 0, suppressed: 1, files: 2 },);
}

#[test]
fn json_diagnostics_always_carry_the_contract_keys() {
    const CONTRACT: [&str; 9] =
        ["code", "severity", "message", "help", "file", "line", "column", "end_line", "end_column"];
    let document = parse(&lint::json(&reports()));
    assert_eq!(document["format_version"], "1");
    let diagnostics = document["diagnostics"].as_array().expect("diagnostics array");
    let suppressed = document["suppressed"].as_array().expect("suppressed array");
    assert_eq!((diagnostics.len(), suppressed.len()), (4, 1));
    for diagnostic in diagnostics.iter().chain(suppressed) {
        for key in CONTRACT {
            assert!(diagnostic.get(key).is_some(), "{key} missing in {diagnostic}");
        }
    }
    assert_eq!(suppressed[0]["reason"], "staging only, approved in #123");

    let spanless = &diagnostics[3];
    assert_eq!(spanless["code"], "EP003");
    for key in ["line", "column", "end_line", "end_column"] {
        assert!(spanless[key].is_null(), "{key} should be null for a file-level finding");
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    let document = parse(&lint::json(&reports()));
    let name = &document["diagnostics"][0];
    // `  name: Zürich-Edge`: 11 characters (12 bytes) starting at column 9.
    assert_eq!(
        (&name["line"], &name["column"], &name["end_line"], &name["end_column"]),
        (&4.into(), &9.into(), &4.into(), &20.into())
    );
    // The url follows `Zürich` on its line: 31 characters (32 bytes) precede it, so column 32.
    let url = &document["diagnostics"][1];
    assert_eq!((&url["line"], &url["column"]), (&5.into(), &32.into()));
}

#[test]
fn sarif_declares_every_rule_and_indexes_results_into_them() {
    let log = parse(&lint::sarif(&reports()));
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules array");
    assert_eq!(rules.len(), RULES.len());
    let results = run["results"].as_array().expect("results array");
    assert_eq!(results.len(), 5);
    for result in results {
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let hash = result["partialFingerprints"]["primaryLocationLineHash/v1"].as_str().expect("fingerprint");
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }
    let suppressed: Vec<_> = results.iter().filter(|r| r.get("suppressions").is_some()).collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["suppressions"][0]["kind"], "inSource");
    assert_eq!(suppressed[0]["ruleId"], "EP150");
    // No span, no region.
    let spanless = results.iter().find(|r| r["ruleId"] == "EP003").expect("EP003 result");
    assert!(spanless["locations"][0]["physicalLocation"].get("region").is_none());
}

fn fingerprints(sarif: &str) -> Vec<String> {
    parse(sarif)["runs"][0]["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| r["partialFingerprints"]["primaryLocationLineHash/v1"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn fingerprints_survive_moved_lines_and_separate_identical_lines() {
    let report = |text: &str| {
        let first = text.find("a: 1").expect("first line");
        let second = text.rfind("a: 1").expect("second line");
        FileReport {
            source: SourceFile::new("specs/x.yaml", text.to_string()),
            findings: vec![
                Finding::of(RuleId::InvalidValue, Some(Span::new(first, first + 4)), "first"),
                Finding::of(RuleId::InvalidValue, Some(Span::new(second, second + 4)), "second"),
            ],
            suppressed: Vec::new(),
        }
    };
    let before = fingerprints(&lint::sarif(&[report("a: 1\nb: 2\na: 1\n")]));
    let after = fingerprints(&lint::sarif(&[report("# new comment\n\na: 1\nb: 2\nc: 3\n  a: 1\n")]));
    assert_ne!(before[0], before[1], "identical lines need distinct fingerprints");
    assert_eq!(before, after, "fingerprints must not depend on line numbers or indentation");
}

#[test]
fn suppressing_a_finding_keeps_the_others_fingerprints() {
    let text = "a: 1\na: 1\n";
    let finding =
        |start: usize, message: &str| Finding::of(RuleId::InvalidValue, Some(Span::new(start, start + 4)), message);
    let source = SourceFile::new("specs/x.yaml", text);
    let active =
        FileReport { source: source.clone(), findings: vec![finding(0, "a"), finding(5, "b")], suppressed: Vec::new() };
    let one_suppressed = FileReport {
        source,
        findings: vec![finding(5, "b")],
        suppressed: vec![(finding(0, "a"), "reason".to_string())],
    };
    let before = fingerprints(&lint::sarif(&[active]));
    let after = fingerprints(&lint::sarif(&[one_suppressed]));
    // SARIF lists active results first, so the order flips.
    assert_eq!((before[0].as_str(), before[1].as_str()), (after[1].as_str(), after[0].as_str()));
}

/// 12 errors, 3 warnings and 10 notes, one per line.
fn crowded_report() -> FileReport {
    let text: String = (1..=25).map(|i| format!("key{i:02}: value\n")).collect();
    // Every line is `keyNN: value\n`, 13 bytes; the span is the key.
    let line_span = |i: usize| Span::new((i - 1) * 13, (i - 1) * 13 + 5);
    let findings = (1..=25)
        .map(|i| {
            let (id, severity) = match i {
                1..=12 => (RuleId::InvalidValue, Severity::Error),
                13..=15 => (RuleId::ManagedAnnotation, Severity::Warning),
                _ => (RuleId::VpcCidrOverlap, Severity::Note),
            };
            Finding::of(id, Some(line_span(i)), format!("finding {i}")).with_severity(severity)
        })
        .collect();
    FileReport { source: SourceFile::new("specs/crowded.yaml", text), findings, suppressed: Vec::new() }
}

#[test]
fn github_truncation_snapshot() {
    assert_snapshot!(lint::github(&[crowded_report()]));
}

#[test]
fn github_keeps_to_ten_annotations_per_severity_including_the_notice() {
    let output = lint::github(&[crowded_report()]);
    let count = |prefix: &str| output.lines().filter(|line| line.starts_with(prefix)).count();
    assert_eq!((count("::error "), count("::warning "), count("::notice ")), (10, 3, 10));
    assert_eq!(
        output.lines().last(),
        Some("::notice title=edgeplan::3 more findings not annotated; see the SARIF/JSON report")
    );
}

#[test]
fn github_orders_by_severity_and_escapes() {
    let output = lint::github(&reports());
    let commands: Vec<_> = output.lines().map(|line| line.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(commands, ["::error", "::error", "::error", "::warning"]);
    assert!(output.lines().all(|line| !line.contains('\r')), "raw newlines must be escaped");
    assert!(output.contains("file=specs/empty.yaml,title=EP003 empty-spec::"), "{output}");
}

#[test]
fn empty_input_renders_empty_documents() {
    assert_eq!(lint::github(&[]), "");
    let document = parse(&lint::json(&[]));
    assert_eq!(document["diagnostics"], Value::Array(Vec::new()));
    let log = parse(&lint::sarif(&[]));
    assert_eq!(log["runs"][0]["results"], Value::Array(Vec::new()));
}
