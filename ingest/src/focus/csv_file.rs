//! FOCUS bills as CSV, read record by record into reused byte buffers: the header is mapped once,
//! each cell is parsed in place (no per-row strings), and values go straight into Arrow builders.
//!
//! Quirks of real exports handled here: `NULL` written literally, empty cells, a UTF-8 byte-order
//! mark before the header, and timestamps as `YYYY-MM-DD HH:MM:SS` (see `values`).

use std::path::Path;

use csv::{ByteRecord, ErrorKind, ReaderBuilder};
use model::schema::MONEY_SCALE;

use super::columns::{self as focus, ColumnMap};
use super::slices::{AppendError, CostRow, Slices, TagsInput};
use super::{FocusDefaults, located};
use crate::error::IngestError;
use crate::progress::{CountingReader, Progress};
use crate::values::{parse_decimal, parse_timestamp_micros};

/// Appends every record of the CSV file at `path` to `slices`.
pub(super) fn read(
    path: &Path,
    defaults: &FocusDefaults,
    slices: &mut Slices,
    progress: &mut dyn Progress,
) -> Result<(), IngestError> {
    let file = crate::files::open(path)?;
    let mut reader = ReaderBuilder::new()
        .buffer_capacity(1 << 20)
        .from_reader(CountingReader::new(file, progress));
    let header = reader.byte_headers().map_err(|e| csv_error(path, e))?;
    let names = crate::files::csv_header_names(header);
    let columns = ColumnMap::from_names(path, names, defaults)?;
    let mut record = ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        append_record(&record, &columns, defaults, slices)
            .map_err(|e| located(path, record.position().map(|p| p.line()), None, e))?;
    }
    Ok(())
}

/// Maps one record to a canonical row and appends it.
fn append_record(
    record: &ByteRecord,
    columns: &ColumnMap,
    defaults: &FocusDefaults,
    slices: &mut Slices,
) -> Result<(), AppendError> {
    let provider = match optional(record, columns.provider, focus::PROVIDER_NAME)? {
        Some(name) => Some(name),
        None => optional(
            record,
            columns.service_provider,
            focus::SERVICE_PROVIDER_NAME,
        )?,
    };
    let row = CostRow {
        provider: provider
            .or(defaults.provider.as_deref())
            .ok_or_else(|| missing(columns.provider_column()))?,
        billing_account: optional(record, columns.billing_account, focus::BILLING_ACCOUNT_ID)?
            .or(defaults.billing_account.as_deref())
            .ok_or_else(|| missing(focus::BILLING_ACCOUNT_ID))?,
        billing_period_start: timestamp(
            record,
            columns.billing_period_start,
            focus::BILLING_PERIOD_START,
        )?,
        sub_account: optional(record, columns.sub_account, focus::SUB_ACCOUNT_ID)?,
        charge_period_start: timestamp(
            record,
            columns.charge_period_start,
            focus::CHARGE_PERIOD_START,
        )?,
        charge_period_end: timestamp(record, columns.charge_period_end, focus::CHARGE_PERIOD_END)?,
        charge_category: required(record, columns.charge_category, focus::CHARGE_CATEGORY)?,
        charge_class: optional(record, columns.charge_class, focus::CHARGE_CLASS)?,
        cloud_service: optional(record, columns.cloud_service, focus::SERVICE_NAME)?,
        service_category: optional(record, columns.service_category, focus::SERVICE_CATEGORY)?,
        region: optional(record, columns.region, focus::REGION_ID)?,
        resource_id: optional(record, columns.resource_id, focus::RESOURCE_ID)?,
        resource_name: optional(record, columns.resource_name, focus::RESOURCE_NAME)?,
        tags: match optional(record, columns.tags, focus::TAGS)? {
            Some(json) => TagsInput::Json(json),
            None => TagsInput::Null,
        },
        billed_cost: money(record, Some(columns.billed_cost), focus::BILLED_COST)?
            .ok_or_else(|| missing(focus::BILLED_COST))?,
        effective_cost: money(record, Some(columns.effective_cost), focus::EFFECTIVE_COST)?
            .ok_or_else(|| missing(focus::EFFECTIVE_COST))?,
        list_cost: money(record, columns.list_cost, focus::LIST_COST)?,
        currency: optional(record, columns.currency, focus::BILLING_CURRENCY)?
            .or(defaults.currency.as_deref())
            .ok_or_else(|| missing(focus::BILLING_CURRENCY))?,
        usage_quantity: quantity(record, columns.usage_quantity, focus::CONSUMED_QUANTITY)?,
        usage_unit: optional(record, columns.usage_unit, focus::CONSUMED_UNIT)?,
    };
    slices.append(&row)
}

/// The text of a cell; `None` for an empty cell, a literal `NULL`, or a column the file lacks.
pub(crate) fn optional<'r>(
    record: &'r ByteRecord,
    index: Option<usize>,
    column: &'static str,
) -> Result<Option<&'r str>, AppendError> {
    let Some(raw) = index.and_then(|i| record.get(i)) else {
        return Ok(None);
    };
    if raw.is_empty() || raw == b"NULL" {
        return Ok(None);
    }
    std::str::from_utf8(raw)
        .map(Some)
        .map_err(|e| AppendError::value(column, format!("the value is not valid UTF-8 ({e})")))
}

/// The text of a cell that must have one.
pub(crate) fn required<'r>(
    record: &'r ByteRecord,
    index: usize,
    column: &'static str,
) -> Result<&'r str, AppendError> {
    optional(record, Some(index), column)?.ok_or_else(|| missing(column))
}

/// The error for an empty required cell.
pub(crate) fn missing(column: &'static str) -> AppendError {
    AppendError::value(column, "a value is required, found an empty cell or NULL")
}

/// A required timestamp cell, as microseconds UTC.
pub(crate) fn timestamp(
    record: &ByteRecord,
    index: usize,
    column: &'static str,
) -> Result<i64, AppendError> {
    let text = required(record, index, column)?;
    parse_timestamp_micros(text).ok_or_else(|| {
        AppendError::value(
            column,
            format!("expected a timestamp like 2024-09-01T00:00:00Z, found {text:?}"),
        )
    })
}

/// An optional money cell, exactly, in units of 10^-12.
pub(crate) fn money(
    record: &ByteRecord,
    index: Option<usize>,
    column: &'static str,
) -> Result<Option<i128>, AppendError> {
    optional(record, index, column)?
        .map(|text| {
            parse_decimal(text, MONEY_SCALE)
                .map_err(|e| AppendError::value(column, format!("{e}, found {text:?}")))
        })
        .transpose()
}

/// An optional quantity cell.
pub(crate) fn quantity(
    record: &ByteRecord,
    index: Option<usize>,
    column: &'static str,
) -> Result<Option<f64>, AppendError> {
    optional(record, index, column)?
        .map(|text| match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(AppendError::value(
                column,
                format!("expected a number, found {text:?}"),
            )),
        })
        .transpose()
}

/// A CSV-level failure (I/O, a record with the wrong number of fields), placed at its line.
pub(crate) fn csv_error(path: &Path, error: csv::Error) -> IngestError {
    let line = error.position().map(|p| p.line());
    let message = error.to_string();
    match error.into_kind() {
        ErrorKind::Io(source) => IngestError::Io {
            path: path.to_owned(),
            source,
        },
        ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => IngestError::invalid(
            path,
            line,
            None,
            format!("expected {expected_len} fields as in the header, found {len}"),
        ),
        _ => IngestError::invalid(path, line, None, message),
    }
}
