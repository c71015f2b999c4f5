//! `doracost ingest cost-explorer` against moto's Cost Explorer server on loopback: the real SDK
//! signs and sends GetCostAndUsage over HTTP; moto answers with the sample organisation's pages,
//! injected through `/moto-api/static/ce/cost-and-usage-results` (moto answers each new request
//! body with the next injected result, so pages are injected in the order they are asked for).

use std::collections::BTreeMap;

use chrono::Datelike;
use std::path::Path;
use std::process::Output;

use sample_data::calendar::days_from_civil;
use sample_data::org::Org;
use sample_data::writers::cost_explorer::{
    CostExplorerGroup, CostExplorerOptions, daily_groups, pages,
};

use crate::canned_http::CannedEndpoint;
use crate::support::{
    Moto, csv_rows, doracost, fingerprint, http_json, sql_rows, start_moto, succeeded,
};

/// The generator's money is in units of 1e-10; the lake's decimals in units of 1e-12.
const TO_LAKE_UNITS: i128 = 100;

fn options(from: (i64, i64, i64), to_exclusive: (i64, i64, i64)) -> CostExplorerOptions {
    CostExplorerOptions {
        from_day: days_from_civil(from.0, from.1, from.2),
        to_day_exclusive: days_from_civil(to_exclusive.0, to_exclusive.1, to_exclusive.2),
        // The last three days of October 2026 are still estimated.
        estimated_from_day: days_from_civil(2026, 10, 29),
        groups_per_page: 250,
        restate: None,
        linked_account: None,
    }
}

fn groups(options: &CostExplorerOptions) -> Vec<CostExplorerGroup> {
    let org = Org::plan(sample_data::Scale::Small);
    daily_groups(&org, sample_data::DEFAULT_SEED, options)
}

