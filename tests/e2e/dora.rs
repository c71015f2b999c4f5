//! `doracost dora` and the DORA views over the checked-in sample organisation, against the
//! generator's ground truth (`truth.json`) and counts taken straight from the event files.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{csv_rows, ok_with, sample_lake, small_sample, sql_rows};

/// A lake holding the small sample's events, and the arguments that point at it.
fn lake() -> (tempfile::TempDir, Vec<String>) {
    sample_lake("", &[("events", "events")])
}

/// Successful production deployments per service, counted from the event files themselves.
fn deployments_per_service_from_files() -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let events = std::fs::read_to_string(small_sample().join("events/deployments.ndjson")).unwrap();
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        let d: Value = serde_json::from_str(line).unwrap();
        if d["environment"] == "production" && d["status"] == "success" {
            *counts
                .entry(d["service"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    // DevLake payloads name a repo URL, which the config maps to its service.
    let devlake: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(small_sample().join("events/devlake-deployments.json")).unwrap(),
    )
    .unwrap();
    for d in devlake {
        if d["environment"] == "PRODUCTION" && d["result"] == "SUCCESS" {
            assert_eq!(d["repo_url"], "https://github.com/acme/inventory");
            *counts.entry("inventory".to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn the_views_agree_with_the_sample_organisation() {
    let (dir, args) = lake();
    let dir = dir.path();
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(small_sample().join("truth.json")).unwrap())
            .unwrap();
    let count = |v: &Value| v.as_u64().unwrap().to_string();

    // Every successful production deployment once (each names one service), and per service the
    // months add up to what the files hold.
    assert_eq!(
        sql_rows(dir, &args, "SELECT count(*) FROM dora_deployments"),
        [[count(&truth["deployments"]["production_successful"])]]
    );
    let per_service: BTreeMap<String, u64> = sql_rows(
        dir,
        &args,
        "SELECT name, sum(deployments) FROM dora_monthly WHERE scope = 'service' GROUP BY name",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .filter(|(_, n)| *n > 0)
    .collect();
    assert_eq!(per_service, deployments_per_service_from_files());
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT sum(deployments) FROM dora_monthly WHERE scope = 'all'"
        ),
        [[count(&truth["deployments"]["production_successful"])]]
    );

    // Rollbacks: 29 flagged in the event files, and one DevLake redeploy of an earlier sha, which
    // carries no flag and is found by its sha.
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT count(*) FROM dora_deployments WHERE is_rollback"
        ),
        [[count(&truth["deployments"]["rollbacks"])]]
    );
    // Incidents: every one listed; those naming a deployment or a sha are attributed by the link.
    let i = &truth["incidents"];
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT count(*), sum(CASE WHEN is_open THEN 1 ELSE 0 END) FROM dora_incidents"
        ),
        [[count(&i["total"]), count(&i["open"])]]
    );
    let linked = i["caused_by_deployment"].as_u64().unwrap() + i["caused_by_sha"].as_u64().unwrap();
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT count(*) FROM dora_incidents WHERE attributed_by = 'incident'"
        ),
        [[linked.to_string()]]
    );
    // Open incidents are shown open in the month they began, never as a zero duration.
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT sum(open_incidents) FROM dora_monthly WHERE scope = 'all'"
        ),
        [[count(&i["open"])]]
    );
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT count(*) FROM dora_incidents WHERE is_open AND restore_hours IS NULL"
        ),
        [[count(&i["open"])]]
    );
    // A failure is counted once per deployment, and each failed deployment has one recovery.
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT (SELECT count(*) FROM dora_deployments WHERE is_failed) = (SELECT count(*) FROM dora_recoveries)"
        ),
        [["true"]]
    );
    // The grid: 18 months × (12 services + 3 teams + everything).
    assert_eq!(
        sql_rows(dir, &args, "SELECT count(*) FROM dora_monthly"),
        [[(18 * 16).to_string()]]
    );
}

#[test]
fn dora_prints_for_people_and_machines() {
    let (dir, args) = lake();
    let dir = dir.path();

    // For machines: one service over the whole sample period, every month, as JSON.
    let json = ok_with(
        dir,
        &args,
        &[
            "dora",
            "--service",
            "checkout",
            "--from",
            "2025-05-01",
            "--to",
            "2026-10-31",
            "--format",
            "json",
        ],
    );
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 18, "{json}");
    assert!(
        rows.iter()
            .all(|r| r["name"] == "checkout" && r["scope"] == "service")
    );
    assert_eq!(rows[0]["period_start"], "2025-05-01");
    let deployments: u64 = rows
        .iter()
        .map(|r| r["deployments"].as_u64().unwrap())
        .sum();
    assert_eq!(
        deployments,
        deployments_per_service_from_files()["checkout"]
    );

    // For people: the latest month, every service and the total, with levels.
    let table = ok_with(dir, &args, &["dora"]);
    assert!(table.contains("freq_level"), "{table}");
    assert!(table.contains("| 2026-10-01 | checkout"), "{table}");
    assert!(table.contains("| all "), "{table}");

    // A team by ISO week, as CSV: weeks start on Mondays.
    let csv = ok_with(
        dir,
        &args,
        &[
            "dora",
            "--team",
            "payments",
            "--period",
            "week",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--format",
            "csv",
        ],
    );
    let rows = csv_rows(&csv);
    let start = rows[0].iter().position(|h| h == "period_start").unwrap();
    let weeks: Vec<&str> = rows[1..].iter().map(|r| r[start].as_str()).collect();
    assert_eq!(
        weeks,
        [
            "2026-09-28",
            "2026-10-05",
            "2026-10-12",
            "2026-10-19",
            "2026-10-26"
        ]
    );
}

#[test]
fn the_sql_repl_times_statements_and_the_memory_limit_holds() {
    let (dir, args) = lake();
    // `\timing` as in psql: a time after each statement; quantile_cont is there for analysts
    // (n = 4: h = 0.9 · 3 = 2.7 → 3 + 0.7 · (4 − 3) = 3.7).
    let mut repl = crate::support::doracost()
        .current_dir(dir.path())
        .args(&args)
        .args(["--format", "csv", "sql"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = repl.stdin.take().unwrap();
        writeln!(stdin, "\\timing").unwrap();
        writeln!(
            stdin,
            "SELECT quantile_cont(x, 0.9) AS p90 FROM (VALUES (1.0), (2.0), (4.0), (3.0)) t(x);"
        )
        .unwrap();
        writeln!(
            stdin,
            "SELECT count(*) AS months FROM dora_monthly WHERE scope = 'all';"
        )
        .unwrap();
    }
    let out = repl.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("p90\n3.7\n"), "{stdout}");
    assert!(stdout.contains("months\n18\n"), "{stdout}");
    assert!(stderr.contains("Timing is on."), "{stderr}");
    assert_eq!(stderr.matches("Time: ").count(), 2, "{stderr}");

    // A session memory limit too small for the views: a clear error and a failed exit, not a kill.
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["sql", "SELECT * FROM dora_changes ORDER BY lead_time_hours"]);
    let out = crate::support::doracost()
        .current_dir(dir.path())
        .env("DORACOST_MEMORY_LIMIT", "64K")
        .args(&all)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Resources exhausted") || stderr.contains("Failed to allocate"),
        "{stderr}"
    );
}
