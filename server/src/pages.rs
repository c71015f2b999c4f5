//! The dashboards over HTTP (DESIGN §5): the monthly infra review at `/`, one service or team at
//! `/services/{name}` and `/teams/{name}`, `/costs`, `/data-quality`, any dashboard at
//! `/dashboards/{name}`, and one panel's chart at `/charts/{dashboard}/{panel}.png|.svg`. Pages
//! and charts are cached per engine like the API's answers (a warm page is one cache hit); a
//! page's panels run concurrently. Errors answer as a small HTML page for browsers.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Months, NaiveDate};
use dashboards::chart;
use dashboards::{Dashboard, PageContext, PanelKind, Selection};

use crate::error::ServerError;
use crate::state::{AppState, LiveEngine};

const HTML: &str = "text/html; charset=utf-8";

/// `GET /`: the monthly infra review.
pub async fn review(state: State<AppState>, query: Query<Vec<(String, String)>>) -> Response {
    page(state, "review", query.0, None).await
}

/// `GET /costs`.
pub async fn costs(state: State<AppState>, query: Query<Vec<(String, String)>>) -> Response {
    page(state, "costs", query.0, None).await
}

/// `GET /data-quality`.
pub async fn data_quality(state: State<AppState>, query: Query<Vec<(String, String)>>) -> Response {
    page(state, "data-quality", query.0, None).await
}

