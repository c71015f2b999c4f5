//! The organisation's PagerDuty account, as PagerDuty's REST API v2 answers for it: every incident
//! of the ground truth as a PagerDuty incident, plus pages that are not incidents of ours.
//!
//! Shapes follow PagerDuty's own OpenAPI description (github.com/PagerDuty/api-schema,
//! `reference/REST/openapiv3.json`): `pagerduty/services.json` is a `GET /services` answer,
//! `pagerduty/incidents.json` a `GET /incidents` answer holding every incident (`Incident`
//! schema; `more: false`), `pagerduty/log_entries.json` a `GET /log_entries` answer with each
//! incident's `trigger_log_entry`, `acknowledge_log_entry` and `resolve_log_entry`. A server
//! standing in for PagerDuty filters and pages them.
//!
//! - One PagerDuty service per service of ours, named after it, and a "Corporate IT" service of
//!   no service of ours.
//! - Each incident of ours: `created_at` = its start, urgency `high` for SEV1/SEV2 and `low` for
//!   SEV3, priority `P1`..`P3` from the SEV, `resolved_at` its resolution, and an acknowledgement
//!   between start and resolution (open incidents: acknowledged or still triggered).
//! - Noise: "Disk usage above 80% on …"-like pages on our services' PagerDuty services, low
//!   urgency and no priority (the `priorities` filter leaves them out), and Corporate IT pages
//!   (skipped as unmapped).
//!
//! Everything beyond the ground truth (ids, acknowledgement times, noise) is picked by a hash of
//! what it belongs to, never drawn from the generator's random streams, so every other file and
//! count stays as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::GenerateError;
use crate::calendar::{DAY, MINUTE, PERIOD_END, PERIOD_START, format_timestamp, months};
use crate::delivery::{Incident, RepoHistory};
use crate::org::Org;
use crate::writers::OutFile;

/// The API every `self` link names.
const API: &str = "https://api.pagerduty.com";
/// The account's web app.
const WEB: &str = "https://acme.pagerduty.com";
/// 36^6: PagerDuty-like ids are `P` and six base-36 characters.
const ID_SPACE: u64 = 2_176_782_336;
/// Noise pages are numbered from here (incidents of ours by their `INC-n` number, below it).
const NOISE_BASE: u64 = 1_000_000_000;
/// The Corporate IT service's number (ours are numbered by their index).
const CORPORATE_IT: u64 = 999_999;

/// What the PagerDuty files hold, for `truth.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerDutyTruth {
    /// PagerDuty services (ours and Corporate IT).
    pub services: u64,
    /// Incidents of ours (each one of the ground truth).
    pub incidents: u64,
    /// Of which acknowledged.
    pub acknowledged: u64,
    /// Of which still open.
    pub open: u64,
    /// Low-urgency pages without priority on our services' PagerDuty services.
    pub noise: u64,
    /// Pages of Corporate IT, a PagerDuty service of no service of ours.
    pub unmapped: u64,
    /// Log entries.
    pub log_entries: u64,
}

/// A bijection of `n` (below 36^6) onto a `P` + 6 character id: multiplying by a number prime to
/// 36 permutes the residues, so distinct numbers get distinct ids.
fn pd_id(n: u64, salt: u64) -> String {
    let mut v = (n % ID_SPACE * 1_000_003 + salt) % ID_SPACE;
    let mut chars = [b'0'; 6];
    for c in chars.iter_mut().rev() {
        let d = (v % 36) as u8;
        *c = if d < 10 { b'0' + d } else { b'A' + d - 10 };
        v /= 36;
    }
    format!("P{}", String::from_utf8_lossy(&chars))
}

/// The PagerDuty id of our service number `index`.
pub fn service_id(index: usize) -> String {
    pd_id(index as u64, 77_777)
}

/// The PagerDuty id of our incident `INC-<number>`.
pub fn incident_id(number: u64) -> String {
    pd_id(number, 1_234_567)
}

/// A hash of `parts` (SplitMix64 over each), for everything the ground truth does not say.
fn hash(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for &p in parts {
        h = h.wrapping_add(p).wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h = z ^ (z >> 31);
    }
    h
}

