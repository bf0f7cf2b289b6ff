//! Attribute values: what desired and observed state are made of.

use std::collections::BTreeMap;
use std::fmt;

/// A normalized attribute value. Deliberately small: backends translate their APIs into it,
/// so diffing, rules and rendering are written once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A secret, by reference (`env:NAME` or `file:path`) and never by value.
    SecretRef(String),
    /// A secret's text, read from its reference where it is needed (plan time, to compare
    /// fingerprints; apply time, to hand to a backend). Prints only its fingerprint.
    Secret(SecretText),
}

/// A secret's text. `Debug` and `Display` never show it, so an operation or a value can be
/// logged, and the plan keeps only [`SecretText::fingerprint`] — or, for a secret the user
/// chose (read from a spec reference), only that reference: a digest of a weak user-chosen
/// secret printed in a PR comment could be brute-forced offline.
#[derive(Clone)]
pub struct SecretText(String, Option<String>);

// Two secrets are the same secret when their text is: where one was read from is a label.
impl PartialEq for SecretText {
    fn eq(&self, other: &SecretText) -> bool {
        self.0 == other.0
    }
}

impl Eq for SecretText {}

impl PartialOrd for SecretText {
    fn partial_cmp(&self, other: &SecretText) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SecretText {
    fn cmp(&self, other: &SecretText) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl SecretText {
    pub fn new(text: impl Into<String>) -> SecretText {
        SecretText(text.into(), None)
    }

    /// The same secret, labelled with the spec reference it was read from (`env:NAME`).
    pub fn referenced(self, reference: impl Into<String>) -> SecretText {
        SecretText(self.0, Some(reference.into()))
    }

    /// The spec reference this secret was read from, for a secret the user chose.
    pub fn reference(&self) -> Option<&str> {
        self.1.as_deref()
    }

    /// The text itself: for a backend writing it where it belongs, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sha256:` + the first 16 hex digits of the text: the form in which backends report
    /// secrets they observe, so a plan can compare without holding the text.
    pub fn fingerprint(&self) -> String {
        secret_fingerprint(self.0.as_bytes())
    }
}

/// The fingerprint of a secret's bytes (see [`SecretText::fingerprint`]).
pub fn secret_fingerprint(bytes: &[u8]) -> String {
    short_sha256(bytes)
}

/// `sha256:` + the first 16 hex digits: short enough to print, long enough to tell apart.
/// Every fingerprint, checksum and client token in edgeplan is this digest of a canonical
/// serialization ([`Value::canonical`]), never of `Debug` output.
pub fn short_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reference() {
            Some(reference) => write!(f, "SecretText({reference})"),
            None => f.write_str("SecretText(sensitive)"),
        }
    }
}

impl Value {
    pub fn str(text: impl Into<String>) -> Value {
        Value::Str(text.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> &[Value] {
        match self {
            Value::List(items) => items,
            _ => &[],
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_secret(&self) -> Option<&SecretText> {
        match self {
            Value::Secret(secret) => Some(secret),
            _ => None,
        }
    }

    /// The strings of a list (other items are skipped).
    pub fn strings(&self) -> Vec<String> {
        self.as_list().iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
    }

    /// A map of strings as `(key, value)` pairs (other values are skipped).
    pub fn string_map(&self) -> BTreeMap<String, String> {
        self.as_map()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect()
    }

    /// A canonical, deterministic JSON rendering: maps are ordered, a secret is its
    /// fingerprint (`{"secret": "sha256:…"}`) and a reference its text. Fingerprints, saved
    /// plans and client tokens hash this, never `Debug` output.
    pub fn canonical(&self) -> serde_json::Value {
        use serde_json::{Value as Json, json};
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(n) => json!(n),
            Value::Str(text) => Json::String(text.clone()),
            Value::List(items) => Json::Array(items.iter().map(Value::canonical).collect()),
            Value::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), v.canonical())).collect()),
            Value::SecretRef(reference) => json!({ "secret_ref": reference }),
            Value::Secret(secret) => json!({ "secret": secret.fingerprint() }),
        }
    }
}

