//! Requests to PagerDuty's REST API v2: the URL, the documented headers, one GET through the
//! shared retry policy ([`crate::http::Http`]), the answer parsed.
//!
//! Every request carries `Authorization: Token token=<API key>` (the `api_key` security scheme of
//! PagerDuty's OpenAPI description) and `Accept: application/vnd.pagerduty+json;version=2` ("The
//! `Accept` header is used as a versioning header"), and asks `time_zone=UTC`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::http::{Fetched, Headers, Http, HttpError, RawResponse, RetryPolicy, TransportError};

/// One GET to send: the whole URL and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The URL, query included.
    pub url: String,
    /// Header name and value pairs.
    pub headers: Vec<(String, String)>,
}

/// Sends one request and reads its whole answer (the transport: `reqwest` in the binary, a
/// script in tests).
pub type Sender = Arc<
    dyn Fn(Request) -> Pin<Box<dyn Future<Output = Result<RawResponse, TransportError>> + Send>>
        + Send
        + Sync,
>;

/// The [`Sender`] of the binary: `reqwest` (the workspace's 0.12, with the features already in the
/// tree: rustls with the platform's roots, HTTP/2), each request bounded by `timeout` from
/// connecting to the body's last byte.
pub fn reqwest_sender(timeout: Duration) -> Result<Sender, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("doracost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(Arc::new(move |request: Request| {
        let client = client.clone();
        Box::pin(async move {
            let mut builder = client.get(&request.url);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let failed = |e: reqwest::Error| {
                if e.is_timeout() {
                    TransportError::Timeout(timeout)
                } else {
                    TransportError::Connect(chain(&e))
                }
            };
            let response = builder.send().await.map_err(failed)?;
            let status = response.status().as_u16();
            let headers = Headers::new(response.headers().iter().map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            }));
            let body = response.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    TransportError::Timeout(timeout)
                } else {
                    TransportError::Body(chain(&e))
                }
            })?;
            Ok(RawResponse {
                status,
                headers,
                body: body.to_vec(),
            })
        })
    }))
}

/// An error and its causes on one line ("error sending request: … : connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A PagerDuty REST API client: base URL, API key, transport and the retrying caller.
pub struct Client {
    base: String,
    token: String,
    send: Sender,
    http: Http,
}

impl Client {
    /// A client of the API at `base` (`https://api.pagerduty.com`).
    pub fn new(base: &str, token: String, send: Sender, policy: RetryPolicy) -> Client {
        Client::with_http(base, token, send, Http::new(policy))
    }

    /// The same with a retrying caller built elsewhere (tests: recorded sleeps).
    pub fn with_http(base: &str, token: String, send: Sender, http: Http) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            send,
            http,
        }
    }

    /// The requests' counters so far.
    pub fn stats(&self) -> crate::http::RequestStats {
        self.http.stats()
    }

    /// `GET path?query`, retried as the policy says, its 2xx body parsed as `T`. Errors name the
    /// route (`GET /incidents?since=…`; the key is never in it).
    pub async fn get<T: DeserializeOwned>(
        &mut self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, HttpError> {
        let encoded = encode_query(query);
        let route = if encoded.is_empty() {
            format!("GET {path}")
        } else {
            format!("GET {path}?{encoded}")
        };
        let url = if encoded.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{encoded}", self.base)
        };
        let request = Request {
            url,
            headers: vec![
                (
                    "Authorization".into(),
                    format!("Token token={}", self.token),
                ),
                (
                    "Accept".into(),
                    "application/vnd.pagerduty+json;version=2".into(),
                ),
            ],
        };
        let send = Arc::clone(&self.send);
        let fetched = self
            .http
            .fetch(
                &route,
                None,
                |_| send(request.clone()),
                |body| serde_json::from_slice::<T>(body).map_err(|e| e.to_string()),
            )
            .await?;
        match fetched {
            Fetched::Fresh { value, .. } => Ok(value),
            // Only a conditional request gets a 304, and these are not conditional.
            Fetched::NotModified => Err(HttpError::Status {
                route,
                status: 304,
                message: "Not Modified to an unconditional request".into(),
                body: Vec::new(),
            }),
        }
    }
}

/// `k=v&…`, percent-encoded (`[]` in names included, as browsers and PagerDuty's examples send
/// them: `statuses%5B%5D=triggered`).
pub fn encode_query(query: &[(&str, String)]) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded_brackets_and_colons_included() {
        let q = [
            ("since", "2026-01-01T00:00:00Z".to_owned()),
            ("urgencies[]", "high".to_owned()),
        ];
        assert_eq!(
            encode_query(&q),
            "since=2026-01-01T00%3A00%3A00Z&urgencies%5B%5D=high"
        );
    }
}
