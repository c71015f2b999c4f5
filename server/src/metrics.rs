//! `GET /metrics`: Prometheus text format (version 0.0.4), named by Prometheus conventions: base
//! units (`_seconds`, `_ratio`), `_total` counters, labels `service` and `team` (DESIGN §5).
//!
//! Two kinds of series: the server's own (HTTP requests and their latency by route, event
//! commits, refreshes), counted in memory since the process started; and the lake's, read from
//! the views on each scrape: per service the latest complete month's DORA values and levels, the
//! month-to-date cost and its forecast, each budget's use, when each source last ingested, and
//! whether each derived table is fresh.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use query::reports::{LAST_INGEST_PER_SOURCE, LATEST_COMPLETE_MONTH};

use crate::error::ServerError;
use crate::state::AppState;

/// Upper bounds of the request-latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The server's own counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// (route, method, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// route → latency histogram.
    latency: BTreeMap<String, Histogram>,
    event_requests: u64,
    event_commits: u64,
    refreshes_ok: u64,
    refreshes_failed: u64,
}

#[derive(Default, Clone)]
struct Histogram {
    /// Counts per bucket (not cumulative), the last one for +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn request(&self, route: &str, method: &str, status: u16, latency: Duration) {
        let mut c = self.counters();
        *c.requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let seconds = latency.as_secs_f64();
        let histogram = c.latency.entry(route.to_owned()).or_default();
        let bucket = BUCKETS
            .iter()
            .position(|&upper| seconds <= upper)
            .unwrap_or(BUCKETS.len());
        histogram.counts[bucket] += 1;
        histogram.sum += seconds;
    }

    /// One commit of `requests` posted event bodies.
    pub fn events_committed(&self, requests: usize) {
        let mut c = self.counters();
        c.event_requests += requests as u64;
        c.event_commits += 1;
    }

    /// One derived-table refresh, succeeded or not.
    pub fn refreshed(&self, ok: bool) {
        let mut c = self.counters();
        if ok {
            c.refreshes_ok += 1;
        } else {
            c.refreshes_failed += 1;
        }
    }

    fn render(&self, out: &mut String) {
        let c = self.counters();
        family_header(
            out,
            "doracost_http_requests_total",
            "counter",
            "HTTP requests answered, by route, method and status.",
        );
        for ((route, method, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "doracost_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        family_header(
            out,
            "doracost_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request, by route.",
        );
        for (route, h) in &c.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (i, upper) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "doracost_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{upper}\"}} {cumulative}"
                );
            }
            cumulative += h.counts[BUCKETS.len()];
            let _ = writeln!(
                out,
                "doracost_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "doracost_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "doracost_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }
        for (name, help, value) in [
            (
                "doracost_event_requests_committed_total",
                "POST /api/v1/events requests whose events were committed.",
                c.event_requests,
            ),
            (
                "doracost_event_commits_total",
                "Lake commits of posted events (several requests per commit under load).",
                c.event_commits,
            ),
        ] {
            family_header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        family_header(
            out,
            "doracost_derived_refreshes_total",
            "counter",
            "Derived-table refreshes run by this server, by outcome.",
        );
        let _ = writeln!(
            out,
            "doracost_derived_refreshes_total{{outcome=\"ok\"}} {}",
            c.refreshes_ok
        );
        let _ = writeln!(
            out,
            "doracost_derived_refreshes_total{{outcome=\"failed\"}} {}",
            c.refreshes_failed
        );
    }
}

/// Counts every request by its route (the pattern, never the raw path: bounded label values).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.metrics().request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`.
pub const METRICS: crate::RouteSpec = crate::RouteSpec {
    method: "GET",
    path: "/metrics",
    summary: "Prometheus text format: HTTP, event and refresh counters; per service the latest complete month's DORA values and levels, month-to-date cost and forecast; budget use; ingest freshness; derived-table freshness.",
    params: &[],
    needs_token: false,
    answers: "text/plain; version=0.0.4",
};

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ServerError> {
    let mut out = String::new();
    state.metrics().render(&mut out);
    let live = state.engine()?;
    family_header(
        &mut out,
        "doracost_engine_opened_timestamp_seconds",
        "gauge",
        "When the query engine serving now was opened over the lake (Unix time).",
    );
    let _ = writeln!(
        out,
        "doracost_engine_opened_timestamp_seconds {}",
        live.opened_at.timestamp_millis() as f64 / 1000.0
    );
    family_header(
        &mut out,
        "doracost_derived_table_fresh",
        "gauge",
        "1 when the derived table was computed from the lake and config as they are, else 0 (queries then compute the view).",
    );
    for d in live.engine.derived() {
        let fresh = u8::from(d.status == query::derived::DerivedStatus::Fresh);
        let _ = writeln!(
            out,
            "doracost_derived_table_fresh{{table=\"{}\",status=\"{}\"}} {fresh}",
            escape(&d.name),
            d.status.as_str()
        );
    }
    let lake = lake_series(&live).await?;
    out.push_str(&String::from_utf8_lossy(&lake));
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response())
}

