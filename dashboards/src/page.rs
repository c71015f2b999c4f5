//! A dashboard as one HTML page: usable without JavaScript (filters are a plain GET form), charts
//! as inline SVG, tables with headers, each number beside the SQL that produced it, print CSS so
//! the review prints or saves to PDF cleanly. The same page is the server's and, standalone, the
//! `doracost report` file.

use std::fmt::Write as _;

use model::Config;

use crate::cells;
use crate::chart::{self, ChartKind, ChartSpec, Unit};
use crate::run::{PanelResult, Rows};
use crate::selection::{Selection, encode};
use crate::spec::{Catalog, Dashboard, Filter, Panel, PanelKind, Width};

/// The most rows a table panel shows; the rest are counted.
const TABLE_ROWS: usize = 50;

/// What a page is drawn with, beside its panels' rows.
pub struct PageContext<'a> {
    /// Every dashboard (the navigation).
    pub catalog: &'a Catalog,
    /// Services and teams (the form's choices), the reporting time zone.
    pub config: &'a Config,
    /// The currency money is shown in.
    pub currency: String,
    /// "Last refreshed …" with the lake version the numbers come from.
    pub refreshed: String,
    /// A file on its own (`doracost report`): no navigation or form, which need the server.
    pub standalone: bool,
}

/// The path of dashboard `name`'s page: the infra review at `/`, services and teams under their
/// names, the rest at `/dashboards/{name}`.
pub fn page_path(name: &str, selection: &Selection) -> String {
    match (name, &selection.service, &selection.team) {
        ("review", _, _) => "/".to_owned(),
        ("costs", _, _) => "/costs".to_owned(),
        ("data-quality", _, _) => "/data-quality".to_owned(),
        ("service", Some(service), _) => format!("/services/{}", encode(service)),
        ("team", _, Some(team)) => format!("/teams/{}", encode(team)),
        _ => format!("/dashboards/{name}"),
    }
}

/// The currency money is shown in: the budgets' (the bills' usually), else US dollars.
pub fn currency(config: &Config) -> String {
    config
        .budgets
        .first()
        .map_or_else(|| "USD".to_owned(), |b| b.currency.clone())
}

/// How big a panel's chart is drawn, by its width on the page.
pub fn chart_size(panel: &Panel) -> (u32, u32) {
    match (panel.kind, panel.width) {
        (PanelKind::Chart(ChartKind::Stat), _) | (_, Width::Tile) => (320, 160),
        (PanelKind::Chart(ChartKind::Calendar), _) => (1100, 220),
        (_, Width::Full) => (1100, 340),
        (_, Width::Half) => (540, 300),
        (_, Width::Third) => (360, 260),
    }
}

/// The chart spec of `panel` as the page and the chart routes draw it.
pub fn chart_spec(panel: &Panel, kind: ChartKind, config: &Config, currency: &str) -> ChartSpec {
    let (width, height) = chart_size(panel);
    ChartSpec {
        kind,
        title: panel.title.clone(),
        description: if panel.description.is_empty() {
            panel.title.clone()
        } else {
            panel.description.clone()
        },
        unit: panel.unit,
        currency: currency.to_owned(),
        target: panel.target,
        thresholds: panel.thresholds(),
        time_zone: config.reporting.time_zone.0,
        width,
        height,
    }
}

