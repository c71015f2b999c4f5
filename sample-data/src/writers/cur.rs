//! AWS Cost and Usage Reports of the organisation's AWS spend, one file per month, in three
//! dialects: CUR 2.0 as Parquet (map columns `resource_tags` and `product`, decimal costs) and as
//! CSV (those maps as JSON text), and legacy CUR CSV (`lineItem/UnblendedCost`,
//! `resourceTags/user:service`).
//!
//! Each ground-truth line item is one CUR line item: credits are `Credit`; commitment-covered
//! usage is `SavingsPlanCoveredUsage` whose unblended cost is the truth's billed cost and whose
//! savings plan effective cost is the truth's effective cost (the truth bills covered usage at the
//! on-demand rate, so no `SavingsPlanNegation` rows are written); everything else is `Usage`.
//! Azure spend has no CUR and is skipped. Not part of `generate` (the large scale would triple its
//! output): tests and benchmarks call [`write_cur`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;

use crate::calendar::{DAY, Month, format_timestamp, month_key, months};
use crate::costs::{CostLine, Provider, Tags, month_lines, owners};
use crate::money::{Money, format_fixed, format_money};
use crate::org::Org;
use crate::{GenerateError, Scale};

/// The CUR dialects written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurFormat {
    /// CUR 2.0 (AWS Data Exports) as Parquet.
    Cur2Parquet,
    /// CUR 2.0 as CSV.
    Cur2Csv,
    /// Legacy CUR as CSV.
    LegacyCsv,
}

impl CurFormat {
    fn file_name(self, month: &Month) -> String {
        match self {
            CurFormat::Cur2Parquet => format!("cur2-{}.parquet", month.key()),
            CurFormat::Cur2Csv => format!("cur2-{}.csv", month.key()),
            CurFormat::LegacyCsv => format!("cur-legacy-{}.csv", month.key()),
        }
    }
}

/// Exact sums of what the files hold, from the ground truth's line items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurTruth {
    /// Line items written.
    pub rows: u64,
    /// (product name, `YYYY-MM` of the charge) → sum of unblended (billed) cost.
    pub billed: BTreeMap<(String, String), Money>,
    /// (product name, `YYYY-MM` of the charge) → sum of effective cost.
    pub effective: BTreeMap<(String, String), Money>,
    /// `service` tag value (`shared`, `unallocated` for lines without one) → sum of effective cost.
    pub effective_by_service_tag: BTreeMap<String, Money>,
}

/// What [`write_cur`] wrote.
#[derive(Debug, Clone)]
pub struct CurReport {
    /// One file per month, in order.
    pub files: Vec<PathBuf>,
    /// Their exact sums.
    pub truth: CurTruth,
}

/// Writes the AWS spend of the organisation of `scale` and `seed` as CUR files of `format` into
/// `dir`, one per month, streaming owner by owner as `generate` does.
pub fn write_cur(
    scale: Scale,
    seed: u64,
    dir: &Path,
    format: CurFormat,
) -> Result<CurReport, GenerateError> {
    std::fs::create_dir_all(dir).map_err(|source| GenerateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let org = Org::plan(scale);
    let owners = owners(&org);
    let mut truth = CurTruth::default();
    let mut files = Vec::new();
    for month in months() {
        let path = dir.join(format.file_name(&month));
        let mut file = MonthFile::create(&path, format)?;
        for &owner in &owners {
            for line in month_lines(&org, owner, &month, seed) {
                if line.provider != Provider::Aws {
                    continue;
                }
                let item = LineItem::of(&line, &month);
                file.write(&item)?;
                truth.rows += 1;
                let key = (line.service_name.to_owned(), month_key(line.day));
                *truth.billed.entry(key.clone()).or_default() += line.billed_cost;
                *truth.effective.entry(key).or_default() += line.effective_cost;
                *truth
                    .effective_by_service_tag
                    .entry(line.tags.allocation().to_owned())
                    .or_default() += line.effective_cost;
            }
        }
        files.push(file.finish()?);
    }
    Ok(CurReport { files, truth })
}

/// One CUR line item, dialect-free.
struct LineItem<'a> {
    line: &'a CostLine,
    line_item_type: &'static str,
    billing_period_start: String,
    usage_start: String,
    usage_end: String,
    /// `savings_plan_savings_plan_effective_cost`, on covered usage only.
    sp_effective_cost: Option<Money>,
    /// User tags, keys without a prefix.
    tags: Vec<(&'static str, &'a str)>,
}

