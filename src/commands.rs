//! What each command does, in terms of the crates below; output for people and for machines.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ingest::pipeline::{IngestSummary, PipelineError};
use ingest::progress::Progress;
use model::{Config, Lake};
use query::Engine;
use query::output::{Format, render};

use crate::{
    Cli, Command, DemoArgs, IngestCommand, LakeCommand, OutputFormat, Period, SampleCommand,
};
use query::reports::{BoundQuery, Detail, Scope};

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let format = cli.format;
    if format == Some(OutputFormat::Parquet) && !matches!(cli.command, Command::Sql(_)) {
        bail!("--format parquet is for `doracost sql`; use json or csv here");
    }
    if matches!(format, Some(OutputFormat::Html | OutputFormat::Md))
        != matches!(cli.command, Command::Report(_))
        && format.is_some()
    {
        bail!(
            "--format html and md are for `doracost report`, which writes only those; use table, json or csv here"
        );
    }
    match cli.command {
        Command::Demo(ref args) => demo(&cli, args, format).await,
        Command::Ingest(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let chunk = |default: usize| {
                args.chunk_rows
                    .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
            };
            let summary = match &args.source {
                IngestCommand::Events { files } => {
                    let files =
                        files_or_configured(files, config.sources.events.as_ref(), "events")?;
                    let bar = Bar::over(&files);
                    let result = ingest::pipeline::ingest_events_in_chunks(
                        &lake,
                        &files,
                        Box::new(bar.clone()),
                        chunk(ingest::pipeline::EVENT_CHUNK_ROWS),
                    )
                    .await;
                    bar.0.finish_and_clear();
                    result
                }
                IngestCommand::Focus {
                    files,
                    default_billing_account,
                    default_currency,
                    default_provider,
                } => {
                    let files = files_or_configured(files, config.sources.focus.as_ref(), "focus")?;
                    let defaults = ingest::focus::FocusDefaults {
                        billing_account: default_billing_account.clone(),
                        currency: default_currency.clone(),
                        provider: default_provider.clone(),
                    };
                    let bar = Bar::over(&files);
                    let result = ingest::pipeline::ingest_focus_with(
                        &lake,
                        &files,
                        &defaults,
                        Box::new(bar.clone()),
                        chunk(ingest::pipeline::COST_CHUNK_ROWS),
                    )
                    .await;
                    bar.0.finish_and_clear();
                    result
                }
                IngestCommand::Cur { files } => {
                    let files = files_or_configured(files, config.sources.cur.as_ref(), "cur")?;
                    let bar = Bar::over(&files);
                    let result = ingest::pipeline::ingest_cur(
                        &lake,
                        &files,
                        Box::new(bar.clone()),
                        chunk(ingest::pipeline::COST_CHUNK_ROWS),
                    )
                    .await;
                    bar.0.finish_and_clear();
                    result
                }
                IngestCommand::Github { repos } => {
                    let report = crate::github_ingest::run(&config, &lake, repos, format).await?;
                    finish_ingest(&config, &lake, args.no_refresh, format, report).await?;
                    return Ok(());
                }
                IngestCommand::Git { repos, threads } => {
                    let report =
                        crate::git_ingest::run(&config, &lake, repos, *threads, format).await?;
                    finish_ingest(&config, &lake, args.no_refresh, format, report).await?;
                    return Ok(());
                }
                IngestCommand::Pagerduty { since, until } => {
                    let report =
                        crate::pagerduty_ingest::run(&config, &lake, (*since, *until), format)
                            .await?;
                    finish_ingest(&config, &lake, args.no_refresh, format, report).await?;
                    return Ok(());
                }
                IngestCommand::CostExplorer { from, to, forecast } => {
                    let window = (*from, *to);
                    let report =
                        ingest_cost_explorer(&config, &lake, window, *forecast, format).await?;
                    finish_ingest(&config, &lake, args.no_refresh, format, report).await?;
                    alerts_after_cost_ingest(&config, &lake).await;
                    return Ok(());
                }
            }
            .map_err(pipeline_error)?;
            let report = print_ingest(&summary, format);
            finish_ingest(&config, &lake, args.no_refresh, format, report).await?;
            if !matches!(args.source, IngestCommand::Events { .. }) {
                alerts_after_cost_ingest(&config, &lake).await;
            }
            Ok(())
        }
        Command::Refresh(args) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let engine = Engine::open(&lake, &config)
                .await
                .context("opening the lake")?;
            let done = engine
                .refresh_derived_in_parts(args.part_deployments)
                .await
                .context("refreshing the derived tables")?;
            print_refresh(&engine, &done, format);
            Ok(())
        }
        Command::Dora(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let engine = open_engine(&lake, &config)
                .await
                .context("opening the lake")?;
            note_stale(&engine);
            let report = query::reports::DoraReport {
                period: match args.period {
                    Period::Day => query::reports::Period::Day,
                    Period::Week => query::reports::Period::Week,
                    Period::Month => query::reports::Period::Month,
                },
                scope: scope(&args.service, &args.team)
                    .checked(&config, false)
                    .map_err(flag_error)?,
                from: args.from,
                to: args.to,
            };
            run_bound(
                &engine,
                &report.query(detail(format)),
                to_query_format(format),
            )
            .await
        }
        Command::Alerts(ref command) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            alerts(&config, &lake, command).await
        }
        Command::Report(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let catalog = dashboards::Catalog::load(config.dashboards.dir.as_deref())
                .context("reading the dashboards")?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let engine = open_engine(&lake, &config)
                .await
                .context("opening the lake")?;
            note_stale(&engine);
            let file_format = match format {
                Some(OutputFormat::Md) => dashboards::ReportFormat::Markdown,
                _ => dashboards::ReportFormat::Html,
            };
            let text = dashboards::report(
                &engine,
                &catalog,
                &config,
                &args.dashboard,
                args.month,
                file_format,
            )
            .await?;
            match &args.out {
                Some(path) => write_atomically(path, text.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?,
                None => std::io::stdout()
                    .write_all(text.as_bytes())
                    .context("writing the report")?,
            }
            Ok(())
        }
        Command::Costs(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let report = query::reports::CostsReport {
                scope: scope(&args.service, &args.team)
                    .checked(&config, true)
                    .map_err(flag_error)?,
                month: args.month,
            };
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let engine = open_engine(&lake, &config)
                .await
                .context("opening the lake")?;
            note_stale(&engine);
            run_bound(
                &engine,
                &report.query(detail(format)),
                to_query_format(format),
            )
            .await
        }
        Command::Serve(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let listen = args
                .listen
                .clone()
                .unwrap_or_else(|| config.server.listen.clone());
            let pg_listen = args
                .pg_listen
                .clone()
                .unwrap_or_else(|| config.server.pg_listen.clone());
            serve(config, lake, &listen, &pg_listen).await
        }
        Command::Sql(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            let engine = open_engine(&lake, &config)
                .await
                .context("opening the lake for SQL")?;
            if format == Some(OutputFormat::Parquet) {
                let Some(sql) = &args.query else {
                    bail!(
                        "--format parquet needs a query: doracost sql --format parquet \"SELECT …\" --out FILE"
                    );
                };
                return sql_to_parquet(&engine, sql, args.out.as_deref()).await;
            }
            let format = to_query_format(format);
            match (&args.query, &args.out) {
                (Some(sql), Some(out)) => {
                    let (schema, batches) = engine.query_with_schema(sql).await?;
                    std::fs::write(out, render(&schema, &batches, format)?)
                        .with_context(|| format!("writing {}", out.display()))
                }
                (Some(sql), None) => run_sql(&engine, sql, format).await,
                (None, _) => {
                    let views = query::config_tables::view_names(&config)?;
                    crate::repl::run(&engine, format, &views).await
                }
            }
        }
        Command::Docs(crate::DocsCommand::Views { ref write }) => {
            let section = query::catalog_doc::views_markdown().await?;
            match write {
                None => print!("{section}"),
                Some(path) => {
                    let readme = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let updated = query::catalog_doc::splice_readme(&readme, &section)?;
                    std::fs::write(path, updated)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            Ok(())
        }
        Command::Lake(ref command) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref(), cli.pause_after.as_deref())?;
            lake_command(&lake, command, format).await
        }
        Command::Sample(SampleCommand::Generate {
            ref scale,
            ref out,
            seed,
            cur,
            formats,
        }) => {
            let scale: sample_data::Scale =
                scale.parse().map_err(|e| anyhow::anyhow!("--scale: {e}"))?;
            let started = Instant::now();
            let mut report = sample_data::generate(&sample_data::GenerateOptions {
                scale,
                seed,
                out_dir: out.clone(),
                formats,
            })
            .with_context(|| format!("generating the {scale} sample into {}", out.display()))?;
            if let Some(dialect) = cur {
                use sample_data::writers::cur::{CurFormat, write_cur};
                let format = match dialect {
                    crate::CurDialect::Cur2Parquet => CurFormat::Cur2Parquet,
                    crate::CurDialect::Cur2Csv => CurFormat::Cur2Csv,
                    crate::CurDialect::LegacyCsv => CurFormat::LegacyCsv,
                };
                let dir = out.join("cur");
                let written = write_cur(scale, seed, &dir, format)
                    .with_context(|| format!("writing CUR files into {}", dir.display()))?;
                report.rows_written += written.truth.rows;
                report.files.extend(written.files);
            }
            let seconds = started.elapsed().as_secs_f64();
            if format == Some(OutputFormat::Json) {
                let json = serde_json::json!({
                    "scale": scale.to_string(), "seed": seed, "formats": formats.to_string(), "out": out, "rows_written": report.rows_written,
                    "seconds": seconds, "files": report.files, "truth": report.truth,
                    "peak_rss_bytes": peak_rss_bytes(),
                });
                println!("{json}");
            } else {
                println!(
                    "wrote the {scale} sample organisation to {}: {} files, {} rows in {seconds:.1} s ({:.0} rows/s)",
                    out.display(),
                    report.files.len(),
                    report.rows_written,
                    report.rows_written as f64 / seconds.max(1e-9)
                );
            }
            Ok(())
        }
    }
}

