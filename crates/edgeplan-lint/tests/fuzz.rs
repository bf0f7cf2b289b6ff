//! Property-based fuzzing of parse + lint: `lint_bytes` never panics, returns within a
//! second, and returns a well-formed report, for
//!
//! - (a) arbitrary bytes up to 4 KiB (raw, and biased towards YAML punctuation);
//! - (b) mutations of specs/seed.yaml: bit flips, line insertion, deletion, duplication and
//!   swaps, and spliced YAML tokens (anchors, aliases, merge keys, flow brackets, tags, tabs,
//!   document markers, NUL escapes, non-UTF-8 bytes, suppression comments);
//! - (c) structure-aware specs generated from the spec language's own keys, with values that
//!   sit on every rule's edges and the occasional wrong type or unknown key.
//!
//! Cases per strategy come from `EDGEPLAN_FUZZ_CASES` (default 256). A long run:
//!
//! ```text
//! EDGEPLAN_FUZZ_CASES=100000 cargo test --release -p edgeplan-lint --test fuzz -- --nocapture
//! ```
//!
//! prints `fuzz: N executions, 0 crashes`. Referenced files come from memory, never disk.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use edgeplan_diag::{FileReport, Stage};
use edgeplan_lint::{MemoryFiles, lint_bytes};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

const SEED: &str = include_str!("../../../specs/seed.yaml");
const POLICY: &[u8] = include_bytes!("../../../specs/policies/aws-load-balancer-controller-v2.13.2.json");
/// base64-no-pad of `https://portainer.example.com|portainer.example.com:30776|<sha256 fp>|7`.
const KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";

/// A hang guard, not a performance test (speed is measured by `cargo xtask bench`): generous
/// enough for a debug build on a loaded 2-core CI machine, short enough to catch a runaway.
const TIME_LIMIT: Duration = Duration::from_secs(10);
const DEFAULT_CASES: u32 = 256;

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);
static CRASHES: AtomicU64 = AtomicU64::new(0);
static MULTILINE_MESSAGES: AtomicU64 = AtomicU64::new(0);

fn cases() -> u32 {
    match std::env::var("EDGEPLAN_FUZZ_CASES") {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| panic!("EDGEPLAN_FUZZ_CASES={value:?} is not a number")),
        Err(_) => DEFAULT_CASES,
    }
}

fn files() -> MemoryFiles {
    let mut wrapped = KEY.as_bytes().to_vec();
    wrapped.insert(76, b'\n');
    let entries: Vec<(&str, Vec<u8>)> = vec![
        ("specs/policies/aws-load-balancer-controller-v2.13.2.json", POLICY.to_vec()),
        ("specs/policies/garbage.json", b"{\"Statement\": [".to_vec()),
        ("specs/policies/no-statements.json", b"{\"Version\": \"2012-10-17\"}".to_vec()),
        (
            "specs/policies/alb-era.json",
            br#"{"Statement":[{"Effect":"Allow","Action":"elasticloadbalancing:*","Resource":"*"}]}"#.to_vec(),
        ),
        ("specs/keys/valid.edgekey", format!("{KEY}\n").into_bytes()),
        ("specs/keys/padded.edgekey", format!("{KEY}=\n").into_bytes()),
        ("specs/keys/wrapped.edgekey", wrapped),
        ("specs/keys/garbage.edgekey", b"\xff\xfe not a key = at all\r\n\t".to_vec()),
        ("specs/keys/empty.edgekey", Vec::new()),
    ];
    MemoryFiles(entries.into_iter().map(|(path, bytes)| (PathBuf::from(path), bytes)).collect())
}

// ----- the harness: one worker thread, so a hang becomes a failure instead of a stuck test ------

enum Outcome {
    Report(Box<FileReport>),
    Panicked(String),
}

struct Worker {
    jobs: Sender<Vec<u8>>,
    outcomes: Receiver<Outcome>,
}

impl Worker {
    fn spawn() -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Vec<u8>>();
        let (outcome_tx, outcomes) = mpsc::channel();
        std::thread::spawn(move || {
            let files = files();
            for bytes in job_rx {
                let result = catch_unwind(AssertUnwindSafe(|| {
                    lint_bytes("specs/fuzz.yaml", &bytes, Path::new("specs"), &files)
                }));
                let outcome = match result {
                    Ok(report) => Outcome::Report(Box::new(report)),
                    Err(payload) => Outcome::Panicked(
                        payload
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                            .unwrap_or_else(|| "non-string panic payload".to_string()),
                    ),
                };
                if outcome_tx.send(outcome).is_err() {
                    return;
                }
            }
        });
        Worker { jobs, outcomes }
    }
}

