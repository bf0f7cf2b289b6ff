//! Focused behaviour of individual rules and of suppression comments, on edits of the seed
//! spec. The bad-input corpus (tests/bad_corpus.rs) pins the rendered output; these tests pin
//! the logic.

use std::path::{Path, PathBuf};

use edgeplan_diag::{FileReport, Severity};
use edgeplan_lint::{MemoryFiles, lint_bytes};

const SEED: &str = include_str!("../../../specs/seed.yaml");
const POLICY: &[u8] = include_bytes!("../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");
/// base64-no-pad of `https://portainer.example.com|portainer.example.com:30776|<sha256 fp>|7`.
const KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";

const PROD_ACCOUNT: &str = "        accountId: \"123456789012\"\n        region: eu-west-1\n        profile: prod";
const PROD_OTHER_ACCOUNT: &str =
    "        accountId: \"210987654321\"\n        region: eu-west-1\n        profile: prod";
const PROD_ENV: &str = "      environment:\n        name: prod";
const PROD_ENV_WITH_KEY: &str =
    "      environment:\n        name: prod\n        edgeKey:\n          file: keys/prod.edgekey";
const ATTRIBUTES: &str = "        service.beta.kubernetes.io/aws-load-balancer-attributes";

fn files(extra: &[(&str, &[u8])]) -> MemoryFiles {
    let mut files = vec![(PathBuf::from("specs/policies/aws-load-balancer-controller-v2.13.2.json"), POLICY.to_vec())];
    files.extend(extra.iter().map(|(p, b)| (Path::new("specs").join(p), b.to_vec())));
    MemoryFiles(files)
}

fn lint_edited(edits: &[(&str, &str)], extra_files: &[(&str, &[u8])]) -> (String, FileReport) {
    let mut text = SEED.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "edit target not in seed: {from:?}");
        text = text.replacen(from, to, 1);
    }
    let report = lint_bytes("specs/seed.yaml", text.as_bytes(), Path::new("specs"), &files(extra_files));
    (text, report)
}

/// `CODE@line` for every finding that is not a note.
fn codes(report: &FileReport) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Note)
        .map(|f| format!("{}@{}", f.code(), f.span.map_or(0, |s| report.source.line_col(s.start).line)))
        .collect()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle") + 1
}

fn with_annotation(annotation: &str) -> (&'static str, String) {
    (ATTRIBUTES, format!("        service.beta.kubernetes.io/{annotation}\n{ATTRIBUTES}"))
}

#[test]
fn seed_has_no_errors_or_warnings_and_notes_the_cidr_overlap() {
    let (_, report) = lint_edited(&[], &[]);
    assert_eq!(codes(&report), Vec::<String>::new());
    let notes: Vec<_> = report.findings.iter().map(|f| f.code()).collect();
    assert_eq!(notes, ["EP115"]);
}

#[test]
fn internet_facing_scheme_is_an_error_on_the_value() {
    let (from, to) = with_annotation("aws-load-balancer-scheme: internet-facing");
    let (text, report) = lint_edited(&[(from, &to)], &[]);
    assert_eq!(codes(&report), [format!("EP120@{}", line_of(&text, "internet-facing"))]);
    let finding = report.findings.iter().find(|f| f.code() == "EP120").unwrap();
    let span = finding.span.unwrap();
    assert_eq!(&text[span.start..span.end], "internet-facing");
}

#[test]
fn type_external_gets_an_explanation_not_an_error() {
    let (from, to) = with_annotation("aws-load-balancer-type: external");
    let (_, report) = lint_edited(&[(from, &to)], &[]);
    let ep121 = report.findings.iter().find(|f| f.code() == "EP121").expect("EP121");
    assert_eq!(ep121.severity, Severity::Note);
    assert!(ep121.message.contains("not internet-facing"));
    assert_eq!(codes(&report), Vec::<String>::new());
}

#[test]
fn instance_targets_and_the_deprecated_cross_zone_annotation() {
    let (from, to) = with_annotation("aws-load-balancer-nlb-target-type: instance");
    let (_, report) = lint_edited(&[(from, &to)], &[]);
    assert!(codes(&report)[0].starts_with("EP123"));
    let (from, to) = with_annotation("aws-load-balancer-cross-zone-load-balancing-enabled: \"true\"");
    let (_, report) = lint_edited(&[(from, &to)], &[]);
    let finding = report.findings.iter().find(|f| f.code() == "EP124").expect("EP124");
    assert_eq!(finding.severity, Severity::Warning);
    assert!(finding.help.contains("load_balancing.cross_zone.enabled=true"), "{}", finding.help);
}

