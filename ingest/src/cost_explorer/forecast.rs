//! AWS's own forecast (GetCostForecast) of the rest of the current month, for the whole bill and
//! for each service tag value seen, stored in `provider_forecasts` beside the bill so the cost
//! views can show it next to doracost's run-rate forecast (DESIGN §4 "Forecast").

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_costexplorer::operation::get_cost_forecast::GetCostForecastOutput;
use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity, MatchOption, Metric, TagValues,
};
use chrono::NaiveDate;
use model::config::CostExplorerMetric;
use model::money::parse_money;
use model::schema;
use serde::Deserialize;

use super::response::{DateInterval as Interval, MetricValue};
use super::rows::{Builders, ResponseError, midnight_micros, month_of};
use super::{CostExplorerError, SOURCE};

/// The prediction interval asked for, in percent.
pub const PREDICTION_INTERVAL_LEVEL: i32 = 80;

/// A GetCostForecast response in the API's JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CostForecastResponse {
    /// The forecast over the whole period.
    #[serde(default)]
    pub total: Option<MetricValue>,
    /// Per granularity period.
    #[serde(default)]
    pub forecast_results_by_time: Vec<ForecastResult>,
}

/// One forecast period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForecastResult {
    /// The period.
    #[serde(default)]
    pub time_period: Option<Interval>,
    /// Decimal text.
    #[serde(default)]
    pub mean_value: Option<String>,
    /// Decimal text.
    #[serde(default)]
    pub prediction_interval_lower_bound: Option<String>,
    /// Decimal text.
    #[serde(default)]
    pub prediction_interval_upper_bound: Option<String>,
}

impl From<&GetCostForecastOutput> for CostForecastResponse {
    fn from(output: &GetCostForecastOutput) -> Self {
        CostForecastResponse {
            total: output.total().map(|t| MetricValue {
                amount: t.amount().map(str::to_owned),
                unit: t.unit().map(str::to_owned),
            }),
            forecast_results_by_time: output
                .forecast_results_by_time()
                .iter()
                .map(|r| ForecastResult {
                    time_period: r.time_period().map(|p| Interval {
                        start: p.start().to_owned(),
                        end: p.end().to_owned(),
                    }),
                    mean_value: r.mean_value().map(str::to_owned),
                    prediction_interval_lower_bound: r
                        .prediction_interval_lower_bound()
                        .map(str::to_owned),
                    prediction_interval_upper_bound: r
                        .prediction_interval_upper_bound()
                        .map(str::to_owned),
                })
                .collect(),
        }
    }
}

/// One forecast, ready for `provider_forecasts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastRow {
    /// `(tag key, value)`, or `None` for the whole bill.
    pub scope: Option<(String, String)>,
    /// First day forecast.
    pub start: NaiveDate,
    /// Day after the last.
    pub end: NaiveDate,
    /// Units of 10^-12.
    pub mean: i128,
    /// Sum of the periods' lower bounds, when every period has one.
    pub lower: Option<i128>,
    /// Sum of the periods' upper bounds, when every period has one.
    pub upper: Option<i128>,
    /// `Total.Unit`.
    pub currency: String,
}

/// Maps a response: the mean is `Total`, the bounds the sums of the periods' bounds.
pub fn map_forecast(
    response: &CostForecastResponse,
    scope: Option<(String, String)>,
    start: NaiveDate,
    end: NaiveDate,
    label: &str,
) -> Result<ForecastRow, ResponseError> {
    let bad = |field: &str, message: String| ResponseError {
        at: label.to_owned(),
        field: field.to_owned(),
        message,
    };
    let total = response
        .total
        .as_ref()
        .ok_or_else(|| bad("Total", "missing".into()))?;
    let text = total
        .amount
        .as_deref()
        .ok_or_else(|| bad("Total.Amount", "missing".into()))?;
    let mean =
        parse_money(text).map_err(|e| bad("Total.Amount", format!("{e}, found {text:?}")))?;
    let currency = total
        .unit
        .clone()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| bad("Total.Unit", "missing".into()))?;
    let bound = |pick: fn(&ForecastResult) -> Option<&String>,
                 name: &str|
     -> Result<Option<i128>, ResponseError> {
        let mut sum = 0i128;
        for (i, result) in response.forecast_results_by_time.iter().enumerate() {
            let Some(text) = pick(result) else {
                return Ok(None);
            };
            let field = format!("ForecastResultsByTime[{i}].{name}");
            sum += parse_money(text).map_err(|e| bad(&field, format!("{e}, found {text:?}")))?;
        }
        Ok((!response.forecast_results_by_time.is_empty()).then_some(sum))
    };
    Ok(ForecastRow {
        scope,
        start,
        end,
        mean,
        lower: bound(
            |r| r.prediction_interval_lower_bound.as_ref(),
            "PredictionIntervalLowerBound",
        )?,
        upper: bound(
            |r| r.prediction_interval_upper_bound.as_ref(),
            "PredictionIntervalUpperBound",
        )?,
        currency,
    })
}

