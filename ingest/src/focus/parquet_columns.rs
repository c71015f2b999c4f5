//! Parquet columns converted to the canonical types, one read batch at a time.
//!
//! Exporters disagree on physical types, so each conversion accepts what carries the value
//! exactly: money from decimals of any precision and scale (rescaled to 12 decimals, never
//! rounded), integers, floats whose shortest decimal text fits, or text; timestamps of any unit and
//! time zone (the values are UTC instants; naive ones are read as UTC), dates or text; strings,
//! large strings, views or dictionaries; tags as a JSON string or a map column.

use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, MapArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Decimal128Type, Decimal256Type, Float64Type, Int64Type, TimeUnit,
};
use model::schema::{MONEY_PRECISION, MONEY_SCALE};

use super::slices::{AppendError, TagsInput};
use crate::values::{DecimalError, parse_decimal, parse_timestamp_micros};

/// A failure at a row of the batch (or of the whole column, `None`).
pub(crate) type BatchError = (Option<usize>, AppendError);

pub(crate) fn column_error(column: &'static str, message: impl Into<String>) -> BatchError {
    (None, AppendError::value(column, message))
}

/// A string cell; `None` for null, empty or a literal `NULL`, as in CSV exports.
pub(crate) fn cell(array: &StringArray, row: usize) -> Option<&str> {
    if array.is_null(row) {
        return None;
    }
    let text = array.value(row);
    if text.is_empty() || text == "NULL" {
        None
    } else {
        Some(text)
    }
}

/// Any string-like column (or one Arrow can print as text) as UTF-8 strings.
pub(crate) fn strings(array: &ArrayRef, column: &'static str) -> Result<StringArray, BatchError> {
    let converted = if array.data_type() == &DataType::Utf8 {
        array.clone()
    } else {
        cast(array, &DataType::Utf8).map_err(|e| {
            column_error(
                column,
                format!("expected text, found type {}: {e}", array.data_type()),
            )
        })?
    };
    converted
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| column_error(column, "expected text"))
}

/// Money as `Decimal128(38, 12)` values, converted exactly or not at all.
pub(crate) fn money(
    array: &ArrayRef,
    column: &'static str,
) -> Result<Vec<Option<i128>>, BatchError> {
    let at = |row: usize, e: DecimalError| (Some(row), AppendError::value(column, e.to_string()));
    match array.data_type() {
        DataType::Decimal128(_, scale) => {
            let scale = *scale;
            let values = array.as_primitive::<Decimal128Type>();
            (0..values.len())
                .map(|row| {
                    values
                        .is_valid(row)
                        .then(|| rescale(values.value(row), scale).map_err(|e| at(row, e)))
                        .transpose()
                })
                .collect()
        }
        DataType::Decimal256(_, scale) => {
            let scale = *scale;
            let values = array.as_primitive::<Decimal256Type>();
            (0..values.len())
                .map(|row| {
                    values
                        .is_valid(row)
                        .then(|| {
                            let wide = values.value(row).to_i128().ok_or(DecimalError::TooLarge);
                            wide.and_then(|v| rescale(v, scale)).map_err(|e| at(row, e))
                        })
                        .transpose()
                })
                .collect()
        }
        DataType::Decimal32(_, scale) | DataType::Decimal64(_, scale) => {
            // Widening to 38 digits keeps every value exactly.
            money(
                &cast_exactly(array, DataType::Decimal128(MONEY_PRECISION, *scale), column)?,
                column,
            )
        }
        t if t.is_integer() => money(
            &cast_exactly(array, DataType::Decimal128(MONEY_PRECISION, 0), column)?,
            column,
        ),
        DataType::Float32 | DataType::Float64 => {
            let values = cast_exactly(array, DataType::Float64, column)?;
            let values = values.as_primitive::<Float64Type>();
            let single = array.data_type() == &DataType::Float32;
            let mut text = String::new();
            (0..values.len())
                .map(|row| {
                    if values.is_null(row) {
                        return Ok(None);
                    }
                    // The shortest text that reads back as the same float: exact when it fits in
                    // 12 decimals, an error (never a rounding) when it does not.
                    text.clear();
                    let value = values.value(row);
                    let _ = if single {
                        write!(text, "{}", value as f32)
                    } else {
                        write!(text, "{value}")
                    };
                    parse_decimal(&text, MONEY_SCALE).map(Some).map_err(|e| {
                        (
                            Some(row),
                            AppendError::value(column, format!("{e}, found {text}")),
                        )
                    })
                })
                .collect()
        }
        DataType::Null => Ok(vec![None; array.len()]),
        _ => {
            let text = strings(array, column)?;
            (0..text.len())
                .map(|row| {
                    cell(&text, row)
                        .map(|t| {
                            parse_decimal(t, MONEY_SCALE).map_err(|e| {
                                (
                                    Some(row),
                                    AppendError::value(column, format!("{e}, found {t:?}")),
                                )
                            })
                        })
                        .transpose()
                })
                .collect()
        }
    }
}

