//! GitHub objects → canonical rows: one mapping for the API ingest and the webhook (one code
//! path, two transports).
//!
//! Keys: `github:{owner/name}:deployment:{id}` (deployments API), `…:run:{id}` (a deploy
//! workflow's run), `…:release:{id}` (a release), `…:issue:{number}` (an incident issue),
//! `…:revert:{number}` (a merged revert PR, when revert PRs count as failures).

use chrono::DateTime;

use super::api;
use crate::events::rows::{DeploymentRow, IncidentRow, Status};

/// The source name in `source` and `ingest_state`.
pub const SOURCE: &str = "github";

/// Microseconds since the epoch of an ISO 8601 time.
pub fn micros(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// `github:{repo}:{kind}:{id}`.
pub fn key(repo: &str, kind: &str, id: impl std::fmt::Display) -> String {
    format!("{SOURCE}:{repo}:{kind}:{id}")
}

/// What a deployment's statuses (any order) say: `None` while it is still running.
///
/// Successful when any status is `success` (a later `inactive` does not undo it; DESIGN §4),
/// finished at the first `success`; else failed at the first `failure` or `error`; else
/// cancelled when it went `inactive`; else not finished.
pub(crate) fn deployment_outcome(statuses: &[api::DeploymentStatus]) -> Option<(Status, i64)> {
    let first = |states: &[&str]| {
        statuses
            .iter()
            .filter(|s| states.contains(&s.state.as_str()))
            .filter_map(|s| micros(&s.created_at))
            .min()
    };
    if let Some(at) = first(&["success"]) {
        return Some((Status::Success, at));
    }
    if let Some(at) = first(&["failure", "error"]) {
        return Some((Status::Failure, at));
    }
    first(&["inactive"]).map(|at| (Status::Cancelled, at))
}

/// The service a deployment names (`payload.service`), else `default`.
pub fn payload_service(deployment: &api::Deployment, default: Option<&str>) -> Option<String> {
    deployment
        .payload
        .get("service")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .or(default)
        .map(str::to_owned)
}

/// A deployments-API deployment with its outcome; its changes are added by the caller.
pub(crate) fn deployment_row(
    repo: &str,
    deployment: &api::Deployment,
    outcome: (Status, i64),
    statuses: &[api::DeploymentStatus],
    default_service: Option<&str>,
) -> DeploymentRow {
    let rollback = deployment
        .payload
        .get("rollback")
        .and_then(|r| r.as_bool())
        .unwrap_or(false);
    let url = statuses
        .iter()
        .find_map(|s| s.log_url.clone().or_else(|| s.target_url.clone()))
        .filter(|u| !u.is_empty())
        .or_else(|| deployment.url.clone());
    DeploymentRow {
        deployment_id: key(repo, "deployment", deployment.id),
        source: SOURCE.to_owned(),
        service: payload_service(deployment, default_service),
        repo: Some(repo.to_owned()),
        environment: deployment
            .environment
            .clone()
            .unwrap_or_else(|| "production".into()),
        git_ref: deployment.git_ref.clone(),
        commit_sha: Some(deployment.sha.clone()),
        started_at: micros(&deployment.created_at),
        finished_at: Some(outcome.1),
        status: outcome.0,
        is_rollback: rollback,
        url,
        commits_listed: false,
        deployment_group: None,
        shipped: Vec::new(),
    }
}

/// A completed run of a deploy workflow: `None` while running, or for a conclusion that is no
/// deployment (`skipped`, `neutral`, `action_required`, `stale`).
pub(crate) fn run_row(
    repo: &str,
    run: &api::WorkflowRun,
    environment: &str,
    service: Option<&str>,
) -> Option<DeploymentRow> {
    if run.status.as_deref() != Some("completed") {
        return None;
    }
    let status = match run.conclusion.as_deref()? {
        "success" => Status::Success,
        "failure" | "timed_out" | "startup_failure" => Status::Failure,
        "cancelled" => Status::Cancelled,
        _ => return None,
    };
    Some(DeploymentRow {
        deployment_id: key(repo, "run", run.id),
        source: SOURCE.to_owned(),
        service: service.map(str::to_owned),
        repo: Some(repo.to_owned()),
        environment: environment.to_owned(),
        git_ref: run.head_branch.clone(),
        commit_sha: Some(run.head_sha.clone()),
        started_at: run
            .run_started_at
            .as_deref()
            .and_then(micros)
            .or_else(|| micros(&run.created_at)),
        finished_at: run.updated_at.as_deref().and_then(micros),
        status,
        is_rollback: false,
        url: run.html_url.clone(),
        commits_listed: false,
        deployment_group: None,
        shipped: Vec::new(),
    })
}

/// A published release of `sha`: a successful deployment from creation to publication.
pub(crate) fn release_row(
    repo: &str,
    release: &api::Release,
    sha: &str,
    environment: &str,
    service: Option<&str>,
) -> Option<DeploymentRow> {
    if release.draft {
        return None;
    }
    let published = release.published_at.as_deref().and_then(micros)?;
    Some(DeploymentRow {
        deployment_id: key(repo, "release", release.id),
        source: SOURCE.to_owned(),
        service: service.map(str::to_owned),
        repo: Some(repo.to_owned()),
        environment: environment.to_owned(),
        git_ref: Some(release.tag_name.clone()),
        commit_sha: Some(sha.to_owned()),
        started_at: micros(&release.created_at).map(|c| c.min(published)),
        finished_at: Some(published),
        status: Status::Success,
        is_rollback: false,
        url: release.html_url.clone(),
        commits_listed: false,
        deployment_group: None,
        shipped: Vec::new(),
    })
}

/// The value of a `Name: value` line of an issue body (case-insensitive name).
fn body_field<'b>(body: &'b str, name: &str) -> Option<&'b str> {
    body.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim())
            .filter(|v| !v.is_empty())
    })
}

