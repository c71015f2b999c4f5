//! The incremental refresh of the DORA derived tables after an ingest of events: only the rows of
//! the services the new rows can change are recomputed, and each derived table's other rows are
//! kept. The result equals a full refresh row for row (a property test in `tests/e2e` compares
//! them after random batches); when its conditions do not hold it declines and the caller
//! refreshes in full.
//!
//! **When.** Every stale derived table is one of [`PER_SERVICE`] or `dora_period_grid`, and each
//! holds exactly the full refresh of the lake state right before the ingest: its stamp equals the
//! one the views have over that state (the engine's own state with each table the ingest wrote
//! back at the version the ingest started from, see [`EventChange`]). The engine must be opened right after the ingest (its
//! tables at the versions the ingest committed).
//!
//! **Which services** (`S`). The services of the deployments the ingest touched (directly, through
//! a touched change they list, or named by a touched incident's `caused_by_deployment_id`, before
//! or after), before (their rows in the derived `dora_deployments`) and after (the service the
//! source names; else every service owning the repo, whole or by path, and `unattributed` when no
//! service owns the whole repo); the services of the touched incidents, before and after, and of
//! the incidents naming one of those deployments. A deployment across repos (`deployment_group`)
//! stands for all its rows and they for it: its finish is its last row's, whichever service that
//! row is of. Every per-row view partitions by service (a service's chain of deployments, its
//! rollbacks, its incidents' attribution windows), so no other service's rows can change. Incidents with no service are recomputed every time (their rows
//! depend only on the deployment they name).
//!
//! **From what.** The views are computed in a session of their own over the canonical rows those
//! services' rows read: the deployments of `S` (named, or unnamed in one of its repos, or every
//! unnamed one of a repo no service owns whole when `unattributed` is in `S`) and those named by
//! an incident of `S` or with no service, and every row of a deployment across repos one of those
//! is part of; their deployment–change links and changes; the incidents
//! of `S`, with no service, or naming one of those deployments. Each of [`PER_SERVICE`] is then
//! replaced where `service IN S` in one conditional commit (nothing is written when another writer
//! committed to it since it was read), and `dora_period_grid` (whole-organisation bounds) is
//! recomputed whole from the new `dora_deployments` and the incidents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::{Expr, SessionContext, col, lit};
use model::{Table, Touched};

use crate::engine::{Engine, QueryError, Refreshed};

/// The derived tables whose rows are recomputed per service.
pub const PER_SERVICE: [&str; 4] = [
    "dora_changes",
    "dora_recoveries",
    "dora_deployments",
    "dora_incidents",
];

/// The lake tables the per-row DORA views read events from, restricted to some services' rows
/// by the incremental refresh and the refresh in parts.
pub(crate) const EVENT_TABLES: [Table; 4] = [
    Table::Deployments,
    Table::DeploymentChanges,
    Table::Changes,
    Table::Incidents,
];

/// The derived table recomputed whole (it spans every service's dates).
pub(crate) const GRID: &str = "dora_period_grid";

/// What an ingest of events changed: the keys it wrote and, for each lake table it committed to,
/// the Delta version before and after its commit.
#[derive(Debug, Clone, Default)]
pub struct EventChange {
    /// The keys written.
    pub touched: Touched,
    /// Table name → (version before, version after); only tables the ingest committed to.
    pub versions: BTreeMap<String, (u64, u64)>,
}

impl EventChange {
    /// The change of one ingest, from what each table received.
    pub fn of(touched: Touched, outcomes: &[model::WriteOutcome]) -> EventChange {
        let versions = outcomes
            .iter()
            .filter_map(|o| match (o.version_before, o.version) {
                (Some(before), Some(after)) if before != after => {
                    Some((o.table.to_owned(), (before, after)))
                }
                _ => None,
            })
            .collect();
        EventChange { touched, versions }
    }

