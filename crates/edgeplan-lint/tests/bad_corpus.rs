//! The bad-input corpus: every spec in testdata/bad/ is linted and its findings are pinned as a
//! compact snapshot (one line per finding, with the help line). Each file's first line says
//! which code it expects (`# expect EP001: …`); the test checks that code is among the findings,
//! that the file's worst finding has the severity its name promises (`warn-*`, `note-*`, else
//! error), that linting does not panic and that it takes under a second.
//!
//! Referenced files (EDGE_KEY files, policy documents) are read from the real file system,
//! relative to testdata/bad/. The 10 MB spec is generated here, never committed.

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgeplan_diag::{FileReport, Finding, Severity, SourceFile, Span, Stage};
use edgeplan_lint::{FileSource, lint_bytes};

/// A hang guard, not a performance test (speed is measured by `cargo xtask bench`): generous
/// enough for a debug build on a loaded 2-core CI machine, short enough to catch a runaway.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// Files whose first line cannot carry the `# expect` comment.
const EXPECT_WITHOUT_COMMENT: &[(&str, &str)] = &[("empty", "EP003")];

/// Files that do not get the code their `# expect` line names yet, with the code they get
/// today. The test insists on today's code, so when the parser is fixed it fails here: remove
/// the entry and re-accept the snapshot.
const KNOWN_MISDIAGNOSED: &[(&str, &str)] = &[];

/// Files whose findings quote a multi-line value, so that a message spans lines although a
/// finding's message is "one line" (edgeplan-diag). Found by fuzzing; the test insists they are
/// still multi-line, so fixing the quoting makes it fail here: remove the entry.
const KNOWN_MULTILINE_MESSAGES: &[&str] = &[];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reads referenced files from disk, as the CLI does.
struct DiskFiles;

impl FileSource for DiskFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// Lint without letting a panic escape, and time it.
fn lint_guarded(display_path: &str, bytes: &[u8], base_dir: &Path) -> (FileReport, Duration) {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| lint_bytes(display_path, bytes, base_dir, &DiskFiles)));
    let elapsed = started.elapsed();
    match result {
        Ok(report) => (report, elapsed),
        Err(_) => panic!("lint_bytes panicked on {display_path}"),
    }
}

fn range(source: &SourceFile, span: Option<Span>) -> String {
    match span {
        Some(span) => {
            let (start, end) = source.range(span);
            format!("{}:{}-{}:{}", start.line, start.column, end.line, end.column)
        }
        None => "-".to_string(),
    }
}

fn render_finding(out: &mut String, source: &SourceFile, prefix: &str, finding: &Finding) {
    let _ = writeln!(
        out,
        "{prefix}{} {} {} {}",
        finding.code(),
        finding.severity,
        range(source, finding.span),
        finding.message
    );
    if let Some(label) = &finding.label
        && label != &finding.message
    {
        let _ = writeln!(out, "  label: {label}");
    }
    let _ = writeln!(out, "  help: {}", finding.help);
    for related in &finding.related {
        let _ = writeln!(out, "  related {} {}", range(source, Some(related.span)), related.message);
    }
}

/// One line per finding (`CODE severity line:col-endline:endcol message`), then its label,
/// help and related locations, then the suppressed findings with their reasons.
fn render(report: &FileReport) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        render_finding(&mut out, &report.source, "", finding);
    }
    for (finding, reason) in &report.suppressed {
        render_finding(&mut out, &report.source, "suppressed ", finding);
        let _ = writeln!(out, "  reason: {reason}");
    }
    out
}

