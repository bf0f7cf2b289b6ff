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

// ----- issue 9, item 10: input that was accepted and failed later ------------------------------

/// The one finding of `code` (there must be exactly one), with the text its span covers.
fn the_finding<'r>(text: &str, report: &'r FileReport, code: &str) -> (&'r edgeplan_diag::Finding, String) {
    let found: Vec<_> = report.findings.iter().filter(|f| f.code() == code).collect();
    assert_eq!(found.len(), 1, "one {code} expected: {:?}", report.findings);
    let span = found[0].span.expect("a finding about a value has a span");
    (found[0], text[span.start..span.end].to_string())
}

fn silent(report: &FileReport, code: &str) {
    assert!(!report.findings.iter().any(|f| f.code() == code), "{code} fired: {:?}", report.findings);
}

#[test]
fn yaml11_booleans_warn_at_the_value_and_true_false_do_not() {
    for (written, key, value) in
        [("yes", "acceptanceRequired", "true"), ("Off", "insecurePoll", "false"), ("n", "discover", "false")]
    {
        let edits: &[(&str, &str)] = match key {
            "acceptanceRequired" => &[("acceptanceRequired: true", "acceptanceRequired: WRITTEN")],
            "insecurePoll" => &[("insecurePoll: false", "insecurePoll: WRITTEN")],
            _ => &[("discover: true", "discover: WRITTEN")],
        };
        let edits: Vec<(&str, String)> = edits.iter().map(|(a, b)| (*a, b.replace("WRITTEN", written))).collect();
        let edits: Vec<(&str, &str)> = edits.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let (text, report) = lint_edited(&edits, &[]);
        let (finding, at) = the_finding(&text, &report, "EP105");
        assert_eq!(at, written);
        assert_eq!(finding.severity, Severity::Warning);
        assert!(finding.help.contains(&format!("write `{key}: {value}`")), "{}", finding.help);
    }
    let (_, report) = lint_edited(&[("acceptanceRequired: true", "acceptanceRequired: True")], &[]);
    silent(&report, "EP105");
    let (_, report) = lint_edited(&[], &[]);
    silent(&report, "EP105");
}

#[test]
fn environment_create_is_a_boolean_lint_sees_too() {
    let (text, report) = lint_edited(&[(PROD_ENV, "      environment:\n        name: prod\n        create: on")], &[]);
    assert_eq!(the_finding(&text, &report, "EP105").1, "on");
}

#[test]
fn image_tags_with_spaces_or_empty_are_errors_at_the_value() {
    for (tag, written) in
        [("\"2.39 .0\"", "\"2.39 .0\""), ("\"\"", "\"\""), ("2.39.0@sha256", "2.39.0@sha256"), ("-rc1", "-rc1")]
    {
        let (text, report) = lint_edited(&[("imageTag: 2.39.0", &format!("imageTag: {tag}"))], &[]);
        let (finding, at) = the_finding(&text, &report, "EP106");
        assert_eq!(at, written, "{}", finding.message);
        assert_eq!(finding.severity, Severity::Error);
    }
    for tag in ["2.39.0", "2.39.0-alpine", "latest", "2.30", "sts_2.21"] {
        let (_, report) = lint_edited(&[("imageTag: 2.39.0", &format!("imageTag: {tag}"))], &[]);
        silent(&report, "EP106");
    }
}

#[test]
fn environment_empty_name_or_both_name_and_id() {
    let (text, report) = lint_edited(&[(PROD_ENV, "      environment:\n        name: \"\"")], &[]);
    let (finding, at) = the_finding(&text, &report, "EP107");
    assert_eq!(at, "\"\"");
    assert!(finding.message.contains("environment.name is empty"), "{}", finding.message);

    let (text, report) = lint_edited(&[(PROD_ENV, "      environment:\n        name: prod\n        id: 7")], &[]);
    let (finding, at) = the_finding(&text, &report, "EP101");
    assert_eq!(at, "7");
    assert_eq!(finding.related.len(), 1, "points at the name too");

    let (_, report) = lint_edited(&[(PROD_ENV, "      environment:\n        id: 7")], &[]);
    silent(&report, "EP101");
    silent(&report, "EP107");
}

