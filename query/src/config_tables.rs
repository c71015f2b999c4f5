//! Tables born from `doracost.toml` and shipped data, registered beside the lake's (DESIGN §3):
//! `services`, `reporting` (one row: the settings the views read), `targets` and `dora_levels`.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use model::Config;

/// The DORA level bands (DESIGN §4), one row per report year, metric and level. A new report is a
/// new block of rows in this file.
pub const LEVELS_CSV: &str = include_str!("../sql/dora_levels.csv");

/// Registers every config-born table.
pub fn register(ctx: &SessionContext, config: &Config) -> Result<(), DataFusionError> {
    ctx.register_batch("services", services(config)?)?;
    ctx.register_batch("reporting", reporting(config)?)?;
    ctx.register_batch("targets", targets(config)?)?;
    ctx.register_batch("dora_levels", levels(LEVELS_CSV)?)?;
    crate::cost_tables::register(ctx, config)?;
    Ok(())
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<RecordBatch, DataFusionError> {
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn string_list<'a>(items: impl IntoIterator<Item = &'a String>, lower: bool) -> ArrayRef {
    let mut list = ListBuilder::new(StringBuilder::new());
    for item in items {
        if lower {
            list.values().append_value(item.to_lowercase());
        } else {
            list.values().append_value(item);
        }
    }
    list.append(true);
    Arc::new(list.finish())
}

/// `services`: one row per configured service, with its team, repos and path prefixes.
fn services(config: &Config) -> Result<RecordBatch, DataFusionError> {
    let mut service = StringBuilder::new();
    let mut team = StringBuilder::new();
    let mut repos = ListBuilder::new(StringBuilder::new());
    let mut paths = ListBuilder::new(StringBuilder::new());
    for s in &config.services {
        service.append_value(&s.name);
        team.append_option(s.team.as_deref());
        for r in &s.repos {
            repos.values().append_value(r);
        }
        repos.append(true);
        for p in &s.paths {
            paths.values().append_value(p);
        }
        paths.append(true);
    }
    batch(
        vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("team", DataType::Utf8, true),
            Field::new("repos", list_type(), false),
            Field::new("paths", list_type(), false),
        ],
        vec![
            Arc::new(service.finish()),
            Arc::new(team.finish()),
            Arc::new(repos.finish()),
            Arc::new(paths.finish()),
        ],
    )
}

/// `reporting`: the `[reporting]` settings as one row. Environment names, hotfix labels and branch
/// prefixes are lower-cased: the views compare them case-insensitively.
fn reporting(config: &Config) -> Result<RecordBatch, DataFusionError> {
    let r = &config.reporting;
    let metric = r.cost_metric.column();
    batch(
        vec![
            Field::new("time_zone", DataType::Utf8, false),
            Field::new("production_environments", list_type(), false),
            Field::new("attribution_window_days", DataType::Int64, false),
            Field::new("hotfix_labels", list_type(), false),
            Field::new("hotfix_branch_prefixes", list_type(), false),
            Field::new("cost_metric", DataType::Utf8, false),
            Field::new("forecast_trailing_days", DataType::Int64, false),
            Field::new("anomaly_baseline_days", DataType::Int64, false),
            Field::new("anomaly_threshold", DataType::Float64, false),
            Field::new(
                "anomaly_min_impact",
                DataType::Decimal128(model::schema::MONEY_PRECISION, model::schema::MONEY_SCALE),
                false,
            ),
        ],
        vec![
            Arc::new(arrow::array::StringArray::from(vec![r.time_zone.name()])),
            string_list(&r.production_environments, true),
            Arc::new(arrow::array::Int64Array::from(vec![i64::from(
                r.attribution_window_days,
            )])),
            string_list(&r.hotfix_labels, true),
            string_list(&r.hotfix_branch_prefixes, true),
            Arc::new(arrow::array::StringArray::from(vec![metric])),
            Arc::new(arrow::array::Int64Array::from(vec![i64::from(
                r.forecast_trailing_days,
            )])),
            Arc::new(arrow::array::Int64Array::from(vec![i64::from(
                r.anomaly_baseline_days,
            )])),
            Arc::new(arrow::array::Float64Array::from(vec![r.anomaly_threshold])),
            Arc::new(
                arrow::array::Decimal128Array::from(vec![r.anomaly_min_impact.0])
                    .with_precision_and_scale(
                        model::schema::MONEY_PRECISION,
                        model::schema::MONEY_SCALE,
                    )?,
            ),
        ],
    )
}

