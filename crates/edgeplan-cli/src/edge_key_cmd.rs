//! `edgeplan edge-key`: decode, check, re-point and re-encode a Portainer EDGE_KEY.
//!
//! The key is read from stdin or `--file`, never from argv, which ends up in shell history and
//! `ps`. Only `encode` and `set-tunnel` write a key, to stdout or `--output`; everything else,
//! stderr included, shows at most its `sha256:` fingerprint.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use edgeplan_edgekey::{CanonicalKey, EdgeKey, Issue, IssueKind, KeyError, Report};
use serde_json::json;

use crate::exit;

/// An EDGE_KEY is a few hundred bytes; anything this big is the wrong file.
const MAX_INPUT_BYTES: u64 = 64 * 1024;

const CHECK_HINT: &str = "`edgeplan edge-key check` lists every problem with its byte offset";

#[derive(Debug, Args)]
#[command(after_help = "\
The key is read from stdin or --file, never from the command line.

Examples:
  edgeplan edge-key check --file edge-key.txt
  edgeplan edge-key decode < edge-key.txt
  edgeplan edge-key set-tunnel \"$VPCE_DNS:8000\" --file edge-key.txt --output patched.key")]
pub struct EdgeKeyArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Show the key's fields; the tunnel server fingerprint stays hidden unless asked for.
    Decode(DecodeArgs),
    /// List every problem, at the byte offsets the agent's errors use; exit 1 on an error.
    Check(CheckArgs),
    /// Point the key at another tunnel address (for PrivateLink, the VPC endpoint's DNS name)
    /// and write it in canonical form.
    SetTunnel(SetTunnelArgs),
    /// Write the key as the agent wants it: standard base64, no `=` padding, no whitespace.
    Encode(EncodeArgs),
}

#[derive(Debug, Args)]
struct InputArgs {
    /// Read the key from this file instead of stdin (`-` is stdin). Line wraps, spaces and `=`
    /// padding are tolerated, except by `check`, which reports them.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Arguments no subcommand takes. Caught here rather than by clap, whose error would echo
    /// them, and a stray argument here is most often the key itself.
    #[arg(hide = true, value_name = "UNEXPECTED")]
    unexpected: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Write the key to this file (created with mode 0600, no trailing newline) instead of
    /// stdout.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
    /// Overwrite the --output file if it exists.
    #[arg(long, requires = "output")]
    force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Debug, Args)]
struct DecodeArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Print the tunnel server fingerprint (field 3) instead of hiding it.
    #[arg(long)]
    show_server_fingerprint: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Args)]
struct SetTunnelArgs {
    /// The new tunnel address, such as `<vpc-endpoint-dns-name>:8000`; no scheme.
    #[arg(value_name = "HOST:PORT")]
    tunnel: String,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct EncodeArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) fn run(args: EdgeKeyArgs) -> u8 {
    let (subcommand, input) = match &args.action {
        Action::Decode(a) => ("decode", &a.input),
        Action::Check(a) => ("check", &a.input),
        Action::SetTunnel(a) => ("set-tunnel", &a.input),
        Action::Encode(a) => ("encode", &a.input),
    };
    if let Err(code) = refuse_unexpected(subcommand, &input.unexpected) {
        return code;
    }
    let result = match args.action {
        Action::Decode(args) => decode(&args),
        Action::Check(args) => check(&args),
        Action::SetTunnel(args) => set_tunnel(&args),
        Action::Encode(args) => encode(&args),
    };
    result.unwrap_or_else(|code| code)
}

/// Every step returns `Err(exit code)` once it has told the user why it stops.
type Step<T> = Result<T, u8>;

fn decode(args: &DecodeArgs) -> Step<u8> {
    let raw = read_input(&args.input)?;
    let key = parse_key(&raw)?;
    let report = edgeplan_edgekey::check(&raw);
    let out = match args.format {
        Format::Human => render_decode_human(&key, &report, args.show_server_fingerprint),
        Format::Json => {
            let document = render_decode_json(&key, &report, args.show_server_fingerprint);
            format!("{document:#}\n")
        }
    };
    print_stdout(&out)?;
    Ok(exit::OK)
}

