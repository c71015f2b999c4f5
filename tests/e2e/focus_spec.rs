//! The FOCUS specification's example ledgers (`../shared/data/focus/spec_examples`) through
//! `doracost ingest focus`, checked with `doracost sql` against the totals their documents state.
//! Two of them lack BillingAccountId, BillingCurrency and ProviderName: they are refused without
//! `--default-…` values, and read with them.

use std::path::{Path, PathBuf};

use crate::support::{fails, fingerprint, ok, shared_data, units};

/// 10^-12 units.
const ONE: i128 = 1_000_000_000_000;

fn example(name: &str) -> PathBuf {
    shared_data().join("focus/spec_examples").join(name)
}

/// Runs a query and returns its rows (header dropped).
fn query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    crate::support::sql_rows(dir, &[], sql)
}

const DEFAULTS: [&str; 6] = [
    "--default-billing-account",
    "ACME-PAYER",
    "--default-currency",
    "usd",
    "--default-provider",
    "Example Cloud",
];

#[test]
fn all_upfront_savings_plan_billed_versus_effective() {
    let dir = tempfile::tempdir().unwrap();
    let bill = example("aws_savings_plan_all_upfront_100pct.csv");
    let out = ok(dir.path(), &["ingest", "focus", bill.to_str().unwrap()]);
    assert!(out.contains("28 rows"), "{out}");
    let rows = query(
        dir.path(),
        "SELECT charge_category, count(*), sum(billed_cost), sum(effective_cost), sum(list_cost) \
         FROM costs GROUP BY charge_category ORDER BY charge_category",
    );
    // The one-year all-upfront plan is bought for 628,004.40 (billed now, effective 0: it is
    // amortised into the usage it covers): 628,004.40 / 8,760 hours = 71.69 an hour.
    assert_eq!(rows[0][..2], ["Purchase", "1"]);
    assert_eq!(units(&rows[0][2]), 62_800_440 * ONE / 100);
    assert_eq!(units(&rows[0][3]), 0);
    assert_eq!(62_800_440 * ONE / 100 / 8_760, 7_169 * ONE / 100);
    // 24 covered hours billed 0.00 with effective 71.69 each (24 × 71.69 = 1,720.56, list
    // 24 × 107.54 = 2,580.96), and 3 on-demand hours at 3.84 (11.52 billed and effective):
    // usage billed 11.52, effective 1,720.56 + 11.52 = 1,732.08.
    assert_eq!(rows[1][..2], ["Usage", "27"]);
    assert_eq!(units(&rows[1][2]), 1_152 * ONE / 100);
    assert_eq!(units(&rows[1][3]), 173_208 * ONE / 100);
    assert_eq!(units(&rows[1][4]), (258_096 + 1_152) * ONE / 100);
    // The month's totals: billed 628,004.40 + 11.52 = 628,015.92; effective 1,732.08.
    let total = query(
        dir.path(),
        "SELECT sum(billed_cost), sum(effective_cost), min(invoice_month), min(currency) FROM costs",
    );
    assert_eq!(units(&total[0][0]), 62_801_592 * ONE / 100);
    assert_eq!(units(&total[0][1]), 173_208 * ONE / 100);
    assert_eq!(total[0][2..], ["2026-02", "USD"]);
}

#[test]
fn ledgers_without_account_currency_or_provider_need_defaults() {
    let dir = tempfile::tempdir().unwrap();
    // Something in the lake first, to show a refused file changes nothing.
    let sp = example("aws_savings_plan_all_upfront_100pct.csv");
    ok(dir.path(), &["ingest", "focus", sp.to_str().unwrap()]);
    let lake = dir.path().join("data");
    let before = fingerprint(&lake);
    let late = example("late_arriving_usage_closed_period_ledger.csv");
    let err = fails(dir.path(), &["ingest", "focus", late.to_str().unwrap()]);
    for wanted in [
        "late_arriving_usage_closed_period_ledger.csv",
        "column `BillingAccountId`",
        "`BillingCurrency`",
        "`ProviderName`",
        "--default-billing-account",
        "nothing was written",
    ] {
        assert!(err.contains(wanted), "`{wanted}` not in:\n{err}");
    }
    assert_eq!(fingerprint(&lake), before);
    let err = fails(
        dir.path(),
        &[
            "ingest",
            "focus",
            late.to_str().unwrap(),
            "--default-currency",
            "dollars",
        ],
    );
    assert!(err.contains("three-letter ISO 4217"), "{err}");
}

