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

/// Two DevLake deployments across repos (v1.0 camelCase and the older snake_case form) and a
/// DevLake incident, with services of several repos.
const DEVLAKE_ACROSS_REPOS: &str = r#"[
{"id":"rel-1","result":"SUCCESS","environment":"PRODUCTION","finishedDate":"2025-03-10T10:00:00Z",
 "deploymentCommits":[
   {"repoUrl":"https://github.com/acme/shop-web","commitSha":"w1"},
   {"repoUrl":"https://github.com/acme/shop-api","commitSha":"a1","finishedDate":"2025-03-10T10:05:00Z"}]},
{"pipeline_id":"rel-2","environment":"PRODUCTION","result":"SUCCESS","end_time":"2025-03-12T10:00:00Z",
 "deployment_commits":[
   {"repo_url":"https://github.com/acme/shop-web","commit_sha":"w2"},
   {"repo_url":"https://github.com/acme/pay","commit_sha":"p1"}]},
{"issueKey":"INC-7","title":"checkout errors","type":"INCIDENT","status":"DONE","component":"shop",
 "createdDate":"2025-03-10T11:00:00Z","resolutionDate":"2025-03-10T12:30:00Z"}
]"#;

const SERVICES_OF_SEVERAL_REPOS: &str = r#"
[[services]]
name = "shop"
team = "retail"
repos = ["acme/shop-web", "acme/shop-api"]

[[services]]
name = "pay"
team = "payments"
repos = ["acme/pay"]
"#;

#[test]
fn devlake_deployment_across_repos_counts_once_per_service() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("doracost.toml"), SERVICES_OF_SEVERAL_REPOS).unwrap();
    std::fs::write(dir.path().join("devlake.json"), DEVLAKE_ACROSS_REPOS).unwrap();
    ok(dir.path(), &["ingest", "events", "devlake.json"]);

    // A row per repo, grouped: rel-1 two rows of shop, rel-2 one of shop and one of pay.
    assert_eq!(
        count(
            dir.path(),
            "SELECT deployment_id, deployment_group FROM deployments ORDER BY deployment_id"
        ),
        [
            [
                "devlake:deployment:rel-1:acme/shop-api",
                "devlake:deployment:rel-1"
            ],
            [
                "devlake:deployment:rel-1:acme/shop-web",
                "devlake:deployment:rel-1"
            ],
            [
                "devlake:deployment:rel-2:acme/pay",
                "devlake:deployment:rel-2"
            ],
            [
                "devlake:deployment:rel-2:acme/shop-web",
                "devlake:deployment:rel-2"
            ],
        ]
    );
    // One deployment per service: rel-1 of shop (finished with its last row, 10:05), rel-2 of
    // shop and of pay. INC-7 (shop, 11:00) began while rel-1 was shop's deployment in
    // production, 55 min after it: rel-1 failed, recovered at 12:30 (1.5 h).
    assert_eq!(
        count(
            dir.path(),
            "SELECT deployment_id, service, CAST(finished_at AS VARCHAR), is_failed \
             FROM dora_deployments ORDER BY deployment_id, service"
        ),
        [
            [
                "devlake:deployment:rel-1",
                "shop",
                "2025-03-10T10:05:00Z",
                "true"
            ],
            [
                "devlake:deployment:rel-2",
                "pay",
                "2025-03-12T10:00:00Z",
                "false"
            ],
            [
                "devlake:deployment:rel-2",
                "shop",
                "2025-03-12T10:00:00Z",
                "false"
            ],
        ]
    );
    // March: shop 2 deployments (not 3 rows), 1 failed: 1/2; pay 1, none failed; each team its
    // service; everything 3 (rel-2 once for each of its two services), 1 failed: 1/3.
    let monthly = "SELECT scope, name, deployments, change_failures, round(change_failure_rate, 4), \
                   recovery_median_hours FROM dora_monthly \
                   WHERE period_start = DATE '2025-03-01' ORDER BY scope, name";
    let expected = [
        ["all", "all", "3", "1", "0.3333", "1.5"],
        ["service", "pay", "1", "0", "0.0", ""],
        ["service", "shop", "2", "1", "0.5", "1.5"],
        ["team", "payments", "1", "0", "0.0", ""],
        ["team", "retail", "2", "1", "0.5", "1.5"],
    ];
    assert_eq!(count(dir.path(), monthly), expected);

    // Posting the same payloads again changes nothing.
    let again = ok(
        dir.path(),
        &["ingest", "events", "devlake.json", "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_str(&again).unwrap();
    for table in report["tables"].as_array().unwrap() {
        assert_eq!(table["inserted"], 0, "{table}");
        assert_eq!(table["updated"], 0, "{table}");
    }
    assert_eq!(count(dir.path(), monthly), expected);
}