/// The whole page.
pub fn render(
    context: &PageContext<'_>,
    dashboard: &Dashboard,
    selection: &Selection,
    results: &[PanelResult],
) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let month = selection.month.format("%B %Y").to_string();
    let scope = match (&selection.service, &selection.team) {
        (Some(service), _) => format!(" · {service}"),
        (None, Some(team)) => format!(" · team {team}"),
        _ => String::new(),
    };
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}{scope} · {month} · doracost</title><style>{STYLE}</style></head><body>",
        title = esc(&dashboard.title),
        scope = esc(&scope),
    );
    if !context.standalone {
        navigation(&mut html, context, dashboard, selection);
    }
    let _ = write!(
        html,
        "<main><header class=\"page\"><h1>{title}<span class=\"scope\">{scope} · {month}</span></h1>",
        title = esc(&dashboard.title),
        scope = esc(&scope),
    );
    if !dashboard.description.is_empty() {
        let _ = write!(
            html,
            "<p class=\"lede\">{}</p>",
            esc(&dashboard.description)
        );
    }
    let _ = write!(
        html,
        "<p class=\"refreshed\">{}</p></header>",
        esc(&context.refreshed)
    );
    if !context.standalone && !dashboard.filters.is_empty() {
        form(&mut html, context, dashboard, selection);
    }
    html.push_str("<div class=\"panels\">");
    for (panel, result) in dashboard.panels.iter().zip(results) {
        panel_html(&mut html, context, dashboard, selection, panel, result);
    }
    html.push_str("</div></main></body></html>\n");
    html
}

fn navigation(
    html: &mut String,
    context: &PageContext<'_>,
    current: &Dashboard,
    selection: &Selection,
) {
    // Links keep the month chosen, so moving between pages stays on one review.
    let keep = if selection.month_chosen {
        format!("?month={}", selection.month.format("%Y-%m"))
    } else {
        String::new()
    };
    html.push_str("<nav aria-label=\"Dashboards\"><a class=\"brand\" href=\"/\">doracost</a><ul>");
    // The review first, then the other built-in pages, then a team's own.
    let order = |name: &str| match name {
        "review" => 0,
        "costs" => 1,
        "data-quality" => 2,
        _ => 3,
    };
    let mut dashboards: Vec<&Dashboard> = context.catalog.iter().collect();
    dashboards.sort_by_key(|d| order(&d.name));
    for dashboard in dashboards {
        // The service and team pages are reached from the names in tables and the form.
        if matches!(dashboard.name.as_str(), "service" | "team") {
            continue;
        }
        let path = page_path(
            &dashboard.name,
            &Selection {
                service: None,
                team: None,
                budget: None,
                ..selection.clone()
            },
        );
        let current_attr = if dashboard.name == current.name {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<li><a href=\"{path}{keep}\"{current_attr}>{}</a></li>",
            esc(&dashboard.title)
        );
    }
    html.push_str("</ul></nav>");
}

fn form(
    html: &mut String,
    context: &PageContext<'_>,
    dashboard: &Dashboard,
    selection: &Selection,
) {
    let _ = write!(
        html,
        "<form class=\"filters\" method=\"get\" action=\"{}\" aria-label=\"Filters\">",
        page_path(&dashboard.name, selection)
    );
    for filter in &dashboard.filters {
        match filter {
            Filter::Month => {
                let _ = write!(
                    html,
                    "<label>Month <input type=\"month\" name=\"month\" value=\"{}\"></label>",
                    selection.month.format("%Y-%m")
                );
            }
            Filter::Service => {
                let names: Vec<&str> = context
                    .config
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                select(
                    html,
                    "service",
                    "Service",
                    &names,
                    selection.service.as_deref(),
                );
            }
            Filter::Team => {
                let teams = context.config.teams();
                select(html, "team", "Team", &teams, selection.team.as_deref());
            }
            Filter::Period => {
                select(
                    html,
                    "period",
                    "Period",
                    &["day", "week", "month"],
                    Some(selection.period.as_str()),
                );
            }
            Filter::Range => {
                let _ = write!(
                    html,
                    "<label>From <input type=\"date\" name=\"from\" value=\"{}\"></label>\
                     <label>To <input type=\"date\" name=\"to\" value=\"{}\"></label>",
                    selection.from, selection.to
                );
            }
        }
    }
    html.push_str("<button type=\"submit\">Show</button></form>");
}

fn select(html: &mut String, name: &str, label: &str, options: &[&str], chosen: Option<&str>) {
    let _ = write!(html, "<label>{label} <select name=\"{name}\">");
    if name != "period" {
        html.push_str("<option value=\"\">all</option>");
    }
    for option in options {
        let selected = if Some(*option) == chosen {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<option value=\"{v}\"{selected}>{v}</option>",
            v = esc(option)
        );
    }
    html.push_str("</select></label>");
}

