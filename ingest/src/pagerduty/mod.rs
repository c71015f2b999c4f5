//! PagerDuty: incidents from the REST API v2 into canonical `incidents` rows (DESIGN §3; issue 17
//! parts 4–7), incrementally.
//!
//! A run lists the incidents created in its range (`since`..`until`, in windows of at most
//! `window_days`, 100 per page; see [`fetch`]), finds each one's first acknowledgement (the
//! incident's `acknowledgements` while it is acknowledged, the `acknowledge_log_entry`s of
//! `GET /log_entries` once it is resolved), reads again the incidents still open at the previous
//! run so that their resolution lands, and maps each to a row ([`rows::Mapping`]):
//! `pagerduty:incident:<id>`, our service (`[sources.pagerduty] services`, else the service of the
//! same name, else skipped and counted), title, severity (the priority's name, else the urgency),
//! `started_at` = `created_at`, `acknowledged_at`, `resolved_at`, `url` = `html_url`. Pages left
//! out by the urgency and priority filters are counted, never written.
//!
//! Incremental: the cursor (the latest `created_at` read, and the incidents open at the end) is
//! kept in `ingest_state` (source `pagerduty`, scope the API's host). The next run starts at the
//! cursor less `overlap_minutes`. Rows the lake already holds as they are are not written again,
//! and a run that changes no row and no cursor writes nothing at all.
//!
//! One run is one unit of the lake: the rows and the cursor are written together at the end, so a
//! run killed or failed midway leaves the lake as it was, and the next one reads again from the
//! previous cursor (re-reading is harmless: rows are keyed). Not here: the HTTP retry policy
//! ([`crate::http`]), the CLI's bar.

pub mod api;
pub mod client;
#[cfg(test)]
pub mod fake_api;
pub mod fetch;
pub mod rows;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use model::config::PagerDutySource;
use model::{Lake, LakeError, Table, TableWrite, WriteOutcome};

use crate::http::{HttpError, RequestStats, RetryPolicy};
pub use client::{Client, Request, Sender, reqwest_sender};
pub use fetch::Window;
use rows::{Cursor, Mapped, Mapping};

/// The `source` of every row this module writes.
pub const SOURCE: &str = "pagerduty";

/// How a run reads PagerDuty (from `[sources.pagerduty]` and `[[services]]`).
#[derive(Debug, Clone)]
pub struct PagerDutyOptions {
    /// The API's base URL.
    pub api_url: String,
    /// The REST API key.
    pub token: String,
    /// Services and filters.
    pub mapping: Mapping,
    /// The first run's start.
    pub since: Option<DateTime<Utc>>,
    /// Window length, days.
    pub window_days: u32,
    /// How far before the cursor a run starts again.
    pub overlap: chrono::Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// One request's longest time.
    pub request_timeout: Duration,
}

impl PagerDutyOptions {
    /// The options `source` states, with the API key `token` (resolved by the caller) and our
    /// services' names.
    pub fn from_config(
        source: &PagerDutySource,
        token: String,
        our_services: impl IntoIterator<Item = String>,
    ) -> PagerDutyOptions {
        PagerDutyOptions {
            api_url: source.api_url.trim().trim_end_matches('/').to_owned(),
            token,
            mapping: Mapping {
                services: source.services.clone(),
                ours: our_services.into_iter().collect(),
                urgencies: source.urgencies.clone(),
                priorities: source.priorities.clone(),
            },
            since: source
                .since_date()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc()),
            window_days: source.window_days,
            overlap: chrono::Duration::minutes(i64::from(source.overlap_minutes)),
            retry: RetryPolicy {
                max_attempts: source.max_attempts,
                initial_backoff: Duration::from_millis(source.initial_backoff_ms),
                ..RetryPolicy::default()
            },
            request_timeout: Duration::from_secs_f64(source.request_timeout_seconds),
        }
    }

    /// The `ingest_state` scope of this account: the API's host (and port), e.g.
    /// `api.pagerduty.com`.
    pub fn scope(&self) -> String {
        let rest = self
            .api_url
            .split_once("://")
            .map_or(self.api_url.as_str(), |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest).to_owned()
    }
}

