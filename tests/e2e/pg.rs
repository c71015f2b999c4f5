//! The PostgreSQL endpoint as its clients see it: real `psql` (Debian's postgresql-client),
//! psycopg 3 and 2, and Grafana's catalog queries (`pg/clients.py`), against the real server
//! over the small sample organisation, with a password and the small limits of `sql.rs`.
//! Expected values come from `doracost sql --format csv` (another process, the CLI's engine).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::server::Server;
use crate::support::{sample_lake, sql_rows, units};

const PASSWORD: &str = "correct-horse-battery-staple";

const CONFIG: &str = r#"
[server]
pg_password = { env = "DORACOST_TEST_PG_PASSWORD" }
sql_timeout_seconds = 2
sql_memory_limit = "64M"
sql_max_rows = 1000
sql_max_concurrent = 2
sql_max_body_bytes = 65536
"#;

/// The server over the sample's events and bills, with [`CONFIG`].
fn start() -> (tempfile::TempDir, Vec<String>, Server) {
    let (dir, args) = sample_lake(CONFIG, &[("events", "events"), ("focus", "costs")]);
    let server = Server::start_with_env(
        dir.path(),
        &args,
        &[("DORACOST_TEST_PG_PASSWORD", PASSWORD)],
    );
    (dir, args, server)
}

/// `psql -c COMMAND` as user `doracost` with `password` (none: psql is told not to ask),
/// unaligned, comma-separated, tuples only, verbose errors (with their SQLSTATE).
fn psql(server: &Server, password: Option<&str>, command: &str) -> Output {
    let port = server.pg_port.to_string();
    let mut psql = Command::new("psql");
    psql.args([
        "-X",
        "-w",
        "-A",
        "-t",
        "-F",
        ",",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "doracost",
        "-d",
        "doracost",
        "-c",
        command,
    ])
    .env_remove("PGPASSWORD")
    .env("PGCONNECT_TIMEOUT", "30")
    .env("PGSSLMODE", "disable");
    if let Some(password) = password {
        psql.env("PGPASSWORD", password);
    }
    psql.output()
        .expect("psql runs (CI installs Debian's postgresql-client)")
}