    /// This change followed by `next` as one change, when `next` started where this one ended
    /// (for every table both wrote); `None` when another commit came in between.
    pub fn then(&self, next: &EventChange) -> Option<EventChange> {
        let mut versions = self.versions.clone();
        for (table, &(before, after)) in &next.versions {
            match versions.get_mut(table) {
                Some(span) if span.1 == before => span.1 = after,
                Some(_) => return None,
                None => {
                    versions.insert(table.clone(), (before, after));
                }
            }
        }
        let mut touched = self.touched.clone();
        touched.extend(next.touched.clone());
        Some(EventChange { touched, versions })
    }
}

impl Engine {
    /// Refreshes the derived tables after the ingest `change`, recomputing only the rows it can
    /// change (see [`crate::incremental`]). `Ok(None)` when that does not apply (the engine is not
    /// at the lake state right after `change`, or a derived table was not fresh right before it,
    /// or a stale one is not a DORA per-row table): then nothing was written and
    /// [`Engine::refresh_derived`] is the way.
    pub async fn refresh_incremental(
        &self,
        change: &EventChange,
    ) -> Result<Option<Vec<Refreshed>>, QueryError> {
        let (Some(lake), Some(recipe)) = (self.lake(), self.recipe()) else {
            return Ok(None);
        };
        // The state right before the change: the engine's, each written table at the version the ingest started from.
        let mut before = self.contents().clone();
        for (table, &(from, to)) in &change.versions {
            let Some(content) = before.get_mut(table) else {
                return Ok(None);
            };
            let Some((id, version)) = model::lake::parse_content_id(content) else {
                return Ok(None);
            };
            // Every commit between `from` and `to` is the ingest's own (one or two per table: it
            // held the lake's write lock from `from` on).
            if version != to || to <= from {
                return Ok(None);
            }
            *content = format!("{id}@{from}");
        }
        let stamps_before = recipe.stamps(&before);
        let mut jobs = Vec::new();
        for view in self.derived() {
            let Some(live) = &view.live else {
                continue;
            };
            if !(PER_SERVICE.contains(&view.name.as_str()) || view.name == GRID) {
                return Ok(None);
            }
            let Some(found) = lake.open_derived(&view.name).await? else {
                return Ok(None);
            };
            if found.stamp.as_deref() != stamps_before.get(&view.name).map(String::as_str) {
                return Ok(None);
            }
            let Some(version) = found.table.version() else {
                return Ok(None);
            };
            let provider = found
                .table
                .table_provider()
                .await
                .map_err(QueryError::Sql)?;
            jobs.push(Job {
                name: view.name.clone(),
                stamp: view.stamp.clone(),
                schema: live.schema(),
                version,
                old: provider,
            });
        }
        if jobs.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let started = std::time::Instant::now();
        let old: HashMap<&str, Arc<dyn TableProvider>> = jobs
            .iter()
            .map(|j| (j.name.as_str(), Arc::clone(&j.old)))
            .collect();
        let services = self.touched_services(change, &old).await?;
        let found_services = started.elapsed().as_secs_f64();
        let inputs = self.restricted_session(&services).await?;
        let read_inputs = started.elapsed().as_secs_f64();
        let restricted = Engine::with_tables(inputs, self.config()).await?;
        tracing::debug!(
            services = services.len(),
            found_services,
            read_inputs,
            planned = started.elapsed().as_secs_f64(),
            "incremental refresh: inputs"
        );
        let list = services
            .iter()
            .map(|s| model::lake::sql_string(s))
            .collect::<Vec<_>>()
            .join(", ");
        let in_services = if services.is_empty() {
            "false".to_owned()
        } else {
            format!("service IN ({list})")
        };
        // The tables are replaced together (each in its own commit): their rows are computed
        // from the same restricted inputs, and their writes read and rewrite different files.
        let replaced = futures::future::try_join_all(
            jobs.iter()
                .filter(|j| j.name != GRID)
                .map(|job| replace_services(lake, &restricted, job, &in_services)),
        )
        .await?;
        let Some(mut done) = replaced.into_iter().collect::<Option<Vec<Refreshed>>>() else {
            // Another writer changed one since: it holds rows of another state; recompute it
            // whole (and the rest with it) from this engine.
            tracing::info!(
                "a derived table changed during the incremental refresh; refreshing in full"
            );
            return Ok(None);
        };
        if let Some(job) = jobs.iter().find(|j| j.name == GRID) {
            let step = std::time::Instant::now();
            let batches = conform(&job.schema, self.grid_from_derived().await?)?;
            let rows = batches.iter().map(RecordBatch::num_rows).sum();
            // The grid is every period between two bounds for every name: when neither moved
            // (most batches) its rows are the ones the table holds, and only its stamp is new.
            let new: Arc<dyn TableProvider> = memory(Arc::clone(&job.schema), batches.clone())?;
            let unchanged = grid_outline(new).await? == grid_outline(Arc::clone(&job.old)).await?;
            let restamped = if unchanged {
                lake.restamp_derived(&job.name, &job.stamp, job.version)
                    .await?
            } else {
                None
            };
            let version = match restamped {
                Some(version) => version,
                None => {
                    lake.write_derived(&job.name, Arc::clone(&job.schema), batches, &job.stamp)
                        .await?
                }
            };
            tracing::debug!(
                table = job.name,
                rows,
                rewritten = restamped.is_none(),
                seconds = step.elapsed().as_secs_f64(),
                "incremental refresh: grid"
            );
            done.push(Refreshed {
                name: job.name.clone(),
                rows,
                version,
                seconds: step.elapsed().as_secs_f64(),
                incremental: true,
            });
        }
        tracing::debug!(
            services = services.len(),
            seconds = started.elapsed().as_secs_f64(),
            "incremental refresh"
        );
        Ok(Some(done))
    }