/// A value serialized exactly as [`Value::canonical`] renders it, without building that JSON
/// tree first: fingerprints of thousands of observations hash it as it streams.
pub struct Canonical<'a>(pub &'a Value);

impl serde::Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(n) => serializer.serialize_i64(*n),
            Value::Str(text) => serializer.serialize_str(text),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Canonical(item))?;
                }
                seq.end()
            }
            // A BTreeMap iterates in key order, as serde_json's object does.
            Value::Map(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, item) in map {
                    out.serialize_entry(key, &Canonical(item))?;
                }
                out.end()
            }
            Value::SecretRef(reference) => {
                let mut out = serializer.serialize_map(Some(1))?;
                out.serialize_entry("secret_ref", reference)?;
                out.end()
            }
            Value::Secret(secret) => {
                let mut out = serializer.serialize_map(Some(1))?;
                out.serialize_entry("secret", &secret.fingerprint())?;
                out.end()
            }
        }
    }
}

/// `short_sha256` of a value's JSON, written straight into the hash.
pub fn short_sha256_of(value: &impl serde::Serialize) -> String {
    use sha2::Digest as _;
    struct Hashing(sha2::Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(sha2::Sha256::new());
    // Serializing plain data into a hash cannot fail; if it ever did, the digest of what was
    // written so far still differs from any complete one.
    let _ = serde_json::to_writer(&mut hashing, value);
    let digest = hashing.0.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl From<BTreeMap<String, String>> for Value {
    fn from(map: BTreeMap<String, String>) -> Value {
        Value::Map(map.into_iter().map(|(k, v)| (k, Value::Str(v))).collect())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Str(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Str(text)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<u16> for Value {
    fn from(n: u16) -> Value {
        Value::Int(i64::from(n))
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(i64::from(n))
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Value {
    /// Compact, single-line rendering for plan output. Secrets show only their reference.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(text) => write!(f, "{text:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {item}")?;
                }
                f.write_str("}")
            }
            Value::SecretRef(reference) => write!(f, "(secret from {reference})"),
            // Never a digest: this text reaches errors and logs, and a digest of a weak secret
            // the user chose can be brute-forced. The plan shows Portainer-issued keys'
            // fingerprints explicitly where it needs to show that they change.
            Value::Secret(secret) => match secret.reference() {
                Some(reference) => write!(f, "(sensitive: {reference})"),
                None => f.write_str("(sensitive)"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_canonical_form_is_the_canonical_json() {
        let mut map = BTreeMap::new();
        map.insert("z\"quote".to_string(), Value::List(vec![Value::Int(-3), Value::Null, Value::Bool(true)]));
        map.insert("a".to_string(), Value::Secret(SecretText::new("s3cret")));
        map.insert("m".to_string(), Value::SecretRef("env:X".to_string()));
        map.insert("é".to_string(), Value::Str("line\nbreak \u{7}".to_string()));
        let value = Value::Map(map);
        assert_eq!(serde_json::to_string(&Canonical(&value)).unwrap(), value.canonical().to_string());
        assert_eq!(short_sha256_of(&Canonical(&value)), short_sha256(value.canonical().to_string().as_bytes()));
    }

    #[test]
    fn a_secret_prints_as_its_reference_or_sensitive_never_a_digest() {
        let weak = SecretText::new("hunter2");
        for text in [Value::Secret(weak.clone()).to_string(), format!("{:?}", Value::Secret(weak.clone()))] {
            assert!(!text.contains("sha256") && !text.contains("hunter2"), "{text}");
            assert!(!text.contains(weak.fingerprint().trim_start_matches("sha256:")), "{text}");
        }
        assert_eq!(Value::Secret(weak).to_string(), "(sensitive)");
    }
}
