//! From files to the lake: read a source, then commit what it read in one unit (`Lake::apply`), so
//! a failed ingest leaves the lake as it was.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use chrono::Utc;
use model::{Lake, LakeError, Table, TableWrite, Touched, WriteOutcome};

use crate::IngestError;
use crate::progress::Progress;

/// An ingest failure: reading the input, or committing it.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The input is unreadable or malformed; nothing was written.
    #[error(transparent)]
    Input(#[from] IngestError),
    /// The lake refused the write; tables were restored to their previous versions.
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// What one ingest did.
#[derive(Debug, Clone)]
pub struct IngestSummary {
    /// The source name (`events`, `focus`).
    pub source: &'static str,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// What each table received.
    pub outcomes: Vec<WriteOutcome>,
    /// The event keys written: webhook bodies only (empty for files, after which everything
    /// derived is recomputed, and for bills).
    pub touched: Touched,
}

/// Expands folders into the files inside them (sorted, recursively) whose extension is one of
/// `extensions`; plain files are kept as given, whatever their extension.
pub fn expand_paths(paths: &[PathBuf], extensions: &[&str]) -> Result<Vec<PathBuf>, IngestError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_dir(path, extensions, &mut found)?;
            found.sort();
            out.extend(found);
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(IngestError::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> Result<(), IngestError> {
    let entries = std::fs::read_dir(dir).map_err(|source| IngestError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| IngestError::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        if path.is_dir() {
            collect_dir(&path, extensions, out)?;
        } else {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if extensions.iter().any(|ext| name.ends_with(ext)) {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// Rows of `ingest events` read before they are committed: chunks of about this many rows (a
/// deployment, a change, a link, an incident each count one) are merged into the lake one after
/// another, so memory stays bounded whatever the input's size (issue 12). On the large sample
/// organisation (21.26M rows), chunks of 500,000 peaked at 0.97 GB and of 250,000 at 0.91 GB, in
/// about the same time (47 s and 43 s without the refresh).
pub const EVENT_CHUNK_ROWS: usize = 250_000;

/// The same for bills: rows of `ingest focus`/`ingest cur` per committed chunk. On the large
/// sample organisation's bill (19.77M lines), chunks of 524,288 peaked at 0.85 GB on a new lake and
/// 1.14 GB re-ingested over itself (every slice replaced), chunks of 262,144 at 0.72 and 0.92 GB,
/// in 32.6 and 38.2 s with the refresh.
pub const COST_CHUNK_ROWS: usize = 1 << 18;

/// `doracost ingest events`: deployments, changes and incidents, upserted by key. The files are
/// read on a blocking thread in chunks of [`EVENT_CHUNK_ROWS`] while the previous chunk is
/// merged; the whole read is still one unit of the lake (see `Lake::apply_stream`). The summary's
/// `touched` is empty: after a file ingest everything derived is recomputed.
pub async fn ingest_events(
    lake: &Lake,
    paths: &[PathBuf],
    progress: Box<dyn Progress>,
) -> Result<IngestSummary, PipelineError> {
    ingest_events_in_chunks(lake, paths, progress, EVENT_CHUNK_ROWS).await
}

/// [`ingest_events`] with chunks of `chunk_rows` rows (the CLI's hidden `--chunk-rows`, with
/// which tests make a small input take many chunks).
pub async fn ingest_events_in_chunks(
    lake: &Lake,
    paths: &[PathBuf],
    progress: Box<dyn Progress>,
    chunk_rows: usize,
) -> Result<IngestSummary, PipelineError> {
    let files = expand_paths(paths, &[".ndjson", ".jsonl", ".json", ".csv"])?;
    let read = files.clone();
    let at = Utc::now();
    let outcomes = stream_into_lake(lake, "ingest events", move |mut send| {
        let mut progress = progress;
        crate::events::stream_event_files(
            &read,
            at,
            progress.as_mut(),
            chunk_rows,
            Box::new(move |batches| send(event_writes(batches))),
        )
    })
    .await?;
    Ok(IngestSummary {
        source: "events",
        files,
        outcomes,
        touched: Touched::default(),
    })
}

/// Where a reader hands a group of writes for the lake.
type GroupSink = Box<dyn FnMut(Vec<TableWrite>) -> Result<(), IngestError> + Send>;

/// Runs `read` on a blocking thread, committing each group of writes it hands on while it reads
/// the next one (at most one group waits between them), all as one unit of the lake. When the
/// read fails, everything committed is rolled back and its error returned; when the lake fails,
/// the read stops at its next group.
async fn stream_into_lake<F>(
    lake: &Lake,
    operation: &str,
    read: F,
) -> Result<Vec<WriteOutcome>, PipelineError>
where
    F: FnOnce(GroupSink) -> Result<(), IngestError> + Send + 'static,
{
    use std::sync::{Arc, Mutex};
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<TableWrite>>(1);
    let send: GroupSink = Box::new(move |group| {
        sender
            .blocking_send(group)
            .map_err(|_| IngestError::Stopped)
    });
    let reader = tokio::task::spawn_blocking(move || read(send));
    let failed: Arc<Mutex<Option<IngestError>>> = Arc::default();
    let state = (receiver, Some(reader), Arc::clone(&failed));
    let groups = futures::stream::unfold(state, |(mut receiver, reader, failed)| async move {
        if let Some(group) = receiver.recv().await {
            return Some((Ok(group), (receiver, reader, failed)));
        }
        // The reader is done: it read everything, or it failed.
        let message = match reader?.await {
            Ok(Ok(())) => return None,
            Ok(Err(error)) => {
                let message = error.to_string();
                if let Ok(mut slot) = failed.lock() {
                    *slot = Some(error);
                }
                message
            }
            Err(join) => format!("the reader stopped: {join}"),
        };
        Some((Err(LakeError::Input { message }), (receiver, None, failed)))
    });
    match lake.apply_stream(operation, Box::pin(groups)).await {
        Ok(outcomes) => Ok(outcomes),
        Err(error) => {
            let input = failed.lock().ok().and_then(|mut slot| slot.take());
            Err(input.map_or_else(|| error.into(), PipelineError::Input))
        }
    }
}

/// `POST /api/v1/events`: webhook bodies (each checked with `events::read_event_json` first),
/// committed together in one unit.
pub async fn ingest_event_bodies(
    lake: &Lake,
    bodies: &[&[u8]],
    origin: &str,
) -> Result<IngestSummary, PipelineError> {
    let batches = crate::events::read_event_bodies(bodies, origin, Utc::now())?;
    let touched = batches.touched();
    let outcomes = lake.apply(origin, event_writes(batches)).await?;
    Ok(IngestSummary {
        source: "events",
        files: Vec::new(),
        outcomes,
        touched,
    })
}

/// The upserts of `batches`' tables that hold rows, and how many rows they hold (a source that
/// may have nothing new writes nothing).
pub fn nonempty_event_writes(batches: crate::events::EventBatches) -> (Vec<TableWrite>, usize) {
    let mut rows = 0;
    let writes = event_writes(batches)
        .into_iter()
        .filter(|write| {
            let n = match write {
                TableWrite::Upsert { batches, .. }
                | TableWrite::ReplaceCostSlices { batches, .. } => {
                    batches.iter().map(RecordBatch::num_rows).sum::<usize>()
                }
            };
            rows += n;
            n > 0
        })
        .collect();
    (writes, rows)
}

/// The four event tables' upserts.
fn event_writes(batches: crate::events::EventBatches) -> Vec<TableWrite> {
    vec![
        TableWrite::Upsert {
            table: Table::Deployments,
            batches: vec![batches.deployments],
        },
        TableWrite::Upsert {
            table: Table::Changes,
            batches: vec![batches.changes],
        },
        TableWrite::Upsert {
            table: Table::DeploymentChanges,
            batches: vec![batches.deployment_changes],
        },
        TableWrite::Upsert {
            table: Table::Incidents,
            batches: vec![batches.incidents],
        },
    ]
}

/// `doracost ingest focus`: FOCUS bills, each (account, month) slice replaced whole, read and
/// committed in chunks of [`COST_CHUNK_ROWS`] as one unit (see [`ingest_events`]).
pub async fn ingest_focus(
    lake: &Lake,
    paths: &[PathBuf],
    progress: Box<dyn Progress>,
) -> Result<IngestSummary, PipelineError> {
    ingest_focus_with(
        lake,
        paths,
        &crate::focus::FocusDefaults::default(),
        progress,
        COST_CHUNK_ROWS,
    )
    .await
}

/// [`ingest_focus`], with `defaults` for the columns a file lacks (`--default-…` flags), in
/// chunks of `chunk_rows` rows.
pub async fn ingest_focus_with(
    lake: &Lake,
    paths: &[PathBuf],
    defaults: &crate::focus::FocusDefaults,
    progress: Box<dyn Progress>,
    chunk_rows: usize,
) -> Result<IngestSummary, PipelineError> {
    let files = expand_paths(paths, &[".csv", ".parquet"])?;
    let read = files.clone();
    let defaults = defaults.clone();
    let at = Utc::now();
    let outcomes = stream_into_lake(lake, "ingest focus", move |send| {
        let mut progress = progress;
        crate::focus::stream_focus_files(
            &read,
            &defaults,
            at,
            progress.as_mut(),
            chunk_rows,
            cost_sink(send),
        )
    })
    .await?;
    Ok(cost_summary("focus", files, outcomes))
}

/// `doracost ingest cur`: AWS Cost and Usage Reports (CUR 2.0 or legacy), each (payer account,
/// month) slice replaced whole, read and committed in chunks of `chunk_rows` rows as
/// [`ingest_focus`] does.
pub async fn ingest_cur(
    lake: &Lake,
    paths: &[PathBuf],
    progress: Box<dyn Progress>,
    chunk_rows: usize,
) -> Result<IngestSummary, PipelineError> {
    let files = expand_paths(paths, &[".csv", ".csv.gz", ".parquet"])?;
    let read = files.clone();
    let at = Utc::now();
    let outcomes = stream_into_lake(lake, "ingest cur", move |send| {
        let mut progress = progress;
        crate::cur::stream_cur_files(&read, at, progress.as_mut(), chunk_rows, cost_sink(send))
    })
    .await?;
    Ok(cost_summary("cur", files, outcomes))
}

/// A bill chunk as the lake's write: its new slices replaced, its rows appended.
fn cost_sink(mut send: GroupSink) -> crate::focus::CostSink {
    Box::new(move |chunk: crate::focus::CostChunk| {
        send(vec![TableWrite::ReplaceCostSlices {
            slices: chunk.slices,
            batches: chunk.batches,
        }])
    })
}

fn cost_summary(
    source: &'static str,
    files: Vec<PathBuf>,
    outcomes: Vec<WriteOutcome>,
) -> IngestSummary {
    IngestSummary {
        source,
        files,
        outcomes,
        touched: Touched::default(),
    }
}
