//! `edgeplan edge-key` end to end: the built binary, keys fed on stdin or `--file`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_edgeplan");

const SERVER_FINGERPRINT: &str = "SHF+e25zLvC20boxYUsDHmLHWlyQt57LCHls6hSeJjg=";

/// `https://portainer.example.com|portainer.example.com:30776|<SERVER_FINGERPRINT>|7`, canonical.
const KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";

const VPCE_TUNNEL: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.vpce-svc-0123456789abcdef0.eu-west-1.vpce.amazonaws.com:30776";

/// `KEY` with its tunnel set to `VPCE_TUNNEL`: 227 characters, so padding lands on byte 227 as
/// in the field report (`illegal base64 data at input byte 227`).
const VPCE_KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218dnBjZS0wYTFiMmMzZDRlNWY2Nzg5MC1hYmNkMTIzNC52cGNlLXN2Yy0wMTIzNDU2Nzg5YWJjZGVmMC5ldS13ZXN0LTEudnBjZS5hbWF6b25hd3MuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";

/// `https://portainer.example.com|portainer.example.com:30776|7`: the fingerprint is missing.
const THREE_FIELD_KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fDc";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn edgeplan(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgeplan");
    let mut child_stdin = child.stdin.take().expect("stdin");
    // The child may exit before reading (usage errors); a broken pipe is fine then.
    let _ = child_stdin.write_all(stdin.as_bytes());
    drop(child_stdin);
    let output = child.wait_with_output().expect("wait for edgeplan");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("edge_key-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A soft-wrapped paste: line breaks every 60 characters, and the padding a re-encoder added.
fn wrapped_padded(key: &str) -> String {
    let lines: Vec<&str> = key.as_bytes().chunks(60).map(|chunk| std::str::from_utf8(chunk).expect("ascii")).collect();
    format!("{}=\n", lines.join("\n"))
}

#[test]
fn decode_canonical_key() {
    let run = edgeplan(&["edge-key", "decode"], &format!("{KEY}\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!("decode_canonical", run.stdout);
}

#[test]
fn decode_tolerates_wraps_and_padding_and_says_so() {
    let run = edgeplan(&["edge-key", "decode"], &wrapped_padded(KEY));
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("decode_wrapped_padded", run.stdout);
}

#[test]
fn decode_hides_the_server_fingerprint_unless_asked() {
    for format in ["human", "json"] {
        let run = edgeplan(&["edge-key", "decode", "--format", format], KEY);
        assert_eq!(run.code, 0);
        assert!(!run.stdout.contains(SERVER_FINGERPRINT), "{format}: {}", run.stdout);
        assert!(!run.stdout.contains("SHF+e25z"), "{format}: {}", run.stdout);

        let shown = edgeplan(&["edge-key", "decode", "--format", format, "--show-server-fingerprint"], KEY);
        assert!(shown.stdout.contains(SERVER_FINGERPRINT), "{format}");
    }
}

#[test]
fn decode_json() {
    let run = edgeplan(&["edge-key", "decode", "--format", "json"], &format!("{KEY}="));
    assert_eq!(run.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["url"], "https://portainer.example.com");
    assert_eq!(doc["tunnel"], "portainer.example.com:30776");
    assert_eq!(doc["server_fingerprint"], serde_json::Value::Null);
    assert_eq!(doc["server_fingerprint_chars"], 44);
    assert_eq!(doc["endpoint_id"], 7);
    assert_eq!(doc["global"], false);
    assert!(doc["key_fingerprint"].as_str().expect("str").starts_with("sha256:"));
    assert_eq!(doc["format"]["canonical"], false);
    assert_eq!(doc["format"]["padding_bytes"], 1);
    assert_eq!(doc["check"]["errors"], 1);
}

#[test]
fn decode_never_prints_the_key() {
    for input in [KEY.to_owned(), wrapped_padded(KEY)] {
        let run = edgeplan(&["edge-key", "decode"], &input);
        assert!(!run.stdout.contains(&KEY[..40]));
        assert!(!run.stderr.contains(&KEY[..40]));
    }
}

#[test]
fn check_canonical_key() {
    let run = edgeplan(&["edge-key", "check"], &format!("{KEY}\n"));
    assert_eq!(run.code, 0);
    insta::assert_snapshot!("check_canonical", run.stdout);
}

#[test]
fn check_padded_key_names_the_byte_the_agent_names() {
    let run = edgeplan(&["edge-key", "check"], &format!("{VPCE_KEY}="));
    assert_eq!(run.code, 1);
    assert!(run.stdout.starts_with("error: byte 227: "), "{}", run.stdout);
    assert!(run.stdout.contains("illegal base64 data at input byte 227"));
    insta::assert_snapshot!("check_padded", run.stdout);
}

#[test]
fn check_soft_wrap_newline_and_space() {
    // A newline from one paste and a space from another: the agent skips the first and dies on
    // the second, whose offset the newline shifts by one.
    let input = format!("{}\n{} {}\n", &KEY[..60], &KEY[60..120], &KEY[120..]);
    let run = edgeplan(&["edge-key", "check"], &input);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("error: byte 60: line break inside the key"));
    assert!(run.stdout.contains("error: byte 121: a space inside the key"));
    assert!(run.stdout.contains("moves between attempts"));
    assert!(run.stdout.contains("illegal base64 data at input byte 121"));
    insta::assert_snapshot!("check_newline_and_space", run.stdout);
}

#[test]
fn check_url_safe_alphabet() {
    let mut input = KEY.to_owned();
    input.replace_range(20..21, "-");
    input.replace_range(30..31, "_");
    let run = edgeplan(&["edge-key", "check"], &input);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("check_url_safe", run.stdout);
}

#[test]
fn check_three_fields() {
    let run = edgeplan(&["edge-key", "check"], THREE_FIELD_KEY);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("error: the decoded key has 3 `|`-separated fields, the agent needs exactly 4"));
    insta::assert_snapshot!("check_three_fields", run.stdout);
}

#[test]
fn check_json() {
    let run = edgeplan(&["edge-key", "check", "--format", "json"], &format!("{VPCE_KEY}="));
    assert_eq!(run.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["agent_error"], "illegal base64 data at input byte 227");
    let issue = &doc["issues"][0];
    assert_eq!(issue["offset"], 227);
    assert_eq!(issue["len"], 1);
    assert_eq!(issue["severity"], "error");
    assert_eq!(issue["kind"], "padding");
    assert!(issue["message"].is_string());
    assert!(issue["help"].is_string());
    assert!(doc["fingerprint"].as_str().expect("str").starts_with("sha256:"));

    let clean = edgeplan(&["edge-key", "check", "--format", "json"], KEY);
    assert_eq!(clean.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&clean.stdout).expect("json");
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["issues"], serde_json::json!([]));
    assert_eq!(doc["agent_error"], serde_json::Value::Null);
}

