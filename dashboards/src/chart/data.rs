//! A panel's Arrow result as plain columns: numbers as `f64`, x as a position on its axis, text.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::DateTime;
use chrono_tz::Tz;

use super::ChartError;
use super::format::date_to_days;

/// The query result a chart draws, looked up by column name.
pub(crate) struct Table<'a> {
    schema: &'a Schema,
    batches: &'a [RecordBatch],
}

/// The x column: where each row sits on the axis, and how the axis reads.
#[derive(Debug, Clone)]
pub(crate) struct XColumn {
    /// Days since 1970-01-01 in the chart's time zone, or the category's index.
    pub positions: Vec<Option<f64>>,
    pub axis: XAxisKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum XAxisKind {
    Time,
    /// Labels in order of first appearance; positions index into it.
    Category(Vec<String>),
}

const NUMERIC: &str = "a numeric column (integer, float or decimal)";
const TEXT: &str = "a text column (Utf8)";
const X_TYPES: &str = "a date, timestamp or text column";

impl<'a> Table<'a> {
    pub fn new(schema: &'a Schema, batches: &'a [RecordBatch]) -> Self {
        Self { schema, batches }
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.schema.index_of(name).is_ok()
    }

    pub fn data_type(&self, name: &str) -> Option<DataType> {
        self.schema
            .field_with_name(name)
            .ok()
            .map(|f| f.data_type().clone())
    }

    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The column's arrays, one per batch, after checking its type with `accepts`.
    fn arrays(
        &self,
        name: &str,
        expected: &str,
        accepts: impl Fn(&DataType) -> bool,
    ) -> Result<Vec<ArrayRef>, ChartError> {
        let missing = || ChartError::Column {
            column: name.to_owned(),
            expected: format!("missing; expected {expected}"),
        };
        let index = self.schema.index_of(name).map_err(|_| missing())?;
        let data_type = self.schema.field(index).data_type();
        if !accepts(data_type) {
            return Err(ChartError::Column {
                column: name.to_owned(),
                expected: format!("expected {expected}, found {data_type}"),
            });
        }
        self.batches
            .iter()
            .map(|batch| {
                // A batch whose own schema disagrees with the one given is the caller's bug; say
                // which column rather than index past its end.
                let column = batch.schema().index_of(name).map_err(|_| missing())?;
                let array = batch.column(column);
                if array.data_type() == data_type {
                    Ok(array.clone())
                } else {
                    Err(ChartError::Column {
                        column: name.to_owned(),
                        expected: format!(
                            "expected {expected}, found {} in a batch",
                            array.data_type()
                        ),
                    })
                }
            })
            .collect()
    }

    /// A required numeric column; decimals divided by their scale, NaN read as a gap.
    pub fn numbers(&self, name: &str) -> Result<Vec<Option<f64>>, ChartError> {
        let arrays = self.arrays(name, NUMERIC, is_numeric)?;
        let mut out = Vec::with_capacity(self.rows());
        for array in arrays {
            let floats = cast(&array, &DataType::Float64).map_err(|e| ChartError::Column {
                column: name.to_owned(),
                expected: e.to_string(),
            })?;
            let floats = floats.as_primitive::<Float64Type>();
            out.extend(floats.iter().map(|v| v.filter(|v| v.is_finite())));
        }
        Ok(out)
    }

