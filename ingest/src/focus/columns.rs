//! The FOCUS columns doracost reads, and where they sit in one file (CSV header or Parquet schema).
//!
//! Matching is exact FOCUS casing; columns we do not map (the sample's `Id`, `x_` extensions, …)
//! are ignored.

use std::path::Path;

use super::FocusDefaults;
use crate::error::IngestError;

/// `BilledCost`: what the invoice charges.
pub(super) const BILLED_COST: &str = "BilledCost";
/// `EffectiveCost`: cost after commitment amortisation.
pub(super) const EFFECTIVE_COST: &str = "EffectiveCost";
/// `ListCost`: cost at public list prices.
pub(super) const LIST_COST: &str = "ListCost";
/// `BillingAccountId`: the account the invoice is addressed to.
pub(super) const BILLING_ACCOUNT_ID: &str = "BillingAccountId";
/// `BillingCurrency`.
pub(super) const BILLING_CURRENCY: &str = "BillingCurrency";
/// `BillingPeriodStart`: its month is the invoice month.
pub(super) const BILLING_PERIOD_START: &str = "BillingPeriodStart";
/// `ChargePeriodStart`.
pub(super) const CHARGE_PERIOD_START: &str = "ChargePeriodStart";
/// `ChargePeriodEnd`.
pub(super) const CHARGE_PERIOD_END: &str = "ChargePeriodEnd";
/// `ChargeCategory`: Usage, Purchase, Tax, Credit, Adjustment.
pub(super) const CHARGE_CATEGORY: &str = "ChargeCategory";
/// `ChargeClass`: null, or `Correction`.
pub(super) const CHARGE_CLASS: &str = "ChargeClass";
/// `ProviderName` (FOCUS 1.0–1.2).
pub(super) const PROVIDER_NAME: &str = "ProviderName";
/// `ServiceProviderName` (FOCUS 1.3's successor of `ProviderName`).
pub(super) const SERVICE_PROVIDER_NAME: &str = "ServiceProviderName";
/// `SubAccountId`.
pub(super) const SUB_ACCOUNT_ID: &str = "SubAccountId";
/// `ServiceName`, e.g. "Amazon EC2".
pub(super) const SERVICE_NAME: &str = "ServiceName";
/// `ServiceCategory`, e.g. "Compute".
pub(super) const SERVICE_CATEGORY: &str = "ServiceCategory";
/// `RegionId`.
pub(super) const REGION_ID: &str = "RegionId";
/// `ResourceId`.
pub(super) const RESOURCE_ID: &str = "ResourceId";
/// `ResourceName`.
pub(super) const RESOURCE_NAME: &str = "ResourceName";
/// `Tags`: a JSON object (CSV) or a map (Parquet).
pub(super) const TAGS: &str = "Tags";
/// `ConsumedQuantity`.
pub(super) const CONSUMED_QUANTITY: &str = "ConsumedQuantity";
/// `ConsumedUnit`.
pub(super) const CONSUMED_UNIT: &str = "ConsumedUnit";

/// Positions of the mapped columns in one file; required ones are always present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnMap {
    pub billed_cost: usize,
    pub effective_cost: usize,
    /// `BillingAccountId`; absent only when a default is given.
    pub billing_account: Option<usize>,
    /// `BillingCurrency`; absent only when a default is given.
    pub currency: Option<usize>,
    pub billing_period_start: usize,
    pub charge_period_start: usize,
    pub charge_period_end: usize,
    pub charge_category: usize,
    /// `ProviderName`; at least one of this and `service_provider` is present, unless a default
    /// provider is given.
    pub provider: Option<usize>,
    /// `ServiceProviderName`, used where `ProviderName` is absent or null.
    pub service_provider: Option<usize>,
    pub list_cost: Option<usize>,
    pub sub_account: Option<usize>,
    pub charge_class: Option<usize>,
    pub cloud_service: Option<usize>,
    pub service_category: Option<usize>,
    pub region: Option<usize>,
    pub resource_id: Option<usize>,
    pub resource_name: Option<usize>,
    pub tags: Option<usize>,
    pub usage_quantity: Option<usize>,
    pub usage_unit: Option<usize>,
}

