//! README's two commands share one build: `cargo run -- demo` (the `doracost` package alone) and
//! `cargo test --workspace` (every member, dev-dependencies included) must resolve every crate they
//! have in common with the same features, or the second rebuilds it and everything above it (a
//! dev-dependency once turned on `std` in `md-5` and `getrandom`, which rebuilt object_store, ring
//! and the whole DataFusion and Delta stack). The root `Cargo.toml` pins those features.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `cargo tree` of the given selection: package (name, version, source) → the feature sets it is
/// built with (two when it is both a build-time and a run-time dependency).
fn resolved_features(selection: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["tree", "--locked", "--offline", "--prefix", "none"])
        .args(["--format", "{p}|{f}"])
        .args(selection)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree {selection:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let mut features: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let Some((package, enabled)) = line.split_once('|') else {
            continue;
        };
        let package = package.trim_end_matches(" (*)").trim();
        let enabled = enabled.trim_end_matches(" (*)").trim();
        features
            .entry(package.to_owned())
            .or_default()
            .insert(enabled.to_owned());
    }
    features
}

#[test]
fn the_demo_and_the_tests_resolve_the_same_features() {
    let demo = resolved_features(&["--package", "doracost", "--edges", "normal,build"]);
    let tests = resolved_features(&["--workspace", "--edges", "normal,build,dev"]);
    assert!(
        demo.len() > 300,
        "the demo's tree lists only {} packages",
        demo.len()
    );
    let differing: Vec<String> = demo
        .iter()
        .filter_map(|(package, run)| {
            let test = tests.get(package)?;
            (test != run).then(|| format!("{package}: demo {run:?}, tests {test:?}"))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "`cargo run -- demo` and `cargo test --workspace` resolve these crates with other \
         features, so the tests would rebuild them and everything above them; pin the tests' \
         features in the root Cargo.toml:\n{}",
        differing.join("\n")
    );
}
