//! The lake: one Delta table per canonical table, under a root that is a local folder or an
//! object-store URL (DESIGN §3). Every write is a Delta commit per table, made visible to
//! readers all together by one entry of the lake's commit log ([`crate::commits`]): a write lands
//! whole or not at all, a killed one included. Readers never create or change anything.

use std::collections::HashMap;
use std::path::Path;

use arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{StructField, StructType};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use crate::commits::{COMMITS_DIR, LakeState, ingest_commit, new_ingest_id};
use crate::key_index::{KeyIndex, Seen, row_hashes};
use crate::schema::Table;

/// A lake failure, naming the table.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake location is neither a usable path nor a URL.
    #[error("lake location `{location}`: {message}")]
    Location {
        /// What was given.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// A Delta operation failed.
    #[error("table `{table}`: {source}")]
    Delta {
        /// The table.
        table: &'static str,
        /// The cause.
        #[source]
        source: DeltaTableError,
    },
    /// Reading or writing a derived table (`_derived/…`) failed.
    #[error("derived table `{name}`: {source}")]
    Derived {
        /// The derived table.
        name: String,
        /// The cause.
        #[source]
        source: DeltaTableError,
    },
    /// Reading or writing the lake's commit log (`_commits`) failed.
    #[error("the lake's commit log `_commits`: {source}")]
    Log {
        /// The cause.
        #[source]
        source: DeltaTableError,
    },
    /// Nothing was ever written at the location (a reader never creates a lake).
    #[error("no doracost lake at {location}: run an ingest or `doracost demo` first")]
    NoLake {
        /// The lake's root.
        location: String,
    },
    /// Another writer committed to a table this write was about to commit to.
    #[error("the lake changed under this ingest (another writer committed to `{table}`); rerun it")]
    Changed {
        /// The table.
        table: String,
    },
    /// The lake's write lock could not be taken.
    #[error("the lake's write lock at {location}: {message}")]
    Lock {
        /// The lake's root.
        location: String,
        /// What failed.
        message: String,
    },
    /// The input of a streamed write failed while the write ran (see [`Lake::apply_stream`]);
    /// what was committed was rolled back.
    #[error("the input failed: {message}")]
    Input {
        /// What failed.
        message: String,
    },
    /// Rows handed to the lake do not fit the table's schema.
    #[error("table `{table}`: {message}")]
    Schema {
        /// The table.
        table: &'static str,
        /// What does not fit.
        message: String,
    },
}

fn delta(table: Table) -> impl FnOnce(DeltaTableError) -> LakeError {
    move |source| LakeError::Delta {
        table: table.name(),
        source,
    }
}

/// The lake's root and how to reach it.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
    /// Target size of a clustered derived table's files (see [`CLUSTER_COLUMN`]).
    derived_file_bytes: u64,
    /// How long a derived table's replaced files stay for the readers that opened it before.
    derived_retention: chrono::Duration,
    /// How long the canonical tables keep the files they stopped using (`lake vacuum`).
    retention: chrono::Duration,
    /// A write step after which a write stops for good (see [`Lake::with_pause_after`]).
    pause_after: Option<String>,
}

/// One (source, billing account, invoice month) slice of `costs`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CostSliceKey {
    /// The bill's source (`focus`, `cur`, `cost-explorer`).
    pub source: String,
    /// The billing account.
    pub billing_account: String,
    /// `YYYY-MM`.
    pub invoice_month: String,
}

/// What one table should receive.
#[derive(Debug)]
pub enum TableWrite {
    /// Insert new keys, update changed rows, leave identical rows alone.
    Upsert {
        /// The table.
        table: Table,
        /// Rows in the table's schema, unique by key.
        batches: Vec<RecordBatch>,
    },
    /// Replace whole slices of `costs` with these rows (bills are restated, never merged).
    ReplaceCostSlices {
        /// The slices replaced; a slice with no rows here ends up empty.
        slices: Vec<CostSliceKey>,
        /// The new rows, each inside one of `slices`.
        batches: Vec<RecordBatch>,
    },
}

impl TableWrite {
    /// The same write, its rows checked against (and cast to) the table's schema.
    fn conformed(self) -> Result<TableWrite, LakeError> {
        Ok(match self {
            TableWrite::Upsert { table, batches } => TableWrite::Upsert {
                table,
                batches: conform(table, batches)?,
            },
            TableWrite::ReplaceCostSlices { slices, batches } => TableWrite::ReplaceCostSlices {
                slices,
                batches: conform(Table::Costs, batches)?,
            },
        })
    }

    fn table(&self) -> Table {
        match self {
            TableWrite::Upsert { table, .. } => *table,
            TableWrite::ReplaceCostSlices { .. } => Table::Costs,
        }
    }
}

/// The keys an ingest of events wrote (its deployments, changes and incidents, and both ends of
/// its deployment–change links): where an incremental refresh of the derived tables starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// `deployment_id`s.
    pub deployments: std::collections::BTreeSet<String>,
    /// `change_id`s.
    pub changes: std::collections::BTreeSet<String>,
    /// `incident_id`s.
    pub incidents: std::collections::BTreeSet<String>,
}

impl Touched {
    /// Adds `other`'s keys.
    pub fn extend(&mut self, other: Touched) {
        self.deployments.extend(other.deployments);
        self.changes.extend(other.changes);
        self.incidents.extend(other.incidents);
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.deployments.is_empty() && self.changes.is_empty() && self.incidents.is_empty()
    }
}

/// What a write did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The table's name.
    pub table: &'static str,
    /// Rows offered.
    pub rows_in: usize,
    /// Rows inserted.
    pub inserted: usize,
    /// Existing rows whose content changed.
    pub updated: usize,
    /// Bill slices replaced whole.
    pub replaced_slices: usize,
    /// The Delta version after the write.
    pub version: Option<u64>,
    /// The version the write started from (equal to `version` when nothing was written; one less
    /// when nothing else committed to the table in between).
    pub version_before: Option<u64>,
}

impl WriteOutcome {
    /// Adds a later write's figures to this table's (the same table, one write after the other).
    fn add(&mut self, later: &WriteOutcome) {
        self.rows_in += later.rows_in;
        self.inserted += later.inserted;
        self.updated += later.updated;
        self.replaced_slices += later.replaced_slices;
        self.version = later.version;
    }
}

impl Lake {
    /// A lake at `location`: a folder path, `file://…` or another object-store URL.
    pub fn new(
        location: &str,
        storage_options: HashMap<String, String>,
    ) -> Result<Lake, LakeError> {
        let bad = |message: String| LakeError::Location {
            location: location.to_owned(),
            message,
        };
        let root = if location.contains("://") {
            let mut url = Url::parse(location).map_err(|e| bad(e.to_string()))?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            url
        } else {
            let path = Path::new(location);
            let absolute = if path.is_absolute() {
                path.to_owned()
            } else {
                std::env::current_dir()
                    .map_err(|e| bad(e.to_string()))?
                    .join(path)
            };
            Url::from_directory_path(&absolute).map_err(|()| bad("not an absolute path".into()))?
        };
        if root.scheme() == "file" && root.to_file_path().is_err() {
            return Err(bad("not a local path".into()));
        }
        Ok(Lake {
            root,
            storage_options,
            derived_file_bytes: DERIVED_FILE_BYTES,
            derived_retention: chrono::Duration::hours(1),
            pause_after: None,
            retention: chrono::Duration::days(7),
        })
    }

    /// The same lake, writing clustered derived tables in files of about `bytes` (tests use
    /// small ones to get many files from few rows).
    pub fn with_derived_file_bytes(mut self, bytes: u64) -> Lake {
        self.derived_file_bytes = bytes.max(1);
        self
    }

    /// The same lake, removing the files a derived table stopped using once they are `retention`
    /// old rather than an hour (tests use none, to see the removal's commits).
    pub fn with_derived_retention(mut self, retention: chrono::Duration) -> Lake {
        self.derived_retention = retention;
        self
    }

    /// The same lake, whose writes stop for good (awaiting forever) right after the step
    /// `step`: a table's commit (its name) or the commit log's entry (`_commits`). For the tests
    /// that kill a writer at exactly that point (`doracost --pause-after`); it says so on stderr.
    pub fn with_pause_after(mut self, step: Option<String>) -> Lake {
        self.pause_after = step;
        self
    }

    async fn pause_point(&self, step: &str) {
        if self.pause_after.as_deref() == Some(step) {
            eprintln!("doracost: paused after {step}");
            std::future::pending::<()>().await;
        }
    }

    /// The same lake, keeping the files its canonical tables stopped using for `retention`
    /// rather than 7 days: what `lake vacuum` spares, and how far back readers and `lake restore`
    /// can go.
    pub fn with_retention(mut self, retention: chrono::Duration) -> Lake {
        self.retention = retention;
        self
    }

    /// How long the canonical tables keep the files they stopped using.
    pub fn retention(&self) -> chrono::Duration {
        self.retention
    }

