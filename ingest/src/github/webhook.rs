//! GitHub webhook deliveries → the same rows as the API ingest, through the same mapping
//! ([`super::map`]): one code path, two transports.
//!
//! Events read (docs.github.com, "Webhook events and payloads"):
//! - `deployment_status`: the deployment with the status just set. A `success` makes it
//!   successful; `failure`/`error` failed; `inactive` cancelled unless it succeeded before, in
//!   the lake or earlier in the same write (the caller looks up [`Mapped::keeps_success`];
//!   [`Gathered::add`] keeps the success); `queued`/`in_progress` write nothing. The head commit
//!   is its one listed change until `ingest github` or `ingest git` fills the rest
//!   (`commits_listed = false`).
//! - `deployment`: nothing yet (no outcome).
//! - `workflow_run` (completed, of a configured deploy workflow) and `release` (published, in a
//!   repo whose signal is releases): deployments, as in the API ingest.
//! - `pull_request` (closed and merged): the merge commit's PR fields (number, opened, merged,
//!   branch, labels, incident references — `#n` when the lake or the same write holds issue `n`
//!   as an incident, [`Mapped::incidents_named`]; the first commit and review need the API), and
//!   a revert PR as an incident when `revert_prs_as_failures`.
//! - `push`: each commit's time and the files it added, modified or removed.
//! - `issues`: an incident issue.
//!
//! Anything else is acknowledged and ignored.

use std::collections::HashSet;

use model::config::ServiceConfig;
use model::config::github::{DeploySignal, GithubSource};
use serde::Deserialize;

use super::api;
use super::map;
use crate::events::EventBatches;
use crate::events::rows::{ChangeRow, Collector, DeploymentRow, IncidentRow, Status, change_id};

/// What one delivery maps to, before it is gathered with others into one write ([`Gathered`]).
pub struct Mapped {
    /// The repository it is about (`owner/name`), when it names one.
    pub repo: Option<String>,
    /// What was read, for the answer (e.g. `deployment_status success`).
    pub summary: String,
    rows: Rows,
}

/// One delivery's rows.
#[derive(Default)]
struct Rows {
    /// A deployment with its head commit (its one listed change).
    deployment: Option<(DeploymentRow, ChangeRow)>,
    /// The deployment came from a `deployment_status`: it must not turn a past success into
    /// anything else (an `inactive` after `success`).
    keep_success: bool,
    changes: Vec<ChangeRow>,
    /// `#n` in a merged PR's title or body: incident references when issue `n` is an incident
    /// (its change is `changes[0]`).
    issue_refs: Vec<u64>,
    incident: Option<IncidentRow>,
}

/// What the lake holds of what a write's deliveries ask about ([`Mapped::keeps_success`],
/// [`Mapped::incidents_named`]).
#[derive(Debug, Default)]
pub struct Held {
    /// Deployments the lake has as `success`.
    pub successes: HashSet<String>,
    /// Incidents the lake has.
    pub incidents: HashSet<String>,
}

impl Mapped {
    /// The incidents a merged PR may name as `#n`: their ids, for the caller to look up in the
    /// lake before [`Gathered::add`] (the API ingest knows the repo's incident issues from its
    /// issues list; a delivery names only numbers).
    pub fn incidents_named(&self) -> Vec<String> {
        let Some(repo) = self.repo.as_deref() else {
            return Vec::new();
        };
        self.rows
            .issue_refs
            .iter()
            .map(|n| map::key(repo, "issue", n))
            .collect()
    }

    /// The deployment a `deployment_status` delivery reports and that must stay `success` if it
    /// ever was: its id, for the caller to look up in the lake before [`Gathered::add`].
    pub fn keeps_success(&self) -> Option<&str> {
        self.rows
            .deployment
            .as_ref()
            .filter(|_| self.rows.keep_success)
            .map(|(d, _)| d.deployment_id.as_str())
    }
}