/// When our incident was first acknowledged (seconds): between its start and its resolution (2%
/// to 40% of the way), or for an open incident 1 to 30 minutes after it started, or never (about
/// half the open ones are still triggered).
pub fn acknowledged_at(incident: &Incident) -> Option<i64> {
    let h = hash(&[1, incident.id]);
    match incident.resolved_at {
        Some(resolved) => {
            let span = (resolved - incident.started_at).max(0);
            let fraction = 0.02 + 0.38 * ((h % 10_000) as f64 / 10_000.0);
            Some(incident.started_at + ((span as f64 * fraction) as i64).clamp(span.min(1), span))
        }
        None => h
            .is_multiple_of(2)
            .then(|| incident.started_at + MINUTE + (h >> 8) as i64 % (29 * MINUTE)),
    }
}

/// One page of the account, ours or not.
#[derive(Debug, Clone)]
struct Page {
    /// The number its id comes from.
    number: u64,
    service: usize,
    title: String,
    urgency: &'static str,
    priority: Option<&'static str>,
    created: i64,
    acknowledged: Option<i64>,
    resolved: Option<i64>,
    team: usize,
}

/// Collects the account while the organisation is generated, then writes it.
pub struct PagerDutyAccount {
    pages: Vec<Page>,
    /// Our services, then Corporate IT: (id, name, team).
    services: Vec<(String, String, usize)>,
}

impl PagerDutyAccount {
    /// The account of `org`: its services, and the noise pages.
    pub fn new(org: &Org) -> PagerDutyAccount {
        let mut services: Vec<(String, String, usize)> = org
            .services
            .iter()
            .map(|s| (service_id(s.index), s.name.clone(), s.team))
            .collect();
        services.push((pd_id(CORPORATE_IT, 77_777), "Corporate IT".into(), 0));
        let mut account = PagerDutyAccount {
            pages: Vec::new(),
            services,
        };
        account.noise(org);
        account
    }

    /// Records one repo's incidents (each ground-truth incident once).
    pub fn record_repo(&mut self, org: &Org, history: &RepoHistory) {
        for service in &history.services {
            for incident in &service.incidents {
                let (urgency, priority) = match incident.severity {
                    "SEV1" => ("high", "P1"),
                    "SEV2" => ("high", "P2"),
                    _ => ("low", "P3"),
                };
                self.pages.push(Page {
                    number: incident.id,
                    service: incident.service,
                    title: incident.title.clone(),
                    urgency,
                    priority: Some(priority),
                    created: incident.started_at,
                    acknowledged: acknowledged_at(incident),
                    resolved: incident.resolved_at,
                    team: org.services[incident.service].team,
                });
            }
        }
    }

    /// Pages that are not incidents: 0–2 a month on each service's PagerDuty service (low
    /// urgency, no priority, resolved by PagerDuty after 5–90 minutes; those of the period's last
    /// two days still open), and one a month on Corporate IT (high, P3, acknowledged).
    fn noise(&mut self, org: &Org) {
        const WHAT: [&str; 4] = [
            "Disk usage above 80% on {}-db-{}",
            "High CPU on {}-worker-{}",
            "Certificate for {}.acme.example expires in 14 days ({})",
            "5xx rate above 1% on the {} canary {}",
        ];
        let mut k = 0;
        for (m, month) in months().iter().enumerate() {
            let start = month.first_day * DAY;
            let days = month.next_first_day - month.first_day;
            for service in &org.services {
                let h = hash(&[2, service.index as u64, m as u64]);
                for j in 0..(h % 3) {
                    let hj = hash(&[3, service.index as u64, m as u64, j]);
                    let created = start + (hj % (days as u64 * DAY as u64)) as i64;
                    let resolved = created + 5 * MINUTE + (hj >> 20) as i64 % (85 * MINUTE);
                    let template = WHAT[(hj >> 40) as usize % WHAT.len()];
                    self.pages.push(Page {
                        number: NOISE_BASE + k,
                        service: service.index,
                        title: template.replacen("{}", &service.name, 1).replacen(
                            "{}",
                            &((hj >> 50) % 4 + 1).to_string(),
                            1,
                        ),
                        urgency: "low",
                        priority: None,
                        created,
                        acknowledged: None,
                        resolved: (created < PERIOD_END - 2 * DAY).then_some(resolved),
                        team: service.team,
                    });
                    k += 1;
                }
            }
            let h = hash(&[4, m as u64]);
            let created = start + (h % (days as u64 * DAY as u64)) as i64;
            self.pages.push(Page {
                number: NOISE_BASE + k,
                service: org.services.len(),
                title: format!("VPN gateway unreachable in office {}", h % 7 + 1),
                urgency: "high",
                priority: Some("P3"),
                created,
                acknowledged: Some(created + 3 * MINUTE),
                resolved: Some(created + 20 * MINUTE + (h >> 20) as i64 % (220 * MINUTE)),
                team: 0,
            });
            k += 1;
        }
    }