/// Lints on the worker; a panic, a call slower than [`TIME_LIMIT`] or a malformed report fails
/// the case. After a timeout the stuck worker is abandoned and a fresh one takes over.
fn check(worker: &mut Worker, bytes: &[u8]) -> Result<(), TestCaseError> {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    if worker.jobs.send(bytes.to_vec()).is_err() {
        *worker = Worker::spawn();
        return Err(TestCaseError::fail("the lint worker died"));
    }
    let outcome = match worker.outcomes.recv_timeout(TIME_LIMIT) {
        Ok(outcome) => outcome,
        Err(_) => {
            CRASHES.fetch_add(1, Ordering::Relaxed);
            *worker = Worker::spawn();
            return Err(TestCaseError::fail(format!("lint_bytes did not return within {TIME_LIMIT:?}")));
        }
    };
    let elapsed = started.elapsed();
    let report = match outcome {
        Outcome::Report(report) => report,
        Outcome::Panicked(message) => {
            CRASHES.fetch_add(1, Ordering::Relaxed);
            return Err(TestCaseError::fail(format!("lint_bytes panicked: {message}")));
        }
    };
    if elapsed > TIME_LIMIT {
        CRASHES.fetch_add(1, Ordering::Relaxed);
        return Err(TestCaseError::fail(format!("lint_bytes took {elapsed:?}")));
    }
    well_formed(&report).map_err(TestCaseError::fail)
}

/// What every report must look like, whatever the input: spans inside the text, a parse
/// failure alone, findings sorted, messages not empty.
fn well_formed(report: &FileReport) -> Result<(), String> {
    let len = report.source.text().len();
    for finding in &report.findings {
        let spans = finding.span.into_iter().chain(finding.related.iter().map(|r| r.span));
        for span in spans {
            if span.start > span.end || span.end > len {
                return Err(format!("{} span {span:?} outside the {len}-byte text", finding.code()));
            }
        }
        if finding.message.trim().is_empty() {
            return Err(format!("{} has an empty message", finding.code()));
        }
        // Not a failure here: messages quoting a multi-line value are a known defect, pinned
        // deterministically by bad_corpus (KNOWN_MULTILINE_MESSAGES). Counted and reported.
        if finding.message.contains('\n') {
            MULTILINE_MESSAGES.fetch_add(1, Ordering::Relaxed);
        }
    }
    let parse_failures = report.findings.iter().filter(|f| f.rule.stage == Stage::Parse).count();
    if parse_failures > 0 && report.findings.len() != 1 {
        return Err(format!("a parse failure came with other findings: {:?}", codes(report)));
    }
    let mut sorted = report.findings.clone();
    sorted.sort_by_key(|f| (f.span.map(|s| (s.start, s.end)), f.rule.id, f.message.clone()));
    if sorted != report.findings {
        return Err(format!("findings are not sorted: {:?}", codes(report)));
    }
    Ok(())
}

fn codes(report: &FileReport) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.code()).collect()
}

/// Input bytes that print as text in a failure report.
#[derive(Clone)]
struct Input(Vec<u8>);

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes: {:?}", self.0.len(), String::from_utf8_lossy(&self.0))
    }
}

fn fuzz(name: &str, strategy: impl Strategy<Value = Input>) -> u64 {
    let before = EXECUTIONS.load(Ordering::Relaxed);
    let config = Config { cases: cases(), failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let worker = RefCell::new(Worker::spawn());
    let result = runner.run(&strategy, |input| check(&mut worker.borrow_mut(), &input.0));
    let executed = EXECUTIONS.load(Ordering::Relaxed) - before;
    match result {
        Ok(()) => executed,
        Err(TestError::Fail(reason, input)) => {
            panic!(
                "strategy {name}: {reason}\nminimal input: {input:?}\nwrite it to testdata/bad/ as a regression case"
            )
        }
        Err(TestError::Abort(reason)) => panic!("strategy {name} aborted: {reason}"),
    }
}

// ----- (a) arbitrary bytes ---------------------------------------------------------------------

fn arbitrary_bytes() -> impl Strategy<Value = Input> {
    const YAML_BYTES: &[u8] = b" \n\t:-[]{},&*!|>'\"#%@`?.~0123456789abcxyz\r\\\xff\xc3";
    let yamlish = prop_oneof![3 => select(YAML_BYTES), 1 => any::<u8>()];
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..=4096), proptest::collection::vec(yamlish, 0..=4096),]
        .prop_map(Input)
}

// ----- (b) mutations of the seed spec ---------------------------------------------------------