fn render_decode_human(key: &EdgeKey, report: &Report, show_server_fingerprint: bool) -> String {
    let server_fingerprint = if show_server_fingerprint {
        printable(key.server_fingerprint())
    } else {
        let chars = key.server_fingerprint().chars().count();
        format!("<hidden, {chars} chars; --show-server-fingerprint to print>")
    };
    let endpoint_id = if key.is_global() {
        "0 (global key: agents onboard themselves)".to_owned()
    } else {
        key.endpoint_id().to_string()
    };
    let mut out = String::new();
    for (label, value) in [
        ("url", printable(&edgeplan_lint::without_url_credentials(key.portainer_url()))),
        ("tunnel", printable(key.tunnel_addr())),
        ("server fingerprint", server_fingerprint),
        ("endpoint id", endpoint_id),
        ("key fingerprint", key.fingerprint()),
        ("format", EncodingNoise::of(report).summary()),
        ("check", check_summary(report)),
    ] {
        out.push_str(&format!("{:<19} {value}\n", format!("{label}:")));
    }
    out
}

fn render_decode_json(key: &EdgeKey, report: &Report, show_server_fingerprint: bool) -> serde_json::Value {
    let noise = EncodingNoise::of(report);
    json!({
        // A password in the URL is never printed (the key itself is the only place it lives).
        "url": edgeplan_lint::without_url_credentials(key.portainer_url()),
        "tunnel": key.tunnel_addr(),
        "server_fingerprint": show_server_fingerprint.then_some(key.server_fingerprint()),
        "server_fingerprint_chars": key.server_fingerprint().chars().count(),
        "endpoint_id": key.endpoint_id(),
        "global": key.is_global(),
        "key_fingerprint": key.fingerprint(),
        "format": {
            "canonical": noise.is_canonical(),
            "summary": noise.summary(),
            "padding_bytes": noise.padding_bytes,
            "line_breaks": noise.line_breaks,
            "spaces_or_tabs": noise.spaces_or_tabs,
            "non_zero_trailing_bits": noise.non_zero_trailing_bits,
        },
        "check": {
            "valid": report.is_valid(),
            "errors": report.error_count(),
            "warnings": report.warning_count(),
        },
    })
}

fn check(args: &CheckArgs) -> Step<u8> {
    let raw = read_input(&args.input)?;
    let report = edgeplan_edgekey::check(&raw);
    let out = match args.format {
        Format::Human => render_check_human(&report),
        Format::Json => format!("{:#}\n", render_check_json(&report)),
    };
    print_stdout(&out)?;
    Ok(if report.is_valid() { exit::OK } else { exit::FINDINGS })
}

/// A stray argument is refused without being echoed: `edge-key decode <key>` is the likeliest
/// way to get here, and the key must not reach the terminal a second time.
fn refuse_unexpected(subcommand: &str, unexpected: &[std::ffi::OsString]) -> Step<()> {
    let Some(first) = unexpected.first() else { return Ok(()) };
    if unexpected.iter().any(|a| edgeplan_edgekey::looks_like_key(&a.to_string_lossy())) {
        print_error(
            &format!("unexpected argument to `edge-key {subcommand}`: it looks like an EDGE_KEY, so it is not shown"),
            &format!("{PASTED_KEY_HELP}; `edgeplan edge-key {subcommand} < key.txt`"),
        );
    } else {
        let chars = first.to_string_lossy().chars().count();
        print_error(
            &format!(
                "unexpected argument to `edge-key {subcommand}` ({chars} characters, not shown: edge-key never echoes an argument that could be a key)"
            ),
            "the key is read from stdin or --file; see `edgeplan edge-key --help`",
        );
    }
    Err(exit::CANNOT_RUN)
}

/// What to do about a key that landed on the command line.
const PASTED_KEY_HELP: &str = "give the key on stdin or with --file, never as an argument; it is now in your \
     shell history (and was visible to `ps`): if others can read either, issue a new key in Portainer";