impl ColumnMap {
    /// Maps the columns of a file from its column names, in file order.
    ///
    /// A missing required column is an error naming the file and the column (the first missing
    /// one as the column, every missing one in the message, so one run shows them all).
    /// Columns that `defaults` fills in are not required.
    pub fn from_names<'a>(
        path: &Path,
        names: impl IntoIterator<Item = &'a str>,
        defaults: &FocusDefaults,
    ) -> Result<Self, IngestError> {
        let names: Vec<&str> = names.into_iter().collect();
        // The first column of that name wins, should a file repeat one.
        let find = |name: &str| names.iter().position(|n| *n == name);
        let mut missing: Vec<&str> = Vec::new();
        let mut required = |name: &'static str| {
            let found = find(name);
            if found.is_none() {
                missing.push(name);
            }
            found.unwrap_or(usize::MAX)
        };
        let billed_cost = required(BILLED_COST);
        let effective_cost = required(EFFECTIVE_COST);
        let billing_account = match &defaults.billing_account {
            Some(_) => find(BILLING_ACCOUNT_ID),
            None => Some(required(BILLING_ACCOUNT_ID)),
        };
        let currency = match &defaults.currency {
            Some(_) => find(BILLING_CURRENCY),
            None => Some(required(BILLING_CURRENCY)),
        };
        let billing_period_start = required(BILLING_PERIOD_START);
        let charge_period_start = required(CHARGE_PERIOD_START);
        let charge_period_end = required(CHARGE_PERIOD_END);
        let charge_category = required(CHARGE_CATEGORY);
        let provider = find(PROVIDER_NAME);
        let service_provider = find(SERVICE_PROVIDER_NAME);
        if provider.is_none() && service_provider.is_none() && defaults.provider.is_none() {
            missing.push(PROVIDER_NAME);
        }
        if let Some(first) = missing.first() {
            let list = missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut message = if missing.len() == 1 {
                "required FOCUS column is missing from the header".to_owned()
            } else {
                format!("required FOCUS columns are missing from the header: {list}")
            };
            if missing
                .iter()
                .any(|m| [BILLING_ACCOUNT_ID, BILLING_CURRENCY, PROVIDER_NAME].contains(m))
            {
                // The FOCUS specification's example ledgers leave these out.
                message.push_str(
                    " (a file without BillingAccountId, BillingCurrency or ProviderName can be read \
                     with defaults: `doracost ingest focus --default-billing-account ID \
                     --default-currency CODE --default-provider NAME`)",
                );
            }
            return Err(IngestError::invalid(path, None, Some(first), message));
        }
        Ok(ColumnMap {
            billed_cost,
            effective_cost,
            billing_account,
            currency,
            billing_period_start,
            charge_period_start,
            charge_period_end,
            charge_category,
            provider,
            service_provider,
            list_cost: find(LIST_COST),
            sub_account: find(SUB_ACCOUNT_ID),
            charge_class: find(CHARGE_CLASS),
            cloud_service: find(SERVICE_NAME),
            service_category: find(SERVICE_CATEGORY),
            region: find(REGION_ID),
            resource_id: find(RESOURCE_ID),
            resource_name: find(RESOURCE_NAME),
            tags: find(TAGS),
            usage_quantity: find(CONSUMED_QUANTITY),
            usage_unit: find(CONSUMED_UNIT),
        })
    }

    /// The name of the provider column present (for messages about a null provider).
    pub fn provider_column(&self) -> &'static str {
        if self.provider.is_some() {
            PROVIDER_NAME
        } else {
            SERVICE_PROVIDER_NAME
        }
    }

    /// Every mapped position, for projecting a Parquet file onto what we read.
    pub fn positions(&self) -> Vec<usize> {
        let mut all = vec![
            self.billed_cost,
            self.effective_cost,
            self.billing_period_start,
            self.charge_period_start,
            self.charge_period_end,
            self.charge_category,
        ];
        all.extend(
            [
                self.billing_account,
                self.currency,
                self.provider,
                self.service_provider,
                self.list_cost,
                self.sub_account,
                self.charge_class,
                self.cloud_service,
                self.service_category,
                self.region,
                self.resource_id,
                self.resource_name,
                self.tags,
                self.usage_quantity,
                self.usage_unit,
            ]
            .into_iter()
            .flatten(),
        );
        all.sort_unstable();
        all.dedup();
        all
    }
}
