//! `POST /api/v1/sql` as an analyst's client sees it: the real server over the small sample
//! organisation, with small limits (2 s, 64 MB, 1000 rows, 2 at once) so the hostile corpus
//! stops quickly. Expected values come from `doracost sql --format csv` (another process, the
//! CLI's engine), never from the route itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{
    Array, AsArray, Decimal128Array, Float64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use serde_json::Value;

use crate::server::Server;
use crate::support::{csv_rows, fingerprint, ok_with, sample_lake, sql_rows, with_args};

const LIMITS: &str = r#"
[server]
sql_timeout_seconds = 2
sql_memory_limit = "64M"
sql_max_rows = 1000
sql_max_concurrent = 2
"#;

/// An answer of the route, its body as bytes (chunked transfer decoded) and its trailers.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    /// The transfer ended with its terminating chunk (not cut short).
    complete: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8")
    }
}

/// `POST /api/v1/sql` with `body` and `headers` (`TE: trailers` always).
fn post(port: u16, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "POST /api/v1/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\nTE: trailers\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading the whole body and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    // A cut-short transfer may end in a reset: what was read is the answer.
    let _ = stream.read_to_end(&mut raw);
    parse(&raw)
}

fn post_sql(port: u16, sql: &str, accept: &str) -> Answer {
    post(
        port,
        &[("Content-Type", "text/plain"), ("Accept", accept)],
        sql.as_bytes(),
    )
}

fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = &raw[split + 4..];
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if !chunked {
        return Answer {
            status,
            headers,
            body: rest.to_vec(),
            trailers: Vec::new(),
            complete: true,
        };
    }
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    let mut complete = false;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..end]).into_owned();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
        else {
            break;
        };
        rest = &rest[end + 2..];
        if size == 0 {
            let text = String::from_utf8_lossy(rest).into_owned();
            for line in text.lines().take_while(|l| !l.is_empty()) {
                if let Some((n, v)) = line.split_once(':') {
                    trailers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            complete = text.ends_with("\r\n");
            break;
        }
        if rest.len() < size + 2 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    Answer {
        status,
        headers,
        body,
        trailers,
        complete,
    }
}

/// One column of each kind an analyst meets: a list, a timestamp, a float and a decimal.
const EVERY_KIND: &str = "SELECT c.change_id, c.labels, c.deployed_at, c.lead_time_hours, m.cost \
     FROM dora_changes c \
     LEFT JOIN (SELECT service, month, sum(cost) AS cost FROM cost_monthly GROUP BY service, month) m \
       ON m.service = c.service AND m.month = c.month \
     WHERE c.month = DATE '2026-03-01' \
     ORDER BY c.change_id";

/// Cells as `doracost sql --format csv` writes them, from Arrow batches read back.
fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        let ids: &StringArray = batch.column(0).as_string();
        let labels: &ListArray = batch.column(1).as_list();
        let deployed: &TimestampMicrosecondArray = batch.column(2).as_primitive();
        let hours: &Float64Array = batch.column(3).as_primitive();
        let cost: &Decimal128Array = batch.column(4).as_primitive();
        for i in 0..batch.num_rows() {
            let label_text = if labels.is_null(i) {
                String::new()
            } else {
                let values = labels.value(i);
                let values: &StringArray = values.as_string();
                let list: Vec<Value> = (0..values.len())
                    .map(|j| Value::String(values.value(j).to_owned()))
                    .collect();
                serde_json::to_string(&list).unwrap()
            };
            let at = chrono::DateTime::from_timestamp_micros(deployed.value(i))
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            rows.push(vec![
                ids.value(i).to_owned(),
                label_text,
                if deployed.is_null(i) {
                    String::new()
                } else {
                    at
                },
                if hours.is_null(i) {
                    String::new()
                } else {
                    hours.value(i).to_string()
                },
                if cost.is_null(i) {
                    String::new()
                } else {
                    cost.value_as_string(i)
                },
            ]);
        }
    }
    rows
}

fn read_parquet(file: std::fs::File) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .collect::<Result<_, _>>()
        .expect("its batches")
}

