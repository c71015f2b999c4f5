//! CUR as CSV (CUR 2.0 or legacy headers, plain or gzip), read record by record into reused byte
//! buffers with the FOCUS reader's cell parsers: no per-row strings, values straight into the
//! shared Arrow builders.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};

use super::columns::{self as cur, ColumnMap};
use super::line_items::{Amount, charge_category, effective_cost};
use super::{PROVIDER, RowAt, located};
use crate::error::IngestError;
use crate::focus::csv_file::{csv_error, missing, money, optional, quantity, required, timestamp};
use crate::focus::slices::{AppendError, CostRow, Slices, TagsInput};
use crate::progress::{CountingReader, Progress};

/// Appends every record of the CSV file at `path` (gzip-compressed when `gzip`) to `slices`.
pub(super) fn read(
    path: &Path,
    gzip: bool,
    slices: &mut Slices,
    progress: &mut dyn Progress,
) -> Result<(), IngestError> {
    let file = crate::files::open(path)?;
    // Progress counts compressed bytes, so the bar matches the file size.
    let counted = CountingReader::new(file, progress);
    let input: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(counted))
    } else {
        Box::new(counted)
    };
    let mut reader = ReaderBuilder::new()
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let header = reader.byte_headers().map_err(|e| csv_error(path, e))?;
    let names = crate::files::csv_header_names(header);
    let columns = ColumnMap::from_names(path, names)?;
    let mut record = ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        append_record(&record, &columns, slices).map_err(|e| {
            let line = record.position().map(|p| p.line());
            located(path, &columns, RowAt::Line(line), e)
        })?;
    }
    Ok(())
}

/// Maps one record to a canonical row and appends it.
fn append_record(
    record: &ByteRecord,
    columns: &ColumnMap,
    slices: &mut Slices,
) -> Result<(), AppendError> {
    let line_item_type = required(record, columns.line_item_type, cur::LINE_ITEM_TYPE)?;
    let billed_cost = money(record, Some(columns.unblended_cost), cur::UNBLENDED_COST)?
        .ok_or_else(|| missing(cur::UNBLENDED_COST))?;
    let has_reservation_arn = optional(record, columns.ri_arn, cur::RI_ARN)?.is_some();
    let effective_cost = effective_cost(
        line_item_type,
        billed_cost,
        has_reservation_arn,
        &mut |which| {
            let index = match which {
                Amount::SpEffectiveCost => columns.sp_effective_cost,
                Amount::SpTotalCommitment => columns.sp_total_commitment,
                Amount::SpUsedCommitment => columns.sp_used_commitment,
                Amount::RiEffectiveCost => columns.ri_effective_cost,
                Amount::RiUnusedUpfront => columns.ri_unused_upfront,
                Amount::RiUnusedRecurring => columns.ri_unused_recurring,
            };
            money(record, index, which.column())
        },
    )?;
    let product_name = match optional(record, columns.product_name, cur::PRODUCT_NAME)? {
        Some(name) => Some(Cow::Borrowed(name)),
        None => match optional(record, columns.product_map, cur::PRODUCT_MAP)? {
            Some(json) => product_name_in(json)?,
            None => None,
        },
    };
    let cloud_service = match product_name.as_deref() {
        Some(name) => Some(name),
        None => match optional(record, columns.service_code, cur::SERVICE_CODE)? {
            Some(code) => Some(code),
            None => optional(record, columns.product_code, cur::PRODUCT_CODE)?,
        },
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let tags = match columns.tags_map {
        Some(index) => match optional(record, Some(index), cur::RESOURCE_TAGS)? {
            Some(json) => TagsInput::Json(json),
            None => TagsInput::Null,
        },
        None => {
            for (index, key) in &columns.tag_columns {
                if let Some(value) = optional(record, Some(*index), cur::RESOURCE_TAGS)? {
                    pairs.push((key.as_str(), value));
                }
            }
            if pairs.is_empty() {
                TagsInput::Null
            } else {
                TagsInput::Pairs(&pairs)
            }
        }
    };
    let row = CostRow {
        provider: PROVIDER,
        billing_account: required(record, columns.payer_account, cur::PAYER_ACCOUNT)?,
        billing_period_start: timestamp(
            record,
            columns.billing_period_start,
            cur::BILLING_PERIOD_START,
        )?,
        sub_account: optional(record, columns.usage_account, cur::USAGE_ACCOUNT)?,
        charge_period_start: timestamp(record, columns.usage_start, cur::USAGE_START)?,
        charge_period_end: timestamp(record, columns.usage_end, cur::USAGE_END)?,
        charge_category: charge_category(line_item_type),
        charge_class: None,
        cloud_service,
        service_category: None,
        region: optional(record, columns.region, cur::REGION_CODE)?,
        resource_id: optional(record, columns.resource_id, cur::RESOURCE_ID)?,
        resource_name: None,
        tags,
        billed_cost,
        effective_cost,
        list_cost: money(record, columns.list_cost, cur::PUBLIC_ON_DEMAND_COST)?,
        currency: required(record, columns.currency, cur::CURRENCY)?,
        usage_quantity: quantity(record, columns.usage_amount, cur::USAGE_AMOUNT)?,
        usage_unit: optional(record, columns.pricing_unit, cur::PRICING_UNIT)?,
    };
    slices.append(&row)
}

/// The `product_name` attribute of CUR 2.0's `product` column written as JSON text.
pub(super) fn product_name_in(json: &str) -> Result<Option<Cow<'_, str>>, AppendError> {
    #[derive(serde::Deserialize)]
    struct Product<'a> {
        #[serde(borrow, default)]
        product_name: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<Product<'_>>(json)
        .map(|p| p.product_name.filter(|n| !n.is_empty()))
        .map_err(|e| {
            AppendError::value(
                cur::PRODUCT_MAP,
                format!("expected a JSON object of product attributes: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_name_from_the_product_json() {
        assert_eq!(
            product_name_in(r#"{"sku": "X", "product_name": "Amazon EC2", "n": {"a": [1]}}"#)
                .unwrap()
                .as_deref(),
            Some("Amazon EC2")
        );
        assert_eq!(
            product_name_in(r#"{"product_name": "A \"quoted\" name"}"#)
                .unwrap()
                .as_deref(),
            Some("A \"quoted\" name")
        );
        assert_eq!(product_name_in("{}").unwrap(), None);
        assert!(product_name_in("{not json").is_err());
    }
}
