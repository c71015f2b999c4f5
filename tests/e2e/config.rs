//! Config mistakes stop the command with the key and line named.

use crate::support::fails;

#[test]
fn a_config_mistake_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("doracost.toml"),
        "[reporting]\ntime_zone = \"UTC\"\nattribution_windw_days = 3\n",
    )
    .unwrap();
    let err = fails(dir.path(), &["sql", "SELECT 1"]);
    assert!(
        err.contains("doracost.toml")
            && err.contains("line 3")
            && err.contains("attribution_windw_days"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("other.toml"),
        "[server]\ntoken = \"s3cr3t-value\"\n",
    )
    .unwrap();
    let err = fails(dir.path(), &["--config", "other.toml", "sql", "SELECT 1"]);
    assert!(err.contains("line 2") && err.contains("env"), "{err}");
    assert!(!err.contains("s3cr3t-value"), "a secret was echoed: {err}");
}

#[test]
fn sql_refuses_writes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.ndjson"),
        r#"{"type":"deployment","id":"1","service":"checkout","environment":"production","commit_sha":"abc","finished_at":"2025-01-01T00:00:00Z","status":"success"}"#,
    )
    .unwrap();
    crate::support::ok(
        dir.path(),
        &["ingest", "--no-refresh", "events", "one.ndjson"],
    );
    let before = crate::support::fingerprint(dir.path());
    for statement in [
        "DROP TABLE deployments",
        "INSERT INTO deployments SELECT * FROM deployments",
        "CREATE TABLE x AS SELECT 1",
    ] {
        let err = fails(dir.path(), &["sql", statement]);
        assert!(
            err.to_lowercase().contains("not supported")
                || err.to_lowercase().contains("not allowed"),
            "{statement}: {err}"
        );
    }
    assert_eq!(
        crate::support::fingerprint(dir.path()),
        before,
        "the lake is as it was"
    );
}

#[test]
fn a_read_of_a_missing_lake_errors_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--data-dir", "typo", "sql", "SELECT 1"][..],
        &["--data-dir", "typo", "dora"][..],
        &["--data-dir", "typo", "costs"][..],
    ] {
        let err = fails(dir.path(), args);
        assert!(
            err.contains("no doracost lake at file://")
                && err.contains("typo/: run an ingest or `doracost demo` first"),
            "{args:?}: {err}"
        );
    }
    assert!(!dir.path().join("typo").exists(), "nothing was created");
}
