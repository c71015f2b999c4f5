//! `/api/v1/…`: the JSON API (DESIGN §5). Each handler checks its query string ([`Params`]),
//! binds the values into one of the parameterised reports of `query::reports`, and answers the
//! rows as JSON objects, money as decimal strings. Answers are cached per engine (see
//! [`crate::cache`]): `X-Cache: hit` says one came from the cache.

use std::future::Future;
use std::sync::Arc;

use arrow::array::RecordBatch;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use query::reports::{BoundQuery, CostsReport, Detail, DoraReport, Period};
use serde_json::{Value, json};

use crate::error::ServerError;
use crate::params::{FROM, MONTH, PERIOD, Params, RouteSpec, SERVICE, TEAM, TO};
use crate::state::{AppState, LiveEngine};

const JSON: &str = "application/json";

/// `GET /api/v1/services`.
pub const SERVICES: RouteSpec = RouteSpec::get(
    "/api/v1/services",
    "The configured services with their team, repositories and paths.",
    &[],
);
/// `GET /api/v1/dora`.
pub const DORA: RouteSpec = RouteSpec::get(
    "/api/v1/dora",
    "Every column of dora_daily|weekly|monthly for the periods from the one holding `from` to the one holding `to` (the latest period without both), per service and overall, one service, or one team.",
    &[PERIOD, SERVICE, TEAM, FROM, TO],
);
/// `GET /api/v1/costs`.
pub const COSTS: RouteSpec = RouteSpec::get(
    "/api/v1/costs",
    "One month's cost per service (the bill's latest month without `month`): direct and shared parts, unallocated, deployments, cost per deployment, forecast, total; money as decimal strings.",
    &[MONTH, SERVICE, TEAM],
);
/// `GET /api/v1/scorecard`.
pub const SCORECARD: RouteSpec = RouteSpec::get(
    "/api/v1/scorecard",
    "Per service, one month's cost and cost per deployment beside its DORA metrics and levels (service_scorecard); the latest month without `month`.",
    &[MONTH, SERVICE, TEAM],
);
/// `GET /api/v1/budgets`.
pub const BUDGETS: RouteSpec = RouteSpec::get(
    "/api/v1/budgets",
    "Each [[budgets]] entry's actual and forecast spend against its amount, and its thresholds; the current month without `month`.",
    &[MONTH],
);
/// `GET /api/v1/alerts`.
pub const ALERTS: RouteSpec = RouteSpec::get(
    "/api/v1/alerts",
    "The alerts' history, newest first: budget thresholds, anomaly digest entries and scheduled reports, each with its channel, recipients, state (queued, sent, failed), attempts and last error.",
    &[],
);
/// `GET /api/v1/data-quality`.
pub const DATA_QUALITY: RouteSpec = RouteSpec::get(
    "/api/v1/data-quality",
    "How far one month's figures can be trusted (the latest complete month without `month`): lead-time coverage, incidents with no deployment, the unallocated share of each bill, the last ingest per source, the derived tables' status.",
    &[MONTH],
);
/// `GET /api/v1/derived`.
pub const DERIVED: RouteSpec = RouteSpec::get(
    "/api/v1/derived",
    "The derived tables as the serving engine found them (fresh, stale, missing, ignored) and the lake versions it was opened at.",
    &[],
);

/// Runs a bound query on `live` and answers its rows.
async fn rows(live: &LiveEngine, query: &BoundQuery) -> Result<Vec<Value>, ServerError> {
    let (_, batches) = live.engine.query_bound(query).await?;
    json_rows(&batches)
}

/// The answer of `key` on the engine of the moment: cached, or computed by `compute` and kept.
async fn cached<F, Fut>(state: &AppState, key: String, compute: F) -> Result<Response, ServerError>
where
    F: FnOnce(Arc<LiveEngine>) -> Fut,
    Fut: Future<Output = Result<Value, ServerError>>,
{
    let live = state.engine()?;
    let (body, hit) = on_engine(&live, key, compute(Arc::clone(&live))).await?;
    let mut response = ([(CONTENT_TYPE, JSON)], body).into_response();
    response.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    Ok(response)
}