/// Forgets earlier results, then queues `pages` for the next requests.
fn inject(moto: &Moto, pages: &[serde_json::Value]) {
    let (status, body) = http_json(moto.port, "POST", "/moto-api/reset", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let results = serde_json::json!({ "results": pages }).to_string();
    let (status, body) = http_json(
        moto.port,
        "POST",
        "/moto-api/static/ce/cost-and-usage-results",
        &results,
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
}

fn run(dir: &Path, args: &[&str]) -> Output {
    doracost()
        .env("AWS_ACCESS_KEY_ID", "AKIDDORACOSTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .current_dir(dir)
        .args(["--config", "doracost.toml", "--data-dir", "data"])
        .args(args)
        .output()
        .expect("the binary runs")
}

fn setup(moto: &Moto) -> tempfile::TempDir {
    setup_endpoint(moto.port, 2)
}

/// A folder whose `doracost.toml` points Cost Explorer at 127.0.0.1:`port`.
fn setup_endpoint(port: u16, max_attempts: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("doracost.toml"),
        format!(
            "[sources.cost_explorer]\nbilling_account = \"111122223333\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nmax_attempts = {max_attempts}\n"
        ),
    )
    .unwrap();
    dir
}

/// (day, service tag or "", cloud service) → (billed, effective, estimated), from the lake.
type Lines = BTreeMap<(String, String, String), (i128, i128, bool)>;

fn lake_lines(dir: &Path) -> (Lines, usize) {
    let args = [
        "sql",
        "--format",
        "csv",
        "SELECT CAST(CAST(charge_period_start AS DATE) AS VARCHAR) AS day, \
                coalesce(tags['service'], '') AS tag, cloud_service, \
                CAST(sum(billed_cost) AS VARCHAR) AS billed, \
                CAST(sum(effective_cost) AS VARCHAR) AS effective, \
                bool_or(is_estimated) AS estimated, count(*) AS n \
         FROM costs WHERE source = 'cost-explorer' \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ];
    let out = succeeded(&args, run(dir, &args));
    let rows = csv_rows(&out);
    assert_eq!(
        rows[0],
        [
            "day",
            "tag",
            "cloud_service",
            "billed",
            "effective",
            "estimated",
            "n"
        ]
    );
    let mut lines = BTreeMap::new();
    let mut count = 0;
    for r in &rows[1..] {
        count += r[6].parse::<usize>().unwrap();
        lines.insert(
            (r[0].clone(), r[1].clone(), r[2].clone()),
            (
                crate::support::units(&r[3]),
                crate::support::units(&r[4]),
                r[5] == "true",
            ),
        );
    }
    (lines, count)
}

fn truth_lines(groups: &[CostExplorerGroup]) -> Lines {
    groups
        .iter()
        .map(|g| {
            let (y, m, d) = sample_data::calendar::civil_from_days(g.day);
            (
                (
                    format!("{y:04}-{m:02}-{d:02}"),
                    g.service_tag.clone().unwrap_or_default(),
                    g.cloud_service.clone(),
                ),
                (
                    g.unblended * TO_LAKE_UNITS,
                    // NetAmortizedCost fills effective_cost by default.
                    g.amortized * TO_LAKE_UNITS,
                    g.estimated,
                ),
            )
        })
        .collect()
}

#[test]
fn cost_explorer_pages_from_moto_land_exactly_and_a_restated_window_replaces() {
    let moto = start_moto();
    let dir = setup(&moto);

    // September and October 2026 of the sample organisation, in several pages.
    let both = options((2026, 9, 1), (2026, 11, 1));
    let first = groups(&both);
    let first_pages = pages(&first, both.groups_per_page);
    assert!(first_pages.len() >= 3, "{} pages", first_pages.len());
    inject(&moto, &first_pages);
    let args = [
        "ingest",
        "cost-explorer",
        "--from",
        "2026-09-01",
        "--to",
        "2026-10-31",
    ];
    let out = succeeded(&args, run(dir.path(), &args));
    assert!(
        out.contains(&format!("ingested {} page(s)", first_pages.len())),
        "{out}"
    );
    assert!(out.contains("replacing 2 month slice(s)"), "{out}");

    let (lake, rows) = lake_lines(dir.path());
    assert_eq!(rows, first.len(), "one row per group of each day");
    assert_eq!(lake, truth_lines(&first));
    // Untagged (`service$`) spend is kept, as rows without a service tag.
    let untagged: i128 = first
        .iter()
        .filter(|g| g.service_tag.is_none())
        .map(|g| g.unblended * TO_LAKE_UNITS)
        .sum();
    assert!(untagged != 0);
    let rows = sql_rows(
        dir.path(),
        &[],
        "SELECT CAST(sum(billed_cost) AS VARCHAR) FROM costs WHERE tags IS NULL",
    );
    assert_eq!(crate::support::units(&rows[0][0]), untagged);
    // Estimated: exactly the groups of 29, 30 and 31 October.
    let estimated = lake.values().filter(|v| v.2).count();
    assert_eq!(
        estimated,
        first
            .iter()
            .filter(|g| g.day >= days_from_civil(2026, 10, 29))
            .count()
    );
    assert!(estimated > 0);

    // AWS restates 15 October by +1.2345678901; October alone is ingested again. October's slice
    // is replaced (not added to); September stays as it was.
    let mut october = options((2026, 10, 1), (2026, 11, 1));
    let restated_day = days_from_civil(2026, 10, 15);
    october.restate = Some((restated_day, 12_345_678_901));
    let restated = groups(&october);
    inject(&moto, &pages(&restated, october.groups_per_page));
    let args = [
        "ingest",
        "cost-explorer",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
    ];
    let out = succeeded(&args, run(dir.path(), &args));
    assert!(out.contains("replacing 1 month slice(s)"), "{out}");

    let september: Vec<CostExplorerGroup> = first
        .iter()
        .filter(|g| g.day < days_from_civil(2026, 10, 1))
        .cloned()
        .collect();
    let expected: Vec<CostExplorerGroup> = september.iter().chain(&restated).cloned().collect();
    let (lake, rows) = lake_lines(dir.path());
    assert_eq!(rows, first.len(), "same groups, not doubled");
    assert_eq!(lake, truth_lines(&expected));
    let total = |groups: &[CostExplorerGroup]| groups.iter().map(|g| g.unblended).sum::<i128>();
    // The whole bill moved by exactly the restatement: 1.2345678901 = 12,345,678,901 × 1e-10.
    assert_eq!(total(&expected) - total(&first), 12_345_678_901);
    let rows = sql_rows(
        dir.path(),
        &[],
        "SELECT CAST(sum(billed_cost) AS VARCHAR) FROM costs",
    );
    assert_eq!(
        crate::support::units(&rows[0][0]),
        total(&expected) * TO_LAKE_UNITS
    );
}

#[test]
fn a_malformed_amount_fails_naming_the_field_and_leaves_the_lake_alone() {
    let moto = start_moto();
    let dir = setup(&moto);
    let september = options((2026, 9, 1), (2026, 10, 1));
    let good = pages(&groups(&september), september.groups_per_page);
    inject(&moto, &good);
    let args = [
        "ingest",
        "cost-explorer",
        "--from",
        "2026-09-01",
        "--to",
        "2026-09-30",
    ];
    succeeded(&args, run(dir.path(), &args));
    let (first, rows) = lake_lines(dir.path());
    assert_eq!(first, truth_lines(&groups(&september)));

    // The same answers ingested again change nothing: the slice is replaced by the same rows.
    inject(&moto, &good);
    succeeded(&args, run(dir.path(), &args));
    assert_eq!(lake_lines(dir.path()), (first, rows));
    let before = fingerprint(&dir.path().join("data"));

    // Page 2's first group says "12,48" where AWS writes a decimal.
    let mut bad = good.clone();
    bad[1]["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"] =
        serde_json::Value::String("12,48".into());
    inject(&moto, &bad);
    let out = run(dir.path(), &args);
    assert!(!out.status.success(), "a malformed amount must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Metrics.UnblendedCost.Amount"), "{stderr}");
    assert!(stderr.contains("page 2"), "{stderr}");
    assert!(stderr.contains("\"12,48\""), "{stderr}");
    assert!(stderr.contains("the lake is as it was"), "{stderr}");
    assert_eq!(fingerprint(&dir.path().join("data")), before);

    // Without the config section, the command says what to add.
    std::fs::write(dir.path().join("doracost.toml"), "").unwrap();
    let out = run(dir.path(), &args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[sources.cost_explorer]"), "{stderr}");
}

#[test]
fn linked_accounts_are_read_one_by_one_into_sub_accounts() {
    let moto = start_moto();
    let dir = setup(&moto);
    let config = std::fs::read_to_string(dir.path().join("doracost.toml")).unwrap();
    let accounts = [
        "300000000000",
        "300000000001",
        "300000000002",
        "200000000001",
    ];
    std::fs::write(
        dir.path().join("doracost.toml"),
        format!("{config}linked_accounts = {accounts:?}\n"),
    )
    .unwrap();
    // One request series per account, in config order; each answered with that account's pages
    // (several for the bigger ones, one for the smaller).
    let mut all_pages = Vec::new();
    let mut expected: BTreeMap<String, (usize, i128)> = BTreeMap::new();
    for account in accounts {
        let mut september = options((2026, 9, 1), (2026, 10, 1));
        september.groups_per_page = 120;
        september.linked_account = Some(account.to_owned());
        let groups = groups(&september);
        expected.insert(
            account.to_owned(),
            (
                groups.len(),
                groups.iter().map(|g| g.unblended * TO_LAKE_UNITS).sum(),
            ),
        );
        all_pages.extend(pages(&groups, september.groups_per_page));
    }
    inject(&moto, &all_pages);
    let args = [
        "ingest",
        "cost-explorer",
        "--from",
        "2026-09-01",
        "--to",
        "2026-09-30",
        "--format",
        "json",
    ];
    let out = succeeded(&args, run(dir.path(), &args));
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    let total_groups: usize = expected.values().map(|(n, _)| n).sum();
    assert_eq!(summary["source"], "cost-explorer");
    assert_eq!(summary["pages"], all_pages.len());
    assert_eq!(summary["rows"], total_groups);
    assert_eq!(summary["window"]["start"], "2026-09-01");
    assert_eq!(summary["window"]["end_exclusive"], "2026-10-01");
    assert_eq!(summary["tables"][0]["table"], "costs");
    assert_eq!(summary["tables"][0]["replaced_slices"], 1);
    let rows = sql_rows(
        dir.path(),
        &[],
        "SELECT sub_account, count(*) AS n, CAST(sum(billed_cost) AS VARCHAR) AS billed \
         FROM costs GROUP BY sub_account ORDER BY sub_account",
    );
    let lake: BTreeMap<String, (usize, i128)> = rows
        .iter()
        .map(|r| {
            (
                r[0].clone(),
                (r[1].parse().unwrap(), crate::support::units(&r[2])),
            )
        })
        .collect();
    assert_eq!(lake, expected);
}

#[test]
fn forecast_stores_aws_month_end_forecasts_beside_the_bill() {
    let data = crate::support::shared_data().join("cost-explorer");
    let file = |name: &str| std::fs::read_to_string(data.join(name)).unwrap();
    let forecast = file("get_cost_forecast_response.json");
    // checkout's forecast: the documented one with other numbers.
    let checkout = forecast
        .replace("612.4183520919", "20.5")
        .replace("571.0021340000", "18.25")
        .replace("653.8345701838", "22.75");
    let mut endpoint = CannedEndpoint::start(vec![
        (200, file("get_cost_and_usage_response.tag_service.page1.json")),
        (200, file("get_cost_and_usage_response.tag_service.page2.json")),
        // The whole bill, then the tag values seen, sorted: checkout, payments.
        (200, forecast),
        (200, checkout),
        (
            400,
            r#"{"__type":"DataUnavailableException","message":"Insufficient amount of historical data to generate forecast."}"#.to_owned(),
        ),
    ]);
    let dir = setup_endpoint(endpoint.port, 1);
    let args = [
        "ingest",
        "cost-explorer",
        "--from",
        "2025-06-01",
        "--to",
        "2025-06-30",
        "--forecast",
    ];
    let out = succeeded(&args, run(dir.path(), &args));
    assert!(out.contains("ingested 2 page(s)"), "{out}");
    assert!(
        out.contains("provider_forecasts")
            && out.contains(" 2 rows (1 scope(s) without enough history"),
        "{out}"
    );

    let requests = endpoint.requests();
    assert_eq!(requests.len(), 5);
    let today = chrono::Utc::now().date_naive();
    let month_end = chrono::NaiveDate::from_ymd_opt(
        if today.month() == 12 {
            today.year() + 1
        } else {
            today.year()
        },
        today.month() % 12 + 1,
        1,
    )
    .unwrap();
    for (i, request) in requests[2..].iter().enumerate() {
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("x-amz-target: awsinsightsindexservice.getcostforecast"),
            "{request}"
        );
        // The cost views sum effective_cost, which NetAmortizedCost fills by default.
        assert!(
            request.contains(r#""Metric":"NET_AMORTIZED_COST""#),
            "{request}"
        );
        assert!(request.contains(r#""Granularity":"MONTHLY""#), "{request}");
        assert!(
            request.contains(&format!(r#""Start":"{today}","End":"{month_end}""#)),
            "{request}"
        );
        let filtered = request.contains(r#""Tags":{"Key":"service","Values":["#);
        assert_eq!(filtered, i > 0, "{request}");
    }
    assert!(requests[3].contains(r#""Values":["checkout"]"#));
    assert!(requests[4].contains(r#""Values":["payments"]"#));

    let rows = sql_rows(
        dir.path(),
        &[],
        "SELECT coalesce(tag_value, '(all)') AS scope, month, \
                CAST(CAST(period_start AS DATE) AS VARCHAR) AS start, \
                CAST(mean_value AS VARCHAR) AS mean, CAST(lower_bound AS VARCHAR) AS lower, \
                CAST(upper_bound AS VARCHAR) AS upper, metric, currency \
         FROM provider_forecasts ORDER BY scope",
    );
    let month = format!("{:04}-{:02}", today.year(), today.month());
    let units = crate::support::units;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "(all)");
    assert_eq!(rows[1][0], "checkout");
    for r in &rows {
        assert_eq!(
            (&r[1], &r[2], &r[6], &r[7]),
            (
                &month,
                &today.to_string(),
                &"NetAmortizedCost".to_string(),
                &"USD".to_string()
            )
        );
    }
    assert_eq!(
        [units(&rows[0][3]), units(&rows[0][4]), units(&rows[0][5])],
        [
            units("612.4183520919"),
            units("571.002134"),
            units("653.8345701838")
        ]
    );
    assert_eq!(
        [units(&rows[1][3]), units(&rows[1][4]), units(&rows[1][5])],
        [units("20.5"), units("18.25"), units("22.75")]
    );
    // The bill itself landed too: 41.207196 + 12.48 + 3.0711320041 + 0.8813 = 57.6396280041.
    let rows = sql_rows(
        dir.path(),
        &[],
        "SELECT CAST(sum(billed_cost) AS VARCHAR) FROM costs",
    );
    assert_eq!(units(&rows[0][0]), units("57.6396280041"));
}