#[test]
fn check_warnings_alone_exit_zero() {
    // `http://p.example.com|p.example.com:8000|<fingerprint>|3`
    let http_key = "aHR0cDovL3AuZXhhbXBsZS5jb218cC5leGFtcGxlLmNvbTo4MDAwfFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDM";
    let run = edgeplan(&["edge-key", "check"], http_key);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("warning: the decoded key's 1st field (Portainer URL) uses http"));
}

#[test]
fn encode_writes_the_canonical_key() {
    let run = edgeplan(&["edge-key", "encode"], &wrapped_padded(KEY));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{KEY}\n"));
    assert!(run.stderr.starts_with("edgeplan: wrote the canonical EDGE_KEY to stdout"));
    assert!(run.stderr.contains("key fingerprint sha256:"));
    assert_eq!(run.stderr.lines().count(), 1);
}

#[test]
fn set_tunnel_points_the_key_at_the_vpc_endpoint() {
    let run = edgeplan(&["edge-key", "set-tunnel", VPCE_TUNNEL], &wrapped_padded(KEY));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{VPCE_KEY}\n"));
    assert!(run.stderr.contains(VPCE_TUNNEL));
    assert_eq!(run.stderr.lines().count(), 1);

    let decoded = edgeplan(&["edge-key", "decode"], &run.stdout);
    assert!(decoded.stdout.contains(&format!("tunnel:             {VPCE_TUNNEL}\n")));
    assert!(decoded.stdout.contains("format:             canonical\n"));
}

#[test]
fn set_tunnel_rejects_a_bad_address_before_reading_the_key() {
    for addr in ["https://vpce.example.com:443", "vpce.example.com", "vpce.example.com:0"] {
        let run = edgeplan(&["edge-key", "set-tunnel", addr], KEY);
        assert_eq!(run.code, 2, "{addr}");
        assert!(run.stderr.starts_with("error: HOST:PORT: invalid tunnel address: "), "{}", run.stderr);
        assert!(run.stderr.contains("\nhelp: "));
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn output_file_is_private_and_not_overwritten() {
    let dir = scratch_dir("output");
    let path = dir.join("edge.key");
    let path_arg = path.to_str().expect("utf-8 path");

    let run = edgeplan(&["edge-key", "encode", "--output", path_arg], &format!("{KEY}="));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), KEY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = edgeplan(&["edge-key", "set-tunnel", VPCE_TUNNEL, "-o", path_arg], KEY);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"));
    assert!(again.stderr.contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), KEY);

    let forced = edgeplan(&["edge-key", "set-tunnel", VPCE_TUNNEL, "-o", path_arg, "--force"], KEY);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), VPCE_KEY);
}

