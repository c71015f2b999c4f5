//! A GitHub REST API v3 on loopback for the ingest tests: serves a generated `github/` folder
//! (sample-data's GitHub writer) with GitHub's headers and a script of faults.
//!
//! ```ignore
//! let server = GithubServer::start(&org.join("github"), vec![
//!     Fault::on("/repos/{owner}/{repo}/compare/{basehead}", FaultKind::BadGateway).after(2),
//! ]);
//! // api_url = server.url(); … server.counters.requests("/repos/{owner}/{repo}/deployments")
//! ```
//!
//! What GitHub documents and this server does (docs.github.com/en/rest/using-the-rest-api):
//! - pagination (using-pagination-in-the-rest-api): `per_page` (default 30, at most 100) and
//!   `page`; a `link` header with `prev`, `next`, `last` and `first` when there is more than one
//!   page; compare paginates only when asked, else answers up to 250 commits;
//! - conditional requests (best-practices-for-using-the-rest-api#use-conditional-requests-if-
//!   appropriate): a strong `etag` (a hash of the body); `If-None-Match` with it answers 304 with
//!   no body, which does not count against the primary rate limit;
//! - primary rate limit (rate-limits-for-the-rest-api): `x-ratelimit-limit`, `-remaining`,
//!   `-used`, `-reset` (epoch seconds) and `-resource: core` on every answer, counted per token
//!   (the `Authorization` header; 60 an hour without one); past it, 403 with remaining 0 until the
//!   reset;
//! - secondary rate limits: 403 or 429 with `retry-after` seconds;
//! - filters as documented: `issues?labels=a,b` keeps issues carrying every label named, and
//!   `state` defaults to `open` for issues and pulls; `commits?sha=` lists from that commit down;
//!   commit → pulls finds the PR whose merge commit it is; runs filter by `status` (a status or a
//!   conclusion), `event`, `branch`, `head_sha`, and by workflow id or file name;
//! - `/api/v3` before a path is accepted (GitHub Enterprise Server's base URL).
//!
//! Faults ([`Fault`]): after `after` requests matching a route pattern, the next `times` ones
//! are answered with the fault (when two rules would spoil one request, the first in the script
//! does). Counters ([`Counters`]) count requests by route template, 304s,
//! answers by status and faults fired, for assertions.

mod routes;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;

use routes::{Answer, Query};
use store::Store;

/// What a fault rule answers instead of (or how it spoils) the real answer.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// The token's primary limit runs out: 403 with `x-ratelimit-remaining: 0` and a reset
    /// `reset_after` from now; every request of that token gets the same until the reset.
    RateLimitExhausted {
        /// How long until the limit resets.
        reset_after: Duration,
    },
    /// A secondary rate limit: `status` (403 or 429) with `retry-after: retry_after` seconds.
    SecondaryLimit {
        /// 403 or 429.
        status: u16,
        /// Seconds in `retry-after`.
        retry_after: u64,
    },
    /// 502 Bad Gateway.
    BadGateway,
    /// The real answer's headers with a `content-length` of the whole body, half the body, then
    /// the connection closes.
    Truncated,
    /// The real answer, after this long.
    Delay(Duration),
}

/// One rule of the fault script.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Matches a request whose route template (e.g. `/repos/{owner}/{repo}/deployments`) contains
    /// it; `*` matches every request.
    pub route: String,
    /// Requests matching `route` answered normally first.
    pub after: u64,
    /// Requests then answered with the fault.
    pub times: u64,
    /// The fault.
    pub kind: FaultKind,
}

impl Fault {
    /// A rule that spoils the first request matching `route`.
    pub fn on(route: &str, kind: FaultKind) -> Fault {
        Fault {
            route: route.to_string(),
            after: 0,
            times: 1,
            kind,
        }
    }

    /// After `n` requests answered normally.
    pub fn after(mut self, n: u64) -> Fault {
        self.after = n;
        self
    }

