//! The reports the CLI and the server both show (DESIGN §5): the DORA metrics of one period kind
//! for services, a team or everything, and one month's cost per service. Each is a parameterised
//! query over the views: what the caller chose (a service, a team, dates) is bound as a value
//! (`$service`, `$from`, …), never written into the SQL text, and checked against the config first
//! so that a name that matches nothing is an error, not an empty answer.

use chrono::NaiveDate;
use datafusion::scalar::ScalarValue;
use model::Config;

/// A query with its bound values.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundQuery {
    /// The SQL, with `$name` placeholders.
    pub sql: String,
    /// The value of each placeholder.
    pub params: Vec<(String, ScalarValue)>,
}

/// A report parameter that matches nothing the config knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} `{value}`: {message}")]
pub struct ReportError {
    /// The parameter at fault (`service`, `team`, `from`, …).
    pub parameter: &'static str,
    /// The value given.
    pub value: String,
    /// What was expected.
    pub message: String,
}

/// The period kinds of the DORA views (DESIGN §4 "Periods").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Calendar day: `dora_daily`.
    Day,
    /// ISO week: `dora_weekly`.
    Week,
    /// Calendar month: `dora_monthly`.
    Month,
}

impl Period {
    /// `day`, `week` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The view of this period kind.
    pub fn view(self) -> &'static str {
        match self {
            Period::Day => "dora_daily",
            Period::Week => "dora_weekly",
            Period::Month => "dora_monthly",
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Period, String> {
        match text {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            _ => Err("expected day, week or month".into()),
        }
    }
}

/// Whose figures a report shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every service, and everything together.
    #[default]
    Everything,
    /// One service.
    Service(String),
    /// One team, its services pooled.
    Team(String),
}

