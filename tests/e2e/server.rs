//! `doracost serve` as a client sees it: the real binary on a free loopback port over the small
//! sample organisation, reached over real HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{http_json, ok_with, sample_lake, small_sample, sql_rows, with_args};

/// A running `doracost serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// The port it bound.
    pub port: u16,
    /// The PostgreSQL endpoint's port.
    pub pg_port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `doracost ARGS… serve --listen 127.0.0.1:0 --pg-listen 127.0.0.1:0` in `dir` and
    /// waits until it is ready.
    pub fn start(dir: &Path, args: &[String]) -> Server {
        Server::start_with_env(dir, args, &[])
    }

    /// [`Server::start`] with environment variables set; its log goes to `dir/server.log`.
    pub fn start_with_env(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("a log file");
        let mut child = crate::support::doracost()
            .current_dir(dir)
            .args(with_args(
                args,
                &[
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--pg-listen",
                    "127.0.0.1:0",
                ],
            ))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the binary runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a first line");
        // "serving on http://127.0.0.1:PORT/ and postgresql://doracost@127.0.0.1:PORT/doracost …"
        let port_after = |scheme: &str| {
            line.split(scheme)
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no {scheme} address in the first line: {line:?}"))
        };
        let port = port_after("http://127.0.0.1:");
        let pg_port = port_after("@127.0.0.1:");
        let server = Server {
            child,
            port,
            pg_port,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok((200, _)) = http_json(self.port, "GET", "/readyz", "") {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server with SIGKILL, as the OOM killer or a failed host would.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET path`: the status and the body parsed as JSON.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = http_json(self.port, "GET", path, "").expect("the server answers");
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
        (status, json)
    }

    /// `GET path`, which must answer 200.
    pub fn ok(&self, path: &str) -> Value {
        let (status, json) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {json}");
        json
    }
}

/// A lake with the small sample's events and bills.
fn sample_with_costs() -> (tempfile::TempDir, Vec<String>) {
    sample_lake("", &[("events", "events"), ("focus", "costs")])
}

#[test]
fn health_and_the_json_api_answer_what_sql_answers() {
    let (dir, args) = sample_with_costs();
    let server = Server::start(dir.path(), &args);

    assert_eq!(server.ok("/healthz")["status"], "ok");
    assert_eq!(server.ok("/readyz")["status"], "ready");

    let services = server.ok("/api/v1/services");
    let names: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 12, "{names:?}");

    // The latest month per service, as `doracost sql` computes it.
    let expected = sql_rows(
        dir.path(),
        &args,
        "SELECT name, CAST(period_start AS VARCHAR), deployments, change_failures, \
           coalesce(CAST(lead_time_median_hours AS VARCHAR), 'null') \
         FROM dora_monthly WHERE scope = 'service' \
           AND period_start = (SELECT max(period_start) FROM dora_period_grid WHERE period = 'month') \
         ORDER BY name",
    );
    let dora = server.ok("/api/v1/dora");
    assert_eq!(dora["period"], "month");
    let rows: Vec<&Value> = dora["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["scope"] == "service")
        .collect();
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows.len(), 12);
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(row["name"], want[0].as_str());
        assert_eq!(row["period_start"], want[1].as_str());
        assert_eq!(row["deployments"].as_i64().unwrap().to_string(), want[2]);
        assert_eq!(
            row["change_failures"].as_i64().unwrap().to_string(),
            want[3]
        );
        // Hours are floats (not money): equal to the last bit or two, as the text forms of two
        // processes' medians may round differently.
        let lead = &row["lead_time_median_hours"];
        if lead.is_null() {
            assert_eq!(want[4], "null", "lead time of {}", want[0]);
        } else {
            let want: f64 = want[4].parse().unwrap();
            let got = lead.as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "lead time of {}: {got} against {want}",
                row["name"]
            );
        }
    }
    assert!(
        dora["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["scope"] == "all"),
        "the all row"
    );

    // One service over a range of months: the months between, in order.
    let first = server.ok("/api/v1/dora?service=checkout&from=2026-01-15&to=2026-03-02");
    let months: Vec<&str> = first["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period_start"].as_str().unwrap())
        .collect();
    assert_eq!(months, ["2026-01-01", "2026-02-01", "2026-03-01"]);
    assert!(
        first["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] == "checkout")
    );
    let weeks = server.ok("/api/v1/dora?period=week&team=payments&from=2026-03-02&to=2026-03-15");
    assert_eq!(weeks["period"], "week");
    assert_eq!(weeks["rows"].as_array().unwrap().len(), 2, "{weeks}");

    // Costs: money as decimal strings, equal to the digit to `doracost costs --format csv`.
    let cli = crate::support::csv_rows(&ok_with(
        dir.path(),
        &args,
        &["costs", "--month", "2026-03", "--format", "csv"],
    ));
    let costs = server.ok("/api/v1/costs?month=2026-03");
    let rows = costs["rows"].as_array().unwrap();
    assert_eq!(rows.len() + 1, cli.len(), "{costs}");
    let cost_column = cli[0].iter().position(|c| c == "cost").unwrap();
    let service_column = cli[0].iter().position(|c| c == "service").unwrap();
    for (row, want) in rows.iter().zip(&cli[1..]) {
        assert_eq!(row["service"], want[service_column].as_str());
        let cost = row["cost"].as_str().expect("money is a string");
        assert_eq!(
            crate::support::units(cost),
            crate::support::units(&want[cost_column])
        );
    }
    assert_eq!(rows.last().unwrap()["service"], "total");

    let scorecard = server.ok("/api/v1/scorecard?month=2026-03&team=payments");
    assert!(!scorecard["rows"].as_array().unwrap().is_empty());
    assert!(
        scorecard["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["team"] == "payments")
    );
    let budgets = server.ok("/api/v1/budgets");
    assert!(budgets["budgets"].is_array());
    let derived = server.ok("/api/v1/derived");
    assert!(
        derived["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "fresh"),
        "{derived}"
    );
}

#[test]
fn bad_parameters_are_400s_naming_the_parameter() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let server = Server::start(dir.path(), &args);
    for (path, parameter) in [
        ("/api/v1/dora?period=year", "period"),
        ("/api/v1/dora?from=2025-13-01", "from"),
        ("/api/v1/dora?to=yesterday", "to"),
        ("/api/v1/dora?from=2025-03-01&to=2025-01-01", "to"),
        ("/api/v1/dora?service=no-such-service", "service"),
        ("/api/v1/dora?team=nobody", "team"),
        ("/api/v1/dora?service=checkout&team=payments", "team"),
        ("/api/v1/dora?servce=checkout", "servce"),
        ("/api/v1/dora?service=checkout&service=cart", "service"),
        ("/api/v1/costs?month=2025-3x", "month"),
        // A quote in a value is a value, never SQL.
        ("/api/v1/costs?service=x%27%20OR%20%271%27=%271", "service"),
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 400, "GET {path}: {body}");
        assert_eq!(body["error"]["parameter"], parameter, "GET {path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    }
    let (status, body) = server.get("/api/v1/nothing-here");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/nothing-here")
    );
}

#[test]
fn the_server_sees_another_process_ingest_without_a_restart() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let server = Server::start(dir.path(), &args);
    let before = server.ok("/api/v1/costs?month=2026-03");
    let only: Vec<&str> = before["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert!(
        only.is_empty() || only == ["total"],
        "no bill yet: {before}"
    );
    // The same question again is answered from the cache of this lake state.
    let again =
        crate::support::http_request(server.port, "GET", "/api/v1/costs?month=2026-03", &[], b"")
            .unwrap();
    assert_eq!(again.header("x-cache"), Some("hit"));
    assert_eq!(serde_json::from_str::<Value>(&again.body).unwrap(), before);

    let bills = small_sample().join("costs");
    ok_with(
        dir.path(),
        &args,
        &["ingest", "focus", bills.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let costs = server.ok("/api/v1/costs?month=2026-03");
        if costs["rows"].as_array().unwrap().len() > 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server still answers the lake before the ingest: {costs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_non_loopback_listen_without_a_token_refuses_to_start() {
    let (dir, args) = sample_lake("", &[]);
    let out = crate::support::run(
        dir.path(),
        &with_args(&args, &["serve", "--listen", "0.0.0.0:0"]),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[server] token"), "{stderr}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let mut server = Server::start(dir.path(), &args);
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("waits") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn data_quality_answers_what_the_views_say_and_openapi_lists_every_route() {
    let (dir, args) = sample_with_costs();
    let server = Server::start(dir.path(), &args);

    let quality = server.ok("/api/v1/data-quality?month=2026-03");
    assert_eq!(quality["month"], "2026-03");
    let all = quality["lead_time_coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "all")
        .unwrap_or_else(|| panic!("no overall row: {quality}"));
    let want = sql_rows(
        dir.path(),
        &args,
        "SELECT deployments, deployments_with_commit_list FROM dora_monthly \
         WHERE scope = 'all' AND period_start = DATE '2026-03-01'",
    );
    assert_eq!(all["deployments"].as_i64().unwrap().to_string(), want[0][0]);
    assert_eq!(
        all["deployments_with_commit_list"]
            .as_i64()
            .unwrap()
            .to_string(),
        want[0][1]
    );
    let incidents: i64 = quality["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["incidents"].as_i64().unwrap())
        .sum();
    let want = sql_rows(
        dir.path(),
        &args,
        "SELECT count(*) FROM dora_incidents WHERE started_month = DATE '2026-03-01'",
    );
    assert_eq!(incidents.to_string(), want[0][0]);
    let unallocated = &quality["unallocated"][0];
    let want = sql_rows(
        dir.path(),
        &args,
        "SELECT CAST(bill AS VARCHAR), CAST(unallocated AS VARCHAR) FROM cost_reconciliation \
         WHERE month = DATE '2026-03-01' ORDER BY provider, currency",
    );
    assert_eq!(
        unallocated["bill"],
        want[0][0].as_str(),
        "money as decimal strings"
    );
    assert_eq!(unallocated["unallocated"], want[0][1].as_str());
    let sources: Vec<&str> = quality["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"events"), "{sources:?}");
    assert_eq!(quality["derived"].as_array().unwrap().len(), 7, "{quality}");
    let (status, body) = server.get("/api/v1/data-quality?month=March");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "month");

    let document = server.ok("/api/v1/openapi.json");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/api/v1/alerts",
            "/api/v1/budgets",
            "/api/v1/costs",
            "/api/v1/data-quality",
            "/api/v1/derived",
            "/api/v1/dora",
            "/api/v1/events",
            "/api/v1/openapi.json",
            "/api/v1/scorecard",
            "/api/v1/services",
            "/api/v1/sql",
            "/healthz",
            "/metrics",
            "/readyz",
            "/webhooks/github",
        ]
    );
    let dora: Vec<&str> = paths["/api/v1/dora"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(dora, ["period", "service", "team", "from", "to"]);
    assert_eq!(
        paths["/api/v1/events"]["post"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    let sql = &paths["/api/v1/sql"]["post"];
    assert_eq!(sql["security"][0]["bearer"], serde_json::json!([]));
    let answers = sql["responses"]["200"]["content"].as_object().unwrap();
    assert!(
        answers.contains_key("application/vnd.apache.parquet"),
        "{sql}"
    );
    assert!(
        sql["requestBody"]["content"]["application/sql"].is_object(),
        "{sql}"
    );
    // Every GET the document lists is served.
    for (path, operations) in paths {
        if operations.get("get").is_some() {
            let status = crate::support::http_request(server.port, "GET", path, &[], b"")
                .unwrap()
                .status;
            assert_eq!(status, 200, "GET {path}");
        }
    }
}

#[test]
fn a_request_over_the_time_limit_is_a_503_json_error() {
    // 1 ms: any query computed (not cached) is over it; the health checks answer at once.
    let (dir, args) = sample_lake(
        "[server]\nrequest_timeout_seconds = 0.001\n",
        &[("events", "events")],
    );
    let server = Server::start(dir.path(), &args);
    let (status, body) = server.get("/api/v1/dora?period=day&from=2025-06-01&to=2026-06-01");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{body}"
    );
    drop(server);

    let (dir, args) = sample_lake("[server]\npoll_seconds = -1\n", &[]);
    let out = crate::support::run(
        dir.path(),
        &with_args(&args, &["serve", "--listen", "127.0.0.1:0"]),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[server] poll_seconds = -1"), "{stderr}");
}
