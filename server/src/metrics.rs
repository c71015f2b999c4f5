//! `GET /metrics`: Prometheus text format (version 0.0.4), named by Prometheus conventions: base
//! units (`_seconds`, `_ratio`), `_total` counters, labels `service` and `team` (DESIGN §5).
//!
//! Two kinds of series: the server's own (HTTP requests and their latency by route, event
//! commits, refreshes), counted in memory since the process started; and the lake's
//! ([`crate::lake_metrics`]), read from the views once per engine: per service the latest complete month's DORA values and levels, the
//! month-to-date cost and its forecast, each budget's use, when each source last ingested, and
//! whether each derived table is fresh.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
    let lake = crate::lake_metrics::lake_series(&live).await?;
    out.push_str(&String::from_utf8_lossy(&lake));
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response())
}

/// Writes a family's `# HELP` and `# TYPE` lines.
pub(crate) fn family_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
