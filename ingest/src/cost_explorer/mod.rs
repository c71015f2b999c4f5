//! AWS Cost Explorer: DAILY GetCostAndUsage through `aws-sdk-costexplorer`, grouped by the
//! configured service tag and by `SERVICE`, into canonical `costs` rows (DESIGN §3).
//!
//! Cost Explorer restates recent days (its `Estimated` flag), so an ingest replaces what it read
//! rather than adding to it: rows are kept in (source `cost-explorer`, billing account, month)
//! slices, the window asked for is widened to whole calendar months, and every month of the window
//! is replaced whole in one Delta commit (a month with no rows any more ends up empty). Nothing is
//! written until every page has been read and mapped, so a failure leaves the lake as it was.
//!
//! GroupBy takes at most two keys, and both are spent on the tag and `SERVICE`; linked accounts,
//! when configured, are read one request series per account (a `LINKED_ACCOUNT` filter), which
//! also gives `sub_account`. Not here: allocation to services (that is `query`).

#[cfg(test)]
mod canned_http;
mod fetch;
pub mod forecast;
pub mod response;
pub mod rows;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use model::config::{CostExplorerMetric, CostExplorerSource};
use model::{CostSliceKey, Lake, LakeError, TableWrite, WriteOutcome};

pub use response::CostAndUsagePage;
pub use rows::{CostExplorerRow, Mapping, ResponseError};

/// The `source` of every row this module writes.
pub const SOURCE: &str = "cost-explorer";

/// How to call Cost Explorer and map its answers (from `[sources.cost_explorer]`).
#[derive(Debug, Clone)]
pub struct CostExplorerOptions {
    /// `costs.billing_account` of every row (the payer account).
    pub billing_account: String,
    /// The service tag key grouped by.
    pub tag_key: String,
    /// Linked accounts read one by one; empty reads the whole bill at once.
    pub linked_accounts: Vec<String>,
    /// Fills `billed_cost`.
    pub billed_metric: CostExplorerMetric,
    /// Fills `effective_cost`.
    pub effective_metric: CostExplorerMetric,
    /// Endpoint override (else `AWS_ENDPOINT_URL`, else AWS's).
    pub endpoint_url: Option<String>,
    /// Signing region.
    pub region: String,
    /// AWS profile.
    pub profile: Option<String>,
    /// Role to assume.
    pub role_arn: Option<String>,
    /// Attempts per request.
    pub max_attempts: u32,
    /// First retry delay; later ones double (with jitter), up to 20 s.
    pub initial_backoff: Duration,
    /// Also store AWS's forecast of the rest of the current month, of this metric
    /// (GetCostForecast), in `provider_forecasts`.
    pub forecast: Option<CostExplorerMetric>,
}

impl CostExplorerOptions {
    /// The options `[sources.cost_explorer]` states.
    pub fn from_config(source: &CostExplorerSource) -> Self {
        CostExplorerOptions {
            billing_account: source.billing_account.clone(),
            tag_key: source.tag_key.clone(),
            linked_accounts: source.linked_accounts.clone(),
            billed_metric: source.billed_cost_metric,
            effective_metric: source.effective_cost_metric,
            endpoint_url: source.endpoint_url.clone(),
            region: source.region.clone(),
            profile: source.profile.clone(),
            role_arn: source.role_arn.clone(),
            max_attempts: source.max_attempts,
            initial_backoff: Duration::from_secs(1),
            forecast: None,
        }
    }
}

/// Whole calendar months of days: `start` (a 1st) inclusive to `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First day.
    pub start: NaiveDate,
    /// Day after the last.
    pub end: NaiveDate,
}

