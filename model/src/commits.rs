//! The lake's commit log: what makes an ingest that writes several tables one unit (DESIGN §3).
//!
//! Each canonical table is a Delta table, and a Delta commit lands whole; but an ingest commits
//! table after table, and a process killed between two commits would leave, say, deployments
//! without their changes. So the lake keeps a log of its own, the Delta table `_commits`: each
//! of its commits (one per ingest, no data, its commit metadata only) names the version of every
//! canonical table the ingest left, and is written last.
//!
//! - **Readers** open every table at the versions of the log's latest entry ([`Lake::state`]):
//!   a table commit beyond it (an ingest under way, or killed) is invisible to them.
//! - **Writers** take the lake's write lock ([`WriteLock`]), and then first roll back any table
//!   whose latest version is beyond the log (left by a killed ingest: under the lock nobody else is
//!   writing), write their tables, and commit the log entry on top of the log version they
//!   started from, with no retry. The table commits are made with no retry either, each on the
//!   version the writer found: a writer that is not alone after all (a lease taken over on S3, a
//!   process that writes the tables without doracost) fails with [`LakeError::Changed`] rather
//!   than mix its rows with another's, and rolls its own commits back.
//! - A lake written before the log existed is adopted: the first writer logs its tables' latest
//!   versions before writing anything.
//!
//! The lock is an advisory `flock` on `<root>/_lock` for a local lake (released by the kernel
//! when the process dies, kill -9 included), and a lease object `<root>/_lock` on an object store,
//! created only if absent (S3's conditional put), renewed while held, and taken over once it is
//! [`LEASE_SECONDS`] past its last renewal (a killed writer's lease).

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::logstore::object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;
use url::Url;

use crate::lake::{Lake, LakeError, content_id, parse_content_id};
use crate::schema::Table;

/// The folder of the lake's commit log (a Delta table of commit metadata only).
pub const COMMITS_DIR: &str = "_commits";

/// The commit-metadata key of a log entry's table versions: table name → content id
/// (`id@version`, or `absent`).
const TABLES_KEY: &str = "doracost.tables";
/// The commit-metadata key naming the ingest a commit belongs to (log entries and table commits).
pub(crate) const INGEST_KEY: &str = "doracost.ingest";
/// The commit-metadata key of what the ingest was (`ingest events`, `webhook`, `restore`, …).
const OPERATION_KEY: &str = "doracost.operation";

/// How long an object-store lease lasts after its last renewal.
pub const LEASE_SECONDS: i64 = 30;

/// The lake as its commit log names it: the content id of every canonical table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeState {
    /// Table name → content id (`id@version`, or `absent` for a table not yet written).
    pub tables: BTreeMap<String, String>,
    /// The log's Delta version (`None` for a lake written before the log existed).
    pub log_version: Option<u64>,
}

impl LakeState {
    /// The content id of `table` (`absent` when the log does not name it).
    pub fn content(&self, table: Table) -> &str {
        self.tables
            .get(table.name())
            .map_or("absent", String::as_str)
    }
}

/// One entry of the log, for `doracost lake history`.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The log's version of this entry.
    pub version: u64,
    /// When it was committed.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The ingest's id.
    pub ingest: Option<String>,
    /// What it was.
    pub operation: Option<String>,
    /// Table name → content id after it.
    pub tables: BTreeMap<String, String>,
}

/// A fresh id for one write of the lake: time, process and a counter.
pub(crate) fn new_ingest_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{}-{}-{n}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id()
    )
}

/// Commit properties naming the ingest: no retry (see the module docs).
pub(crate) fn ingest_commit(ingest: &str) -> CommitProperties {
    CommitProperties::default()
        .with_metadata([(
            INGEST_KEY.to_owned(),
            serde_json::Value::String(ingest.to_owned()),
        )])
        .with_max_retries(0)
}

fn log_error(source: deltalake::DeltaTableError) -> LakeError {
    LakeError::Log { source }
}

impl Lake {
    fn log_url(&self) -> Result<Url, LakeError> {
        self.folder_url(COMMITS_DIR)
    }

    /// The commit log at its latest version, or `None` when the lake has none yet.
    pub(crate) async fn open_log(&self) -> Result<Option<DeltaTable>, LakeError> {
        self.load(self.log_url()?).await.map_err(log_error)
    }

