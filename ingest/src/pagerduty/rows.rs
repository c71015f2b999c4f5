//! From PagerDuty incidents to `incidents` rows (DESIGN §3), the run's cursor, and what the lake
//! already holds of both.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use arrow::error::ArrowError;
use chrono::{DateTime, Utc};
use model::config::pagerduty::Urgency;
use serde::{Deserialize, Serialize};

use super::SOURCE;
use super::api::Incident;

/// One `incidents` row from PagerDuty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// `pagerduty:incident:<id>`.
    pub incident_id: String,
    /// Our service.
    pub service: String,
    /// The incident's title.
    pub title: Option<String>,
    /// The priority's name (`P1` …), else the urgency (`high`, `low`).
    pub severity: Option<String>,
    /// `created_at`, µs.
    pub started_at: i64,
    /// The first acknowledgement, µs.
    pub acknowledged_at: Option<i64>,
    /// The resolution, µs; `None` while open.
    pub resolved_at: Option<i64>,
    /// `html_url`.
    pub url: Option<String>,
}

/// The key of a PagerDuty incident's row.
pub fn incident_key(id: &str) -> String {
    format!("{SOURCE}:incident:{id}")
}

/// How PagerDuty's incidents become ours (from `[sources.pagerduty]` and `[[services]]`).
#[derive(Debug, Clone)]
pub struct Mapping {
    /// PagerDuty service id → our service.
    pub services: BTreeMap<String, String>,
    /// Our services' names (an unmapped PagerDuty service of the same name is that service).
    pub ours: BTreeSet<String>,
    /// Urgencies kept (empty: all).
    pub urgencies: Vec<Urgency>,
    /// Priority names kept (empty: all, none included).
    pub priorities: Vec<String>,
}

/// What became of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A row.
    Row(IncidentRow),
    /// Left out by the urgency or priority filter.
    Filtered,
    /// Its PagerDuty service is neither mapped nor named like one of ours: (service id, name).
    Unmapped(String, Option<String>),
}

impl Mapping {
    /// Maps `incident`, acknowledged first at `acknowledged` (its log entries' first
    /// acknowledgement, or what the incident itself lists).
    pub fn map(&self, incident: &Incident, acknowledged: Option<DateTime<Utc>>) -> Mapped {
        let urgency = incident.urgency.as_deref();
        if !self.urgencies.is_empty()
            && !self.urgencies.iter().any(|u| Some(u.api_name()) == urgency)
        {
            return Mapped::Filtered;
        }
        let priority = incident.priority_name();
        if !self.priorities.is_empty()
            && !priority.is_some_and(|p| self.priorities.iter().any(|want| want == p))
        {
            return Mapped::Filtered;
        }
        let pd_service = &incident.service;
        let service = match self.services.get(&pd_service.id) {
            Some(ours) => ours.clone(),
            None => match pd_service.label() {
                Some(name) if self.ours.contains(name) => name.to_owned(),
                name => return Mapped::Unmapped(pd_service.id.clone(), name.map(str::to_owned)),
            },
        };
        let acknowledged = [acknowledged, incident.first_acknowledgement()]
            .into_iter()
            .flatten()
            .min();
        Mapped::Row(IncidentRow {
            incident_id: incident_key(&incident.id),
            service,
            title: incident.title.clone(),
            severity: priority.or(urgency).map(str::to_owned),
            started_at: incident.created_at.timestamp_micros(),
            acknowledged_at: acknowledged.map(|t| t.timestamp_micros()),
            resolved_at: incident.resolution().map(|t| t.timestamp_micros()),
            url: incident.html_url.clone(),
        })
    }
}

/// Where a run stands, kept as JSON in `ingest_state.cursor` (source `pagerduty`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The latest `created_at` read: the next run lists incidents from here (less the overlap).
    #[serde(default)]
    pub created_through: Option<DateTime<Utc>>,
    /// Incidents open at the end of the run (whatever their service or priority: a priority may
    /// be set later), with their first acknowledgement when known, read again by the next run so
    /// that their acknowledgement and resolution land.
    #[serde(default)]
    pub open: BTreeMap<String, Option<DateTime<Utc>>>,
}

/// `incidents` rows in the canonical schema.
pub fn incidents_batch(rows: &[IncidentRow], ingested_at: i64) -> Result<RecordBatch, ArrowError> {
    let strings = |value: &dyn Fn(&IncidentRow) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for row in rows {
            b.append_option(value(row));
        }
        Arc::new(b.finish())
    };
    let times = |value: &dyn Fn(&IncidentRow) -> Option<i64>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::new();
        for row in rows {
            b.append_option(value(row));
        }
        Arc::new(b.finish().with_timezone("UTC"))
    };
    let columns = vec![
        strings(&|r| Some(&r.incident_id)),
        strings(&|_| Some(SOURCE)),
        times(&|_| Some(ingested_at)),
        strings(&|r| Some(&r.service)),
        strings(&|r| r.title.as_deref()),
        strings(&|r| r.severity.as_deref()),
        times(&|r| Some(r.started_at)),
        times(&|r| r.resolved_at),
        strings(&|_| None),
        strings(&|_| None),
        strings(&|r| r.url.as_deref()),
        times(&|r| r.acknowledged_at),
    ];
    RecordBatch::try_new(model::schema::incidents(), columns)
}