impl Window {
    /// The months from `from`'s to `to`'s (both inclusive), ending at the latest after `today`
    /// (Cost Explorer has nothing later). Defaults: from the 1st of last month, to `today`.
    pub fn covering(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Window, CostExplorerError> {
        let first_of = |d: NaiveDate| d.with_day(1).unwrap_or(d);
        let from = from.unwrap_or_else(|| {
            first_of(today)
                .checked_sub_months(Months::new(1))
                .unwrap_or(today)
        });
        let to = to.unwrap_or(today);
        if from > to {
            return Err(CostExplorerError::Window(format!(
                "--from {from} is after --to {to}"
            )));
        }
        if from > today {
            return Err(CostExplorerError::Window(format!(
                "--from {from} is in the future (today is {today}, UTC): Cost Explorer has nothing yet"
            )));
        }
        let start = first_of(from);
        let month_end = first_of(to)
            .checked_add_months(Months::new(1))
            .ok_or_else(|| CostExplorerError::Window(format!("--to {to} is out of range")))?;
        let end = month_end.min(today.succ_opt().unwrap_or(today));
        Ok(Window { start, end })
    }

    /// `YYYY-MM` of every month the window touches.
    pub fn months(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut month = self.start;
        while month < self.end {
            out.push(rows::month_of(month));
            match month.checked_add_months(Months::new(1)) {
                Some(next) => month = next,
                None => break,
            }
        }
        out
    }
}

/// A Cost Explorer ingest failure; in every case the lake is as it was.
#[derive(Debug, thiserror::Error)]
pub enum CostExplorerError {
    /// `--from`/`--to` make no window.
    #[error("{0}")]
    Window(String),
    /// The request could not be built.
    #[error("cannot build the Cost Explorer request: {0}")]
    Request(String),
    /// AWS (or the endpoint) refused a request, after retries for throttling.
    #[error("Cost Explorer {request}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Api {
        /// Which request.
        request: String,
        /// The AWS error code, e.g. `LimitExceededException`.
        code: Option<String>,
        /// AWS's message.
        message: String,
    },
    /// A response did not say what doracost needs.
    #[error("Cost Explorer response: {0}")]
    Response(#[from] ResponseError),
    /// Building Arrow arrays failed.
    #[error("Cost Explorer rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The lake refused the write (nothing was committed).
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// What one Cost Explorer ingest did.
#[derive(Debug, Clone)]
pub struct CostExplorerSummary {
    /// The window read and replaced.
    pub window: Window,
    /// Response pages read.
    pub pages: usize,
    /// Rows written.
    pub rows: usize,
    /// Of which `Estimated`.
    pub estimated_rows: usize,
    /// Forecasts stored (the whole bill and each service tag value), when asked for.
    pub forecasts: usize,
    /// Scopes AWS had no forecast for (too little history).
    pub forecasts_unavailable: usize,
    /// What the lake received.
    pub outcomes: Vec<WriteOutcome>,
}

/// `doracost ingest cost-explorer`: reads every page of the window (each linked account in turn),
/// and the forecasts when asked, then replaces the window's month slices (and upserts the
/// forecasts) in one unit. `on_page` is told of each request answered.
pub async fn ingest_cost_explorer(
    lake: &Lake,
    options: &CostExplorerOptions,
    window: Window,
    ingested_at: DateTime<Utc>,
    on_page: &mut dyn FnMut(&str),
) -> Result<CostExplorerSummary, CostExplorerError> {
    let client = fetch::client(options).await?;
    ingest_with_client(lake, &client, options, window, ingested_at, on_page).await
}

/// [`ingest_cost_explorer`] with a client built elsewhere.
pub(crate) async fn ingest_with_client(
    lake: &Lake,
    client: &aws_sdk_costexplorer::Client,
    options: &CostExplorerOptions,
    window: Window,
    ingested_at: DateTime<Utc>,
    on_page: &mut dyn FnMut(&str),
) -> Result<CostExplorerSummary, CostExplorerError> {
    let accounts: Vec<Option<&str>> = if options.linked_accounts.is_empty() {
        vec![None]
    } else {
        options
            .linked_accounts
            .iter()
            .map(|a| Some(a.as_str()))
            .collect()
    };
    let mut rows = Vec::new();
    let mut pages = 0;
    for account in accounts {
        let mapping = Mapping {
            billed_metric: options.billed_metric.api_name().to_owned(),
            effective_metric: options.effective_metric.api_name().to_owned(),
            requested_groups: fetch::group_by(&options.tag_key),
            sub_account: account.map(str::to_owned),
            window,
        };
        fetch::cost_and_usage_pages(client, options, &window, account, &mut |page, body| {
            let label = fetch::describe_request(&window, account, page);
            rows::map_page(&body, &mapping, &label, &mut rows)?;
            pages += 1;
            on_page(&label);
            Ok(())
        })
        .await?;
    }
    let estimated_rows = rows.iter().filter(|r| r.is_estimated).count();
    let batches = rows::into_batches(
        &rows,
        &options.billing_account,
        ingested_at.timestamp_micros(),
    )?;
    let slices = window
        .months()
        .into_iter()
        .map(|month| CostSliceKey {
            source: SOURCE.to_owned(),
            billing_account: options.billing_account.clone(),
            invoice_month: month,
        })
        .collect();
    let mut writes = vec![TableWrite::ReplaceCostSlices {
        slices,
        batches: batches.into_values().collect(),
    }];
    let (mut forecasts, mut forecasts_unavailable) = (0, 0);
    if let Some(metric) = options.forecast {
        // The rest of the current month, from today (AWS forecasts from today on).
        let start = ingested_at.date_naive();
        let end = start
            .with_day(1)
            .and_then(|first| first.checked_add_months(Months::new(1)))
            .ok_or_else(|| CostExplorerError::Window(format!("no month after {start}")))?;
        let mut scopes: Vec<Option<(String, String)>> = vec![None];
        let mut tags: Vec<(String, String)> = rows.iter().flat_map(|r| r.tags.clone()).collect();
        tags.sort();
        tags.dedup();
        scopes.extend(tags.into_iter().map(Some));
        let mut found = Vec::new();
        for scope in scopes {
            let label = forecast::describe(start, end, scope.as_ref());
            match forecast::fetch_forecast(client, metric, start, end, scope.as_ref()).await? {
                Some(response) => found.push(forecast::map_forecast(
                    &response, scope, start, end, &label,
                )?),
                None => forecasts_unavailable += 1,
            }
            on_page(&label);
        }
        forecasts = found.len();
        writes.push(TableWrite::Upsert {
            table: model::Table::ProviderForecasts,
            batches: vec![forecast::forecast_batch(
                &found,
                &options.billing_account,
                metric,
                ingested_at.timestamp_micros(),
            )?],
        });
    }
    let outcomes = lake.apply("ingest cost-explorer", writes).await?;
    Ok(CostExplorerSummary {
        window,
        pages,
        rows: rows.len(),
        estimated_rows,
        forecasts,
        forecasts_unavailable,
        outcomes,
    })
}