#[test]
fn late_arriving_usage_lands_on_the_next_invoice_as_a_correction() {
    let dir = tempfile::tempdir().unwrap();
    let late = example("late_arriving_usage_closed_period_ledger.csv");
    let mut args = vec!["ingest", "focus", late.to_str().unwrap()];
    args.extend(DEFAULTS);
    ok(dir.path(), &args);
    let rows = query(
        dir.path(),
        "SELECT billing_account, currency, provider, invoice_month, charge_class, \
         CAST(charge_period_start AS VARCHAR), billed_cost, effective_cost, list_cost FROM costs",
    );
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    // Defaults filled in (the currency upper-cased); the June invoice corrects May's usage.
    assert_eq!(
        r[..5],
        [
            "ACME-PAYER",
            "USD",
            "Example Cloud",
            "2025-06",
            "Correction"
        ]
    );
    assert!(r[5].starts_with("2025-05-01T00:00:00"), "{}", r[5]);
    // 1,000 hours at 1.50 contracted = 1,500 billed and effective; at 2.00 list = 2,000.
    assert_eq!(units(&r[6]), 1_500 * ONE);
    assert_eq!(units(&r[7]), 1_500 * ONE);
    assert_eq!(units(&r[8]), 2_000 * ONE);
    // Its effect: May's cost by charge period rises by 1,500; June's invoice carries it.
    let may = query(
        dir.path(),
        "SELECT sum(effective_cost) FROM costs WHERE charge_period_start >= TIMESTAMP '2025-05-01T00:00:00Z' \
         AND charge_period_start < TIMESTAMP '2025-06-01T00:00:00Z'",
    );
    assert_eq!(units(&may[0][0]), 1_500 * ONE);
}

#[test]
fn partial_reallocation_moves_cost_between_resources_and_nets_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = example("partial_reallocation_closed_period_ledger.csv");
    let mut args = vec!["ingest", "focus", ledger.to_str().unwrap()];
    args.extend(DEFAULTS);
    ok(dir.path(), &args);
    let rows = query(
        dir.path(),
        "SELECT resource_id, count(*), sum(billed_cost), sum(effective_cost), sum(list_cost), \
         sum(usage_quantity) FROM costs GROUP BY resource_id ORDER BY resource_id",
    );
    // negated −1,500 (−1,000 h), re-stated +1,200 (800 h): net −300, −200 h, list −400.
    assert_eq!(rows[0][..2], ["R-111", "2"]);
    assert_eq!(units(&rows[0][2]), -300 * ONE);
    assert_eq!(units(&rows[0][3]), -300 * ONE);
    assert_eq!(units(&rows[0][4]), -400 * ONE);
    assert_eq!(rows[0][5].parse::<f64>().unwrap(), -200.0);
    // R-222 receives the 300 (200 h, list 400).
    assert_eq!(rows[1][..2], ["R-222", "1"]);
    assert_eq!(units(&rows[1][2]), 300 * ONE);
    assert_eq!(units(&rows[1][4]), 400 * ONE);
    // −1,500 + 1,200 + 300 = 0: a reallocation changes no total.
    let total = query(
        dir.path(),
        "SELECT sum(billed_cost), sum(effective_cost), min(charge_class), max(charge_class) FROM costs",
    );
    assert_eq!(units(&total[0][0]), 0);
    assert_eq!(units(&total[0][1]), 0);
    assert_eq!(total[0][2..], ["Correction", "Correction"]);

    // Both closed-period ledgers fall in one slice (ACME-PAYER, 2025-06): ingested together they
    // total 1,500 + 0 = 1,500; the reallocation ledger ingested alone again replaces that slice.
    let late = example("late_arriving_usage_closed_period_ledger.csv");
    let mut args = vec![
        "ingest",
        "focus",
        late.to_str().unwrap(),
        ledger.to_str().unwrap(),
    ];
    args.extend(DEFAULTS);
    ok(dir.path(), &args);
    let total = query(dir.path(), "SELECT count(*), sum(billed_cost) FROM costs");
    assert_eq!(total[0][0], "4");
    assert_eq!(units(&total[0][1]), 1_500 * ONE);
}
