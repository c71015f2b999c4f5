//! The ingest against the fake API in process (scripted faults, recorded sleeps) and a lake in a
//! temporary folder. Fixture: one account, three PagerDuty services, every incident written out
//! below with the row it must become.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use model::config::pagerduty::Urgency;
use model::{Lake, Table};
use serde_json::{Value, json};

use super::fake_api::FakePagerDuty;
use super::rows::{IncidentRow, Mapped, Mapping, existing_rows};
use super::*;
use crate::http::{Headers, Http, RawResponse, TransportError};

const TOKEN: &str = "u+test-key";

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An incident object as `GET /incidents` returns it.
fn incident(
    id: &str,
    created: DateTime<Utc>,
    (urgency, priority): (&str, Option<&str>),
    (service_id, service_name): (&str, &str),
    acknowledged: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
) -> Value {
    let status = match (resolved, acknowledged) {
        (Some(_), _) => "resolved",
        (None, Some(_)) => "acknowledged",
        (None, None) => "triggered",
    };
    // "This list will be empty if the Incident.status is resolved or triggered."
    let acknowledgements: Vec<Value> = match (status, acknowledged) {
        ("acknowledged", Some(a)) => vec![
            json!({"at": stamp(a), "acknowledger": {"id": "PUSER01", "type": "user_reference"}}),
        ],
        _ => vec![],
    };
    json!({
        "id": id, "type": "incident", "summary": format!("[#1] {id}"), "incident_number": 1,
        "title": format!("Title of {id}"), "created_at": stamp(created), "status": status,
        "urgency": urgency,
        "priority": priority.map(|p| json!({"id": format!("PRI{p}"), "type": "priority_reference", "summary": p})),
        "service": {"id": service_id, "type": "service_reference", "summary": service_name},
        "html_url": format!("https://acme.pagerduty.com/incidents/{id}"),
        "acknowledgements": acknowledgements,
        "resolved_at": resolved.map(stamp),
        "last_status_change_at": stamp(resolved.or(acknowledged).unwrap_or(created)),
    })
}

fn log_entry(kind: &str, incident: &str, created: DateTime<Utc>) -> Value {
    json!({"id": format!("Q{kind}{incident}"), "type": kind, "created_at": stamp(created),
           "incident": {"id": incident, "type": "incident_reference"}})
}

/// 150 resolved P1 incidents of checkout (PCHK001), one a day from March 1st at 02:00 every 4
/// hours, each acknowledged 5 minutes after it started and resolved after an hour; an open P2
/// incident of `cart` (PCRT001, not mapped in config: mapped by its name), acknowledged; a
/// low-urgency page without priority on checkout (filtered out); a P1 of "Corporate IT"
/// (PCORP01, unmapped).
fn fixture() -> FakePagerDuty {
    let mut incidents = Vec::new();
    let mut log = Vec::new();
    // The open one first: created before all the others.
    let open = at(1, 0, 30);
    incidents.push(incident(
        "POPEN01",
        open,
        ("high", Some("P2")),
        ("PCRT001", "cart"),
        Some(open + chrono::Duration::minutes(7)),
        None,
    ));
    log.push(log_entry(
        "acknowledge_log_entry",
        "POPEN01",
        open + chrono::Duration::minutes(7),
    ));
    incidents.push(incident(
        "PNOISE1",
        at(1, 1, 0),
        ("low", None),
        ("PCHK001", "Checkout API"),
        None,
        Some(at(1, 1, 20)),
    ));
    incidents.push(incident(
        "PCORP01",
        at(1, 1, 30),
        ("high", Some("P1")),
        ("PCORP01", "Corporate IT"),
        None,
        Some(at(1, 3, 0)),
    ));
    for n in 0..150 {
        let created = at(1, 2, 0) + chrono::Duration::hours(4 * n);
        let id = format!("PCK{n:04}");
        let (ack, resolved) = (
            created + chrono::Duration::minutes(5),
            created + chrono::Duration::hours(1),
        );
        incidents.push(incident(
            &id,
            created,
            ("high", Some("P1")),
            ("PCHK001", "Checkout API"),
            Some(ack),
            Some(resolved),
        ));
        log.push(log_entry("trigger_log_entry", &id, created));
        log.push(log_entry("acknowledge_log_entry", &id, ack));
        log.push(log_entry("resolve_log_entry", &id, resolved));
    }
    FakePagerDuty {
        incidents,
        log_entries: log,
        token: TOKEN.into(),
        max_offset: 10_000,
    }
}

