//! The session: registers tables and runs read-only SQL.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use model::{Config, Lake, LakeError, Table};

use crate::config_tables;
use crate::derived::{DerivedView, LakeSide};
use datafusion::catalog::TableProvider;

/// A query failure.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Planning or running the SQL failed (syntax, unknown column, refused statement …).
    #[error(transparent)]
    Sql(#[from] datafusion::error::DataFusionError),
    /// A view of `sql/dora.sql` did not plan (a defect, or a lake table of another schema).
    #[error("the metric views: {0}")]
    Views(String),
    /// The refresh in parts could not write or read its temporary files.
    #[error("the refresh's temporary file {path}: {message}")]
    Spill {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// Registering a Delta table failed.
    #[error("table `{table}`: {message}")]
    Register {
        /// The table.
        table: &'static str,
        /// What failed.
        message: String,
    },
}

/// A DataFusion session over one lake and one configuration.
pub struct Engine {
    ctx: SessionContext,
    /// The lake, when the session reads one (not for in-memory tables).
    lake: Option<Lake>,
    /// The persisted views and what the session found of their derived tables.
    derived: Vec<DerivedView>,
    /// The content id of every lake table as the session opened it (empty without a lake).
    contents: std::collections::BTreeMap<String, String>,
    /// What the derived tables' stamps are made of, to compute them for another lake state.
    recipe: Option<crate::derived::StampRecipe>,
    /// The configuration the views were created with.
    config: Config,
    /// The version of the lake's commit log the session was opened at (none without a lake, or
    /// for a lake written before the log).
    log_version: Option<u64>,
}

/// Deployments per part of a refresh in parts (`Engine::refresh_derived_in_parts`). Measured on
/// the large sample organisation (1.63M deployments, 2 cores): parts of 100,000 peaked at 1.26 GB
/// in 101 s, of 50,000 at 0.97 GB in 89 s, of 25,000 at 0.80 GB in 100 s (the lake is read once
/// whatever the part count).
pub const REFRESH_PART_DEPLOYMENTS: usize = 25_000;

/// One derived table written by [`Engine::refresh_derived`].
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The view.
    pub name: String,
    /// Its rows.
    pub rows: usize,
    /// The derived table's new Delta version.
    pub version: u64,
    /// Seconds spent computing and writing it.
    pub seconds: f64,
    /// Only the rows of the services an ingest touched were recomputed (see
    /// [`crate::incremental`]).
    pub incremental: bool,
}

/// `provider`, a table an older doracost wrote before some of its canonical columns existed, read
/// in the canonical schema: the missing columns (nullable, see [`model::lake::missing_columns`])
/// as nulls, so the views and the incremental refresh see every table alike. (The next write to
/// the table adds them.)
fn with_missing_columns(
    ctx: &SessionContext,
    table: Table,
    provider: Arc<dyn TableProvider>,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    use datafusion::common::{Column, ScalarValue};
    use datafusion::error::DataFusionError;
    use datafusion::logical_expr::{Expr, lit};
    let present = provider.schema();
    let canonical =
        model::lake::read_schema(table).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let columns = canonical
        .fields()
        .iter()
        .map(|field| {
            if present.field_with_name(field.name()).is_ok() {
                Ok(Expr::Column(Column::from_name(field.name())))
            } else {
                Ok(lit(ScalarValue::try_from(field.data_type())?).alias(field.name()))
            }
        })
        .collect::<Result<Vec<_>, DataFusionError>>()?;
    let plan = ctx
        .read_table(provider)?
        .select(columns)?
        .into_unoptimized_plan();
    Ok(Arc::new(datafusion::datasource::ViewTable::new(plan, None)))
}

impl Engine {
    /// Registers every lake table (empty ones included) at the versions of the lake's commit
    /// log, the config tables and the metric views, reading fresh derived tables. Creates and
    /// changes nothing; a location with no lake is an error.
    pub async fn open(lake: &Lake, config: &Config) -> Result<Engine, QueryError> {
        Engine::open_with(lake, config, true).await
    }

