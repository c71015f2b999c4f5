//! Issues: incidents (labelled `incident` and their severity, the body naming the cause),
//! ordinary issues, and postmortem PRs closed unmerged, numbered after the truth's PRs in
//! creation order (issues and PRs share one number sequence).

use serde_json::{Value, json};

use crate::GenerateError;
use crate::calendar::{DAY, HOUR, PERIOD_END, months};
use crate::commits::{Developer, team_developers};
use crate::delivery::{Cause, Incident};
use crate::org::Org;
use crate::writers::github::objects::{self, IssueParts, PullParts, hash};
use crate::writers::github::pulls::{branch_commit_objects, branch_commits, opened, pr_as_issue};
use crate::writers::github::repo::{Context, Listed, Out};
use crate::writers::github::webhooks::{Deliveries, issue_payload, pull_request_payload};

/// The body of an incident issue: `Key: value` lines, then the cause when the truth links one.
///
/// ```text
/// Service: billing
/// Severity: SEV2
/// Incident: INC-12
///
/// Caused by deployment 4711
/// ```
/// The cause line is `Caused by deployment <id>` (the id of the deployment, deploy workflow run
/// or release that records it on GitHub) or `Caused by commit <40-hex sha>`; an issue without
/// such a line links no deployment.
pub fn incident_body(service: &str, incident: &Incident, caused_by_sha: Option<&str>) -> String {
    let mut body = format!(
        "Service: {service}\nSeverity: {}\nIncident: INC-{}\n",
        incident.severity, incident.id
    );
    match (incident.cause, caused_by_sha) {
        (Cause::Deployment(id), _) => body.push_str(&format!("\nCaused by deployment {id}\n")),
        (Cause::Sha(_), Some(sha)) => body.push_str(&format!("\nCaused by commit {sha}\n")),
        _ => {}
    }
    body
}

/// An issue or PR numbered after the ground truth's PRs.
enum Extra<'a> {
    Incident(&'a Incident, &'a str),
    Ordinary {
        service: usize,
        created_at: i64,
        closed_at: Option<i64>,
        kind: usize,
    },
    Postmortem(&'a Incident, &'a str, i64, i64),
}

impl Extra<'_> {
    fn created_at(&self) -> i64 {
        match self {
            Extra::Incident(i, _) => i.started_at,
            Extra::Ordinary { created_at, .. } => *created_at,
            Extra::Postmortem(_, _, at, _) => *at,
        }
    }
}

const ORDINARY: [(&str, &str); 4] = [
    ("Flaky integration test in {}", "bug"),
    ("Document the {} runbook", "documentation"),
    ("Upgrade {} dependencies", "enhancement"),
    ("Slow report query in {}", "bug"),
];

