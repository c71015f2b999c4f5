//! The allocation invariant as a property (DESIGN §4 "Allocated + unallocated = bill, to the last
//! decimal"): for random bills and random rules (tags in mixed case and spacing, accounts, cloud
//! services, shared costs by weights and in proportion, credits), the views hand out exactly the
//! bill, per provider and month, and the bill they read is the sum of the lines inserted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, Decimal128Array, StringArray};
use datafusion::datasource::MemTable;
use model::money::format_decimal;
use model::{Config, Table};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Engine;
use crate::cached::all_nullable;

const SERVICES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const TAG_KEYS: [&str; 3] = ["service", " App", "TEAM "];
const ACCOUNTS: [&str; 3] = ["acct-1", "acct-2", "acct-3"];
const CLOUD_SERVICES: [&str; 4] = ["Amazon EC2", "Amazon S3", "Amazon VPC", "Virtual Machines"];
const PROVIDERS: [&str; 2] = ["AWS", "Microsoft"];

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// A tag key or value as a careless bill writes it: case flipped, spaces around.
fn messy(rng: &mut ChaCha8Rng, text: &str) -> String {
    let text = if rng.random_bool(0.3) {
        text.to_uppercase()
    } else {
        text.to_owned()
    };
    match rng.random_range(0..3) {
        0 => format!(" {text}"),
        1 => format!("{text}  "),
        _ => text,
    }
}

fn random_config(rng: &mut ChaCha8Rng) -> String {
    let services = rng.random_range(1..=SERVICES.len());
    let mut toml = String::new();
    for name in &SERVICES[..services] {
        let _ = writeln!(toml, "[[services]]\nname = \"{name}\"");
        if rng.random_bool(0.8) {
            let key = pick(rng, &TAG_KEYS);
            let _ = writeln!(toml, "cost_tags = {{ \"{key}\" = \"{name}\" }}");
        }
        if rng.random_bool(0.4) {
            let _ = writeln!(toml, "cost_accounts = [\"{}\"]", pick(rng, &ACCOUNTS));
        }
        if rng.random_bool(0.3) {
            let _ = writeln!(
                toml,
                "cost_cloud_services = [\"{}\"]",
                pick(rng, &CLOUD_SERVICES)
            );
        }
    }
    for pool in 0..rng.random_range(0..3) {
        let _ = writeln!(toml, "[[shared_costs]]\nname = \"pool{pool}\"");
        match rng.random_range(0..3) {
            0 => {
                let _ = writeln!(toml, "tags = {{ shared = \"pool{pool}\" }}");
            }
            1 => {
                let _ = writeln!(toml, "accounts = [\"{}\"]", pick(rng, &ACCOUNTS));
            }
            _ => {
                let _ = writeln!(
                    toml,
                    "cloud_services = [\"{}\"]",
                    pick(rng, &CLOUD_SERVICES)
                );
            }
        }
        if rng.random_bool(0.5) {
            let weights: Vec<String> = SERVICES[..services]
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{s} = {}", if i == 0 { 1 } else { rng.random_range(0..7) }))
                .collect();
            let _ = writeln!(
                toml,
                "split = \"weights\"\nweights = {{ {} }}",
                weights.join(", ")
            );
        } else if rng.random_bool(0.5) {
            let _ = writeln!(toml, "services = [\"{}\"]", SERVICES[0]);
        }
    }
    toml
}

/// Random lines: amounts with all 12 decimals, some negative (credits), on 4 days across a month
/// boundary; returns the INSERT and the exact bill per (provider, month) in 10⁻¹² units.
fn random_bill(rng: &mut ChaCha8Rng) -> (String, BTreeMap<(String, String), i128>) {
    let days = ["2025-10-30", "2025-10-31", "2025-11-01", "2025-11-02"];
    let mut bill: BTreeMap<(String, String), i128> = BTreeMap::new();
    let mut rows = Vec::new();
    for i in 0..rng.random_range(20..120) {
        let provider = pick(rng, &PROVIDERS);
        let day = pick(rng, &days);
        let units: i128 = if rng.random_bool(0.1) {
            -rng.random_range(1..10_000_000_000_000_i64) as i128
        } else {
            rng.random_range(0..1_000_000_000_000_000_i64) as i128
        };
        *bill
            .entry((provider.to_owned(), day[..7].to_owned()))
            .or_default() += units;
        let mut tags = Vec::new();
        if rng.random_bool(0.7) {
            let (key, value) = (pick(rng, &TAG_KEYS), pick(rng, &SERVICES));
            let (key, value) = (messy(rng, key), messy(rng, value));
            tags.push(format!("'{key}': '{value}'"));
        }
        if rng.random_bool(0.3) {
            let pool = format!("pool{}", rng.random_range(0..3));
            tags.push(format!("'shared': '{}'", messy(rng, &pool)));
        }
        let tags = if tags.is_empty() {
            "NULL".to_owned()
        } else {
            format!("MAP {{{}}}", tags.join(", "))
        };
        let (account, cloud_service) = (pick(rng, &ACCOUNTS), pick(rng, &CLOUD_SERVICES));
        let (account, cloud_service) = (messy(rng, account), messy(rng, cloud_service));
        rows.push(format!(
            "('l{i}', '{provider}', 'payer', '{account}', '{day}T00:00:00Z', '{cloud_service}', {tags}, '{}', 'USD', false)",
            format_decimal(units, 12),
        ));
    }
    let insert = format!(
        "INSERT INTO costs (cost_id, provider, billing_account, sub_account, charge_period_start, \
         cloud_service, tags, effective_cost, currency, is_estimated) VALUES {}",
        rows.join(",\n")
    );
    (insert, bill)
}