/// `--service` or `--team` as a report's scope (clap keeps them apart).
fn scope(service: &Option<String>, team: &Option<String>) -> Scope {
    match (service, team) {
        (Some(service), _) => Scope::Service(service.clone()),
        (None, Some(team)) => Scope::Team(team.clone()),
        (None, None) => Scope::Everything,
    }
}

/// A report parameter the config does not know, worded as the flag.
fn flag_error(err: query::reports::ReportError) -> anyhow::Error {
    anyhow::anyhow!("--{} {}: {}", err.parameter, err.value, err.message)
}

/// Rounded columns with units for people; every column at full precision for machines.
fn detail(format: Option<OutputFormat>) -> Detail {
    if matches!(format, Some(OutputFormat::Json) | Some(OutputFormat::Csv)) {
        Detail::Full
    } else {
        Detail::Summary
    }
}

async fn run_bound(engine: &Engine, query: &BoundQuery, format: Format) -> Result<()> {
    let (schema, batches) = engine.query_bound(query).await?;
    let bytes = render(&schema, &batches, format)?;
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}

fn to_query_format(format: Option<OutputFormat>) -> Format {
    match format {
        // Refused before any command runs but `sql` (which writes Parquet itself) and `report`.
        None
        | Some(OutputFormat::Table)
        | Some(OutputFormat::Parquet)
        | Some(OutputFormat::Html)
        | Some(OutputFormat::Md) => Format::Table,
        Some(OutputFormat::Csv) => Format::Csv,
        Some(OutputFormat::Json) => Format::Json,
    }
}