impl Scope {
    /// Checks the service or team against the config: an unknown one is an error naming the
    /// known ones. `unallocated` is a service for cost reports only.
    pub fn checked(self, config: &Config, allow_unallocated: bool) -> Result<Scope, ReportError> {
        match &self {
            Scope::Everything => {}
            Scope::Service(name) => {
                let known = config.services.iter().any(|s| &s.name == name)
                    || (allow_unallocated && name == "unallocated");
                if !known {
                    let mut names: Vec<&str> =
                        config.services.iter().map(|s| s.name.as_str()).collect();
                    if allow_unallocated {
                        names.push("unallocated");
                    }
                    return Err(ReportError {
                        parameter: "service",
                        value: name.clone(),
                        message: format!(
                            "no service of that name in [[services]] (known: {})",
                            names.join(", ")
                        ),
                    });
                }
            }
            Scope::Team(team) => {
                if !config
                    .services
                    .iter()
                    .any(|s| s.team.as_deref() == Some(team))
                {
                    let teams = config.teams();
                    return Err(ReportError {
                        parameter: "team",
                        value: team.clone(),
                        message: format!(
                            "no service in [[services]] has that team (known: {})",
                            teams.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(self)
    }
}

/// Rounded, with units in the column names, for people; or every column at full precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// A table for people.
    Summary,
    /// Every column of the view, for machines.
    Full,
}

/// `doracost dora` and `/api/v1/dora`: the periods of `dora_daily|weekly|monthly` from the one
/// holding `from` to the one holding `to` (the latest period when both are absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoraReport {
    /// The period kind.
    pub period: Period,
    /// Whose figures.
    pub scope: Scope,
    /// The first period: the one containing this date.
    pub from: Option<NaiveDate>,
    /// The last period: the one containing this date.
    pub to: Option<NaiveDate>,
}

impl DoraReport {
    /// The query, values bound.
    pub fn query(&self, detail: Detail) -> BoundQuery {
        let unit = self.period.as_str();
        let view = self.period.view();
        let mut params = Vec::new();
        let mut filters = vec![match &self.scope {
            Scope::Service(service) => {
                params.push(("service".to_owned(), utf8(service)));
                "scope = 'service' AND name = $service".to_owned()
            }
            Scope::Team(team) => {
                params.push(("team".to_owned(), utf8(team)));
                "scope = 'team' AND name = $team".to_owned()
            }
            Scope::Everything => "scope IN ('service', 'all')".to_owned(),
        }];
        if self.from.is_none() && self.to.is_none() {
            filters.push(format!(
                "period_start = (SELECT max(period_start) FROM dora_period_grid WHERE period = '{unit}')"
            ));
        }
        for (name, date, comparison) in [("from", self.from, ">="), ("to", self.to, "<=")] {
            if let Some(date) = date {
                params.push((name.to_owned(), ScalarValue::Date32(Some(days(date)))));
                filters.push(format!(
                    "period_start {comparison} CAST(date_trunc('{unit}', CAST(${name} AS DATE)) AS DATE)"
                ));
            }
        }
        let filter = filters.join(" AND ");
        let order = "ORDER BY period_start, CASE scope WHEN 'all' THEN 1 ELSE 0 END, name";
        let sql = match detail {
            Detail::Full => format!("SELECT * FROM {view} WHERE {filter} {order}"),
            Detail::Summary => format!(
                "SELECT CAST(period_start AS VARCHAR) AS period, name AS {who}, deployments AS deploys, \
                   round(deploys_per_day, 2) AS per_day, deploy_frequency_level AS freq_level, \
                   round(lead_time_median_hours, 1) AS lead_h_p50, round(lead_time_p90_hours, 1) AS lead_h_p90, \
                   lead_time_level AS lead_level, \
                   CAST(change_failures AS VARCHAR) || '/' || CAST(deployments AS VARCHAR) AS failed, \
                   round(100 * change_failure_rate, 1) AS cfr_pct, change_failure_level AS cfr_level, \
                   round(recovery_median_hours, 1) AS recover_h_p50, recovery_level, open_recoveries AS open_fail, \
                   round(100 * rework_rate, 1) AS rework_pct, round(time_to_restore_median_hours, 1) AS mttr_h, \
                   open_incidents AS open_inc \
                 FROM {view} WHERE {filter} {order}",
                who = if matches!(self.scope, Scope::Team(_)) {
                    "team"
                } else {
                    "service"
                },
            ),
        };
        BoundQuery { sql, params }
    }
}

/// `doracost costs` and `/api/v1/costs`: one month's cost per service (all providers;
/// `unallocated` always listed) with its direct and shared parts, its deployments and cost per
/// deployment, and the month-end forecast (the actual for a month already complete), then a
/// total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostsReport {
    /// Whose cost.
    pub scope: Scope,
    /// The month's first day; the month of the bill's cutoff when absent.
    pub month: Option<NaiveDate>,
}

impl CostsReport {
    /// The query, values bound. Rounded to cents for people; full precision for machines.
    pub fn query(&self, detail: Detail) -> BoundQuery {
        let mut params = Vec::new();
        let filter = match &self.scope {
            Scope::Service(service) => {
                params.push(("service".to_owned(), utf8(service)));
                "c.service = $service"
            }
            Scope::Team(team) => {
                params.push(("team".to_owned(), utf8(team)));
                "c.team = $team"
            }
            Scope::Everything => "TRUE",
        };
        let cutoff_month = "(SELECT CAST(date_trunc('month', CAST(cutoff AS TIMESTAMP)) AS DATE) FROM cost_cutoff)";
        let month = match self.month {
            Some(month) => {
                params.push(("month".to_owned(), ScalarValue::Date32(Some(days(month)))));
                "CAST(date_trunc('month', CAST($month AS DATE)) AS DATE)".to_owned()
            }
            None => cutoff_month.to_owned(),
        };
        let rows = format!(
            "WITH m AS (SELECT {month} AS month),
             c AS (
               SELECT k.month, k.service, k.team, sum(k.cost) AS cost, sum(k.direct_cost) AS direct_cost,
                      sum(k.shared_cost) AS shared_cost
               FROM cost_monthly k JOIN m ON k.month = m.month GROUP BY k.month, k.service, k.team
             ),
             r AS (
               SELECT c.month, c.service, c.team, c.cost, c.direct_cost, c.shared_cost,
                      p.deployments, p.cost_per_deployment,
                      CASE WHEN f.month IS NOT NULL THEN f.forecast
                           WHEN c.month < {cutoff_month} THEN c.cost END AS forecast
               FROM c
               LEFT JOIN cost_per_deploy p ON p.service = c.service AND p.month = c.month
               LEFT JOIN cost_forecast f ON f.scope = 'service' AND f.name = c.service AND f.month = c.month
               WHERE {filter}
             ),
             t AS (
               SELECT month, 'total' AS service, CAST(NULL AS VARCHAR) AS team, sum(cost) AS cost,
                      sum(direct_cost) AS direct_cost, sum(shared_cost) AS shared_cost,
                      sum(deployments) AS deployments, CAST(NULL AS DECIMAL(38, 12)) AS cost_per_deployment,
                      sum(forecast) AS forecast
               FROM r GROUP BY month
             ),
             listed AS (
               SELECT *, CASE WHEN service = 'unallocated' THEN 1 ELSE 0 END AS ord FROM r
               UNION ALL SELECT *, 2 AS ord FROM t
             )"
        );
        let sql = match detail {
            Detail::Full => format!(
                "{rows} SELECT CAST(month AS VARCHAR) AS month, service, team, cost, direct_cost, \
                   shared_cost, deployments, cost_per_deployment, forecast FROM listed ORDER BY ord, service"
            ),
            Detail::Summary => format!(
                "{rows} SELECT CAST(month AS VARCHAR) AS month, service, team, \
                   CAST(cost AS DECIMAL(20, 2)) AS cost, CAST(direct_cost AS DECIMAL(20, 2)) AS direct, \
                   CAST(shared_cost AS DECIMAL(20, 2)) AS shared, deployments AS deploys, \
                   CAST(cost_per_deployment AS DECIMAL(20, 2)) AS per_deploy, \
                   CAST(forecast AS DECIMAL(20, 2)) AS forecast \
                 FROM listed ORDER BY ord, service"
            ),
        };
        BoundQuery { sql, params }
    }
}

fn utf8(text: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(text.to_owned()))
}

/// Days since 1970-01-01, Arrow's `Date32`.
fn days(date: NaiveDate) -> i32 {
    arrow::datatypes::Date32Type::from_naive_date(date)
}

/// `/api/v1/scorecard`: `service_scorecard` for one month (the latest month it has when `month`
/// is absent), for one service, one team's services or all.
pub fn scorecard(scope: &Scope, month: Option<NaiveDate>) -> BoundQuery {
    let mut params = Vec::new();
    let mut filters = Vec::new();
    match month {
        Some(month) => {
            params.push(("month".to_owned(), ScalarValue::Date32(Some(days(month)))));
            filters
                .push("month = CAST(date_trunc('month', CAST($month AS DATE)) AS DATE)".to_owned());
        }
        None => filters.push("month = (SELECT max(month) FROM service_scorecard)".to_owned()),
    }
    match scope {
        Scope::Service(service) => {
            params.push(("service".to_owned(), utf8(service)));
            filters.push("service = $service".to_owned());
        }
        Scope::Team(team) => {
            params.push(("team".to_owned(), utf8(team)));
            filters.push("team = $team".to_owned());
        }
        Scope::Everything => {}
    }
    BoundQuery {
        sql: format!(
            "SELECT * FROM service_scorecard WHERE {} ORDER BY team, service",
            filters.join(" AND ")
        ),
        params,
    }
}

/// `/api/v1/budgets`: `budget_status` and `budget_threshold_status` for one month (the bill's
/// current month when `month` is absent).
pub fn budgets(month: Option<NaiveDate>) -> (BoundQuery, BoundQuery) {
    let (filter, params) = match month {
        Some(month) => (
            "month = CAST(date_trunc('month', CAST($month AS DATE)) AS DATE)",
            vec![("month".to_owned(), ScalarValue::Date32(Some(days(month))))],
        ),
        None => ("is_current", Vec::new()),
    };
    (
        BoundQuery {
            sql: format!("SELECT * FROM budget_status WHERE {filter} ORDER BY budget"),
            params: params.clone(),
        },
        BoundQuery {
            sql: format!(
                "SELECT * FROM budget_threshold_status WHERE {filter} ORDER BY budget, kind, percent"
            ),
            params,
        },
    )
}

/// The latest month of the DORA grid that has ended (the "latest complete month").
pub const LATEST_COMPLETE_MONTH: &str = "(SELECT max(period_start) FROM dora_period_grid \
     WHERE period = 'month' AND period_end <= current_date())";

/// `/api/v1/data-quality`: how far one month's figures can be trusted (the latest complete month
/// when `month` is absent). Each query is one section of the answer.
pub fn data_quality(month: Option<NaiveDate>) -> Vec<(&'static str, BoundQuery)> {
    let (month_sql, params) = match month {
        Some(month) => (
            "CAST(date_trunc('month', CAST($month AS DATE)) AS DATE)".to_owned(),
            vec![("month".to_owned(), ScalarValue::Date32(Some(days(month))))],
        ),
        None => (LATEST_COMPLETE_MONTH.to_owned(), Vec::new()),
    };
    let bound = |sql: String| BoundQuery {
        sql,
        params: params.clone(),
    };
    vec![
        (
            // DESIGN §4 "Lead time": deployments whose source listed the commits they shipped.
            "lead_time_coverage",
            bound(format!(
                "SELECT name AS service, CAST(period_start AS VARCHAR) AS month, deployments, \
                   deployments_with_commit_list, \
                   CASE WHEN deployments > 0 THEN CAST(deployments_with_commit_list AS DOUBLE) / deployments END AS coverage, \
                   changes_deployed, negative_lead_times_dropped \
                 FROM dora_monthly WHERE scope IN ('service', 'all') AND period_start = {month_sql} \
                 ORDER BY CASE scope WHEN 'all' THEN 1 ELSE 0 END, name"
            )),
        ),
        (
            // Incidents the attribution could not tie to a deployment (they count for time to
            // restore, never for change failure).
            "incidents",
            bound(format!(
                "SELECT coalesce(service, '(none)') AS service, count(*) AS incidents, \
                   sum(CASE WHEN deployment_id IS NULL THEN 1 ELSE 0 END) AS without_deployment, \
                   sum(CASE WHEN is_open THEN 1 ELSE 0 END) AS open \
                 FROM dora_incidents WHERE started_month = {month_sql} \
                 GROUP BY service ORDER BY 1"
            )),
        ),
        (
            // The bill's lines no cost rule assigned (DESIGN §4 "Cost per service").
            "unallocated",
            bound(format!(
                "SELECT provider, CAST(month AS VARCHAR) AS month, currency, bill, unallocated, \
                   CASE WHEN bill <> CAST(0 AS DECIMAL(38, 12)) \
                        THEN CAST(unallocated AS DOUBLE) / CAST(bill AS DOUBLE) END AS unallocated_share \
                 FROM cost_reconciliation WHERE month = {month_sql} ORDER BY provider, currency"
            )),
        ),
        ("sources", bound(LAST_INGEST_PER_SOURCE.to_owned())),
    ]
}

/// When rows from each source last reached the lake.
pub const LAST_INGEST_PER_SOURCE: &str = "SELECT source, max(ingested_at) AS last_ingested_at FROM (\
     SELECT source, ingested_at FROM deployments UNION ALL SELECT source, ingested_at FROM changes \
     UNION ALL SELECT source, ingested_at FROM deployment_changes UNION ALL SELECT source, ingested_at FROM incidents \
     UNION ALL SELECT source, ingested_at FROM costs UNION ALL SELECT source, ingested_at FROM provider_forecasts) x \
     GROUP BY source ORDER BY source";
