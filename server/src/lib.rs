//! The server: doracost over the network (DESIGN §5 "HTTP"). One axum router over one
//! [`AppState`] (config, lake, the query engine of the moment); the JSON API, analysts' SQL, health checks and,
//! as they come, pages, charts, webhooks and `/metrics` mount on [`app`]. [`run`] serves it
//! on a listener until a shutdown signal, finishing the requests in flight.
//!
//! Not for: computing metrics (the views of `query` do) or reading sources (`ingest` does); the
//! handlers validate, bind and render.

pub mod alerts;
pub mod analysts;
pub mod api;
pub mod auth;
pub mod cache;
pub mod error;
pub mod events;
pub mod github_webhook;
pub mod lake_metrics;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod params;
pub mod pg;
pub mod pipeline;
pub mod sql;
pub mod state;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower_http::trace::TraceLayer;

pub use error::ServerError;
pub use params::RouteSpec;
pub use state::{AppState, Background, LiveEngine, ServerOptions};

/// Every route, with a span per request (method, route, status, latency) and a time limit.
pub fn app(state: AppState) -> Router {
    let timeout = state.options().request_timeout;
    let body_limit = state.config().server.max_body_bytes;
    let sql_body_limit = state.options().sql.max_body_bytes;
    Router::new()
        .route(HEALTHZ.path, get(healthz))
        .route(READYZ.path, get(readyz))
        .route(metrics::METRICS.path, get(metrics::metrics))
        .route(
            events::EVENTS.path,
            post(events::post_events).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            github_webhook::GITHUB_WEBHOOK.path,
            post(github_webhook::post_github).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            sql::SQL.path,
            post(sql::post_sql).layer(DefaultBodyLimit::max(sql_body_limit)),
        )
        .route(api::SERVICES.path, get(api::services))
        .route(api::DORA.path, get(api::dora))
        .route(api::COSTS.path, get(api::costs))
        .route(api::SCORECARD.path, get(api::scorecard))
        .route(api::BUDGETS.path, get(api::budgets))
        .route(api::ALERTS.path, get(api::alerts))
        .route(api::DATA_QUALITY.path, get(api::data_quality))
        .route(api::DERIVED.path, get(api::derived))
        .route(openapi::OPENAPI.path, get(openapi::openapi))
        .route("/", get(pages::review))
        .route("/costs", get(pages::costs))
        .route("/data-quality", get(pages::data_quality))
        .route("/dashboards/{name}", get(pages::dashboard))
        .route("/services/{name}", get(pages::service))
        .route("/teams/{name}", get(pages::team))
        .route("/charts/{dashboard}/{file}", get(pages::chart_file))
        .fallback(not_found)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(timeout, guard))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("(unmatched)", MatchedPath::as_str);
                    tracing::info_span!("request", method = %request.method(), route)
                })
                .on_request(())
                .on_response(
                    |response: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            latency_ms = latency.as_secs_f64() * 1000.0,
                            "answered"
                        );
                    },
                )
                .on_failure(()),
        )
        .with_state(state)
}