const TOKENS: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a",
    "<<: [*a, *a]",
    "&a [*a]",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "? ",
    ",",
    "!!binary ",
    "!!str ",
    "!custom ",
    "\"\\u0000\"",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "#",
    "'",
    "\"",
    "|",
    ">-",
    "~",
    "null",
    "\u{feff}",
    "\u{0}",
    "99999999999999999999999",
    "-1",
    ".inf",
    ".nan",
    "0x1F",
    "1e400",
    " # edgeplan-ignore: EP150 fuzz",
    "# edgeplan-ignore: EP999\n",
    "# edgeplan-ignore: EP001 parse\n",
    "# edgeplan-ignore:\n",
    "\u{1F600}",
    "é",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    InsertLine(Index, Index),
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Splice(Index, &'static str),
    SpliceRaw(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(at, from)| Mutation::InsertLine(at, from)),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<Index>(), select(TOKENS)).prop_map(|(at, token)| Mutation::Splice(at, token)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, raw)| Mutation::SpliceRaw(at, raw)),
    ]
}

/// Byte ranges of the lines of `bytes`, each with its newline.
fn lines(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        ranges.push(start..bytes.len());
    }
    ranges
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let seed_lines = lines(SEED.as_bytes());
    let current = lines(bytes);
    match mutation {
        Mutation::FlipBit(at, bit) if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::SetByte(at, byte) if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
        Mutation::InsertLine(at, from) => {
            let line = SEED.as_bytes()[seed_lines[from.index(seed_lines.len())].clone()].to_vec();
            let i = if current.is_empty() { 0 } else { current[at.index(current.len())].start };
            bytes.splice(i..i, line);
        }
        Mutation::DeleteLine(at) if !current.is_empty() => {
            bytes.drain(current[at.index(current.len())].clone());
        }
        Mutation::DuplicateLine(at) if !current.is_empty() => {
            let range = current[at.index(current.len())].clone();
            let line = bytes[range.clone()].to_vec();
            bytes.splice(range.start..range.start, line);
        }
        Mutation::SwapLines(a, b) if !current.is_empty() => {
            let (a, b) = (current[a.index(current.len())].clone(), current[b.index(current.len())].clone());
            let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
            if first.end <= second.start {
                let first_text = bytes[first.clone()].to_vec();
                let second_text = bytes[second.clone()].to_vec();
                bytes.splice(second, first_text);
                bytes.splice(first, second_text);
            }
        }
        Mutation::Splice(at, token) => {
            let i = at.index(bytes.len() + 1);
            bytes.splice(i..i, token.bytes());
        }
        Mutation::SpliceRaw(at, raw) => {
            let i = at.index(bytes.len() + 1);
            bytes.splice(i..i, raw.iter().copied());
        }
        _ => {}
    }
}

fn seed_mutations() -> impl Strategy<Value = Input> {
    proptest::collection::vec(mutation(), 1..=8).prop_map(|mutations| {
        let mut bytes = SEED.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        Input(bytes)
    })
}

// ----- (c) structure-aware specs ---------------------------------------------------------------

/// A YAML node; scalars are written as given (already quoted where they need it).
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

fn render(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        other => {
            out.push_str(&inline(other).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// Scalars and empty collections fit on the line of their key.
fn inline(node: &Node) -> Option<String> {
    match node {
        Node::Scalar(s) => Some(s.clone()),
        Node::Map(entries) if entries.is_empty() => Some("{}".to_string()),
        Node::Seq(items) if items.is_empty() => Some("[]".to_string()),
        _ => None,
    }
}

fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (key, value) in entries {
        out.push_str(&" ".repeat(indent));
        write_entry(out, key, value, indent);
    }
}

fn write_entry(out: &mut String, key: &str, value: &Node, indent: usize) {
    out.push_str(key);
    out.push(':');
    match (inline(value), value) {
        (Some(text), _) => {
            out.push(' ');
            out.push_str(&text);
            out.push('\n');
        }
        (None, Node::Map(entries)) => {
            out.push('\n');
            write_map(out, entries, indent + 2);
        }
        (None, Node::Seq(items)) => {
            out.push('\n');
            write_seq(out, items, indent + 2);
        }
        (None, Node::Scalar(_)) => unreachable!("scalars are inline"),
    }
}

fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match (inline(item), item) {
            (Some(text), _) => {
                out.push_str(&text);
                out.push('\n');
            }
            (None, Node::Map(entries)) => {
                let (key, value) = &entries[0];
                write_entry(out, key, value, indent + 2);
                write_map(out, &entries[1..], indent + 2);
            }
            (None, Node::Seq(inner)) => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            (None, Node::Scalar(_)) => unreachable!("scalars are inline"),
        }
    }
}

