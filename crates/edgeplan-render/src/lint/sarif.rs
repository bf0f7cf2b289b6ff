//! `edgeplan lint --format sarif`: SARIF 2.1.0 for GitHub code scanning and SARIF viewers.

use std::collections::HashMap;
use std::fmt::Write as _;

use edgeplan_diag::{FileReport, Finding, RULES, Rule, SourceFile, Span};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Region, repo_path};

/// The tool's home page, as `tool.driver.informationUri`.
pub const INFORMATION_URI: &str = "https://github.com/edgeplan/edgeplan";

const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const SARIF_VERSION: &str = "2.1.0";
/// Results are relative to the checkout root; the consumer (GitHub) knows where that is.
const SRCROOT: &str = "%SRCROOT%";

// Structs rather than `serde_json::Value`: field order is the declaration order whatever
// features serde_json is built with, so the output is stable.

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool,
    /// Columns count Unicode code points (characters), as `SourceFile::line_col` does.
    column_kind: &'static str,
    artifacts: Vec<Artifact>,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    information_uri: &'static str,
    version: &'static str,
    rules: Vec<RuleDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleDescriptor {
    id: &'static str,
    name: &'static str,
    short_description: Text<'static>,
    full_description: Text<'static>,
    help_uri: String,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Artifact {
    location: ArtifactLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    /// Absent only for a rule outside `RULES`, which edgeplan does not create.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: OwnedText,
    locations: [Location<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<Location<'a>>,
    partial_fingerprints: Fingerprints,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<Suppression<'a>>,
}

#[derive(Serialize)]
struct OwnedText {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<usize>,
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<SarifRegion>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: usize,
    start_column: usize,
    /// Exclusive, like the span it comes from: SARIF's `endColumn` is one past the last character.
    end_line: usize,
    end_column: usize,
}

#[derive(Serialize)]
struct Fingerprints {
    #[serde(rename = "primaryLocationLineHash/v1")]
    primary_location_line_hash: String,
}

#[derive(Serialize)]
struct Suppression<'a> {
    kind: &'static str,
    justification: &'a str,
}

/// The SARIF 2.1.0 log: one run whose driver declares every rule in [`RULES`], so a viewer
/// can show any rule's documentation, including rules that found nothing this time.
///
/// * `message.text` is the finding's message followed by `. help: ` and its help. The help
///   goes into the message (not a property bag) because a finding's help may be more specific
///   than the rule's default, and GitHub code scanning shows the message but no properties.
/// * Suppressed findings are included with `suppressions: [{kind: "inSource", justification}]`,
///   the SARIF way of saying "found, but silenced by a comment in the source"; GitHub shows
///   them as dismissed rather than open.
/// * `partialFingerprints["primaryLocationLineHash/v1"]` lets GitHub track an alert across
///   commits: a hash of the rule code, the trimmed text of the start line and an occurrence
///   count, so it survives lines moving (details on `line_hashes`).
/// * Artifact URIs are the paths as given, relative to `%SRCROOT%`, with forward slashes and
///   percent-encoded where a URI needs it.
pub fn sarif(reports: &[FileReport]) -> String {
    let artifacts =
        reports.iter().map(|report| Artifact { location: artifact_location(&report.source, None) }).collect();
    let results = reports.iter().enumerate().flat_map(|(index, report)| file_results(index, report)).collect();
    let log = Log {
        schema: SCHEMA_URI,
        version: SARIF_VERSION,
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "edgeplan",
                    information_uri: INFORMATION_URI,
                    version: env!("CARGO_PKG_VERSION"),
                    rules: RULES.iter().map(rule_descriptor).collect(),
                },
            },
            column_kind: "unicodeCodePoints",
            artifacts,
            results,
        }],
    };
    // Plain structs with string keys: serialization cannot fail.
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}

fn rule_descriptor(rule: &'static Rule) -> RuleDescriptor {
    RuleDescriptor {
        id: rule.code(),
        name: rule.name,
        short_description: Text { text: rule.title },
        full_description: Text { text: rule.help },
        help_uri: rule.help_uri(),
        default_configuration: Configuration { level: rule.severity.as_str() },
    }
}

/// The active findings of one file, then its suppressed ones.
fn file_results(artifact_index: usize, report: &FileReport) -> Vec<SarifResult<'_>> {
    let (active_hashes, suppressed_hashes) = line_hashes(report);
    let active = report
        .findings
        .iter()
        .zip(active_hashes)
        .map(|(finding, hash)| result(artifact_index, &report.source, finding, hash, None));
    let suppressed = report
        .suppressed
        .iter()
        .zip(suppressed_hashes)
        .map(|((finding, reason), hash)| result(artifact_index, &report.source, finding, hash, Some(reason)));
    active.chain(suppressed).collect()
}

