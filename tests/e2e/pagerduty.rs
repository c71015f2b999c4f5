//! `doracost ingest pagerduty` against a PagerDuty stand-in on loopback (real HTTP, the shapes and
//! headers of PagerDuty's REST API v2, see `ingest/src/pagerduty/fake_api.rs`), serving the small
//! sample organisation's PagerDuty account with scripted faults: 429 with `retry-after`, 502s, a
//! truncated body, an answer that never comes, retries that run out, a kill midway. The lake is
//! compared row for row with the sample's ground truth.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sample_data::writers::pagerduty::{self as writer, PagerDutyTruth};

use crate::pagerduty_api::FakePagerDuty;
use crate::support::{csv_rows, doracost};

const TOKEN: &str = "u+e2e-pagerduty-key";

/// A scripted fault, given to the next request whose path and query start with a prefix.
#[derive(Debug, Clone)]
enum Fault {
    /// This status, headers and body instead of the answer.
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    /// The answer's headers (its whole length announced) and half its body, then the connection
    /// closes.
    Truncated,
    /// No answer: the connection stays silent this long, then closes.
    Silent(Duration),
}

#[derive(Default)]
struct ServerState {
    api: Option<FakePagerDuty>,
    faults: Vec<(String, Fault)>,
    /// Every request: its target, and whether it carried the documented headers.
    seen: Vec<(String, bool)>,
}

/// The PagerDuty stand-in: one thread per connection, `Connection: close`.
struct PagerDutyServer {
    port: u16,
    state: Arc<Mutex<ServerState>>,
}

impl PagerDutyServer {
    fn start(api: FakePagerDuty) -> PagerDutyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ServerState {
            api: Some(api),
            ..ServerState::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        PagerDutyServer { port, state }
    }

    fn fault(&self, prefix: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((prefix.to_owned(), fault));
    }

    fn requests(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.seen.iter().map(|(t, _)| t.clone()).collect()
    }