fn api_metric(metric: CostExplorerMetric) -> Metric {
    match metric {
        CostExplorerMetric::UnblendedCost => Metric::UnblendedCost,
        CostExplorerMetric::NetUnblendedCost => Metric::NetUnblendedCost,
        CostExplorerMetric::AmortizedCost => Metric::AmortizedCost,
        CostExplorerMetric::NetAmortizedCost => Metric::NetAmortizedCost,
        CostExplorerMetric::BlendedCost => Metric::BlendedCost,
    }
}

/// Asks for the forecast of `start`..`end` for `scope`; `None` when AWS has too little history
/// for it (`DataUnavailableException`), which is no reason to fail the bill's ingest.
pub async fn fetch_forecast(
    client: &Client,
    metric: CostExplorerMetric,
    start: NaiveDate,
    end: NaiveDate,
    scope: Option<&(String, String)>,
) -> Result<Option<CostForecastResponse>, CostExplorerError> {
    let period = DateInterval::builder()
        .start(start.format("%Y-%m-%d").to_string())
        .end(end.format("%Y-%m-%d").to_string())
        .build()
        .map_err(|e| CostExplorerError::Request(e.to_string()))?;
    let mut request = client
        .get_cost_forecast()
        .time_period(period)
        .metric(api_metric(metric))
        .granularity(Granularity::Monthly)
        .prediction_interval_level(PREDICTION_INTERVAL_LEVEL);
    if let Some((key, value)) = scope {
        request = request.filter(
            Expression::builder()
                .tags(
                    TagValues::builder()
                        .key(key)
                        .values(value)
                        .match_options(MatchOption::Equals)
                        .build(),
                )
                .build(),
        );
    }
    match request.send().await {
        Ok(output) => Ok(Some(CostForecastResponse::from(&output))),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_data_unavailable_exception()) =>
        {
            tracing::warn!(scope = ?scope, "Cost Explorer has no forecast for this scope");
            Ok(None)
        }
        Err(err) => Err(CostExplorerError::Api {
            request: describe(start, end, scope),
            code: err.code().map(str::to_owned),
            message: err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
        }),
    }
}

/// Names one forecast request in messages.
pub fn describe(start: NaiveDate, end: NaiveDate, scope: Option<&(String, String)>) -> String {
    let scope = scope
        .map(|(k, v)| format!(" for tag {k}={v}"))
        .unwrap_or_default();
    format!("GetCostForecast {start} to {end} (end exclusive){scope}")
}

/// The rows of `provider_forecasts`; `forecast_id` = `cost-explorer:{account}:{month}:{scope}` with
/// scope `all` or `tag:{key}={value}`, so a later forecast of the month replaces the earlier one.
pub fn forecast_batch(
    rows: &[ForecastRow],
    billing_account: &str,
    metric: CostExplorerMetric,
    ingested_at: i64,
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let b = Builders(n);
    let (text, timestamps, money) = (|| b.text(), || b.timestamps(), || b.money());
    let (mut id, mut source, mut ingested) = (text(), text(), timestamps());
    let (mut provider, mut account, mut month) = (text(), text(), text());
    let (mut tag_key, mut tag_value, mut metric_name) = (text(), text(), text());
    let (mut start, mut end) = (timestamps(), timestamps());
    let (mut mean, mut lower, mut upper) = (money()?, money()?, money()?);
    let mut level = Int32Builder::with_capacity(n);
    let mut currency = text();
    for row in rows {
        let row_month = month_of(row.start);
        let scope = row
            .scope
            .as_ref()
            .map(|(k, v)| format!("tag:{k}={v}"))
            .unwrap_or_else(|| "all".into());
        id.append_value(format!("{SOURCE}:{billing_account}:{row_month}:{scope}"));
        source.append_value(SOURCE);
        ingested.append_value(ingested_at);
        provider.append_value("AWS");
        account.append_value(billing_account);
        month.append_value(&row_month);
        tag_key.append_option(row.scope.as_ref().map(|(k, _)| k.as_str()));
        tag_value.append_option(row.scope.as_ref().map(|(_, v)| v.as_str()));
        metric_name.append_value(metric.api_name());
        start.append_value(midnight_micros(row.start));
        end.append_value(midnight_micros(row.end));
        mean.append_value(row.mean);
        lower.append_option(row.lower);
        upper.append_option(row.upper);
        level.append_value(PREDICTION_INTERVAL_LEVEL);
        currency.append_value(&row.currency);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(source.finish()),
        Arc::new(ingested.finish()),
        Arc::new(provider.finish()),
        Arc::new(account.finish()),
        Arc::new(month.finish()),
        Arc::new(tag_key.finish()),
        Arc::new(tag_value.finish()),
        Arc::new(metric_name.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(mean.finish()),
        Arc::new(lower.finish()),
        Arc::new(upper.finish()),
        Arc::new(level.finish()),
        Arc::new(currency.finish()),
    ];
    RecordBatch::try_new(schema::provider_forecasts(), columns)
}
