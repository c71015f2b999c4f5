//! Every input shape, the dedupe and head-commit rules, and every error naming its line and field.

use std::io::Write as _;
use std::path::PathBuf;

use arrow::array::{Array, AsArray, BooleanArray, Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::progress::NoProgress;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 5, 0, 0, 0).unwrap()
}

/// Microseconds since the epoch of an RFC 3339 text, for expected values.
fn micros(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

fn body(text: &str) -> EventBatches {
    read_event_json(text.as_bytes(), "webhook", now()).unwrap()
}

fn body_error(text: &str) -> String {
    read_event_json(text.as_bytes(), "webhook", now())
        .unwrap_err()
        .to_string()
}

struct Files {
    dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
            paths: Vec::new(),
        }
    }

    fn with(mut self, name: &str, text: &str) -> Self {
        let path = self.dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        self.paths.push(path);
        self
    }

    fn read(&self) -> Result<EventBatches, IngestError> {
        read_event_files(&self.paths, now(), &mut NoProgress)
    }

    /// The error with the temporary directory taken out, so messages read `name:line: …`.
    fn error(&self) -> String {
        let text = self.read().unwrap_err().to_string();
        text.replace(&format!("{}/", self.dir.path().display()), "")
    }
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i).to_owned()))
        .collect()
}

/// Non-null strings of a column, for columns that are never null.
fn values(batch: &RecordBatch, column: &str) -> Vec<String> {
    strings(batch, column)
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

fn times(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let array: &TimestampMicrosecondArray = batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i)))
        .collect()
}

fn flags(batch: &RecordBatch, column: &str) -> Vec<bool> {
    let array: &BooleanArray = batch.column_by_name(column).unwrap().as_boolean();
    (0..array.len()).map(|i| array.value(i)).collect()
}

fn links(batches: &EventBatches) -> Vec<(String, String)> {
    let d = values(&batches.deployment_changes, "deployment_id");
    let c = values(&batches.deployment_changes, "change_id");
    d.into_iter().zip(c).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .collect()
}

fn assert_canonical(batches: &EventBatches) {
    assert_eq!(batches.deployments.schema(), model::schema::deployments());
    assert_eq!(batches.changes.schema(), model::schema::changes());
    assert_eq!(
        batches.deployment_changes.schema(),
        model::schema::deployment_changes()
    );
    assert_eq!(batches.incidents.schema(), model::schema::incidents());
}

const NDJSON: &str = r#"{"type":"deployment","id":42,"service":"shop","repo":"acme/shop","environment":"production","ref":"main","commit_sha":"c2","started_at":"2025-03-04T10:00:00Z","finished_at":"2025-03-04T10:15:00Z","status":"succeeded","url":"https://ci/42","changes":[{"sha":"c1","committed_at":"2025-03-03T09:00:00Z","paths":["shop/a.rs"],"pr_number":7,"pr_opened_at":"2025-03-03T09:30:00Z","labels":["hotfix"],"incident_refs":[3]},{"sha":"c2","committed_at":"2025-03-04 09:00:00"}]}

{"type":"change","repo":"acme/shop","sha":"c3","committed_at":"2025-03-04T12:00:00+02:00","deployment_id":"43","pr_head_branch":"hotfix/x"}
{"type":"incident","id":"INC-1","service":"shop","title":"checkout down","severity":"sev1","started_at":"2025-03-04T11:00:00Z","caused_by_deployment_id":42,"extra":"ignored"}
"#;

