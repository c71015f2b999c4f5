//! The sample organisation through the real CLI: generate, ingest, and compare the lake with the
//! generator's ground truth (`truth.json`); the demo on an empty lake.

use std::path::Path;

use serde_json::Value;

use crate::support::{csv_rows, ok, units};

fn sql(dir: &Path, query: &str) -> Vec<Vec<String>> {
    csv_rows(&ok(
        dir,
        &[
            "--config",
            "org/doracost.toml",
            "--data-dir",
            "data",
            "sql",
            "--format",
            "csv",
            query,
        ],
    ))[1..]
        .to_vec()
}

fn n(v: &Value) -> String {
    v.as_u64()
        .map(|n| n.to_string())
        .unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn the_lake_holds_what_the_generator_says_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["sample", "generate", "--scale", "small", "--out", "org"],
    );
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("org/truth.json")).unwrap())
            .unwrap();
    ok(
        dir.path(),
        &["--data-dir", "data", "ingest", "events", "org/events"],
    );
    ok(
        dir.path(),
        &["--data-dir", "data", "ingest", "focus", "org/costs"],
    );

    let d = &truth["deployments"];
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM deployments"),
        [[n(&d["total"])]]
    );
    for (status, count) in d["by_status"].as_object().unwrap() {
        let q = format!("SELECT count(*) FROM deployments WHERE status = '{status}'");
        assert_eq!(sql(dir.path(), &q), [[n(count)]], "status {status}");
    }
    for (environment, count) in d["by_environment"].as_object().unwrap() {
        let q = format!("SELECT count(*) FROM deployments WHERE environment = '{environment}'");
        assert_eq!(
            sql(dir.path(), &q),
            [[n(count)]],
            "environment {environment}"
        );
    }
    assert_eq!(
        sql(
            dir.path(),
            "SELECT count(*) FROM deployments WHERE environment = 'production' AND status = 'success'"
        ),
        [[n(&d["production_successful"])]]
    );
    assert_eq!(
        sql(
            dir.path(),
            "SELECT count(*) FROM deployments WHERE is_rollback"
        ),
        [[n(&d["rollbacks_flagged"])]]
    );
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM changes"),
        [[n(&truth["changes"]["distinct"])]]
    );
    assert_eq!(
        sql(
            dir.path(),
            "SELECT count(*) FROM changes WHERE pr_number IS NOT NULL"
        ),
        [[n(&truth["changes"]["with_pull_request"])]]
    );
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM deployment_changes"),
        [[n(&truth["deployment_changes"]["total"])]]
    );
    let i = &truth["incidents"];
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM incidents"),
        [[n(&i["total"])]]
    );
    assert_eq!(
        sql(
            dir.path(),
            "SELECT count(*) FROM incidents WHERE resolved_at IS NULL"
        ),
        [[n(&i["open"])]]
    );
    assert_eq!(
        sql(
            dir.path(),
            "SELECT count(*) FROM incidents WHERE caused_by_deployment_id IS NOT NULL"
        ),
        [[n(&i["caused_by_deployment"])]]
    );

    let c = &truth["costs"];
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM costs"),
        [[n(&c["rows"])]]
    );
    let providers = sql(
        dir.path(),
        "SELECT provider, count(*), sum(billed_cost), sum(effective_cost) FROM costs GROUP BY provider ORDER BY provider",
    );
    let expected = c["providers"].as_object().unwrap();
    assert_eq!(providers.len(), expected.len());
    for row in providers {
        let p = &expected[&row[0]];
        assert_eq!(row[1], n(&p["rows"]), "{}", row[0]);
        assert_eq!(
            units(&row[2]),
            units(p["billed_cost"].as_str().unwrap()),
            "{} billed",
            row[0]
        );
        assert_eq!(
            units(&row[3]),
            units(p["effective_cost"].as_str().unwrap()),
            "{} effective",
            row[0]
        );
    }

    // Per service, the months' tagged effective cost, to the last decimal.
    for (service, st) in truth["services"].as_object().unwrap() {
        for (month, amount) in st["effective_cost_by_month"].as_object().unwrap() {
            let q = format!(
                "SELECT coalesce(sum(effective_cost), 0) FROM costs \
                 WHERE tags['service'] = '{service}' AND to_char(charge_period_start, '%Y-%m') = '{month}'"
            );
            let got = sql(dir.path(), &q);
            assert_eq!(
                units(&got[0][0]),
                units(amount.as_str().unwrap()),
                "{service} {month}"
            );
        }
    }

    // Ingesting everything again changes nothing.
    ok(
        dir.path(),
        &["--data-dir", "data", "ingest", "events", "org/events"],
    );
    ok(
        dir.path(),
        &["--data-dir", "data", "ingest", "focus", "org/costs"],
    );
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM deployments"),
        [[n(&d["total"])]]
    );
    assert_eq!(
        sql(dir.path(), "SELECT count(*) FROM costs"),
        [[n(&c["rows"])]]
    );
}

#[test]
fn the_checked_in_sample_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["sample", "generate", "--scale", "small", "--out", "org"],
    );
    let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/small");
    let generated = crate::support::fingerprint(&dir.path().join("org"));
    assert_eq!(
        crate::support::fingerprint(&checked_in),
        generated,
        "regenerate sample-data/small (see README)"
    );
    for (file, _) in generated {
        let a = std::fs::read(checked_in.join(&file)).unwrap();
        let b = std::fs::read(dir.path().join("org").join(&file)).unwrap();
        assert!(
            a == b,
            "{} differs from the generator's output",
            file.display()
        );
    }
}

#[test]
fn the_demo_builds_a_lake_from_nothing_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["demo", "--no-serve", "--data-dir", "lake"]);
    assert!(out.contains("checkout"), "{out}");
    assert!(out.contains("12 rows"), "one row per service:\n{out}");
    // A second run reuses the lake.
    let again = ok(dir.path(), &["demo", "--no-serve", "--data-dir", "lake"]);
    assert!(!again.contains("ingested"), "{again}");
}
