//! `Spanned<T>`: a value with the byte span of the YAML node it came from.
//!
//! A local wrapper around `serde_saphyr::Spanned` so that it can be transparent to JSON Schema
//! (the schema describes `T`; the span is edgeplan's business) and expose byte spans directly.

use std::fmt;

use edgeplan_diag::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

#[derive(Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    /// Where the value is used: for an alias, the alias, not its anchor.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// A value that did not come from the spec (a default), with an empty span.
    pub fn synthetic(value: T) -> Spanned<T> {
        Spanned { value, span: Span::default() }
    }

    pub fn as_ref(&self) -> Spanned<&T> {
        Spanned { value: &self.value, span: self.span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let span = inner.referenced.span();
        let span = match (span.byte_offset(), span.byte_len()) {
            (Some(start), Some(len)) => {
                let start = usize::try_from(start).unwrap_or(usize::MAX);
                Span::new(start, start.saturating_add(usize::try_from(len).unwrap_or(0)))
            }
            _ => Span::default(),
        };
        Ok(Spanned { value: inner.value, span })
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