    /// The lake's root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Object-store options (credentials, region) for this lake.
    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.storage_options
    }

    /// The URL of one table's folder.
    pub fn table_url(&self, table: Table) -> Result<Url, LakeError> {
        self.folder_url(table.name())
    }

    /// The URL of the folder `relative` (no trailing slash) under the root.
    pub(crate) fn folder_url(&self, relative: &str) -> Result<Url, LakeError> {
        self.root
            .join(&format!("{relative}/"))
            .map_err(|e| LakeError::Location {
                location: self.root.to_string(),
                message: e.to_string(),
            })
    }

    /// Opens a table, or `None` when it has never been written.
    pub async fn open_existing(&self, table: Table) -> Result<Option<DeltaTable>, LakeError> {
        self.load(self.table_url(table)?)
            .await
            .map_err(delta(table))
    }

    /// The Delta table at `url` at its latest version, or `None` when it has never been written.
    pub(crate) async fn load(&self, url: Url) -> Result<Option<DeltaTable>, DeltaTableError> {
        if url.scheme() == "file" {
            // A local table without a log was never written; asking Delta would only log an error.
            let log = url.to_file_path().map(|p| p.join("_delta_log"));
            if !log.is_ok_and(|log| log.is_dir()) {
                return Ok(None);
            }
        }
        match DeltaTable::try_from_url_with_storage_options(url, self.storage_options.clone()).await
        {
            Ok(handle) => Ok(handle.version().is_some().then_some(handle)),
            // On an object store "no log" is an error, not a missing folder.
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An uninitialised handle on the table folder `url` (created when local), for a first
    /// write.
    pub(crate) fn new_handle(&self, url: Url) -> Result<DeltaTable, LakeError> {
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| LakeError::Location {
                location: url.to_string(),
                message: e.to_string(),
            })?;
        }
        // Built without loading: there is no log to load yet.
        deltalake::DeltaTableBuilder::from_url(url.clone())
            .and_then(|b| b.with_storage_options(self.storage_options.clone()).build())
            .map_err(|e| LakeError::Location {
                location: url.to_string(),
                message: e.to_string(),
            })
    }

    /// A handle on `table` for a write: `existing` (given the canonical columns it lacks, see
    /// [`missing_columns`]), or the table created empty with its canonical schema when it was
    /// never written; either change a commit of `ingest`.
    async fn writable(
        &self,
        table: Table,
        existing: Option<DeltaTable>,
        ingest: &str,
    ) -> Result<DeltaTable, LakeError> {
        if let Some(existing) = existing {
            return add_missing_columns(table, existing, ingest).await;
        }
        let handle = self.new_handle(self.table_url(table)?)?;
        let schema: StructType =
            table
                .schema()
                .as_ref()
                .try_into_kernel()
                .map_err(|e| LakeError::Schema {
                    table: table.name(),
                    message: e.to_string(),
                })?;
        let fields: Vec<StructField> = schema.fields().cloned().collect();
        handle
            .create()
            .with_table_name(table.name())
            .with_columns(fields)
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_commit_properties(ingest_commit(ingest))
            .await
            .map_err(|e| changed(table, e))
    }

    /// Applies writes to several tables as one unit: readers see all of them or none (see
    /// [`crate::commits`]). Under the lake's write lock, a table a killed writer left beyond the
    /// commit log is rolled back first; each write is then a Delta commit on the version found,
    /// and the log entry naming every table's new version comes last. When a write fails (or
    /// another writer got in), the tables already committed are restored to the versions they had
    /// before. `operation` names the write in the log (`ingest events`, `webhook`, …).
    pub async fn apply(
        &self,
        operation: &str,
        writes: Vec<TableWrite>,
    ) -> Result<Vec<WriteOutcome>, LakeError> {
        // Rows that do not fit are refused before the lake is touched.
        let writes = writes
            .into_iter()
            .map(TableWrite::conformed)
            .collect::<Result<Vec<_>, _>>()?;
        self.apply_stream(operation, futures::stream::iter([Ok(writes)]))
            .await
    }

    /// [`Lake::apply`] for writes that arrive in groups while it runs (an ingest that reads its
    /// files in bounded chunks): each group's writes are committed as they come, on the versions
    /// the previous group left, and the log entry naming every table's final version is written
    /// once the stream has ended. Until then readers see the lake as before, so the whole stream
    /// is one unit. An `Err` item (the input failed) stops the write: everything committed so far
    /// is rolled back and that error is returned. A group's writes to one table follow the
    /// earlier groups' (an upsert of a key seen before updates it).
    pub async fn apply_stream<S>(
        &self,
        operation: &str,
        groups: S,
    ) -> Result<Vec<WriteOutcome>, LakeError>
    where
        S: futures::Stream<Item = Result<Vec<TableWrite>, LakeError>> + Send + Unpin,
    {
        let lock = self.lock().await?;
        let result = self.apply_locked(operation, groups).await;
        lock.release().await;
        result
    }

    /// A read-then-write under the lake's write lock: `decide` gets the lake as its readers see
    /// it (the log's latest entry; every table absent in a lake not written yet), reads what it
    /// needs, and returns a value and the writes to make; they are made as one unit (as
    /// [`Lake::apply`]) before the lock is released. Two processes deciding on the same rows (two
    /// schedulers claiming one alert) take turns, and the second sees the first's writes.
    pub async fn transact<T, F, Fut>(
        &self,
        operation: &str,
        decide: F,
    ) -> Result<(T, Vec<WriteOutcome>), LakeError>
    where
        F: FnOnce(crate::commits::LakeState) -> Fut,
        Fut: std::future::Future<Output = Result<(T, Vec<TableWrite>), LakeError>>,
    {
        let lock = self.lock().await?;
        let result = async {
            let state = match self.state().await {
                Ok(state) => state,
                Err(LakeError::NoLake { .. }) => crate::commits::LakeState {
                    tables: Default::default(),
                    log_version: None,
                },
                Err(err) => return Err(err),
            };
            let (value, writes) = decide(state).await?;
            let writes = writes
                .into_iter()
                .map(TableWrite::conformed)
                .collect::<Result<Vec<_>, _>>()?;
            let outcomes = if writes.is_empty() {
                Vec::new()
            } else {
                self.apply_locked(operation, futures::stream::iter([Ok(writes)]))
                    .await?
            };
            Ok((value, outcomes))
        }
        .await;
        lock.release().await;
        result
    }

    async fn apply_locked<S>(
        &self,
        operation: &str,
        mut groups: S,
    ) -> Result<Vec<WriteOutcome>, LakeError>
    where
        S: futures::Stream<Item = Result<Vec<TableWrite>, LakeError>> + Send + Unpin,
    {
        use futures::StreamExt;
        let ingest = new_ingest_id();
        let mut log = self.open_log().await?;
        let logged = match &log {
            Some(log) => Some(crate::commits::latest_entry(log).await?),
            None => None,
        };
        let mut handles = self.recover(logged.as_ref(), &ingest).await?;
        let before = contents_of(&handles);
        if log.is_none() {
            // A lake written before the log existed (or a new one): its tables as they are now
            // are the state a reader sees, and what a killed write goes back to.
            self.commit_log(None, &before, &ingest, "adopt").await?;
            log = self.open_log().await?;
        } else if logged.as_ref().is_some_and(|l| l.tables != before) {
            // Rolled back: logged as its own entry, so that the next writer starts clean.
            self.commit_log(log.as_ref(), &before, &ingest, "roll back a killed write")
                .await?;
            log = self.open_log().await?;
        }
        let base: HashMap<Table, Option<u64>> = handles
            .iter()
            .map(|(t, h)| (*t, h.as_ref().and_then(DeltaTable::version)))
            .collect();
        let mut outcomes: Vec<WriteOutcome> = Vec::new();
        // The bill slices this write replaces so far: its rows must lie in them.
        let mut replaced = std::collections::BTreeSet::new();
        // The tables the write upserted into so far, with their key index (see `upsert`).
        let mut indexes = HashMap::new();
        let mut failure = None;
        'groups: while let Some(group) = groups.next().await {
            let group = match group {
                Ok(group) => group,
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            };
            for write in group {
                let table = write.table();
                let existing = handles.get(&table).cloned().flatten();
                let applied = match write.conformed() {
                    Ok(write) => {
                        self.apply_one(write, existing, &ingest, &mut replaced, &mut indexes)
                            .await
                    }
                    Err(err) => Err(err),
                };
                match applied {
                    Ok((outcome, handle)) => {
                        handles.insert(table, Some(handle));
                        match outcomes.iter_mut().find(|o| o.table == outcome.table) {
                            Some(sum) => sum.add(&outcome),
                            None => outcomes.push(outcome),
                        }
                        self.pause_point(table.name()).await;
                    }
                    Err(err) => {
                        failure = Some(err);
                        break 'groups;
                    }
                }
            }
        }
        if failure.is_none() {
            let after = contents_of(&handles);
            if after == before {
                return Ok(outcomes);
            }
            match self
                .commit_log(log.as_ref(), &after, &ingest, operation)
                .await
            {
                Ok(_) => {
                    self.pause_point(COMMITS_DIR).await;
                    return Ok(outcomes);
                }
                Err(err) => failure = Some(err),
            }
        }
        for (table, handle) in &handles {
            let version = handle.as_ref().and_then(DeltaTable::version);
            let was = base.get(table).copied().flatten();
            if version != was
                && let Some(handle) = self.open_existing(*table).await.ok().flatten()
                && let Err(restore_err) = self.roll_back(*table, handle, was, &ingest).await
            {
                tracing::error!(table = table.name(), error = %restore_err, "restore after a failed write failed; the next write of the lake restores it");
            }
        }
        Err(failure.unwrap_or_else(|| LakeError::Changed {
            table: COMMITS_DIR.to_owned(),
        }))
    }

    /// Every canonical table at its latest version, each one a killed writer left beyond the
    /// logged state `logged` rolled back to it first.
    pub(crate) async fn recover(
        &self,
        logged: Option<&LakeState>,
        ingest: &str,
    ) -> Result<HashMap<Table, Option<DeltaTable>>, LakeError> {
        let mut handles = self.open_all().await?;
        for table in Table::ALL {
            let handle = handles.remove(&table).flatten();
            let handle = match (logged, handle) {
                (Some(state), Some(handle)) => {
                    let want = state.content(table);
                    let latest = content_id(&handle);
                    if latest == want {
                        Some(handle)
                    } else {
                        match parse_content_id(want) {
                            // Created by a killed writer.
                            None => Some(self.roll_back(table, handle, None, ingest).await?),
                            Some((id, version))
                                if parse_content_id(&latest)
                                    .is_some_and(|(i, v)| i == id && v > version) =>
                            {
                                tracing::warn!(
                                    table = table.name(),
                                    from = handle.version(),
                                    to = version,
                                    "rolling back the commits of a write that did not finish"
                                );
                                Some(self.roll_back(table, handle, Some(version), ingest).await?)
                            }
                            _ => {
                                tracing::warn!(
                                    table = table.name(),
                                    "the table was changed outside doracost; taking it as it is"
                                );
                                Some(handle)
                            }
                        }
                    }
                }
                (_, handle) => handle,
            };
            handles.insert(table, handle);
        }
        Ok(handles)
    }

    /// Every canonical table at its latest version (`None`: never written), opened side by side.
    pub(crate) async fn open_all(&self) -> Result<HashMap<Table, Option<DeltaTable>>, LakeError> {
        let opened =
            futures::future::try_join_all(Table::ALL.map(|t| self.open_existing(t))).await?;
        Ok(Table::ALL.into_iter().zip(opened).collect())
    }

    /// Brings `handle` (at its latest version) back to the content of `version` in a new commit;
    /// `None`: empties it (it did not exist). Returns the table after.
    pub(crate) async fn roll_back(
        &self,
        table: Table,
        handle: DeltaTable,
        version: Option<u64>,
        ingest: &str,
    ) -> Result<DeltaTable, LakeError> {
        let restored = match version {
            Some(v) => handle
                .restore()
                .with_version_to_restore(v)
                .with_commit_properties(ingest_commit(ingest))
                .await
                .map(|(t, _)| t),
            None => handle
                .delete()
                .with_commit_properties(ingest_commit(ingest))
                .await
                .map(|(t, _)| t),
        };
        restored.map_err(|e| changed(table, e))
    }

    async fn apply_one(
        &self,
        write: TableWrite,
        existing: Option<DeltaTable>,
        ingest: &str,
        replaced: &mut std::collections::BTreeSet<CostSliceKey>,
        indexes: &mut HashMap<Table, Option<KeyIndex>>,
    ) -> Result<(WriteOutcome, DeltaTable), LakeError> {
        let version_before = existing.as_ref().and_then(DeltaTable::version);
        let (mut outcome, handle) = match write {
            TableWrite::Upsert { table, batches } => {
                let handle = self.writable(table, existing, ingest).await?;
                upsert(table, handle, batches, ingest, indexes).await?
            }
            TableWrite::ReplaceCostSlices { slices, batches } => {
                replaced.extend(slices.iter().cloned());
                outside_slices(replaced, &batches)?;
                let handle = self.writable(Table::Costs, existing, ingest).await?;
                replace_cost_slices(handle, &slices, batches, ingest).await?
            }
        };
        // The version this write found, before a column it added (one commit more).
        if version_before.is_some() {
            outcome.version_before = version_before;
        }
        Ok((outcome, handle))
    }
}

