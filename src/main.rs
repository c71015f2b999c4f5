//! `doracost`: the command line. Argument parsing only; each command calls into the crates.

mod commands;
mod git_ingest;
mod github_ingest;
mod pagerduty_ingest;
mod repl;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// DORA metrics and cloud cost per service, in one binary.
#[derive(Debug, Parser)]
#[command(name = "doracost", version, about)]
pub struct Cli {
    /// The configuration file (default: ./doracost.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The lake folder or URL, overriding the config (default: ./data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Output for machines instead of people.
    #[arg(long, global = true, value_enum)]
    pub format: Option<OutputFormat>,
    /// How log lines on stderr are written: text for people, JSON (one object per line, with the
    /// request's span) for log collectors. `DORACOST_LOG` sets the level (e.g. `info`, `debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// For the kill tests: lake writes stop for good right after this step (a table's commit, by
    /// its name, or `_commits`, the commit log's entry), so a test can kill the process there.
    #[arg(long, global = true, hide = true, value_name = "STEP")]
    pub pause_after: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table (default).
    Table,
    /// CSV with a header.
    Csv,
    /// JSON.
    Json,
    /// Parquet (`doracost sql` only), to `--out FILE` or a redirected stdout.
    Parquet,
    /// One self-contained HTML page (`doracost report` only; its default).
    Html,
    /// Markdown (`doracost report` only).
    Md,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the sample organisation if the lake is empty, ingest it, and print a summary.
    Demo(DemoArgs),
    /// Read a source into the lake, then refresh the derived tables.
    Ingest(IngestArgs),
    /// The DORA metrics per service, team and everything, per day, ISO week or month.
    Dora(DoraArgs),
    /// Cost per service for one month: direct and shared cost, unallocated, forecast, cost per
    /// deployment.
    Costs(CostsArgs),
    /// Recompute the lake's derived tables (the per-row metric views kept under `_derived/`)
    /// that are stale or missing; ingests do this themselves. Needed after a config change, for
    /// fast queries.
    Refresh(RefreshArgs),
    /// Run read-only SQL over the lake.
    Sql(SqlArgs),
    /// Serve the JSON API and health checks over the lake, following its new commits.
    Serve(ServeArgs),
    /// The monthly infra review (or another dashboard) as one file: self-contained HTML with
    /// the charts inline, or a Markdown summary.
    Report(ReportArgs),
    /// Budget alerts and scheduled reports: evaluate now, send a test message.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The sample organisation.
    #[command(subcommand)]
    Sample(SampleCommand),
    /// The lake's commit log, Delta's time travel as backup and rollback, and file clean-up.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Documentation generated from the code.
    #[command(subcommand, hide = true)]
    Docs(DocsCommand),
}

/// `doracost alerts …`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Evaluate every budget and the recent anomalies now, queue what is new (each alert once
    /// per period), send what is due, and print it.
    Check {
        /// Print what would be queued; write and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Evaluate as at this time (RFC 3339) instead of now.
        #[arg(long, hide = true, value_name = "TIME")]
        now: Option<String>,
    },
    /// Send a test message through the configured SMTP server, to check the settings.
    SendTest {
        /// The address to send it to.
        #[arg(long, value_name = "ADDRESS")]
        to: String,
    },
    /// One turn of the server's scheduler: jobs due since their last run, then due sends.
    #[command(hide = true)]
    Tick {
        /// As at this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
}

/// `doracost docs …`
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// README's list of every view and column, from the comments of `query/sql/*.sql`: printed,
    /// or written into FILE in place of the section between its markers.
    Views {
        /// The README to update.
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
}

/// `doracost lake …`
#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// The lake's commits, newest first: each ingest's log entry and the table versions it left.
    History {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Bring every table back to what one log entry named (a new entry: it can be undone the
    /// same way). Within `[lake] retention_hours` only.
    Restore {
        /// The log entry's version, from `doracost lake history`.
        #[arg(long, value_name = "VERSION")]
        to_version: u64,
    },
    /// Delete the data files the tables stopped using more than `[lake] retention_hours` ago.
    Vacuum,
}

/// `doracost demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after the summary instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// The port to serve on (loopback only; 0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The PostgreSQL endpoint's port (loopback only; 0 picks a free one).
    #[arg(long, default_value_t = 5433)]
    pub pg_port: u16,
}

/// `doracost serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The HTTP address, IP:PORT (default: `[server] listen`, else 127.0.0.1:8080; port 0 picks a
    /// free one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The PostgreSQL endpoint's address, IP:PORT (default: `[server] pg_listen`, else
    /// 127.0.0.1:5433; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub pg_listen: Option<String>,
}

