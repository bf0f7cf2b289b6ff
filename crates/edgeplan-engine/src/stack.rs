//! A stack: a lint-clean spec compiled to its resource graph, with the documents it references
//! inlined and its secrets read. Built once per command; every command, xtask and test uses
//! this one loader. It is built from lint's report, not from the spec alone: lint's warnings
//! and notes (suppressions honoured) are part of every plan.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use edgeplan_diag::{FileReport, Finding, RuleId, Severity, SourceFile, Span};
use edgeplan_model::attr::{self, Attr};
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
    /// Lint's findings on the spec (warnings and notes: a spec with errors is never compiled),
    /// after suppressions.
    pub lint: Vec<Finding>,
    /// Where the spec sets the value behind a node's attribute: live findings about it point there.
    spans: BTreeMap<(Address, Attr), Span>,
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
    /// Compile a lint-clean spec, given with lint's report on it: inline the documents it
    /// names, read its secrets, keep lint's findings for the plan.
    pub fn from_spec(
        spec_path: &str,
        report: FileReport,
        spec: Spec,
        base_dir: &Path,
        secrets: &dyn SecretSource,
    ) -> Result<Stack, StackError> {
        let mut nodes = edgeplan_model::compile(&spec);
        inline_documents(&mut nodes, base_dir)?;
        let unreadable = read_secrets(&mut nodes, &spec, base_dir, secrets);
        let graph = edgeplan_model::resource_graph(nodes).map_err(StackError::Graph)?;
        // Errors stop before a stack is built; anything else lint says belongs in the plan.
        let lint = report.findings.into_iter().filter(|f| f.severity < Severity::Error).collect();
        Ok(Stack {
            name: spec.metadata.name.value.clone(),
            spec_path: spec_path.to_string(),
            source: report.source,
            spans: spec_spans(&spec),
            spec,
            graph,
            base_dir: base_dir.to_path_buf(),
            unreadable,
            lint,
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

    /// What the plan reports about the spec itself: one error per secret that did not
    /// resolve, on the spec line that names it, and every lint finding (about the spec as a
    /// whole: address `spec`).
    pub fn diagnostics(&self) -> Vec<NodeDiagnostic> {
        let secrets = self.unreadable.iter().map(|u| NodeDiagnostic {
            address: u.address.clone(),
            finding: Finding::of(
                RuleId::SecretUnreadable,
                u.span,
                format!("the secret `{}` cannot be read: {}", u.reference, u.error),
            ),
        });
        secrets.chain(self.lint.iter().cloned().map(NodeDiagnostic::spec)).collect()
    }

    /// Label each live finding about a spec value with that value's span in the spec.
    pub fn label(&self, diagnostics: &mut [NodeDiagnostic]) {
        for diagnostic in diagnostics.iter_mut().filter(|d| d.finding.span.is_none()) {
            let span = edgeplan_plan::finding_subject(diagnostic.finding.rule.id)
                .and_then(|attribute| self.spans.get(&(diagnostic.address.clone(), attribute)));
            diagnostic.finding.span = span.copied();
        }
    }
}

/// Where the spec sets the values live rules judge, by the node attribute they become.
fn spec_spans(spec: &Spec) -> BTreeMap<(Address, Attr), Span> {
    let mut spans = BTreeMap::new();
    let mut put = |address: Address, attribute: Attr, span: Option<Span>| {
        if let Some(span) = span {
            spans.insert((address, attribute), span);
        }
    };
    let provider = &spec.spec.provider;
    let at = |kind: NodeKind| Address::provider(kind.address_name());
    put(at(NodeKind::Vpc), attr::ID, Some(provider.vpc.id.span));
    let subnet = &provider.nlb_subnet.value;
    put(at(NodeKind::NlbSubnet), attr::ID, Some(subnet.id.as_ref().map_or(provider.nlb_subnet.span, |i| i.span)));
    put(at(NodeKind::NlbSubnet), attr::CIDR_BLOCK, subnet.cidr.as_ref().map(|c| c.span));
    let zone = subnet.availability_zone.as_ref().or(subnet.availability_zone_id.as_ref());
    put(at(NodeKind::NlbSubnet), attr::AVAILABILITY_ZONE, zone.map(|z| z.span));
    put(at(NodeKind::TunnelService), attr::TARGET_PORT, provider.portainer.tunnel_port.as_ref().map(|p| p.span));
    let namespace = provider.tunnel_service.as_ref().and_then(|s| s.namespace.as_ref());
    put(at(NodeKind::TunnelService), attr::NAMESPACE, namespace.map(|n| n.span));
    let deployment = provider.portainer.deployment.as_ref().or(provider.portainer.namespace.as_ref());
    put(at(NodeKind::PortainerRestart), attr::NAMESPACE, deployment.map(|d| d.span));
    for consumer in spec.spec.consumers.iter() {
        let at = |kind: NodeKind| Address::consumer(&consumer.name.value, kind.address_name());
        put(at(NodeKind::Vpce), attr::VPC_ID, Some(consumer.vpc.id.span));
        put(at(NodeKind::Vpce), attr::SUBNET_IDS, Some(consumer.subnets.span));
        put(at(NodeKind::ConsumerSubnets), attr::ID, Some(consumer.subnets.span));
        let group = &consumer.endpoint_security_group;
        put(at(NodeKind::VpceSecurityGroup), attr::ID, Some(group.value.id.as_ref().map_or(group.span, |i| i.span)));
        let cidrs = group.value.create.as_ref().map(|c| c.allowed_cidrs.span);
        put(at(NodeKind::VpceSecurityGroup), attr::INGRESS_CIDRS, cidrs);
        let environment = &consumer.environment;
        put(
            at(NodeKind::PortainerEnvironment),
            attr::CREATE_IF_MISSING,
            Some(environment.value.create.as_ref().map_or(environment.span, |c| c.span)),
        );
        put(
            at(NodeKind::PortainerEnvironment),
            attr::ID,
            Some(environment.value.id.as_ref().map_or(environment.span, |i| i.span)),
        );
    }
    spans
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
                // Labelled with its reference: the plan shows a secret the user chose only so.
                Ok(secret) => *expr = Expr::Lit(Value::Secret(secret.referenced(reference.clone()))),
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