fn options() -> PagerDutyOptions {
    PagerDutyOptions {
        api_url: "https://api.pagerduty.test".into(),
        token: TOKEN.into(),
        mapping: Mapping {
            services: BTreeMap::from([("PCHK001".into(), "checkout".into())]),
            ours: ["checkout", "cart"].map(String::from).into(),
            urgencies: vec![],
            priorities: vec!["P1".into(), "P2".into(), "P3".into()],
        },
        since: Some(at(1, 0, 0)),
        window_days: 30,
        overlap: chrono::Duration::minutes(60),
        retry: RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        },
        request_timeout: Duration::from_secs(1),
    }
}

/// Scripted faults: the n-th request (from 1) gets this answer instead of the API's.
type Faults = HashMap<usize, Result<RawResponse, TransportError>>;

/// A client of `api` (shared, so tests can change it between runs), recording every request's
/// URL, with `faults` and recorded sleeps.
fn client(
    api: &Arc<Mutex<FakePagerDuty>>,
    faults: Faults,
    urls: &Arc<Mutex<Vec<String>>>,
) -> Client {
    let (api, urls) = (Arc::clone(api), Arc::clone(urls));
    let faults = Arc::new(Mutex::new(faults));
    let sender: Sender = Arc::new(move |request: Request| {
        let mut seen = urls.lock().unwrap();
        seen.push(request.url.clone());
        let n = seen.len();
        let fault = faults.lock().unwrap().remove(&n);
        let auth = request
            .headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .map(|(_, v)| v.clone());
        assert!(request.headers.contains(&(
            "Accept".into(),
            "application/vnd.pagerduty+json;version=2".into()
        )));
        let target = request
            .url
            .trim_start_matches("https://api.pagerduty.test")
            .to_owned();
        let (status, headers, body) = api.lock().unwrap().answer(&target, auth.as_deref());
        let answer = fault.unwrap_or(Ok(RawResponse {
            status,
            headers: Headers::new(headers),
            body: body.into_bytes(),
        }));
        Box::pin(async move { answer })
    });
    let sleep: crate::http::Sleep = Arc::new(|_| Box::pin(async {}));
    let http = Http::new(options().retry).with_sleep(sleep, 3, std::time::SystemTime::now);
    Client::with_http("https://api.pagerduty.test", TOKEN.into(), sender, http)
}

async fn run(
    lake: &Lake,
    api: &Arc<Mutex<FakePagerDuty>>,
    faults: Faults,
    now: DateTime<Utc>,
) -> (Result<PagerDutySummary, PagerDutyError>, Vec<String>) {
    let urls = Arc::default();
    let client = client(api, faults, &urls);
    let result = ingest_with_client(lake, &options(), client, (None, None), now, &mut |_| {}).await;
    let urls = urls.lock().unwrap().clone();
    (result, urls)
}