/// Floats compared as numbers (two processes may print a median's last digit differently),
/// everything else as text.
fn assert_same_rows(format: &str, got: &[Vec<String>], want: &[Vec<String>]) {
    assert_eq!(got.len(), want.len(), "{format}: row count");
    for (row, (g, w)) in got.iter().zip(want).enumerate() {
        for (column, (g, w)) in g.iter().zip(w).enumerate() {
            if column == 3 && !g.is_empty() && !w.is_empty() {
                let (g, w): (f64, f64) = (g.parse().unwrap(), w.parse().unwrap());
                assert!(
                    (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                    "{format}: row {row} hours {g} against {w}"
                );
            } else {
                assert_eq!(g, w, "{format}: row {row} column {column}");
            }
        }
    }
}

#[test]
fn every_format_answers_what_the_cli_answers() {
    let (dir, args) = sample_lake(LIMITS, &[("events", "events"), ("focus", "costs")]);
    let want = sql_rows(dir.path(), &args, EVERY_KIND);
    assert!(want.len() > 100 && want.len() < 1000, "{}", want.len());
    assert!(
        want.iter().any(|r| r[1].starts_with("[\"")),
        "a row with labels"
    );
    assert!(want.iter().any(|r| r[4].contains('.')), "a row with a cost");
    let server = Server::start(dir.path(), &args);

    // JSON: the columns with their types, rows as objects, decimals as exact text.
    let json = post_sql(server.port, EVERY_KIND, "application/json");
    assert_eq!(json.status, 200, "{}", json.text());
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.header("x-doracost-row-limit"), Some("1000"));
    assert!(json.complete);
    assert_eq!(
        json.trailers,
        [("x-doracost-truncated".to_owned(), "false".to_owned())]
    );
    let doc = json.json();
    assert_eq!(doc["truncated"], false);
    assert_eq!(doc["row_count"], want.len());
    let types: Vec<&str> = doc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(types[1].starts_with("List(Utf8"), "{types:?}");
    assert!(types[2].starts_with("Timestamp(µs"), "{types:?}");
    assert_eq!(types[4], "Decimal128(38, 12)");
    let rows: Vec<Vec<String>> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |v: &Value| match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Array(_) => serde_json::to_string(v).unwrap(),
                other => other.to_string(),
            };
            [
                "change_id",
                "labels",
                "deployed_at",
                "lead_time_hours",
                "cost",
            ]
            .iter()
            .map(|c| text(&r[c]))
            .collect()
        })
        .collect();
    assert_same_rows("json", &rows, &want);

    // The same as {"sql": …}.
    let wrapped = post(
        server.port,
        &[("Content-Type", "application/json")],
        serde_json::json!({ "sql": EVERY_KIND })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(wrapped.status, 200);
    assert_eq!(wrapped.json()["rows"], doc["rows"]);

    // CSV: the CLI's text, header included.
    let csv = post_sql(server.port, EVERY_KIND, "text/csv");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let csv = csv_rows(&csv.text());
    assert_eq!(
        csv[0],
        [
            "change_id",
            "labels",
            "deployed_at",
            "lead_time_hours",
            "cost"
        ]
    );
    assert_same_rows("csv", &csv[1..], &want);

    // Arrow IPC stream, read with arrow's own reader.
    let ipc = post_sql(
        server.port,
        EVERY_KIND,
        "application/vnd.apache.arrow.stream",
    );
    assert_eq!(ipc.status, 200);
    assert!(ipc.complete);
    let batches: Vec<RecordBatch> =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc.body), None)
            .expect("an Arrow IPC stream")
            .collect::<Result<_, _>>()
            .expect("its batches");
    assert_eq!(
        batches[0].schema().field(4).data_type(),
        &arrow::datatypes::DataType::Decimal128(38, 12)
    );
    assert_same_rows("arrow", &cells(&batches), &want);

    // Parquet, read with the parquet crate.
    let parquet = post_sql(server.port, EVERY_KIND, "application/vnd.apache.parquet");
    assert_eq!(parquet.status, 200);
    assert_eq!(
        parquet.header("content-type"),
        Some("application/vnd.apache.parquet")
    );
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&parquet.body).unwrap();
    assert_same_rows("parquet", &cells(&read_parquet(file)), &want);

    // The CLI writes the same Parquet, to a file and to a redirected stdout.
    let out = dir.path().join("answer.parquet");
    let out_arg = out.to_str().unwrap();
    ok_with(
        dir.path(),
        &args,
        &["sql", "--format", "parquet", "--out", out_arg, EVERY_KIND],
    );
    let from_file = read_parquet(std::fs::File::open(&out).unwrap());
    assert_same_rows("cli parquet", &cells(&from_file), &want);
    let piped = crate::support::run(
        dir.path(),
        &with_args(&args, &["sql", "--format", "parquet", EVERY_KIND]),
    );
    assert!(piped.status.success());
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&piped.stdout).unwrap();
    assert_same_rows("cli parquet on stdout", &cells(&read_parquet(file)), &want);
    let refused = crate::support::fails(
        dir.path(),
        &with_args(&args, &["dora", "--format", "parquet"]),
    );
    assert!(refused.contains("doracost sql"), "{refused}");

    // An answer over the row cap stops at it and says so, in JSON and in the trailer.
    let all = post_sql(
        server.port,
        "SELECT * FROM dora_changes",
        "application/json",
    );
    assert_eq!(all.status, 200);
    let doc = all.json();
    assert_eq!(doc["truncated"], true);
    assert_eq!(doc["rows"].as_array().unwrap().len(), 1000);
    assert_eq!(
        all.trailers,
        [("x-doracost-truncated".to_owned(), "true".to_owned())]
    );
    let csv = post_sql(server.port, "SELECT * FROM dora_changes", "text/csv");
    assert_eq!(csv_rows(&csv.text()).len(), 1001);
    assert_eq!(csv.trailers[0].1, "true");

    // A syntax error: 400 with its place.
    let bad = post_sql(
        server.port,
        "SELECT *\nFROM dora_changes WHERE a = = 1",
        "*/*",
    );
    assert_eq!(bad.status, 400);
    let error = &bad.json()["error"];
    assert_eq!(error["kind"], "invalid_sql");
    assert_eq!(
        error["position"],
        serde_json::json!({ "line": 2, "column": 29 })
    );
    // An Accept the route does not serve.
    assert_eq!(post_sql(server.port, "SELECT 1", "image/png").status, 406);

    // A lake file gone (a disk lost, a vacuum too eager): 503, and back once it is there.
    let table = dir.path().join("lake/deployments");
    let file = std::fs::read_dir(&table)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a data file");
    let aside = dir.path().join("aside.parquet");
    std::fs::rename(&file, &aside).unwrap();
    let lost = post_sql(server.port, "SELECT max(repo) FROM deployments", "*/*");
    std::fs::rename(&aside, &file).unwrap();
    assert_eq!(lost.status, 503, "{}", lost.text());
    assert_eq!(lost.json()["error"]["kind"], "unavailable");
    let back = post_sql(server.port, "SELECT max(repo) FROM deployments", "*/*");
    assert_eq!(back.status, 200);
}