/// The config named with `--config`, else `./doracost.toml` when present, else the defaults.
fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => {
            let default = Path::new("doracost.toml");
            if default.exists() {
                Ok(Config::load(default)?)
            } else {
                Ok(Config::default())
            }
        }
    }
}

/// `doracost lake history|restore|vacuum`.
async fn lake_command(
    lake: &Lake,
    command: &LakeCommand,
    format: Option<OutputFormat>,
) -> Result<()> {
    let json = format == Some(OutputFormat::Json);
    match command {
        LakeCommand::History { limit } => {
            lake.state().await?;
            let entries = lake.history(Some(*limit)).await?;
            if json {
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "version": e.version,
                            "committed_at": e.at.map(|t| t.to_rfc3339()),
                            "operation": e.operation,
                            "ingest": e.ingest,
                            "tables": e.tables,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            if entries.is_empty() {
                println!(
                    "no commit log yet: the lake was written before it existed (the next ingest starts it)"
                );
            }
            for e in entries {
                let at = e.at.map_or_else(
                    || "?".to_owned(),
                    |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                );
                let tables: Vec<String> = e
                    .tables
                    .iter()
                    .map(|(t, c)| match model::lake::parse_content_id(c) {
                        Some((_, v)) => format!("{t}@{v}"),
                        None => format!("{t}:absent"),
                    })
                    .collect();
                println!(
                    "{:>6}  {at}  {:<28} {}",
                    e.version,
                    e.operation.as_deref().unwrap_or("-"),
                    tables.join(" ")
                );
            }
            Ok(())
        }
        LakeCommand::Restore { to_version } => {
            let state = lake.restore_to(*to_version).await?;
            println!(
                "restored the lake to log entry {to_version} (now entry {}); run `doracost refresh` to recompute the derived tables",
                state.log_version.unwrap_or_default()
            );
            Ok(())
        }
        LakeCommand::Vacuum => {
            lake.state().await?;
            let done = lake.vacuum().await?;
            let hours = lake.retention().num_minutes() as f64 / 60.0;
            for v in &done {
                println!("{:<20} {} file(s) deleted", v.table, v.files);
            }
            println!("kept every file used within the last {hours} hour(s)");
            Ok(())
        }
    }
}

/// Whether query sessions read the lake's fresh derived tables: not with `DORACOST_DERIVED=off`
/// (or `0`, `false`), which computes every view from the canonical tables (for comparisons and
/// benchmarks).
fn read_derived() -> bool {
    !std::env::var("DORACOST_DERIVED").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false"
        )
    })
}

/// A query session over the lake (read-only), derived tables read unless `DORACOST_DERIVED=off`.
async fn open_engine(lake: &Lake, config: &Config) -> Result<Engine, query::QueryError> {
    Engine::open_with(lake, config, read_derived()).await
}

