//! A stand-in for PagerDuty's REST API v2 over a fixed set of incidents and log entries, answering
//! the routes and parameters the ingest uses as PagerDuty documents them (PagerDuty/api-schema
//! `reference/REST/openapiv3.json`): `GET /incidents` (`since`, `until`, `date_range=all`,
//! `statuses[]`, `urgencies[]`, `service_ids[]`, `limit` ≤ 100, `offset`, `total`),
//! `GET /incidents/{id}` and `GET /log_entries` (`since`, `until`), with `Token token=` auth, the
//! `Pagination` fields, PagerDuty's `ratelimit-*` headers, and the 400 of `offset + limit` over the
//! cap. Shared by the ingest's unit tests and the end-to-end tests (`tests/e2e/main.rs` includes
//! this file), which put it behind a real socket with scripted faults. Test code: it panics on
//! malformed fixtures.

use serde_json::{Value, json};

/// The API's data and settings.
#[derive(Debug, Clone)]
pub struct FakePagerDuty {
    /// Incident objects, in `created_at` order.
    pub incidents: Vec<Value>,
    /// Log entry objects.
    pub log_entries: Vec<Value>,
    /// The API key it accepts.
    pub token: String,
    /// The cap on `offset + limit` (PagerDuty's is 10,000).
    pub max_offset: u64,
}

/// One answer: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

impl FakePagerDuty {
    /// The API over the bodies of `pagerduty/incidents.json` and `pagerduty/log_entries.json`.
    pub fn from_bodies(incidents: &str, log_entries: &str, token: &str) -> FakePagerDuty {
        let list = |text: &str, key: &str| -> Vec<Value> {
            let body: Value = serde_json::from_str(text).expect("a JSON body");
            body[key].as_array().expect("a list").clone()
        };
        FakePagerDuty {
            incidents: list(incidents, "incidents"),
            log_entries: list(log_entries, "log_entries"),
            token: token.to_owned(),
            max_offset: 10_000,
        }
    }

    /// The answer to `GET target` (path and query) with `authorization`.
    pub fn answer(&self, target: &str, authorization: Option<&str>) -> Answer {
        if authorization != Some(format!("Token token={}", self.token).as_str()) {
            return error(401, 2006, "Unauthorized", &[]);
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params = parse_query(query);
        let all = |name: &str| -> Vec<&str> {
            params
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let one = |name: &str| all(name).first().map(|v| (*v).to_owned());
        match path.trim_end_matches('/') {
            "/incidents" => {
                let window = (one("date_range").as_deref() != Some("all"))
                    .then(|| (one("since"), one("until")));
                let (statuses, urgencies, services) =
                    (all("statuses[]"), all("urgencies[]"), all("service_ids[]"));
                let matching: Vec<&Value> = self
                    .incidents
                    .iter()
                    .filter(|i| {
                        window
                            .as_ref()
                            .is_none_or(|(s, u)| in_window(&i["created_at"], s, u))
                    })
                    .filter(|i| statuses.is_empty() || statuses.contains(&text(&i["status"])))
                    .filter(|i| urgencies.is_empty() || urgencies.contains(&text(&i["urgency"])))
                    .filter(|i| {
                        services.is_empty() || services.contains(&text(&i["service"]["id"]))
                    })
                    .collect();
                self.page("incidents", &matching, &one)
            }
            "/log_entries" => {
                let (since, until) = (one("since"), one("until"));
                let matching: Vec<&Value> = self
                    .log_entries
                    .iter()
                    .filter(|e| in_window(&e["created_at"], &since, &until))
                    .collect();
                self.page("log_entries", &matching, &one)
            }
            other => match other.strip_prefix("/incidents/") {
                Some(id) if !id.contains('/') => {
                    match self.incidents.iter().find(|i| text(&i["id"]) == id) {
                        Some(incident) => ok(json!({ "incident": incident })),
                        None => error(404, 2100, "Not Found", &[]),
                    }
                }
                _ => error(404, 2100, "Not Found", &[]),
            },
        }
    }

    fn page(&self, key: &str, matching: &[&Value], one: &dyn Fn(&str) -> Option<String>) -> Answer {
        let number = |name: &str, default: u64| {
            one(name).map_or(default, |v| v.parse::<u64>().expect("a number"))
        };
        let (limit, offset) = (number("limit", 25).min(100), number("offset", 0));
        if offset + limit > self.max_offset {
            return error(
                400,
                2002,
                "Arguments Caused Error",
                &[&format!(
                    "Offset+limit exceeds maximum allowed value of {}. Please try to refine your \
                     search to reduce the returned set of records below this number, like adding \
                     a date range.",
                    self.max_offset
                )],
            );
        }
        let items: Vec<&Value> = matching
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .copied()
            .collect();
        let total = (one("total").as_deref() == Some("true")).then_some(matching.len());
        let more = (offset as usize) + items.len() < matching.len();
        ok(json!({ key: items, "limit": limit, "offset": offset, "more": more, "total": total }))
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Whether an RFC 3339 time lies in `[since, until)` (either bound absent: open).
fn in_window(at: &Value, since: &Option<String>, until: &Option<String>) -> bool {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("not RFC 3339: {t}: {e}"))
    };
    let at = parse(text(at));
    since.as_deref().is_none_or(|s| parse(s) <= at)
        && until.as_deref().is_none_or(|u| at < parse(u))
}

fn headers() -> Vec<(String, String)> {
    vec![
        (
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        ),
        ("ratelimit-limit".into(), "960".into()),
        ("ratelimit-remaining".into(), "959".into()),
        ("ratelimit-reset".into(), "60".into()),
    ]
}

fn ok(body: Value) -> Answer {
    (200, headers(), body.to_string())
}

/// PagerDuty's error body (`{"error": {"message", "code", "errors"}}`).
fn error(status: u16, code: u32, message: &str, errors: &[&str]) -> Answer {
    let body = json!({ "error": { "message": message, "code": code, "errors": errors } });
    (status, headers(), body.to_string())
}

/// `k=v&…` decoded (`%XX`, `+`).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