    /// Writes `pagerduty/{services,incidents,log_entries}.json` under `out`; the files and what
    /// they hold.
    pub fn finish(
        mut self,
        org: &Org,
        out: &Path,
    ) -> Result<(Vec<PathBuf>, PagerDutyTruth), GenerateError> {
        let dir = out.join("pagerduty");
        let mut truth = PagerDutyTruth {
            services: self.services.len() as u64,
            ..PagerDutyTruth::default()
        };
        // PagerDuty numbers incidents in the order they were created.
        self.pages.sort_by_key(|p| (p.created, p.number));
        let mut files = Vec::new();

        let mut services = ListFile::create(&dir.join("services.json"), "services")?;
        for (index, (id, name, team)) in self.services.iter().enumerate() {
            services.push(&service_json(id, name, &team_name(org, *team), index))?;
        }
        files.push(services.finish()?);

        let mut incidents = ListFile::create(&dir.join("incidents.json"), "incidents")?;
        let mut log: Vec<(i64, u64, u8)> = Vec::new();
        for (n, page) in self.pages.iter().enumerate() {
            let ours = page.number < NOISE_BASE;
            if ours {
                truth.incidents += 1;
                truth.acknowledged += u64::from(page.acknowledged.is_some());
                truth.open += u64::from(page.resolved.is_none());
            } else if page.service == org.services.len() {
                truth.unmapped += 1;
            } else {
                truth.noise += 1;
            }
            incidents.push(&self.incident_json(org, page, n as u64 + 1))?;
            log.push((page.created, n as u64, 0));
            if let Some(at) = page.acknowledged {
                log.push((at, n as u64, 1));
            }
            if let Some(at) = page.resolved {
                log.push((at, n as u64, 2));
            }
        }
        files.push(incidents.finish()?);

        log.sort();
        truth.log_entries = log.len() as u64;
        let mut entries = ListFile::create(&dir.join("log_entries.json"), "log_entries")?;
        for (at, n, kind) in log {
            let page = &self.pages[n as usize];
            entries.push(&self.log_entry_json(org, page, n + 1, kind, at))?;
        }
        files.push(entries.finish()?);
        Ok((files, truth))
    }

    fn service_ref(&self, service: usize) -> Value {
        let (id, name, _) = &self.services[service];
        json!({
            "id": id, "type": "service_reference", "summary": name,
            "self": format!("{API}/services/{id}"), "html_url": format!("{WEB}/service-directory/{id}"),
        })
    }

