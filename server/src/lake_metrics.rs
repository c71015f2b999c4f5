//! `/metrics`' series read from the lake (see [`crate::metrics`]): a few queries over the views,
//! each feeding several gauge families, computed once per engine.

use std::fmt::Write as _;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use query::reports::{LAST_INGEST_PER_SOURCE, LATEST_COMPLETE_MONTH};

use crate::error::ServerError;
use crate::metrics::{escape, family_header};

/// The lake's series, as text: they change only with the lake, so they are computed once per
/// engine (right after it starts serving, see `api::warm`).
pub(crate) async fn lake_series(
    live: &crate::LiveEngine,
) -> Result<axum::body::Bytes, ServerError> {
    let (text, _) = live
        .cache
        .get_or_compute("metrics".to_owned(), async {
            let mut text = String::new();
            for query in lake_queries() {
                let batches = live.engine.query(&query.sql).await?;
                for family in &query.families {
                    render_family(&mut text, family, &batches)?;
                }
            }
            Ok::<_, ServerError>(axum::body::Bytes::from(text))
        })
        .await?;
    Ok(text)
}

/// One query over the views and the gauge families read from its columns.
struct LakeQuery {
    sql: String,
    families: Vec<Family>,
}

/// A gauge family: per row, one sample per value column (`label` and `fixed` name it when there
/// are several), labelled with the row's `labels` columns (NULL ones left out). A NULL value
/// leaves the sample out.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Vec<Sample>,
}

/// One sample of a row: its value column (`None`: the constant 1, for a state set), and extra
/// labels, fixed or read from a column.
struct Sample {
    value: Option<&'static str>,
    fixed: Option<(&'static str, &'static str)>,
    label_column: Option<(&'static str, &'static str)>,
}

const fn value(column: &'static str) -> Sample {
    Sample {
        value: Some(column),
        fixed: None,
        label_column: None,
    }
}

const fn level(metric: &'static str, column: &'static str) -> Sample {
    Sample {
        value: None,
        fixed: Some(("metric", metric)),
        label_column: Some(("level", column)),
    }
}

const SERVICE_TEAM: &[&str] = &["service", "team"];
const BUDGET: &[&str] = &["budget", "scope", "scope_name", "currency"];

fn lake_queries() -> Vec<LakeQuery> {
    vec![
        LakeQuery {
            sql: format!(
                "SELECT m.name AS service, t.team, CAST(deploys_per_day AS DOUBLE) AS deploys_per_day, \
                   CAST(lead_time_median_hours AS DOUBLE) * 3600 AS lead_time_s, \
                   CAST(change_failure_rate AS DOUBLE) AS change_failure_rate, \
                   CAST(recovery_median_hours AS DOUBLE) * 3600 AS recovery_s, \
                   CAST(rework_rate AS DOUBLE) AS rework_rate, deploy_frequency_level, lead_time_level, \
                   change_failure_level, recovery_level \
                 FROM dora_monthly m \
                 LEFT JOIN (SELECT service, min(team) AS team FROM services GROUP BY service) t ON t.service = m.name \
                 WHERE m.scope = 'service' AND m.period_start = {LATEST_COMPLETE_MONTH} ORDER BY 1"
            ),
            families: vec![
                Family {
                    name: "doracost_dora_deployments_per_day",
                    help: "Successful production deployments per day in the latest complete month (DESIGN §4).",
                    labels: SERVICE_TEAM,
                    values: vec![value("deploys_per_day")],
                },
                Family {
                    name: "doracost_dora_lead_time_median_seconds",
                    help: "Median lead time for changes first deployed in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("lead_time_s")],
                },
                Family {
                    name: "doracost_dora_change_failure_ratio",
                    help: "Failed deployments over deployments in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("change_failure_rate")],
                },
                Family {
                    name: "doracost_dora_recovery_median_seconds",
                    help: "Median failed-deployment recovery time completed in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("recovery_s")],
                },
                Family {
                    name: "doracost_dora_rework_ratio",
                    help: "Rework deployments over deployments in the latest complete month.",
                    labels: SERVICE_TEAM,
                    values: vec![value("rework_rate")],
                },
                Family {
                    name: "doracost_dora_level",
                    help: "The DORA performance level of each metric in the latest complete month (1 for the level reached).",
                    labels: SERVICE_TEAM,
                    values: vec![
                        level("deployment_frequency", "deploy_frequency_level"),
                        level("lead_time", "lead_time_level"),
                        level("change_failure_rate", "change_failure_level"),
                        level("recovery_time", "recovery_level"),
                    ],
                },
            ],
        },
        LakeQuery {
            sql: "SELECT name AS service, team, CAST(actual_to_date AS DOUBLE) AS actual, \
                    CAST(forecast AS DOUBLE) AS forecast FROM cost_forecast WHERE scope = 'service' ORDER BY 1"
                .to_owned(),
            families: vec![
                Family {
                    name: "doracost_cost_month_to_date",
                    help: "Allocated cost of the bill's current month so far, in the bill's currency.",
                    labels: SERVICE_TEAM,
                    values: vec![value("actual")],
                },
                Family {
                    name: "doracost_cost_forecast",
                    help: "Forecast allocated cost of the bill's current month at its end, in the bill's currency.",
                    labels: SERVICE_TEAM,
                    values: vec![value("forecast")],
                },
            ],
        },
        LakeQuery {
            sql: "SELECT budget, scope, scope_name, currency, actual_pct / 100 AS used, \
                    forecast_pct / 100 AS forecast FROM budget_status WHERE is_current ORDER BY 1"
                .to_owned(),
            families: vec![
                Family {
                    name: "doracost_budget_used_ratio",
                    help: "Actual spend over the monthly amount of each budget, current month.",
                    labels: BUDGET,
                    values: vec![value("used")],
                },
                Family {
                    name: "doracost_budget_forecast_ratio",
                    help: "Forecast month-end spend over the monthly amount of each budget, current month.",
                    labels: BUDGET,
                    values: vec![value("forecast")],
                },
            ],
        },
        LakeQuery {
            sql: format!(
                "SELECT source, CAST(to_unixtime(last_ingested_at) AS DOUBLE) AS at FROM ({LAST_INGEST_PER_SOURCE}) s"
            ),
            families: vec![Family {
                name: "doracost_ingest_last_timestamp_seconds",
                help: "When rows from each source last reached the lake (Unix time).",
                labels: &["source"],
                values: vec![value("at")],
            }],
        },
        LakeQuery {
            sql: "SELECT s.state, CAST(coalesce(c.n, 0) AS DOUBLE) AS n \
                  FROM (VALUES ('queued'), ('sent'), ('failed')) AS s(state) \
                  LEFT JOIN (SELECT state, count(*) AS n FROM alerts GROUP BY state) c ON c.state = s.state \
                  ORDER BY 1"
                .to_owned(),
            families: vec![Family {
                name: "doracost_alerts",
                help: "Alerts in the outbox by state: queued (to send or retry), sent, failed (gave up after [alerts] max_attempts).",
                labels: &["state"],
                values: vec![value("n")],
            }],
        },
    ]
}

