//! What should alert now: each budget's highest crossed threshold this month, and the anomalies
//! of the last days, as `alerts` rows to queue; and which of them are new given the rows already
//! recorded (the decision made under the lake's lock, see [`super::claim`]).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Decimal128Type;
use chrono::{DateTime, Utc};
use datafusion::scalar::ScalarValue;
use model::Config;
use model::schema::{MONEY_PRECISION, MONEY_SCALE};
use query::Engine;
use query::reports::BoundQuery;

use super::rows::AlertRow;
use super::text::money;

/// Where an alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// SMTP is configured.
    pub email: bool,
    /// A Slack-compatible webhook is configured.
    pub slack: bool,
}

impl Channels {
    /// The channels `[alerts]` configures.
    pub fn of(config: &Config) -> Channels {
        let alerts = config.alerts.as_ref();
        Channels {
            email: alerts.is_some_and(|a| a.smtp_url.is_some()),
            slack: alerts.is_some_and(|a| a.slack_webhook.is_some()),
        }
    }
}

/// The rank of a budget alert: a more urgent severity first, then the higher threshold, then
/// actual before forecast spend. Only a rank above every one already sent for the budget's month
/// alerts again (an escalation).
pub fn rank(row: &AlertRow) -> (u8, i64, u8) {
    let severity = match row.severity.as_deref() {
        Some("P1") => 4,
        Some("P2") => 3,
        Some("P4") => 1,
        _ => 2,
    };
    // Percent to 1/10000: thresholds compare exactly enough, and f64 has no total order.
    let percent = (row.threshold * 10_000.0).round() as i64;
    (severity, percent, u8::from(row.kind == "actual"))
}

fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    dashboards::cells::column(batch, name).and_then(|c| dashboards::cells::text(c.as_ref(), row))
}

fn number(batch: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    dashboards::cells::column(batch, name).and_then(|c| dashboards::cells::number(c.as_ref(), row))
}

/// An exact money cell (DECIMAL at the lake's scale).
fn decimal(batch: &RecordBatch, name: &str, row: usize) -> Option<i128> {
    let column = batch.column_by_name(name)?;
    let array = column.as_primitive_opt::<Decimal128Type>()?;
    if array.is_null(row) {
        return None;
    }
    let (_, scale) = match column.data_type() {
        arrow::datatypes::DataType::Decimal128(p, s) => (*p, *s),
        _ => (MONEY_PRECISION, MONEY_SCALE),
    };
    let raw = array.value(row);
    let shift = i32::from(MONEY_SCALE) - i32::from(scale);
    Some(if shift >= 0 {
        raw.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        raw / 10i128.checked_pow((-shift) as u32)?
    })
}

/// The budget alerts due now: for each budget, its highest-ranked threshold crossed in the
/// current month, one row per channel.
pub async fn budget_alerts(
    engine: &Engine,
    config: &Config,
    channels: &Channels,
    now: DateTime<Utc>,
) -> Result<Vec<AlertRow>, String> {
    let sql = "SELECT t.budget, CAST(t.month AS VARCHAR) AS month, t.kind, t.percent, t.threshold_amount, \
               t.severity, t.value, s.scope, s.scope_name, s.monthly_amount, s.currency, \
               s.actual_pct, s.forecast_pct \
               FROM budget_threshold_status t JOIN budget_status s ON s.budget = t.budget AND s.month = t.month \
               WHERE t.is_current AND t.crossed";
    let batches = engine.query(sql).await.map_err(|e| e.to_string())?;
    let mut best: BTreeMap<String, AlertRow> = BTreeMap::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let (Some(budget), Some(month), Some(kind)) = (
                text(batch, "budget", row),
                text(batch, "month", row),
                text(batch, "kind", row),
            ) else {
                continue;
            };
            let Some(conf) = config.budgets.iter().find(|b| b.name == budget) else {
                continue;
            };
            let percent = number(batch, "percent", row).unwrap_or(0.0);
            let threshold_amount = decimal(batch, "threshold_amount", row).unwrap_or(0);
            let value = decimal(batch, "value", row);
            let severity = text(batch, "severity", row).unwrap_or_else(|| "P3".into());
            let month = month.get(..7).unwrap_or(&month).to_owned();
            let scope = match (
                text(batch, "scope", row).as_deref(),
                text(batch, "scope_name", row),
            ) {
                (Some("service"), Some(name)) => format!("service {name}"),
                (Some("team"), Some(name)) => format!("team {name}"),
                (Some("tag"), Some(name)) => format!("tag {name}"),
                _ => "everything".to_owned(),
            };
            let spent_pct = if kind == "actual" {
                number(batch, "actual_pct", row)
            } else {
                number(batch, "forecast_pct", row)
            };
            let subject = format!(
                "[{severity}] Budget {budget} ({scope}): {} {:.0}% of {} for {month}",
                if kind == "actual" {
                    "spent"
                } else {
                    "forecast to spend"
                },
                spent_pct.unwrap_or(percent),
                money(conf.monthly_amount.0, &conf.currency),
            );
            let key = format!(
                "budget/{budget}/{month}/{kind}/{}",
                model::money::format_decimal(threshold_amount, MONEY_SCALE)
            );
            let candidate = AlertRow {
                value,
                severity: Some(severity),
                recipients: conf.recipients.clone(),
                subject,
                ..AlertRow::queued(key, budget.clone(), month, percent, &kind, now)
            };
            let better = best
                .get(&budget)
                .is_none_or(|held| rank(&candidate) > rank(held));
            if better {
                best.insert(budget, candidate);
            }
        }
    }
    Ok(best
        .into_values()
        .flat_map(|row| per_channel(row, channels))
        .collect())
}