    fn incident_json(&self, org: &Org, page: &Page, number: u64) -> Value {
        let id = pd_id(page.number, 1_234_567);
        let status = match (page.resolved, page.acknowledged) {
            (Some(_), _) => "resolved",
            (None, Some(_)) => "acknowledged",
            (None, None) => "triggered",
        };
        let changed = page.resolved.or(page.acknowledged).unwrap_or(page.created);
        let user = user_ref(org, page.team);
        // Acknowledgements and assignments are listed only while the incident is open
        // ("This list will be empty if the Incident.status is resolved").
        let acknowledgements: Vec<Value> = match (status, page.acknowledged) {
            ("acknowledged", Some(at)) => {
                vec![json!({ "at": format_timestamp(at), "acknowledger": user })]
            }
            _ => Vec::new(),
        };
        let assignments: Vec<Value> = if status == "resolved" {
            Vec::new()
        } else {
            vec![json!({ "at": format_timestamp(page.created), "assignee": user })]
        };
        let team = team_ref(org, page.team);
        json!({
            "id": id, "type": "incident",
            "summary": format!("[#{number}] {}", page.title),
            "self": format!("{API}/incidents/{id}"), "html_url": format!("{WEB}/incidents/{id}"),
            "incident_number": number, "title": page.title,
            "created_at": format_timestamp(page.created), "updated_at": format_timestamp(changed),
            "status": status, "incident_key": format!("{:016x}", hash(&[5, page.number])),
            "service": self.service_ref(page.service),
            "assignments": assignments, "assigned_via": "escalation_policy",
            "last_status_change_at": format_timestamp(changed),
            "resolved_at": page.resolved.map(format_timestamp),
            "first_trigger_log_entry": {
                "id": log_id(number, 0), "type": "trigger_log_entry_reference",
                "self": format!("{API}/log_entries/{}?incident_id={id}", log_id(number, 0)),
                "html_url": format!("{WEB}/incidents/{id}/log_entries/{}", log_id(number, 0)),
            },
            "alert_counts": { "all": 1, "triggered": u8::from(status != "resolved"), "resolved": u8::from(status == "resolved") },
            "is_mergeable": true,
            "incident_type": { "name": "incident_default" },
            "escalation_policy": escalation_policy_ref(org, page.team),
            "teams": [team],
            "pending_actions": [],
            "acknowledgements": acknowledgements,
            "urgency": page.urgency,
            "priority": page.priority.map(priority_ref),
            "resolve_reason": null,
        })
    }

    fn log_entry_json(&self, org: &Org, page: &Page, number: u64, kind: u8, at: i64) -> Value {
        let id = pd_id(page.number, 1_234_567);
        let entry = log_id(number, kind);
        let service = self.service_ref(page.service);
        let (kind, summary, agent, channel) = match kind {
            0 => (
                "trigger_log_entry",
                "Triggered through the API".to_owned(),
                service.clone(),
                json!({ "type": "api" }),
            ),
            1 => (
                "acknowledge_log_entry",
                format!("Acknowledged by {}", team_name(org, page.team)),
                user_ref(org, page.team),
                json!({ "type": "web_ui" }),
            ),
            _ if page.number >= NOISE_BASE && page.priority.is_none() => (
                "resolve_log_entry",
                "Resolved through the API".to_owned(),
                service.clone(),
                json!({ "type": "api" }),
            ),
            _ => (
                "resolve_log_entry",
                format!("Resolved by {}", team_name(org, page.team)),
                user_ref(org, page.team),
                json!({ "type": "web_ui" }),
            ),
        };
        json!({
            "id": entry, "type": kind, "summary": summary,
            "self": format!("{API}/log_entries/{entry}?incident_id={id}"),
            "html_url": format!("{WEB}/incidents/{id}/log_entries/{entry}"),
            "created_at": format_timestamp(at),
            "agent": agent, "channel": channel, "service": service,
            "incident": {
                "id": id, "type": "incident_reference", "summary": format!("[#{number}] {}", page.title),
                "self": format!("{API}/incidents/{id}"), "html_url": format!("{WEB}/incidents/{id}"),
            },
            "teams": [team_ref(org, page.team)],
            "contexts": [],
            "event_details": { "description": page.title },
        })
    }
}

/// A log entry id: `Q` and 13 base-36 characters of (incident number, kind).
fn log_id(number: u64, kind: u8) -> String {
    let mut v = number * 4 + u64::from(kind);
    let mut chars = [b'0'; 13];
    for c in chars.iter_mut().rev() {
        let d = (v % 36) as u8;
        *c = if d < 10 { b'0' + d } else { b'A' + d - 10 };
        v /= 36;
    }
    format!("Q{}", String::from_utf8_lossy(&chars))
}

fn team_name(org: &Org, team: usize) -> String {
    org.teams
        .get(team)
        .map_or_else(|| "it".to_owned(), |t| t.name.clone())
}

fn team_ref(org: &Org, team: usize) -> Value {
    let id = pd_id(team as u64, 55_555);
    json!({ "id": id, "type": "team_reference", "summary": team_name(org, team),
            "self": format!("{API}/teams/{id}"), "html_url": format!("{WEB}/teams/{id}") })
}

fn user_ref(org: &Org, team: usize) -> Value {
    let id = pd_id(team as u64, 66_666);
    json!({ "id": id, "type": "user_reference", "summary": format!("{} on-call", team_name(org, team)),
            "self": format!("{API}/users/{id}"), "html_url": format!("{WEB}/users/{id}") })
}