impl<'a> LineItem<'a> {
    fn of(line: &'a CostLine, month: &Month) -> Self {
        let (line_item_type, sp_effective_cost) = if line.is_credit {
            ("Credit", None)
        } else if line.commitment_discount_id.is_some() {
            ("SavingsPlanCoveredUsage", Some(line.effective_cost))
        } else {
            ("Usage", None)
        };
        let tags = match &line.tags {
            Tags::Service { service, team } => vec![("service", service.as_str()), ("team", team)],
            Tags::TeamOnly { team } => vec![("team", team.as_str())],
            Tags::Shared => vec![("shared", "platform")],
            Tags::Untagged => vec![],
        };
        LineItem {
            line,
            line_item_type,
            billing_period_start: format_timestamp(month.first_day * DAY),
            usage_start: format_timestamp(line.day * DAY),
            usage_end: format_timestamp((line.day + 1) * DAY),
            sp_effective_cost,
            tags,
        }
    }

    /// `product_servicecode` / `line_item_product_code` of the product name.
    fn service_code(&self) -> String {
        match self.line.service_name {
            "Amazon Virtual Private Cloud" => "AmazonVPC".to_owned(),
            "Amazon Elastic Kubernetes Service" => "AmazonEKS".to_owned(),
            name => name.replace(' ', ""),
        }
    }

    fn usage_amount(&self) -> String {
        self.line
            .quantity_milli
            .map(|q| format_fixed(i128::from(q), 3, 0))
            .unwrap_or_default()
    }

    /// The tags as a JSON object with CUR 2.0's `user_` keys.
    fn tags_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .tags
            .iter()
            .map(|(k, v)| (format!("user_{k}"), serde_json::Value::from(*v)))
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    fn product_json(&self) -> String {
        serde_json::json!({
            "product_name": self.line.service_name,
            "servicecode": self.service_code(),
            "region": self.line.region,
        })
        .to_string()
    }
}

/// CUR 2.0 CSV columns, in file order (a subset of the 125, as an export may select).
const CUR2_CSV_COLUMNS: [&str; 18] = [
    "bill_payer_account_id",
    "bill_billing_period_start_date",
    "line_item_usage_account_id",
    "line_item_line_item_type",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
    "line_item_product_code",
    "product",
    "product_servicecode",
    "product_region_code",
    "line_item_resource_id",
    "line_item_usage_amount",
    "pricing_unit",
    "line_item_currency_code",
    "line_item_unblended_cost",
    "pricing_public_on_demand_cost",
    "savings_plan_savings_plan_effective_cost",
    "resource_tags",
];

/// Legacy CUR CSV columns before the tag columns.
const LEGACY_COLUMNS: [&str; 16] = [
    "identity/LineItemId",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/ResourceId",
    "lineItem/UsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedCost",
    "pricing/publicOnDemandCost",
    "pricing/unit",
    "product/ProductName",
    "product/regionCode",
];

/// Legacy tag columns (after `savingsPlan/SavingsPlanEffectiveCost`).
const LEGACY_TAGS: [&str; 3] = ["service", "team", "shared"];

/// Rows per Parquet batch.
const PARQUET_BATCH_ROWS: usize = 8192;

enum MonthFile {
    Csv {
        path: PathBuf,
        writer: csv::Writer<BufWriter<File>>,
        legacy: bool,
        rows: u64,
    },
    Parquet {
        path: PathBuf,
        writer: Box<ArrowWriter<File>>,
        rows: ParquetRows,
    },
}

