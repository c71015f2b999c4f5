//! `[sources.pagerduty]`: how `doracost ingest pagerduty` reads incidents from PagerDuty's REST API
//! v2 (DESIGN §6; issue 17 parts 4–7).
//!
//! ```toml
//! [sources.pagerduty]
//! token = { env = "PAGERDUTY_TOKEN" }   # the default
//! services = { PXK3M9Q = "checkout", P2B7TRW = "cart" }
//! priorities = ["P1", "P2", "P3"]       # pages without one of these priorities are not incidents
//! urgencies = ["high", "low"]           # the default: both
//! since = "2025-05-01"                  # where the first run starts
//! ```

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;

use super::SecretRef;

/// The environment variable holding the PagerDuty REST API key when `token` is not given.
pub const DEFAULT_TOKEN_ENV: &str = "PAGERDUTY_TOKEN";

/// The longest `since`/`until` range PagerDuty's list-incidents route accepts ("Maximum range is
/// 6 months", the `since` parameter of `GET /incidents`, PagerDuty/api-schema
/// `reference/REST/openapiv3.json`), in days.
pub const MAX_WINDOW_DAYS: u32 = 180;

/// `[sources.pagerduty]`: the account read, how PagerDuty's services map to ours, and which pages
/// count as incidents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySource {
    /// The REST API's base URL: `https://api.pagerduty.com`, or `https://api.eu.pagerduty.com` for
    /// the EU service region.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// A REST API key (account or user, read-only is enough), as a secret reference; default
    /// `{ env = "PAGERDUTY_TOKEN" }`. Sent as `Authorization: Token token=…`.
    #[serde(default = "default_token")]
    pub token: SecretRef,
    /// PagerDuty service id → the name of one of our `[[services]]`. An incident of a PagerDuty
    /// service not listed here belongs to our service of the same name as the PagerDuty service
    /// when there is one, and is otherwise skipped (and counted in the ingest's summary).
    #[serde(default)]
    pub services: BTreeMap<String, String>,
    /// Only incidents of these urgencies (`high`, `low`) are read; empty reads both. Asked of
    /// PagerDuty (`urgencies[]`), so other pages are never transferred.
    #[serde(default)]
    pub urgencies: Vec<Urgency>,
    /// Only incidents whose priority is one of these names (`P1`, `P2`, …, as the account names
    /// them) are incidents; empty keeps every incident, with a priority or without. Routing every
    /// page (a disk filling up, a flapping check) into `incidents` would inflate the change
    /// failure rate: this is where such pages are left out.
    #[serde(default)]
    pub priorities: Vec<String>,
    /// The first run reads incidents created from this day (`YYYY-MM-DD`, UTC) on; default 90
    /// days before the run. Later runs start from the saved cursor.
    #[serde(default)]
    pub since: Option<String>,
    /// Incidents are listed in windows of this many days of creation time (1 to 180: PagerDuty
    /// accepts at most 6 months per request); a window holding more than PagerDuty's 10,000
    /// paginated results is split in two until each half fits.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// How far before the saved cursor the next run starts again, in minutes: incidents created
    /// around the previous run are read again (and written only when they changed).
    #[serde(default = "default_overlap_minutes")]
    pub overlap_minutes: u32,
    /// Attempts per request (429s, 5xx, timeouts, truncated bodies are retried with backoff)
    /// before the ingest stops with an error naming the route; the lake is then as it was.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry's longest delay in milliseconds; each later one may be twice as long (full
    /// jitter), up to a minute.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// The longest one request may take, in seconds (a slower answer is retried).
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: f64,
}

impl Default for PagerDutySource {
    /// What an empty `[sources.pagerduty]` says (and what runs without one use).
    fn default() -> Self {
        PagerDutySource {
            api_url: default_api_url(),
            token: default_token(),
            services: BTreeMap::new(),
            urgencies: Vec::new(),
            priorities: Vec::new(),
            since: None,
            window_days: default_window_days(),
            overlap_minutes: default_overlap_minutes(),
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            request_timeout_seconds: default_request_timeout_seconds(),
        }
    }
}

/// A PagerDuty incident urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// `high`
    High,
    /// `low`
    Low,
}

impl Urgency {
    /// The API's name for it.
    pub fn api_name(self) -> &'static str {
        match self {
            Urgency::High => "high",
            Urgency::Low => "low",
        }
    }
}

