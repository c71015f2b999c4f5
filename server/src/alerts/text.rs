//! What an alert says: the subject, a plain-text and an HTML body with the same content, and the
//! charts the HTML shows inline (PNG, by content id). Built from the lake at send time, so a
//! retried alert shows the numbers of its send.

use std::fmt::Write as _;

use chrono::{Months, NaiveDate};
use model::Config;
use model::schema::MONEY_SCALE;
use query::Engine;

use super::rows::AlertRow;

/// One message, ready for any channel.
#[derive(Debug, Clone)]
pub struct Message {
    /// The subject line.
    pub subject: String,
    /// The plain-text body (also what Slack gets).
    pub text: String,
    /// The HTML body; its images are `cid:` references to `images`.
    pub html: String,
    /// (content id, PNG bytes).
    pub images: Vec<(String, Vec<u8>)>,
}

/// `value` (at the lake's money scale) rounded half away from zero to cents, with thousands
/// separators and the currency code: `USD 1,234.57`.
pub fn money(value: i128, currency: &str) -> String {
    let unit = 10i128.pow(MONEY_SCALE as u32 - 2);
    let cents = (value.abs() + unit / 2) / unit;
    let sign = if value < 0 && cents > 0 { "-" } else { "" };
    let whole = grouped(&(cents / 100).to_string());
    format!("{sign}{currency} {whole}.{:02}", cents % 100)
}