    /// For `n` requests.
    pub fn times(mut self, n: u64) -> Fault {
        self.times = n;
        self
    }

    fn matches(&self, template: &str) -> bool {
        self.route == "*" || template.contains(self.route.as_str())
    }
}

#[derive(Debug, Default)]
struct Tally {
    by_route: BTreeMap<String, u64>,
    by_status: BTreeMap<u16, u64>,
    not_modified: u64,
    /// Per fault rule: requests it matched, and how many it spoiled.
    matched: Vec<u64>,
    fired: Vec<u64>,
    tokens_issued: u64,
}

/// What the server saw, for assertions.
#[derive(Debug, Default)]
pub struct Counters {
    tally: Mutex<Tally>,
}

impl Counters {
    /// Requests on a route template (`/repos/{owner}/{repo}/compare/{basehead}`).
    pub fn requests(&self, route: &str) -> u64 {
        self.tally
            .lock()
            .unwrap()
            .by_route
            .get(route)
            .copied()
            .unwrap_or(0)
    }

    /// Every request.
    pub fn total(&self) -> u64 {
        self.tally.lock().unwrap().by_route.values().sum()
    }

    /// Requests by route template.
    pub fn by_route(&self) -> BTreeMap<String, u64> {
        self.tally.lock().unwrap().by_route.clone()
    }

    /// Answers with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.tally
            .lock()
            .unwrap()
            .by_status
            .get(&status)
            .copied()
            .unwrap_or(0)
    }

    /// 304 Not Modified answers.
    pub fn not_modified(&self) -> u64 {
        self.tally.lock().unwrap().not_modified
    }

    /// How many requests fault rule `index` (its place in the script) spoiled.
    pub fn fired(&self, index: usize) -> u64 {
        self.tally
            .lock()
            .unwrap()
            .fired
            .get(index)
            .copied()
            .unwrap_or(0)
    }
}

/// A token's primary rate limit.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    limit: u64,
    used: u64,
    reset: u64,
}

struct App {
    store: Store,
    faults: Vec<Fault>,
    counters: Arc<Counters>,
    buckets: Mutex<HashMap<String, Bucket>>,
    limit: u64,
}