#[test]
fn ndjson_file_reads_every_kind() {
    let files = Files::new().with("events.ndjson", NDJSON);
    let batches = files.read().unwrap();
    assert_canonical(&batches);

    let d = &batches.deployments;
    assert_eq!(values(d, "deployment_id"), ["events:deployment:42"]);
    assert_eq!(values(d, "status"), ["success"]); // `succeeded` is a synonym
    assert_eq!(values(d, "ref"), ["main"]);
    assert_eq!(
        times(d, "finished_at"),
        [Some(micros("2025-03-04T10:15:00Z"))]
    );
    assert_eq!(flags(d, "commits_listed"), [true]);
    assert_eq!(flags(d, "is_rollback"), [false]);
    assert_eq!(times(d, "ingested_at"), [Some(now().timestamp_micros())]);

    let c = &batches.changes;
    assert_eq!(
        values(c, "change_id"),
        ["acme/shop:c1", "acme/shop:c2", "acme/shop:c3"]
    );
    assert_eq!(values(c, "repo"), ["acme/shop"; 3]); // listed changes take the deployment's repo
    // `2025-03-04 09:00:00` has no offset: UTC. `12:00+02:00` is 10:00 UTC.
    assert_eq!(
        times(c, "committed_at"),
        [
            Some(micros("2025-03-03T09:00:00Z")),
            Some(micros("2025-03-04T09:00:00Z")),
            Some(micros("2025-03-04T10:00:00Z"))
        ]
    );
    let pr: &Int64Array = c.column_by_name("pr_number").unwrap().as_primitive();
    assert_eq!((pr.value(0), pr.is_null(1)), (7, true));
    let labels = c.column_by_name("labels").unwrap().as_list::<i32>();
    assert_eq!(labels.value(0).as_string::<i32>().value(0), "hotfix");
    assert!(labels.is_null(1));
    let refs = c.column_by_name("incident_refs").unwrap().as_list::<i32>();
    assert_eq!(refs.value(0).as_string::<i32>().value(0), "3"); // integer ids read as text
    assert_eq!(strings(c, "pr_head_branch")[2].as_deref(), Some("hotfix/x"));

    assert_eq!(
        links(&batches),
        pairs(&[
            ("events:deployment:42", "acme/shop:c1"),
            ("events:deployment:42", "acme/shop:c2"),
            ("events:deployment:43", "acme/shop:c3"), // from the standalone change's deployment_id
        ])
    );

    let i = &batches.incidents;
    assert_eq!(values(i, "incident_id"), ["events:incident:INC-1"]);
    assert_eq!(
        strings(i, "caused_by_deployment_id"),
        [Some("events:deployment:42".to_owned())]
    );
    assert_eq!(times(i, "resolved_at"), [None]);
}

#[test]
fn json_array_and_ndjson_body_give_the_same_rows() {
    let lines: Vec<&str> = NDJSON.lines().filter(|l| !l.trim().is_empty()).collect();
    let array = body(&format!("[{}]", lines.join(",\n")));
    let ndjson = body(NDJSON);
    assert_eq!(array.deployments, ndjson.deployments);
    assert_eq!(array.changes, ndjson.changes);
    assert_eq!(array.deployment_changes, ndjson.deployment_changes);
    assert_eq!(array.incidents, ndjson.incidents);
    let file = Files::new()
        .with("events.json", &format!("[{}]", lines.join(",")))
        .read()
        .unwrap();
    assert_eq!(file.changes, ndjson.changes);
}

#[test]
fn object_of_arrays_names_the_kind() {
    let batches = body(
        r#"{"deployments": [{"id": "d1", "source": "jenkins", "repo": "acme/api", "environment": "staging",
              "commit_sha": "a1", "finished_at": "2025-03-04T10:00:00Z", "status": "FAILED", "is_rollback": true}],
            "changes": [{"repo": "acme/api", "sha": "a0", "committed_at": "2025-03-04T08:00:00Z"}],
            "incidents": [{"id": 9, "source": "jenkins", "service": "api", "started_at": "2025-03-04T10:30:00Z",
              "resolved_at": "2025-03-04T11:00:00Z", "caused_by_deployment_id": "d1"}],
            "generator": "ignored"}"#,
    );
    assert_eq!(
        values(&batches.deployments, "deployment_id"),
        ["jenkins:deployment:d1"]
    );
    assert_eq!(values(&batches.deployments, "source"), ["jenkins"]);
    assert_eq!(values(&batches.deployments, "status"), ["failure"]);
    assert_eq!(flags(&batches.deployments, "is_rollback"), [true]);
    assert_eq!(
        values(&batches.changes, "change_id"),
        ["acme/api:a1", "acme/api:a0"]
    );
    assert_eq!(
        values(&batches.incidents, "incident_id"),
        ["jenkins:incident:9"]
    );
    assert_eq!(
        strings(&batches.incidents, "caused_by_deployment_id"),
        [Some("jenkins:deployment:d1".to_owned())]
    );
    assert_eq!(
        times(&batches.incidents, "resolved_at"),
        [Some(micros("2025-03-04T11:00:00Z"))]
    );
}