    /// [`Engine::open`], reading the lake's fresh derived tables when `read_derived`, computing
    /// every view from the canonical tables otherwise.
    pub async fn open_with(
        lake: &Lake,
        config: &Config,
        read_derived: bool,
    ) -> Result<Engine, QueryError> {
        let ctx = Engine::new_context();
        // One snapshot of the session: its object-store registry is shared with `ctx`, and the
        // providers read their scan options (plain Utf8, pushdown) from it.
        let state = Arc::new(ctx.state());
        // The tables as the lake's commit log names them (never created here: a reader).
        let lake_state = lake.state().await?;
        let opened =
            futures::future::try_join_all(Table::ALL.map(|t| lake.open_at(t, &lake_state))).await?;
        let mut contents = std::collections::BTreeMap::new();
        for (table, handle) in Table::ALL.into_iter().zip(opened) {
            contents.insert(
                table.name().to_owned(),
                lake_state.content(table).to_owned(),
            );
            let Some(handle) = handle else {
                // Not written yet: empty, in the schema a Delta scan of it would have.
                let schema = model::lake::read_schema(table)?;
                let empty = datafusion::datasource::MemTable::try_new(schema, vec![Vec::new()])?;
                ctx.register_table(table.name(), Arc::new(empty))?;
                continue;
            };
            handle
                .update_datafusion_session(state.as_ref())
                .map_err(|e| QueryError::Register {
                    table: table.name(),
                    message: e.to_string(),
                })?;
            let provider = handle
                .table_provider()
                .with_session(Arc::clone(&state))
                .await
                .map_err(|e| QueryError::Register {
                    table: table.name(),
                    message: e.to_string(),
                })?;
            let provider = if model::lake::missing_columns(table, &handle).is_empty() {
                provider
            } else {
                with_missing_columns(&ctx, table, provider)?
            };
            ctx.register_table(table.name(), provider)?;
        }
        let side = LakeSide {
            lake,
            contents,
            state,
            read: read_derived,
        };
        let mut engine = Engine::build(ctx, config, Some(&side)).await?;
        engine.lake = Some(lake.clone());
        engine.contents = side.contents;
        engine.log_version = lake_state.log_version;
        Ok(engine)
    }

    /// A session configured as the engine's (information schema, UTC session zone), with no
    /// tables yet.
    ///
    /// Its memory pool is first come, first served (sorts and aggregates spill to the temp folder
    /// when it is full; DataFusion names the largest consumers when a query runs out); the limit is the one set with [`set_memory_limit`] (the
    /// CLI's `DORACOST_MEMORY_LIMIT`) or half of this machine's memory. An operator that cannot spill fails with
    /// "Resources exhausted" instead of the process being killed.
    pub fn new_context() -> SessionContext {
        let session = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("doracost", "public")
            .set_str("datafusion.sql_parser.enable_ident_normalization", "true")
            .set_str("datafusion.execution.time_zone", "+00:00")
            // Strings as plain Utf8, not views: a view batch cut from a join's build side counts
            // the whole shared buffer as its size, so sorts and the memory pool saw 500 MB
            // batches (and ran out) on the large organisation.
            .set_bool(
                "datafusion.execution.parquet.schema_force_view_types",
                false,
            );
        let runtime = RuntimeEnvBuilder::new().with_memory_limit(memory_limit(), 1.0);
        let ctx = match runtime.build_arc() {
            Ok(runtime) => SessionContext::new_with_config_rt(session, runtime),
            Err(e) => {
                tracing::warn!("no memory pool ({e}); running without a limit");
                SessionContext::new_with_config(session)
            }
        };
        // The functions the views use that do not depend on config (the rule picker does, and
        // comes with the config tables).
        ctx.register_udaf(crate::quantile::quantile_cont());
        for udf in crate::allocation::udfs()
            .into_iter()
            .chain(crate::baseline::udfs())
        {
            ctx.register_udf(udf);
        }
        ctx
    }

