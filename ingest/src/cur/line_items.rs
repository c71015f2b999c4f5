//! What a CUR line item means in FOCUS terms: its charge category, and its effective (amortised)
//! cost.
//!
//! Effective cost follows AWS's amortised-cost definition (the CUR query library's
//! `amortized_cost`, which AWS's FOCUS export carries as EffectiveCost):
//!
//! | `line_item_line_item_type` | effective cost |
//! |---|---|
//! | `SavingsPlanCoveredUsage` | `savings_plan_savings_plan_effective_cost` |
//! | `SavingsPlanNegation`, `SavingsPlanUpfrontFee` | 0 (the plan's cost lives in covered usage) |
//! | `SavingsPlanRecurringFee` | `savings_plan_total_commitment_to_date − savings_plan_used_commitment` (the unused part) |
//! | `DiscountedUsage` | `reservation_effective_cost` |
//! | `RIFee` | `reservation_unused_amortized_upfront_fee_for_billing_period + reservation_unused_recurring_fee` |
//! | `Fee` with a reservation ARN (an RI's upfront fee) | 0 |
//! | anything else | `line_item_unblended_cost` |
//!
//! Billed cost is always `line_item_unblended_cost`, so a covered hour and its
//! `SavingsPlanNegation` net to 0 billed, as FOCUS's single covered-usage row does.

use super::columns as cur;
use crate::focus::slices::AppendError;

/// The amounts the effective-cost rule may need beyond the unblended cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Amount {
    SpEffectiveCost,
    SpTotalCommitment,
    SpUsedCommitment,
    RiEffectiveCost,
    RiUnusedUpfront,
    RiUnusedRecurring,
}

impl Amount {
    /// The snake_case column holding it.
    pub fn column(self) -> &'static str {
        match self {
            Amount::SpEffectiveCost => cur::SP_EFFECTIVE_COST,
            Amount::SpTotalCommitment => cur::SP_TOTAL_COMMITMENT,
            Amount::SpUsedCommitment => cur::SP_USED_COMMITMENT,
            Amount::RiEffectiveCost => cur::RI_EFFECTIVE_COST,
            Amount::RiUnusedUpfront => cur::RI_UNUSED_UPFRONT,
            Amount::RiUnusedRecurring => cur::RI_UNUSED_RECURRING,
        }
    }
}

/// The FOCUS ChargeCategory of a line item type.
///
/// Unknown types (AWS adds some now and then) are `Adjustment` rather than an error, so a new
/// type does not block a whole bill; their cost is kept as billed.
pub(super) fn charge_category(line_item_type: &str) -> &'static str {
    match line_item_type {
        "Usage" | "DiscountedUsage" | "SavingsPlanCoveredUsage" | "SavingsPlanNegation" => "Usage",
        "Fee" | "RIFee" | "SavingsPlanUpfrontFee" | "SavingsPlanRecurringFee" => "Purchase",
        "Tax" => "Tax",
        "Credit"
        | "Refund"
        | "Discount"
        | "BundledDiscount"
        | "EdpDiscount"
        | "PrivateRateDiscount"
        | "DistributorDiscount" => "Credit",
        _ => "Adjustment",
    }
}

/// The effective cost of a line item of `line_item_type` whose unblended cost is `unblended`;
/// `amount` reads the other amounts the rule needs (only those, so a file without savings plan
/// columns reads fine as long as it has no savings plan rows).
pub(super) fn effective_cost(
    line_item_type: &str,
    unblended: i128,
    has_reservation_arn: bool,
    amount: &mut dyn FnMut(Amount) -> Result<Option<i128>, AppendError>,
) -> Result<i128, AppendError> {
    let mut needed = |which: Amount| -> Result<i128, AppendError> {
        amount(which)?.ok_or_else(|| {
            AppendError::value(
                which.column(),
                format!(
                    "a value is required on a {line_item_type} line item (its effective cost is \
                     computed from it), found an empty cell, a null or no such column"
                ),
            )
        })
    };
    let overflow = || {
        AppendError::value(
            cur::UNBLENDED_COST,
            "the effective cost is out of the range of Decimal128(38, 12)",
        )
    };
    Ok(match line_item_type {
        "SavingsPlanCoveredUsage" => needed(Amount::SpEffectiveCost)?,
        "SavingsPlanNegation" | "SavingsPlanUpfrontFee" => 0,
        "SavingsPlanRecurringFee" => needed(Amount::SpTotalCommitment)?
            .checked_sub(needed(Amount::SpUsedCommitment)?)
            .ok_or_else(overflow)?,
        "DiscountedUsage" => needed(Amount::RiEffectiveCost)?,
        "RIFee" => needed(Amount::RiUnusedUpfront)?
            .checked_add(needed(Amount::RiUnusedRecurring)?)
            .ok_or_else(overflow)?,
        "Fee" if has_reservation_arn => 0,
        _ => unblended,
    })
}