/// Values for one kind of field: `ok` ones have the right YAML type (though many break a
/// rule), `bad` ones do not.
struct Pool {
    ok: &'static [&'static str],
    bad: &'static [&'static str],
}

const NAMES: Pool = Pool {
    ok: &[
        "portainer",
        "prod",
        "prod",
        "staging",
        "-bad-",
        "UPPER",
        "a.b",
        "\"\"",
        "x234567890123456789012345678901234567890123456789012345678901234",
    ],
    bad: &["~", "[x]", "{a: b}"],
};
const ACCOUNTS: Pool = Pool {
    ok: &[
        "\"123456789012\"",
        "\"123456789012\"",
        "\"210987654321\"",
        "\"012345678901\"",
        "\"12345\"",
        "\"\"",
        "\"1234567890123\"",
    ],
    bad: &["123456789012", "012345678901", "~"],
};
const REGIONS: Pool = Pool {
    ok: &["eu-west-1", "eu-west-1", "eu-west-1", "us-east-1", "us-gov-west-1", "eu-west", "EU-WEST-1", "\"\"", "a-b-c"],
    bad: &["~"],
};
const AZS: Pool = Pool {
    ok: &["eu-west-1a", "eu-west-1b", "eu-west-1b", "us-east-1a", "eu-west-1", "eu-west-1B", "az", "\"\""],
    bad: &["[]"],
};
const AZ_IDS: Pool =
    Pool { ok: &["euw1-az3", "euw1-az1", "use1-az1", "euw1-az", "-az1", "EUW1-AZ3", "x"], bad: &["3"] };
const CIDRS: Pool = Pool {
    ok: &[
        "192.168.0.0/16",
        "192.168.0.0/24",
        "192.168.0.0/28",
        "192.168.0.0/29",
        "192.168.0.0/32",
        "0.0.0.0/0",
        "10.0.0.0/8",
        "10.9.0.0/24",
        "192.168.1.0/16",
        "192.168.0.0/33",
        "not-a-cidr",
        "\"::/0\"",
        "fe80::/10",
        "1.2.3.4",
        "\"\"",
        "192.168.000.0/24",
    ],
    bad: &["~", "[10.0.0.0/8]"],
};
const VPC_IDS: Pool = Pool {
    ok: &["vpc-0a1b2c3d4e5f60001", "vpc-0a1b2c3d4e5f60002", "vpc-XYZ", "vpc-", "subnet-0a1b2c3d4e5f60021"],
    bad: &["~"],
};
const SUBNET_IDS: Pool = Pool {
    ok: &[
        "subnet-0a1b2c3d4e5f60021",
        "subnet-0a1b2c3d4e5f60021",
        "subnet-0a1b2c3d",
        "subnet-0a1b2c3d4e5f600210000",
        "sg-0a1b2c3d",
    ],
    bad: &["~"],
};
const SG_IDS: Pool =
    Pool { ok: &["sg-0a1b2c3d4e5f60011", "sg-0A1B2C3D", "sg-", "vpc-0a1b2c3d4e5f60001"], bad: &["{}"] };
const BOOLS: Pool = Pool { ok: &["true", "false", "off"], bad: &["yes", "no", "\"true\"", "1", "TRUE", "~"] };
const URLS: Pool = Pool {
    ok: &[
        "https://portainer.example.com",
        "https://portainer.example.com",
        "http://portainer.example.com",
        "https://localhost",
        "https://",
        "ftp://x",
        "https://[::1]:9443",
        "https://user@host:1/x?y#z",
        "https://admin:pw@portainer.example.com",
        "portainer.example.com",
        "https://é.example",
        "\"https://[\"",
    ],
    bad: &["~", "[https://x]"],
};
const TUNNEL_PORTS: Pool = Pool {
    ok: &["auto", "auto", "8000", "30776", "1", "65535", "\"8000\""],
    bad: &["0", "65536", "70000", "-1", "eight", "8000.5", "1e3", "~"],
};
const LISTENER_PORTS: Pool =
    Pool { ok: &["8000", "8000", "30776", "0", "1", "65535"], bad: &["65536", "70000", "-1", "auto", "~"] };
const ENVIRONMENT_IDS: Pool = Pool { ok: &["1", "7", "7", "0", "4294967295"], bad: &["-1", "4294967296", "x"] };
const INSTALLS: Pool =
    Pool { ok: &["helm-nodeport", "helm-loadbalancer", "helm-clusterip", "other"], bad: &["helm", "\"\""] };