    /// Completes a session whose lake tables (`deployments`, `changes`, …) are registered already,
    /// from Delta or from memory: adds the config tables and creates the metric views.
    pub async fn with_tables(ctx: SessionContext, config: &Config) -> Result<Engine, QueryError> {
        Engine::build(ctx, config, None).await
    }

    async fn build(
        ctx: SessionContext,
        config: &Config,
        lake: Option<&LakeSide<'_>>,
    ) -> Result<Engine, QueryError> {
        config_tables::register(&ctx, config)?;
        let (derived, recipe) = config_tables::register_views(&ctx, config, lake)
            .await
            .map_err(|e| QueryError::Views(e.to_string()))?;
        ctx.register_batch("derived_tables", crate::derived::status_batch(&derived)?)?;
        Ok(Engine {
            ctx,
            lake: None,
            derived,
            contents: Default::default(),
            log_version: None,
            recipe,
            config: config.clone(),
        })
    }

    /// The persisted views and what this session found of their derived tables (also the SQL
    /// table `derived_tables`).
    pub fn derived(&self) -> &[DerivedView] {
        &self.derived
    }

    /// Computes every persisted view this session did not read from the lake (stale, missing or
    /// ignored) and writes it as the lake's derived table, stamped with what it was computed
    /// from. A session over in-memory tables has nothing to refresh.
    pub async fn refresh_derived(&self) -> Result<Vec<Refreshed>, QueryError> {
        self.refresh_derived_in_parts(REFRESH_PART_DEPLOYMENTS)
            .await
    }

    /// [`Engine::refresh_derived`], the per-service DORA tables of a lake with more than
    /// `part_deployments` deployments computed in parts of about that many (see
    /// [`crate::parts`]), so that memory does not grow with the lake.
    pub async fn refresh_derived_in_parts(
        &self,
        part_deployments: usize,
    ) -> Result<Vec<Refreshed>, QueryError> {
        let Some(lake) = &self.lake else {
            return Ok(Vec::new());
        };
        let state = self.ctx.state();
        let mut done = self
            .refresh_in_parts(part_deployments)
            .await?
            .unwrap_or_default();
        for view in &self.derived {
            let Some(live) = &view.live else {
                continue;
            };
            if done.iter().any(|d| d.name == view.name) {
                continue;
            }
            let started = std::time::Instant::now();
            let batches = live.batches(&state).await?;
            let rows = batches.iter().map(RecordBatch::num_rows).sum();
            let version = lake
                .write_derived(&view.name, live.schema(), batches, &view.stamp)
                .await?;
            done.push(Refreshed {
                name: view.name.clone(),
                rows,
                version,
                seconds: started.elapsed().as_secs_f64(),
                incremental: false,
            });
        }
        Ok(done)
    }

    /// The version of the lake's commit log the session was opened at: what "lake version N"
    /// on a page means (`doracost lake history` lists them).
    pub fn lake_version(&self) -> Option<u64> {
        self.log_version
    }

    /// The content id (`id@version`, see [`model::lake::content_id`]) of every lake table as
    /// the session opened it; empty over in-memory tables.
    pub fn contents(&self) -> &std::collections::BTreeMap<String, String> {
        &self.contents
    }

    /// The Delta version of lake table `table` as the session opened it.
    pub fn version_of(&self, table: &str) -> Option<u64> {
        let content = self.contents.get(table)?;
        model::lake::parse_content_id(content).map(|(_, version)| version)
    }

    pub(crate) fn lake(&self) -> Option<&Lake> {
        self.lake.as_ref()
    }