async fn rows(lake: &Lake) -> BTreeMap<String, IncidentRow> {
    let state = lake.state().await.unwrap();
    let batches = lake.read_table(&state, Table::Incidents).await.unwrap();
    existing_rows(&batches).unwrap().into_iter().collect()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[tokio::test]
async fn a_run_writes_the_incidents_then_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
    let api = Arc::new(Mutex::new(fixture()));
    // The last checkout incident starts on 2026-03-01 02:00 + 149 × 4 h = 2026-03-25 22:00.
    let now = at(31, 0, 0);
    let (summary, urls) = run(&lake, &api, Faults::new(), now).await;
    let summary = summary.unwrap();
    // One 30-day window (Mar 1 – Mar 31): incidents in two pages of 100 + 53, log entries
    // (1 + 450) in five pages.
    assert_eq!(urls.len(), 2 + 5, "{urls:#?}");
    assert!(urls[0].contains("/incidents?since=2026-03-01T00%3A00%3A00Z&until=2026-03-31T00%3A00%3A00Z&time_zone=UTC&limit=100&offset=0&total=true"), "{}", urls[0]);
    assert!(urls[1].ends_with("&offset=100"), "{}", urls[1]);
    assert!(
        urls[2].contains("/log_entries?is_overview=true&since="),
        "{}",
        urls[2]
    );
    assert_eq!(summary.incidents_read, 153);
    assert_eq!((summary.incidents_kept, summary.filtered_out), (151, 1));
    assert_eq!(
        summary.unmapped,
        BTreeMap::from([("Corporate IT (PCORP01)".into(), 1)])
    );
    assert_eq!((summary.rows_written, summary.open), (151, 1));
    assert_eq!(summary.requests.requests, 7);
    assert_eq!(summary.cursor.created_through, Some(at(25, 22, 0)));
    assert_eq!(
        summary.cursor.open,
        BTreeMap::from([("POPEN01".into(), Some(at(1, 0, 37)))])
    );
    let written = rows(&lake).await;
    assert_eq!(written.len(), 151);
    assert_eq!(
        written["pagerduty:incident:PCK0149"],
        IncidentRow {
            incident_id: "pagerduty:incident:PCK0149".into(),
            service: "checkout".into(),
            title: Some("Title of PCK0149".into()),
            severity: Some("P1".into()),
            started_at: micros(at(25, 22, 0)),
            // From the log entries: the incident itself lists none once resolved.
            acknowledged_at: Some(micros(at(25, 22, 5))),
            resolved_at: Some(micros(at(25, 23, 0))),
            url: Some("https://acme.pagerduty.com/incidents/PCK0149".into()),
        }
    );
    let open = &written["pagerduty:incident:POPEN01"];
    assert_eq!(
        (open.service.as_str(), open.severity.as_deref()),
        ("cart", Some("P2"))
    );
    assert_eq!(
        (open.acknowledged_at, open.resolved_at),
        (Some(micros(at(1, 0, 37))), None)
    );

    // Unchanged data: the run reads from the cursor less an hour, and writes nothing.
    let history = lake.history(None).await.unwrap().len();
    let (again, urls) = run(&lake, &api, Faults::new(), now).await;
    let again = again.unwrap();
    assert!(
        urls[0].contains("since=2026-03-25T21%3A00%3A00Z"),
        "{}",
        urls[0]
    );
    assert_eq!((again.rows_written, again.outcomes.len()), (0, 0));
    // Listed: the last checkout incident; the open one read again in the list of open incidents.
    assert_eq!((again.incidents_read, again.reopened_reads), (2, 1));
    assert!(
        urls.iter()
            .any(|u| u
                .contains("date_range=all&statuses%5B%5D=triggered&statuses%5B%5D=acknowledged")),
        "{urls:#?}"
    );
    assert_eq!(lake.history(None).await.unwrap().len(), history);

    // The open incident is resolved: it is no longer in the list of open incidents, so it is read
    // by id; its acknowledgement (before this run's log entries) is the cursor's.
    {
        let mut api = api.lock().unwrap();
        let resolved = incident(
            "POPEN01",
            at(1, 0, 30),
            ("high", Some("P2")),
            ("PCRT001", "cart"),
            Some(at(1, 0, 37)),
            Some(at(30, 9, 0)),
        );
        api.incidents[0] = resolved;
    }
    let (third, urls) = run(&lake, &api, Faults::new(), now).await;
    let third = third.unwrap();
    assert!(
        urls.iter()
            .any(|u| u.contains("/incidents/POPEN01?time_zone=UTC")),
        "{urls:#?}"
    );
    assert_eq!((third.rows_written, third.open), (1, 0));
    let open = &rows(&lake).await["pagerduty:incident:POPEN01"];
    assert_eq!(
        (open.acknowledged_at, open.resolved_at),
        (Some(micros(at(1, 0, 37))), Some(micros(at(30, 9, 0))))
    );
    let state = lake.state().await.unwrap();
    let states = lake.read_table(&state, Table::IngestState).await.unwrap();
    let cursor = rows::saved_cursor(&states, "api.pagerduty.test")
        .unwrap()
        .unwrap();
    assert!(cursor.open.is_empty());
}

#[tokio::test]
async fn faults_are_survived_and_a_window_past_the_offset_cap_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
    let mut fake = fixture();
    // A cap of 120: the second page (offset 100, limit 100) is refused, so the window is split.
    fake.max_offset = 120;
    let api = Arc::new(Mutex::new(fake));
    let fail = |status: u16, headers: &[(&str, &str)], body: &str| {
        Ok(RawResponse {
            status,
            headers: Headers::new(
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            ),
            body: body.as_bytes().to_vec(),
        })
    };
    let faults = Faults::from([
        (
            1,
            fail(
                429,
                &[("retry-after", "1")],
                "{\"error\":{\"message\":\"Rate Limit Exceeded\",\"code\":2020}}",
            ),
        ),
        (3, fail(502, &[], "<html>bad gateway</html>")),
        (4, fail(200, &[], "{\"incidents\": [{\"id\": \"PCK00")),
        (6, Err(TransportError::Timeout(Duration::from_secs(1)))),
    ]);
    let (summary, urls) = run(&lake, &api, faults, at(31, 0, 0)).await;
    let summary = summary.unwrap();
    assert_eq!(summary.rows_written, 151, "{urls:#?}");
    assert_eq!(
        (summary.requests.retries, summary.requests.rate_limit_waits),
        (4, 1)
    );
    assert!(
        summary.windows > 2,
        "the incidents' window was split: {}",
        summary.windows
    );
    assert!(
        urls.iter()
            .any(|u| u.contains("until=2026-03-16T00%3A00%3A00Z")),
        "{urls:#?}"
    );
}

