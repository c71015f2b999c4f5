//! Tests of the whole generator at small scale: determinism, the organisation's shapes, and that
//! `truth.json` equals a re-count of the written files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use crate::calendar::{
    PERIOD_END, PERIOD_START, days_from_civil, format_timestamp, is_working_day,
};
use crate::money::{Money, parse_money};
use crate::{DEFAULT_SEED, Formats, GenerateOptions, GenerateReport, Scale, generate};

fn small() -> &'static (tempfile::TempDir, GenerateReport) {
    static SMALL: OnceLock<(tempfile::TempDir, GenerateReport)> = OnceLock::new();
    SMALL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = GenerateOptions {
            scale: Scale::Small,
            seed: DEFAULT_SEED,
            out_dir: dir.path().to_path_buf(),
            formats: Formats::default(),
        };
        let report = generate(&opts).expect("generate small");
        (dir, report)
    })
}

fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect()
}

fn read_array(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read");
    serde_json::from_str::<Vec<Value>>(&text).expect("json array")
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_string()
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp.
fn seconds(timestamp: &str) -> i64 {
    let field = |range: std::ops::Range<usize>| timestamp[range].parse::<i64>().expect("digits");
    days_from_civil(field(0..4), field(5..7), field(8..10)) * 86_400
        + field(11..13) * 3600
        + field(14..16) * 60
        + field(17..19)
}

#[test]
fn scale_names_round_trip() {
    for scale in [Scale::Small, Scale::Medium, Scale::Large] {
        assert_eq!(scale.to_string().parse::<Scale>(), Ok(scale));
    }
    assert!("huge".parse::<Scale>().is_err());
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let (first_dir, first) = small();
    let second_dir = tempfile::tempdir().expect("temp dir");
    let opts = GenerateOptions {
        scale: Scale::Small,
        seed: DEFAULT_SEED,
        out_dir: second_dir.path().to_path_buf(),
        formats: Formats::default(),
    };
    let second = generate(&opts).expect("generate again");
    assert_eq!(first.files.len(), second.files.len());
    assert_eq!(first.rows_written, second.rows_written);
    for path in &first.files {
        let relative = path.strip_prefix(first_dir.path()).expect("inside out dir");
        let a = std::fs::read(path).expect("read first");
        let b = std::fs::read(second_dir.path().join(relative)).expect("read second");
        assert!(a == b, "{} differs", relative.display());
    }
}

#[test]
fn layout_and_size() {
    let (dir, report) = small();
    for name in [
        "doracost.toml",
        "truth.json",
        "events/deployments.ndjson",
        "events/incidents.ndjson",
        "events/devlake-deployments.json",
        "events/devlake-incidents.json",
        "costs/focus-2025-05.csv",
        "costs/focus-2026-10.csv",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    assert_eq!(report.files.len(), 4 + 18 + 2);
    assert!(
        !dir.path().join("git").exists(),
        "git is not a default format"
    );
    let bytes: u64 = report
        .files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(bytes <= 8_500_000, "small output is {bytes} bytes");
    let config = std::fs::read_to_string(dir.path().join("doracost.toml")).expect("config");
    assert!(config.contains("repos = [\"acme/platform\"]\npaths = [\"services/billing/\"]"));
    assert!(config.contains("cost_tags = { service = \"checkout\" }"));
    assert_eq!(config.matches("[[services]]").count(), 12);
    assert_eq!(config.matches("[[budgets]]").count(), 3);
    let truth: crate::Truth = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("truth.json")).expect("truth"),
    )
    .expect("parse truth");
    assert_eq!(truth, report.truth);
}

