//! `/api/v1/…`: the JSON API (DESIGN §5). Each handler validates its query string (an unknown
//! parameter, a bad date or a name the config does not know is a 400 naming the parameter),
//! binds the values into one of the parameterised reports of `query::reports`, and answers the
//! rows as JSON objects, money as decimal strings.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use chrono::NaiveDate;
use query::reports::{BoundQuery, CostsReport, Detail, DoraReport, Period, Scope};
use serde_json::{Value, json};

use crate::error::ServerError;
use crate::state::AppState;

/// The routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(services))
        .route("/dora", get(dora))
        .route("/costs", get(costs))
        .route("/scorecard", get(scorecard))
        .route("/budgets", get(budgets))
        .route("/derived", get(derived))
}

/// A query string's parameters, taken one by one; whatever is left is unknown.
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn new(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// The value of `name` (empty counts as absent); given twice is an error.
    fn text(&mut self, name: &str) -> Result<Option<String>, ServerError> {
        let mut found = None;
        let mut rest = Vec::with_capacity(self.pairs.len());
        for (key, value) in self.pairs.drain(..) {
            if key == name {
                if found.is_some() {
                    return Err(ServerError::bad(name, "given more than once"));
                }
                found = Some(value);
            } else {
                rest.push((key, value));
            }
        }
        self.pairs = rest;
        Ok(found.filter(|v| !v.trim().is_empty()))
    }

    fn date(&mut self, name: &str) -> Result<Option<NaiveDate>, ServerError> {
        self.text(name)?
            .map(|text| {
                NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
                    ServerError::bad(
                        name,
                        format!("expected a date as YYYY-MM-DD, found `{text}`"),
                    )
                })
            })
            .transpose()
    }

    fn month(&mut self, name: &str) -> Result<Option<NaiveDate>, ServerError> {
        self.text(name)?
            .map(|text| {
                NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d").map_err(
                    |_| {
                        ServerError::bad(
                            name,
                            format!("expected a month as YYYY-MM (e.g. 2025-11), found `{text}`"),
                        )
                    },
                )
            })
            .transpose()
    }

    /// `service` or `team` (not both), checked against the config.
    fn scope(&mut self, state: &AppState, allow_unallocated: bool) -> Result<Scope, ServerError> {
        let service = self.text("service")?;
        let team = self.text("team")?;
        let scope = match (service, team) {
            (Some(_), Some(_)) => {
                return Err(ServerError::bad("team", "give service or team, not both"));
            }
            (Some(service), None) => Scope::Service(service),
            (None, Some(team)) => Scope::Team(team),
            (None, None) => Scope::Everything,
        };
        Ok(scope.checked(state.config(), allow_unallocated)?)
    }

    /// Every parameter was taken: one left over is unknown.
    fn finish(self, known: &[&str]) -> Result<(), ServerError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((key, _)) => Err(ServerError::bad(
                key,
                format!("unknown parameter (expected: {})", known.join(", ")),
            )),
        }
    }
}

/// Runs a bound query on the engine of the moment and answers its rows.
async fn rows(state: &AppState, query: &BoundQuery) -> Result<Vec<Value>, ServerError> {
    let live = state.engine()?;
    let (schema, batches) = live.engine.query_bound(query).await?;
    json_rows(&schema, &batches)
}

/// Batches as JSON objects; decimals as strings (money is never a float), NULL as `null`.
pub fn json_rows(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<Value>, ServerError> {
    let failed = |e: arrow::error::ArrowError| ServerError::Query(e.to_string());
    let mut out = Vec::new();
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let columns = batch
            .columns()
            .iter()
            .map(|column| match column.data_type() {
                DataType::Decimal128(..) | DataType::Decimal256(..) => {
                    arrow::compute::cast(column, &DataType::Utf8)
                }
                _ => Ok(Arc::clone(column)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| arrow::datatypes::Field::new(f.name(), c.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(failed)?;
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

/// `GET /api/v1/services`: the configured services, with their team, repositories and paths.
async fn services(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ServerError> {
    Params::new(pairs).finish(&[])?;
    let services: Vec<Value> = state
        .config()
        .services
        .iter()
        .map(|s| {
            json!({
                "name": s.name, "team": s.team, "repos": s.repos, "paths": s.paths,
            })
        })
        .collect();
    Ok(Json(json!({ "services": services })))
}

/// `GET /api/v1/dora?period=day|week|month&service=…|team=…&from=YYYY-MM-DD&to=YYYY-MM-DD`: every
/// column of `dora_daily|weekly|monthly` for the periods from the one holding `from` to the one
/// holding `to` (the latest period without both).
async fn dora(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ServerError> {
    let mut params = Params::new(pairs);
    let period = match params.text("period")? {
        None => Period::Month,
        Some(text) => text
            .parse::<Period>()
            .map_err(|message| ServerError::bad("period", format!("`{text}`: {message}")))?,
    };
    let scope = params.scope(&state, false)?;
    let from = params.date("from")?;
    let to = params.date("to")?;
    params.finish(&["period", "service", "team", "from", "to"])?;
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
    let rows = rows(&state, &report.query(Detail::Full)).await?;
    Ok(Json(json!({ "period": period.as_str(), "rows": rows })))
}

/// `GET /api/v1/costs?month=YYYY-MM&service=…|team=…`: one month's cost per service (the month
/// of the bill's latest data without `month`), `unallocated` always listed, then a total.
async fn costs(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ServerError> {
    let mut params = Params::new(pairs);
    let scope = params.scope(&state, true)?;
    let month = params.month("month")?;
    params.finish(&["month", "service", "team"])?;
    let report = CostsReport { scope, month };
    let rows = rows(&state, &report.query(Detail::Full)).await?;
    Ok(Json(json!({ "rows": rows })))
}

/// `GET /api/v1/scorecard?month=YYYY-MM&service=…|team=…`: per service and month, cost and cost
/// per deployment beside the DORA metrics and levels (`service_scorecard`); the latest month
/// without `month`.
async fn scorecard(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ServerError> {
    let mut params = Params::new(pairs);
    let scope = params.scope(&state, false)?;
    let month = params.month("month")?;
    params.finish(&["month", "service", "team"])?;
    let query = query::reports::scorecard(&scope, month);
    let rows = rows(&state, &query).await?;
    Ok(Json(json!({ "rows": rows })))
}

/// `GET /api/v1/budgets?month=YYYY-MM`: each `[[budgets]]` entry's actual and forecast against its
/// amount, with its thresholds (`budget_status`, `budget_threshold_status`); the current month
/// without `month`.
async fn budgets(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ServerError> {
    let mut params = Params::new(pairs);
    let month = params.month("month")?;
    params.finish(&["month"])?;
    let (status, thresholds) = query::reports::budgets(month);
    let budgets = rows(&state, &status).await?;
    let thresholds = rows(&state, &thresholds).await?;
    Ok(Json(
        json!({ "budgets": budgets, "thresholds": thresholds }),
    ))
}

/// `GET /api/v1/derived`: the derived tables as this server's engine found them (fresh, stale,
/// missing, ignored), and the lake content it was opened at.
async fn derived(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ServerError> {
    Params::new(pairs).finish(&[])?;
    let live = state.engine()?;
    let tables: Vec<Value> = live
        .engine
        .derived()
        .iter()
        .map(|d| json!({ "table": d.name, "status": d.status.as_str(), "version": d.version }))
        .collect();
    Ok(Json(json!({
        "tables": tables,
        "engine_opened_at": live.opened_at.to_rfc3339(),
        "lake": live.content,
    })))
}