const PRINCIPALS: Pool = Pool {
    ok: &[
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::210987654321:root",
        "\"*\"",
        "arn:aws:iam::123:root",
        "\"\"",
        "\"123456789012\"",
        "arn:aws:iam::123456789012:role/a/b",
        "arn:aws:s3:::x",
    ],
    bad: &["~"],
};
const ENV_NAMES: Pool = Pool {
    ok: &["LOG_LEVEL", "DB_PASSWORD", "EDGE_KEY", "AGENT_SECRET", "API_TOKEN", "1BAD", "a-b", "\"\""],
    bad: &["~"],
};
const ENV_VALUES: Pool = Pool {
    ok: &["x", "\"\"", "''", "'#'", "é", "\"a: b\"", "\"\\u0000\"", "\"- c\""],
    bad: &["0", "1.5", "true", "null", "~"],
};
const IMAGE_TAGS: Pool = Pool { ok: &["2.39.0", "latest", "\"\"", "\"2.39 .0\"", "\"-rc\""], bad: &["2.39", "~"] };
const KEY_FILES: &[&str] = &[
    "keys/valid.edgekey",
    "keys/padded.edgekey",
    "keys/wrapped.edgekey",
    "keys/garbage.edgekey",
    "keys/empty.edgekey",
    "keys/missing",
    "../x",
    "/abs",
    "\"\"",
];
const POLICIES: Pool = Pool {
    ok: &[
        "policies/aws-load-balancer-controller-v2.13.2.json",
        "policies/garbage.json",
        "policies/no-statements.json",
        "policies/alb-era.json",
        "policies/missing.json",
        "\"\"",
    ],
    bad: &["~"],
};
const ANNOTATION_KEYS: &[&str] = &[
    "service.beta.kubernetes.io/aws-load-balancer-scheme",
    "service.beta.kubernetes.io/aws-load-balancer-internal",
    "service.beta.kubernetes.io/aws-load-balancer-type",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
    "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled",
    "service.beta.kubernetes.io/aws-load-balancer-subnets",
    "service.beta.kubernetes.io/aws-load-balancer-attributes",
    "service.beta.kubernetes.io/",
    "example.com/other",
    "Example.com/x",
    "a/b/c",
];
const ANNOTATION_VALUES: Pool = Pool {
    ok: &[
        "internal",
        "internet-facing",
        "external",
        "nlb-ip",
        "nlb",
        "ip",
        "instance",
        "\"true\"",
        "\"false\"",
        "\"\"",
        "\" internal \"",
        "load_balancing.cross_zone.enabled=true",
    ],
    bad: &["true", "~"],
};
/// Every key of the spec language, for unknown-key and wrong-level noise.
const SPEC_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "provider",
    "consumers",
    "aws",
    "accountId",
    "region",
    "profile",
    "cluster",
    "kubeContext",
    "vpc",
    "id",
    "cidr",
    "lbController",
    "roleName",
    "policyDocument",
    "nlbSubnet",
    "availabilityZone",
    "availabilityZoneId",
    "clusterSecurityGroup",
    "discover",
    "portainer",
    "url",
    "apiKey",
    "namespace",
    "deployment",
    "install",
    "tunnelPort",
    "tunnelService",
    "listenerPort",
    "annotations",
    "endpointService",
    "acceptanceRequired",
    "allowedPrincipals",
    "subnets",
    "endpointSecurityGroup",
    "create",
    "allowedCidrs",
    "environment",
    "edgeKey",
    "agent",
    "imageTag",
    "insecurePoll",
    "agentSecret",
    "env",
    "value",
    "file",
    "account_id",
    "kubecontext",
    "<<",
];
const NOISE_SCALARS: &[&str] =
    &["x", "\"\"", "0", "-0", "1.5", "true", "null", "~", "\"\\u0000\"", "'#'", "é", "\"a: b\""];

/// Whether a field is required by the spec language.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}
use Need::{Optional, Required};

/// Builds spec trees. A clean generator writes every required key and only well-typed values,
/// so its specs parse and reach the static rules; a noisy one also drops required keys, writes
/// wrong types and adds unknown keys, to exercise the parser's error paths.
#[derive(Clone, Copy)]
struct Gen {
    noisy: bool,
}

impl Gen {
    fn scalar(self, pool: &'static Pool) -> BoxedStrategy<Node> {
        let ok = select(pool.ok).prop_map(|s| Node::Scalar(s.to_string()));
        if self.noisy {
            prop_oneof![16 => ok, 2 => select(pool.bad).prop_map(|s| Node::Scalar(s.to_string())), 1 => noise()].boxed()
        } else {
            ok.boxed()
        }
    }