/// Refuses bill rows outside the slices their write replaces (a re-ingest would count them twice).
fn outside_slices(
    replaced: &std::collections::BTreeSet<CostSliceKey>,
    batches: &[RecordBatch],
) -> Result<(), LakeError> {
    use arrow::array::AsArray;
    let column = |batch: &RecordBatch, name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>().cloned())
            .ok_or_else(|| LakeError::Schema {
                table: Table::Costs.name(),
                message: format!("no string column `{name}`"),
            })
    };
    for batch in batches {
        let (source, account, month) = (
            column(batch, "source")?,
            column(batch, "billing_account")?,
            column(batch, "invoice_month")?,
        );
        let mut last: Option<(&str, &str, &str)> = None;
        for row in 0..batch.num_rows() {
            let key = (source.value(row), account.value(row), month.value(row));
            if last == Some(key) {
                continue;
            }
            let found = replaced.contains(&CostSliceKey {
                source: key.0.to_owned(),
                billing_account: key.1.to_owned(),
                invoice_month: key.2.to_owned(),
            });
            if !found {
                return Err(LakeError::Schema {
                    table: Table::Costs.name(),
                    message: format!(
                        "a row of bill slice ({}, {}, {}) lies outside the slices this write replaces",
                        key.0, key.1, key.2
                    ),
                });
            }
            last = Some(key);
        }
    }
    Ok(())
}

/// The canonical columns a written table lacks: columns added to its schema (nullable, at the
/// end) after an older doracost wrote it, e.g. `deployments.deployment_group`. Its rows read
/// them as null; [`Lake::apply`] adds them to the table before it writes to it.
pub fn missing_columns(table: Table, handle: &DeltaTable) -> Vec<arrow::datatypes::FieldRef> {
    let Ok(state) = handle.snapshot() else {
        return Vec::new();
    };
    let present = state.schema();
    table
        .schema()
        .fields()
        .iter()
        .filter(|f| present.field(f.name()).is_none())
        .cloned()
        .collect()
}

/// `handle` with the columns [`missing_columns`] names added (a Delta schema change, commit of
/// `ingest`; the files already written read them as null), so that rows in the canonical
/// schema can be merged into a table written before those columns existed.
async fn add_missing_columns(
    table: Table,
    handle: DeltaTable,
    ingest: &str,
) -> Result<DeltaTable, LakeError> {
    let missing = missing_columns(table, &handle);
    if missing.is_empty() {
        return Ok(handle);
    }
    let bad = |message: String| LakeError::Schema {
        table: table.name(),
        message,
    };
    let mut fields = Vec::new();
    for field in &missing {
        if !field.is_nullable() {
            return Err(bad(format!(
                "the table has no column `{}`, and a required column cannot be added to rows \
                 written without it",
                field.name()
            )));
        }
        let field: StructField = field
            .as_ref()
            .try_into_kernel()
            .map_err(|e| bad(e.to_string()))?;
        fields.push(field);
    }
    tracing::info!(
        table = table.name(),
        columns = ?missing.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "adding the columns this version of doracost writes"
    );
    handle
        .add_columns()
        .with_fields(fields)
        .with_commit_properties(ingest_commit(ingest))
        .await
        .map_err(|e| changed(table, e))
}

/// Every table's content id (`absent` for none).
pub(crate) fn contents_of(
    handles: &HashMap<Table, Option<DeltaTable>>,
) -> std::collections::BTreeMap<String, String> {
    handles
        .iter()
        .map(|(t, h)| {
            let id = h.as_ref().map_or_else(|| "absent".to_owned(), content_id);
            (t.name().to_owned(), id)
        })
        .collect()
}

/// [`LakeError::Changed`] for a commit to `table` that another writer beat, else `other`.
pub(crate) fn on_conflict(
    table: &str,
    error: DeltaTableError,
    other: impl FnOnce(DeltaTableError) -> LakeError,
) -> LakeError {
    if is_conflict(&error) {
        LakeError::Changed {
            table: table.to_owned(),
        }
    } else {
        other(error)
    }
}

/// [`on_conflict`] for a canonical table, its other errors named by it.
fn changed(table: Table, error: DeltaTableError) -> LakeError {
    on_conflict(table.name(), error, delta(table))
}

/// Inserts new keys and updates rows whose content changed; identical rows are left alone, so
/// ingesting the same input twice changes nothing (DESIGN §3). `indexes`: per table this write
/// upserted into before, its key index if it has one (see [`crate::key_index`]). A write's first
/// upsert into a table merges by key, with an index only if the table is empty (an index of
/// nothing costs nothing), so a one-chunk write never builds one; its second builds the index
/// from the table, and every later chunk is matched against it.
async fn upsert(
    table: Table,
    handle: DeltaTable,
    batches: Vec<RecordBatch>,
    ingest: &str,
    indexes: &mut HashMap<Table, Option<KeyIndex>>,
) -> Result<(WriteOutcome, DeltaTable), LakeError> {
    let rows_in: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut outcome = WriteOutcome {
        table: table.name(),
        rows_in,
        version: handle.version(),
        version_before: handle.version(),
        ..Default::default()
    };
    if rows_in == 0 {
        return Ok((outcome, handle));
    }
    let empty = handle
        .snapshot()
        .map(|s| s.log_data().num_files() == 0)
        .unwrap_or(true);
    let columns = RowColumns::of(table);
    match indexes.get(&table) {
        None => {
            indexes.insert(table, empty.then(KeyIndex::default));
        }
        Some(None) => {
            let index = build_index(table, &handle, &columns).await?;
            indexes.insert(table, Some(index));
        }
        Some(Some(_)) => {}
    }
    // With an index, rows of keys the table lacks need no merge and identical rows no write.
    let (fresh, fresh_hashes, rest) = match indexes.get(&table).and_then(Option::as_ref) {
        Some(index) => split_by_index(table, index, &columns, batches)?,
        None if empty => (batches, Vec::new(), Vec::new()),
        None => (Vec::new(), Vec::new(), batches),
    };
    let merged = if rest.iter().any(|b| b.num_rows() > 0) {
        match_target(table, &handle, rest).await?
    } else {
        Merged::default()
    };
    let mut handle = handle;
    if !merged.changed.is_empty() {
        let (deleted, _) = handle
            .delete()
            .with_predicate(key_in(table, &merged.changed)?)
            .with_commit_properties(ingest_commit(ingest))
            .await
            .map_err(|e| changed(table, e))?;
        handle = deleted;
    }
    let fresh = conform(table, fresh)?;
    let new = conform(table, merged.new)?;
    let updated = conform(table, merged.changed)?;
    let count = |rows: &[RecordBatch]| rows.iter().map(RecordBatch::num_rows).sum::<usize>();
    outcome.inserted = count(&fresh) + count(&new);
    outcome.updated = count(&updated);
    if let Some(index) = indexes.get_mut(&table).and_then(Option::as_mut) {
        index.record(fresh_hashes, false);
        index.record(columns.hashes(table, &new)?, false);
        index.record(columns.hashes(table, &updated)?, true);
    }
    let rows: Vec<RecordBatch> = fresh.into_iter().chain(new).chain(updated).collect();
    if !rows.is_empty() {
        handle = handle
            .write(Vec::new())
            .with_input_plan(partitioned_scan(table, rows)?)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(ingest_commit(ingest))
            .await
            .map_err(|e| changed(table, e))?;
    }
    outcome.version = handle.version();
    Ok((outcome, handle))
}

/// The column positions a table's rows are indexed by: its key, and its content (every other
/// column but `ingested_at`, which a re-ingest of the same row does not change).
struct RowColumns {
    key: Vec<usize>,
    content: Vec<usize>,
}

impl RowColumns {
    fn of(table: Table) -> Self {
        let keys = table.key();
        let (mut key, mut content) = (Vec::new(), Vec::new());
        for (i, field) in table.schema().fields().iter().enumerate() {
            if keys.contains(&field.name().as_str()) {
                key.push(i);
            } else if field.name() != "ingested_at" {
                content.push(i);
            }
        }
        RowColumns { key, content }
    }

    fn hashes(&self, table: Table, rows: &[RecordBatch]) -> Result<Vec<(u64, u64)>, LakeError> {
        let mut out = Vec::new();
        for batch in rows {
            out.extend(
                row_hashes(batch, &self.key, &self.content).map_err(|e| delta(table)(e.into()))?,
            );
        }
        Ok(out)
    }
}

/// The index of every row `handle` holds: one streamed scan.
async fn build_index(
    table: Table,
    handle: &DeltaTable,
    columns: &RowColumns,
) -> Result<KeyIndex, LakeError> {
    use futures::StreamExt;
    let err = |e: deltalake::datafusion::error::DataFusionError| delta(table)(e.into());
    let schema = table.schema();
    let ctx = SessionContext::new();
    ctx.register_table("dc_target", handle.table_provider().await.map_err(err)?)
        .map_err(err)?;
    let select = schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stream = ctx
        .sql(&format!("SELECT {select} FROM dc_target"))
        .await
        .map_err(err)?
        .execute_stream()
        .await
        .map_err(err)?;
    let mut rows = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = as_schema(&schema, batch.map_err(err)?).map_err(|e| err(e.into()))?;
        rows.extend(columns.hashes(table, std::slice::from_ref(&batch))?);
    }
    Ok(KeyIndex::from_rows(rows))
}

