//! The lake on S3: `--data-dir s3://…` against moto's S3 server on loopback (a real S3 protocol
//! server; AWS itself is out of reach here), through the same ingest and SQL paths as a folder.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::{Moto, csv_rows, doracost, http, shared_data, start_moto, succeeded, units};

fn s3_command(moto: &Moto) -> std::process::Command {
    let mut cmd = doracost();
    cmd.env(
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", moto.port),
    )
    .env("AWS_ALLOW_HTTP", "true")
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_REGION", "us-east-1")
    .env_remove("AWS_PROFILE")
    .env_remove("AWS_SESSION_TOKEN")
    .current_dir(std::env::temp_dir());
    cmd
}

fn s3_doracost(moto: &Moto, args: &[&str]) -> std::process::Output {
    s3_command(moto)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(moto: &Moto, args: &[&str]) -> String {
    succeeded(args, s3_doracost(moto, args))
}

#[test]
fn a_lake_on_s3_takes_ingests_and_answers_sql() {
    let moto = start_moto();
    assert_eq!(http(moto.port, "PUT", "/doracost-lake").unwrap(), 200);
    let lake = "s3://doracost-lake/lake";
    let bill = shared_data().join("focus/focus_1.0_sample_1000.csv");
    let bill = bill.to_str().unwrap();

    // The bill's exact BilledCost total, from its text.
    let mut reader = csv::Reader::from_path(bill).unwrap();
    let col = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "BilledCost")
        .unwrap();
    let expected: i128 = reader.records().map(|r| units(&r.unwrap()[col])).sum();

    let sql = |query: &str| {
        csv_rows(&ok(
            &moto,
            &["--data-dir", lake, "sql", "--format", "csv", query],
        ))
    };

    // Twice: the second ingest replaces the same slices and leaves the totals as they were.
    for _ in 0..2 {
        let out = ok(&moto, &["--data-dir", lake, "ingest", "focus", bill]);
        assert!(out.contains("1000 rows"), "{out}");
        // The ingest ends by writing the derived tables to the bucket too.
        assert!(
            out.contains("refreshed") && out.contains("cost_allocated"),
            "{out}"
        );
        let rows = sql("SELECT count(*) AS n, sum(billed_cost) AS billed FROM costs");
        assert_eq!(rows[1][0], "1000");
        assert_eq!(units(&rows[1][1]), expected);
    }

    // A new session reads them from the bucket.
    let rows = sql("SELECT count(*) FROM derived_tables WHERE status <> 'fresh'");
    assert_eq!(rows[1][0], "0", "{rows:?}");

    // The Delta logs really are in the bucket (listed through the S3 API, not our code).
    let list = |prefix: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", moto.port)).unwrap();
        write!(
            stream,
            "GET /doracost-lake?list-type=2&prefix={prefix} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body
    };
    let listing = list("lake/costs/_delta_log/");
    assert!(
        listing.contains("lake/costs/_delta_log/00000000000000000000.json"),
        "{listing}"
    );
    let listing = list("lake/_derived/cost_allocated/_delta_log/");
    assert!(
        listing.contains("lake/_derived/cost_allocated/_delta_log/00000000000000000001.json"),
        "the second ingest rewrote it: {listing}"
    );
}

#[test]
fn two_ingests_at_once_into_a_lake_on_s3_both_land_or_say_rerun() {
    let moto = start_moto();
    assert_eq!(http(moto.port, "PUT", "/doracost-race").unwrap(), 200);
    let tmp = tempfile::tempdir().unwrap();
    crate::support::ok(
        tmp.path(),
        &["sample", "generate", "--scale", "small", "--out", "sample"],
    );
    crate::atomic::concurrent_rounds(tmp.path(), "s3://doracost-race/lake", &|| s3_command(&moto));
}

#[test]
fn a_read_of_a_missing_lake_on_s3_errors_and_creates_nothing() {
    let moto = start_moto();
    assert_eq!(http(moto.port, "PUT", "/doracost-empty").unwrap(), 200);
    for args in [
        &["--data-dir", "s3://doracost-empty/typo", "sql", "SELECT 1"][..],
        &["--data-dir", "s3://doracost-empty/typo", "dora"][..],
    ] {
        let out = s3_doracost(&moto, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no doracost lake at s3://doracost-empty/typo/: run an ingest or `doracost demo` first"),
            "{stderr}"
        );
    }
    let (status, listing) =
        crate::support::http_json(moto.port, "GET", "/doracost-empty?list-type=2", "").unwrap();
    assert_eq!(status, 200);
    assert!(
        !listing.contains("<Key>"),
        "objects were created: {listing}"
    );
}