    pub(crate) fn recipe(&self) -> Option<&crate::derived::StampRecipe> {
        self.recipe.as_ref()
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The underlying DataFusion context (for registering views and UDFs).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// A session for analysts' SQL over this engine's tables and views (the catalog is shared,
    /// nothing is copied): it allocates from `pool`, not from the engine's pool, so an analyst's
    /// hash join that runs out fails that query alone and dashboards keep their memory; it has no
    /// row generators (see [`crate::guard`]); it keeps the SQL spans errors point at.
    pub fn analyst_session(
        &self,
        pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool>,
    ) -> SessionContext {
        use datafusion::execution::SessionStateBuilder;
        use datafusion::execution::runtime_env::RuntimeEnv;
        let state = self.ctx.state();
        // The engine's object stores (the Delta tables' scans look theirs up there), disk and
        // caches; only the pool is the analysts'.
        let runtime = RuntimeEnv {
            memory_pool: pool,
            ..state.runtime_env().as_ref().clone()
        };
        let mut builder =
            SessionStateBuilder::new_from_existing(state).with_runtime_env(Arc::new(runtime));
        // The builder's own copy of the config: it says not to create the default catalog (a
        // config of our own would say to, and `build` would put an empty one in its place, in
        // the catalog list this session shares with the engine).
        if let Some(config) = builder.config() {
            config.options_mut().sql_parser.collect_spans = true;
        }
        let state = builder.build();
        let ctx = SessionContext::new_with_state(state);
        for generator in ["range", "generate_series"] {
            ctx.deregister_udtf(generator);
            ctx.deregister_udf(generator);
        }
        ctx
    }

    /// Runs one read-only statement: queries, EXPLAIN, SHOW, DESCRIBE. DDL, DML, COPY and
    /// other statements are refused with an error that says so.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        let frame = self.ctx.sql_with_options(sql, read_only()).await?;
        Ok(frame.collect().await?)
    }

