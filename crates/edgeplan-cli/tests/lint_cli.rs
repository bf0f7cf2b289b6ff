//! End-to-end tests of `edgeplan lint`, run as the built binary from the repository root so
//! printed paths are `specs/seed.yaml` and `testdata/bad/…`: golden output in every format,
//! exit codes, and secrets that never reach any output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FORMATS: &[&str] = &["human", "json", "sarif", "github"];

/// A parse error with a did-you-mean help, a static error with a related location, and a
/// spec whose worst finding is a warning.
const REPRESENTATIVE_BAD: &[&str] = &[
    "testdata/bad/unknown-key-kubecontext.yaml",
    "testdata/bad/nlb-subnet-outside-vpc.yaml",
    "testdata/bad/warn-acceptance-not-required.yaml",
];

/// Fixtures with a literal secret, and the secret.
const SECRETS: &[(&str, &str)] = &[
    ("testdata/bad/secret-literal-api-key.yaml", "ptr_Xy7Qm2LITERALAPIKEYvalue0123456789="),
    ("testdata/bad/secret-literal-agent-secret.yaml", "s3cr3t-AGENT-literal-value"),
    ("testdata/bad/secret-env-db-password.yaml", "hunter2-DBPASS-literal"),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn edgeplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeplan"))
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run edgeplan")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("edgeplan exited normally, not by a signal")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// SARIF carries the whole rule catalog; the seed's snapshot pins it once, the others count it.
fn without_sarif_catalog(text: &str) -> String {
    let mut sarif: serde_json::Value = serde_json::from_str(text).expect("SARIF is JSON");
    for run in sarif["runs"].as_array_mut().expect("runs") {
        let rules = &mut run["tool"]["driver"]["rules"];
        let count = rules.as_array().map_or(0, Vec::len);
        *rules = serde_json::Value::String(format!("[{count} rules, pinned by lint_cli__sarif_seed]"));
    }
    serde_json::to_string_pretty(&sarif).expect("serialize") + "\n"
}

fn snapshot_text(output: &Output, format: &str, full_catalog: bool) -> String {
    let mut out = stdout(output);
    if format == "sarif" && !full_catalog {
        out = without_sarif_catalog(&out);
    }
    let out = out.replace(env!("CARGO_PKG_VERSION"), "[version]");
    format!("exit: {}\n--- stdout\n{out}--- stderr\n{}", code(output), stderr(output))
}

#[test]
fn golden_output_for_the_seed_in_every_format() {
    for format in FORMATS {
        let output = edgeplan(&["lint", "--format", format, "specs/seed.yaml"]);
        assert_eq!(code(&output), 0, "{format}: {}", stderr(&output));
        insta::with_settings!({ omit_expression => true, description => format!("edgeplan lint --format {format} specs/seed.yaml") }, {
            insta::assert_snapshot!(format!("{format}_seed"), snapshot_text(&output, format, true));
        });
    }
}

#[test]
fn golden_output_for_bad_specs_in_every_format() {
    for spec in REPRESENTATIVE_BAD {
        let stem = Path::new(spec).file_stem().and_then(|s| s.to_str()).expect("stem");
        for format in FORMATS {
            let output = edgeplan(&["lint", "--format", format, spec]);
            let expected = if stem.starts_with("warn-") { 0 } else { 1 };
            assert_eq!(code(&output), expected, "{format} {spec}: {}", stderr(&output));
            insta::with_settings!({ omit_expression => true, description => format!("edgeplan lint --format {format} {spec}") }, {
                insta::assert_snapshot!(format!("{format}_{stem}"), snapshot_text(&output, format, false));
            });
        }
    }
}

/// Machine formats must parse and point at the right place, independently of the snapshots.
#[test]
fn json_and_sarif_are_well_formed_and_locate_the_finding() {
    let spec = "testdata/bad/nlb-subnet-outside-vpc.yaml";
    let text = std::fs::read_to_string(repo_root().join(spec)).expect("fixture");
    let line = text.lines().position(|l| l.contains("cidr: 10.9.0.0/24")).expect("fixture line") + 1;

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&edgeplan(&["lint", "--format", "json", spec]))).expect("--format json is JSON");
    let text = json.to_string();
    assert!(text.contains("\"EP111\""), "{text}");
    assert!(text.contains(&format!("\"line\":{line}")), "EP111 should be on line {line}: {text}");

    let sarif: serde_json::Value =
        serde_json::from_str(&stdout(&edgeplan(&["lint", "--format", "sarif", spec]))).expect("--format sarif is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let ep111 = results.iter().find(|r| r["ruleId"] == "EP111").expect("an EP111 result");
    assert_eq!(ep111["level"], "error");
    let location = &ep111["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], spec);
    assert_eq!(location["region"]["startLine"], line);

    let github = stdout(&edgeplan(&["lint", "--format", "github", spec]));
    assert!(github.lines().any(|l| l.starts_with(&format!("::error file={spec},line={line},"))), "{github}");
}

#[test]
fn exit_codes() {
    let cases: &[(&[&str], i32)] = &[
        (&["lint", "specs/seed.yaml"], 0),
        (&["lint", "testdata/bad/nlb-subnet-outside-vpc.yaml"], 1),
        (&["lint", "testdata/bad/yaml-tab-indentation.yaml"], 1),
        // Warnings alone pass, unless --max-warnings says otherwise.
        (&["lint", "testdata/bad/warn-acceptance-not-required.yaml"], 0),
        (&["lint", "--max-warnings", "1", "testdata/bad/warn-acceptance-not-required.yaml"], 0),
        (&["lint", "--max-warnings", "0", "testdata/bad/warn-acceptance-not-required.yaml"], 1),
        (&["lint", "--max-warnings", "0", "specs/seed.yaml"], 0),
        // One bad file among good ones fails the run.
        (&["lint", "specs/seed.yaml", "testdata/bad/nlb-subnet-outside-vpc.yaml"], 1),
        // edgeplan cannot run: missing file, usage errors.
        (&["lint", "testdata/bad/no-such-file.yaml"], 2),
        (&["lint", "specs/seed.yaml", "testdata/bad/no-such-file.yaml"], 2),
        (&["lint"], 2),
        (&["lint", "--format", "xml", "specs/seed.yaml"], 2),
        (&["lint", "--max-warnings", "-1", "specs/seed.yaml"], 2),
    ];
    let fleet = repo_root().join("specs/fleet.yaml").exists();
    for (args, expected) in cases.iter().chain(fleet.then_some((&["lint", "specs/fleet.yaml"][..], 0)).iter()) {
        let output = edgeplan(args);
        assert_eq!(
            code(&output),
            *expected,
            "edgeplan {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            stdout(&output),
            stderr(&output)
        );
    }
}

#[test]
fn a_missing_file_is_named_on_stderr() {
    let output = edgeplan(&["lint", "testdata/bad/no-such-file.yaml"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("testdata/bad/no-such-file.yaml"), "{}", stderr(&output));
}

#[test]
fn lint_without_a_spec_prints_usage() {
    let output = edgeplan(&["lint"]);
    assert_eq!(code(&output), 2);
    let err = stderr(&output);
    assert!(err.contains("Usage") && err.contains("SPEC"), "{err}");
    assert!(stdout(&output).is_empty());
}

/// The secret's value appears in no format, neither in messages nor in source snippets.
#[test]
fn literal_secrets_never_reach_any_output() {
    let mut leaks = Vec::new();
    for (spec, secret) in SECRETS {
        let text = std::fs::read_to_string(repo_root().join(spec)).expect("fixture");
        assert!(text.contains(secret), "{spec} lost its secret");
        for format in FORMATS {
            let output = edgeplan(&["lint", "--format", format, spec]);
            assert_eq!(code(&output), 1, "{format} {spec}: a literal secret is an error");
            assert!(stdout(&output).contains("EP140"), "{format} {spec}: no EP140 in\n{}", stdout(&output));
            for (stream, content) in [("stdout", stdout(&output)), ("stderr", stderr(&output))] {
                if let Some(line) = content.lines().find(|l| l.contains(secret)) {
                    leaks.push(format!("--format {format} {spec}: {stream} shows the secret: {line}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "literal secrets leaked:\n{}", leaks.join("\n"));
}

/// A spec past the size limit is one EP004 finding, not a long read or an out-of-memory.
#[test]
fn an_oversized_spec_is_refused() {
    let dir = std::env::temp_dir().join(format!("edgeplan-lint-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("huge.yaml");
    let seed = std::fs::read_to_string(repo_root().join("specs/seed.yaml")).expect("seed");
    let mut text = seed;
    while text.len() <= 10_000_000 {
        text.push_str("# padding: a long comment line that only makes the file large, nothing else here\n");
    }
    std::fs::write(&path, &text).expect("write the 10 MB spec");
    let started = std::time::Instant::now();
    let output = edgeplan(&["lint", "--format", "json", path.to_str().expect("UTF-8 temp path")]);
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("\"EP004\""), "{out}");
    assert!(elapsed < std::time::Duration::from_secs(5), "took {elapsed:?}");
}

// ----- issue 9: `lint -`, bounded reads, values lint must not echo, derived names --------------

/// `edgeplan ARGS` with `stdin` piped in (and closed), from `dir` under the repository root.
fn edgeplan_stdin(dir: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplan"))
        .args(args)
        .current_dir(repo_root().join(dir))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run edgeplan");
    let mut pipe = child.stdin.take().expect("stdin");
    // edgeplan may stop reading (a spec past the size limit); a broken pipe is fine then.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("wait for edgeplan")
}

#[test]
fn lint_dash_reads_the_spec_from_stdin() {
    let seed = std::fs::read(repo_root().join("specs/seed.yaml")).expect("seed");
    // From specs/, so the policy document the seed names resolves as it does next to the file.
    let output = edgeplan_stdin("specs", &["lint", "--format", "json", "-"], &seed);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let codes: Vec<&str> =
        json["diagnostics"].as_array().expect("diagnostics").iter().filter_map(|d| d["code"].as_str()).collect();
    assert_eq!(codes, ["EP115"]);
    assert_eq!(json["diagnostics"][0]["file"], "<stdin>");

    let bad =
        String::from_utf8(seed).expect("UTF-8").replace("acceptanceRequired: true", "acceptanceRequired: \"false\"");
    let output = edgeplan_stdin("specs", &["lint", "-", "seed.yaml"], bad.as_bytes());
    assert_eq!(code(&output), 1);
    assert!(stdout(&output).contains("<stdin>:50:27"), "{}", stdout(&output));

    let twice = edgeplan_stdin("specs", &["lint", "-", "-"], b"");
    assert_eq!(code(&twice), 2);
    assert!(stderr(&twice).contains("more than once"), "{}", stderr(&twice));
}

#[test]
fn lint_dash_is_bounded_like_a_file() {
    let mut huge = std::fs::read(repo_root().join("specs/seed.yaml")).expect("seed");
    while huge.len() <= 10_000_000 {
        huge.extend_from_slice(b"# padding: a long comment line that only makes the input large, nothing else\n");
    }
    let started = std::time::Instant::now();
    let output = edgeplan_stdin("specs", &["lint", "--format", "json", "-"], &huge);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stdout(&output).contains("\"EP004\""), "{}", stdout(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let empty = edgeplan_stdin("specs", &["lint", "--format", "json", "-"], b"");
    assert_eq!(code(&empty), 1);
    assert!(stdout(&empty).contains("\"EP003\""), "{}", stdout(&empty));
}

/// A pipe whose writer never writes, or a FIFO nobody opens for writing, is given up on after
/// --stdin-timeout: lint exits 2 instead of hanging.
#[test]
fn lint_never_hangs_on_a_silent_pipe_or_fifo() {
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplan"))
        .args(["lint", "--stdin-timeout", "1", "-"])
        .current_dir(repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run edgeplan");
    let writer = child.stdin.take(); // held open, never written
    let output = child.wait_with_output().expect("edgeplan exits by itself");
    drop(writer);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("cannot read <stdin>: no input for 1 s"), "{}", stderr(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());

    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("spec.yaml");
    assert!(Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()), "mkfifo");
    let started = std::time::Instant::now();
    let output = edgeplan(&["lint", "--stdin-timeout", "1", fifo.to_str().expect("UTF-8 path")]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("no input for 1 s"), "{}", stderr(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());

    // A FIFO that does deliver (process substitution) is read.
    let seed = std::fs::read(repo_root().join("specs/seed.yaml")).expect("seed");
    let path = fifo.clone();
    let writer = std::thread::spawn(move || std::fs::write(path, seed));
    let output = edgeplan(&["lint", "--format", "json", fifo.to_str().expect("UTF-8 path")]);
    writer.join().expect("writer").expect("wrote the FIFO");
    assert!(stdout(&output).contains("\"EP115\""), "{}\n{}", stdout(&output), stderr(&output));
}

/// With a terminal on stdin there is nobody piping a spec: refuse at once rather than wait.
#[test]
fn lint_dash_refuses_a_terminal() {
    assert!(Command::new("script").arg("--version").output().is_ok(), "`script` provides the terminal");
    let bin = env!("CARGO_BIN_EXE_edgeplan");
    let started = std::time::Instant::now();
    let output = Command::new("script")
        .args(["-qfec", &format!("{bin} lint -; echo exit=$?"), "/dev/null"])
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("stdin is a terminal"), "{text}");
    assert!(text.contains("exit=2"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A Portainer URL's password is starred in every format, snippets included.
#[test]
fn url_credentials_never_reach_any_output() {
    let spec = "testdata/bad/url-credentials.yaml";
    let text = std::fs::read_to_string(repo_root().join(spec)).expect("fixture");
    assert!(text.contains("admin:Pa55-URL-literal@"), "{spec} lost its credentials");
    for format in FORMATS {
        let output = edgeplan(&["lint", "--format", format, spec]);
        assert_eq!(code(&output), 1, "{format}");
        let everything = format!("{}{}", stdout(&output), stderr(&output));
        assert!(everything.contains("EP132"), "{format}: {everything}");
        assert!(!everything.contains("Pa55-URL-literal") && !everything.contains("admin:"), "{format}: {everything}");
    }
}

/// A key pasted where the spec's path belongs is not printed back.
#[test]
fn a_key_given_as_the_spec_path_is_not_echoed() {
    let key = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";
    let output = edgeplan(&["lint", key]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("looks like an EDGE_KEY"), "{}", stderr(&output));
    assert!(!stderr(&output).contains(&key[..24]) && !stdout(&output).contains(&key[..24]));
}

/// Lint's limit on consumer names is the real derivation's. The compiler builds every node's
/// address, the plan's manifests put it on each Kubernetes object as its `edgeplan.dev/address`
/// label, next to the objects' names: at lint's longest accepted name every one of those is
/// valid, one character more and one is not (and lint says so). If a node's address name, the
/// address format or the labels change, this fails until lint's derivation follows.
#[test]
fn lint_consumer_name_limit_is_the_derivations() {
    use edgeplan_lint::k8s;
    let seed = std::fs::read_to_string(repo_root().join("specs/seed.yaml")).expect("seed");
    let max = k8s::max_consumer_name_len();
    for (len, fits) in [(max, true), (max + 1, false)] {
        let name = "c".repeat(len);
        let text = seed.replacen("    - name: prod\n", &format!("    - name: {name}\n"), 1);
        let report = edgeplan_lint::lint_bytes(
            "spec.yaml",
            text.as_bytes(),
            Path::new("specs"),
            &edgeplan_lint::MemoryFiles::default(),
        );
        let lint_refuses = report.findings.iter().any(|f| f.code() == "EP108");
        let spec = edgeplan_spec::parse(&edgeplan_diag::SourceFile::new("spec.yaml", text.as_str())).expect("parses");
        let stack = spec.metadata.name.value.clone();

        let mut label_values = Vec::new();
        let mut names = Vec::new();
        for node in edgeplan_model::compile(&spec) {
            if node.kind.scope() != edgeplan_model::ScopeKind::Kubernetes {
                continue;
            }
            let labels =
                edgeplan_plan::manifests::ownership_labels(&edgeplan_model::Ownership::new(&stack, &node.address));
            label_values.extend(labels.into_values());
            for object in edgeplan_plan::manifests::object_refs(&node) {
                names.push(object.name.clone());
                names.extend(object.namespace.clone());
            }
        }
        assert!(
            label_values.iter().any(|v| v.contains(&name)),
            "the consumer's name is in a label value: {label_values:?}"
        );
        let all_valid =
            label_values.iter().all(|v| k8s::is_label_value(v)) && names.iter().all(|n| k8s::is_dns1123_subdomain(n));
        assert_eq!(all_valid, fits, "consumer name of {len}: {label_values:?} {names:?}");
        assert_eq!(lint_refuses, !fits, "consumer name of {len}: lint must refuse exactly what Kubernetes would");
    }
}
