//! Budget alerts, anomaly digests and scheduled reports through real receivers on loopback: an
//! SMTP server (aiosmtpd) and an HTTP server taking a Slack-style webhook's posts
//! (`alerts/sink.py`). The numbers in the subjects are the small sample's, worked out from
//! `budget_threshold_status` (growth: 656.82 of 800.00 = 82.1 %; payments: 1,070.40 of
//! 1,300.00 = 82.3 %; both past their 80 % actual threshold, neither forecast past 100 %).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{doracost, ok_with, sample_lake, sql_rows, with_args};

/// A receiver of `sink.py`, killed when dropped.
struct Sink {
    child: Child,
    dir: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `sink.py MODE` on `port`, writing what it receives under `dir`.
fn start(mode: &str, dir: &Path, port: u16) -> Sink {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/alerts/sink.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([mode, dir.to_str().unwrap(), &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (CI installs aiosmtpd)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "sink.py {mode} did not start");
    Sink {
        child,
        dir: dir.to_owned(),
    }
}

/// What the sink has received, in order.
fn received(sink: &Sink) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&sink.dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The small sample's lake with `[alerts]` sending to `smtp_port` (a secret file holds the URL),
/// plus `extra` config. The config is given its alerts after the ingests (a cost ingest with
/// alerts configured evaluates the budgets itself).
fn lake_with_alerts(smtp_port: u16, extra: &str) -> (tempfile::TempDir, Vec<String>) {
    let (dir, args) = sample_lake("", &[("events", "events"), ("focus", "costs")]);
    let secret = dir.path().join("smtp.url");
    std::fs::write(&secret, format!("smtp://127.0.0.1:{smtp_port}\n")).unwrap();
    let config = format!(
        "\n[alerts]\nsmtp_url = {{ file = \"{}\" }}\nfrom = \"doracost@example.com\"\nretry_seconds = 1\npublic_url = \"https://doracost.example.com\"\n{extra}",
        secret.display()
    );
    let text = std::fs::read_to_string(&args[1]).unwrap();
    std::fs::write(&args[1], format!("{text}{config}")).unwrap();
    (dir, args)
}

/// `doracost ARGS… alerts check`, whatever its exit status: (success, stdout).
fn check(dir: &Path, args: &[String]) -> (bool, String) {
    let out = doracost()
        .current_dir(dir)
        .args(with_args(args, &["alerts", "check"]))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const GROWTH: &str = "[P3] Budget growth-team (team growth): spent 82% of USD 800.00 for 2026-10";
const PAYMENTS: &str =
    "[P3] Budget payments-team (team payments): spent 82% of USD 1,300.00 for 2026-10";
/// Anomalies stay out of the budget tests.
const NO_ANOMALIES: &str = "anomaly_min_impact = \"1000000\"\n";

#[test]
fn budget_alerts_reach_smtp_once_after_it_comes_back_with_both_parts_and_the_chart() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(port, NO_ANOMALIES);
    let dry = ok_with(dir.path(), &args, &["alerts", "check", "--dry-run"]);
    assert!(
        dry.contains(&format!(
            "would queue email [budget/growth-team/2026-10/actual/640/email]: {GROWTH}"
        )),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "would queue email [budget/payments-team/2026-10/actual/1040/email]: {PAYMENTS}"
        )),
        "{dry}"
    );
    assert!(!dry.contains("core-team"), "{dry}");
    assert!(sql_rows(dir.path(), &args, "SELECT * FROM alerts").is_empty());

    // SMTP down: queued, tried once, the error kept, a non-zero exit.
    let (success, out) = check(dir.path(), &args);
    assert!(!success, "{out}");
    assert!(
        out.contains("not sent email to growth-lead@example.com"),
        "{out}"
    );
    let rows = sql_rows(
        dir.path(),
        &args,
        "SELECT alert_key, state, attempts, last_error IS NOT NULL, severity, recipients FROM alerts ORDER BY alert_key",
    );
    assert_eq!(
        rows,
        [
            [
                "budget/growth-team/2026-10/actual/640/email",
                "queued",
                "1",
                "true",
                "P3",
                "growth-lead@example.com"
            ],
            [
                "budget/payments-team/2026-10/actual/1040/email",
                "queued",
                "1",
                "true",
                "P3",
                "payments-lead@example.com"
            ],
        ]
    );