/// A decimal as text with thousands separators: `1070.40` → `1,070.40`.
pub fn grouped(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let (whole, fraction) = rest
        .split_once('.')
        .map_or((rest, None), |(w, f)| (w, Some(f)));
    if !whole.chars().all(|c| c.is_ascii_digit()) {
        return number.to_owned();
    }
    let mut out = String::from(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// HTML-escaped text.
pub fn esc(text: &str) -> String {
    dashboards::page::esc(text)
}

/// Rows of a query as text cells (each row's columns in order), for lists in messages.
async fn cells(
    engine: &Engine,
    query: &query::reports::BoundQuery,
) -> Result<Vec<Vec<String>>, String> {
    let (schema, batches) = engine.query_bound(query).await.map_err(|e| e.to_string())?;
    let rows = dashboards::Rows { schema, batches };
    dashboards::cells::formatted(&rows, "UTC", 50)
}

fn bound(
    sql: &str,
    params: Vec<(&str, datafusion::scalar::ScalarValue)>,
) -> query::reports::BoundQuery {
    query::reports::BoundQuery {
        sql: sql.to_owned(),
        params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

fn date_value(date: NaiveDate) -> datafusion::scalar::ScalarValue {
    datafusion::scalar::ScalarValue::Date32(Some(arrow::datatypes::Date32Type::from_naive_date(
        date,
    )))
}

/// The SQL condition selecting a budget's scope in a view with `service` and `team` columns.
fn scope_filter(
    config: &Config,
    budget: &str,
) -> (String, Vec<(&'static str, datafusion::scalar::ScalarValue)>) {
    match config.budgets.iter().find(|b| b.name == budget) {
        // A tag budget's lines are not split by service or team: no row of those views.
        Some(b) if b.scope.tag.is_some() => ("false".into(), vec![]),
        Some(b) => match (&b.scope.service, &b.scope.team) {
            (Some(s), _) => (
                "service = $scope".into(),
                vec![("scope", s.as_str().into())],
            ),
            (None, Some(t)) => ("team = $scope".into(), vec![("scope", t.as_str().into())]),
            (None, None) => ("true".into(), vec![]),
        },
        None => ("false".into(), vec![]),
    }
}

/// The page a budget's alert links to, with the month chosen.
fn budget_page(config: &Config, budget: &str, month: &str) -> String {
    let base = match config.budgets.iter().find(|b| b.name == budget) {
        Some(b) => match (&b.scope.service, &b.scope.team) {
            (Some(s), _) => format!("/services/{}", dashboards::selection::encode(s)),
            (None, Some(t)) => format!("/teams/{}", dashboards::selection::encode(t)),
            (None, None) => "/costs".into(),
        },
        None => "/costs".into(),
    };
    format!("{base}?month={month}")
}

/// A panel of a dashboard drawn as PNG for `pairs` (query-string choices), or why not.
pub async fn panel_png(
    engine: &Engine,
    config: &Config,
    catalog: &dashboards::Catalog,
    dashboard: &str,
    panel: &str,
    pairs: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let dashboard = catalog
        .get(dashboard)
        .ok_or_else(|| format!("no dashboard `{dashboard}`"))?;
    let panel = dashboard
        .panel(panel)
        .ok_or_else(|| format!("no panel `{panel}`"))?;
    let dashboards::PanelKind::Chart(kind) = panel.kind else {
        return Err(format!("panel `{}` is not a chart", panel.id));
    };
    let month = dashboards::latest_complete_month(engine)
        .await?
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let selection =
        dashboards::Selection::parse(pairs, config, month).map_err(|e| e.to_string())?;
    let result = dashboards::run_panel(engine, panel, &selection).await;
    let rows = result.outcome?;
    let currency = dashboards::page::currency(config);
    let spec = dashboards::page::chart_spec(panel, kind, config, &currency);
    dashboards::chart::png(&spec, &rows.schema, &rows.batches).map_err(|e| e.to_string())
}

/// A dashboard panel's rows as text (formatted as pages show them), for `pairs`' choices with
/// `month` shown.
async fn panel_rows(
    engine: &Engine,
    config: &Config,
    catalog: &dashboards::Catalog,
    (dashboard, panel): (&str, &str),
    pairs: &[(String, String)],
    month: NaiveDate,
) -> Result<Vec<Vec<String>>, String> {
    let dashboard = catalog
        .get(dashboard)
        .ok_or_else(|| format!("no dashboard `{dashboard}`"))?;
    let panel = dashboard
        .panel(panel)
        .ok_or_else(|| format!("no panel `{panel}`"))?;
    let selection =
        dashboards::Selection::parse(pairs, config, month).map_err(|e| e.to_string())?;
    let rows = dashboards::run_panel(engine, panel, &selection)
        .await
        .outcome?;
    dashboards::cells::formatted(&rows, config.reporting.time_zone.name(), 10)
}

/// A budget alert: where the budget stands, the chart of its burn, what moved (services and
/// cloud services against the same days of last month), the deployments in the month, the link.
pub async fn budget_message(
    engine: &Engine,
    config: &Config,
    catalog: &dashboards::Catalog,
    row: &AlertRow,
    public_url: &str,
) -> Result<Message, String> {
    let month = NaiveDate::parse_from_str(&format!("{}-01", row.period), "%Y-%m-%d")
        .map_err(|_| format!("alert {}: period `{}` is not YYYY-MM", row.key, row.period))?;
    let previous = month - Months::new(1);
    let budget = config.budgets.iter().find(|b| b.name == row.budget);
    let currency = budget.map_or("USD", |b| b.currency.as_str());
    let status = cells(
        engine,
        &bound(
            "SELECT CAST(actual AS DECIMAL(38, 2)) AS spent, CAST(forecast AS DECIMAL(38, 2)) AS projected, \
             CAST(monthly_amount AS DECIMAL(38, 2)) AS amount, round(actual_pct, 1) AS spent_pct, \
             round(forecast_pct, 1) AS projected_pct, CAST(as_of AS VARCHAR) AS cutoff \
             FROM budget_status WHERE budget = $budget AND month = $month",
            vec![("budget", row.budget.as_str().into()), ("month", date_value(month))],
        ),
    )
    .await?;
    let (filter, mut params) = scope_filter(config, &row.budget);
    params.push(("month", date_value(month)));
    params.push(("previous", date_value(previous)));
    // Month to date against the same days of the month before.
    let movers = |by: &str| {
        format!(
            "WITH c AS (SELECT max(day) AS last FROM cost_daily WHERE month = $month), \
             x AS (SELECT coalesce({by}, '(none)') AS what, \
                     sum(CASE WHEN month = $month THEN cost ELSE 0 END) AS now, \
                     sum(CASE WHEN month = $previous AND day - $previous <= c.last - $month THEN cost ELSE 0 END) AS before \
                   FROM cost_daily CROSS JOIN c WHERE month IN ($month, $previous) AND {filter} GROUP BY 1) \
             SELECT what, CAST(now AS DECIMAL(38, 2)) AS this_month, CAST(now - before AS DECIMAL(38, 2)) AS change FROM x \
             WHERE now <> before ORDER BY abs(now - before) DESC, what LIMIT 5"
        )
    };
    let signed = |mut rows: Vec<Vec<String>>| {
        for r in &mut rows {
            r[1] = grouped(&r[1]);
            r[2] = if r[2].starts_with('-') {
                grouped(&r[2])
            } else {
                format!("+{}", grouped(&r[2]))
            };
        }
        rows
    };
    let services = signed(cells(engine, &bound(&movers("service"), params.clone())).await?);
    let clouds = match budget.and_then(|b| b.scope.tag_pair()) {
        // A tag budget: the cloud services of the bill's lines carrying the tag.
        Some((key, value)) => {
            let sql = "WITH l AS (SELECT day, CAST(date_trunc('month', CAST(day AS TIMESTAMP)) AS DATE) AS month, \
                         cloud_service, cost FROM cost_lines WHERE map_extract(tags, $tag_key)[1] = $tag_value), \
                       c AS (SELECT max(day) AS last FROM l WHERE month = $month), \
                       x AS (SELECT coalesce(cloud_service, '(none)') AS what, \
                               sum(CASE WHEN month = $month THEN cost ELSE 0 END) AS now, \
                               sum(CASE WHEN month = $previous AND day - $previous <= c.last - $month THEN cost ELSE 0 END) AS before \
                             FROM l CROSS JOIN c WHERE month IN ($month, $previous) GROUP BY 1) \
                       SELECT what, CAST(now AS DECIMAL(38, 2)) AS this_month, CAST(now - before AS DECIMAL(38, 2)) AS change FROM x \
                       WHERE now <> before ORDER BY abs(now - before) DESC, what LIMIT 5";
            let tag_params = vec![
                ("tag_key", key.into()),
                ("tag_value", value.into()),
                ("month", date_value(month)),
                ("previous", date_value(previous)),
            ];
            signed(cells(engine, &bound(sql, tag_params)).await?)
        }
        None => signed(cells(engine, &bound(&movers("cloud_service"), params.clone())).await?),
    };
    let deployments = cells(
        engine,
        &bound(
            &format!(
                "SELECT service, CAST(finished_at AS VARCHAR) AS finished, commit_sha, CASE WHEN is_failed THEN 'failed' ELSE 'ok' END AS outcome \
                 FROM dora_deployments WHERE month = $month AND {filter} ORDER BY finished_at DESC, service LIMIT 10"
            ),
            params.clone(),
        ),
    )
    .await?;
    // Which deployments moved the cost: the review's panel for the budget's service or team
    // (the day each mover's daily cost stepped most, and its deployments in the 3 days up to it).
    let scope_pairs: Option<Vec<(String, String)>> = match budget.map(|b| &b.scope) {
        Some(scope) if scope.tag.is_some() => None,
        Some(scope) => Some(match (&scope.service, &scope.team) {
            (Some(s), _) => vec![("service".to_owned(), s.clone())],
            (None, Some(t)) => vec![("team".to_owned(), t.clone())],
            _ => vec![],
        }),
        None => None,
    };
    let moved = match &scope_pairs {
        Some(pairs) => {
            panel_rows(engine, config, catalog, ("review", "cost-movers-deployments"), pairs, month)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(alert = %row.key, error = %e, "the cost movers' deployments were left out");
                    Vec::new()
                })
        }
        None => Vec::new(),
    };
    let link = format!(
        "{public_url}{}",
        budget_page(config, &row.budget, &row.period)
    );
    let pairs = vec![("budget".to_owned(), row.budget.clone())];
    let mut images = Vec::new();
    let chart = panel_png(engine, config, catalog, "costs", "budget-burn", &pairs).await;
    let mut text = String::new();
    let mut html = String::new();
    let _ = writeln!(text, "{}\n", row.subject);
    let _ = write!(
        html,
        "<html><body style=\"font-family:sans-serif\"><h1 style=\"font-size:1.2em\">{}</h1>",
        esc(&row.subject)
    );
    if let Some(s) = status.first() {
        let line = format!(
            "Spent {currency} {} of {currency} {} ({} %) as of {}; forecast to month end {currency} {} ({} %).",
            grouped(&s[0]),
            grouped(&s[2]),
            s[3],
            s[5],
            grouped(&s[1]),
            s[4]
        );
        let _ = writeln!(text, "{line}");
        let _ = write!(html, "<p>{}</p>", esc(&line));
    }
    match chart {
        Ok(png) => {
            images.push(("budget-burn".to_owned(), png));
            let _ = write!(
                html,
                "<p><img src=\"cid:budget-burn\" alt=\"Budget burn of {}: cumulative spend this month, the forecast to month end and the budget line\" width=\"540\"></p>",
                esc(&row.budget)
            );
        }
        Err(e) => {
            tracing::warn!(alert = %row.key, error = %e, "the budget burn chart was left out")
        }
    }
    let mut list = |title: &str, header: &[&str], rows: &[Vec<String>]| {
        let _ = writeln!(text, "\n{title}:");
        let _ = write!(html, "<h2 style=\"font-size:1em\">{}</h2>", esc(title));
        if rows.is_empty() {
            let _ = writeln!(text, "  (none)");
            html.push_str("<p>(none)</p>");
            return;
        }
        html.push_str("<table cellpadding=\"4\"><tr>");
        for h in header {
            let _ = write!(html, "<th scope=\"col\" align=\"left\">{}</th>", esc(h));
        }
        html.push_str("</tr>");
        for r in rows {
            let _ = writeln!(text, "  - {}", r.join(" | "));
            html.push_str("<tr>");
            for c in r {
                let _ = write!(html, "<td>{}</td>", esc(c));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
    };
    let change = format!("change vs same days last month ({currency})");
    list(
        "Top cost drivers: services",
        &["service", &format!("this month ({currency})"), &change],
        &services,
    );
    list(
        "Top cost drivers: cloud services",
        &[
            "cloud service",
            &format!("this month ({currency})"),
            &change,
        ],
        &clouds,
    );
    if scope_pairs.is_some() {
        list(
            "What moved the cost: the day each service's daily cost stepped most, and its deployments in the 3 days up to it",
            &[
                "service",
                &format!("change vs last month ({currency})"),
                "stepped on",
                "daily step",
                "deployments",
                "deployed",
            ],
            &moved,
        );
    }
    list(
        "Deployments this month",
        &["service", "finished", "commit", "outcome"],
        &deployments,
    );
    let _ = writeln!(text, "\nDashboard: {link}");
    let _ = write!(
        html,
        "<p><a href=\"{}\">Open the dashboard</a></p></body></html>",
        esc(&link)
    );
    Ok(Message {
        subject: row.subject.clone(),
        text,
        html,
        images,
    })
}

/// One recipient's digest of anomalies: each with its impact, and the service's deployments in
/// the three days up to it.
pub async fn digest_message(
    engine: &Engine,
    rows: &[AlertRow],
    currency: &str,
    public_url: &str,
) -> Result<Message, String> {
    let days: Vec<&str> = rows.iter().map(|r| r.period.as_str()).collect();
    let first = days.iter().min().copied().unwrap_or_default();
    let last = days.iter().max().copied().unwrap_or_default();
    let subject = if first == last {
        format!("Cost anomalies: {} on {first}", rows.len())
    } else {
        format!("Cost anomalies: {} from {first} to {last}", rows.len())
    };
    let link = format!("{public_url}/costs");
    let mut text = format!("{subject}\n\n");
    let mut html = format!(
        "<html><body style=\"font-family:sans-serif\"><h1 style=\"font-size:1.2em\">{}</h1><p>Days whose cost departed from its trailing baseline.</p><ul>",
        esc(&subject)
    );
    for row in rows {
        let (scope, name) = row.budget.split_once(':').unwrap_or(("all", "all"));
        let impact = row.value.map_or_else(|| "?".into(), |v| money(v, currency));
        let line = format!(
            "{scope} {name} on {}: {impact} ({:+.0} %) against its baseline",
            row.period, row.threshold
        );
        let _ = writeln!(text, "- {line}");
        let _ = write!(html, "<li>{}", esc(&line));
        if scope == "service"
            && let Ok(day) = NaiveDate::parse_from_str(&row.period, "%Y-%m-%d")
        {
            let deployed = cells(
                engine,
                &bound(
                    "SELECT CAST(finished_at AS VARCHAR) AS finished, commit_sha FROM dora_deployments \
                     WHERE service = $service AND day BETWEEN $from AND $day ORDER BY finished_at LIMIT 10",
                    vec![
                        ("service", name.into()),
                        ("from", date_value(day - chrono::Days::new(2))),
                        ("day", date_value(day)),
                    ],
                ),
            )
            .await?;
            if !deployed.is_empty() {
                let list: Vec<String> = deployed.iter().map(|d| d.join(" ")).collect();
                let _ = writeln!(
                    text,
                    "  deployments in the 3 days up to it: {}",
                    list.join("; ")
                );
                let _ = write!(
                    html,
                    "<br>deployments in the 3 days up to it: {}",
                    esc(&list.join("; "))
                );
            }
        }
        html.push_str("</li>");
    }
    let _ = writeln!(text, "\nDashboard: {link}");
    let _ = write!(
        html,
        "</ul><p><a href=\"{}\">Open the costs dashboard</a></p></body></html>",
        esc(&link)
    );
    Ok(Message {
        subject,
        text,
        html,
        images: Vec::new(),
    })
}

/// A scheduled report: the dashboard's summary in words, its tiles and charts as inline PNGs, and
/// the link to the page, for the latest complete month.
pub async fn report_message(
    engine: &Engine,
    config: &Config,
    catalog: &dashboards::Catalog,
    row: &AlertRow,
    dashboard_name: &str,
    public_url: &str,
) -> Result<Message, String> {
    let dashboard = catalog
        .get(dashboard_name)
        .ok_or_else(|| format!("no dashboard `{dashboard_name}`"))?;
    // The month before the run's scheduled day (in the reporting zone): the review on the first
    // working day of August is July's.
    let scheduled = chrono::DateTime::parse_from_rfc3339(&row.period)
        .map_err(|_| {
            format!(
                "report {}: run time `{}` is not RFC 3339",
                row.budget, row.period
            )
        })?
        .with_timezone(&config.reporting.time_zone.0)
        .date_naive();
    let month = dashboards::selection::first_of_month(scheduled) - Months::new(1);
    let selection = dashboards::Selection::parse(&[], config, month).map_err(|e| e.to_string())?;
    let results = dashboards::run_page(engine, dashboard, &selection).await;
    let currency = dashboards::page::currency(config);
    let month_text = month.format("%Y-%m").to_string();
    let subject = format!("{} for {month_text}", dashboard.title);
    let link = format!(
        "{public_url}{}?month={month_text}",
        dashboards::page_path(dashboard_name, &selection)
    );
    let mut text = format!("{subject}\n\n");
    let mut html = format!(
        "<html><body style=\"font-family:sans-serif\"><h1 style=\"font-size:1.2em\">{}</h1>",
        esc(&subject)
    );
    let mut images = Vec::new();
    for (panel, result) in dashboard.panels.iter().zip(results) {
        let Ok(rows) = result.outcome else {
            continue;
        };
        match panel.kind {
            dashboards::PanelKind::Summary => {
                let sentences = dashboards::page::summary_sentences(&rows, &currency);
                html.push_str("<ul>");
                for s in sentences {
                    let _ = writeln!(text, "- {s}");
                    let _ = write!(html, "<li>{}</li>", esc(&s));
                }
                html.push_str("</ul>");
            }
            dashboards::PanelKind::Chart(dashboards::chart::ChartKind::Table) => {}
            dashboards::PanelKind::Chart(kind) => {
                let spec = dashboards::page::chart_spec(panel, kind, config, &currency);
                if let Ok(png) = dashboards::chart::png(&spec, &rows.schema, &rows.batches) {
                    let cid = format!("{}", panel.id);
                    let _ = write!(
                        html,
                        "<img src=\"cid:{cid}\" alt=\"{}\" width=\"{}\" style=\"margin:4px\">",
                        esc(&spec.description),
                        spec.width.min(540)
                    );
                    images.push((cid, png));
                }
            }
        }
    }
    let _ = writeln!(text, "\nThe whole review: {link}");
    let _ = write!(
        html,
        "<p><a href=\"{}\">Open the review</a> (report {})</p></body></html>",
        esc(&link),
        esc(&row.budget)
    );
    Ok(Message {
        subject,
        text,
        html,
        images,
    })
}

/// `doracost alerts send-test`: a message that says what it is.
pub fn test_message(from: &str) -> Message {
    let subject = "doracost test message".to_owned();
    let text = format!(
        "This is a test message from doracost ({from}). If you can read it, the SMTP settings work.\n"
    );
    let html = format!("<html><body><p>{}</p></body></html>", esc(&text));
    Message {
        subject,
        text,
        html,
        images: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_rounds_half_away_from_zero_to_cents() {
        let unit = 10i128.pow(MONEY_SCALE as u32);
        assert_eq!(money(1_234_567 * unit / 1000, "USD"), "USD 1,234.57");
        assert_eq!(money(-5 * unit / 1000, "EUR"), "-EUR 0.01");
        assert_eq!(money(4 * unit / 1000, "EUR"), "EUR 0.00");
        assert_eq!(money(1_000_000 * unit, "USD"), "USD 1,000,000.00");
    }

    #[test]
    fn decimals_get_thousands_separators() {
        assert_eq!(grouped("1070.40"), "1,070.40");
        assert_eq!(grouped("-1234567.5"), "-1,234,567.5");
        assert_eq!(grouped("999"), "999");
        assert_eq!(grouped("n/a"), "n/a");
    }
}