impl MonthFile {
    fn create(path: &Path, format: CurFormat) -> Result<Self, GenerateError> {
        let file = File::create(path).map_err(|source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let csv_error = |source| GenerateError::Csv {
            path: path.to_path_buf(),
            source,
        };
        Ok(match format {
            CurFormat::Cur2Csv | CurFormat::LegacyCsv => {
                let legacy = format == CurFormat::LegacyCsv;
                let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
                if legacy {
                    let header = LEGACY_COLUMNS
                        .iter()
                        .map(|c| (*c).to_owned())
                        .chain(["savingsPlan/SavingsPlanEffectiveCost".to_owned()])
                        .chain(LEGACY_TAGS.iter().map(|t| format!("resourceTags/user:{t}")));
                    writer
                        .write_record(header.collect::<Vec<_>>())
                        .map_err(csv_error)?;
                } else {
                    writer.write_record(CUR2_CSV_COLUMNS).map_err(csv_error)?;
                }
                MonthFile::Csv {
                    path: path.to_path_buf(),
                    writer,
                    legacy,
                    rows: 0,
                }
            }
            CurFormat::Cur2Parquet => {
                let writer = ArrowWriter::try_new(file, parquet_schema(), None)
                    .map_err(|e| parquet_error(path, e))?;
                MonthFile::Parquet {
                    path: path.to_path_buf(),
                    writer: Box::new(writer),
                    rows: ParquetRows::new(),
                }
            }
        })
    }

    fn write(&mut self, item: &LineItem<'_>) -> Result<(), GenerateError> {
        match self {
            MonthFile::Csv {
                path,
                writer,
                legacy,
                rows,
            } => {
                let line = item.line;
                let money = |m: Money| format_money(m);
                let record: Vec<String> = if *legacy {
                    *rows += 1;
                    let mut record = vec![
                        format!("{}-{}", line.day, rows),
                        line.billing_account.to_owned(),
                        item.billing_period_start.clone(),
                        line.sub_account.clone(),
                        item.line_item_type.to_owned(),
                        item.usage_start.clone(),
                        item.usage_end.clone(),
                        item.service_code(),
                        line.resource_id.clone().unwrap_or_default(),
                        item.usage_amount(),
                        "USD".to_owned(),
                        money(line.billed_cost),
                        money(line.list_cost),
                        line.unit.unwrap_or_default().to_owned(),
                        line.service_name.to_owned(),
                        line.region.to_owned(),
                        item.sp_effective_cost.map(money).unwrap_or_default(),
                    ];
                    record.extend(LEGACY_TAGS.iter().map(|key| {
                        item.tags
                            .iter()
                            .find(|(k, _)| k == key)
                            .map(|(_, v)| (*v).to_owned())
                            .unwrap_or_default()
                    }));
                    record
                } else {
                    vec![
                        line.billing_account.to_owned(),
                        item.billing_period_start.clone(),
                        line.sub_account.clone(),
                        item.line_item_type.to_owned(),
                        item.usage_start.clone(),
                        item.usage_end.clone(),
                        item.service_code(),
                        item.product_json(),
                        item.service_code(),
                        line.region.to_owned(),
                        line.resource_id.clone().unwrap_or_default(),
                        item.usage_amount(),
                        line.unit.unwrap_or_default().to_owned(),
                        "USD".to_owned(),
                        money(line.billed_cost),
                        money(line.list_cost),
                        item.sp_effective_cost.map(money).unwrap_or_default(),
                        if item.tags.is_empty() {
                            String::new()
                        } else {
                            item.tags_json()
                        },
                    ]
                };
                writer
                    .write_record(&record)
                    .map_err(|source| GenerateError::Csv {
                        path: path.clone(),
                        source,
                    })
            }
            MonthFile::Parquet { path, writer, rows } => {
                rows.append(item);
                if rows.len == PARQUET_BATCH_ROWS {
                    let batch = std::mem::replace(rows, ParquetRows::new()).finish(path)?;
                    writer.write(&batch).map_err(|e| parquet_error(path, e))?;
                }
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<PathBuf, GenerateError> {
        match self {
            MonthFile::Csv {
                path, mut writer, ..
            } => {
                writer.flush().map_err(|source| GenerateError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(path)
            }
            MonthFile::Parquet {
                path,
                mut writer,
                rows,
            } => {
                if rows.len > 0 {
                    let batch = rows.finish(&path)?;
                    writer.write(&batch).map_err(|e| parquet_error(&path, e))?;
                }
                writer.close().map_err(|e| parquet_error(&path, e))?;
                Ok(path)
            }
        }
    }
}

fn parquet_error(path: &Path, error: impl std::fmt::Display) -> GenerateError {
    GenerateError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("writing Parquet: {error}")),
    }
}

/// Costs in the Parquet file: exact decimals with the truth's 10 places.
fn cost_type() -> DataType {
    DataType::Decimal128(22, 10)
}

fn string_map(name: &str) -> Field {
    let entries = Field::new(
        "key_value",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    Field::new(name, DataType::Map(Arc::new(entries), false), true)
}

fn parquet_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let time =
        |name: &str| Field::new(name, DataType::Timestamp(TimeUnit::Millisecond, None), true);
    let cost = |name: &str| Field::new(name, cost_type(), true);
    Arc::new(Schema::new(vec![
        text("bill_payer_account_id"),
        time("bill_billing_period_start_date"),
        text("line_item_usage_account_id"),
        text("line_item_line_item_type"),
        time("line_item_usage_start_date"),
        time("line_item_usage_end_date"),
        text("line_item_product_code"),
        string_map("product"),
        text("product_servicecode"),
        text("product_region_code"),
        text("line_item_resource_id"),
        Field::new("line_item_usage_amount", DataType::Float64, true),
        text("pricing_unit"),
        text("line_item_currency_code"),
        cost("line_item_unblended_cost"),
        cost("pricing_public_on_demand_cost"),
        cost("savings_plan_savings_plan_effective_cost"),
        string_map("resource_tags"),
    ]))
}

/// Builders of one Parquet batch.
struct ParquetRows {
    len: usize,
    payer: StringBuilder,
    billing_period_start: TimestampMillisecondBuilder,
    usage_account: StringBuilder,
    line_item_type: StringBuilder,
    usage_start: TimestampMillisecondBuilder,
    usage_end: TimestampMillisecondBuilder,
    product_code: StringBuilder,
    product: MapBuilder<StringBuilder, StringBuilder>,
    service_code: StringBuilder,
    region: StringBuilder,
    resource_id: StringBuilder,
    usage_amount: Vec<Option<f64>>,
    pricing_unit: StringBuilder,
    currency: StringBuilder,
    unblended: Decimal128Builder,
    list: Decimal128Builder,
    sp_effective: Decimal128Builder,
    tags: MapBuilder<StringBuilder, StringBuilder>,
}

impl ParquetRows {
    fn new() -> Self {
        let map = || {
            let names = arrow::array::MapFieldNames {
                entry: "key_value".to_owned(),
                key: "key".to_owned(),
                value: "value".to_owned(),
            };
            MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
        };
        let cost = || Decimal128Builder::new().with_data_type(cost_type());
        ParquetRows {
            len: 0,
            payer: StringBuilder::new(),
            billing_period_start: TimestampMillisecondBuilder::new(),
            usage_account: StringBuilder::new(),
            line_item_type: StringBuilder::new(),
            usage_start: TimestampMillisecondBuilder::new(),
            usage_end: TimestampMillisecondBuilder::new(),
            product_code: StringBuilder::new(),
            product: map(),
            service_code: StringBuilder::new(),
            region: StringBuilder::new(),
            resource_id: StringBuilder::new(),
            usage_amount: Vec::new(),
            pricing_unit: StringBuilder::new(),
            currency: StringBuilder::new(),
            unblended: cost(),
            list: cost(),
            sp_effective: cost(),
            tags: map(),
        }
    }

    fn append(&mut self, item: &LineItem<'_>) {
        let line = item.line;
        let millis = |days: i64| days * DAY * 1000;
        self.payer.append_value(line.billing_account);
        self.billing_period_start
            .append_value(millis(month_first_day(line.day)));
        self.usage_account.append_value(&line.sub_account);
        self.line_item_type.append_value(item.line_item_type);
        self.usage_start.append_value(millis(line.day));
        self.usage_end.append_value(millis(line.day + 1));
        let code = item.service_code();
        self.product_code.append_value(&code);
        for (key, value) in [
            ("product_name", line.service_name),
            ("servicecode", code.as_str()),
            ("region", line.region),
        ] {
            self.product.keys().append_value(key);
            self.product.values().append_value(value);
        }
        // Appending an entry list to a map builder fails only on mismatched key/value counts.
        let _ = self.product.append(true);
        self.service_code.append_value(&code);
        self.region.append_value(line.region);
        self.resource_id.append_option(line.resource_id.as_deref());
        // Quantities are floats in CUR; they are not money.
        self.usage_amount
            .push(line.quantity_milli.map(|q| q as f64 / 1000.0));
        self.pricing_unit.append_option(line.unit);
        self.currency.append_value("USD");
        self.unblended.append_value(line.billed_cost);
        self.list.append_value(line.list_cost);
        self.sp_effective.append_option(item.sp_effective_cost);
        for (key, value) in &item.tags {
            self.tags.keys().append_value(format!("user_{key}"));
            self.tags.values().append_value(value);
        }
        let _ = self.tags.append(!item.tags.is_empty());
        self.len += 1;
    }

    fn finish(mut self, path: &Path) -> Result<RecordBatch, GenerateError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.payer.finish()),
            Arc::new(self.billing_period_start.finish()),
            Arc::new(self.usage_account.finish()),
            Arc::new(self.line_item_type.finish()),
            Arc::new(self.usage_start.finish()),
            Arc::new(self.usage_end.finish()),
            Arc::new(self.product_code.finish()),
            Arc::new(self.product.finish()),
            Arc::new(self.service_code.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.resource_id.finish()),
            Arc::new(arrow::array::Float64Array::from(self.usage_amount)),
            Arc::new(self.pricing_unit.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.unblended.finish()),
            Arc::new(self.list.finish()),
            Arc::new(self.sp_effective.finish()),
            Arc::new(self.tags.finish()),
        ];
        RecordBatch::try_new(parquet_schema(), columns).map_err(|e| parquet_error(path, e))
    }
}