/// What an incident issue's body says caused it (docs: "GitHub incidents"): a line
/// `Caused by deployment <id>` (the id GitHub gives the deployment, deploy run or release) or
/// `Caused by commit <sha>`.
pub fn issue_cause(body: &str) -> (Option<String>, Option<String>) {
    for line in body.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        if lower.len() >= 4 && lower[0] == "caused" && lower[1] == "by" {
            let value = words[3].trim_matches(|c: char| !c.is_ascii_alphanumeric());
            match lower[2].as_str() {
                "deployment" if value.chars().all(|c| c.is_ascii_digit()) => {
                    return (Some(value.to_owned()), None);
                }
                "commit" | "sha"
                    if value.len() >= 7 && value.chars().all(|c| c.is_ascii_hexdigit()) =>
                {
                    return (None, Some(value.to_lowercase()));
                }
                _ => {}
            }
        }
    }
    (None, None)
}

/// An issue as an incident, when it carries one of `labels` and is not a pull request.
/// `deployment_kind` names how the repo records deployments (`deployment`, `run`, `release`), so
/// a `Caused by deployment <id>` line becomes that deployment's key.
pub(crate) fn incident_row(
    repo: &str,
    issue: &api::Issue,
    labels: &[String],
    deployment_kind: &str,
    default_service: Option<&str>,
) -> Option<IncidentRow> {
    if issue.pull_request.is_some() {
        return None;
    }
    let has = |l: &str| labels.iter().any(|want| want.eq_ignore_ascii_case(l));
    if !issue.labels.iter().any(|l| has(&l.name)) {
        return None;
    }
    let body = issue.body.as_deref().unwrap_or_default();
    let severity = issue
        .labels
        .iter()
        .map(|l| l.name.as_str())
        .find(|l| {
            let lower = l.to_lowercase();
            (lower.starts_with("sev") || lower.starts_with('p'))
                && lower
                    .trim_start_matches("sev")
                    .trim_start_matches('p')
                    .chars()
                    .all(|c| c.is_ascii_digit())
                && lower.len() > 1
        })
        .map(str::to_uppercase)
        .or_else(|| body_field(body, "severity").map(str::to_owned));
    let (deployment, sha) = issue_cause(body);
    Some(IncidentRow {
        incident_id: key(repo, "issue", issue.number),
        source: SOURCE.to_owned(),
        service: body_field(body, "service")
            .map(str::to_owned)
            .or_else(|| default_service.map(str::to_owned)),
        title: issue.title.clone(),
        severity,
        started_at: micros(&issue.created_at)?,
        resolved_at: if issue.state.as_deref() == Some("closed") {
            issue.closed_at.as_deref().and_then(micros)
        } else {
            None
        },
        caused_by_deployment_id: deployment.map(|id| key(repo, deployment_kind, id)),
        caused_by_sha: sha,
        url: issue.html_url.clone(),
    })
}

/// Whether a merged PR reverts another: a `Revert "…"` title or a `revert-N-…` head branch.
pub fn is_revert(pr: &api::PullRequest) -> bool {
    pr.title
        .as_deref()
        .is_some_and(|t| t.starts_with("Revert \""))
        || pr
            .head
            .git_ref
            .as_deref()
            .is_some_and(|b| b.starts_with("revert-"))
}

/// The PR number a `revert-N-…` branch names.
pub fn reverted_number(pr: &api::PullRequest) -> Option<u64> {
    let rest = pr.head.git_ref.as_deref()?.strip_prefix("revert-")?;
    rest.split('-').next()?.parse().ok()
}

/// The commit a revert's body names (`This reverts commit <sha>.`, git's own message).
pub fn reverted_sha(pr: &api::PullRequest) -> Option<String> {
    let body = pr.body.as_deref()?;
    let at = body.find("reverts commit ")? + "reverts commit ".len();
    let sha: String = body[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (sha.len() >= 7).then(|| sha.to_lowercase())
}

/// Incident references in a PR's title and body: `INC-<n>` keys, and `#<n>` where `n` is one of
/// the repo's incident issues.
pub fn incident_refs(
    pr: &api::PullRequest,
    incident_issues: &std::collections::HashSet<u64>,
) -> Vec<String> {
    let text = format!(
        "{} {}",
        pr.title.as_deref().unwrap_or_default(),
        pr.body.as_deref().unwrap_or_default()
    );
    let mut refs = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '#')) {
        if let Some(n) = word
            .strip_prefix("INC-")
            .or_else(|| word.strip_prefix("inc-"))
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
        {
            refs.push(format!("INC-{n}"));
        } else if let Some(n) = word.strip_prefix('#')
            && let Ok(n) = n.parse::<u64>()
            && incident_issues.contains(&n)
        {
            refs.push(format!("#{n}"));
        }
    }
    refs.sort();
    refs.dedup();
    refs
}