#[test]
fn a_single_record_body_and_concatenated_objects() {
    let one =
        body(r#"{"type":"change","repo":"r","sha":"s","committed_at":"2025-03-04T08:00:00Z"}"#);
    assert_eq!(values(&one.changes, "change_id"), ["r:s"]);
    // Pretty-printed objects one after another: errors name the line the record starts on.
    let text = "{\"type\":\"change\",\"repo\":\"r\",\"sha\":\"s\",\n \"committed_at\":\"2025-03-04T08:00:00Z\"}\n\
                {\"type\":\"change\",\n \"repo\":\"r\",\"sha\":\"t\",\"committed_at\":\"soon\"}\n";
    assert_eq!(
        body_error(text),
        "webhook:3: column `committed_at`: expected an RFC 3339 timestamp, found \"soon\""
    );
}

#[test]
fn csv_deployments_changes_and_incidents() {
    let files = Files::new()
        .with(
            "deployments.csv",
            "deployment_id,service,repo,environment,commit_sha,finished_at,status,is_rollback,url\n\
             7,shop,acme/shop,production,abc,2025-03-04T10:00:00Z,Cancelled,false,\n",
        )
        .with(
            "changes.csv",
            "repo,sha,committed_at,paths,labels,pr_number,deployment_id\n\
             acme/shop,abc,2025-03-04T09:00:00Z,shop/a.rs; shop/b.rs,,12,7\n",
        )
        .with(
            "incidents.csv",
            "incident_id,service,started_at,resolved_at,caused_by_sha\n\
             P1,shop,2025-03-04T11:00:00Z,,abc\n",
        );
    let batches = files.read().unwrap();
    assert_canonical(&batches);
    assert_eq!(
        values(&batches.deployments, "deployment_id"),
        ["events:deployment:7"]
    );
    assert_eq!(values(&batches.deployments, "status"), ["cancelled"]);
    assert_eq!(strings(&batches.deployments, "url"), [None]); // empty cell is null
    assert_eq!(flags(&batches.deployments, "commits_listed"), [false]); // CSV names the head only
    // The head commit's minimal row, filled by the fuller row from changes.csv.
    assert_eq!(values(&batches.changes, "change_id"), ["acme/shop:abc"]);
    assert_eq!(
        times(&batches.changes, "committed_at"),
        [Some(micros("2025-03-04T09:00:00Z"))]
    );
    let paths = batches
        .changes
        .column_by_name("paths")
        .unwrap()
        .as_list::<i32>();
    let paths = paths.value(0);
    let paths = paths.as_string::<i32>();
    assert_eq!(
        (paths.len(), paths.value(0), paths.value(1)),
        (2, "shop/a.rs", "shop/b.rs")
    );
    assert!(batches.changes.column_by_name("labels").unwrap().is_null(0));
    // The head row and the standalone change's link are the same pair: one row.
    assert_eq!(
        links(&batches),
        pairs(&[("events:deployment:7", "acme/shop:abc")])
    );
    assert_eq!(
        values(&batches.incidents, "incident_id"),
        ["events:incident:P1"]
    );
    assert_eq!(
        strings(&batches.incidents, "caused_by_sha"),
        [Some("abc".to_owned())]
    );
    assert_eq!(times(&batches.incidents, "resolved_at"), [None]);
}

#[test]
fn csv_with_a_type_column() {
    let files = Files::new().with(
        "mixed.csv",
        "type,id,service,started_at,repo,sha,committed_at\n\
         incident,5,shop,2025-03-04T11:00:00Z,,,\n\
         change,,,,acme/shop,def,2025-03-04T09:00:00Z\n",
    );
    let batches = files.read().unwrap();
    assert_eq!(
        values(&batches.incidents, "incident_id"),
        ["events:incident:5"]
    );
    assert_eq!(values(&batches.changes, "change_id"), ["acme/shop:def"]);
}

#[test]
fn devlake_old_single_commit_form() {
    // From DevLake's webhook docs (v0.15–v0.17): snake_case, no id.
    let batches = body(
        r#"{"commit_sha":"015e3d3b","repo_url":"https://github.com/apache/incubator-devlake/",
            "environment":"PRODUCTION","start_time":"2020-01-01T12:00:00+00:00",
            "end_time":"2020-01-02T12:00:00+00:00","result":"FAILURE","ref_name":"v0.17"}"#,
    );
    let d = &batches.deployments;
    // No id: derived from repo, sha and end time, so re-posting it changes nothing.
    assert_eq!(
        values(d, "deployment_id"),
        ["devlake:deployment:apache/incubator-devlake:015e3d3b:2020-01-02T12:00:00Z"]
    );
    assert_eq!(values(d, "source"), ["devlake"]);
    assert_eq!(values(d, "repo"), ["apache/incubator-devlake"]);
    assert_eq!(values(d, "environment"), ["production"]);
    assert_eq!(values(d, "status"), ["failure"]);
    assert_eq!(values(d, "ref"), ["v0.17"]);
    assert_eq!(
        times(d, "started_at"),
        [Some(micros("2020-01-01T12:00:00Z"))]
    );
    assert_eq!(flags(d, "commits_listed"), [false]);
    assert_eq!(
        values(&batches.changes, "change_id"),
        ["apache/incubator-devlake:015e3d3b"]
    );
    assert_eq!(times(&batches.changes, "committed_at"), [None]);
    assert_eq!(
        links(&batches),
        pairs(&[(
            "devlake:deployment:apache/incubator-devlake:015e3d3b:2020-01-02T12:00:00Z",
            "apache/incubator-devlake:015e3d3b"
        )])
    );

    // With a pipeline_id and no end time: the id is the pipeline's, the end time DevLake's
    // default (when the payload was received), the result DevLake's default (SUCCESS).
    let batches = body(
        r#"{"pipeline_id":"p-9","commit_sha":"aa","repo_url":"https://gitlab.com/g/sub/p.git","environment":"staging"}"#,
    );
    assert_eq!(
        values(&batches.deployments, "deployment_id"),
        ["devlake:deployment:p-9"]
    );
    assert_eq!(values(&batches.deployments, "repo"), ["g/sub/p"]);
    assert_eq!(values(&batches.deployments, "environment"), ["staging"]);
    assert_eq!(values(&batches.deployments, "status"), ["success"]);
    assert_eq!(
        times(&batches.deployments, "finished_at"),
        [Some(now().timestamp_micros())]
    );
}

