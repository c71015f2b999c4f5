//! The cost config tables (DESIGN §3 "Config-born tables"), registered beside the lake's:
//! `cost_rules` (how bill lines map to services and shared costs), `shared_cost_pools` and
//! `shared_cost_shares` (how shared costs split), `budgets` and `budget_thresholds`.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Builder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use model::Config;
use model::config::SharedSplit;
use model::schema::{MONEY_PRECISION, MONEY_SCALE};

/// Registers every cost config table.
pub fn register(ctx: &SessionContext, config: &Config) -> Result<(), DataFusionError> {
    ctx.register_batch("cost_rules", cost_rules(config)?)?;
    let (pools, shares) = shared_costs(config)?;
    ctx.register_batch("shared_cost_pools", pools)?;
    ctx.register_batch("shared_cost_shares", shares)?;
    let (budgets, thresholds) = budgets(config)?;
    ctx.register_batch("budgets", budgets)?;
    ctx.register_batch("budget_thresholds", thresholds)?;
    // The one function built from config (the rules); the fixed ones come with the session.
    ctx.register_udf(crate::rule_pick::udf(&rules(config)));
    Ok(())
}

/// A tag key, tag value, account or cloud service as the rules compare it: surrounding spaces
/// trimmed, lower-case (the views apply the same `lower(trim(…))` to the bill's side).
/// Borrows when lower-casing would change nothing (the bill's side is normalised line by line).
pub fn normalise(text: &str) -> std::borrow::Cow<'_, str> {
    let text = text.trim_matches(' ');
    let unchanged = if text.is_ascii() {
        !text.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        text.chars().all(|c| c.to_lowercase().eq([c]))
    };
    if unchanged {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<RecordBatch, DataFusionError> {
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn money_builder() -> Result<Decimal128Builder, DataFusionError> {
    Ok(Decimal128Builder::new().with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?)
}

/// One cost rule (see [`rules`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRule {
    /// `tag`, `account` or `cloud_service`.
    pub kind: &'static str,
    /// The normalised tag key (tag rules only).
    pub tag_key: Option<String>,
    /// The normalised tag value, account or cloud service.
    pub value: String,
    /// `service` or `shared`.
    pub target_kind: &'static str,
    /// The service or shared cost.
    pub target: String,
    /// Lower wins.
    pub precedence: i32,
    /// Config order, the tie-break.
    pub ordinal: i32,
}

/// Every rule: a service's `cost_tags`, `cost_accounts` and `cost_cloud_services`, and a shared
/// cost's `tags`, `accounts` and `cloud_services`. A bill line takes the rule of lowest
/// `precedence`, then lowest `ordinal` (config order): tags before accounts before cloud
/// services, and at each kind a service's rule before a shared cost's.
pub fn rules(config: &Config) -> Vec<CostRule> {
    let mut out = Vec::new();
    let mut push = |kind, key: Option<&String>, value: &str, target_kind, target: &str, rank| {
        let ordinal = i32::try_from(out.len()).unwrap_or(i32::MAX);
        out.push(CostRule {
            kind,
            tag_key: key.map(|k| normalise(k).into_owned()),
            value: normalise(value).into_owned(),
            target_kind,
            target: target.to_owned(),
            precedence: rank,
            ordinal,
        });
    };
    for s in &config.services {
        for (k, v) in &s.cost_tags {
            push("tag", Some(k), v, "service", &s.name, 1);
        }
        for a in &s.cost_accounts {
            push("account", None, a, "service", &s.name, 3);
        }
        for c in &s.cost_cloud_services {
            push("cloud_service", None, c, "service", &s.name, 5);
        }
    }
    for p in &config.shared_costs {
        for (k, v) in &p.tags {
            push("tag", Some(k), v, "shared", &p.name, 2);
        }
        for a in &p.accounts {
            push("account", None, a, "shared", &p.name, 4);
        }
        for c in &p.cloud_services {
            push("cloud_service", None, c, "shared", &p.name, 6);
        }
    }
    out
}

/// `cost_rules`: [`rules`] as a table.
fn cost_rules(config: &Config) -> Result<RecordBatch, DataFusionError> {
    let mut kind = StringBuilder::new();
    let mut tag_key = StringBuilder::new();
    let mut value = StringBuilder::new();
    let mut target_kind = StringBuilder::new();
    let mut target = StringBuilder::new();
    let mut precedence = Int32Builder::new();
    let mut ordinal = Int32Builder::new();
    for rule in rules(config) {
        kind.append_value(rule.kind);
        tag_key.append_option(rule.tag_key.as_deref());
        value.append_value(&rule.value);
        target_kind.append_value(rule.target_kind);
        target.append_value(&rule.target);
        precedence.append_value(rule.precedence);
        ordinal.append_value(rule.ordinal);
    }
    batch(
        vec![
            Field::new("rule_kind", DataType::Utf8, false),
            Field::new("tag_key", DataType::Utf8, true),
            Field::new("value", DataType::Utf8, false),
            Field::new("target_kind", DataType::Utf8, false),
            Field::new("target", DataType::Utf8, false),
            Field::new("precedence", DataType::Int32, false),
            Field::new("ordinal", DataType::Int32, false),
        ],
        vec![
            Arc::new(kind.finish()),
            Arc::new(tag_key.finish()),
            Arc::new(value.finish()),
            Arc::new(target_kind.finish()),
            Arc::new(target.finish()),
            Arc::new(precedence.finish()),
            Arc::new(ordinal.finish()),
        ],
    )
}

/// `shared_cost_pools` (pool, split) and `shared_cost_shares` (pool, service, weight): the
/// configured weights, or, for a proportional split, its services (every configured service when
/// none is named) with a NULL weight (the views weigh them by direct cost).
fn shared_costs(config: &Config) -> Result<(RecordBatch, RecordBatch), DataFusionError> {
    let mut pool = StringBuilder::new();
    let mut split = StringBuilder::new();
    let mut share_pool = StringBuilder::new();
    let mut share_service = StringBuilder::new();
    let mut weight = money_builder()?;
    for p in &config.shared_costs {
        pool.append_value(&p.name);
        match p.split {
            SharedSplit::Weights => {
                split.append_value("weights");
                for (service, w) in &p.weights {
                    share_pool.append_value(&p.name);
                    share_service.append_value(service);
                    // A whole-number weight as DECIMAL(38, 12): w × 10^12.
                    let units = i128::from(*w).checked_mul(10_i128.pow(12)).ok_or_else(|| {
                        DataFusionError::Configuration(format!(
                            "shared_costs `{}`: weight {w} is too large",
                            p.name
                        ))
                    })?;
                    weight.append_value(units);
                }
            }
            SharedSplit::Proportional => {
                split.append_value("proportional");
                let named: Vec<&String> = if p.services.is_empty() {
                    config.services.iter().map(|s| &s.name).collect()
                } else {
                    p.services.iter().collect()
                };
                for service in named {
                    share_pool.append_value(&p.name);
                    share_service.append_value(service);
                    weight.append_null();
                }
            }
        }
    }
    let pools = batch(
        vec![
            Field::new("pool", DataType::Utf8, false),
            Field::new("split", DataType::Utf8, false),
        ],
        vec![Arc::new(pool.finish()), Arc::new(split.finish())],
    )?;
    let shares = batch(
        vec![
            Field::new("pool", DataType::Utf8, false),
            Field::new("service", DataType::Utf8, false),
            Field::new(
                "weight",
                DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
                true,
            ),
        ],
        vec![
            Arc::new(share_pool.finish()),
            Arc::new(share_service.finish()),
            Arc::new(weight.finish()),
        ],
    )?;
    Ok((pools, shares))
}

/// `budgets` (budget, scope `service`|`team`|`tag`|`all`, scope_name (`key=value` for a tag),
/// monthly_amount, currency, tag_key, tag_value) and
/// `budget_thresholds` (budget, percent, amount, kind `actual`|`forecast`, severity): a threshold
/// given as an amount keeps it exact, its percent (of the monthly amount) shown beside it.
fn budgets(config: &Config) -> Result<(RecordBatch, RecordBatch), DataFusionError> {
    let mut name = StringBuilder::new();
    let mut scope = StringBuilder::new();
    let mut scope_name = StringBuilder::new();
    let mut amount = money_builder()?;
    let mut currency = StringBuilder::new();
    let mut tag_key = StringBuilder::new();
    let mut tag_value = StringBuilder::new();
    let mut t_budget = StringBuilder::new();
    let mut t_percent = Float64Builder::new();
    let mut t_amount = money_builder()?;
    let mut t_kind = StringBuilder::new();
    let mut t_severity = StringBuilder::new();
    for b in &config.budgets {
        name.append_value(&b.name);
        tag_key.append_option(b.scope.tag_pair().map(|(k, _)| k));
        tag_value.append_option(b.scope.tag_pair().map(|(_, v)| v));
        match (&b.scope.service, &b.scope.team, b.scope.tag_pair()) {
            (Some(service), _, _) => {
                scope.append_value("service");
                scope_name.append_value(service);
            }
            (None, Some(team), _) => {
                scope.append_value("team");
                scope_name.append_value(team);
            }
            (None, None, Some((key, value))) => {
                scope.append_value("tag");
                scope_name.append_value(format!("{key}={value}"));
            }
            (None, None, None) => {
                scope.append_value("all");
                scope_name.append_value("all");
            }
        }
        amount.append_value(b.monthly_amount.0);
        currency.append_value(&b.currency);
        for t in &b.thresholds {
            t_budget.append_value(&b.name);
            // Config checks give exactly one of the two, and a monthly amount over 0.
            let percent = match (t.percent, t.amount) {
                (Some(p), _) => p,
                (None, Some(a)) => 100.0 * a.0 as f64 / b.monthly_amount.0.max(1) as f64,
                (None, None) => 0.0,
            };
            t_percent.append_value(percent);
            t_amount.append_option(t.amount.map(|a| a.0));
            t_kind.append_value(match t.kind {
                model::config::ThresholdKind::Actual => "actual",
                model::config::ThresholdKind::Forecast => "forecast",
            });
            t_severity.append_value(t.severity.as_str());
        }
    }
    let budgets = batch(
        vec![
            Field::new("budget", DataType::Utf8, false),
            Field::new("scope", DataType::Utf8, false),
            Field::new("scope_name", DataType::Utf8, false),
            Field::new(
                "monthly_amount",
                DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
                false,
            ),
            Field::new("currency", DataType::Utf8, false),
            Field::new("tag_key", DataType::Utf8, true),
            Field::new("tag_value", DataType::Utf8, true),
        ],
        vec![
            Arc::new(name.finish()),
            Arc::new(scope.finish()),
            Arc::new(scope_name.finish()),
            Arc::new(amount.finish()),
            Arc::new(currency.finish()),
            Arc::new(tag_key.finish()),
            Arc::new(tag_value.finish()),
        ],
    )?;
    let thresholds = batch(
        vec![
            Field::new("budget", DataType::Utf8, false),
            Field::new("percent", DataType::Float64, false),
            Field::new(
                "amount",
                DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
                true,
            ),
            Field::new("kind", DataType::Utf8, false),
            Field::new("severity", DataType::Utf8, false),
        ],
        vec![
            Arc::new(t_budget.finish()),
            Arc::new(t_percent.finish()),
            Arc::new(t_amount.finish()),
            Arc::new(t_kind.finish()),
            Arc::new(t_severity.finish()),
        ],
    )?;
    Ok((budgets, thresholds))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::normalise;

    #[test]
    fn normalise_trims_spaces_and_lowers_as_sql_lower_does() {
        // The FOCUS sample's " org" key; borrowed when nothing changes.
        assert!(matches!(normalise(" org"), Cow::Borrowed("org")));
        assert_eq!(normalise("  Team Payments "), "team payments");
        // A titlecase letter (neither upper- nor lower-case) still lowers: ǅ → ǆ.
        assert_eq!(normalise("ǅemal"), "ǆemal");
        // Only spaces are trimmed, as the rules state.
        assert_eq!(normalise("\tA"), "\ta");
    }
}
