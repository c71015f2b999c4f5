//! GitHub webhook deliveries → the same rows as the API ingest, through the same mapping
//! ([`super::map`]): one code path, two transports.
//!
//! Events read (docs.github.com, "Webhook events and payloads"):
//! - `deployment_status`: the deployment with the status just set. A `success` makes it
//!   successful; `failure`/`error` failed; `inactive` cancelled unless it succeeded before (the
//!   caller keeps a success: [`Mapped::keep_success`]); `queued`/`in_progress` write nothing.
//!   The head commit is its one listed change until `ingest github` or `ingest git` fills the
//!   rest (`commits_listed = false`).
//! - `deployment`: nothing yet (no outcome).
//! - `workflow_run` (completed, of a configured deploy workflow) and `release` (published, in a
//!   repo whose signal is releases): deployments, as in the API ingest.
//! - `pull_request` (closed and merged): the merge commit's PR fields (number, opened, merged,
//!   branch, labels, incident references; the first commit and review need the API).
//! - `push`: each commit's time and the files it added, modified or removed.
//! - `issues`: an incident issue.
//!
//! Anything else is acknowledged and ignored.

use model::config::ServiceConfig;
use model::config::github::{DeploySignal, GithubSource};
use serde::Deserialize;

use super::api;
use super::map;
use crate::events::EventBatches;
use crate::events::rows::{ChangeRow, Collector, change_id};

/// What one delivery maps to.
pub struct Mapped {
    /// Its rows.
    pub batches: EventBatches,
    /// The repository it is about (`owner/name`), when it names one.
    pub repo: Option<String>,
    /// A deployment row that must not turn a past success into anything else: written only if
    /// the lake does not hold it as `success` already.
    pub keep_success: Option<String>,
    /// What was read, for the answer (e.g. `deployment_status success`).
    pub summary: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct DeploymentStatusEvent {
    deployment: api::Deployment,
    deployment_status: api::DeploymentStatus,
}

#[derive(Deserialize)]
struct WorkflowRunEvent {
    workflow_run: api::WorkflowRun,
}

#[derive(Deserialize)]
struct ReleaseEvent {
    release: api::Release,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    pull_request: api::PullRequest,
}

#[derive(Deserialize)]
struct PushCommit {
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

#[derive(Deserialize)]
struct PushEvent {
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    commits: Vec<PushCommit>,
}

#[derive(Deserialize)]
struct IssueEvent {
    issue: api::Issue,
}

fn parse<'a, T: Deserialize<'a>>(event: &str, body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("a `{event}` delivery: {e}"))
}

/// Maps one delivery (`X-GitHub-Event` and body).
pub fn map_delivery(
    event: &str,
    body: &[u8],
    source: &GithubSource,
    services: &[ServiceConfig],
    ingested_at: i64,
) -> Result<Mapped, String> {
    let envelope: Envelope = parse(event, body)?;
    let repo = envelope.repository.map(|r| r.full_name);
    let action = envelope.action.unwrap_or_default();
    let mut collector = Collector::default();
    let mut keep_success = None;
    let mut summary = format!("{event} {action}").trim().to_owned();
    if let Some(repo) = repo.as_deref() {
        let mine: Vec<&ServiceConfig> = services
            .iter()
            .filter(|s| s.repos.iter().any(|r| r == repo))
            .collect();
        let default_service = (mine.len() == 1).then(|| mine[0].name.as_str());
        match event {
            "deployment_status" => {
                let e: DeploymentStatusEvent = parse(event, body)?;
                if let Some(outcome) =
                    map::deployment_outcome(std::slice::from_ref(&e.deployment_status))
                {
                    let mut row = map::deployment_row(
                        repo,
                        &e.deployment,
                        outcome,
                        std::slice::from_ref(&e.deployment_status),
                        default_service,
                    );
                    let head =
                        collector.change(ChangeRow::minimal(map::SOURCE, repo, &e.deployment.sha));
                    row.shipped = vec![head];
                    keep_success = Some(row.deployment_id.clone());
                    summary = format!("deployment_status {}", e.deployment_status.state);
                    collector.deployment(row);
                }
            }
            "workflow_run" => {
                let e: WorkflowRunEvent = parse(event, body)?;
                if let DeploySignal::WorkflowRuns { workflows } = source.signal(repo)
                    && let Some(environment) =
                        e.workflow_run.name.as_ref().and_then(|n| workflows.get(n))
                    && let Some(mut row) =
                        map::run_row(repo, &e.workflow_run, environment, default_service)
                {
                    let head = collector.change(ChangeRow::minimal(
                        map::SOURCE,
                        repo,
                        &e.workflow_run.head_sha,
                    ));
                    row.shipped = vec![head];
                    collector.deployment(row);
                }
            }
            "release" => {
                let e: ReleaseEvent = parse(event, body)?;
                let sha = e
                    .release
                    .target_commitish
                    .clone()
                    .filter(|t| t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()));
                if let (DeploySignal::Releases { environment }, Some(sha)) =
                    (source.signal(repo), sha)
                    && let Some(mut row) =
                        map::release_row(repo, &e.release, &sha, environment, default_service)
                {
                    let head = collector.change(ChangeRow::minimal(map::SOURCE, repo, &sha));
                    row.shipped = vec![head];
                    collector.deployment(row);
                }
            }
            "pull_request" => {
                let e: PullRequestEvent = parse(event, body)?;
                let pr = e.pull_request;
                if action == "closed"
                    && pr.merged_at.is_some()
                    && let Some(sha) = pr.merge_commit_sha.clone()
                {
                    let mut labels: Vec<String> =
                        pr.labels.iter().map(|l| l.name.clone()).collect();
                    labels.sort();
                    collector.change(ChangeRow {
                        pr_number: i64::try_from(pr.number).ok(),
                        pr_opened_at: map::micros(&pr.created_at),
                        pr_merged_at: pr.merged_at.as_deref().and_then(map::micros),
                        pr_head_branch: pr.head.git_ref.clone(),
                        labels: Some(labels),
                        incident_refs: Some(map::incident_refs(&pr, &Default::default())),
                        ..ChangeRow::minimal(map::SOURCE, repo, &sha)
                    });
                }
            }
            "push" => {
                let e: PushEvent = parse(event, body)?;
                // Tags and deleted branches carry no commits of interest.
                if e.git_ref
                    .as_deref()
                    .is_some_and(|r| r.starts_with("refs/heads/"))
                {
                    for commit in e.commits {
                        let mut paths: Vec<String> = commit
                            .added
                            .into_iter()
                            .chain(commit.modified)
                            .chain(commit.removed)
                            .collect();
                        paths.sort();
                        paths.dedup();
                        collector.change(ChangeRow {
                            change_id: change_id(repo, &commit.id),
                            committed_at: commit.timestamp.as_deref().and_then(map::micros),
                            paths: Some(paths),
                            ..ChangeRow::minimal(map::SOURCE, repo, &commit.id)
                        });
                    }
                }
            }
            "issues" => {
                let e: IssueEvent = parse(event, body)?;
                let kind = match source.signal(repo) {
                    DeploySignal::Deployments => "deployment",
                    DeploySignal::WorkflowRuns { .. } => "run",
                    DeploySignal::Releases { .. } => "release",
                };
                if let Some(row) = map::incident_row(
                    repo,
                    &e.issue,
                    &source.incident_labels,
                    kind,
                    default_service,
                ) {
                    collector.incident(row);
                }
            }
            _ => {}
        }
    }
    let batches = collector.finish(ingested_at).map_err(|e| e.to_string())?;
    Ok(Mapped {
        batches,
        repo,
        keep_success,
        summary,
    })
}
