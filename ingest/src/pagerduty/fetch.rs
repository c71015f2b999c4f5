//! Reading a run's incidents and acknowledgements from PagerDuty: creation-time windows, offset
//! pagination within each, windows split where PagerDuty's offset cap would be hit, and the
//! incidents still open at the previous run read again.
//!
//! Documented limits this follows (PagerDuty/api-schema `reference/REST/openapiv3.json`):
//! - `GET /incidents` `since`/`until`: "Maximum range is 6 months and default is 1 month", so
//!   every request names its window (at most `window_days`);
//! - `limit`: "The number of results per page. Maximum of 100.";
//! - `total`: "By default the `total` field in pagination responses is set to `null` … Set `total`
//!   to `true` for this field to be populated": asked on each window's first page, so a window
//!   holding more than 10,000 results is split before paging. PagerDuty refuses
//!   `offset + limit > 10000` with a 400 ("Offset+limit exceeds maximum allowed value of 10000",
//!   error code 2002, as seen in PagerDuty/pd-live-react#163 and cloudquery#12750); that answer
//!   splits the window too;
//! - `date_range=all`: "the since and until parameters and defaults are ignored": how the
//!   incidents open now are listed;
//! - `GET /log_entries` with `is_overview=true` ("only the most important changes to the
//!   incident"): where a resolved incident's acknowledgement is found, since its
//!   `acknowledgements` list is then empty.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;

use super::api::{
    ACKNOWLEDGE_LOG_ENTRY, Incident, IncidentAnswer, IncidentsPage, LogEntriesPage, LogEntry,
    Pagination,
};
use super::client::Client;
use super::{FetchProgress, PagerDutyError};
use crate::http::HttpError;

/// Results per page: PagerDuty's maximum.
pub const PAGE_LIMIT: u64 = 100;
/// PagerDuty's cap on `offset + limit`.
pub const MAX_OFFSET: u64 = 10_000;
/// The narrowest window split further: more than 10,000 incidents created within it is refused.
const NARROWEST: Duration = Duration::minutes(1);

/// A range of creation (or log entry) times: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start.
    pub since: DateTime<Utc>,
    /// End.
    pub until: DateTime<Utc>,
}

impl Window {
    /// `[since, until)` cut into windows of at most `days` days.
    pub fn split(since: DateTime<Utc>, until: DateTime<Utc>, days: u32) -> Vec<Window> {
        let step = Duration::days(i64::from(days.max(1)));
        let mut out = Vec::new();
        let mut start = since;
        while start < until {
            let end = (start + step).min(until);
            out.push(Window {
                since: start,
                until: end,
            });
            start = end;
        }
        out
    }

    /// Its two halves, unless it is too narrow to split.
    fn halves(self) -> Option<(Window, Window)> {
        let span = self.until - self.since;
        if span < NARROWEST * 2 {
            return None;
        }
        let middle = self.since + span / 2;
        Some((
            Window {
                since: self.since,
                until: middle,
            },
            Window {
                since: middle,
                until: self.until,
            },
        ))
    }

    fn query(&self) -> [(&'static str, String); 2] {
        [
            ("since", rfc3339(self.since)),
            ("until", rfc3339(self.until)),
        ]
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Incidents created in these windows.
    pub windows: Vec<Window>,
    /// Log entries (acknowledgements) from the first window's start to this time: later than the
    /// windows, since an incident is acknowledged after it was created.
    pub log_until: DateTime<Utc>,
    /// `urgencies[]`, asked of PagerDuty (empty: all).
    pub urgencies: Vec<&'static str>,
    /// Incidents open at the previous run, read again unless listed.
    pub previously_open: BTreeSet<String>,
}

/// What was read.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// Every incident read, by id (a later read of the same incident replaces an earlier one).
    pub incidents: BTreeMap<String, Incident>,
    /// Of which listed in the creation-time windows (the rest were open before).
    pub listed: BTreeSet<String>,
    /// The first acknowledgement each incident's log entries show.
    pub acknowledged: BTreeMap<String, DateTime<Utc>>,
    /// Log entries read.
    pub log_entries: u64,
    /// Incidents open at the previous run that PagerDuty no longer has (404).
    pub gone: Vec<String>,
    /// Windows read, after splits.
    pub windows: usize,
}

/// A collection page.
trait Page: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Pagination);
}