#[test]
fn reads_from_file() {
    let dir = scratch_dir("file");
    let path = dir.join("key.txt");
    std::fs::write(&path, wrapped_padded(KEY)).expect("write");
    let path_arg = path.to_str().expect("utf-8 path");
    let run = edgeplan(&["edge-key", "encode", "--file", path_arg], "");
    assert_eq!(run.stdout, format!("{KEY}\n"));
    let dash = edgeplan(&["edge-key", "encode", "--file", "-"], KEY);
    assert_eq!(dash.stdout, format!("{KEY}\n"));
}

#[test]
fn unreadable_input_exits_two() {
    let dir = scratch_dir("unreadable");
    let missing = dir.join("missing.txt");
    for sub in ["decode", "check", "encode"] {
        let run = edgeplan(&["edge-key", sub, "--file", missing.to_str().expect("utf-8")], "");
        assert_eq!(run.code, 2, "{sub}");
        assert!(run.stderr.starts_with("error: cannot read the key from "), "{}", run.stderr);
        assert!(run.stderr.contains("\nhelp: "));
    }
}

#[test]
fn invalid_key_exits_one_with_help() {
    let run = edgeplan(&["edge-key", "decode"], THREE_FIELD_KEY);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    insta::assert_snapshot!("decode_invalid_stderr", run.stderr);

    let run = edgeplan(&["edge-key", "encode"], &KEY.replace('c', "-"));
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("URL-safe"));
}

#[test]
fn the_key_cannot_be_given_on_the_command_line() {
    for sub in ["decode", "check", "encode"] {
        let run = edgeplan(&["edge-key", sub, KEY], "");
        assert_eq!(run.code, 2, "{sub}");
        assert!(run.stderr.contains("unexpected argument"), "{}", run.stderr);
        // Refused without printing it back (clap's own error quoted the argument).
        assert!(run.stderr.contains("looks like an EDGE_KEY"), "{}", run.stderr);
        assert!(!run.stderr.contains(&KEY[..24]) && !run.stdout.contains(&KEY[..24]), "{}", run.stderr);
    }
    let run = edgeplan(&["edge-key", "set-tunnel", VPCE_TUNNEL, KEY], KEY);
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains(&KEY[..24]), "{}", run.stderr);
    // Any stray argument is refused without an echo: a mangled key might not look like one.
    let run = edgeplan(&["edge-key", "decode", "not-a-key"], KEY);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unexpected argument") && !run.stderr.contains("not-a-key"), "{}", run.stderr);
}

/// A key pasted where a host or a file name was expected is refused, and never printed back,
/// whole, padded, glued to a port or at the end of a path.
#[test]
fn a_key_pasted_as_a_host_or_a_file_name_is_never_echoed() {
    let dir = scratch_dir("pasted");
    let in_dir = dir.join(KEY);
    let in_dir = in_dir.to_str().expect("utf-8");
    let cases: Vec<Vec<String>> = vec![
        vec!["set-tunnel".into(), KEY.into()],
        vec!["set-tunnel".into(), format!("{KEY}:8000")],
        vec!["set-tunnel".into(), format!("{KEY}=")],
        vec!["decode".into(), "--file".into(), KEY.into()],
        vec!["check".into(), "--file".into(), in_dir.into()],
        vec!["encode".into(), "-o".into(), in_dir.into()],
        vec!["set-tunnel".into(), VPCE_TUNNEL.into(), "--output".into(), in_dir.into()],
    ];
    for args in cases {
        let mut all = vec!["edge-key"];
        all.extend(args.iter().map(String::as_str));
        let run = edgeplan(&all, KEY);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("looks like an EDGE_KEY"), "{args:?}: {}", run.stderr);
        for secret in [&KEY[..24], &KEY[KEY.len() - 24..]] {
            assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "{args:?}: {}", run.stderr);
        }
        assert_eq!(run.stdout, "");
    }
    assert!(std::fs::read_dir(&dir).expect("scratch").next().is_none(), "no file named by the key was created");
}

