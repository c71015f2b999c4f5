//! The parts of PagerDuty REST API v2 answers this ingest reads, as documented in PagerDuty's own
//! OpenAPI description (github.com/PagerDuty/api-schema, `reference/REST/openapiv3.json`):
//! `listIncidents` (`GET /incidents`), `getIncident` (`GET /incidents/{id}`) and
//! `listLogEntries` (`GET /log_entries`), their `Pagination` schema and the `Incident`,
//! `Acknowledgement`, `LogEntry` and reference schemas. Unknown fields are ignored, as the API may
//! add some.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The `Pagination` schema every list answer carries ("classic" offset pagination): `offset` and
/// `limit` echo the request, `more` "indicates if there are additional records to return", and
/// `total` is null unless the request asked `total=true`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    /// Echoes `offset`.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Echoes `limit` (at most 100 for incidents).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Whether records follow.
    #[serde(default)]
    pub more: bool,
    /// Records matching the query, when asked with `total=true`.
    #[serde(default)]
    pub total: Option<u64>,
}

/// A page of `GET /incidents`.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentsPage {
    /// The incidents (the only required field of the answer).
    pub incidents: Vec<Incident>,
    /// Its pagination.
    #[serde(flatten)]
    pub pagination: Pagination,
}

/// The answer of `GET /incidents/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentAnswer {
    /// The incident.
    pub incident: Incident,
}

/// A page of `GET /log_entries`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntriesPage {
    /// The entries, of any of the `*_log_entry` types.
    pub log_entries: Vec<LogEntry>,
    /// Its pagination.
    #[serde(flatten)]
    pub pagination: Pagination,
}

/// The `Incident` schema, as far as `incidents` rows need it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Incident {
    /// The incident's id, e.g. `PT4KHLK`.
    pub id: String,
    /// "The number of the incident. This is unique across your account."
    #[serde(default)]
    pub incident_number: Option<u64>,
    /// "A succinct description of the nature, symptoms, cause, or effect of the incident."
    #[serde(default)]
    pub title: Option<String>,
    /// "The time the incident was first triggered."
    pub created_at: DateTime<Utc>,
    /// `triggered`, `acknowledged` or `resolved` ("More status codes may be introduced").
    pub status: String,
    /// `high` or `low`.
    #[serde(default)]
    pub urgency: Option<String>,
    /// The incident's priority (a `Priority` or a reference to one; null when it has none): its
    /// `summary` (or `name`) is the account's name for it, e.g. `P1`.
    #[serde(default)]
    pub priority: Option<Reference>,
    /// The service it is on: a `ServiceReference`, whose `summary` is the service's name.
    pub service: Reference,
    /// "The URL at which the entity is uniquely displayed in the Web app."
    #[serde(default)]
    pub html_url: Option<String>,
    /// "List of all acknowledgements for this incident. This list will be empty if the
    /// `Incident.status` is `resolved` or `triggered`": resolved incidents' acknowledgements are
    /// read from the log entries.
    #[serde(default)]
    pub acknowledgements: Vec<Acknowledgement>,
    /// "The time the incident became "resolved" or `null` if the incident is not resolved."
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// "The time the status of the incident last changed": a resolved incident's resolution
    /// when `resolved_at` is absent.
    #[serde(default)]
    pub last_status_change_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// Whether it is resolved (status `resolved`).
    pub fn is_resolved(&self) -> bool {
        self.status == "resolved"
    }

    /// When it was resolved: `resolved_at`, else (a resolved incident without one)
    /// `last_status_change_at`; `None` while open.
    pub fn resolution(&self) -> Option<DateTime<Utc>> {
        if !self.is_resolved() {
            return None;
        }
        self.resolved_at.or(self.last_status_change_at)
    }

    /// Its priority's name (`P1` …), if it has one.
    pub fn priority_name(&self) -> Option<&str> {
        let priority = self.priority.as_ref()?;
        priority.summary.as_deref().or(priority.name.as_deref())
    }

    /// Its first acknowledgement among those it lists (only while acknowledged).
    pub fn first_acknowledgement(&self) -> Option<DateTime<Utc>> {
        self.acknowledgements.iter().map(|a| a.at).min()
    }
}