#[test]
fn delivery_shapes_and_counts_match_truth() {
    let (dir, report) = small();
    let truth = &report.truth;
    assert_eq!(truth.teams, 3);
    assert!(truth.service_count >= 12);
    assert!(truth.repos.iter().any(|r| r == "acme/platform"));
    let deployments = read_lines(&dir.path().join("events/deployments.ndjson"));
    let devlake = read_array(&dir.path().join("events/devlake-deployments.json"));
    let incidents = read_lines(&dir.path().join("events/incidents.ndjson"));
    let devlake_incidents = read_array(&dir.path().join("events/devlake-incidents.json"));

    assert_eq!(deployments.len() as u64, truth.deployments.in_events_file);
    assert_eq!(devlake.len() as u64, truth.deployments.in_devlake_file);
    assert_eq!(
        truth.deployments.total,
        truth.deployments.in_events_file + truth.deployments.in_devlake_file
    );
    assert!(
        (2_000..10_000).contains(&truth.deployments.total),
        "{:?}",
        truth.deployments
    );

    let (start, end) = (format_timestamp(PERIOD_START), format_timestamp(PERIOD_END));
    let mut changes = BTreeSet::new();
    let mut pairs = 0;
    let (
        mut weekday,
        mut production_successful,
        mut rollbacks,
        mut hotfix_changes,
        mut cross_service,
    ) = (0, 0, 0, 0, 0);
    let mut statuses = BTreeMap::new();
    for d in &deployments {
        let finished = text(d, "finished_at");
        assert!(finished >= start && finished < end, "{finished}");
        *statuses.entry(text(d, "status")).or_insert(0) += 1;
        if text(d, "environment") == "production" && text(d, "status") == "success" {
            production_successful += 1;
        }
        weekday += u64::from(is_working_day(seconds(&finished).div_euclid(86_400)));
        rollbacks += u64::from(d["is_rollback"] == Value::Bool(true));
        for c in d["changes"].as_array().expect("changes listed") {
            pairs += 1;
            changes.insert(format!("{}:{}", text(c, "repo"), text(c, "sha")));
            assert!(text(c, "committed_at") >= start);
            if c.get("pr_number").is_some() {
                let order = [
                    "pr_first_commit_at",
                    "pr_opened_at",
                    "pr_first_review_at",
                    "pr_merged_at",
                ]
                .map(|f| text(c, f));
                assert!(
                    order[0] >= start
                        && order[0] < order[1]
                        && order[1] < order[2]
                        && order[2] < order[3],
                    "{c}"
                );
                assert!(order[3] <= text(c, "committed_at"));
            }
            let labels = c["labels"]
                .as_array()
                .map(|l| l.iter().any(|l| l == "hotfix"))
                .unwrap_or(false);
            hotfix_changes += u64::from(labels || text(c, "pr_head_branch").starts_with("hotfix/"));
            let paths: Vec<String> = c["paths"]
                .as_array()
                .expect("paths")
                .iter()
                .map(|p| p.as_str().unwrap_or("").to_string())
                .collect();
            let services: BTreeSet<&str> = paths
                .iter()
                .filter_map(|p| p.strip_prefix("services/")?.split('/').next())
                .collect();
            cross_service += u64::from(services.len() > 1);
        }
    }
    for d in &devlake {
        assert_eq!(text(d, "environment"), "PRODUCTION");
        let repo = text(d, "repo_url")
            .trim_start_matches("https://github.com/")
            .to_string();
        changes.insert(format!("{repo}:{}", text(d, "commit_sha")));
        pairs += 1;
        weekday += u64::from(is_working_day(
            seconds(&text(d, "end_time")).div_euclid(86_400),
        ));
        production_successful += u64::from(text(d, "result") == "SUCCESS");
    }
    assert_eq!(changes.len() as u64, truth.changes.distinct);
    assert_eq!(pairs, truth.deployment_changes.total);
    assert_eq!(
        production_successful,
        truth.deployments.production_successful
    );
    let per_service: u64 = truth
        .services
        .values()
        .map(|s| s.production_successful_deployments)
        .sum();
    assert_eq!(per_service, production_successful);
    assert!(
        weekday * 100 >= truth.deployments.total * 95,
        "{weekday} of {} on weekdays",
        truth.deployments.total
    );
    assert!(rollbacks >= 3 && rollbacks == truth.deployments.rollbacks_flagged);
    assert!(hotfix_changes >= 3, "{hotfix_changes}");
    assert!(cross_service >= 10, "{cross_service}");
    assert!(
        statuses.get("failure").is_some_and(|n| *n > 10)
            && statuses.get("cancelled").is_some_and(|n| *n > 10)
    );
    assert!(
        truth
            .deployments
            .by_environment
            .get("staging")
            .is_some_and(|n| *n > 50)
    );
    assert!(truth.deployments.redeploys > 0);

    assert_eq!(
        incidents.len() as u64 + devlake_incidents.len() as u64,
        truth.incidents.total
    );
    let open = incidents
        .iter()
        .filter(|i| i["resolved_at"].is_null())
        .count()
        + devlake_incidents
            .iter()
            .filter(|i| i["resolutionDate"].is_null())
            .count();
    assert_eq!(open as u64, truth.incidents.open);
    assert!((1..=3).contains(&open), "{open} open incidents");
    let linked = incidents
        .iter()
        .filter(|i| i.get("caused_by_deployment_id").is_some())
        .count();
    assert_eq!(linked as u64, truth.incidents.caused_by_deployment);
    assert!(linked > 10 && truth.incidents.caused_by_sha > 0);
    for i in incidents.iter().chain(&devlake_incidents) {
        let started = if i["started_at"].is_string() {
            text(i, "started_at")
        } else {
            text(i, "createdDate")
        };
        assert!(started >= start && started < end);
    }
}