    /// `S`: the services whose derived rows `change` can change.
    async fn touched_services(
        &self,
        change: &EventChange,
        old: &HashMap<&str, Arc<dyn TableProvider>>,
    ) -> Result<BTreeSet<String>, QueryError> {
        let ctx = Engine::new_context();
        for table in [
            Table::Deployments,
            Table::DeploymentChanges,
            Table::Incidents,
        ] {
            ctx.register_table(table.name(), self.provider(table.name()).await?)?;
        }
        for (name, provider) in old {
            ctx.register_table(format!("old_{name}"), Arc::clone(provider))?;
        }
        ctx.register_table("t_deployments", ids(&change.touched.deployments)?)?;
        ctx.register_table("t_changes", ids(&change.touched.changes)?)?;
        ctx.register_table("t_incidents", ids(&change.touched.incidents)?)?;
        // The touched incidents as they were before: their old service and deployment link.
        let mut old_incidents = Vec::new();
        if let Some(&(before, _)) = change.versions.get(Table::Incidents.name())
            && let Some(lake) = self.lake()
            && let Some(mut table) = lake.open_existing(Table::Incidents).await?
        {
            table
                .load_version(before)
                .await
                .map_err(|e| QueryError::Sql(e.into()))?;
            let provider = table.table_provider().await.map_err(QueryError::Sql)?;
            ctx.register_table("incidents_before", provider)?;
            old_incidents = collect(
                &ctx,
                "SELECT service, caused_by_deployment_id FROM incidents_before \
                 WHERE incident_id IN (SELECT id FROM t_incidents)",
            )
            .await?;
        }
        let mut services = BTreeSet::new();
        let mut deployments: BTreeSet<String> = change.touched.deployments.clone();
        deployments.extend(strings(&old_incidents, "caused_by_deployment_id"));
        services.extend(strings(&old_incidents, "service"));
        deployments.extend(strings(
            &collect(
                &ctx,
                "SELECT deployment_id FROM deployment_changes WHERE change_id IN (SELECT id FROM t_changes)",
            )
            .await?,
            "deployment_id",
        ));
        let now_incidents = collect(
            &ctx,
            "SELECT service, caused_by_deployment_id FROM incidents \
             WHERE incident_id IN (SELECT id FROM t_incidents)",
        )
        .await?;
        deployments.extend(strings(&now_incidents, "caused_by_deployment_id"));
        services.extend(strings(&now_incidents, "service"));
        // A deployment across repos is one deployment of its rows (`deployment_group`): its
        // derived rows are keyed by the group, and every row of it counts (its finish is its
        // last row's), so the ids stand for their groups and the groups for all their rows.
        ctx.register_table("t_ids", ids(&deployments)?)?;
        deployments.extend(strings(
            &collect(
                &ctx,
                "SELECT deployment_group AS id FROM deployments \
                 WHERE deployment_id IN (SELECT id FROM t_ids) AND deployment_group IS NOT NULL",
            )
            .await?,
            "id",
        ));
        ctx.register_table("t_groups", ids(&deployments)?)?;
        deployments.extend(strings(
            &collect(
                &ctx,
                "SELECT deployment_id AS id FROM deployments \
                 WHERE deployment_group IN (SELECT id FROM t_groups)",
            )
            .await?,
            "id",
        ));
        ctx.register_table("t_all_deployments", ids(&deployments)?)?;
        // Before: the services those deployments and incidents had rows for.
        if old.contains_key("dora_deployments") {
            services.extend(strings(
                &collect(
                    &ctx,
                    "SELECT service FROM old_dora_deployments WHERE deployment_id IN (SELECT id FROM t_all_deployments)",
                )
                .await?,
                "service",
            ));
        }
        if old.contains_key("dora_incidents") {
            services.extend(strings(
                &collect(
                    &ctx,
                    "SELECT service FROM old_dora_incidents WHERE incident_id IN (SELECT id FROM t_incidents) \
                     OR deployment_id IN (SELECT id FROM t_all_deployments)",
                )
                .await?,
                "service",
            ));
        }
        // After: the services those deployments can be attributed to, and the incidents that
        // name them.
        let rows = collect(
            &ctx,
            "SELECT service, repo FROM deployments WHERE deployment_id IN (SELECT id FROM t_all_deployments)",
        )
        .await?;
        let config = self.config();
        for batch in &rows {
            let service = batch.column(0).as_string_opt::<i32>();
            let repo = batch.column(1).as_string_opt::<i32>();
            let (Some(service), Some(repo)) = (service, repo) else {
                continue;
            };
            for (service, repo) in service.iter().zip(repo.iter()) {
                match (service, repo) {
                    (Some(service), _) => {
                        services.insert(service.to_owned());
                    }
                    (None, repo) => {
                        let owners = config
                            .services
                            .iter()
                            .filter(|s| repo.is_some_and(|r| s.repos.iter().any(|x| x == r)));
                        let mut whole = false;
                        for owner in owners {
                            whole |= owner.paths.is_empty();
                            services.insert(owner.name.clone());
                        }
                        if !whole {
                            services.insert(UNATTRIBUTED.to_owned());
                        }
                    }
                }
            }
        }
        services.extend(strings(
            &collect(
                &ctx,
                "SELECT service FROM incidents WHERE caused_by_deployment_id IN (SELECT id FROM t_all_deployments)",
            )
            .await?,
            "service",
        ));
        Ok(services)
    }

