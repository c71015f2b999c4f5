//! `POST /webhooks/github`: GitHub webhook deliveries, signature checked, each delivery written
//! once, through the same mapping as `doracost ingest github` (`ingest::github::webhook`).
//!
//! - Without `[sources.github] webhook_secret` the route answers 404: deliveries are accepted
//!   only when they can be authenticated.
//! - `X-Hub-Signature-256` must be `sha256=` and the HMAC-SHA256 of the body under the secret,
//!   compared in constant time (`Mac::verify_slice`); unsigned or wrongly signed → 401, nothing
//!   read.
//! - `X-GitHub-Delivery` is recorded in `ingest_state` (source `github-webhook`, scope
//!   `delivery:<id>`) in the same lake unit as the rows, under the lake's lock after checking it
//!   is not there yet: a redelivery is answered 200 `duplicate` and writes nothing.
//! - What a delivery's rows depend on is read under the same lock: whether a deployment an
//!   `inactive` reports succeeded before, and which `#n` a merged PR names are incidents.
//! - The 2xx comes after the commit: an acknowledged delivery is in the lake. After a commit
//!   that wrote rows the refresher recomputes what their keys touch, as after posted events.
//! - Deliveries that arrive while a commit runs make up the next one (one lake unit, their rows
//!   gathered in the order they arrived: [`ingest::github::webhook::Gathered`]): every commit
//!   adds files to the tables it writes, and each write reads what the earlier ones left, so a
//!   commit per delivery grows dearer with every delivery; GitHub sends bursts (a push, its
//!   checks and runs, a deployment's statuses) at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use arrow::array::Array;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use hmac::{KeyInit, Mac};
use model::{Table, TableWrite};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::error::ServerError;
use crate::state::AppState;

/// The `source` of the deliveries' bookkeeping rows.
pub const DELIVERIES: &str = "github-webhook";

/// The most deliveries one commit takes.
const MAX_DELIVERIES_PER_COMMIT: usize = 500;
/// A commit waits for more deliveries while they keep coming, `LINGER` at a time, at most
/// `LINGER_ROUNDS` times.
const LINGER: std::time::Duration = std::time::Duration::from_millis(3);
const LINGER_ROUNDS: usize = 10;

