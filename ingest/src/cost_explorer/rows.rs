//! GetCostAndUsage pages → canonical `costs` rows (DESIGN §3), gathered per invoice month.
//!
//! One group of one day is one row: charge period = the day, `cloud_service` = the `SERVICE` key,
//! `sub_account` = the `LINKED_ACCOUNT` key (or the account the request was filtered to), tags =
//! `{tag_key: value}` for `tag_key$value` and none for `tag_key$` (AWS's untagged bucket), money
//! parsed exactly from the configured metrics, currency = the metric's `Unit`, `is_estimated` =
//! the day's `Estimated`. Cost Explorer invoices a day in its own month, so the invoice month is
//! the day's.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Float64Builder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};
use model::money::parse_money;
use model::schema::{self, MONEY_PRECISION, MONEY_SCALE};

use super::response::{CostAndUsagePage, GroupDefinition};
use super::{SOURCE, Window};

/// A response that does not say what doracost needs, with where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: field `{field}`: {message}")]
pub struct ResponseError {
    /// The request, day and group, e.g.
    /// `… page 2, ResultsByTime[0] (2025-06-30), Groups[1] ["service$", "AWS Lambda"]`.
    pub at: String,
    /// The response field, e.g. `Metrics.UnblendedCost.Amount`.
    pub field: String,
    /// What was expected and what was found.
    pub message: String,
}

/// How a page's groups and metrics become rows.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The metric for `billed_cost`.
    pub billed_metric: String,
    /// The metric for `effective_cost`.
    pub effective_metric: String,
    /// What the request grouped by: used when a page carries no `GroupDefinitions`.
    pub requested_groups: Vec<GroupDefinition>,
    /// The linked account a request was filtered to, when it was.
    pub sub_account: Option<String>,
    /// Days outside it are an error (AWS answers only what was asked).
    pub window: Window,
}

/// One day of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostExplorerRow {
    /// The day charged.
    pub day: NaiveDate,
    /// The linked account.
    pub sub_account: Option<String>,
    /// The `SERVICE` dimension, e.g. `Amazon Relational Database Service`.
    pub cloud_service: Option<String>,
    /// The `REGION` dimension, when grouped by it.
    pub region: Option<String>,
    /// `(tag key, value)` of every tag group with a value; empty for untagged.
    pub tags: Vec<(String, String)>,
    /// In units of 10^-12.
    pub billed_cost: i128,
    /// In units of 10^-12.
    pub effective_cost: i128,
    /// The metrics' `Unit`.
    pub currency: String,
    /// The day's `Estimated`.
    pub is_estimated: bool,
}

/// What a group's key means.
enum KeyKind {
    Tag(String),
    Service,
    LinkedAccount,
    Region,
}

fn key_kinds(definitions: &[GroupDefinition], at: &str) -> Result<Vec<KeyKind>, ResponseError> {
    definitions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let bad = |message: String| ResponseError {
                at: at.to_owned(),
                field: format!("GroupDefinitions[{i}]"),
                message,
            };
            match (d.r#type.as_deref(), d.key.as_deref()) {
                (Some("TAG"), Some(key)) => Ok(KeyKind::Tag(key.to_owned())),
                (Some("DIMENSION"), Some("SERVICE")) => Ok(KeyKind::Service),
                (Some("DIMENSION"), Some("LINKED_ACCOUNT")) => Ok(KeyKind::LinkedAccount),
                (Some("DIMENSION"), Some("REGION")) => Ok(KeyKind::Region),
                (t, k) => Err(bad(format!(
                    "grouping by {} {} is not one doracost maps (TAG, or DIMENSION SERVICE, LINKED_ACCOUNT, REGION)",
                    t.unwrap_or("?"),
                    k.unwrap_or("?")
                ))),
            }
        })
        .collect()
}