#[test]
fn helm_nodeport_with_explicit_8000_warns_and_points_at_the_install() {
    let (text, report) = lint_edited(&[("tunnelPort: auto", "tunnelPort: 8000")], &[]);
    assert_eq!(codes(&report), [format!("EP130@{}", line_of(&text, "tunnelPort: 8000"))]);
    let finding = report.findings.iter().find(|f| f.code() == "EP130").unwrap();
    assert!(finding.message.contains("30776"));
    assert_eq!(finding.related.len(), 1);
}

#[test]
fn nlb_subnet_outside_vpc_and_too_small() {
    let (_, report) = lint_edited(&[("cidr: 192.168.0.0/24", "cidr: 10.9.0.0/29")], &[]);
    let found: Vec<_> = report.findings.iter().map(|f| f.code()).collect();
    assert!(found.contains(&"EP111") && found.contains(&"EP112"), "{found:?}");
}

#[test]
fn a_28_is_the_smallest_subnet_accepted() {
    let (_, report) = lint_edited(&[("cidr: 192.168.0.0/24", "cidr: 192.168.0.0/28")], &[]);
    assert_eq!(codes(&report), Vec::<String>::new());
}

#[test]
fn non_canonical_cidr_suggests_the_canonical_form() {
    let (_, report) = lint_edited(&[("cidr: 192.168.0.0/24", "cidr: 192.168.0.7/24")], &[]);
    let finding = report.findings.iter().find(|f| f.code() == "EP110").expect("EP110");
    assert!(finding.help.contains("192.168.0.0/24"), "{}", finding.help);
}

#[test]
fn az_names_are_compared_within_an_account() {
    let edit = (
        "          availabilityZone: eu-west-1b\n      endpoint",
        "          availabilityZone: eu-west-1a\n      endpoint",
    );
    let (_, report) = lint_edited(&[edit], &[]);
    assert!(codes(&report).iter().any(|c| c.starts_with("EP113")), "{:?}", codes(&report));
}

#[test]
fn az_names_across_accounts_are_only_a_note() {
    let principals = (
        "        - arn:aws:iam::123456789012:root",
        "        - arn:aws:iam::123456789012:root\n        - arn:aws:iam::210987654321:root",
    );
    let (_, report) = lint_edited(&[(PROD_ACCOUNT, PROD_OTHER_ACCOUNT), principals], &[]);
    assert_eq!(codes(&report), Vec::<String>::new());
    assert!(report.findings.iter().any(|f| f.code() == "EP114"));
}

#[test]
fn consumer_account_missing_from_allowed_principals() {
    let (_, report) = lint_edited(&[(PROD_ACCOUNT, PROD_OTHER_ACCOUNT)], &[]);
    assert!(codes(&report).iter().any(|c| c.starts_with("EP117")), "{:?}", codes(&report));
}

#[test]
fn literal_api_key_is_an_error_and_its_value_is_nowhere_in_the_report() {
    let (_, report) = lint_edited(&[("apiKey:\n        env: PORTAINER_API_KEY", "apiKey: ptr_TopSecretValue123")], &[]);
    assert!(codes(&report).iter().any(|c| c.starts_with("EP140")));
    let everything = format!("{:?}", report.findings);
    assert!(!everything.contains("TopSecret"));
}

#[test]
fn edge_key_file_with_padding_names_the_byte() {
    let padded = format!("{KEY}=\n");
    let (_, report) = lint_edited(&[(PROD_ENV, PROD_ENV_WITH_KEY)], &[("keys/prod.edgekey", padded.as_bytes())]);
    let finding = report.findings.iter().find(|f| f.code() == "EP141").expect("EP141");
    assert!(finding.message.contains(&format!("byte {}", KEY.len())), "{}", finding.message);
    assert!(!finding.message.contains(KEY) && !finding.help.contains(KEY));
}