impl Page for IncidentsPage {
    type Item = Incident;
    fn into_parts(self) -> (Vec<Incident>, Pagination) {
        (self.incidents, self.pagination)
    }
}

impl Page for LogEntriesPage {
    type Item = LogEntry;
    fn into_parts(self) -> (Vec<LogEntry>, Pagination) {
        (self.log_entries, self.pagination)
    }
}

/// Reads `plan`: the incidents of its windows, the log entries from its start to `log_until`, and
/// the previously open incidents; `progress` hears after every page.
pub async fn read(
    client: &mut Client,
    plan: &Plan,
    window_days: u32,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<Read, PagerDutyError> {
    let mut read = Read::default();
    // Acknowledgements: from the first window's start to `log_until`, in windows of the same size.
    let log_windows = match plan.windows.first() {
        Some(first) => Window::split(first.since, plan.log_until, window_days),
        None => Vec::new(),
    };
    let mut report = FetchProgress {
        windows_total: plan.windows.len() + log_windows.len(),
        ..FetchProgress::default()
    };
    let urgencies: Vec<(&str, String)> = plan
        .urgencies
        .iter()
        .map(|u| ("urgencies[]", (*u).to_owned()))
        .collect();
    for window in &plan.windows {
        let incidents: Vec<Incident> = list_split::<IncidentsPage>(
            client,
            "/incidents",
            &urgencies,
            *window,
            &mut read.windows,
            &mut |n, client| {
                report.incidents += n;
                report.stats = client.stats();
                progress(&report);
            },
        )
        .await?;
        for incident in incidents {
            read.listed.insert(incident.id.clone());
            read.incidents.insert(incident.id.clone(), incident);
        }
        report.windows_done += 1;
        progress(&report);
    }
    let overview = [("is_overview", "true".to_owned())];
    for window in &log_windows {
        let entries: Vec<LogEntry> = list_split::<LogEntriesPage>(
            client,
            "/log_entries",
            &overview,
            *window,
            &mut read.windows,
            &mut |n, client| {
                report.log_entries += n;
                report.stats = client.stats();
                progress(&report);
            },
        )
        .await?;
        read.log_entries += entries.len() as u64;
        note_acknowledgements(&entries, &mut read.acknowledged);
        report.windows_done += 1;
        progress(&report);
    }
    refresh_open(client, plan, &urgencies, &mut read).await?;
    report.stats = client.stats();
    progress(&report);
    Ok(read)
}

/// Keeps each incident's earliest `acknowledge_log_entry`.
fn note_acknowledgements(entries: &[LogEntry], first: &mut BTreeMap<String, DateTime<Utc>>) {
    for entry in entries {
        if entry.kind != ACKNOWLEDGE_LOG_ENTRY {
            continue;
        }
        let Some(incident) = &entry.incident else {
            continue;
        };
        first
            .entry(incident.id.clone())
            .and_modify(|at| *at = (*at).min(entry.created_at))
            .or_insert(entry.created_at);
    }
}

/// The incidents open at the previous run and not listed now: those open now in one listing
/// (`date_range=all`, `statuses[]` triggered and acknowledged), the rest (resolved since, or
/// gone) one by one.
async fn refresh_open(
    client: &mut Client,
    plan: &Plan,
    urgencies: &[(&str, String)],
    read: &mut Read,
) -> Result<(), PagerDutyError> {
    let missing: Vec<&String> = plan
        .previously_open
        .iter()
        .filter(|id| !read.listed.contains(*id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut query: Vec<(&str, String)> = vec![
        ("date_range", "all".to_owned()),
        ("statuses[]", "triggered".to_owned()),
        ("statuses[]", "acknowledged".to_owned()),
    ];
    query.extend(urgencies.iter().cloned());
    let open_now =
        match list_pages::<IncidentsPage>(client, "/incidents", &query, None, &mut |_, _| {})
            .await?
        {
            Listing::Done(incidents) => incidents,
            // More than 10,000 open incidents: one by one below.
            Listing::TooMany => Vec::new(),
        };
    let mut found: BTreeSet<String> = BTreeSet::new();
    for incident in open_now {
        if plan.previously_open.contains(&incident.id) && !read.listed.contains(&incident.id) {
            found.insert(incident.id.clone());
            read.incidents.insert(incident.id.clone(), incident);
        }
    }
    for id in missing {
        if found.contains(id) {
            continue;
        }
        let path = format!("/incidents/{id}");
        match client
            .get::<IncidentAnswer>(&path, &[("time_zone", "UTC".to_owned())])
            .await
        {
            Ok(answer) => {
                read.incidents.insert(id.clone(), answer.incident);
            }
            Err(HttpError::Status { status: 404, .. }) => read.gone.push(id.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The outcome of paging one window.
enum Listing<T> {
    Done(Vec<T>),
    /// More results than PagerDuty pages through (offset cap): split the window.
    TooMany,
}

/// Every item of `window` (split in halves as often as PagerDuty's offset cap requires);
/// `windows` counts the windows read.
async fn list_split<P: Page>(
    client: &mut Client,
    path: &str,
    query: &[(&str, String)],
    window: Window,
    windows: &mut usize,
    on_page: &mut dyn FnMut(u64, &Client),
) -> Result<Vec<P::Item>, PagerDutyError> {
    let mut pending = vec![window];
    let mut out = Vec::new();
    while let Some(window) = pending.pop() {
        match list_pages::<P>(client, path, query, Some(window), on_page).await? {
            Listing::Done(items) => {
                *windows += 1;
                out.extend(items);
            }
            Listing::TooMany => {
                let (first, second) = window.halves().ok_or_else(|| PagerDutyError::TooDense {
                    path: path.to_owned(),
                    since: rfc3339(window.since),
                    until: rfc3339(window.until),
                })?;
                tracing::info!(path, since = %window.since, until = %window.until, "more than 10,000 results: splitting the window");
                pending.push(second);
                pending.push(first);
            }
        }
    }
    Ok(out)
}

/// Pages through one query (`window` as since/until when given), 100 at a time.
async fn list_pages<P: Page>(
    client: &mut Client,
    path: &str,
    query: &[(&str, String)],
    window: Option<Window>,
    on_page: &mut dyn FnMut(u64, &Client),
) -> Result<Listing<P::Item>, PagerDutyError> {
    let mut items = Vec::new();
    let mut offset = 0_u64;
    loop {
        let mut q: Vec<(&str, String)> = query.to_vec();
        if let Some(window) = &window {
            q.extend(window.query());
        }
        q.push(("time_zone", "UTC".to_owned()));
        q.push(("limit", PAGE_LIMIT.to_string()));
        q.push(("offset", offset.to_string()));
        if offset == 0 {
            q.push(("total", "true".to_owned()));
        }
        let page: P = match client.get(path, &q).await {
            Ok(page) => page,
            Err(HttpError::Status {
                status: 400, body, ..
            }) if String::from_utf8_lossy(&body)
                .to_ascii_lowercase()
                .contains("offset") =>
            {
                return Ok(Listing::TooMany);
            }
            Err(e) => return Err(e.into()),
        };
        let (batch, pagination) = page.into_parts();
        if offset == 0 && pagination.total.is_some_and(|total| total > MAX_OFFSET) {
            return Ok(Listing::TooMany);
        }
        let n = batch.len() as u64;
        items.extend(batch);
        on_page(n, client);
        if !pagination.more || n == 0 {
            return Ok(Listing::Done(items));
        }
        offset += n;
        if offset + PAGE_LIMIT > MAX_OFFSET {
            return Ok(Listing::TooMany);
        }
    }
}
