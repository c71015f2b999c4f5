//! `doracost ingest cur` on the sample organisation's AWS spend written as CUR 2.0 Parquet, CUR 2.0
//! CSV and legacy CUR CSV: the lake matches the ground truth to the last decimal per cloud service
//! and month; re-ingesting replaces; malformed files name file, line and column and change nothing.

use std::collections::BTreeMap;
use std::path::Path;

use sample_data::writers::cur::{CurFormat, CurReport, write_cur};
use sample_data::{DEFAULT_SEED, Scale};

use crate::support::{csv_rows, fails, fingerprint, ok, units};

/// The truth's money is in 10^-10 units; the lake's in 10^-12.
const TRUTH_TO_LAKE: i128 = 100;

fn sample(dir: &Path, format: CurFormat) -> CurReport {
    write_cur(Scale::Small, DEFAULT_SEED, dir, format).expect("the CUR sample is written")
}

/// Runs a query and returns its rows (header dropped).
fn query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    crate::support::sql_rows(dir, &[], sql)
}

/// (cloud service, invoice month) → (billed, effective) in the lake, 10^-12 units.
fn lake_sums(dir: &Path) -> BTreeMap<(String, String), (i128, i128)> {
    query(
        dir,
        "SELECT cloud_service, invoice_month, sum(billed_cost), sum(effective_cost) FROM costs \
         WHERE source = 'cur' GROUP BY cloud_service, invoice_month",
    )
    .into_iter()
    .map(|r| ((r[0].clone(), r[1].clone()), (units(&r[2]), units(&r[3]))))
    .collect()
}

fn truth_sums(report: &CurReport) -> BTreeMap<(String, String), (i128, i128)> {
    report
        .truth
        .billed
        .iter()
        .map(|(key, billed)| {
            let effective = report.truth.effective[key];
            (
                key.clone(),
                (billed * TRUTH_TO_LAKE, effective * TRUTH_TO_LAKE),
            )
        })
        .collect()
}

fn ingests_to_the_truth(format: CurFormat) {
    let dir = tempfile::tempdir().unwrap();
    let bills = dir.path().join("cur");
    let report = sample(&bills, format);
    // 18 monthly files, 12,632 AWS line items in the small organisation (its truth.json).
    assert_eq!(report.files.len(), 18);
    assert_eq!(report.truth.rows, 12_632);

    let out = ok(dir.path(), &["ingest", "cur", "cur"]);
    assert!(out.contains("12632 rows"), "{out}");
    let expected = truth_sums(&report);
    // Six AWS cloud services (the small organisation runs no Lambda) in each of the 18 months.
    let services: std::collections::BTreeSet<&str> =
        expected.keys().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        [
            "Amazon CloudWatch",
            "Amazon EC2",
            "Amazon Elastic Kubernetes Service",
            "Amazon RDS",
            "Amazon S3",
            "Amazon Virtual Private Cloud"
        ]
    );
    assert_eq!(expected.len(), 6 * 18);
    assert_eq!(lake_sums(dir.path()), expected);

    let rows = query(
        dir.path(),
        "SELECT count(*), count(DISTINCT cost_id), min(provider), max(provider), \
         min(billing_account), count(DISTINCT invoice_month) FROM costs",
    );
    assert_eq!(
        rows[0],
        ["12632", "12632", "AWS", "AWS", "111122223333", "18"]
    );

    // `user:service` tags land under `service`: effective cost per service tag as in the truth.
    let by_tag: BTreeMap<String, i128> = query(
        dir.path(),
        "SELECT coalesce(tags['service'], CASE WHEN tags['shared'] IS NOT NULL THEN 'shared' \
         ELSE 'unallocated' END), sum(effective_cost) FROM costs GROUP BY 1",
    )
    .into_iter()
    .map(|r| (r[0].clone(), units(&r[1])))
    .collect();
    let expected_by_tag: BTreeMap<String, i128> = report
        .truth
        .effective_by_service_tag
        .iter()
        .map(|(k, v)| (k.clone(), v * TRUTH_TO_LAKE))
        .collect();
    assert_eq!(by_tag, expected_by_tag);
    assert!(by_tag.contains_key("shared") && by_tag.contains_key("unallocated"));

    // Savings plan covered usage: billed on demand, effective from the plan (0 in the truth).
    let covered = query(
        dir.path(),
        "SELECT count(*), sum(effective_cost) FROM costs WHERE cloud_service = 'Amazon EC2' \
         AND billed_cost > 0 AND effective_cost = 0",
    );
    assert_ne!(covered[0][0], "0", "no covered usage read");

    // Ingesting the same files again replaces every slice: same rows, same sums.
    ok(dir.path(), &["ingest", "cur", "cur"]);
    assert_eq!(lake_sums(dir.path()), expected);
    assert_eq!(
        query(dir.path(), "SELECT count(*) FROM costs")[0][0],
        "12632"
    );
}

