//! The generic events format (docs/events.md): deployments as NDJSON with nested `changes`, and
//! incidents as NDJSON.

use serde::Serialize;

use crate::GenerateError;
use crate::calendar::format_timestamp;
use crate::delivery::{Cause, Change, Deployment, Environment, Incident, RepoHistory, Status};
use crate::org::Org;
use crate::writers::OutFile;

#[derive(Serialize)]
struct DeploymentRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    service: &'a str,
    repo: &'a str,
    environment: &'static str,
    #[serde(rename = "ref")]
    git_ref: &'static str,
    commit_sha: &'a str,
    started_at: String,
    finished_at: String,
    status: &'static str,
    is_rollback: bool,
    changes: Vec<ChangeRecord<'a>>,
}

#[derive(Serialize)]
struct ChangeRecord<'a> {
    repo: &'a str,
    sha: &'a str,
    authored_at: String,
    committed_at: String,
    paths: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_first_commit_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_opened_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_first_review_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_merged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_head_branch: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    labels: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    incident_refs: &'a [String],
}

#[derive(Serialize)]
struct IncidentRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    service: &'a str,
    title: &'a str,
    severity: &'static str,
    started_at: String,
    resolved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caused_by_deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caused_by_sha: Option<&'a str>,
}

fn change_record<'a>(repo: &'a str, change: &'a Change) -> ChangeRecord<'a> {
    let pr = change.pr.as_ref();
    ChangeRecord {
        repo,
        sha: &change.sha,
        authored_at: format_timestamp(change.authored_at),
        committed_at: format_timestamp(change.committed_at),
        paths: &change.paths,
        pr_number: pr.map(|p| p.number),
        pr_first_commit_at: pr.map(|p| format_timestamp(p.first_commit_at)),
        pr_opened_at: pr.map(|p| format_timestamp(p.opened_at)),
        pr_first_review_at: pr.map(|p| format_timestamp(p.first_review_at)),
        pr_merged_at: pr.map(|p| format_timestamp(p.merged_at)),
        pr_head_branch: pr.map(|p| p.head_branch.as_str()),
        labels: &change.labels,
        incident_refs: &change.incident_refs,
    }
}

/// The `status` value of the generic format.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Failure => "failure",
        Status::Cancelled => "cancelled",
    }
}

/// Writes one deployment as an NDJSON line.
pub fn write_deployment(
    out: &mut OutFile,
    org: &Org,
    history: &RepoHistory,
    deployment: &Deployment,
) -> Result<(), GenerateError> {
    let repo = org.repos[history.repo].name.as_str();
    let record = DeploymentRecord {
        kind: "deployment",
        id: deployment.id.to_string(),
        service: &org.services[deployment.service].name,
        repo,
        environment: match deployment.environment {
            Environment::Production => "production",
            Environment::Staging => "staging",
        },
        git_ref: "main",
        commit_sha: &history.changes[deployment.head].sha,
        started_at: format_timestamp(deployment.started_at),
        finished_at: format_timestamp(deployment.finished_at),
        status: status_name(deployment.status),
        is_rollback: deployment.is_rollback,
        changes: deployment
            .changes
            .iter()
            .map(|&c| change_record(repo, &history.changes[c]))
            .collect(),
    };
    out.write_json(&record)?;
    out.write(b"\n")
}

/// Writes one incident as an NDJSON line.
pub fn write_incident(
    out: &mut OutFile,
    org: &Org,
    history: &RepoHistory,
    incident: &Incident,
) -> Result<(), GenerateError> {
    let record = IncidentRecord {
        kind: "incident",
        id: format!("INC-{}", incident.id),
        service: &org.services[incident.service].name,
        title: &incident.title,
        severity: incident.severity,
        started_at: format_timestamp(incident.started_at),
        resolved_at: incident.resolved_at.map(format_timestamp),
        caused_by_deployment_id: match incident.cause {
            Cause::Deployment(id) => Some(id.to_string()),
            _ => None,
        },
        caused_by_sha: match incident.cause {
            Cause::Sha(change) => Some(history.changes[change].sha.as_str()),
            _ => None,
        },
    };
    out.write_json(&record)?;
    out.write(b"\n")
}
