//! GitHub's REST API through octocrab's raw requests, each run through [`crate::http::Http`]'s
//! retry, rate-limit and ETag policy; pages followed by their `Link: rel="next"` header.

use std::time::Duration;

use model::config::github::GithubSource;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

use crate::http::{Fetched, Headers, Http, HttpError, RawResponse, RetryPolicy, TransportError};

/// A GitHub API client for one run.
pub struct Client {
    octo: Octocrab,
    http: Http,
    base: String,
    timeout: Duration,
}

/// One page of a list.
pub struct Page<T> {
    /// Its items.
    pub items: T,
    /// The next page's URL, if any.
    pub next: Option<String>,
    /// The page's ETag.
    pub etag: Option<String>,
}

/// Why the client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
    /// octocrab refused the settings.
    #[error("the GitHub client cannot be built: {0}")]
    Build(String),
}

impl Client {
    /// A client for `source` (its API URL, token or App, timeouts and attempts).
    pub async fn new(source: &GithubSource) -> Result<Client, ClientError> {
        let base = source.api_url.trim_end_matches('/').to_owned();
        let timeout = Duration::from_secs_f64(source.request_timeout_seconds.max(0.05));
        let builder = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|e| ClientError::Build(format!("api_url {base:?}: {e}")))?
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout));
        let octo = match (&source.app, source.token()) {
            (Some(app), _) => {
                let pem = app
                    .private_key
                    .resolve()
                    .map_err(|e| ClientError::Secret(e.to_string()))?;
                let key = octocrab::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    ClientError::Build(format!(
                        "[sources.github.app] private_key is not an RSA private key in PEM: {e}"
                    ))
                })?;
                builder
                    .app(app.app_id.into(), key)
                    .build()
                    .map_err(|e| ClientError::Build(e.to_string()))?
                    .installation(app.installation_id.into())
                    .map_err(|e| ClientError::Build(e.to_string()))?
            }
            (None, Some(token)) => {
                let token = token
                    .resolve()
                    .map_err(|e| ClientError::Secret(e.to_string()))?;
                builder
                    .personal_token(token.trim().to_owned())
                    .build()
                    .map_err(|e| ClientError::Build(e.to_string()))?
            }
            (None, None) => builder
                .build()
                .map_err(|e| ClientError::Build(e.to_string()))?,
        };
        let policy = RetryPolicy {
            max_attempts: source.max_attempts.max(1),
            ..RetryPolicy::default()
        };
        Ok(Client {
            octo,
            http: Http::new(policy),
            base,
            timeout,
        })
    }

    /// The same client with another retry policy's timing (tests shorten the waits).
    pub fn with_http(mut self, http: Http) -> Client {
        self.http = http;
        self
    }

    /// The requests' counters so far.
    pub fn stats(&self) -> crate::http::RequestStats {
        self.http.stats()
    }

    /// The absolute URL of an API path (`/repos/…`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `url` (absolute), conditionally on `etag`, and parses its JSON as `T`.
    pub async fn get<T: DeserializeOwned>(
        &mut self,
        url: &str,
        etag: Option<&str>,
    ) -> Result<Fetched<Page<T>>, HttpError> {
        let route = format!("GET {}", url.strip_prefix(&self.base).unwrap_or(url));
        let octo = self.octo.clone();
        let timeout = self.timeout;
        let url_owned = url.to_owned();
        let fetched = self
            .http
            .fetch(
                &route,
                etag,
                move |etag| {
                    send(
                        octo.clone(),
                        url_owned.clone(),
                        etag.map(str::to_owned),
                        timeout,
                    )
                },
                |body| {
                    serde_json::from_slice::<T>(body).map_err(|e| format!("unexpected JSON: {e}"))
                },
            )
            .await?;
        Ok(match fetched {
            Fetched::NotModified => Fetched::NotModified,
            Fetched::Fresh {
                value,
                etag,
                headers,
            } => Fetched::Fresh {
                value: Page {
                    items: value,
                    next: next_link(&headers),
                    etag: etag.clone(),
                },
                etag,
                headers,
            },
        })
    }

    /// Every page of a list from `url`: the items in order. Unconditional.
    pub async fn get_all<T: DeserializeOwned>(&mut self, url: &str) -> Result<Vec<T>, HttpError> {
        let mut out = Vec::new();
        let mut next = Some(url.to_owned());
        while let Some(url) = next.take() {
            if let Fetched::Fresh { value, .. } = self.get::<Vec<T>>(&url, None).await? {
                out.extend(value.items);
                next = value.next;
            }
        }
        Ok(out)
    }
}

async fn send(
    octo: Octocrab,
    url: String,
    etag: Option<String>,
    timeout: Duration,
) -> Result<RawResponse, TransportError> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/vnd.github+json"),
    );
    headers.insert(
        "x-github-api-version",
        http::HeaderValue::from_static("2022-11-28"),
    );
    if let Some(etag) = etag
        && let Ok(value) = http::HeaderValue::from_str(&etag)
    {
        headers.insert(http::header::IF_NONE_MATCH, value);
    }
    let response =
        tokio::time::timeout(timeout, octo._get_with_headers(url.as_str(), Some(headers)))
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
            .map_err(|e| TransportError::Connect(e.to_string()))?;
    let status = response.status().as_u16();
    let headers = Headers::new(response.headers().iter().map(|(name, value)| {
        (
            name.as_str().to_owned(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )
    }));
    let body = tokio::time::timeout(timeout, octo.body_to_string(response))
        .await
        .map_err(|_| TransportError::Timeout(timeout))?
        .map_err(|e| TransportError::Body(e.to_string()))?;
    Ok(RawResponse {
        status,
        headers,
        body: body.into_bytes(),
    })
}

/// The `rel="next"` URL of a `Link` header (RFC 8288), as GitHub paginates.
pub fn next_link(headers: &Headers) -> Option<String> {
    let link = headers.get("link")?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}