/// The lake's series, as text: they change only with the lake, so they are computed once per
/// engine (and before it serves, see `api::warm`).
pub(crate) async fn lake_series(
    live: &crate::LiveEngine,
) -> Result<axum::body::Bytes, ServerError> {
    let (text, _) = live
        .cache
        .get_or_compute("metrics".to_owned(), async {
            let mut text = String::new();
            for query in lake_queries() {
                let batches = live.engine.query(&query.sql).await?;
                for family in &query.families {
                    render_family(&mut text, family, &batches)?;
                }
            }
            Ok::<_, ServerError>(axum::body::Bytes::from(text))
        })
        .await?;
    Ok(text)
}

/// One query over the views and the gauge families read from its columns.
struct LakeQuery {
    sql: String,
    families: Vec<Family>,
}

/// A gauge family: per row, one sample per value column (`label` and `fixed` name it when there
/// are several), labelled with the row's `labels` columns (NULL ones left out). A NULL value
/// leaves the sample out.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Vec<Sample>,
}

/// One sample of a row: its value column (`None`: the constant 1, for a state set), and extra
/// labels, fixed or read from a column.
struct Sample {
    value: Option<&'static str>,
    fixed: Option<(&'static str, &'static str)>,
    label_column: Option<(&'static str, &'static str)>,
}

const fn value(column: &'static str) -> Sample {
    Sample {
        value: Some(column),
        fixed: None,
        label_column: None,
    }
}

const fn level(metric: &'static str, column: &'static str) -> Sample {
    Sample {
        value: None,
        fixed: Some(("metric", metric)),
        label_column: Some(("level", column)),
    }
}

const SERVICE_TEAM: &[&str] = &["service", "team"];
const BUDGET: &[&str] = &["budget", "scope", "scope_name", "currency"];