fn escalation_policy_ref(org: &Org, team: usize) -> Value {
    let id = pd_id(team as u64, 44_444);
    json!({ "id": id, "type": "escalation_policy_reference",
            "summary": format!("{} escalation", team_name(org, team)),
            "self": format!("{API}/escalation_policies/{id}"),
            "html_url": format!("{WEB}/escalation_policies/{id}") })
}

fn priority_ref(name: &str) -> Value {
    let n = name.trim_start_matches('P').parse::<u64>().unwrap_or(0);
    let id = pd_id(n, 33_333);
    json!({ "id": id, "type": "priority_reference", "summary": name,
            "self": format!("{API}/priorities/{id}") })
}

fn service_json(id: &str, name: &str, team: &str, index: usize) -> Value {
    let team_id = pd_id(index as u64, 55_555);
    json!({
        "id": id, "type": "service", "summary": name, "name": name,
        "self": format!("{API}/services/{id}"), "html_url": format!("{WEB}/service-directory/{id}"),
        "description": format!("{name}, on call: {team}"),
        "status": "active", "created_at": format_timestamp(PERIOD_START - 30 * DAY),
        "auto_resolve_timeout": 14_400, "acknowledgement_timeout": 1_800,
        "alert_creation": "create_alerts_and_incidents",
        "incident_urgency_rule": { "type": "constant", "urgency": "high" },
        "teams": [{ "id": team_id, "type": "team_reference", "summary": team }],
    })
}

/// A list answer (`{"<key>": [...], "limit", "offset", "more", "total"}`) written one element a
/// line.
struct ListFile {
    out: OutFile,
    key: &'static str,
    n: u64,
}

impl ListFile {
    fn create(path: &Path, key: &'static str) -> Result<ListFile, GenerateError> {
        let mut out = OutFile::create(path)?;
        out.write(format!("{{\"{key}\": [").as_bytes())?;
        Ok(ListFile { out, key, n: 0 })
    }

    fn push(&mut self, value: &Value) -> Result<(), GenerateError> {
        self.out.write(if self.n == 0 { b"\n" } else { b",\n" })?;
        self.n += 1;
        self.out.write_json(value)
    }

    fn finish(mut self) -> Result<PathBuf, GenerateError> {
        let _ = self.key;
        self.out.write(
            format!(
                "\n], \"limit\": {n}, \"offset\": 0, \"more\": false, \"total\": {n}}}\n",
                n = self.n
            )
            .as_bytes(),
        )?;
        self.out.finish()
    }
}

/// `[sources.pagerduty]` for the sample's `doracost.toml`: every PagerDuty service mapped to its
/// service, and the priority filter that leaves the noise out.
pub fn config_section(org: &Org) -> String {
    let mut out = String::from(
        "\n# The sample's PagerDuty account (pagerduty/*.json, PagerDuty REST API v2 answers). Point\n\
         # api_url at a server answering with them; pages without a priority are not incidents.\n\
         [sources.pagerduty]\ntoken = { env = \"PAGERDUTY_TOKEN\" }\nsince = \"2025-05-01\"\n\
         priorities = [\"P1\", \"P2\", \"P3\"]\n\n[sources.pagerduty.services]\n",
    );
    let mapped: BTreeMap<String, &str> = org
        .services
        .iter()
        .map(|s| (service_id(s.index), s.name.as_str()))
        .collect();
    for (id, name) in mapped {
        let _ = writeln!(out, "{id} = \"{name}\"");
    }
    out
}

