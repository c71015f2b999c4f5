//! The retry policy against scripted answers: every wait is recorded, none is slept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::*;

/// The tests' fixed "now": 2023-11-14T22:13:20Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

type Script = Vec<Result<RawResponse, TransportError>>;

fn answer(
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<RawResponse, TransportError> {
    Ok(RawResponse {
        status,
        headers: Headers::new(
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        ),
        body: body.as_bytes().to_vec(),
    })
}

struct Run {
    http: Http,
    slept: Arc<Mutex<Vec<Duration>>>,
}

fn run(policy: RetryPolicy) -> Run {
    let slept: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let record = Arc::clone(&slept);
    let sleep: Sleep = Arc::new(move |d| {
        record.lock().unwrap().push(d);
        Box::pin(async {})
    });
    Run {
        http: Http::new(policy).with_sleep(sleep, 7, now),
        slept,
    }
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        ..RetryPolicy::default()
    }
}

/// Fetches through `script`, recording the `If-None-Match` of each request.
async fn fetch(
    run: &mut Run,
    script: Script,
    etag: Option<&str>,
) -> (Result<Fetched<String>, HttpError>, Vec<Option<String>>) {
    let script = Arc::new(Mutex::new(script.into_iter()));
    let sent: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let result = run
        .http
        .fetch(
            "GET /incidents?offset=0",
            etag,
            |if_none_match| {
                sent.lock().unwrap().push(if_none_match.map(str::to_owned));
                let next = script.lock().unwrap().next().expect("a scripted answer");
                async move { next }
            },
            |body| {
                let text = String::from_utf8(body.to_vec()).map_err(|e| e.to_string())?;
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())?;
                Ok(text)
            },
        )
        .await;
    let sent = sent.lock().unwrap().clone();
    (result, sent)
}

