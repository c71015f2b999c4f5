//! The parts of GitHub REST API v3 bodies the ingest reads (docs.github.com/rest: "Deployments",
//! "Deployment statuses", "Commits" (list, get, compare, list pull requests associated with a
//! commit), "Pulls" (list, list commits, list reviews), "Issues" (list repository issues),
//! "Workflow runs", "Releases"), and the webhook payloads that carry the same objects. Every field
//! not needed is ignored; every field that may be absent or null is an `Option`.

use serde::Deserialize;

/// A user or bot (`login`, `type`: `User`, `Bot`, `Organization`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// Its login.
    #[serde(default)]
    pub login: String,
    /// `User`, `Bot` or `Organization`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `GET /repos/{owner}/{repo}/deployments` items, and webhooks' `deployment`.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    /// Its id.
    pub id: u64,
    /// The deployed commit.
    pub sha: String,
    /// The ref deployed (a branch, tag or sha).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// The environment deployed to.
    #[serde(default)]
    pub environment: Option<String>,
    /// Free JSON from the pipeline (we read `service` and `rollback`).
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Created (the deployment's start).
    pub created_at: String,
    /// Its API URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// `GET /repos/{owner}/{repo}/deployments/{id}/statuses` items, and webhooks'
/// `deployment_status`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    /// `error`, `failure`, `inactive`, `in_progress`, `queued`, `pending` or `success`.
    pub state: String,
    /// When the status was set.
    pub created_at: String,
    /// The run's logs.
    #[serde(default)]
    pub log_url: Option<String>,
    /// The older name of `log_url`.
    #[serde(default)]
    pub target_url: Option<String>,
}

/// A commit's author or committer line.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GitActor {
    /// ISO 8601 time.
    #[serde(default)]
    pub date: Option<String>,
}

/// The git part of a commit object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GitCommit {
    /// Author.
    #[serde(default)]
    pub author: Option<GitActor>,
    /// Committer.
    #[serde(default)]
    pub committer: Option<GitActor>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A file a commit touched.
#[derive(Debug, Clone, Deserialize)]
pub struct CommitFile {
    /// Its path.
    pub filename: String,
    /// The path before a rename.
    #[serde(default)]
    pub previous_filename: Option<String>,
}

/// A commit (`GET /repos/{owner}/{repo}/commits/{ref}`, list and compare items).
#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    /// Its sha.
    pub sha: String,
    /// Its git data.
    #[serde(default)]
    pub commit: GitCommit,
    /// Files touched (the single-commit route only).
    #[serde(default)]
    pub files: Option<Vec<CommitFile>>,
}

/// `GET /repos/{owner}/{repo}/compare/{base}...{head}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Comparison {
    /// `ahead`, `behind`, `identical` or `diverged`.
    #[serde(default)]
    pub status: Option<String>,
    /// Commits in `base..head`.
    #[serde(default)]
    pub total_commits: u64,
    /// This page's commits, oldest first.
    #[serde(default)]
    pub commits: Vec<Commit>,
}

/// A label.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    /// Its name.
    pub name: String,
}

/// A branch end of a pull request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Branch {
    /// The branch name.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
}

/// A pull request (list items, `commits/{sha}/pulls` items, webhook `pull_request`).
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Its author.
    #[serde(default)]
    pub user: Option<User>,
    /// Opened.
    pub created_at: String,
    /// Last updated.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Merged (null when closed unmerged or open).
    #[serde(default)]
    pub merged_at: Option<String>,
    /// The merge, squash or last rebased commit on the base branch.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The head branch.
    #[serde(default)]
    pub head: Branch,
}

/// A review (`GET /repos/{owner}/{repo}/pulls/{n}/reviews`).
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    /// The reviewer.
    #[serde(default)]
    pub user: Option<User>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    #[serde(default)]
    pub state: Option<String>,
    /// Submitted (absent while pending).
    #[serde(default)]
    pub submitted_at: Option<String>,
}

/// An issue (`GET /repos/{owner}/{repo}/issues` items, webhook `issue`).
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// Its number.
    pub number: u64,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
    /// Opened.
    pub created_at: String,
    /// Last updated.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Closed.
    #[serde(default)]
    pub closed_at: Option<String>,
    /// Its page.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Present on pull requests, which the issues list returns too.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

/// `GET /repos/{owner}/{repo}/actions/runs`.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRuns {
    /// All runs matching.
    #[serde(default)]
    pub total_count: u64,
    /// This page's runs, newest first.
    #[serde(default)]
    pub workflow_runs: Vec<WorkflowRun>,
}

/// A workflow run.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    /// Its id.
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The commit run.
    pub head_sha: String,
    /// The branch.
    #[serde(default)]
    pub head_branch: Option<String>,
    /// `queued`, `in_progress`, `completed`, …
    #[serde(default)]
    pub status: Option<String>,
    /// `success`, `failure`, `cancelled`, `timed_out`, `skipped`, … once completed.
    #[serde(default)]
    pub conclusion: Option<String>,
    /// Created.
    pub created_at: String,
    /// Started (a re-run's latest attempt).
    #[serde(default)]
    pub run_started_at: Option<String>,
    /// Last updated (a completed run's end).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Its page.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A release.
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    /// Its id.
    pub id: u64,
    /// Its tag.
    pub tag_name: String,
    /// The branch or commit the tag was made from.
    #[serde(default)]
    pub target_commitish: Option<String>,
    /// A draft is not published.
    #[serde(default)]
    pub draft: bool,
    /// Created.
    pub created_at: String,
    /// Published.
    #[serde(default)]
    pub published_at: Option<String>,
    /// Its page.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Its notes.
    #[serde(default)]
    pub body: Option<String>,
}