fn open_lake(config: &Config, data_dir: Option<&str>, pause_after: Option<&str>) -> Result<Lake> {
    let location = data_dir.unwrap_or(&config.lake.path);
    let mut options = HashMap::new();
    for (key, secret) in &config.lake.storage_options {
        let value = secret
            .resolve()
            .with_context(|| format!("lake.storage_options.{key}"))?;
        options.insert(key.clone(), value);
    }
    let hours = |h: f64, key: &str| {
        chrono::Duration::try_milliseconds((h * 3_600_000.0) as i64)
            .filter(|_| h.is_finite() && h >= 0.0)
            .with_context(|| format!("[lake] {key} = {h}: expected a number of hours, 0 or more"))
    };
    Ok(Lake::new(location, options)?
        .with_retention(hours(config.lake.retention_hours, "retention_hours")?)
        .with_derived_retention(hours(
            config.lake.derived_retention_hours,
            "derived_retention_hours",
        )?)
        .with_pause_after(pause_after.map(str::to_owned)))
}

fn files_or_configured(
    files: &[PathBuf],
    configured: Option<&model::config::FileSource>,
    source: &str,
) -> Result<Vec<PathBuf>> {
    if !files.is_empty() {
        return Ok(files.to_vec());
    }
    match configured {
        Some(source) if !source.paths.is_empty() => Ok(source.paths.clone()),
        _ => bail!(
            "no files to ingest: name them (`doracost ingest {source} FILE…`) or set [sources.{source}] paths"
        ),
    }
}

fn pipeline_error(err: PipelineError) -> anyhow::Error {
    match err {
        PipelineError::Input(e) => {
            anyhow::anyhow!("{e}\nnothing was written: the lake is as it was")
        }
        PipelineError::Lake(e) => {
            anyhow::anyhow!("{e}\nthe tables written by this ingest were restored")
        }
    }
}

/// `doracost ingest cost-explorer`: the window's months read from Cost Explorer and replaced.
async fn ingest_cost_explorer(
    config: &Config,
    lake: &Lake,
    (from, to): (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>),
    forecast: bool,
    format: Option<OutputFormat>,
) -> Result<Option<serde_json::Value>> {
    use ingest::cost_explorer::{CostExplorerError, CostExplorerOptions, Window};
    let Some(source) = config.sources.cost_explorer.as_ref() else {
        bail!(
            "`doracost ingest cost-explorer` needs a [sources.cost_explorer] section in the config, \
             at least `billing_account = \"<payer account id>\"` (README: Cost Explorer)"
        );
    };
    let mut options = CostExplorerOptions::from_config(source);
    // AWS forecasts the metric behind the column the cost views sum.
    options.forecast = forecast.then_some(match config.reporting.cost_metric {
        model::config::CostMetric::EffectiveCost => source.effective_cost_metric,
        model::config::CostMetric::BilledCost => source.billed_cost_metric,
    });
    let now = chrono::Utc::now();
    let window = Window::covering(from, to, now.date_naive())?;
    let spinner = ProgressBar::new_spinner();
    let result =
        ingest::cost_explorer::ingest_cost_explorer(lake, &options, window, now, &mut |page| {
            spinner.set_message(page.to_owned());
            spinner.tick();
        })
        .await;
    spinner.finish_and_clear();
    let summary = result.map_err(|err| match err {
        CostExplorerError::Lake(e) => {
            anyhow::anyhow!("{e}\nthe tables written by this ingest were restored")
        }
        other => anyhow::anyhow!("{other}\nnothing was written: the lake is as it was"),
    })?;
    if format == Some(OutputFormat::Json) {
        let tables: Vec<_> = summary.outcomes.iter().map(outcome_json).collect();
        return Ok(Some(serde_json::json!({
                "source": ingest::cost_explorer::SOURCE,
                "window": { "start": summary.window.start.to_string(), "end_exclusive": summary.window.end.to_string() },
                "pages": summary.pages, "rows": summary.rows, "estimated_rows": summary.estimated_rows,
                "forecasts": summary.forecasts, "forecasts_unavailable": summary.forecasts_unavailable,
                "tables": tables,
        })));
    }
    println!(
        "ingested {} page(s) from Cost Explorer, {} to {} (end exclusive):",
        summary.pages, summary.window.start, summary.window.end
    );
    for o in &summary.outcomes {
        if o.replaced_slices > 0 {
            println!(
                "  {:<20} {:>9} rows ({} estimated), replacing {} month slice(s)",
                o.table, o.rows_in, summary.estimated_rows, o.replaced_slices
            );
        } else {
            println!(
                "  {:<20} {:>9} rows ({} scope(s) without enough history for AWS to forecast)",
                o.table, o.rows_in, summary.forecasts_unavailable
            );
        }
    }
    Ok(None)
}

/// A progress bar over the total size of `files`, on stderr, hidden when stderr is not a terminal;
/// a clone draws the same bar (the reading thread holds one).
#[derive(Clone)]
struct Bar(ProgressBar, u64);

impl Progress for Bar {
    fn bytes_read(&mut self, total: u64) {
        // Sources report per file; `1` holds the bytes of the files already finished.
        if total < self.0.position().saturating_sub(self.1) {
            self.1 = self.0.position();
        }
        self.0.set_position(self.1 + total);
    }
}