fn set_tunnel(args: &SetTunnelArgs) -> Step<u8> {
    if edgeplan_edgekey::looks_like_key(&args.tunnel) {
        print_error("HOST:PORT looks like an EDGE_KEY, not a tunnel address, so it is not shown", PASTED_KEY_HELP);
        return Err(exit::CANNOT_RUN);
    }
    if let Some(path) = args.output.output.as_deref().filter(|p| looks_like_key_path(p)) {
        let _ = path;
        print_error("--output looks like an EDGE_KEY, not a file name, so it is not shown", PASTED_KEY_HELP);
        return Err(exit::CANNOT_RUN);
    }
    // Checked before reading the key, so a typo costs no paste.
    if let Err(problem) = edgeplan_edgekey::validate_tunnel_addr(&args.tunnel) {
        let err = KeyError::InvalidTunnelAddr(problem);
        print_error(&format!("HOST:PORT: {err}"), err.help());
        return Err(exit::CANNOT_RUN);
    }
    let raw = read_input(&args.input)?;
    let old_key = parse_key(&raw)?;
    let new_key = old_key.with_tunnel_addr(&args.tunnel).map_err(|err| {
        print_error(&format!("HOST:PORT: {err}"), err.help());
        exit::CANNOT_RUN
    })?;
    let canonical = new_key.to_canonical();
    let destination = write_key(&canonical, &args.output)?;
    eprintln!(
        "edgeplan: wrote the EDGE_KEY with tunnel {} to {destination} (key fingerprint {}, was {})",
        printable(&args.tunnel),
        canonical.fingerprint(),
        old_key.fingerprint()
    );
    warn_if_still_broken(&canonical);
    Ok(exit::OK)
}

fn encode(args: &EncodeArgs) -> Step<u8> {
    if args.output.output.as_deref().is_some_and(looks_like_key_path) {
        print_error("--output looks like an EDGE_KEY, not a file name, so it is not shown", PASTED_KEY_HELP);
        return Err(exit::CANNOT_RUN);
    }
    let raw = read_input(&args.input)?;
    let canonical = parse_key(&raw)?.to_canonical();
    let destination = write_key(&canonical, &args.output)?;
    eprintln!("edgeplan: wrote the canonical EDGE_KEY to {destination} (key fingerprint {})", canonical.fingerprint());
    warn_if_still_broken(&canonical);
    Ok(exit::OK)
}

fn looks_like_key_path(path: &Path) -> bool {
    edgeplan_edgekey::looks_like_key(&path.to_string_lossy())
}

fn read_input(input: &InputArgs) -> Step<Vec<u8>> {
    let path = input.file.as_deref().filter(|path| *path != Path::new("-"));
    if path.is_some_and(looks_like_key_path) {
        print_error("--file looks like an EDGE_KEY, not a file name, so it is not shown", PASTED_KEY_HELP);
        return Err(exit::CANNOT_RUN);
    }
    let (source, result) = match path {
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                // Someone pasting: wait as long as they take.
                eprintln!("edgeplan: reading the EDGE_KEY from stdin; paste it, then press Ctrl-D");
                ("stdin".to_owned(), read_limited(stdin.lock()))
            } else {
                ("stdin".to_owned(), read_waiting(|| Ok(io::stdin())))
            }
        }
        Some(path) => (path.display().to_string(), read_file(path)),
    };
    result.map_err(|err| {
        print_error(
            &format!("cannot read the key from {source}: {err}"),
            "pipe the key on stdin or give --file PATH; never put the key itself on the command line",
        );
        exit::CANNOT_RUN
    })
}

/// A key file: a regular file is read at once; a FIFO (`--file <(pass show edge-key)`) only
/// while it delivers, since opening one nobody writes to would block for ever.
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    if std::fs::metadata(path)?.is_file() {
        return File::open(path).and_then(read_limited);
    }
    let path = path.to_path_buf();
    read_waiting(move || File::open(path))
}

fn read_waiting<R: io::Read>(open: impl FnOnce() -> io::Result<R> + Send + 'static) -> io::Result<Vec<u8>> {
    let bytes = crate::lint_cmd::read_stream(open, MAX_INPUT_BYTES + 1, crate::lint_cmd::DEFAULT_STDIN_TIMEOUT)?;
    read_limited(bytes.as_slice())
}