/// `psql -c COMMAND`, which must succeed: its rows, cells split at commas.
fn psql_rows(server: &Server, command: &str) -> Vec<Vec<String>> {
    let out = psql(server, Some(PASSWORD), command);
    assert!(
        out.status.success(),
        "psql -c {command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// `psql -c COMMAND`, which must fail: its error text.
fn psql_error(server: &Server, password: Option<&str>, command: &str) -> String {
    let out = psql(server, password, command);
    assert!(
        !out.status.success(),
        "psql -c {command:?} should have failed"
    );
    String::from_utf8(out.stderr).expect("UTF-8")
}

/// `python3 pg/clients.py MODE …`: its JSON.
fn clients(server: &Server, mode: &str, service: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/pg/clients.py");
    let out = Command::new("python3")
        .arg(script)
        .args([mode, &server.pg_port.to_string(), PASSWORD, service])
        .output()
        .expect("python3 runs (CI installs psycopg and psycopg2)");
    assert!(
        out.status.success(),
        "clients.py {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

const MONTHLY: &str = "SELECT name, CAST(period_start AS VARCHAR) AS month, deployments, \
     change_failures FROM dora_monthly WHERE scope = 'service' ORDER BY name, month";

const COST: &str =
    "SELECT service, sum(cost) AS cost FROM cost_allocated GROUP BY service ORDER BY service";

#[test]
fn psql_reads_the_views_and_their_catalog_and_is_refused_writes() {
    let (dir, args, server) = start();

    // A view, as the CLI answers it.
    let want = sql_rows(dir.path(), &args, MONTHLY);
    assert!(want.len() > 12, "{}", want.len());
    assert_eq!(psql_rows(&server, MONTHLY), want);
    // Decimals as numeric, exactly.
    let want = sql_rows(dir.path(), &args, COST);
    let got = psql_rows(&server, COST);
    assert_eq!(got.len(), want.len());
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got[0], want[0]);
        assert_eq!(units(&got[1]), units(&want[1]), "{got:?} {want:?}");
    }
    assert_eq!(
        psql_rows(&server, "SELECT version()")[0][0]
            .split(' ')
            .take(2)
            .collect::<Vec<_>>(),
        ["PostgreSQL", "16.6"]
    );

    // The catalog: tables, views, one view's columns.
    let tables = psql_rows(&server, "\\dt");
    assert!(tables.iter().any(|t| t[1] == "deployments"), "{tables:?}");
    let views = psql_rows(&server, "\\dv");
    assert!(views.iter().any(|v| v[1] == "dora_monthly"), "{views:?}");
    let columns = psql_rows(&server, "\\d dora_monthly");
    let names: Vec<&str> = columns.iter().map(|c| c[0].as_str()).collect();
    for column in [
        "scope",
        "name",
        "period_start",
        "deployments",
        "change_failures",
    ] {
        assert!(names.contains(&column), "{column} in {columns:?}");
    }

    // Refused, with their SQLSTATE; the server keeps answering.
    for (sql, says) in [
        ("DROP VIEW dora_monthly", "25006"),
        ("COPY (SELECT 1) TO '/tmp/doracost-pg-copy'", "25006"),
        (
            "SET datafusion.execution.memory_pool_size = '100G'",
            "42501",
        ),
        ("SELECT * FROM range(1000000000000)", "42501"),
    ] {
        let error = psql_error(&server, Some(PASSWORD), sql);
        assert!(error.contains(says), "{sql}: {error}");
        assert!(error.contains("refused"), "{sql}: {error}");
    }
    assert!(!Path::new("/tmp/doracost-pg-copy").exists());
    // The limits of `POST /api/v1/sql`: the row cap, the largest statement.
    let changes = sql_rows(dir.path(), &args, "SELECT count(*) FROM changes");
    assert!(
        changes[0][0].parse::<usize>().unwrap() > 1000,
        "{changes:?}"
    );
    assert_eq!(
        psql_rows(&server, "SELECT change_id FROM changes").len(),
        1000
    );
    let long = format!("SELECT 1 /* {} */", "x".repeat(70_000));
    let error = psql_error(&server, Some(PASSWORD), &long);
    assert!(
        error.contains("54000") && error.contains("sql_max_body_bytes"),
        "{error}"
    );
    // Client settings are answered, not passed to DataFusion.
    assert_eq!(
        psql_rows(
            &server,
            "SET extra_float_digits = 3; SET application_name = 'psql'; SELECT 1"
        ),
        [["SET"], ["SET"], ["1"]]
    );

    // Only user doracost, with the password.
    let wrong = psql_error(&server, Some("wrong"), "SELECT 1").to_lowercase();
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    let none = psql_error(&server, None, "SELECT 1").to_lowercase();
    assert!(none.contains("password"), "{none}");
    assert_eq!(psql_rows(&server, "SELECT 1"), [["1"]]);

    // A client that sends garbage (a startup message claiming 2 GB, then junk) is dropped; the
    // server lives.
    for garbage in [
        &b"\x7f\xff\xff\xff\x00\x03\x00\x00"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0u8; 64][..],
    ] {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.pg_port)).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let _ = socket.write_all(garbage);
        let _ = socket.read_to_end(&mut Vec::new());
    }
    assert_eq!(psql_rows(&server, "SELECT 1"), [["1"]]);
}

