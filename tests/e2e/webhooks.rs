//! `POST /api/v1/events` and `/metrics` against the real binary over the small sample: the
//! token, durability after the answer (kill -9 included), bad and oversized bodies, batching, and
//! the Prometheus text format checked by `promtool`.

use std::process::Stdio;

use serde_json::Value;

use crate::server::Server;
use crate::support::{HttpResponse, http_request, sample_lake, sql_rows};

const TOKEN: &str = "t0ken-for-tests";

/// A deployment of `checkout` to production with one change, in the generic event format.
fn deployment(id: &str, finished_at: &str) -> String {
    format!(
        r#"{{"type":"deployment","id":"{id}","service":"checkout","repo":"acme/checkout","environment":"production","commit_sha":"feed{id}","started_at":"2026-10-20T10:00:00Z","finished_at":"{finished_at}","status":"success","changes":[{{"repo":"acme/checkout","sha":"feed{id}","committed_at":"2026-10-20T08:00:00Z"}}]}}"#
    )
}

fn post(server: &Server, token: Option<&str>, body: &str) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    http_request(
        server.port,
        "POST",
        "/api/v1/events",
        &headers,
        body.as_bytes(),
    )
    .expect("the server answers")
}

fn json(response: &HttpResponse) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body))
}

fn count(dir: &std::path::Path, args: &[String], sql: &str) -> i64 {
    sql_rows(dir, args, sql)[0][0].parse().unwrap()
}

#[test]
fn posted_events_need_the_token_and_are_in_the_lake_after_a_kill_9() {
    let (dir, args) = sample_lake(
        "[server]\ntoken = { env = \"DORACOST_TEST_TOKEN\" }\nmax_body_bytes = 4000\n",
        &[("events", "events")],
    );
    let env = [("DORACOST_TEST_TOKEN", TOKEN)];
    let server = Server::start_with_env(dir.path(), &args, &env);
    let body = deployment("webhook-1", "2026-10-20T10:05:00Z");

    let none = post(&server, None, &body);
    assert_eq!(none.status, 401, "{}", none.body);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = post(&server, Some("t0ken-for-test"), &body);
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(!wrong.body.contains(TOKEN), "the token is never echoed");

    // A bad record: 400 naming the record and field, and nothing written.
    let bad = format!(
        "[{}, {}]",
        deployment("webhook-2", "2026-10-20T10:05:00Z"),
        deployment("webhook-3", "yesterday")
    );
    let refused = post(&server, Some(TOKEN), &bad);
    assert_eq!(refused.status, 400, "{}", refused.body);
    let error = json(&refused)["error"].clone();
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("[1]"), "names the record: {message}");
    assert!(
        message.contains("finished_at"),
        "names the field: {message}"
    );
    assert!(error["field"].as_str().unwrap().contains("finished_at"));

    // Over `max_body_bytes`: 413.
    let big = format!("[{}]", vec![body.as_str(); 20].join(","));
    assert!(big.len() > 4000);
    let too_large = post(&server, Some(TOKEN), &big);
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(
        json(&too_large)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes")
    );

    let accepted = post(&server, Some(TOKEN), &body);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let answer = json(&accepted);
    assert_eq!(answer["accepted"]["deployments"], 1);
    assert_eq!(answer["accepted"]["changes"], 1);
    // Killed right after the answer: the deployment is in the lake all the same.
    server.kill_hard();
    let ids = "SELECT count(*) FROM deployments WHERE deployment_id IN ('events:deployment:webhook-1', 'events:deployment:webhook-2', 'events:deployment:webhook-3')";
    assert_eq!(count(dir.path(), &args, ids), 1, "only the accepted one");

    // A restarted server serves it (its refresh at start brings the derived tables up to date).
    let server = Server::start_with_env(dir.path(), &args, &env);
    let dora = server.ok("/api/v1/dora?service=checkout&from=2026-10-01&to=2026-10-31");
    let expected = count(
        dir.path(),
        &args,
        "SELECT count(*) FROM dora_deployments WHERE service = 'checkout' \
           AND month = DATE '2026-10-01'",
    );
    assert_eq!(dora["rows"][0]["deployments"], expected, "{dora}");
}