fn read_limited(reader: impl io::Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "it is larger than 64 KiB, and an EDGE_KEY is a few hundred bytes",
        ));
    }
    Ok(bytes)
}

fn parse_key(raw: &[u8]) -> Step<EdgeKey> {
    EdgeKey::parse(raw).map_err(|err| {
        print_error(&format!("not a valid EDGE_KEY: {err}"), err.help());
        eprintln!("note: {CHECK_HINT}");
        exit::FINDINGS
    })
}

/// `encode` and `set-tunnel` fix the encoding only; say so if the content still has errors.
fn warn_if_still_broken(canonical: &CanonicalKey) {
    let report = edgeplan_edgekey::check(canonical.expose_secret().as_bytes());
    if !report.is_valid() {
        eprintln!(
            "warning: the key has {} that re-encoding does not fix; {CHECK_HINT}",
            count(report.error_count(), "error", "errors")
        );
    }
}

fn write_key(key: &CanonicalKey, output: &OutputArgs) -> Step<String> {
    let Some(path) = output.output.as_deref() else {
        print_stdout(&format!("{}\n", key.expose_secret()))?;
        return Ok("stdout".to_owned());
    };
    match write_secret_file(path, key.expose_secret().as_bytes(), output.force) {
        Ok(()) => Ok(path.display().to_string()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            print_error(
                &format!("{} already exists", path.display()),
                "pass --force to overwrite it, or choose another --output",
            );
            Err(exit::CANNOT_RUN)
        }
        Err(err) => {
            print_error(
                &format!("cannot write {}: {err}", path.display()),
                "choose a writable --output path, or leave it out to write to stdout",
            );
            Err(exit::CANNOT_RUN)
        }
    }
}

/// Writes a secret: owner-only on unix, and never over an existing file unless `force`.
///
/// The file whose mode is set is the file written, and it is the one the path names: a symlink
/// (even one that points at another file of the user's), a FIFO or a device is refused, and so
/// is a file with other hard links. The checks compare the open file with what the path names
/// after opening it (`lstat` against `fstat`), so a symlink swapped in meanwhile is refused too,
/// and the mode is set on the open file (`fchmod`). Nothing is truncated until they pass.
fn write_secret_file(path: &Path, contents: &[u8], force: bool) -> io::Result<()> {
    let before = std::fs::symlink_metadata(path);
    if let Ok(existing) = &before {
        if existing.file_type().is_symlink() {
            return Err(io::Error::other(
                "it is a symlink; edgeplan writes a key only to the regular file a path names, never through a link",
            ));
        }
        if !existing.is_file() {
            return Err(io::Error::other("it exists and is not a regular file"));
        }
    }
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true);
    } else {
        // O_EXCL: never follows a symlink, never opens an existing file.
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let opened = file.metadata()?;
    let named = std::fs::symlink_metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let same = named.file_type().is_file() && (named.dev(), named.ino()) == (opened.dev(), opened.ino());
        if !same {
            return Err(io::Error::other("the path changed while it was opened (a symlink was swapped in?)"));
        }
        if opened.nlink() > 1 {
            return Err(io::Error::other(
                "it has other hard links, which would share the key and its mode; remove it first or choose another path",
            ));
        }
        // `mode` only applies to a new file; an overwritten one keeps its old permissions otherwise.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = (opened, named);
    file.set_len(0)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn print_stdout(text: &str) -> Step<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is the reader's choice, not an error worth a message.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Err(exit::OK),
        Err(err) => {
            print_error(&format!("cannot write to stdout: {err}"), "check where stdout is redirected");
            Err(exit::CANNOT_RUN)
        }
    }
}

fn print_error(message: &str, help: &str) {
    eprintln!("error: {message}");
    eprintln!("help: {help}");
}

/// What `parse` tolerated and `encode` would remove.
struct EncodingNoise {
    padding_bytes: usize,
    line_breaks: usize,
    spaces_or_tabs: usize,
    non_zero_trailing_bits: bool,
}

