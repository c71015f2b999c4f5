//! Reading one cell of a query's rows for people: as a number (decimals exactly scaled), as text,
//! and formatted for a table (timestamps in the reporting time zone, money to the cent).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::run::Rows;

/// The value of a numeric cell (integers, floats, decimals); `None` when NULL or not numeric.
pub fn number(array: &dyn Array, row: usize) -> Option<f64> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    use arrow::datatypes::*;
    Some(match array.data_type() {
        DataType::Int8 => f64::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => f64::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => f64::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row) as f64,
        DataType::UInt8 => f64::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => f64::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => f64::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row) as f64,
        DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
        DataType::Decimal128(_, scale) => {
            let raw = array.as_primitive::<Decimal128Type>().value(row);
            // Exact to the cent and beyond: the text form, then one rounding to a double.
            Decimal128Type::format_decimal(raw, 38, *scale)
                .parse()
                .ok()?
        }
        _ => return None,
    })
}

/// The text of a string cell; `None` when NULL or not text.
pub fn text(array: &dyn Array, row: usize) -> Option<String> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row).to_owned()),
        DataType::Utf8View => Some(array.as_string_view().value(row).to_owned()),
        _ => None,
    }
}

/// The column called `name` of `batch`.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a ArrayRef> {
    batch.schema().index_of(name).ok().map(|i| batch.column(i))
}

/// The first row's cell of column `name`, as a number.
pub fn first_number(rows: &Rows, name: &str) -> Option<f64> {
    let batch = rows.batches.iter().find(|b| b.num_rows() > 0)?;
    number(column(batch, name)?.as_ref(), 0)
}

/// The first row's cell of column `name`, as text.
pub fn first_text(rows: &Rows, name: &str) -> Option<String> {
    let batch = rows.batches.iter().find(|b| b.num_rows() > 0)?;
    text(column(batch, name)?.as_ref(), 0)
}

/// Whether a column holds numbers (right-aligned in tables).
pub fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// Every cell of `rows` as people read it, row by row: timestamps in `time_zone` to the minute,
/// decimals with more than two places rounded to two (money to the cent), floats to two places,
/// NULL as empty.
pub fn formatted(rows: &Rows, time_zone: &str, limit: usize) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    for batch in &rows.batches {
        let columns = batch
            .columns()
            .iter()
            .map(|c| for_people(c, time_zone))
            .collect::<Result<Vec<_>, _>>()?;
        let options = FormatOptions::default()
            .with_null("")
            .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M"))
            .with_timestamp_format(Some("%Y-%m-%d %H:%M"));
        let formatters = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            if out.len() >= limit {
                return Ok(out);
            }
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// A column cast to what people read: timestamps into the reporting zone, long decimals to two
/// places, floats rounded to two places.
fn for_people(column: &ArrayRef, time_zone: &str) -> Result<ArrayRef, String> {
    let cast = |to: &DataType| arrow::compute::cast(column, to).map_err(|e| e.to_string());
    match column.data_type() {
        DataType::Timestamp(unit, _) => {
            cast(&DataType::Timestamp(*unit, Some(Arc::from(time_zone))))
        }
        DataType::Decimal128(precision, scale) if *scale > 2 => {
            cast(&DataType::Decimal128((*precision).min(38), 2))
        }
        DataType::Float32 | DataType::Float64 => {
            let values = cast(&DataType::Float64)?;
            let rounded: arrow::array::Float64Array = values
                .as_primitive::<arrow::datatypes::Float64Type>()
                .unary(|v| (v * 100.0).round() / 100.0);
            Ok(Arc::new(rounded))
        }
        _ => Ok(Arc::clone(column)),
    }
}
