//! A stack: a lint-clean spec compiled to its resource graph, with the documents it references
//! inlined and its secrets read. Built once per command; every command, xtask and test uses
//! this one loader.

use std::fmt;
use std::path::{Path, PathBuf};

use edgeplan_diag::{Finding, RuleId, SourceFile, Span};
use edgeplan_model::attr;
use edgeplan_model::{Address, Expr, GraphError, Node, NodeKind, ResourceGraph, Scope, Value};
use edgeplan_plan::NodeDiagnostic;
use edgeplan_spec::Spec;

use crate::secrets::{SecretError, SecretSource};

/// Policy documents are a few KiB (IAM's limit is 6,144 characters); this bounds a wrong path.
const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

pub struct Stack {
    pub name: String,
    /// Where the spec was (as given), so saved plans can name it.
    pub spec_path: String,
    pub source: SourceFile,
    pub spec: Spec,
    pub graph: ResourceGraph,
    /// The spec's directory: relative paths in the spec resolve against it.
    pub base_dir: PathBuf,
    /// Secret references that could not be read: the plan stops on each.
    pub unreadable: Vec<UnreadableSecret>,
}

/// A secret reference that did not resolve, and where the spec names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableSecret {
    pub address: Address,
    pub reference: String,
    pub error: SecretError,
    pub span: Option<Span>,
}

#[derive(Debug)]
pub enum StackError {
    /// A document the spec references (the controller policy) could not be read.
    Document { path: String, error: String },
    /// The compiler produced a graph that does not validate (a bug in edgeplan).
    Graph(GraphError),
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::Document { path, error } => write!(f, "cannot read {path}: {error}"),
            StackError::Graph(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for StackError {}

impl Stack {
    /// Compile a lint-clean spec: inline the documents it names, read its secrets.
    pub fn from_spec(
        spec_path: &str,
        source: SourceFile,
        spec: Spec,
        base_dir: &Path,
        secrets: &dyn SecretSource,
    ) -> Result<Stack, StackError> {
        let mut nodes = edgeplan_model::compile(&spec);
        inline_documents(&mut nodes, base_dir)?;
        let unreadable = read_secrets(&mut nodes, &spec, base_dir, secrets);
        let graph = edgeplan_model::resource_graph(nodes).map_err(StackError::Graph)?;
        Ok(Stack {
            name: spec.metadata.name.value.clone(),
            spec_path: spec_path.to_string(),
            source,
            spec,
            graph,
            base_dir: base_dir.to_path_buf(),
            unreadable,
        })
    }

    /// Nodes in dependency order.
    pub fn nodes(&self) -> Vec<&Node> {
        self.graph.iter().map(|(_, node)| node).collect()
    }

    /// The scopes the spec names.
    pub fn scopes(&self) -> Vec<Scope> {
        edgeplan_model::spec_scopes(self.nodes())
    }

    /// The provider cluster: where the stack's lock and its inventory of scopes live.
    pub fn provider_cluster(&self) -> Scope {
        Scope::Kubernetes { context: self.spec.spec.provider.cluster.kube_context.value.clone() }
    }

    /// One error diagnostic per secret that did not resolve, on the spec line that names it.
    pub fn diagnostics(&self) -> Vec<NodeDiagnostic> {
        self.unreadable
            .iter()
            .map(|u| NodeDiagnostic {
                address: u.address.clone(),
                finding: Finding::of(
                    RuleId::SecretUnreadable,
                    u.span,
                    format!("the secret `{}` cannot be read: {}", u.reference, u.error),
                ),
            })
            .collect()
    }
}

/// Read a regular file of at most `max` bytes without blocking (a FIFO is refused).
pub fn read_document(path: &Path, max: u64) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.kind().to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    if metadata.len() > max {
        return Err(format!("larger than {max} bytes"));
    }
    std::fs::read_to_string(path).map_err(|e| e.kind().to_string())
}

/// The spec names the controller policy by path; the plan compares its content.
fn inline_documents(nodes: &mut [Node], base_dir: &Path) -> Result<(), StackError> {
    for node in nodes.iter_mut().filter(|n| n.kind == NodeKind::LbControllerPolicy) {
        let Some(Value::Str(path)) = node.literal(attr::POLICY_DOCUMENT).cloned() else { continue };
        let text = read_document(&base_dir.join(&path), MAX_DOCUMENT_BYTES)
            .map_err(|error| StackError::Document { path: path.clone(), error })?;
        node.desired.insert(attr::POLICY_DOCUMENT, Expr::lit(text));
    }
    Ok(())
}

/// Where the spec names each node's secrets: `(address, span)` for diagnostics.
fn secret_spans(spec: &Spec) -> Vec<(Address, Span)> {
    spec.spec
        .consumers
        .iter()
        .filter_map(|c| {
            let secret = c.agent.agent_secret.as_ref()?;
            Some((Address::consumer(&c.name.value, NodeKind::AgentObjects.address_name()), secret.span))
        })
        .collect()
}

/// Replace every secret reference by its value; list those that do not resolve (they stay
/// references, which no backend accepts).
fn read_secrets(nodes: &mut [Node], spec: &Spec, base_dir: &Path, secrets: &dyn SecretSource) -> Vec<UnreadableSecret> {
    let spans = secret_spans(spec);
    let mut unreadable = Vec::new();
    for node in nodes {
        for expr in node.desired.values_mut() {
            let Expr::Lit(Value::SecretRef(reference)) = expr else { continue };
            match secrets.read(reference, base_dir) {
                Ok(secret) => *expr = Expr::Lit(Value::Secret(secret)),
                Err(error) => unreadable.push(UnreadableSecret {
                    address: node.address.clone(),
                    reference: reference.clone(),
                    error,
                    span: spans.iter().find(|(a, _)| *a == node.address).map(|(_, span)| *span),
                }),
            }
        }
    }
    unreadable
}
