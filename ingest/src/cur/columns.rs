//! The CUR columns doracost reads, and where they sit in one file.
//!
//! CUR 2.0 names columns in snake_case (`line_item_unblended_cost`); legacy CUR writes
//! `category/CamelCase` (`lineItem/UnblendedCost`). Legacy names are converted the way AWS's own
//! Athena integration converts them (`lineItem/UnblendedCost` → `line_item_unblended_cost`,
//! `reservation/ReservationARN` → `reservation_reservation_a_r_n`), so one map serves both, while
//! errors name the column as the file writes it.

use std::path::Path;

use crate::error::IngestError;

/// `line_item_unblended_cost`: what the invoice charges (FOCUS BilledCost).
pub(super) const UNBLENDED_COST: &str = "line_item_unblended_cost";
/// `line_item_usage_start_date`.
pub(super) const USAGE_START: &str = "line_item_usage_start_date";
/// `line_item_usage_end_date`.
pub(super) const USAGE_END: &str = "line_item_usage_end_date";
/// `line_item_line_item_type`: Usage, SavingsPlanCoveredUsage, RIFee, Tax, Credit, …
pub(super) const LINE_ITEM_TYPE: &str = "line_item_line_item_type";
/// `bill_payer_account_id`: the account the invoice goes to.
pub(super) const PAYER_ACCOUNT: &str = "bill_payer_account_id";
/// `bill_billing_period_start_date`: its month is the invoice month.
pub(super) const BILLING_PERIOD_START: &str = "bill_billing_period_start_date";
/// `line_item_currency_code`.
pub(super) const CURRENCY: &str = "line_item_currency_code";
/// `line_item_usage_account_id`.
pub(super) const USAGE_ACCOUNT: &str = "line_item_usage_account_id";
/// `product_product_name` (legacy `product/ProductName`), e.g. "Amazon Elastic Compute Cloud".
pub(super) const PRODUCT_NAME: &str = "product_product_name";
/// `product`: CUR 2.0's map of product attributes; its `product_name` key is the service name.
pub(super) const PRODUCT_MAP: &str = "product";
/// `product_servicecode`, e.g. "AmazonEC2".
pub(super) const SERVICE_CODE: &str = "product_servicecode";
/// `line_item_product_code`, e.g. "AmazonEC2".
pub(super) const PRODUCT_CODE: &str = "line_item_product_code";
/// `product_region_code`, e.g. "us-east-1".
pub(super) const REGION_CODE: &str = "product_region_code";
/// `line_item_resource_id`.
pub(super) const RESOURCE_ID: &str = "line_item_resource_id";
/// `pricing_public_on_demand_cost` (FOCUS ListCost).
pub(super) const PUBLIC_ON_DEMAND_COST: &str = "pricing_public_on_demand_cost";
/// `savings_plan_savings_plan_effective_cost`: a covered usage's share of the plan.
pub(super) const SP_EFFECTIVE_COST: &str = "savings_plan_savings_plan_effective_cost";
/// `savings_plan_total_commitment_to_date`.
pub(super) const SP_TOTAL_COMMITMENT: &str = "savings_plan_total_commitment_to_date";
/// `savings_plan_used_commitment`.
pub(super) const SP_USED_COMMITMENT: &str = "savings_plan_used_commitment";
/// `reservation_effective_cost`: a reserved usage's share of the reservation.
pub(super) const RI_EFFECTIVE_COST: &str = "reservation_effective_cost";
/// `reservation_unused_amortized_upfront_fee_for_billing_period`.
pub(super) const RI_UNUSED_UPFRONT: &str =
    "reservation_unused_amortized_upfront_fee_for_billing_period";
