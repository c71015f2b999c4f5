import re
p='/work/main/src/main.rs'; s=open(p).read()
s=s.replace('''    /// Run read-only SQL over the lake.
    Sql(SqlArgs),''','''    /// Run read-only SQL over the lake.
    Sql(SqlArgs),
    /// Serve the JSON API and health checks over the lake, following its new commits.
    Serve(ServeArgs),''')
s=s.replace('''/// `doracost demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after the summary (serving comes with the server).
    #[arg(long)]
    pub no_serve: bool,
}''','''/// `doracost demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after the summary instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// The port to serve on (loopback only; 0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// `doracost serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The HTTP address, IP:PORT (default: `[server] listen`, else 127.0.0.1:8080; port 0 picks a
    /// free one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}''')
open(p,'w').write(s)

p='/work/main/src/commands.rs'; s=open(p).read()
s=s.replace('''use crate::{
    Cli, Command, CostsArgs, DemoArgs, DoraArgs, IngestCommand, OutputFormat, Period, SampleCommand,
};''','''use crate::{
    Cli, Command, CostsArgs, DemoArgs, DoraArgs, IngestCommand, OutputFormat, Period, SampleCommand,
};
use query::reports::{BoundQuery, Detail, Scope};''')
s=s.replace('''        Command::Sql(ref args) => {''','''        Command::Serve(ref args) => {
            let config = load_config(cli.config.as_deref())?;
            let lake = open_lake(&config, cli.data_dir.as_deref())?;
            let listen = args
                .listen
                .clone()
                .unwrap_or_else(|| config.server.listen.clone());
            serve(config, lake, &listen).await
        }
        Command::Sql(ref args) => {''')
open(p,'w').write(s)
print("ok")

p='/work/main/src/commands.rs'; s=open(p).read()
# dora and costs through the shared parameterised reports
s=s.replace('''            note_stale(&engine);
            let sql = dora_sql(args, format);
            run_sql(&engine, &sql, to_query_format(format)).await''','''            note_stale(&engine);
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
            run_bound(&engine, &report.query(detail(format)), to_query_format(format)).await''')
s=s.replace('''            let config = load_config(cli.config.as_deref())?;
            let sql = costs_sql(args, &config, format)?;
            let lake = open_lake(&config, cli.data_dir.as_deref())?;
            let engine = Engine::open(&lake, &config)
                .await
                .context("opening the lake")?;
            note_stale(&engine);
            run_sql(&engine, &sql, to_query_format(format)).await''','''            let config = load_config(cli.config.as_deref())?;
            let report = query::reports::CostsReport {
                scope: scope(&args.service, &args.team)
                    .checked(&config, true)
                    .map_err(flag_error)?,
                month: args.month,
            };
            let lake = open_lake(&config, cli.data_dir.as_deref())?;
            let engine = Engine::open(&lake, &config)
                .await
                .context("opening the lake")?;
            note_stale(&engine);
            run_bound(&engine, &report.query(detail(format)), to_query_format(format)).await''')
start=s.index('/// The `doracost dora` query over')
end=s.index('fn to_query_format')
s=s[:start]+'''/// `--service` or `--team` as a report's scope (clap keeps them apart).
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

'''+s[end:]
s=s.replace('''    let engine = Engine::open(&lake, &demo_config(cli, &sample_dir)?).await?;
    let format = to_query_format(format);
    println!();
    run_sql(&engine, DEMO_SUMMARY_SQL, format).await?;
    if !args.no_serve {
        eprintln!(
            "(the dashboards and the server come with the server issue; stopping after the summary)"
        );
    }
    Ok(())''','''    let config = demo_config(cli, &sample_dir)?;
    let engine = Engine::open(&lake, &config).await?;
    let format = to_query_format(format);
    println!();
    run_sql(&engine, DEMO_SUMMARY_SQL, format).await?;
    drop(engine);
    if !args.no_serve {
        serve(config, lake, &format!("127.0.0.1:{}", args.port)).await?;
    }
    Ok(())''')
s=s.replace('''/// The demo's config: `--config` when given''','''/// `doracost serve` (and the end of `doracost demo`): the server over the lake until SIGINT or
/// SIGTERM; the first line on stdout names the address it serves on.
async fn serve(config: Config, lake: Lake, listen: &str) -> Result<()> {
    let listener = server::bind(listen, config.server.token.is_some()).await?;
    let address = listener.local_addr().context("reading the bound address")?;
    let state = server::AppState::new(config, lake, server::ServerOptions::default());
    let _watcher = state.watch_lake();
    println!("serving on http://{address}/ (Ctrl-C stops)");
    std::io::stdout().flush()?;
    server::run(listener, state, server::shutdown_signal())
        .await
        .context("serving")?;
    eprintln!("stopped");
    Ok(())
}

/// The demo's config: `--config` when given''')
open(p,'w').write(s)
print('ok2')
