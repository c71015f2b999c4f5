//! FOCUS 1.0 CSV bills, one file per month: `YYYY-MM-DDTHH:MM:SSZ` timestamps, costs as exact
//! decimal strings, Tags as a JSON object string, nulls as empty cells.

use std::path::{Path, PathBuf};

use crate::GenerateError;
use crate::calendar::{DAY, Month, format_timestamp};
use crate::costs::{CostLine, Tags};
use crate::money::{format_fixed, format_money};

/// FOCUS column names, in file order.
pub const COLUMNS: [&str; 24] = [
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeFrequency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ProviderName",
    "ServiceCategory",
    "ServiceName",
    "RegionId",
    "ResourceId",
    "SubAccountId",
    "PricingCategory",
    "CommitmentDiscountId",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ListUnitPrice",
    "ListCost",
    "BilledCost",
    "EffectiveCost",
    "Tags",
];

/// The Tags cell: a JSON object, or empty when untagged.
pub fn tags_json(tags: &Tags) -> String {
    match tags {
        Tags::Service { service, team } => format!(r#"{{"service":"{service}","team":"{team}"}}"#),
        Tags::TeamOnly { team } => format!(r#"{{"team":"{team}"}}"#),
        Tags::Shared => r#"{"shared":"platform"}"#.to_string(),
        Tags::Untagged => String::new(),
    }
}

/// One month's FOCUS file.
pub struct FocusMonthFile {
    path: PathBuf,
    writer: csv::Writer<std::io::BufWriter<std::fs::File>>,
    billing_period: (String, String),
}

impl FocusMonthFile {
    /// Creates `costs/focus-YYYY-MM.csv` under `out_dir` and writes the header.
    pub fn create(out_dir: &Path, month: &Month) -> Result<Self, GenerateError> {
        let dir = out_dir.join("costs");
        std::fs::create_dir_all(&dir).map_err(|source| GenerateError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("focus-{}.csv", month.key()));
        let file = std::fs::File::create(&path).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?;
        let mut writer = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 16, file));
        writer
            .write_record(COLUMNS)
            .map_err(|source| GenerateError::Csv {
                path: path.clone(),
                source,
            })?;
        let billing_period = (
            format_timestamp(month.first_day * DAY),
            format_timestamp(month.next_first_day * DAY),
        );
        Ok(FocusMonthFile {
            path,
            writer,
            billing_period,
        })
    }

    /// Writes one line item.
    pub fn write_line(&mut self, line: &CostLine) -> Result<(), GenerateError> {
        let record: [String; 24] = [
            line.billing_account.to_string(),
            "USD".to_string(),
            self.billing_period.0.clone(),
            self.billing_period.1.clone(),
            if line.is_credit { "Credit" } else { "Usage" }.to_string(),
            String::new(),
            if line.is_credit {
                "One-Time"
            } else {
                "Usage-Based"
            }
            .to_string(),
            format_timestamp(line.day * DAY),
            format_timestamp((line.day + 1) * DAY),
            line.provider.name().to_string(),
            line.service_category.to_string(),
            line.service_name.to_string(),
            line.region.to_string(),
            line.resource_id.clone().unwrap_or_default(),
            line.sub_account.clone(),
            line.pricing_category.unwrap_or_default().to_string(),
            line.commitment_discount_id.unwrap_or_default().to_string(),
            line.quantity_milli
                .map(|q| format_fixed(i128::from(q), 3, 0))
                .unwrap_or_default(),
            line.unit.unwrap_or_default().to_string(),
            line.list_unit_price_e7
                .map(|p| format_fixed(i128::from(p), 7, 0))
                .unwrap_or_default(),
            format_money(line.list_cost),
            format_money(line.billed_cost),
            format_money(line.effective_cost),
            tags_json(&line.tags),
        ];
        self.writer
            .write_record(&record)
            .map_err(|source| GenerateError::Csv {
                path: self.path.clone(),
                source,
            })
    }

    /// Flushes and closes, returning the path.
    pub fn finish(mut self) -> Result<PathBuf, GenerateError> {
        self.writer.flush().map_err(|source| GenerateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.path)
    }
}