#[tokio::test]
async fn when_retries_run_out_the_error_names_the_route_and_the_lake_is_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), HashMap::new()).unwrap();
    let api = Arc::new(Mutex::new(fixture()));
    let (first, _) = run(&lake, &api, Faults::new(), at(20, 0, 0)).await;
    first.unwrap();
    let before = lake.state().await.unwrap();
    let bad = || {
        Ok(RawResponse {
            status: 502,
            headers: Headers::default(),
            body: Vec::new(),
        })
    };
    let faults = Faults::from([(2, bad()), (3, bad()), (4, bad())]);
    let (result, _) = run(&lake, &api, faults, at(31, 0, 0)).await;
    let text = result.unwrap_err().to_string();
    assert!(
        text.starts_with("GET /log_entries?is_overview=true&since="),
        "{text}"
    );
    assert!(
        text.contains("gave up after 3 attempt(s); the last: HTTP 502"),
        "{text}"
    );
    assert!(text.contains("rerun"), "{text}");
    assert_eq!(lake.state().await.unwrap(), before);
    // A refused key is named as such.
    api.lock().unwrap().token = "another".into();
    let (result, urls) = run(&lake, &api, Faults::new(), at(31, 0, 0)).await;
    let text = result.unwrap_err().to_string();
    assert_eq!(urls.len(), 1);
    assert!(
        text.contains("PagerDuty refused the API key (HTTP 401)")
            && text.contains("PAGERDUTY_TOKEN"),
        "{text}"
    );
}

#[test]
fn filters_services_and_severity() {
    let mapping = options().mapping;
    let make = |urgency: &str, priority: Option<&str>, service: (&str, &str)| {
        let value = incident("PX", at(2, 0, 0), (urgency, priority), service, None, None);
        serde_json::from_value::<api::Incident>(value).unwrap()
    };
    let severity = |m: Mapped| match m {
        Mapped::Row(row) => (row.service, row.severity),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        severity(mapping.map(&make("high", Some("P3"), ("PCHK001", "x")), None)),
        ("checkout".into(), Some("P3".into()))
    );
    assert_eq!(
        severity(mapping.map(&make("low", Some("P1"), ("PZZZ", "cart")), None)),
        ("cart".into(), Some("P1".into()))
    );
    assert_eq!(
        mapping.map(&make("high", Some("P4"), ("PCHK001", "x")), None),
        Mapped::Filtered
    );
    assert_eq!(
        mapping.map(&make("low", None, ("PCHK001", "x")), None),
        Mapped::Filtered
    );
    assert_eq!(
        mapping.map(&make("high", Some("P1"), ("PZZZ", "Other")), None),
        Mapped::Unmapped("PZZZ".into(), Some("Other".into()))
    );
    // No priority filter: the urgency is the severity; an urgency filter keeps only its own.
    let open = Mapping {
        priorities: vec![],
        urgencies: vec![Urgency::High],
        ..mapping
    };
    assert_eq!(
        severity(open.map(&make("high", None, ("PCHK001", "x")), None)),
        ("checkout".into(), Some("high".into()))
    );
    assert_eq!(
        open.map(&make("low", None, ("PCHK001", "x")), None),
        Mapped::Filtered
    );
}

#[test]
fn windows_cover_the_range_in_steps_and_the_scope_is_the_host() {
    let w = Window::split(at(1, 0, 0), at(31, 12, 0), 7);
    assert_eq!(w.len(), 5);
    assert_eq!((w[0].since, w[4].until), (at(1, 0, 0), at(31, 12, 0)));
    assert!(w.windows(2).all(|p| p[0].until == p[1].since));
    let o = PagerDutyOptions {
        api_url: "http://127.0.0.1:4567/".into(),
        ..options()
    };
    assert_eq!(o.scope(), "127.0.0.1:4567");
    assert_eq!(options().scope(), "api.pagerduty.test");
}