#[test]
fn set_tunnel_rejects_hosts_with_empty_or_long_labels() {
    let long = "a".repeat(64);
    for (addr, says) in [
        ("vpce..vpce.amazonaws.com:8000", "empty label"),
        (".vpce.amazonaws.com:8000", "empty label"),
        ("vpce.amazonaws.com.:8000", "empty label"),
        (&*format!("{long}.vpce.amazonaws.com:8000"), "longer than 63"),
        ("vpce-.amazonaws.com:8000", "starts or ends with `-`"),
    ] {
        let run = edgeplan(&["edge-key", "set-tunnel", addr], KEY);
        assert_eq!(run.code, 2, "{addr}");
        assert!(run.stderr.contains(says), "{addr}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    let longest = format!("{}.vpce.amazonaws.com:8000", "a".repeat(63));
    assert_eq!(edgeplan(&["edge-key", "set-tunnel", &longest], KEY).code, 0);
}

/// `-o --force` never changes a file other than the one the path names: not a symlink's
/// target, not a hard link's other names. A regular file is overwritten and made 0600.
#[cfg(unix)]
#[test]
fn force_never_writes_or_chmods_through_a_link() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch_dir("links");
    let victim = dir.join("victim.txt");
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    std::fs::write(&victim, "someone else's file\n").expect("write");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let symlink = dir.join("edge.key");
    std::os::unix::fs::symlink(&victim, &symlink).expect("symlink");
    let hard = dir.join("hard.key");
    std::fs::hard_link(&victim, &hard).expect("hard link");

    for link in [&symlink, &hard] {
        let run = edgeplan(&["edge-key", "encode", "-o", link.to_str().expect("utf-8"), "--force"], KEY);
        assert_eq!(run.code, 2, "{}: {}", link.display(), run.stderr);
        assert!(run.stderr.contains("symlink") || run.stderr.contains("hard links"), "{}", run.stderr);
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "someone else's file\n");
        assert_eq!(mode(&victim), 0o644, "the other file's mode is untouched");
    }
    assert!(std::fs::symlink_metadata(&symlink).expect("lstat").file_type().is_symlink(), "the link is left as it was");

    let own = dir.join("own.key");
    std::fs::write(&own, "old").expect("write");
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = edgeplan(&["edge-key", "encode", "-o", own.to_str().expect("utf-8"), "--force"], KEY);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&own).expect("read"), KEY);
    assert_eq!(mode(&own), 0o600);
}

/// `--file <(pass show edge-key)`: a FIFO is read as it delivers, not opened and waited on.
#[cfg(unix)]
#[test]
fn reads_a_key_from_a_fifo() {
    let dir = scratch_dir("fifo");
    let fifo = dir.join("key");
    assert!(Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()), "mkfifo");
    let path = fifo.clone();
    let writer = std::thread::spawn(move || std::fs::write(path, format!("{KEY}\n")));
    let run = edgeplan(&["edge-key", "encode", "--file", fifo.to_str().expect("utf-8")], "");
    writer.join().expect("writer").expect("wrote the FIFO");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{KEY}\n"));
}

/// A password in the key's Portainer URL (field 1) is not printed by decode.
#[test]
fn decode_hides_a_password_in_the_url() {
    // `https://admin:Pa55word@portainer.example.com|portainer.example.com:8000|<fingerprint>|3`
    let key = "aHR0cHM6Ly9hZG1pbjpQYTU1d29yZEBwb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjgwMDB8U0hGK2UyNXpMdkMyMGJveFlVc0RIbUxIV2x5UXQ1N0xDSGxzNmhTZUpqZz18Mw";
    for format in ["human", "json"] {
        let run = edgeplan(&["edge-key", "decode", "--format", format], key);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stdout.contains("Pa55word") && !run.stdout.contains("admin"), "{format}: {}", run.stdout);
        assert!(run.stdout.contains("https://***@portainer.example.com"), "{format}: {}", run.stdout);
    }
}

#[test]
fn the_key_never_reaches_stderr() {
    let secrets = [KEY, VPCE_KEY, SERVER_FINGERPRINT];
    let runs = [
        edgeplan(&["edge-key", "decode"], KEY),
        edgeplan(&["edge-key", "decode", "--format", "json"], KEY),
        edgeplan(&["edge-key", "check"], &format!("{VPCE_KEY}=")),
        edgeplan(&["edge-key", "encode"], &wrapped_padded(KEY)),
        edgeplan(&["edge-key", "set-tunnel", VPCE_TUNNEL], KEY),
        edgeplan(&["edge-key", "encode"], &format!("{KEY}-")),
        edgeplan(&["edge-key", "decode"], THREE_FIELD_KEY),
    ];
    for run in runs {
        for secret in secrets {
            assert!(!run.stderr.contains(&secret[..24]), "{}", run.stderr);
        }
    }
}