impl EncodingNoise {
    fn of(report: &Report) -> EncodingNoise {
        let mut noise =
            EncodingNoise { padding_bytes: 0, line_breaks: 0, spaces_or_tabs: 0, non_zero_trailing_bits: false };
        for issue in report.issues() {
            match issue.kind {
                IssueKind::Padding => noise.padding_bytes += issue.len,
                IssueKind::LineBreak { .. } => noise.line_breaks += 1,
                IssueKind::Whitespace { .. } => noise.spaces_or_tabs += issue.len,
                IssueKind::NonZeroTrailingBits => noise.non_zero_trailing_bits = true,
                _ => {}
            }
        }
        noise
    }

    fn is_canonical(&self) -> bool {
        self.padding_bytes == 0 && self.line_breaks == 0 && self.spaces_or_tabs == 0 && !self.non_zero_trailing_bits
    }

    fn summary(&self) -> String {
        if self.is_canonical() {
            return "canonical".to_owned();
        }
        let mut parts = Vec::new();
        if self.padding_bytes > 0 {
            parts.push(count(self.padding_bytes, "`=` padding byte", "`=` padding bytes"));
        }
        if self.line_breaks > 0 {
            parts.push(count(self.line_breaks, "line break", "line breaks"));
        }
        if self.spaces_or_tabs > 0 {
            parts.push(count(self.spaces_or_tabs, "space or tab", "spaces or tabs"));
        }
        if self.non_zero_trailing_bits {
            parts.push("non-zero trailing bits".to_owned());
        }
        format!("non-canonical: {}; run `edgeplan edge-key encode`", parts.join(", "))
    }
}

fn check_summary(report: &Report) -> String {
    if report.issues().is_empty() {
        return "no issues".to_owned();
    }
    format!(
        "{}, {}; run `edgeplan edge-key check` for details",
        count(report.error_count(), "error", "errors"),
        count(report.warning_count(), "warning", "warnings")
    )
}

fn render_check_human(report: &Report) -> String {
    let mut out = String::new();
    for issue in report.issues() {
        out.push_str(&format!("{}: {}{}\n", issue.severity.as_str(), location(issue), issue.message()));
        out.push_str(&format!("help: {}\n\n", issue.help()));
    }
    let agent = match report.agent_verdict().agent_error() {
        Some(error) => {
            format!("would stop with \"unable to associate Edge key\" error=\"{error}\"")
        }
        None => "would accept the key (it tests the tunnel address and server fingerprint \
                 only when it connects)"
            .to_owned(),
    };
    out.push_str(&format!("agent: {agent}\n"));
    let fingerprint = match report.fingerprint() {
        Some(fingerprint) => format!("{fingerprint} (as `edgeplan edge-key encode` would write it)"),
        None => "none (the key cannot be read)".to_owned(),
    };
    out.push_str(&format!("key fingerprint: {fingerprint}\n"));
    let result = if report.issues().is_empty() {
        "no issues".to_owned()
    } else {
        format!(
            "{}, {}",
            count(report.error_count(), "error", "errors"),
            count(report.warning_count(), "warning", "warnings")
        )
    };
    out.push_str(&format!("result: {result}\n"));
    out
}

/// `byte N: ` for problems at particular bytes; nothing for ones about the decoded key.
fn location(issue: &Issue) -> String {
    if issue.kind.is_about_decoded_key() || issue.kind == IssueKind::Empty {
        String::new()
    } else {
        format!("byte {}: ", issue.offset)
    }
}

fn render_check_json(report: &Report) -> serde_json::Value {
    let issues: Vec<serde_json::Value> = report
        .issues()
        .iter()
        .map(|issue| {
            json!({
                "offset": issue.offset,
                "len": issue.len,
                "severity": issue.severity.as_str(),
                "kind": issue.kind.code(),
                "message": issue.message(),
                "help": issue.help(),
            })
        })
        .collect();
    json!({
        "valid": report.is_valid(),
        "errors": report.error_count(),
        "warnings": report.warning_count(),
        "issues": issues,
        "fingerprint": report.fingerprint(),
        "agent_error": report.agent_verdict().agent_error(),
    })
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A decoded field for the terminal: control characters escaped so a crafted key can't drive it.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