/// Every request's time limit (503 beyond it) and panic guard (500): either way a JSON error,
/// never a dropped connection.
async fn guard(
    State(limit): State<Duration>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    use futures::FutureExt;
    let answer = std::panic::AssertUnwindSafe(next.run(request)).catch_unwind();
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => ServerError::Defect(
            "the server failed answering this request (a defect; its log has the details)".into(),
        )
        .into_response(),
        Err(_) => ServerError::Unavailable(format!(
            "no answer within {} s: try again, or ask for less",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// Serves [`app`] on `listener` until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `GET /healthz`.
pub const HEALTHZ: RouteSpec = RouteSpec::get("/healthz", "The process is up.", &[]);
/// `GET /readyz`.
pub const READYZ: RouteSpec = RouteSpec::get(
    "/readyz",
    "200 once a query engine is open over the lake; 503 with the reason before, or when the lake cannot be read.",
    &[],
);

/// Every route the router mounts, for the OpenAPI document.
pub const ROUTES: &[&RouteSpec] = &[
    &HEALTHZ,
    &READYZ,
    &metrics::METRICS,
    &api::SERVICES,
    &api::DORA,
    &api::COSTS,
    &api::SCORECARD,
    &api::BUDGETS,
    &api::ALERTS,
    &api::DATA_QUALITY,
    &api::DERIVED,
    &events::EVENTS,
    &github_webhook::GITHUB_WEBHOOK,
    &sql::SQL,
    &openapi::OPENAPI,
];

/// `GET /healthz`: the process is up.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the lake is reachable and an engine is open over it; 503 with the reason
/// otherwise (while the first engine is still opening, or the lake cannot be read).
async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine() {
        Ok(live) => {
            let mut body = json!({
                "status": "ready",
                "engine_opened_at": live.opened_at.to_rfc3339(),
            });
            if let Some(error) = state.open_error() {
                // An engine is open, but the latest reload failed: still ready, on older data.
                body["reload_error"] = serde_json::Value::String(error);
            }
            axum::Json(body).into_response()
        }
        Err(err) => {
            let status = err.status();
            (
                status,
                axum::Json(json!({ "status": "not ready", "reason": err.to_string() })),
            )
                .into_response()
        }
    }
}

async fn not_found(request: Request) -> ServerError {
    ServerError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[server] listen` (or `--listen`) is not an address.
    #[error("listen address `{0}`: expected IP:PORT, e.g. 127.0.0.1:8080")]
    Address(String),
    /// A non-loopback address without a token would open writes and SQL to the network.
    #[error(
        "refusing to listen on {0} without a token: outside loopback, write endpoints and SQL \
         need `[server] token = {{ env = \"DORACOST_TOKEN\" }}` (a secret reference), or listen \
         on 127.0.0.1"
    )]
    NeedsToken(std::net::SocketAddr),
    /// A non-loopback PostgreSQL address without a password would open SQL to the network.
    #[error(
        "refusing to serve PostgreSQL on {0} without a password: outside loopback it needs \
         `[server] pg_password = {{ env = \"DORACOST_PG_PASSWORD\" }}` (a secret reference), or \
         `pg_listen = \"127.0.0.1:5433\"`"
    )]
    NeedsPgPassword(std::net::SocketAddr),
    /// `[server] pg_tls_cert` or `pg_tls_key` cannot be read or do not fit.
    #[error("[server] pg_tls_cert/pg_tls_key: {0}")]
    PgTls(String),
    /// `[server] pg_password` cannot be read.
    #[error("[server] pg_password: {0}")]
    PgPassword(String),
    /// A `[server]` setting out of range.
    #[error("[server] {key} = {value}: expected {expected}")]
    Setting {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// `[server] token` cannot be read.
    #[error("[server] token: {0}")]
    Token(String),
    /// A dashboard of `[dashboards] dir` (or a built-in one) cannot be read.
    #[error("dashboards: {0}")]
    Dashboards(String),
    /// The address is in use or not ours.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Binds `listen`, refusing a non-loopback address unless a token is configured (DESIGN §5:
/// write endpoints and SQL need a token unless the server listens on loopback only).
pub async fn bind(
    listen: &str,
    token_configured: bool,
) -> Result<tokio::net::TcpListener, StartError> {
    bind_guarded(listen, token_configured, StartError::NeedsToken).await
}

/// Binds `listen`; a non-loopback address only when `guarded` (a credential is configured),
/// else the error `unguarded` makes of it. The HTTP and PostgreSQL listeners both bind so.
pub(crate) async fn bind_guarded(
    listen: &str,
    guarded: bool,
    unguarded: fn(std::net::SocketAddr) -> StartError,
) -> Result<tokio::net::TcpListener, StartError> {
    let address: std::net::SocketAddr = listen
        .trim()
        .parse()
        .map_err(|_| StartError::Address(listen.to_owned()))?;
    if !address.ip().is_loopback() && !guarded {
        return Err(unguarded(address));
    }
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind { address, source })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
