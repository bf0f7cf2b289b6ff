//! Reading secret references (`env:NAME`, `file:PATH`). A secret resolves or the plan stops:
//! an unreadable one is a typed error naming the reference, never a placeholder that ends up
//! deployed. Reading is bounded and never blocks: regular files only (a FIFO, a device or a
//! socket is refused before it is read), opened non-blocking, at most [`MAX_SECRET_BYTES`].

use std::fmt;
use std::io::Read;
use std::path::Path;

use edgeplan_model::SecretText;

/// Larger than any key or token; a bigger "secret" is the wrong file.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Why a reference could not be read. Never quotes the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    EnvUnset,
    EnvNotUnicode,
    Empty,
    FileMissing,
    Directory,
    /// A FIFO, a device or a socket: reading it could block or never end.
    NotRegular(&'static str),
    TooLarge,
    NotUtf8,
    Unreadable(String),
    /// Neither `env:` nor `file:`.
    UnknownScheme,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::EnvUnset => f.write_str("the environment variable is not set"),
            SecretError::EnvNotUnicode => f.write_str("the environment variable is not valid Unicode"),
            SecretError::Empty => f.write_str("it is empty"),
            SecretError::FileMissing => f.write_str("the file does not exist"),
            SecretError::Directory => f.write_str("it is a directory, not a file"),
            SecretError::NotRegular(what) => write!(f, "it is a {what}, not a regular file"),
            SecretError::TooLarge => write!(f, "it is larger than {} KiB", MAX_SECRET_BYTES / 1024),
            SecretError::NotUtf8 => f.write_str("it is not UTF-8 text"),
            SecretError::Unreadable(why) => write!(f, "it cannot be read: {why}"),
            SecretError::UnknownScheme => f.write_str("a secret is given as `env:NAME` or `file:PATH`"),
        }
    }
}

impl std::error::Error for SecretError {}

/// Where secret references are read from.
pub trait SecretSource {
    fn read(&self, reference: &str, base_dir: &Path) -> Result<SecretText, SecretError>;
}

/// The process environment and the file system: what the CLI reads.
pub struct SystemSecrets;

impl SecretSource for SystemSecrets {
    fn read(&self, reference: &str, base_dir: &Path) -> Result<SecretText, SecretError> {
        read_secret(reference, base_dir)
    }
}

/// Read `reference` (`env:NAME`, or `file:PATH` relative to `base_dir`). One trailing newline
/// is dropped, as `echo … > file` adds one.
pub fn read_secret(reference: &str, base_dir: &Path) -> Result<SecretText, SecretError> {
    let text = if let Some(name) = reference.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => return Err(SecretError::EnvUnset),
            Err(std::env::VarError::NotUnicode(_)) => return Err(SecretError::EnvNotUnicode),
        }
    } else if let Some(path) = reference.strip_prefix("file:") {
        read_file(&base_dir.join(path))?
    } else {
        return Err(SecretError::UnknownScheme);
    };
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if text.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(SecretText::new(text))
}

fn file_kind(metadata: &std::fs::Metadata) -> Result<(), SecretError> {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return Err(SecretError::Directory);
    }
    if kind.is_file() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return Err(SecretError::NotRegular("FIFO"));
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Err(SecretError::NotRegular("device"));
        }
        if kind.is_socket() {
            return Err(SecretError::NotRegular("socket"));
        }
    }
    Err(SecretError::NotRegular("special file"))
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    // Refuse what is not a regular file before opening it: opening a FIFO blocks.
    let metadata = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => SecretError::FileMissing,
        _ => SecretError::Unreadable(err.kind().to_string()),
    })?;
    file_kind(&metadata)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking, in case the path was swapped for a FIFO since: the open cannot hang.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|err| SecretError::Unreadable(err.kind().to_string()))?;
    let opened = file.metadata().map_err(|err| SecretError::Unreadable(err.kind().to_string()))?;
    file_kind(&opened)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| SecretError::Unreadable(err.kind().to_string()))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| SecretError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in(dir: &Path, reference: &str) -> Result<String, SecretError> {
        read_secret(reference, dir).map(|s| s.expose().to_string())
    }

    #[test]
    fn files_resolve_or_say_why_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        std::fs::write(path.join("ok"), "s3cret\n").expect("write");
        std::fs::write(path.join("empty"), "").expect("write");
        std::fs::write(path.join("newline"), "\n").expect("write");
        std::fs::write(path.join("latin1"), [0xe9, 0x74, 0xe9]).expect("write");
        std::fs::write(path.join("big"), vec![b'a'; 64 * 1024 + 1]).expect("write");
        std::fs::write(path.join("limit"), vec![b'a'; 64 * 1024]).expect("write");
        std::fs::create_dir(path.join("dir")).expect("mkdir");
        assert_eq!(read_in(path, "file:ok"), Ok("s3cret".to_string()));
        assert_eq!(read_in(path, "file:empty"), Err(SecretError::Empty));
        assert_eq!(read_in(path, "file:newline"), Err(SecretError::Empty));
        assert_eq!(read_in(path, "file:missing"), Err(SecretError::FileMissing));
        assert_eq!(read_in(path, "file:dir"), Err(SecretError::Directory));
        assert_eq!(read_in(path, "file:latin1"), Err(SecretError::NotUtf8));
        assert_eq!(read_in(path, "file:big"), Err(SecretError::TooLarge));
        assert_eq!(read_in(path, "file:limit").map(|s| s.len()), Ok(64 * 1024));
        assert_eq!(read_in(path, "vault:x"), Err(SecretError::UnknownScheme));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        assert!(made, "mkfifo (coreutils) makes the FIFO");
        assert_eq!(read_in(dir.path(), "file:fifo"), Err(SecretError::NotRegular("FIFO")));
        assert_eq!(read_in(Path::new("/"), "file:dev/null"), Err(SecretError::NotRegular("device")));
        assert_eq!(read_in(Path::new("/"), "file:dev/zero"), Err(SecretError::NotRegular("device")));
    }

    #[test]
    fn env_vars_resolve_or_say_why_not() {
        // Names unique to this test: the process environment is shared by parallel tests.
        assert_eq!(read_in(Path::new("."), "env:EDGEPLAN_TEST_SECRET_SURELY_UNSET"), Err(SecretError::EnvUnset));
    }
}