/// Maps one page to rows, appending them to `out`. `page_label` names the page in errors.
pub fn map_page(
    page: &CostAndUsagePage,
    mapping: &Mapping,
    page_label: &str,
    out: &mut Vec<CostExplorerRow>,
) -> Result<(), ResponseError> {
    let definitions = if page.group_definitions.is_empty() {
        &mapping.requested_groups
    } else {
        &page.group_definitions
    };
    let kinds = key_kinds(definitions, page_label)?;
    for (r, result) in page.results_by_time.iter().enumerate() {
        let at = format!("{page_label}, ResultsByTime[{r}]");
        let bad = |field: &str, message: String| ResponseError {
            at: at.clone(),
            field: field.to_owned(),
            message,
        };
        let period = result
            .time_period
            .as_ref()
            .ok_or_else(|| bad("TimePeriod", "missing".into()))?;
        let day = NaiveDate::parse_from_str(&period.start, "%Y-%m-%d").map_err(|_| {
            bad(
                "TimePeriod.Start",
                format!("expected a date YYYY-MM-DD, found {:?}", period.start),
            )
        })?;
        let end = NaiveDate::parse_from_str(&period.end, "%Y-%m-%d").map_err(|_| {
            bad(
                "TimePeriod.End",
                format!("expected a date YYYY-MM-DD, found {:?}", period.end),
            )
        })?;
        if day.succ_opt() != Some(end) {
            return Err(bad(
                "TimePeriod",
                format!(
                    "expected one day (DAILY granularity), found {} to {}",
                    period.start, period.end
                ),
            ));
        }
        if day < mapping.window.start || day >= mapping.window.end {
            return Err(bad(
                "TimePeriod.Start",
                format!(
                    "{day} lies outside the window asked for ({} to {}, end exclusive)",
                    mapping.window.start, mapping.window.end
                ),
            ));
        }
        for (g, group) in result.groups.iter().enumerate() {
            let at = format!("{at} ({day}), Groups[{g}] {:?}", group.keys);
            let bad = |field: &str, message: String| ResponseError {
                at: at.clone(),
                field: field.to_owned(),
                message,
            };
            if group.keys.len() != kinds.len() {
                return Err(bad(
                    "Keys",
                    format!(
                        "expected {} keys (one per group definition), found {}",
                        kinds.len(),
                        group.keys.len()
                    ),
                ));
            }
            let mut row = CostExplorerRow {
                day,
                sub_account: mapping.sub_account.clone(),
                cloud_service: None,
                region: None,
                tags: Vec::new(),
                billed_cost: 0,
                effective_cost: 0,
                currency: String::new(),
                is_estimated: result.estimated,
            };
            for (k, (kind, value)) in kinds.iter().zip(&group.keys).enumerate() {
                match kind {
                    KeyKind::Tag(tag_key) => {
                        let tag_value = value
                            .strip_prefix(tag_key.as_str())
                            .and_then(|rest| rest.strip_prefix('$'))
                            .ok_or_else(|| {
                                bad(
                                    &format!("Keys[{k}]"),
                                    format!("expected `{tag_key}$value` for tag `{tag_key}`, found {value:?}"),
                                )
                            })?;
                        // `key$` with nothing after it is AWS's bucket of spend without the tag.
                        if !tag_value.is_empty() {
                            row.tags.push((tag_key.clone(), tag_value.to_owned()));
                        }
                    }
                    KeyKind::Service => row.cloud_service = Some(value.clone()),
                    KeyKind::LinkedAccount => row.sub_account = Some(value.clone()),
                    KeyKind::Region => row.region = Some(value.clone()),
                }
            }
            let (billed, billed_unit) = amount(group, &mapping.billed_metric, &bad)?;
            let (effective, effective_unit) = amount(group, &mapping.effective_metric, &bad)?;
            if billed_unit != effective_unit {
                return Err(bad(
                    &format!("Metrics.{}.Unit", mapping.effective_metric),
                    format!(
                        "{effective_unit:?} differs from {}'s {billed_unit:?}",
                        mapping.billed_metric
                    ),
                ));
            }
            row.billed_cost = billed;
            row.effective_cost = effective;
            row.currency = billed_unit.to_owned();
            out.push(row);
        }
    }
    Ok(())
}

fn amount<'g>(
    group: &'g super::response::Group,
    metric: &str,
    bad: &dyn Fn(&str, String) -> ResponseError,
) -> Result<(i128, &'g str), ResponseError> {
    let value = group.metrics.get(metric).ok_or_else(|| {
        bad(
            &format!("Metrics.{metric}"),
            format!(
                "missing (the group has {:?})",
                group.metrics.keys().collect::<Vec<_>>()
            ),
        )
    })?;
    let field = format!("Metrics.{metric}.Amount");
    let text = value
        .amount
        .as_deref()
        .ok_or_else(|| bad(&field, "missing".into()))?;
    let money = parse_money(text).map_err(|e| bad(&field, format!("{e}, found {text:?}")))?;
    let unit = value
        .unit
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| bad(&format!("Metrics.{metric}.Unit"), "missing".into()))?;
    Ok((money, unit))
}

/// `YYYY-MM` of a day.
pub fn month_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// Builds one batch per invoice month (in month order), each row's `cost_id` being
/// `cost-explorer:{billing account}:{month}:{ordinal in the month}` (DESIGN §3: slice + ordinal).
pub fn into_batches(
    rows: &[CostExplorerRow],
    billing_account: &str,
    ingested_at: i64,
) -> Result<BTreeMap<String, RecordBatch>, ArrowError> {
    let mut months: BTreeMap<String, Vec<&CostExplorerRow>> = BTreeMap::new();
    for row in rows {
        months.entry(month_of(row.day)).or_default().push(row);
    }
    months
        .into_iter()
        .map(|(month, rows)| {
            let batch = month_batch(&month, &rows, billing_account, ingested_at)?;
            Ok((month, batch))
        })
        .collect()
}

