//! Tests of the CUR reader: CUR 2.0 CSV and Parquet, legacy CSV (plain and gzip), the
//! amortised-cost rules on every line item type, and errors that name file, place and column.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
use chrono::{TimeZone, Utc};

use super::*;
use crate::progress::NoProgress;

/// 10^-12 units: the lake's money scale.
const ONE: i128 = 1_000_000_000_000;

fn read(path: &Path) -> Result<Vec<CostSlice>, IngestError> {
    let ingested_at = Utc.with_ymd_and_hms(2025, 10, 3, 0, 0, 0).unwrap();
    read_cur_files(&[path.to_owned()], ingested_at, &mut NoProgress)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn all_batches(slices: &[CostSlice]) -> Vec<RecordBatch> {
    slices.iter().flat_map(|s| s.batches.clone()).collect()
}

fn money_column(batches: &[RecordBatch], column: &str) -> Vec<Option<i128>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_primitive::<Decimal128Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn text_column(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The tags of every row as "k=v" pairs in stored order; `None` for a null map.
fn tags(batches: &[RecordBatch]) -> Vec<Option<Vec<String>>> {
    let mut out = Vec::new();
    for batch in batches {
        let map = batch.column_by_name("tags").unwrap().as_map();
        let keys = map.keys().as_string::<i32>();
        let values = map.values().as_string::<i32>();
        for row in 0..map.len() {
            if map.is_null(row) {
                out.push(None);
                continue;
            }
            let offsets = map.value_offsets();
            let range = offsets[row] as usize..offsets[row + 1] as usize;
            out.push(Some(
                range
                    .map(|i| format!("{}={}", keys.value(i), values.value(i)))
                    .collect(),
            ));
        }
    }
    out
}

const CUR2_HEADER: &str = "bill_payer_account_id,bill_billing_period_start_date,line_item_usage_account_id,\
line_item_line_item_type,line_item_usage_start_date,line_item_usage_end_date,line_item_product_code,product,\
product_region_code,line_item_resource_id,line_item_usage_amount,pricing_unit,line_item_currency_code,\
line_item_unblended_cost,pricing_public_on_demand_cost,savings_plan_savings_plan_effective_cost,\
savings_plan_total_commitment_to_date,savings_plan_used_commitment,reservation_effective_cost,\
reservation_unused_amortized_upfront_fee_for_billing_period,reservation_unused_recurring_fee,\
reservation_reservation_a_r_n,resource_tags";

/// One CUR 2.0 CSV row of September 2025 for payer 111122223333: type, product JSON, unblended,
/// list, SP effective, SP commitment to date, SP used, RI effective, RI unused upfront, RI unused
/// recurring, RI ARN, tags JSON.
#[allow(clippy::too_many_arguments)]
fn cur2_row(
    line_item_type: &str,
    product: &str,
    unblended: &str,
    list: &str,
    sp: [&str; 3],
    ri: [&str; 4],
    tags: &str,
) -> String {
    let quote = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
    };
    format!(
        "111122223333,2025-09-01T00:00:00.000Z,300000000001,{line_item_type},2025-09-02T00:00:00.000Z,\
         2025-09-03T00:00:00.000Z,AmazonEC2,{},us-east-1,i-0abc,24.0,Hrs,USD,{unblended},{list},{},{},{},{},{},{},{},{}",
        quote(product),
        sp[0],
        sp[1],
        sp[2],
        ri[0],
        ri[1],
        ri[2],
        ri[3],
        quote(tags)
    )
}

/// Every line item type AWS writes, with amounts chosen so each rule shows:
///
/// | type | unblended (billed) | effective |
/// |---|---|---|
/// | Usage | 1.25 | 1.25 |
/// | SavingsPlanCoveredUsage | 0.096 | 0.0672 (SP effective cost) |
/// | SavingsPlanNegation | −0.096 | 0 |
/// | SavingsPlanRecurringFee | 50.00 | 50.00 − 42.50 = 7.50 (unused commitment) |
/// | DiscountedUsage | 0.10 | 0.06 (reservation effective cost) |
/// | RIFee | 30.00 | 2.00 + 1.00 = 3.00 (unused upfront + unused recurring) |
/// | Fee with an RI ARN | 100.00 | 0 |
/// | Tax | 5.00 | 5.00 |
/// | Credit | −2.50 | −2.50 |
///
/// Billed: 1.25 + 0.096 − 0.096 + 50 + 0.10 + 30 + 100 + 5 − 2.50 = 183.85.
/// Effective: 1.25 + 0.0672 + 0 + 7.50 + 0.06 + 3.00 + 0 + 5 − 2.50 = 14.3772.
fn cur2_csv() -> String {
    let ec2 = r#"{"product_name": "Amazon Elastic Compute Cloud", "sku": "ABC"}"#;
    let tagged = r#"{"user_service": "checkout", "aws_createdBy": "ci"}"#;
    let rows = [
        cur2_row(
            "Usage",
            r#"{"product_name": "Amazon Simple Storage Service"}"#,
            "1.25",
            "1.25",
            ["", "", ""],
            ["", "", "", ""],
            tagged,
        ),
        cur2_row(
            "SavingsPlanCoveredUsage",
            ec2,
            "0.096",
            "0.096",
            ["0.0672", "", ""],
            ["", "", "", ""],
            tagged,
        ),
        cur2_row(
            "SavingsPlanNegation",
            ec2,
            "-0.096",
            "",
            ["", "", ""],
            ["", "", "", ""],
            tagged,
        ),
        cur2_row(
            "SavingsPlanRecurringFee",
            ec2,
            "50.00",
            "",
            ["", "50.00", "42.50"],
            ["", "", "", ""],
            "",
        ),
        cur2_row(
            "DiscountedUsage",
            ec2,
            "0.10",
            "0.16",
            ["", "", ""],
            ["0.06", "", "", "arn:aws:ec2:ri/1"],
            "{}",
        ),
        cur2_row(
            "RIFee",
            ec2,
            "30.00",
            "",
            ["", "", ""],
            ["", "2.00", "1.00", "arn:aws:ec2:ri/1"],
            "",
        ),
        cur2_row(
            "Fee",
            ec2,
            "100.00",
            "",
            ["", "", ""],
            ["", "", "", "arn:aws:ec2:ri/1"],
            "",
        ),
        cur2_row("Tax", "", "5.00", "", ["", "", ""], ["", "", "", ""], ""),
        cur2_row(
            "Credit",
            "",
            "-2.50",
            "",
            ["", "", ""],
            ["", "", "", ""],
            "",
        ),
    ];
    format!("{CUR2_HEADER}\n{}\n", rows.join("\n"))
}

#[test]
fn cur2_csv_maps_every_line_item_type() {
    let dir = tempfile::tempdir().unwrap();
    let slices = read(&write(&dir, "cur2.csv", &cur2_csv())).unwrap();
    assert_eq!(slices.len(), 1);
    assert_eq!(
        (
            slices[0].source.as_str(),
            slices[0].billing_account.as_str(),
            slices[0].invoice_month.as_str()
        ),
        ("cur", "111122223333", "2025-09")
    );
    let batches = all_batches(&slices);
    let billed = money_column(&batches, "billed_cost");
    let effective = money_column(&batches, "effective_cost");
    assert_eq!(
        billed.iter().map(|v| v.unwrap()).sum::<i128>(),
        18_385 * ONE / 100
    );
    assert_eq!(
        effective.iter().map(|v| v.unwrap()).sum::<i128>(),
        143_772 * ONE / 10_000
    );
    assert_eq!(
        effective,
        [
            125 * ONE / 100,
            672 * ONE / 10_000,
            0,
            750 * ONE / 100,
            6 * ONE / 100,
            3 * ONE,
            0,
            5 * ONE,
            -250 * ONE / 100
        ]
        .map(Some)
    );
    assert_eq!(
        text_column(&batches, "charge_category"),
        [
            "Usage", "Usage", "Usage", "Purchase", "Usage", "Purchase", "Purchase", "Tax", "Credit"
        ]
        .map(|s| Some(s.to_owned()))
    );
    let services = text_column(&batches, "cloud_service");
    assert_eq!(
        services[0].as_deref(),
        Some("Amazon Simple Storage Service")
    );
    assert_eq!(services[1].as_deref(), Some("Amazon Elastic Compute Cloud"));
    // No product JSON: the product code.
    assert_eq!(services[7].as_deref(), Some("AmazonEC2"));
    assert_eq!(text_column(&batches, "provider")[0].as_deref(), Some("AWS"));
    assert_eq!(
        text_column(&batches, "sub_account")[0].as_deref(),
        Some("300000000001")
    );
    assert_eq!(
        text_column(&batches, "region")[0].as_deref(),
        Some("us-east-1")
    );
    assert_eq!(
        text_column(&batches, "cost_id")[8].as_deref(),
        Some("cur:111122223333:2025-09:8")
    );
    assert_eq!(
        money_column(&batches, "list_cost")[..3],
        [Some(125 * ONE / 100), Some(96 * ONE / 1000), None]
    );
    let tags = tags(&batches);
    assert_eq!(
        tags[0],
        Some(vec![
            "service=checkout".to_owned(),
            "aws_createdBy=ci".to_owned()
        ])
    );
    assert_eq!(tags[3], None);
    assert_eq!(tags[4], Some(vec![]));
    let start = batches[0]
        .column_by_name("charge_period_start")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    assert_eq!(
        start,
        Utc.with_ymd_and_hms(2025, 9, 2, 0, 0, 0)
            .unwrap()
            .timestamp_micros()
    );
}

const LEGACY_HEADER: &str = "identity/LineItemId,bill/PayerAccountId,bill/BillingPeriodStartDate,\
lineItem/UsageAccountId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UsageEndDate,\
lineItem/ProductCode,lineItem/ResourceId,lineItem/UsageAmount,lineItem/CurrencyCode,\
lineItem/UnblendedCost,pricing/publicOnDemandCost,pricing/unit,product/ProductName,product/regionCode,\
savingsPlan/SavingsPlanEffectiveCost,resourceTags/user:service,resourceTags/user:team,resourceTags/aws:createdBy";

/// Legacy CUR: Usage 2.00 (service checkout, team payments) in September; covered usage billed
/// 1.00, effective 0.70 (service search) in September; untagged usage 0.50 billed in October.
/// September: billed 2.00 + 1.00 = 3.00, effective 2.00 + 0.70 = 2.70; October 0.50 both.
fn legacy_csv() -> String {
    [
        LEGACY_HEADER,
        "a1,111122223333,2025-09-01T00:00:00Z,300000000001,Usage,2025-09-02T00:00:00Z,2025-09-03T00:00:00Z,AmazonRDS,db-1,24,USD,2.00,2.00,Hrs,Amazon Relational Database Service,eu-west-1,,checkout,payments,",
        "a2,111122223333,2025-09-01T00:00:00Z,300000000002,SavingsPlanCoveredUsage,2025-09-02T00:00:00Z,2025-09-03T00:00:00Z,AmazonEC2,i-1,24,USD,1.00,1.00,Hrs,Amazon Elastic Compute Cloud,us-east-1,0.70,search,,ci-bot",
        "a3,111122223333,2025-10-01T00:00:00Z,300000000002,Usage,2025-09-30T00:00:00Z,2025-10-01T00:00:00Z,AmazonS3,,1,USD,0.50,0.50,GB-Mo,,us-east-1,,,,",
    ]
    .join("\n")
        + "\n"
}

fn check_legacy(slices: &[CostSlice]) {
    assert_eq!(
        slices
            .iter()
            .map(|s| (s.invoice_month.as_str(), s.num_rows()))
            .collect::<Vec<_>>(),
        [("2025-09", 2), ("2025-10", 1)]
    );
    let september = &slices[0].batches;
    assert_eq!(
        money_column(september, "billed_cost"),
        [Some(2 * ONE), Some(ONE)]
    );
    assert_eq!(
        money_column(september, "effective_cost"),
        [Some(2 * ONE), Some(7 * ONE / 10)]
    );
    assert_eq!(
        tags(september),
        [
            Some(vec![
                "service=checkout".to_owned(),
                "team=payments".to_owned()
            ]),
            Some(vec![
                "service=search".to_owned(),
                "aws:createdBy=ci-bot".to_owned()
            ]),
        ]
    );
    assert_eq!(
        text_column(september, "cloud_service")[0].as_deref(),
        Some("Amazon Relational Database Service")
    );
    assert_eq!(
        text_column(september, "usage_unit")[0].as_deref(),
        Some("Hrs")
    );
    let october = &slices[1].batches;
    assert_eq!(tags(october), [None]);
    // No product name: the product code.
    assert_eq!(
        text_column(october, "cloud_service")[0].as_deref(),
        Some("AmazonS3")
    );
    assert_eq!(money_column(october, "effective_cost"), [Some(ONE / 2)]);
}

#[test]
fn legacy_csv_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    check_legacy(&read(&write(&dir, "legacy.csv", &legacy_csv())).unwrap());

    let path = dir.path().join("legacy-00001.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(legacy_csv().as_bytes()).unwrap();
    gz.finish().unwrap();
    check_legacy(&read(&path).unwrap());
}

/// A CUR 2.0 Parquet file as AWS writes it: costs as doubles, timestamps in milliseconds,
/// `resource_tags` and `product` as maps. Rows per row group: `row_group_rows`.
fn write_cur2_parquet(path: &Path, unblended: Vec<Option<f64>>, row_group_rows: usize) {
    let n = unblended.len();
    let strings = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
    let millis = |text: &str| -> ArrayRef {
        let at = chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis();
        Arc::new(TimestampMillisecondArray::from(vec![at; n]))
    };
    let map = |entries: &[(&str, &str)]| -> ArrayRef {
        let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for _ in 0..n {
            for (k, v) in entries {
                builder.keys().append_value(k);
                builder.values().append_value(v);
            }
            builder.append(true).unwrap();
        }
        Arc::new(builder.finish())
    };
    let types: Vec<&str> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                "Usage"
            } else {
                "SavingsPlanCoveredUsage"
            }
        })
        .collect();
    let sp_effective: Vec<Option<f64>> = (0..n).map(|i| (i % 2 == 1).then_some(0.0672)).collect();
    let batch = RecordBatch::try_from_iter(vec![
        ("bill_payer_account_id", strings("111122223333")),
        (
            "bill_billing_period_start_date",
            millis("2025-09-01T00:00:00Z"),
        ),
        ("line_item_usage_account_id", strings("300000000001")),
        (
            "line_item_line_item_type",
            Arc::new(StringArray::from(types)) as ArrayRef,
        ),
        ("line_item_usage_start_date", millis("2025-09-02T00:00:00Z")),
        ("line_item_usage_end_date", millis("2025-09-02T01:00:00Z")),
        ("line_item_product_code", strings("AmazonEC2")),
        (
            "product",
            map(&[
                ("product_name", "Amazon Elastic Compute Cloud"),
                ("sku", "X"),
            ]),
        ),
        ("product_region_code", strings("us-east-1")),
        ("line_item_currency_code", strings("USD")),
        (
            "line_item_unblended_cost",
            Arc::new(Float64Array::from(unblended)) as ArrayRef,
        ),
        (
            "savings_plan_savings_plan_effective_cost",
            Arc::new(Float64Array::from(sp_effective)) as ArrayRef,
        ),
        ("resource_tags", map(&[("user_service", "checkout")])),
    ])
    .unwrap();
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn cur2_parquet_with_map_columns_reads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cur2.parquet");
    // Usage 0.096, covered 0.096 (effective 0.0672), usage 1.1:
    // billed 0.096 + 0.096 + 1.1 = 1.292; effective 0.096 + 0.0672 + 1.1 = 1.2632.
    write_cur2_parquet(&path, vec![Some(0.096), Some(0.096), Some(1.1)], 2);
    let batches = all_batches(&read(&path).unwrap());
    let sum = |c| {
        money_column(&batches, c)
            .into_iter()
            .map(Option::unwrap)
            .sum::<i128>()
    };
    assert_eq!(sum("billed_cost"), 1_292 * ONE / 1000);
    assert_eq!(sum("effective_cost"), 12_632 * ONE / 10_000);
    assert_eq!(
        text_column(&batches, "cloud_service")[2].as_deref(),
        Some("Amazon Elastic Compute Cloud")
    );
    assert_eq!(tags(&batches)[1], Some(vec!["service=checkout".to_owned()]));
}

