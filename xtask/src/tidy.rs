//! Architecture invariants that can be checked mechanically, as tests (ARCHITECTURE.md states
//! each one where it belongs).

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use crate::workspace;

    /// Each crate's normal `[dependencies]` (names only), from its manifest.
    fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
        let mut crates = BTreeMap::new();
        for entry in std::fs::read_dir(workspace::root().join("crates")).expect("crates/") {
            let dir = entry.expect("an entry").path();
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a manifest");
            let mut section = String::new();
            let mut deps = BTreeSet::new();
            let mut name = String::new();
            for line in manifest.lines().map(str::trim) {
                if line.starts_with('[') {
                    section = line.to_string();
                    continue;
                }
                let Some((key, value)) = line.split_once('=') else { continue };
                let key = key.trim().trim_end_matches(".workspace").to_string();
                if section == "[package]" && key == "name" {
                    name = value.trim().trim_matches('"').to_string();
                }
                if section == "[dependencies]" && !key.starts_with('#') {
                    // `tokio = { …, features = [..] }` keeps its features visible for the checks.
                    deps.insert(if value.contains("features") { format!("{key} {}", value.trim()) } else { key });
                }
            }
            crates.insert(name, deps);
        }
        crates
    }

    fn depends(deps: &BTreeSet<String>, name: &str) -> bool {
        deps.iter().any(|d| d == name || d.starts_with(&format!("{name} ")))
    }

    #[test]
    fn crate_dependencies_keep_the_layers() {
        let crates = dependencies();
        let of = |name: &str| crates.get(name).unwrap_or_else(|| panic!("no crate {name}"));
        // The parse sees dependencies at all (else every check below passes vacuously).
        assert!(depends(of("edgeplan-sim"), "edgeplan-model") && depends(of("edgeplan-cli"), "ctrlc"), "{crates:#?}");
        // The pure core: no I/O, no async runtime, no SDK, no simulator, no engine.
        for core in ["edgeplan-spec", "edgeplan-graph", "edgeplan-model", "edgeplan-plan", "edgeplan-diag"] {
            for forbidden in ["tokio", "edgeplan-engine", "edgeplan-sim", "edgeplan-cli", "miette", "indicatif"] {
                if core == "edgeplan-diag" && forbidden == "miette" {
                    continue; // the diagnostic adapter type lives with the findings; `fancy` does not
                }
                assert!(!depends(of(core), forbidden), "{core} depends on {forbidden}");
            }
        }
        // The simulator is a backend: it judges nothing the engine judges.
        for forbidden in ["edgeplan-lint", "edgeplan-plan", "edgeplan-engine"] {
            assert!(!depends(of("edgeplan-sim"), forbidden), "edgeplan-sim depends on {forbidden}");
        }
        // The engine knows the seam, not any backend.
        assert!(!depends(of("edgeplan-engine"), "edgeplan-sim"), "edgeplan-engine depends on the simulator");
        // Only the AWS backend pays for the AWS SDK (aws-sdk-ec2 alone is minutes and GBs to
        // build), and it judges nothing.
        assert!(depends(of("edgeplan-aws"), "aws-sdk-ec2"), "{crates:#?}");
        for (name, deps) in &crates {
            if name != "edgeplan-aws" {
                for sdk in ["aws-config", "aws-sdk-ec2", "aws-sdk-elasticloadbalancingv2", "aws-sdk-iam", "aws-sdk-sts"]
                {
                    assert!(!depends(deps, sdk), "{name} depends on {sdk}");
                }
            }
        }
        for forbidden in ["edgeplan-lint", "edgeplan-plan", "edgeplan-engine", "edgeplan-sim"] {
            assert!(!depends(of("edgeplan-aws"), forbidden), "edgeplan-aws depends on {forbidden}");
        }
        // Only the binary renders for a terminal or handles signals.
        for (name, deps) in &crates {
            if name == "edgeplan-cli" {
                continue;
            }
            for forbidden in ["indicatif", "ctrlc"] {
                assert!(!depends(deps, forbidden), "{name} depends on {forbidden}");
            }
            assert!(
                !deps.iter().any(|d| d.starts_with("miette ") && d.contains("fancy")),
                "{name} enables miette's fancy"
            );
        }
        // No release binary runs on tokio's test utilities (a paused clock).
        for (name, deps) in &crates {
            assert!(
                !deps.iter().any(|d| d.starts_with("tokio ") && d.contains("test-util")),
                "{name}: tokio test-util"
            );
        }
    }

    fn sources(dir: &Path, files: &[&str]) -> Vec<PathBuf> {
        files.iter().map(|f| dir.join(f)).collect()
    }

    /// Attribute names are spelled once, in `attr.rs`: `Attr` has no public constructor, and the
    /// engine's deciding, rules, waits, verify and the backends use the constants. The one
    /// string→Attr conversion (`Attr::parse`, for names stored in plans) never gets a literal.
    #[test]
    fn no_string_literal_attribute_names_outside_the_declarations() {
        let root = workspace::root();
        let names: BTreeSet<&str> = edgeplan_model::attr::ALL.iter().map(|a| a.name()).collect();
        let mut files = Vec::new();
        files.extend(sources(
            &root.join("crates/edgeplan-plan/src"),
            &["rules.rs", "planned.rs", "decide.rs", "facts.rs", "assumptions.rs", "destroy.rs", "saved.rs"],
        ));
        files.extend(sources(
            &root.join("crates/edgeplan-engine/src"),
            &["wait.rs", "verify.rs", "walk.rs", "router.rs", "discovery.rs", "session.rs"],
        ));
        files.extend(sources(&root.join("crates/edgeplan-sim/src"), &["aws.rs", "kube.rs", "portainer.rs"]));
        files.extend(sources(&root.join("crates/edgeplan-aws/src"), &["observe.rs", "execute.rs", "owned.rs"]));
        let mut offenders = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (number, line) in literal_lookups(&text, &names) {
                offenders.push(format!("{}:{number}: {line}", workspace::display(file)));
            }
        }
        // `Attr::parse` with a literal anywhere is a name spelled twice.
        for dir in ["crates", "xtask"] {
            let mut pending = vec![root.join(dir)];
            while let Some(path) = pending.pop() {
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "target") {
                        pending.extend(std::fs::read_dir(&path).expect("a dir").map(|e| e.expect("an entry").path()));
                    }
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tidy.rs") {
                    let text = std::fs::read_to_string(&path).expect("a source file");
                    for (number, line) in text.lines().enumerate() {
                        if line.contains("Attr::parse(\"") {
                            offenders.push(format!("{}:{}: {}", workspace::display(&path), number + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "attribute names spelled outside attr.rs:\n  {}", offenders.join("\n  "));
    }

    /// Lines (1-based, trimmed) that look an attribute up by a string literal: as a call's
    /// first argument or an index.
    fn literal_lookups(text: &str, names: &BTreeSet<&str>) -> Vec<(usize, String)> {
        let lookups =
            ["get(", "insert(", "remove(", "contains_key(", "text(", "flag(", "int(", "parse(", "set(", "with(", "["];
        text.lines()
            .enumerate()
            .filter(|(_, line)| {
                names.iter().any(|name| lookups.iter().any(|call| line.contains(&format!("{call}\"{name}\""))))
            })
            .map(|(number, line)| (number + 1, line.trim().to_string()))
            .collect()
    }

    /// The check is live: it flags literal lookups and nothing else.
    #[test]
    fn the_literal_check_flags_lookups_only() {
        let names: BTreeSet<&str> = ["port", "state"].into_iter().collect();
        let text =
            "let a = live.get(\"port\");\nlet b = live.get(attr::PORT);\nprintln!(\"state {x}\");\nmap[\"state\"]";
        assert_eq!(
            literal_lookups(text, &names),
            [(1, "let a = live.get(\"port\");".to_string()), (4, "map[\"state\"]".to_string())]
        );
    }

    /// Every Rust file under `dir`, recursively.
    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.is_dir() && !path.ends_with("target") {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// A fresh clone is all CI has: every relative path a source spells (`include_str!`, a
    /// fixture joined to `CARGO_MANIFEST_DIR`) names something inside the repository. The shared
    /// reference material is copied into `testdata/` when a test needs it.
    #[test]
    fn nothing_reads_outside_the_repository() {
        let root = workspace::root();
        let mut files = Vec::new();
        rust_files(&root.join("crates"), &mut files);
        rust_files(&root.join("xtask"), &mut files);
        let mut escapes = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("xtask/src/tidy.rs")) {
            let text = std::fs::read_to_string(file).expect("a source file");
            let relative = file.strip_prefix(&root).expect("under the root");
            let manifest_dir = root.join(relative.components().take(2).collect::<PathBuf>());
            let bases = [file.parent().expect("a directory").to_path_buf(), manifest_dir];
            for (number, path) in climbing_literals(&text) {
                let inside = bases.iter().any(|base| {
                    normalize(&base.join(&path)).is_some_and(|target| target.starts_with(&root) && target.exists())
                });
                if !inside {
                    escapes.push(format!("{}:{number}: \"{path}\"", relative.display()));
                }
            }
        }
        assert!(files.len() > 50, "the walk found the sources: {}", files.len());
        assert!(escapes.is_empty(), "paths outside the repository:\n{}", escapes.join("\n"));
    }

    /// String literals that climb out of at least two directories (`"../../…"`: out of a
    /// crate), with their line numbers.
    fn climbing_literals(text: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for (number, line) in text.lines().enumerate() {
            for piece in line.split('"').skip(1).step_by(2) {
                if piece.starts_with("../../") {
                    found.push((number + 1, piece.to_string()));
                }
            }
        }
        found
    }

    /// `path` with `..` and `.` resolved lexically.
    fn normalize(path: &Path) -> Option<PathBuf> {
        let mut out = PathBuf::new();
        for part in path.components() {
            match part {
                std::path::Component::ParentDir => {
                    if !out.pop() {
                        return None;
                    }
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        Some(out)
    }

    #[test]
    fn the_escape_check_sees_literals_that_climb() {
        let text = "let a = include_str!(\"../../specs/seed.yaml\");\nlet b = x.join(\"../../../shared/r\");";
        assert_eq!(
            climbing_literals(text),
            [(1, "../../specs/seed.yaml".to_string()), (2, "../../../shared/r".to_string())]
        );
    }
}