    // SMTP up, the backoff (1 s) over: each alert delivered once.
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    std::thread::sleep(Duration::from_millis(1200));
    let (success, out) = check(dir.path(), &args);
    assert!(success, "{out}");
    assert!(
        out.contains(&format!("sent email to growth-lead@example.com: {GROWTH}")),
        "{out}"
    );
    let mut got = received(&sink);
    assert_eq!(got.len(), 2);
    got.sort_by_key(|m| m["subject"].as_str().unwrap().to_owned());
    let growth = &got[0];
    assert_eq!(growth["subject"], GROWTH);
    assert_eq!(
        growth["rcpt_to"],
        serde_json::json!(["growth-lead@example.com"])
    );
    assert_eq!(growth["mail_from"], "doracost@example.com");
    assert_eq!(
        got[1]["rcpt_to"],
        serde_json::json!(["payments-lead@example.com"])
    );
    assert_eq!(growth["content_type"], "multipart/alternative");
    let text = growth["text"].as_str().unwrap();
    assert!(
        text.contains("Spent USD 656.82 of USD 800.00 (82.1 %)"),
        "{text}"
    );
    assert!(text.contains("Top cost drivers: services"), "{text}");
    assert!(text.contains("Deployments this month"), "{text}");
    assert!(text.contains("What moved the cost"), "{text}");
    assert!(
        text.contains("  - web | "),
        "growth's services are listed with their step: {text}"
    );
    assert!(
        text.contains("Dashboard: https://doracost.example.com/teams/growth?month=2026-10"),
        "{text}"
    );
    let html = growth["html"].as_str().unwrap();
    assert!(html.contains("<img src=\"cid:budget-burn\""), "{html}");
    assert!(
        html.contains("href=\"https://doracost.example.com/teams/growth?month=2026-10\""),
        "{html}"
    );
    let images = growth["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["type"], "image/png");
    assert_eq!(images[0]["cid"], "<budget-burn>");
    assert_eq!(images[0]["disposition"], "inline");
    assert_eq!(images[0]["png"], true, "the PNG decodes to its IHDR's size");
    assert!(images[0]["width"].as_u64().unwrap() >= 360);

    // Again: nothing new, nothing sent.
    let (success, out) = check(dir.path(), &args);
    assert!(success, "{out}");
    assert!(out.contains("no new alert"), "{out}");
    assert_eq!(received(&sink).len(), 2);
    assert_eq!(
        sql_rows(
            dir.path(),
            &args,
            "SELECT state, attempts, sent_at IS NOT NULL FROM alerts ORDER BY alert_key"
        ),
        [["sent", "2", "true"], ["sent", "2", "true"]]
    );
}

#[test]
fn a_killed_check_and_two_racing_ones_send_each_alert_once() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(port, NO_ANOMALIES);
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);

    // Killed between the evaluation's commit and the send.
    let mut paused = doracost()
        .current_dir(dir.path())
        .args(with_args(
            &args,
            &["--pause-after", "_commits", "alerts", "check"],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = BufReader::new(paused.stderr.take().unwrap());
    while !line.contains("paused after _commits") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the check ended before pausing"
        );
    }
    paused.kill().unwrap();
    paused.wait().unwrap();
    assert!(received(&sink).is_empty());
    assert_eq!(
        sql_rows(
            dir.path(),
            &args,
            "SELECT state, attempts FROM alerts ORDER BY alert_key"
        ),
        [["queued", "0"], ["queued", "0"]]
    );

    // Two checks at once: the lake's lock orders them; each alert goes out once.
    let racing: Vec<Child> = (0..2)
        .map(|_| {
            doracost()
                .current_dir(dir.path())
                .args(with_args(&args, &["alerts", "check"]))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in racing {
        assert!(child.wait().unwrap().success());
    }
    let got = received(&sink);
    let mut subjects: Vec<&str> = got.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    subjects.sort();
    assert_eq!(subjects, [GROWTH, PAYMENTS]);
    assert_eq!(
        sql_rows(
            dir.path(),
            &args,
            "SELECT state, attempts FROM alerts ORDER BY alert_key"
        ),
        [["sent", "1"], ["sent", "1"]]
    );
}

#[test]
fn anomalies_go_out_as_one_digest_per_recipient_and_every_alert_to_the_webhook() {
    let port = free_port();
    let hook_port = free_port();
    let hooks = tempfile::tempdir().unwrap();
    let hook_secret = hooks.path().join("hook.url");
    std::fs::write(
        &hook_secret,
        format!("http://127.0.0.1:{hook_port}/hooks/T000/B000"),
    )
    .unwrap();
    // The sample's anomalies in October (its bill's last month): payments' team on the 4th
    // (-4.40 against its baseline), and the unallocated service and the whole organisation on
    // the 1st (-26.84, -26.05). Impact ≥ 4 keeps all three.
    let (dir, args) = lake_with_alerts(
        port,
        &format!(
            "anomaly_min_impact = \"4\"\nanomaly_days = 31\nanomaly_recipients = [\"finops@example.com\"]\nslack_webhook = {{ file = \"{}\" }}\n",
            hook_secret.display()
        ),
    );
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    let hook = start("http", &hooks.path().join("got"), hook_port);
    let (success, out) = check(dir.path(), &args);
    assert!(success, "{out}");

    let got = received(&sink);
    let digest = |to: &str| {
        got.iter()
            .find(|m| {
                m["rcpt_to"] == serde_json::json!([to])
                    && m["subject"].as_str().unwrap().starts_with("Cost anomalies")
            })
            .unwrap_or_else(|| panic!("no digest to {to}: {got:?}"))
    };
    let finops = digest("finops@example.com");
    assert_eq!(
        finops["subject"],
        "Cost anomalies: 3 from 2026-10-01 to 2026-10-04"
    );
    let text = finops["text"].as_str().unwrap();
    assert!(
        text.contains("team payments on 2026-10-04: -USD 4.40"),
        "{text}"
    );
    assert!(
        text.contains("service unallocated on 2026-10-01: -USD 26.84"),
        "{text}"
    );
    assert!(text.contains("all all on 2026-10-01: -USD 26.05"), "{text}");
    let payments = digest("payments-lead@example.com");
    assert_eq!(payments["subject"], "Cost anomalies: 1 on 2026-10-04");
    // Budget alerts (2) and the two digests; nobody else.
    assert_eq!(got.len(), 4, "{got:?}");

    // The webhook: each budget alert, and the anomalies as one digest, as Slack's `{"text": …}`.
    let posts = received(&hook);
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert!(
        posts
            .iter()
            .all(|p| p["path"] == "/hooks/T000/B000" && p["content_type"] == "application/json")
    );
    let texts: Vec<&str> = posts
        .iter()
        .map(|p| p["body"]["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("*{GROWTH}*\n"))),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Spent USD 1,070.40 of USD 1,300.00 (82.3 %) as of 2026-10-31")),
        "{texts:?}"
    );
    let digest = texts
        .iter()
        .find(|t| t.starts_with("*Cost anomalies: 3 from 2026-10-01 to 2026-10-04*"))
        .unwrap();
    assert!(
        digest.contains("team payments on 2026-10-04: -USD 4.40"),
        "{digest}"
    );

    // Once: a second check sends nothing more on either channel.
    let (success, out) = check(dir.path(), &args);
    assert!(success && out.contains("no new alert"), "{out}");
    assert_eq!(received(&sink).len(), 4);
    assert_eq!(received(&hook).len(), 3);
}