#[test]
fn concurrent_posts_are_batched_into_fewer_commits() {
    let (dir, args) = sample_lake("", &[("events", "events")]);
    let server = Server::start(dir.path(), &args);
    let posts = 32;
    let threads: Vec<_> = (0..posts)
        .map(|i| {
            let port = server.port;
            std::thread::spawn(move || {
                let body = deployment(&format!("burst-{i}"), "2026-10-21T10:05:00Z");
                http_request(port, "POST", "/api/v1/events", &[], body.as_bytes()).unwrap()
            })
        })
        .collect();
    let mut shared = 0;
    for thread in threads {
        let response = thread.join().unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        if json(&response)["commit"]["requests"].as_u64().unwrap() > 1 {
            shared += 1;
        }
    }
    assert!(shared > 0, "no two posts shared a commit");
    assert_eq!(
        count(
            dir.path(),
            &args,
            "SELECT count(*) FROM deployments WHERE deployment_id LIKE 'events:deployment:burst-%'"
        ),
        posts
    );
    let metrics = http_request(server.port, "GET", "/metrics", &[], b"").unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {}", metrics.body))
    };
    assert_eq!(
        value("doracost_event_requests_committed_total"),
        posts as f64
    );
    assert!(value("doracost_event_commits_total") < posts as f64);

    // The refresh after them recomputed only the rows of the services they touched, and the
    // server then answers from fresh derived tables, equal to the views computed live.
    let mut live = crate::support::doracost();
    live.current_dir(dir.path())
        .env("DORACOST_DERIVED", "off")
        .args(crate::support::with_args(&args, &[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) FROM dora_deployments WHERE service = 'checkout' AND month = DATE '2026-10-01'",
        ]));
    let out = crate::support::succeeded(&[], live.output().unwrap());
    let expected: i64 = crate::support::csv_rows(&out)[1][0].parse().unwrap();
    assert!(expected >= posts as i64);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let dora = server.ok("/api/v1/dora?service=checkout&from=2026-10-01&to=2026-10-31");
        if dora["rows"][0]["deployments"] == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the posted deployments are not served: {dora}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let derived = server.ok("/api/v1/derived");
    assert!(
        derived["tables"]
            .as_array()
            .is_some_and(|rows| rows.iter().all(|r| r["status"] == "fresh")),
        "{derived}"
    );
    let text = strip_ansi(&std::fs::read_to_string(dir.path().join("server.log")).unwrap());
    assert!(text.contains("incremental=true"), "{text}");
}

#[test]
fn metrics_pass_promtool_and_match_the_views() {
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let server = Server::start(dir.path(), &args);
    server.ok("/api/v1/dora");
    let response = http_request(server.port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = &response.body;

    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (.ci/run installs Debian's prometheus)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The latest complete month's deployments per day of checkout, as SQL has it.
    let want: f64 = sql_rows(
        dir.path(),
        &args,
        "SELECT CAST(deploys_per_day AS DOUBLE) FROM dora_monthly WHERE scope = 'service' \
           AND name = 'checkout' AND period_start = (SELECT max(period_start) FROM dora_period_grid \
           WHERE period = 'month' AND period_end <= current_date())",
    )[0][0]
        .parse()
        .unwrap();
    let line = body
        .lines()
        .find(|l| {
            l.starts_with(
                "doracost_dora_deployments_per_day{service=\"checkout\",team=\"payments\"}",
            )
        })
        .unwrap_or_else(|| panic!("no checkout series:\n{body}"));
    let got: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((got - want).abs() < 1e-9, "{got} against {want}");

    for family in [
        "doracost_dora_lead_time_median_seconds{",
        "doracost_dora_level{",
        "doracost_cost_month_to_date{",
        "doracost_cost_forecast{",
        "doracost_budget_used_ratio{",
        "doracost_ingest_last_timestamp_seconds{source=\"events\"}",
        "doracost_derived_table_fresh{",
        "doracost_http_requests_total{route=\"/api/v1/dora\",method=\"GET\",status=\"200\"} 1",
        "doracost_http_request_duration_seconds_bucket{route=\"/api/v1/dora\",le=\"+Inf\"} 1",
    ] {
        assert!(body.contains(family), "no {family} in\n{body}");
    }
}

/// `text` without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