#[test]
fn psycopg_binds_parameters_prepares_and_rolls_back() {
    let (dir, args, server) = start();
    let service = &sql_rows(
        dir.path(),
        &args,
        "SELECT min(name) FROM dora_monthly WHERE scope = 'service'",
    )[0][0];
    let got = clients(&server, "psycopg", service);

    let want = sql_rows(
        dir.path(),
        &args,
        &format!(
            "SELECT name, CAST(period_start AS VARCHAR) AS month, deployments \
             FROM dora_monthly WHERE scope = 'service' AND name = '{service}' ORDER BY period_start"
        ),
    );
    assert!(!want.is_empty());
    let as_rows = |value: &Value| -> Vec<Vec<String>> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|cell| match cell {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(as_rows(&got["psycopg3"]), want, "{got}");
    assert_eq!(as_rows(&got["psycopg2"]), want, "{got}");
    assert_eq!(got["same_every_time"], true, "{got}");
    assert_eq!(got["aware"], true, "timestamps as aware datetimes: {got}");
    let latest = &sql_rows(
        dir.path(),
        &args,
        &format!(
            "SELECT to_char(max(finished_at), '%Y-%m-%d %H:%M:%S%.6f') FROM deployments \
             WHERE service = '{service}'"
        ),
    )[0][0];
    assert_eq!(&got["latest"], latest, "{got}");
    assert_eq!(got["cost_type"], "Decimal", "{got}");
    let cost = &sql_rows(
        dir.path(),
        &args,
        &format!("SELECT sum(cost) FROM cost_allocated WHERE service = '{service}'"),
    )[0][0];
    assert_eq!(units(got["cost"].as_str().unwrap()), units(cost), "{got}");
    assert_eq!(got["after_rollback"], "IDLE", "{got}");
    assert_eq!(got["one"], 1, "{got}");
    assert_eq!(
        got["interval_minutes"], 90.0,
        "an interval as timedelta: {got}"
    );
    assert_eq!(
        got["array"],
        serde_json::json!(["a", "b"]),
        "a list as an array: {got}"
    );
    assert_eq!(got["drop"], "25006", "{got}");
    assert_eq!(got["still_answers"], true, "{got}");
}

#[test]
fn grafanas_catalog_queries_answer() {
    let (_dir, _args, server) = start();
    let got = clients(&server, "grafana", "");
    assert_eq!(got["version"], serde_json::json!([["1600"]]), "{got}");
    assert_eq!(got["ping"], "EMPTY_QUERY", "{got}");
    let has = |key: &str, value: &str| {
        got[key]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row[0].as_str().is_some_and(|cell| cell.ends_with(value)))
    };
    assert!(has("schemas", "public"), "{got}");
    assert!(has("tables", "dora_monthly"), "{got}");
    assert!(has("tables_in_public", "dora_monthly"), "{got}");
    assert!(has("columns", "period_start"), "{got}");
    assert!(has("columns", "deployments"), "{got}");
    // Types in PostgreSQL's words, and `udt_name`.
    let period_start = got["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row[0] == "period_start");
    assert_eq!(
        period_start.map(|row| &row[1]),
        Some(&Value::from("date")),
        "{got}"
    );
    assert!(has("time_columns", "finished_at"), "{got}");
    assert!(!has("time_columns", "service"), "{got}");
}

#[test]
fn a_heavy_query_over_postgresql_leaves_the_api_answering() {
    let (_dir, _args, server) = start();
    let port = server.pg_port;
    let heavy = std::thread::spawn(move || {
        let out = Command::new("psql")
            .args([
                "-X",
                "-w",
                "-A",
                "-t",
                "-v",
                "VERBOSITY=verbose",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "doracost",
                "-d",
                "doracost",
                "-c",
                "SELECT count(*) FROM changes a, changes b, changes c WHERE a.sha < b.sha",
            ])
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "disable")
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&out.stderr).into_owned()
    });
    for _ in 0..5 {
        let (status, body) = server.get("/api/v1/dora");
        assert_eq!(status, 200, "{body}");
    }
    let error = heavy.join().unwrap();
    assert!(
        error.contains("57014"),
        "stopped at the time limit: {error}"
    );
    assert!(error.contains("sql_timeout_seconds"), "{error}");
    // A query busy inside one operator stops at its next yield, and keeps the analysts' thread
    // until then (as over HTTP): the next query answers once it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let out = psql(&server, Some(PASSWORD), "SELECT 1");
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the endpoint never answered again: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn postgresql_outside_loopback_needs_a_password() {
    let (dir, args) = sample_lake("", &[]);
    let out = crate::support::run(
        dir.path(),
        &crate::support::with_args(
            &args,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--pg-listen",
                "0.0.0.0:0",
            ],
        ),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[server] pg_password"), "{stderr}");
    // A password written into the config is refused: secrets are references.
    let (dir, args) = sample_lake("[server]\npg_password = \"hunter2\"\n", &[]);
    let out = crate::support::run(dir.path(), &crate::support::with_args(&args, &["serve"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secrets are not written in the config"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// `sql` as Grafana sends it for a time range and a `service` variable: `$__timeFilter(col)` as
/// `col BETWEEN 'from' AND 'to'` (RFC 3339, UTC), `$service` as the value chosen (raw: a
/// single-value variable is not quoted by Grafana, the panels quote it).
fn grafana_expanded(sql: &str, from: &str, to: &str, service: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__timeFilter(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "$__timeFilter(".len()..];
        let close = after.find(')').expect("a closing parenthesis");
        out.push_str(&format!(
            "{} BETWEEN '{from}' AND '{to}'",
            after[..close].trim()
        ));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.replace("$service", service)
}

#[test]
fn the_grafana_dashboards_panels_run_with_their_macros_expanded() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/grafana/infra-review.json"),
        )
        .expect("the dashboard file"),
    )
    .expect("the dashboard is JSON");
    let (_dir, _args, server) = start();
    // The variable's choices.
    let variable = &dashboard["templating"]["list"][0];
    assert_eq!(variable["allValue"], "__all");
    let services = psql_rows(&server, variable["query"].as_str().unwrap());
    assert!(
        services.iter().any(|row| row[0] == "checkout"),
        "{services:?}"
    );
    // The sample's year, as Grafana sends a twelve-month range.
    let (from, to) = ("2025-11-01T00:00:00Z", "2026-10-31T23:59:59Z");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "doracost", "{title}");
        for target in panel["targets"].as_array().unwrap() {
            let sql = target["rawSql"].as_str().unwrap();
            for service in ["__all", "checkout"] {
                let rows = psql_rows(&server, &grafana_expanded(sql, from, to, service));
                if service == "__all" {
                    assert!(!rows.is_empty(), "{title}: no rows for all services");
                }
            }
        }
    }
}