/// Where the CLI's bar stands.
#[derive(Debug, Clone, Default)]
pub struct FetchProgress {
    /// Windows (incidents, then log entries) read.
    pub windows_done: usize,
    /// Windows to read (before any split).
    pub windows_total: usize,
    /// Incidents listed so far.
    pub incidents: u64,
    /// Log entries listed so far.
    pub log_entries: u64,
    /// The requests so far.
    pub stats: RequestStats,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct PagerDutySummary {
    /// Incidents created in this range were listed.
    pub window: Window,
    /// Windows read (after splits), incidents and log entries together.
    pub windows: usize,
    /// Incidents read (listed, and open ones read again).
    pub incidents_read: usize,
    /// Log entries read.
    pub log_entries: u64,
    /// Incidents mapped to rows.
    pub incidents_kept: usize,
    /// Incidents left out by the urgency or priority filter.
    pub filtered_out: usize,
    /// Incidents of PagerDuty services mapped to none of ours, by `name (id)`.
    pub unmapped: BTreeMap<String, usize>,
    /// Incidents open at the previous run that were read again.
    pub reopened_reads: usize,
    /// Incidents still open.
    pub open: usize,
    /// Rows new or changed, written (0 when the lake already held them all).
    pub rows_written: usize,
    /// What each table received (empty when nothing was written).
    pub outcomes: Vec<WriteOutcome>,
    /// The requests.
    pub requests: RequestStats,
    /// The cursor after the run.
    pub cursor: Cursor,
}

/// A PagerDuty ingest failure; in every case the lake is as it was.
#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    /// The run's range is empty or the options cannot work.
    #[error("{0}")]
    Options(String),
    /// PagerDuty refused the API key.
    #[error(
        "{route}: PagerDuty refused the API key (HTTP {status}): check [sources.pagerduty] token \
         (default: the PAGERDUTY_TOKEN environment variable) and that the key can read incidents"
    )]
    Refused {
        /// The request.
        route: String,
        /// 401 or 403.
        status: u16,
    },
    /// A request failed for good (after retries where they could help).
    #[error(transparent)]
    Http(Box<HttpError>),
    /// More than 10,000 results within a minute: windows cannot be split further.
    #[error(
        "GET {path}: more than 10,000 results created between {since} and {until}, and PagerDuty \
         pages through at most 10,000 per query; narrow the read with [sources.pagerduty] urgencies"
    )]
    TooDense {
        /// The route.
        path: String,
        /// The window's start.
        since: String,
        /// The window's end.
        until: String,
    },
    /// What the lake holds could not be read, or the write failed (rolled back).
    #[error(transparent)]
    Lake(Box<LakeError>),
    /// The lake holds something this version cannot read.
    #[error("{0}")]
    State(String),
    /// Building Arrow rows failed.
    #[error("PagerDuty rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl From<HttpError> for PagerDutyError {
    /// A 401/403 answer as [`PagerDutyError::Refused`], anything else as it is.
    fn from(error: HttpError) -> PagerDutyError {
        match error {
            HttpError::Status {
                route,
                status: status @ (401 | 403),
                ..
            } => PagerDutyError::Refused { route, status },
            other => PagerDutyError::Http(Box::new(other)),
        }
    }
}

impl From<LakeError> for PagerDutyError {
    fn from(error: LakeError) -> PagerDutyError {
        PagerDutyError::Lake(Box::new(error))
    }
}