/// `doracost ingest …`
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Do not refresh the derived tables afterwards (when several ingests run in a row: refresh
    /// once at the end with `doracost refresh`; until then queries compute the views).
    #[arg(long, global = true)]
    pub no_refresh: bool,
    /// Rows read before each commit of a chunk (default: 250,000 for events, 262,144 for
    /// bills); tests make small inputs take many chunks with it.
    #[arg(long, global = true, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_rows: Option<u64>,
    /// The source.
    #[command(subcommand)]
    pub source: IngestCommand,
}

/// The sources `doracost ingest` reads.
#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Deployments, changes and incidents: the generic event format (NDJSON, JSON, CSV) or
    /// Apache DevLake webhook payloads. Folders are read whole.
    Events {
        /// Files or folders (default: `[sources.events] paths` from the config).
        files: Vec<PathBuf>,
    },
    /// FOCUS 1.0–1.2 bills, CSV or Parquet. Each (account, month) slice replaces the one before.
    Focus {
        /// Files or folders (default: `[sources.focus] paths` from the config).
        files: Vec<PathBuf>,
        /// BillingAccountId for files or rows without one (the FOCUS specification's example
        /// ledgers have none).
        #[arg(long, value_name = "ID")]
        default_billing_account: Option<String>,
        /// BillingCurrency for files or rows without one (ISO 4217, e.g. USD).
        #[arg(long, value_name = "CODE", value_parser = parse_currency)]
        default_currency: Option<String>,
        /// ProviderName for files or rows without one.
        #[arg(long, value_name = "NAME")]
        default_provider: Option<String>,
    },
    /// AWS Cost and Usage Reports: CUR 2.0 (Parquet or CSV) or legacy CUR CSV, plain or `.csv.gz`.
    /// Each (payer account, month) slice replaces the one before.
    Cur {
        /// Files or folders (default: `[sources.cur] paths` from the config).
        files: Vec<PathBuf>,
    },
    /// GitHub (`[sources.github]`): deployments (or deploy workflow runs, or releases), the
    /// commits each shipped, their pull requests and incident issues; incremental, with
    /// conditional requests.
    Github {
        /// Repositories, `OWNER/NAME` (default: `[sources.github] repos`). Repeatable.
        #[arg(long = "repo", value_name = "OWNER/NAME")]
        repos: Vec<String>,
    },
    /// Commit history from local clones (no API, no limits): each commit's times and touched
    /// paths, and the changes shipped by deployments whose source named only their head commit.
    Git {
        /// A clone's folder, its `.git` or a bare repository, as `PATH` or `PATH=OWNER/NAME`
        /// (default name: the `origin` remote's, else the path's last two parts). Repeatable.
        #[arg(long = "repo", value_name = "PATH[=OWNER/NAME]", required = true)]
        repos: Vec<String>,
        /// Threads that read trees (default: every core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
        threads: Option<u64>,
    },
    /// PagerDuty incidents (`[sources.pagerduty]`, REST API v2): each one's start,
    /// acknowledgement and resolution, mapped to our services; pages the urgency and priority
    /// filters leave out are not incidents. Resumes from the last run's cursor.
    Pagerduty {
        /// Read incidents created from this time, YYYY-MM-DD (UTC) or RFC 3339 (default: the
        /// last run's cursor, less the configured overlap; on a first run `since` from the
        /// config, else 90 days ago).
        #[arg(long, value_name = "DATE", value_parser = pagerduty_ingest::parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Read incidents created before this time (default: now).
        #[arg(long, value_name = "DATE", value_parser = pagerduty_ingest::parse_time)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// AWS Cost Explorer (`[sources.cost_explorer]`): daily cost by service tag and AWS service.
    /// The window is widened to whole months, and each month replaces the one before.
    CostExplorer {
        /// First day, YYYY-MM-DD (default: the 1st of last month).
        #[arg(long, value_name = "DATE")]
        from: Option<chrono::NaiveDate>,
        /// Last day, inclusive, YYYY-MM-DD (default: today, UTC).
        #[arg(long, value_name = "DATE")]
        to: Option<chrono::NaiveDate>,
        /// Also store AWS's own forecast of the rest of this month (GetCostForecast), for the
        /// whole bill and each service tag value, in the `provider_forecasts` table.
        #[arg(long)]
        forecast: bool,
    },
}

/// `doracost dora`
#[derive(Debug, Args)]
pub struct DoraArgs {
    /// One service.
    #[arg(long, conflicts_with = "team")]
    pub service: Option<String>,
    /// One team (its services pooled).
    #[arg(long)]
    pub team: Option<String>,
    /// The period length.
    #[arg(long, value_enum, default_value_t = Period::Month)]
    pub period: Period,
    /// The first period to show: the one containing this date (YYYY-MM-DD). Without --from and
    /// --to, the latest period.
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// The last period to show: the one containing this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
}