/// Rescales a decimal of `scale` to the lake's 12 decimals, refusing to drop non-zero digits.
fn rescale(value: i128, scale: i8) -> Result<i128, DecimalError> {
    let target = i32::from(MONEY_SCALE);
    let scale = i32::from(scale);
    let scaled = if scale <= target {
        let factor = 10i128
            .checked_pow((target - scale) as u32)
            .ok_or(DecimalError::TooLarge)?;
        value.checked_mul(factor).ok_or(DecimalError::TooLarge)?
    } else {
        let divisor = 10i128
            .checked_pow((scale - target) as u32)
            .ok_or(DecimalError::TooManyDecimals)?;
        if value % divisor != 0 {
            return Err(DecimalError::TooManyDecimals);
        }
        value / divisor
    };
    if scaled.unsigned_abs() >= 10u128.pow(u32::from(MONEY_PRECISION)) {
        return Err(DecimalError::TooLarge);
    }
    Ok(scaled)
}

fn cast_exactly(
    array: &ArrayRef,
    to: DataType,
    column: &'static str,
) -> Result<ArrayRef, BatchError> {
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(array, &to, &options).map_err(|e| {
        column_error(
            column,
            format!("cannot read type {} as {to}: {e}", array.data_type()),
        )
    })
}

/// Timestamps as microseconds UTC.
pub(crate) fn timestamps(
    array: &ArrayRef,
    column: &'static str,
) -> Result<Vec<Option<i64>>, BatchError> {
    let overflow = |row| {
        (
            Some(row),
            AppendError::value(column, "timestamp out of range"),
        )
    };
    let scaled = |multiplier: i64, divisor: i64| -> Result<Vec<Option<i64>>, BatchError> {
        let raw = cast_exactly(array, DataType::Int64, column)?;
        let raw = raw.as_primitive::<Int64Type>();
        (0..raw.len())
            .map(|row| {
                if raw.is_null(row) {
                    return Ok(None);
                }
                let v = raw
                    .value(row)
                    .checked_mul(multiplier)
                    .ok_or_else(|| overflow(row))?;
                Ok(Some(v.div_euclid(divisor)))
            })
            .collect()
    };
    match array.data_type() {
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => scaled(1_000_000, 1),
            TimeUnit::Millisecond => scaled(1_000, 1),
            TimeUnit::Microsecond => scaled(1, 1),
            TimeUnit::Nanosecond => scaled(1, 1_000),
        },
        DataType::Date32 => {
            let days = cast_exactly(array, DataType::Int32, column)?;
            let days = days.as_primitive::<arrow::datatypes::Int32Type>();
            Ok(days
                .iter()
                .map(|d| d.map(|d| i64::from(d) * 86_400_000_000))
                .collect())
        }
        DataType::Date64 => scaled(1_000, 1),
        DataType::Null => Ok(vec![None; array.len()]),
        _ => {
            let text = strings(array, column)?;
            (0..text.len())
                .map(|row| {
                    cell(&text, row)
                        .map(|t| {
                            parse_timestamp_micros(t).ok_or_else(|| {
                                let message = format!(
                                    "expected a timestamp like 2024-09-01T00:00:00Z, found {t:?}"
                                );
                                (Some(row), AppendError::value(column, message))
                            })
                        })
                        .transpose()
                })
                .collect()
        }
    }
}

/// Quantities as floats, from any number type or text.
pub(crate) fn floats(array: &ArrayRef, column: &'static str) -> Result<Float64Array, BatchError> {
    let data_type = array.data_type();
    if data_type.is_numeric() || data_type == &DataType::Null {
        let values = cast_exactly(array, DataType::Float64, column)?;
        return Ok(values.as_primitive::<Float64Type>().clone());
    }
    let text = strings(array, column)?;
    (0..text.len())
        .map(|row| {
            cell(&text, row)
                .map(|t| match t.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err((
                        Some(row),
                        AppendError::value(column, format!("expected a number, found {t:?}")),
                    )),
                })
                .transpose()
        })
        .collect()
}

/// The `Tags` column of a batch.
pub(crate) enum TagsColumn {
    /// JSON objects as text.
    Json(StringArray),
    /// A map column, with keys and values as text.
    Map {
        /// Boxed: a map array is several times the size of a string array.
        map: Box<MapArray>,
        keys: StringArray,
        values: StringArray,
    },
}

impl TagsColumn {
    pub(crate) fn new(array: &ArrayRef, column: &'static str) -> Result<Self, BatchError> {
        match array.data_type() {
            DataType::Map(_, _) => {
                let map = array
                    .as_any()
                    .downcast_ref::<MapArray>()
                    .cloned()
                    .ok_or_else(|| column_error(column, "expected a map"))?;
                let keys = strings(map.keys(), column)?;
                let values = strings(map.values(), column)?;
                Ok(TagsColumn::Map {
                    map: Box::new(map),
                    keys,
                    values,
                })
            }
            _ => Ok(TagsColumn::Json(strings(array, column)?)),
        }
    }

    pub(crate) fn at(&self, row: usize) -> TagsInput<'_> {
        match self {
            TagsColumn::Json(text) => cell(text, row).map_or(TagsInput::Null, TagsInput::Json),
            TagsColumn::Map { map, keys, values } => {
                if map.is_null(row) {
                    return TagsInput::Null;
                }
                let offsets = map.value_offsets();
                let range = offsets[row] as usize..offsets[row + 1] as usize;
                TagsInput::Entries {
                    keys,
                    values,
                    range,
                }
            }
        }
    }
}