    /// What the lake's readers see: the canonical tables at the versions of the log's latest
    /// entry (the latest versions for a lake written before the log existed). An error naming
    /// the location when there is no lake there at all.
    pub async fn state(&self) -> Result<LakeState, LakeError> {
        if let Some(log) = self.open_log().await? {
            return latest_entry(&log).await;
        }
        let latest = crate::lake::contents_of(&self.open_all().await?);
        if latest.values().all(|c| c == "absent") {
            return Err(LakeError::NoLake {
                location: self.root().to_string(),
            });
        }
        Ok(LakeState {
            tables: latest,
            log_version: None,
        })
    }

    /// `table` as `state` names it: `None` when absent. A table whose Delta id is not the
    /// logged one was deleted and created again outside doracost; it is read at its latest
    /// version (with a warning).
    pub async fn open_at(
        &self,
        table: Table,
        state: &LakeState,
    ) -> Result<Option<DeltaTable>, LakeError> {
        let Some((id, version)) = parse_content_id(state.content(table)) else {
            return Ok(None);
        };
        let Some(mut handle) = self.open_existing(table).await? else {
            tracing::warn!(
                table = table.name(),
                "the commit log names a table that is not in the lake; reading it as empty"
            );
            return Ok(None);
        };
        if handle.version() == Some(version) {
            return Ok(Some(handle));
        }
        if content_id(&handle).split_once('@').map(|(i, _)| i) != Some(id) {
            tracing::warn!(
                table = table.name(),
                "the table was replaced outside doracost; reading its latest version"
            );
            return Ok(Some(handle));
        }
        handle
            .load_version(version)
            .await
            .map_err(|source| LakeError::Delta {
                table: table.name(),
                source,
            })?;
        Ok(Some(handle))
    }

    /// Every row of `table` as the lake's readers see it in `state` (none when it is absent): for
    /// the small bookkeeping tables read under the lake's lock (`alerts`, `ingest_state`).
    pub async fn read_table(
        &self,
        state: &LakeState,
        table: Table,
    ) -> Result<Vec<arrow::record_batch::RecordBatch>, LakeError> {
        self.read_rows(state, table, &[], None).await
    }

    /// The rows of `table` in `state` whose text column `column` is one of `values`, only the
    /// `columns` asked for (all when empty): an ingest's look at some repos' rows without
    /// reading the whole table.
    pub async fn read_table_where(
        &self,
        state: &LakeState,
        table: Table,
        columns: &[&str],
        column: &str,
        values: &[String],
    ) -> Result<Vec<arrow::record_batch::RecordBatch>, LakeError> {
        self.read_rows(state, table, columns, Some((column, values)))
            .await
    }

    async fn read_rows(
        &self,
        state: &LakeState,
        table: Table,
        columns: &[&str],
        only: Option<(&str, &[String])>,
    ) -> Result<Vec<arrow::record_batch::RecordBatch>, LakeError> {
        use deltalake::datafusion::prelude::{col, lit};
        let Some(handle) = self.open_at(table, state).await? else {
            return Ok(Vec::new());
        };
        let failed = |message: String| LakeError::Schema {
            table: table.name(),
            message,
        };
        let provider = handle
            .table_provider()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut frame = deltalake::datafusion::prelude::SessionContext::new()
            .read_table(provider)
            .map_err(|e| failed(e.to_string()))?;
        if let Some((column, values)) = only {
            frame = frame
                .filter(
                    col(format!("\"{column}\"")).in_list(values.iter().map(lit).collect(), false),
                )
                .map_err(|e| failed(e.to_string()))?;
        }
        if !columns.is_empty() {
            frame = frame
                .select_columns(columns)
                .map_err(|e| failed(e.to_string()))?;
        }
        frame.collect().await.map_err(|e| failed(e.to_string()))
    }