    pub fn numbers_if_present(&self, name: &str) -> Result<Option<Vec<Option<f64>>>, ChartError> {
        if self.has(name) {
            self.numbers(name).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn texts(&self, name: &str) -> Result<Vec<Option<String>>, ChartError> {
        let arrays = self.arrays(name, TEXT, is_text)?;
        let mut out = Vec::with_capacity(self.rows());
        for array in arrays {
            let strings = cast(&array, &DataType::Utf8).map_err(|e| ChartError::Column {
                column: name.to_owned(),
                expected: e.to_string(),
            })?;
            out.extend(
                strings
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.map(str::to_owned)),
            );
        }
        Ok(out)
    }

    pub fn texts_if_present(&self, name: &str) -> Result<Option<Vec<Option<String>>>, ChartError> {
        if self.has(name) {
            self.texts(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every column as display text, for the table chart.
    pub fn display_cells(&self, name: &str) -> Result<Vec<String>, ChartError> {
        let arrays = self.arrays(name, "any column", |_| true)?;
        let mut out = Vec::with_capacity(self.rows());
        for array in arrays {
            let formatter = arrow::util::display::ArrayFormatter::try_new(
                array.as_ref(),
                &arrow::util::display::FormatOptions::default(),
            )
            .map_err(|e| ChartError::Column {
                column: name.to_owned(),
                expected: e.to_string(),
            })?;
            out.extend((0..array.len()).map(|row| formatter.value(row).to_string()));
        }
        Ok(out)
    }

    /// A date column (`Date32`) as days since 1970-01-01.
    pub fn dates(&self, name: &str) -> Result<Vec<Option<f64>>, ChartError> {
        let arrays = self.arrays(name, "a date column (Date32)", |t| *t == DataType::Date32)?;
        let mut out = Vec::with_capacity(self.rows());
        for array in arrays {
            out.extend(
                array
                    .as_primitive::<arrow::datatypes::Date32Type>()
                    .iter()
                    .map(|d| d.map(f64::from)),
            );
        }
        Ok(out)
    }

    /// The x column: dates as they are, instants in `zone`'s wall time, text as categories.
    pub fn x(&self, name: &str, zone: Tz) -> Result<XColumn, ChartError> {
        let arrays = self.arrays(name, X_TYPES, |t| {
            matches!(
                t,
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
            ) || is_text(t)
        })?;
        let data_type = self
            .schema
            .field_with_name(name)
            .map(|f| f.data_type().clone());
        if let Ok(t) = &data_type
            && is_text(t)
        {
            let mut labels: Vec<String> = Vec::new();
            let mut positions = Vec::with_capacity(self.rows());
            for label in self.texts(name)? {
                positions.push(label.map(|label| {
                    let index = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                        labels.push(label);
                        labels.len() - 1
                    });
                    index as f64
                }));
            }
            return Ok(XColumn {
                positions,
                axis: XAxisKind::Category(labels),
            });
        }
        let mut positions = Vec::with_capacity(self.rows());
        for array in arrays {
            match array.data_type() {
                DataType::Date32 => positions.extend(
                    array
                        .as_primitive::<arrow::datatypes::Date32Type>()
                        .iter()
                        .map(|d| d.map(f64::from)),
                ),
                DataType::Date64 => positions.extend(
                    array
                        .as_primitive::<arrow::datatypes::Date64Type>()
                        .iter()
                        .map(|ms| ms.map(|ms| ms as f64 / 86_400_000.0)),
                ),
                DataType::Timestamp(unit, _) => {
                    // Arrow timestamps count from the UTC epoch whatever their zone says (a
                    // zone-less one is taken as UTC too, as the lake writes them).
                    let millis = cast(&array, &DataType::Timestamp(TimeUnit::Millisecond, None))
                        .and_then(|a| cast(&a, &DataType::Int64))
                        .map_err(|e| ChartError::Column {
                            column: name.to_owned(),
                            expected: format!("{unit:?}: {e}"),
                        })?;
                    positions.extend(
                        millis
                            .as_primitive::<arrow::datatypes::Int64Type>()
                            .iter()
                            .map(|ms| ms.and_then(|ms| local_days(ms, zone))),
                    );
                }
                other => {
                    return Err(ChartError::Column {
                        column: name.to_owned(),
                        expected: format!("expected {X_TYPES}, found {other}"),
                    });
                }
            }
        }
        Ok(XColumn {
            positions,
            axis: XAxisKind::Time,
        })
    }
}

/// Milliseconds since the UTC epoch as days since 1970-01-01 on `zone`'s clock.
fn local_days(millis: i64, zone: Tz) -> Option<f64> {
    let local = DateTime::from_timestamp_millis(millis)?
        .with_timezone(&zone)
        .naive_local();
    let day = date_to_days(local.date());
    let since_midnight = local.time() - chrono::NaiveTime::MIN;
    Some(day + since_midnight.num_milliseconds() as f64 / 86_400_000.0)
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether every present x falls on the first of a month: such data is labelled by month.
pub(crate) fn is_monthly(positions: &[Option<f64>]) -> bool {
    let mut seen = false;
    for days in positions.iter().flatten() {
        seen = true;
        let Some(at) = super::format::days_to_datetime(*days) else {
            return false;
        };
        if chrono::Datelike::day(&at) != 1 || at.time() != chrono::NaiveTime::MIN {
            return false;
        }
    }
    seen
}
