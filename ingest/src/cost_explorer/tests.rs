//! The response → rows mapping on the documented examples in `../shared/data/cost-explorer/`, the
//! window arithmetic, and the real SDK against a loopback HTTP endpoint that answers with those
//! files (throttling, then pages).

use std::path::PathBuf;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Decimal128Type;
use chrono::NaiveDate;
use model::config::CostExplorerMetric;

use super::canned_http::CannedEndpoint;
use super::response::CostAndUsagePage;
use super::rows::{CostExplorerRow, Mapping, into_batches, map_page};
use super::{CostExplorerError, CostExplorerOptions, Window, fetch};

fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/cost-explorer")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(shared(name)).expect("shared Cost Explorer example")
}

fn page(json: &str) -> CostAndUsagePage {
    serde_json::from_str(json).expect("a GetCostAndUsage response")
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn june_2025() -> Window {
    Window {
        start: day("2025-06-01"),
        end: day("2025-07-01"),
    }
}

fn mapping(billed: &str, effective: &str) -> Mapping {
    Mapping {
        billed_metric: billed.into(),
        effective_metric: effective.into(),
        requested_groups: fetch::group_by("service"),
        sub_account: Some("111122223333".into()),
        window: june_2025(),
    }
}

/// 10^-12 units of a decimal written out by hand.
fn units(whole: i128, frac_12: i128) -> i128 {
    whole * 1_000_000_000_000 + frac_12
}

#[test]
fn the_documented_pages_map_to_rows_with_tags_untagged_and_estimates() {
    let m = mapping("UnblendedCost", "NetAmortizedCost");
    let mut rows = Vec::new();
    let p1 = text("get_cost_and_usage_response.tag_service.page1.json");
    let p2 = text("get_cost_and_usage_response.tag_service.page2.json");
    map_page(&page(&p1), &m, "page 1", &mut rows).unwrap();
    map_page(&page(&p2), &m, "page 2", &mut rows).unwrap();
    let row =
        |d: &str, tag: Option<&str>, service: &str, billed, effective, estimated| CostExplorerRow {
            day: day(d),
            sub_account: Some("111122223333".into()),
            cloud_service: Some(service.into()),
            region: None,
            tags: tag
                .map(|t| vec![("service".to_owned(), t.to_owned())])
                .unwrap_or_default(),
            billed_cost: billed,
            effective_cost: effective,
            currency: "USD".into(),
            is_estimated: estimated,
        };
    assert_eq!(
        rows,
        [
            // UnblendedCost 41.2071960000 billed, NetAmortizedCost 33.9102001930 effective.
            row(
                "2025-06-01",
                Some("payments"),
                "Amazon Elastic Compute Cloud - Compute",
                units(41, 207_196_000_000),
                units(33, 910_200_193_000),
                false
            ),
            row(
                "2025-06-01",
                Some("payments"),
                "Amazon Relational Database Service",
                units(12, 480_000_000_000),
                units(12, 480_000_000_000),
                false
            ),
            // `service$`: AWS's untagged bucket, kept without a service tag.
            row(
                "2025-06-01",
                None,
                "Amazon Simple Storage Service",
                units(3, 71_132_004_100),
                units(3, 71_132_004_100),
                false
            ),
            // Page 2's day is `Estimated: true`; "0.8813" has 4 decimals.
            row(
                "2025-06-30",
                Some("checkout"),
                "AWS Lambda",
                units(0, 881_300_000_000),
                units(0, 881_300_000_000),
                true
            ),
        ]
    );
    // AmortizedCost picks page 1's first group's 33.9102001930 too; the config chooses the column.
    let mut amortized = Vec::new();
    map_page(
        &page(&p1),
        &mapping("AmortizedCost", "UnblendedCost"),
        "page 1",
        &mut amortized,
    )
    .unwrap();
    assert_eq!(amortized[0].billed_cost, units(33, 910_200_193_000));
    assert_eq!(amortized[0].effective_cost, units(41, 207_196_000_000));
}

#[test]
fn the_aws_cli_example_groups_the_other_way_round_and_is_monthly() {
    // GroupDefinitions DIMENSION SERVICE then TAG Environment; `Environment$` is untagged. The
    // example is MONTHLY, which a DAILY ingest refuses, naming the field.
    let json = text("get_cost_and_usage_response.aws-cli-example.json");
    let mut m = mapping("UnblendedCost", "UnblendedCost");
    m.window = Window {
        start: day("2017-09-01"),
        end: day("2017-10-01"),
    };
    let err = map_page(&page(&json), &m, "page 1", &mut Vec::new()).unwrap_err();
    assert_eq!(err.field, "TimePeriod");
    assert!(err.message.contains("2017-09-01 to 2017-10-01"), "{err}");

    // The same groups on one day: tag and service read from the positions the definitions give.
    let daily = json.replace("\"2017-10-01\"", "\"2017-09-02\"");
    let mut rows = Vec::new();
    map_page(&page(&daily), &m, "page 1", &mut rows).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].cloud_service.as_deref(),
        Some("Amazon Simple Storage Service")
    );
    assert!(rows[0].tags.is_empty(), "Environment$ is untagged");
    assert_eq!(rows[0].billed_cost, units(40, 354_377_313_400));
    assert_eq!(rows[1].tags, [("Environment".to_owned(), "Dev".to_owned())]);
    assert_eq!(rows[1].billed_cost, units(0, 268_236_464_400));
}