#[test]
fn cur2_parquet_matches_the_truth() {
    ingests_to_the_truth(CurFormat::Cur2Parquet);
}

#[test]
fn cur2_csv_matches_the_truth() {
    ingests_to_the_truth(CurFormat::Cur2Csv);
}

#[test]
fn legacy_csv_matches_the_truth() {
    ingests_to_the_truth(CurFormat::LegacyCsv);
}

#[test]
fn a_restated_month_replaces_that_month_only() {
    let dir = tempfile::tempdir().unwrap();
    let report = sample(&dir.path().join("cur"), CurFormat::LegacyCsv);
    ok(dir.path(), &["ingest", "cur", "cur"]);
    let before = lake_sums(dir.path());

    // AWS restates May 2025: the new file keeps the header and the first 10 line items.
    let may = &report.files[0];
    assert!(may.ends_with("cur-legacy-2025-05.csv"));
    let text = std::fs::read_to_string(may).unwrap();
    let restated: Vec<&str> = text.lines().take(11).collect();
    std::fs::write(
        dir.path().join("restated-2025-05.csv"),
        restated.join("\n") + "\n",
    )
    .unwrap();
    // Those 10 items' billed cost, summed from the file's text (column lineItem/UnblendedCost).
    let header: Vec<&str> = restated[0].split(',').collect();
    let billed_at = header
        .iter()
        .position(|h| *h == "lineItem/UnblendedCost")
        .unwrap();
    let restated_billed: i128 = restated[1..]
        .iter()
        .map(|line| {
            let record = csv_rows(line).remove(0);
            units(&record[billed_at])
        })
        .sum();
    ok(dir.path(), &["ingest", "cur", "restated-2025-05.csv"]);

    let rows = query(
        dir.path(),
        "SELECT invoice_month, count(*), sum(billed_cost) FROM costs GROUP BY invoice_month \
         ORDER BY invoice_month",
    );
    assert_eq!(rows.len(), 18);
    assert_eq!(rows[0][0], "2025-05");
    assert_eq!(
        rows[0][1], "10",
        "May holds the restated 10 items, not 10 more"
    );
    assert_eq!(units(&rows[0][2]), restated_billed);
    // Every other month is untouched.
    let after = lake_sums(dir.path());
    for (key, sums) in &before {
        if key.1 != "2025-05" {
            assert_eq!(after.get(key), Some(sums), "{key:?} changed");
        }
    }
}

#[test]
fn malformed_cur_files_name_file_line_and_column_and_leave_the_lake_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let report = sample(&dir.path().join("good"), CurFormat::Cur2Csv);
    let legacy = sample(&dir.path().join("legacy"), CurFormat::LegacyCsv);
    ok(dir.path(), &["ingest", "cur", "good"]);
    let lake = dir.path().join("data");
    let before = fingerprint(&lake);

    let good_text = std::fs::read_to_string(&report.files[3]).unwrap();
    let legacy_text = std::fs::read_to_string(&legacy.files[3]).unwrap();
    // A bad amount on the 5th line (4th line item): the unblended cost is column 15 of CUR 2.0.
    let with_bad_amount = |text: &str, column: usize| -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut record = csv_rows(&lines[4]).remove(0);
        record[column] = "12.3.4".to_owned();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&record).unwrap();
        lines[4] = String::from_utf8(writer.into_inner().unwrap())
            .unwrap()
            .trim_end()
            .to_owned();
        lines.join("\n") + "\n"
    };
    let cases = [
        (
            "bad-amount-cur2.csv",
            with_bad_amount(&good_text, 14),
            vec![
                "bad-amount-cur2.csv:5",
                "line_item_unblended_cost",
                "12.3.4",
            ],
        ),
        (
            "bad-amount-legacy.csv",
            with_bad_amount(&legacy_text, 11),
            vec![
                "bad-amount-legacy.csv:5",
                "lineItem/UnblendedCost",
                "12.3.4",
            ],
        ),
        (
            "missing-column.csv",
            good_text.replacen("line_item_usage_start_date", "usage_start", 1),
            vec![
                "missing-column.csv",
                "line_item_usage_start_date",
                "missing",
            ],
        ),
        (
            "missing-legacy.csv",
            legacy_text.replacen("bill/PayerAccountId", "bill/Payer", 1),
            vec!["missing-legacy.csv", "bill/PayerAccountId", "missing"],
        ),
    ];
    for (name, text, wanted) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        // A good file first, so a half-done ingest would have something to write.
        let err = fails(dir.path(), &["ingest", "cur", "good", name]);
        for w in wanted {
            assert!(err.contains(w), "{name}: `{w}` not in the error:\n{err}");
        }
        assert!(err.contains("nothing was written"), "{err}");
        assert_eq!(fingerprint(&lake), before, "{name}: the lake changed");
    }
}