/// Writes the PagerDuty files of the organisation of `scale` from `seed` into `out` on their
/// own (the organisation's delivery generated again; nothing else written).
pub fn write_pagerduty(
    scale: crate::Scale,
    seed: u64,
    out: &Path,
) -> Result<(Vec<PathBuf>, PagerDutyTruth), GenerateError> {
    let org = Org::plan(scale);
    let mut account = PagerDutyAccount::new(&org);
    let mut ids = crate::delivery::Ids::default();
    for repo in 0..org.repos.len() {
        let history = crate::delivery::generate_repo(&org, repo, seed, &mut ids);
        account.record_repo(&org, &history);
    }
    account.finish(&org, out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{DEFAULT_SEED, Scale};

    #[test]
    fn ids_look_like_pagerduty_s_and_never_collide() {
        let ids: BTreeSet<String> = (0..200_000).map(incident_id).collect();
        assert_eq!(ids.len(), 200_000);
        let noise: BTreeSet<String> = (0..50_000)
            .map(|k| pd_id(NOISE_BASE + k, 1_234_567))
            .collect();
        assert!(ids.is_disjoint(&noise));
        let id = incident_id(12);
        assert_eq!(id.len(), 7);
        assert!(
            id.starts_with('P')
                && id[1..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert_eq!(log_id(1, 2).len(), 14);
    }

    #[test]
    fn every_incident_of_the_small_sample_is_written_with_its_truth() {
        let dir = tempfile::tempdir().unwrap();
        let (files, truth) = write_pagerduty(Scale::Small, DEFAULT_SEED, dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        let read = |name: &str| -> Value {
            serde_json::from_str(
                &std::fs::read_to_string(dir.path().join("pagerduty").join(name)).unwrap(),
            )
            .unwrap()
        };
        let incidents = read("incidents.json");
        let list = incidents["incidents"].as_array().unwrap();
        // The ground truth of the small sample: 186 incidents, 2 still open (truth.json).
        assert_eq!((truth.incidents, truth.open), (186, 2));
        assert_eq!(
            list.len() as u64,
            truth.incidents + truth.noise + truth.unmapped
        );
        assert_eq!(incidents["total"], json!(list.len()));
        assert_eq!(truth.services, 13);
        assert_eq!(truth.unmapped, 18, "one Corporate IT page a month");
        assert!(truth.noise > 100, "{truth:?}");
        // Incident numbers follow creation; ids are unique.
        let created: Vec<&str> = list
            .iter()
            .map(|i| i["created_at"].as_str().unwrap())
            .collect();
        assert!(created.windows(2).all(|w| w[0] <= w[1]));
        let ids: BTreeSet<&str> = list.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), list.len());
        for incident in list {
            let (created, status) = (
                incident["created_at"].as_str().unwrap(),
                incident["status"].as_str().unwrap(),
            );
            let resolved = incident["resolved_at"].as_str();
            assert_eq!(resolved.is_some(), status == "resolved");
            if let Some(resolved) = resolved {
                assert!(created <= resolved);
                assert_eq!(incident["acknowledgements"], json!([]));
            }
            match incident["priority"]["summary"].as_str() {
                Some("P1" | "P2") => assert_eq!(incident["urgency"], "high"),
                Some("P3") => {}
                None => assert_eq!(incident["urgency"], "low"),
                Some(other) => panic!("{other}"),
            }
        }
        let log = read("log_entries.json");
        let entries = log["log_entries"].as_array().unwrap();
        assert_eq!(entries.len() as u64, truth.log_entries);
        let acks = entries
            .iter()
            .filter(|e| e["type"] == "acknowledge_log_entry")
            .count() as u64;
        assert!(acks >= truth.acknowledged);
        let services = read("services.json");
        assert_eq!(services["services"].as_array().unwrap().len(), 13);
    }

    #[test]
    fn acknowledgements_lie_between_start_and_resolution() {
        let org = Org::plan(Scale::Small);
        let mut ids = crate::delivery::Ids::default();
        let mut open = (0, 0);
        for repo in 0..org.repos.len() {
            let history = crate::delivery::generate_repo(&org, repo, DEFAULT_SEED, &mut ids);
            for incident in history.services.iter().flat_map(|s| &s.incidents) {
                let ack = acknowledged_at(incident);
                match incident.resolved_at {
                    Some(resolved) => {
                        let ack = ack.expect("resolved incidents were acknowledged");
                        assert!(
                            incident.started_at <= ack && ack <= resolved,
                            "{incident:?}"
                        );
                    }
                    None => {
                        open.0 += 1;
                        open.1 += usize::from(ack.is_some());
                    }
                }
            }
        }
        assert_eq!(open.0, 2);
    }

    #[test]
    fn the_config_section_maps_every_service() {
        let org = Org::plan(Scale::Small);
        let text = config_section(&org);
        for service in &org.services {
            assert!(text.contains(&format!(
                "{} = \"{}\"",
                service_id(service.index),
                service.name
            )));
        }
    }
}