#[test]
fn cost_files_sum_exactly_to_truth() {
    let (dir, report) = small();
    let truth = &report.truth;
    let mut billed: BTreeMap<String, Money> = BTreeMap::new();
    let mut effective: BTreeMap<String, Money> = BTreeMap::new();
    let mut allocated: BTreeMap<String, BTreeMap<String, Money>> = BTreeMap::new();
    let (mut rows, mut credits, mut committed, mut azure) = (0_u64, 0, 0, 0);
    let mut ec2_prices = BTreeSet::new();
    for month in crate::calendar::months() {
        let path = dir.path().join(format!("costs/focus-{}.csv", month.key()));
        let mut reader = csv::Reader::from_path(&path).expect("open csv");
        let headers = reader.headers().expect("headers").clone();
        let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let (
            provider,
            billed_at,
            effective_at,
            tags_at,
            category_at,
            start_at,
            service_at,
            price_at,
        ) = (
            column("ProviderName"),
            column("BilledCost"),
            column("EffectiveCost"),
            column("Tags"),
            column("ChargeCategory"),
            column("ChargePeriodStart"),
            column("ServiceName"),
            column("ListUnitPrice"),
        );
        for record in reader.records() {
            let record = record.expect("row");
            rows += 1;
            let b = parse_money(&record[billed_at]).expect("billed");
            let e = parse_money(&record[effective_at]).expect("effective");
            *billed.entry(record[provider].to_string()).or_default() += b;
            *effective.entry(record[provider].to_string()).or_default() += e;
            let key = if record[tags_at].is_empty() {
                "unallocated".to_string()
            } else {
                let tags: Value = serde_json::from_str(&record[tags_at]).expect("tags json");
                if let Some(service) = tags["service"].as_str() {
                    service.to_string()
                } else if tags.get("shared").is_some() {
                    "shared".to_string()
                } else {
                    "unallocated".to_string()
                }
            };
            assert!(record[start_at].starts_with(&month.key()));
            *allocated
                .entry(key)
                .or_default()
                .entry(month.key())
                .or_default() += e;
            credits += u64::from(&record[category_at] == "Credit" && b < 0);
            committed += u64::from(b > 0 && e == 0);
            azure += u64::from(&record[provider] == "Microsoft");
            if &record[service_at] == "Amazon EC2" && &record[category_at] == "Usage" {
                ec2_prices.insert((
                    record[start_at][..7] >= *"2026-02",
                    record[price_at].to_string(),
                ));
            }
        }
    }
    assert_eq!(rows, truth.costs.rows);
    for (provider, totals) in &truth.costs.providers {
        assert_eq!(
            parse_money(&totals.billed_cost),
            billed.get(provider).copied(),
            "{provider}"
        );
        assert_eq!(
            parse_money(&totals.effective_cost),
            effective.get(provider).copied(),
            "{provider}"
        );
    }
    assert_eq!(truth.costs.providers.len(), 2);
    for (key, months) in &allocated {
        for (month, value) in months {
            assert_eq!(
                parse_money(&truth.costs.effective_cost_by_allocation[key][month]),
                Some(*value),
                "{key} {month}"
            );
        }
    }
    assert_eq!(
        allocated.len(),
        truth.costs.effective_cost_by_allocation.len()
    );
    assert!(allocated.contains_key("shared") && allocated.contains_key("unallocated"));
    assert!(
        credits >= 3 && committed > 100 && azure > 100,
        "{credits} {committed} {azure}"
    );
    assert_eq!(
        ec2_prices,
        BTreeSet::from([(false, "0.096".to_string()), (true, "0.08448".to_string())]),
        "EC2 price drops 12% from 2026-02-01"
    );
}

#[test]
fn medium_has_about_100_services() {
    let org = crate::org::Org::plan(Scale::Medium);
    assert_eq!(org.services.len(), 100);
    assert!((20..=30).contains(&org.teams.len()));
    assert!(org.repos.iter().filter(|r| r.services.len() > 1).count() >= 3);
}

#[test]
fn medium_generates_about_100_services_quickly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let opts = GenerateOptions {
        scale: Scale::Medium,
        seed: 7,
        out_dir: dir.path().to_path_buf(),
        formats: Formats::default(),
    };
    let report = generate(&opts).expect("generate medium");
    let truth = &report.truth;
    assert_eq!(truth.service_count, 100);
    assert_eq!(truth.services.len(), 100);
    assert!(
        truth.deployments.total > 10_000 && truth.costs.rows > 50_000,
        "{truth:?}"
    );
    let expected = crate::expected_shape(Scale::Medium);
    let ratio = truth.deployments.total as f64 / expected.deployments;
    assert!(
        (0.7..1.3).contains(&ratio),
        "deployments {} vs expected {}",
        truth.deployments.total,
        expected.deployments
    );
    let ratio = truth.incidents.total as f64 / expected.incidents;
    assert!(
        (0.7..1.3).contains(&ratio),
        "incidents {} vs expected {}",
        truth.incidents.total,
        expected.incidents
    );
    assert!(started.elapsed().as_secs() < 60);
}
