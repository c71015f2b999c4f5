//! `doracost ingest events`: the generic format and DevLake payloads, idempotence, bad input.

use crate::support::{csv_rows, fails, fingerprint, ok};

const EVENTS: &str = r#"{"type":"deployment","id":"1","service":"checkout","repo":"acme/checkout","environment":"production","commit_sha":"bbb","started_at":"2025-03-03T09:00:00Z","finished_at":"2025-03-03T09:10:00Z","status":"success","changes":[{"sha":"aaa","committed_at":"2025-03-01T10:00:00Z"},{"sha":"bbb","committed_at":"2025-03-02T10:00:00Z","pr_number":7,"labels":["hotfix"]}]}
{"type":"deployment","id":"2","service":"checkout","repo":"acme/checkout","environment":"production","commit_sha":"ccc","finished_at":"2025-03-04T09:10:00Z","status":"failed"}
{"type":"incident","id":"INC-1","service":"checkout","started_at":"2025-03-04T10:00:00Z","resolved_at":null,"caused_by_deployment_id":"2"}
"#;

const DEVLAKE: &str = r#"[{"commit_sha":"ddd","repo_url":"https://github.com/acme/shop","start_time":"2025-03-05T08:00:00Z","end_time":"2025-03-05T08:05:00Z","environment":"PRODUCTION","result":"SUCCESS"}]"#;

fn count(dir: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    csv_rows(&ok(dir, &["sql", "--format", "csv", sql]))[1..].to_vec()
}

#[test]
fn events_land_once_however_often_they_are_ingested() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.ndjson"), EVENTS).unwrap();
    std::fs::write(dir.path().join("devlake.json"), DEVLAKE).unwrap();
    let first = ok(
        dir.path(),
        &["ingest", "events", "events.ndjson", "devlake.json"],
    );
    assert!(first.contains("deployments"), "{first}");

    let counts = "SELECT (SELECT count(*) FROM deployments) AS d, (SELECT count(*) FROM changes) AS c, \
                  (SELECT count(*) FROM deployment_changes) AS dc, (SELECT count(*) FROM incidents) AS i";
    // 3 deployments (2 generic + 1 DevLake); changes aaa, bbb, ccc (head only), ddd (head only);
    // shipments: 1→aaa, 1→bbb, 2→ccc, devlake→ddd; one incident.
    assert_eq!(count(dir.path(), counts), [["3", "4", "4", "1"]]);
    let listed = count(
        dir.path(),
        "SELECT deployment_id, status, commits_listed FROM deployments ORDER BY deployment_id",
    );
    // Sorted by key: the DevLake deployment, then events 1 and 2.
    assert!(listed[0][0].starts_with("devlake:"), "{listed:?}");
    assert_eq!(
        listed[0][1..],
        ["success", "false"],
        "DevLake names only the head commit"
    );
    assert_eq!(listed[1], ["events:deployment:1", "success", "true"]);
    assert_eq!(
        listed[2],
        ["events:deployment:2", "failure", "false"],
        "`failed` reads as failure; no list → head only"
    );
    let incident = count(
        dir.path(),
        "SELECT caused_by_deployment_id, resolved_at IS NULL FROM incidents",
    );
    assert_eq!(incident, [["events:deployment:2", "true"]]);

    let lake = dir.path().join("data");
    let again = ok(
        dir.path(),
        &[
            "ingest",
            "events",
            "events.ndjson",
            "devlake.json",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&again).unwrap();
    for table in report["tables"].as_array().unwrap() {
        assert_eq!(table["inserted"], 0, "{table}");
        assert_eq!(table["updated"], 0, "{table}");
    }
    // Nothing changed, so no table got a new version and every derived table is still fresh.
    assert_eq!(
        report["derived_tables"]["refreshed"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(count(dir.path(), counts), [["3", "4", "4", "1"]]);
    let before = fingerprint(&lake);

    // A bad record on line 2 of a new file: named, and nothing written.
    std::fs::write(
        dir.path().join("bad.ndjson"),
        "{\"type\":\"incident\",\"id\":\"9\",\"service\":\"x\",\"started_at\":\"2025-03-04T10:00:00Z\"}\n\
         {\"type\":\"deployment\",\"id\":\"9\",\"environment\":\"production\",\"commit_sha\":\"e\",\"repo\":\"a/b\",\"finished_at\":\"yesterday\",\"status\":\"success\"}\n",
    )
    .unwrap();
    let err = fails(dir.path(), &["ingest", "events", "bad.ndjson"]);
    assert!(
        err.contains("bad.ndjson:2") && err.contains("finished_at") && err.contains("yesterday"),
        "{err}"
    );
    assert_eq!(fingerprint(&lake), before);
}
