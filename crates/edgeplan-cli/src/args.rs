//! The clap definitions. Kept in their own module so `xtask` can render completions and the
//! man page from exactly what the binary parses.

use clap::{Parser, Subcommand};

pub use crate::edge_key_cmd::EdgeKeyArgs;

/// What `edgeplan --help` says first. Written for the person running edgeplan (Cargo's package
/// description, clap's default, is written for developers).
const ABOUT: &str = "Connect Portainer Edge agents to Portainer over AWS PrivateLink, from one YAML spec.";

const LONG_ABOUT: &str = "\
Connect Portainer Edge agents to Portainer over AWS PrivateLink, from one YAML spec.

edgeplan reads a spec naming the Portainer cluster and the clusters its agents run in, finds
what already exists, and shows what it would change and why, naming the known traps (the
load balancer controller's IAM policy, Helm's tunnel port, the security group rule, Edge
Compute, the agent's key) with the fix it applies. `apply` then makes those changes in
dependency order and checks end to end that the tunnel works.

Live state comes from a simulated world file (--world) until the AWS, Kubernetes and
Portainer backends land.";

const EXAMPLES: &str = "\
Examples:
  edgeplan lint specs/seed.yaml                                       check a spec, offline
  edgeplan plan specs/seed.yaml --world testdata/worlds/seed.yaml     what would change, and why
  edgeplan apply specs/seed.yaml --world my-world.yaml                change it, then verify it
  edgeplan verify specs/seed.yaml --world my-world.yaml               is the tunnel up?

Exit codes: 0 success, 1 failure, 2 changes (plan --detailed-exitcode only; lint and edge-key:
could not run). `edgeplan help COMMAND` describes one command.";

#[derive(Debug, Parser)]
#[command(
    name = "edgeplan",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check specs statically, before anything touches AWS (for pull requests).
    Lint(LintArgs),
    /// Show what apply would change, and why, from live state (for now: a simulated world).
    Plan(PlanArgs),
    /// Execute a plan: in dependency order, in parallel, waiting for what must be ready.
    Apply(ApplyArgs),
    /// Delete what this stack created, in reverse dependency order (never adopted resources).
    Destroy(DestroyArgs),
    /// Release a stuck stack lock (the rare case its holder died without releasing it).
    Unlock(UnlockArgs),
    /// Check end to end that the tunnel works (run at the end of apply too).
    Verify(VerifyArgs),
    /// Print the resource graph a spec compiles to (Graphviz DOT or Mermaid).
    Graph(GraphArgs),
    /// Decode, check, re-point and re-encode a Portainer EDGE_KEY read from stdin or a file.
    #[command(name = "edge-key")]
    EdgeKey(EdgeKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Human)]
    pub format: LintFormat,
    /// Exit 1 when there are more than N warnings, even without errors.
    #[arg(long, value_name = "N")]
    pub max_warnings: Option<usize>,
    /// Spec files to lint; `-` reads one spec from stdin (files it references resolve against
    /// the current directory).
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<std::path::PathBuf>,
    /// Give up on stdin, or on a FIFO given as a spec, after this many seconds without input.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stdin_timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Observe and plan against this simulated world file instead of real clouds (the
    /// embedded world: no cloud account needed). Required until the real backends land.
    #[arg(long, value_name = "FILE")]
    pub world: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are changes, 1 on any error (2 means
    /// changes and nothing else).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan, with the spec's and every node's observed-state fingerprint, so apply can
    /// later refuse it if anything moved.
    #[arg(short = 'o', long = "out", value_name = "PLAN")]
    pub out: Option<std::path::PathBuf>,
    /// The spec.
    #[arg(value_name = "SPEC")]
    pub spec: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Simulated world file to apply to (written back as it changes).
    #[arg(long, value_name = "FILE")]
    pub world: Option<std::path::PathBuf>,
    /// Apply without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// Nodes in flight at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Apply only these nodes and what they depend on (repeatable; `consumer.NAME` is all of a
    /// consumer's nodes). For exceptional cases: verify runs only if nothing with changes was
    /// left out.
    #[arg(long, value_name = "ADDR")]
    pub target: Vec<String>,
    /// Leave out these nodes and everything that depends on them (repeatable; `consumer.NAME`
    /// is all of a consumer's nodes).
    #[arg(long, value_name = "ADDR")]
    pub exclude: Vec<String>,
    /// Progress display; `auto` is fancy on a terminal, plain otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Skip the end-to-end verification that follows a successful apply.
    #[arg(long)]
    pub no_verify: bool,
    /// Per-kind wait timeout, e.g. `nlb-active=15m` or `targets-healthy=1m30s` (repeatable;
    /// units h, m, s). Kinds: nlb-active, targets-healthy, connection-accepted, vpce-available,
    /// rollout-complete, agent-connected, agent-checked-in, upstream-output (an output a node
    /// needs that someone fills in later, as the Service's load balancer hostname), gone (an
    /// object its controller deletes during a replacement, as the old load balancer).
    #[arg(long, value_name = "KIND=DURATION")]
    pub timeout: Vec<String>,
    /// A spec (YAML or JSON), or a plan saved with `edgeplan plan -o` (applies from any
    /// directory).
    #[arg(value_name = "SPEC|PLAN")]
    pub input: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// Simulated world file (written back as it changes).
    #[arg(long, value_name = "FILE")]
    pub world: Option<std::path::PathBuf>,
    /// Destroy without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// Nodes in flight at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Progress display; `auto` is fancy on a terminal, plain otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// The spec.
    #[arg(value_name = "SPEC")]
    pub spec: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// Simulated world file holding the lock.
    #[arg(long, value_name = "FILE")]
    pub world: Option<std::path::PathBuf>,
    /// The holder to remove, as the refusal printed it (`user@host:pid`).
    #[arg(long, value_name = "ID")]
    pub holder: String,
    /// The spec.
    #[arg(value_name = "SPEC")]
    pub spec: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Simulated world file to verify.
    #[arg(long, value_name = "FILE")]
    pub world: Option<std::path::PathBuf>,
    /// The spec.
    #[arg(value_name = "SPEC")]
    pub spec: std::path::PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    Auto,
    /// One live line per node in flight.
    Fancy,
    /// One line per event, for logs and CI.
    Plain,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Terraform-like text, summary first.
    Human,
    /// The plan as JSON (format_version, changes, diagnostics, summary).
    Json,
    /// Markdown for a pull-request comment, with a Mermaid graph of the changes.
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// The spec.
    #[arg(value_name = "SPEC")]
    pub spec: std::path::PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`| dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// miette diagnostics with a label on the exact span.
    Human,
    /// One JSON document with a stable list of findings.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// GitHub Actions workflow commands (`::error file=…`).
    Github,
}

/// The full clap command, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
