//! GitHub REST API v3 response bodies and webhook deliveries for every repo of the organisation,
//! from the ground truth (issue 17): what `doracost ingest github` reads through the loopback test
//! server (`tests/e2e/github_server.rs`), and what `POST /webhooks/github` is sent.
//!
//! Layout, under `github/`:
//! ```text
//! repos/<owner>/<name>/deployments.json                  every deployment, newest first
//! repos/<owner>/<name>/deployments/<id>/statuses.json    its statuses, newest first
//! repos/<owner>/<name>/commits.json                      main's history, newest first, with files
//! repos/<owner>/<name>/pulls.json                        every closed PR, newest first
//! repos/<owner>/<name>/pulls/<n>/commits.json            the PR branch's commits, oldest first
//! repos/<owner>/<name>/pulls/<n>/reviews.json            its reviews, oldest first
//! repos/<owner>/<name>/issues.json                       issues and PRs, newest first
//! repos/<owner>/<name>/actions/runs.json                 {total_count, workflow_runs}, newest first
//! repos/<owner>/<name>/releases.json                     releases, newest first
//! webhooks.ndjson    one delivery a line: {"event", "delivery", "payload"}, in time order per repo
//! sources.toml       the `[sources.github]` config that reads these files (deploy signals per repo)
//! summary.json       per repo: the signal and how many of each object the files hold
//! ```
//!
//! Mapping from the ground truth (every deployment of the organisation, those the events writer
//! sends to DevLake files included):
//! - **Deploy signal.** Most repos record deployments through the deployments API. Two
//!   ([`WORKFLOW_RUN_REPOS`]) record them only as GitHub Actions runs of the workflows
//!   `Deploy production` / `Deploy staging`; one ([`RELEASE_REPO`]) only as releases, one per
//!   successful production deployment (releases show no failed or cancelled deployment, and
//!   that repo's service has no staging). The ground truth deployment id is the id of whatever
//!   records it: deployment id, workflow run id or release id.
//! - **Deployment.** `environment` `production`/`staging`, `sha` the deployed head commit, `ref`
//!   `main` (a rollback's `ref` is the sha it goes back to, and `payload.rollback` is `true`),
//!   `payload.service` the service (a monorepo deploys its services separately), `task` `deploy`.
//! - **Statuses.** `queued` at `started_at`, `in_progress` shortly after, then `success` or
//!   `failure` at `finished_at`. A cancelled deployment ends `inactive` with no `success` before
//!   it: doracost maps inactive-without-success to `cancelled`. In repos whose pipeline keeps
//!   GitHub's `auto_inactive` (even repo index), a successful deployment later gets `inactive`
//!   when the next successful deployment of the same repo and environment finishes, as GitHub
//!   does: it stays a past success (DESIGN §4).
//! - **Incidents** are issues labelled `incident` and their severity (`SEV1`..`SEV3`), in the
//!   repo of their service; the body's lines ([`incident_body`]) name the service, the `INC-<n>`
//!   key and, when the truth links one, `Caused by deployment <id>` or `Caused by commit <sha>`.
//!   Issues and PRs share one number sequence: PRs of the ground truth keep their numbers, and
//!   every other issue or PR is numbered after them in creation order.
//! - **Order.** Lists are newest first by creation time (`created_at`; a release by its
//!   `published_at`), as GitHub lists them. Ids are the ground truth's: deployment ids do not grow
//!   with time across a monorepo's services, so an ingest keeps its cursor by time, not by id.
//! - **Noise the ingest must skip**: ordinary issues (`bug`, `enhancement`), postmortem pull
//!   requests labelled `incident` that were closed unmerged (they appear in `issues.json` with a
//!   `pull_request` key, and in `pulls.json` with `merged_at: null`), `CI` workflow runs, bot
//!   reviews (`type: Bot`, and `acme-lint`, a bot account of type `User`) and authors' comments on
//!   their own PRs before the first real review.

mod deploys;
mod issues;
mod objects;
mod pulls;
mod repo;
mod webhooks;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::GenerateError;
use crate::delivery::RepoHistory;
use crate::org::Org;
use crate::writers::OutFile;

pub use issues::incident_body;

/// Repos whose deployments are GitHub Actions runs of `Deploy production` / `Deploy staging`.
pub const WORKFLOW_RUN_REPOS: [&str; 2] = ["acme/cart", "acme/web"];
/// The repo whose successful production deployments are releases.
pub const RELEASE_REPO: &str = "acme/reporting";
/// The workflow that deploys to production, in [`WORKFLOW_RUN_REPOS`].
pub const DEPLOY_PRODUCTION: &str = "Deploy production";
/// The workflow that deploys to staging.
pub const DEPLOY_STAGING: &str = "Deploy staging";
/// A bot account of type `User` whose reviews must be excluded by config.
pub const LINT_ACCOUNT: &str = "acme-lint";
/// A bot (type `Bot`) that reviews some PRs before people do.
pub const REVIEW_BOT: &str = "acme-ci[bot]";

/// How a repo records its deployments on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The deployments API, with statuses.
    Deployments,
    /// Workflow runs of `Deploy production` / `Deploy staging`.
    WorkflowRuns,
    /// Releases (successful production deployments only).
    Releases,
}