fn panel_html(
    html: &mut String,
    context: &PageContext<'_>,
    dashboard: &Dashboard,
    selection: &Selection,
    panel: &Panel,
    result: &PanelResult,
) {
    let width = match (panel.kind, panel.width) {
        (PanelKind::Chart(ChartKind::Stat), _) => "tile",
        (_, Width::Tile) => "tile",
        (_, Width::Third) => "third",
        (_, Width::Half) => "half",
        (_, Width::Full) => "full",
    };
    let _ = write!(
        html,
        "<section class=\"panel {width}\" id=\"panel-{id}\" data-panel=\"{id}\" aria-labelledby=\"title-{id}\">\
         <h2 id=\"title-{id}\">{title}</h2>",
        id = panel.id,
        title = esc(&panel.title),
    );
    if !panel.description.is_empty() && !matches!(panel.kind, PanelKind::Chart(ChartKind::Stat)) {
        let _ = write!(html, "<p class=\"desc\">{}</p>", esc(&panel.description));
    }
    match &result.outcome {
        Err(message) => failed(html, message),
        Ok(rows) => match panel.kind {
            PanelKind::Summary => summary(html, context, rows),
            PanelKind::Chart(ChartKind::Stat) => tile(html, context, panel, rows),
            PanelKind::Chart(ChartKind::Table) => table(html, context, rows),
            PanelKind::Chart(kind) => {
                let spec = chart_spec(panel, kind, context.config, &context.currency);
                match chart::svg(&spec, &rows.schema, &rows.batches) {
                    Ok(svg) => {
                        let _ = write!(
                            html,
                            "<figure class=\"chart\" data-chart=\"{}\">{svg}</figure>",
                            panel.id
                        );
                    }
                    Err(e) => failed(html, &e.to_string()),
                }
            }
        },
    }
    show_sql(html, context, dashboard, selection, panel, result);
    html.push_str("</section>");
}

fn failed(html: &mut String, message: &str) {
    let _ = write!(
        html,
        "<div class=\"panel-error\" role=\"alert\"><strong>This panel's query failed.</strong> <code>{}</code></div>",
        esc(message)
    );
}

fn show_sql(
    html: &mut String,
    context: &PageContext<'_>,
    dashboard: &Dashboard,
    selection: &Selection,
    panel: &Panel,
    result: &PanelResult,
) {
    html.push_str("<details class=\"sql\"><summary>Show SQL</summary><pre><code>");
    html.push_str(&esc(result.query.sql.trim()));
    html.push_str("</code></pre>");
    if !result.query.params.is_empty() {
        html.push_str("<p class=\"params\">with ");
        let values: Vec<String> = result
            .query
            .params
            .iter()
            .map(|(name, value)| {
                let shown = if value.is_null() {
                    "NULL".to_owned()
                } else {
                    format!("'{value}'")
                };
                format!("<code>${}</code> = <code>{}</code>", esc(name), esc(&shown))
            })
            .collect();
        html.push_str(&values.join(", "));
        html.push_str("</p>");
    }
    if !context.standalone
        && let PanelKind::Chart(kind) = panel.kind
        && kind != ChartKind::Table
    {
        let query = selection.query_string();
        let _ = write!(
            html,
            "<p class=\"downloads\"><a href=\"/charts/{d}/{p}.png{query}\">PNG</a> · <a href=\"/charts/{d}/{p}.svg{query}\">SVG</a></p>",
            d = dashboard.name,
            p = panel.id,
        );
    }
    html.push_str("</details>");
}