/// `targets`: the defaults (service NULL) and one row per service override (absent values NULL,
/// so the views fall back to the defaults).
fn targets(config: &Config) -> Result<RecordBatch, DataFusionError> {
    let t = &config.targets;
    let mut service = StringBuilder::new();
    let mut deploys = Float64Builder::new();
    let mut lead = Float64Builder::new();
    let mut cfr = Float64Builder::new();
    let mut recovery = Float64Builder::new();
    service.append_null();
    deploys.append_value(t.deploys_per_day);
    lead.append_value(t.lead_time_hours);
    cfr.append_value(t.change_failure_rate);
    recovery.append_value(t.recovery_minutes);
    for (name, o) in &t.services {
        service.append_value(name);
        deploys.append_option(o.deploys_per_day);
        lead.append_option(o.lead_time_hours);
        cfr.append_option(o.change_failure_rate);
        recovery.append_option(o.recovery_minutes);
    }
    batch(
        vec![
            Field::new("service", DataType::Utf8, true),
            Field::new("deploys_per_day", DataType::Float64, true),
            Field::new("lead_time_hours", DataType::Float64, true),
            Field::new("change_failure_rate", DataType::Float64, true),
            Field::new("recovery_minutes", DataType::Float64, true),
        ],
        vec![
            Arc::new(service.finish()),
            Arc::new(deploys.finish()),
            Arc::new(lead.finish()),
            Arc::new(cfr.finish()),
            Arc::new(recovery.finish()),
        ],
    )
}

/// `dora_levels` from its CSV text: `report_year, metric, level, rank, lower_bound,
/// lower_inclusive, upper_bound, upper_inclusive, note`; an empty bound is unbounded.
pub fn levels(csv: &str) -> Result<RecordBatch, DataFusionError> {
    let bad = |line: usize, what: &str| {
        DataFusionError::Configuration(format!("dora_levels.csv line {line}: {what}"))
    };
    let mut year = Int32Builder::new();
    let mut metric = StringBuilder::new();
    let mut level = StringBuilder::new();
    let mut rank = Int32Builder::new();
    let mut lower = Float64Builder::new();
    let mut lower_inc = BooleanBuilder::new();
    let mut upper = Float64Builder::new();
    let mut upper_inc = BooleanBuilder::new();
    let mut note = StringBuilder::new();
    for (i, text) in csv.lines().enumerate().skip(1) {
        let line = i + 1;
        if text.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = text.splitn(9, ',').map(str::trim).collect();
        let [y, m, l, r, lo, loi, up, upi, n] = cells[..] else {
            return Err(bad(line, "expected 9 cells"));
        };
        let number = |cell: &str, what: &str| -> Result<Option<f64>, DataFusionError> {
            if cell.is_empty() {
                return Ok(None);
            }
            cell.parse::<f64>()
                .map(Some)
                .map_err(|_| bad(line, &format!("{what}: expected a number, found `{cell}`")))
        };
        let flag = |cell: &str, what: &str| -> Result<bool, DataFusionError> {
            cell.parse::<bool>().map_err(|_| {
                bad(
                    line,
                    &format!("{what}: expected true or false, found `{cell}`"),
                )
            })
        };
        year.append_value(
            y.parse()
                .map_err(|_| bad(line, "report_year: expected a year"))?,
        );
        metric.append_value(m);
        level.append_value(l);
        rank.append_value(r.parse().map_err(|_| bad(line, "rank: expected 1–4"))?);
        lower.append_option(number(lo, "lower_bound")?);
        lower_inc.append_value(flag(loi, "lower_inclusive")?);
        upper.append_option(number(up, "upper_bound")?);
        upper_inc.append_value(flag(upi, "upper_inclusive")?);
        note.append_value(n);
    }
    batch(
        vec![
            Field::new("report_year", DataType::Int32, false),
            Field::new("metric", DataType::Utf8, false),
            Field::new("level", DataType::Utf8, false),
            Field::new("rank", DataType::Int32, false),
            Field::new("lower_bound", DataType::Float64, true),
            Field::new("lower_inclusive", DataType::Boolean, false),
            Field::new("upper_bound", DataType::Float64, true),
            Field::new("upper_inclusive", DataType::Boolean, false),
            Field::new("note", DataType::Utf8, false),
        ],
        vec![
            Arc::new(year.finish()),
            Arc::new(metric.finish()),
            Arc::new(level.finish()),
            Arc::new(rank.finish()),
            Arc::new(lower.finish()),
            Arc::new(lower_inc.finish()),
            Arc::new(upper.finish()),
            Arc::new(upper_inc.finish()),
            Arc::new(note.finish()),
        ],
    )
}