    /// Runs one read-only statement as [`Engine::query`] does, its batches as they come.
    pub async fn query_stream(
        &self,
        sql: &str,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream, QueryError> {
        let frame = self.ctx.sql_with_options(sql, read_only()).await?;
        Ok(frame.execute_stream().await?)
    }

    /// Runs a query and returns the schema even when no row comes back.
    pub async fn query_with_schema(
        &self,
        sql: &str,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), QueryError> {
        let frame = self.ctx.sql_with_options(sql, read_only()).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        Ok((schema, frame.collect().await?))
    }

    /// Runs a parameterised report query (see [`crate::reports`]): its values are bound to the
    /// placeholders, never written into the SQL. Returns the schema even when no row comes back.
    pub async fn query_bound(
        &self,
        query: &crate::reports::BoundQuery,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), QueryError> {
        query_bound_on(&self.ctx, query).await
    }
}

/// [`Engine::query_bound`] on a clone of an engine's session ([`Engine::context`]): a task of its
/// own can run it, so that queries run side by side on the runtime's threads.
pub async fn query_bound_on(
    ctx: &SessionContext,
    query: &crate::reports::BoundQuery,
) -> Result<(Arc<Schema>, Vec<RecordBatch>), QueryError> {
    let mut frame = ctx.sql_with_options(&query.sql, read_only()).await?;
    if !query.params.is_empty() {
        frame = frame.with_param_values(query.params.clone())?;
    }
    let schema = Arc::new(frame.schema().as_arrow().clone());
    Ok((schema, frame.collect().await?))
}

/// Queries only: DDL, DML and statements that change the session are refused.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

static MEMORY_LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Sets the memory limit in bytes of every session this process opens from now on (the CLI
/// passes `DORACOST_MEMORY_LIMIT`, see [`parse_size`]); only the first call counts.
pub fn set_memory_limit(bytes: usize) {
    if MEMORY_LIMIT.set(bytes).is_err() {
        tracing::debug!("the memory limit was set already; kept");
    }
}

/// The session memory limit in bytes: the one set with [`set_memory_limit`], else half of the
/// machine's memory (`/proc/meminfo`), else 4 GiB.
fn memory_limit() -> usize {
    if let Some(bytes) = MEMORY_LIMIT.get() {
        return *bytes;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

/// `12G`, `800M`, `64K`, `1000` (bytes), case-insensitive, an optional trailing `B`.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (digits, shift) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: usize = digits.trim().parse().ok()?;
    n.checked_mul(1usize << shift).filter(|&b| b > 0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;
    use super::*;
    use datafusion::scalar::ScalarValue;
    use model::TableWrite;

    /// `deployments` rows in today's schema from NDJSON.
    fn deployments(ndjson: &str) -> RecordBatch {
        arrow::json::ReaderBuilder::new(Table::Deployments.schema())
            .build(std::io::Cursor::new(ndjson.as_bytes().to_vec()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
    }

    async fn text(engine: &Engine, sql: &str) -> Vec<String> {
        let batches = engine.query(sql).await.unwrap();
        let table = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        table.lines().map(str::to_owned).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lake_written_before_deployment_group_existed_is_read_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
        // `deployments` as an older doracost wrote it, without `deployment_group`, adopted by the
        // lake's commit log at the next write (of another table).
        let one = r#"{"deployment_id":"events:deployment:1","source":"events","ingested_at":"2025-01-01T00:00:00Z","service":"shop","repo":"acme/web","environment":"production","commit_sha":"a","finished_at":"2025-01-01T09:00:00Z","status":"success","is_rollback":false,"commits_listed":false}"#;
        let today = deployments(one);
        let columns: Vec<usize> = (0..today.num_columns() - 1).collect();
        let url = lake.table_url(Table::Deployments).unwrap();
        std::fs::create_dir_all(url.to_file_path().unwrap()).unwrap();
        deltalake::DeltaTableBuilder::from_url(url)
            .unwrap()
            .build()
            .unwrap()
            .write(vec![today.project(&columns).unwrap()])
            .await
            .unwrap();
        let empty_incidents = TableWrite::Upsert {
            table: Table::Incidents,
            batches: Vec::new(),
        };
        lake.apply("test", vec![empty_incidents]).await.unwrap();

        let engine = Engine::open(&lake, &Config::default()).await.unwrap();
        assert_eq!(
            text(
                &engine,
                "SELECT deployment_id, deployment_group FROM deployments"
            )
            .await[3],
            "| events:deployment:1 |                  |"
        );
        assert_eq!(
            text(&engine, "SELECT count(*) AS n FROM dora_deployments").await[3],
            "| 1 |"
        );

        // A deployment across two repos upserted into it: the column is added, and the two
        // rows are one deployment.
        let group = r#"{"deployment_id":"devlake:deployment:7:acme/web","source":"devlake","ingested_at":"2025-01-01T00:00:00Z","service":"shop","repo":"acme/web","environment":"production","commit_sha":"b","finished_at":"2025-01-02T09:00:00Z","status":"success","is_rollback":false,"commits_listed":false,"deployment_group":"devlake:deployment:7"}
{"deployment_id":"devlake:deployment:7:acme/api","source":"devlake","ingested_at":"2025-01-01T00:00:00Z","service":"shop","repo":"acme/api","environment":"production","commit_sha":"c","finished_at":"2025-01-02T09:05:00Z","status":"success","is_rollback":false,"commits_listed":false,"deployment_group":"devlake:deployment:7"}"#;
        let upsert = TableWrite::Upsert {
            table: Table::Deployments,
            batches: vec![deployments(group)],
        };
        lake.apply("test", vec![upsert]).await.unwrap();
        let engine = Engine::open(&lake, &Config::default()).await.unwrap();
        assert_eq!(
            text(&engine, "SELECT count(*) AS n FROM deployments").await[3],
            "| 3 |"
        );
        assert_eq!(
            text(
                &engine,
                "SELECT deployment_id, repo FROM dora_deployments ORDER BY deployment_id"
            )
            .await[3..5],
            [
                "| devlake:deployment:7 | acme/api, acme/web |",
                "| events:deployment:1  | acme/web           |",
            ]
        );
    }

    #[tokio::test]
    async fn an_analyst_session_sees_the_views_and_leaves_the_engine_whole() {
        use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
        let ctx = Engine::new_context();
        for table in Table::ALL {
            let mem =
                datafusion::datasource::MemTable::try_new(table.schema(), vec![vec![]]).unwrap();
            ctx.register_table(table.name(), Arc::new(mem)).unwrap();
        }
        let engine = Engine::with_tables(ctx, &Config::default()).await.unwrap();
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let analyst = engine.analyst_session(Arc::clone(&pool));
        let batches = analyst
            .sql("SELECT count(*) FROM dora_monthly")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(batches[0].num_rows(), 1);
        assert!(analyst.sql("SELECT * FROM range(3)").await.is_err());
        // The engine still has its tables, views and row generators.
        assert_eq!(
            text(&engine, "SELECT count(*) AS n FROM dora_monthly").await[3],
            "| 0 |"
        );
        assert!(engine.query("SELECT * FROM range(3)").await.is_ok());
    }

    /// Empty-table `EmptyExec`s in the physical plan of `sql` (`$period` bound to `period`).
    async fn skipped_scans(engine: &Engine, sql: &str, period: &str) -> usize {
        let frame = engine
            .context()
            .sql(sql)
            .await
            .unwrap()
            .with_param_values(vec![("period", ScalarValue::from(period))])
            .unwrap();
        let plan = frame.create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        shown.matches("EmptyExec").count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_on_one_period_computes_that_period_only() {
        let ctx = Engine::new_context();
        for table in Table::ALL {
            let batches = if table == Table::Deployments {
                vec![deployments(
                    r#"{"deployment_id":"d1","source":"events","ingested_at":"2025-01-01T00:00:00Z","service":"shop","repo":"acme/web","environment":"production","commit_sha":"a","finished_at":"2025-01-06T09:00:00Z","status":"success","is_rollback":false,"commits_listed":false}"#,
                )]
            } else {
                vec![]
            };
            let mem =
                datafusion::datasource::MemTable::try_new(table.schema(), vec![batches]).unwrap();
            ctx.register_table(table.name(), Arc::new(mem)).unwrap();
        }
        let engine = Engine::with_tables(ctx, &Config::default()).await.unwrap();
        let sql = "SELECT period, name, period_start, deployments FROM dora_periods WHERE period = $period";
        // The two other periods' cached views are not scanned (nor computed), whichever way
        // round the comparison is written; a period nobody has skips all three.
        assert_eq!(skipped_scans(&engine, sql, "month").await, 2);
        assert_eq!(
            skipped_scans(
                &engine,
                "SELECT * FROM dora_periods WHERE $period = period",
                "week"
            )
            .await,
            2
        );
        assert_eq!(skipped_scans(&engine, sql, "year").await, 3);
        // ... and the rows are those of the period's own view.
        let query = crate::reports::BoundQuery {
            sql: format!("{sql} AND scope = 'all' ORDER BY period_start"),
            params: vec![("period".to_owned(), ScalarValue::from("month"))],
        };
        let (_, batches) = engine.query_bound(&query).await.unwrap();
        let shown = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert_eq!(
            shown.lines().skip(3).next().unwrap(),
            "| month  | all  | 2025-01-01   | 1           |"
        );
        assert_eq!(
            text(
                &engine,
                "SELECT count(*) AS n FROM dora_periods WHERE period = 'day' AND scope = 'all' AND deployments > 0"
            )
            .await[3],
            "| 1 |"
        );
    }

    #[test]
    fn memory_sizes_parse_with_their_units() {
        assert_eq!(parse_size("12G"), Some(12 << 30));
        assert_eq!(parse_size("800m"), Some(800 << 20));
        assert_eq!(parse_size("64KB"), Some(64 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
    }
}
