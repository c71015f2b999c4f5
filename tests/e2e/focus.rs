//! `doracost ingest focus` on the FinOps Foundation's real FOCUS sample and on malformed bills.

use std::collections::BTreeMap;

use crate::support::{csv_rows, fails, fingerprint, ok, shared_data, units};

/// Per provider: (rows, sum of BilledCost, sum of EffectiveCost), in 10^-12 units, straight from the
/// file's text. `NULL` never appears in these two columns of the sample.
fn file_totals() -> BTreeMap<String, (usize, i128, i128)> {
    let path = shared_data().join("focus/focus_1.0_sample_1000.csv");
    let mut reader = csv::Reader::from_path(&path).expect("sample bill");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (provider, billed, effective) =
        (col("ProviderName"), col("BilledCost"), col("EffectiveCost"));
    let mut totals = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("record");
        let entry = totals
            .entry(record[provider].to_owned())
            .or_insert((0, 0, 0));
        entry.0 += 1;
        entry.1 += units(&record[billed]);
        entry.2 += units(&record[effective]);
    }
    totals
}

#[test]
fn the_real_focus_sample_reconciles_to_the_cent_and_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let bill = shared_data().join("focus/focus_1.0_sample_1000.csv");
    let out = ok(dir.path(), &["ingest", "focus", bill.to_str().unwrap()]);
    assert!(out.contains("1000 rows"), "{out}");

    let csv = ok(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "SELECT provider, count(*) AS n, sum(billed_cost) AS billed, sum(effective_cost) AS effective \
             FROM costs GROUP BY provider ORDER BY provider",
        ],
    );
    let rows = csv_rows(&csv);
    assert_eq!(rows[0], ["provider", "n", "billed", "effective"]);
    let lake: BTreeMap<String, (usize, i128, i128)> = rows[1..]
        .iter()
        .map(|r| {
            (
                r[0].clone(),
                (r[1].parse().unwrap(), units(&r[2]), units(&r[3])),
            )
        })
        .collect();
    let expected = file_totals();
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["AWS", "Microsoft", "Oracle"]
    );
    assert_eq!(expected["AWS"].0, 942);
    assert_eq!(expected["Microsoft"].0, 51);
    assert_eq!(expected["Oracle"].0, 7);
    assert_eq!(lake, expected);

    // The quirks survive: the " org" tag key as written, and the Oracle row billed a month later.
    let csv = ok(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) FROM costs WHERE tags[' org'] IS NOT NULL",
        ],
    );
    assert_ne!(csv_rows(&csv)[1][0], "0", "the ' org' tag key was lost");
    let csv = ok(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "SELECT DISTINCT invoice_month FROM costs WHERE provider = 'Oracle' ORDER BY 1",
        ],
    );
    assert!(csv_rows(&csv).len() >= 2, "{csv}");

    // Ingesting the same bill again replaces its slices: same rows, same totals.
    ok(dir.path(), &["ingest", "focus", bill.to_str().unwrap()]);
    let csv = ok(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "SELECT count(*), sum(billed_cost) FROM costs",
        ],
    );
    let rows = csv_rows(&csv);
    assert_eq!(rows[1][0], "1000");
    assert_eq!(
        units(&rows[1][1]),
        expected.values().map(|v| v.1).sum::<i128>()
    );
}

const HEADER: &str = "BilledCost,EffectiveCost,ListCost,BillingAccountId,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ProviderName,ServiceName,Tags";
const GOOD_ROW: &str = "1.50,1.25,2.00,acct-1,USD,2024-09-01 00:00:00,2024-10-01 00:00:00,2024-09-02 00:00:00,2024-09-03 00:00:00,Usage,AWS,Amazon EC2,\"{\"\"service\"\": \"\"checkout\"\"}\"";

#[test]
fn malformed_bills_name_line_and_column_and_leave_the_lake_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, format!("{HEADER}\n{GOOD_ROW}\n")).unwrap();
    ok(dir.path(), &["ingest", "focus", "good.csv"]);
    let lake = dir.path().join("data");
    let before = fingerprint(&lake);

    let cases = [
        (
            "missing.csv",
            format!(
                "{}\n{}\n",
                HEADER.replace("EffectiveCost,", ""),
                GOOD_ROW.replacen("1.25,", "", 1)
            ),
            vec!["missing.csv", "EffectiveCost"],
        ),
        (
            "bad-number.csv",
            format!(
                "{HEADER}\n{GOOD_ROW}\n{GOOD_ROW}\n{}\n",
                GOOD_ROW.replacen("1.50", "1.5x", 1)
            ),
            vec!["bad-number.csv:4", "BilledCost", "1.5x"],
        ),
        (
            "bad-time.csv",
            format!(
                "{HEADER}\n{}\n",
                GOOD_ROW.replacen("2024-09-02 00:00:00", "2nd of September", 1)
            ),
            vec!["bad-time.csv:2", "ChargePeriodStart", "2nd of September"],
        ),
    ];
    for (name, text, wanted) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        // The good file first, so a half-done ingest would have something to write.
        let err = fails(dir.path(), &["ingest", "focus", "good.csv", name]);
        for w in wanted {
            assert!(err.contains(w), "{name}: `{w}` not in the error:\n{err}");
        }
        assert_eq!(fingerprint(&lake), before, "{name}: the lake changed");
    }
}