/// `POST /api/v1/sql` in JSON, again while it answers 429: the queries stopped before are still
/// giving their places back (a query stopped inside one operator holds its place until the
/// operator yields).
fn post_sql_when_free(port: u16, sql: &str) -> Answer {
    let mut answer = post_sql(port, sql, "application/json");
    // Up to 3 minutes: under a loaded CI a stopped query's operator may take that long to yield.
    for _ in 0..720 {
        if answer.status != 429 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        answer = post_sql(port, sql, "application/json");
    }
    answer
}

/// What a hostile statement must meet: its status (one of) and a word of its message.
struct Attack {
    sql: String,
    statuses: &'static [u16],
    says: &'static str,
}

fn attack(sql: impl Into<String>, statuses: &'static [u16], says: &'static str) -> Attack {
    Attack {
        sql: sql.into(),
        statuses,
        says,
    }
}

/// 5372³ rows, each compared: not answered from statistics, as a bare `count(*)` would be.
const CROSS_JOIN: &str = "SELECT count(*) FROM dora_changes a, dora_changes b, dora_changes c \
     WHERE a.lead_time_hours + b.lead_time_hours > c.lead_time_hours";

/// Refused (400), or stopped by the memory (422) or time (503) limit.
const STOPPED: &[u16] = &[422, 503];