#[test]
fn a_malformed_amount_is_an_error_naming_the_group_and_field() {
    let json = text("get_cost_and_usage_response.tag_service.page1.json").replacen(
        "\"12.4800000000\"",
        "\"12,48\"",
        1,
    );
    let err = map_page(
        &page(&json),
        &mapping("UnblendedCost", "NetAmortizedCost"),
        "page 1",
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.field, "Metrics.UnblendedCost.Amount");
    assert!(
        err.at
            .contains("page 1, ResultsByTime[0] (2025-06-01), Groups[1]"),
        "{err}"
    );
    assert!(
        err.at.contains("Amazon Relational Database Service"),
        "{err}"
    );
    assert!(err.message.contains("\"12,48\""), "{err}");

    // A metric not in the response, a day outside the window, a tag key that is not ours.
    let p1 = text("get_cost_and_usage_response.tag_service.page1.json");
    let err = map_page(
        &page(&p1),
        &mapping("BlendedCost", "UnblendedCost"),
        "p",
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.field, "Metrics.BlendedCost");
    let mut july = mapping("UnblendedCost", "UnblendedCost");
    july.window = Window {
        start: day("2025-07-01"),
        end: day("2025-08-01"),
    };
    let err = map_page(&page(&p1), &july, "p", &mut Vec::new()).unwrap_err();
    assert_eq!(err.field, "TimePeriod.Start");
    let err = map_page(
        &page(&p1.replace("service$payments", "team$payments")),
        &mapping("UnblendedCost", "UnblendedCost"),
        "p",
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.field, "Keys[0]");
}

#[test]
fn rows_become_month_slices_with_ordinal_ids_and_null_tags_when_untagged() {
    let m = mapping("UnblendedCost", "NetAmortizedCost");
    let mut rows = Vec::new();
    for name in [
        "get_cost_and_usage_response.tag_service.page1.json",
        "get_cost_and_usage_response.tag_service.page2.json",
    ] {
        map_page(&page(&text(name)), &m, "p", &mut rows).unwrap();
    }
    let batches = into_batches(&rows, "111122223333", 0).unwrap();
    assert_eq!(batches.keys().collect::<Vec<_>>(), ["2025-06"]);
    let batch = &batches["2025-06"];
    let ids = batch.column_by_name("cost_id").unwrap().as_string::<i32>();
    assert_eq!(
        ids.iter().flatten().collect::<Vec<_>>(),
        [
            "cost-explorer:111122223333:2025-06:0",
            "cost-explorer:111122223333:2025-06:1",
            "cost-explorer:111122223333:2025-06:2",
            "cost-explorer:111122223333:2025-06:3"
        ]
    );
    let tags = batch.column_by_name("tags").unwrap();
    assert_eq!(
        (0..4).map(|i| tags.is_null(i)).collect::<Vec<_>>(),
        [false, false, true, false]
    );
    // 41.207196 + 12.48 + 3.0711320041 + 0.8813 = 57.6396280041
    let billed = batch
        .column_by_name("billed_cost")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    let total: i128 = billed.iter().flatten().sum();
    assert_eq!(total, units(57, 639_628_004_100));
    let estimated = batch.column_by_name("is_estimated").unwrap().as_boolean();
    assert_eq!(
        estimated.iter().flatten().collect::<Vec<_>>(),
        [false, false, false, true]
    );
}