/// `reservation_unused_recurring_fee`.
pub(super) const RI_UNUSED_RECURRING: &str = "reservation_unused_recurring_fee";
/// `reservation_reservation_a_r_n` (legacy `reservation/ReservationARN`).
pub(super) const RI_ARN: &str = "reservation_reservation_a_r_n";
/// `line_item_usage_amount`.
pub(super) const USAGE_AMOUNT: &str = "line_item_usage_amount";
/// `pricing_unit`.
pub(super) const PRICING_UNIT: &str = "pricing_unit";
/// `resource_tags`: CUR 2.0's map of tags (a map in Parquet, JSON text in CSV).
pub(super) const RESOURCE_TAGS: &str = "resource_tags";

/// Legacy per-tag columns: `resourceTags/user:service` (CSV) or `resource_tags_user_service`
/// (legacy Parquet as Athena names it); what follows the prefix is the tag key.
const TAG_COLUMN_PREFIXES: [&str; 2] = ["resourceTags/", "resource_tags_"];

/// A CUR header name in snake_case: CUR 2.0 names are returned as they are, legacy
/// `category/CamelCase` names converted the way AWS's Athena integration converts them.
pub(super) fn snake_case(name: &str) -> String {
    if !name.contains('/') {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for (i, segment) in name.split('/').enumerate() {
        if i > 0 {
            out.push('_');
        }
        for (j, c) in segment.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if j > 0 && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Positions of the mapped columns in one file; required ones are always present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnMap {
    /// The file's own column names, in file order (for messages).
    names: Vec<String>,
    /// The same, in snake_case.
    snake: Vec<String>,
    pub unblended_cost: usize,
    pub usage_start: usize,
    pub usage_end: usize,
    pub line_item_type: usize,
    pub payer_account: usize,
    pub billing_period_start: usize,
    pub currency: usize,
    pub usage_account: Option<usize>,
    pub product_name: Option<usize>,
    pub product_map: Option<usize>,
    pub service_code: Option<usize>,
    pub product_code: Option<usize>,
    pub region: Option<usize>,
    pub resource_id: Option<usize>,
    pub list_cost: Option<usize>,
    pub sp_effective_cost: Option<usize>,
    pub sp_total_commitment: Option<usize>,
    pub sp_used_commitment: Option<usize>,
    pub ri_effective_cost: Option<usize>,
    pub ri_unused_upfront: Option<usize>,
    pub ri_unused_recurring: Option<usize>,
    pub ri_arn: Option<usize>,
    pub usage_amount: Option<usize>,
    pub pricing_unit: Option<usize>,
    /// `resource_tags` (CUR 2.0).
    pub tags_map: Option<usize>,
    /// Legacy tag columns: position and the tag key as written (`user:service`).
    pub tag_columns: Vec<(usize, String)>,
}

impl ColumnMap {
    /// Maps the columns of a file from its column names, in file order.
    ///
    /// A missing required column is an error naming the file and the column (the first missing
    /// one as the column, every missing one in the message).
    pub fn from_names<'a>(
        path: &Path,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, IngestError> {
        let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        let snake: Vec<String> = names.iter().map(|n| snake_case(n)).collect();
        let legacy = names.iter().any(|n| n.contains('/'));
        // The first column of that name wins, should a file repeat one.
        let find = |name: &str| snake.iter().position(|n| n == name);
        let mut missing: Vec<&str> = Vec::new();
        let mut required = |name: &'static str| {
            let found = find(name);
            if found.is_none() {
                missing.push(name);
            }
            found.unwrap_or(usize::MAX)
        };
        let unblended_cost = required(UNBLENDED_COST);
        let usage_start = required(USAGE_START);
        let usage_end = required(USAGE_END);
        let line_item_type = required(LINE_ITEM_TYPE);
        let payer_account = required(PAYER_ACCOUNT);
        let billing_period_start = required(BILLING_PERIOD_START);
        let currency = required(CURRENCY);
        if let Some(first) = missing.first() {
            // Name the column the way this file's dialect would have written it.
            let spell = |m: &str| {
                if legacy { legacy_name(m) } else { m.to_owned() }
            };
            let list = missing
                .iter()
                .map(|m| format!("`{}`", spell(m)))
                .collect::<Vec<_>>()
                .join(", ");
            let message = if missing.len() == 1 {
                "required CUR column is missing from the header".to_owned()
            } else {
                format!("required CUR columns are missing from the header: {list}")
            };
            return Err(IngestError::invalid(
                path,
                None,
                Some(&spell(first)),
                message,
            ));
        }
        let tag_columns = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                TAG_COLUMN_PREFIXES
                    .iter()
                    .find_map(|prefix| name.strip_prefix(prefix))
                    .filter(|key| !key.is_empty())
                    .map(|key| (i, key.to_owned()))
            })
            .collect();
        Ok(ColumnMap {
            unblended_cost,
            usage_start,
            usage_end,
            line_item_type,
            payer_account,
            billing_period_start,
            currency,
            usage_account: find(USAGE_ACCOUNT),
            product_name: find(PRODUCT_NAME),
            product_map: find(PRODUCT_MAP),
            service_code: find(SERVICE_CODE),
            product_code: find(PRODUCT_CODE),
            region: find(REGION_CODE),
            resource_id: find(RESOURCE_ID),
            list_cost: find(PUBLIC_ON_DEMAND_COST),
            sp_effective_cost: find(SP_EFFECTIVE_COST),
            sp_total_commitment: find(SP_TOTAL_COMMITMENT),
            sp_used_commitment: find(SP_USED_COMMITMENT),
            ri_effective_cost: find(RI_EFFECTIVE_COST),
            ri_unused_upfront: find(RI_UNUSED_UPFRONT),
            ri_unused_recurring: find(RI_UNUSED_RECURRING),
            ri_arn: find(RI_ARN),
            usage_amount: find(USAGE_AMOUNT),
            pricing_unit: find(PRICING_UNIT),
            tags_map: find(RESOURCE_TAGS),
            tag_columns,
            names,
            snake,
        })
    }

    /// The column `snake` (one of this module's constants) as this file writes it.
    pub fn file_name(&self, snake: &str) -> String {
        match self.snake.iter().position(|n| n == snake) {
            Some(i) => self.names[i].clone(),
            None if self.names.iter().any(|n| n.contains('/')) => legacy_name(snake),
            None => snake.to_owned(),
        }
    }

    /// Every mapped position, for projecting a Parquet file onto what we read.
    pub fn positions(&self) -> Vec<usize> {
        let mut all = vec![
            self.unblended_cost,
            self.usage_start,
            self.usage_end,
            self.line_item_type,
            self.payer_account,
            self.billing_period_start,
            self.currency,
        ];
        all.extend(
            [
                self.usage_account,
                self.product_name,
                self.product_map,
                self.service_code,
                self.product_code,
                self.region,
                self.resource_id,
                self.list_cost,
                self.sp_effective_cost,
                self.sp_total_commitment,
                self.sp_used_commitment,
                self.ri_effective_cost,
                self.ri_unused_upfront,
                self.ri_unused_recurring,
                self.ri_arn,
                self.usage_amount,
                self.pricing_unit,
                self.tags_map,
            ]
            .into_iter()
            .flatten(),
        );
        all.extend(self.tag_columns.iter().map(|(i, _)| *i));
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The legacy spelling of a snake_case column this module reads (for messages about a column a
/// legacy file lacks).
fn legacy_name(snake: &str) -> String {
    let known = [
        (UNBLENDED_COST, "lineItem/UnblendedCost"),
        (USAGE_START, "lineItem/UsageStartDate"),
        (USAGE_END, "lineItem/UsageEndDate"),
        (LINE_ITEM_TYPE, "lineItem/LineItemType"),
        (PAYER_ACCOUNT, "bill/PayerAccountId"),
        (BILLING_PERIOD_START, "bill/BillingPeriodStartDate"),
        (CURRENCY, "lineItem/CurrencyCode"),
        (SP_EFFECTIVE_COST, "savingsPlan/SavingsPlanEffectiveCost"),
        (SP_TOTAL_COMMITMENT, "savingsPlan/TotalCommitmentToDate"),
        (SP_USED_COMMITMENT, "savingsPlan/UsedCommitment"),
        (RI_EFFECTIVE_COST, "reservation/EffectiveCost"),
        (
            RI_UNUSED_UPFRONT,
            "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
        ),
        (RI_UNUSED_RECURRING, "reservation/UnusedRecurringFee"),
    ];
    known
        .iter()
        .find(|(s, _)| *s == snake)
        .map_or_else(|| snake.to_owned(), |(_, legacy)| (*legacy).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_become_the_snake_case_aws_uses() {
        for (legacy, snake) in [
            ("lineItem/UnblendedCost", UNBLENDED_COST),
            ("lineItem/UsageStartDate", USAGE_START),
            ("lineItem/LineItemType", LINE_ITEM_TYPE),
            ("bill/PayerAccountId", PAYER_ACCOUNT),
            ("bill/BillingPeriodStartDate", BILLING_PERIOD_START),
            ("product/ProductName", PRODUCT_NAME),
            ("product/servicecode", SERVICE_CODE),
            ("product/regionCode", REGION_CODE),
            ("pricing/publicOnDemandCost", PUBLIC_ON_DEMAND_COST),
            ("pricing/unit", PRICING_UNIT),
            ("savingsPlan/SavingsPlanEffectiveCost", SP_EFFECTIVE_COST),
            ("reservation/ReservationARN", RI_ARN),
            (
                "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
                RI_UNUSED_UPFRONT,
            ),
            ("line_item_unblended_cost", UNBLENDED_COST),
        ] {
            assert_eq!(snake_case(legacy), snake, "{legacy}");
        }
        for snake in [
            UNBLENDED_COST,
            USAGE_START,
            USAGE_END,
            LINE_ITEM_TYPE,
            PAYER_ACCOUNT,
            BILLING_PERIOD_START,
            CURRENCY,
            SP_EFFECTIVE_COST,
            RI_UNUSED_UPFRONT,
        ] {
            assert_eq!(snake_case(&legacy_name(snake)), snake);
        }
    }

    #[test]
    fn missing_columns_are_named_in_the_file_s_dialect() {
        let path = Path::new("bill.csv");
        let error = ColumnMap::from_names(
            path,
            [
                "lineItem/UsageStartDate",
                "lineItem/UsageEndDate",
                "lineItem/LineItemType",
                "bill/PayerAccountId",
                "bill/BillingPeriodStartDate",
                "lineItem/CurrencyCode",
            ],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "bill.csv: column `lineItem/UnblendedCost`: required CUR column is missing from the header"
        );
        let error = ColumnMap::from_names(path, ["line_item_usage_start_date"])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "bill.csv: column `line_item_unblended_cost`: required CUR columns are missing"
            ),
            "{error}"
        );
        assert!(error.contains("`line_item_currency_code`"), "{error}");
    }

    #[test]
    fn legacy_tag_columns_are_found() {
        let map = ColumnMap::from_names(
            Path::new("bill.csv"),
            [
                "lineItem/UnblendedCost",
                "resourceTags/user:service",
                "lineItem/UsageStartDate",
                "lineItem/UsageEndDate",
                "lineItem/LineItemType",
                "bill/PayerAccountId",
                "bill/BillingPeriodStartDate",
                "lineItem/CurrencyCode",
                "resourceTags/aws:createdBy",
            ],
        )
        .unwrap();
        assert_eq!(
            map.tag_columns,
            vec![
                (1, "user:service".to_owned()),
                (8, "aws:createdBy".to_owned())
            ]
        );
        assert_eq!(map.file_name(UNBLENDED_COST), "lineItem/UnblendedCost");
        assert_eq!(
            map.file_name(SP_EFFECTIVE_COST),
            "savingsPlan/SavingsPlanEffectiveCost"
        );
    }
}