/// The first day of the month of `day` (days since the epoch).
fn month_first_day(day: i64) -> i64 {
    let (y, m, _) = crate::calendar::civil_from_days(day);
    crate::calendar::days_from_civil(y, m, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_writes_the_same_aws_line_items() {
        let dir = tempfile::tempdir().unwrap();
        let mut truths = Vec::new();
        for format in [
            CurFormat::Cur2Csv,
            CurFormat::LegacyCsv,
            CurFormat::Cur2Parquet,
        ] {
            let report = write_cur(
                Scale::Small,
                crate::DEFAULT_SEED,
                &dir.path().join(format!("{format:?}")),
                format,
            )
            .unwrap();
            assert_eq!(report.files.len(), 18);
            truths.push(report.truth);
        }
        assert_eq!(truths[0], truths[1]);
        assert_eq!(truths[0], truths[2]);
        // The small organisation's truth.json: 12,632 AWS rows.
        assert_eq!(truths[0].rows, 12_632);

        let text =
            std::fs::read_to_string(dir.path().join("LegacyCsv/cur-legacy-2025-05.csv")).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with(
                "resourceTags/user:service,resourceTags/user:team,resourceTags/user:shared"
            ),
            "{header}"
        );
        let text = std::fs::read_to_string(dir.path().join("Cur2Csv/cur2-2025-05.csv")).unwrap();
        assert!(
            text.contains(r#"{""user_service"":"#),
            "CUR 2.0 tags are JSON with user_ keys"
        );
    }
}