#[test]
fn devlake_deployment_commits_forms() {
    // v1.0+: camelCase, one deployment across two repos, per-commit result and dates.
    let batches = body(
        r#"{"id":"deploy-7","displayTitle":"release 7","result":"SUCCESS","environment":"PRODUCTION",
            "url":"https://ci/7","createdDate":"2025-03-04T09:00:00Z","startedDate":"2025-03-04T09:05:00Z",
            "finishedDate":"2025-03-04T09:30:00Z",
            "deploymentCommits":[
              {"commitSha":"s1","repoUrl":"https://github.com/acme/shop","refName":"main"},
              {"commitSha":"s2","repoUrl":"https://github.com/acme/api","result":"ABORT",
               "startedDate":"2025-03-04T09:10:00Z","finishedDate":"2025-03-04T09:20:00Z"}]}"#,
    );
    let d = &batches.deployments;
    assert_eq!(
        values(d, "deployment_id"),
        [
            "devlake:deployment:deploy-7:acme/shop",
            "devlake:deployment:deploy-7:acme/api"
        ]
    );
    assert_eq!(values(d, "status"), ["success", "cancelled"]);
    assert_eq!(strings(d, "ref"), [Some("main".to_owned()), None]);
    assert_eq!(
        times(d, "finished_at"),
        [
            Some(micros("2025-03-04T09:30:00Z")),
            Some(micros("2025-03-04T09:20:00Z"))
        ]
    );
    assert_eq!(
        times(d, "started_at"),
        [
            Some(micros("2025-03-04T09:05:00Z")),
            Some(micros("2025-03-04T09:10:00Z"))
        ]
    );
    assert_eq!(values(d, "url"), ["https://ci/7", "https://ci/7"]);
    assert_eq!(flags(d, "commits_listed"), [false, false]);
    // One deployment, not one per repo: both rows carry its id as their group.
    assert_eq!(
        values(d, "deployment_group"),
        ["devlake:deployment:deploy-7", "devlake:deployment:deploy-7"]
    );
    assert_eq!(
        links(&batches),
        pairs(&[
            ("devlake:deployment:deploy-7:acme/shop", "acme/shop:s1"),
            ("devlake:deployment:deploy-7:acme/api", "acme/api:s2")
        ])
    );

    // Older snake_case `deployment_commits` with one commit: the deployment keeps its id.
    let batches = body(
        r#"{"pipeline_id":"p1","start_time":"2025-03-04T09:00:00Z","end_time":"2025-03-04T09:10:00Z",
            "deployment_commits":[{"commit_sha":"c9","repo_url":"https://github.com/acme/web"}]}"#,
    );
    assert_eq!(
        values(&batches.deployments, "deployment_id"),
        ["devlake:deployment:p1"]
    );
    assert_eq!(values(&batches.deployments, "repo"), ["acme/web"]);
    assert_eq!(strings(&batches.deployments, "deployment_group"), [None]);

    // Several commits and no id: each row's id is derived from its commit, the group's is the
    // first row's, so re-posting the payload gives the same group.
    let payload = r#"{"end_time":"2025-03-04T09:10:00Z","deployment_commits":[
            {"commit_sha":"c1","repo_url":"https://github.com/acme/web"},
            {"commit_sha":"c2","repo_url":"https://github.com/acme/api"}]}"#;
    let batches = body(payload);
    let d = &batches.deployments;
    assert_eq!(
        values(d, "deployment_id"),
        [
            "devlake:deployment:acme/web:c1:2025-03-04T09:10:00Z",
            "devlake:deployment:acme/api:c2:2025-03-04T09:10:00Z"
        ]
    );
    assert_eq!(
        values(d, "deployment_group"),
        [
            "devlake:deployment:acme/web:c1:2025-03-04T09:10:00Z",
            "devlake:deployment:acme/web:c1:2025-03-04T09:10:00Z"
        ]
    );
    assert_eq!(body(payload).deployments, batches.deployments);
}