    /// A mapping with these fields: required ones always (when clean), optional ones with
    /// probability `keep`.
    fn map(self, fields: Vec<(&'static str, Need, BoxedStrategy<Node>)>, keep: f64) -> BoxedStrategy<Node> {
        let fields: Vec<_> = fields
            .into_iter()
            .map(|(key, need, value)| {
                let value = if self.noisy { prop_oneof![30 => value, 1 => noise()].boxed() } else { value };
                let p = if need == Required && !self.noisy {
                    1.0
                } else if need == Required {
                    0.98
                } else {
                    keep
                };
                maybe(p, (Just(key.to_string()), value))
            })
            .collect();
        let extra_p = if self.noisy { 0.03 } else { 0.0 };
        let extra = maybe(extra_p, (select(SPEC_KEYS).prop_map(str::to_string), noise()));
        (fields, extra)
            .prop_map(|(fields, extra)| Node::Map(fields.into_iter().flatten().chain(extra).collect()))
            .boxed()
    }

    fn list(self, element: BoxedStrategy<Node>, min: usize, max: usize) -> BoxedStrategy<Node> {
        proptest::collection::vec(element, min..=max).prop_map(Node::Seq).boxed()
    }

    fn secret_ref(self) -> BoxedStrategy<Node> {
        let env = |v: &str| Node::Map(vec![("env".into(), Node::Scalar(v.into()))]);
        let well_formed = prop_oneof![
            1 => select(&["PORTAINER_API_KEY", "AGENT_SECRET", "1BAD", "\"\""][..]).prop_map(env),
            2 => select(KEY_FILES).prop_map(|v| Node::Map(vec![("file".into(), Node::Scalar(v.into()))])),
            1 => select(&["literal-secret-value", "12345", "\"\""][..]).prop_map(|v| Node::Scalar(v.into())),
        ];
        if self.noisy {
            prop_oneof![
                8 => well_formed,
                1 => Just(Node::Map(vec![("env".into(), Node::Scalar("A".into())), ("file".into(), Node::Scalar("b".into()))])),
                1 => Just(Node::Map(Vec::new())),
                1 => Just(Node::Map(vec![("vault".into(), Node::Scalar("x".into()))])),
            ]
            .boxed()
        } else {
            well_formed.boxed()
        }
    }

    fn aws(self) -> BoxedStrategy<Node> {
        self.map(
            vec![
                ("accountId", Required, self.scalar(&ACCOUNTS)),
                ("region", Required, self.scalar(&REGIONS)),
                ("profile", Optional, self.scalar(&NAMES)),
            ],
            0.5,
        )
    }

    fn vpc(self) -> BoxedStrategy<Node> {
        self.map(vec![("id", Required, self.scalar(&VPC_IDS)), ("cidr", Optional, self.scalar(&CIDRS))], 0.9)
    }

    fn consumer(self) -> BoxedStrategy<Node> {
        let subnet = self.map(
            vec![
                ("id", Required, self.scalar(&SUBNET_IDS)),
                ("availabilityZone", Optional, self.scalar(&AZS)),
                ("availabilityZoneId", Optional, self.scalar(&AZ_IDS)),
            ],
            0.6,
        );
        let env_var = self
            .map(vec![("name", Required, self.scalar(&ENV_NAMES)), ("value", Required, self.scalar(&ENV_VALUES))], 1.0);
        let create = self.map(vec![("allowedCidrs", Required, self.list(self.scalar(&CIDRS), 0, 3))], 1.0);
        self.map(
            vec![
                ("name", Required, self.scalar(&NAMES)),
                ("aws", Required, self.aws()),
                (
                    "cluster",
                    Required,
                    self.map(
                        vec![("kubeContext", Required, self.scalar(&NAMES)), ("name", Optional, self.scalar(&NAMES))],
                        0.5,
                    ),
                ),
                ("vpc", Required, self.vpc()),
                ("subnets", Required, self.list(subnet, 0, 3)),
                (
                    "endpointSecurityGroup",
                    Required,
                    self.map(vec![("id", Optional, self.scalar(&SG_IDS)), ("create", Optional, create)], 0.6),
                ),
                (
                    "environment",
                    Required,
                    self.map(
                        vec![
                            ("name", Optional, self.scalar(&NAMES)),
                            ("id", Optional, self.scalar(&ENVIRONMENT_IDS)),
                            ("create", Optional, self.scalar(&BOOLS)),
                            ("edgeKey", Optional, self.secret_ref()),
                        ],
                        0.5,
                    ),
                ),
                (
                    "agent",
                    Required,
                    self.map(
                        vec![
                            ("namespace", Optional, self.scalar(&NAMES)),
                            ("imageTag", Required, self.scalar(&IMAGE_TAGS)),
                            ("insecurePoll", Optional, self.scalar(&BOOLS)),
                            ("agentSecret", Optional, self.secret_ref()),
                            ("env", Optional, self.list(env_var, 0, 3)),
                        ],
                        0.5,
                    ),
                ),
            ],
            1.0,
        )
    }

    fn provider(self) -> BoxedStrategy<Node> {
        let annotations = proptest::collection::vec(
            (select(ANNOTATION_KEYS).prop_map(str::to_string), self.scalar(&ANNOTATION_VALUES)),
            0..4,
        )
        .prop_map(Node::Map)
        .boxed();
        self.map(
            vec![
                ("aws", Required, self.aws()),
                (
                    "cluster",
                    Required,
                    self.map(
                        vec![("name", Required, self.scalar(&NAMES)), ("kubeContext", Required, self.scalar(&NAMES))],
                        1.0,
                    ),
                ),
                ("vpc", Required, self.vpc()),
                (
                    "lbController",
                    Required,
                    self.map(
                        vec![
                            ("roleName", Required, self.scalar(&NAMES)),
                            ("policyDocument", Optional, self.scalar(&POLICIES)),
                        ],
                        0.7,
                    ),
                ),
                (
                    "nlbSubnet",
                    Required,
                    self.map(
                        vec![
                            ("id", Optional, self.scalar(&SUBNET_IDS)),
                            ("cidr", Optional, self.scalar(&CIDRS)),
                            ("availabilityZone", Optional, self.scalar(&AZS)),
                            ("availabilityZoneId", Optional, self.scalar(&AZ_IDS)),
                        ],
                        0.6,
                    ),
                ),
                (
                    "clusterSecurityGroup",
                    Optional,
                    self.map(
                        vec![("id", Optional, self.scalar(&SG_IDS)), ("discover", Optional, self.scalar(&BOOLS))],
                        0.5,
                    ),
                ),
                (
                    "portainer",
                    Required,
                    self.map(
                        vec![
                            ("url", Required, self.scalar(&URLS)),
                            ("apiKey", Required, self.secret_ref()),
                            ("namespace", Optional, self.scalar(&NAMES)),
                            ("deployment", Optional, self.scalar(&NAMES)),
                            ("install", Optional, self.scalar(&INSTALLS)),
                            ("tunnelPort", Optional, self.scalar(&TUNNEL_PORTS)),
                        ],
                        0.6,
                    ),
                ),
                (
                    "tunnelService",
                    Optional,
                    self.map(
                        vec![
                            ("name", Optional, self.scalar(&NAMES)),
                            ("namespace", Optional, self.scalar(&NAMES)),
                            ("listenerPort", Optional, self.scalar(&LISTENER_PORTS)),
                            ("annotations", Optional, annotations),
                        ],
                        0.7,
                    ),
                ),
                (
                    "endpointService",
                    Optional,
                    self.map(
                        vec![
                            ("acceptanceRequired", Optional, self.scalar(&BOOLS)),
                            ("allowedPrincipals", Optional, self.list(self.scalar(&PRINCIPALS), 0, 3)),
                        ],
                        0.7,
                    ),
                ),
            ],
            0.8,
        )
    }

    fn spec(self) -> BoxedStrategy<Node> {
        let header = prop_oneof![
            16 => Just(("edgeplan.dev/v1alpha1", "Topology")),
            1 => Just(("edgeplan.dev/v1beta1", "Topology")),
            1 => Just(("edgeplan.dev/v1alpha1", "Cluster")),
        ];
        (
            header,
            self.map(vec![("name", Required, self.scalar(&NAMES))], 1.0),
            self.map(
                vec![
                    ("provider", Required, self.provider()),
                    ("consumers", Required, self.list(self.consumer(), 0, 3)),
                ],
                1.0,
            ),
        )
            .prop_map(|((api_version, kind), metadata, spec)| {
                Node::Map(vec![
                    ("apiVersion".into(), Node::Scalar(api_version.into())),
                    ("kind".into(), Node::Scalar(kind.into())),
                    ("metadata".into(), metadata),
                    ("spec".into(), spec),
                ])
            })
            .boxed()
    }
}

/// `Some(value)` with probability `p`, which may be 0 or 1 (unlike `option::weighted`).
fn maybe<S>(p: f64, value: S) -> BoxedStrategy<Option<S::Value>>
where
    S: Strategy + 'static,
    S::Value: Clone,
{
    if p >= 1.0 {
        value.prop_map(Some).boxed()
    } else if p <= 0.0 {
        Just(None).boxed()
    } else {
        proptest::option::weighted(p, value).boxed()
    }
}

/// A value of the wrong shape: any scalar, a small list, or a small map with spec keys.
fn noise() -> BoxedStrategy<Node> {
    let leaf = select(NOISE_SCALARS).prop_map(|s| Node::Scalar(s.to_string()));
    leaf.prop_recursive(2, 6, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Node::Seq),
            proptest::collection::vec((select(SPEC_KEYS).prop_map(str::to_string), inner), 0..3).prop_map(Node::Map),
        ]
    })
    .boxed()
}