fn default_api_url() -> String {
    "https://api.pagerduty.com".to_owned()
}
fn default_token() -> SecretRef {
    SecretRef::Env(DEFAULT_TOKEN_ENV.to_owned())
}
fn default_window_days() -> u32 {
    30
}
fn default_overlap_minutes() -> u32 {
    60
}
fn default_max_attempts() -> u32 {
    6
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_request_timeout_seconds() -> f64 {
    30.0
}

impl PagerDutySource {
    /// `since` as a date.
    pub fn since_date(&self) -> Option<NaiveDate> {
        self.since
            .as_deref()
            .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
    }

    /// Checks what no single key's type says; `services` are the names of `[[services]]`.
    pub(super) fn check(&self, services: &BTreeSet<&str>) -> Result<(), String> {
        let url = self.api_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!(
                "sources.pagerduty.api_url: `{url}` is not an http(s) URL (e.g. https://api.pagerduty.com)"
            ));
        }
        for (id, name) in &self.services {
            if !services.contains(name.as_str()) {
                return Err(format!(
                    "sources.pagerduty.services.{id}: no service named `{name}` in [[services]]"
                ));
            }
        }
        if let Some(since) = &self.since
            && self.since_date().is_none()
        {
            return Err(format!(
                "sources.pagerduty.since: `{since}` is not a date as YYYY-MM-DD"
            ));
        }
        if !(1..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            return Err(format!(
                "sources.pagerduty.window_days: {} is outside 1 to {MAX_WINDOW_DAYS} (PagerDuty lists at most 6 months per request)",
                self.window_days
            ));
        }
        if self.max_attempts == 0 {
            return Err("sources.pagerduty.max_attempts: at least 1".to_owned());
        }
        if !(self.request_timeout_seconds.is_finite() && self.request_timeout_seconds > 0.0) {
            return Err(format!(
                "sources.pagerduty.request_timeout_seconds: {} is not a positive number of seconds",
                self.request_timeout_seconds
            ));
        }
        if self.priorities.iter().any(|p| p.trim().is_empty()) {
            return Err("sources.pagerduty.priorities: a priority name is empty".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, SecretRef};

    const SERVICES: &str = "[[services]]\nname = \"checkout\"\nteam = \"t\"\n\n[[services]]\nname = \"cart\"\nteam = \"t\"\n";

    fn parse(section: &str) -> Result<Config, String> {
        Config::parse(
            &format!("{SERVICES}\n{section}"),
            Path::new("doracost.toml"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_read_the_token_from_pagerduty_token_and_every_page() {
        let config = parse("[sources.pagerduty]\n").unwrap();
        let source = config.sources.pagerduty.unwrap();
        assert_eq!(source.api_url, "https://api.pagerduty.com");
        assert_eq!(source.token, SecretRef::Env("PAGERDUTY_TOKEN".into()));
        assert!(source.services.is_empty() && source.urgencies.is_empty());
        assert!(source.priorities.is_empty());
        assert_eq!(
            (
                source.window_days,
                source.overlap_minutes,
                source.max_attempts
            ),
            (30, 60, 6)
        );
        assert_eq!(source.since_date(), None);
        assert_eq!(source, super::PagerDutySource::default());
    }

    #[test]
    fn services_filters_and_windows_as_written() {
        let config = parse(
            "[sources.pagerduty]\napi_url = \"http://127.0.0.1:9\"\ntoken = { file = \"pd.key\" }\n\
             services = { PXK3M9Q = \"checkout\" }\nurgencies = [\"high\"]\npriorities = [\"P1\", \"P2\"]\n\
             since = \"2025-05-01\"\nwindow_days = 180\nrequest_timeout_seconds = 0.5\n",
        )
        .unwrap();
        let source = config.sources.pagerduty.unwrap();
        assert_eq!(source.services["PXK3M9Q"], "checkout");
        assert_eq!(source.urgencies, vec![super::Urgency::High]);
        assert_eq!(source.priorities, vec!["P1", "P2"]);
        assert_eq!(
            source.since_date(),
            chrono::NaiveDate::from_ymd_opt(2025, 5, 1)
        );
        assert_eq!(source.token, SecretRef::File("pd.key".into()));
        assert_eq!(source.request_timeout_seconds, 0.5);
    }

    #[test]
    fn mistakes_are_refused_naming_the_key() {
        for (section, key) in [
            (
                "services = { PXK3M9Q = \"billing\" }",
                "sources.pagerduty.services.PXK3M9Q",
            ),
            ("urgencies = [\"urgent\"]", "urgencies"),
            ("window_days = 200", "sources.pagerduty.window_days"),
            ("window_days = 0", "sources.pagerduty.window_days"),
            ("since = \"May 2025\"", "sources.pagerduty.since"),
            (
                "api_url = \"api.pagerduty.com\"",
                "sources.pagerduty.api_url",
            ),
            ("max_attempts = 0", "sources.pagerduty.max_attempts"),
            (
                "request_timeout_seconds = 0",
                "sources.pagerduty.request_timeout_seconds",
            ),
            ("token = \"u+abc\"", "secrets are not written in the config"),
            ("page_size = 50", "page_size"),
        ] {
            let err = parse(&format!("[sources.pagerduty]\n{section}\n")).unwrap_err();
            assert!(err.contains(key), "{section}: {err}");
        }
    }
}