/// A stat tile: the value in its unit, its level badge, its target, and its change from the
/// previous period, coloured by whether lower or higher is better.
fn tile(html: &mut String, context: &PageContext<'_>, panel: &Panel, rows: &Rows) {
    let Some(value) = cells::first_number(rows, "value") else {
        html.push_str("<p class=\"value none\" data-value=\"\">no data</p>");
        return;
    };
    let show = |v: f64| chart::format_value(v, panel.unit, &context.currency);
    let _ = write!(
        html,
        "<p class=\"value\" data-value=\"{value}\">{}</p>",
        esc(&show(value))
    );
    if let Some(level) = cells::first_text(rows, "level") {
        let class: String = level.chars().filter(char::is_ascii_alphanumeric).collect();
        let _ = write!(
            html,
            "<p class=\"badge level-{}\">{}</p>",
            class.to_ascii_lowercase(),
            esc(&level)
        );
    }
    if let Some(target) = cells::first_number(rows, "target").or(panel.target) {
        let _ = write!(
            html,
            "<p class=\"target\">target {}</p>",
            esc(&show(target))
        );
    }
    if let Some(previous) = cells::first_number(rows, "previous") {
        let better = cells::first_text(rows, "better");
        let change = value - previous;
        let direction = if change > 0.0 {
            "▲"
        } else if change < 0.0 {
            "▼"
        } else {
            "■"
        };
        let verdict = match better.as_deref() {
            _ if change == 0.0 => "same",
            Some("lower") if change < 0.0 => "better",
            Some("higher") if change > 0.0 => "better",
            Some("lower" | "higher") => "worse",
            _ => "same",
        };
        // A rate's change is in percentage points; its relative change would read as a rate.
        let (amount, relative) = if panel.unit == Unit::Percent {
            (format!("{:.2} pp", 100.0 * change.abs()), String::new())
        } else if previous != 0.0 {
            (
                show(change.abs()),
                format!(
                    " ({})",
                    signed(
                        &format!("{:.1} %", (100.0 * change / previous.abs()).abs()),
                        change
                    )
                ),
            )
        } else {
            (show(change.abs()), String::new())
        };
        let _ = write!(
            html,
            "<p class=\"change {verdict}\">{direction} {}{relative} from {} last month</p>",
            esc(&signed(&amount, change)),
            esc(&show(previous)),
        );
    }
}

fn signed(shown: &str, change: f64) -> String {
    if change < 0.0 {
        format!("−{shown}")
    } else {
        format!("+{shown}")
    }
}

/// The summary panel: its sentences as a list.
fn summary(html: &mut String, context: &PageContext<'_>, rows: &Rows) {
    let sentences = summary_sentences(rows, &context.currency);
    if sentences.is_empty() {
        html.push_str("<p class=\"none\">No data for this selection.</p>");
        return;
    }
    html.push_str("<ul class=\"summary\">");
    for sentence in sentences {
        let _ = write!(html, "<li>{}</li>", esc(&sentence));
    }
    html.push_str("</ul>");
}

