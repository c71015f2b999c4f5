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
}
