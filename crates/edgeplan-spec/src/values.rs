//! Value types with their own YAML shapes: secret references, the tunnel port, annotations.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::{Spanned, scalars};

/// Where a secret comes from. The spec holds only the reference; the value is read at run
/// time and never printed.
///
/// A plain string in a secret position parses as [`SecretRef::Literal`] so that lint can point
/// at it (rule EP140). The literal's text is dropped during parsing: only its length is kept.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{env: NAME}`: an environment variable of the edgeplan process.
    Env(String),
    /// `{file: path}`: a file, relative to the spec. Whitespace around the value is trimmed.
    File(String),
    /// A secret written inline. Always an error.
    Literal { len: usize },
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "Env({name:?})"),
            SecretRef::File(path) => write!(f, "File({path:?})"),
            SecretRef::Literal { len } => write!(f, "Literal(<{len} bytes redacted>)"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;

        impl<'de> Visitor<'de> for RefVisitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret reference: {env: NAME} or {file: path}")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretRef, E> {
                Ok(SecretRef::Literal { len: value.len() })
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SecretRef, E> {
                Ok(SecretRef::Literal { len: value.to_string().len() })
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<SecretRef, E> {
                Ok(SecretRef::Literal { len: value.to_string().len() })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let mut found: Option<SecretRef> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let parsed = match key.as_str() {
                        "env" => SecretRef::Env(value),
                        "file" => SecretRef::File(value),
                        other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                    };
                    if found.is_some() {
                        return Err(de::Error::custom("a secret reference takes exactly one of `env` or `file`"));
                    }
                    found = Some(parsed);
                }
                found.ok_or_else(|| de::Error::custom("a secret reference needs `env: NAME` or `file: path`"))
            }
        }

        deserializer.deserialize_any(RefVisitor)
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A reference to a secret, never the secret itself.",
            "oneOf": [
                {
                    "type": "object",
                    "properties": { "env": { "type": "string", "description": "Environment variable name.", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" } },
                    "required": ["env"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "file": { "type": "string", "description": "File path, relative to the spec." } },
                    "required": ["file"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// The chisel tunnel server's port inside the Portainer pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelPort {
    /// Read `--tunnel-port` from the deployment; 8000 when absent (Portainer's default).
    Auto,
    Port(u16),
}

impl<'de> Deserialize<'de> for TunnelPort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl Visitor<'_> for PortVisitor {
            type Value = TunnelPort;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`auto` or a port number from 1 to 65535")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<TunnelPort, E> {
                if value == "auto" {
                    return Ok(TunnelPort::Auto);
                }
                // A quoted "30776" is a string: say so rather than guess a port from it.
                Err(scalars::quoted_number_error(value).unwrap_or_else(|| refuse(scalars::written(value))))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<TunnelPort, E> {
                match u16::try_from(value) {
                    Ok(port) if port > 0 => Ok(TunnelPort::Port(port)),
                    _ => Err(refuse(format!("`{value}`"))),
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<TunnelPort, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(refuse(format!("`{value}`"))),
                }
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<TunnelPort, E> {
                Err(refuse(format!("`{value}`")))
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<TunnelPort, E> {
                Err(refuse(format!("`{value}`")))
            }
        }

        fn refuse<E: de::Error>(written: String) -> E {
            scalars::error(
                format!("{written} is not a port: tunnelPort is `auto` or a port number from 1 to 65535"),
                "write auto to read --tunnel-port from the deployment, or the port the tunnel server listens on",
            )
        }

        deserializer.deserialize_any(PortVisitor)
    }
}

impl JsonSchema for TunnelPort {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TunnelPort".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`auto` (read --tunnel-port from the deployment, default 8000) or a port.",
            "oneOf": [
                { "const": "auto" },
                { "type": "integer", "minimum": 1, "maximum": 65535 }
            ]
        })
    }
}

/// How Portainer was installed; it decides where the tunnel server really listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum PortainerInstall {
    /// Helm chart with its default `service.type: NodePort`: the chart passes
    /// `--tunnel-port=30776` (edgeNodePort), so the tunnel is NOT on 8000.
    #[serde(rename = "helm-nodeport")]
    HelmNodePort,
    /// Helm chart with `service.type: LoadBalancer`: tunnel on 8000.
    #[serde(rename = "helm-loadbalancer")]
    HelmLoadBalancer,
    /// Helm chart with `service.type: ClusterIP`: tunnel on 8000.
    #[serde(rename = "helm-clusterip")]
    HelmClusterIp,
    /// Plain manifests or anything else: edgeplan reads the deployment.
    #[serde(rename = "other")]
    Other,
}

/// Kubernetes annotations, in the order written, each key and value with its span.
#[derive(Debug, Default)]
pub struct AnnotationMap(pub Vec<(Spanned<String>, Spanned<String>)>);

impl AnnotationMap {
    pub fn get(&self, key: &str) -> Option<(&Spanned<String>, &Spanned<String>)> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(k, v)| (k, v))
    }
}

impl<'de> Deserialize<'de> for AnnotationMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = AnnotationMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of annotation names to string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnnotationMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, Spanned<String>>()? {
                    entries.push(entry);
                }
                Ok(AnnotationMap(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor)
    }
}

impl JsonSchema for AnnotationMap {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Annotations".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": { "type": "string" }
        })
    }
}
