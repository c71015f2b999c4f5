//! The lake is open (DESIGN §2, issue 15 item 8): polars and deltalake from PyPI, with no
//! doracost code, read the small sample organisation's lake (`polars/read_lake.py`, the
//! recipe README shows) and find the row count of every canonical table and the billed cost
//! per provider, to the last decimal, that `doracost sql` finds. Also when an ingest was killed
//! after committing a table but before the lake's commit log named it: the versions the log
//! names give doracost's answers, the latest Delta versions do not.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{doracost, sample_lake, sql_rows, units, with_args};

/// `read_lake.py` over `lake`: its JSON answer.
fn read_with_polars(lake: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/polars/read_lake.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(lake)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "read_lake.py failed (CI installs polars and deltalake: .ci/run):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("read_lake.py prints JSON")
}

/// Table → count in one of the script's answers.
fn counts(answer: &Value, key: &str) -> BTreeMap<String, u64> {
    answer[key]
        .as_object()
        .unwrap_or_else(|| panic!("no {key} in {answer}"))
        .iter()
        .map(|(table, n)| (table.clone(), n.as_u64().expect("a count")))
        .collect()
}

#[test]
fn polars_reads_the_lake_as_doracost_does_at_the_versions_of_the_commit_log() {
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let lake = dir.path().join("lake");

    // An ingest killed after its `deployments` commit and before the log entry: a new
    // deployment that the lake's latest Delta version of `deployments` holds and no doracost
    // reader sees.
    let extra = dir.path().join("one-more.ndjson");
    std::fs::write(
        &extra,
        r#"{"type":"deployment","id":"polars-1","service":"checkout","repo":"acme/checkout","environment":"production","ref":"main","commit_sha":"0123456789abcdef0123456789abcdef01234567","started_at":"2026-11-30T10:00:00Z","finished_at":"2026-11-30T10:05:00Z","status":"success","is_rollback":false}"#,
    )
    .unwrap();
    let mut ingest = doracost()
        .current_dir(dir.path())
        .args(with_args(
            &args,
            &[
                "--pause-after",
                "deployments",
                "ingest",
                "events",
                extra.to_str().unwrap(),
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stderr = ingest.stderr.take().unwrap();
    let (paused, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("doracost: paused after deployments") {
                let _ = paused.send(());
            }
        }
    });
    wait.recv_timeout(Duration::from_secs(180))
        .expect("the ingest paused after committing deployments");
    ingest.kill().unwrap();
    ingest.wait().unwrap();

    // What doracost sees.
    let tables = [
        "deployments",
        "changes",
        "deployment_changes",
        "incidents",
        "costs",
    ];
    let doracost_counts: BTreeMap<String, u64> = tables
        .iter()
        .map(|t| {
            let rows = sql_rows(dir.path(), &args, &format!("SELECT count(*) FROM {t}"));
            (t.to_string(), rows[0][0].parse().unwrap())
        })
        .collect();
    let doracost_billed: BTreeMap<String, i128> = sql_rows(
        dir.path(),
        &args,
        "SELECT provider, sum(billed_cost) FROM costs GROUP BY provider ORDER BY provider",
    )
    .into_iter()
    .map(|row| (row[0].clone(), units(&row[1])))
    .collect();
    assert!(doracost_billed.len() >= 2, "{doracost_billed:?}");

    let answer = read_with_polars(&lake);
    let rows = counts(&answer, "rows");
    for table in tables {
        assert_eq!(
            rows.get(table),
            doracost_counts.get(table),
            "{table}: polars at the logged version against doracost"
        );
    }
    let billed: BTreeMap<String, i128> = answer["billed_cost"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(provider, total)| (provider.clone(), units(total.as_str().unwrap())))
        .collect();
    assert_eq!(billed, doracost_billed, "billed cost per provider, exact");

    // The latest Delta version holds the killed ingest's row: reading it instead of the logged
    // one would not be what doracost reports.
    let latest = counts(&answer, "latest_rows");
    assert_eq!(latest["deployments"], doracost_counts["deployments"] + 1);
    assert_eq!(latest["costs"], doracost_counts["costs"]);
}
