//! `quantile_cont(x, q)`: the exact continuous quantile of a DOUBLE column (the name and meaning
//! of DuckDB's function). With the n non-null values sorted, v[0..n): h = q·(n − 1), the value
//! v[⌊h⌋] + (h − ⌊h⌋)·(v[⌊h⌋ + 1] − v[⌊h⌋]); NULL for no values. q = 0.5 is the median, computed
//! as `median` computes it: the middle value, or (a + b) / 2 of the two middle ones. DataFusion
//! 55's own `percentile_cont` truncates the interpolation weight to 6 decimals (64.799912 for
//! 64.8), so the DORA views use this one for lead time p90.
//!
//! `quantile_cont(x, [q1, q2, …])` (DuckDB's list form) returns the list of those quantiles from
//! one collection of the values: the DORA views take the lead-time median and p90 that way, which
//! collects 7.76M values once instead of twice on the large organisation.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Float64Builder, ListArray, ListBuilder,
    RecordBatch,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    Signature, TypeSignature, Volatility,
};

/// The `quantile_cont` aggregate, ready to register.
pub fn quantile_cont() -> AggregateUDF {
    AggregateUDF::from(QuantileCont {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Float64, DataType::Float64]),
                TypeSignature::Exact(vec![DataType::Float64, list_of_f64()]),
            ],
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

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types.get(1) {
            Some(DataType::List(_)) => list_of_f64(),
            _ => DataType::Float64,
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(QuantileAccumulator {
            qs: constant_qs(&args)?,
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
            qs: constant_qs(&args)?,
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

fn list_of_f64() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

/// The quantiles asked for: one (`q`) or a list (`[q1, q2, …]`).
#[derive(Debug)]
struct Quantiles {
    qs: Vec<f64>,
    list: bool,
}

impl Quantiles {
    /// The result for one group's values (reordered in place).
    fn of(&self, values: &mut [f64]) -> QuantileResult {
        if self.list {
            QuantileResult::List(
                (!values.is_empty())
                    .then(|| self.qs.iter().map(|&q| quantile(values, q)).collect()),
            )
        } else {
            QuantileResult::One(self.qs.first().and_then(|&q| quantile(values, q)))
        }
    }

    /// Results of groups as one array.
    fn array(&self, results: Vec<QuantileResult>) -> ArrayRef {
        if self.list {
            let mut builder = ListBuilder::new(Float64Builder::new());
            for r in results {
                match r {
                    QuantileResult::List(Some(values)) => {
                        builder.values().extend(values);
                        builder.append(true);
                    }
                    _ => builder.append(false),
                }
            }
            Arc::new(builder.finish())
        } else {
            let out: Float64Array = results
                .into_iter()
                .map(|r| match r {
                    QuantileResult::One(v) => v,
                    QuantileResult::List(_) => None,
                })
                .collect();
            Arc::new(out)
        }
    }
}

enum QuantileResult {
    One(Option<f64>),
    List(Option<Vec<Option<f64>>>),
}

/// The quantile argument: a constant between 0 and 1, or a list of them, evaluated once, on no
/// rows.
fn constant_qs(args: &AccumulatorArgs) -> Result<Quantiles> {
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let ok = |q: &f64| (0.0..=1.0).contains(q);
    match args.exprs.get(1).map(|e| e.evaluate(&empty)) {
        Some(Ok(ColumnarValue::Scalar(ScalarValue::Float64(Some(q))))) if ok(&q) => Ok(Quantiles {
            qs: vec![q],
            list: false,
        }),
        Some(Ok(ColumnarValue::Scalar(ScalarValue::List(list)))) if list.len() == 1 => {
            let items = list.value(0);
            let items = items.as_primitive_opt::<Float64Type>();
            match items {
                Some(items) if items.null_count() == 0 && items.values().iter().all(ok) => {
                    Ok(Quantiles {
                        qs: items.values().to_vec(),
                        list: true,
                    })
                }
                _ => plan_err!(
                    "quantile_cont(x, [q, …]): every q must be a constant between 0 and 1"
                ),
            }
        }
        _ => plan_err!("quantile_cont(x, q): q must be a constant between 0 and 1"),
    }
}

/// The values of every group (the aggregation's fast path: one accumulator for all groups).
struct QuantileGroups {
    qs: Quantiles,
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
        let results = emit_to
            .take_needed(&mut self.groups)
            .into_iter()
            .map(|mut values| self.qs.of(&mut values))
            .collect();
        Ok(self.qs.array(results))
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
    qs: Quantiles,
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
        let result = self.qs.of(&mut self.values);
        ScalarValue::try_from_array(&self.qs.array(vec![result]), 0)
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
    let fraction = h - lo as f64;
    if q == 0.5 && fraction == 0.5 {
        // The median of an even count, as `median` computes it.
        return Some((low + high) / 2.0);
    }
    Some(low + fraction * (high - low))
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
        // The median of an even count is (a + b) / 2, bit for bit as `median` gives it (a +
        // 0.5·(b − a) can differ in the last place): 0.1 and 0.7.
        assert_eq!(quantile(&mut [0.7, 0.1], 0.5), Some((0.1 + 0.7) / 2.0));
    }

    /// `quantile_cont` from SQL, one q and a list, grouped and not, against `median`.
    #[tokio::test]
    async fn the_list_form_gives_each_quantile_of_one_collection() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udaf(super::quantile_cont());
        let sql = "SELECT g, quantile_cont(x, [0.5, 0.9]) AS qs, median(x) AS m, \
                   quantile_cont(x, 0.9) AS p90 \
                   FROM (VALUES (1, 10.0), (1, 40.0), (1, 30.0), (1, 20.0), (2, 7.5), \
                                (3, CAST(NULL AS DOUBLE))) t(g, x) \
                   GROUP BY g ORDER BY g";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        // Group 1: n = 4, median h = 1.5 → (20 + 30) / 2 = 25; p90 h = 2.7 → 30 + 0.7·10 = 37.
        // Group 2: one value, both quantiles are it. Group 3: no values, NULL (not a list of
        // NULLs).
        let expected = [
            "+---+--------------+------+------+",
            "| g | qs           | m    | p90  |",
            "+---+--------------+------+------+",
            "| 1 | [25.0, 37.0] | 25.0 | 37.0 |",
            "| 2 | [7.5, 7.5]   | 7.5  | 7.5  |",
            "| 3 |              |      |      |",
            "+---+--------------+------+------+",
        ];
        assert_eq!(text, expected.join("\n"));
        // Ungrouped (the one-accumulator path) and a q out of range.
        let one = ctx
            .sql("SELECT quantile_cont(x, [0.0, 1.0]) FROM (VALUES (3.0), (9.0), (1.0)) t(x)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&one)
            .unwrap()
            .to_string();
        assert!(text.contains("[1.0, 9.0]"), "{text}");
        let bad = ctx
            .sql("SELECT quantile_cont(x, [0.5, 1.5]) FROM (VALUES (1.0)) t(x)")
            .await
            .unwrap()
            .collect()
            .await;
        assert!(bad.is_err());
    }
}
