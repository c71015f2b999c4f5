//! `quantile_cont(x, q)`: the exact continuous quantile of a DOUBLE column (the name and meaning
//! of DuckDB's function). With the n non-null values sorted, v[0..n): h = q·(n − 1), the value
//! v[⌊h⌋] + (h − ⌊h⌋)·(v[⌊h⌋ + 1] − v[⌊h⌋]); NULL for no values. DataFusion 55's own
//! `percentile_cont` truncates the interpolation weight to 6 decimals (64.799912 for 64.8), so
//! the DORA views use this one for lead time p90.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, RecordBatch};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    Signature, Volatility,
};

/// The `quantile_cont` aggregate, ready to register.
pub fn quantile_cont() -> AggregateUDF {
    AggregateUDF::from(QuantileCont {
        signature: Signature::exact(
            vec![DataType::Float64, DataType::Float64],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct QuantileCont {
    signature: Signature,
}

impl AggregateUDFImpl for QuantileCont {
    fn name(&self) -> &str {
        "quantile_cont"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(QuantileAccumulator {
            q: constant_q(&args)?,
            values: Vec::new(),
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(QuantileGroups {
            q: constant_q(&args)?,
            groups: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
            true,
        ))])
    }
}

/// The quantile argument: a constant between 0 and 1, evaluated once, on no rows.
fn constant_q(args: &AccumulatorArgs) -> Result<f64> {
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    match args.exprs.get(1).map(|e| e.evaluate(&empty)) {
        Some(Ok(ColumnarValue::Scalar(ScalarValue::Float64(Some(q)))))
            if (0.0..=1.0).contains(&q) =>
        {
            Ok(q)
        }
        _ => plan_err!("quantile_cont(x, q): q must be a constant between 0 and 1"),
    }
}

/// The values of every group (the aggregation's fast path: one accumulator for all groups).
struct QuantileGroups {
    q: f64,
    groups: Vec<Vec<f64>>,
}

impl GroupsAccumulator for QuantileGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let Some(column) = values.first() else {
            return Ok(());
        };
        let column = column.as_primitive::<Float64Type>();
        for (row, &group) in group_indices.iter().enumerate() {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if kept && column.is_valid(row) {
                self.groups[group].push(column.value(row));
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let Some(lists) = values.first() else {
            return Ok(());
        };
        for (list, &group) in lists.as_list::<i32>().iter().zip(group_indices) {
            if let Some(list) = list {
                let list = list.as_primitive::<Float64Type>();
                self.groups[group].extend(list.iter().flatten());
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let q = self.q;
        let out: Float64Array = emit_to
            .take_needed(&mut self.groups)
            .into_iter()
            .map(|mut values| quantile(&mut values, q))
            .collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let mut offsets = Vec::with_capacity(groups.len() + 1);
        offsets.push(0i32);
        let mut end = 0usize;
        for g in &groups {
            end += g.len();
            offsets.push(i32::try_from(end).map_err(|_| {
                datafusion::error::DataFusionError::Execution(
                    "quantile_cont: more than 2^31 values in one aggregation state".into(),
                )
            })?);
        }
        let values = Float64Array::from(groups.into_iter().flatten().collect::<Vec<f64>>());
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Arc::new(values),
            None,
        );
        Ok(vec![Arc::new(list)])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Each row its own group: a list of its value, or an empty list.
        let Some(column) = values.first() else {
            return Ok(vec![]);
        };
        let column = column.as_primitive::<Float64Type>();
        let mut offsets = Vec::with_capacity(column.len() + 1);
        let mut kept = Vec::with_capacity(column.len());
        offsets.push(0i32);
        for row in 0..column.len() {
            let keep = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if keep && column.is_valid(row) {
                kept.push(column.value(row));
            }
            offsets.push(i32::try_from(kept.len()).map_err(|_| {
                datafusion::error::DataFusionError::Execution(
                    "quantile_cont: more than 2^31 values in one batch".into(),
                )
            })?);
        }
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Arc::new(Float64Array::from(kept)),
            None,
        );
        Ok(vec![Arc::new(list)])
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.groups.capacity() * size_of::<Vec<f64>>()
            + self
                .groups
                .iter()
                .map(|g| g.capacity() * size_of::<f64>())
                .sum::<usize>()
    }
}

#[derive(Debug)]
struct QuantileAccumulator {
    q: f64,
    values: Vec<f64>,
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(column) = values.first() else {
            return Ok(());
        };
        let column = column.as_primitive::<Float64Type>();
        if column.null_count() == 0 {
            self.values.extend_from_slice(column.values());
        } else {
            self.values.extend(column.iter().flatten());
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first() else {
            return Ok(());
        };
        for list in lists.as_list::<i32>().iter().flatten() {
            self.update_batch(&[list])?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float64Array::from(std::mem::take(&mut self.values));
        let offsets = OffsetBuffer::new(ScalarBuffer::from(vec![0, values.len() as i32]));
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            offsets,
            Arc::new(values),
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(quantile(&mut self.values, self.q)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<f64>()
    }
}

/// The continuous `q` quantile of `values` (reordered in place), None when empty.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let h = q * (n - 1) as f64;
    let lo = (h.floor() as usize).min(n - 1);
    let (_, low, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let low = *low;
    // The next value up is the smallest of those above position lo.
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    Some(low + (h - lo as f64) * (high - low))
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn interpolates_between_the_neighbours_of_q_n_minus_1() {
        // n = 4, q = 0.9: h = 2.7 → v[2] + 0.7·(v[3] − v[2]) = 30 + 0.7·10 = 37.
        assert_eq!(quantile(&mut [40.0, 10.0, 30.0, 20.0], 0.9), Some(37.0));
        // q = 0.5, n = 4: h = 1.5 → 20 + 0.5·10 = 25.
        assert_eq!(quantile(&mut [40.0, 10.0, 30.0, 20.0], 0.5), Some(25.0));
        // One value: itself; q = 1: the largest; none: None.
        assert_eq!(quantile(&mut [7.5], 0.9), Some(7.5));
        assert_eq!(quantile(&mut [3.0, 9.0, 1.0], 1.0), Some(9.0));
        assert_eq!(quantile(&mut [], 0.9), None);
        // Duplicates at the split: h = 0.9·4 = 3.6 → v[3] = 5 + 0.6·(5 − 5) = 5.
        assert_eq!(quantile(&mut [5.0, 1.0, 5.0, 5.0, 2.0], 0.9), Some(5.0));
    }
}