#[test]
fn the_monthly_review_goes_out_once_per_scheduled_run_and_a_missed_one_is_made_once() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(
        port,
        &format!(
            "{NO_ANOMALIES}schedule = \"0 8 * * *\"\n[[reports]]\nname = \"infra-review\"\nschedule = \"0 9 1W * *\"\nrecipients = [\"platform@example.com\", \"cto@example.com\"]\n"
        ),
    );
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    let tick = |now: &str| ok_with(dir.path(), &args, &["alerts", "tick", "--now", now]);

    // The first turn only starts the clocks.
    let first = tick("2026-07-15T12:00:00Z");
    assert!(!first.contains("ran "), "{first}");
    // Down from July 15th to August 5th: the review due on Monday August 3rd (the 1st is a
    // Saturday) at 09:00 runs once, the daily check once (as of the 5th, 08:00).
    let late = tick("2026-08-05T12:00:00Z");
    assert!(
        late.contains("ran report:infra-review (scheduled 2026-08-03T09:00:00Z)"),
        "{late}"
    );
    assert!(
        late.contains("ran alerts (scheduled 2026-08-05T08:00:00Z)"),
        "{late}"
    );
    assert!(
        late.contains("sent email to platform@example.com, cto@example.com"),
        "{late}"
    );
    let again = tick("2026-08-05T12:30:00Z");
    assert!(!again.contains("ran "), "{again}");
    let reviews: Vec<Value> = received(&sink)
        .into_iter()
        .filter(|m| m["rcpt_to"] == serde_json::json!(["platform@example.com", "cto@example.com"]))
        .collect();
    assert_eq!(reviews.len(), 1);
    let review = &reviews[0];
    assert_eq!(review["subject"], "Monthly infra review for 2026-07");
    let text = review["text"].as_str().unwrap();
    assert!(
        text.contains("The whole review: https://doracost.example.com/?month=2026-07"),
        "{text}"
    );
    let images = review["images"].as_array().unwrap();
    assert!(images.len() >= 10, "tiles and charts inline: {images:?}");
    assert!(images.iter().all(|i| i["png"] == true), "{images:?}");
    let html = review["html"].as_str().unwrap();
    for image in images {
        let cid = image["cid"].as_str().unwrap().trim_matches(['<', '>']);
        assert!(
            html.contains(&format!("src=\"cid:{cid}\"")),
            "{cid} not shown"
        );
    }
    // The run history is in the lake.
    let runs = sql_rows(
        dir.path(),
        &args,
        "SELECT scope, cursor FROM ingest_state WHERE source = 'schedule' ORDER BY scope",
    );
    assert_eq!(
        runs,
        [
            ["alerts", "2026-08-05T08:00:00Z"],
            ["report:infra-review", "2026-08-03T09:00:00Z"]
        ]
    );
}

