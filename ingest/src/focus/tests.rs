//! Tests of the FOCUS reader on the real FOCUS sample, the specification's examples, malformed
//! files and a Parquet round trip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, DictionaryArray, Float64Array,
    Int64Array, LargeStringArray, MapBuilder, StringArray, StringBuilder,
    TimestampMillisecondArray, TimestampNanosecondArray,
};
use arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{TimeZone, Utc};

use super::*;
use crate::progress::NoProgress;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/focus/focus_1.0_sample_1000.csv"
);
const SPEC_EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/focus/spec_examples"
);

/// 2024-09-01T00:00:00Z in microseconds.
const SEPT_1: i64 = 1_725_148_800_000_000;

fn read(paths: &[PathBuf]) -> Result<Vec<CostSlice>, IngestError> {
    let ingested_at = Utc.timestamp_micros(SEPT_1).single().unwrap();
    read_focus_files(paths, ingested_at, &mut NoProgress)
}

fn read_one(path: impl AsRef<Path>) -> Result<Vec<CostSlice>, IngestError> {
    read(&[path.as_ref().to_owned()])
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every row of every slice, one batch after another.
fn batches(slices: &[CostSlice]) -> Vec<RecordBatch> {
    slices
        .iter()
        .flat_map(|s| s.batches.iter().cloned())
        .collect()
}

fn strings<'a>(batch: &'a RecordBatch, column: &str) -> &'a StringArray {
    batch.column_by_name(column).unwrap().as_string::<i32>()
}

fn money(batch: &RecordBatch, column: &str) -> Vec<Option<i128>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Decimal128Type>()
        .iter()
        .collect()
}

fn micros(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let array = batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    array.values().to_vec()
}

/// The tags of `row` as (key, value) pairs in stored order.
fn tags(batch: &RecordBatch, row: usize) -> Option<Vec<(String, Option<String>)>> {
    let map = batch.column_by_name("tags").unwrap().as_map();
    if map.is_null(row) {
        return None;
    }
    let entries = map.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    Some(
        (0..entries.len())
            .map(|i| {
                (
                    keys.value(i).to_owned(),
                    values.is_valid(i).then(|| values.value(i).to_owned()),
                )
            })
            .collect(),
    )
}

