//! `cost_rule_pick(tags, sub_account, billing_account, cloud_service)`: the `ordinal` of the
//! `cost_rules` row a bill line takes, NULL when none matches. It is the rule `cost.sql` states as
//! `cost_rule_matches` (every match) and `cost_assignments` (the lowest precedence, then config
//! order), computed in one pass over the bill: tens of millions of lines would otherwise be
//! unnested tag by tag and joined back by `cost_id`. The tests check that both agree.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Builder, StringArray};
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::cost_tables::{CostRule, normalise};

/// The rules, indexed by what they compare; each entry keeps its best (precedence, ordinal).
#[derive(Debug, Default)]
pub struct RulePicker {
    tags: HashMap<String, HashMap<String, (i32, i32)>>,
    accounts: HashMap<String, (i32, i32)>,
    cloud_services: HashMap<String, (i32, i32)>,
}

fn keep_best(slot: &mut Option<(i32, i32)>, candidate: Option<(i32, i32)>) {
    if let Some(c) = candidate
        && slot.is_none_or(|s| c < s)
    {
        *slot = Some(c);
    }
}

impl RulePicker {
    /// Indexes `rules` (already normalised).
    pub fn new(rules: &[CostRule]) -> RulePicker {
        let mut picker = RulePicker::default();
        for rule in rules {
            let rank = (rule.precedence, rule.ordinal);
            let slot = match (rule.kind, &rule.tag_key) {
                ("tag", Some(key)) => picker
                    .tags
                    .entry(key.clone())
                    .or_default()
                    .entry(rule.value.clone()),
                ("account", _) => picker.accounts.entry(rule.value.clone()),
                _ => picker.cloud_services.entry(rule.value.clone()),
            };
            let best = slot.or_insert(rank);
            if rank < *best {
                *best = rank;
            }
        }
        picker
    }

    /// The winning rule's ordinal for one line.
    pub fn pick<'a>(
        &self,
        tags: impl Iterator<Item = (&'a str, Option<&'a str>)>,
        sub_account: Option<&str>,
        billing_account: Option<&str>,
        cloud_service: Option<&str>,
    ) -> Option<i32> {
        let mut best = None;
        if !self.tags.is_empty() {
            for (key, value) in tags {
                let Some(values) = self.tags.get(normalise(key).as_ref()) else {
                    continue;
                };
                if let Some(value) = value {
                    keep_best(&mut best, values.get(normalise(value).as_ref()).copied());
                }
            }
        }
        for account in [sub_account, billing_account].into_iter().flatten() {
            keep_best(
                &mut best,
                self.accounts.get(normalise(account).as_ref()).copied(),
            );
        }
        if let Some(service) = cloud_service {
            keep_best(
                &mut best,
                self.cloud_services
                    .get(normalise(service).as_ref())
                    .copied(),
            );
        }
        best.map(|(_, ordinal)| ordinal)
    }
}

/// The UDF over a [`RulePicker`].
#[derive(Debug)]
struct PickRule {
    signature: Signature,
    picker: Arc<RulePicker>,
}

impl PartialEq for PickRule {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.picker, &other.picker)
    }
}

impl Eq for PickRule {}

impl Hash for PickRule {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "cost_rule_pick".hash(state);
    }
}

/// `cost_rule_pick` for `rules`.
pub fn udf(rules: &[CostRule]) -> ScalarUDF {
    ScalarUDF::new_from_impl(PickRule {
        signature: Signature::any(4, Volatility::Immutable),
        picker: Arc::new(RulePicker::new(rules)),
    })
}

fn cell(a: &StringArray, row: usize) -> Option<&str> {
    (!a.is_null(row)).then(|| a.value(row))
}

fn strings(array: &ArrayRef, what: &str) -> Result<StringArray> {
    match array.data_type() {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
            let cast = arrow::compute::cast(array, &DataType::Utf8)?;
            Ok(cast.as_string::<i32>().clone())
        }
        other => Err(DataFusionError::Execution(format!(
            "cost_rule_pick: {what} must be text, found {other}"
        ))),
    }
}

impl ScalarUDFImpl for PickRule {
    fn name(&self) -> &str {
        "cost_rule_pick"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [tags, sub, billing, cloud] = arrays.as_slice() else {
            return Err(DataFusionError::Execution(
                "cost_rule_pick takes (tags, sub_account, billing_account, cloud_service)".into(),
            ));
        };
        let (sub, billing, cloud) = (
            strings(sub, "sub_account")?,
            strings(billing, "billing_account")?,
            strings(cloud, "cloud_service")?,
        );
        let map = tags.as_map_opt();
        let (keys, values) = match map {
            Some(map) => (
                strings(map.keys(), "a tag key")?,
                strings(map.values(), "a tag value")?,
            ),
            None if tags.data_type() == &DataType::Null => {
                (StringArray::new_null(0), StringArray::new_null(0))
            }
            None => {
                return Err(DataFusionError::Execution(format!(
                    "cost_rule_pick: tags must be a map, found {}",
                    tags.data_type()
                )));
            }
        };
        let mut out = Int32Builder::with_capacity(sub.len());
        for row in 0..sub.len() {
            let range = match map {
                Some(map) if !map.is_null(row) => {
                    let offsets = map.value_offsets();
                    offsets[row] as usize..offsets[row + 1] as usize
                }
                _ => 0..0,
            };
            let entries = range.map(|i| (keys.value(i), cell(&values, i)));
            out.append_option(self.picker.pick(
                entries,
                cell(&sub, row),
                cell(&billing, row),
                cell(&cloud, row),
            ));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
