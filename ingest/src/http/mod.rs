//! Calling a rate-limited HTTP API and surviving it, whatever sends the requests: one policy for
//! every HTTP source (PagerDuty through `reqwest` today, GitHub's raw octocrab responses later).
//!
//! [`Http::fetch`] runs one logical request through a "send one request" closure that returns the
//! status, headers and whole body ([`RawResponse`]), and decides what happens next:
//! - 2xx: the body is parsed by the caller's parser; a body that does not parse (truncated,
//!   invalid) is retried like a failed request;
//! - 304 to a conditional request (`If-None-Match` with the stored ETag): [`Fetched::NotModified`],
//!   counted apart;
//! - 429, and 403 when it is a rate limit ([`limits::forbidden_is_rate_limit`]): wait what the
//!   server says (`retry-after` seconds or HTTP-date, else the rate-limit reset), else back off;
//! - 408, 5xx, timeouts and transport errors: back off and retry;
//! - any other status: an error at once (retrying the same request cannot help);
//! - a success saying the limit is used up (`x-ratelimit-remaining: 0`, GitHub's primary limit):
//!   the next request waits for the reset instead of being refused.
//!
//! Backoff is exponential with full jitter (a uniform delay up to `initial × 2^retry`, capped),
//! bounded per request by `max_attempts` and per run by a retry budget; past either, the error
//! names the route and what to do. Not here: URLs, authentication, pagination (the sources').

mod limits;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use limits::{Exhausted, exhausted, forbidden_is_rate_limit, retry_after};

/// Response headers, names lower-cased, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Headers from (name, value) pairs; names are matched case-insensitively.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Headers {
        Headers(
            pairs
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One answer, read whole.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers.
    pub headers: Headers,
    /// The whole body.
    pub body: Vec<u8>,
}

/// A request that got no whole answer: worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer within the client's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made or broke before the headers.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The body stopped before its end (a truncated response).
    #[error("the body was cut short: {0}")]
    Body(String),
}

/// What a fetch got.
#[derive(Debug, Clone)]
pub enum Fetched<T> {
    /// A 2xx answer, parsed.
    Fresh {
        /// The parsed body.
        value: T,
        /// The answer's `ETag`, for the next conditional request.
        etag: Option<String>,
        /// All its headers.
        headers: Headers,
    },
    /// 304: unchanged since the ETag sent.
    NotModified,
}

/// How requests are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Retries over the whole run (every request's together) before giving up.
    pub retry_budget: u32,
    /// The first backoff's upper bound; each retry doubles it.
    pub initial_backoff: Duration,
    /// The backoff's largest upper bound.
    pub max_backoff: Duration,
    /// The longest wait a server may ask for (`retry-after`, a rate-limit reset); a longer one
    /// stops the run with an error saying when to rerun.
    pub max_wait: Duration,
    /// The wait after a rate-limit refusal that says nothing of when to retry (GitHub: "wait for
    /// at least one minute before retrying").
    pub rate_limited_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            retry_budget: 200,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            rate_limited_wait: Duration::from_secs(60),
        }
    }
}

/// What the requests of a run cost, for `--format json` summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestStats {
    /// Requests sent, retries and 304s included.
    pub requests: u64,
    /// Of which answered 304 Not Modified (GitHub does not count these against its limit).
    pub not_modified: u64,
    /// Requests sent again after a failure or a refusal.
    pub retries: u64,
    /// Waits a rate limit imposed (a 429 or rate-limit 403, or a limit reported used up).
    pub rate_limit_waits: u64,
    /// Milliseconds spent waiting, backoff and rate limits together.
    pub waited_ms: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// Why a fetch failed for good.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// Every attempt failed.
    #[error(
        "{route}: gave up after {attempts} attempt(s); the last: {last}. {}",
        advice(*rate_limited)
    )]
    GaveUp {
        /// The request, e.g. `GET /incidents?since=…`.
        route: String,
        /// Attempts made.
        attempts: u32,
        /// What the last one got.
        last: String,
        /// Whether the last refusal was a rate limit.
        rate_limited: bool,
    },
    /// The run's retry budget is spent.
    #[error(
        "{route}: the run's retry budget ({budget} retries) is spent; the last failure: {last}. {}",
        advice(false)
    )]
    BudgetSpent {
        /// The request that would have been retried.
        route: String,
        /// The budget.
        budget: u32,
        /// What its last attempt got.
        last: String,
    },
    /// The server asked for a longer wait than the policy allows.
    #[error(
        "{route}: the server asks to wait {}s (rate limit), longer than the {}s allowed; rerun after {}",
        wait.as_secs(), max_wait.as_secs(),
        chrono::DateTime::<chrono::Utc>::from(*resume_at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    WaitTooLong {
        /// The request.
        route: String,
        /// The wait asked for.
        wait: Duration,
        /// The policy's longest wait.
        max_wait: Duration,
        /// When requests may resume.
        resume_at: SystemTime,
    },
    /// A status that retrying cannot change (400, 401, 404, …).
    #[error("{route}: HTTP {status}: {message}")]
    Status {
        /// The request.
        route: String,
        /// The status.
        status: u16,
        /// The start of the body.
        message: String,
        /// The whole body, for the caller's own reading (an API's error code).
        body: Vec<u8>,
    },
}

fn advice(rate_limited: bool) -> &'static str {
    if rate_limited {
        "The API's rate limit did not let up: rerun later (nothing is lost, the next run starts \
         from the last saved cursor), or give this ingest a token of its own"
    } else {
        "The server kept failing or did not answer: check the API URL and the service's status, \
         then rerun (nothing is lost, the next run starts from the last saved cursor); \
         max_attempts and request_timeout_seconds allow more patience"
    }
}

