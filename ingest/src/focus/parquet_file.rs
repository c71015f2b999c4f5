//! FOCUS bills as Parquet: columns are mapped by name, read batch by batch, converted to the
//! canonical types (see `parquet_columns`), and appended row by row.

use std::path::Path;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;

use super::columns::{self as focus, ColumnMap};
use super::parquet_columns::{BatchError, TagsColumn, cell, floats, money, strings, timestamps};
use super::slices::{AppendError, CostRow, Slices, TagsInput};
use super::{FocusDefaults, located};
use crate::error::IngestError;
use crate::progress::Progress;

/// Rows per Parquet read; conversions work on one such batch at a time.
const READ_BATCH_ROWS: usize = 8192;

/// Appends every row of the Parquet file at `path` to `slices`.
pub(super) fn read(
    path: &Path,
    defaults: &FocusDefaults,
    slices: &mut Slices,
    progress: &mut dyn Progress,
) -> Result<(), IngestError> {
    let (builder, size) = crate::files::open_parquet(path)?;
    let not_parquet = |e| crate::files::not_parquet(path, e);
    let all = ColumnMap::from_names(
        path,
        builder.schema().fields().iter().map(|f| f.name().as_str()),
        defaults,
    )?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), all.positions());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(not_parquet)?;
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    let columns = ColumnMap::from_names(
        path,
        schema.fields().iter().map(|f| f.name().as_str()),
        defaults,
    )?;
    let mut first_row = 0;
    for batch in reader {
        let batch = batch.map_err(|source| IngestError::Arrow {
            path: path.to_owned(),
            source,
        })?;
        append_batch(&batch, &columns, defaults, slices)
            .map_err(|(row, e)| located(path, None, row.map(|r| first_row + r), e))?;
        first_row += batch.num_rows();
    }
    progress.bytes_read(size);
    Ok(())
}

/// Converts a batch's columns, then appends its rows.
fn append_batch(
    batch: &RecordBatch,
    columns: &ColumnMap,
    defaults: &FocusDefaults,
    slices: &mut Slices,
) -> Result<(), BatchError> {
    let col = |i: usize| batch.column(i);
    let text = |i: Option<usize>, name| i.map(|i| strings(col(i), name)).transpose();
    let billed_cost = money(col(columns.billed_cost), focus::BILLED_COST)?;
    let effective_cost = money(col(columns.effective_cost), focus::EFFECTIVE_COST)?;
    let list_cost = columns
        .list_cost
        .map(|i| money(col(i), focus::LIST_COST))
        .transpose()?;
    let billing_account = text(columns.billing_account, focus::BILLING_ACCOUNT_ID)?;
    let currency = text(columns.currency, focus::BILLING_CURRENCY)?;
    let billing_period_start = timestamps(
        col(columns.billing_period_start),
        focus::BILLING_PERIOD_START,
    )?;
    let charge_period_start =
        timestamps(col(columns.charge_period_start), focus::CHARGE_PERIOD_START)?;
    let charge_period_end = timestamps(col(columns.charge_period_end), focus::CHARGE_PERIOD_END)?;
    let charge_category = strings(col(columns.charge_category), focus::CHARGE_CATEGORY)?;
    let provider = text(columns.provider, focus::PROVIDER_NAME)?;
    let service_provider = text(columns.service_provider, focus::SERVICE_PROVIDER_NAME)?;
    let sub_account = text(columns.sub_account, focus::SUB_ACCOUNT_ID)?;
    let charge_class = text(columns.charge_class, focus::CHARGE_CLASS)?;
    let cloud_service = text(columns.cloud_service, focus::SERVICE_NAME)?;
    let service_category = text(columns.service_category, focus::SERVICE_CATEGORY)?;
    let region = text(columns.region, focus::REGION_ID)?;
    let resource_id = text(columns.resource_id, focus::RESOURCE_ID)?;
    let resource_name = text(columns.resource_name, focus::RESOURCE_NAME)?;
    let usage_unit = text(columns.usage_unit, focus::CONSUMED_UNIT)?;
    let usage_quantity = columns
        .usage_quantity
        .map(|i| floats(col(i), focus::CONSUMED_QUANTITY))
        .transpose()?;
    let tags = columns
        .tags
        .map(|i| TagsColumn::new(col(i), focus::TAGS))
        .transpose()?;

    for row in 0..batch.num_rows() {
        let at = |e: AppendError| (Some(row), e);
        let provider = optional_cell(&provider, row)
            .or_else(|| optional_cell(&service_provider, row))
            .or(defaults.provider.as_deref())
            .ok_or_else(|| at(missing(columns.provider_column())))?;
        let cost = CostRow {
            provider,
            billing_account: required(
                optional_cell(&billing_account, row).or(defaults.billing_account.as_deref()),
                focus::BILLING_ACCOUNT_ID,
            )
            .map_err(at)?,
            billing_period_start: required(billing_period_start[row], focus::BILLING_PERIOD_START)
                .map_err(at)?,
            sub_account: optional_cell(&sub_account, row),
            charge_period_start: required(charge_period_start[row], focus::CHARGE_PERIOD_START)
                .map_err(at)?,
            charge_period_end: required(charge_period_end[row], focus::CHARGE_PERIOD_END)
                .map_err(at)?,
            charge_category: required(cell(&charge_category, row), focus::CHARGE_CATEGORY)
                .map_err(at)?,
            charge_class: optional_cell(&charge_class, row),
            cloud_service: optional_cell(&cloud_service, row),
            service_category: optional_cell(&service_category, row),
            region: optional_cell(&region, row),
            resource_id: optional_cell(&resource_id, row),
            resource_name: optional_cell(&resource_name, row),
            tags: tags.as_ref().map_or(TagsInput::Null, |t| t.at(row)),
            billed_cost: required(billed_cost[row], focus::BILLED_COST).map_err(at)?,
            effective_cost: required(effective_cost[row], focus::EFFECTIVE_COST).map_err(at)?,
            list_cost: list_cost.as_ref().and_then(|l| l[row]),
            currency: required(
                optional_cell(&currency, row).or(defaults.currency.as_deref()),
                focus::BILLING_CURRENCY,
            )
            .map_err(at)?,
            usage_quantity: usage_quantity
                .as_ref()
                .and_then(|q| q.is_valid(row).then(|| q.value(row))),
            usage_unit: optional_cell(&usage_unit, row),
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
    value.ok_or_else(|| missing(column))
}

fn missing(column: &'static str) -> AppendError {
    AppendError::value(column, "a value is required, found null")
}