impl Bar {
    fn over(files: &[PathBuf]) -> Bar {
        let total: u64 = files.iter().map(|f| dir_size(f)).sum();
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar(bar, 0)
    }
}

fn dir_size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// Says on stderr when derived tables are stale (the config or the lake changed since they were
/// computed, e.g. an ingest with `--no-refresh`): the answer is right, only slower.
fn note_stale(engine: &Engine) {
    let stale: Vec<&str> = engine
        .derived()
        .iter()
        .filter(|d| d.status == query::derived::DerivedStatus::Stale)
        .map(|d| d.name.as_str())
        .collect();
    if !stale.is_empty() {
        eprintln!(
            "note: derived tables computed from another config or lake state ({}); computing \
             the views instead (`doracost refresh` makes this fast again)",
            stale.join(", ")
        );
    }
}

/// After a successful ingest: recomputes the derived tables the new data made stale (unless
/// `no_refresh`), printing what it did; with `--format json`, the ingest's `report` (not printed
/// yet) gets a `derived_tables` entry and is printed then. A failed refresh does not undo the
/// ingest (its data is in and correct; queries compute the views live until a refresh succeeds),
/// so it is a warning and an `error` entry, not a failure.
async fn finish_ingest(
    config: &Config,
    lake: &Lake,
    no_refresh: bool,
    format: Option<OutputFormat>,
    report: Option<serde_json::Value>,
) -> Result<()> {
    let refreshed = if no_refresh {
        serde_json::json!({ "skipped": true })
    } else {
        refresh_after_ingest(config, lake, format).await
    };
    if let Some(mut report) = report {
        report["derived_tables"] = refreshed;
        // The process's peak so far: the ingest's and the refresh's (`ingest_peak_rss_bytes`: the
        // ingest's alone).
        report["peak_rss_bytes"] = peak_rss_bytes().into();
        println!("{report}");
    }
    Ok(())
}

/// Refreshes the derived tables after an ingest (see [`finish_ingest`]); prints them for people,
/// and returns them as JSON (`{"refreshed": [{table, rows, seconds}]}` or `{"error": …}`).
async fn refresh_after_ingest(
    config: &Config,
    lake: &Lake,
    format: Option<OutputFormat>,
) -> serde_json::Value {
    let started = Instant::now();
    match server::pipeline::refresh_derived(lake, config).await {
        Ok(done) => {
            if matches!(format, None | Some(OutputFormat::Table)) && !done.is_empty() {
                print_refreshed(&done);
            }
            let tables: Vec<_> = done
                .iter()
                .map(|d| serde_json::json!({ "table": d.name, "rows": d.rows, "seconds": d.seconds }))
                .collect();
            // The refresh's own time: tables refreshed in parts together each report the time
            // since it began, so their seconds do not add up.
            serde_json::json!({ "refreshed": tables, "seconds": started.elapsed().as_secs_f64() })
        }
        Err(e) => {
            eprintln!(
                "warning: the derived tables were not refreshed ({e}); queries compute the views \
                 until `doracost refresh` succeeds"
            );
            serde_json::json!({ "error": e.to_string() })
        }
    }
}

fn print_refresh(engine: &Engine, done: &[query::Refreshed], format: Option<OutputFormat>) {
    if format == Some(OutputFormat::Json) {
        let tables: Vec<_> = engine
            .derived()
            .iter()
            .map(|v| {
                let written = done.iter().find(|d| d.name == v.name);
                serde_json::json!({
                    "table": v.name,
                    "was": v.status.as_str(),
                    "refreshed": written.is_some(),
                    "rows": written.map(|d| d.rows),
                    "version": written.map(|d| d.version).or(v.version),
                    "seconds": written.map(|d| d.seconds),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "derived_tables": tables }));
        return;
    }
    if done.is_empty() {
        println!("the derived tables are fresh: nothing to refresh");
    } else {
        print_refreshed(done);
    }
}

/// The derived tables a refresh wrote, for people.
fn print_refreshed(done: &[query::Refreshed]) {
    println!("refreshed {} derived table(s):", done.len());
    for d in done {
        println!("  {:<20} {:>9} rows in {:.1} s", d.name, d.rows, d.seconds);
    }
}

/// What an ingest did to one table, for `--format json`.
pub(crate) fn outcome_json(o: &model::WriteOutcome) -> serde_json::Value {
    serde_json::json!({
        "table": o.table, "rows_in": o.rows_in, "inserted": o.inserted, "updated": o.updated,
        "replaced_slices": o.replaced_slices, "version": o.version,
    })
}

/// Prints an ingest's summary for people, or returns it as JSON for [`finish_ingest`] to print.
fn print_ingest(
    summary: &IngestSummary,
    format: Option<OutputFormat>,
) -> Option<serde_json::Value> {
    if format == Some(OutputFormat::Json) {
        let tables: Vec<_> = summary.outcomes.iter().map(outcome_json).collect();
        return Some(serde_json::json!({
            "source": summary.source,
            "files": summary.files,
            "tables": tables,
            "ingest_peak_rss_bytes": peak_rss_bytes(),
        }));
    }
    println!(
        "ingested {} file(s) from {}:",
        summary.files.len(),
        summary.source
    );
    for o in &summary.outcomes {
        if o.replaced_slices > 0 {
            println!(
                "  {:<20} {:>9} rows, replacing {} bill slice(s)",
                o.table, o.rows_in, o.replaced_slices
            );
        } else {
            println!(
                "  {:<20} {:>9} rows: {} new, {} changed, {} unchanged",
                o.table,
                o.rows_in,
                o.inserted,
                o.updated,
                o.rows_in.saturating_sub(o.inserted + o.updated)
            );
        }
    }
    None
}

async fn run_sql(engine: &Engine, sql: &str, format: Format) -> Result<()> {
    let (schema, batches) = engine.query_with_schema(sql).await?;
    let bytes = render(&schema, &batches, format)?;
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}

/// `doracost sql --format parquet`: the answer as a Parquet file, written batch by batch (a row
/// group in memory at most) to `out`, or to standard output when it is not a terminal.
/// Writes `bytes` to `path` through a temporary file beside it and a rename: a failed or killed
/// write leaves no half-written file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

async fn sql_to_parquet(engine: &Engine, sql: &str, out: Option<&Path>) -> Result<()> {
    use futures::StreamExt;
    use query::encode::{Encoder, Encoding, Ending};
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            bail!("Parquet is binary: give --out FILE, or redirect standard output to a file")
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut stream = engine.query_stream(sql).await?;
    let (mut encoder, opening) = Encoder::start(Encoding::Parquet, stream.schema())?;
    sink.write_all(&opening)?;
    let mut ending = Ending::default();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        ending.rows += batch.num_rows();
        sink.write_all(&encoder.batch(&batch)?)?;
    }
    sink.write_all(&encoder.finish(ending)?)?;
    sink.flush()?;
    Ok(())
}