/// A reference (`Reference` schema: `id`, `type`, `summary`, …) or a full object in its place.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reference {
    /// The object's id.
    pub id: String,
    /// "A short-form, server-generated string … suitable for primary labeling": a service's or
    /// a priority's name.
    #[serde(default)]
    pub summary: Option<String>,
    /// A full object's `name` (a `Service`, a `Priority`).
    #[serde(default)]
    pub name: Option<String>,
}

impl Reference {
    /// The object's name: `summary`, else `name`.
    pub fn label(&self) -> Option<&str> {
        self.summary.as_deref().or(self.name.as_deref())
    }
}

/// The `Acknowledgement` schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Acknowledgement {
    /// "Time at which the acknowledgement was created."
    pub at: DateTime<Utc>,
}

/// The `LogEntry` schema: what happened to an incident, and when.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogEntry {
    /// The entry's id.
    pub id: String,
    /// `trigger_log_entry`, `acknowledge_log_entry`, `resolve_log_entry`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// "Time at which the log entry was created."
    pub created_at: DateTime<Utc>,
    /// The incident it is about (an `IncidentReference`).
    #[serde(default)]
    pub incident: Option<Reference>,
}

/// The `acknowledge_log_entry` type.
pub const ACKNOWLEDGE_LOG_ENTRY: &str = "acknowledge_log_entry";

#[cfg(test)]
mod tests {
    use super::*;

    /// The `listIncidents` response example of PagerDuty's OpenAPI description, trimmed to the
    /// fields read plus a few that are not.
    const DOCUMENTED_PAGE: &str = r#"{
      "incidents": [{
        "id": "PT4KHLK", "type": "incident", "summary": "[#1234] The server is on fire.",
        "self": "https://api.pagerduty.com/incidents/PT4KHLK",
        "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
        "incident_number": 1234, "title": "The server is on fire.",
        "created_at": "2015-10-06T21:30:42Z", "updated_at": "2015-10-06T21:40:23Z",
        "status": "resolved", "incident_key": "baf7cf21b1da41b4b0221008339ff357",
        "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service",
                    "self": "https://api.pagerduty.com/services/PIJ90N7"},
        "assignments": [], "assigned_via": "escalation_policy",
        "last_status_change_at": "2015-10-06T21:38:23Z", "resolved_at": "2015-10-06T21:38:23Z",
        "acknowledgements": [],
        "priority": {"id": "P53ZZH5", "type": "priority_reference", "summary": "P2",
                     "self": "https://api.pagerduty.com/priorities/P53ZZH5"},
        "resolve_reason": null, "urgency": "high", "alert_counts": {"all": 2, "triggered": 0, "resolved": 2}
      }],
      "limit": 1, "offset": 0, "more": true, "total": null
    }"#;

    #[test]
    fn the_documented_example_reads() {
        let page: IncidentsPage = serde_json::from_str(DOCUMENTED_PAGE).unwrap();
        assert!(page.pagination.more);
        assert_eq!(page.pagination.total, None);
        let incident = &page.incidents[0];
        assert_eq!(incident.priority_name(), Some("P2"));
        assert_eq!(incident.service.label(), Some("My Mail Service"));
        assert_eq!(
            incident.resolution().map(|t| t.to_rfc3339()),
            Some("2015-10-06T21:38:23+00:00".into())
        );
        assert_eq!(incident.first_acknowledgement(), None);
    }

    #[test]
    fn open_incidents_have_no_resolution_and_may_list_acknowledgements() {
        let text = r#"{"id":"P1","created_at":"2026-01-01T10:00:00+01:00","status":"acknowledged",
            "service":{"id":"PS","type":"service_reference"},"priority":null,"urgency":"low",
            "acknowledgements":[{"at":"2026-01-01T09:20:00Z","acknowledger":{"id":"PU","type":"user_reference"}},
                                {"at":"2026-01-01T09:05:00Z","acknowledger":{"id":"PV","type":"user_reference"}}],
            "resolved_at":null}"#;
        let incident: Incident = serde_json::from_str(text).unwrap();
        assert_eq!(
            incident.created_at.to_rfc3339(),
            "2026-01-01T09:00:00+00:00"
        );
        assert_eq!(incident.resolution(), None);
        assert_eq!(incident.priority_name(), None);
        assert_eq!(
            incident.first_acknowledgement().map(|t| t.to_rfc3339()),
            Some("2026-01-01T09:05:00+00:00".into())
        );
    }
}