#[test]
fn hostile_statements_are_refused_or_stopped_while_dashboards_answer() {
    let (dir, args) = sample_lake(LIMITS, &[("events", "events"), ("focus", "costs")]);
    let server = Server::start(dir.path(), &args);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let target = |name: &str| out.join(name).to_str().unwrap().to_owned();
    let counts = "SELECT (SELECT count(*) FROM deployments) AS d, (SELECT count(*) FROM changes) AS c, \
         (SELECT count(*) FROM incidents) AS i, (SELECT count(*) FROM costs) AS k, \
         (SELECT count(*) FROM dora_monthly) AS m";
    let counts_before = sql_rows(dir.path(), &args, counts);
    let lake_before = fingerprint(&dir.path().join("lake"));

    let refused: &[u16] = &[400];
    let attacks = vec![
        attack("DROP VIEW dora_monthly", refused, "DDL"),
        attack("DROP TABLE deployments", refused, "DDL"),
        attack("CREATE TABLE t AS SELECT 1", refused, "DDL"),
        attack("CREATE VIEW dora_monthly AS SELECT 1", refused, "DDL"),
        attack(
            "CREATE OR REPLACE VIEW v AS SELECT * FROM costs",
            refused,
            "DDL",
        ),
        attack("CREATE FUNCTION f() RETURNS INT RETURN 1", refused, "DDL"),
        attack("ALTER TABLE deployments ADD COLUMN x INT", refused, "DDL"),
        attack(
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
            refused,
            "CREATE EXTERNAL TABLE",
        ),
        attack(
            format!("COPY (SELECT 1) TO '{}'", target("x.csv")),
            refused,
            "COPY",
        ),
        attack(
            format!(
                "COPY deployments TO '{}' STORED AS PARQUET",
                target("d.parquet")
            ),
            refused,
            "COPY",
        ),
        attack(
            format!("EXPLAIN COPY (SELECT 1) TO '{}'", target("e.csv")),
            refused,
            "COPY",
        ),
        attack(
            "INSERT INTO deployments (deployment_id) VALUES ('evil')",
            refused,
            "DML",
        ),
        attack("UPDATE deployments SET status = 'failure'", refused, "DML"),
        attack("DELETE FROM incidents", refused, "DML"),
        attack("TRUNCATE TABLE costs", refused, "DML"),
        attack(
            "SET datafusion.execution.memory_pool_size = '100G'",
            refused,
            "SET",
        ),
        attack(
            "SET datafusion.runtime.memory_limit = '100G'",
            refused,
            "SET",
        ),
        attack("RESET datafusion.execution.batch_size", refused, "RESET"),
        attack("PREPARE q(INT) AS SELECT $1", refused, "PREPARE"),
        attack("EXECUTE q(1)", refused, "PREPARE"),
        attack("BEGIN", refused, "transaction"),
        attack("SELECT 1; DROP VIEW dora_monthly", refused, "one statement"),
        attack("SELECT 1; SELECT 2", refused, "one statement"),
        attack("SELECT * FROM range(1000000000000)", refused, "range"),
        attack(
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            refused,
            "generate_series",
        ),
        attack("SELECT unnest(range(1, 100000000000))", refused, "range"),
        attack(
            "SELECT * FROM read_parquet('/etc/passwd')",
            refused,
            "read_parquet",
        ),
        attack("SELECT length(repeat('x', 300000000))", refused, "at most"),
        attack(
            "SELECT cardinality(array_repeat(1, 3000000000))",
            refused,
            "at most",
        ),
        attack(
            "SELECT * INTO evil FROM deployments",
            refused,
            "SELECT INTO",
        ),
        // 100,000 nested parentheses: the parser's recursion limit, not a stack overflow.
        attack(
            format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
            refused,
            "RecursionLimitExceeded",
        ),
        attack("SELECT * FROM no_such_table", refused, "no_such_table"),
        attack("SELECT * FROM dora_changes WHERE", refused, ""),
        // Stopped by a limit.
        attack(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            STOPPED,
            "limit",
        ),
        attack(CROSS_JOIN, STOPPED, "limit"),
        attack(format!("EXPLAIN ANALYZE {CROSS_JOIN}"), STOPPED, "limit"),
        // A hash join whose build side is larger than the pool (it cannot spill).
        attack(
            "SELECT count(*) FROM (SELECT repeat(change_id, 400) AS k FROM dora_changes) a \
             JOIN (SELECT repeat(change_id, 400) AS k FROM dora_changes) b ON a.k = b.k",
            STOPPED,
            "limit",
        ),
    ];
    assert!(attacks.len() >= 30);

    // A dashboard client on its own connections, all through the attack.
    let attacking = Arc::new(AtomicBool::new(true));
    let dashboard = {
        let attacking = Arc::clone(&attacking);
        let port = server.port;
        std::thread::spawn(move || {
            let mut answered = Vec::new();
            while attacking.load(Ordering::SeqCst) {
                let status =
                    crate::support::http(port, "GET", "/api/v1/dora").expect("the server answers");
                answered.push(status);
                std::thread::sleep(Duration::from_millis(50));
            }
            answered
        })
    };

    for attack in &attacks {
        let answer = post_sql_when_free(server.port, &attack.sql);
        let error = &answer.json()["error"];
        let label: String = attack.sql.chars().take(100).collect();
        assert!(
            attack.statuses.contains(&answer.status),
            "{label}: {} {error}",
            answer.status
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(attack.says), "{label}: {message}");
    }
    // A 50 MB literal: over the body limit before anything reads it.
    let giant = format!("SELECT '{}'", "x".repeat(50 << 20));
    let answer = post_sql(server.port, &giant, "application/json");
    assert_eq!(answer.status, 413);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sql_max_body_bytes")
    );
    // Three heavy queries at once over a cap of two: each is stopped by a limit or turned away
    // (429), never queued without bound.
    let at_once: Vec<_> = (0..3)
        .map(|_| {
            let port = server.port;
            std::thread::spawn(move || post_sql(port, CROSS_JOIN, "application/json").status)
        })
        .collect();
    for status in at_once {
        let status = status.join().unwrap();
        assert!([429, 503, 422].contains(&status), "{status}");
    }

    attacking.store(false, Ordering::SeqCst);
    let answered = dashboard.join().unwrap();
    assert!(!answered.is_empty());
    assert!(answered.iter().all(|s| *s == 200), "{answered:?}");

    // Afterwards: the server answers, nothing was written. (A stopped query keeps the analysts'
    // threads until its operator yields, so on a loaded machine the first queries after the
    // attack may still run out of time: wait for that to pass.)
    let mut after = post_sql_when_free(server.port, "SELECT count(*) AS n FROM dora_changes");
    for _ in 0..60 {
        if after.status != 503 {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
        after = post_sql_when_free(server.port, "SELECT count(*) AS n FROM dora_changes");
    }
    assert_eq!(after.status, 200, "after the attack: {}", after.text());
    assert_eq!(after.json()["rows"][0]["n"], 5372);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "files written");
    assert_eq!(sql_rows(dir.path(), &args, counts), counts_before);
    drop(server);
    assert_eq!(fingerprint(&dir.path().join("lake")), lake_before);
}

