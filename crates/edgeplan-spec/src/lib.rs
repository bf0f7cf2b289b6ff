//! The edgeplan spec language: typed YAML with byte spans, and its JSON Schema.
//!
//! Architecture invariant: this crate does no I/O. It turns text into a [`Spec`] or into one
//! [`edgeplan_diag::Finding`]; reading files and resolving `{file: …}` references is the
//! caller's job.

mod parse;
mod scalars;
mod spanned;
mod types;
mod values;

pub use parse::{API_VERSION, KIND, MAX_SPEC_BYTES, decode_utf8, did_you_mean, normalize_line_breaks, parse};
pub use scalars::is_yaml11_boolean;
pub use spanned::Spanned;
pub use types::*;
pub use values::{AnnotationMap, PortainerInstall, SecretRef, TunnelPort};

/// The JSON Schema of the spec, as written to `schemas/edgeplan.schema.json`. Draft-07,
/// because that is what yaml-language-server understands.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Spec>();
    serde_json::to_value(schema).unwrap_or_default()
}