/// `psql` over TLS as `sslmode` asks (the CA file for verify-full), the password given.
fn psql_tls(server: &Server, sslmode: &str, root: &Path, command: &str) -> Output {
    Command::new("psql")
        .args([
            "-X",
            "-w",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            command,
        ])
        .arg(format!(
            "host=127.0.0.1 port={} user=doracost dbname=doracost sslmode={sslmode} sslrootcert={}",
            server.pg_port,
            root.display()
        ))
        .env("PGPASSWORD", PASSWORD)
        .env("PGCONNECT_TIMEOUT", "30")
        .output()
        .expect("psql runs")
}

#[test]
fn with_tls_configured_every_connection_is_encrypted_and_plaintext_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    // A self-signed certificate for 127.0.0.1, as an operator would make one with openssl.
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls = format!(
        "pg_tls_cert = \"{}\"\npg_tls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let (dir, args) = sample_lake(&format!("{CONFIG}{tls}"), &[("events", "events")]);
    let server = Server::start_with_env(
        dir.path(),
        &args,
        &[("DORACOST_TEST_PG_PASSWORD", PASSWORD)],
    );

    for sslmode in ["require", "verify-full"] {
        let out = psql_tls(&server, sslmode, &cert, "SELECT count(*) FROM dora_monthly");
        assert!(
            out.status.success(),
            "{sslmode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info = psql_tls(&server, sslmode, &cert, "\\conninfo");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains("SSL connection (protocol: TLSv1.3"),
            "{sslmode}: {info}"
        );
    }
    // A client that does not ask for TLS is refused, never served in plaintext.
    let out = psql_tls(&server, "disable", &cert, "SELECT 1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("accepts TLS connections only"), "{err}");
    drop(server);

    // An unreadable key stops the server at start, naming the file.
    std::fs::write(&key, "not a key").unwrap();
    let out = crate::support::doracost()
        .current_dir(dir.path())
        .args(&args)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--pg-listen",
            "127.0.0.1:0",
        ])
        .env("DORACOST_TEST_PG_PASSWORD", PASSWORD)
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_tls") && err.contains("key.pem"), "{err}");
}