    /// A session whose event tables hold only the canonical rows the derived rows of `services`
    /// read (see [`crate::incremental`]), and whose other lake tables are the engine's.
    async fn restricted_session(
        &self,
        services: &BTreeSet<String>,
    ) -> Result<SessionContext, QueryError> {
        let all = Engine::new_context();
        // Filters evaluated inside the Parquet scan, key column first: the other columns are
        // decoded only for the (few) rows that match.
        all.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .parquet
            .pushdown_filters = true;
        for table in Table::ALL {
            all.register_table(
                format!("all_{}", table.name()),
                self.provider(table.name()).await?,
            )?;
        }
        let config = self.config();
        let repos: BTreeSet<String> = config
            .services
            .iter()
            .filter(|s| services.contains(&s.name))
            .flat_map(|s| s.repos.iter().cloned())
            .collect();
        // Repos no service owns whole: their unnamed deployments may be `unattributed`.
        let owned_whole: BTreeSet<String> = config
            .services
            .iter()
            .filter(|s| s.paths.is_empty())
            .flat_map(|s| s.repos.iter().cloned())
            .collect();
        // Each step filters one table by values the steps before it found, as literal lists:
        // the scan then tests the key column alone and decodes the rest of a row only where
        // it matches (a subquery's join would decode every row of these large tables).
        let named = collect_where(
            &all,
            "all_incidents",
            is_in("service", services).or(col("service").is_null()),
        )
        .await?;
        let named = strings(&named, "caused_by_deployment_id");
        let mut unnamed = col("service").is_null().and(is_in("repo", &repos));
        if services.contains(UNATTRIBUTED) {
            let outside = if owned_whole.is_empty() {
                lit(true)
            } else {
                // A deployment with no repo is `unattributed` too (`NOT IN` alone is NULL).
                col("repo")
                    .is_null()
                    .or(col("repo").in_list(literals(&owned_whole), true))
            };
            unnamed = unnamed.or(col("service").is_null().and(outside));
        }
        let deployments = collect_where(
            &all,
            "all_deployments",
            is_in("service", services)
                .or(unnamed)
                .or(is_in("deployment_id", &named))
                .or(is_in("deployment_group", &named)),
        )
        .await?;
        // With every row of each deployment across repos one of them is part of (its finish is
        // its last row's, whichever service that row is of).
        let groups = strings(&deployments, "deployment_group");
        let deployments = if groups.is_empty() {
            deployments
        } else {
            // The rows read again below left out: those of a group, and one whose id is a group's.
            let mut rows = deployments
                .iter()
                .map(|batch| {
                    let text = |name: &str| {
                        batch
                            .column_by_name(name)
                            .map(|c| arrow::compute::cast(c, &DataType::Utf8))
                            .transpose()
                    };
                    let (Some(group), Some(id)) =
                        (text("deployment_group")?, text("deployment_id")?)
                    else {
                        return Ok(batch.clone());
                    };
                    let apart: arrow::array::BooleanArray = group
                        .as_string::<i32>()
                        .iter()
                        .zip(id.as_string::<i32>().iter())
                        .map(|(g, i)| Some(g.is_none() && !i.is_some_and(|i| groups.contains(i))))
                        .collect();
                    arrow::compute::filter_record_batch(batch, &apart)
                })
                .collect::<Result<Vec<_>, arrow::error::ArrowError>>()
                .map_err(|e| QueryError::Sql(e.into()))?;
            rows.extend(
                collect_where(
                    &all,
                    "all_deployments",
                    is_in("deployment_group", &groups).or(col("deployment_group")
                        .is_null()
                        .and(is_in("deployment_id", &groups))),
                )
                .await?,
            );
            rows
        };
        let mut deployment_ids = strings(&deployments, "deployment_id");
        let parts = deployment_ids.clone();
        deployment_ids.extend(groups);
        // The incidents are read while the chain of links and changes is.
        let shipped = async {
            let links = collect_where(
                &all,
                "all_deployment_changes",
                is_in("deployment_id", &parts),
            )
            .await?;
            let change_ids = strings(&links, "change_id");
            let changes =
                collect_where(&all, "all_changes", is_in("change_id", &change_ids)).await?;
            Ok::<_, QueryError>((links, changes))
        };
        let incidents = collect_where(
            &all,
            "all_incidents",
            is_in("service", services)
                .or(col("service").is_null())
                .or(is_in("caused_by_deployment_id", &deployment_ids)),
        );
        let ((links, changes), incidents) = tokio::try_join!(shipped, incidents)?;
        self.session_over([deployments, links, changes, incidents])
            .await
    }