/// `row` once per configured channel (email only with recipients), its key ending in the channel.
fn per_channel(row: AlertRow, channels: &Channels) -> Vec<AlertRow> {
    let mut out = Vec::new();
    if channels.email && !row.recipients.is_empty() {
        out.push(AlertRow {
            key: format!("{}/email", row.key),
            channel: "email".into(),
            ..row.clone()
        });
    }
    if channels.slack {
        out.push(AlertRow {
            key: format!("{}/slack", row.key),
            channel: "slack".into(),
            recipients: Vec::new(),
            ..row
        });
    }
    out
}

/// The anomalies of the last `[alerts] anomaly_days` before the bill's cutoff with at least
/// `[alerts] anomaly_min_impact`: one row per anomaly and recipient (its digest groups them),
/// and one per anomaly for Slack. A recipient is someone on a budget covering the anomaly's scope
/// (a service's own, its team's, everything's) or on `anomaly_recipients`.
pub async fn anomaly_alerts(
    engine: &Engine,
    config: &Config,
    channels: &Channels,
    now: DateTime<Utc>,
) -> Result<Vec<AlertRow>, String> {
    let min_impact = config.alerts.as_ref().map_or(0, |a| a.anomaly_min_impact.0);
    let days = config.alerts.as_ref().map_or(7, |a| a.anomaly_days);
    let query = BoundQuery {
        sql: format!(
            "SELECT a.scope, a.name, a.team, CAST(a.day AS VARCHAR) AS day_text, a.impact, a.impact_pct \
             FROM cost_anomalies a CROSS JOIN cost_cutoff c \
             WHERE a.day > c.cutoff - INTERVAL '{days} days' AND abs(a.impact) >= $min_impact \
             ORDER BY a.day, a.scope, a.name"
        ),
        params: vec![(
            "min_impact".to_owned(),
            ScalarValue::Decimal128(Some(min_impact), MONEY_PRECISION, MONEY_SCALE),
        )],
    };
    let (_, batches) = engine
        .query_bound(&query)
        .await
        .map_err(|e| e.to_string())?;
    let currency = dashboards::page::currency(config);
    let team_of = |service: &str| {
        config
            .services
            .iter()
            .find(|s| s.name == service)
            .and_then(|s| s.team.clone())
    };
    let mut out = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let (Some(scope), Some(name), Some(day)) = (
                text(batch, "scope", row),
                text(batch, "name", row),
                text(batch, "day_text", row),
            ) else {
                continue;
            };
            let impact = decimal(batch, "impact", row);
            let pct = number(batch, "impact_pct", row).unwrap_or(0.0);
            let team = match scope.as_str() {
                "service" => team_of(&name),
                "team" => Some(name.clone()),
                _ => None,
            };
            let mut recipients: BTreeSet<String> = config
                .alerts
                .as_ref()
                .map(|a| a.anomaly_recipients.iter().cloned().collect())
                .unwrap_or_default();
            for b in &config.budgets {
                let covers = match (&b.scope.service, &b.scope.team, b.scope.tag_pair()) {
                    (Some(s), _, _) => scope == "service" && *s == name,
                    (None, Some(t), _) => team.as_deref() == Some(t.as_str()),
                    (None, None, Some((k, v))) => scope == "tag" && name == format!("{k}={v}"),
                    (None, None, None) => true,
                };
                if covers {
                    recipients.extend(b.recipients.iter().cloned());
                }
            }
            let subject = format!(
                "Cost anomaly: {scope} {name} on {day}, {} ({pct:+.0}%)",
                impact.map_or_else(|| "?".into(), |v| money(v, &currency))
            );
            let base = AlertRow {
                value: impact,
                subject,
                ..AlertRow::queued(
                    format!("anomaly/{scope}:{name}/{day}"),
                    format!("{scope}:{name}"),
                    day,
                    pct,
                    "anomaly",
                    now,
                )
            };
            if channels.email {
                for recipient in recipients {
                    out.push(AlertRow {
                        key: format!("{}/email:{recipient}", base.key),
                        channel: "email".into(),
                        recipients: vec![recipient],
                        ..base.clone()
                    });
                }
            }
            if channels.slack {
                out.push(AlertRow {
                    key: format!("{}/slack", base.key),
                    channel: "slack".into(),
                    ..base
                });
            }
        }
    }
    Ok(out)
}

/// Of `candidates`, those to queue given the rows already recorded: never a key twice, and a
/// budget alert only above every budget alert already fired for that budget, month and channel
/// (when several thresholds are crossed at once only the highest alerts; a higher one later
/// escalates).
pub fn new_alerts(recorded: &[AlertRow], candidates: Vec<AlertRow>) -> Vec<AlertRow> {
    let keys: BTreeSet<&str> = recorded.iter().map(|r| r.key.as_str()).collect();
    let mut fired: BTreeMap<(String, String, String), (u8, i64, u8)> = BTreeMap::new();
    for r in recorded
        .iter()
        .filter(|r| r.kind == "actual" || r.kind == "forecast")
    {
        let at = (r.budget.clone(), r.period.clone(), r.channel.clone());
        let held = fired.entry(at).or_insert((0, i64::MIN, 0));
        *held = (*held).max(rank(r));
    }
    candidates
        .into_iter()
        .filter(|c| !keys.contains(c.key.as_str()))
        .filter(|c| {
            if c.kind != "actual" && c.kind != "forecast" {
                return true;
            }
            let at = (c.budget.clone(), c.period.clone(), c.channel.clone());
            fired.get(&at).is_none_or(|held| rank(c) > *held)
        })
        .collect()
}