/// `doracost demo`: the sample organisation, ingested through the real paths, then a summary.
async fn demo(cli: &Cli, args: &DemoArgs, format: Option<OutputFormat>) -> Result<()> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| "data".into());
    let sample_dir = PathBuf::from(&data_dir).join("sample");
    let lake = Lake::new(&data_dir, HashMap::new())?;
    let empty = match lake.open_existing(model::Table::Deployments).await? {
        None => true,
        Some(t) => t
            .snapshot()
            .map(|s| s.log_data().num_files() == 0)
            .unwrap_or(true),
    };
    if empty {
        eprintln!(
            "the lake at {data_dir} is empty: generating the small sample organisation into {}",
            sample_dir.display()
        );
        sample_data::generate(&sample_data::GenerateOptions {
            scale: sample_data::Scale::Small,
            seed: sample_data::DEFAULT_SEED,
            out_dir: sample_dir.clone(),
            formats: sample_data::Formats::default(),
        })
        .context("generating the sample organisation")?;
        let quiet = || Box::new(ingest::progress::NoProgress);
        let events = ingest::pipeline::ingest_events(&lake, &[sample_dir.join("events")], quiet())
            .await
            .map_err(pipeline_error)?;
        let bills = ingest::pipeline::ingest_focus(&lake, &[sample_dir.join("costs")], quiet())
            .await
            .map_err(pipeline_error)?;
        let quiet = format.is_some_and(|f| f != OutputFormat::Table);
        if !quiet {
            print_ingest(&events, None);
            print_ingest(&bills, None);
        }
        let shown = if quiet {
            Some(OutputFormat::Json)
        } else {
            None
        };
        refresh_after_ingest(&demo_config(cli, &sample_dir)?, &lake, shown).await;
    }
    let config = demo_config(cli, &sample_dir)?;
    let engine = open_engine(&lake, &config).await?;
    let format = to_query_format(format);
    println!();
    run_sql(&engine, DEMO_SUMMARY_SQL, format).await?;
    drop(engine);
    if !args.no_serve {
        serve(
            config,
            lake,
            &format!("127.0.0.1:{}", args.port),
            &format!("127.0.0.1:{}", args.pg_port),
        )
        .await?;
    }
    Ok(())
}