/// Sentences from rows of `subject`, `measure`, `unit`, `previous`, `current`, `better`: "Median
/// lead time improved from 30.1 h to 25.2 h." A `measure` of `budget` reads `previous` as the
/// budget and `current` as the forecast: "checkout is forecast over budget by $1,200.00".
pub fn summary_sentences(rows: &Rows, currency: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    for batch in &rows.batches {
        let get = |name: &str| cells::column(batch, name);
        for row in 0..batch.num_rows() {
            let text = |name: &str| get(name).and_then(|c| cells::text(c.as_ref(), row));
            let number = |name: &str| get(name).and_then(|c| cells::number(c.as_ref(), row));
            let Some(measure) = text("measure") else {
                continue;
            };
            let subject = text("subject").unwrap_or_default();
            let unit = text("unit")
                .and_then(|u| unit_named(&u))
                .unwrap_or(Unit::Number);
            let show = |v: f64| chart::format_value(v, unit, currency);
            let sentence = match (measure.as_str(), number("previous"), number("current")) {
                ("budget", Some(budget), Some(forecast)) if forecast > budget => format!(
                    "{subject} is forecast over budget by {} ({} of {}).",
                    show(forecast - budget),
                    chart::format_value(forecast / budget, Unit::Percent, ""),
                    show(budget)
                ),
                ("budget", Some(budget), Some(forecast)) => format!(
                    "{subject} is forecast within budget: {} of {}.",
                    show(forecast),
                    show(budget)
                ),
                (measure, Some(previous), Some(current)) => {
                    let what = format!("{subject} {measure}");
                    let verdict = match text("better").as_deref() {
                        _ if (current - previous).abs() < 1e-9 => None,
                        Some("lower") if current < previous => Some("improved"),
                        Some("higher") if current > previous => Some("improved"),
                        Some("lower" | "higher") => Some("worsened"),
                        _ => Some("moved"),
                    };
                    match verdict {
                        None => format!("{} held at {}.", what.trim(), show(current)),
                        Some(verdict) => format!(
                            "{} {verdict} from {} to {}.",
                            what.trim(),
                            show(previous),
                            show(current)
                        ),
                    }
                }
                (measure, None, Some(current)) => {
                    format!(
                        "{} was {}.",
                        format!("{subject} {measure}").trim(),
                        show(current)
                    )
                }
                _ => continue,
            };
            // A name (a budget, a service) keeps its spelling; a sentence that opens with the
            // measure starts with a capital.
            sentences.push(if subject.is_empty() {
                capitalise(&sentence)
            } else {
                sentence
            });
        }
    }
    sentences
}

