//! `doracost costs` and the cost views over the checked-in sample organisation, against the
//! generator's ground truth (`truth.json`: effective cost per service tag, `shared` and
//! `unallocated`, per month; each provider's exact bill).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{csv_rows, fails, ok, ok_with, sample_lake, small_sample, sql_rows, units};

fn truth() -> Value {
    serde_json::from_str(&std::fs::read_to_string(small_sample().join("truth.json")).unwrap())
        .unwrap()
}

/// A lake holding the small sample's events and bills, and the arguments that point at it with
/// `config` (the sample's own config text, plus `extra`).
fn lake(extra: &str) -> (tempfile::TempDir, Vec<String>) {
    sample_lake(extra, &[("events", "events"), ("focus", "costs")])
}

/// truth.json's effective cost per allocation key (service, `shared`, `unallocated`) and month
/// (`YYYY-MM`), in 10⁻¹² units.
fn truth_by_allocation(truth: &Value) -> BTreeMap<(String, String), i128> {
    let mut out = BTreeMap::new();
    for (key, months) in truth["costs"]["effective_cost_by_allocation"]
        .as_object()
        .unwrap()
    {
        for (month, value) in months.as_object().unwrap() {
            out.insert((key.clone(), month.clone()), units(value.as_str().unwrap()));
        }
    }
    out
}

/// (service, `YYYY-MM`) → cost from `cost_monthly`, summed over providers and cloud services.
fn monthly(dir: &Path, args: &[String]) -> BTreeMap<(String, String), i128> {
    sql_rows(
        dir,
        args,
        "SELECT service, substr(CAST(month AS VARCHAR), 1, 7), sum(cost) FROM cost_monthly \
         GROUP BY service, month",
    )
    .into_iter()
    .map(|r| ((r[0].clone(), r[1].clone()), units(&r[2])))
    .filter(|(_, v)| *v != 0)
    .collect()
}

