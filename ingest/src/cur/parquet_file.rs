//! CUR as Parquet (CUR 2.0 from AWS Data Exports, or legacy CUR as Athena names its columns):
//! columns mapped by name, read batch by batch, converted with the FOCUS reader's column
//! conversions (money exactly from decimals, floats or text; timestamps of any unit), and appended
//! row by row. `resource_tags` and `product` are map columns (or JSON text).

use std::borrow::Cow;
use std::path::Path;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;

use super::columns::{self as cur, ColumnMap};
use super::csv_file::product_name_in;
use super::line_items::{Amount, charge_category, effective_cost};
use super::{PROVIDER, RowAt, located};
use crate::error::IngestError;
use crate::focus::parquet_columns::{
    BatchError, TagsColumn, cell, floats, money, strings, timestamps,
};
use crate::focus::slices::{AppendError, CostRow, Slices, TagsInput};
use crate::progress::Progress;

/// Rows per Parquet read; conversions work on one such batch at a time.
const READ_BATCH_ROWS: usize = 8192;

/// Appends every row of the Parquet file at `path` to `slices`.
pub(super) fn read(
    path: &Path,
    slices: &mut Slices,
    progress: &mut dyn Progress,
) -> Result<(), IngestError> {
    let (builder, size) = crate::files::open_parquet(path)?;
    let not_parquet = |e| crate::files::not_parquet(path, e);
    let row_group_rows: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| usize::try_from(g.num_rows()).unwrap_or(0))
        .collect();
    let all = ColumnMap::from_names(
        path,
        builder.schema().fields().iter().map(|f| f.name().as_str()),
    )?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), all.positions());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(not_parquet)?;
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    let columns = ColumnMap::from_names(path, schema.fields().iter().map(|f| f.name().as_str()))?;
    let mut first_row = 0;
    for batch in reader {
        let batch = batch.map_err(|source| IngestError::Arrow {
            path: path.to_owned(),
            source,
        })?;
        append_batch(&batch, &columns, slices).map_err(|(row, e)| {
            let at = match row {
                Some(row) => row_at(&row_group_rows, first_row + row),
                None => RowAt::Line(None),
            };
            located(path, &columns, at, e)
        })?;
        first_row += batch.num_rows();
    }
    progress.bytes_read(size);
    Ok(())
}

/// The row group and 0-based row within it of the file's `index`-th row.
fn row_at(row_group_rows: &[usize], mut index: usize) -> RowAt {
    for (row_group, &rows) in row_group_rows.iter().enumerate() {
        if index < rows {
            return RowAt::Parquet {
                row_group,
                row: index,
            };
        }
        index -= rows;
    }
    RowAt::Parquet {
        row_group: row_group_rows.len(),
        row: index,
    }
}

