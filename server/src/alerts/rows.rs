//! The `alerts` table's rows as Rust values, and back: the outbox's state between evaluations,
//! sends and restarts.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Float64Builder, Int32Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use model::schema::{MONEY_PRECISION, MONEY_SCALE};
use model::{Lake, LakeError, LakeState, Table, TableWrite};

/// An alert's delivery state.
pub const QUEUED: &str = "queued";
/// Delivered.
pub const SENT: &str = "sent";
/// Given up after `[alerts] max_attempts`.
pub const FAILED: &str = "failed";

/// One alert on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// The idempotency key: kind, budget (or scope), period, threshold and channel.
    pub key: String,
    /// The budget's name (an anomaly's `scope:name`, a report's name).
    pub budget: String,
    /// The month (`YYYY-MM`) or day (`YYYY-MM-DD`) it is about; a report's scheduled time.
    pub period: String,
    /// The threshold in percent of the budget (an anomaly's change in percent; 0 for reports).
    pub threshold: f64,
    /// `actual`, `forecast`, `anomaly`, `report` or `test`.
    pub kind: String,
    /// The money that crossed it (the actual or forecast; an anomaly's impact), exact.
    pub value: Option<i128>,
    /// [`QUEUED`], [`SENT`] or [`FAILED`].
    pub state: String,
    /// Sends tried.
    pub attempts: i32,
    /// The last send's error.
    pub last_error: Option<String>,
    /// When it was first fired.
    pub first_fired_at: DateTime<Utc>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// `P1` … `P4`.
    pub severity: Option<String>,
    /// `email` or `slack`.
    pub channel: String,
    /// Who gets it (email addresses; empty for Slack).
    pub recipients: Vec<String>,
    /// The message's subject line.
    pub subject: String,
    /// Not tried again before this (a retry's backoff, or another sender's lease).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl AlertRow {
    /// A new alert, queued at `now` and not tried yet, on no channel yet (to be set with
    /// `channel` and `recipients`).
    pub fn queued(
        key: String,
        budget: String,
        period: String,
        threshold: f64,
        kind: &str,
        now: DateTime<Utc>,
    ) -> AlertRow {
        AlertRow {
            key,
            budget,
            period,
            threshold,
            kind: kind.to_owned(),
            value: None,
            state: QUEUED.into(),
            attempts: 0,
            last_error: None,
            first_fired_at: now,
            sent_at: None,
            severity: None,
            channel: String::new(),
            recipients: Vec::new(),
            subject: String::new(),
            next_attempt_at: None,
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// `rows` as one batch of the `alerts` table, written at `now`.
pub fn to_batch(rows: &[AlertRow], now: DateTime<Utc>) -> Result<RecordBatch, LakeError> {
    let schema = Table::Alerts.schema();
    let mut key = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut ingested_at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut budget = StringBuilder::new();
    let mut period = StringBuilder::new();
    let mut threshold = Float64Builder::new();
    let mut kind = StringBuilder::new();
    let mut value = Decimal128Builder::new()
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
        .map_err(|e| LakeError::Schema {
            table: Table::Alerts.name(),
            message: e.to_string(),
        })?;
    let mut state = StringBuilder::new();
    let mut attempts = Int32Builder::new();
    let mut last_error = StringBuilder::new();
    let mut first_fired_at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut sent_at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut severity = StringBuilder::new();
    let mut channel = StringBuilder::new();
    let mut recipients = StringBuilder::new();
    let mut subject = StringBuilder::new();
    let mut next_attempt_at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for row in rows {
        key.append_value(&row.key);
        source.append_value("alerts");
        ingested_at.append_value(micros(now));
        budget.append_value(&row.budget);
        period.append_value(&row.period);
        threshold.append_value(row.threshold);
        kind.append_value(&row.kind);
        value.append_option(row.value);
        state.append_value(&row.state);
        attempts.append_value(row.attempts);
        last_error.append_option(row.last_error.as_deref());
        first_fired_at.append_value(micros(row.first_fired_at));
        sent_at.append_option(row.sent_at.map(micros));
        severity.append_option(row.severity.as_deref());
        channel.append_value(&row.channel);
        recipients.append_value(row.recipients.join(", "));
        subject.append_value(&row.subject);
        next_attempt_at.append_option(row.next_attempt_at.map(micros));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(source.finish()),
        Arc::new(ingested_at.finish()),
        Arc::new(budget.finish()),
        Arc::new(period.finish()),
        Arc::new(threshold.finish()),
        Arc::new(kind.finish()),
        Arc::new(value.finish()),
        Arc::new(state.finish()),
        Arc::new(attempts.finish()),
        Arc::new(last_error.finish()),
        Arc::new(first_fired_at.finish()),
        Arc::new(sent_at.finish()),
        Arc::new(severity.finish()),
        Arc::new(channel.finish()),
        Arc::new(recipients.finish()),
        Arc::new(subject.finish()),
        Arc::new(next_attempt_at.finish()),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Schema {
        table: Table::Alerts.name(),
        message: e.to_string(),
    })
}

/// The upsert of `rows` into `alerts`.
pub fn write(rows: &[AlertRow], now: DateTime<Utc>) -> Result<TableWrite, LakeError> {
    Ok(TableWrite::Upsert {
        table: Table::Alerts,
        batches: vec![to_batch(rows, now)?],
    })
}

/// Every row of `alerts` as the lake's readers see it in `state` (none before the first alert).
pub async fn read(lake: &Lake, state: &LakeState) -> Result<Vec<AlertRow>, LakeError> {
    let mut rows = Vec::new();
    for batch in &lake.read_table(state, Table::Alerts).await? {
        rows.extend(from_batch(batch).map_err(|message| LakeError::Schema {
            table: Table::Alerts.name(),
            message,
        })?);
    }
    Ok(rows)
}

/// The rows of one `alerts` batch (any column order; columns an older doracost did not write
/// read as empty).
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<AlertRow>, String> {
    let column = |name: &str| batch.column_by_name(name).cloned();
    let text = |name: &str| -> Result<Option<ArrayRef>, String> {
        let c = column(name);
        match &c {
            Some(c) if c.as_string_opt::<i32>().is_none() && c.as_string_view_opt().is_none() => {
                Err(format!("alerts.{name} is a {}, not text", c.data_type()))
            }
            _ => Ok(c),
        }
    };
    let string = |array: &Option<ArrayRef>, row: usize| -> Option<String> {
        let array = array.as_ref()?;
        if array.is_null(row) {
            return None;
        }
        if let Some(a) = array.as_string_opt::<i32>() {
            return Some(a.value(row).to_owned());
        }
        array.as_string_view_opt().map(|a| a.value(row).to_owned())
    };
    let stamp = |name: &str, row: usize| -> Option<DateTime<Utc>> {
        let array = batch.column_by_name(name)?;
        let a = array.as_primitive_opt::<TimestampMicrosecondType>()?;
        (!a.is_null(row)).then(|| time(a.value(row))).flatten()
    };
    let (key, budget, period, kind, state) = (
        text("alert_key")?,
        text("budget")?,
        text("period")?,
        text("kind")?,
        text("state")?,
    );
    let (last_error, severity, channel, recipients, subject) = (
        text("last_error")?,
        text("severity")?,
        text("channel")?,
        text("recipients")?,
        text("subject")?,
    );
    let threshold = column("threshold");
    let value = column("value");
    let attempts = column("attempts");
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let Some(key_text) = string(&key, row) else {
            continue;
        };
        rows.push(AlertRow {
            key: key_text,
            budget: string(&budget, row).unwrap_or_default(),
            period: string(&period, row).unwrap_or_default(),
            threshold: threshold
                .as_ref()
                .and_then(|a| a.as_primitive_opt::<Float64Type>())
                .filter(|a| !a.is_null(row))
                .map_or(0.0, |a| a.value(row)),
            kind: string(&kind, row).unwrap_or_default(),
            value: value
                .as_ref()
                .and_then(|a| a.as_primitive_opt::<Decimal128Type>())
                .filter(|a| !a.is_null(row))
                .map(|a| a.value(row)),
            state: string(&state, row).unwrap_or_default(),
            attempts: attempts
                .as_ref()
                .and_then(|a| a.as_primitive_opt::<Int32Type>())
                .filter(|a| !a.is_null(row))
                .map_or(0, |a| a.value(row)),
            last_error: string(&last_error, row),
            first_fired_at: stamp("first_fired_at", row).unwrap_or_default(),
            sent_at: stamp("sent_at", row),
            severity: string(&severity, row),
            channel: string(&channel, row).unwrap_or_else(|| "email".into()),
            recipients: string(&recipients, row)
                .map(|r| {
                    r.split(", ")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            subject: string(&subject, row).unwrap_or_default(),
            next_attempt_at: stamp("next_attempt_at", row),
        });
    }
    Ok(rows)
}