/// Splits rows by what `index` knows of them: rows of keys the table lacks (with their hashes),
/// and rows to merge by key; rows identical to the table's are dropped.
#[allow(clippy::type_complexity)]
fn split_by_index(
    table: Table,
    index: &KeyIndex,
    columns: &RowColumns,
    batches: Vec<RecordBatch>,
) -> Result<(Vec<RecordBatch>, Vec<(u64, u64)>, Vec<RecordBatch>), LakeError> {
    let err = |e: arrow::error::ArrowError| delta(table)(DeltaTableError::from(e));
    let (mut fresh, mut fresh_hashes, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for batch in batches {
        let hashes = columns.hashes(table, std::slice::from_ref(&batch))?;
        let seen: Vec<Seen> = hashes.iter().map(|(k, c)| index.seen(*k, *c)).collect();
        let mask = |want: Seen| {
            arrow::array::BooleanArray::from(seen.iter().map(|s| *s == want).collect::<Vec<_>>())
        };
        fresh.push(arrow::compute::filter_record_batch(&batch, &mask(Seen::New)).map_err(err)?);
        rest.push(arrow::compute::filter_record_batch(&batch, &mask(Seen::Merge)).map_err(err)?);
        fresh_hashes.extend(
            hashes
                .into_iter()
                .zip(&seen)
                .filter(|(_, s)| **s == Seen::New)
                .map(|(h, _)| h),
        );
    }
    Ok((fresh, fresh_hashes, rest))
}

/// What a merge by key found: rows of keys the table lacks, and the new content of rows whose
/// content changed.
#[derive(Default)]
struct Merged {
    new: Vec<RecordBatch>,
    changed: Vec<RecordBatch>,
}

/// `batches` merged by key with the table: a merge in bounded memory (delta-rs's MERGE holds
/// every target row it scans until the scan ends, to learn which files changed). One pass over
/// the target finds the rows whose keys the batch holds (a join with the batch on the build
/// side), then the batch is compared with those alone.
async fn match_target(
    table: Table,
    handle: &DeltaTable,
    batches: Vec<RecordBatch>,
) -> Result<Merged, LakeError> {
    let err = |e: deltalake::datafusion::error::DataFusionError| delta(table)(e.into());
    let keys = table.key();
    let on = keys
        .iter()
        .map(|k| format!("dc_target.\"{k}\" = dc_source.\"{k}\""))
        .collect::<Vec<_>>()
        .join(" AND ");
    let schema = table.schema();
    let source =
        deltalake::datafusion::datasource::MemTable::try_new(schema.clone(), vec![batches])
            .map_err(err)?;
    let source = std::sync::Arc::new(source);
    // The chunk stays the join's build side: by bytes a compressed table can look smaller than
    // the chunk in memory, and a swap would build a hash table of the whole table.
    let mut config = deltalake::datafusion::prelude::SessionConfig::new();
    config.options_mut().optimizer.join_reordering = false;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table("dc_source", source.clone())
        .map_err(err)?;
    ctx.register_table("dc_target", handle.table_provider().await.map_err(err)?)
        .map_err(err)?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let target_columns = columns
        .iter()
        .map(|c| format!("dc_target.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let matched = collect_sql(
        &ctx,
        &format!("SELECT {target_columns} FROM dc_source JOIN dc_target ON {on}"),
    )
    .await
    .map_err(err)?;
    let content: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|name| *name != "ingested_at" && !keys.contains(name))
        .collect();
    let (changed_rows, values) = if table == Table::Changes {
        merged_fields(&content)
    } else {
        let changed_rows = content
            .iter()
            .map(|c| format!("(dc_target.\"{c}\" IS DISTINCT FROM dc_source.\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" OR ");
        (changed_rows, HashMap::new())
    };
    let found = matched.iter().map(RecordBatch::num_rows).sum::<usize>();
    // As the table's schema (Delta reads may give other string or timestamp types).
    let matched = matched
        .into_iter()
        .map(|batch| as_schema(&schema, batch))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.into()))?;
    let compare = SessionContext::new();
    compare.register_table("dc_source", source).map_err(err)?;
    let matched =
        deltalake::datafusion::datasource::MemTable::try_new(schema.clone(), vec![matched])
            .map_err(err)?;
    compare
        .register_table("dc_target", std::sync::Arc::new(matched))
        .map_err(err)?;
    let new = collect_sql(
        &compare,
        &format!("SELECT * FROM dc_source WHERE NOT EXISTS (SELECT 1 FROM dc_target WHERE {on})"),
    )
    .await
    .map_err(err)?;
    if found == 0 {
        return Ok(Merged {
            new,
            changed: Vec::new(),
        });
    }
    let select = columns
        .iter()
        .map(|c| {
            let value = values
                .get(c)
                .cloned()
                .unwrap_or_else(|| format!("dc_source.\"{c}\""));
            format!("{value} AS \"{c}\"")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let changed = collect_sql(
        &compare,
        &format!("SELECT {select} FROM dc_source JOIN dc_target ON {on} WHERE {changed_rows}"),
    )
    .await
    .map_err(err)?;
    Ok(Merged { new, changed })
}

/// `batch` with the table's column types (Delta reads may give other string or timestamp types).
fn as_schema(
    schema: &arrow::datatypes::SchemaRef,
    batch: RecordBatch,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// The rows of one query.
async fn collect_sql(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<RecordBatch>, deltalake::datafusion::error::DataFusionError> {
    ctx.sql(sql).await?.collect().await
}

/// `key IN (the keys of rows)`: one column's list, or for a key of several columns their
/// values joined by a separator no id holds (U+001F).
fn key_in(
    table: Table,
    rows: &[RecordBatch],
) -> Result<deltalake::datafusion::prelude::Expr, LakeError> {
    use arrow::array::AsArray;
    use deltalake::datafusion::prelude::{col, concat, lit};
    let keys = table.key();
    let mut values = std::collections::BTreeSet::new();
    for batch in rows {
        let columns = keys
            .iter()
            .map(|k| {
                batch
                    .column_by_name(k)
                    .and_then(|c| c.as_string_opt::<i32>().cloned())
                    .ok_or_else(|| LakeError::Schema {
                        table: table.name(),
                        message: format!("key column `{k}` is not text"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let parts: Vec<&str> = columns.iter().map(|c| c.value(row)).collect();
            values.insert(parts.join("\u{1f}"));
        }
    }
    let list: Vec<_> = values.into_iter().map(lit).collect();
    let key = if keys.len() == 1 {
        col(keys[0])
    } else {
        let mut parts = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                parts.push(lit("\u{1f}"));
            }
            parts.push(col(*k));
        }
        concat(parts)
    };
    Ok(key.in_list(list, false))
}

/// A change's fields merge rather than replace (the same commit is listed by several
/// deployments, some naming only its sha): within one ingest (the target row has the source's
/// `ingested_at`: an earlier chunk of the same read) the first non-null value stays, as
/// within one batch; from a later ingest a non-null value replaces and a null never erases.
/// Returns the "row changed" predicate and each content column's new value.
fn merged_fields(content: &[&str]) -> (String, HashMap<String, String>) {
    const SAME: &str = "dc_target.\"ingested_at\" = dc_source.\"ingested_at\"";
    let changed = content
        .iter()
        .map(|c| {
            format!(
                "(CASE WHEN {SAME} THEN dc_target.\"{c}\" IS NULL AND dc_source.\"{c}\" IS NOT NULL \
                 ELSE dc_source.\"{c}\" IS NOT NULL AND dc_source.\"{c}\" IS DISTINCT FROM dc_target.\"{c}\" END)"
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let values = content
        .iter()
        .map(|c| {
            (
                (*c).to_owned(),
                format!(
                    "CASE WHEN {SAME} THEN COALESCE(dc_target.\"{c}\", dc_source.\"{c}\") \
                     ELSE COALESCE(dc_source.\"{c}\", dc_target.\"{c}\") END"
                ),
            )
        })
        .collect();
    (changed, values)
}

/// Replaces whole (source, account, month) slices of `costs`: the slices' rows are deleted (one
/// commit, none when the table holds no row of them), then `batches` appended (another). Rows of
/// a slice an earlier group of the same write replaced may be among `batches`: they append to it.
async fn replace_cost_slices(
    handle: DeltaTable,
    slices: &[CostSliceKey],
    batches: Vec<RecordBatch>,
    ingest: &str,
) -> Result<(WriteOutcome, DeltaTable), LakeError> {
    let table = Table::Costs;
    let rows_in: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut outcome = WriteOutcome {
        table: table.name(),
        rows_in,
        version: handle.version(),
        version_before: handle.version(),
        ..Default::default()
    };
    let mut handle = handle;
    let empty = handle
        .snapshot()
        .map(|s| s.log_data().num_files() == 0)
        .unwrap_or(true);
    if !slices.is_empty() && !empty {
        let predicate = slices
            .iter()
            .map(|s| {
                format!(
                    "(\"source\" = {} AND \"billing_account\" = {} AND \"invoice_month\" = {})",
                    sql_string(&s.source),
                    sql_string(&s.billing_account),
                    sql_string(&s.invoice_month)
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let (deleted, metrics) = handle
            .delete()
            .with_predicate(predicate)
            .with_commit_properties(ingest_commit(ingest))
            .await
            .map_err(|e| changed(table, e))?;
        handle = deleted;
        tracing::debug!(
            rows = metrics.num_deleted_rows,
            slices = slices.len(),
            "bill slices deleted before their new rows"
        );
    }
    if rows_in > 0 {
        handle = handle
            .write(Vec::new())
            .with_input_plan(partitioned_scan(table, batches)?)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(ingest_commit(ingest))
            .await
            .map_err(|e| changed(table, e))?;
    }
    outcome.inserted = rows_in;
    outcome.replaced_slices = slices.len();
    outcome.version = handle.version();
    Ok((outcome, handle))
}

/// The folder under the lake's root that holds derived tables: the per-row metric views computed
/// at ingest (see `query::derived`). Everything in it can be recomputed from the canonical tables
/// and the config; deleting it loses nothing.
pub const DERIVED_DIR: &str = "_derived";

/// The commit-metadata key holding a derived table's stamp.
const STAMP_KEY: &str = "doracost.stamp";

/// Commit properties carrying a derived table's stamp.
fn stamped(stamp: &str) -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default().with_metadata([(
        STAMP_KEY.to_owned(),
        serde_json::Value::String(stamp.to_owned()),
    )])
}

/// Another writer committed first (the commit was made with no retries).
pub(crate) fn is_conflict(error: &DeltaTableError) -> bool {
    matches!(
        error,
        DeltaTableError::Transaction { .. } | DeltaTableError::VersionAlreadyExists(_)
    )
}

/// A derived table as found in the lake.
#[derive(Debug)]
pub struct DerivedTable {
    /// The Delta table, loaded at its latest version.
    pub table: DeltaTable,
    /// The stamp of its latest commit (what it was computed from), if it has one.
    pub stamp: Option<String>,
}

impl Lake {
    /// The URL of a derived table's folder.
    pub fn derived_url(&self, name: &str) -> Result<Url, LakeError> {
        self.folder_url(&format!("{DERIVED_DIR}/{name}"))
    }

    /// What identifies the lake's content as readers see it now: each canonical table's content
    /// id in the commit log's latest entry (see [`content_id`]; `absent` for a table never
    /// written) and each of the named derived tables' latest. Two equal answers mean nothing a
    /// reader can see was committed in between.
    pub async fn content(
        &self,
        derived: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, LakeError> {
        let state = self.state().await?;
        let mut content = std::collections::BTreeMap::new();
        for table in Table::ALL {
            content.insert(table.name().to_owned(), state.content(table).to_owned());
        }
        for name in derived {
            let id = match self.load(self.derived_url(name)?).await.map_err(|source| {
                LakeError::Derived {
                    name: name.clone(),
                    source,
                }
            })? {
                Some(handle) => content_id(&handle),
                None => "absent".to_owned(),
            };
            content.insert(format!("{DERIVED_DIR}/{name}"), id);
        }
        Ok(content)
    }

    /// Opens a derived table with the stamp of its latest commit, or `None` when it was never
    /// written.
    pub async fn open_derived(&self, name: &str) -> Result<Option<DerivedTable>, LakeError> {
        let err = |source| LakeError::Derived {
            name: name.to_owned(),
            source,
        };
        let Some(table) = self.load(self.derived_url(name)?).await.map_err(err)? else {
            return Ok(None);
        };
        use futures::TryStreamExt;
        let last: Vec<deltalake::kernel::CommitInfo> =
            table.history(Some(1)).try_collect().await.map_err(err)?;
        let stamp = last
            .first()
            .and_then(|c| c.info.get(STAMP_KEY))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        Ok(Some(DerivedTable { table, stamp }))
    }

    /// Replaces a derived table's rows (and schema) in one commit stamped with `stamp`, then
    /// removes data files the table stopped using more than an hour ago (a reader that opened the
    /// previous version a moment ago can still finish). Returns the new version.
    pub async fn write_derived(
        &self,
        name: &str,
        schema: arrow::datatypes::SchemaRef,
        batches: Vec<RecordBatch>,
        stamp: &str,
    ) -> Result<u64, LakeError> {
        use deltalake::operations::write::SchemaMode;
        let err = |source| LakeError::Derived {
            name: name.to_owned(),
            source,
        };
        let url = self.derived_url(name)?;
        let handle = match self.load(url.clone()).await.map_err(err)? {
            Some(existing) => existing,
            None => self.new_handle(url)?,
        };
        let commit = stamped(stamp);
        let (plan, file_size) =
            derived_plan(schema, batches, self.derived_file_bytes).map_err(|e| err(e.into()))?;
        let written = handle
            .write(Vec::new())
            .with_input_plan(plan)
            .with_target_file_size(file_size)
            .with_table_name(name)
            .with_save_mode(SaveMode::Overwrite)
            .with_schema_mode(SchemaMode::Overwrite)
            .with_commit_properties(commit)
            .await
            .map_err(err)?;
        Ok(self.vacuum_derived(name, written, stamp).await)
    }

    /// Replaces the rows of a derived table that match `predicate` (SQL over its columns, e.g.
    /// `service IN ('a', 'b')`) with `batches`, every one of which must match it, in one commit
    /// stamped with `stamp`, made only on top of version `expected`: `Ok(None)`, with nothing
    /// written, when another writer committed to the table since (no retry, no conflict
    /// resolution: the rows kept were computed for `expected`).
    pub async fn replace_derived_where(
        &self,
        name: &str,
        schema: arrow::datatypes::SchemaRef,
        batches: Vec<RecordBatch>,
        predicate: &str,
        stamp: &str,
        expected: u64,
    ) -> Result<Option<u64>, LakeError> {
        let err = |source| LakeError::Derived {
            name: name.to_owned(),
            source,
        };
        let Some(handle) = self.derived_at(name, expected).await? else {
            return Ok(None);
        };
        let commit = stamped(stamp).with_max_retries(0);
        let (plan, file_size) =
            derived_plan(schema, batches, self.derived_file_bytes).map_err(|e| err(e.into()))?;
        let written = handle
            .write(Vec::new())
            .with_input_plan(plan)
            .with_target_file_size(file_size)
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate.to_owned())
            .with_commit_properties(commit)
            .await;
        let written = match written {
            Ok(written) => written,
            Err(e) if is_conflict(&e) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        Ok(Some(self.vacuum_derived(name, written, stamp).await))
    }

    /// Appends `batches` to a derived table in one commit stamped with `stamp`, made only on top
    /// of version `expected`: `Ok(None)`, with nothing written, when another writer committed to
    /// it since. A refresh in parts writes its first part with [`Lake::write_derived`], the
    /// others with this, under a stamp no reader takes for fresh, and stamps the whole with
    /// [`Lake::restamp_derived`] last.
    pub async fn append_derived(
        &self,
        name: &str,
        schema: arrow::datatypes::SchemaRef,
        batches: Vec<RecordBatch>,
        stamp: &str,
        expected: u64,
    ) -> Result<Option<u64>, LakeError> {
        let err = |source| LakeError::Derived {
            name: name.to_owned(),
            source,
        };
        let Some(handle) = self.derived_at(name, expected).await? else {
            return Ok(None);
        };
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(Some(expected));
        }
        let commit = stamped(stamp).with_max_retries(0);
        let (plan, file_size) =
            derived_plan(schema, batches, self.derived_file_bytes).map_err(|e| err(e.into()))?;
        let written = handle
            .write(Vec::new())
            .with_input_plan(plan)
            .with_target_file_size(file_size)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(commit)
            .await;
        match written {
            Ok(written) => Ok(written.version()),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Stamps a derived table's rows, unchanged, as computed from `stamp` (a commit of no data
    /// change) on top of version `expected`: `Ok(None)`, with nothing written, when another writer
    /// committed to the table since, or it does not exist.
    pub async fn restamp_derived(
        &self,
        name: &str,
        stamp: &str,
        expected: u64,
    ) -> Result<Option<u64>, LakeError> {
        use deltalake::kernel::transaction::CommitBuilder;
        use deltalake::protocol::DeltaOperation;
        let err = |source| LakeError::Derived {
            name: name.to_owned(),
            source,
        };
        let Some(handle) = self.derived_at(name, expected).await? else {
            return Ok(None);
        };
        let commit = stamped(stamp).with_max_retries(0);
        let snapshot = handle.snapshot().map_err(err)?;
        let committed = CommitBuilder::from(commit)
            .build(
                Some(snapshot),
                handle.log_store(),
                DeltaOperation::SetTableProperties {
                    properties: HashMap::new(),
                },
            )
            .await;
        match committed {
            Ok(done) => Ok(Some(done.version())),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// The derived table `name` at its latest version if that is `expected`; `None` when another
    /// writer committed to it since, or it does not exist.
    async fn derived_at(&self, name: &str, expected: u64) -> Result<Option<DeltaTable>, LakeError> {
        let handle =
            self.load(self.derived_url(name)?)
                .await
                .map_err(|source| LakeError::Derived {
                    name: name.to_owned(),
                    source,
                })?;
        Ok(handle.filter(|h| h.version() == Some(expected)))
    }

    /// Removes data files a derived table stopped using more than an hour ago (a reader that
    /// opened the previous version a moment ago can still finish); returns the table's version
    /// after it. A removal is two commits of its own (Delta's VACUUM START and END), stamped as
    /// the write before them: the stamp is read from the latest commit ([`Lake::open_derived`]).
    async fn vacuum_derived(&self, name: &str, written: DeltaTable, stamp: &str) -> u64 {
        let version = written.version().unwrap_or_default();
        let commit = stamped(stamp);
        match written
            .vacuum()
            .with_retention_period(self.derived_retention)
            .with_enforce_retention_duration(false)
            .with_commit_properties(commit)
            .await
        {
            Ok((table, _)) => table.version().unwrap_or(version),
            Err(e) => {
                tracing::warn!(table = name, error = %e, "removing a derived table's old files failed");
                version
            }
        }
    }
}

/// The column derived tables are clustered by (when they have it): their rows are written sorted
/// by it in files of about [`DERIVED_FILE_BYTES`], so each file covers a narrow range of services
/// and its Parquet statistics say which. A replace of a few services' rows
/// ([`Lake::replace_derived_where`]) then rewrites the few files that hold them, not the table.
pub const CLUSTER_COLUMN: &str = "service";

/// The default target size of a clustered derived table's data files (Parquet, as encoded).
pub const DERIVED_FILE_BYTES: u64 = 8 << 20;

/// How a derived table's rows are written: sorted by [`CLUSTER_COLUMN`] in files of
/// `file_bytes` when the table has that column, else spread over the cores in files of Delta's
/// default size.
fn derived_plan(
    schema: arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
    file_bytes: u64,
) -> Result<
    (
        deltalake::datafusion::logical_expr::LogicalPlan,
        Option<std::num::NonZeroU64>,
    ),
    deltalake::datafusion::error::DataFusionError,
> {
    let Some((index, _)) = schema.column_with_name(CLUSTER_COLUMN) else {
        return Ok((scan_over_cores(schema, batches)?, None));
    };
    let plan = crate::sorted::sorted_scan(schema, batches, index, file_bytes)?;
    Ok((plan, std::num::NonZeroU64::new(file_bytes)))
}

/// The rows as a scan of one in-memory partition per core, so that Delta writes Parquet files
/// on every core rather than one.
fn partitioned_scan(
    table: Table,
    batches: Vec<RecordBatch>,
) -> Result<deltalake::datafusion::logical_expr::LogicalPlan, LakeError> {
    scan_over_cores(table.schema(), batches).map_err(|e| delta(table)(e.into()))
}

fn scan_over_cores(
    schema: arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<
    deltalake::datafusion::logical_expr::LogicalPlan,
    deltalake::datafusion::error::DataFusionError,
> {
    use deltalake::datafusion::datasource::{MemTable, provider_as_source};
    use deltalake::datafusion::logical_expr::LogicalPlanBuilder;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); cores.min(batches.len()).max(1)];
    let count = partitions.len();
    for (i, batch) in batches.into_iter().enumerate() {
        partitions[i % count].push(batch);
    }
    let memory = MemTable::try_new(schema, partitions)?;
    LogicalPlanBuilder::scan(
        "rows",
        provider_as_source(std::sync::Arc::new(memory)),
        None,
    )?
    .build()
}

/// What identifies the content of a table as loaded: its Delta table id (a new one when the
/// table is deleted and created again) and its version, as `id@version`.
pub fn content_id(table: &DeltaTable) -> String {
    // The kernel keeps `Metadata::id()` crate-private; its serde form carries the `id` field.
    let id = table
        .snapshot()
        .ok()
        .and_then(|s| serde_json::to_value(s.metadata()).ok())
        .and_then(|m| m.get("id").and_then(|id| id.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let version = table
        .version()
        .map_or_else(|| "none".to_owned(), |v| v.to_string());
    format!("{id}@{version}")
}

/// The Arrow schema a Delta provider of `table` scans with (the canonical schema through Delta's
/// types): what a reader registers, empty, for a table not yet written.
pub fn read_schema(table: Table) -> Result<arrow::datatypes::SchemaRef, LakeError> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
    let bad = |message: String| LakeError::Schema {
        table: table.name(),
        message,
    };
    let kernel: StructType = table
        .schema()
        .as_ref()
        .try_into_kernel()
        .map_err(|e| bad(e.to_string()))?;
    let arrow: arrow::datatypes::Schema =
        (&kernel).try_into_arrow().map_err(|e| bad(e.to_string()))?;
    Ok(std::sync::Arc::new(arrow))
}

/// The Delta table id and version of a [`content_id`]; `None` for a table never written.
pub fn parse_content_id(content: &str) -> Option<(&str, u64)> {
    let (id, version) = content.rsplit_once('@')?;
    Some((id, version.parse().ok()?))
}

/// A SQL string literal.
pub fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Checks that batches carry the table's columns with its types (names matched; nullability and
/// nested field names taken from the canonical schema).
fn conform(table: Table, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, LakeError> {
    let schema = table.schema();
    batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|batch| {
            if batch.schema().fields().len() != schema.fields().len() {
                return Err(LakeError::Schema {
                    table: table.name(),
                    message: format!(
                        "expected {} columns, got {}",
                        schema.fields().len(),
                        batch.schema().fields().len()
                    ),
                });
            }
            for (want, got) in schema.fields().iter().zip(batch.schema().fields().iter()) {
                if want.name() != got.name() || want.data_type() != got.data_type() {
                    return Err(LakeError::Schema {
                        table: table.name(),
                        message: format!(
                            "column `{}` ({}) given where `{}` ({}) was expected",
                            got.name(),
                            got.data_type(),
                            want.name(),
                            want.data_type()
                        ),
                    });
                }
            }
            RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| {
                LakeError::Schema {
                    table: table.name(),
                    message: e.to_string(),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;
    use deltalake::datafusion::prelude::SessionContext;

    /// One-table writes, through the commit log as every write.
    impl Lake {
        async fn upsert(
            &self,
            table: Table,
            batches: Vec<RecordBatch>,
        ) -> Result<WriteOutcome, LakeError> {
            let mut done = self
                .apply("test", vec![TableWrite::Upsert { table, batches }])
                .await?;
            Ok(done.remove(0))
        }

        async fn replace_cost_slices(
            &self,
            slices: &[CostSliceKey],
            batches: Vec<RecordBatch>,
        ) -> Result<WriteOutcome, LakeError> {
            let write = TableWrite::ReplaceCostSlices {
                slices: slices.to_vec(),
                batches,
            };
            let mut done = self.apply("test", vec![write]).await?;
            Ok(done.remove(0))
        }

        /// Every table created empty.
        async fn ensure_all(&self) -> Result<(), LakeError> {
            let writes = Table::ALL
                .into_iter()
                .map(|table| TableWrite::Upsert {
                    table,
                    batches: Vec::new(),
                })
                .collect();
            self.apply("test", writes).await.map(|_| ())
        }
    }

    /// Rows in a table's schema from NDJSON (arrow-json reads timestamps, decimals, lists, maps).
    fn rows(table: Table, ndjson: &str) -> RecordBatch {
        let mut reader = arrow::json::ReaderBuilder::new(table.schema())
            .build(std::io::Cursor::new(ndjson.as_bytes().to_vec()))
            .unwrap();
        reader.next().unwrap().unwrap()
    }

    async fn read_back(lake: &Lake, table: Table, order_by: &str) -> Vec<RecordBatch> {
        let handle = lake.open_existing(table).await.unwrap().unwrap();
        let batches = select(&handle, &format!("SELECT * FROM t ORDER BY {order_by}")).await;
        batches.iter().map(|b| canonical(table, b)).collect()
    }

    /// `sql` over `handle` registered as `t`.
    async fn select(handle: &DeltaTable, sql: &str) -> Vec<RecordBatch> {
        let ctx = SessionContext::new();
        handle.update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("t", handle.table_provider().await.unwrap())
            .unwrap();
        ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    /// DataFusion reads strings as `Utf8View`; cast back to the canonical types to compare.
    fn canonical(table: Table, batch: &RecordBatch) -> RecordBatch {
        let schema = table.schema();
        let columns = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| arrow::compute::cast(c, f.data_type()).unwrap())
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    const TWO_DEPLOYS: &str = r#"
{"deployment_id":"events:deployment:1","source":"events","ingested_at":"2025-01-01T00:00:00Z","service":"checkout","repo":"acme/checkout","environment":"production","ref":"main","commit_sha":"aaa","started_at":"2025-01-01T09:00:00Z","finished_at":"2025-01-01T09:10:00Z","status":"success","is_rollback":false,"url":null,"commits_listed":true}
{"deployment_id":"events:deployment:2","source":"events","ingested_at":"2025-01-01T00:00:00Z","service":"checkout","repo":"acme/checkout","environment":"production","ref":"main","commit_sha":"bbb","started_at":"2025-01-02T09:00:00Z","finished_at":"2025-01-02T09:10:00Z","status":"failure","is_rollback":false,"url":"https://ci/2","commits_listed":false}
"#;

    fn cost_rows(account: &str, month: &str, amounts: &[&str]) -> RecordBatch {
        let lines: Vec<String> = amounts
            .iter()
            .enumerate()
            .map(|(i, amount)| {
                format!(
                    r#"{{"cost_id":"focus:{account}:{month}:{i}","source":"focus","ingested_at":"2025-01-01T00:00:00Z","provider":"AWS","billing_account":"{account}","sub_account":null,"charge_period_start":"{month}-01T00:00:00Z","charge_period_end":"{month}-02T00:00:00Z","charge_category":"Usage","charge_class":null,"cloud_service":"Amazon EC2","service_category":null,"region":"us-east-1","resource_id":null,"resource_name":null,"tags":{{"service":"checkout"," org":"x"}},"billed_cost":"{amount}","effective_cost":"{amount}","list_cost":null,"currency":"USD","usage_quantity":1.5,"usage_unit":"Hours","invoice_month":"{month}","is_estimated":false}}"#
                )
            })
            .collect();
        rows(Table::Costs, &lines.join("\n"))
    }

    fn slice(account: &str, month: &str) -> CostSliceKey {
        CostSliceKey {
            source: "focus".into(),
            billing_account: account.into(),
            invoice_month: month.into(),
        }
    }

    #[tokio::test]
    async fn every_schema_round_trips_through_delta() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        lake.ensure_all().await.unwrap();
        for table in Table::ALL {
            let handle = lake.open_existing(table).await.unwrap().expect("created");
            let ctx = SessionContext::new();
            handle.update_datafusion_session(&ctx.state()).unwrap();
            let provider = handle.table_provider().await.unwrap();
            let read = provider.schema();
            let want = table.schema();
            assert_eq!(read.fields().len(), want.fields().len(), "{}", table.name());
            for (r, w) in read.fields().iter().zip(want.fields().iter()) {
                assert_eq!(r.name(), w.name());
                let same = r.data_type() == w.data_type()
                    || (r.data_type() == &arrow::datatypes::DataType::Utf8View
                        && w.data_type() == &arrow::datatypes::DataType::Utf8)
                    || arrow::compute::can_cast_types(r.data_type(), w.data_type())
                        && r.data_type().is_nested();
                assert!(
                    same,
                    "{}.{}: {} read, {} written",
                    table.name(),
                    r.name(),
                    r.data_type(),
                    w.data_type()
                );
            }
        }
        let written = rows(Table::Deployments, TWO_DEPLOYS);
        lake.upsert(Table::Deployments, vec![written.clone()])
            .await
            .unwrap();
        let back = read_back(&lake, Table::Deployments, "deployment_id").await;
        assert_eq!(back, vec![written]);

        let costs = cost_rows("111", "2024-09", &["0.00000080000", "-12.5"]);
        lake.replace_cost_slices(&[slice("111", "2024-09")], vec![costs.clone()])
            .await
            .unwrap();
        let back = read_back(&lake, Table::Costs, "cost_id").await;
        assert_eq!(
            arrow::compute::concat_batches(&costs.schema(), &back).unwrap(),
            costs
        );
    }

    #[tokio::test]
    async fn upserting_the_same_rows_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        let batch = rows(Table::Deployments, TWO_DEPLOYS);
        let first = lake
            .upsert(Table::Deployments, vec![batch.clone()])
            .await
            .unwrap();
        assert_eq!((first.inserted, first.updated), (2, 0));
        let second = lake
            .upsert(Table::Deployments, vec![batch.clone()])
            .await
            .unwrap();
        assert_eq!((second.inserted, second.updated), (0, 0));
        assert_eq!(
            read_back(&lake, Table::Deployments, "deployment_id").await,
            vec![batch]
        );

        // A restated row (the failure turned out cancelled) is updated in place, the other kept.
        let restated = TWO_DEPLOYS.replace("\"failure\"", "\"cancelled\"");
        let third = lake
            .upsert(
                Table::Deployments,
                vec![rows(Table::Deployments, &restated)],
            )
            .await
            .unwrap();
        assert_eq!((third.inserted, third.updated), (0, 1));
        let back = read_back(&lake, Table::Deployments, "deployment_id").await;
        assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    }

    /// Deployments `n` as ndjson, with `status`.
    fn deploys(ids: &[(u32, &str)]) -> String {
        ids.iter()
            .map(|(n, status)| {
                format!(
                    r#"{{"deployment_id":"events:deployment:{n}","source":"events","ingested_at":"2025-01-01T00:00:00Z","service":"checkout","repo":"acme/checkout","environment":"production","ref":"main","commit_sha":"c{n}","started_at":"2025-01-01T09:00:00Z","finished_at":"2025-01-01T09:10:00Z","status":"{status}","is_rollback":false,"url":null,"commits_listed":true}}"#
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn chunks_after_the_first_are_matched_by_the_key_index_as_one_write_would_be() {
        // The second and later chunks of a write go through the key index: new keys, identical
        // rows, restated rows and keys restated twice must land as one write of them all.
        let chunks = [
            deploys(&[(3, "success")]),
            deploys(&[(1, "success"), (2, "cancelled"), (5, "failure")]),
            deploys(&[(4, "success"), (3, "failure"), (2, "cancelled")]),
            deploys(&[(5, "success"), (6, "success")]),
        ];
        let mut outcomes = Vec::new();
        let mut contents = Vec::new();
        for chunked in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
            lake.upsert(
                Table::Deployments,
                vec![rows(Table::Deployments, TWO_DEPLOYS)],
            )
            .await
            .unwrap();
            let outcome = if chunked {
                let groups = chunks.iter().map(|c| {
                    Ok(vec![TableWrite::Upsert {
                        table: Table::Deployments,
                        batches: vec![rows(Table::Deployments, c)],
                    }])
                });
                lake.apply_stream("test", futures::stream::iter(groups.collect::<Vec<_>>()))
                    .await
                    .unwrap()
            } else {
                // One write of each key's last row.
                let last = deploys(&[
                    (1, "success"),
                    (2, "cancelled"),
                    (3, "failure"),
                    (4, "success"),
                    (5, "success"),
                    (6, "success"),
                ]);
                vec![
                    lake.upsert(Table::Deployments, vec![rows(Table::Deployments, &last)])
                        .await
                        .unwrap(),
                ]
            };
            outcomes.push((outcome[0].inserted, outcome[0].updated));
            let back = read_back(&lake, Table::Deployments, "deployment_id").await;
            assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 6);
            contents.push(back);
        }
        // Chunked: 3, 5, 4, 6 new; 1, 2, 3 and 5 restated (2 once: its second row is the same
        // as its first). One write: 3 to 6 new, 1 and 2 restated.
        assert_eq!(outcomes, vec![(4, 4), (4, 2)]);
        assert_eq!(contents[0], contents[1]);
    }

    /// `batch` without its last column: rows as a doracost from before that column wrote them.
    fn without_last_column(batch: &RecordBatch) -> RecordBatch {
        let kept: Vec<usize> = (0..batch.num_columns() - 1).collect();
        batch.project(&kept).unwrap()
    }

    #[tokio::test]
    async fn a_table_written_before_a_column_existed_gains_it_and_takes_upserts() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        // `deployments` as an older doracost wrote it: no `deployment_group` (version 0).
        let old = without_last_column(&rows(Table::Deployments, TWO_DEPLOYS));
        let handle = lake
            .new_handle(lake.table_url(Table::Deployments).unwrap())
            .unwrap();
        let handle = handle
            .write(vec![old])
            .with_save_mode(SaveMode::Append)
            .await
            .unwrap();
        assert_eq!(handle.version(), Some(0));
        assert_eq!(
            missing_columns(Table::Deployments, &handle)
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>(),
            ["deployment_group"]
        );

        // Deployment 2 restated and a row of a deployment across repos, in today's schema: the
        // column is added (version 1), then the rows merged (the restated row's delete, version 2,
        // and the append of both, version 3).
        let restated = TWO_DEPLOYS
            .lines()
            .nth(2)
            .unwrap()
            .replace(r#""commits_listed":false}"#, r#""commits_listed":true}"#);
        let grouped = r#"{"deployment_id":"devlake:deployment:7:acme/api","source":"devlake","ingested_at":"2025-01-01T00:00:00Z","service":null,"repo":"acme/api","environment":"production","ref":null,"commit_sha":"ccc","started_at":null,"finished_at":"2025-01-03T09:10:00Z","status":"success","is_rollback":false,"url":null,"commits_listed":false,"deployment_group":"devlake:deployment:7"}"#;
        let outcome = lake
            .upsert(
                Table::Deployments,
                vec![rows(Table::Deployments, &format!("{restated}\n{grouped}"))],
            )
            .await
            .unwrap();
        assert_eq!((outcome.inserted, outcome.updated), (1, 1));
        assert_eq!(
            (outcome.version_before, outcome.version),
            (Some(0), Some(3)),
            "the version found, and the merge after the added column"
        );
        let handle = lake
            .open_existing(Table::Deployments)
            .await
            .unwrap()
            .unwrap();
        assert!(missing_columns(Table::Deployments, &handle).is_empty());
        let back = select(
            &handle,
            "SELECT deployment_id, commits_listed, deployment_group FROM t ORDER BY deployment_id",
        )
        .await;
        let text = arrow::util::pretty::pretty_format_batches(&back)
            .unwrap()
            .to_string();
        let expected = [
            "+-------------------------------+----------------+----------------------+",
            "| deployment_id                 | commits_listed | deployment_group     |",
            "+-------------------------------+----------------+----------------------+",
            "| devlake:deployment:7:acme/api | false          | devlake:deployment:7 |",
            "| events:deployment:1           | true           |                      |",
            "| events:deployment:2           | true           |                      |",
            "+-------------------------------+----------------+----------------------+",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");

        // Rows written before the column read it as null, and upserting them again changes
        // nothing.
        let again = lake
            .upsert(
                Table::Deployments,
                vec![rows(Table::Deployments, &format!("{restated}\n{grouped}"))],
            )
            .await
            .unwrap();
        assert_eq!((again.inserted, again.updated), (0, 0));
    }

    #[tokio::test]
    async fn a_bill_slice_is_replaced_whole_and_other_slices_stay() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        lake.replace_cost_slices(
            &[slice("111", "2024-09")],
            vec![cost_rows("111", "2024-09", &["1", "2", "3"])],
        )
        .await
        .unwrap();
        lake.replace_cost_slices(
            &[slice("222", "2024-09")],
            vec![cost_rows("222", "2024-09", &["10"])],
        )
        .await
        .unwrap();
        // The restated bill for 111 has two rows, one of them identical to a row before: both count.
        lake.replace_cost_slices(
            &[slice("111", "2024-09")],
            vec![cost_rows("111", "2024-09", &["2", "2"])],
        )
        .await
        .unwrap();
        let back = read_back(&lake, Table::Costs, "cost_id").await;
        let all = arrow::compute::concat_batches(&Table::Costs.schema(), &back).unwrap();
        let ids = all.column_by_name("cost_id").unwrap();
        let ids = arrow::array::as_string_array(ids);
        let ids: Vec<&str> = ids.iter().flatten().collect();
        assert_eq!(
            ids,
            [
                "focus:111:2024-09:0",
                "focus:111:2024-09:1",
                "focus:222:2024-09:0"
            ]
        );
    }

    #[tokio::test]
    async fn a_write_that_fails_midway_leaves_every_table_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        let deploys = rows(Table::Deployments, TWO_DEPLOYS);
        lake.upsert(Table::Deployments, vec![deploys.clone()])
            .await
            .unwrap();
        let good_costs = cost_rows("111", "2024-09", &["1"]);
        lake.replace_cost_slices(&[slice("111", "2024-09")], vec![good_costs.clone()])
            .await
            .unwrap();
        let deploy_version = lake
            .open_existing(Table::Deployments)
            .await
            .unwrap()
            .unwrap()
            .version();
        let cost_version = lake
            .open_existing(Table::Costs)
            .await
            .unwrap()
            .unwrap()
            .version();

        // Deployments change first, then the bill fails: its rows lie outside the slice it replaces,
        // which Delta only finds once the data files are written.
        let restated = TWO_DEPLOYS.replace("\"failure\"", "\"cancelled\"");
        let result = lake
            .apply(
                "test",
                vec![
                    TableWrite::Upsert {
                        table: Table::Deployments,
                        batches: vec![rows(Table::Deployments, &restated)],
                    },
                    TableWrite::ReplaceCostSlices {
                        slices: vec![slice("111", "2024-09")],
                        batches: vec![cost_rows("999", "2024-10", &["5"])],
                    },
                ],
            )
            .await;
        assert!(result.is_err(), "the mismatched slice must fail");

        assert_eq!(
            read_back(&lake, Table::Deployments, "deployment_id").await,
            vec![deploys]
        );
        let back = read_back(&lake, Table::Costs, "cost_id").await;
        assert_eq!(back, vec![good_costs]);
        let cost_after = lake
            .open_existing(Table::Costs)
            .await
            .unwrap()
            .unwrap()
            .version();
        assert_eq!(
            cost_after, cost_version,
            "the failed bill committed nothing"
        );
        let deploy_after = lake
            .open_existing(Table::Deployments)
            .await
            .unwrap()
            .unwrap()
            .version();
        assert!(
            deploy_after > deploy_version,
            "deployments were restored by a new commit"
        );
    }

    #[tokio::test]
    async fn rows_in_the_wrong_schema_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        let wrong = rows(Table::Deployments, TWO_DEPLOYS);
        let err = lake
            .upsert(Table::Incidents, vec![wrong])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("incidents"), "{err}");
    }

    /// The rows of `table` a reader sees: at the version the commit log names.
    async fn visible(lake: &Lake, table: Table) -> usize {
        let state = lake.state().await.unwrap();
        let Some(handle) = lake.open_at(table, &state).await.unwrap() else {
            return 0;
        };
        let batches = select(&handle, "SELECT * FROM t").await;
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    const THIRD_DEPLOY: &str = r#"{"deployment_id":"events:deployment:3","source":"events","ingested_at":"2025-01-01T00:00:00Z","service":"checkout","repo":"acme/checkout","environment":"production","ref":"main","commit_sha":"ccc","started_at":"2025-01-03T09:00:00Z","finished_at":"2025-01-03T09:10:00Z","status":"success","is_rollback":false,"url":null,"commits_listed":true}"#;

    #[tokio::test]
    async fn a_commit_beyond_the_log_is_invisible_and_the_next_writer_rolls_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        lake.upsert(
            Table::Deployments,
            vec![rows(Table::Deployments, TWO_DEPLOYS)],
        )
        .await
        .unwrap();
        let logged = lake.state().await.unwrap();

        // What a writer killed before its log entry leaves: a table commit (and a whole new table)
        // the log does not name.
        let handle = lake
            .open_existing(Table::Deployments)
            .await
            .unwrap()
            .unwrap();
        handle
            .write(vec![rows(Table::Deployments, THIRD_DEPLOY)])
            .with_save_mode(SaveMode::Append)
            .await
            .unwrap();
        let orphan_table = lake
            .writable(Table::Incidents, None, "killed")
            .await
            .unwrap();
        assert!(orphan_table.version().is_some());
        assert_eq!(lake.state().await.unwrap(), logged, "the log did not move");
        assert_eq!(visible(&lake, Table::Deployments).await, 2);
        assert_eq!(
            lake.open_at(Table::Incidents, &logged)
                .await
                .unwrap()
                .map(|t| t.version()),
            None,
            "a table the log does not name reads as absent"
        );
        let all = lake.content(&[]).await.unwrap();
        assert_eq!(all["deployments"], logged.content(Table::Deployments));

        // The next write, of another table, first rolls the deployments back.
        lake.replace_cost_slices(
            &[slice("111", "2024-09")],
            vec![cost_rows("111", "2024-09", &["1"])],
        )
        .await
        .unwrap();
        assert_eq!(visible(&lake, Table::Deployments).await, 2);
        let latest = read_back(&lake, Table::Deployments, "deployment_id").await;
        assert_eq!(
            latest.iter().map(RecordBatch::num_rows).sum::<usize>(),
            2,
            "the orphan commit was rolled back, not only hidden"
        );
        assert_eq!(visible(&lake, Table::Costs).await, 1);
        let history = lake.history(None).await.unwrap();
        let operations: Vec<&str> = history
            .iter()
            .filter_map(|e| e.operation.as_deref())
            .collect();
        assert_eq!(
            operations,
            ["test", "roll back a killed write", "test", "adopt"],
            "newest first"
        );
        assert_eq!(history[0].version, 3);
    }

    #[tokio::test]
    async fn a_reader_of_a_missing_lake_gets_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("no-such-lake");
        let lake = Lake::new(location.to_str().unwrap(), HashMap::new()).unwrap();
        let err = lake.state().await.unwrap_err();
        assert!(
            err.to_string().starts_with("no doracost lake at file://")
                && err
                    .to_string()
                    .ends_with("run an ingest or `doracost demo` first"),
            "{err}"
        );
        assert!(lake.content(&[]).await.is_err());
        assert!(!location.exists(), "nothing was created");
    }

    #[tokio::test]
    async fn a_writer_that_is_not_alone_fails_cleanly_and_restores_its_tables() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
        lake.upsert(
            Table::Deployments,
            vec![rows(Table::Deployments, TWO_DEPLOYS)],
        )
        .await
        .unwrap();
        lake.replace_cost_slices(
            &[slice("111", "2024-09")],
            vec![cost_rows("111", "2024-09", &["1"])],
        )
        .await
        .unwrap();
        let before = lake.state().await.unwrap();
        // Another process commits to `costs` without the lock, after this write loaded it: a
        // stale handle stands for the writer that loaded first.
        let stale = lake.open_existing(Table::Costs).await.unwrap().unwrap();
        lake.open_existing(Table::Costs)
            .await
            .unwrap()
            .unwrap()
            .write(vec![cost_rows("222", "2024-09", &["9"])])
            .with_save_mode(SaveMode::Append)
            .await
            .unwrap();
        let err = replace_cost_slices(
            stale,
            &[slice("111", "2024-09")],
            conform(Table::Costs, vec![cost_rows("111", "2024-09", &["2"])]).unwrap(),
            "late",
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "the lake changed under this ingest (another writer committed to `costs`); rerun it"
            ),
            "{err}"
        );
        assert_eq!(lake.state().await.unwrap(), before);
        assert_eq!(visible(&lake, Table::Costs).await, 1);
    }

    /// A derived table's rows of `count` services (`s00`, `s01`, …) and a few with none.
    fn per_service(count: usize, rows_each: usize, tag: &str) -> RecordBatch {
        use arrow::array::{Int64Array, StringArray};
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false),
            arrow::datatypes::Field::new("service", arrow::datatypes::DataType::Utf8, true),
            arrow::datatypes::Field::new("note", arrow::datatypes::DataType::Utf8, false),
        ]));
        // Interleaved, so that only the write's sort can put a service's rows together.
        let mut ids = Vec::new();
        let mut services = Vec::new();
        let mut notes = Vec::new();
        for r in 0..rows_each {
            for s in 0..=count {
                ids.push((s * rows_each + r) as i64);
                services.push((s < count).then(|| format!("s{s:02}")));
                notes.push(format!(
                    "{tag} row {r} of service {s}, with some text to fill files"
                ));
            }
        }
        RecordBatch::try_new(
            schema,
            vec![
                std::sync::Arc::new(Int64Array::from(ids)),
                std::sync::Arc::new(StringArray::from(services)),
                std::sync::Arc::new(StringArray::from(notes)),
            ],
        )
        .unwrap()
    }

    async fn derived_rows(lake: &Lake, name: &str) -> Vec<String> {
        let found = lake.open_derived(name).await.unwrap().unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("t", found.table.table_provider().await.unwrap())
            .unwrap();
        let batches = ctx
            .sql("SELECT concat_ws('|', id, coalesce(service, '-'), note) AS r FROM t ORDER BY id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut out = Vec::new();
        for b in &batches {
            let column =
                arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let column = column
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            out.extend(column.iter().map(|v| v.unwrap().to_owned()));
        }
        out
    }

    #[tokio::test]
    async fn replacing_a_few_services_rows_rewrites_only_the_files_that_hold_them() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new())
            .unwrap()
            .with_derived_file_bytes(4 << 10);
        let all = per_service(20, 2000, "old");
        let schema = all.schema();
        let v0 = lake
            .write_derived(
                "t",
                std::sync::Arc::clone(&schema),
                vec![all.clone()],
                "stamp-0",
            )
            .await
            .unwrap();
        let files = |table: &DeltaTable| -> std::collections::BTreeSet<String> {
            table.get_file_uris().unwrap().collect()
        };
        let before = files(&lake.open_derived("t").await.unwrap().unwrap().table);
        assert!(before.len() >= 20, "{} files", before.len());

        // s07's rows replaced by new ones (fewer, with other notes).
        let new = per_service(20, 3, "new");
        let keep: Vec<bool> = (0..new.num_rows())
            .map(|i| {
                let services = new
                    .column(1)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                arrow::array::Array::is_valid(services, i) && services.value(i) == "s07"
            })
            .collect();
        let new = arrow::compute::filter_record_batch(&new, &keep.into()).unwrap();
        let version = lake
            .replace_derived_where(
                "t",
                std::sync::Arc::clone(&schema),
                vec![new],
                "service IN ('s07')",
                "stamp-1",
                v0,
            )
            .await
            .unwrap()
            .expect("nobody else wrote");
        assert_eq!(version, v0 + 1);
        let found = lake.open_derived("t").await.unwrap().unwrap();
        assert_eq!(found.stamp.as_deref(), Some("stamp-1"));
        let after = files(&found.table);
        let removed = before.difference(&after).count();
        assert!(
            (1..=3).contains(&removed),
            "{removed} of {} files rewritten",
            before.len()
        );

        let rows = derived_rows(&lake, "t").await;
        let s07 = |r: &&String| r.split('|').nth(1) == Some("s07");
        assert_eq!(rows.iter().filter(s07).count(), 3);
        assert!(rows.iter().filter(s07).all(|r| r.contains("new row")));
        let others: Vec<&String> = rows.iter().filter(|r| !s07(r)).collect();
        assert_eq!(
            others.len(),
            20 * 2000,
            "the other services' and the unnamed rows kept"
        );
        assert!(others.iter().all(|r| r.contains("old row")));
        // A writer that read an older version gets nothing written.
        let stale = lake
            .replace_derived_where("t", schema, vec![], "service IN ('s01')", "stamp-2", v0)
            .await
            .unwrap();
        assert_eq!(stale, None);
    }

    #[tokio::test]
    async fn a_derived_table_keeps_its_stamp_when_its_old_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new())
            .unwrap()
            .with_derived_retention(chrono::Duration::zero());
        let rows = per_service(3, 10, "old");
        let schema = rows.schema();
        let write = |stamp: &'static str| {
            let (lake, schema, rows) = (&lake, std::sync::Arc::clone(&schema), rows.clone());
            async move {
                lake.write_derived("t", schema, vec![rows], stamp)
                    .await
                    .unwrap()
            }
        };
        let v0 = write("stamp-0").await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The second write replaces every file of the first; its clean-up removes them, in two
        // commits after the write's.
        let v1 = write("stamp-1").await;
        let found = lake.open_derived("t").await.unwrap().unwrap();
        assert_eq!(v1, v0 + 3, "the write and the removal's start and end");
        assert_eq!(found.table.version(), Some(v1));
        assert_eq!(found.stamp.as_deref(), Some("stamp-1"));
        let on_disk = std::fs::read_dir(dir.path().join(DERIVED_DIR).join("t"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".parquet")
            })
            .count();
        assert_eq!(on_disk, found.table.get_file_uris().unwrap().count());
        // And an incremental replace made on top of it is accepted.
        let v2 = lake
            .replace_derived_where("t", schema, vec![], "service IN ('s01')", "stamp-2", v1)
            .await
            .unwrap()
            .expect("on top of the latest version");
        let rows = derived_rows(&lake, "t").await;

        // A restamp: a commit with the new stamp and the same rows, only on top of the latest.
        assert_eq!(
            lake.restamp_derived("t", "stamp-3", v1).await.unwrap(),
            None
        );
        let v3 = lake
            .restamp_derived("t", "stamp-3", v2)
            .await
            .unwrap()
            .expect("on top of the latest version");
        assert_eq!(v3, v2 + 1);
        let found = lake.open_derived("t").await.unwrap().unwrap();
        assert_eq!(found.stamp.as_deref(), Some("stamp-3"));
        assert_eq!(derived_rows(&lake, "t").await, rows);
        assert_eq!(
            lake.restamp_derived("absent", "stamp-3", 0).await.unwrap(),
            None
        );
    }
}