/// The `product_name` attribute of a CUR 2.0 `product` cell (a map of attributes, or their JSON
/// text; read as [`TagsColumn`] reads tags).
fn product_name_of(product: TagsInput<'_>) -> Result<Option<Cow<'_, str>>, AppendError> {
    match product {
        TagsInput::Json(json) => product_name_in(json),
        TagsInput::Entries {
            keys,
            values,
            range,
        } => Ok(range
            .into_iter()
            .find(|&i| keys.is_valid(i) && keys.value(i) == "product_name")
            .and_then(|i| cell(values, i))
            .map(Cow::Borrowed)),
        TagsInput::Null | TagsInput::Pairs(_) => Ok(None),
    }
}

/// Converts a batch's columns, then appends its rows.
fn append_batch(
    batch: &RecordBatch,
    columns: &ColumnMap,
    slices: &mut Slices,
) -> Result<(), BatchError> {
    let col = |i: usize| batch.column(i);
    let text = |i: Option<usize>, name| i.map(|i| strings(col(i), name)).transpose();
    let amounts = |i: Option<usize>, name| i.map(|i| money(col(i), name)).transpose();
    let unblended = money(col(columns.unblended_cost), cur::UNBLENDED_COST)?;
    let list_cost = amounts(columns.list_cost, cur::PUBLIC_ON_DEMAND_COST)?;
    let sp_effective = amounts(columns.sp_effective_cost, cur::SP_EFFECTIVE_COST)?;
    let sp_total = amounts(columns.sp_total_commitment, cur::SP_TOTAL_COMMITMENT)?;
    let sp_used = amounts(columns.sp_used_commitment, cur::SP_USED_COMMITMENT)?;
    let ri_effective = amounts(columns.ri_effective_cost, cur::RI_EFFECTIVE_COST)?;
    let ri_upfront = amounts(columns.ri_unused_upfront, cur::RI_UNUSED_UPFRONT)?;
    let ri_recurring = amounts(columns.ri_unused_recurring, cur::RI_UNUSED_RECURRING)?;
    let line_item_type = strings(col(columns.line_item_type), cur::LINE_ITEM_TYPE)?;
    let payer_account = strings(col(columns.payer_account), cur::PAYER_ACCOUNT)?;
    let currency = strings(col(columns.currency), cur::CURRENCY)?;
    let billing_period_start =
        timestamps(col(columns.billing_period_start), cur::BILLING_PERIOD_START)?;
    let usage_start = timestamps(col(columns.usage_start), cur::USAGE_START)?;
    let usage_end = timestamps(col(columns.usage_end), cur::USAGE_END)?;
    let usage_account = text(columns.usage_account, cur::USAGE_ACCOUNT)?;
    let product_name = text(columns.product_name, cur::PRODUCT_NAME)?;
    let service_code = text(columns.service_code, cur::SERVICE_CODE)?;
    let product_code = text(columns.product_code, cur::PRODUCT_CODE)?;
    let region = text(columns.region, cur::REGION_CODE)?;
    let resource_id = text(columns.resource_id, cur::RESOURCE_ID)?;
    let ri_arn = text(columns.ri_arn, cur::RI_ARN)?;
    let pricing_unit = text(columns.pricing_unit, cur::PRICING_UNIT)?;
    let usage_amount = columns
        .usage_amount
        .map(|i| floats(col(i), cur::USAGE_AMOUNT))
        .transpose()?;
    let product = columns
        .product_map
        .map(|i| TagsColumn::new(col(i), cur::PRODUCT_MAP))
        .transpose()?;
    let tags_map = columns
        .tags_map
        .map(|i| TagsColumn::new(col(i), cur::RESOURCE_TAGS))
        .transpose()?;
    let tag_columns = columns
        .tag_columns
        .iter()
        .map(|(i, key)| Ok((key.as_str(), strings(col(*i), cur::RESOURCE_TAGS)?)))
        .collect::<Result<Vec<_>, BatchError>>()?;

    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(tag_columns.len());
    for row in 0..batch.num_rows() {
        let at = |e: AppendError| (Some(row), e);
        let line_item_type =
            required(cell(&line_item_type, row), cur::LINE_ITEM_TYPE).map_err(at)?;
        let billed_cost = required(unblended[row], cur::UNBLENDED_COST).map_err(at)?;
        let has_reservation_arn = optional_cell(&ri_arn, row).is_some();
        let effective_cost = effective_cost(
            line_item_type,
            billed_cost,
            has_reservation_arn,
            &mut |which| {
                let values = match which {
                    Amount::SpEffectiveCost => &sp_effective,
                    Amount::SpTotalCommitment => &sp_total,
                    Amount::SpUsedCommitment => &sp_used,
                    Amount::RiEffectiveCost => &ri_effective,
                    Amount::RiUnusedUpfront => &ri_upfront,
                    Amount::RiUnusedRecurring => &ri_recurring,
                };
                Ok(values.as_ref().and_then(|v| v[row]))
            },
        )
        .map_err(at)?;
        let name = match optional_cell(&product_name, row) {
            Some(name) => Some(Cow::Borrowed(name)),
            None => match &product {
                Some(p) => product_name_of(p.at(row)).map_err(at)?,
                None => None,
            },
        };
        let cloud_service = name
            .as_deref()
            .or_else(|| optional_cell(&service_code, row))
            .or_else(|| optional_cell(&product_code, row));
        pairs.clear();
        let tags = match &tags_map {
            Some(t) => t.at(row),
            None => {
                for (key, values) in &tag_columns {
                    if let Some(value) = cell(values, row) {
                        pairs.push((key, value));
                    }
                }
                if pairs.is_empty() {
                    TagsInput::Null
                } else {
                    TagsInput::Pairs(&pairs)
                }
            }
        };
        let cost = CostRow {
            provider: PROVIDER,
            billing_account: required(cell(&payer_account, row), cur::PAYER_ACCOUNT).map_err(at)?,
            billing_period_start: required(billing_period_start[row], cur::BILLING_PERIOD_START)
                .map_err(at)?,
            sub_account: optional_cell(&usage_account, row),
            charge_period_start: required(usage_start[row], cur::USAGE_START).map_err(at)?,
            charge_period_end: required(usage_end[row], cur::USAGE_END).map_err(at)?,
            charge_category: charge_category(line_item_type),
            charge_class: None,
            cloud_service,
            service_category: None,
            region: optional_cell(&region, row),
            resource_id: optional_cell(&resource_id, row),
            resource_name: None,
            tags,
            billed_cost,
            effective_cost,
            list_cost: list_cost.as_ref().and_then(|l| l[row]),
            currency: required(cell(&currency, row), cur::CURRENCY).map_err(at)?,
            usage_quantity: usage_amount
                .as_ref()
                .and_then(|q| q.is_valid(row).then(|| q.value(row))),
            usage_unit: optional_cell(&pricing_unit, row),
        };
        slices.append(&cost).map_err(at)?;
    }
    Ok(())
}

/// A cell of a column the file may lack.
fn optional_cell(array: &Option<StringArray>, row: usize) -> Option<&str> {
    array.as_ref().and_then(|a| cell(a, row))
}

fn required<T>(value: Option<T>, column: &'static str) -> Result<T, AppendError> {
    value.ok_or_else(|| AppendError::value(column, "a value is required, found null"))
}