    /// The log's entries, newest first (at most `limit`).
    pub async fn history(&self, limit: Option<usize>) -> Result<Vec<LogEntry>, LakeError> {
        let Some(log) = self.open_log().await? else {
            return Ok(Vec::new());
        };
        let latest = log.version().unwrap_or_default();
        let infos: Vec<deltalake::kernel::CommitInfo> =
            log.history(limit).try_collect().await.map_err(log_error)?;
        // Newest first, one per version down from the latest.
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(i, info)| LogEntry {
                version: latest.saturating_sub(i as u64),
                at: info
                    .timestamp
                    .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis),
                ingest: info
                    .info
                    .get(INGEST_KEY)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                operation: info
                    .info
                    .get(OPERATION_KEY)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                tables: entry_tables(&info),
            })
            .collect())
    }

    /// Writes a log entry naming `tables`, on top of log version `on` (`None`: the log is
    /// created), with no retry: [`LakeError::Changed`] when another entry was committed since.
    pub(crate) async fn commit_log(
        &self,
        on: Option<&DeltaTable>,
        tables: &BTreeMap<String, String>,
        ingest: &str,
        operation: &str,
    ) -> Result<u64, LakeError> {
        let metadata = [
            (
                TABLES_KEY.to_owned(),
                serde_json::to_value(tables).unwrap_or_default(),
            ),
            (
                INGEST_KEY.to_owned(),
                serde_json::Value::String(ingest.to_owned()),
            ),
            (
                OPERATION_KEY.to_owned(),
                serde_json::Value::String(operation.to_owned()),
            ),
        ];
        let properties = CommitProperties::default()
            .with_metadata(metadata)
            .with_max_retries(0);
        let Some(log) = on else {
            let handle = self.new_handle(self.log_url()?)?;
            let created = handle
                .create()
                .with_table_name(COMMITS_DIR)
                .with_columns([deltalake::kernel::StructField::new(
                    "ingest",
                    deltalake::kernel::DataType::STRING,
                    true,
                )])
                .with_save_mode(deltalake::protocol::SaveMode::ErrorIfExists)
                .with_commit_properties(properties)
                .await
                .map_err(|e| crate::lake::on_conflict(COMMITS_DIR, e, log_error))?;
            return Ok(created.version().unwrap_or_default());
        };
        let snapshot = log.snapshot().map_err(log_error)?;
        let done = CommitBuilder::from(properties)
            .build(
                Some(snapshot),
                log.log_store(),
                DeltaOperation::SetTableProperties {
                    properties: std::collections::HashMap::new(),
                },
            )
            .await
            .map_err(|e| crate::lake::on_conflict(COMMITS_DIR, e, log_error))?;
        Ok(done.version())
    }

    /// Takes the lake's write lock, waiting for another writer to finish (see the module docs).
    pub(crate) async fn lock(&self) -> Result<WriteLock, LakeError> {
        let bad = |message: String| LakeError::Lock {
            location: self.root().to_string(),
            message,
        };
        if self.root().scheme() == "file" {
            let root = self
                .root()
                .to_file_path()
                .map_err(|()| bad("not a local path".into()))?;
            std::fs::create_dir_all(&root)
                .map_err(|e| bad(format!("cannot create the folder: {e}")))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(root.join("_lock"))
                .map_err(|e| bad(format!("cannot open `_lock`: {e}")))?;
            let mut told = false;
            loop {
                match file.try_lock() {
                    Ok(()) => return Ok(WriteLock::Local(file)),
                    Err(std::fs::TryLockError::WouldBlock) => {
                        if !told {
                            tracing::info!("another process is writing this lake; waiting for it");
                            told = true;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(bad(format!("cannot lock `_lock`: {e}")));
                    }
                }
            }
        }
        let store = self
            .new_handle(self.root().clone())?
            .log_store()
            .object_store(None);
        Lease::acquire(store).await.map_err(bad)
    }
}