#[test]
fn errors_name_file_place_and_column() {
    let dir = tempfile::tempdir().unwrap();

    // CUR 2.0 CSV: a bad amount on the third record (line 4).
    let text = cur2_csv();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replace(",-0.096,", ",-0.09x6,");
    let path = write(&dir, "bad-amount.csv", &(lines.join("\n") + "\n"));
    let error = read(&path).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:4: column `line_item_unblended_cost`",
            path.display()
        )),
        "{error}"
    );
    assert!(error.contains("-0.09x6"), "{error}");

    // A covered usage without its savings plan effective cost.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace(",0.0672,", ",,");
    let path = write(&dir, "no-sp.csv", &(lines.join("\n") + "\n"));
    let error = read(&path).unwrap_err().to_string();
    assert!(
        error.contains(":3: column `savings_plan_savings_plan_effective_cost`")
            && error.contains("SavingsPlanCoveredUsage"),
        "{error}"
    );

    // Legacy: a record with one field too many (`2,00` for `2.00`) is named by its line; a bad
    // amount by its line and the column as the file writes it.
    let text = legacy_csv().replace(",2.00,2.00,", ",2,00,2.00,");
    let path = write(&dir, "legacy-bad.csv", &text);
    let error = read(&path).unwrap_err().to_string();
    assert!(error.contains("legacy-bad.csv:2"), "{error}");
    let text = legacy_csv().replace("24,USD,2.00,", "24,USD,two,");
    let path = write(&dir, "legacy-bad2.csv", &text);
    let error = read(&path).unwrap_err().to_string();
    assert!(
        error.contains("legacy-bad2.csv:2: column `lineItem/UnblendedCost`"),
        "{error}"
    );
    let text = legacy_csv().replace("lineItem/UsageStartDate", "lineItem/Start");
    let path = write(&dir, "legacy-missing.csv", &text);
    let error = read(&path).unwrap_err().to_string();
    assert!(
        error.contains(
            "legacy-missing.csv: column `lineItem/UsageStartDate`: required CUR column is missing"
        ),
        "{error}"
    );

    // Parquet: row groups of 2 rows; the null cost is the file's 4th row: row group 1, row 1.
    let path = dir.path().join("bad.parquet");
    write_cur2_parquet(&path, vec![Some(1.0), Some(1.0), Some(1.0), None], 2);
    let error = read(&path).unwrap_err().to_string();
    assert!(
        error.contains("bad.parquet: column `line_item_unblended_cost`: row group 1, row 1:"),
        "{error}"
    );
    assert!(
        read(&write(&dir, "bill.txt", "x"))
            .unwrap_err()
            .to_string()
            .contains(".csv.gz"),
        "an unknown extension names the ones read"
    );
}
