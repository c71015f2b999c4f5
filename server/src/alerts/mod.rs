//! Budget alerts, anomaly digests and scheduled reports (DESIGN §5 "alerts"): evaluated from the
//! views, recorded in the lake's `alerts` table, and delivered from it as an outbox.
//!
//! - **Evaluate** ([`evaluate`]): each budget's highest crossed threshold this month, and the
//!   recent anomalies, become rows keyed by what they are about (budget, period, threshold, kind,
//!   channel). Whether a row is new is decided under the lake's write lock ([`Lake::transact`]),
//!   against the rows recorded: two evaluators (two servers on one lake, or a server and
//!   `doracost alerts check`) take turns, and the second finds the first's rows. So an alert is
//!   queued once per period, across restarts.
//! - **Deliver** ([`deliver`]): due rows are taken under the lock (an attempt counted and a lease
//!   set, so another sender leaves them alone), sent, and their outcome recorded: `sent`, or
//!   queued again with a doubling wait, or `failed` after `[alerts] max_attempts`. A sender killed
//!   mid-send leaves its rows to be taken again when the lease ends (at least once; the
//!   Message-ID is the key's, so a resend is recognisable).
//! - **Schedule** ([`tick`]): `[alerts] schedule` (evaluate, then the digest) and each
//!   `[[reports]]` schedule, read in the reporting time zone; each job's last scheduled time is
//!   kept in `ingest_state` (source `schedule`), so a restart neither repeats nor skips a run and
//!   runs missed while down are made once.

pub mod evaluate;
pub mod rows;
pub mod send;
pub mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use chrono::{DateTime, Utc};
use model::{Config, Lake, LakeError, LakeState, Table, TableWrite};
use query::Engine;

pub use evaluate::Channels;
pub use rows::AlertRow;
pub use send::Notifier;

use rows::{FAILED, QUEUED, SENT};

/// How long a sender holds the rows it took before another may take them.
const LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// The longest wait between two attempts.
const MAX_BACKOFF_SECONDS: u64 = 3600;

/// What evaluating and sending need.
pub struct Alerting<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The lake (`alerts` and `ingest_state` are written here).
    pub lake: &'a Lake,
    /// The query engine over the lake.
    pub engine: &'a Engine,
    /// The dashboards (charts in emails).
    pub catalog: &'a dashboards::Catalog,
    /// The channels.
    pub notifier: &'a Notifier,
    /// The server's address for links (`[alerts] public_url`, else the listen address).
    pub public_url: String,
}

/// What to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct What {
    /// Budget thresholds.
    pub budgets: bool,
    /// Anomalies for the digest.
    pub anomalies: bool,
}

/// One send: the alerts it covered and how it went.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The alert keys (a digest covers several).
    pub keys: Vec<String>,
    /// `email` or `slack`.
    pub channel: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// The subject.
    pub subject: String,
    /// `Ok`, or the error.
    pub outcome: Result<(), String>,
}

fn lake_error(message: String) -> LakeError {
    LakeError::Schema {
        table: Table::Alerts.name(),
        message,
    }
}