/// The run's range: `--since`/`--until` when given, else from the cursor (less the overlap), the
/// configured start, or 90 days before `now`, to `now`.
pub fn run_window(
    options: &PagerDutyOptions,
    cursor: &Cursor,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Window, PagerDutyError> {
    let since = since
        .or_else(|| cursor.created_through.map(|t| t - options.overlap))
        .or(options.since)
        .unwrap_or(now - chrono::Duration::days(90));
    let until = until.unwrap_or(now);
    if since >= until {
        return Err(PagerDutyError::Options(format!(
            "nothing to read: the start {} is not before the end {}",
            since.to_rfc3339(),
            until.to_rfc3339()
        )));
    }
    Ok(Window { since, until })
}

/// `doracost ingest pagerduty`: reads the run's incidents through `send` and writes what changed,
/// with the cursor, in one unit (see the module). `since`/`until` override the cursor's range;
/// `progress` hears after every page.
pub async fn ingest_pagerduty(
    lake: &Lake,
    options: &PagerDutyOptions,
    send: Sender,
    (since, until): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<PagerDutySummary, PagerDutyError> {
    let client = Client::new(
        &options.api_url,
        options.token.clone(),
        send,
        options.retry.clone(),
    );
    ingest_with_client(lake, options, client, (since, until), now, progress).await
}

/// [`ingest_pagerduty`] with a client built elsewhere (tests: scripted answers, recorded sleeps).
pub async fn ingest_with_client(
    lake: &Lake,
    options: &PagerDutyOptions,
    mut client: Client,
    (since, until): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<PagerDutySummary, PagerDutyError> {
    let scope = options.scope();
    let (existing, before) = lake_view(lake, &scope).await?;
    let window = run_window(options, &before, since, until, now)?;
    let plan = fetch::Plan {
        windows: Window::split(window.since, window.until, options.window_days),
        log_until: now.max(window.until),
        urgencies: options
            .mapping
            .urgencies
            .iter()
            .map(|u| u.api_name())
            .collect(),
        previously_open: before.open.keys().cloned().collect(),
    };
    let read = fetch::read(&mut client, &plan, options.window_days, progress).await?;

    let mut cursor = Cursor {
        created_through: read
            .listed
            .iter()
            .filter_map(|id| read.incidents.get(id).map(|i| i.created_at))
            .chain(before.created_through)
            .max(),
        open: BTreeMap::new(),
    };
    let (mut rows, mut filtered_out, mut unmapped) = (Vec::new(), 0, BTreeMap::new());
    for (id, incident) in &read.incidents {
        let acknowledged = read
            .acknowledged
            .get(id)
            .copied()
            .or_else(|| before.open.get(id).copied().flatten());
        if !incident.is_resolved() {
            cursor.open.insert(
                id.clone(),
                [acknowledged, incident.first_acknowledgement()]
                    .into_iter()
                    .flatten()
                    .min(),
            );
        }
        match options.mapping.map(incident, acknowledged) {
            Mapped::Row(row) => rows.push(row),
            Mapped::Filtered => filtered_out += 1,
            Mapped::Unmapped(service_id, name) => {
                let label = match name {
                    Some(name) => format!("{name} ({service_id})"),
                    None => service_id,
                };
                *unmapped.entry(label).or_insert(0) += 1;
            }
        }
    }
    let incidents_kept = rows.len();
    let changed = rows::changed_rows(rows, &existing);
    let outcomes = if changed.is_empty() && cursor == before {
        Vec::new()
    } else {
        let writes = vec![
            TableWrite::Upsert {
                table: Table::Incidents,
                batches: vec![rows::incidents_batch(&changed, now.timestamp_micros())?],
            },
            TableWrite::Upsert {
                table: Table::IngestState,
                batches: vec![rows::state_batch(&scope, &cursor, now)?],
            },
        ];
        lake.apply("ingest pagerduty", writes).await?
    };
    let rows_written = outcomes
        .iter()
        .filter(|o| o.table == Table::Incidents.name())
        .map(|o| o.inserted + o.updated)
        .sum();
    let reopened_reads = read.incidents.len() - read.listed.len();
    Ok(PagerDutySummary {
        window,
        windows: read.windows,
        incidents_read: read.incidents.len(),
        log_entries: read.log_entries,
        incidents_kept,
        filtered_out,
        unmapped,
        reopened_reads,
        open: cursor.open.len(),
        rows_written,
        outcomes,
        requests: client.stats(),
        cursor,
    })
}

/// The PagerDuty rows and this scope's cursor, as the lake's readers see them (none in a new
/// lake).
async fn lake_view(
    lake: &Lake,
    scope: &str,
) -> Result<(std::collections::HashMap<String, rows::IncidentRow>, Cursor), PagerDutyError> {
    let state = match lake.state().await {
        Ok(state) => state,
        Err(LakeError::NoLake { .. }) => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    let ours = [SOURCE.to_owned()];
    let incidents = lake
        .read_table_where(&state, Table::Incidents, &[], "source", &ours)
        .await?;
    let existing = rows::existing_rows(&incidents).map_err(PagerDutyError::State)?;
    let states = lake
        .read_table_where(&state, Table::IngestState, &[], "source", &ours)
        .await?;
    let cursor = rows::saved_cursor(&states, scope)
        .map_err(PagerDutyError::State)?
        .unwrap_or_default();
    Ok((existing, cursor))
}