/// The running server; stops when dropped.
pub struct GithubServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What it saw.
    pub counters: Arc<Counters>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GithubServer {
    /// Serves `dir` (a generated `github/` folder) with the fault script, 5,000 requests an hour
    /// per token.
    pub fn start(dir: &Path, faults: Vec<Fault>) -> GithubServer {
        GithubServer::start_with_limit(dir, faults, 5_000)
    }

    /// Serves `dir` with a primary rate limit of `limit` requests an hour per token.
    pub fn start_with_limit(dir: &Path, faults: Vec<Fault>, limit: u64) -> GithubServer {
        let counters = Arc::new(Counters::default());
        {
            let mut tally = counters.tally.lock().unwrap();
            tally.matched = vec![0; faults.len()];
            tally.fired = vec![0; faults.len()];
        }
        let app = Arc::new(App {
            store: Store::new(dir),
            faults,
            counters: counters.clone(),
            buckets: Mutex::new(HashMap::new()),
            limit,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let router = axum::Router::new().fallback(handle).with_state(app);
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
            // A connection held open by a client (or a delayed answer) must not keep the test
            // waiting: drop the runtime without waiting for its tasks.
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        GithubServer {
            port,
            counters,
            shutdown: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL, for `api_url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for GithubServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A strong ETag: 128 bits of two FNV-1a hashes of the body (stable across runs and builds).
fn etag(body: &[u8]) -> String {
    let fnv = |seed: u64| {
        body.iter().fold(seed, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "\"{:016x}{:016x}\"",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}

fn matches_etag(header: Option<&HeaderValue>, tag: &str) -> bool {
    header.and_then(|h| h.to_str().ok()).is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == tag || t == "*")
    })
}

/// GitHub's error body.
fn error_body(message: &str) -> String {
    serde_json::json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": "",
    })
    .to_string()
}

/// The `link` header of page `page` of `last`, the request's other parameters kept.
fn link(host: &str, path: &str, query: &Query, page: usize, last: usize) -> String {
    let url = |n: usize| {
        let mut params: Vec<String> = query
            .0
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace('%', "%25")
                        .replace(',', "%2C")
                        .replace(' ', "%20")
                )
            })
            .collect();
        params.push(format!("page={n}"));
        format!("<http://{host}{path}?{}>", params.join("&"))
    };
    let mut parts = Vec::new();
    if page > 1 {
        parts.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        parts.push(format!("{}; rel=\"next\"", url(page + 1)));
        parts.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        parts.push(format!("{}; rel=\"first\"", url(1)));
    }
    parts.join(", ")
}

async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let trimmed = path.strip_prefix("/api/v3").unwrap_or(&path);
    let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    let template = Store::template(method.as_str(), &segments);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split_whitespace().last().unwrap_or_default().to_string());
    let query = Query::parse(uri.query().unwrap_or_default());

    // Count, then find the fault that spoils this request, if any.
    let fault = {
        let mut tally = app.counters.tally.lock().unwrap();
        *tally.by_route.entry(template.clone()).or_default() += 1;
        let mut fault = None;
        for (i, rule) in app.faults.iter().enumerate() {
            if !rule.matches(&template) {
                continue;
            }
            tally.matched[i] += 1;
            let seen = tally.matched[i];
            if fault.is_none() && seen > rule.after && seen <= rule.after.saturating_add(rule.times)
            {
                tally.fired[i] += 1;
                fault = Some(rule.kind.clone());
            }
        }
        if method == Method::POST {
            tally.tokens_issued += 1;
        }
        fault
    };
    let serial = app.counters.tally.lock().unwrap().tokens_issued;

    // The token's bucket: refilled at its reset; a scripted exhaustion empties it.
    let key = token.clone().unwrap_or_else(|| "anonymous".into());
    let mut bucket = {
        let mut buckets = app.buckets.lock().unwrap();
        let limit = if token.is_some() { app.limit } else { 60 };
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            limit,
            used: 0,
            reset: now() + 3600,
        });
        if now() >= bucket.reset {
            bucket.used = 0;
            bucket.reset = now() + 3600;
        }
        if let Some(FaultKind::RateLimitExhausted { reset_after }) = &fault {
            bucket.used = bucket.limit;
            bucket.reset = now() + reset_after.as_secs().max(1);
        }
        *bucket
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let rate_headers = |b: &Bucket| -> Vec<(&'static str, String)> {
        vec![
            ("x-ratelimit-limit", b.limit.to_string()),
            (
                "x-ratelimit-remaining",
                b.limit.saturating_sub(b.used).to_string(),
            ),
            ("x-ratelimit-used", b.used.to_string()),
            ("x-ratelimit-reset", b.reset.to_string()),
            ("x-ratelimit-resource", "core".into()),
        ]
    };

    let respond =
        |status: u16, extra: Vec<(&'static str, String)>, body: Body, counters: &Counters| {
            let mut tally = counters.tally.lock().unwrap();
            *tally.by_status.entry(status).or_default() += 1;
            if status == 304 {
                tally.not_modified += 1;
            }
            let mut builder = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header("x-github-media-type", "github.v3; format=json")
                .header("x-github-api-version-selected", "2022-11-28")
                .header(
                    "x-github-request-id",
                    format!("0000:{:x}", tally.by_route.values().sum::<u64>()),
                );
            for (name, value) in extra {
                builder = builder.header(name, value);
            }
            builder.body(body).unwrap_or_default()
        };

    if segments == ["rate_limit"] {
        let b = bucket;
        let core = serde_json::json!({
            "limit": b.limit, "used": b.used, "remaining": b.limit.saturating_sub(b.used),
            "reset": b.reset, "resource": "core",
        });
        let body = serde_json::json!({ "resources": { "core": core }, "rate": core }).to_string();
        let mut extra = rate_headers(&b);
        extra.push(("content-type", "application/json; charset=utf-8".into()));
        return respond(200, extra, Body::from(body), &app.counters);
    }

    // Primary limit exhausted (scripted or used up): 403 until the reset.
    if bucket.used >= bucket.limit {
        let mut extra = rate_headers(&bucket);
        extra.push(("content-type", "application/json; charset=utf-8".into()));
        let body = error_body(&format!(
            "API rate limit exceeded for {}. (But here's the good news: Authenticated requests get a higher rate limit.)",
            if token.is_some() { "user" } else { "127.0.0.1" }
        ));
        return respond(403, extra, Body::from(body), &app.counters);
    }
    match &fault {
        Some(FaultKind::SecondaryLimit {
            status,
            retry_after,
        }) => {
            let mut extra = rate_headers(&bucket);
            extra.push(("retry-after", retry_after.to_string()));
            extra.push(("content-type", "application/json; charset=utf-8".into()));
            let body = error_body(
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            return respond(*status, extra, Body::from(body), &app.counters);
        }
        Some(FaultKind::BadGateway) => {
            let extra = vec![(
                "content-type",
                "application/json; charset=utf-8".to_string(),
            )];
            return respond(
                502,
                extra,
                Body::from(error_body("Server Error")),
                &app.counters,
            );
        }
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(*delay).await,
        _ => {}
    }

    let answer = {
        let app = app.clone();
        let method = method.as_str().to_string();
        let segments: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
        let query = Query(query.0.clone());
        tokio::task::spawn_blocking(move || {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            app.store.answer(&method, &segments, &query, serial)
        })
        .await
        .unwrap_or_else(|e| Answer::Error(500, e.to_string()))
    };
    let (status, body, pages) = match answer {
        Answer::Json {
            status,
            body,
            pages,
        } => (status, body, pages),
        Answer::Error(status, message) => (status, error_body(&message), None),
    };
    let mut extra = vec![(
        "content-type",
        "application/json; charset=utf-8".to_string(),
    )];
    if (200..300).contains(&status) {
        let tag = etag(body.as_bytes());
        extra.push(("cache-control", "private, max-age=60, s-maxage=60".into()));
        extra.push(("vary", "Accept, Authorization, Cookie, X-GitHub-OTP".into()));
        if let Some(pages) = &pages {
            extra.push(("link", link(&host, &path, &query, pages.page, pages.last)));
        }
        if status == 200 && matches_etag(headers.get(header::IF_NONE_MATCH), &tag) {
            // "Making a conditional request does not count against your primary rate limit if
            // a 304 response is returned" (best practices, conditional requests).
            extra.retain(|(name, _)| *name != "content-type");
            extra.push(("etag", tag));
            extra.extend(rate_headers(&bucket));
            return respond(304, extra, Body::empty(), &app.counters);
        }
        extra.push(("etag", tag));
    }
    bucket = {
        let mut buckets = app.buckets.lock().unwrap();
        let b = buckets.entry(key).or_insert(bucket);
        b.used = (b.used + 1).min(b.limit);
        *b
    };
    extra.extend(rate_headers(&bucket));
    if let Some(FaultKind::Truncated) = fault {
        let bytes = body.into_bytes();
        extra.push(("content-length", bytes.len().to_string()));
        let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
        // The head and the first half go out before the body fails, so the client sees a
        // content-length the bytes never reach.
        let cut = futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<Bytes, _>(std::io::Error::other(
                "the scripted fault cuts the body here",
            ))
        });
        let chunks = futures::StreamExt::chain(futures::stream::iter([Ok(half)]), cut);
        return respond(status, extra, Body::from_stream(chunks), &app.counters);
    }
    respond(status, extra, Body::from(body), &app.counters)
}