fn unit_named(name: &str) -> Option<Unit> {
    Some(match name {
        "number" => Unit::Number,
        "count" => Unit::Count,
        "hours" => Unit::Hours,
        "days" => Unit::Days,
        "per_day" => Unit::PerDay,
        "percent" => Unit::Percent,
        "currency" => Unit::Currency,
        _ => return None,
    })
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An HTML table: a header per column, numbers right-aligned, services and teams linked to
/// their pages.
fn table(html: &mut String, context: &PageContext<'_>, rows: &Rows) {
    if rows.is_empty() {
        html.push_str("<p class=\"none\">No data for this selection.</p>");
        return;
    }
    let cells = match cells::formatted(
        rows,
        context.config.reporting.time_zone.0.name(),
        TABLE_ROWS,
    ) {
        Ok(cells) => cells,
        Err(message) => return failed(html, &message),
    };
    let fields = rows.schema.fields();
    html.push_str("<div class=\"table-wrap\"><table><thead><tr>");
    for field in fields {
        let class = if cells::is_numeric(field.data_type()) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<th scope=\"col\"{class}>{}</th>",
            esc(&field.name().replace('_', " "))
        );
    }
    html.push_str("</tr></thead><tbody>");
    for row in &cells {
        html.push_str("<tr>");
        for (field, cell) in fields.iter().zip(row) {
            let numeric = cells::is_numeric(field.data_type());
            let class = if numeric { " class=\"num\"" } else { "" };
            let link = match field.name().as_str() {
                "service" if context.config.services.iter().any(|s| s.name == *cell) => {
                    Some(format!("/services/{}", encode(cell)))
                }
                "team"
                    if context
                        .config
                        .services
                        .iter()
                        .any(|s| s.team.as_deref() == Some(cell)) =>
                {
                    Some(format!("/teams/{}", encode(cell)))
                }
                _ => None,
            };
            match link {
                Some(href) if !context.standalone => {
                    let _ = write!(html, "<td{class}><a href=\"{href}\">{}</a></td>", esc(cell));
                }
                _ => {
                    let _ = write!(html, "<td{class}>{}</td>", esc(cell));
                }
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    let total = rows.len();
    if total > cells.len() {
        let _ = write!(
            html,
            "<p class=\"more\">… {} more rows: run the SQL for all of them.</p>",
            total - cells.len()
        );
    }
}

/// Escapes text for HTML content and attribute values (as the charts' SVG text is).
pub fn esc(text: &str) -> String {
    chart::escape_xml(text)
}

/// The page's look: a 12-column grid of panels, readable type, colour-blind-safe level colours,
/// and a print layout without the navigation, form and SQL.
const STYLE: &str = r#"
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);background:var(--bg)}
nav{display:flex;gap:1.5rem;align-items:center;padding:.6rem 1.5rem;background:#24292f}
nav a{color:#fff;text-decoration:none}nav a.brand{font-weight:bold}
nav ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0;flex-wrap:wrap}
nav a[aria-current=page]{text-decoration:underline;text-underline-offset:4px}
main{max-width:1180px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem;margin:.6rem 0 .2rem}h1 .scope{font-weight:normal;color:var(--muted);font-size:1.1rem;margin-left:.4rem}
.lede{margin:.2rem 0;color:var(--muted)}.refreshed{margin:.2rem 0 .8rem;color:var(--muted);font-size:.85rem}
form.filters{display:flex;flex-wrap:wrap;gap:.8rem;align-items:end;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
form.filters input,form.filters select,form.filters button{font:inherit;padding:.25rem .4rem}
.panels{display:grid;grid-template-columns:repeat(12,1fr);gap:1rem}
.panel{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.8rem 1rem;min-width:0}
.panel.tile{grid-column:span 2}.panel.third{grid-column:span 4}.panel.half{grid-column:span 6}.panel.full{grid-column:span 12}
.panel h2{font-size:1rem;margin:0 0 .3rem}.panel .desc{margin:0 0 .5rem;color:var(--muted);font-size:.85rem}
.chart{margin:0}.chart svg{width:100%;height:auto;display:block}
.tile .value{font-size:1.7rem;font-weight:bold;margin:.2rem 0}.tile p{margin:.15rem 0;font-size:.85rem}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-weight:bold;color:#fff}
.level-elite{background:#009E73}.level-high{background:#0072B2}.level-medium{background:#E69F00;color:#000}.level-low{background:#D55E00}
.change.better{color:#00704f}.change.worse{color:#b34700}.change.same{color:var(--muted)}
.summary{margin:.2rem 0;padding-left:1.2rem}.summary li{margin:.2rem 0}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{background:var(--bg)}.num{text-align:right;font-variant-numeric:tabular-nums}
.panel-error{background:#fff4e5;border:1px solid #E69F00;padding:.5rem;border-radius:4px;font-size:.85rem;overflow-wrap:anywhere}
.none{color:var(--muted);font-style:italic}.more{color:var(--muted);font-size:.8rem}
details.sql{margin-top:.4rem;font-size:.8rem}details.sql summary{cursor:pointer;color:var(--accent)}
details.sql pre{white-space:pre-wrap;background:var(--bg);padding:.5rem;border-radius:4px;overflow-x:auto}
@media (max-width:900px){.panel.tile{grid-column:span 6}.panel.third,.panel.half{grid-column:span 12}}
@media print{nav,form.filters,details.sql{display:none}body{background:#fff;font-size:11pt}main{max-width:none;padding:0}
.panel{break-inside:avoid;border-color:#999}.panels{gap:.5rem}a{color:inherit;text-decoration:none}}
"#;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use arrow::record_batch::RecordBatch;

    use super::*;

    fn rows(columns: Vec<(&str, ArrayRef)>) -> Rows {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        Rows {
            schema: batch.schema(),
            batches: vec![batch],
        }
    }

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn numbers(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    #[test]
    fn the_summary_says_which_way_each_figure_moved() {
        let summary = rows(vec![
            (
                "subject",
                text(&[
                    Some(""),
                    Some(""),
                    Some(""),
                    Some("payments-team (payments)"),
                    Some(""),
                ]),
            ),
            (
                "measure",
                text(&[
                    Some("median lead time"),
                    Some("change failure rate"),
                    Some("deployment frequency"),
                    Some("budget"),
                    Some("cost"),
                ]),
            ),
            (
                "unit",
                text(&[
                    Some("hours"),
                    Some("percent"),
                    Some("per_day"),
                    Some("currency"),
                    Some("currency"),
                ]),
            ),
            (
                "previous",
                numbers(&[Some(30.1), Some(0.1), Some(2.0), Some(1000.0), None]),
            ),
            (
                "current",
                numbers(&[Some(25.2), Some(0.125), Some(2.0), Some(1200.0), Some(99.5)]),
            ),
            (
                "better",
                text(&[
                    Some("lower"),
                    Some("lower"),
                    Some("higher"),
                    Some("lower"),
                    Some("lower"),
                ]),
            ),
        ]);
        assert_eq!(
            summary_sentences(&summary, "USD"),
            [
                "Median lead time improved from 30.1 h to 25.2 h.",
                "Change failure rate worsened from 10 % to 12.5 %.",
                "Deployment frequency held at 2 /day.",
                // 1200 over 1000: 200 over, 120 % of the budget.
                "payments-team (payments) is forecast over budget by $200.00 (120 % of $1,000.00).",
                "Cost was $99.50.",
            ]
        );
    }

    #[test]
    fn a_tile_shows_value_level_target_and_change() {
        let catalog = Catalog::builtin().unwrap();
        let config = Config::default();
        let context = PageContext {
            catalog: &catalog,
            config: &config,
            currency: "USD".into(),
            refreshed: String::new(),
            standalone: false,
        };
        let review = catalog.get("review").unwrap();
        let tile_rows = |value: f64, previous: f64| {
            rows(vec![
                ("value", numbers(&[Some(value)])),
                ("previous", numbers(&[Some(previous)])),
                ("target", numbers(&[Some(0.05)])),
                ("level", text(&[Some("high")])),
                ("better", text(&[Some("lower")])),
            ])
        };
        let mut html = String::new();
        // 7.38 % from 9.49 %: 2.11 percentage points lower, an improvement.
        tile(
            &mut html,
            &context,
            review.panel("change-failure-rate").unwrap(),
            &tile_rows(0.0738, 0.0949),
        );
        assert!(html.contains("data-value=\"0.0738\""), "{html}");
        assert!(html.contains("badge level-high"), "{html}");
        assert!(
            html.contains("target 5.0 %") || html.contains("target 5 %"),
            "{html}"
        );
        assert!(
            html.contains("change better") && html.contains("−2.11 pp"),
            "{html}"
        );

        let mut html = String::new();
        // 35.6 h from 26.4 h: 9.2 h (34.8 %) longer, worse.
        tile(
            &mut html,
            &context,
            review.panel("lead-time").unwrap(),
            &tile_rows(35.6, 26.4),
        );
        assert!(
            html.contains("change worse") && html.contains("(+34.8 %)"),
            "{html}"
        );
    }

    #[test]
    fn a_failed_panel_shows_its_error_and_the_page_goes_on() {
        let catalog = Catalog::builtin().unwrap();
        let config = Config::default();
        let context = PageContext {
            catalog: &catalog,
            config: &config,
            currency: "USD".into(),
            refreshed: "Last refreshed: test".into(),
            standalone: false,
        };
        let dashboard = catalog.get("data-quality").unwrap();
        let selection = Selection::parse(
            &[],
            &config,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        )
        .unwrap();
        let results: Vec<PanelResult> = dashboard
            .panels
            .iter()
            .enumerate()
            .map(|(i, panel)| PanelResult {
                query: selection.bind(&panel.sql),
                outcome: if i == 0 {
                    Err("Schema error: No field named <nope>".into())
                } else {
                    Ok(rows(vec![("label", text(&[])), ("value", numbers(&[]))]))
                },
            })
            .collect();
        let html = render(&context, dashboard, &selection, &results);
        assert!(html.contains("class=\"panel-error\""));
        assert!(html.contains("No field named &lt;nope&gt;"), "escaped");
        for panel in &dashboard.panels {
            assert!(html.contains(&format!("data-panel=\"{}\"", panel.id)));
        }
        assert!(html.contains("<th scope=\"col\"") || html.contains("No data for this selection"));
        assert!(html.contains("March 2026") && html.contains("Last refreshed: test"));
    }
}