/// Column builders for `n` rows of the two tables Cost Explorer fills (`costs`,
/// `provider_forecasts`).
pub(super) struct Builders(pub(super) usize);

impl Builders {
    pub(super) fn text(&self) -> StringBuilder {
        StringBuilder::with_capacity(self.0, self.0 * 16)
    }

    pub(super) fn timestamps(&self) -> TimestampMicrosecondBuilder {
        TimestampMicrosecondBuilder::with_capacity(self.0).with_timezone("UTC")
    }

    pub(super) fn money(&self) -> Result<Decimal128Builder, ArrowError> {
        Decimal128Builder::with_capacity(self.0)
            .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
    }
}

/// A day's start, 00:00 UTC, in microseconds.
pub(super) fn midnight_micros(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default()
}

fn month_batch(
    month: &str,
    rows: &[&CostExplorerRow],
    billing_account: &str,
    ingested_at: i64,
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let b = Builders(n);
    let (text, timestamps, money) = (|| b.text(), || b.timestamps(), || b.money());
    let (mut cost_id, mut source, mut ingested) = (text(), text(), timestamps());
    let (mut provider, mut billing, mut sub_account) = (text(), text(), text());
    let (mut period_start, mut period_end) = (timestamps(), timestamps());
    let (mut category, mut class, mut cloud_service, mut service_category) =
        (text(), text(), text(), text());
    let (mut region, mut resource_id, mut resource_name) = (text(), text(), text());
    let mut tags = MapBuilder::new(
        Some(MapFieldNames {
            entry: "key_value".to_owned(),
            key: "key".to_owned(),
            value: "value".to_owned(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut billed, mut effective, mut list) = (money()?, money()?, money()?);
    let (mut currency, mut usage_unit, mut invoice_month) = (text(), text(), text());
    let mut usage_quantity = Float64Builder::with_capacity(n);
    let mut estimated = BooleanBuilder::with_capacity(n);
    for (ordinal, row) in rows.iter().enumerate() {
        let start = midnight_micros(row.day);
        cost_id.append_value(format!("{SOURCE}:{billing_account}:{month}:{ordinal}"));
        source.append_value(SOURCE);
        ingested.append_value(ingested_at);
        provider.append_value("AWS");
        billing.append_value(billing_account);
        sub_account.append_option(row.sub_account.as_deref());
        period_start.append_value(start);
        period_end.append_value(start + 86_400_000_000);
        // Cost Explorer grouped by SERVICE does not separate charge categories: credits and
        // refunds are netted into their service; AWS bills tax as the service `Tax`.
        category.append_value(if row.cloud_service.as_deref() == Some("Tax") {
            "Tax"
        } else {
            "Usage"
        });
        class.append_null();
        cloud_service.append_option(row.cloud_service.as_deref());
        service_category.append_null();
        region.append_option(row.region.as_deref());
        resource_id.append_null();
        resource_name.append_null();
        if row.tags.is_empty() {
            tags.append(false)?;
        } else {
            for (key, value) in &row.tags {
                tags.keys().append_value(key);
                tags.values().append_value(value);
            }
            tags.append(true)?;
        }
        billed.append_value(row.billed_cost);
        effective.append_value(row.effective_cost);
        list.append_null();
        currency.append_value(&row.currency);
        usage_quantity.append_null();
        usage_unit.append_null();
        invoice_month.append_value(month);
        estimated.append_value(row.is_estimated);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(cost_id.finish()),
        Arc::new(source.finish()),
        Arc::new(ingested.finish()),
        Arc::new(provider.finish()),
        Arc::new(billing.finish()),
        Arc::new(sub_account.finish()),
        Arc::new(period_start.finish()),
        Arc::new(period_end.finish()),
        Arc::new(category.finish()),
        Arc::new(class.finish()),
        Arc::new(cloud_service.finish()),
        Arc::new(service_category.finish()),
        Arc::new(region.finish()),
        Arc::new(resource_id.finish()),
        Arc::new(resource_name.finish()),
        Arc::new(tags.finish()),
        Arc::new(billed.finish()),
        Arc::new(effective.finish()),
        Arc::new(list.finish()),
        Arc::new(currency.finish()),
        Arc::new(usage_quantity.finish()),
        Arc::new(usage_unit.finish()),
        Arc::new(invoice_month.finish()),
        Arc::new(estimated.finish()),
    ];
    RecordBatch::try_new(schema::costs(), columns)
}
