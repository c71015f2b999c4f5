//! AWS Cost and Usage Reports into canonical `costs` rows (DESIGN §3): CUR 2.0 (AWS Data Exports;
//! Parquet or CSV, snake_case columns, `resource_tags` and `product` as map columns in Parquet and
//! JSON text in CSV) and legacy CUR CSV (`lineItem/UnblendedCost`, `resourceTags/user:service`).
//! CSV may be gzip-compressed (`.csv.gz`, as AWS delivers it).
//!
//! Mapping (FOCUS-aligned, as AWS's own FOCUS export maps CUR): provider `AWS`; billing account =
//! `bill_payer_account_id`; sub-account = `line_item_usage_account_id`; invoice month = month of
//! `bill_billing_period_start_date`; charge period = `line_item_usage_start_date` ..
//! `line_item_usage_end_date`; billed cost = `line_item_unblended_cost`; effective cost = the
//! amortised cost (see [`line_items`]); list cost = `pricing_public_on_demand_cost`; cloud service
//! = the product name, else `product_servicecode`, else `line_item_product_code`; tags with the
//! `user:` prefix dropped.
//!
//! Rows come back in the same (billing account, invoice month) slices as FOCUS, with source `cur`,
//! through the same builders (`focus::slices`): a re-ingested month replaces its slice whole.
//! Money is exact `Decimal128(38, 12)`; this module does not write the lake.

mod columns;
mod csv_file;
mod line_items;
mod parquet_file;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::IngestError;
use crate::focus::CostSlice;
use crate::focus::slices::{AppendError, BillSource, Slices};
use crate::progress::Progress;
use columns::ColumnMap;

/// The `source` of every row this module reads.
pub const SOURCE: &str = "cur";

/// The `provider` of every row: the name the FOCUS sample and AWS's FOCUS export use.
pub const PROVIDER: &str = "AWS";

/// CUR as a bill source.
const CUR_BILL: BillSource = BillSource {
    name: SOURCE,
    billing_period_column: columns::BILLING_PERIOD_START,
    tags_column: columns::RESOURCE_TAGS,
    tag_key: line_items::tag_key,
};

/// Reads CUR files (`.csv`, `.csv.gz` or `.parquet`) into slices sorted by (billing account,
/// invoice month); every row carries `ingested_at`.
pub fn read_cur_files(
    paths: &[PathBuf],
    ingested_at: DateTime<Utc>,
    progress: &mut dyn Progress,
) -> Result<Vec<CostSlice>, IngestError> {
    let mut slices = Slices::new(CUR_BILL, ingested_at.timestamp_micros());
    for path in paths {
        match Format::of(path)? {
            Format::Csv { gzip } => csv_file::read(path, gzip, &mut slices, progress)?,
            Format::Parquet => parquet_file::read(path, &mut slices, progress)?,
        }
    }
    slices.finish().map_err(|source| IngestError::Arrow {
        path: paths.last().cloned().unwrap_or_default(),
        source,
    })
}

/// Reads CUR files as [`read_cur_files`] does, in bounded memory: rows go to `sink` in chunks of
/// about `chunk_rows` rows as they are read (see `focus::stream_focus_files`).
pub fn stream_cur_files(
    paths: &[PathBuf],
    ingested_at: DateTime<Utc>,
    progress: &mut dyn Progress,
    chunk_rows: usize,
    sink: crate::focus::CostSink,
) -> Result<(), IngestError> {
    let mut slices = Slices::streaming(CUR_BILL, ingested_at.timestamp_micros(), chunk_rows, sink);
    for path in paths {
        match Format::of(path)? {
            Format::Csv { gzip } => csv_file::read(path, gzip, &mut slices, progress)?,
            Format::Parquet => parquet_file::read(path, &mut slices, progress)?,
        }
    }
    slices.finish_stream().map_err(|e| match e {
        AppendError::Sink(error) => error,
        AppendError::Arrow(source) => IngestError::Arrow {
            path: paths.last().cloned().unwrap_or_default(),
            source,
        },
        AppendError::Value { column, message } => IngestError::invalid(
            paths.last().cloned().unwrap_or_default(),
            None,
            Some(column),
            message,
        ),
    })
}

/// The file formats a CUR export comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv { gzip: bool },
    Parquet,
}

impl Format {
    fn of(path: &Path) -> Result<Format, IngestError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if name.ends_with(".csv") {
            Ok(Format::Csv { gzip: false })
        } else if name.ends_with(".csv.gz") {
            Ok(Format::Csv { gzip: true })
        } else if name.ends_with(".parquet") {
            Ok(Format::Parquet)
        } else {
            Err(IngestError::invalid(
                path,
                None,
                None,
                "not a CUR file doracost reads: expected a name ending in .csv, .csv.gz or .parquet",
            ))
        }
    }
}

/// Where in a file a row sits: a CSV line, or a Parquet row group and row within it.
#[derive(Debug, Clone, Copy)]
enum RowAt {
    Line(Option<u64>),
    Parquet { row_group: usize, row: usize },
}

/// Places a row's error in its file, naming the column as the file writes it.
fn located(path: &Path, columns: &ColumnMap, at: RowAt, error: AppendError) -> IngestError {
    match error {
        AppendError::Value { column, message } => {
            let column = columns.file_name(column);
            match at {
                RowAt::Line(line) => IngestError::invalid(path, line, Some(&column), message),
                RowAt::Parquet { row_group, row } => IngestError::invalid(
                    path,
                    None,
                    Some(&column),
                    format!("row group {row_group}, row {row}: {message}"),
                ),
            }
        }
        AppendError::Arrow(source) => IngestError::Arrow {
            path: path.to_owned(),
            source,
        },
        AppendError::Sink(error) => error,
    }
}