    /// A session whose event tables ([`EVENT_TABLES`]) hold `rows` (in that order) and whose
    /// other lake tables are the engine's.
    pub(crate) async fn session_over(
        &self,
        rows: [Vec<RecordBatch>; 4],
    ) -> Result<SessionContext, QueryError> {
        let ctx = Engine::new_context();
        for (table, rows) in EVENT_TABLES.into_iter().zip(rows) {
            ctx.register_table(table.name(), memory(table.schema(), rows)?)?;
        }
        for table in Table::ALL {
            if !EVENT_TABLES.contains(&table) {
                ctx.register_table(table.name(), self.provider(table.name()).await?)?;
            }
        }
        Ok(ctx)
    }

    /// `dora_period_grid` computed from the lake's (just written) `dora_deployments` and the
    /// incidents.
    pub(crate) async fn grid_from_derived(&self) -> Result<Vec<RecordBatch>, QueryError> {
        let Some(lake) = self.lake() else {
            return Ok(Vec::new());
        };
        let statement = crate::config_tables::dora_statements(self.config())?
            .into_iter()
            .find(|v| v.name == GRID)
            .ok_or_else(|| QueryError::Views(format!("no view {GRID}")))?;
        let ctx = Engine::new_context();
        crate::config_tables::register(&ctx, self.config())?;
        ctx.register_table(
            Table::Incidents.name(),
            self.provider(Table::Incidents.name()).await?,
        )?;
        let deployments = lake
            .open_derived("dora_deployments")
            .await?
            .ok_or_else(|| QueryError::Views("dora_deployments was not written".into()))?;
        let provider = deployments
            .table
            .table_provider()
            .await
            .map_err(QueryError::Sql)?;
        ctx.register_table("dora_deployments", provider)?;
        Ok(ctx.sql(&statement.query).await?.collect().await?)
    }