#[test]
fn devlake_issues_become_incidents() {
    let batches = body(
        r#"[{"issueKey":"DLK-1","title":"checkout down","type":"INCIDENT","status":"DONE",
             "createdDate":"2025-03-04T10:00:00+00:00","resolutionDate":"2025-03-04T10:45:00+00:00",
             "url":"https://issues/DLK-1","severity":"HIGH","component":"shop"},
            {"issueKey":"DLK-2","title":"still open","type":"incident","status":"IN_PROGRESS",
             "createdDate":"2025-03-04T11:00:00Z","resolutionDate":"2025-03-04T12:00:00Z","priority":"P1"},
            {"issueKey":"DLK-3","title":"a bug","type":"BUG","status":"TODO","createdDate":"2025-03-04T11:00:00Z"},
            {"issue_key":"DLK-4","title":"old spelling","type":"INCIDENT","status":"TODO",
             "created_date":"2025-03-04T13:00:00Z","service":"api","components":["ignored"]}]"#,
    );
    let i = &batches.incidents;
    assert_eq!(
        values(i, "incident_id"),
        [
            "devlake:incident:DLK-1",
            "devlake:incident:DLK-2",
            "devlake:incident:DLK-4"
        ]
    );
    assert_eq!(
        strings(i, "service"),
        [Some("shop".to_owned()), None, Some("api".to_owned())]
    );
    assert_eq!(
        strings(i, "severity"),
        [Some("HIGH".to_owned()), Some("P1".to_owned()), None]
    );
    assert_eq!(
        times(i, "started_at")[0],
        Some(micros("2025-03-04T10:00:00Z"))
    );
    // Resolved only once DONE, whatever resolutionDate says before that.
    assert_eq!(
        times(i, "resolved_at"),
        [Some(micros("2025-03-04T10:45:00Z")), None, None]
    );
    assert_eq!(batches.deployments.num_rows(), 0);
}