fn structured_specs() -> impl Strategy<Value = Input> {
    const DIRECTIVES: &[&str] = &[
        "# edgeplan-ignore: EP150 approved in #1",
        "# edgeplan-ignore: EP120, EP131 staging",
        "# edgeplan-ignore: EP999 why",
        "# edgeplan-ignore: EP001 parse",
        "# edgeplan-ignore: EP181",
        "# edgeplan-ignore:",
        "# edgeplan-ignore: nlb-scheme-internal named",
    ];
    let root = prop_oneof![Gen { noisy: false }.spec(), Gen { noisy: true }.spec()];
    let directives = proptest::collection::vec((any::<Index>(), select(DIRECTIVES)), 0..3);
    (root, directives).prop_map(|(root, directives)| {
        let mut lines: Vec<String> = render(&root).lines().map(str::to_string).collect();
        for (at, directive) in directives {
            let i = at.index(lines.len() + 1);
            lines.insert(i, directive.to_string());
        }
        Input((lines.join("\n") + "\n").into_bytes())
    })
}

// ----- the tests ---------------------------------------------------------------------------------

#[test]
fn lint_never_panics_or_hangs() {
    let a = fuzz("(a) arbitrary bytes", arbitrary_bytes());
    let b = fuzz("(b) seed mutations", seed_mutations());
    let c = fuzz("(c) structure-aware specs", structured_specs());
    let total = EXECUTIONS.load(Ordering::Relaxed);
    let crashes = CRASHES.load(Ordering::Relaxed);
    eprintln!(
        "fuzz: {total} executions, {crashes} crashes (arbitrary bytes {a}, seed mutations {b}, structure-aware {c})"
    );
    let multiline = MULTILINE_MESSAGES.load(Ordering::Relaxed);
    eprintln!("fuzz: {multiline} findings with a multi-line message (a known defect, pinned by bad_corpus.rs)");
    assert_eq!(crashes, 0);
}

