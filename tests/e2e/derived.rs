//! Derived tables (`_derived/` in the lake): ingests write them, a session reads one only while its
//! stamp matches the session's lake and config, and no answer depends on whether it was read
//! (every check below compares with `DORACOST_DERIVED=off`, which computes every view live).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{doracost, ok_with, sample_lake, sql_rows, succeeded, with_args};

/// Queries over every persisted view and the views built on them, each in a total order.
const CHECKS: &[&str] = &[
    "SELECT * FROM dora_periods ORDER BY period, scope, name, period_start",
    "SELECT * FROM dora_targets ORDER BY period, scope, name, period_start, metric",
    "SELECT deployment_id, service, team, day, is_rollback, is_failed, failure_reason, \
     failure_signals, is_rework, rework_reason, changes_shipped, seq \
     FROM dora_deployments ORDER BY deployment_id, service",
    "SELECT change_id, service, deployment_id, deployed_at, lead_time_hours, negative_lead_time, \
     coding_hours, pickup_hours, review_hours, deploy_hours FROM dora_changes \
     ORDER BY change_id, service",
    "SELECT * FROM dora_recoveries ORDER BY deployment_id, service",
    "SELECT * FROM dora_incidents ORDER BY incident_id",
    "SELECT * FROM cost_monthly ORDER BY month, service, provider, cloud_service, currency",
    "SELECT * FROM cost_reconciliation ORDER BY provider, month, currency",
    "SELECT * FROM service_scorecard ORDER BY service, month",
];

/// The CSV answers to [`CHECKS`], read with derived tables (`live` false) or without.
fn answers(dir: &Path, args: &[String], live: bool) -> Vec<String> {
    CHECKS
        .iter()
        .map(|query| {
            let all = with_args(args, &["sql", "--format", "csv", query]);
            let mut cmd = doracost();
            cmd.current_dir(dir).args(&all);
            if live {
                cmd.env("DORACOST_DERIVED", "off");
            } else {
                cmd.env_remove("DORACOST_DERIVED");
            }
            succeeded(&all, cmd.output().expect("the binary runs"))
        })
        .collect()
}