/// The deploy signal of a repo (by name, so every scale agrees: medium and large keep small's
/// repos first).
pub fn signal(repo_name: &str) -> Signal {
    if WORKFLOW_RUN_REPOS.contains(&repo_name) {
        Signal::WorkflowRuns
    } else if repo_name == RELEASE_REPO {
        Signal::Releases
    } else {
        Signal::Deployments
    }
}

/// What the files of one repo hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepoSummary {
    /// The deploy signal.
    pub signal: Option<Signal>,
    /// Entries of `deployments.json`.
    pub deployments: u64,
    /// Statuses over all `statuses.json`.
    pub deployment_statuses: u64,
    /// Deployments whose statuses end `inactive` after a `success` (superseded).
    pub superseded: u64,
    /// Runs of the deploy workflows.
    pub deploy_runs: u64,
    /// Runs of other workflows (`CI`).
    pub other_runs: u64,
    /// Entries of `releases.json`.
    pub releases: u64,
    /// Ground-truth deployments no file shows (a release repo's failures and cancellations).
    pub deployments_not_visible: u64,
    /// Entries of `commits.json`.
    pub commits: u64,
    /// Merged PRs (the ground truth's).
    pub pulls_merged: u64,
    /// PRs closed without merging.
    pub pulls_unmerged: u64,
    /// Issues labelled `incident` (not PRs).
    pub incident_issues: u64,
    /// Incident issues whose body names a deployment.
    pub incidents_naming_a_deployment: u64,
    /// Incident issues whose body names a commit.
    pub incidents_naming_a_commit: u64,
    /// Other issues (not PRs, not incidents).
    pub other_issues: u64,
    /// Webhook deliveries.
    pub webhook_deliveries: u64,
}

/// Writes `github/` repo by repo, the deliveries into one NDJSON file.
pub struct GithubWriter {
    root: PathBuf,
    webhooks: OutFile,
    repos: BTreeMap<String, RepoSummary>,
    /// Repo names in the organisation's order.
    order: Vec<String>,
    files: u64,
}

impl GithubWriter {
    /// Opens `out_dir/github/`.
    pub fn create(out_dir: &Path) -> Result<Self, GenerateError> {
        let root = out_dir.join("github");
        let webhooks = OutFile::create(&root.join("webhooks.ndjson"))?;
        Ok(GithubWriter {
            root,
            webhooks,
            repos: BTreeMap::new(),
            order: Vec::new(),
            files: 0,
        })
    }

    /// Writes one repo's files and its webhook deliveries.
    pub fn write_repo(&mut self, org: &Org, history: &RepoHistory) -> Result<(), GenerateError> {
        let name = &org.repos[history.repo].name;
        let dir = self.root.join("repos").join(name);
        let written = repo::write(&dir, org, history, &mut self.webhooks)?;
        self.files += written.files;
        self.repos.insert(name.clone(), written.summary);
        self.order.push(name.clone());
        Ok(())
    }

    /// Writes `summary.json` and `sources.toml` and closes the deliveries; the files written.
    pub fn finish(self) -> Result<Vec<PathBuf>, GenerateError> {
        let mut files = vec![self.webhooks.finish()?];
        let mut summary = OutFile::create(&self.root.join("summary.json"))?;
        let text =
            serde_json::to_string_pretty(&self.repos).map_err(|source| GenerateError::Json {
                path: summary.path.clone(),
                source,
            })?;
        summary.write(text.as_bytes())?;
        summary.write(b"\n")?;
        files.push(summary.finish()?);
        let mut sources = OutFile::create(&self.root.join("sources.toml"))?;
        sources.write(sources_toml(self.order.iter().map(String::as_str)).as_bytes())?;
        files.push(sources.finish()?);
        Ok(files)
    }

    /// Files written under `repos/` so far.
    pub fn repo_files(&self) -> u64 {
        self.files
    }
}

/// The `[sources.github]` table that reads the generated repos, each with its deploy signal.
pub fn sources_toml<'a>(repos: impl Iterator<Item = &'a str>) -> String {
    let repos: Vec<&str> = repos.collect();
    let mut out = String::from(
        "# [sources.github] for the generated organisation's GitHub files (github/repos/…), as the\n\
         # loopback test server serves them; append to doracost.toml and point api_url at it.\n\
         [sources.github]\n",
    );
    let list: Vec<String> = repos.iter().map(|r| format!("\"{r}\"")).collect();
    let _ = writeln!(out, "repos = [{}]", list.join(", "));
    out.push_str(
        "token = { env = \"GITHUB_TOKEN\" }\nincident_labels = [\"incident\"]\n\
         revert_prs_as_failures = true\n",
    );
    let _ = writeln!(out, "exclude_reviewers = [\"{LINT_ACCOUNT}\"]");
    for repo in repos {
        match signal(repo) {
            Signal::Deployments => {}
            Signal::WorkflowRuns => {
                let _ = write!(
                    out,
                    "\n[sources.github.deploy_signals.\"{repo}\"]\nsignal = \"workflow_runs\"\n\
                     workflows = {{ \"{DEPLOY_PRODUCTION}\" = \"production\", \"{DEPLOY_STAGING}\" = \"staging\" }}\n"
                );
            }
            Signal::Releases => {
                let _ = write!(
                    out,
                    "\n# Releases show successful production deployments only: this repo's failed and\n\
                     # cancelled deployments (in the ground truth) are not visible on GitHub.\n\
                     [sources.github.deploy_signals.\"{repo}\"]\nsignal = \"releases\"\nenvironment = \"production\"\n"
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