#[test]
fn sample_bill_sums_to_the_cent_per_provider() {
    let slices = read_one(SAMPLE).unwrap();
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    let mut billed: BTreeMap<String, i128> = BTreeMap::new();
    let mut effective: BTreeMap<String, i128> = BTreeMap::new();
    let mut list: BTreeMap<String, i128> = BTreeMap::new();
    for batch in batches(&slices) {
        assert_eq!(batch.schema(), model::schema::costs());
        let provider = strings(&batch, "provider");
        let (b, e, l) = (
            money(&batch, "billed_cost"),
            money(&batch, "effective_cost"),
            money(&batch, "list_cost"),
        );
        for row in 0..batch.num_rows() {
            let p = provider.value(row).to_owned();
            *rows.entry(p.clone()).or_default() += 1;
            *billed.entry(p.clone()).or_default() += b[row].unwrap();
            *effective.entry(p.clone()).or_default() += e[row].unwrap();
            *list.entry(p).or_default() += l[row].unwrap();
        }
    }
    let expect = |pairs: [(&str, i128); 3]| -> BTreeMap<String, i128> {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    assert_eq!(
        rows,
        [("AWS", 942), ("Microsoft", 51), ("Oracle", 7)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    );
    // Expected sums, in units of 10^-12, computed outside Rust with exact decimals:
    //   python3 -c 'import csv,decimal,collections as c; s=c.defaultdict(decimal.Decimal)
    //   for r in csv.DictReader(open("focus_1.0_sample_1000.csv")): s[r["ProviderName"]]+=decimal.Decimal(r["BilledCost"])
    //   print(s)'   (and likewise EffectiveCost, ListCost)
    // AWS 18.00663861840 / 13.00000000000 / 18.14931764060; Microsoft 1.97651418586 for all
    // three; Oracle 0.53707392473 / 0 / 0.26507392473.
    assert_eq!(
        billed,
        expect([
            ("AWS", 18_006_638_618_400),
            ("Microsoft", 1_976_514_185_860),
            ("Oracle", 537_073_924_730)
        ])
    );
    assert_eq!(
        effective,
        expect([
            ("AWS", 13_000_000_000_000),
            ("Microsoft", 1_976_514_185_860),
            ("Oracle", 0)
        ])
    );
    assert_eq!(
        list,
        expect([
            ("AWS", 18_149_317_640_600),
            ("Microsoft", 1_976_514_185_860),
            ("Oracle", 265_073_924_730)
        ])
    );
}

#[test]
fn sample_bill_slices_ids_and_the_late_oracle_row() {
    let slices = read_one(SAMPLE).unwrap();
    let keys: Vec<(&str, &str, usize)> = slices
        .iter()
        .map(|s| {
            (
                s.billing_account.as_str(),
                s.invoice_month.as_str(),
                s.num_rows(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (
                "/providers/Microsoft.Billing/billingAccounts/8611537",
                "2024-09",
                51
            ),
            ("1234567890123", "2024-09", 942),
            ("20209880", "2024-09", 6),
            // Charged 2024-09-30 22:00 but on the October invoice (BillingPeriodStart 2024-10-01).
            ("20209880", "2024-10", 1),
        ]
    );
    assert!(slices.iter().all(|s| s.source == "focus"));

    let aws = &slices[1].batches[0];
    let ids = strings(aws, "cost_id");
    assert_eq!(ids.value(0), "focus:1234567890123:2024-09:0");
    assert_eq!(ids.value(941), "focus:1234567890123:2024-09:941");
    // The file's first data row: 0.00000080000 billed, 2024-09-18 22:00 to 23:00, NULL tags.
    assert_eq!(money(aws, "billed_cost")[0], Some(800_000));
    assert_eq!(
        micros(aws, "charge_period_start")[0],
        SEPT_1 + (17 * 24 + 22) * 3_600_000_000
    );
    assert_eq!(
        micros(aws, "charge_period_end")[0],
        SEPT_1 + (17 * 24 + 23) * 3_600_000_000
    );
    assert_eq!(tags(aws, 0), None);
    assert!(
        strings(aws, "charge_class").is_null(0),
        "NULL reads as null"
    );
    assert_eq!(
        strings(aws, "cloud_service").value(0),
        "Amazon Simple Queue Service"
    );
    assert_eq!(strings(aws, "region").value(0), "us-west-2");
    assert_eq!(strings(aws, "sub_account").value(0), "51738928782");
    assert_eq!(strings(aws, "usage_unit").value(0), "Requests");
    let quantity = aws
        .column_by_name("usage_quantity")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(quantity.value(0), 2.0);
    // The second data row's tags, in the JSON's own order (not sorted).
    let keys: Vec<String> = tags(aws, 1).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["application", "environment", "business_unit"]);
    let provenance = aws
        .column_by_name("ingested_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert!(provenance.values().iter().all(|t| *t == SEPT_1));
    let estimated = aws
        .column_by_name("is_estimated")
        .unwrap()
        .as_any()
        .downcast_ref::<BooleanArray>();
    assert_eq!(estimated.unwrap().true_count(), 0);

    let late = &slices[3].batches[0];
    assert_eq!(strings(late, "provider").value(0), "Oracle");
    assert_eq!(strings(late, "invoice_month").value(0), "2024-10");
    assert_eq!(
        strings(late, "cost_id").value(0),
        "focus:20209880:2024-10:0"
    );
    assert_eq!(
        micros(late, "charge_period_start")[0],
        SEPT_1 + (29 * 24 + 22) * 3_600_000_000
    );
    assert_eq!(money(late, "billed_cost")[0], Some(240_000_000_000));
}

#[test]
fn sample_bill_keeps_tag_keys_exactly_as_written() {
    let slices = read_one(SAMPLE).unwrap();
    let mut key_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut tagged_rows = 0;
    for batch in batches(&slices) {
        for row in 0..batch.num_rows() {
            if let Some(entries) = tags(&batch, row) {
                tagged_rows += 1;
                for (key, _) in entries {
                    *key_counts.entry(key).or_default() += 1;
                }
            }
        }
    }
    // Counted with python's json module over the Tags column: 711 tagged rows; " org" (leading
    // space) on 23 of them, "org" on 42; 660 rows carry application/environment/business_unit.
    assert_eq!(tagged_rows, 711);
    assert_eq!(key_counts.get(" org"), Some(&23));
    assert_eq!(key_counts.get("org"), Some(&42));
    assert_eq!(key_counts.get("application"), Some(&660));
}

#[test]
fn sample_bill_usage_based_spellings_are_harmless() {
    // ChargeFrequency carries both `Usage-Based` (992 rows) and `Usage-based` (7); it is not a
    // `costs` column, so every row reads whatever its spelling.
    let text = std::fs::read_to_string(SAMPLE).unwrap();
    assert_eq!(text.matches("\"Usage-based\"").count(), 7);
    let rows: usize = read_one(SAMPLE)
        .unwrap()
        .iter()
        .map(CostSlice::num_rows)
        .sum();
    assert_eq!(rows, 1000);
}

#[test]
fn spec_example_all_upfront_savings_plan() {
    let slices = read_one(format!(
        "{SPEC_EXAMPLES}/aws_savings_plan_all_upfront_100pct.csv"
    ))
    .unwrap();
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(
        (slice.billing_account.as_str(), slice.invoice_month.as_str()),
        ("ACCT-123456789012", "2026-02")
    );
    assert_eq!(slice.num_rows(), 28);
    let batch = &slice.batches[0];
    let sum = |column| {
        money(batch, column)
            .into_iter()
            .map(Option::unwrap)
            .sum::<i128>()
    };
    // One 628004.40 purchase (effective 0: amortised into usage), 24 covered hours billed 0.00
    // with effective 71.69 each, 3 on-demand hours at 3.84:
    // billed 628004.40 + 3 × 3.84 = 628015.92; effective 24 × 71.69 + 3 × 3.84 = 1732.08.
    assert_eq!(sum("billed_cost"), 628_015_920_000_000_000);
    assert_eq!(sum("effective_cost"), 1_732_080_000_000_000);
    assert_eq!(strings(batch, "charge_category").value(0), "Purchase");
    assert_eq!(strings(batch, "provider").value(0), "Amazon Web Services");
    assert!(
        batch.column_by_name("usage_quantity").unwrap().is_null(0),
        "empty cell is null"
    );
    assert!(batch.column_by_name("charge_class").unwrap().is_null(0));
}

/// The two ledger examples lack `BillingAccountId`, `BillingCurrency` and `ProviderName`: read as
/// they are they are refused; with those columns added they read as corrections of a closed month.
#[test]
fn spec_example_ledgers_need_the_columns_they_lack() {
    let dir = tempfile::tempdir().unwrap();
    for (name, rows, billed) in [
        (
            "late_arriving_usage_closed_period_ledger.csv",
            1,
            1_500_000_000_000_000,
        ),
        // -1500 + 1200 + 300: the reallocation nets to zero.
        ("partial_reallocation_closed_period_ledger.csv", 3, 0),
    ] {
        let path = format!("{SPEC_EXAMPLES}/{name}");
        let error = read_one(&path).unwrap_err().to_string();
        assert!(error.starts_with(&path), "{error}");
        assert!(error.contains("column `BillingAccountId`"), "{error}");
        assert!(
            error.contains("`BillingCurrency`") && error.contains("`ProviderName`"),
            "{error}"
        );

        let text = std::fs::read_to_string(&path).unwrap();
        let completed: String = text
            .lines()
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, line)| {
                let prefix = if i == 0 {
                    "ProviderName,BillingAccountId,BillingCurrency"
                } else {
                    "Acme,A-1,USD"
                };
                format!("{prefix},{line}\n")
            })
            .collect();
        let slices = read_one(write(&dir, name, &completed)).unwrap();
        assert_eq!(slices.len(), 1);
        assert_eq!(
            slices[0].invoice_month, "2025-06",
            "billed in June for usage in May"
        );
        assert_eq!(slices[0].num_rows(), rows);
        let batch = &slices[0].batches[0];
        assert_eq!(
            money(batch, "billed_cost")
                .into_iter()
                .map(Option::unwrap)
                .sum::<i128>(),
            billed
        );
        assert_eq!(strings(batch, "charge_class").value(0), "Correction");
        // 2025-05-01T00:00:00Z
        assert_eq!(
            micros(batch, "charge_period_start")[0],
            1_746_057_600_000_000
        );
    }
}

const HEADER: &str = "ProviderName,BillingAccountId,BillingCurrency,BillingPeriodStart,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BilledCost,EffectiveCost,Tags";

fn line(billed: &str, start: &str, tags: &str) -> String {
    format!(
        "AWS,111,USD,2024-09-01T00:00:00Z,{start},2024-09-02T00:00:00Z,Usage,{billed},1.5,{tags}\n"
    )
}

#[test]
fn missing_required_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let header = HEADER.replace(",EffectiveCost", "");
    let path = write(
        &dir,
        "bill.csv",
        &format!("{header}\nAWS,111,USD,2024-09-01,2024-09-01,2024-09-02,Usage,1,\n"),
    );
    let error = read_one(&path).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}: column `EffectiveCost`: required FOCUS column is missing from the header",
            path.display()
        )
    );
}