/// A hand-made CUR 2.0 CSV with every commitment line item type, through the binary:
///
/// | type | unblended (billed) | effective |
/// |---|---|---|
/// | Usage (service checkout) | 1.25 | 1.25 |
/// | SavingsPlanCoveredUsage (checkout) | 0.096 | 0.0672, the plan's effective cost |
/// | SavingsPlanNegation (checkout) | −0.096 | 0 |
/// | SavingsPlanRecurringFee | 50.00 | 50.00 − 42.50 = 7.50, the unused commitment |
/// | DiscountedUsage | 0.10 | 0.06, the reservation's effective cost |
/// | RIFee | 30.00 | 2.00 + 1.00 = 3.00, the unused reservation |
/// | Fee with an RI ARN (upfront) | 100.00 | 0 |
///
/// Billed 1.25 + 0.096 − 0.096 + 50 + 0.10 + 30 + 100 = 181.35; effective 1.25 + 0.0672 + 7.50 +
/// 0.06 + 3.00 = 11.8772. Service checkout: billed 1.25 + 0.096 − 0.096 = 1.25, effective
/// 1.25 + 0.0672 = 1.3172.
#[test]
fn savings_plans_and_reservations_are_amortised() {
    let dir = tempfile::tempdir().unwrap();
    let header = "bill_payer_account_id,bill_billing_period_start_date,line_item_line_item_type,\
        line_item_usage_start_date,line_item_usage_end_date,line_item_product_code,\
        line_item_currency_code,line_item_unblended_cost,savings_plan_savings_plan_effective_cost,\
        savings_plan_total_commitment_to_date,savings_plan_used_commitment,reservation_effective_cost,\
        reservation_unused_amortized_upfront_fee_for_billing_period,reservation_unused_recurring_fee,\
        reservation_reservation_a_r_n,resource_tags";
    let row = |kind: &str, cost: &str, amounts: &str, tags: &str| {
        format!(
            "999988887777,2025-09-01T00:00:00.000Z,{kind},2025-09-02T00:00:00.000Z,\
             2025-09-02T01:00:00.000Z,AmazonEC2,USD,{cost},{amounts},{tags}"
        )
    };
    let checkout = r#""{""user_service"": ""checkout""}""#;
    let text = [
        header.to_owned(),
        row("Usage", "1.25", ",,,,,,", checkout),
        row("SavingsPlanCoveredUsage", "0.096", "0.0672,,,,,,", checkout),
        row("SavingsPlanNegation", "-0.096", ",,,,,,", checkout),
        row("SavingsPlanRecurringFee", "50.00", ",50.00,42.50,,,,", ""),
        row("DiscountedUsage", "0.10", ",,,0.06,,,arn:aws:ec2:ri/1", ""),
        row("RIFee", "30.00", ",,,,2.00,1.00,arn:aws:ec2:ri/1", ""),
        row("Fee", "100.00", ",,,,,,arn:aws:ec2:ri/1", ""),
    ]
    .join("\n")
        + "\n";
    std::fs::write(dir.path().join("commitments.csv"), text).unwrap();
    ok(dir.path(), &["ingest", "cur", "commitments.csv"]);
    let one = 1_000_000_000_000_i128;
    let total = query(
        dir.path(),
        "SELECT count(*), sum(billed_cost), sum(effective_cost) FROM costs",
    );
    assert_eq!(total[0][0], "7");
    assert_eq!(units(&total[0][1]), 18_135 * one / 100);
    assert_eq!(units(&total[0][2]), 118_772 * one / 10_000);
    let checkout = query(
        dir.path(),
        "SELECT sum(billed_cost), sum(effective_cost) FROM costs WHERE tags['service'] = 'checkout'",
    );
    assert_eq!(units(&checkout[0][0]), 125 * one / 100);
    assert_eq!(units(&checkout[0][1]), 13_172 * one / 10_000);
    let purchases = query(
        dir.path(),
        "SELECT count(*), sum(billed_cost) FROM costs WHERE charge_category = 'Purchase'",
    );
    // Recurring fee, RI fee and upfront fee: 50 + 30 + 100 = 180.
    assert_eq!(purchases[0][0], "3");
    assert_eq!(units(&purchases[0][1]), 180 * one);
}

#[test]
fn sample_generate_writes_cur_files_ingest_cur_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &[
            "sample",
            "generate",
            "--out",
            "sample",
            "--cur",
            "cur2-parquet",
        ],
    );
    assert!(out.contains("wrote the small sample"), "{out}");
    let files = std::fs::read_dir(dir.path().join("sample/cur"))
        .unwrap()
        .count();
    assert_eq!(files, 18, "one CUR file a month");
    let out = ok(dir.path(), &["ingest", "cur", "sample/cur"]);
    // The small organisation's 12,632 AWS line items (truth.json, provider AWS).
    assert!(out.contains("12632 rows"), "{out}");
}