fn fresh(result: Result<Fetched<String>, HttpError>) -> String {
    match result {
        Ok(Fetched::Fresh { value, .. }) => value,
        other => panic!("expected a fresh answer, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_waits_what_retry_after_says_in_seconds_or_as_a_date() {
    let mut r = run(policy(3));
    let (result, _) = fetch(
        &mut r,
        vec![
            answer(429, &[("Retry-After", "2")], "{}"),
            answer(200, &[], "[1]"),
        ],
        None,
    )
    .await;
    assert_eq!(fresh(result), "[1]");
    // 2023-11-14T22:13:20Z + 90 s, as an IMF-fixdate.
    let (result, _) = fetch(
        &mut r,
        vec![
            answer(
                429,
                &[("retry-after", "Tue, 14 Nov 2023 22:14:50 GMT")],
                "{}",
            ),
            answer(200, &[], "[2]"),
        ],
        None,
    )
    .await;
    assert_eq!(fresh(result), "[2]");
    assert_eq!(
        *r.slept.lock().unwrap(),
        vec![Duration::from_secs(2), Duration::from_secs(90)]
    );
    let stats = r.http.stats();
    assert_eq!(
        (stats.requests, stats.retries, stats.rate_limit_waits),
        (4, 2, 2)
    );
    assert_eq!(stats.waited_ms, 92_000);
}

#[tokio::test]
async fn server_errors_timeouts_and_cut_bodies_back_off_with_full_jitter() {
    let mut r = run(policy(6));
    let (result, _) = fetch(
        &mut r,
        vec![
            answer(502, &[], "<html>Bad Gateway</html>"),
            Err(TransportError::Timeout(Duration::from_millis(500))),
            Err(TransportError::Body("connection closed".into())),
            answer(200, &[], "{\"incidents\": ["),
            answer(200, &[], "{\"incidents\": []}"),
        ],
        None,
    )
    .await;
    assert_eq!(fresh(result), "{\"incidents\": []}");
    let slept = r.slept.lock().unwrap().clone();
    assert_eq!(slept.len(), 4);
    // Full jitter: each wait lies in [0, 0.5 s × 2^retry].
    for (i, wait) in slept.iter().enumerate() {
        assert!(*wait <= Duration::from_millis(500 << i), "{i}: {wait:?}");
    }
    assert!(slept.iter().any(|w| !w.is_zero()));
    let stats = r.http.stats();
    assert_eq!(
        (stats.requests, stats.retries, stats.rate_limit_waits),
        (5, 4, 0)
    );
}

#[tokio::test]
async fn after_the_last_attempt_the_error_names_the_route_and_what_to_do() {
    let mut r = run(policy(3));
    let (result, _) = fetch(
        &mut r,
        vec![
            answer(502, &[], ""),
            answer(503, &[], ""),
            answer(502, &[], ""),
        ],
        None,
    )
    .await;
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HttpError::GaveUp { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        text.starts_with("GET /incidents?offset=0: gave up after 3 attempt(s)"),
        "{text}"
    );
    assert!(
        text.contains("HTTP 502") && text.contains("rerun"),
        "{text}"
    );
    // Rate limits that never let up say so.
    let mut r = run(policy(2));
    let (result, _) = fetch(
        &mut r,
        vec![
            answer(429, &[("retry-after", "1")], ""),
            answer(429, &[("retry-after", "1")], ""),
        ],
        None,
    )
    .await;
    let text = result.unwrap_err().to_string();
    assert!(text.contains("rate limit did not let up"), "{text}");
}

#[tokio::test]
async fn a_refusal_is_not_retried_but_a_rate_limited_403_is() {
    let mut r = run(policy(5));
    let (result, sent) = fetch(
        &mut r,
        vec![answer(
            403,
            &[],
            "{\"error\":{\"message\":\"Access Denied\"}}",
        )],
        None,
    )
    .await;
    assert_eq!(sent.len(), 1);
    match result.unwrap_err() {
        HttpError::Status {
            status, message, ..
        } => {
            assert_eq!(status, 403);
            assert!(message.contains("Access Denied"));
        }
        other => panic!("{other:?}"),
    }
    // GitHub's primary limit: remaining 0, reset in epoch seconds (now + 30 s).
    let (result, _) = fetch(
        &mut r,
        vec![
            answer(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1700000030"),
                ],
                "{\"message\":\"API rate limit exceeded\"}",
            ),
            // A secondary limit named only in the message: the policy's minute.
            answer(
                403,
                &[],
                "{\"message\":\"You have exceeded a secondary rate limit\"}",
            ),
            answer(200, &[], "[]"),
        ],
        None,
    )
    .await;
    assert_eq!(fresh(result), "[]");
    assert_eq!(
        *r.slept.lock().unwrap(),
        vec![Duration::from_secs(30), Duration::from_secs(60)]
    );
}

#[tokio::test]
async fn a_limit_reported_used_up_delays_the_next_request_until_its_reset() {
    let mut r = run(policy(3));
    // PagerDuty's headers: `ratelimit-reset` is seconds to wait.
    let (result, _) = fetch(
        &mut r,
        vec![answer(
            200,
            &[("ratelimit-remaining", "0"), ("ratelimit-reset", "12")],
            "[]",
        )],
        None,
    )
    .await;
    fresh(result);
    assert!(r.slept.lock().unwrap().is_empty());
    let (result, _) = fetch(&mut r, vec![answer(200, &[], "[3]")], None).await;
    assert_eq!(fresh(result), "[3]");
    assert_eq!(*r.slept.lock().unwrap(), vec![Duration::from_secs(12)]);
    assert_eq!(r.http.stats().rate_limit_waits, 1);
    assert_eq!(r.http.stats().retries, 0);
}

#[tokio::test]
async fn conditional_requests_send_the_etag_and_count_304s_apart() {
    let mut r = run(policy(3));
    let (result, sent) = fetch(
        &mut r,
        vec![answer(200, &[("ETag", "W/\"abc\"")], "[]")],
        None,
    )
    .await;
    match result.unwrap() {
        Fetched::Fresh { etag, .. } => assert_eq!(etag.as_deref(), Some("W/\"abc\"")),
        other => panic!("{other:?}"),
    }
    assert_eq!(sent, vec![None]);
    let (result, sent) = fetch(&mut r, vec![answer(304, &[], "")], Some("W/\"abc\"")).await;
    assert!(matches!(result.unwrap(), Fetched::NotModified));
    assert_eq!(sent, vec![Some("W/\"abc\"".to_owned())]);
    let stats = r.http.stats();
    assert_eq!((stats.requests, stats.not_modified), (2, 1));
}

#[tokio::test]
async fn a_wait_beyond_the_policy_and_a_spent_budget_stop_the_run() {
    let mut r = run(policy(5));
    let (result, _) = fetch(
        &mut r,
        vec![answer(429, &[("retry-after", "3600")], "")],
        None,
    )
    .await;
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains("asks to wait 3600s") && text.contains("rerun after 2023-11-14T23:13:20Z"),
        "{text}"
    );
    let mut r = run(RetryPolicy {
        retry_budget: 2,
        ..policy(10)
    });
    let (result, sent) = fetch(
        &mut r,
        vec![
            answer(500, &[], ""),
            answer(500, &[], ""),
            answer(500, &[], ""),
        ],
        None,
    )
    .await;
    assert_eq!(sent.len(), 3);
    assert!(matches!(
        result.unwrap_err(),
        HttpError::BudgetSpent { budget: 2, .. }
    ));
}

#[test]
fn retry_after_reads_seconds_and_dates_and_ignores_nonsense() {
    let h = |v: &str| Headers::new([("Retry-After".to_owned(), v.to_owned())]);
    assert_eq!(retry_after(&h("5"), now()), Some(Duration::from_secs(5)));
    assert_eq!(
        retry_after(&h("Tue, 14 Nov 2023 22:13:00 GMT"), now()),
        Some(Duration::ZERO),
        "a date in the past: no wait"
    );
    assert_eq!(retry_after(&h("soon"), now()), None);
    assert_eq!(retry_after(&Headers::default(), now()), None);
}