/// Every table's content id in a log commit's metadata.
fn entry_tables(info: &deltalake::kernel::CommitInfo) -> BTreeMap<String, String> {
    info.info
        .get(TABLES_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The state the entry of the log's loaded version names. Read from that version's own commit
/// file: `DeltaTable::history` lists every commit from a start on, whatever version the table
/// was loaded at, so on an older version (a restore's target) it would give the latest entry.
pub(crate) async fn latest_entry(log: &DeltaTable) -> Result<LakeState, LakeError> {
    let Some(version) = log.version() else {
        return Ok(LakeState {
            tables: BTreeMap::new(),
            log_version: None,
        });
    };
    let bytes = log
        .log_store()
        .read_commit_entry(version)
        .await
        .map_err(log_error)?;
    let info = bytes.as_deref().and_then(commit_info_of);
    Ok(LakeState {
        tables: info.as_ref().map(entry_tables).unwrap_or_default(),
        log_version: Some(version),
    })
}

/// A restore that found files of its target deleted says so in words (delta-rs: "Find missing
/// file … when restore"); other errors stay as they are.
fn vacuumed(table: Table, version: u64, error: LakeError) -> LakeError {
    if error.to_string().contains("missing file") {
        LakeError::Schema {
            table: table.name(),
            message: format!(
                "log entry {version} reads data files `doracost lake vacuum` has deleted (older than \
                 [lake] retention_hours): it can no longer be restored; nothing was changed"
            ),
        }
    } else {
        error
    }
}

/// The `commitInfo` action of a commit file (one JSON action per line).
fn commit_info_of(bytes: &[u8]) -> Option<deltalake::kernel::CommitInfo> {
    bytes.split(|&b| b == b'\n').find_map(|line| {
        let action: serde_json::Value = serde_json::from_slice(line).ok()?;
        serde_json::from_value(action.get("commitInfo")?.clone()).ok()
    })
}

/// The lake's write lock, held until [`WriteLock::release`] (or the process ends).
pub(crate) enum WriteLock {
    /// An advisory lock on a local file, released when the file is closed.
    Local(std::fs::File),
    /// An object-store lease.
    Remote(Lease),
}

impl WriteLock {
    /// Lets the next writer in.
    pub(crate) async fn release(self) {
        match self {
            WriteLock::Local(file) => drop(file),
            WriteLock::Remote(lease) => lease.release().await,
        }
    }
}

/// A lease object `_lock` at the root of an object-store lake: `{"owner", "expires_at"}`.
pub(crate) struct Lease {
    store: Arc<dyn ObjectStore>,
    owner: String,
    renewer: tokio::task::JoinHandle<()>,
}

const LEASE_PATH: &str = "_lock";

fn lease_body(owner: &str) -> PutPayload {
    let expires = chrono::Utc::now() + chrono::Duration::seconds(LEASE_SECONDS);
    PutPayload::from(
        serde_json::json!({"owner": owner, "expires_at": expires.to_rfc3339()}).to_string(),
    )
}

impl Lease {
    async fn acquire(store: Arc<dyn ObjectStore>) -> Result<WriteLock, String> {
        let path = deltalake::Path::from(LEASE_PATH);
        let owner = new_ingest_id();
        let mut told = false;
        loop {
            let created = store
                .put_opts(&path, lease_body(&owner), PutOptions::from(PutMode::Create))
                .await;
            match created {
                Ok(_) => break,
                Err(deltalake::ObjectStoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(format!("cannot create the lease `_lock`: {e}")),
            }
            // Held: wait, unless its holder stopped renewing it (killed).
            let expired = match store.get(&path).await {
                Ok(found) => {
                    let bytes = found
                        .bytes()
                        .await
                        .map_err(|e| format!("cannot read the lease `_lock`: {e}"))?;
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v.get("expires_at")?.as_str().map(str::to_owned))
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                        .is_none_or(|t| t < chrono::Utc::now())
                }
                // Released in between: try again at once.
                Err(deltalake::ObjectStoreError::NotFound { .. }) => continue,
                Err(e) => return Err(format!("cannot read the lease `_lock`: {e}")),
            };
            if expired {
                tracing::warn!(
                    "taking over the lake's write lease from a writer that stopped renewing it"
                );
                match store.delete(&path).await {
                    Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(format!("cannot remove the expired lease `_lock`: {e}")),
                }
            }
            if !told {
                tracing::info!("another process is writing this lake; waiting for it");
                told = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let renewer = {
            let store = Arc::clone(&store);
            let owner = owner.clone();
            tokio::spawn(async move {
                let every = std::time::Duration::from_secs((LEASE_SECONDS / 3).max(1) as u64);
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = store
                        .put(&deltalake::Path::from(LEASE_PATH), lease_body(&owner))
                        .await
                    {
                        tracing::warn!(error = %e, "renewing the lake's write lease failed");
                    }
                }
            })
        };
        Ok(WriteLock::Remote(Lease {
            store,
            owner,
            renewer,
        }))
    }

    async fn release(self) {
        self.renewer.abort();
        let path = deltalake::Path::from(LEASE_PATH);
        // Only our own lease: one taken over meanwhile belongs to its new holder.
        let ours = match self.store.get(&path).await {
            Ok(found) => found.bytes().await.ok().is_some_and(|b| {
                serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| v.get("owner")?.as_str().map(str::to_owned))
                    .is_some_and(|o| o == self.owner)
            }),
            Err(_) => false,
        };
        if ours && let Err(e) = self.store.delete(&path).await {
            tracing::warn!(error = %e, "releasing the lake's write lease failed; it expires by itself");
        }
    }
}

/// What `doracost lake vacuum` removed from one table.
#[derive(Debug, Clone)]
pub struct Vacuumed {
    /// The table.
    pub table: &'static str,
    /// Data files deleted.
    pub files: usize,
}

impl Lake {
    /// Deletes the data files the canonical tables stopped using more than the lake's retention
    /// ago ([`Lake::with_retention`]): files of a version still within it stay, so readers that
    /// opened it and a `restore` to it keep working. Under the write lock, after rolling back
    /// anything a killed writer left (whose rollback needs the files it replaced).
    pub async fn vacuum(&self) -> Result<Vec<Vacuumed>, LakeError> {
        let lock = self.lock().await?;
        let result = self.vacuum_locked().await;
        lock.release().await;
        result
    }

    async fn vacuum_locked(&self) -> Result<Vec<Vacuumed>, LakeError> {
        let ingest = new_ingest_id();
        let log = self.open_log().await?;
        let logged = match &log {
            Some(log) => Some(latest_entry(log).await?),
            None => None,
        };
        let mut handles = self.recover(logged.as_ref(), &ingest).await?;
        let mut done = Vec::new();
        for table in Table::ALL {
            let Some(Some(handle)) = handles.get(&table).cloned() else {
                continue;
            };
            let (after, metrics) = handle
                .vacuum()
                .with_retention_period(self.retention())
                .with_enforce_retention_duration(false)
                .with_commit_properties(ingest_commit(&ingest))
                .await
                .map_err(|source| LakeError::Delta {
                    table: table.name(),
                    source,
                })?;
            done.push(Vacuumed {
                table: table.name(),
                files: metrics.files_deleted.len(),
            });
            handles.insert(table, Some(after));
        }
        // The vacuum's own commits (same rows) are logged, so that no writer takes them for a
        // killed write's.
        let now = crate::lake::contents_of(&handles);
        if logged.as_ref().is_none_or(|l| l.tables != now) {
            self.commit_log(log.as_ref(), &now, &ingest, "vacuum")
                .await?;
        }
        Ok(done)
    }

    /// Brings every canonical table back to what log entry `version` named (`doracost lake
    /// restore --to-version`, see [`Lake::history`]), as one new log entry: Delta's time travel,
    /// so only within the retention. The derived tables go stale (they are recomputed by the
    /// next refresh). Returns the state now.
    pub async fn restore_to(&self, version: u64) -> Result<LakeState, LakeError> {
        let lock = self.lock().await?;
        let result = self.restore_locked(version).await;
        lock.release().await;
        result
    }

    async fn restore_locked(&self, version: u64) -> Result<LakeState, LakeError> {
        let Some(log) = self.open_log().await? else {
            return Err(LakeError::NoLake {
                location: self.root().to_string(),
            });
        };
        let mut at = log.clone();
        at.load_version(version).await.map_err(log_error)?;
        let target = latest_entry(&at).await?;
        let logged = latest_entry(&log).await?;
        let ingest = new_ingest_id();
        let mut handles = self.recover(Some(&logged), &ingest).await?;
        for table in Table::ALL {
            let current = handles.get(&table).cloned().flatten();
            let now = current
                .as_ref()
                .map_or_else(|| "absent".to_owned(), content_id);
            let want = target.content(table);
            if now == want {
                continue;
            }
            let restored = match (parse_content_id(want), current) {
                (None, None) => None,
                (None, Some(handle)) => Some(self.roll_back(table, handle, None, &ingest).await?),
                (Some((id, v)), Some(handle))
                    if parse_content_id(&now).is_some_and(|(i, _)| i == id) =>
                {
                    let restored = self.roll_back(table, handle, Some(v), &ingest).await;
                    Some(restored.map_err(|e| vacuumed(table, version, e))?)
                }
                _ => {
                    return Err(LakeError::Schema {
                        table: table.name(),
                        message: format!(
                            "the table was deleted and created again since log entry {version}; it cannot be restored to it"
                        ),
                    });
                }
            };
            handles.insert(table, restored);
        }
        let tables = crate::lake::contents_of(&handles);
        let log_version = self
            .commit_log(
                Some(&log),
                &tables,
                &ingest,
                &format!("restore to {version}"),
            )
            .await?;
        Ok(LakeState {
            tables,
            log_version: Some(log_version),
        })
    }
}