async fn engine_for(config: &Config) -> Engine {
    let ctx = Engine::new_context();
    for table in Table::ALL {
        let mem = MemTable::try_new(all_nullable(&table.schema()), vec![vec![]]).unwrap();
        ctx.register_table(table.name(), Arc::new(mem)).unwrap();
    }
    Engine::with_tables(ctx, config).await.unwrap()
}

/// (provider, month) → (bill, allocated, unallocated, difference) from `cost_reconciliation`.
async fn reconciliation(engine: &Engine) -> BTreeMap<(String, String), [i128; 4]> {
    let batches = engine
        .query(
            "SELECT provider, CAST(month AS VARCHAR) AS month, bill, allocated, unallocated, difference \
             FROM cost_reconciliation",
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for batch in batches {
        let text = |i: usize| {
            let column =
                arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
            column
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let money = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap()
                .clone()
        };
        let (provider, month) = (text(0), text(1));
        let columns = [money(2), money(3), money(4), money(5)];
        for row in 0..batch.num_rows() {
            let values = columns.clone().map(|c| c.value(row));
            out.insert(
                (
                    provider.value(row).to_owned(),
                    month.value(row)[..7].to_owned(),
                ),
                values,
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocated_plus_unallocated_is_the_bill_to_the_last_decimal() {
    for seed in 0..48_u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let toml = random_config(&mut rng);
        let config = Config::parse(&toml, std::path::Path::new("random.toml"))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{toml}"));
        let (insert, bill) = random_bill(&mut rng);
        let engine = engine_for(&config).await;
        engine
            .context()
            .sql(&insert)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let seen = reconciliation(&engine).await;
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            bill.keys().collect::<Vec<_>>(),
            "seed {seed}: the (provider, month) slices"
        );
        for (key, [billed, allocated, unallocated, difference]) in &seen {
            assert_eq!(
                *billed, bill[key],
                "seed {seed} {key:?}: the bill read\n{toml}"
            );
            assert_eq!(
                allocated + unallocated,
                *billed,
                "seed {seed} {key:?}: allocated {allocated} + unallocated {unallocated}\n{toml}"
            );
            assert_eq!(*difference, 0, "seed {seed} {key:?}\n{toml}");
        }
        // The one-pass rule pick (`cost_rule_pick`) is the SQL statement of the rule, line by line.
        let disagree = scalar_count(
            &engine,
            "SELECT count(*) FROM cost_lines l \
             LEFT JOIN cost_assignments a ON a.cost_id = l.cost_id \
             LEFT JOIN cost_assignments_by_matches m ON m.cost_id = l.cost_id \
             WHERE a.ordinal IS DISTINCT FROM m.ordinal",
        )
        .await;
        assert_eq!(
            disagree, 0,
            "seed {seed}: cost_rule_pick and cost_rule_matches disagree\n{toml}"
        );
        // Every shared piece belongs to a configured service.
        let stray = scalar_count(
            &engine,
            "SELECT count(*) FROM cost_allocated a LEFT JOIN services s ON s.service = a.service \
             WHERE a.service <> 'unallocated' AND s.service IS NULL",
        )
        .await;
        assert_eq!(
            stray, 0,
            "seed {seed}: cost allocated to an unknown service"
        );
        // `cost_monthly` (one aggregation over `cost_allocated`) is `cost_daily` summed by month,
        // row for row: the bills span two months, days with and without unallocated lines.
        let daily_by_month = "SELECT month, service, team, provider, cloud_service, currency, \
             sum(cost) AS cost, sum(direct_cost) AS direct_cost, sum(shared_cost) AS shared_cost \
             FROM cost_daily GROUP BY month, service, team, provider, cloud_service, currency";
        let differing = scalar_count(
            &engine,
            &format!(
                "SELECT count(*) FROM ({daily_by_month}) d FULL JOIN cost_monthly m \
                 ON d.month = m.month AND d.service = m.service \
                 AND (d.team IS NOT DISTINCT FROM m.team) AND d.provider = m.provider \
                 AND (d.cloud_service IS NOT DISTINCT FROM m.cloud_service) AND d.currency = m.currency \
                 WHERE d.month IS NULL OR m.month IS NULL OR d.cost <> m.cost \
                 OR d.direct_cost <> m.direct_cost OR d.shared_cost <> m.shared_cost"
            ),
        )
        .await;
        assert_eq!(
            differing, 0,
            "seed {seed}: cost_monthly and cost_daily differ\n{toml}"
        );
        assert_eq!(
            scalar_count(&engine, "SELECT count(*) FROM cost_monthly").await,
            scalar_count(
                &engine,
                &format!("SELECT count(*) FROM ({daily_by_month}) d")
            )
            .await,
            "seed {seed}: cost_monthly's rows"
        );
    }
}

/// The one BIGINT a `SELECT count(*) …` returns.
async fn scalar_count(engine: &Engine, sql: &str) -> i64 {
    let batches = engine.query(sql).await.unwrap();
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}
