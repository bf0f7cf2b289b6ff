//! World files: text ⇄ [`World`]. The caller reads and writes the file; this module only
//! parses, checks and prints.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_saphyr::Error as YamlError;

use crate::world::{FORMAT_VERSION, World};

/// World files larger than this are refused before parsing (a generated 1,000-consumer world is
/// a few MB).
pub const MAX_WORLD_BYTES: usize = 64 * 1024 * 1024;

/// Why a world file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    #[error("the world file is empty")]
    Empty,
    #[error("the world file is larger than {} MiB", MAX_WORLD_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("{}{message}", position(*line, *column))]
    Malformed { line: Option<u64>, column: Option<u64>, message: String },
    #[error("the world file has no `format_version` (this edgeplan writes format_version: {FORMAT_VERSION})")]
    MissingVersion,
    #[error(
        "the world file has format_version {found}, newer than this edgeplan understands \
         ({FORMAT_VERSION}): upgrade edgeplan"
    )]
    NewerVersion { found: u64 },
    #[error(
        "the world file has format_version {found}, older than this edgeplan reads \
         ({FORMAT_VERSION}): start from a world in testdata/worlds"
    )]
    UnsupportedVersion { found: u64 },
    /// Well-formed YAML describing an impossible world (a subnet in no VPC, two main tables…).
    #[error("{path}: {message}")]
    Inconsistent { path: String, message: String },
}

impl WorldError {
    /// Line and column (1-based) when the YAML parser knows them.
    pub fn location(&self) -> Option<(u64, u64)> {
        match self {
            WorldError::Malformed { line: Some(line), column, .. } => Some((*line, column.unwrap_or(1))),
            _ => None,
        }
    }
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        (Some(line), None) => format!("line {line}: "),
        _ => String::new(),
    }
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: 32,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 100_000,
        },
    }
}

/// Only the version, read leniently first: a newer file must be refused for its version, not
/// for a field this edgeplan has never heard of.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format_version: Option<serde_json::Value>,
}

/// Parse and check a world file.
pub fn load(text: &str) -> Result<World, WorldError> {
    if text.len() > MAX_WORLD_BYTES {
        return Err(WorldError::TooLarge);
    }
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    }) {
        return Err(WorldError::Empty);
    }
    // One typed pass when all is well; the lenient header pass only to explain a failure (a
    // newer or older file is refused for its version, not for a field it does not share).
    let world: World = match serde_saphyr::from_str_with_options(text, options()) {
        Ok(world) => world,
        Err(error) => {
            let header: Header = serde_saphyr::from_str_with_options(text, options()).map_err(|e| malformed(&e))?;
            check_version(header.format_version)?;
            return Err(malformed(&error));
        }
    };
    check_version(Some(serde_json::Value::from(world.format_version)))?;
    check(&world)?;
    Ok(world)
}

fn check_version(found: Option<serde_json::Value>) -> Result<(), WorldError> {
    let not_a_number = || WorldError::Malformed {
        line: None,
        column: None,
        message: "format_version must be a whole number".to_string(),
    };
    match found {
        None | Some(serde_json::Value::Null) => Err(WorldError::MissingVersion),
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(v) if v == u64::from(FORMAT_VERSION) => Ok(()),
            Some(v) if v > u64::from(FORMAT_VERSION) => Err(WorldError::NewerVersion { found: v }),
            Some(v) => Err(WorldError::UnsupportedVersion { found: v }),
            None => Err(not_a_number()),
        },
        Some(_) => Err(not_a_number()),
    }
}

/// The world as YAML, readable by [`load`].
pub fn save(world: &World) -> String {
    let body = match serde_saphyr::to_string(world) {
        Ok(text) => text,
        // Every map key is a string and every value plain data: this cannot fail. If it ever
        // does, the comment makes `load` refuse the file instead of reading a partial world.
        Err(err) => return format!("# edgeplan-sim could not write the world: {err}\n"),
    };
    format!("# edgeplan simulated world: see crates/edgeplan-sim/src/lib.rs for the format\n{body}")
}