#[test]
fn bad_number_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // The quoted tag value spans two physical lines, so the bad record starts on line 4.
    let text = format!(
        "{HEADER}\n{}{}{}",
        line(
            "1",
            "2024-09-01",
            r#""{""note"": ""two
lines""}""#
        ),
        line("abc", "2024-09-01", ""),
        line("2", "2024-09-01", ""),
    );
    let path = write(&dir, "bill.csv", &text);
    let error = read_one(&path).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            r#"{}:4: column `BilledCost`: expected a decimal number, found "abc""#,
            path.display()
        )
    );
}

#[test]
fn bad_timestamp_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}\n{}{}",
        line("1", "2024-09-01", ""),
        line("1", "2024-09-31 10:00:00", "")
    );
    let path = write(&dir, "bill.csv", &text);
    let error = read_one(&path).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:3: column `ChargePeriodStart`: expected a timestamp",
            path.display()
        )),
        "{error}"
    );
    assert!(error.contains("\"2024-09-31 10:00:00\""), "{error}");
}

#[test]
fn other_malformed_rows_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            line("NULL", "2024-09-01", ""),
            "column `BilledCost`: a value is required",
        ),
        (
            line("0.0000000000001", "2024-09-01", ""),
            "column `BilledCost`: more decimal places",
        ),
        (
            line("1", "2024-09-01", r#""{""a"": }""#),
            "column `Tags`: expected a JSON object",
        ),
        (
            "AWS,111\n".to_owned(),
            "expected 10 fields as in the header, found 2",
        ),
        (
            line("1", "2024-09-01", "").replace("Usage", ""),
            "column `ChargeCategory`: a value is required",
        ),
    ];
    for (row, wanted) in cases {
        let path = write(
            &dir,
            "bill.csv",
            &format!("{HEADER}\n{}{row}", line("1", "2024-09-01", "")),
        );
        let error = read_one(&path).unwrap_err().to_string();
        let prefix = format!("{}:3: ", path.display());
        assert!(
            error.starts_with(&prefix) && error.contains(wanted),
            "{error} lacks {prefix}…{wanted}"
        );
    }
}