/// Incidents, ordinary issues and postmortem PRs, numbered from `last_number + 1`.
pub(super) fn extras(
    ctx: &Context<'_>,
    out: &mut Out<'_>,
    last_number: u64,
    pulls: &mut Vec<Listed>,
    issues: &mut Vec<Listed>,
) -> Result<(), GenerateError> {
    let Context {
        org,
        history,
        full_name,
        repo_id,
        ..
    } = *ctx;
    let changes = &history.changes;
    let Out {
        files,
        hooks,
        summary,
    } = out;
    let services: Vec<usize> = org.repos[history.repo].services.clone();
    let mut extras: Vec<Extra<'_>> = Vec::new();
    for service in &history.services {
        let name = org.services[service.service].name.as_str();
        for incident in &service.incidents {
            extras.push(Extra::Incident(incident, name));
            if let Some(resolved) = incident.resolved_at
                && incident.id % 3 == 0
                && resolved + 3 * DAY < PERIOD_END
            {
                let opened = resolved + DAY;
                extras.push(Extra::Postmortem(incident, name, opened, opened + 2 * DAY));
            }
        }
    }
    for month in months() {
        let h = hash(&[full_name.as_bytes(), &month.first_day.to_le_bytes()]);
        let created_at =
            (month.first_day + (h % 20) as i64) * DAY + 9 * HOUR + (h >> 20) as i64 % (8 * HOUR);
        let closed_at = created_at + DAY + (h >> 40) as i64 % (9 * DAY);
        let service = services[(h >> 8) as usize % services.len()];
        extras.push(Extra::Ordinary {
            service,
            created_at,
            closed_at: (closed_at < PERIOD_END).then_some(closed_at),
            kind: (h >> 12) as usize % ORDINARY.len(),
        });
    }
    extras.sort_by_key(|e| e.created_at());
    for (k, extra) in extras.iter().enumerate() {
        let number = last_number + 1 + k as u64;
        match *extra {
            Extra::Incident(incident, service) => {
                let on_call = on_call(org, incident);
                let sha = match incident.cause {
                    Cause::Sha(c) => Some(changes[c].sha.as_str()),
                    _ => None,
                };
                let body = incident_body(service, incident, sha);
                let labels = vec!["incident".to_string(), incident.severity.to_string()];
                let issue = objects::issue(IssueParts {
                    full_name,
                    repo_id,
                    number,
                    title: &incident.title,
                    body: &body,
                    author: &on_call,
                    labels: &labels,
                    created_at: incident.started_at,
                    closed_at: incident.resolved_at,
                    pull_request: None,
                });
                push_issue_hooks(hooks, &issue, incident.started_at, incident.resolved_at);
                summary.incident_issues += 1;
                summary.incidents_naming_a_deployment +=
                    u64::from(matches!(incident.cause, Cause::Deployment(_)));
                summary.incidents_naming_a_commit += u64::from(sha.is_some());
                issues.push((incident.started_at, number, issue));
            }
            Extra::Ordinary {
                service,
                created_at,
                closed_at,
                kind,
            } => {
                let (template, label) = ORDINARY[kind];
                let title = template.replace("{}", &org.services[service].name);
                let team = team_developers(org.services[service].team);
                let author = &team[(number as usize) % team.len()];
                let labels = vec![label.to_string()];
                let issue = objects::issue(IssueParts {
                    full_name,
                    repo_id,
                    number,
                    title: &title,
                    body: "Seen on main; not urgent.",
                    author,
                    labels: &labels,
                    created_at,
                    closed_at,
                    pull_request: None,
                });
                push_issue_hooks(hooks, &issue, created_at, closed_at);
                summary.other_issues += 1;
                issues.push((created_at, number, issue));
            }
            Extra::Postmortem(incident, service, opened_at, closed_at) => {
                let author = on_call(org, incident);
                let title = format!("Postmortem for INC-{}: {}", incident.id, incident.title);
                let body = format!(
                    "Service: {service}\nIncident: INC-{}\n\nThe write-up, for review.",
                    incident.id
                );
                let labels = vec!["incident".to_string(), "documentation".to_string()];
                let branch_name = format!("docs/postmortem-inc-{}", incident.id);
                let branch = branch_commits(full_name, number, opened_at - HOUR, opened_at);
                let head_sha = branch.last().map_or("", |(s, _)| s.as_str()).to_string();
                let base_sha = ctx.tip_at(opened_at);
                let pull = objects::pull(PullParts {
                    full_name,
                    repo_id,
                    number,
                    title: &title,
                    body: &body,
                    author: &author,
                    labels: &labels,
                    created_at: opened_at,
                    closed_at,
                    merge_commit_sha: None,
                    head: (&branch_name, &head_sha),
                    base_sha,
                    commits: branch.len(),
                    changed_files: 1,
                });
                files.json(
                    &format!("pulls/{number}/commits.json"),
                    &branch_commit_objects(full_name, &branch, base_sha, &author, &title),
                )?;
                files.json(
                    &format!("pulls/{number}/reviews.json"),
                    &Value::Array(Vec::new()),
                )?;
                hooks.push(
                    opened_at,
                    "pull_request",
                    pull_request_payload("opened", &opened(&pull, opened_at)),
                );
                hooks.push(
                    closed_at,
                    "pull_request",
                    pull_request_payload("closed", &pull),
                );
                issues.push((
                    opened_at,
                    number,
                    pr_as_issue(
                        full_name, repo_id, &pull, &author, &labels, opened_at, closed_at, None,
                    ),
                ));
                pulls.push((opened_at, number, pull));
                summary.pulls_unmerged += 1;
            }
        }
    }
    Ok(())
}

/// Who opened an incident's issue: a developer of its service's team, by incident number.
fn on_call(org: &Org, incident: &Incident) -> Developer {
    let team = team_developers(org.services[incident.service].team);
    team[incident.id as usize % team.len()].clone()
}

/// `issues` deliveries: `opened`, and `closed` once closed.
fn push_issue_hooks(
    hooks: &mut Deliveries,
    issue: &Value,
    created_at: i64,
    closed_at: Option<i64>,
) {
    let mut open = issue.clone();
    open["state"] = json!("open");
    open["closed_at"] = Value::Null;
    open["state_reason"] = Value::Null;
    open["updated_at"] = open["created_at"].clone();
    hooks.push(created_at, "issues", issue_payload("opened", &open));
    if let Some(at) = closed_at {
        hooks.push(at, "issues", issue_payload("closed", issue));
    }
}