/// `GET /dashboards/{name}`.
pub async fn dashboard(
    state: State<AppState>,
    Path(name): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> Response {
    page(state, &name, query.0, None).await
}

/// `GET /services/{name}`: the service dashboard for one service.
pub async fn service(
    state: State<AppState>,
    Path(name): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> Response {
    page(state, "service", query.0, Some(("service", name))).await
}

/// `GET /teams/{name}`: the team dashboard for one team.
pub async fn team(
    state: State<AppState>,
    Path(name): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> Response {
    page(state, "team", query.0, Some(("team", name))).await
}

/// One dashboard's page; `fixed` is the service or team its path names (not a form choice).
async fn page(
    State(state): State<AppState>,
    name: &str,
    mut pairs: Vec<(String, String)>,
    fixed: Option<(&'static str, String)>,
) -> Response {
    if let Some((parameter, value)) = fixed {
        pairs.retain(|(p, _)| p != parameter);
        pairs.push((parameter.to_owned(), value));
    }
    match page_html(&state, name, &pairs).await {
        Ok((body, hit)) => {
            let mut response = ([(CONTENT_TYPE, HTML)], body).into_response();
            response.headers_mut().insert(
                "x-cache",
                HeaderValue::from_static(if hit { "hit" } else { "miss" }),
            );
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => error_page(&error),
    }
}

async fn page_html(
    state: &AppState,
    name: &str,
    pairs: &[(String, String)],
) -> Result<(Bytes, bool), ServerError> {
    let dashboard = find(state, name)?;
    let live = state.engine()?;
    let selection = selection(state, &live, pairs).await?;
    let key = format!("page {name} {selection:?}");
    // Boxed: a page's computation (every panel's future) is too big for a worker's stack inline.
    live.cache
        .get_or_compute(
            key,
            Box::pin(async {
                let results = dashboards::run_page(&live.engine, dashboard, &selection).await;
                let refreshed = refreshed(state, &live).await;
                let context = PageContext {
                    catalog: &state.options().dashboards,
                    config: state.config(),
                    currency: dashboards::page::currency(state.config()),
                    refreshed,
                    standalone: false,
                };
                Ok::<_, ServerError>(Bytes::from(dashboards::render(
                    &context, dashboard, &selection, &results,
                )))
            }),
        )
        .await
}

fn find<'a>(state: &'a AppState, name: &str) -> Result<&'a Dashboard, ServerError> {
    state.options().dashboards.get(name).ok_or_else(|| {
        let names: Vec<&str> = state
            .options()
            .dashboards
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        ServerError::NotFound(format!(
            "no dashboard `{name}`: there are {}",
            names.join(", ")
        ))
    })
}

/// The page's choices; the month defaults to the latest complete one of the lake (cached per
/// engine), or the last calendar month on an empty lake.
async fn selection(
    state: &AppState,
    live: &LiveEngine,
    pairs: &[(String, String)],
) -> Result<Selection, ServerError> {
    let (month, _) = live
        .cache
        .get_or_compute("default month".to_owned(), async {
            let month = dashboards::latest_complete_month(&live.engine)
                .await
                .map_err(ServerError::Query)?
                .unwrap_or_else(last_calendar_month);
            Ok::<_, ServerError>(Bytes::from(month.to_string()))
        })
        .await?;
    let month = std::str::from_utf8(&month)
        .ok()
        .and_then(|m| m.parse::<NaiveDate>().ok())
        .unwrap_or_else(last_calendar_month);
    Selection::parse(pairs, state.config(), month)
        .map_err(|e| ServerError::bad(e.parameter, e.message))
}

fn last_calendar_month() -> NaiveDate {
    let today = chrono::Utc::now().date_naive();
    dashboards::selection::first_of_month(today) - Months::new(1)
}

/// "Lake version 12 · last ingest 2026-03-31 18:02 CEST · read 2026-04-01 09:00 CEST": the
/// same for every page of one engine, so worked out once per engine (it scans every table's
/// `ingested_at`).
async fn refreshed(state: &AppState, live: &LiveEngine) -> String {
    let line = live
        .cache
        .get_or_compute("refreshed".to_owned(), async {
            Ok::<_, std::convert::Infallible>(Bytes::from(
                Box::pin(refreshed_line(state, live)).await,
            ))
        })
        .await;
    match line {
        Ok((bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(never) => match never {},
    }
}

async fn refreshed_line(state: &AppState, live: &LiveEngine) -> String {
    let zone = state.config().reporting.time_zone.0;
    let local = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let version = live
        .engine
        .lake_version()
        .map_or_else(|| "Lake".to_owned(), |v| format!("Lake version {v}"));
    let sql = format!(
        "SELECT max(last_ingested_at) AS at FROM ({})",
        query::reports::LAST_INGEST_PER_SOURCE
    );
    let last = match live.engine.query(&sql).await {
        Ok(batches) => batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .and_then(|b| {
                let column = arrow::compute::cast(
                    b.column(0),
                    &arrow::datatypes::DataType::Timestamp(
                        arrow::datatypes::TimeUnit::Microsecond,
                        None,
                    ),
                )
                .ok()?;
                let micros = column
                    .as_any()
                    .downcast_ref::<arrow::array::TimestampMicrosecondArray>()?;
                if arrow::array::Array::is_null(micros, 0) {
                    return None;
                }
                chrono::DateTime::from_timestamp_micros(micros.value(0))
            })
            .map_or_else(
                || "no ingest yet".to_owned(),
                |at| format!("last ingest {}", local(at)),
            ),
        Err(e) => format!("last ingest unknown ({e})"),
    };
    format!(
        "Last refreshed: {version} · {last} · read {}",
        local(live.opened_at)
    )
}

/// `GET /charts/{dashboard}/{panel}.png|.svg`: one panel drawn alone, with the page's choices.
pub async fn chart_file(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match chart_bytes(&state, &name, &file, &pairs).await {
        Ok((body, media_type, hit)) => {
            let mut response = ([(CONTENT_TYPE, media_type)], body).into_response();
            response.headers_mut().insert(
                "x-cache",
                HeaderValue::from_static(if hit { "hit" } else { "miss" }),
            );
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn chart_bytes(
    state: &AppState,
    name: &str,
    file: &str,
    pairs: &[(String, String)],
) -> Result<(Bytes, &'static str, bool), ServerError> {
    let (panel_id, png) = match (file.strip_suffix(".png"), file.strip_suffix(".svg")) {
        (Some(id), _) => (id, true),
        (None, Some(id)) => (id, false),
        _ => {
            return Err(ServerError::NotFound(format!(
                "`{file}`: a chart is `{{panel}}.png` or `{{panel}}.svg`"
            )));
        }
    };
    let dashboard = find(state, name)?;
    let panel = dashboard.panel(panel_id).ok_or_else(|| {
        let ids: Vec<&str> = dashboard.panels.iter().map(|p| p.id.as_str()).collect();
        ServerError::NotFound(format!(
            "dashboard `{name}` has no panel `{panel_id}`: it has {}",
            ids.join(", ")
        ))
    })?;
    let PanelKind::Chart(kind) = panel.kind else {
        return Err(ServerError::NotFound(format!(
            "panel `{panel_id}` is a summary in words, not a chart"
        )));
    };
    let live = state.engine()?;
    let selection = selection(state, &live, pairs).await?;
    let key = format!("chart {name} {file} {selection:?}");
    let (body, hit) = live
        .cache
        .get_or_compute(key, async {
            let result = dashboards::run_panel(&live.engine, panel, &selection).await;
            let rows = result.outcome.map_err(ServerError::Query)?;
            let currency = dashboards::page::currency(state.config());
            let spec = dashboards::page::chart_spec(panel, kind, state.config(), &currency);
            let drawn = if png {
                chart::png(&spec, &rows.schema, &rows.batches).map(Bytes::from)
            } else {
                chart::svg(&spec, &rows.schema, &rows.batches).map(Bytes::from)
            };
            drawn.map_err(|e| ServerError::Query(format!("panel `{}`: {e}", panel.id)))
        })
        .await?;
    Ok((body, if png { "image/png" } else { "image/svg+xml" }, hit))
}

/// An error as a page a person can read, with the status the API would answer.
fn error_page(error: &ServerError) -> Response {
    let status = error.status();
    let heading = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Check the filters",
        StatusCode::SERVICE_UNAVAILABLE => "Not ready yet",
        _ => "Something went wrong",
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{heading} · doracost</title></head>\
         <body style=\"font-family:sans-serif;max-width:40rem;margin:3rem auto\"><h1>{heading}</h1><p>{}</p>\
         <p><a href=\"/\">Back to the infra review</a></p></body></html>\n",
        dashboards::page::esc(&error.to_string())
    );
    (status, [(CONTENT_TYPE, HTML)], body).into_response()
}