/// A family's samples from the query's rows.
fn render_family(
    out: &mut String,
    family: &Family,
    batches: &[RecordBatch],
) -> Result<(), ServerError> {
    let failed = |e: arrow::error::ArrowError| ServerError::Query(e.to_string());
    let text = |batch: &RecordBatch, name: &str| -> Result<Vec<Option<String>>, ServerError> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| ServerError::Query(format!("/metrics: no column {name}")))?;
        let column = arrow::compute::cast(column, &DataType::Utf8).map_err(failed)?;
        let column = column.as_string::<i32>();
        Ok((0..column.len())
            .map(|i| (!column.is_null(i)).then(|| column.value(i).to_owned()))
            .collect())
    };
    family_header(out, family.name, "gauge", family.help);
    for batch in batches {
        let labels = family
            .labels
            .iter()
            .map(|name| text(batch, name).map(|values| (*name, values)))
            .collect::<Result<Vec<_>, _>>()?;
        for sample in &family.values {
            let values = match sample.value {
                Some(name) => {
                    let column = batch
                        .column_by_name(name)
                        .ok_or_else(|| ServerError::Query(format!("/metrics: no column {name}")))?;
                    let column =
                        arrow::compute::cast(column, &DataType::Float64).map_err(failed)?;
                    let column = column.as_primitive::<Float64Type>();
                    (0..column.len())
                        .map(|i| (!column.is_null(i)).then(|| column.value(i)))
                        .collect()
                }
                None => vec![Some(1.0); batch.num_rows()],
            };
            let extra = match sample.label_column {
                Some((label, column)) => Some((label, text(batch, column)?)),
                None => None,
            };
            for row in 0..batch.num_rows() {
                let Some(value) = values[row].filter(|v| v.is_finite()) else {
                    continue;
                };
                let mut pairs: Vec<String> = labels
                    .iter()
                    .filter_map(|(name, values)| {
                        values[row]
                            .as_ref()
                            .map(|v| format!("{name}=\"{}\"", escape(v)))
                    })
                    .collect();
                pairs.extend(
                    sample
                        .fixed
                        .iter()
                        .map(|(name, v)| format!("{name}=\"{}\"", escape(v))),
                );
                if let Some((label, column)) = &extra {
                    // A state set: no sample when the state is unknown.
                    let Some(state) = &column[row] else {
                        continue;
                    };
                    pairs.push(format!("{label}=\"{}\"", escape(state)));
                }
                let _ = writeln!(out, "{}{{{}}} {value}", family.name, pairs.join(","));
            }
        }
    }
    Ok(())
}