/// Evaluates budgets and/or anomalies now and queues the new alerts (or, with `dry_run`, only
/// says which would be); returns them.
pub async fn evaluate(
    at: &Alerting<'_>,
    what: What,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<AlertRow>, String> {
    let channels = Channels {
        email: at.notifier.has_email(),
        slack: at.notifier.has_slack(),
    };
    let mut candidates = Vec::new();
    if what.budgets {
        candidates.extend(evaluate::budget_alerts(at.engine, at.config, &channels, now).await?);
    }
    if what.anomalies {
        candidates.extend(evaluate::anomaly_alerts(at.engine, at.config, &channels, now).await?);
    }
    if dry_run {
        let recorded = match at.lake.state().await {
            Ok(state) => rows::read(at.lake, &state)
                .await
                .map_err(|e| e.to_string())?,
            Err(LakeError::NoLake { .. }) => Vec::new(),
            Err(e) => return Err(e.to_string()),
        };
        return Ok(evaluate::new_alerts(&recorded, candidates));
    }
    let lake = at.lake;
    let (new, _) = lake
        .transact("alerts: evaluate", |state| async move {
            let recorded = rows::read(lake, &state).await?;
            let new = evaluate::new_alerts(&recorded, candidates);
            let writes = if new.is_empty() {
                Vec::new()
            } else {
                vec![rows::write(&new, now)?]
            };
            Ok((new, writes))
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(new)
}

/// Queues `row` unless its key is recorded already (a report's run, a test message).
pub async fn queue(lake: &Lake, row: AlertRow, now: DateTime<Utc>) -> Result<bool, String> {
    let (queued, _) = lake
        .transact("alerts: queue", |state| async move {
            let recorded = rows::read(lake, &state).await?;
            if recorded.iter().any(|r| r.key == row.key) {
                return Ok((false, Vec::new()));
            }
            Ok((true, vec![rows::write(&[row], now)?]))
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(queued)
}

/// The wait before attempt `attempts + 1`: `retry_seconds` doubled per failure, at most an hour.
fn backoff(config: &Config, attempts: i32) -> chrono::Duration {
    let base = config
        .alerts
        .as_ref()
        .map_or(30, |a| a.retry_seconds)
        .max(1);
    let factor = 1u64 << (attempts.clamp(1, 12) - 1);
    chrono::Duration::seconds(base.saturating_mul(factor).min(MAX_BACKOFF_SECONDS) as i64)
}

/// Sends every due alert (queued, its wait over): takes them under the lock, sends, records.
pub async fn deliver(at: &Alerting<'_>, now: DateTime<Utc>) -> Result<Vec<Delivery>, String> {
    let lake = at.lake;
    let (taken, _) = lake
        .transact("alerts: take", |state| async move {
            let recorded = rows::read(lake, &state).await?;
            let taken: Vec<AlertRow> = recorded
                .into_iter()
                .filter(|r| r.state == QUEUED && r.next_attempt_at.is_none_or(|t| t <= now))
                .map(|mut r| {
                    r.attempts += 1;
                    r.next_attempt_at = Some(now + LEASE);
                    r
                })
                .collect();
            let writes = if taken.is_empty() {
                Vec::new()
            } else {
                vec![rows::write(&taken, now)?]
            };
            Ok((taken, writes))
        })
        .await
        .map_err(|e| e.to_string())?;
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    // Anomalies go out as one digest per channel and recipient; the rest one by one.
    let mut digests: BTreeMap<(String, Vec<String>), Vec<AlertRow>> = BTreeMap::new();
    let mut single = Vec::new();
    for row in taken {
        if row.kind == "anomaly" {
            digests
                .entry((row.channel.clone(), row.recipients.clone()))
                .or_default()
                .push(row);
        } else {
            single.push(vec![row]);
        }
    }
    let mut deliveries = Vec::new();
    for group in single.into_iter().chain(digests.into_values()) {
        deliveries.push(send_group(at, &group).await);
    }
    record(at, &deliveries, now).await?;
    Ok(deliveries)
}

async fn send_group(at: &Alerting<'_>, group: &[AlertRow]) -> Delivery {
    let Some(first) = group.first() else {
        return Delivery {
            keys: Vec::new(),
            channel: String::new(),
            recipients: Vec::new(),
            subject: String::new(),
            outcome: Ok(()),
        };
    };
    let currency = dashboards::page::currency(at.config);
    let message = match first.kind.as_str() {
        "anomaly" => text::digest_message(at.engine, group, currency.trim(), &at.public_url).await,
        "report" => {
            let dashboard = at
                .config
                .reports
                .iter()
                .find(|r| r.name == first.budget)
                .map_or("review", |r| r.dashboard.as_str());
            text::report_message(
                at.engine,
                at.config,
                at.catalog,
                first,
                dashboard,
                &at.public_url,
            )
            .await
        }
        "test" => Ok(text::test_message(&first.budget)),
        _ => text::budget_message(at.engine, at.config, at.catalog, first, &at.public_url).await,
    };
    let outcome = match message {
        Err(e) => Err(format!("composing the message: {e}")),
        Ok(message) => {
            let sent = if first.channel == "slack" {
                at.notifier.slack(&message).await
            } else {
                at.notifier
                    .email(&first.key, &first.recipients, &message)
                    .await
            };
            sent.map(|()| message.subject)
        }
    };
    let (subject, outcome) = match outcome {
        Ok(subject) => (subject, Ok(())),
        Err(e) => (first.subject.clone(), Err(e)),
    };
    match &outcome {
        Ok(()) => tracing::info!(alert = %first.key, channel = %first.channel, "alert sent"),
        Err(e) => {
            tracing::warn!(alert = %first.key, channel = %first.channel, error = %e, "alert not sent")
        }
    }
    Delivery {
        keys: group.iter().map(|r| r.key.clone()).collect(),
        channel: first.channel.clone(),
        recipients: first.recipients.clone(),
        subject,
        outcome,
    }
}

/// Records the outcome of each delivery on its rows.
async fn record(
    at: &Alerting<'_>,
    deliveries: &[Delivery],
    now: DateTime<Utc>,
) -> Result<(), String> {
    let lake = at.lake;
    let config = at.config;
    let max_attempts = config.alerts.as_ref().map_or(5, |a| a.max_attempts).max(1) as i32;
    let outcomes: BTreeMap<&str, &Result<(), String>> = deliveries
        .iter()
        .flat_map(|d| d.keys.iter().map(move |k| (k.as_str(), &d.outcome)))
        .collect();
    lake.transact("alerts: record", |state| async move {
        let recorded = rows::read(lake, &state).await?;
        let mut changed = Vec::new();
        for mut row in recorded {
            let Some(outcome) = outcomes.get(row.key.as_str()) else {
                continue;
            };
            if row.state != QUEUED {
                continue;
            }
            match outcome {
                Ok(()) => {
                    row.state = SENT.into();
                    row.sent_at = Some(now);
                    row.next_attempt_at = None;
                    row.last_error = None;
                }
                Err(e) => {
                    row.last_error = Some(e.clone());
                    if row.attempts >= max_attempts {
                        row.state = FAILED.into();
                        row.next_attempt_at = None;
                    } else {
                        row.next_attempt_at = Some(now + backoff(config, row.attempts));
                    }
                }
            }
            changed.push(row);
        }
        let writes = if changed.is_empty() {
            Vec::new()
        } else {
            vec![rows::write(&changed, now)?]
        };
        Ok(((), writes))
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// A scheduled job and its schedule.
struct Job {
    name: String,
    schedule: model::schedule::Schedule,
    report: Option<model::config::ReportConfig>,
}

fn jobs(config: &Config) -> Result<Vec<Job>, String> {
    let mut jobs = Vec::new();
    if let Some(alerts) = &config.alerts {
        jobs.push(Job {
            name: "alerts".into(),
            schedule: model::schedule::Schedule::parse(&alerts.schedule)?,
            report: None,
        });
    }
    for report in &config.reports {
        jobs.push(Job {
            name: format!("report:{}", report.name),
            schedule: model::schedule::Schedule::parse(&report.schedule)?,
            report: Some(report.clone()),
        });
    }
    Ok(jobs)
}

/// What one scheduler tick did.
#[derive(Debug, Default)]
pub struct Tick {
    /// Jobs whose run was due, with the scheduled time run.
    pub ran: Vec<(String, DateTime<Utc>)>,
    /// Alerts queued by the evaluation.
    pub queued: Vec<AlertRow>,
    /// Sends made.
    pub deliveries: Vec<Delivery>,
}

/// One turn of the scheduler at `now`: each job whose scheduled time has come since its last
/// run runs once (claimed under the lake's lock with its `ingest_state` cursor, so two servers
/// run it once between them; a job never run before starts counting from now), then due alerts
/// are delivered.
pub async fn tick(at: &Alerting<'_>, now: DateTime<Utc>) -> Result<Tick, String> {
    let jobs = jobs(at.config)?;
    let zone = at.config.reporting.time_zone.0;
    let lake = at.lake;
    let mut tick = Tick::default();
    if !jobs.is_empty() {
        let jobs_ref = &jobs;
        let (due, _) = lake
            .transact("schedule", |state| async move {
                let cursors = schedule_cursors(lake, &state).await?;
                let mut updates = Vec::new();
                let mut due = Vec::new();
                let mut reports = Vec::new();
                for job in jobs_ref {
                    match cursors.get(&job.name) {
                        None => updates.push((job.name.clone(), now, false)),
                        Some(last) => {
                            if let Some(at_time) = job.schedule.due(*last, now, zone) {
                                updates.push((job.name.clone(), at_time, true));
                                due.push((job.name.clone(), at_time));
                                if let Some(report) = &job.report {
                                    reports.push(report_row(report, at_time, now));
                                }
                            }
                        }
                    }
                }
                let mut writes = Vec::new();
                if !updates.is_empty() {
                    writes.push(schedule_write(&updates, now)?);
                }
                if !reports.is_empty() {
                    let recorded = rows::read(lake, &state).await?;
                    let fresh: Vec<AlertRow> = reports
                        .into_iter()
                        .filter(|r| !recorded.iter().any(|x| x.key == r.key))
                        .collect();
                    if !fresh.is_empty() {
                        writes.push(rows::write(&fresh, now)?);
                    }
                }
                Ok((due, writes))
            })
            .await
            .map_err(|e| e.to_string())?;
        for (name, scheduled) in &due {
            if name == "alerts" {
                let what = What {
                    budgets: true,
                    anomalies: true,
                };
                tick.queued.extend(evaluate(at, what, now, false).await?);
            }
            tracing::info!(job = %name, scheduled = %scheduled, "scheduled run");
        }
        tick.ran = due;
    }
    tick.deliveries = deliver(at, now).await?;
    Ok(tick)
}

/// The row that mails `report` for its run scheduled at `at_time`.
fn report_row(
    report: &model::config::ReportConfig,
    at_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AlertRow {
    let period = at_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    AlertRow {
        channel: "email".into(),
        recipients: report.recipients.clone(),
        subject: format!("report {}", report.name),
        ..AlertRow::queued(
            format!("report/{}/{period}/email", report.name),
            report.name.clone(),
            period,
            0.0,
            "report",
            now,
        )
    }
}

/// The scheduler's cursors: job → the scheduled time of its last run.
async fn schedule_cursors(
    lake: &Lake,
    state: &LakeState,
) -> Result<BTreeMap<String, DateTime<Utc>>, LakeError> {
    let batches = lake.read_table(state, Table::IngestState).await?;
    let mut out = BTreeMap::new();
    for batch in &batches {
        let text = |name: &str, row: usize| -> Option<String> {
            let c = batch.column_by_name(name)?;
            if c.is_null(row) {
                return None;
            }
            c.as_string_opt::<i32>()
                .map(|a| a.value(row).to_owned())
                .or_else(|| c.as_string_view_opt().map(|a| a.value(row).to_owned()))
        };
        for row in 0..batch.num_rows() {
            if text("source", row).as_deref() != Some("schedule") {
                continue;
            }
            if let (Some(scope), Some(cursor)) = (text("scope", row), text("cursor", row))
                && let Ok(at_time) = DateTime::parse_from_rfc3339(&cursor)
            {
                out.insert(scope, at_time.with_timezone(&Utc));
            }
        }
    }
    Ok(out)
}

/// The upsert of the scheduler's cursors (job, scheduled time, whether it ran now).
fn schedule_write(
    updates: &[(String, DateTime<Utc>, bool)],
    now: DateTime<Utc>,
) -> Result<TableWrite, LakeError> {
    let mut source = StringBuilder::new();
    let mut scope = StringBuilder::new();
    let mut cursor = StringBuilder::new();
    let mut etag = StringBuilder::new();
    let mut last_success = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut last_error = StringBuilder::new();
    let mut ingested = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for (job, at_time, ran) in updates {
        source.append_value("schedule");
        scope.append_value(job);
        cursor.append_value(at_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        etag.append_null();
        if *ran {
            last_success.append_value(now.timestamp_micros());
        } else {
            last_success.append_null();
        }
        last_error.append_null();
        ingested.append_value(now.timestamp_micros());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(scope.finish()),
        Arc::new(cursor.finish()),
        Arc::new(etag.finish()),
        Arc::new(last_success.finish()),
        Arc::new(last_error.finish()),
        Arc::new(ingested.finish()),
    ];
    let batch = RecordBatch::try_new(Table::IngestState.schema(), columns)
        .map_err(|e| lake_error(e.to_string()))?;
    Ok(TableWrite::Upsert {
        table: Table::IngestState,
        batches: vec![batch],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, kind: &str, percent: f64, severity: &str) -> AlertRow {
        AlertRow {
            key: key.into(),
            budget: "web".into(),
            period: "2026-05".into(),
            threshold: percent,
            kind: kind.into(),
            value: None,
            state: QUEUED.into(),
            attempts: 0,
            last_error: None,
            first_fired_at: DateTime::default(),
            sent_at: None,
            severity: Some(severity.into()),
            channel: "email".into(),
            recipients: vec![],
            subject: String::new(),
            next_attempt_at: None,
        }
    }

    #[test]
    fn only_a_higher_threshold_alerts_again_in_a_month() {
        let p2_80 = row("a80", "actual", 80.0, "P2");
        let p1_100f = row("f100", "forecast", 100.0, "P1");
        let p1_100a = row("a100", "actual", 100.0, "P1");
        let p3_50 = row("a50", "actual", 50.0, "P3");
        // Nothing recorded: it goes out.
        assert_eq!(evaluate::new_alerts(&[], vec![p2_80.clone()]).len(), 1);
        // The same key again: never.
        assert!(evaluate::new_alerts(&[p2_80.clone()], vec![p2_80.clone()]).is_empty());
        // A more urgent one later: an escalation.
        assert_eq!(
            evaluate::new_alerts(&[p2_80.clone()], vec![p1_100f.clone()])[0].key,
            "f100"
        );
        // Same severity, higher or equal threshold, actual over forecast: escalates.
        assert_eq!(
            evaluate::new_alerts(&[p2_80.clone(), p1_100f.clone()], vec![p1_100a.clone()]).len(),
            1
        );
        // A lower one after a higher: nothing (the month is already alerted above it).
        assert!(evaluate::new_alerts(&[p2_80.clone()], vec![p3_50.clone()]).is_empty());
        // Another month or channel starts over.
        let next_month = AlertRow {
            key: "n".into(),
            period: "2026-06".into(),
            ..p3_50.clone()
        };
        assert_eq!(
            evaluate::new_alerts(&[p2_80.clone()], vec![next_month]).len(),
            1
        );
        let slack = AlertRow {
            key: "s".into(),
            channel: "slack".into(),
            ..p3_50
        };
        assert_eq!(evaluate::new_alerts(&[p2_80], vec![slack]).len(), 1);
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let config = Config::default();
        assert_eq!(backoff(&config, 1), chrono::Duration::seconds(30));
        assert_eq!(backoff(&config, 2), chrono::Duration::seconds(60));
        assert_eq!(backoff(&config, 4), chrono::Duration::seconds(240));
        assert_eq!(backoff(&config, 12), chrono::Duration::seconds(3600));
    }
}

/// How often the server's scheduler looks at its jobs and the outbox.
pub const SCHEDULER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);

/// The server's scheduler, until dropped: every [`SCHEDULER_INTERVAL`] a [`tick`] on the engine
/// of the moment; and when the engine shows new costs (an ingest), the budgets are evaluated at
/// once rather than at the next scheduled run.
pub async fn run_scheduler(state: crate::AppState, notifier: Notifier, public_url: String) {
    let mut evaluated_costs: Option<String> = None;
    loop {
        let Ok(live) = state.engine() else {
            // Not open yet (the server is starting): look again soon.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        };
        {
            let at = Alerting {
                config: state.config(),
                lake: state.lake(),
                engine: &live.engine,
                catalog: &state.options().dashboards,
                notifier: &notifier,
                public_url: public_url.clone(),
            };
            let costs = live.content.get(Table::Costs.name()).cloned();
            if costs.is_some() && costs != evaluated_costs {
                let what = What {
                    budgets: true,
                    anomalies: false,
                };
                match evaluate(&at, what, Utc::now(), false).await {
                    Ok(queued) => {
                        evaluated_costs = costs;
                        if !queued.is_empty() {
                            tracing::info!(
                                alerts = queued.len(),
                                "new costs crossed budget thresholds"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "evaluating the budgets after new costs failed")
                    }
                }
            }
            if let Err(e) = tick(&at, Utc::now()).await {
                tracing::warn!(error = %e, "the alerts scheduler's turn failed; it tries again");
            }
        }
        tokio::time::sleep(SCHEDULER_INTERVAL).await;
    }
}
