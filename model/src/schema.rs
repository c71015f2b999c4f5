//! The canonical Arrow schemas of the lake (DESIGN §3), in one place.
//!
//! Field names of nested types follow the Delta kernel's Arrow conversion (`element` for list items,
//! `key_value`/`key`/`value` for maps), so that what we write is exactly what the lake reads back.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Precision of every money column: `Decimal128(38, 12)` (DESIGN §3).
pub const MONEY_PRECISION: u8 = 38;
/// Scale of every money column; the FOCUS sample carries 11 decimals, so nothing is rounded.
pub const MONEY_SCALE: i8 = 12;

/// The canonical tables, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Deployments to any environment.
    Deployments,
    /// Commits (`repo:sha`), with their pull-request timeline.
    Changes,
    /// Which deployment shipped which change.
    DeploymentChanges,
    /// Incidents from incident tools or events.
    Incidents,
    /// Cost line items, FOCUS-aligned.
    Costs,
    /// Per-source cursors and the last outcome of each ingest.
    IngestState,
    /// Budget alerts and their delivery state.
    Alerts,
    /// A provider's own month-end cost forecasts (AWS Cost Explorer GetCostForecast).
    ProviderForecasts,
}

impl Table {
    /// Every table, in creation order.
    pub const ALL: [Table; 8] = [
        Table::Deployments,
        Table::Changes,
        Table::DeploymentChanges,
        Table::Incidents,
        Table::Costs,
        Table::IngestState,
        Table::Alerts,
        Table::ProviderForecasts,
    ];

    /// The table's name in the lake and in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::Deployments => "deployments",
            Table::Changes => "changes",
            Table::DeploymentChanges => "deployment_changes",
            Table::Incidents => "incidents",
            Table::Costs => "costs",
            Table::IngestState => "ingest_state",
            Table::Alerts => "alerts",
            Table::ProviderForecasts => "provider_forecasts",
        }
    }

    /// The columns that together identify a row (upserts match on them).
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Table::Deployments => &["deployment_id"],
            Table::Changes => &["change_id"],
            Table::DeploymentChanges => &["deployment_id", "change_id"],
            Table::Incidents => &["incident_id"],
            Table::Costs => &["cost_id"],
            Table::IngestState => &["source", "scope"],
            Table::Alerts => &["alert_key"],
            Table::ProviderForecasts => &["forecast_id"],
        }
    }

    /// The table's Arrow schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Deployments => deployments(),
            Table::Changes => changes(),
            Table::DeploymentChanges => deployment_changes(),
            Table::Incidents => incidents(),
            Table::Costs => costs(),
            Table::IngestState => ingest_state(),
            Table::Alerts => alerts(),
            Table::ProviderForecasts => provider_forecasts(),
        }
    }
}

impl std::str::FromStr for Table {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("no table named `{s}`"))
    }
}

/// `Timestamp(Microsecond, "UTC")`, the type of every timestamp.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `Decimal128(38, 12)`, the type of every money column.
pub fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

/// A list of strings, with the item field named as the Delta kernel names it.
pub fn string_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))
}

/// A string → string map (tags), with entry fields named as the Delta kernel names them.
pub fn string_map_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

fn money(name: &str) -> Field {
    Field::new(name, money_type(), true)
}

/// `source` and `ingested_at`, which every table carries.
fn provenance() -> [Field; 2] {
    [utf8("source", false), ts("ingested_at", false)]
}

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// `deployments`. Ours beyond DESIGN §3: `commits_listed`, true when the source listed the commits
/// the deployment shipped, false when it named only its head commit (lead-time coverage); and
/// `deployment_group`, the id of the one deployment a row is part of when its source made one row
/// per repo of a deployment across repos (a DevLake payload listing several repos' commits), null
/// otherwise: the views count the rows of one group as one deployment of each service (DESIGN §4).
/// It is last and nullable, so a table written before it existed gains it in place (see
/// [`crate::lake::missing_columns`]).
pub fn deployments() -> SchemaRef {
    let mut f = vec![utf8("deployment_id", false)];
    f.extend(provenance());
    f.extend([
        utf8("service", true),
        utf8("repo", true),
        utf8("environment", false),
        utf8("ref", true),
        utf8("commit_sha", true),
        ts("started_at", true),
        ts("finished_at", true),
        utf8("status", false),
        Field::new("is_rollback", DataType::Boolean, false),
        utf8("url", true),
        Field::new("commits_listed", DataType::Boolean, false),
        utf8("deployment_group", true),
    ]);
    schema(f)
}

/// `changes`, keyed `repo:sha`. `pr_head_branch` and `incident_refs` are ours: rework detection
/// (DESIGN §4) matches hotfix branch prefixes and incident references of the change's PR.
pub fn changes() -> SchemaRef {
    let mut f = vec![utf8("change_id", false)];
    f.extend(provenance());
    f.extend([
        utf8("service", true),
        utf8("repo", false),
        utf8("sha", false),
        ts("authored_at", true),
        ts("committed_at", true),
        Field::new("paths", string_list_type(), true),
        Field::new("pr_number", DataType::Int64, true),
        ts("pr_first_commit_at", true),
        ts("pr_opened_at", true),
        ts("pr_first_review_at", true),
        ts("pr_merged_at", true),
        utf8("pr_head_branch", true),
        Field::new("labels", string_list_type(), true),
        Field::new("incident_refs", string_list_type(), true),
    ]);
    schema(f)
}