/// `doracost serve` (and the end of `doracost demo`): the server over the lake, HTTP on
/// `listen` and PostgreSQL on `pg_listen`, until SIGINT or SIGTERM; the first line on stdout
/// names both addresses.
async fn serve(config: Config, lake: Lake, listen: &str, pg_listen: &str) -> Result<()> {
    let options = server::ServerOptions::from_config(&config, read_derived())?;
    let listener = server::bind(listen, options.token.is_some()).await?;
    let address = listener.local_addr().context("reading the bound address")?;
    let pg_listener = server::pg::bind(pg_listen, options.pg_password.is_some()).await?;
    let pg_address = pg_listener
        .local_addr()
        .context("reading the bound PostgreSQL address")?;
    // Alerts: their secrets resolved and checked before anything listens.
    let alerting = if config.alerts.is_some() || !config.reports.is_empty() {
        let notifier =
            server::alerts::Notifier::from_config(&config).map_err(anyhow::Error::msg)?;
        Some((notifier, public_url(&config)))
    } else {
        None
    };
    let state = server::AppState::new(config, lake, options);
    let _background = state.start();
    let scheduler = alerting.map(|(notifier, url)| {
        tokio::spawn(server::alerts::run_scheduler(state.clone(), notifier, url))
    });
    // One signal stops both listeners.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        server::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let pg = tokio::spawn(server::pg::run(
        pg_listener,
        state.clone(),
        until_stopped(stopped.clone()),
    ));
    println!(
        "serving on http://{address}/ and postgresql://{}@{pg_address}/{} (Ctrl-C stops)",
        server::pg::USER,
        server::pg::USER
    );
    std::io::stdout().flush()?;
    let served = server::run(listener, state, until_stopped(stopped)).await;
    signal.abort();
    if served.is_err() {
        pg.abort();
    }
    let _ = pg.await;
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    served.context("serving")?;
    eprintln!("stopped");
    Ok(())
}

/// `doracost alerts …`.
async fn alerts(config: &Config, lake: &Lake, command: &crate::AlertsCommand) -> Result<()> {
    let at_time = |text: &Option<String>| -> Result<chrono::DateTime<chrono::Utc>> {
        match text {
            None => Ok(chrono::Utc::now()),
            Some(t) => Ok(chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| {
                    format!("--now `{t}`: expected an RFC 3339 time such as 2026-05-01T08:00:00Z")
                })?
                .with_timezone(&chrono::Utc)),
        }
    };
    let notifier = server::alerts::Notifier::from_config(config).map_err(anyhow::Error::msg)?;
    if let crate::AlertsCommand::SendTest { to } = command {
        let now = chrono::Utc::now();
        let message = server::alerts::text::test_message(
            &config
                .alerts
                .as_ref()
                .map_or_else(|| "doracost@localhost".to_owned(), |a| a.from.clone()),
        );
        notifier
            .email(
                &format!("test/{to}/{}", now.timestamp_micros()),
                std::slice::from_ref(to),
                &message,
            )
            .await
            .map_err(|e| anyhow::anyhow!("the test message to {to} was not sent: {e}"))?;
        println!("sent a test message to {to}");
        return Ok(());
    }
    let parts = AlertParts::open(config, lake, notifier).await?;
    let at = parts.alerting(config, lake);
    let print_queued = |rows: &[server::alerts::AlertRow], verb: &str| {
        if rows.is_empty() {
            println!("no new alert");
        }
        for r in rows {
            println!("{verb} {} [{}]: {}", r.channel, r.key, r.subject);
        }
    };
    let print_sent = |deliveries: &[server::alerts::Delivery]| -> bool {
        let mut failed = false;
        for d in deliveries {
            match &d.outcome {
                Ok(()) => println!(
                    "sent {} to {}: {}",
                    d.channel,
                    d.recipients.join(", "),
                    d.subject
                ),
                Err(e) => {
                    failed = true;
                    println!(
                        "not sent {} to {}: {} ({e}; retried later)",
                        d.channel,
                        d.recipients.join(", "),
                        d.subject
                    );
                }
            }
        }
        failed
    };
    let failed = match command {
        crate::AlertsCommand::Check { dry_run, now } => {
            let now = at_time(now)?;
            let what = server::alerts::What {
                budgets: true,
                anomalies: true,
            };
            let queued = server::alerts::evaluate(&at, what, now, *dry_run)
                .await
                .map_err(anyhow::Error::msg)?;
            if *dry_run {
                print_queued(&queued, "would queue");
                return Ok(());
            }
            print_queued(&queued, "queued");
            let sent = server::alerts::deliver(&at, now)
                .await
                .map_err(anyhow::Error::msg)?;
            print_sent(&sent)
        }
        crate::AlertsCommand::Tick { now } => {
            let now = at_time(now)?;
            let tick = server::alerts::tick(&at, now)
                .await
                .map_err(anyhow::Error::msg)?;
            for (job, scheduled) in &tick.ran {
                println!(
                    "ran {job} (scheduled {})",
                    scheduled.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            print_queued(&tick.queued, "queued");
            print_sent(&tick.deliveries)
        }
        crate::AlertsCommand::SendTest { .. } => false,
    };
    if failed {
        bail!(
            "some alerts were not sent; they stay queued and are retried (see `SELECT * FROM alerts`)"
        );
    }
    Ok(())
}

/// After a cost ingest, with `[alerts]` configured: the budgets evaluated on the new costs and
/// what is due sent (DESIGN §5: evaluation after each cost ingest). The ingest has landed
/// whatever happens here: a failure is a warning on stderr, and what was not sent stays queued.
async fn alerts_after_cost_ingest(config: &Config, lake: &Lake) {
    if config.alerts.is_none() {
        return;
    }
    let result = async {
        let notifier = server::alerts::Notifier::from_config(config).map_err(anyhow::Error::msg)?;
        let parts = AlertParts::open(config, lake, notifier).await?;
        let at = parts.alerting(config, lake);
        let what = server::alerts::What {
            budgets: true,
            anomalies: false,
        };
        let now = chrono::Utc::now();
        let queued = server::alerts::evaluate(&at, what, now, false)
            .await
            .map_err(anyhow::Error::msg)?;
        let sent = server::alerts::deliver(&at, now)
            .await
            .map_err(anyhow::Error::msg)?;
        Ok::<_, anyhow::Error>((queued, sent))
    }
    .await;
    match result {
        Ok((queued, sent)) => {
            for r in &queued {
                eprintln!("budget alert queued: {}", r.subject);
            }
            for d in &sent {
                match &d.outcome {
                    Ok(()) => eprintln!(
                        "sent {} to {}: {}",
                        d.channel,
                        d.recipients.join(", "),
                        d.subject
                    ),
                    Err(e) => eprintln!(
                        "warning: not sent {} to {}: {} ({e}; retried by the next check)",
                        d.channel,
                        d.recipients.join(", "),
                        d.subject
                    ),
                }
            }
        }
        Err(e) => {
            eprintln!("warning: the budget alerts were not evaluated after this ingest: {e:#}")
        }
    }
}

/// What the CLI's alert commands evaluate and send with: the dashboards (charts in emails), the
/// query engine over the lake, and the channels.
struct AlertParts {
    catalog: dashboards::Catalog,
    engine: Engine,
    notifier: server::alerts::Notifier,
}

impl AlertParts {
    async fn open(
        config: &Config,
        lake: &Lake,
        notifier: server::alerts::Notifier,
    ) -> Result<AlertParts> {
        let catalog = dashboards::Catalog::load(config.dashboards.dir.as_deref())
            .context("reading the dashboards")?;
        let engine = open_engine(lake, config)
            .await
            .context("opening the lake")?;
        Ok(AlertParts {
            catalog,
            engine,
            notifier,
        })
    }

    fn alerting<'a>(&'a self, config: &'a Config, lake: &'a Lake) -> server::alerts::Alerting<'a> {
        server::alerts::Alerting {
            config,
            lake,
            engine: &self.engine,
            catalog: &self.catalog,
            notifier: &self.notifier,
            public_url: public_url(config),
        }
    }
}