fn malformed(err: &YamlError) -> WorldError {
    let mut err = err;
    loop {
        match err {
            YamlError::WithSnippet { .. } => err = err.without_snippet(),
            YamlError::AliasError { error, .. } => err = error,
            _ => break,
        }
    }
    let location = err.location().filter(|loc| loc.line() > 0);
    WorldError::Malformed {
        line: location.map(|loc| loc.line()),
        column: location.map(|loc| loc.column()),
        message: describe(err),
    }
}

/// The parser's words without the location it adds (the error carries it separately).
fn describe(err: &YamlError) -> String {
    let text = err.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text).to_string();
    let text = match text.strip_prefix("line ").and_then(|rest| rest.find(": ").map(|i| rest[i + 2..].to_string())) {
        Some(rest) => rest,
        None => text,
    };
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    text.trim().trim_end_matches('.').to_string()
}

fn inconsistent(path: String, message: impl Into<String>) -> WorldError {
    WorldError::Inconsistent { path, message: message.into() }
}

/// Cross-references a hand-written world could get wrong. Only what would make the simulation
/// misbehave is checked; a world may still be odd (that is what plans diagnose).
fn check(world: &World) -> Result<(), WorldError> {
    let mut ids = BTreeSet::new();
    let mut unique = |path: &str, id: &str| {
        if ids.insert(id.to_string()) {
            Ok(())
        } else {
            Err(inconsistent(path.to_string(), format!("duplicate id `{id}`")))
        }
    };
    let mut accounts = BTreeSet::new();
    for (a, account) in world.aws.iter().enumerate() {
        let at = format!("aws[{a}]");
        if !accounts.insert(account.account.as_str()) {
            return Err(inconsistent(at, format!("account {} appears twice", account.account)));
        }
        for (p, policy) in account.iam.policies.iter().enumerate() {
            let at = format!("{at}.iam.policies[{p}]");
            unique(&at, &policy.arn)?;
            if policy.versions.len() > 5 {
                return Err(inconsistent(at, "a managed policy has at most 5 versions"));
            }
            if !policy.versions.iter().any(|v| v.id == policy.default_version) {
                return Err(inconsistent(
                    at,
                    format!("default_version {} is not among its versions", policy.default_version),
                ));
            }
        }
        let mut regions = BTreeSet::new();
        for (r, region) in account.regions.iter().enumerate() {
            let at = format!("{at}.regions[{r}]");
            if !regions.insert(region.region.as_str()) {
                return Err(inconsistent(at, format!("region {} appears twice", region.region)));
            }
            let vpcs: BTreeSet<&str> = region.vpcs.iter().map(|v| v.id.as_str()).collect();
            for (i, vpc) in region.vpcs.iter().enumerate() {
                unique(&format!("{at}.vpcs[{i}]"), &vpc.id)?;
            }
            let subnets: BTreeSet<&str> = region.subnets.iter().map(|s| s.id.as_str()).collect();
            for (i, subnet) in region.subnets.iter().enumerate() {
                let at = format!("{at}.subnets[{i}]");
                unique(&at, &subnet.id)?;
                if !vpcs.contains(subnet.vpc_id.as_str()) {
                    return Err(inconsistent(at, format!("vpc_id {} is not a VPC of this region", subnet.vpc_id)));
                }
                if let Some(az) = region.availability_zones.iter().find(|az| az.name == subnet.availability_zone)
                    && az.id != subnet.availability_zone_id
                {
                    return Err(inconsistent(
                        at,
                        format!("{} is {} in this account, not {}", az.name, az.id, subnet.availability_zone_id),
                    ));
                }
            }
            let mut associated = BTreeSet::new();
            let mut mains = BTreeSet::new();
            for (i, table) in region.route_tables.iter().enumerate() {
                let at = format!("{at}.route_tables[{i}]");
                unique(&at, &table.id)?;
                if !vpcs.contains(table.vpc_id.as_str()) {
                    return Err(inconsistent(at, format!("vpc_id {} is not a VPC of this region", table.vpc_id)));
                }
                if table.main && !mains.insert(table.vpc_id.as_str()) {
                    return Err(inconsistent(at, format!("{} has a second main route table", table.vpc_id)));
                }
                for association in &table.associations {
                    if !subnets.contains(association.subnet_id.as_str()) {
                        return Err(inconsistent(
                            at,
                            format!("associated subnet {} does not exist", association.subnet_id),
                        ));
                    }
                    if !associated.insert(association.subnet_id.as_str()) {
                        return Err(inconsistent(
                            at,
                            format!("subnet {} is associated with two route tables", association.subnet_id),
                        ));
                    }
                }
            }
            for (i, group) in region.security_groups.iter().enumerate() {
                let at = format!("{at}.security_groups[{i}]");
                unique(&at, &group.id)?;
                for (j, rule) in group.ingress.iter().enumerate() {
                    let at = format!("{at}.ingress[{j}]");
                    unique(&at, &rule.id)?;
                    if rule.cidr.is_some() == rule.source_group.is_some() {
                        return Err(inconsistent(at, "a rule has exactly one of `cidr` and `source_group`"));
                    }
                    if rule.from_port > rule.to_port {
                        return Err(inconsistent(at, "from_port is above to_port"));
                    }
                }
            }
            for (i, lb) in region.load_balancers.iter().enumerate() {
                unique(&format!("{at}.load_balancers[{i}]"), &lb.arn)?;
            }
            for (i, service) in region.endpoint_services.iter().enumerate() {
                unique(&format!("{at}.endpoint_services[{i}]"), &service.service_id)?;
            }
            for (i, endpoint) in region.vpc_endpoints.iter().enumerate() {
                let at = format!("{at}.vpc_endpoints[{i}]");
                unique(&at, &endpoint.id)?;
                if !vpcs.contains(endpoint.vpc_id.as_str()) {
                    return Err(inconsistent(at, format!("vpc_id {} is not a VPC of this region", endpoint.vpc_id)));
                }
            }
        }
    }
    let mut contexts = BTreeSet::new();
    for (c, cluster) in world.kubernetes.iter().enumerate() {
        let at = format!("kubernetes[{c}]");
        if !contexts.insert(cluster.context.as_str()) {
            return Err(inconsistent(at, format!("context {} appears twice", cluster.context)));
        }
        let mut names = BTreeSet::new();
        for (i, d) in cluster.deployments.iter().enumerate() {
            if !names.insert((d.namespace.as_str(), d.name.as_str())) {
                return Err(inconsistent(
                    format!("{at}.deployments[{i}]"),
                    format!("{}/{} appears twice", d.namespace, d.name),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, s) in cluster.services.iter().enumerate() {
            if !names.insert((s.namespace.as_str(), s.name.as_str())) {
                return Err(inconsistent(
                    format!("{at}.services[{i}]"),
                    format!("{}/{} appears twice", s.namespace, s.name),
                ));
            }
        }
    }
    for (p, server) in world.portainer.iter().enumerate() {
        let at = format!("portainer[{p}]");
        let mut env_ids = BTreeSet::new();
        let mut env_names = BTreeSet::new();
        for (i, env) in server.environments.iter().enumerate() {
            let at = format!("{at}.environments[{i}]");
            if !env_ids.insert(env.id) {
                return Err(inconsistent(at, format!("environment Id {} appears twice", env.id)));
            }
            if !env_names.insert(env.name.as_str()) {
                return Err(inconsistent(at, format!("environment Name {} is not unique", env.name)));
            }
        }
    }
    Ok(())
}
