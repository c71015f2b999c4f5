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
//! - The 2xx comes after the commit: an acknowledged delivery is in the lake.

use arrow::array::Array;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use hmac::{KeyInit, Mac};
use model::{Table, TableWrite};
use serde_json::{Value, json};

use crate::error::ServerError;
use crate::state::AppState;

/// The `source` of the deliveries' bookkeeping rows.
pub const DELIVERIES: &str = "github-webhook";

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
    if text.len() % 2 != 0 {
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
    let now = chrono::Utc::now();
    let mapped = ingest::github::webhook::map_delivery(
        event,
        &body,
        source,
        &config.services,
        now.timestamp_micros(),
    )
    .map_err(|message| ServerError::BadPayload {
        message,
        field: None,
    })?;
    let scope = format!("delivery:{delivery}");
    let lake = state.lake();
    let summary = mapped.summary.clone();
    let ((duplicate, rows), _) = lake
        .transact("webhook github", |lake_state| async move {
            let seen = lake
                .read_table_where(
                    &lake_state,
                    Table::IngestState,
                    &["source"],
                    "scope",
                    &[scope.clone()],
                )
                .await?
                .iter()
                .any(|b| {
                    b.num_rows() > 0
                        && ingest::git::utf8_column(b, "source")
                            .is_ok_and(|s| (0..s.len()).any(|i| s.value(i) == DELIVERIES))
                });
            if seen {
                return Ok(((true, 0), Vec::new()));
            }
            let mut batches = mapped.batches;
            if let Some(id) = &mapped.keep_success {
                let held = lake
                    .read_table_where(
                        &lake_state,
                        Table::Deployments,
                        &["status"],
                        "deployment_id",
                        &[id.clone()],
                    )
                    .await?;
                let succeeded = held.iter().any(|b| {
                    ingest::git::utf8_column(b, "status")
                        .is_ok_and(|s| (0..s.len()).any(|i| s.value(i) == "success"))
                });
                let new_success = ingest::git::utf8_column(&batches.deployments, "status")
                    .is_ok_and(|s| (0..s.len()).all(|i| s.value(i) == "success"));
                if succeeded && !new_success {
                    batches.deployments = batches.deployments.slice(0, 0);
                    batches.deployment_changes = batches.deployment_changes.slice(0, 0);
                }
            }
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
            let record =
                ingest::state::rows(DELIVERIES, [(scope.as_str(), Some(event), None)], now)
                    .map_err(|e| model::LakeError::Input {
                        message: e.to_string(),
                    })?;
            writes.push(TableWrite::Upsert {
                table: Table::IngestState,
                batches: vec![record],
            });
            Ok(((false, rows), writes))
        })
        .await
        .map_err(|e| ServerError::Unavailable(format!("the delivery was not written: {e}")))?;
    if rows > 0 {
        state.request_refresh();
        state.lake_changed();
    }
    Ok(Json(json!({
        "delivery": delivery,
        "event": summary,
        "repository": mapped.repo,
        "duplicate": duplicate,
        "rows": rows,
    })))
}