#[test]
fn cost_per_service_is_the_truth_to_the_last_decimal() {
    let (dir, args) = lake("");
    let dir = dir.path();
    let truth = truth();
    let expected = truth_by_allocation(&truth);

    // The sample config maps each service's tag and has no shared-cost rule: the generator's
    // `shared` spend (tag shared=platform) and its `unallocated` spend are both unallocated.
    let mut want: BTreeMap<(String, String), i128> = BTreeMap::new();
    for ((key, month), value) in &expected {
        let key = if key == "shared" { "unallocated" } else { key };
        *want.entry((key.to_owned(), month.clone())).or_default() += value;
    }
    want.retain(|_, v| *v != 0);
    assert_eq!(monthly(dir, &args), want);

    // Reconciliation: every provider and month differs by exactly 0, and the bills it read add up
    // to each provider's total in truth.json.
    let rows = sql_rows(
        dir,
        &args,
        "SELECT provider, bill, allocated, unallocated, difference FROM cost_reconciliation",
    );
    assert!(rows.len() >= 18, "{rows:?}");
    let mut bills: BTreeMap<String, i128> = BTreeMap::new();
    for r in &rows {
        assert_eq!(units(&r[4]), 0, "{r:?}");
        assert_eq!(units(&r[2]) + units(&r[3]), units(&r[1]), "{r:?}");
        *bills.entry(r[0].clone()).or_default() += units(&r[1]);
    }
    for (provider, totals) in truth["costs"]["providers"].as_object().unwrap() {
        assert_eq!(
            bills[provider],
            units(totals["effective_cost"].as_str().unwrap()),
            "{provider}"
        );
    }

    // `doracost costs --month`: one month per service, as CSV at full precision, against truth.
    let month = "2025-09";
    let out = ok_with(dir, &args, &["costs", "--month", month, "--format", "csv"]);
    let rows = csv_rows(&out);
    assert_eq!(
        rows[0],
        [
            "month",
            "service",
            "team",
            "cost",
            "direct_cost",
            "shared_cost",
            "deployments",
            "cost_per_deployment",
            "forecast"
        ]
    );
    let mut total = 0;
    let mut zero_deployments = 0;
    for r in &rows[1..] {
        assert_eq!(r[0], "2025-09-01");
        let cost = units(&r[3]);
        if r[1] == "total" {
            assert_eq!(cost, total, "the total row");
            continue;
        }
        total += cost;
        let expected = want.get(&(r[1].clone(), month.to_owned())).copied();
        assert_eq!(cost, expected.unwrap_or(0), "{r:?}");
        // September is complete: its forecast is its actual.
        assert_eq!(units(&r[8]), cost, "{r:?}");
        // Cost per deployment = cost ÷ deployments, to the 12th decimal (rounded); none (empty)
        // without a deployment.
        if r[1] != "unallocated" {
            let deployments: i128 = r[6].parse().unwrap();
            if deployments == 0 {
                assert_eq!(r[7], "", "{r:?}");
                zero_deployments += 1;
            } else {
                let per = units(&r[7]);
                assert!((per * deployments - cost).abs() <= deployments, "{r:?}");
            }
        }
    }
    // Some services made no production deployment in September 2025 (identity among them).
    assert!(zero_deployments >= 1);
    assert_eq!(rows.last().unwrap()[1], "total");
    assert!(rows.iter().any(|r| r[1] == "unallocated"));

    // --team keeps that team's services; the table for people has cents.
    let team = ok_with(dir, &args, &["costs", "--month", month, "--team", "growth"]);
    for service in ["notify", "search", "recommendations", "web", "total"] {
        assert!(team.contains(service), "{service} missing:\n{team}");
    }
    assert!(!team.contains("checkout"), "{team}");
    let web = want[&("web".to_owned(), month.to_owned())];
    // Rounded half up to cents: (units + 0.5 cent) ÷ 1 cent.
    let cents = (web + 5 * 10_i128.pow(9)) / 10_i128.pow(10);
    let cents = format!("{}.{:02}", cents / 100, cents % 100);
    assert!(team.contains(&cents), "web's {cents} missing:\n{team}");

    // --format json: the same rows, money as JSON numbers written with every decimal of the CSV
    // (checked on the text: a JSON reader would round them to doubles).
    let raw = ok_with(dir, &args, &["costs", "--month", month, "--format", "json"]);
    let json: Vec<Value> = serde_json::from_str(&raw).unwrap();
    assert_eq!(json.len(), rows.len() - 1);
    for (object, row) in json.iter().zip(&rows[1..]) {
        assert_eq!(object["service"], row[1].as_str());
        let text = format!("\"service\":\"{}\",", row[1]);
        let at = raw.find(&text).expect("the service's object");
        let cost = raw[at..].find("\"cost\":").expect("its cost") + at + "\"cost\":".len();
        assert!(
            raw[cost..].starts_with(&format!("{},", row[3])),
            "{} in {raw}",
            row[3]
        );
    }

    // Mistakes are named.
    let refused = |more: &[&str]| {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(more);
        fails(dir, &all)
    };
    let err = refused(&["costs", "--month", "2025-13"]);
    assert!(err.contains("2025-13") && err.contains("YYYY-MM"), "{err}");
    let err = refused(&["costs", "--service", "nope"]);
    assert!(err.contains("--service nope"), "{err}");
}

#[test]
fn shared_platform_cost_split_in_proportion_leaves_only_the_untagged_unallocated() {
    // The generator's shared spend is tagged shared=platform: split in proportion to direct cost,
    // the services get it all, to the 12th decimal, and unallocated is exactly truth's.
    let (dir, args) =
        lake("[[shared_costs]]\nname = \"platform\"\ntags = { shared = \"platform\" }\n");
    let dir = dir.path();
    let expected = truth_by_allocation(&truth());
    let got = monthly(dir, &args);
    let months: std::collections::BTreeSet<&String> = expected.keys().map(|(_, m)| m).collect();
    for month in months {
        let of = |map: &BTreeMap<(String, String), i128>, key: &str| {
            map.get(&(key.to_owned(), month.clone()))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(
            of(&got, "unallocated"),
            of(&expected, "unallocated"),
            "{month}"
        );
        let services_got: i128 = got
            .iter()
            .filter(|((k, m), _)| m == month && k != "unallocated")
            .map(|(_, v)| v)
            .sum();
        let services_truth: i128 = expected
            .iter()
            .filter(|((k, m), _)| m == month && k != "unallocated")
            .map(|(_, v)| v)
            .sum();
        assert_eq!(services_got, services_truth, "{month}: services + shared");
        // Each service gets at least its own tagged spend.
        for ((key, m), value) in &expected {
            if m == month && key != "shared" && key != "unallocated" && *value > 0 {
                assert!(of(&got, key) >= *value, "{key} {month}");
            }
        }
    }
    let diffs = sql_rows(
        dir,
        &args,
        "SELECT count(*) FROM cost_reconciliation WHERE difference <> 0",
    );
    assert_eq!(diffs, [["0"]]);
}

#[test]
fn forecast_back_test_on_the_sample_organisation() {
    let (dir, args) = lake("");
    let dir = dir.path();
    // Mean absolute percentage error of the month-end forecast over every complete month, made
    // on the 10th and on the 20th, for the whole bill and per service.
    let rows = sql_rows(
        dir,
        &args,
        "SELECT scope, as_of_day, count(*), avg(abs(error_pct)), max(abs(error_pct)) \
         FROM cost_forecast_backtest WHERE scope IN ('all', 'service') AND name <> 'unallocated' \
         GROUP BY scope, as_of_day ORDER BY scope, as_of_day",
    );
    println!("forecast back-test (scope, as of day, forecasts, mean |error| %, max |error| %):");
    for r in &rows {
        println!("  {}", r.join("  "));
    }
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        let months: u32 = r[2].parse().unwrap();
        assert!(months >= 16, "{r:?}");
        let mape: f64 = r[3].parse().unwrap();
        let bound = 3.0;
        assert!(mape < bound, "mean error {mape}% ≥ {bound}%: {r:?}");
    }
    // Later in the month the forecast knows more: day 20 is no worse than day 10 overall.
    let all: Vec<f64> = rows
        .iter()
        .filter(|r| r[0] == "all")
        .map(|r| r[3].parse().unwrap())
        .collect();
    assert!(all[1] <= all[0] + 0.5, "{all:?}");
}