/// `answer` as the JSON bytes kept in `live`'s cache under `key`.
async fn on_engine(
    live: &LiveEngine,
    key: String,
    answer: impl Future<Output = Result<Value, ServerError>>,
) -> Result<(Bytes, bool), ServerError> {
    live.cache
        .get_or_compute(key, async {
            let value = answer.await?;
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .map_err(|e| ServerError::Query(e.to_string()))
        })
        .await
}

/// Computes the answers most asked for (the parameterless DORA and cost reports, `/metrics`) on
/// a new engine as soon as it serves, so that the requests after a lake commit share one
/// computation of each (and later ones are cache hits).
pub(crate) async fn warm(live: &LiveEngine) -> Result<(), ServerError> {
    let dora = DoraReport {
        period: Period::Month,
        scope: query::reports::Scope::Everything,
        from: None,
        to: None,
    };
    on_engine(live, dora_key(&dora), dora_answer(live, &dora)).await?;
    let costs = CostsReport {
        scope: query::reports::Scope::Everything,
        month: None,
    };
    on_engine(live, costs_key(&costs), costs_answer(live, &costs)).await?;
    crate::lake_metrics::lake_series(live).await?;
    Ok(())
}

fn dora_key(report: &DoraReport) -> String {
    format!("dora {report:?}")
}

async fn dora_answer(live: &LiveEngine, report: &DoraReport) -> Result<Value, ServerError> {
    let rows = rows(live, &report.query(Detail::Full)).await?;
    Ok(json!({ "period": report.period.as_str(), "rows": rows }))
}

fn costs_key(report: &CostsReport) -> String {
    format!("costs {report:?}")
}

async fn costs_answer(live: &LiveEngine, report: &CostsReport) -> Result<Value, ServerError> {
    let rows = rows(live, &report.query(Detail::Full)).await?;
    Ok(json!({ "rows": rows }))
}

/// Batches as JSON objects; decimals as strings (money is never a float), NULL as `null`.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Value>, ServerError> {
    let failed = |e: arrow::error::ArrowError| ServerError::Query(e.to_string());
    let mut out = Vec::new();
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = query::output::decimals_as_text(batch).map_err(failed)?;
        let mut bytes = Vec::new();
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut bytes);
        writer.write(&batch).map_err(failed)?;
        writer.finish().map_err(failed)?;
        drop(writer);
        let rows: Vec<Value> =
            serde_json::from_slice(&bytes).map_err(|e| ServerError::Query(e.to_string()))?;
        out.extend(rows);
    }
    Ok(out)
}

/// `GET /api/v1/services`.
pub async fn services(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    Params::new(&SERVICES, pairs).finish()?;
    let services: Vec<Value> = state
        .config()
        .services
        .iter()
        .map(|s| json!({ "name": s.name, "team": s.team, "repos": s.repos, "paths": s.paths }))
        .collect();
    Ok(axum::Json(json!({ "services": services })).into_response())
}

/// `GET /api/v1/dora`.
pub async fn dora(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    let mut params = Params::new(&DORA, pairs);
    let period = match params.text(PERIOD)? {
        None => Period::Month,
        Some(text) => text
            .parse::<Period>()
            .map_err(|message| ServerError::bad("period", format!("`{text}`: {message}")))?,
    };
    let scope = params.scope(&state, false)?;
    let from = params.date(FROM)?;
    let to = params.date(TO)?;
    params.finish()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ServerError::bad(
            "to",
            format!("{to} is before from {from}"),
        ));
    }
    let report = DoraReport {
        period,
        scope,
        from,
        to,
    };
    cached(&state, dora_key(&report), |live| async move {
        dora_answer(&live, &report).await
    })
    .await
}