#[test]
fn credits_duplicates_files_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    // A UTF-8 byte-order mark, a credit, and two identical line items: all kept, never deduped.
    let first = format!(
        "\u{feff}{HEADER},Id\n{}{}{}",
        line("-2.5", "2024-09-01", "").replace('\n', ",x\n"),
        line("1", "2024-09-01", "").replace('\n', ",y\n"),
        line("1", "2024-09-01", "").replace('\n', ",y\n"),
    );
    // A second file, columns reordered, continues the same slice.
    let second = "BilledCost,EffectiveCost,ChargeCategory,ChargePeriodEnd,ChargePeriodStart,BillingPeriodStart,BillingCurrency,BillingAccountId,ServiceProviderName\n\
                  4,4,Usage,2024-09-02,2024-09-01,2024-09-01,USD,111,Amazon Web Services\n";
    let paths = [write(&dir, "a.csv", &first), write(&dir, "b.CSV", second)];
    let slices = read(&paths).unwrap();
    assert_eq!(slices.len(), 1);
    let batch = &slices[0].batches[0];
    assert_eq!(
        money(batch, "billed_cost"),
        [
            Some(-2_500_000_000_000),
            Some(1_000_000_000_000),
            Some(1_000_000_000_000),
            Some(4_000_000_000_000)
        ]
    );
    let ids: Vec<&str> = strings(batch, "cost_id")
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(
        ids,
        [
            "focus:111:2024-09:0",
            "focus:111:2024-09:1",
            "focus:111:2024-09:2",
            "focus:111:2024-09:3"
        ]
    );
    assert_eq!(strings(batch, "provider").value(3), "Amazon Web Services");
    assert!(
        batch.column_by_name("tags").unwrap().is_null(0),
        "an empty Tags cell is null"
    );

    let error = read_one(write(&dir, "bill.json", "{}"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("expected a name ending in .csv or .parquet"),
        "{error}"
    );
    let error = read_one(dir.path().join("absent.csv")).unwrap_err();
    assert!(matches!(error, IngestError::Io { .. }), "{error}");
}

