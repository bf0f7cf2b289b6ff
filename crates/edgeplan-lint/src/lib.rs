//! `edgeplan lint`: every static rule over a parsed spec, then inline suppressions.
//!
//! Architecture invariant: no I/O here. Files a spec references (the IAM policy document, an
//! EDGE_KEY file) are read through [`FileSource`], which the CLI implements over the file
//! system and tests implement over a map.

pub mod iam;
pub mod k8s;
mod redact;

pub use redact::{url_userinfo, without_url_credentials};
mod rules;
mod suppress;

use std::path::{Path, PathBuf};

use edgeplan_diag::{FileReport, Finding, SourceFile};
use edgeplan_spec::Spec;

/// Read access to files a spec references, relative to the spec's directory.
pub trait FileSource {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// A `FileSource` over an in-memory map; for tests and for embedding.
#[derive(Debug, Default)]
pub struct MemoryFiles(pub Vec<(PathBuf, Vec<u8>)>);

impl FileSource for MemoryFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

/// What a rule sees: the spec, its source text, and the files next to it.
pub(crate) struct Ctx<'a> {
    pub(crate) spec: &'a Spec,
    pub(crate) source: &'a SourceFile,
    pub(crate) base_dir: &'a Path,
    pub(crate) files: &'a dyn FileSource,
    pub(crate) findings: Vec<Finding>,
}

impl Ctx<'_> {
    pub(crate) fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    pub(crate) fn read(&self, relative: &str) -> std::io::Result<Vec<u8>> {
        self.files.read(&self.base_dir.join(relative))
    }

    /// The text a span covers, as written (quotes included), or "" for a synthetic value.
    pub(crate) fn written(&self, span: edgeplan_diag::Span) -> &str {
        self.source.text().get(span.start..span.end).unwrap_or("")
    }
}

/// Lint one spec file given as bytes. `path` is printed as given; referenced files resolve
/// against `base_dir` (normally the spec's directory).
pub fn lint_bytes(path: &str, bytes: &[u8], base_dir: &Path, files: &dyn FileSource) -> FileReport {
    lint_and_parse(path, bytes, base_dir, files).0
}

/// Lint one spec whose text is already decoded.
pub fn lint_source(source: SourceFile, base_dir: &Path, files: &dyn FileSource) -> FileReport {
    let source = match edgeplan_spec::normalize_line_breaks(source.text()) {
        std::borrow::Cow::Borrowed(_) => source,
        std::borrow::Cow::Owned(text) => SourceFile::new(source.path, text),
    };
    lint_parsed(source, base_dir, files).0
}

/// [`lint_bytes`], also returning the parsed spec (when it parses), for commands that go on to
/// use it: they need not parse it a second time.
pub fn lint_and_parse(path: &str, bytes: &[u8], base_dir: &Path, files: &dyn FileSource) -> (FileReport, Option<Spec>) {
    match edgeplan_spec::decode_utf8(bytes) {
        Ok(text) => lint_parsed(SourceFile::new(path, edgeplan_spec::normalize_line_breaks(text)), base_dir, files),
        Err(mut finding) => {
            let text = edgeplan_spec::normalize_line_breaks(&String::from_utf8_lossy(bytes)).into_owned();
            // The lossy text has U+FFFD (3 bytes) where the first invalid byte was.
            if let Some(span) = finding.span.as_mut() {
                span.end = span.start + char::REPLACEMENT_CHARACTER.len_utf8();
            }
            let spans = redact::textual_secret_spans(&text);
            (report(redact::redact(SourceFile::new(path, text), &spans), vec![finding], Vec::new()), None)
        }
    }
}

fn lint_parsed(source: SourceFile, base_dir: &Path, files: &dyn FileSource) -> (FileReport, Option<Spec>) {
    let spec = match edgeplan_spec::parse(&source) {
        Ok(spec) => spec,
        // A spec that does not parse gets no static rules: there is nothing typed to check.
        Err(finding) => {
            let findings = widen_empty_spans(&source, vec![finding]);
            let spans = redact::textual_secret_spans(source.text());
            return (report(redact::redact(source, &spans), findings, Vec::new()), None);
        }
    };
    let mut ctx = Ctx { spec: &spec, source: &source, base_dir, files, findings: Vec::new() };
    rules::run_all(&mut ctx);
    let findings = widen_empty_spans(&source, ctx.findings);
    let (findings, suppressed) = suppress::apply(&source, findings);
    let spans = redact::secret_spans(&spec, source.text());
    let source = redact::redact(source, &spans);
    (report(source, findings, suppressed), Some(spec))
}

/// A collection (mapping or sequence) has an empty span at its first key. Widen it to the rest
/// of that line, so every output format has something to underline.
fn widen_empty_spans(source: &SourceFile, mut findings: Vec<Finding>) -> Vec<Finding> {
    let widen = |span: &mut edgeplan_diag::Span| {
        if span.is_empty() && source.text().is_char_boundary(span.start) && span.start < source.text().len() {
            let rest = &source.text()[span.start..];
            let line = rest.split('\n').next().unwrap_or("");
            let content = line.split(" #").next().unwrap_or(line).trim_end();
            span.end = span.start + content.len();
        }
    };
    for finding in &mut findings {
        if let Some(span) = finding.span.as_mut() {
            widen(span);
        }
        for related in &mut finding.related {
            widen(&mut related.span);
        }
    }
    findings
}

fn report(source: SourceFile, findings: Vec<Finding>, suppressed: Vec<(Finding, String)>) -> FileReport {
    let mut report = FileReport { source, findings, suppressed };
    report.sort();
    report
}