/// The view definitions of `sql/dora.sql`, with the reporting time zone filled in.
pub const DORA_SQL: &str = include_str!("../sql/dora.sql");

/// One statement of `dora.sql`.
pub struct ViewStatement {
    /// The view's name.
    pub name: String,
    /// The full `CREATE VIEW` text, time zone filled in.
    pub sql: String,
    /// Its query (after `AS`).
    pub query: String,
    /// Marked `-- @cached` (or `-- @persisted`): computed once per session on first use.
    pub cached: bool,
    /// Marked `-- @persisted`: also kept in the lake as a derived table, recomputed at ingest
    /// (see [`crate::derived`]).
    pub persisted: bool,
    /// The period of a view written once per period (`dora_monthly`: `month`): its `period`
    /// column holds it in every row.
    pub period: Option<&'static str>,
}

/// The statements of `dora.sql` (separated by lines holding only `;`), ready to run.
pub fn dora_statements(config: &Config) -> Result<Vec<ViewStatement>, DataFusionError> {
    view_statements("dora.sql", DORA_SQL, config)
}

/// The view definitions of `sql/cost.sql` (cost allocation, forecast, anomalies, budgets, cost
/// per deployment).
pub const COST_SQL: &str = include_str!("../sql/cost.sql");

/// The statements of `cost.sql`, with `{{time_zone}}`, `{{forecast_trailing_days}}` and
/// `{{anomaly_baseline_days}}` filled in (window frames need constants).
pub fn cost_statements(config: &Config) -> Result<Vec<ViewStatement>, DataFusionError> {
    view_statements("cost.sql", COST_SQL, config)
}

/// The names of every view of `dora.sql` and `cost.sql` (a fresh derived table stands in for its
/// view in the session, so the catalog alone cannot tell them from the lake's tables).
pub fn view_names(config: &Config) -> Result<Vec<String>, DataFusionError> {
    let mut views = dora_statements(config)?;
    views.extend(cost_statements(config)?);
    Ok(views.into_iter().map(|v| v.name).collect())
}

/// The names of the views kept in the lake as derived tables (marked `-- @persisted`).
pub fn persisted_names(config: &Config) -> Result<Vec<String>, DataFusionError> {
    let mut views = dora_statements(config)?;
    views.extend(cost_statements(config)?);
    Ok(views
        .into_iter()
        .filter(|v| v.persisted)
        .map(|v| v.name)
        .collect())
}

fn view_statements(
    file: &str,
    text: &str,
    config: &Config,
) -> Result<Vec<ViewStatement>, DataFusionError> {
    let zone = config.reporting.time_zone.name();
    let forecast_days = config.reporting.forecast_trailing_days.max(1).to_string();
    let anomaly_days = config.reporting.anomaly_baseline_days.max(1).to_string();
    let mut out = Vec::new();
    for (chunk, period) in text.split("\n;").flat_map(per_period) {
        let sql = chunk
            .replace("{{tag_budget_sums}}", &tag_budget_sums(config))
            .replace("{{time_zone}}", zone)
            .replace("{{forecast_trailing_days}}", &forecast_days)
            .replace("{{anomaly_baseline_days}}", &anomaly_days);
        let code: Vec<&str> = sql
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
            .collect();
        let Some(first) = code.first() else {
            continue;
        };
        let bad =
            || DataFusionError::Internal(format!("{file}: not `CREATE VIEW name AS`: {first}"));
        let rest = first.strip_prefix("CREATE VIEW ").ok_or_else(bad)?;
        let (name, after) = rest.split_once(" AS").ok_or_else(bad)?;
        let mut query = after.trim_start().to_owned();
        for line in &code[1..] {
            query.push('\n');
            query.push_str(line);
        }
        let persisted = sql.lines().any(|l| l.trim() == "-- @persisted");
        out.push(ViewStatement {
            name: name.trim().to_owned(),
            cached: persisted || sql.lines().any(|l| l.trim() == "-- @cached"),
            persisted,
            period,
            query,
            sql: sql.trim().to_owned(),
        });
    }
    Ok(out)
}

