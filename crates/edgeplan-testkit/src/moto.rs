//! moto_server, and the fault-injecting proxy in front of it, as child processes of a test:
//! started on 127.0.0.1 on a free port, stopped when dropped (and, should the test process
//! die, when their stdin closes). Both are our own launchers in `tools/moto/`, run by a venv
//! with the pinned `tools/moto/requirements.txt`, which [`ensure_venv`] creates on first use.
//!
//! No AWS SDK here: tests and benchmarks talk to the servers with their own clients.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::path;

/// Where the venv lives: `$EDGEPLAN_MOTO_VENV` (a relative path is the repository's, as
/// `cargo xtask moto` reads it: tests run in their crate's directory), else `.moto-venv` in
/// the repository.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("EDGEPLAN_MOTO_VENV").map_or_else(|| path(".moto-venv"), |dir| crate::workspace_root().join(dir))
}

/// The requirements file the venv is made from.
pub fn requirements() -> PathBuf {
    path("tools/moto/requirements.txt")
}

const STAMP: &str = "edgeplan-requirements.sha256";

fn requirements_digest() -> Result<String, String> {
    let bytes = std::fs::read(requirements()).map_err(|e| format!("reading tools/moto/requirements.txt: {e}"))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// The venv's python, creating or refreshing the venv if its stamp does not match the
/// requirements. Safe when several processes race: they take a lock next to the venv.
pub fn ensure_venv() -> Result<PathBuf, String> {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    let digest = requirements_digest()?;
    let stamp = venv.join(STAMP);
    let fresh = || std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest) && python.exists();
    if fresh() {
        return Ok(python);
    }
    let parent = venv.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let lock_path = venv.with_extension("lock");
    let lock = File::create(&lock_path).map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if fresh() {
        return Ok(python);
    }
    let run = |command: &mut Command, what: &str| -> Result<(), String> {
        let output = command.output().map_err(|e| format!("{what}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed: {}", String::from_utf8_lossy(&output.stderr)))
        }
    };
    run(Command::new("python3").arg("-m").arg("venv").arg("--clear").arg(&venv), "python3 -m venv")?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "-q", "-r"])
            .arg(requirements()),
        "pip install -r tools/moto/requirements.txt",
    )?;
    std::fs::write(&stamp, &digest).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(python)
}

/// A server child process; stopped on drop.
pub struct Server {
    child: Child,
    /// Kept open: the child exits when it closes.
    _stdin: Option<ChildStdin>,
    url: String,
}

impl Server {
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `tools/moto/<script>` with `args`, and read its `… listening on URL` line.
fn start(script: &str, args: &[String]) -> Result<Server, String> {
    let python = ensure_venv()?;
    let mut child = Command::new(python)
        .arg(path("tools/moto").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {script}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = send.send(line);
    });
    let stdin = child.stdin.take();
    let mut server = Server { child, _stdin: stdin, url: String::new() };
    let line = receive.recv_timeout(Duration::from_secs(60)).map_err(|_| format!("{script} did not start in 60 s"))?;
    let url = line.trim().rsplit(' ').next().unwrap_or_default();
    if !url.starts_with("http://127.0.0.1:") {
        return Err(format!("{script} printed {line:?}, not its URL"));
    }
    server.url = url.to_string();
    Ok(server)
}

/// moto_server through our launcher.
pub fn start_moto() -> Result<Server, String> {
    start("edgeplan_moto.py", &["--host".into(), "127.0.0.1".into(), "--port".into(), "0".into()])
}

/// Faults injected by the proxy, as probabilities per call, and latency per call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
    pub latency_ms: u64,
    pub seed: u64,
}

/// The fault-injecting proxy in front of `upstream`.
pub fn start_proxy(upstream: &str, faults: Faults) -> Result<Server, String> {
    start(
        "fault_proxy.py",
        &[
            "--upstream".into(),
            upstream.into(),
            "--port".into(),
            "0".into(),
            "--throttle".into(),
            faults.throttle.to_string(),
            "--server-error".into(),
            faults.server_error.to_string(),
            "--latency-ms".into(),
            faults.latency_ms.to_string(),
            "--seed".into(),
            faults.seed.to_string(),
        ],
    )
}

/// Change a running proxy's faults.
pub fn configure_proxy(proxy: &Server, faults: Faults) -> Result<(), String> {
    let body = format!(
        r#"{{"throttle": {}, "server_error": {}, "latency_ms": {}}}"#,
        faults.throttle, faults.server_error, faults.latency_ms
    );
    post(proxy.url(), "/fault-proxy/config", &body).map(|_| ())
}

/// The proxy's counters (`requests`, `throttled`, `server_errors`, `by_action`).
pub fn proxy_stats(proxy: &Server) -> Result<serde_json::Value, String> {
    let body = request(proxy.url(), "GET", "/fault-proxy/stats", "")?;
    serde_json::from_str(&body).map_err(|e| format!("proxy stats: {e}"))
}

/// Wipe every resource: per-test isolation on one server.
pub fn reset(server: &Server) -> Result<(), String> {
    post(server.url(), "/moto-api/reset", "").map(|_| ())
}

fn post(url: &str, path: &str, body: &str) -> Result<String, String> {
    request(url, "POST", path, body)
}

/// A minimal HTTP/1.1 exchange on loopback (the servers' control endpoints only).
fn request(url: &str, method: &str, path: &str, body: &str) -> Result<String, String> {
    let authority = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).map_err(|e| format!("{url}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("{url}{path}: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("{url}{path}: {e}"))?;
    let status: u16 = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if !(200..300).contains(&status) {
        return Err(format!("{method} {url}{path}: HTTP {status}"));
    }
    Ok(response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}
