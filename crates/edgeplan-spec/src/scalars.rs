//! Booleans and numbers as YAML writes them, never guessed from a string.
//!
//! The YAML crate's typed deserializer reads a scalar by its content and ignores its quotes, so
//! `acceptanceRequired: "false"` became `false` and `listenerPort: "8000"` became 8000: a value
//! the user wrote as a string silently turned into something else. The fields below ask for the
//! scalar's own type instead (`deserialize_any`, which sees a quoted scalar as a string), and
//! refuse a string with a message that says what was written and what to write.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::Spanned;

/// Separates a message from its help line in the errors these visitors raise; `parse` splits
/// them at the last one (the help is ours and never holds it; a quoted user value might).
pub(crate) const HELP_MARK: &str = " |help| ";

pub(crate) fn error<E: de::Error>(message: String, help: &str) -> E {
    E::custom(format!("{message}{HELP_MARK}{help}"))
}

/// A string value for a message, in backticks, escaped so it stays on one line.
pub(crate) fn written(value: &str) -> String {
    format!("`{}`", value.escape_debug())
}

/// The YAML 1.1 spellings the YAML crate still reads as booleans, lowercased.
const YAML11_WORDS: &[(&str, bool)] =
    &[("yes", true), ("y", true), ("on", true), ("no", false), ("n", false), ("off", false)];

/// `true`/`false` for a word YAML (1.2 or 1.1) reads as a boolean, any case.
pub(crate) fn boolean_word(word: &str) -> Option<bool> {
    let lower = word.trim().to_ascii_lowercase();
    match lower.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        other => YAML11_WORDS.iter().find(|(w, _)| *w == other).map(|(_, b)| *b),
    }
}

/// Whether a plain scalar is a YAML 1.1 boolean (`yes`, `off`, …), which YAML 1.2 reads as a
/// string: lint warns about these (EP105).
pub fn is_yaml11_boolean(written: &str) -> bool {
    let lower = written.trim().to_ascii_lowercase();
    YAML11_WORDS.iter().any(|(w, _)| *w == lower)
}

/// A boolean written as one.
struct Bool(bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoolVisitor;

        impl Visitor<'_> for BoolVisitor {
            type Value = Bool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Bool, E> {
                Ok(Bool(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Bool, E> {
                match boolean_word(value) {
                    Some(b) => Err(error(
                        format!("{value:?} is a quoted string, not a boolean"),
                        &format!("remove the quotes: write {b}; edgeplan never reads a string as a boolean"),
                    )),
                    None => Err(error(format!("{} is not true or false", written(value)), "write true or false")),
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Bool, E> {
                Err(error(format!("`{value}` is not true or false"), "write true or false"))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Bool, E> {
                Err(error(format!("`{value}` is not true or false"), "write true or false"))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Bool, E> {
                Err(error(format!("`{value}` is not true or false"), "write true or false"))
            }
        }

        deserializer.deserialize_any(BoolVisitor)
    }
}

/// A whole number written as one, from `MIN` to `MAX`.
struct Uint<const MIN: u64, const MAX: u64>(u64);

/// What the number is, in the user's terms.
fn range_of(min: u64, max: u64) -> String {
    if (min, max) == (1, 65535) {
        "a port number from 1 to 65535".to_string()
    } else {
        format!("a whole number from {min} to {max}")
    }
}

struct UintVisitor<const MIN: u64, const MAX: u64>;

impl<const MIN: u64, const MAX: u64> UintVisitor<MIN, MAX> {
    fn refuse<E: de::Error>(written: String) -> E {
        let range = range_of(MIN, MAX);
        error(format!("{written} is not {range}"), &format!("write {range}"))
    }
}

impl<const MIN: u64, const MAX: u64> Visitor<'_> for UintVisitor<MIN, MAX> {
    type Value = Uint<MIN, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&range_of(MIN, MAX))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        if (MIN..=MAX).contains(&value) { Ok(Uint(value)) } else { Err(Self::refuse(format!("`{value}`"))) }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(Self::refuse(format!("`{value}`"))),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Err(Self::refuse(format!("`{value}`")))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Err(Self::refuse(format!("`{value}`")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Err(quoted_number_error(value).unwrap_or_else(|| Self::refuse(written(value))))
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Uint<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UintVisitor::<MIN, MAX>)
    }
}

/// For `#[serde(default, deserialize_with = "scalars::opt_bool")]` on an `Option<Spanned<bool>>`.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Spanned<bool>>, D::Error> {
    let value = Option::<Spanned<Bool>>::deserialize(deserializer)?;
    Ok(value.map(|v| Spanned { value: v.value.0, span: v.span }))
}

/// For an `Option<Spanned<u16>>` port, 1 to 65535.
pub(crate) fn opt_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Spanned<u16>>, D::Error> {
    let value = Option::<Spanned<Uint<1, 65535>>>::deserialize(deserializer)?;
    // The visitor bounds the value by u16::MAX, so the conversion cannot fail.
    Ok(value.map(|v| Spanned { value: u16::try_from(v.value.0).unwrap_or(u16::MAX), span: v.span }))
}

/// For an `Option<Spanned<u32>>`.
pub(crate) fn opt_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Spanned<u32>>, D::Error> {
    let value = Option::<Spanned<Uint<0, 4_294_967_295>>>::deserialize(deserializer)?;
    Ok(value.map(|v| Spanned { value: u32::try_from(v.value.0).unwrap_or(u32::MAX), span: v.span }))
}

/// A string that reads as a number was quoted: say so (shared with `TunnelPort`).
pub(crate) fn quoted_number_error<E: de::Error>(value: &str) -> Option<E> {
    value.trim().parse::<i128>().is_ok().then(|| {
        error(
            format!("{value:?} is a quoted string, not a number"),
            &format!("remove the quotes: write {}; edgeplan never reads a string as a number", value.trim()),
        )
    })
}