#[test]
fn later_records_replace_earlier_ones_across_files() {
    let first = r#"{"type":"deployment","id":1,"repo":"r","environment":"production","commit_sha":"a","finished_at":"2025-03-04T10:00:00Z","status":"failure"}
{"type":"incident","id":1,"service":"s","started_at":"2025-03-04T10:00:00Z"}
"#;
    let second = r#"{"type":"deployment","id":1,"repo":"r","environment":"production","commit_sha":"b","finished_at":"2025-03-04T11:00:00Z","status":"success","changes":[{"sha":"b","committed_at":"2025-03-04T09:00:00Z"}]}
{"type":"incident","id":1,"service":"s","started_at":"2025-03-04T10:00:00Z","resolved_at":"2025-03-04T12:00:00Z"}
"#;
    let batches = Files::new()
        .with("a.ndjson", first)
        .with("b.jsonl", second)
        .read()
        .unwrap();
    assert_eq!(values(&batches.deployments, "commit_sha"), ["b"]);
    assert_eq!(values(&batches.deployments, "status"), ["success"]);
    assert_eq!(flags(&batches.deployments, "commits_listed"), [true]);
    // The replaced record's head-commit link goes with it; its minimal change row stays (a real commit).
    assert_eq!(links(&batches), pairs(&[("events:deployment:1", "r:b")]));
    assert_eq!(values(&batches.changes, "change_id"), ["r:a", "r:b"]);
    assert_eq!(batches.incidents.num_rows(), 1);
    assert_eq!(
        times(&batches.incidents, "resolved_at"),
        [Some(micros("2025-03-04T12:00:00Z"))]
    );
}

#[test]
fn changes_merge_first_non_null_wins() {
    let batches = body(
        r#"{"type":"change","repo":"r","sha":"a","committed_at":"2025-03-04T09:00:00Z","pr_number":1}
{"type":"deployment","id":1,"repo":"r","environment":"production","commit_sha":"a","finished_at":"2025-03-04T10:00:00Z","status":"success","changes":[{"sha":"a","committed_at":"2025-03-04T08:00:00Z","pr_number":2,"service":"shop"}]}
{"type":"deployment","id":2,"repo":"r","environment":"staging","commit_sha":"a","finished_at":"2025-03-04T10:00:00Z","status":"success","changes":[{"sha":"a","committed_at":"2025-03-04T08:00:00Z","pr_opened_at":"2025-03-04T07:00:00Z"}]}
"#,
    );
    let c = &batches.changes;
    assert_eq!(values(c, "change_id"), ["r:a"]);
    assert_eq!(
        times(c, "committed_at"),
        [Some(micros("2025-03-04T09:00:00Z"))]
    ); // first wins
    let pr: &Int64Array = c.column_by_name("pr_number").unwrap().as_primitive();
    assert_eq!(pr.value(0), 1);
    assert_eq!(strings(c, "service"), [Some("shop".to_owned())]); // null filled by a later record
    assert_eq!(
        times(c, "pr_opened_at"),
        [Some(micros("2025-03-04T07:00:00Z"))]
    );
    assert_eq!(
        links(&batches),
        pairs(&[
            ("events:deployment:1", "r:a"),
            ("events:deployment:2", "r:a")
        ])
    );
}

#[test]
fn commits_listed_and_head_only_deployments() {
    let batches = body(
        r#"{"type":"change","repo":"r","sha":"full","committed_at":"2025-03-04T09:00:00Z","pr_number":5}
{"type":"deployment","id":"head-only","repo":"r","environment":"production","commit_sha":"full","finished_at":"2025-03-04T10:00:00Z","status":"success"}
{"type":"deployment","id":"empty-list","repo":"r","environment":"production","commit_sha":"x","finished_at":"2025-03-04T10:00:00Z","status":"success","changes":[]}
{"type":"deployment","id":"no-repo","service":"shop","environment":"production","commit_sha":"y","finished_at":"2025-03-04T10:00:00Z","status":"success"}
"#,
    );
    let d = &batches.deployments;
    assert_eq!(flags(d, "commits_listed"), [false, true, false]);
    // head-only ships its head commit; an empty list ships nothing; without a repo the head
    // commit has no `repo:sha` key, so no row.
    assert_eq!(
        links(&batches),
        pairs(&[("events:deployment:head-only", "r:full")])
    );
    // The fuller change row is kept, not replaced by the minimal head row.
    assert_eq!(values(&batches.changes, "change_id"), ["r:full"]);
    let pr: &Int64Array = batches
        .changes
        .column_by_name("pr_number")
        .unwrap()
        .as_primitive();
    assert_eq!(pr.value(0), 5);
    assert_eq!(
        times(&batches.changes, "committed_at"),
        [Some(micros("2025-03-04T09:00:00Z"))]
    );
}

