//! Exact shares of money for the shared-cost split (DESIGN §4 "Allocated + unallocated = bill, to
//! the last decimal"): `share_floor(amount, weight, total)` is ⌊amount × weight ÷ total⌋ in units of
//! 10⁻¹² and `share_remainder(…)` what that floor left over (amount × weight mod total), both in
//! 256-bit integers so no product overflows. `cost.sql` hands the leftover units of a split, one
//! each, to the pieces with the largest remainders (largest-remainder method), so the pieces of a
//! split always sum to the amount exactly.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Array, Decimal128Builder};
use arrow::datatypes::{DataType, i256};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use model::schema::{MONEY_PRECISION, MONEY_SCALE};

/// `share_floor` and `share_remainder`, ready to register.
pub fn udfs() -> Vec<ScalarUDF> {
    let money = DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE);
    let inputs = vec![money.clone(), money.clone(), money.clone()];
    vec![
        create_udf(
            "share_floor",
            inputs.clone(),
            money,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| share(args, Part::Floor)),
        ),
        create_udf(
            "share_remainder",
            inputs,
            DataType::Decimal128(MONEY_PRECISION, 0),
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| share(args, Part::Remainder)),
        ),
    ]
}

#[derive(Clone, Copy)]
enum Part {
    Floor,
    Remainder,
}

/// ⌊amount × weight ÷ total⌋ and the non-negative remainder, in the decimals' raw units. `None`
/// when the total is not positive or the weight negative (no share is defined), or when the
/// quotient does not fit the money column.
pub fn split_units(amount: i128, weight: i128, total: i128) -> Option<(i128, i128)> {
    if total <= 0 || weight < 0 {
        return None;
    }
    let product = i256::from_i128(amount).checked_mul(i256::from_i128(weight))?;
    let total = i256::from_i128(total);
    let mut quotient = product.checked_div(total)?;
    let mut remainder = product.checked_rem(total)?;
    // Floor division: a negative amount (a credit) rounds toward −∞, so the remainder is ≥ 0 and
    // the leftover units are handed out upward, as for a charge.
    if remainder < i256::ZERO {
        quotient = quotient.checked_sub(i256::ONE)?;
        remainder = remainder.checked_add(total)?;
    }
    Some((quotient.to_i128()?, remainder.to_i128()?))
}

fn share(args: &[ColumnarValue], part: Part) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let decimal = |i: usize| -> Result<&Decimal128Array> {
        arrays
            .get(i)
            .and_then(|a| a.as_any().downcast_ref::<Decimal128Array>())
            .ok_or_else(|| {
                DataFusionError::Execution(
                    "share_floor/share_remainder take three DECIMAL(38, 12) arguments".into(),
                )
            })
    };
    let (amount, weight, total) = (decimal(0)?, decimal(1)?, decimal(2)?);
    let mut out = Decimal128Builder::with_capacity(amount.len());
    for row in 0..amount.len() {
        if amount.is_null(row) || weight.is_null(row) || total.is_null(row) {
            out.append_null();
            continue;
        }
        match split_units(amount.value(row), weight.value(row), total.value(row)) {
            Some((floor, remainder)) => out.append_value(match part {
                Part::Floor => floor,
                Part::Remainder => remainder,
            }),
            None => out.append_null(),
        }
    }
    let (precision, scale) = match part {
        Part::Floor => (MONEY_PRECISION, MONEY_SCALE),
        Part::Remainder => (MONEY_PRECISION, 0),
    };
    let array: ArrayRef = Arc::new(out.finish().with_precision_and_scale(precision, scale)?);
    Ok(ColumnarValue::Array(array))
}

#[cfg(test)]
mod tests {
    use super::split_units;

    #[test]
    fn floor_and_remainder_are_exact() {
        // 10 units over weights 1:1:1 (total 3): 10 × 1 = 10 = 3 × 3 + 1.
        assert_eq!(split_units(10, 1, 3), Some((3, 1)));
        // A credit of −10 units: −10 = 3 × (−4) + 2, remainder non-negative.
        assert_eq!(split_units(-10, 1, 3), Some((-4, 2)));
        // No share without a positive total or with a negative weight.
        assert_eq!(split_units(10, 1, 0), None);
        assert_eq!(split_units(10, -1, 3), None);
        // A product beyond i128 (10^26 × 10^26) stays exact in 256 bits: 10^52 / 10^27 = 10^25.
        let big = 10_i128.pow(26);
        assert_eq!(
            split_units(big, big, 10_i128.pow(27)),
            Some((10_i128.pow(25), 0))
        );
    }
}