#[test]
fn send_test_reaches_the_address_and_a_bad_smtp_url_is_named() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(port, "");
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    let out = ok_with(
        dir.path(),
        &args,
        &["alerts", "send-test", "--to", "me@example.com"],
    );
    assert!(
        out.contains("sent a test message to me@example.com"),
        "{out}"
    );
    wait_for("the test message", || received(&sink).len() == 1);
    let got = received(&sink);
    assert_eq!(got[0]["subject"], "doracost test message");
    assert_eq!(got[0]["rcpt_to"], serde_json::json!(["me@example.com"]));

    std::fs::write(dir.path().join("smtp.url"), "mailto:someone").unwrap();
    let out = crate::support::fails(dir.path(), &with_args(&args, &["alerts", "check"]));
    assert!(out.contains("alerts.smtp_url: not an SMTP URL"), "{out}");
    assert!(
        !out.contains("mailto:someone"),
        "the secret is not shown: {out}"
    );
}

#[test]
fn the_server_alerts_on_new_costs_and_shows_the_history() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(port, NO_ANOMALIES);
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    let server = crate::server::Server::start(dir.path(), &args);
    // The lake's costs are new to the server: the budgets are evaluated at once, and the two
    // crossed thresholds mailed.
    wait_for("the budget alerts from the server", || {
        received(&sink).len() == 2
    });
    let mut subjects: Vec<String> = received(&sink)
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(subjects, [GROWTH, PAYMENTS]);
    // The history, once the server follows its own commits.
    wait_for("the alerts' history", || {
        let alerts = server.ok("/api/v1/alerts");
        let list = alerts["alerts"].as_array().unwrap();
        list.len() == 2 && list.iter().all(|a| a["state"] == "sent")
    });
    let alerts = server.ok("/api/v1/alerts");
    let first = &alerts["alerts"].as_array().unwrap()[0];
    assert_eq!(first["channel"], "email");
    assert_eq!(first["attempts"], 1);
    let (status, page) =
        crate::support::http_json(server.port, "GET", "/dashboards/alerts", "").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("growth-lead@example.com"), "{page}");
    let (_, metrics) = crate::support::http_json(server.port, "GET", "/metrics", "").unwrap();
    assert!(
        metrics.contains("doracost_alerts{state=\"sent\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("doracost_alerts{state=\"failed\"} 0"),
        "{metrics}"
    );
    // Still once after the scheduler's next turns.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(received(&sink).len(), 2);
}

