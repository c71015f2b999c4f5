//! AWS Cost Explorer GetCostAndUsage response pages, shaped like the documented responses
//! (`ResultsByTime` → `Groups` → `Keys` and `Metrics`, `NextPageToken`), from the ground truth's
//! AWS line items: DAILY, grouped by `TAG service` and `DIMENSION SERVICE`.
//!
//! A group is the sum of a day's AWS line items with one `service` tag value (`service$` when the
//! item has none: team-only, shared and untagged spend, and credits) and one cloud service (under
//! Cost Explorer's name for it). `UnblendedCost` is the items' BilledCost, `AmortizedCost` and
//! `NetAmortizedCost` their EffectiveCost. The most recent days are `Estimated`, and a restated
//! day (AWS revising an amount) is one option away, so tests can ingest a window twice.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::calendar::{civil_from_days, months};
use crate::costs::{self, Provider, Tags};
use crate::money::{Money, format_fixed};
use crate::org::Org;

/// What to write.
#[derive(Debug, Clone)]
pub struct CostExplorerOptions {
    /// First day (days since the epoch).
    pub from_day: i64,
    /// Day after the last.
    pub to_day_exclusive: i64,
    /// Days from this one on are `Estimated: true`.
    pub estimated_from_day: i64,
    /// Groups per page (a day's groups may continue on the next page, as AWS's do).
    pub groups_per_page: usize,
    /// Add this amount (units of 1e-10) to the first group of this day: a restatement.
    pub restate: Option<(i64, Money)>,
    /// Only this linked account's spend (the answer to a `LINKED_ACCOUNT` filter).
    pub linked_account: Option<String>,
}

/// One group of one day: what the pages state, for tests to compare the lake with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostExplorerGroup {
    /// Days since the epoch.
    pub day: i64,
    /// The `service` tag's value; `None` is the `service$` bucket.
    pub service_tag: Option<String>,
    /// Cost Explorer's `SERVICE` value.
    pub cloud_service: String,
    /// `UnblendedCost` (BilledCost), units of 1e-10.
    pub unblended: Money,
    /// `AmortizedCost` and `NetAmortizedCost` (EffectiveCost), units of 1e-10.
    pub amortized: Money,
    /// `Estimated`.
    pub estimated: bool,
}

/// Cost Explorer's `SERVICE` names for the FOCUS ServiceNames the generator uses.
pub fn cost_explorer_service_name(focus_name: &str) -> &str {
    match focus_name {
        "Amazon EC2" => "Amazon Elastic Compute Cloud - Compute",
        "Amazon RDS" => "Amazon Relational Database Service",
        "Amazon S3" => "Amazon Simple Storage Service",
        "Amazon CloudWatch" => "AmazonCloudWatch",
        other => other,
    }
}

/// The groups of every day in the window, by day, then tag value (untagged first), then service.
pub fn daily_groups(org: &Org, seed: u64, options: &CostExplorerOptions) -> Vec<CostExplorerGroup> {
    let mut sums: BTreeMap<(i64, Option<String>, String), (Money, Money)> = BTreeMap::new();
    let owners = costs::owners(org);
    for month in months() {
        if month.next_first_day <= options.from_day || month.first_day >= options.to_day_exclusive {
            continue;
        }
        for &owner in &owners {
            for line in costs::month_lines(org, owner, &month, seed) {
                if line.provider != Provider::Aws
                    || line.day < options.from_day
                    || line.day >= options.to_day_exclusive
                    || options
                        .linked_account
                        .as_ref()
                        .is_some_and(|account| *account != line.sub_account)
                {
                    continue;
                }
                let tag = match &line.tags {
                    Tags::Service { service, .. } => Some(service.clone()),
                    Tags::TeamOnly { .. } | Tags::Shared | Tags::Untagged => None,
                };
                let service = cost_explorer_service_name(line.service_name).to_owned();
                let entry = sums.entry((line.day, tag, service)).or_insert((0, 0));
                entry.0 += line.billed_cost;
                entry.1 += line.effective_cost;
            }
        }
    }
    let mut groups: Vec<CostExplorerGroup> = sums
        .into_iter()
        .map(
            |((day, service_tag, cloud_service), (unblended, amortized))| CostExplorerGroup {
                day,
                service_tag,
                cloud_service,
                unblended,
                amortized,
                estimated: day >= options.estimated_from_day,
            },
        )
        .collect();
    if let Some((day, delta)) = options.restate
        && let Some(group) = groups.iter_mut().find(|g| g.day == day)
    {
        group.unblended += delta;
        group.amortized += delta;
    }
    groups
}

fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn amount(value: Money) -> Value {
    json!({ "Amount": format_fixed(value, 10, 10), "Unit": "USD" })
}