/// The `UNION ALL` branches of `cost_series` summing the bill lines of each tag a budget is
/// scoped to (none without such budgets, so the lines are not read for nothing); key and value
/// are written in as SQL strings.
fn tag_budget_sums(config: &Config) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let mut seen = std::collections::BTreeSet::new();
    let mut sql = String::new();
    for budget in &config.budgets {
        let Some((key, value)) = budget.scope.tag_pair() else {
            continue;
        };
        if !seen.insert((key, value)) {
            continue;
        }
        sql.push_str(&format!(
            "UNION ALL\n  SELECT 'tag' AS scope, {} AS name, day, sum(cost) AS cost FROM cost_lines \
             WHERE map_extract(tags, {})[1] = {} GROUP BY day\n  ",
            quote(&format!("{key}={value}")),
            quote(key),
            quote(value)
        ));
    }
    sql
}

/// A statement written with `{{period}}` stands for three: day, week and month (`{{periodly}}`:
/// daily, weekly, monthly); any other statement for itself.
fn per_period(chunk: &str) -> Vec<(String, Option<&'static str>)> {
    if !chunk.contains("{{period}}") {
        return vec![(chunk.to_owned(), None)];
    }
    [("day", "daily"), ("week", "weekly"), ("month", "monthly")]
        .iter()
        .map(|&(period, periodly)| {
            let sql = chunk
                .replace("{{periodly}}", periodly)
                .replace("{{period}}", period);
            (sql, Some(period))
        })
        .collect()
}

/// Creates every view of `dora.sql` and `cost.sql`, each planned now so that a broken view fails
/// at open. Views marked `-- @cached` are computed once, on first use (see
/// [`crate::cached::CachedView`]). Views marked `-- @persisted` are read from the lake's derived
/// table when `lake` is given and its stamp matches, and computed like cached views otherwise
/// (see [`crate::derived`]); what was found is returned, one entry per persisted view.
pub async fn register_views(
    ctx: &SessionContext,
    config: &Config,
    lake: Option<&crate::derived::LakeSide<'_>>,
) -> Result<
    (
        Vec<crate::derived::DerivedView>,
        Option<crate::derived::StampRecipe>,
    ),
    DataFusionError,
> {
    let mut views = dora_statements(config)?;
    views.extend(cost_statements(config)?);
    let stamps = match lake {
        Some(side) => Some(crate::derived::Stamps::new(ctx, config, side, &views).await?),
        None => None,
    };
    let mut derived = Vec::new();
    for view in &views {
        if view.persisted
            && let (Some(side), Some(stamps)) = (lake, stamps.as_ref())
        {
            let stamp = stamps.of(&view.name);
            match side.lookup(&view.name, &stamp).await {
                crate::derived::Lookup::Fresh(provider, found) => {
                    ctx.register_table(view.name.as_str(), provider)?;
                    derived.push(found);
                }
                crate::derived::Lookup::Live(mut found) => {
                    let plan = ctx.sql(&view.query).await?.into_optimized_plan()?;
                    let live = Arc::new(crate::cached::CachedView::new(plan, view.sql.clone()));
                    ctx.register_table(view.name.as_str(), live.clone())?;
                    found.live = Some(live);
                    derived.push(found);
                }
            }
        } else if view.cached {
            let plan = ctx.sql(&view.query).await?.into_optimized_plan()?;
            let mut cached = crate::cached::CachedView::new(plan, view.sql.clone());
            if let Some(period) = view.period {
                cached = cached.with_constant("period", ScalarValue::from(period));
            }
            ctx.register_table(view.name.as_str(), Arc::new(cached))?;
        } else {
            ctx.sql(&view.sql).await?;
        }
    }
    Ok((derived, stamps.map(|s| s.recipe().clone())))
}