/// `doracost costs`
#[derive(Debug, Args)]
pub struct CostsArgs {
    /// One service (or `unallocated`).
    #[arg(long, conflicts_with = "team")]
    pub service: Option<String>,
    /// One team's services.
    #[arg(long)]
    pub team: Option<String>,
    /// The month (YYYY-MM; default: the month of the bill's latest complete data).
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: Option<chrono::NaiveDate>,
}

/// `doracost report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The month (YYYY-MM; default: the latest complete month of the lake).
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: Option<chrono::NaiveDate>,
    /// Write here instead of to standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Which dashboard (default: the infra review).
    #[arg(long, default_value = "review")]
    pub dashboard: String,
}

/// `YYYY-MM` as the month's first day.
fn parse_month(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
        .map_err(|_| format!("expected a month as YYYY-MM (e.g. 2025-11), found `{text}`"))
}

/// Reporting periods (in the configured time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Period {
    /// Calendar day.
    Day,
    /// ISO week (Monday to Sunday).
    Week,
    /// Calendar month.
    Month,
}

/// `doracost sql`
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query; without one, a prompt (line editing, history, `\timing`, `\dt`, `\dv`, `\q`)
    /// on a terminal, else the `;`-ended statements of standard input.
    pub query: Option<String>,
    /// Write the answer to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `doracost sample …`
#[derive(Debug, Subcommand)]
pub enum SampleCommand {
    /// Write the sample organisation's source files (events, FOCUS bills, config, ground truth).
    Generate {
        /// small (12 services, checked in), medium (~100), large (~1,000 services, 20M cost rows).
        #[arg(long, default_value = "small")]
        scale: String,
        /// The folder to write into.
        #[arg(long)]
        out: PathBuf,
        /// The random seed (same seed, same bytes).
        #[arg(long, default_value_t = sample_data::DEFAULT_SEED)]
        seed: u64,
        /// Also write the AWS spend as Cost and Usage Reports under OUT/cur/, one file a month.
        #[arg(long, value_enum, value_name = "DIALECT")]
        cur: Option<CurDialect>,
        /// The source formats to write, comma-separated: events, focus, github, git, pagerduty,
        /// or all (doracost.toml and truth.json are always written).
        #[arg(long, value_name = "LIST", default_value = "events,focus")]
        formats: sample_data::Formats,
    },
}

/// The CUR dialects `sample generate --cur` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CurDialect {
    /// CUR 2.0 (AWS Data Exports) as Parquet, tags and product as map columns.
    Cur2Parquet,
    /// CUR 2.0 as CSV, tags and product as JSON text.
    Cur2Csv,
    /// Legacy CUR as CSV (`lineItem/UnblendedCost`, `resourceTags/user:service`).
    LegacyCsv,
}

/// An ISO 4217 currency code: three letters, upper-cased.
fn parse_currency(text: &str) -> Result<String, String> {
    if text.len() == 3 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(format!(
            "expected a three-letter ISO 4217 code such as USD, found {text:?}"
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs each request (info); a command only its warnings. delta-rs warns on every
    // MERGE that it derived a file metric itself ("Missing target skipped-file metric"): noise
    // for our users, so its merge logs only errors.
    let serving = match &cli.command {
        Command::Serve(_) => true,
        Command::Demo(args) => !args.no_serve,
        _ => false,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DORACOST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if serving {
            "warn,deltalake_core::operations::merge=error,doracost=info,server=info,query=info,model=info,ingest=info"
        } else {
            "warn,deltalake_core::operations::merge=error"
        })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    // Both rustls crypto backends are linked (ring via object_store, aws-lc-rs via the AWS SDK), so
    // rustls cannot choose one itself: pick the one the AWS SDK uses. Fails only if already set.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The query sessions' memory pool (the library reads no environment itself).
    if let Ok(text) = std::env::var("DORACOST_MEMORY_LIMIT") {
        match query::engine::parse_size(&text) {
            Some(bytes) => query::engine::set_memory_limit(bytes),
            None => {
                eprintln!(
                    "error: DORACOST_MEMORY_LIMIT={text:?} is not a size like 12G, 800M or 1000000"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `doracost refresh`.
#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// Deployments per part of a refresh in parts (benchmarks: memory against time).
    #[arg(long, hide = true, default_value_t = query::engine::REFRESH_PART_DEPLOYMENTS)]
    pub part_deployments: usize,
}