/// Deliveries' rows gathered, in the order they were received, into one write: a later
/// deployment or incident of the same key replaces an earlier one, except that a deployment
/// that succeeded (in the lake, or earlier in this write) stays successful; a commit's fields
/// merge.
#[derive(Default)]
pub struct Gathered {
    collector: Collector,
    succeeded: HashSet<String>,
    incidents: HashSet<String>,
}

impl Gathered {
    /// Adds one delivery's rows, with what the lake holds of what the deliveries asked about.
    /// How many rows it added.
    pub fn add(&mut self, mapped: Mapped, held: &Held) -> usize {
        let repo = mapped.repo.unwrap_or_default();
        let Rows {
            deployment,
            keep_success,
            mut changes,
            issue_refs,
            incident,
        } = mapped.rows;
        let mut rows = 0;
        if let Some((mut row, head)) = deployment {
            let id = row.deployment_id.clone();
            let succeeded = self.succeeded.contains(&id) || held.successes.contains(&id);
            if !(keep_success && succeeded && row.status != Status::Success) {
                if row.status == Status::Success {
                    self.succeeded.insert(id);
                }
                row.shipped = vec![self.collector.change(head)];
                self.collector.deployment(row);
                rows += 3;
            }
        }
        if let Some(refs) = changes.first_mut().and_then(|c| c.incident_refs.as_mut()) {
            for n in issue_refs {
                let id = map::key(&repo, "issue", n);
                if held.incidents.contains(&id) || self.incidents.contains(&id) {
                    refs.push(format!("#{n}"));
                }
            }
            refs.sort();
            refs.dedup();
        }
        for change in changes {
            self.collector.change(change);
            rows += 1;
        }
        if let Some(incident) = incident {
            self.incidents.insert(incident.incident_id.clone());
            self.collector.incident(incident);
            rows += 1;
        }
        rows
    }