/// `GET /api/v1/costs`.
pub async fn costs(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    let mut params = Params::new(&COSTS, pairs);
    let month = params.month(MONTH)?;
    let scope = params.scope(&state, true)?;
    params.finish()?;
    let report = CostsReport { scope, month };
    cached(&state, costs_key(&report), |live| async move {
        costs_answer(&live, &report).await
    })
    .await
}

/// `GET /api/v1/scorecard`.
pub async fn scorecard(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    let mut params = Params::new(&SCORECARD, pairs);
    let month = params.month(MONTH)?;
    let scope = params.scope(&state, false)?;
    params.finish()?;
    let key = format!("scorecard {scope:?} {month:?}");
    cached(&state, key, |live| async move {
        let rows = rows(&live, &query::reports::scorecard(&scope, month)).await?;
        Ok(json!({ "rows": rows }))
    })
    .await
}

/// `GET /api/v1/budgets`.
pub async fn budgets(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    let mut params = Params::new(&BUDGETS, pairs);
    let month = params.month(MONTH)?;
    params.finish()?;
    cached(&state, format!("budgets {month:?}"), |live| async move {
        let (status, thresholds) = query::reports::budgets(month);
        let budgets = rows(&live, &status).await?;
        let thresholds = rows(&live, &thresholds).await?;
        Ok(json!({ "budgets": budgets, "thresholds": thresholds }))
    })
    .await
}

/// `GET /api/v1/alerts`.
pub async fn alerts(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    Params::new(&ALERTS, pairs).finish()?;
    cached(&state, "alerts".to_owned(), |live| async move {
        let query = BoundQuery {
            sql: "SELECT alert_key, kind, budget, period, threshold, severity, CAST(value AS VARCHAR) AS value, \
                  channel, recipients, subject, state, attempts, last_error, first_fired_at, sent_at, next_attempt_at \
                  FROM alerts ORDER BY first_fired_at DESC, alert_key"
                .to_owned(),
            params: Vec::new(),
        };
        Ok(json!({ "alerts": rows(&live, &query).await? }))
    })
    .await
}

/// `GET /api/v1/data-quality`.
pub async fn data_quality(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    let mut params = Params::new(&DATA_QUALITY, pairs);
    let month = params.month(MONTH)?;
    params.finish()?;
    cached(
        &state,
        format!("data-quality {month:?}"),
        |live| async move {
            let mut answer = serde_json::Map::new();
            let month_shown = match month {
                Some(month) => Value::String(month.format("%Y-%m").to_string()),
                None => {
                    let latest = rows(
                        &live,
                        &BoundQuery {
                            sql: format!(
                                "SELECT CAST({} AS VARCHAR) AS month",
                                query::reports::LATEST_COMPLETE_MONTH
                            ),
                            params: Vec::new(),
                        },
                    )
                    .await?;
                    latest
                        .first()
                        .and_then(|row| row.get("month"))
                        .and_then(Value::as_str)
                        .map_or(Value::Null, |m| Value::String(m.chars().take(7).collect()))
                }
            };
            answer.insert("month".into(), month_shown);
            for (section, query) in query::reports::data_quality(month) {
                answer.insert(section.into(), Value::Array(rows(&live, &query).await?));
            }
            answer.insert("derived".into(), derived_tables(&live));
            Ok(Value::Object(answer))
        },
    )
    .await
}

fn derived_tables(live: &LiveEngine) -> Value {
    live.engine
        .derived()
        .iter()
        .map(|d| json!({ "table": d.name, "status": d.status.as_str(), "version": d.version }))
        .collect()
}

/// `GET /api/v1/derived`.
pub async fn derived(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ServerError> {
    Params::new(&DERIVED, pairs).finish()?;
    let live = state.engine()?;
    Ok(axum::Json(json!({
        "tables": derived_tables(&live),
        "engine_opened_at": live.opened_at.to_rfc3339(),
        "lake": live.content,
    }))
    .into_response())
}
