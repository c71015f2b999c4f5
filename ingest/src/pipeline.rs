//! From files to the lake: read a source, then commit what it read in one unit (`Lake::apply`), so
//! a failed ingest leaves the lake as it was.

use std::path::{Path, PathBuf};

use chrono::Utc;
use model::{CostSliceKey, Lake, LakeError, Table, TableWrite, Touched, WriteOutcome};

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
    /// The event keys written (empty for bills).
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

/// `doracost ingest events`: deployments, changes and incidents, upserted by key.
pub async fn ingest_events(
    lake: &Lake,
    paths: &[PathBuf],
    progress: &mut dyn Progress,
) -> Result<IngestSummary, PipelineError> {
    let files = expand_paths(paths, &[".ndjson", ".jsonl", ".json", ".csv"])?;
    let batches = crate::events::read_event_files(&files, Utc::now(), progress)?;
    let touched = batches.touched();
    let outcomes = lake.apply("ingest events", event_writes(batches)).await?;
    Ok(IngestSummary {
        source: "events",
        files,
        outcomes,
        touched,
    })
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

/// `doracost ingest focus`: FOCUS bills, each (account, month) slice replaced whole.
pub async fn ingest_focus(
    lake: &Lake,
    paths: &[PathBuf],
    progress: &mut dyn Progress,
) -> Result<IngestSummary, PipelineError> {
    ingest_focus_with(
        lake,
        paths,
        &crate::focus::FocusDefaults::default(),
        progress,
    )
    .await
}

/// [`ingest_focus`], with `defaults` for the columns a file lacks (`--default-…` flags).
pub async fn ingest_focus_with(
    lake: &Lake,
    paths: &[PathBuf],
    defaults: &crate::focus::FocusDefaults,
    progress: &mut dyn Progress,
) -> Result<IngestSummary, PipelineError> {
    let files = expand_paths(paths, &[".csv", ".parquet"])?;
    let slices = crate::focus::read_focus_files_with(&files, defaults, Utc::now(), progress)?;
    replace_cost_slices(lake, "focus", files, slices).await
}

/// `doracost ingest cur`: AWS Cost and Usage Reports (CUR 2.0 or legacy), each (payer account,
/// month) slice replaced whole.
pub async fn ingest_cur(
    lake: &Lake,
    paths: &[PathBuf],
    progress: &mut dyn Progress,
) -> Result<IngestSummary, PipelineError> {
    let files = expand_paths(paths, &[".csv", ".csv.gz", ".parquet"])?;
    let slices = crate::cur::read_cur_files(&files, Utc::now(), progress)?;
    replace_cost_slices(lake, "cur", files, slices).await
}

/// Commits bill slices in one unit: each replaces the lake's slice of the same key.
async fn replace_cost_slices(
    lake: &Lake,
    source: &'static str,
    files: Vec<PathBuf>,
    slices: Vec<crate::focus::CostSlice>,
) -> Result<IngestSummary, PipelineError> {
    let mut keys = Vec::with_capacity(slices.len());
    let mut batches = Vec::new();
    for slice in slices {
        keys.push(CostSliceKey {
            source: slice.source,
            billing_account: slice.billing_account,
            invoice_month: slice.invoice_month,
        });
        batches.extend(slice.batches);
    }
    let outcomes = lake
        .apply(
            &format!("ingest {source}"),
            vec![TableWrite::ReplaceCostSlices {
                slices: keys,
                batches,
            }],
        )
        .await?;
    Ok(IngestSummary {
        source,
        files,
        outcomes,
        touched: Touched::default(),
    })
}