#[test]
fn empty_contexts_cluster_names_role_names_and_references() {
    let cases: &[(&str, &str, &str)] = &[
        ("      kubeContext: staging", "      kubeContext: \"\"", "cluster.kubeContext"),
        ("        kubeContext: prod", "        kubeContext: ' '", "cluster.kubeContext"),
        ("      name: my-cluster", "      name: \"\"", "cluster.name"),
        ("        name: prod-cluster", "        name: \"\"", "cluster.name"),
        ("      roleName: alb-ingress-controller", "      roleName: \"\"", "lbController.roleName"),
        ("        profile: prod", "        profile: \"\"", "aws.profile"),
        ("        env: PORTAINER_API_KEY", "        env: \"\"", "portainer.apiKey"),
    ];
    for (from, to, what) in cases {
        let (_, report) = lint_edited(&[(from, to)], &[]);
        let found: Vec<_> = report.findings.iter().filter(|f| f.code() == "EP107").collect();
        assert_eq!(found.len(), 1, "{to}: {:?}", report.findings);
        assert!(found[0].message.starts_with(what), "{}", found[0].message);
    }
    let (_, report) = lint_edited(&[], &[]);
    silent(&report, "EP107");
}

#[test]
fn a_role_arn_given_as_role_name_names_the_role() {
    let arn = "arn:aws:iam::123456789012:role/eks/alb-ingress-controller";
    let (text, report) = lint_edited(&[("roleName: alb-ingress-controller", &format!("roleName: {arn}"))], &[]);
    let (finding, at) = the_finding(&text, &report, "EP172");
    assert_eq!(at, arn);
    assert!(finding.help.contains("`roleName: alb-ingress-controller`"), "{}", finding.help);
    let (_, report) = lint_edited(&[("roleName: alb-ingress-controller", "roleName: \"my role\"")], &[]);
    assert!(report.findings.iter().any(|f| f.code() == "EP172"));
    let (_, report) =
        lint_edited(&[("roleName: alb-ingress-controller", "roleName: AmazonEKS_LBC+role=a,b.c@d-e")], &[]);
    silent(&report, "EP172");
}

#[test]
fn eks_cluster_names_are_checked() {
    let (text, report) = lint_edited(&[("      name: my-cluster", "      name: \"my cluster\"")], &[]);
    assert_eq!(the_finding(&text, &report, "EP103").1, "\"my cluster\"");
    let (_, report) = lint_edited(&[("      name: my-cluster", "      name: My_Cluster-2")], &[]);
    silent(&report, "EP103");
}

#[test]
fn annotation_keys_kubernetes_rejects() {
    for key in ["Service.beta.kubernetes.io/x", "/x", "a/b/c", "example.com/", "has space", "-x", &"n".repeat(64)] {
        let (from, to) = with_annotation(&format!("{}: v", key.trim_start_matches("service.beta.kubernetes.io/")));
        let to = to.replacen("service.beta.kubernetes.io/", "", 1);
        let (text, report) = lint_edited(&[(from, &to)], &[]);
        let (finding, at) = the_finding(&text, &report, "EP127");
        assert_eq!(at, key, "{}", finding.message);
    }
    let (from, to) = with_annotation("aws-load-balancer-target-group-attributes: preserve_client_ip.enabled=true");
    let (_, report) = lint_edited(&[(from, &to)], &[]);
    silent(&report, "EP127");
    let (from, to) = with_annotation("x: v");
    let (_, report) = lint_edited(&[(from, &to.replacen("service.beta.kubernetes.io/", "my-team_note.v1", 1))], &[]);
    silent(&report, "EP127");
}

#[test]
fn a_consumer_name_whose_derived_label_is_too_long() {
    let max = edgeplan_lint::k8s::max_consumer_name_len();
    assert_eq!(max, 48, "consumer.<name>.agent fits in 63 characters");
    let long = "a".repeat(60);
    let (text, report) = lint_edited(&[("    - name: prod", &format!("    - name: {long}"))], &[]);
    let (finding, at) = the_finding(&text, &report, "EP108");
    assert_eq!(at, long);
    assert!(finding.message.contains("75 characters"), "{}", finding.message);
    assert!(finding.help.contains("at most 48"), "{}", finding.help);
    silent(&report, "EP102");

    let (_, report) = lint_edited(&[("    - name: prod", &format!("    - name: {}", "a".repeat(max)))], &[]);
    silent(&report, "EP108");
    // Past 63 it is not a DNS-1123 label at all: one finding, not two.
    let (_, report) = lint_edited(&[("    - name: prod", &format!("    - name: {}", "a".repeat(64)))], &[]);
    silent(&report, "EP108");
    assert!(report.findings.iter().any(|f| f.code() == "EP102"));
}

#[test]
fn a_service_name_starting_with_a_digit() {
    let (text, report) = lint_edited(&[("name: portainer-edge-tunnel", "name: 1tunnel")], &[]);
    assert_eq!(the_finding(&text, &report, "EP102").1, "1tunnel");
    let (_, report) = lint_edited(&[("namespace: portainer\n      # Agents", "namespace: 1ns\n      # Agents")], &[]);
    silent(&report, "EP102");
}

