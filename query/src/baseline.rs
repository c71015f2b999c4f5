//! The anomaly baseline's statistics over a window of daily costs (`cost.sql`,
//! `cost_anomaly_scores`): `list_median(costs)` and `list_mad(costs)` (median absolute deviation
//! from that median), on the `array_agg` of a sliding window. Exact decimal arithmetic on the raw
//! `DECIMAL(38, 12)` units; the median of an even count is the mean of the two middle values,
//! truncated toward zero at the 12th decimal. Computing them per window row avoids joining every
//! day to each of its baseline days (28 rows per day), which took minutes and gigabytes on a large
//! organisation.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Builder};
use arrow::datatypes::{DataType, Decimal128Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use model::schema::{MONEY_PRECISION, MONEY_SCALE};

/// The median of `values` (sorted in place); `None` when empty.
pub fn median_units(values: &mut [i128]) -> Option<i128> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        Some(values[mid])
    } else {
        // (a + b) / 2 without overflow: a / 2 + b / 2 + the halves' remainders.
        let (a, b) = (values[mid - 1], values[mid]);
        Some(a / 2 + b / 2 + (a % 2 + b % 2) / 2)
    }
}

/// The median absolute deviation from the median.
pub fn mad_units(values: &mut [i128]) -> Option<i128> {
    let center = median_units(values)?;
    let mut deviations: Vec<i128> = values.iter().map(|v| (v - center).abs()).collect();
    median_units(&mut deviations)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Statistic {
    Median,
    Mad,
}

#[derive(Debug)]
struct ListStatistic {
    statistic: Statistic,
    signature: Signature,
}

impl PartialEq for ListStatistic {
    fn eq(&self, other: &Self) -> bool {
        self.statistic == other.statistic
    }
}

impl Eq for ListStatistic {}

impl Hash for ListStatistic {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.statistic.hash(state);
    }
}

/// `list_median` and `list_mad`, ready to register.
pub fn udfs() -> Vec<ScalarUDF> {
    [Statistic::Median, Statistic::Mad]
        .into_iter()
        .map(|statistic| {
            ScalarUDF::new_from_impl(ListStatistic {
                statistic,
                signature: Signature::any(1, Volatility::Immutable),
            })
        })
        .collect()
}

impl ScalarUDFImpl for ListStatistic {
    fn name(&self) -> &str {
        match self.statistic {
            Statistic::Median => "list_median",
            Statistic::Mad => "list_mad",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let wrong = || {
            DataFusionError::Execution(format!("{} takes a list of DECIMAL(38, 12)", self.name()))
        };
        let list = arrays
            .first()
            .and_then(|a| a.as_list_opt::<i32>())
            .ok_or_else(wrong)?;
        let values = list
            .values()
            .as_primitive_opt::<Decimal128Type>()
            .ok_or_else(wrong)?;
        if values.scale() != MONEY_SCALE {
            return Err(wrong());
        }
        let mut out = Decimal128Builder::with_capacity(list.len());
        let mut window = Vec::new();
        for row in 0..list.len() {
            if list.is_null(row) {
                out.append_null();
                continue;
            }
            let offsets = list.value_offsets();
            window.clear();
            window.extend(
                (offsets[row] as usize..offsets[row + 1] as usize)
                    .filter(|&i| !values.is_null(i))
                    .map(|i| values.value(i)),
            );
            out.append_option(match self.statistic {
                Statistic::Median => median_units(&mut window),
                Statistic::Mad => mad_units(&mut window),
            });
        }
        Ok(ColumnarValue::Array(Arc::new(
            out.finish()
                .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::{mad_units, median_units};

    #[test]
    fn median_and_mad_by_hand() {
        // 10, 12, 10, 11, 10 → sorted 10, 10, 10, 11, 12: median 10; deviations 0, 0, 0, 1, 2 → 0.
        assert_eq!(median_units(&mut [10, 12, 10, 11, 10]), Some(10));
        assert_eq!(mad_units(&mut [10, 12, 10, 11, 10]), Some(0));
        // 12, 10, 11, 10, 30 → median 11; deviations 1, 1, 0, 1, 19 → 1.
        assert_eq!(mad_units(&mut [12, 10, 11, 10, 30]), Some(1));
        // Even count: 1, 2, 4, 7 → (2 + 4) / 2 = 3; 1, 2 → 1.5 units, truncated to 1; −1, −2 → −1.
        assert_eq!(median_units(&mut [7, 1, 4, 2]), Some(3));
        assert_eq!(median_units(&mut [1, 2]), Some(1));
        assert_eq!(median_units(&mut [-1, -2]), Some(-1));
        assert_eq!(median_units(&mut []), None);
    }
}
