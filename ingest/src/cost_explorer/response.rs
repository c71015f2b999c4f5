//! GetCostAndUsage responses in the API's own JSON shape (the service model's member names), read
//! from the SDK's output or from a file, so that the mapping to rows is one function tested on
//! the documented examples as they are.

use std::collections::BTreeMap;

use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
use serde::Deserialize;

/// One GetCostAndUsage response page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CostAndUsagePage {
    /// What each group's `Keys` are, in order; absent when the page has no groups.
    #[serde(default)]
    pub group_definitions: Vec<GroupDefinition>,
    /// One entry per day (DAILY granularity).
    #[serde(default)]
    pub results_by_time: Vec<ResultByTime>,
    /// The token of the next page; absent on the last.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A `GroupBy` entry: `TAG` with a tag key, or `DIMENSION` with a dimension name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupDefinition {
    /// `TAG`, `DIMENSION` or `COST_CATEGORY`.
    #[serde(default)]
    pub r#type: Option<String>,
    /// The tag key or dimension name.
    #[serde(default)]
    pub key: Option<String>,
}

/// One time period of a page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultByTime {
    /// The period, `Start` inclusive and `End` exclusive (`YYYY-MM-DD`).
    #[serde(default)]
    pub time_period: Option<DateInterval>,
    /// The groups of the period.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Whether AWS may still restate the period's amounts.
    #[serde(default)]
    pub estimated: bool,
}

/// A time period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DateInterval {
    /// First day.
    pub start: String,
    /// Day after the last.
    pub end: String,
}

/// One group: its keys (one per group definition) and its metrics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    /// `key$value` for a tag, the dimension's value for a dimension.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Metric name → amount and unit.
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricValue>,
}

/// An amount as decimal text, and its unit (the currency for cost metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricValue {
    /// Decimal text, e.g. `0.0000000123`.
    #[serde(default)]
    pub amount: Option<String>,
    /// e.g. `USD`.
    #[serde(default)]
    pub unit: Option<String>,
}

impl From<&GetCostAndUsageOutput> for CostAndUsagePage {
    fn from(output: &GetCostAndUsageOutput) -> Self {
        let metrics = |m: Option<
            &std::collections::HashMap<String, aws_sdk_costexplorer::types::MetricValue>,
        >| {
            m.map(|m| {
                m.iter()
                    .map(|(name, value)| {
                        (
                            name.clone(),
                            MetricValue {
                                amount: value.amount().map(str::to_owned),
                                unit: value.unit().map(str::to_owned),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        CostAndUsagePage {
            group_definitions: output
                .group_definitions()
                .iter()
                .map(|d| GroupDefinition {
                    r#type: d.r#type().map(|t| t.as_str().to_owned()),
                    key: d.key().map(str::to_owned),
                })
                .collect(),
            results_by_time: output
                .results_by_time()
                .iter()
                .map(|r| ResultByTime {
                    time_period: r.time_period().map(|p| DateInterval {
                        start: p.start().to_owned(),
                        end: p.end().to_owned(),
                    }),
                    groups: r
                        .groups()
                        .iter()
                        .map(|g| Group {
                            keys: g.keys().to_vec(),
                            metrics: metrics(g.metrics()),
                        })
                        .collect(),
                    estimated: r.estimated(),
                })
                .collect(),
            next_page_token: output.next_page_token().map(str::to_owned),
        }
    }
}