fn lake_queries() -> Vec<LakeQuery> {
    vec![
        LakeQuery {
            sql: format!(
                "SELECT m.name AS service, t.team, CAST(deploys_per_day AS DOUBLE) AS deploys_per_day, \
                   CAST(lead_time_median_hours AS DOUBLE) * 3600 AS lead_time_s, \
                   CAST(change_failure_rate AS DOUBLE) AS change_failure_rate, \
                   CAST(recovery_median_hours AS DOUBLE) * 3600 AS recovery_s, \
                   CAST(rework_rate AS DOUBLE) AS rework_rate, deploy_frequency_level, lead_time_level, \
                   change_failure_level, recovery_level \
                 FROM dora_monthly m \
                 LEFT JOIN (SELECT service, min(team) AS team FROM services GROUP BY service) t ON t.service = m.name \
                 WHERE m.scope = 'service' AND m.period_start = {LATEST_COMPLETE_MONTH} ORDER BY 1"
            ),
            families: vec![
                Family {
                    name: "doracost_dora_deployments_per_day",
                    help: "Successful production deployments per day in the latest complete month (DESIGN §4).",
                    labels: SERVICE_TEAM,
                    values: vec![value("deploys_per_day")],
                },
                Family {
                    name: "doracost_dora_lead_time_median_seconds",
                    help: "Median lead time for changes first deployed in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("lead_time_s")],
                },
                Family {
                    name: "doracost_dora_change_failure_ratio",
                    help: "Failed deployments over deployments in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("change_failure_rate")],
                },
                Family {
                    name: "doracost_dora_recovery_median_seconds",
                    help: "Median failed-deployment recovery time completed in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("recovery_s")],
                },
                Family {
                    name: "doracost_dora_rework_ratio",
                    help: "Rework deployments over deployments in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("rework_rate")],
                },
                Family {
                    name: "doracost_dora_level",
                    help: "The DORA performance level of each metric in the latest complete month (1 for the level reached).",
                    labels: SERVICE_TEAM,
                    values: vec![
                        level("deployment_frequency", "deploy_frequency_level"),
                        level("lead_time", "lead_time_level"),
                        level("change_failure_rate", "change_failure_level"),
                        level("recovery_time", "recovery_level"),
                    ],
                },
            ],
        },
        LakeQuery {
            sql: "SELECT name AS service, team, CAST(actual_to_date AS DOUBLE) AS actual, \
                    CAST(forecast AS DOUBLE) AS forecast FROM cost_forecast WHERE scope = 'service' ORDER BY 1"
                .to_owned(),
            families: vec![
                Family {
                    name: "doracost_cost_month_to_date",
                    help: "Allocated cost of the bill's current month so far, in the bill's currency.",
                    labels: SERVICE_TEAM,
                    values: vec![value("actual")],
                },
                Family {
                    name: "doracost_cost_forecast",
                    help: "Forecast allocated cost of the bill's current month at its end, in the bill's currency.",
                    labels: SERVICE_TEAM,
                    values: vec![value("forecast")],
                },
            ],
        },
        LakeQuery {
            sql: "SELECT budget, scope, scope_name, currency, actual_pct / 100 AS used, \
                    forecast_pct / 100 AS forecast FROM budget_status WHERE is_current ORDER BY 1"
                .to_owned(),
            families: vec![
                Family {
                    name: "doracost_budget_used_ratio",
                    help: "Actual spend over the monthly amount of each budget, current month.",
                    labels: BUDGET,
                    values: vec![value("used")],
                },
                Family {
                    name: "doracost_budget_forecast_ratio",
                    help: "Forecast month-end spend over the monthly amount of each budget, current month.",
                    labels: BUDGET,
                    values: vec![value("forecast")],
                },
            ],
        },
        LakeQuery {
            sql: format!(
                "SELECT source, CAST(to_unixtime(last_ingested_at) AS DOUBLE) AS at FROM ({LAST_INGEST_PER_SOURCE}) s"
            ),
            families: vec![Family {
                name: "doracost_ingest_last_timestamp_seconds",
                help: "When rows from each source last reached the lake (Unix time).",
                labels: &["source"],
                values: vec![value("at")],
            }],
        },
    ]
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A family's samples from the query's rows.
fn render_family(
    out: &mut String,
    family: &Family,
    batches: &[RecordBatch],
) -> Result<(), ServerError> {
    let failed = |e: arrow::error::ArrowError| ServerError::Query(e.to_string());
    let text = |batch: &RecordBatch, name: &str| -> Result<Vec<Option<String>>, ServerError> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| ServerError::Query(format!("/metrics: no column {name}")))?;
        let column = arrow::compute::cast(column, &DataType::Utf8).map_err(failed)?;
        let column = column.as_string::<i32>();
        Ok((0..column.len())
            .map(|i| (!column.is_null(i)).then(|| column.value(i).to_owned()))
            .collect())
    };
    family_header(out, family.name, "gauge", family.help);
    for batch in batches {
        let labels = family
            .labels
            .iter()
            .map(|name| text(batch, name).map(|values| (*name, values)))
            .collect::<Result<Vec<_>, _>>()?;
        for sample in &family.values {
            let values = match sample.value {
                Some(name) => {
                    let column = batch
                        .column_by_name(name)
                        .ok_or_else(|| ServerError::Query(format!("/metrics: no column {name}")))?;
                    let column =
                        arrow::compute::cast(column, &DataType::Float64).map_err(failed)?;
                    let column = column.as_primitive::<Float64Type>();
                    (0..column.len())
                        .map(|i| (!column.is_null(i)).then(|| column.value(i)))
                        .collect()
                }
                None => vec![Some(1.0); batch.num_rows()],
            };
            let extra = match sample.label_column {
                Some((label, column)) => Some((label, text(batch, column)?)),
                None => None,
            };
            for row in 0..batch.num_rows() {
                let Some(value) = values[row].filter(|v| v.is_finite()) else {
                    continue;
                };
                let mut pairs: Vec<String> = labels
                    .iter()
                    .filter_map(|(name, values)| {
                        values[row]
                            .as_ref()
                            .map(|v| format!("{name}=\"{}\"", escape(v)))
                    })
                    .collect();
                pairs.extend(
                    sample
                        .fixed
                        .iter()
                        .map(|(name, v)| format!("{name}=\"{}\"", escape(v))),
                );
                if let Some((label, column)) = &extra {
                    // A state set: no sample when the state is unknown.
                    let Some(state) = &column[row] else {
                        continue;
                    };
                    pairs.push(format!("{label}=\"{}\"", escape(state)));
                }
                let _ = writeln!(out, "{}{{{}}} {value}", family.name, pairs.join(","));
            }
        }
    }
    Ok(())
}