#[test]
fn status_synonyms_and_unknown_status() {
    let record = |status: &str| {
        format!(
            r#"{{"type":"deployment","id":1,"repo":"r","environment":"prod","commit_sha":"a","finished_at":"2025-03-04T10:00:00Z","status":"{status}"}}"#
        )
    };
    for (given, expected) in [
        ("SUCCESS", "success"),
        ("Succeeded", "success"),
        ("failure", "failure"),
        ("Failed", "failure"),
        ("ERROR", "failure"),
        ("cancelled", "cancelled"),
        ("Canceled", "cancelled"),
    ] {
        assert_eq!(
            values(&body(&record(given)).deployments, "status"),
            [expected],
            "{given}"
        );
    }
    assert_eq!(
        body_error(&record("done")),
        "webhook:1: column `status`: expected success, failure or cancelled (or succeeded, failed, error, canceled), found \"done\""
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let good = r#"{"type":"incident","id":1,"service":"s","started_at":"2025-03-04T10:00:00Z"}"#;
    let cases: [(&str, String, &str); 8] = [
        (
            "events.ndjson",
            format!(
                "{good}\n{good}\n{}\n",
                r#"{"type":"deployment","id":1,"repo":"r","environment":"p","commit_sha":"a","finished_at":"yesterday","status":"success"}"#
            ),
            "events.ndjson:3: column `finished_at`: expected an RFC 3339 timestamp, found \"yesterday\"",
        ),
        (
            "events.ndjson",
            r#"{"type":"deployment","id":1,"repo":"r","environment":"p","finished_at":"2025-03-04T10:00:00Z","status":"success"}"#
                .to_owned(),
            "events.ndjson:1: column `commit_sha`: required for a deployment, but missing",
        ),
        (
            "events.ndjson",
            format!("{good}\n{{\"type\": \"incident\", \"id\": 1,,}}\n"),
            "events.ndjson:2: invalid JSON at column 30: key must be a string",
        ),
        (
            "events.ndjson",
            r#"{"type":"deploy","id":1}"#.to_owned(),
            "events.ndjson:1: column `type`: expected deployment, change or incident, found \"deploy\"",
        ),
        (
            "events.json",
            format!(
                "[{good},\n{}]",
                r#"{"type":"deployment","id":1,"repo":"r","environment":"p","commit_sha":"a","finished_at":"2025-03-04T10:00:00Z","status":"success","changes":[{"sha":"a","committed_at":"2025-03-04T10:00:00Z"},{"committed_at":"2025-03-04T10:00:00Z"}]}"#
            ),
            "events.json: column `[1].changes[1].sha`: required for a change, but missing",
        ),
        (
            "events.json",
            r#"{"incidents":[{"id":1,"service":"s","started_at":"2025-03-04T10:00:00Z","resolved_at":17}]}"#.to_owned(),
            "events.json: column `incidents[0].resolved_at`: expected an RFC 3339 timestamp, found 17",
        ),
        (
            "events.ndjson",
            r#"{"id":1,"service":"s"}"#.to_owned(),
            "events.ndjson:1: column `type`: required (deployment, change or incident), but missing; the record is not a DevLake payload either",
        ),
        (
            "events.ndjson",
            r#"{"type":"deployment","id":1,"environment":"p","commit_sha":"a","finished_at":"2025-03-04T10:00:00Z","status":"success"}"#
                .to_owned(),
            "events.ndjson:1: column `repo`: required for a deployment without `service`, but missing",
        ),
    ];
    for (name, text, expected) in cases {
        assert_eq!(Files::new().with(name, &text).error(), expected);
    }
}

#[test]
fn csv_errors_name_the_record_line() {
    let cases = [
        (
            "deployment_id,repo,environment,commit_sha,finished_at,status\n\
             1,r,production,a,2025-03-04T10:00:00Z,success\n\
             2,r,production,b,2025-03-04T10:00:00Z,shipped\n",
            "d.csv:3: column `status`: expected success, failure or cancelled (or succeeded, failed, error, canceled), found \"shipped\"",
        ),
        (
            "deployment_id,repo,environment,commit_sha,finished_at,status\n\
             1,r,production,2025-03-04T10:00:00Z,success\n",
            "d.csv:2: expected 6 fields as in the header, found 5",
        ),
        (
            "incident_id,service,started_at\n1,s,\n",
            "d.csv:2: column `started_at`: required for an incident, but missing",
        ),
        (
            "when,what\n1,2\n",
            "d.csv:1: cannot tell which records this CSV holds: expected a header with a `type` column, or `incident_id` (incidents), `deployment_id` and `environment` (deployments), or `sha` (changes)",
        ),
        (
            "repo,sha,committed_at,pr_number\nr,a,2025-03-04T10:00:00Z,twelve\n",
            "d.csv:2: column `pr_number`: expected an integer, found \"twelve\"",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Files::new().with("d.csv", text).error(), expected);
    }
}

#[test]
fn devlake_errors_name_the_field() {
    assert_eq!(
        body_error(
            r#"{"id":"d","startedDate":"2025-03-04T10:00:00Z","deploymentCommits":[{"commitSha":"a","repoUrl":"u"},{"repoUrl":"u"}]}"#
        ),
        "webhook:1: column `deploymentCommits[1].commitSha`: required for a DevLake deployment commit, but missing (also read as `commit_sha`)"
    );
    assert_eq!(
        body_error(r#"{"commit_sha":"a","repo_url":"u","result":"MANUAL"}"#),
        "webhook:1: column `result`: expected SUCCESS, FAILURE or ABORT, found \"MANUAL\" (a deployment waiting on a manual step has not finished; post it again once it has a result)"
    );
    assert_eq!(
        body_error(r#"{"commit_sha":"a","repo_url":"u","result":"OK"}"#),
        "webhook:1: column `result`: expected SUCCESS, FAILURE or ABORT, found \"OK\""
    );
    assert_eq!(
        body_error(r#"{"id":"d","deploymentCommits":[]}"#),
        "webhook:1: column `deploymentCommits`: expected at least one deployment commit, found an empty array"
    );
    assert_eq!(
        body_error(r#"{"issueKey":"K","type":"INCIDENT","status":"TODO"}"#),
        "webhook:1: column `createdDate`: required for a DevLake issue, but missing (also read as `created_date`)"
    );
    assert_eq!(
        body_error(
            r#"{"issueKey":"K","type":"INCIDENT","status":"CLOSED","createdDate":"2025-03-04T10:00:00Z"}"#
        ),
        "webhook:1: column `status`: expected TODO, IN_PROGRESS or DONE, found \"CLOSED\""
    );
}

#[test]
fn body_shape_errors() {
    assert_eq!(
        body_error("  \n"),
        "webhook: expected JSON, found an empty body"
    );
    assert_eq!(
        body_error("42"),
        "webhook:1: expected a JSON object or array, found 42"
    );
    assert_eq!(
        body_error("[1]"),
        "webhook: column `[0]`: expected a JSON object, found 1"
    );
    assert_eq!(
        body_error("{\"a\":\n tru}"),
        "webhook:2: invalid JSON at column 5: expected ident"
    );
    assert_eq!(
        body_error(r#"{"id": 1, "environment": "production", "changes": []}"#),
        "webhook:1: column `type`: required (deployment, change or incident), but missing; the record is not a DevLake payload either"
    );
    assert_eq!(
        body_error(r#"{"deployments": {"id": 1}}"#),
        "webhook: column `deployments`: expected an array of records, found an object"
    );
}

#[test]
fn files_of_other_names_are_sniffed_and_progress_is_reported() {
    struct Total(u64);
    impl Progress for Total {
        fn bytes_read(&mut self, total: u64) {
            self.0 = total;
        }
    }
    let files = Files::new().with("events.txt", NDJSON).with(
        "incidents",
        "incident_id,service,started_at\n1,s,2025-03-04T10:00:00Z\n",
    );
    let mut total = Total(0);
    let batches = read_event_files(&files.paths, now(), &mut total).unwrap();
    assert_eq!(batches.deployments.num_rows(), 1);
    assert_eq!(batches.incidents.num_rows(), 2);
    assert_eq!(
        total.0,
        "incident_id,service,started_at\n1,s,2025-03-04T10:00:00Z\n".len() as u64
    );
    assert_eq!(
        read_event_files(
            &[files.dir.path().join("absent.ndjson")],
            now(),
            &mut NoProgress
        )
        .unwrap_err()
        .to_string()
        .replace(&format!("{}/", files.dir.path().display()), ""),
        "absent.ndjson: No such file or directory (os error 2)"
    );
}