#[test]
fn psql_pages_a_big_answer_through_a_cursor() {
    let (_dir, _args, server) = start();
    let query = "SELECT name, CAST(period_start AS VARCHAR) FROM dora_daily WHERE scope = 'service' ORDER BY 1, 2";
    let whole = psql_rows(&server, query);
    assert!(whole.len() > 250, "{} rows: too few to page", whole.len());
    // With FETCH_COUNT psql runs BEGIN; DECLARE _psql_cursor NO SCROLL CURSOR FOR …; FETCH
    // FORWARD 100 FROM _psql_cursor (until fewer come back); CLOSE; COMMIT.
    let out = Command::new("psql")
        .args([
            "-X",
            "-w",
            "-A",
            "-t",
            "-F",
            ",",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "FETCH_COUNT=100",
        ])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.pg_port.to_string(),
            "-U",
            "doracost",
            "-d",
            "doracost",
        ])
        .args(["-c", query])
        .env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "disable")
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paged: Vec<Vec<String>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(paged, whole, "the pages put together are the answer");

    // By hand: pages of 2, then what is left; a transaction's end closes its cursors.
    let rows = psql_rows(
        &server,
        "BEGIN; DECLARE c CURSOR FOR SELECT service FROM services ORDER BY service; FETCH 2 FROM c; FETCH NEXT FROM c",
    );
    let names = psql_rows(&server, "SELECT service FROM services ORDER BY service");
    // psql prints each statement's answer: the two tags, the page of two, then the third row.
    let mut expected = vec![vec!["BEGIN".to_owned()], vec!["DECLARE CURSOR".to_owned()]];
    expected.extend(names[..3].iter().cloned());
    assert_eq!(rows, expected);
    let err = psql_error(
        &server,
        Some(PASSWORD),
        "BEGIN; DECLARE c CURSOR FOR SELECT 1; COMMIT; FETCH 1 FROM c",
    );
    assert!(
        err.contains("34000") && err.contains("does not exist"),
        "{err}"
    );
    let err = psql_error(
        &server,
        Some(PASSWORD),
        "DECLARE c CURSOR FOR DELETE FROM deployments",
    );
    assert!(!err.is_empty());
}

#[test]
fn jdbc_prepares_binds_pages_and_lists_tables() {
    let (dir, args, server) = start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/pg/Jdbc.java");
    let out = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(script)
        .args([&server.pg_port.to_string(), PASSWORD, "checkout"])
        .output()
        .expect("java runs (CI installs default-jdk-headless and libpostgresql-jdbc-java)");
    assert!(
        out.status.success(),
        "Jdbc.java: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let expected = crate::support::sql_rows(
        dir.path(),
        &args,
        "SELECT count(*), sum(deployments) FROM dora_monthly WHERE scope = 'service' AND name = 'checkout'",
    );
    assert_eq!(answer["rows"].to_string(), expected[0][0]);
    assert_eq!(answer["deployments"].to_string(), expected[0][1]);
    assert!(answer["tables"].as_u64().unwrap() >= 10, "{answer}");
    let daily = crate::support::sql_rows(
        dir.path(),
        &args,
        "SELECT count(*) FROM dora_daily WHERE scope = 'service'",
    );
    // A fetch size pages through the answer, which stops at this test's `sql_max_rows = 1000`.
    assert!(daily[0][0].parse::<u64>().unwrap() > 1000);
    assert_eq!(answer["paged"], 1000);
}