#[test]
fn the_window_is_widened_to_whole_months_and_ends_by_today() {
    let today = day("2026-11-24");
    assert_eq!(
        Window::covering(Some(day("2025-06-10")), Some(day("2025-07-03")), today).unwrap(),
        Window {
            start: day("2025-06-01"),
            end: day("2025-08-01")
        }
    );
    // Default: last month and this month so far (through today).
    let w = Window::covering(None, None, today).unwrap();
    assert_eq!((w.start, w.end), (day("2026-10-01"), day("2026-11-25")));
    assert_eq!(w.months(), ["2026-10", "2026-11"]);
    assert!(Window::covering(Some(day("2025-07-02")), Some(day("2025-07-01")), today).is_err());
    assert!(Window::covering(Some(day("2026-12-01")), None, today).is_err());
}

#[test]
fn the_config_section_reads_with_documented_defaults() {
    let config = model::Config::parse(
        "[sources.cost_explorer]\nbilling_account = \"111122223333\"\n",
        std::path::Path::new("doracost.toml"),
    )
    .unwrap();
    let source = config.sources.cost_explorer.unwrap();
    let options = CostExplorerOptions::from_config(&source);
    assert_eq!(options.tag_key, "service");
    assert_eq!(options.billed_metric, CostExplorerMetric::UnblendedCost);
    assert_eq!(
        options.effective_metric,
        CostExplorerMetric::NetAmortizedCost
    );
    assert_eq!(options.region, "us-east-1");
    let err = model::Config::parse(
        "[sources.cost_explorer]\nbilling_account = \"1\"\nbilled_cost_metric = \"Cheapest\"\n",
        std::path::Path::new("doracost.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("billed_cost_metric") || err.contains("Cheapest"),
        "{err}"
    );
}

fn test_client(url: &str, max_attempts: u32) -> aws_sdk_costexplorer::Client {
    let config = aws_sdk_costexplorer::Config::builder()
        .behavior_version(aws_sdk_costexplorer::config::BehaviorVersion::latest())
        .region(aws_sdk_costexplorer::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_costexplorer::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(
            aws_sdk_costexplorer::config::retry::RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    aws_sdk_costexplorer::Client::from_conf(config)
}

fn options() -> CostExplorerOptions {
    CostExplorerOptions {
        billing_account: "111122223333".into(),
        tag_key: "service".into(),
        linked_accounts: vec![],
        billed_metric: CostExplorerMetric::UnblendedCost,
        effective_metric: CostExplorerMetric::NetAmortizedCost,
        endpoint_url: None,
        region: "us-east-1".into(),
        profile: None,
        role_arn: None,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        forecast: None,
    }
}

#[tokio::test]
async fn throttling_is_retried_and_the_page_token_followed_through_the_real_sdk() {
    let throttled = text("error_limit_exceeded.json");
    let mut server = CannedEndpoint::start(vec![
        (400, throttled),
        (
            200,
            text("get_cost_and_usage_response.tag_service.page1.json"),
        ),
        (
            200,
            text("get_cost_and_usage_response.tag_service.page2.json"),
        ),
    ]);
    let client = test_client(&format!("http://127.0.0.1:{}", server.port), 3);
    let mut pages = Vec::new();
    fetch::cost_and_usage_pages(
        &client,
        &options(),
        &june_2025(),
        Some("111122223333"),
        &mut |n, page| {
            pages.push((n, page.results_by_time.len()));
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(pages, [(1, 1), (2, 1)]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "one throttled attempt, then two pages");
    for request in &requests {
        assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("x-amz-target: awsinsightsindexservice.getcostandusage"),
            "{request}"
        );
        assert!(
            lower.contains("authorization: aws4-hmac-sha256"),
            "{request}"
        );
        assert!(request.contains(r#""Granularity":"DAILY""#), "{request}");
        assert!(
            request
                .contains(r#"{"Type":"TAG","Key":"service"},{"Type":"DIMENSION","Key":"SERVICE"}"#),
            "{request}"
        );
        assert!(
            request.contains(r#""Metrics":["UnblendedCost","NetAmortizedCost"]"#),
            "{request}"
        );
        assert!(
            request.contains(r#""Start":"2025-06-01","End":"2025-07-01""#),
            "{request}"
        );
        assert!(
            request.contains(r#""Key":"LINKED_ACCOUNT","Values":["111122223333"]"#),
            "{request}"
        );
    }
    assert!(!requests[1].contains("NextPageToken"));
    assert!(requests[2].contains(
        r#""NextPageToken":"AAMA-EFRSURBSGhDZHdnemhzTmZ2c2JHUXl0bnB3TDlaZ0FBQUFBQUFBQUF3""#
    ));
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_reported_with_the_aws_error() {
    let throttled = text("error_limit_exceeded.json");
    let mut server = CannedEndpoint::start(vec![(400, throttled.clone()), (400, throttled)]);
    let client = test_client(&format!("http://127.0.0.1:{}", server.port), 2);
    let err =
        fetch::cost_and_usage_pages(&client, &options(), &june_2025(), None, &mut |_, _| Ok(()))
            .await
            .unwrap_err();
    assert!(matches!(err, CostExplorerError::Api { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("LimitExceededException: Rate exceeded"),
        "{message}"
    );
    assert!(
        message.contains("GetCostAndUsage 2025-06-01 to 2025-07-01"),
        "{message}"
    );
    assert!(message.contains("page 1"), "{message}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn the_documented_forecast_maps_to_its_mean_and_bounds() {
    let response: super::forecast::CostForecastResponse =
        serde_json::from_str(&text("get_cost_forecast_response.json")).unwrap();
    let scope = Some(("service".to_owned(), "payments".to_owned()));
    let row = super::forecast::map_forecast(
        &response,
        scope.clone(),
        day("2025-06-20"),
        day("2025-07-01"),
        "forecast",
    )
    .unwrap();
    assert_eq!(
        row,
        super::forecast::ForecastRow {
            scope,
            start: day("2025-06-20"),
            end: day("2025-07-01"),
            // Total 612.4183520919; one period, bounds 571.002134 and 653.8345701838.
            mean: units(612, 418_352_091_900),
            lower: Some(units(571, 2_134_000_000)),
            upper: Some(units(653, 834_570_183_800)),
            currency: "USD".into(),
        }
    );
    let batch = super::forecast::forecast_batch(
        &[row],
        "111122223333",
        CostExplorerMetric::UnblendedCost,
        0,
    )
    .unwrap();
    let ids = batch
        .column_by_name("forecast_id")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(
        ids.value(0),
        "cost-explorer:111122223333:2025-06:tag:service=payments"
    );

    let garbled = text("get_cost_forecast_response.json").replace("\"653.8345701838\"", "\"n/a\"");
    let response: super::forecast::CostForecastResponse = serde_json::from_str(&garbled).unwrap();
    let err =
        super::forecast::map_forecast(&response, None, day("2025-06-20"), day("2025-07-01"), "f")
            .unwrap_err();
    assert_eq!(
        err.field,
        "ForecastResultsByTime[0].PredictionIntervalUpperBound"
    );
}

#[test]
fn tiny_amounts_stay_exact_and_too_fine_ones_are_refused_not_rounded() {
    let p1 = text("get_cost_and_usage_response.tag_service.page1.json");
    let m = mapping("UnblendedCost", "UnblendedCost");
    let mut rows = Vec::new();
    // "0.0000000123" = 12,300 × 10^-12.
    let tiny = p1.replacen("\"3.0711320041\"", "\"0.0000000123\"", 1);
    map_page(&page(&tiny), &m, "p", &mut rows).unwrap();
    assert_eq!(rows[2].billed_cost, 12_300);
    // 13 decimals do not fit Decimal128(38, 12): an error, never a rounded amount.
    let fine = p1.replacen("\"3.0711320041\"", "\"0.0000000000001\"", 1);
    let err = map_page(&page(&fine), &m, "p", &mut Vec::new()).unwrap_err();
    assert_eq!(err.field, "Metrics.UnblendedCost.Amount");
    assert!(err.message.contains("12 doracost keeps"), "{err}");
}