/// Tag keys as stored: user-defined tags lose their `user:` (legacy, CUR 2.0 JSON) or `user_`
/// (CUR 2.0 map, legacy Parquet) prefix, as in AWS's FOCUS export; AWS-generated tags keep
/// theirs (`aws:createdBy`).
pub(super) fn tag_key(key: &str) -> &str {
    key.strip_prefix("user:")
        .or_else(|| key.strip_prefix("user_"))
        .filter(|k| !k.is_empty())
        .unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10^-12 units.
    const ONE: i128 = 1_000_000_000_000;

    fn amounts(which: Amount) -> Result<Option<i128>, AppendError> {
        Ok(match which {
            Amount::SpEffectiveCost => Some(7 * ONE / 10), // 0.70
            Amount::SpTotalCommitment => Some(100 * ONE),  // 100.00
            Amount::SpUsedCommitment => Some(80 * ONE),    // 80.00
            Amount::RiEffectiveCost => Some(6 * ONE / 10), // 0.60
            Amount::RiUnusedUpfront => Some(5 * ONE),      // 5.00
            Amount::RiUnusedRecurring => Some(ONE / 4),    // 0.25
        })
    }

    #[test]
    fn effective_cost_follows_the_amortised_cost_rules() {
        let unblended = ONE; // 1.00 on demand
        let effective =
            |t: &str, arn: bool| effective_cost(t, unblended, arn, &mut amounts).unwrap();
        assert_eq!(effective("Usage", false), ONE);
        assert_eq!(effective("SavingsPlanCoveredUsage", false), 7 * ONE / 10);
        assert_eq!(effective("SavingsPlanNegation", false), 0);
        assert_eq!(effective("SavingsPlanUpfrontFee", false), 0);
        // Unused commitment: 100.00 − 80.00 = 20.00.
        assert_eq!(effective("SavingsPlanRecurringFee", false), 20 * ONE);
        assert_eq!(effective("DiscountedUsage", false), 6 * ONE / 10);
        // Unused reservation: 5.00 + 0.25 = 5.25.
        assert_eq!(effective("RIFee", false), 21 * ONE / 4);
        assert_eq!(effective("Fee", true), 0);
        assert_eq!(effective("Fee", false), ONE);
        assert_eq!(effective("Tax", false), ONE);
    }

    #[test]
    fn a_needed_amount_that_is_missing_is_an_error_naming_its_column() {
        let error =
            effective_cost("SavingsPlanCoveredUsage", ONE, false, &mut |_| Ok(None)).unwrap_err();
        match error {
            AppendError::Value { column, message } => {
                assert_eq!(column, cur::SP_EFFECTIVE_COST);
                assert!(message.contains("SavingsPlanCoveredUsage"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Plain usage never asks.
        assert_eq!(
            effective_cost("Usage", ONE, false, &mut |_| panic!("asked")).unwrap(),
            ONE
        );
    }

    #[test]
    fn categories_and_tag_keys() {
        assert_eq!(charge_category("SavingsPlanCoveredUsage"), "Usage");
        assert_eq!(charge_category("RIFee"), "Purchase");
        assert_eq!(charge_category("Tax"), "Tax");
        assert_eq!(charge_category("Credit"), "Credit");
        assert_eq!(charge_category("SomethingNew"), "Adjustment");
        assert_eq!(tag_key("user:service"), "service");
        assert_eq!(tag_key("user_service"), "service");
        assert_eq!(tag_key("aws:createdBy"), "aws:createdBy");
        assert_eq!(tag_key("user:"), "user:");
        assert_eq!(tag_key(" org"), " org");
    }
}
