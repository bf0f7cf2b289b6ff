//! `cargo xtask schema [--check]`: the JSON Schema editors use to complete and check specs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::workspace;

/// Relative to the workspace root; also the path in the error message CI shows.
const SCHEMA_PATH: &str = "schemas/edgeplan.schema.json";

fn schema_path() -> PathBuf {
    workspace::root().join(SCHEMA_PATH)
}

/// The schema exactly as committed: pretty JSON and a trailing newline.
fn render() -> Result<String> {
    let schema = edgeplan_spec::json_schema();
    if !schema.is_object() {
        bail!("edgeplan_spec::json_schema() returned {schema}, not a JSON object");
    }
    let mut text = serde_json::to_string_pretty(&schema).context("serializing the JSON Schema")?;
    text.push('\n');
    Ok(text)
}

pub(crate) fn write() -> Result<()> {
    let path = schema_path();
    let text = render()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {SCHEMA_PATH}");
    Ok(())
}

pub(crate) fn check() -> Result<()> {
    if is_fresh()? {
        println!("{SCHEMA_PATH} is up to date");
        Ok(())
    } else {
        bail!("{SCHEMA_PATH} is stale: run cargo xtask schema")
    }
}

/// A missing or unreadable file counts as stale: regenerating fixes both.
fn is_fresh() -> Result<bool> {
    let expected = render()?;
    let committed = std::fs::read_to_string(schema_path()).ok();
    Ok(committed.as_deref() == Some(expected.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modeline that makes yaml-language-server validate specs in editors.
    const SPEC_MODELINE: &str = "# yaml-language-server: $schema=../schemas/edgeplan.schema.json";

    #[test]
    fn committed_schema_is_fresh() {
        assert!(is_fresh().unwrap(), "{SCHEMA_PATH} is stale: run cargo xtask schema");
    }

    #[test]
    fn every_spec_starts_with_the_schema_modeline() {
        let specs_dir = workspace::root().join("specs");
        let mut checked = 0;
        for entry in std::fs::read_dir(&specs_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let first_line = text.lines().next().unwrap_or_default();
                assert_eq!(first_line, SPEC_MODELINE, "{} must start with the schema modeline", path.display());
                checked += 1;
            }
        }
        assert!(checked > 0, "no specs/*.yaml found in {}", specs_dir.display());
    }

    #[test]
    fn the_modeline_points_at_the_generated_schema() {
        // Specs live in specs/, so the schema is one directory up from them.
        assert!(SPEC_MODELINE.ends_with(&format!("$schema=../{SCHEMA_PATH}")));
    }
}