/// `deployment_changes`: the changes a deployment's source says it shipped.
pub fn deployment_changes() -> SchemaRef {
    let mut f = vec![utf8("deployment_id", false), utf8("change_id", false)];
    f.extend(provenance());
    schema(f)
}

/// `incidents`. `caused_by_sha` is ours: DESIGN §4 lets an incident name its deployment by sha.
/// `acknowledged_at` is ours too: when someone first acknowledged it (PagerDuty's first
/// acknowledgement; null when the source does not say, as events do). It is last and nullable, so
/// a table written before it existed gains it in place (see [`crate::lake::missing_columns`]).
pub fn incidents() -> SchemaRef {
    let mut f = vec![utf8("incident_id", false)];
    f.extend(provenance());
    f.extend([
        utf8("service", true),
        utf8("title", true),
        utf8("severity", true),
        ts("started_at", false),
        ts("resolved_at", true),
        utf8("caused_by_deployment_id", true),
        utf8("caused_by_sha", true),
        utf8("url", true),
        ts("acknowledged_at", true),
    ]);
    schema(f)
}

/// `costs`, FOCUS-aligned. `slice` names the (source, billing account, invoice month) slice a row
/// belongs to: a re-ingested bill replaces its slice whole (DESIGN §3).
pub fn costs() -> SchemaRef {
    let mut f = vec![utf8("cost_id", false)];
    f.extend(provenance());
    f.extend([
        utf8("provider", false),
        utf8("billing_account", false),
        utf8("sub_account", true),
        ts("charge_period_start", false),
        ts("charge_period_end", false),
        utf8("charge_category", false),
        utf8("charge_class", true),
        utf8("cloud_service", true),
        utf8("service_category", true),
        utf8("region", true),
        utf8("resource_id", true),
        utf8("resource_name", true),
        Field::new("tags", string_map_type(), true),
        money("billed_cost"),
        money("effective_cost"),
        money("list_cost"),
        utf8("currency", false),
        Field::new("usage_quantity", DataType::Float64, true),
        utf8("usage_unit", true),
        utf8("invoice_month", false),
        Field::new("is_estimated", DataType::Boolean, false),
    ]);
    schema(f)
}

/// `provider_forecasts`: one row per (source, billing account, month, scope): the provider's
/// forecast of the cost from `period_start` to `period_end` (the rest of `month`), for the whole
/// bill (`tag_key` null) or for one tag value. Month-end = the month's cost before `period_start`
/// + `mean_value`.
pub fn provider_forecasts() -> SchemaRef {
    let mut f = vec![utf8("forecast_id", false)];
    f.extend(provenance());
    f.extend([
        utf8("provider", false),
        utf8("billing_account", false),
        utf8("month", false),
        utf8("tag_key", true),
        utf8("tag_value", true),
        utf8("metric", false),
        ts("period_start", false),
        ts("period_end", false),
        money("mean_value"),
        money("lower_bound"),
        money("upper_bound"),
        Field::new("prediction_interval_level", DataType::Int32, false),
        utf8("currency", false),
    ]);
    schema(f)
}

/// `ingest_state`: one row per (source, scope).
pub fn ingest_state() -> SchemaRef {
    schema(vec![
        utf8("source", false),
        utf8("scope", false),
        utf8("cursor", true),
        utf8("etag", true),
        ts("last_success_at", true),
        utf8("last_error", true),
        ts("ingested_at", false),
    ])
}

/// `alerts`: one row per alert fired on one channel (a budget threshold, an anomaly in a
/// recipient's digest, a scheduled report), with its delivery state: the outbox.
pub fn alerts() -> SchemaRef {
    let mut f = vec![utf8("alert_key", false)];
    f.extend(provenance());
    f.extend([
        utf8("budget", false),
        utf8("period", false),
        Field::new("threshold", DataType::Float64, false),
        utf8("kind", false),
        money("value"),
        utf8("state", false),
        Field::new("attempts", DataType::Int32, false),
        utf8("last_error", true),
        ts("first_fired_at", false),
        ts("sent_at", true),
        // Beyond DESIGN §3's columns: what the outbox needs to deliver and retry after a restart.
        utf8("severity", true),
        utf8("channel", true),
        utf8("recipients", true),
        utf8("subject", true),
        ts("next_attempt_at", true),
    ]);
    schema(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_and_provenance() {
        for table in Table::ALL {
            let schema = table.schema();
            for column in table.key().iter().chain(["source", "ingested_at"].iter()) {
                let field = schema.field_with_name(column).expect("column present");
                assert!(
                    !field.is_nullable(),
                    "{}.{column} must be non-null",
                    table.name()
                );
            }
            assert_eq!(table.name().parse::<Table>(), Ok(table));
        }
    }

    #[test]
    fn timestamps_are_utc_microseconds_and_money_is_decimal_38_12() {
        let costs = costs();
        assert_eq!(
            costs
                .field_with_name("billed_cost")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Decimal128(38, 12))
        );
        assert_eq!(
            costs
                .field_with_name("charge_period_start")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
    }
}