    /// The rows, `ingested_at` set.
    pub fn finish(self, ingested_at: i64) -> Result<EventBatches, String> {
        self.collector
            .finish(ingested_at)
            .map_err(|e| format!("GitHub webhook rows: {e}"))
    }
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

/// The numbers `#n` in a PR's title and body (as [`map::incident_refs`] reads them).
fn issue_numbers(pr: &api::PullRequest) -> Vec<u64> {
    let text = format!(
        "{} {}",
        pr.title.as_deref().unwrap_or_default(),
        pr.body.as_deref().unwrap_or_default()
    );
    let mut numbers: Vec<u64> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '#'))
        .filter_map(|word| word.strip_prefix('#')?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// A merged revert PR as an incident, as the API ingest records it: from its opening to its
/// merge, caused by the commit its body names (`This reverts commit <sha>.`). The API ingest
/// also tries the reverted PR's merge commit for a `revert-N-…` branch among the PRs it has
/// listed; a delivery has no list.
fn revert_incident(
    repo: &str,
    pr: &api::PullRequest,
    service: Option<&str>,
) -> Option<IncidentRow> {
    Some(IncidentRow {
        incident_id: map::key(repo, "revert", pr.number),
        source: map::SOURCE.to_owned(),
        service: service.map(str::to_owned),
        title: pr.title.clone(),
        severity: None,
        started_at: map::micros(&pr.created_at)?,
        resolved_at: pr.merged_at.as_deref().and_then(map::micros),
        caused_by_deployment_id: None,
        caused_by_sha: map::reverted_sha(pr),
        url: None,
    })
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
) -> Result<Mapped, String> {
    let envelope: Envelope = parse(event, body)?;
    let repo = envelope.repository.map(|r| r.full_name);
    let action = envelope.action.unwrap_or_default();
    let mut rows = Rows::default();
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
                    let row = map::deployment_row(
                        repo,
                        &e.deployment,
                        outcome,
                        std::slice::from_ref(&e.deployment_status),
                        default_service,
                    );
                    let head = ChangeRow::minimal(map::SOURCE, repo, &e.deployment.sha);
                    rows.deployment = Some((row, head));
                    rows.keep_success = true;
                }
                summary = format!("deployment_status {}", e.deployment_status.state);
            }
            "workflow_run" => {
                let e: WorkflowRunEvent = parse(event, body)?;
                if let DeploySignal::WorkflowRuns { workflows } = source.signal(repo)
                    && let Some(environment) =
                        e.workflow_run.name.as_ref().and_then(|n| workflows.get(n))
                    && let Some(row) =
                        map::run_row(repo, &e.workflow_run, environment, default_service)
                {
                    let head = ChangeRow::minimal(map::SOURCE, repo, &e.workflow_run.head_sha);
                    rows.deployment = Some((row, head));
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
                    && let Some(row) =
                        map::release_row(repo, &e.release, &sha, environment, default_service)
                {
                    let head = ChangeRow::minimal(map::SOURCE, repo, &sha);
                    rows.deployment = Some((row, head));
                }
            }
            "pull_request" => {
                let e: PullRequestEvent = parse(event, body)?;
                let pr = e.pull_request;
                let merged = action == "closed" && pr.merged_at.is_some();
                if merged && source.revert_prs_as_failures && map::is_revert(&pr) {
                    rows.incident = revert_incident(repo, &pr, default_service);
                }
                if merged && let Some(sha) = pr.merge_commit_sha.clone() {
                    rows.issue_refs = issue_numbers(&pr);
                    let mut labels: Vec<String> =
                        pr.labels.iter().map(|l| l.name.clone()).collect();
                    labels.sort();
                    rows.changes.push(ChangeRow {
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
                        rows.changes.push(ChangeRow {
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
                    rows.incident = Some(row);
                }
            }
            _ => {}
        }
    }
    Ok(Mapped {
        repo,
        summary,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use serde_json::json;

    use super::*;

    fn status(deployment: u64, state: &str, at: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "action": "created",
            "repository": { "full_name": "acme/shop" },
            "deployment": {
                "id": deployment,
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "ref": "main",
                "environment": "production",
                "payload": { "service": "shop" },
                "created_at": "2026-03-01T10:00:00Z",
            },
            "deployment_status": { "state": state, "created_at": at },
        }))
        .unwrap()
    }

    /// (id, status, finished_at) of the gathered deployments.
    fn deployments(gathered: Gathered) -> Vec<(String, String, i64)> {
        let batch = gathered.finish(0).unwrap().deployments;
        let ids = batch
            .column_by_name("deployment_id")
            .unwrap()
            .as_string::<i32>();
        let status = batch.column_by_name("status").unwrap().as_string::<i32>();
        let finished = batch
            .column_by_name("finished_at")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        (0..batch.num_rows())
            .map(|i| {
                assert!(!finished.is_null(i));
                (
                    ids.value(i).to_owned(),
                    status.value(i).to_owned(),
                    finished.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn an_inactive_after_a_success_keeps_it_successful_within_one_write_and_across_writes() {
        let source: GithubSource =
            serde_json::from_value(json!({ "repos": ["acme/shop"] })).unwrap();
        let map = |body: Vec<u8>| map_delivery("deployment_status", &body, &source, &[]).unwrap();
        let success_at = map::micros("2026-03-01T10:05:00Z").unwrap();
        let inactive_at = map::micros("2026-03-02T09:00:00Z").unwrap();

        // Both in one write, in the order received.
        let mut gathered = Gathered::default();
        let none = Held::default();
        assert_eq!(
            gathered.add(map(status(1, "queued", "2026-03-01T10:00:01Z")), &none),
            0
        );
        assert_eq!(
            gathered.add(map(status(1, "success", "2026-03-01T10:05:00Z")), &none),
            3
        );
        assert_eq!(
            gathered.add(map(status(1, "inactive", "2026-03-02T09:00:00Z")), &none),
            0
        );
        // `inactive` with no success before: cancelled.
        gathered.add(map(status(2, "inactive", "2026-03-02T09:00:00Z")), &none);
        assert_eq!(
            deployments(gathered),
            [
                (
                    "github:acme/shop:deployment:1".to_owned(),
                    "success".to_owned(),
                    success_at
                ),
                (
                    "github:acme/shop:deployment:2".to_owned(),
                    "cancelled".to_owned(),
                    inactive_at
                ),
            ]
        );

        // The success in the lake already: the later `inactive` writes nothing.
        let inactive = map(status(1, "inactive", "2026-03-02T09:00:00Z"));
        assert_eq!(
            inactive.keeps_success(),
            Some("github:acme/shop:deployment:1")
        );
        let mut gathered = Gathered::default();
        let held = Held {
            successes: ["github:acme/shop:deployment:1".to_owned()].into(),
            ..Held::default()
        };
        assert_eq!(gathered.add(inactive, &held), 0);
        assert!(deployments(gathered).is_empty());
    }

    fn pull(number: u64, title: &str, body: &str, branch: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "action": "closed",
            "repository": { "full_name": "acme/shop" },
            "pull_request": {
                "number": number,
                "title": title,
                "body": body,
                "created_at": "2026-03-03T08:00:00Z",
                "merged_at": "2026-03-03T09:00:00Z",
                "merge_commit_sha": format!("{number:040x}"),
                "labels": [],
                "head": { "ref": branch },
            },
        }))
        .unwrap()
    }

    fn issue(number: u64) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "action": "opened",
            "repository": { "full_name": "acme/shop" },
            "issue": {
                "number": number,
                "title": "Checkout is down",
                "labels": [{ "name": "incident" }, { "name": "SEV1" }],
                "state": "open",
                "created_at": "2026-03-03T07:00:00Z",
            },
        }))
        .unwrap()
    }

    #[test]
    fn merged_pull_requests_name_incidents_and_reverts_are_failures_as_in_the_api_ingest() {
        let source: GithubSource = serde_json::from_value(json!({
            "repos": ["acme/shop"],
            "incident_labels": ["incident"],
            "revert_prs_as_failures": true,
        }))
        .unwrap();
        let map = |event: &str, body: Vec<u8>| map_delivery(event, &body, &source, &[]).unwrap();

        // `#12` is an incident the lake holds, `#13` one received earlier in this write, `#14`
        // an ordinary issue (or a PR): only the first two are incident references.
        let fix = map(
            "pull_request",
            pull(20, "Fix INC-3 (#12, #13)", "See #14", "fix"),
        );
        assert_eq!(
            fix.incidents_named(),
            [
                "github:acme/shop:issue:12",
                "github:acme/shop:issue:13",
                "github:acme/shop:issue:14"
            ]
        );
        let held = Held {
            incidents: ["github:acme/shop:issue:12".to_owned()].into(),
            ..Held::default()
        };
        let mut gathered = Gathered::default();
        gathered.add(map("issues", issue(13)), &held);
        gathered.add(fix, &held);
        // A revert PR: an incident from its opening to its merge, caused by the commit its body
        // names.
        let reverted = "c0ffee".repeat(6) + "c0ff";
        gathered.add(
            map(
                "pull_request",
                pull(
                    21,
                    "Revert \"Fix INC-3 (#12, #13)\"",
                    &format!("This reverts commit {reverted}."),
                    "revert-20-fix",
                ),
            ),
            &held,
        );
        let batches = gathered.finish(0).unwrap();
        let refs = batches
            .changes
            .column_by_name("incident_refs")
            .unwrap()
            .as_list::<i32>();
        let pr = batches.changes.column_by_name("pr_number").unwrap();
        let pr = pr.as_primitive::<arrow::datatypes::Int64Type>();
        let row = (0..pr.len()).find(|&i| pr.value(i) == 20).unwrap();
        let refs = refs.value(row);
        let refs: Vec<&str> = refs.as_string::<i32>().iter().flatten().collect();
        assert_eq!(refs, ["#12", "#13", "INC-3"]);
        let incidents = &batches.incidents;
        let ids = incidents
            .column_by_name("incident_id")
            .unwrap()
            .as_string::<i32>();
        let causes = incidents
            .column_by_name("caused_by_sha")
            .unwrap()
            .as_string::<i32>();
        let revert = (0..ids.len())
            .find(|&i| ids.value(i) == "github:acme/shop:revert:21")
            .unwrap();
        assert_eq!(causes.value(revert), reverted);
        assert_eq!(incidents.num_rows(), 2);
    }
}
