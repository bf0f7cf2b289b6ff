//! `edgeplan lint`: read specs, run the static rules, render findings, pick the exit code.

use std::io::{IsTerminal as _, Read as _, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use edgeplan_diag::{FileReport, FindingDiagnostic, Severity};
use edgeplan_lint::FileSource;

use crate::args::{LintArgs, LintFormat};
use crate::exit;

/// Referenced files (policy documents, EDGE_KEY files) are small; refuse anything huge.
const MAX_REFERENCED_FILE_BYTES: u64 = 1024 * 1024;

/// Reads files a spec references from the file system.
pub(crate) struct FsFiles;

impl FileSource for FsFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() > MAX_REFERENCED_FILE_BYTES {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "file larger than 1 MiB"));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_REFERENCED_FILE_BYTES), &mut bytes)?;
        Ok(bytes)
    }
}

/// How a spec read from stdin is named in every output format.
const STDIN_NAME: &str = "<stdin>";

/// Waiting this long for a spec on a FIFO (or stdin) with no input is giving up, not hanging.
pub(crate) const DEFAULT_STDIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn run(args: LintArgs) -> u8 {
    let idle = Duration::from_secs(args.stdin_timeout);
    if args.specs.iter().filter(|p| is_stdin(p)).count() > 1 {
        eprintln!("error[edgeplan::usage]: `-` (stdin) is given more than once");
        eprintln!("  help: stdin holds one spec: give `-` once, and the other specs as files");
        return exit::CANNOT_RUN;
    }
    let mut reports = Vec::new();
    let mut unreadable = false;
    for path in &args.specs {
        let (display, read) = if is_stdin(path) {
            (STDIN_NAME.to_string(), read_stdin(idle))
        } else {
            (path.display().to_string(), read_spec_waiting(path, idle))
        };
        match read {
            Ok(bytes) => {
                // A spec from stdin references files relative to where edgeplan runs.
                let base_dir = if is_stdin(path) { Path::new(".") } else { path.parent().unwrap_or(Path::new(".")) };
                reports.push(edgeplan_lint::lint_bytes(&display, &bytes, base_dir, &FsFiles));
            }
            Err(err) => {
                eprintln!("error[edgeplan::cannot-read]: cannot read {}: {err}", shown_path(path, &display));
                eprintln!("  help: {}", read_help(&err));
                unreadable = true;
            }
        }
    }
    let output = match args.format {
        LintFormat::Human => render_human(&reports),
        LintFormat::Json => edgeplan_render::lint::json(&reports),
        LintFormat::Sarif => edgeplan_render::lint::sarif(&reports),
        LintFormat::Github => edgeplan_render::lint::github(&reports),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return exit::CANNOT_RUN;
    }
    if unreadable {
        return exit::CANNOT_RUN;
    }
    exit_code(&reports, args.max_warnings)
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// A path for a message, unless it is a key pasted where a file name was expected: never echo
/// a key.
pub(crate) fn shown_path(path: &Path, display: &str) -> String {
    if edgeplan_edgekey::looks_like_key(&path.to_string_lossy()) {
        "the given path (it looks like an EDGE_KEY, so it is not shown)".to_string()
    } else {
        display.to_string()
    }
}

fn read_help(err: &std::io::Error) -> &'static str {
    match err.kind() {
        std::io::ErrorKind::TimedOut => {
            "nothing arrived: pipe the spec in (`edgeplan lint - < spec.yaml`), or raise --stdin-timeout"
        }
        std::io::ErrorKind::Unsupported => "pipe or redirect the spec into stdin: `edgeplan lint - < spec.yaml`",
        _ => "check the path and permissions; nothing was linted in this file",
    }
}

/// Read a spec file, bounded: at most one byte past the size limit (so an oversized spec
/// becomes a finding, not an OOM), and a FIFO or a device is read only while it delivers,
/// never waited on for ever (opening a FIFO nobody writes to blocks).
pub(crate) fn read_spec(path: &Path) -> std::io::Result<Vec<u8>> {
    read_spec_waiting(path, DEFAULT_STDIN_TIMEOUT)
}

fn read_spec_waiting(path: &Path, idle: Duration) -> std::io::Result<Vec<u8>> {
    let limit = edgeplan_spec::MAX_SPEC_BYTES as u64 + 1;
    let metadata = std::fs::metadata(path)?;
    if metadata.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory"));
    }
    if metadata.is_file() {
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    let path = path.to_path_buf();
    read_stream(move || std::fs::File::open(path), limit, idle)
}

/// The spec on stdin. A terminal is refused: nobody types a spec, and waiting for one would
/// look like a hang.
fn read_stdin(idle: Duration) -> std::io::Result<Vec<u8>> {
    if std::io::stdin().is_terminal() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "stdin is a terminal, and `-` reads the spec from stdin",
        ));
    }
    read_stream(|| Ok(std::io::stdin()), edgeplan_spec::MAX_SPEC_BYTES as u64 + 1, idle)
}

/// Read what `open` opens on a thread of its own, at most `limit` bytes, giving up when no byte
/// arrives for `idle`: a FIFO nobody writes to (or whose writer stalls) ends in an error, not a
/// hang. The reader thread is left blocked; the process exits without it.
pub(crate) fn read_stream<R: std::io::Read>(
    open: impl FnOnce() -> std::io::Result<R> + Send + 'static,
    limit: u64,
    idle: Duration,
) -> std::io::Result<Vec<u8>> {
    let (chunks, received) = mpsc::channel::<std::io::Result<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut reader = match open() {
            Ok(reader) => reader,
            Err(err) => {
                let _ = chunks.send(Err(err));
                return;
            }
        };
        let mut buffer = vec![0; 64 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => {
                    let _ = chunks.send(Ok(Vec::new()));
                    return;
                }
                Ok(n) => {
                    if chunks.send(Ok(buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = chunks.send(Err(err));
                    return;
                }
            }
        }
    });
    let mut bytes = Vec::new();
    loop {
        match received.recv_timeout(idle) {
            Ok(Ok(chunk)) if chunk.is_empty() => return Ok(bytes),
            Ok(Ok(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 >= limit {
                    bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    return Ok(bytes);
                }
            }
            Ok(Err(err)) => return Err(err),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no input for {} s", idle.as_secs()),
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(bytes),
        }
    }
}

fn exit_code(reports: &[FileReport], max_warnings: Option<usize>) -> u8 {
    let errors: usize = reports.iter().map(|r| r.count(Severity::Error)).sum();
    let warnings: usize = reports.iter().map(|r| r.count(Severity::Warning)).sum();
    if errors > 0 || max_warnings.is_some_and(|max| warnings > max) { exit::FINDINGS } else { exit::OK }
}

pub(crate) fn render_human(reports: &[FileReport]) -> String {
    let handler = crate::diagnostics::report_handler();
    let mut out = String::new();
    for report in reports {
        for finding in &report.findings {
            let diagnostic = FindingDiagnostic { finding, source: &report.source };
            if handler.render_report(&mut out, &diagnostic).is_err() {
                out.push_str(&format!("{}: {}: {}\n", report.source.path, finding.code(), finding.message));
            }
            out.push('\n');
        }
    }
    out.push_str(&edgeplan_render::lint::human_summary(reports));
    out.push('\n');
    out
}