#[test]
fn canonical_edge_key_file_with_a_trailing_newline_is_fine() {
    let key = format!("{KEY}\n");
    let (_, report) = lint_edited(&[(PROD_ENV, PROD_ENV_WITH_KEY)], &[("keys/prod.edgekey", key.as_bytes())]);
    assert_eq!(codes(&report), Vec::<String>::new());
}

#[test]
fn missing_edge_key_file_is_a_warning() {
    let (_, report) = lint_edited(&[(PROD_ENV, PROD_ENV_WITH_KEY)], &[]);
    assert!(codes(&report)[0].starts_with("EP142"), "{:?}", codes(&report));
}

#[test]
fn alb_era_policy_is_caught_before_the_controller_fails() {
    let old = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","elasticloadbalancing:*","ec2:CreateSecurityGroup","ec2:CreateTags"],"Resource":"*"}]}"#;
    let (_, report) = lint_edited(
        &[("policies/aws-load-balancer-controller-v2.13.2.json", "policies/old.json")],
        &[("policies/old.json", old)],
    );
    let finding = report.findings.iter().find(|f| f.code() == "EP171").expect("EP171");
    assert!(finding.message.contains("ec2:AuthorizeSecurityGroupIngress"));
    assert!(!finding.message.contains("DescribeRouteTables"), "ec2:Describe* covers it");
}

#[test]
fn suppression_on_the_line_above_with_a_reason() {
    let edit = (
        "      acceptanceRequired: true",
        "      # edgeplan-ignore: EP150 staging only, approved in #42\n      acceptanceRequired: false",
    );
    let (_, report) = lint_edited(&[edit], &[]);
    assert_eq!(codes(&report), Vec::<String>::new());
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(report.suppressed[0].1, "staging only, approved in #42");
}

#[test]
fn suppression_without_a_reason_suppresses_nothing() {
    let edit = ("      acceptanceRequired: true", "      # edgeplan-ignore: EP150\n      acceptanceRequired: false");
    let (_, report) = lint_edited(&[edit], &[]);
    let mut found = codes(&report);
    found.sort();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("EP150") && found[1].starts_with("EP181"), "{found:?}");
}

#[test]
fn trailing_suppression_by_name_and_unknown_ids() {
    let edit = (
        "      acceptanceRequired: true",
        "      acceptanceRequired: false # edgeplan-ignore: acceptance-not-required, EP999 demo",
    );
    let (_, report) = lint_edited(&[edit], &[]);
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(codes(&report).len(), 1, "{:?}", codes(&report));
    assert!(codes(&report)[0].starts_with("EP180"));
}

#[test]
fn unused_suppression_is_a_note() {
    let edit =
        ("      acceptanceRequired: true", "      acceptanceRequired: true # edgeplan-ignore: EP150 nothing to hide");
    let (_, report) = lint_edited(&[edit], &[]);
    assert!(report.findings.iter().any(|f| f.code() == "EP182" && f.severity == Severity::Note));
}

#[test]
fn parse_errors_cannot_be_suppressed() {
    let edit = (
        "      region: eu-west-1\n      profile: staging",
        "      region: eu-west-1\n      # edgeplan-ignore: EP006 please\n      profle: staging",
    );
    let (_, report) = lint_edited(&[edit], &[]);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].code(), "EP006");
}

#[test]
fn own_security_groups_without_backend_rules_note_trap_3() {
    let (from, to) = with_annotation("aws-load-balancer-security-groups: sg-0a1b2c3d4e5f60099");
    let (_, report) = lint_edited(&[(from, &to)], &[]);
    let finding = report.findings.iter().find(|f| f.code() == "EP126").expect("EP126");
    assert_eq!(finding.severity, Severity::Note);
    let (from, to) = with_annotation(
        "aws-load-balancer-security-groups: sg-0a1b2c3d4e5f60099\n        service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules: \"true\"",
    );
    let (_, report) = lint_edited(&[(from, &to)], &[]);
    assert!(!report.findings.iter().any(|f| f.code() == "EP126"));
}

#[test]
fn allowed_principals_in_other_partitions_count() {
    let edit = ("        - arn:aws:iam::123456789012:root", "        - arn:aws-us-gov:iam::123456789012:root");
    let (_, report) = lint_edited(&[edit], &[]);
    assert_eq!(codes(&report), Vec::<String>::new());
}
