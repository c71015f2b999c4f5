//! `doracost report`: the monthly infra review as one file for a wiki or an email — the page as
//! self-contained HTML (charts inline, no link back to a server needed), or a Markdown summary
//! with the tiles as a table and the review's tables beneath.

use std::fmt::Write as _;

use chrono::NaiveDate;
use model::Config;
use query::Engine;

use crate::cells;
use crate::chart::{self, ChartKind};
use crate::page::{PageContext, render};
use crate::run::{PanelResult, latest_complete_month, run_page};
use crate::selection::Selection;
use crate::spec::{Catalog, PanelKind};

/// The file's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// One HTML file, charts inline.
    Html,
    /// A Markdown summary.
    Markdown,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No dashboard of that name (the review is `review`).
    #[error("no dashboard `{0}`")]
    NoDashboard(String),
    /// The lake cannot be read.
    #[error("{0}")]
    Query(String),
    /// A choice is not valid.
    #[error("{0}")]
    Selection(#[from] crate::selection::SelectionError),
}

/// Dashboard `name` (the infra review: `review`) for `month` (the latest complete month when
/// `None`) as one file. Panels whose query fails show their error in place, as on the page.
pub async fn report(
    engine: &Engine,
    catalog: &Catalog,
    config: &Config,
    name: &str,
    month: Option<NaiveDate>,
    format: ReportFormat,
) -> Result<String, ReportError> {
    let dashboard = catalog
        .get(name)
        .ok_or_else(|| ReportError::NoDashboard(name.to_owned()))?;
    let default = match month {
        Some(month) => month,
        None => latest_complete_month(engine)
            .await
            .map_err(ReportError::Query)?
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
    };
    let pairs = month
        .map(|m| vec![("month".to_owned(), m.format("%Y-%m").to_string())])
        .unwrap_or_default();
    let selection = Selection::parse(&pairs, config, default)?;
    let results = run_page(engine, dashboard, &selection).await;
    let currency = crate::page::currency(config);
    let refreshed = format!(
        "Made {} from lake version {}",
        chrono::Utc::now()
            .with_timezone(&config.reporting.time_zone.0)
            .format("%Y-%m-%d %H:%M %Z"),
        engine
            .lake_version()
            .map_or_else(|| "(none)".to_owned(), |v| v.to_string())
    );
    Ok(match format {
        ReportFormat::Html => {
            let context = PageContext {
                catalog,
                config,
                currency,
                refreshed,
                standalone: true,
            };
            render(&context, dashboard, &selection, &results)
        }
        ReportFormat::Markdown => markdown(
            &dashboard.title,
            &selection,
            dashboard.panels.iter().zip(&results),
            config,
            &currency,
            &refreshed,
        ),
    })
}

fn markdown<'a>(
    title: &str,
    selection: &Selection,
    panels: impl Iterator<Item = (&'a crate::spec::Panel, &'a PanelResult)> + Clone,
    config: &Config,
    currency: &str,
    refreshed: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {title}: {}\n", selection.month.format("%B %Y"));
    let _ = writeln!(out, "_{refreshed}_\n");
    for (panel, result) in panels.clone() {
        if panel.kind == PanelKind::Summary
            && let Ok(rows) = &result.outcome
        {
            for sentence in crate::page::summary_sentences(rows, currency) {
                let _ = writeln!(out, "- {sentence}");
            }
            out.push('\n');
        }
    }
    out.push_str("| Metric | Value | Level | Target | Last month |\n|---|---|---|---|---|\n");
    for (panel, result) in panels.clone() {
        if panel.kind != PanelKind::Chart(ChartKind::Stat) {
            continue;
        }
        let Ok(rows) = &result.outcome else {
            let _ = writeln!(out, "| {} | query failed | | | |", panel.title);
            continue;
        };
        let show = |v: Option<f64>| {
            v.map_or_else(String::new, |v| {
                chart::format_value(v, panel.unit, currency)
            })
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            panel.title,
            cells::first_number(rows, "value").map_or_else(
                || "no data".to_owned(),
                |v| chart::format_value(v, panel.unit, currency)
            ),
            cells::first_text(rows, "level").unwrap_or_default(),
            show(cells::first_number(rows, "target").or(panel.target)),
            show(cells::first_number(rows, "previous")),
        );
    }
    for (panel, result) in panels {
        if panel.kind != PanelKind::Chart(ChartKind::Table) {
            continue;
        }
        let _ = writeln!(out, "\n## {}\n", panel.title);
        let rows = match &result.outcome {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => {
                out.push_str("No data for this selection.\n");
                continue;
            }
            Err(message) => {
                let _ = writeln!(out, "This panel's query failed: `{message}`");
                continue;
            }
        };
        let Ok(cells) = cells::formatted(rows, config.reporting.time_zone.0.name(), 20) else {
            continue;
        };
        let names: Vec<String> = rows
            .schema
            .fields()
            .iter()
            .map(|f| f.name().replace('_', " "))
            .collect();
        let _ = writeln!(out, "| {} |", names.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(names.len()));
        for row in &cells {
            let row: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        if rows.len() > cells.len() {
            let _ = writeln!(out, "\n… {} more rows.", rows.len() - cells.len());
        }
    }
    out
}