/// The `ingest_state` row of a run that wrote: its cursor, and when it succeeded.
pub fn state_batch(
    scope: &str,
    cursor: &Cursor,
    now: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    let text = serde_json::to_string(cursor).map_err(|e| ArrowError::ExternalError(e.into()))?;
    let one = |v: Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        b.append_option(v);
        Arc::new(b.finish())
    };
    let at = || -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::new();
        b.append_value(now.timestamp_micros());
        Arc::new(b.finish().with_timezone("UTC"))
    };
    RecordBatch::try_new(
        model::schema::ingest_state(),
        vec![
            one(Some(SOURCE)),
            one(Some(scope)),
            one(Some(&text)),
            one(None),
            at(),
            one(None),
            at(),
        ],
    )
}

/// A column as UTF-8 strings, or a named error.
fn text_column(batch: &RecordBatch, table: &str, name: &str) -> Result<Option<ArrayRef>, String> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    arrow::compute::cast(column, &DataType::Utf8)
        .map(Some)
        .map_err(|e| format!("{table}.{name}: {e}"))
}

/// A column as UTC microsecond timestamps (absent: written before it existed, all null).
fn time_column(batch: &RecordBatch, table: &str, name: &str) -> Result<Option<ArrayRef>, String> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    arrow::compute::cast(
        column,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
    .map(Some)
    .map_err(|e| format!("{table}.{name}: {e}"))
}

fn text_at(array: &Option<ArrayRef>, row: usize) -> Option<String> {
    let array = array.as_ref()?;
    (!array.is_null(row)).then(|| array.as_string::<i32>().value(row).to_owned())
}

fn time_at(array: &Option<ArrayRef>, row: usize) -> Option<i64> {
    let array = array.as_ref()?;
    (!array.is_null(row)).then(|| array.as_primitive::<TimestampMicrosecondType>().value(row))
}

/// The PagerDuty rows `incidents` holds, by key (rows of other sources are skipped).
pub fn existing_rows(batches: &[RecordBatch]) -> Result<HashMap<String, IncidentRow>, String> {
    let mut out = HashMap::new();
    for batch in batches {
        let t = "incidents";
        let (id, source, service, title, severity) = (
            text_column(batch, t, "incident_id")?,
            text_column(batch, t, "source")?,
            text_column(batch, t, "service")?,
            text_column(batch, t, "title")?,
            text_column(batch, t, "severity")?,
        );
        let (started, acknowledged, resolved) = (
            time_column(batch, t, "started_at")?,
            time_column(batch, t, "acknowledged_at")?,
            time_column(batch, t, "resolved_at")?,
        );
        let url = text_column(batch, t, "url")?;
        for row in 0..batch.num_rows() {
            if text_at(&source, row).as_deref() != Some(SOURCE) {
                continue;
            }
            let Some(key) = text_at(&id, row) else {
                continue;
            };
            out.insert(
                key.clone(),
                IncidentRow {
                    incident_id: key,
                    service: text_at(&service, row).unwrap_or_default(),
                    title: text_at(&title, row),
                    severity: text_at(&severity, row),
                    started_at: time_at(&started, row).unwrap_or_default(),
                    acknowledged_at: time_at(&acknowledged, row),
                    resolved_at: time_at(&resolved, row),
                    url: text_at(&url, row),
                },
            );
        }
    }
    Ok(out)
}

/// The cursor `ingest_state` holds for (`pagerduty`, `scope`).
pub fn saved_cursor(batches: &[RecordBatch], scope: &str) -> Result<Option<Cursor>, String> {
    for batch in batches {
        let t = "ingest_state";
        let (source, scopes, cursor) = (
            text_column(batch, t, "source")?,
            text_column(batch, t, "scope")?,
            text_column(batch, t, "cursor")?,
        );
        for row in 0..batch.num_rows() {
            if text_at(&source, row).as_deref() == Some(SOURCE)
                && text_at(&scopes, row).as_deref() == Some(scope)
            {
                return match text_at(&cursor, row) {
                    Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                        format!("ingest_state.cursor of ({SOURCE}, {scope}) is not a cursor this version reads ({e}): `{text}`")
                    }),
                    None => Ok(None),
                };
            }
        }
    }
    Ok(None)
}

/// The rows of `rows` the lake does not already hold as they are. An acknowledgement is history:
/// one the lake knows is kept when this run could not see it (a resolved incident's
/// acknowledgement outside the log entries read).
pub fn changed_rows(
    rows: Vec<IncidentRow>,
    existing: &HashMap<String, IncidentRow>,
) -> Vec<IncidentRow> {
    rows.into_iter()
        .filter_map(|mut row| {
            let Some(before) = existing.get(&row.incident_id) else {
                return Some(row);
            };
            if row.acknowledged_at.is_none() {
                row.acknowledged_at = before.acknowledged_at;
            }
            (row != *before).then_some(row)
        })
        .collect()
}