/// The generators must reach the static rules, not only the parser: a fuzzer that only ever
/// produced parse errors would pass while testing little.
#[test]
fn structure_aware_specs_reach_the_static_rules() {
    let mut runner = TestRunner::deterministic();
    let strategy = structured_specs();
    let files = files();
    let (mut parsed, mut total) = (0, 0);
    let mut codes = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let input = strategy.new_tree(&mut runner).expect("a value").current();
        let report = lint_bytes("specs/fuzz.yaml", &input.0, Path::new("specs"), &files);
        total += 1;
        if !report.findings.iter().any(|f| f.rule.stage == Stage::Parse) {
            parsed += 1;
        }
        codes.extend(report.findings.iter().map(|f| f.code()));
    }
    eprintln!("structure-aware: {parsed} of {total} specs parsed; codes seen: {codes:?}");
    assert!(parsed * 5 >= total, "only {parsed} of {total} generated specs parsed");
    for code in ["EP006", "EP007", "EP102", "EP106", "EP110", "EP120", "EP132", "EP140", "EP141", "EP151", "EP160"] {
        assert!(codes.contains(code), "no generated spec triggered {code}; seen {codes:?}");
    }
}

/// The renderer of (c) writes YAML that means what the tree says.
#[test]
fn rendered_nodes_are_block_yaml() {
    let node = Node::Map(vec![
        ("a".into(), Node::Scalar("1".into())),
        (
            "b".into(),
            Node::Seq(vec![Node::Map(vec![("c".into(), Node::Scalar("2".into())), ("d".into(), Node::Seq(vec![]))])]),
        ),
        ("e".into(), Node::Map(vec![("f".into(), Node::Seq(vec![Node::Seq(vec![Node::Scalar("g".into())])]))])),
    ]);
    assert_eq!(render(&node), "a: 1\nb:\n  - c: 2\n    d: []\ne:\n  f:\n    - \n      - g\n");
}