/// `POST /webhooks/github`.
pub const GITHUB_WEBHOOK: crate::RouteSpec = crate::RouteSpec {
    method: "POST",
    path: "/webhooks/github",
    summary: "GitHub webhook deliveries (deployment_status, workflow_run, release, pull_request, push, issues), X-Hub-Signature-256 checked (401 otherwise), X-GitHub-Delivery written once (a redelivery is 200 duplicate); 200 once committed; 404 without [sources.github] webhook_secret.",
    params: &[],
    needs_token: false,
    answers: "application/json",
};

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `signature` (`sha256=<hex>`) is the body's HMAC-SHA256 under `secret`, in constant
/// time.
pub fn signature_matches(secret: &[u8], body: &[u8], signature: Option<&str>) -> bool {
    let Some(expected) = signature
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(hex_decode)
    else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// `POST /webhooks/github`.
pub async fn post_github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ServerError> {
    let config = state.config();
    let Some((source, secret)) = config
        .sources
        .github
        .as_ref()
        .and_then(|s| s.webhook_secret.as_ref().map(|secret| (s, secret)))
    else {
        return Err(ServerError::NotFound(
            "GitHub webhooks are off: set [sources.github] webhook_secret".into(),
        ));
    };
    let secret = secret
        .resolve()
        .map_err(|_| ServerError::Unavailable("the GitHub webhook secret cannot be read".into()))?;
    let body = body.map_err(|rejection| ServerError::BadPayload {
        message: rejection.body_text(),
        field: None,
    })?;
    if !signature_matches(
        secret.trim().as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        return Err(ServerError::Unauthorized(
            "X-Hub-Signature-256 is missing or is not the body's HMAC-SHA256 under [sources.github] webhook_secret",
        ));
    }
    let bad = |message: &str| ServerError::BadPayload {
        message: message.to_owned(),
        field: None,
    };
    let event =
        header(&headers, "x-github-event").ok_or_else(|| bad("X-GitHub-Event is missing"))?;
    let delivery = header(&headers, "x-github-delivery")
        .filter(|d| !d.is_empty() && d.len() <= 200)
        .ok_or_else(|| bad("X-GitHub-Delivery is missing"))?
        .to_owned();
    let mapped = ingest::github::webhook::map_delivery(event, &body, source, &config.services)
        .map_err(|message| ServerError::BadPayload {
            message,
            field: None,
        })?;
    let summary = mapped.summary.clone();
    let repository = mapped.repo.clone();
    let (answer, answered) = oneshot::channel();
    let written = commit_in_turn(
        &state,
        Waiting {
            delivery: delivery.clone(),
            event: event.to_owned(),
            mapped,
            answer,
        },
        answered,
    )
    .await?;
    Ok(Json(json!({
        "delivery": delivery,
        "event": summary,
        "repository": repository,
        "duplicate": written.duplicate,
        "rows": written.rows,
        "commit": { "deliveries": written.deliveries },
    })))
}

/// A checked delivery waiting for its commit.
struct Waiting {
    delivery: String,
    event: String,
    mapped: ingest::github::webhook::Mapped,
    answer: oneshot::Sender<Result<Written, String>>,
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// It had been written before (by its `X-GitHub-Delivery`): nothing was written now.
    duplicate: bool,
    /// Rows it added.
    rows: usize,
    /// Deliveries in its commit (this one included).
    deliveries: usize,
}

/// The deliveries waiting for a lake, and the turn to commit them.
#[derive(Default)]
struct Queue {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// One queue per lake (by its root).
static QUEUES: LazyLock<std::sync::Mutex<HashMap<String, Arc<Queue>>>> =
    LazyLock::new(Default::default);

fn queue_of(state: &AppState) -> Arc<Queue> {
    let mut queues = QUEUES.lock().unwrap_or_else(|p| p.into_inner());
    queues
        .entry(state.lake().root().to_string())
        .or_default()
        .clone()
}

/// Queues `waiting` and commits, in turn, whatever is waiting then (this delivery and those that
/// came meanwhile); the commit runs in a task of its own, so a client that hangs up does not
/// stop it halfway for the others.
async fn commit_in_turn(
    state: &AppState,
    waiting: Waiting,
    mut answered: oneshot::Receiver<Result<Written, String>>,
) -> Result<Written, ServerError> {
    let queue = queue_of(state);
    queue
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(waiting);
    let answer = loop {
        let turn = queue.writer.clone().lock_owned().await;
        // Committed by an earlier turn while this one waited: the turn goes to the next.
        if let Ok(answer) = answered.try_recv() {
            break Ok(answer);
        }
        // Deliveries sent together arrive a few milliseconds apart: they share the commit.
        let waiting = || {
            queue
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len()
        };
        let mut before = waiting();
        for _ in 0..LINGER_ROUNDS {
            tokio::time::sleep(LINGER).await;
            let now = waiting();
            if now == before || now >= MAX_DELIVERIES_PER_COMMIT {
                break;
            }
            before = now;
        }
        let batch: Vec<Waiting> = {
            let mut waiting = queue.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let n = waiting.len().min(MAX_DELIVERIES_PER_COMMIT);
            waiting.drain(..n).collect()
        };
        if batch.is_empty() {
            // Another turn took it, and has answered.
            drop(turn);
            break answered.await;
        }
        let state = state.clone();
        let _ = tokio::spawn(async move {
            commit(&state, batch).await;
            drop(turn);
        })
        .await;
        if let Ok(answer) = answered.try_recv() {
            break Ok(answer);
        }
    };
    answer
        .map_err(|_| ServerError::Unavailable("the delivery's commit stopped".into()))?
        .map_err(|e| ServerError::Unavailable(format!("the delivery was not written: {e}")))
}

/// Commits `batch` as one lake unit and answers each delivery.
async fn commit(state: &AppState, batch: Vec<Waiting>) {
    let count = batch.len();
    let (mut answers, mut items) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for w in batch {
        answers.push(w.answer);
        items.push((w.delivery, w.event, w.mapped));
    }
    let lake = state.lake();
    let started = std::time::Instant::now();
    let result = lake
        .transact("webhook github", |lake_state| async move {
            let scopes: Vec<String> = items
                .iter()
                .map(|(delivery, _, _)| format!("delivery:{delivery}"))
                .collect();
            let mut seen: HashSet<String> = HashSet::new();
            for b in lake
                .read_table_where(
                    &lake_state,
                    Table::IngestState,
                    &["source", "scope"],
                    "scope",
                    &scopes,
                )
                .await?
            {
                let (sources, found) = (
                    ingest::git::utf8_column(&b, "source")?,
                    ingest::git::utf8_column(&b, "scope")?,
                );
                for i in 0..b.num_rows() {
                    if !sources.is_null(i) && sources.value(i) == DELIVERIES {
                        seen.insert(found.value(i).to_owned());
                    }
                }
            }
            let mut held = ingest::github::webhook::Held::default();
            let wanted = |ids: Vec<String>| {
                let mut ids = ids;
                ids.sort();
                ids.dedup();
                ids
            };
            let ids = wanted(
                items
                    .iter()
                    .filter_map(|(_, _, m)| m.keeps_success().map(str::to_owned))
                    .collect(),
            );
            if !ids.is_empty() {
                for b in lake
                    .read_table_where(
                        &lake_state,
                        Table::Deployments,
                        &["deployment_id", "status"],
                        "deployment_id",
                        &ids,
                    )
                    .await?
                {
                    let (id, status) = (
                        ingest::git::utf8_column(&b, "deployment_id")?,
                        ingest::git::utf8_column(&b, "status")?,
                    );
                    for i in 0..b.num_rows() {
                        if !status.is_null(i) && status.value(i) == "success" {
                            held.successes.insert(id.value(i).to_owned());
                        }
                    }
                }
            }
            let ids = wanted(
                items
                    .iter()
                    .flat_map(|(_, _, m)| m.incidents_named())
                    .collect(),
            );
            if !ids.is_empty() {
                for b in lake
                    .read_table_where(
                        &lake_state,
                        Table::Incidents,
                        &["incident_id"],
                        "incident_id",
                        &ids,
                    )
                    .await?
                {
                    let id = ingest::git::utf8_column(&b, "incident_id")?;
                    held.incidents
                        .extend((0..b.num_rows()).map(|i| id.value(i).to_owned()));
                }
            }
            let mut gathered = ingest::github::webhook::Gathered::default();
            let mut written = Vec::with_capacity(items.len());
            let mut records = Vec::new();
            for ((_, event, mapped), scope) in items.into_iter().zip(scopes) {
                if !seen.insert(scope.clone()) {
                    written.push(None);
                    continue;
                }
                written.push(Some(gathered.add(mapped, &held)));
                records.push((scope, event));
            }
            let now = chrono::Utc::now();
            let batches = gathered
                .finish(now.timestamp_micros())
                .map_err(|message| model::LakeError::Input { message })?;
            let touched = batches.touched();
            let mut writes = Vec::new();
            let mut rows = 0;
            for (table, batch) in [
                (Table::Deployments, batches.deployments),
                (Table::Changes, batches.changes),
                (Table::DeploymentChanges, batches.deployment_changes),
                (Table::Incidents, batches.incidents),
            ] {
                if batch.num_rows() > 0 {
                    rows += batch.num_rows();
                    writes.push(TableWrite::Upsert {
                        table,
                        batches: vec![batch],
                    });
                }
            }
            if !records.is_empty() {
                writes.push(ingest::state::upsert(
                    DELIVERIES,
                    records
                        .iter()
                        .map(|(scope, event)| (scope.as_str(), Some(event.as_str()), None)),
                    now,
                )?);
            }
            Ok(((written, rows, touched), writes))
        })
        .await;
    let answer = |i: usize| match &result {
        Ok(((written, _, _), _)) => Ok(Written {
            duplicate: written.get(i).copied().flatten().is_none(),
            rows: written.get(i).copied().flatten().unwrap_or(0),
            deliveries: count,
        }),
        Err(e) => Err(e.to_string()),
    };
    match &result {
        Ok(((_, rows, touched), outcomes)) => {
            tracing::info!(
                deliveries = count,
                rows,
                seconds = started.elapsed().as_secs_f64(),
                "committed GitHub webhook deliveries"
            );
            if *rows > 0 {
                // As the event writer does: the refresh recomputes only what these keys touch.
                state.committed(query::EventChange::of(touched.clone(), outcomes));
                state.request_refresh();
                state.lake_changed();
            }
        }
        Err(e) => {
            tracing::warn!(deliveries = count, error = %e, "GitHub webhook deliveries not committed");
        }
    }
    for (i, sender) in answers.into_iter().enumerate() {
        // A client that went away still had its delivery committed; nobody to tell.
        let _ = sender.send(answer(i));
    }
}