    pub(crate) async fn provider(&self, name: &str) -> Result<Arc<dyn TableProvider>, QueryError> {
        Ok(self.context().table_provider(name).await?)
    }
}

/// What `dora_period_grid`'s rows are a function of: its first and last day and its names
/// (scope, name and team), as text.
async fn grid_outline(grid: Arc<dyn TableProvider>) -> Result<BTreeSet<String>, QueryError> {
    let ctx = Engine::new_context();
    ctx.register_table("g", grid)?;
    let rows = collect(
        &ctx,
        "SELECT concat('days ', CAST(min(period_start) AS VARCHAR), ' ', \
                CAST(max(period_start) AS VARCHAR)) AS s FROM g WHERE period = 'day' \
         UNION ALL \
         SELECT DISTINCT concat(scope, ' ', name, CASE WHEN team IS NULL THEN ' -' \
                ELSE concat(' =', team) END) AS s FROM g",
    )
    .await?;
    Ok(strings(&rows, "s"))
}

/// Replaces `job`'s rows of the services `in_services` (SQL: `service IN (…)`) with the ones
/// `restricted` computes; `None` when another writer changed the table since it was read.
async fn replace_services(
    lake: &model::Lake,
    restricted: &Engine,
    job: &Job,
    in_services: &str,
) -> Result<Option<Refreshed>, QueryError> {
    let step = std::time::Instant::now();
    let predicate = if job.name == "dora_incidents" {
        format!("{in_services} OR service IS NULL")
    } else {
        in_services.to_owned()
    };
    let sql = format!("SELECT * FROM {} WHERE {predicate}", job.name);
    let batches = conform(&job.schema, restricted.query(&sql).await?)?;
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let Some(version) = lake
        .replace_derived_where(
            &job.name,
            Arc::clone(&job.schema),
            batches,
            &predicate,
            &job.stamp,
            job.version,
        )
        .await?
    else {
        tracing::debug!(table = job.name, "changed during the incremental refresh");
        return Ok(None);
    };
    tracing::debug!(
        table = job.name,
        rows,
        seconds = step.elapsed().as_secs_f64(),
        "incremental refresh: replaced"
    );
    Ok(Some(Refreshed {
        name: job.name.clone(),
        rows,
        version,
        seconds: step.elapsed().as_secs_f64(),
        incremental: true,
    }))
}

/// The service of deployments no rule attributes (`dora_production`).
pub(crate) const UNATTRIBUTED: &str = "unattributed";

/// One derived table to refresh.
struct Job {
    name: String,
    stamp: String,
    schema: SchemaRef,
    version: u64,
    old: Arc<dyn TableProvider>,
}