/// Per provider: (EffectiveCost of the lines whose tags say org = trey, in any case and spacing;
/// all EffectiveCost), in 10⁻¹² units, read from the FOCUS sample's text.
fn focus_sample_org_trey() -> BTreeMap<String, (i128, i128)> {
    let path = crate::support::shared_data().join("focus/focus_1.0_sample_1000.csv");
    let mut reader = csv::Reader::from_path(&path).expect("sample bill");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (provider, effective, tags) = (col("ProviderName"), col("EffectiveCost"), col("Tags"));
    let mut out: BTreeMap<String, (i128, i128)> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("record");
        let cost = units(&record[effective]);
        let entry = out.entry(record[provider].to_owned()).or_default();
        entry.1 += cost;
        if record[tags].is_empty() || &record[tags] == "NULL" {
            continue;
        }
        let tags: serde_json::Map<String, Value> = serde_json::from_str(&record[tags]).unwrap();
        let trey = tags.iter().any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("org")
                && v.as_str()
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("trey"))
        });
        if trey {
            entry.0 += cost;
        }
    }
    out
}

#[test]
fn the_focus_samples_spaced_org_key_allocates_like_org() {
    // The FinOps sample tags 42 lines `"org": "trey"` and 23 lines `" org": "trey"` (a leading
    // space): a rule `org = "trey"` takes both; everything else is unallocated, exactly.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("doracost.toml");
    std::fs::write(
        &config,
        "[[services]]\nname = \"trey\"\ncost_tags = { org = \"trey\" }\n",
    )
    .unwrap();
    let bill = crate::support::shared_data().join("focus/focus_1.0_sample_1000.csv");
    let lake = dir.path().join("lake");
    let base = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        lake.to_str().unwrap(),
    ];
    ok(
        dir.path(),
        &[&base[..], &["ingest", "focus", bill.to_str().unwrap()]].concat(),
    );
    let expected = focus_sample_org_trey();
    let rows = csv_rows(&ok(
        dir.path(),
        &[
            &base[..],
            &[
                "sql",
                "--format",
                "csv",
                "SELECT provider, sum(CASE WHEN service = 'trey' THEN cost END), sum(cost) \
                 FROM cost_monthly GROUP BY provider ORDER BY provider",
            ],
        ]
        .concat(),
    ));
    assert_eq!(rows.len() - 1, expected.len(), "{rows:?}");
    let mut trey_total = 0;
    for r in &rows[1..] {
        let (trey, all) = expected[&r[0]];
        let got = if r[1].is_empty() { 0 } else { units(&r[1]) };
        assert_eq!(got, trey, "{r:?}");
        assert_eq!(units(&r[2]), all, "{r:?}");
        trey_total += trey;
    }
    assert!(
        trey_total > 0,
        "the sample's org = trey lines cost something"
    );
    let diffs = sql_rows(
        dir.path(),
        &base.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "SELECT count(*), sum(CASE WHEN difference = 0 THEN 1 ELSE 0 END) FROM cost_reconciliation",
    );
    assert_eq!(
        diffs[0][0], diffs[0][1],
        "every provider and month reconciles: {diffs:?}"
    );
}