#[test]
fn schedules_keep_their_local_time_across_a_dst_change() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(
        port,
        &format!(
            "{NO_ANOMALIES}schedule = \"30 2 * * *\"\n[[reports]]\nname = \"daily\"\nschedule = \"0 9 * * *\"\nrecipients = [\"platform@example.com\"]\n"
        ),
    );
    // Berlin time: the sample's numbers do not matter here, only when the jobs run.
    let text = std::fs::read_to_string(&args[1]).unwrap();
    std::fs::write(
        &args[1],
        text.replacen("time_zone = \"UTC\"", "time_zone = \"Europe/Berlin\"", 1),
    )
    .unwrap();
    let mail = tempfile::tempdir().unwrap();
    let _sink = start("smtp", mail.path(), port);
    let tick = |now: &str| ok_with(dir.path(), &args, &["alerts", "tick", "--now", now]);
    tick("2026-03-28T12:00:00Z");
    // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin. 02:30 does not exist: the daily
    // check runs at the first instant after the gap, 03:00 CEST (01:00 UTC), not before.
    let before = tick("2026-03-29T00:59:59Z");
    assert!(!before.contains("ran "), "{before}");
    let gap = tick("2026-03-29T01:00:00Z");
    assert!(
        gap.contains("ran alerts (scheduled 2026-03-29T01:00:00Z)"),
        "{gap}"
    );
    // 09:00 CEST is 07:00 UTC that day (08:00 UTC the day before).
    let report = tick("2026-03-29T07:00:00Z");
    assert!(
        report.contains("ran report:daily (scheduled 2026-03-29T07:00:00Z)"),
        "{report}"
    );
    assert!(!report.contains("ran alerts"), "{report}");
    // Autumn: 2026-10-25, 02:30 happens twice; the check runs once that night.
    tick("2026-10-24T12:00:00Z");
    let first = tick("2026-10-25T00:30:00Z");
    assert!(
        first.contains("ran alerts (scheduled 2026-10-25T00:30:00Z)"),
        "{first}"
    );
    let second = tick("2026-10-25T01:30:00Z");
    assert!(!second.contains("ran alerts"), "{second}");
}