/// The response pages for `groups`, in request order: every page but the last carries a
/// `NextPageToken`.
pub fn pages(groups: &[CostExplorerGroup], groups_per_page: usize) -> Vec<Value> {
    let chunks: Vec<&[CostExplorerGroup]> = groups.chunks(groups_per_page.max(1)).collect();
    let count = chunks.len().max(1);
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let chunk = chunks.get(index).copied().unwrap_or(&[]);
        let mut results: Vec<Value> = Vec::new();
        let mut current: Option<(i64, bool, Vec<Value>)> = None;
        for group in chunk {
            if current
                .as_ref()
                .is_some_and(|(day, _, _)| *day != group.day)
            {
                results.extend(current.take().map(result));
            }
            let entry = current.get_or_insert_with(|| (group.day, group.estimated, Vec::new()));
            entry.2.push(json!({
                "Keys": [
                    format!("service${}", group.service_tag.as_deref().unwrap_or("")),
                    group.cloud_service,
                ],
                "Metrics": {
                    "UnblendedCost": amount(group.unblended),
                    "AmortizedCost": amount(group.amortized),
                    "NetAmortizedCost": amount(group.amortized),
                },
            }));
        }
        results.extend(current.take().map(result));
        let mut page = json!({
            "GroupDefinitions": [
                { "Type": "TAG", "Key": "service" },
                { "Type": "DIMENSION", "Key": "SERVICE" },
            ],
            "ResultsByTime": results,
            "DimensionValueAttributes": [],
        });
        if index + 1 < count {
            page["NextPageToken"] = Value::String(format!("sample-page-{}", index + 2));
        }
        out.push(page);
    }
    out
}

fn result((day, estimated, groups): (i64, bool, Vec<Value>)) -> Value {
    json!({
        "TimePeriod": { "Start": date(day), "End": date(day + 1) },
        "Total": {},
        "Groups": groups,
        "Estimated": estimated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scale;
    use crate::calendar::days_from_civil;
    use crate::money::ONE;

    fn june_2026() -> CostExplorerOptions {
        CostExplorerOptions {
            from_day: days_from_civil(2026, 6, 1),
            to_day_exclusive: days_from_civil(2026, 7, 1),
            estimated_from_day: days_from_civil(2026, 6, 28),
            groups_per_page: 100,
            restate: None,
            linked_account: None,
        }
    }

    #[test]
    fn groups_sum_the_truths_aws_lines_and_pages_carry_them_all() {
        let org = Org::plan(Scale::Small);
        let options = june_2026();
        let groups = daily_groups(&org, crate::DEFAULT_SEED, &options);
        // The same month's AWS lines summed directly.
        let month = months()
            .into_iter()
            .find(|m| m.first_day == options.from_day)
            .unwrap();
        let mut billed = 0;
        for owner in costs::owners(&org) {
            for line in costs::month_lines(&org, owner, &month, crate::DEFAULT_SEED) {
                if line.provider == Provider::Aws {
                    billed += line.billed_cost;
                }
            }
        }
        assert_eq!(groups.iter().map(|g| g.unblended).sum::<Money>(), billed);
        assert!(
            groups.iter().any(|g| g.service_tag.is_none()),
            "an untagged bucket"
        );
        // 30 days, the last three (28, 29, 30 June) estimated.
        let estimated_days: std::collections::BTreeSet<i64> = groups
            .iter()
            .filter(|g| g.estimated)
            .map(|g| g.day)
            .collect();
        assert_eq!(estimated_days.len(), 3);

        let pages = pages(&groups, options.groups_per_page);
        assert!(pages.len() > 2, "several pages");
        let mut seen = 0;
        for (i, page) in pages.iter().enumerate() {
            assert_eq!(page.get("NextPageToken").is_some(), i + 1 < pages.len());
            for result in page["ResultsByTime"].as_array().unwrap() {
                seen += result["Groups"].as_array().unwrap().len();
            }
        }
        assert_eq!(seen, groups.len());
    }

    #[test]
    fn a_restatement_changes_one_group_of_its_day() {
        let org = Org::plan(Scale::Small);
        let before = daily_groups(&org, crate::DEFAULT_SEED, &june_2026());
        let day = days_from_civil(2026, 6, 15);
        let mut options = june_2026();
        options.restate = Some((day, 2 * ONE));
        let after = daily_groups(&org, crate::DEFAULT_SEED, &options);
        let changed: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        assert_eq!(changed.len(), 1);
        let i = changed[0];
        assert_eq!(after[i].day, day);
        assert_eq!(after[i].unblended - before[i].unblended, 2 * ONE);
    }

    #[test]
    fn linked_accounts_partition_the_bill() {
        let org = Org::plan(Scale::Small);
        let all = daily_groups(&org, crate::DEFAULT_SEED, &june_2026());
        let total: Money = all.iter().map(|g| g.unblended).sum();
        // The three teams' accounts and the platform account hold every AWS line.
        let mut parts = 0;
        for account in [
            "300000000000",
            "300000000001",
            "300000000002",
            "200000000001",
        ] {
            let mut options = june_2026();
            options.linked_account = Some(account.to_owned());
            let groups = daily_groups(&org, crate::DEFAULT_SEED, &options);
            assert!(!groups.is_empty(), "{account}");
            parts += groups.iter().map(|g| g.unblended).sum::<Money>();
        }
        assert_eq!(parts, total);
    }
}