#[test]
fn large_slices_split_into_batches() {
    let dir = tempfile::tempdir().unwrap();
    let rows = slices::BATCH_ROWS + 10;
    let mut text = format!("{HEADER}\n");
    for _ in 0..rows {
        text.push_str(&line("0.01", "2024-09-01", r#""{""team"": ""a""}""#));
    }
    let slices = read_one(write(&dir, "big.csv", &text)).unwrap();
    let sizes: Vec<usize> = slices[0]
        .batches
        .iter()
        .map(RecordBatch::num_rows)
        .collect();
    assert_eq!(sizes, [slices::BATCH_ROWS, 10]);
    let last = &slices[0].batches[1];
    assert_eq!(
        strings(last, "cost_id").value(9),
        format!("focus:111:2024-09:{}", rows - 1)
    );
}

/// Writes a FOCUS bill as Parquet with the physical types exporters choose (decimals of other
/// scales, floats, nanosecond and naive timestamps, dictionaries, large strings, a map of tags)
/// and reads it back.
#[test]
fn parquet_round_trip() {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    let dir = tempfile::tempdir().unwrap();
    let mut tag_map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    tag_map.keys().append_value(" org");
    tag_map.values().append_value("shop");
    tag_map.keys().append_value("team");
    tag_map.values().append_null();
    tag_map.append(true).unwrap();
    tag_map.append(false).unwrap();
    tag_map.append(true).unwrap();
    let sept = |hours: i64| SEPT_1 + hours * 3_600_000_000;
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("Id", Arc::new(Int64Array::from(vec![1, 2, 3]))),
        (
            "BilledCost",
            Arc::new(
                Decimal128Array::from(vec![Some(12_345_000_000), Some(-10_000_000_000), Some(1)])
                    .with_precision_and_scale(20, 10)
                    .unwrap(),
            ),
        ),
        (
            "EffectiveCost",
            Arc::new(Float64Array::from(vec![0.1, -1.25, 0.0])),
        ),
        (
            "ListCost",
            Arc::new(StringArray::from(vec![Some("2.5"), None, Some("NULL")])),
        ),
        (
            "BillingAccountId",
            Arc::new(Int64Array::from(vec![111, 111, 222])),
        ),
        (
            "BillingCurrency",
            Arc::new(DictionaryArray::<Int32Type>::from_iter([
                "USD", "USD", "EUR",
            ])),
        ),
        (
            "BillingPeriodStart",
            Arc::new(TimestampNanosecondArray::from(vec![SEPT_1 * 1000; 3]).with_timezone("UTC")),
        ),
        (
            "ChargePeriodStart",
            Arc::new(TimestampMillisecondArray::from(vec![
                sept(0) / 1000,
                sept(1) / 1000,
                sept(2) / 1000,
            ])),
        ),
        (
            "ChargePeriodEnd",
            Arc::new(StringArray::from(vec![
                "2024-09-01 01:00:00",
                "2024-09-01T02:00:00Z",
                "2024-09-01T03:00:00+00:00",
            ])),
        ),
        (
            "ChargeCategory",
            Arc::new(LargeStringArray::from(vec!["Usage", "Credit", "Usage"])),
        ),
        (
            "ServiceProviderName",
            Arc::new(StringArray::from(vec!["AWS", "AWS", "Microsoft"])),
        ),
        ("Tags", Arc::new(tag_map.finish())),
        (
            "ConsumedQuantity",
            Arc::new(
                Decimal128Array::from(vec![Some(15), None, Some(2)])
                    .with_precision_and_scale(10, 1)
                    .unwrap(),
            ),
        ),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let path = dir.path().join("bill.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    assert!(matches!(
        batch.column(6).data_type(),
        DataType::Timestamp(TimeUnit::Nanosecond, _)
    ));

    let slices = read_one(&path).unwrap();
    let keys: Vec<(&str, &str, usize)> = slices
        .iter()
        .map(|s| {
            (
                s.billing_account.as_str(),
                s.invoice_month.as_str(),
                s.num_rows(),
            )
        })
        .collect();
    assert_eq!(keys, [("111", "2024-09", 2), ("222", "2024-09", 1)]);
    let first = &slices[0].batches[0];
    assert_eq!(first.schema(), model::schema::costs());
    // 1.2345000000 at scale 10 is 1.234500000000 at scale 12; -1.0000000000 likewise.
    assert_eq!(
        money(first, "billed_cost"),
        [Some(1_234_500_000_000), Some(-1_000_000_000_000)]
    );
    // The float 0.1 is read through its shortest text, "0.1", so exactly 0.1.
    assert_eq!(
        money(first, "effective_cost"),
        [Some(100_000_000_000), Some(-1_250_000_000_000)]
    );
    assert_eq!(money(first, "list_cost"), [Some(2_500_000_000_000), None]);
    assert_eq!(strings(first, "currency").value(0), "USD");
    assert_eq!(strings(first, "provider").value(0), "AWS");
    assert_eq!(strings(first, "charge_category").value(1), "Credit");
    assert_eq!(micros(first, "charge_period_start"), [sept(0), sept(1)]);
    assert_eq!(micros(first, "charge_period_end"), [sept(1), sept(2)]);
    assert_eq!(
        tags(first, 0),
        Some(vec![
            (" org".to_owned(), Some("shop".to_owned())),
            ("team".to_owned(), None)
        ])
    );
    assert_eq!(tags(first, 1), None);
    let quantity = first
        .column_by_name("usage_quantity")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!((quantity.value(0), quantity.is_null(1)), (1.5, true));
    let second = &slices[1].batches[0];
    assert_eq!(
        money(second, "billed_cost"),
        [Some(100)],
        "0.0000000001 at scale 10 is 100 at scale 12"
    );
    assert_eq!(strings(second, "cost_id").value(0), "focus:222:2024-09:0");
    assert_eq!(tags(second, 0), Some(vec![]));
}

#[test]
fn parquet_errors_name_column_and_row() {
    use arrow::datatypes::{Field, Schema};

    let dir = tempfile::tempdir().unwrap();
    let text = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("BilledCost", Arc::new(Float64Array::from(vec![1.0, 1e-13]))),
        ("EffectiveCost", text(vec!["1", "1"])),
        ("BillingAccountId", text(vec!["1", "1"])),
        ("BillingCurrency", text(vec!["USD", "USD"])),
        ("BillingPeriodStart", text(vec!["2024-09-01", "2024-09-01"])),
        ("ChargePeriodStart", text(vec!["2024-09-01", "2024-09-01"])),
        ("ChargePeriodEnd", text(vec!["2024-09-02", "2024-09-02"])),
        ("ChargeCategory", text(vec!["Usage", "Usage"])),
        ("ProviderName", text(vec!["AWS", "AWS"])),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let path = dir.path().join("bill.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let error = read_one(&path).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}: column `BilledCost`: row index 1: more decimal places",
            path.display()
        )),
        "{error}"
    );

    let error = read_one(write(&dir, "junk.parquet", "not parquet"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a readable Parquet file"), "{error}");
}

/// Defaults fill only what a file leaves out: a stated `BillingAccountId` wins over the default, an
/// empty one takes it; a file without `BillingCurrency` or `ProviderName` takes those defaults.
#[test]
fn defaults_fill_missing_columns_and_empty_cells_only() {
    let dir = tempfile::tempdir().unwrap();
    let text = "BilledCost,EffectiveCost,BillingAccountId,BillingPeriodStart,ChargePeriodStart,\
                ChargePeriodEnd,ChargeCategory\n\
                1.50,1.25,stated,2024-09-01,2024-09-02,2024-09-03,Usage\n\
                2.00,2.00,,2024-09-01,2024-09-02,2024-09-03,Usage\n";
    let path = write(&dir, "no-currency.csv", text);
    let error = read_one(&path).unwrap_err().to_string();
    assert!(error.contains("--default-currency"), "{error}");
    let defaults = FocusDefaults {
        billing_account: Some("fallback".to_owned()),
        currency: Some("EUR".to_owned()),
        provider: Some("Example".to_owned()),
    };
    let ingested_at = Utc.timestamp_micros(SEPT_1).single().unwrap();
    let slices = read_focus_files_with(&[path], &defaults, ingested_at, &mut NoProgress).unwrap();
    let accounts: Vec<(&str, usize)> = slices
        .iter()
        .map(|s| (s.billing_account.as_str(), s.num_rows()))
        .collect();
    assert_eq!(accounts, [("fallback", 1), ("stated", 1)]);
    for slice in &slices {
        let batch = &slice.batches[0];
        assert_eq!(strings(batch, "currency").value(0), "EUR");
        assert_eq!(strings(batch, "provider").value(0), "Example");
    }
    // 2.00 under the default account, 1.50 under the stated one.
    assert_eq!(
        money(&slices[0].batches[0], "billed_cost"),
        [Some(2_000_000_000_000)]
    );
    assert_eq!(
        money(&slices[1].batches[0], "billed_cost"),
        [Some(1_500_000_000_000)]
    );
}
