//! Opening bill files, shared by the FOCUS and CUR readers: the same errors for the same faults.

use std::fs::File;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;

use crate::IngestError;

/// Opens `path` for reading; an I/O failure names it.
pub(crate) fn open(path: &Path) -> Result<File, IngestError> {
    File::open(path).map_err(|source| IngestError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The error for a file that is not readable Parquet (at open or while reading batches).
pub(crate) fn not_parquet(path: &Path, e: ParquetError) -> IngestError {
    IngestError::invalid(
        path,
        None,
        None,
        format!("not a readable Parquet file: {e}"),
    )
}

/// A Parquet reader builder for `path`, and the file's size in bytes (for progress).
pub(crate) fn open_parquet(
    path: &Path,
) -> Result<(ParquetRecordBatchReaderBuilder<File>, u64), IngestError> {
    let file = open(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| not_parquet(path, e))?;
    Ok((builder, size))
}

/// A CSV header's column names: a UTF-8 byte order mark dropped from the first, and a name that
/// is not UTF-8 read as "" (it matches no known column).
pub(crate) fn csv_header_names(header: &csv::ByteRecord) -> impl Iterator<Item = &str> {
    header.iter().enumerate().map(|(i, name)| {
        let name = if i == 0 {
            name.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(name)
        } else {
            name
        };
        std::str::from_utf8(name).unwrap_or("")
    })
}