/// Where emails link to: `[alerts] public_url`, else the configured listen address.
fn public_url(config: &Config) -> String {
    match config.alerts.as_ref().and_then(|a| a.public_url.clone()) {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", config.server.listen),
    }
}

/// The demo's config: `--config` when given, else the sample organisation's.
fn demo_config(cli: &Cli, sample_dir: &Path) -> Result<Config> {
    let config_path = sample_dir.join("doracost.toml");
    if cli.config.is_some() || !config_path.exists() {
        load_config(cli.config.as_deref())
    } else {
        Ok(Config::load(&config_path)?)
    }
}

/// The demo's summary over the whole sample period: per service, the DORA views' deployments, lead
/// time, change failure, recovery and rework, incidents, and allocated cost (`cost_allocated`:
/// the configured cost metric, by the services' cost rules).
const DEMO_SUMMARY_SQL: &str = "
WITH dep AS (
  SELECT service, count(*) AS deployments, sum(CASE WHEN is_failed THEN 1 ELSE 0 END) AS failed,
         sum(CASE WHEN is_rework THEN 1 ELSE 0 END) AS rework
  FROM dora_deployments GROUP BY service
), chg AS (
  SELECT service, median(lead_time_hours) AS lead_time_h FROM dora_changes GROUP BY service
), rec AS (
  SELECT service, median(recovery_hours) AS recovery_h FROM dora_recoveries GROUP BY service
), inc AS (
  SELECT service, count(*) AS incidents, sum(CASE WHEN is_open THEN 1 ELSE 0 END) AS open_incidents
  FROM dora_incidents GROUP BY service
), cost AS (
  SELECT service, sum(cost) AS cost FROM cost_allocated GROUP BY service
)
SELECT s.service, s.team, coalesce(d.deployments, 0) AS deployments,
       round(c.lead_time_h, 1) AS lead_time_h_p50,
       round(100.0 * d.failed / d.deployments, 1) AS change_failure_pct,
       round(r.recovery_h, 1) AS recovery_h_p50,
       round(100.0 * d.rework / d.deployments, 1) AS rework_pct,
       coalesce(i.incidents, 0) AS incidents, coalesce(i.open_incidents, 0) AS open_incidents,
       CAST(k.cost AS DECIMAL(20, 2)) AS cost
FROM services s
LEFT JOIN dep d ON d.service = s.service
LEFT JOIN chg c ON c.service = s.service
LEFT JOIN rec r ON r.service = s.service
LEFT JOIN inc i ON i.service = s.service
LEFT JOIN cost k ON k.service = s.service
ORDER BY s.team, s.service";

/// This process's peak resident memory, from `/proc/self/status` (Linux); `None` elsewhere.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
