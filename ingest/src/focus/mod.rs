//! FOCUS bills (FinOps Open Cost and Usage Specification 1.0–1.2, and 1.3's `ServiceProviderName`),
//! as CSV or Parquet files, into canonical `costs` rows (DESIGN §3).
//!
//! Rows come back grouped in slices of (source, billing account, invoice month), because a bill is
//! restated: re-ingesting a month replaces that slice whole, and `cost_id` is the slice plus the
//! row's 0-based ordinal in it, so two identical line items both count. The invoice month is the
//! month of `BillingPeriodStart`, not of the charge (a late charge lands on the next invoice).
//!
//! Values are kept as the bill writes them: tag keys are not trimmed or case-folded (allocation
//! normalises them), money is exact `Decimal128(38, 12)`, never a float. This module does not write
//! the lake; the caller commits each slice.

mod columns;
pub(crate) mod csv_file;
pub(crate) mod parquet_columns;
mod parquet_file;
pub(crate) mod slices;
pub(crate) mod tags;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use crate::error::IngestError;
use crate::progress::Progress;
use slices::{AppendError, BillSource, Slices};
pub use slices::{CostChunk, CostSink};

/// The `source` of every row this module reads.
pub const SOURCE: &str = "focus";

/// FOCUS as a bill source: tag keys are kept exactly as written (allocation normalises them).
const FOCUS_BILL: BillSource = BillSource {
    name: SOURCE,
    billing_period_column: columns::BILLING_PERIOD_START,
    tags_column: columns::TAGS,
    tag_key: |key| key,
};

/// One (source, billing account, invoice month) slice of a bill: a re-ingest replaces the slice whole.
#[derive(Debug, Clone)]
pub struct CostSlice {
    /// The bill's source: [`SOURCE`] here, `cur` for CUR files.
    pub source: String,
    /// `BillingAccountId` of every row in the slice.
    pub billing_account: String,
    /// `YYYY-MM` of `BillingPeriodStart` of every row in the slice.
    pub invoice_month: String,
    /// The rows, in the schema of `model::schema::costs()`, in file order (files in the order given).
    pub batches: Vec<RecordBatch>,
}

impl CostSlice {
    /// The number of rows in the slice.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Values for columns a FOCUS file may lack: the FOCUS specification's example ledgers have no
/// `BillingAccountId`, `BillingCurrency` or `ProviderName`. Each fills the column where it is
/// absent or its cell is empty; a value the file states always wins. No default is assumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FocusDefaults {
    /// For `BillingAccountId`.
    pub billing_account: Option<String>,
    /// For `BillingCurrency`.
    pub currency: Option<String>,
    /// For `ProviderName` (and `ServiceProviderName`).
    pub provider: Option<String>,
}

/// Reads FOCUS bills (`.csv` or `.parquet`, by extension) into slices sorted by (billing account,
/// invoice month); every row carries `ingested_at`.
pub fn read_focus_files(
    paths: &[PathBuf],
    ingested_at: DateTime<Utc>,
    progress: &mut dyn Progress,
) -> Result<Vec<CostSlice>, IngestError> {
    read_focus_files_with(paths, &FocusDefaults::default(), ingested_at, progress)
}

/// [`read_focus_files`], with `defaults` for the columns a file lacks.
pub fn read_focus_files_with(
    paths: &[PathBuf],
    defaults: &FocusDefaults,
    ingested_at: DateTime<Utc>,
    progress: &mut dyn Progress,
) -> Result<Vec<CostSlice>, IngestError> {
    let mut slices = Slices::new(FOCUS_BILL, ingested_at.timestamp_micros());
    for path in paths {
        match Format::of(path)? {
            Format::Csv => csv_file::read(path, defaults, &mut slices, progress)?,
            Format::Parquet => parquet_file::read(path, defaults, &mut slices, progress)?,
        }
    }
    slices.finish().map_err(|source| IngestError::Arrow {
        path: paths.last().cloned().unwrap_or_default(),
        source,
    })
}

/// Reads FOCUS bills as [`read_focus_files_with`] does, in bounded memory: rows go to `sink` in
/// chunks of about `chunk_rows` rows as they are read, each chunk naming the slices that begin in
/// it, so that a writer replaces a slice before the first rows of it land.
pub fn stream_focus_files(
    paths: &[PathBuf],
    defaults: &FocusDefaults,
    ingested_at: DateTime<Utc>,
    progress: &mut dyn Progress,
    chunk_rows: usize,
    sink: slices::CostSink,
) -> Result<(), IngestError> {
    let mut slices =
        Slices::streaming(FOCUS_BILL, ingested_at.timestamp_micros(), chunk_rows, sink);
    for path in paths {
        match Format::of(path)? {
            Format::Csv => csv_file::read(path, defaults, &mut slices, progress)?,
            Format::Parquet => parquet_file::read(path, defaults, &mut slices, progress)?,
        }
    }
    let last = paths.last().cloned().unwrap_or_default();
    slices
        .finish_stream()
        .map_err(|e| located(&last, None, None, e))
}

/// The file formats a FOCUS export comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

impl Format {
    fn of(path: &Path) -> Result<Format, IngestError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("parquet") => Ok(Format::Parquet),
            _ => Err(IngestError::invalid(
                path,
                None,
                None,
                "not a FOCUS file doracost reads: expected a name ending in .csv or .parquet",
            )),
        }
    }
}

/// Places a row's error in its file: `line` for CSV, or a row index in the message for Parquet.
fn located(
    path: &Path,
    line: Option<u64>,
    row_index: Option<usize>,
    error: AppendError,
) -> IngestError {
    match error {
        AppendError::Value { column, message } => {
            let message = match row_index {
                Some(row) => format!("row index {row}: {message}"),
                None => message,
            };
            IngestError::invalid(path, line, Some(column), message)
        }
        AppendError::Arrow(source) => IngestError::Arrow {
            path: path.to_owned(),
            source,
        },
        AppendError::Sink(error) => error,
    }
}
