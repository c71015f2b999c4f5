//! Every kind drawn from a small hand-made result, to SVG and PNG; the empty and broken inputs.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use super::*;

fn spec(kind: ChartKind, unit: Unit) -> ChartSpec {
    ChartSpec {
        kind,
        title: format!("{kind:?} <of> \"services\" & teams"),
        description: "What the chart shows, with <markup> & quotes".to_owned(),
        unit,
        currency: "USD".to_owned(),
        target: None,
        thresholds: Vec::new(),
        time_zone: chrono_tz::UTC,
        width: 640,
        height: 320,
    }
}

fn rows(columns: Vec<(&str, ArrayRef)>) -> (Schema, Vec<RecordBatch>) {
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(
        Arc::new(schema.clone()),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    (schema, vec![batch])
}

/// Days since 1970-01-01 of a date in 2026.
fn day(month: u32, day: u32) -> i32 {
    let date = NaiveDate::from_ymd_opt(2026, month, day).unwrap();
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

fn text(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn floats(values: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(values))
}

/// Parses as XML, with an accessible root that scales, and returns the drawn text.
fn check_svg(document: &str, spec: &ChartSpec) -> String {
    let tree = roxmltree::Document::parse(document).unwrap_or_else(|e| panic!("{e}\n{document}"));
    let root = tree.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("role"), Some("img"));
    assert_eq!(
        root.attribute("width"),
        Some(spec.width.to_string().as_str())
    );
    assert_eq!(
        root.attribute("viewBox"),
        Some(format!("0 0 {} {}", spec.width, spec.height).as_str())
    );
    let children: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(children[0].tag_name().name(), "title");
    assert_eq!(children[0].text(), Some(spec.title.as_str()));
    assert_eq!(children[1].tag_name().name(), "desc");
    assert_eq!(children[1].text(), Some(spec.description.as_str()));
    assert!(document.contains("font-family=\"DejaVu Sans, sans-serif\""));
    root.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Decodes to the spec's size, with more than the white background drawn.
fn check_png(file: &[u8], spec: &ChartSpec) {
    let (width, height, rgb) = png_file::decode_rgb(file);
    assert_eq!((width, height), (spec.width, spec.height));
    assert!(rgb.iter().any(|b| *b < 200), "something is drawn");
}

/// Both formats; returns the SVG's text.
fn draw(spec: &ChartSpec, (schema, batches): &(Schema, Vec<RecordBatch>)) -> String {
    let document = svg(spec, schema, batches).unwrap();
    check_png(&png(spec, schema, batches).unwrap(), spec);
    check_svg(&document, spec)
}

#[test]
fn a_legend_of_forty_series_keeps_three_rows_and_counts_the_rest() {
    let series: Vec<String> = (0..40).map(|i| format!("team-{i}")).collect();
    let series: Vec<&str> = series.iter().map(String::as_str).collect();
    let drawn = draw(
        &spec(ChartKind::Line, Unit::Count),
        &rows(vec![
            ("x", Arc::new(Date32Array::from(vec![day(3, 1); 40]))),
            ("series", text(&series)),
            ("y", floats((0..40).map(|i| Some(i as f64)).collect())),
        ]),
    );
    assert!(
        drawn.contains("team-0") && drawn.contains(" more") && !drawn.contains("team-39"),
        "{drawn}"
    );
}

fn lead_time() -> (Schema, Vec<RecordBatch>) {
    // Two weeks of daily lead time for two services; api misses 03-05 (a gap in its line).
    let days: Vec<i32> = (1..=14).map(|d| day(3, d)).collect();
    let x: Vec<i32> = days.iter().chain(&days).copied().collect();
    let series: Vec<&str> = (0..28)
        .map(|i| if i < 14 { "api" } else { "web" })
        .collect();
    let y: Vec<Option<f64>> = (0..28)
        .map(|i| {
            if i == 4 {
                None
            } else {
                Some(10.0 + (i % 14) as f64 * 1.5 + (i / 14) as f64 * 8.0)
            }
        })
        .collect();
    rows(vec![
        ("x", Arc::new(Date32Array::from(x))),
        ("series", text(&series)),
        ("y", floats(y)),
        ("target", floats(vec![Some(24.0); 28])),
    ])
}

#[test]
fn line_of_dates_with_series_and_target_column() {
    let drawn = draw(&spec(ChartKind::Line, Unit::Hours), &lead_time());
    assert!(drawn.contains("target 24 h"), "{drawn}");
    assert!(
        drawn.contains("api") && drawn.contains("web"),
        "legend: {drawn}"
    );
    assert!(
        drawn.contains("Mar 03") || drawn.contains("Mar 02"),
        "daily ticks: {drawn}"
    );
    assert!(
        drawn.contains("30 h") || drawn.contains("35 h"),
        "hour ticks: {drawn}"
    );
}

#[test]
fn line_of_timestamps_and_decimals() {
    // Hourly deploy counts as Decimal128(10, 2): 1.25 is stored as 125.
    let start = 1_772_323_200_000i64; // 2026-03-01T00:00:00Z
    let x =
        TimestampMillisecondArray::from((0..24).map(|h| start + h * 3_600_000).collect::<Vec<_>>())
            .with_timezone("UTC");
    let y = Decimal128Array::from((0..24).map(|h| Some(100 + h * 25)).collect::<Vec<_>>())
        .with_precision_and_scale(10, 2)
        .unwrap();
    let mut spec = spec(ChartKind::Line, Unit::Number);
    spec.time_zone = chrono_tz::Europe::Berlin;
    spec.target = Some(5.0);
    spec.thresholds = vec![Threshold {
        label: "alert".to_owned(),
        value: 6.5,
    }];
    let drawn = draw(&spec, &rows(vec![("x", Arc::new(x)), ("y", Arc::new(y))]));
    // Shown in Berlin: data from 01:00 there (midnight UTC), ticks every three hours.
    assert!(
        drawn.contains("Mar 01 03:00") && drawn.contains("21:00"),
        "{drawn}"
    );
    assert!(
        drawn.contains("target 5") && drawn.contains("alert 6.5"),
        "{drawn}"
    );
}

#[test]
fn line_of_text_labels() {
    let drawn = draw(
        &spec(ChartKind::Line, Unit::Percent),
        &rows(vec![
            ("x", text(&["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"])),
            ("y", floats(vec![Some(0.153), Some(0.12), None, Some(0.08)])),
        ]),
    );
    assert!(drawn.contains("2026-Q2") && drawn.contains("%"), "{drawn}");
}

/// Monthly cost by ten services: the two smallest are summed as "other".
fn cost_by_service() -> (Schema, Vec<RecordBatch>) {
    let (mut x, mut series, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for month in 1..=6 {
        for service in 0..10 {
            x.push(day(month, 1));
            series.push(format!("service-{service}"));
            y.push(Some(1000.0 * (10 - service) as f64 + 150.0 * month as f64));
        }
    }
    let series: Vec<&str> = series.iter().map(String::as_str).collect();
    rows(vec![
        ("x", Arc::new(Date32Array::from(x))),
        ("series", text(&series)),
        ("y", floats(y)),
    ])
}

#[test]
fn stacked_area_keeps_eight_series_and_other() {
    let drawn = draw(
        &spec(ChartKind::StackedArea, Unit::Currency),
        &cost_by_service(),
    );
    assert!(
        drawn.contains("service-0") && drawn.contains("service-7"),
        "{drawn}"
    );
    assert!(
        !drawn.contains("service-8") && drawn.contains("other"),
        "{drawn}"
    );
    assert!(
        drawn.contains("2026-03") && drawn.contains('$'),
        "monthly ticks, currency: {drawn}"
    );
}

#[test]
fn stacked_bar() {
    let drawn = draw(
        &spec(ChartKind::StackedBar, Unit::Currency),
        &cost_by_service(),
    );
    assert!(drawn.contains("other"), "{drawn}");
}

#[test]
fn bar_of_movers_with_long_labels() {
    let mut spec = spec(ChartKind::Bar, Unit::Currency);
    spec.height = 260;
    let drawn = draw(
        &spec,
        &rows(vec![
            (
                "label",
                text(&[
                    "checkout-service-with-a-very-long-name-indeed-and-more",
                    "search",
                    "billing",
                    "auth",
                ]),
            ),
            (
                "value",
                Arc::new(Int64Array::from(vec![
                    Some(4200),
                    Some(1300),
                    None,
                    Some(-2750),
                ])),
            ),
            (
                "detail",
                text(&["+38 % vs last month", "new index", "", "reserved instances"]),
            ),
        ]),
    );
    assert!(drawn.contains('…'), "long label cut: {drawn}");
    assert!(drawn.contains("-$2,750.00 · reserved instances"), "{drawn}");
}

#[test]
fn stat_tile() {
    let drawn = draw(
        &ChartSpec {
            width: 320,
            height: 160,
            ..spec(ChartKind::Stat, Unit::Hours)
        },
        &rows(vec![
            ("value", floats(vec![Some(12.5)])),
            ("previous", floats(vec![Some(20.0)])),
            ("target", floats(vec![Some(24.0)])),
            ("level", text(&["elite"])),
            ("better", text(&["lower"])),
        ]),
    );
    // 12.5 against 20: 7.5 / 20 = 37.5 % lower, an improvement.
    assert!(
        drawn.contains("12.5 h") && drawn.contains("▼ 37.5 % from 20 h"),
        "{drawn}"
    );
    assert!(
        drawn.contains("Elite") && drawn.contains("target 24 h · met"),
        "{drawn}"
    );
}

#[test]
fn table_grid_stops_at_twenty_rows() {
    let names: Vec<String> = (0..25).map(|i| format!("service-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let drawn = draw(
        &ChartSpec {
            height: 520,
            ..spec(ChartKind::Table, Unit::Number)
        },
        &rows(vec![
            ("service", text(&names)),
            (
                "deployments",
                Arc::new(Int64Array::from((0..25).collect::<Vec<i64>>())),
            ),
            (
                "cost",
                floats((0..25).map(|i| Some(1234.5678 * i as f64)).collect()),
            ),
        ]),
    );
    assert!(
        drawn.contains("service-19") && !drawn.contains("service-20"),
        "{drawn}"
    );
    assert!(
        drawn.contains("… 5 more rows") && drawn.contains("2,469"),
        "{drawn}"
    );
}

fn march_burn() -> (Schema, Vec<RecordBatch>) {
    // Billed through the 18th at 300 a day; the forecast runs on at 320 a day to 9,880.
    let days: Vec<i32> = (1..=31).map(|d| day(3, d)).collect();
    let actual = (1..=31)
        .map(|d| (d <= 18).then(|| 300.0 * d as f64))
        .collect();
    let forecast = (1..=31)
        .map(|d| (d >= 18).then(|| 5400.0 + 320.0 * (d - 18) as f64))
        .collect();
    rows(vec![
        ("day", Arc::new(Date32Array::from(days))),
        ("actual", floats(actual)),
        ("forecast", floats(forecast)),
        ("budget", floats(vec![Some(9000.0); 31])),
    ])
}

#[test]
fn burn() {
    let drawn = draw(&spec(ChartKind::Burn, Unit::Currency), &march_burn());
    assert!(
        drawn.contains("budget $9,000.00") && drawn.contains("forecast"),
        "{drawn}"
    );
}

fn deployments_by_day() -> (Schema, Vec<RecordBatch>) {
    // Twenty weeks from 2026-01-05 (a Monday); weekends quiet, every third day busier.
    let days: Vec<i32> = (0..140).map(|i| day(1, 5) + i).collect();
    let values = (0..140i64)
        .map(|i| Some(if i % 7 >= 5 { 0 } else { 1 + (i % 3) * 2 }))
        .collect::<Vec<_>>();
    rows(vec![
        ("day", Arc::new(Date32Array::from(days))),
        ("value", Arc::new(Int64Array::from(values))),
    ])
}

#[test]
fn calendar() {
    let drawn = draw(
        &spec(ChartKind::Calendar, Unit::Count),
        &deployments_by_day(),
    );
    assert!(
        drawn.contains("Feb") && drawn.contains("Wed") && drawn.contains("max 5"),
        "{drawn}"
    );
}

#[test]
fn no_rows_or_only_nulls_is_a_no_data_panel() {
    let empty = |columns: Vec<(&str, ArrayRef)>| {
        let (schema, batches) = rows(columns);
        (
            schema,
            batches.iter().map(|b| b.slice(0, 0)).collect::<Vec<_>>(),
        )
    };
    let cases = [
        (ChartKind::Line, lead_time()),
        (ChartKind::StackedArea, cost_by_service()),
        (ChartKind::StackedBar, cost_by_service()),
        (ChartKind::Burn, march_burn()),
        (ChartKind::Calendar, deployments_by_day()),
        (
            ChartKind::Bar,
            rows(vec![
                ("label", text(&["a"])),
                ("value", floats(vec![Some(1.0)])),
            ]),
        ),
        (
            ChartKind::Stat,
            rows(vec![("value", floats(vec![Some(1.0)]))]),
        ),
        (ChartKind::Table, rows(vec![("anything", text(&["a"]))])),
    ];
    for (kind, (schema, batches)) in cases {
        let columns: Vec<(&str, ArrayRef)> = schema
            .fields()
            .iter()
            .zip(batches[0].columns())
            .map(|(f, a)| (f.name().as_str(), a.clone()))
            .collect();
        let spec = spec(kind, Unit::Number);
        let drawn = draw(&spec, &empty(columns));
        assert!(
            drawn.contains("No data for this selection"),
            "{kind:?}: {drawn}"
        );
        // Without any batch at all, too.
        let drawn = draw(&spec, &(schema, Vec::new()));
        assert!(
            drawn.contains("No data for this selection"),
            "{kind:?}: {drawn}"
        );
    }
    let all_null = rows(vec![
        ("x", text(&["a", "b"])),
        ("y", floats(vec![None, None])),
    ]);
    assert!(
        draw(&spec(ChartKind::Line, Unit::Number), &all_null)
            .contains("No data for this selection")
    );
}

#[test]
fn missing_or_mistyped_columns_are_named() {
    let (schema, batches) = rows(vec![
        ("x", text(&["a"])),
        ("value", floats(vec![Some(1.0)])),
    ]);
    let error = svg(&spec(ChartKind::Line, Unit::Number), &schema, &batches).unwrap_err();
    assert!(
        matches!(&error, ChartError::Column { column, .. } if column == "y"),
        "{error}"
    );
    assert!(error.to_string().contains("missing"), "{error}");

    let (schema, batches) = rows(vec![("label", text(&["a"])), ("value", text(&["12"]))]);
    let error = png(&spec(ChartKind::Bar, Unit::Number), &schema, &batches).unwrap_err();
    assert_eq!(
        error.to_string(),
        "column `value`: expected a numeric column (integer, float or decimal), found Utf8"
    );

    let (schema, batches) = rows(vec![
        ("day", text(&["2026-03-01"])),
        ("value", floats(vec![Some(1.0)])),
    ]);
    let error = svg(&spec(ChartKind::Calendar, Unit::Number), &schema, &batches).unwrap_err();
    assert!(
        matches!(&error, ChartError::Column { column, expected } if column == "day" && expected.contains("Date32"))
    );
}

#[test]
fn sizes_out_of_range_are_refused() {
    let (schema, batches) = lead_time();
    let tiny = ChartSpec {
        width: 10,
        ..spec(ChartKind::Line, Unit::Number)
    };
    assert!(matches!(
        svg(&tiny, &schema, &batches),
        Err(ChartError::Render(_))
    ));
}

#[test]
fn format_value_examples() {
    assert_eq!(format_value(12.5, Unit::Hours, ""), "12.5 h");
    assert_eq!(format_value(0.153, Unit::Percent, ""), "15.3 %");
    assert_eq!(format_value(1234.56, Unit::Currency, "USD"), "$1,234.56");
    assert_eq!(format_value(-1234.56, Unit::Currency, "USD"), "-$1,234.56");
    assert_eq!(format_value(1234.56, Unit::Currency, "EUR"), "1,234.56 EUR");
    assert_eq!(
        format_value(-9876543.2, Unit::Currency, "EUR"),
        "-9,876,543.20 EUR"
    );
}

/// Writes every kind as PNG under the target directory, to look at.
#[test]
fn sample_pngs() {
    let target = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .join("chart-samples");
    std::fs::create_dir_all(&target).unwrap();
    let mut line = spec(ChartKind::Line, Unit::Hours);
    line.title = "Lead time for changes".to_owned();
    line.thresholds = vec![Threshold {
        label: "elite below".to_owned(),
        value: 12.0,
    }];
    let mut bar = spec(ChartKind::Bar, Unit::Currency);
    bar.title = "Top cost movers".to_owned();
    let movers = rows(vec![
        (
            "label",
            text(&[
                "checkout-service-with-a-very-long-name-indeed",
                "search",
                "billing",
                "auth",
                "batch-jobs",
            ]),
        ),
        (
            "value",
            floats(vec![
                Some(4200.0),
                Some(1300.5),
                Some(-400.0),
                Some(-2750.0),
                Some(90.0),
            ]),
        ),
        (
            "detail",
            text(&["+38 %", "new index", "-5 %", "reserved instances", "+1 %"]),
        ),
    ]);
    let stat = rows(vec![
        ("value", floats(vec![Some(0.12)])),
        ("previous", floats(vec![Some(0.153)])),
        ("target", floats(vec![Some(0.15)])),
        ("level", text(&["high"])),
        ("better", text(&["lower"])),
    ]);
    let names: Vec<String> = (0..25).map(|i| format!("service-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let table = rows(vec![
        ("service", text(&names)),
        (
            "deployments",
            Arc::new(Int64Array::from((0..25).collect::<Vec<i64>>())),
        ),
        (
            "billed_cost",
            floats((0..25).map(|i| Some(1234.5678 * i as f64)).collect()),
        ),
    ]);
    let samples = [
        ("line", line, lead_time()),
        (
            "stacked_area",
            ChartSpec {
                title: "Cost by service".to_owned(),
                ..spec(ChartKind::StackedArea, Unit::Currency)
            },
            cost_by_service(),
        ),
        (
            "stacked_bar",
            ChartSpec {
                title: "Cost by service".to_owned(),
                ..spec(ChartKind::StackedBar, Unit::Currency)
            },
            cost_by_service(),
        ),
        ("bar", bar, movers),
        (
            "stat",
            ChartSpec {
                title: "Change failure rate".to_owned(),
                width: 320,
                height: 160,
                ..spec(ChartKind::Stat, Unit::Percent)
            },
            stat,
        ),
        (
            "table",
            ChartSpec {
                title: "Services".to_owned(),
                height: 520,
                ..spec(ChartKind::Table, Unit::Number)
            },
            table,
        ),
        (
            "burn",
            ChartSpec {
                title: "Budget burn, March".to_owned(),
                ..spec(ChartKind::Burn, Unit::Currency)
            },
            march_burn(),
        ),
        (
            "calendar",
            ChartSpec {
                title: "Deployments".to_owned(),
                width: 720,
                height: 220,
                ..spec(ChartKind::Calendar, Unit::Count)
            },
            deployments_by_day(),
        ),
        (
            "no_data",
            spec(ChartKind::Line, Unit::Number),
            rows(vec![("x", text(&[])), ("y", floats(vec![]))]),
        ),
        (
            "line_narrow_categories",
            ChartSpec {
                title: "Deployment frequency by team, a narrow panel".to_owned(),
                width: 320,
                height: 200,
                ..spec(ChartKind::Line, Unit::PerDay)
            },
            team_weeks(),
        ),
        (
            "stacked_bar_daily",
            ChartSpec {
                title: "Daily cost".to_owned(),
                width: 480,
                height: 240,
                ..spec(ChartKind::StackedBar, Unit::Currency)
            },
            daily_cost(),
        ),
    ];
    for (name, spec, (schema, batches)) in samples {
        let file = png(&spec, &schema, &batches).unwrap();
        check_png(&file, &spec);
        std::fs::write(target.join(format!("{name}.png")), file).unwrap();
        std::fs::write(
            target.join(format!("{name}.svg")),
            svg(&spec, &schema, &batches).unwrap(),
        )
        .unwrap();
    }
}

/// Thirty weekly labels on a narrow panel: labels must thin out, not overlap.
fn team_weeks() -> (Schema, Vec<RecordBatch>) {
    let weeks: Vec<String> = (1..=30).map(|w| format!("2026-W{w:02}")).collect();
    let weeks: Vec<&str> = weeks.iter().map(String::as_str).collect();
    rows(vec![
        ("x", text(&weeks)),
        (
            "y",
            floats((0..30).map(|w| Some(0.5 + (w % 7) as f64 * 0.4)).collect()),
        ),
    ])
}

/// Sixty days of cost in three services, as a long result.
fn daily_cost() -> (Schema, Vec<RecordBatch>) {
    let (mut x, mut series, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for d in 0..60 {
        for (s, name) in ["compute", "storage", "network"].iter().enumerate() {
            x.push(day(2, 1) + d);
            series.push(*name);
            y.push(Some(120.0 / (s + 1) as f64 + (d % 10) as f64 * 4.0));
        }
    }
    rows(vec![
        ("x", Arc::new(Date32Array::from(x))),
        ("series", text(&series)),
        ("y", floats(y)),
    ])
}