/// How the retrying caller sleeps (tests record instead).
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The retrying caller: a policy, its counters, and the rate-limit state between requests.
pub struct Http {
    policy: RetryPolicy,
    stats: RequestStats,
    /// No request before this time (a limit reported used up).
    resume_at: Option<SystemTime>,
    jitter: u64,
    sleep: Sleep,
    clock: fn() -> SystemTime,
}

impl Http {
    /// A caller with `policy`, sleeping on tokio's timer.
    pub fn new(policy: RetryPolicy) -> Http {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        Http {
            policy,
            stats: RequestStats::default(),
            resume_at: None,
            jitter: seed | 1,
            sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
            clock: SystemTime::now,
        }
    }

    /// The same caller sleeping through `sleep`, its jitter seeded with `seed`, reading the time
    /// from `clock` (tests).
    pub fn with_sleep(mut self, sleep: Sleep, seed: u64, clock: fn() -> SystemTime) -> Http {
        self.sleep = sleep;
        self.jitter = seed | 1;
        self.clock = clock;
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> RequestStats {
        self.stats
    }

    /// Fetches `route` (named in errors and logs) through `send`, which sends one request with
    /// `If-None-Match: <etag>` when given one, and `parse`s a 2xx body; retries as the module
    /// says.
    pub async fn fetch<T, S, Fut, P>(
        &mut self,
        route: &str,
        etag: Option<&str>,
        mut send: S,
        parse: P,
    ) -> Result<Fetched<T>, HttpError>
    where
        S: FnMut(Option<&str>) -> Fut,
        Fut: Future<Output = Result<RawResponse, TransportError>>,
        P: Fn(&[u8]) -> Result<T, String>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(at) = self.resume_at.take() {
                let wait = at.duration_since((self.clock)()).unwrap_or(Duration::ZERO);
                if !wait.is_zero() {
                    self.check_wait(route, wait, at)?;
                    self.stats.rate_limit_waits += 1;
                    self.pause(wait).await;
                }
            }
            self.stats.requests += 1;
            let (last, server_wait, rate_limited) = match send(etag).await {
                Err(error) => (error.to_string(), None, false),
                Ok(response) => {
                    self.stats.bytes += response.body.len() as u64;
                    let now = (self.clock)();
                    let limit = exhausted(&response.headers, now);
                    match response.status {
                        200..=299 => {
                            self.resume_at = limit.map(|l| l.resets_at);
                            match parse(&response.body) {
                                Ok(value) => {
                                    return Ok(Fetched::Fresh {
                                        value,
                                        etag: response.headers.get("etag").map(str::to_owned),
                                        headers: response.headers,
                                    });
                                }
                                Err(why) => (format!("an unreadable body ({why})"), None, false),
                            }
                        }
                        304 if etag.is_some() => {
                            self.stats.not_modified += 1;
                            self.resume_at = limit.map(|l| l.resets_at);
                            return Ok(Fetched::NotModified);
                        }
                        status @ (403 | 429)
                            if status == 429
                                || forbidden_is_rate_limit(
                                    &response.headers,
                                    &response.body,
                                    now,
                                ) =>
                        {
                            let wait = retry_after(&response.headers, now)
                                .or_else(|| {
                                    limit.map(|l| {
                                        l.resets_at.duration_since(now).unwrap_or(Duration::ZERO)
                                    })
                                })
                                .unwrap_or(self.policy.rate_limited_wait);
                            (format!("HTTP {status} (rate limited)"), Some(wait), true)
                        }
                        status @ (408 | 500..=599) => (
                            format!("HTTP {status}"),
                            retry_after(&response.headers, now),
                            false,
                        ),
                        status => {
                            return Err(HttpError::Status {
                                route: route.to_owned(),
                                status,
                                message: excerpt(&response.body),
                                body: response.body,
                            });
                        }
                    }
                }
            };
            tracing::debug!(route, attempt, last, "request failed");
            if attempt >= self.policy.max_attempts {
                return Err(HttpError::GaveUp {
                    route: route.to_owned(),
                    attempts: attempt,
                    last,
                    rate_limited,
                });
            }
            if self.stats.retries >= u64::from(self.policy.retry_budget) {
                return Err(HttpError::BudgetSpent {
                    route: route.to_owned(),
                    budget: self.policy.retry_budget,
                    last,
                });
            }
            let delay = match server_wait {
                Some(wait) => {
                    self.check_wait(route, wait, (self.clock)() + wait)?;
                    self.stats.rate_limit_waits += u64::from(rate_limited);
                    wait
                }
                None => self.backoff(attempt),
            };
            self.stats.retries += 1;
            self.pause(delay).await;
        }
    }

    fn check_wait(&self, route: &str, wait: Duration, at: SystemTime) -> Result<(), HttpError> {
        if wait > self.policy.max_wait {
            return Err(HttpError::WaitTooLong {
                route: route.to_owned(),
                wait,
                max_wait: self.policy.max_wait,
                resume_at: at,
            });
        }
        Ok(())
    }

    async fn pause(&mut self, wait: Duration) {
        self.stats.waited_ms += u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        (self.sleep)(wait).await;
    }

    /// Full jitter: uniform in [0, min(max, initial × 2^(attempt − 1))].
    fn backoff(&mut self, attempt: u32) -> Duration {
        let cap = self
            .policy
            .initial_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(self.policy.max_backoff);
        // xorshift64*: enough to spread retries, no need for a cryptographic source.
        self.jitter ^= self.jitter >> 12;
        self.jitter ^= self.jitter << 25;
        self.jitter ^= self.jitter >> 27;
        let draw = self.jitter.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        let fraction = draw as f64 / (1u64 << 53) as f64;
        cap.mul_f64(fraction)
    }
}

/// The first 300 characters of a body, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out.replace(['\n', '\r'], " ")
}