fn result<'a>(
    artifact_index: usize,
    source: &'a SourceFile,
    finding: &'a Finding,
    line_hash: String,
    suppression_reason: Option<&'a str>,
) -> SarifResult<'a> {
    let physical = |span: Option<Span>| PhysicalLocation {
        artifact_location: artifact_location(source, Some(artifact_index)),
        region: span.map(|span| sarif_region(Region::of(source, span))),
    };
    SarifResult {
        rule_id: finding.code(),
        rule_index: RULES.iter().position(|rule| rule.id == finding.rule.id),
        level: finding.severity.as_str(),
        message: OwnedText { text: format!("{}. help: {}", finding.message, finding.help) },
        locations: [Location { id: None, physical_location: physical(finding.span), message: None }],
        related_locations: finding
            .related
            .iter()
            .enumerate()
            .map(|(id, related)| Location {
                id: Some(id),
                physical_location: physical(Some(related.span)),
                message: Some(Text { text: &related.message }),
            })
            .collect(),
        partial_fingerprints: Fingerprints { primary_location_line_hash: line_hash },
        suppressions: suppression_reason
            .map(|reason| Suppression { kind: "inSource", justification: reason })
            .into_iter()
            .collect(),
    }
}

fn artifact_location(source: &SourceFile, index: Option<usize>) -> ArtifactLocation {
    ArtifactLocation { uri: uri_path(&repo_path(&source.path)), uri_base_id: SRCROOT, index }
}

fn sarif_region(region: Region) -> SarifRegion {
    SarifRegion {
        start_line: region.line,
        start_column: region.column,
        end_line: region.end_line,
        end_column: region.end_column,
    }
}

/// Percent-encodes what may not appear in a relative URI path: everything but RFC 3986
/// unreserved characters, sub-delimiters, `@` and `/`. `:` is encoded too, because in a
/// first segment it would read as a URI scheme (`c:/specs` is not a relative path).
fn uri_path(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@/".contains(&byte);
        if keep {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri
}

/// `primaryLocationLineHash/v1` for the active and the suppressed findings of one file.
///
/// The hash is the first 16 hex digits of SHA-256 over `{code}:{start line, trimmed}:{n}`,
/// where `n` counts earlier findings in the same file (by position; active and suppressed
/// alike) with the same code on a line with the same trimmed text. It depends on what the
/// line says, not where it is, so an alert survives lines being added above it, and `n` keeps
/// two identical lines apart. This is what GitHub's own `primaryLocationLineHash` approximates
/// (it hashes the line's content plus an occurrence count). A finding without a span hashes
/// an empty line.
///
/// Counting suppressed findings too means suppressing one finding never changes another's
/// fingerprint.
fn line_hashes(report: &FileReport) -> (Vec<String>, Vec<String>) {
    let active = report.findings.iter().map(|finding| (finding, false));
    let suppressed = report.suppressed.iter().map(|(finding, _)| (finding, true));
    // Each finding with its list, index and position; walked in file order below.
    let mut entries: Vec<(Option<usize>, bool, usize, &Finding)> = active
        .enumerate()
        .chain(suppressed.enumerate())
        .map(|(index, (finding, is_suppressed))| (finding.span.map(|span| span.start), is_suppressed, index, finding))
        .collect();
    entries.sort_by_key(|&(start, is_suppressed, index, _)| (start, is_suppressed, index));

    let mut active_hashes = vec![String::new(); report.findings.len()];
    let mut suppressed_hashes = vec![String::new(); report.suppressed.len()];
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (start, is_suppressed, index, finding) in entries {
        let line_text = start.map_or("", |start| {
            let line = report.source.line_col(start).line;
            report.source.line_text(line).trim()
        });
        let occurrence = seen.entry((finding.code(), line_text)).or_insert(0);
        let hash = short_sha256(&format!("{}:{line_text}:{occurrence}", finding.code()));
        *occurrence += 1;
        let hashes = if is_suppressed { &mut suppressed_hashes } else { &mut active_hashes };
        if let Some(slot) = hashes.get_mut(index) {
            *slot = hash;
        }
    }
    (active_hashes, suppressed_hashes)
}

/// The first 16 hex digits (64 bits) of the SHA-256 of `text`.
fn short_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(16);
    for byte in digest.iter().take(8) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_path_encodes_what_a_relative_uri_cannot_hold() {
        assert_eq!(uri_path("specs/edge-1.yaml"), "specs/edge-1.yaml");
        assert_eq!(uri_path("specs/my spec.yaml"), "specs/my%20spec.yaml");
        assert_eq!(uri_path("specs/zürich.yaml"), "specs/z%C3%BCrich.yaml");
        assert_eq!(uri_path("c:/specs/100%.yaml"), "c%3A/specs/100%25.yaml");
        assert_eq!(uri_path("a#b?c.yaml"), "a%23b%3Fc.yaml");
    }

    #[test]
    fn short_sha256_is_the_hex_prefix_of_the_digest() {
        // sha256("") = e3b0c44298fc1c149afbf4c8996fb924...
        assert_eq!(short_sha256(""), "e3b0c44298fc1c14");
    }
}