pub(crate) async fn collect(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<RecordBatch>, QueryError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// The non-null values of a string column (of any string type: `concat` gives views).
pub(crate) fn strings(batches: &[RecordBatch], column: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for batch in batches {
        let Some(values) = batch.column_by_name(column) else {
            continue;
        };
        let Ok(values) = arrow::compute::cast(values, &DataType::Utf8) else {
            continue;
        };
        if let Some(values) = values.as_string_opt::<i32>() {
            out.extend(values.iter().flatten().map(str::to_owned));
        }
    }
    out
}

/// The rows of table `name` where `filter` holds. (Boxed: DataFusion's futures are large, and
/// five of them inline made the refresh's future overflow a 2 MiB thread stack unoptimised.)
async fn collect_where(
    ctx: &SessionContext,
    name: &str,
    filter: Expr,
) -> Result<Vec<RecordBatch>, QueryError> {
    Box::pin(async move {
        let started = std::time::Instant::now();
        let rows: Vec<RecordBatch> = ctx.table(name).await?.filter(filter)?.collect().await?;
        tracing::debug!(
            table = name,
            rows = rows.iter().map(RecordBatch::num_rows).sum::<usize>(),
            seconds = started.elapsed().as_secs_f64(),
            "incremental refresh: read"
        );
        Ok(rows)
    })
    .await
}

/// `values` as string literals.
fn literals(values: &BTreeSet<String>) -> Vec<Expr> {
    values.iter().map(|v| lit(v.as_str())).collect()
}

/// `column IN (values)` as a filter (a row it does not hold for is not selected); false for no
/// values.
///
/// The list ends with a NULL, which leaves the filter's meaning unchanged (`x IN (…, NULL)` is
/// true or NULL, never true where `x IN (…)` is not) and keeps delta-rs from translating it for
/// file skipping: it rewrites a list of literals as a chain of ORs and recurses once per value
/// (a stack overflow with some thousands of ids; the ids are spread over every file anyway). The
/// filter then goes to the Parquet scan as it is, a hash-set lookup on the key column.
///
/// It comes with the values' range (`column BETWEEN first AND last`, implied by the list), which
/// Delta's file statistics and Parquet's row-group and page statistics can use: the keys the
/// refresh looks for are mostly neighbours (a service's changes are `repo:sha`, its deployments
/// numbered together), so most pages of these tables are skipped before they are decoded.
pub(crate) fn is_in(column: &str, values: &BTreeSet<String>) -> Expr {
    let (Some(first), Some(last)) = (values.first(), values.last()) else {
        return lit(false);
    };
    let mut list = literals(values);
    list.push(lit(datafusion::scalar::ScalarValue::Utf8(None)));
    col(column)
        .gt_eq(lit(first.as_str()))
        .and(col(column).lt_eq(lit(last.as_str())))
        .and(col(column).in_list(list, false))
}

/// A one-column (`id`) table of `values`.
fn ids(values: &BTreeSet<String>) -> Result<Arc<dyn TableProvider>, QueryError> {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let column = StringArray::from_iter_values(values.iter());
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)])
        .map_err(|e| QueryError::Sql(e.into()))?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// Rows in a lake table's schema as an in-memory table.
pub(crate) fn memory(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let batches = conform(&schema, batches)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

/// The batches in `schema`: same columns, cast where the scan gave another string type (Delta
/// scans may answer `Utf8View`), nullability as the schema says.
pub(crate) fn conform(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, QueryError> {
    let arrow_err = |e: arrow::error::ArrowError| QueryError::Sql(e.into());
    batches
        .into_iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(column, field)| {
                    if column.data_type() == field.data_type() {
                        Ok(Arc::clone(column))
                    } else {
                        arrow::compute::cast(column, field.data_type()).map_err(arrow_err)
                    }
                })
                .collect::<Result<Vec<_>, QueryError>>()?;
            RecordBatch::try_new(Arc::clone(schema), columns).map_err(arrow_err)
        })
        .collect()
}