    fn with_api(&self, change: impl FnOnce(&mut FakePagerDuty)) {
        change(self.state.lock().unwrap().api.as_mut().unwrap());
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<ServerState>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let target = first.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (fault, answer) = {
        let mut state = state.lock().unwrap();
        let documented = headers.get("accept").map(String::as_str)
            == Some("application/vnd.pagerduty+json;version=2")
            && headers
                .get("authorization")
                .is_some_and(|a| a.starts_with("Token token="));
        state.seen.push((target.clone(), documented));
        let fault = state
            .faults
            .iter()
            .position(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map(|i| state.faults.remove(i).1);
        let answer = state
            .api
            .as_ref()
            .unwrap()
            .answer(&target, headers.get("authorization").map(String::as_str));
        (fault, answer)
    };
    let write = |stream: &mut TcpStream,
                 status: u16,
                 headers: &[(String, String)],
                 body: &[u8],
                 len: usize| {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "content-length: {len}\r\nconnection: close\r\n\r\n"
        ));
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    match fault {
        None => {
            let (status, headers, body) = answer;
            write(&mut stream, status, &headers, body.as_bytes(), body.len());
        }
        Some(Fault::Status(status, headers, body)) => {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            write(&mut stream, status, &headers, body.as_bytes(), body.len());
        }
        Some(Fault::Truncated) => {
            let (status, headers, body) = answer;
            let half = &body.as_bytes()[..body.len() / 2];
            write(&mut stream, status, &headers, half, body.len());
        }
        Some(Fault::Silent(wait)) => {
            // Read nothing more, say nothing.
            let mut sink = [0u8; 1];
            let _ = stream.set_read_timeout(Some(wait));
            let started = Instant::now();
            while started.elapsed() < wait {
                if matches!(stream.read(&mut sink), Ok(0)) {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        _ => "Status",
    }
}

/// `doracost sample generate --scale small --formats pagerduty` into `dir/sample`: its PagerDuty
/// account served, what `truth.json` says it holds, and its `doracost.toml`.
fn sample_account(dir: &Path, scale: &str) -> (FakePagerDuty, PagerDutyTruth, String) {
    let sample = dir.join("sample");
    let out = doracost()
        .args([
            "sample",
            "generate",
            "--scale",
            scale,
            "--formats",
            "pagerduty",
            "--out",
        ])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(sample.join(name)).unwrap();
    let api = FakePagerDuty::from_bodies(
        &read("pagerduty/incidents.json"),
        &read("pagerduty/log_entries.json"),
        TOKEN,
    );
    let truth: serde_json::Value = serde_json::from_str(&read("truth.json")).unwrap();
    let truth: PagerDutyTruth = serde_json::from_value(truth["pagerduty"].clone()).unwrap();
    (api, truth, read("doracost.toml"))
}

/// A folder with the small sample's config, its `[sources.pagerduty]` pointed at `port` with
/// quick retries (`extra` keys added), and the lake beside it.
struct Setup {
    dir: tempfile::TempDir,
    server: PagerDutyServer,
    truth: PagerDutyTruth,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        Setup::with_timeout(0.5, extra)
    }

    /// [`Setup::new`] with requests allowed `timeout` seconds.
    fn with_timeout(timeout: f64, extra: &str) -> Setup {
        Setup::of("small", timeout, extra)
    }

    /// The organisation of `scale`, requests allowed `timeout` seconds.
    fn of(scale: &str, timeout: f64, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (api, truth, config) = sample_account(dir.path(), scale);
        let server = PagerDutyServer::start(api);
        // The generated config's [sources.pagerduty], pointed at the stand-in, with quick retries.
        let config = config.replace(
            "[sources.pagerduty]\n",
            &format!(
                "[sources.pagerduty]\napi_url = \"http://127.0.0.1:{}\"\nrequest_timeout_seconds = {timeout:?}\n\
                 initial_backoff_ms = 20\nmax_attempts = 4\n{extra}",
                server.port
            ),
        );
        assert!(
            config.contains("api_url"),
            "the sample's config has [sources.pagerduty]"
        );
        std::fs::write(dir.path().join("doracost.toml"), config).unwrap();
        Setup { dir, server, truth }
    }

    fn args(&self, more: &[&str]) -> Vec<String> {
        let mut args = vec![
            "--config".to_owned(),
            self.path("doracost.toml"),
            "--data-dir".to_owned(),
            self.path("lake"),
        ];
        args.extend(more.iter().map(|s| (*s).to_owned()));
        args
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    fn run(&self, more: &[&str]) -> Output {
        doracost()
            .env("PAGERDUTY_TOKEN", TOKEN)
            .current_dir(self.dir.path())
            .args(self.args(more))
            .output()
            .unwrap()
    }

    fn spawn(&self, more: &[&str]) -> Child {
        doracost()
            .env("PAGERDUTY_TOKEN", TOKEN)
            .current_dir(self.dir.path())
            .args(self.args(more))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `ingest pagerduty --format json`, which must succeed: its summary.
    fn ingest(&self) -> serde_json::Value {
        let out = self.run(&["--format", "json", "ingest", "pagerduty", "--no-refresh"]);
        assert!(
            out.status.success(),
            "ingest pagerduty failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn sql(&self, query: &str) -> Vec<Vec<String>> {
        let out = self.run(&["sql", "--format", "csv", query]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        csv_rows(&String::from_utf8(out.stdout).unwrap())[1..].to_vec()
    }

    fn lake_log(&self) -> String {
        let out = self.run(&["lake", "history", "--format", "json"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The rows the sample's ground truth says `incidents` must hold, as `sql --format csv` prints the
/// query in [`rows_query`]: (id, service, title, severity, start, acknowledgement, resolution, url),
/// times in epoch seconds.
fn expected_rows() -> Vec<Vec<String>> {
    let org = sample_data::org::Org::plan(sample_data::Scale::Small);
    let mut ids = sample_data::delivery::Ids::default();
    let mut rows = Vec::new();
    for repo in 0..org.repos.len() {
        let history =
            sample_data::delivery::generate_repo(&org, repo, sample_data::DEFAULT_SEED, &mut ids);
        for incident in history.services.iter().flat_map(|s| &s.incidents) {
            let pd = writer::incident_id(incident.id);
            let ack = writer::acknowledged_at(incident);
            if let (Some(ack), Some(resolved)) = (ack, incident.resolved_at) {
                assert!(incident.started_at <= ack && ack <= resolved);
            }
            let opt = |t: Option<i64>| t.map(|t| t.to_string()).unwrap_or_default();
            rows.push(vec![
                format!("pagerduty:incident:{pd}"),
                org.services[incident.service].name.clone(),
                incident.title.clone(),
                incident.severity.replace("SEV", "P"),
                incident.started_at.to_string(),
                opt(ack),
                opt(incident.resolved_at),
                format!("https://acme.pagerduty.com/incidents/{pd}"),
            ]);
        }
    }
    rows.sort();
    rows
}

const ROWS: &str = "SELECT incident_id, service, title, severity, to_unixtime(started_at), \
     to_unixtime(acknowledged_at), to_unixtime(resolved_at), url FROM incidents \
     WHERE source = 'pagerduty' ORDER BY incident_id";

fn count(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn the_sample_lands_row_for_row_through_faults_and_a_second_run_writes_nothing() {
    let setup = Setup::new("");
    let s = &setup.server;
    s.fault(
        "/incidents?",
        Fault::Status(
            429,
            vec![("retry-after", "1")],
            r#"{"error":{"message":"Rate Limit Exceeded","code":2020}}"#,
        ),
    );
    s.fault(
        "/incidents?",
        Fault::Status(502, vec![], "<html>502 Bad Gateway</html>"),
    );
    s.fault(
        "/incidents?",
        Fault::Status(502, vec![], "<html>502 Bad Gateway</html>"),
    );
    s.fault("/log_entries?", Fault::Truncated);
    s.fault("/log_entries?", Fault::Silent(Duration::from_secs(3)));
    let started = Instant::now();
    let summary = setup.ingest();
    let seconds = started.elapsed().as_secs_f64();
    let truth = &setup.truth;
    let requests = &summary["requests"];
    eprintln!("first run: {seconds:.1} s, {summary}");
    assert_eq!(
        count(&summary, "rows_written"),
        truth.incidents,
        "{summary}"
    );
    assert_eq!(count(&summary, "incidents"), truth.incidents);
    assert_eq!(
        count(&summary, "filtered_out"),
        truth.noise,
        "the noise is left out"
    );
    assert_eq!(
        summary["unmapped"],
        serde_json::json!({ format!("Corporate IT ({})", summary_corporate_id(&summary)): truth.unmapped })
    );
    assert_eq!(count(&summary, "open"), truth.open + open_noise(&setup));
    assert_eq!(count(requests, "retries"), 5, "{requests}");
    assert_eq!(count(requests, "rate_limit_waits"), 1, "{requests}");
    assert_eq!(count(requests, "not_modified"), 0);
    let seen = setup.server.requests();
    assert_eq!(count(requests, "requests"), seen.len() as u64);
    assert!(
        setup
            .server
            .state
            .lock()
            .unwrap()
            .seen
            .iter()
            .all(|(_, documented)| *documented)
    );
    // Row for row.
    assert_eq!(setup.sql(ROWS), expected_rows());
    assert_eq!(
        setup.sql(
            "SELECT count(*) FROM incidents WHERE title LIKE 'Disk usage%' OR title LIKE 'VPN%'"
        ),
        vec![vec!["0".to_owned()]]
    );

    // Unchanged data: nothing written, not even a commit.
    let log = setup.lake_log();
    let before = setup.server.requests().len();
    let again = setup.ingest();
    assert_eq!(count(&again, "rows_written"), 0, "{again}");
    assert_eq!(again["tables"], serde_json::json!([]));
    assert_eq!(setup.lake_log(), log);
    let second: Vec<String> = setup.server.requests()[before..].to_vec();
    eprintln!("second run: {} requests: {second:#?}", second.len());
    assert!(second.len() <= 6, "{second:#?}");
}

/// Open noise pages (the period's last two days): read again like the incidents.
fn open_noise(setup: &Setup) -> u64 {
    let state = setup.server.state.lock().unwrap();
    state
        .api
        .as_ref()
        .unwrap()
        .incidents
        .iter()
        .filter(|i| i["status"] != "resolved" && i["priority"].is_null())
        .count() as u64
}

fn summary_corporate_id(summary: &serde_json::Value) -> String {
    let unmapped = summary["unmapped"].as_object().unwrap();
    let key = unmapped.keys().next().unwrap();
    key.trim_start_matches("Corporate IT (")
        .trim_end_matches(')')
        .to_owned()
}

#[test]
fn an_incident_resolved_later_lands_on_the_next_run() {
    let setup = Setup::new("");
    setup.ingest();
    let open: Vec<Vec<String>> = setup
        .sql("SELECT incident_id FROM incidents WHERE resolved_at IS NULL ORDER BY incident_id");
    assert_eq!(open.len() as u64, setup.truth.open);
    let id = open[0][0]
        .trim_start_matches("pagerduty:incident:")
        .to_owned();
    // PagerDuty resolves it: status, resolution, no acknowledgements listed any more.
    setup.server.with_api(|api| {
        let incident = api
            .incidents
            .iter_mut()
            .find(|i| i["id"] == id.as_str())
            .unwrap();
        incident["status"] = "resolved".into();
        incident["resolved_at"] = "2026-11-20T10:00:00Z".into();
        incident["last_status_change_at"] = "2026-11-20T10:00:00Z".into();
        incident["acknowledgements"] = serde_json::json!([]);
    });
    let before = setup.server.requests().len();
    let summary = setup.ingest();
    assert_eq!(count(&summary, "rows_written"), 1, "{summary}");
    let requests = setup.server.requests()[before..].to_vec();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("/incidents/{id}"))),
        "{requests:#?}"
    );
    let row = setup.sql(&format!(
        "SELECT to_unixtime(resolved_at) FROM incidents WHERE incident_id = 'pagerduty:incident:{id}'"
    ));
    // 2026-11-20T10:00:00Z.
    assert_eq!(row, vec![vec!["1795168800".to_owned()]]);
    let third = setup.ingest();
    assert_eq!(count(&third, "rows_written"), 0, "{third}");
}

#[test]
fn retries_that_run_out_fail_naming_the_route_and_leave_the_lake_as_it_was() {
    let setup = Setup::new("");
    setup.ingest();
    let log = setup.lake_log();
    for _ in 0..4 {
        setup.server.fault(
            "/incidents?",
            Fault::Status(502, vec![], "<html>502 Bad Gateway</html>"),
        );
    }
    let out = setup.run(&[
        "ingest",
        "pagerduty",
        "--no-refresh",
        "--since",
        "2025-05-01",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("GET /incidents?since=2025-05-01T00%3A00%3A00Z"),
        "{stderr}"
    );
    assert!(
        stderr.contains("gave up after 4 attempt(s); the last: HTTP 502"),
        "{stderr}"
    );
    assert!(
        stderr.contains("check the API URL")
            && stderr.contains("nothing was written: the lake is as it was"),
        "{stderr}"
    );
    assert_eq!(setup.lake_log(), log);
    // A key PagerDuty refuses: said so, not retried.
    let out = doracost()
        .env("PAGERDUTY_TOKEN", "u+wrong")
        .args(setup.args(&["ingest", "pagerduty", "--no-refresh"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PagerDuty refused the API key (HTTP 401)"),
        "{stderr}"
    );
}

#[test]
fn a_run_killed_midway_leaves_nothing_and_the_next_one_resumes_without_duplicates() {
    let setup = Setup::with_timeout(60.0, "");
    // Killed while it reads: its incidents are read, its first log entries request never gets
    // an answer.
    setup
        .server
        .fault("/log_entries?", Fault::Silent(Duration::from_secs(120)));
    let mut first = setup.spawn(&["ingest", "pagerduty", "--no-refresh"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !setup
        .server
        .requests()
        .iter()
        .any(|r| r.starts_with("/log_entries"))
    {
        assert!(
            Instant::now() < deadline,
            "the ingest never reached its log entries"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        !Path::new(&setup.path("lake")).join("_commits").exists(),
        "nothing was written"
    );

    // Killed between its table commits and the lake's log entry: a reader sees nothing.
    let mut second = setup.spawn(&[
        "--pause-after",
        "incidents",
        "ingest",
        "pagerduty",
        "--no-refresh",
    ]);
    wait_for_pause(&mut second, "incidents");
    second.kill().unwrap();
    second.wait().unwrap();
    let seen = setup.run(&["sql", "--format", "csv", "SELECT count(*) FROM incidents"]);
    let text = String::from_utf8_lossy(&seen.stdout);
    assert!(
        !seen.status.success() || text.trim().ends_with('0'),
        "{text}"
    );

    // The next run reads everything again: every row once.
    let summary = setup.ingest();
    assert_eq!(
        count(&summary, "rows_written"),
        setup.truth.incidents,
        "{summary}"
    );
    assert_eq!(setup.sql(ROWS), expected_rows());
    let n = setup.truth.incidents.to_string();
    assert_eq!(
        setup.sql("SELECT count(*), count(DISTINCT incident_id) FROM incidents"),
        vec![vec![n.clone(), n]]
    );
}

/// Waits until the child says it paused after `step`.
fn wait_for_pause(child: &mut Child, step: &str) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = format!("doracost: paused after {step}");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(&want) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(180))
        .unwrap_or_else(|_| panic!("the ingest never paused after {step}"));
}

/// The medium organisation from the stand-in, without faults: requests and wall time of a first
/// run, and of a second over unchanged data (the figures in the report).
/// `cargo test --workspace --test e2e -- pagerduty::medium --ignored --nocapture`
#[test]
#[ignore = "a benchmark: generates and ingests the medium organisation"]
fn medium_organisation_figures() {
    let setup = Setup::of("medium", 30.0, "");
    let started = Instant::now();
    let first = setup.ingest();
    let first_seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        count(&first, "rows_written"),
        setup.truth.incidents,
        "{first}"
    );
    let started = Instant::now();
    let second = setup.ingest();
    let second_seconds = started.elapsed().as_secs_f64();
    assert_eq!(count(&second, "rows_written"), 0, "{second}");
    eprintln!(
        "medium: {} incidents ({} pages read, {} log entries): first run {} requests in {first_seconds:.1} s; \
         second run {} requests in {second_seconds:.1} s",
        setup.truth.incidents,
        count(&first, "incidents_read"),
        count(&first, "log_entries"),
        count(&first["requests"], "requests"),
        count(&second["requests"], "requests"),
    );
}