#[test]
fn with_a_token_configured_sql_needs_it() {
    const TOKEN: &str = "analyst-s3cret";
    let (dir, args) = sample_lake(
        "[server]\ntoken = { env = \"DORACOST_SQL_TOKEN\" }\n",
        &[("events", "events")],
    );
    let server = Server::start_with_env(dir.path(), &args, &[("DORACOST_SQL_TOKEN", TOKEN)]);
    let sql = b"SELECT count(*) AS n FROM deployments";
    let without = post(server.port, &[("Content-Type", "application/sql")], sql);
    assert_eq!(without.status, 401);
    assert_eq!(without.json()["error"]["kind"], "unauthorized");
    let wrong = post(
        server.port,
        &[
            ("Authorization", "Bearer nope"),
            ("Content-Type", "application/sql"),
        ],
        sql,
    );
    assert_eq!(wrong.status, 401);
    assert!(!wrong.text().contains(TOKEN), "the token is never echoed");
    let bearer = format!("Bearer {TOKEN}");
    let with = post(
        server.port,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/sql"),
        ],
        sql,
    );
    assert_eq!(with.status, 200, "{}", with.text());
    assert!(with.json()["rows"][0]["n"].as_i64().unwrap() > 0);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(!log.contains(TOKEN), "the token is never logged");
}