#[test]
fn principals_that_are_not_arns() {
    for principal in [
        "\"123456789012\"",
        "arn:aws:iam::123456789012",
        "arn:aws:iam::123456789012:role/path/x",
        "arn:aws:s3:::bucket",
        "arn:aws:iam:eu-west-1:123456789012:root",
        "arn:aws:iam::1234:root",
        "\"arn:aws:iam::123456789012:group/admins\"",
    ] {
        let (text, report) =
            lint_edited(&[("        - arn:aws:iam::123456789012:root", &format!("        - {principal}"))], &[]);
        let (finding, at) = the_finding(&text, &report, "EP151");
        assert_eq!(at, principal, "{}", finding.message);
        silent(&report, "EP117");
    }
    for principal in
        ["arn:aws:iam::123456789012:role/x", "arn:aws:iam::123456789012:user/a.b", "arn:aws-cn:iam::123456789012:root"]
    {
        let (_, report) = lint_edited(
            &[(
                "        - arn:aws:iam::123456789012:root",
                &format!("        - arn:aws:iam::123456789012:root\n        - {principal}"),
            )],
            &[],
        );
        silent(&report, "EP151");
    }
}

#[test]
fn non_canonical_cidrs_are_rejected_with_the_canonical_form() {
    for (written, canonical) in
        [("192.168.000.0/24", "192.168.0.0/24"), ("192.168.0.0/024", "192.168.0.0/24"), ("010.0.0.0/8", "10.0.0.0/8")]
    {
        let (text, report) = lint_edited(&[("cidr: 192.168.0.0/24", &format!("cidr: {written}"))], &[]);
        let (finding, at) = the_finding(&text, &report, "EP110");
        assert_eq!(at, written);
        assert!(finding.help.starts_with(&format!("write {canonical}:")), "{}", finding.help);
    }
    let (_, report) = lint_edited(&[("            - 192.168.0.0/16", "            - 10.0.0.0/8")], &[]);
    silent(&report, "EP110");
}

#[test]
fn url_credentials_are_an_error_that_never_quotes_them() {
    for url in [
        "https://admin:hunter2@portainer.example.com",
        "https://admin@portainer.example.com:9443/x",
        "ftp://admin:hunter2@p",
    ] {
        let (text, report) = lint_edited(&[("url: https://portainer.example.com", &format!("url: {url}"))], &[]);
        let (_, at) = the_finding(&text, &report, "EP132");
        assert_eq!(at, url);
        let everything = format!("{:?}", report.findings);
        assert!(!everything.contains("hunter2") && !everything.contains("admin"), "{everything}");
        assert!(
            !report.source.text().contains("hunter2") && !report.source.text().contains("admin@"),
            "the snippet text"
        );
    }
    let (_, report) =
        lint_edited(&[("url: https://portainer.example.com", "url: https://portainer.example.com/a@b")], &[]);
    silent(&report, "EP132");
}

#[test]
fn an_env_reference_that_names_no_variable() {
    let (text, report) = lint_edited(&[("        env: PORTAINER_API_KEY", "        env: \"PORTAINER API KEY\"")], &[]);
    assert!(the_finding(&text, &report, "EP104").0.message.contains("not an environment variable name"));
}

#[test]
fn cr_only_line_endings_lint_like_lf() {
    let cr = SEED.replace('\n', "\r");
    let report = lint_bytes("specs/seed.yaml", cr.as_bytes(), Path::new("specs"), &files(&[]));
    assert_eq!(codes(&report), Vec::<String>::new());
    let notes: Vec<_> =
        report.findings.iter().map(|f| (f.code(), report.source.line_col(f.span.unwrap().start).line)).collect();
    assert_eq!(notes, [("EP115", 64)], "lines are counted at each CR");
    // Suppressions find their line too.
    let edit = SEED.replace(
        "      acceptanceRequired: true",
        "      # edgeplan-ignore: EP150 staging only\n      acceptanceRequired: false",
    );
    let report = lint_bytes("specs/seed.yaml", edit.replace('\n', "\r").as_bytes(), Path::new("specs"), &files(&[]));
    assert_eq!(codes(&report), Vec::<String>::new());
    assert_eq!(report.suppressed.len(), 1);
}

#[test]
fn a_trailing_document_marker_is_not_a_second_spec() {
    for tail in ["---\n", "---\n# nothing here\n...\n", "...\n"] {
        let report = lint_bytes("specs/seed.yaml", format!("{SEED}{tail}").as_bytes(), Path::new("specs"), &files(&[]));
        assert_eq!(codes(&report), Vec::<String>::new(), "{tail:?}");
    }
    let report = lint_bytes(
        "specs/seed.yaml",
        format!("{SEED}---\nkind: Topology\n").as_bytes(),
        Path::new("specs"),
        &files(&[]),
    );
    assert_eq!(report.findings[0].code(), "EP001");
}