#[test]
fn a_tag_budget_sums_the_lines_carrying_its_tag_and_a_cost_ingest_alerts_with_its_chart() {
    let port = free_port();
    // The sample's platform costs carry `shared = "platform"`: 62 lines in October, 156.48 in
    // all (the same sum straight from `costs` below). 156.48 of 100.00 is 156 %, past the
    // 50.00 amount (P2) but not the 500 % forecast (P1).
    let (dir, args) = lake_with_alerts(
        port,
        &format!(
            "{NO_ANOMALIES}[[budgets]]\nname = \"platform-shared\"\nscope = {{ tag = {{ shared = \"platform\" }} }}\nmonthly_amount = \"100.00\"\nthresholds = [{{ amount = \"50.00\", kind = \"actual\", severity = \"P2\" }}, {{ percent = 500, kind = \"forecast\", severity = \"P1\" }}]\nrecipients = [\"platform@example.com\"]\n"
        ),
    );
    assert_eq!(
        sql_rows(
            dir.path(),
            &args,
            "SELECT CAST(sum(effective_cost) AS DECIMAL(38, 2)), count(*) FROM costs \
             WHERE map_extract(tags, 'shared')[1] = 'platform' \
             AND charge_period_start >= TIMESTAMP '2026-10-01T00:00:00Z' AND charge_period_start < TIMESTAMP '2026-11-01T00:00:00Z'"
        ),
        [["156.48", "62"]]
    );
    assert_eq!(
        sql_rows(
            dir.path(),
            &args,
            "SELECT scope, scope_name, CAST(actual AS DECIMAL(38, 2)) FROM budget_status WHERE budget = 'platform-shared' AND is_current"
        ),
        [["tag", "shared=platform", "156.48"]]
    );
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    // A cost ingest evaluates the budgets itself (the same bill again: nothing changes in the
    // lake, and the thresholds crossed are mailed).
    let costs = crate::support::small_sample().join("costs");
    let out = doracost()
        .current_dir(dir.path())
        .args(with_args(
            &args,
            &["ingest", "focus", costs.to_str().unwrap()],
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sent email to platform@example.com"),
        "{stderr}"
    );
    let got = received(&sink);
    assert_eq!(got.len(), 3, "growth, payments and platform");
    let platform = got
        .iter()
        .find(|m| m["rcpt_to"] == serde_json::json!(["platform@example.com"]))
        .expect("the tag budget's alert");
    assert_eq!(
        platform["subject"],
        "[P2] Budget platform-shared (tag shared=platform): spent 156% of USD 100.00 for 2026-10"
    );
    let text = platform["text"].as_str().unwrap();
    assert!(
        text.contains("Spent USD 156.48 of USD 100.00 (156.5 %)"),
        "{text}"
    );
    assert!(text.contains("Top cost drivers: cloud services"), "{text}");
    assert!(
        text.contains("Dashboard: https://doracost.example.com/costs?month=2026-10"),
        "{text}"
    );
    assert_eq!(platform["images"][0]["png"], true);
    let key = sql_rows(
        dir.path(),
        &args,
        "SELECT alert_key FROM alerts WHERE budget = 'platform-shared'",
    );
    assert_eq!(key, [["budget/platform-shared/2026-10/actual/50/email"]]);
}

#[test]
fn an_alert_that_cannot_be_sent_is_marked_failed_and_shown_on_data_quality() {
    let port = free_port();
    let (dir, args) = lake_with_alerts(port, &format!("{NO_ANOMALIES}max_attempts = 1\n"));
    // Nothing listens: the one attempt fails, and the alerts are given up on.
    let (success, out) = check(dir.path(), &args);
    assert!(!success, "{out}");
    assert_eq!(
        sql_rows(
            dir.path(),
            &args,
            "SELECT state, attempts, next_attempt_at IS NULL FROM alerts ORDER BY alert_key"
        ),
        [["failed", "1", "true"], ["failed", "1", "true"]]
    );
    // SMTP back: a failed alert stays failed (it is not sent late, or twice).
    let mail = tempfile::tempdir().unwrap();
    let sink = start("smtp", mail.path(), port);
    let (success, out) = check(dir.path(), &args);
    assert!(success && out.contains("no new alert"), "{out}");
    assert!(received(&sink).is_empty());
    // The data-quality page lists them.
    let page = dir.path().join("dq.html");
    ok_with(
        dir.path(),
        &args,
        &[
            "report",
            "--dashboard",
            "data-quality",
            "--out",
            page.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Alerts not delivered"), "no panel");
    assert!(
        html.contains("growth-lead@example.com"),
        "the failed alert is not listed"
    );
}

#[test]
fn a_malformed_alerts_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("doracost.toml");
    let cases = [
        ("[alerts]\nschedule = \"0 8 * *\"\n", "alerts.schedule"),
        (
            "[[budgets]]\nname = \"b\"\nscope = {}\nmonthly_amount = \"10\"\nthresholds = [{ percent = 1001, kind = \"actual\" }]\n",
            "budgets[0].thresholds[0].percent",
        ),
        (
            "[[budgets]]\nname = \"b\"\nscope = { region = \"eu\" }\nmonthly_amount = \"10\"\n",
            "unknown field `region`",
        ),
        (
            "[[budgets]]\nname = \"b\"\nscope = {}\nmonthly_amount = 10.5\n",
            "monthly_amount",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, text).unwrap();
        let err = crate::support::fails(
            dir.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "alerts",
                "check",
                "--dry-run",
            ],
        );
        assert!(err.contains(expected), "{expected}: {err}");
    }
}
