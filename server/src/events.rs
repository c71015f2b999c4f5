//! `POST /api/v1/events`: the generic event format and Apache DevLake webhook payloads, exactly
//! what `doracost ingest events` reads, one record or a batch per request (DESIGN §5).
//!
//! A request is checked on its own first (a bad record is a 400 naming it; nothing is written),
//! then handed to the one event writer, which reads every body waiting at that moment again as
//! one input (so that rows of several bodies are deduplicated by key as one file's are, by the
//! reader's own collector, not by a second merge of batches) and commits it in one Delta unit
//! (`Lake::apply`), and only then answers each request: a 2xx means its events are in
//! the lake. Under load the bodies that arrive while a commit runs make up the next one, so 50
//! posts a second are a few commits a second, not 50. After each commit the refresher is woken: at
//! most one refresh runs, and at most one more is queued however many commits land meanwhile.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::error::ServerError;
use crate::state::AppState;

/// What names the webhook's input in errors, where a file would be named.
const ORIGIN: &str = "POST /api/v1/events";

/// The most bodies one commit takes.
const MAX_BODIES_PER_COMMIT: usize = 1000;

/// One checked body, waiting for its commit.
pub(crate) struct Submission {
    body: Bytes,
    committed: oneshot::Sender<Result<Commit, String>>,
}

/// The commit a request's events went into.
#[derive(Debug, Clone)]
struct Commit {
    /// Requests in the commit (this one included).
    requests: usize,
    /// Each table's version after it.
    versions: Vec<(String, u64)>,
}

/// `POST /api/v1/events`.
pub const EVENTS: crate::RouteSpec = crate::RouteSpec {
    method: "POST",
    path: "/api/v1/events",
    summary: "Generic events or Apache DevLake webhook payloads, one record or a batch (what `doracost ingest events` reads); 200 once committed to the lake; 400 naming the record and field; 413 over [server] max_body_bytes.",
    params: &[],
    needs_token: true,
    answers: "application/json",
};

/// `POST /api/v1/events`.
pub async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ServerError> {
    crate::auth::require(&headers, state.token())?;
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ServerError::PayloadTooLarge(format!(
                "the body is over the limit of {} bytes ([server] max_body_bytes); post the \
                 events in smaller batches",
                state.config().server.max_body_bytes
            ))
        } else {
            ServerError::BadPayload {
                message: rejection.body_text(),
                field: None,
            }
        }
    })?;
    let checked =
        ingest::events::read_event_json(&body, ORIGIN, chrono::Utc::now()).map_err(bad_payload)?;
    let accepted = json!({
        "deployments": checked.deployments.num_rows(),
        "changes": checked.changes.num_rows(),
        "deployment_changes": checked.deployment_changes.num_rows(),
        "incidents": checked.incidents.num_rows(),
    });
    let (committed, done) = oneshot::channel();
    state
        .submit(Submission { body, committed })
        .await
        .map_err(|()| ServerError::Unavailable("the server is shutting down".into()))?;
    let commit = done
        .await
        .map_err(|_| ServerError::Unavailable("the event writer stopped".into()))?
        .map_err(|e| ServerError::Unavailable(format!("the events were not written: {e}")))?;
    let versions: serde_json::Map<String, Value> = commit
        .versions
        .into_iter()
        .map(|(table, version)| (table, Value::from(version)))
        .collect();
    Ok(Json(json!({
        "accepted": accepted,
        "commit": { "requests": commit.requests, "versions": versions },
    })))
}

fn bad_payload(err: ingest::IngestError) -> ServerError {
    let field = match &err {
        ingest::IngestError::Invalid { at, .. } => at.field.clone(),
        _ => None,
    };
    ServerError::BadPayload {
        message: err.to_string(),
        field,
    }
}

/// The event writer: commits what is waiting, answers, wakes the refresher and the lake watcher.
pub(crate) async fn write_events(state: AppState, mut waiting: mpsc::Receiver<Submission>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BODIES_PER_COMMIT {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let bodies: Vec<&[u8]> = batch.iter().map(|s| s.body.as_ref()).collect();
        let started = std::time::Instant::now();
        let result = ingest::pipeline::ingest_event_bodies(state.lake(), &bodies, ORIGIN).await;
        let answer = match result {
            Ok(summary) => {
                tracing::info!(
                    requests = batch.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "committed posted events"
                );
                state.metrics().events_committed(batch.len());
                state.committed(query::EventChange::of(
                    summary.touched.clone(),
                    &summary.outcomes,
                ));
                state.request_refresh();
                state.lake_changed();
                Ok(Commit {
                    requests: batch.len(),
                    versions: summary
                        .outcomes
                        .iter()
                        .filter_map(|o| o.version.map(|v| (o.table.to_owned(), v)))
                        .collect(),
                })
            }
            Err(e) => {
                tracing::warn!(requests = batch.len(), error = %e, "posted events not committed");
                Err(e.to_string())
            }
        };
        for submission in batch {
            // A client that went away still had its events committed; nobody to tell.
            let _ = submission.committed.send(answer.clone());
        }
    }
}

/// The refresher: one refresh per wake-up; wake-ups while it runs coalesce into one more. After
/// this server's own event commits it recomputes only the services they touched
/// (`Engine::refresh_incremental`), else every stale derived table.
pub(crate) async fn refresh_derived(state: AppState) {
    loop {
        state.refresh_wanted().await;
        let started = std::time::Instant::now();
        match refresh_once(&state).await {
            Ok(done) => {
                if !done.is_empty() {
                    tracing::info!(
                        tables = done.len(),
                        incremental = done.iter().all(|r| r.incremental),
                        seconds = started.elapsed().as_secs_f64(),
                        "refreshed the derived tables"
                    );
                }
                state.metrics().refreshed(true);
            }
            Err(e) => {
                state.metrics().refreshed(false);
                tracing::warn!(error = %e, "refreshing the derived tables failed; queries compute the views");
            }
        }
        state.lake_changed();
    }
}

async fn refresh_once(state: &AppState) -> Result<Vec<query::Refreshed>, query::QueryError> {
    let opening = std::time::Instant::now();
    let engine = query::Engine::open(state.lake(), state.config()).await?;
    tracing::debug!(
        seconds = opening.elapsed().as_secs_f64(),
        "refresh: engine opened"
    );
    let (count, change) = state.unrefreshed_up_to(&engine);
    let done = crate::pipeline::refresh_opened(&engine, change.as_ref()).await;
    // Incremental: the `count` commits it covered are refreshed; in full: every commit the
    // engine saw (on an error too: the next refresh is a full one).
    let incremental = done
        .as_ref()
        .is_ok_and(|d| !d.is_empty() && d.iter().all(|r| r.incremental));
    state.refreshed(incremental.then_some(count), &engine);
    done
}