/// `derived_tables`: view → status.
fn statuses(dir: &Path, args: &[String]) -> BTreeMap<String, String> {
    sql_rows(dir, args, "SELECT name, status FROM derived_tables")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

const PERSISTED: [&str; 7] = [
    "cost_allocated",
    "cost_owned",
    "dora_changes",
    "dora_deployments",
    "dora_incidents",
    "dora_period_grid",
    "dora_recoveries",
];

fn all(status: &str) -> BTreeMap<String, String> {
    PERSISTED
        .iter()
        .map(|v| ((*v).to_owned(), status.to_owned()))
        .collect()
}

/// The DORA tables fresh, the two cost tables stale.
fn cost_tables_stale() -> BTreeMap<String, String> {
    let mut expected = all("fresh");
    for view in ["cost_owned", "cost_allocated"] {
        expected.insert(view.to_owned(), "stale".to_owned());
    }
    expected
}

fn assert_same(derived: &[String], live: &[String]) {
    for ((query, d), l) in CHECKS.iter().zip(derived).zip(live) {
        assert!(d.lines().count() > 1, "{query} returned no rows");
        assert_eq!(d, l, "{query}: derived and live answers differ");
    }
}

fn rewrite_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("doracost.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "the sample config has {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn ingests_write_derived_tables_that_answer_as_the_live_views() {
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let dir = dir.path();
    assert_eq!(statuses(dir, &args), all("fresh"));
    for view in PERSISTED {
        assert!(
            dir.join("lake/_derived")
                .join(view)
                .join("_delta_log")
                .is_dir(),
            "{view} is a Delta table under _derived/"
        );
    }
    assert_same(&answers(dir, &args, false), &answers(dir, &args, true));

    // Nothing changed since: a refresh writes nothing.
    let before = crate::support::fingerprint(&dir.join("lake"));
    let out = ok_with(dir, &args, &["refresh"]);
    assert!(out.contains("nothing to refresh"), "{out}");
    assert_eq!(crate::support::fingerprint(&dir.join("lake")), before);
}

#[test]
fn a_config_change_makes_them_stale_until_refreshed() {
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let dir = dir.path();
    let utc = answers(dir, &args, true);

    // Reporting in another time zone moves days and months: every persisted view has the time
    // zone in its SQL or reads one that has, so all are stale, and the answers follow the new
    // config.
    rewrite_config(
        dir,
        "time_zone = \"UTC\"",
        "time_zone = \"Pacific/Auckland\"",
    );
    assert_eq!(statuses(dir, &args), all("stale"));
    let live = answers(dir, &args, true);
    assert_ne!(live[0], utc[0], "dora_periods moved with the time zone");
    assert_same(&answers(dir, &args, false), &live);
    let all_args = with_args(&args, &["dora", "--period", "month"]);
    let out = doracost()
        .current_dir(dir)
        .args(&all_args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("derived tables computed from another config"),
        "{stderr}"
    );

    // `refresh` recomputes all six; then they are read again, with the same answers.
    let json = ok_with(dir, &args, &["--format", "json", "refresh"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let refreshed: Vec<&str> = report["derived_tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["refreshed"] == true && t["was"] == "stale")
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(refreshed.len(), PERSISTED.len(), "{json}");
    assert_eq!(statuses(dir, &args), all("fresh"));
    assert_same(&answers(dir, &args, false), &live);
}

#[test]
fn a_target_change_leaves_them_fresh() {
    // Targets are read by `dora_targets` only, above the persisted views.
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let dir = dir.path();
    rewrite_config(dir, "lead_time_hours = 1.0", "lead_time_hours = 2.5");
    assert_eq!(statuses(dir, &args), all("fresh"));
    assert_eq!(
        sql_rows(
            dir,
            &args,
            "SELECT DISTINCT target FROM dora_targets WHERE metric = 'lead_time_hours' AND scope = 'all'"
        ),
        [["2.5"]]
    );
}

#[test]
fn an_ingest_without_refresh_makes_stale_only_what_reads_its_tables() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let dir = dir.path();
    let bills = crate::support::small_sample().join("costs");
    let out = ok_with(
        dir,
        &args,
        &["ingest", "focus", "--no-refresh", bills.to_str().unwrap()],
    );
    assert!(!out.contains("refreshed"), "{out}");
    // The bill is read by `cost_owned` (and `cost_allocated` above it) alone; the DORA tables do
    // not read `costs`.
    assert_eq!(statuses(dir, &args), cost_tables_stale());
    let live = answers(dir, &args, true);
    assert_same(&answers(dir, &args, false), &live);

    let out = ok_with(dir, &args, &["refresh"]);
    assert!(out.contains("refreshed 2 derived table(s)"), "{out}");
    assert!(
        out.contains("cost_owned") && out.contains("cost_allocated"),
        "{out}"
    );
    assert_eq!(statuses(dir, &args), all("fresh"));
    assert_same(&answers(dir, &args, false), &live);
}

#[test]
fn a_cost_rule_change_stales_the_cost_tables_only() {
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let dir = dir.path();
    let before = answers(dir, &args, true);
    // Split the platform spend over the services: a new cost rule.
    rewrite_config(
        dir,
        "# [[shared_costs]]\n# name = \"platform\"\n# tags = { shared = \"platform\" }\n",
        "[[shared_costs]]\nname = \"platform\"\ntags = { shared = \"platform\" }\n",
    );
    assert_eq!(statuses(dir, &args), cost_tables_stale());
    let live = answers(dir, &args, true);
    let monthly = CHECKS
        .iter()
        .position(|q| q.contains("FROM cost_monthly"))
        .unwrap();
    assert_ne!(live[monthly], before[monthly], "the split moved cost");
    assert_same(&answers(dir, &args, false), &live);
}

#[test]
fn a_table_deleted_and_created_again_is_not_mistaken_for_the_old_one() {
    // `incidents` deleted by hand, then three incidents ingested: the new table is created
    // (version 0) and appended to (version 1), the very versions the old one had after the first
    // ingest. Its new Delta table id tells them apart.
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let dir = dir.path();
    let incident_count = |dir: &Path| sql_rows(dir, &args, "SELECT count(*) FROM dora_incidents");
    assert_ne!(incident_count(dir), [["3"]]);
    let incidents = crate::support::small_sample().join("events/incidents.ndjson");
    let three: Vec<String> = std::fs::read_to_string(incidents)
        .unwrap()
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("three.ndjson"), three.concat()).unwrap();
    std::fs::remove_dir_all(dir.join("lake/incidents")).unwrap();
    ok_with(
        dir,
        &args,
        &["ingest", "events", "--no-refresh", "three.ndjson"],
    );
    assert_eq!(
        sql_rows(dir, &args, "SELECT count(*) FROM incidents"),
        [["3"]]
    );
    let statuses = statuses(dir, &args);
    for view in ["dora_incidents", "dora_recoveries", "dora_deployments"] {
        assert_eq!(statuses[view], "stale", "{view}: {statuses:?}");
    }
    assert_eq!(incident_count(dir), [["3"]]);
    assert_same(&answers(dir, &args, false), &answers(dir, &args, true));
}