/// The codes named by the first line, `# expect EP001[, EP002]: what is wrong`.
fn expected_codes(stem: &str, bytes: &[u8]) -> Vec<String> {
    if let Some((_, code)) = EXPECT_WITHOUT_COMMENT.iter().find(|(s, _)| *s == stem) {
        return vec![(*code).to_string()];
    }
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let first_line = String::from_utf8_lossy(first_line);
    let Some(rest) = first_line.strip_prefix("# expect ") else {
        panic!("{stem}.yaml: the first line must be `# expect EPnnn: what is wrong`, got {first_line:?}");
    };
    let Some((codes, why)) = rest.split_once(':') else {
        panic!("{stem}.yaml: no `:` after the expected code in {first_line:?}");
    };
    assert!(!why.trim().is_empty(), "{stem}.yaml: say what is wrong after the code");
    codes.split(',').map(|c| c.trim().to_string()).collect()
}

fn expected_severity(stem: &str) -> Severity {
    if stem.starts_with("warn-") {
        Severity::Warning
    } else if stem.starts_with("note-") {
        Severity::Note
    } else {
        Severity::Error
    }
}

fn corpus() -> Vec<PathBuf> {
    let dir = repo_root().join("testdata/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_spec_gets_its_intended_finding() {
    let base_dir = repo_root().join("testdata/bad");
    let files = corpus();
    assert!(files.len() >= 30, "the corpus shrank to {} files", files.len());
    let mut failures = Vec::new();
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name").to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let display_path = format!("testdata/bad/{stem}.yaml");
        let (report, elapsed) = lint_guarded(&display_path, &bytes, &base_dir);

        if elapsed >= TIME_LIMIT {
            failures.push(format!("{display_path}: lint took {elapsed:?}"));
        }
        let codes: Vec<&str> = report.findings.iter().map(Finding::code).collect();
        if codes.is_empty() {
            failures.push(format!("{display_path}: no finding"));
        }
        let known_wrong = KNOWN_MISDIAGNOSED.iter().find(|(s, _)| *s == stem).map(|(_, today)| *today);
        for code in expected_codes(&stem, &bytes) {
            match known_wrong {
                None if !codes.contains(&code.as_str()) => {
                    failures.push(format!("{display_path}: expected {code}, got {codes:?}"));
                }
                Some(today) if codes.contains(&code.as_str()) || !codes.contains(&today) => failures.push(format!(
                    "{display_path}: listed in KNOWN_MISDIAGNOSED as {today} (intended {code}), now {codes:?}: update the list"
                )),
                _ => {}
            }
        }
        let worst = report.findings.iter().map(|f| f.severity).max();
        if worst != Some(expected_severity(&stem)) {
            failures.push(format!(
                "{display_path}: worst severity {worst:?}, expected {:?}: {codes:?}",
                expected_severity(&stem)
            ));
        }

        insta::with_settings!({ omit_expression => true, description => display_path.clone() }, {
            insta::assert_snapshot!(stem.as_str(), render(&report));
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A parse error stops at the first problem, so a parse-stage finding is always alone.
#[test]
fn parse_failures_yield_exactly_one_finding() {
    let base_dir = repo_root().join("testdata/bad");
    for path in corpus() {
        let bytes = std::fs::read(&path).expect("readable");
        let (report, _) = lint_guarded(&path.display().to_string(), &bytes, &base_dir);
        if report.findings.iter().any(|f| f.rule.stage == Stage::Parse) {
            assert_eq!(report.findings.len(), 1, "{}: {:?}", path.display(), report.findings);
            assert!(report.suppressed.is_empty());
        }
    }
}

/// A finding's message and help are one line each (the contract in edgeplan-diag), whatever
/// the spec quotes.
#[test]
fn messages_and_help_are_one_line() {
    let base_dir = repo_root().join("testdata/bad");
    let mut failures = Vec::new();
    for path in corpus() {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name");
        let bytes = std::fs::read(&path).expect("readable");
        let (report, _) = lint_guarded(stem, &bytes, &base_dir);
        let multiline: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.message.contains('\n') || f.help.contains('\n'))
            .map(|f| format!("{} {:?}", f.code(), f.message))
            .collect();
        match (KNOWN_MULTILINE_MESSAGES.contains(&stem), multiline.is_empty()) {
            (false, false) => failures.push(format!("{stem}: multi-line message: {multiline:?}")),
            (true, true) => failures.push(format!("{stem}: now one line: remove it from KNOWN_MULTILINE_MESSAGES")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Literal secrets are redacted: no finding quotes the value written in the spec.
#[test]
fn literal_secret_values_never_appear_in_findings() {
    let base_dir = repo_root().join("testdata/bad");
    for (stem, secret) in [
        ("secret-literal-api-key", "ptr_Xy7Qm2LITERALAPIKEYvalue0123456789="),
        ("secret-literal-agent-secret", "s3cr3t-AGENT-literal-value"),
        ("secret-env-db-password", "hunter2-DBPASS-literal"),
    ] {
        let path = base_dir.join(format!("{stem}.yaml"));
        let bytes = std::fs::read(&path).expect("readable");
        assert!(String::from_utf8_lossy(&bytes).contains(secret), "{stem}: the fixture lost its secret");
        let (report, _) = lint_guarded(stem, &bytes, &base_dir);
        let rendered = render(&report);
        assert!(rendered.contains("EP140"), "{stem}: {rendered}");
        assert!(!rendered.contains(secret), "{stem}: secret leaked: {rendered}");
    }
}

fn assert_refused_as_too_large(name: &str, spec: &str) {
    assert!(spec.len() > 10_000_000, "{name}: generated only {} bytes", spec.len());
    let (report, elapsed) = lint_guarded(name, spec.as_bytes(), Path::new("."));
    assert!(elapsed < TIME_LIMIT, "{name}: refusing took {elapsed:?}");
    let codes: Vec<&str> = report.findings.iter().map(Finding::code).collect();
    assert_eq!(codes, ["EP004"], "{name}");
    let finding = &report.findings[0];
    assert_eq!(finding.severity, Severity::Error);
    assert!(finding.span.is_none(), "{name}: a size finding is about the whole file");
    // The CLI reads at most limit + 1 bytes, so the message names the limit, not the size.
    assert!(finding.message.contains("larger than 8 MiB"), "{name}: {}", finding.message);
}

/// A 10 MB spec is refused with EP004 before parsing, whether the bulk is comments or
/// consumers.
#[test]
fn a_10_mb_spec_is_refused_quickly() {
    let seed = std::fs::read_to_string(repo_root().join("specs/seed.yaml")).expect("seed");

    let mut comments = seed.clone();
    let line = "# padding: a long comment line that only makes the file large, nothing else here\n";
    while comments.len() <= 10_000_000 {
        comments.push_str(line);
    }
    assert_refused_as_too_large("10mb-comments.yaml", &comments);

    let consumers_at = seed.find("    - name: prod\n").expect("seed has a consumer");
    let consumer = &seed[consumers_at..];
    let mut consumers = seed.clone();
    let mut n = 0u32;
    while consumers.len() <= 10_000_000 {
        n += 1;
        consumers.push_str(&consumer.replacen("- name: prod", &format!("- name: prod-{n}"), 1));
    }
    assert_refused_as_too_large("10mb-consumers.yaml", &consumers);
}

fn assert_clean(relative: &str) {
    let path = repo_root().join(relative);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {relative}: {err}"));
    let base_dir = path.parent().expect("spec has a directory");
    let (report, elapsed) = lint_guarded(relative, &bytes, base_dir);
    assert!(elapsed < TIME_LIMIT, "{relative}: lint took {elapsed:?}");
    let loud: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Note)
        .map(|f| format!("{} {}", f.code(), f.message))
        .collect();
    assert!(loud.is_empty(), "{relative} must lint clean, got:\n{}", render(&report));
}

/// The shipped specs lint without errors or warnings (notes such as EP115 are fine).
#[test]
fn shipped_specs_lint_clean() {
    assert_clean("specs/seed.yaml");
    if repo_root().join("specs/fleet.yaml").exists() {
        assert_clean("specs/fleet.yaml");
    }
}
