//! One repository's ingest: deployments (or deploy runs, or releases) and their statuses, the
//! commits each shipped, the pull requests behind those commits, and incident issues.

use std::collections::{BTreeMap, HashMap, HashSet};

use model::config::ServiceConfig;
use model::config::github::{DeploySignal, GithubSource};
use serde::{Deserialize, Serialize};

use super::api;
use super::client::Client;
use super::map::{self, key};
use crate::events::rows::{ChangeRow, Collector, DeploymentRow, IncidentRow, Status, change_id};
use crate::git::ranges::Attribution;
use crate::http::{Fetched, HttpError};

/// What the lake already holds for a repository (read before the run).
#[derive(Debug, Default)]
pub struct Known {
    /// Successful or finished deployments of this source: id → (service, environment, head,
    /// finished, success).
    pub deployments: HashMap<String, KnownDeployment>,
    /// Commits with their times and paths: sha → paths.
    pub paths: HashMap<String, Vec<String>>,
    /// Commits whose pull request was already looked up (by this source) or is known.
    pub pr_done: HashSet<String>,
    /// `ingest_state` of this source: scope → (cursor, etag).
    pub state: HashMap<String, (Option<String>, Option<String>)>,
}

/// A deployment already in the lake.
#[derive(Debug, Clone)]
pub struct KnownDeployment {
    /// Its service.
    pub service: Option<String>,
    /// Its environment, lower-cased.
    pub environment: String,
    /// Its head commit.
    pub head: Option<String>,
    /// When it started (else finished): deployments follow each other in the order they start.
    pub at: Option<i64>,
    /// Whether it succeeded.
    pub success: bool,
}

/// A list's cursor: the newest id seen and the ids not finished then.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ListCursor {
    max_id: u64,
    #[serde(default)]
    pending: Vec<u64>,
}

/// What one repository's ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoReport {
    /// `owner/name`.
    pub repo: String,
    /// Deployments (runs, releases) written.
    pub deployments: u64,
    /// Deployments still running, to be read again next time.
    pub pending: u64,
    /// Changes written.
    pub changes: u64,
    /// (deployment, change) links written.
    pub deployment_changes: u64,
    /// Pull requests read.
    pub pull_requests: u64,
    /// Incidents written (issues and revert PRs).
    pub incidents: u64,
}

/// The rows and cursors one repository's run produced.
pub(crate) struct RepoOutput {
    /// The rows.
    pub collector: Collector,
    /// `ingest_state` rows: (scope, cursor, etag).
    pub states: Vec<(String, Option<String>, Option<String>)>,
    /// The counts.
    pub report: RepoReport,
}

/// Runs one repository.
pub(crate) struct RepoRun<'a> {
    client: &'a mut Client,
    source: &'a GithubSource,
    repo: &'a str,
    known: Known,
    attribution: Attribution<'a>,
    default_service: Option<String>,
    collector: Collector,
    states: Vec<(String, Option<String>, Option<String>)>,
    report: RepoReport,
    /// Commits read this run: sha → (authored, committed, paths).
    commits: HashMap<String, (Option<i64>, Option<i64>, Option<Vec<String>>)>,
    /// The repo's incident issue numbers (for `#n` references in PRs).
    incident_issues: HashSet<u64>,
}

impl<'a> RepoRun<'a> {
    /// A run of `repo` with what the lake knows of it.
    pub fn new(
        client: &'a mut Client,
        source: &'a GithubSource,
        services: &'a [ServiceConfig],
        repo: &'a str,
        known: Known,
    ) -> RepoRun<'a> {
        let mine: Vec<&ServiceConfig> = services
            .iter()
            .filter(|s| s.repos.iter().any(|r| r == repo))
            .collect();
        let default_service = (mine.len() == 1).then(|| mine[0].name.clone());
        RepoRun {
            client,
            source,
            repo,
            known,
            attribution: Attribution::new(services, repo),
            default_service,
            collector: Collector::default(),
            states: Vec::new(),
            report: RepoReport {
                repo: repo.to_owned(),
                ..RepoReport::default()
            },
            commits: HashMap::new(),
            incident_issues: HashSet::new(),
        }
    }

    fn state(&self, scope: &str) -> (Option<String>, Option<String>) {
        self.known
            .state
            .get(&format!("{}:{scope}", self.repo))
            .cloned()
            .unwrap_or_default()
    }

    fn save_state(&mut self, scope: &str, cursor: Option<String>, etag: Option<String>) {
        let scope = format!("{}:{scope}", self.repo);
        let before = self.known.state.get(&scope).cloned().unwrap_or_default();
        if before != (cursor.clone(), etag.clone()) {
            self.states.push((scope, cursor, etag));
        }
    }

    /// Everything, in order: incidents first (PRs reference them), then deployments and what
    /// they shipped.
    pub async fn run(mut self) -> Result<RepoOutput, HttpError> {
        let labels = self.source.incident_labels.clone();
        for label in &labels {
            self.issues(label).await?;
        }
        let rows = match self.source.signal(self.repo).clone() {
            DeploySignal::Deployments => self.deployments().await?,
            DeploySignal::WorkflowRuns { workflows } => self.runs(&workflows).await?,
            DeploySignal::Releases { environment } => self.releases(&environment).await?,
        };
        let rows = self.ship(rows).await?;
        self.pull_requests().await?;
        self.report.deployments = rows.len() as u64;
        for row in rows {
            self.report.deployment_changes += row.shipped.len() as u64;
            self.collector.deployment(row);
        }
        Ok(RepoOutput {
            collector: self.collector,
            states: self.states,
            report: self.report,
        })
    }

    fn deployment_kind(&self) -> &'static str {
        match self.source.signal(self.repo) {
            DeploySignal::Deployments => "deployment",
            DeploySignal::WorkflowRuns { .. } => "run",
            DeploySignal::Releases { .. } => "release",
        }
    }

    /// Incident issues carrying `label`, updated since the last run.
    async fn issues(&mut self, label: &str) -> Result<(), HttpError> {
        let scope = format!("issues:{label}");
        let (since, etag) = self.state(&scope);
        let Some((newest, first_etag)) = self
            .issue_pages(label, since.as_deref(), etag.as_deref(), true)
            .await?
        else {
            return Ok(());
        };
        // The next run asks with `since` at the newest update seen, a new URL: its ETag is taken
        // now, so that an unchanged repository then costs a 304 (`since` is inclusive: the page
        // holds the newest issues again, written again unchanged).
        let etag = if newest != since {
            match self
                .issue_pages(label, newest.as_deref(), None, false)
                .await?
            {
                Some((_, etag)) => etag,
                None => first_etag,
            }
        } else {
            first_etag
        };
        self.save_state(&scope, newest, etag);
        Ok(())
    }

    /// Incident issues with `label` updated since `since` (all pages, or the first only):
    /// the newest update seen and the first page's ETag; `None` when it answered 304.
    async fn issue_pages(
        &mut self,
        label: &str,
        since: Option<&str>,
        etag: Option<&str>,
        all_pages: bool,
    ) -> Result<Option<(Option<String>, Option<String>)>, HttpError> {
        let mut url = self.client.url(&format!(
            "/repos/{}/issues?state=all&labels={}&sort=updated&direction=desc&per_page=100",
            self.repo,
            encode(label)
        ));
        if let Some(since) = since {
            url.push_str(&format!("&since={}", encode(since)));
        }
        let mut next = Some(url);
        let mut first = true;
        let (mut newest, mut first_etag) = (since.map(str::to_owned), None);
        while let Some(url) = next.take() {
            let conditional = if first { etag } else { None };
            let page = match self
                .client
                .get::<Vec<api::Issue>>(&url, conditional)
                .await?
            {
                Fetched::NotModified => return Ok(None),
                Fetched::Fresh { value, .. } => value,
            };
            if first {
                first_etag = page.etag.clone();
            }
            first = false;
            for issue in &page.items {
                if let Some(updated) = &issue.updated_at
                    && newest.as_deref().is_none_or(|n| updated.as_str() > n)
                {
                    newest = Some(updated.clone());
                }
                let kind = self.deployment_kind();
                if let Some(row) = map::incident_row(
                    self.repo,
                    issue,
                    &self.source.incident_labels,
                    kind,
                    self.default_service.as_deref(),
                ) {
                    if self.incident_issues.insert(issue.number) {
                        self.report.incidents += 1;
                    }
                    self.collector.incident(row);
                }
            }
            next = if all_pages { page.next } else { None };
        }
        Ok(Some((newest, first_etag)))
    }

    /// A list read newest first until the cursor's newest id: the new items and the first
    /// page's ETag (`None` when it answered 304: nothing new).
    async fn new_items<T: serde::de::DeserializeOwned, I>(
        &mut self,
        path: &str,
        etag: Option<&str>,
        max_id: u64,
        items: impl Fn(T) -> Vec<(u64, I)>,
    ) -> Result<(Vec<(u64, I)>, Option<String>), HttpError> {
        let mut next = Some(self.client.url(path));
        let mut out = Vec::new();
        let mut first_etag = None;
        let mut first = true;
        'pages: while let Some(url) = next.take() {
            let conditional = if first { etag } else { None };
            let page = match self.client.get::<T>(&url, conditional).await? {
                Fetched::NotModified => break,
                Fetched::Fresh { value, .. } => value,
            };
            if first {
                first_etag = page.etag.clone();
            }
            first = false;
            for (id, item) in items(page.items) {
                if id <= max_id {
                    break 'pages;
                }
                out.push((id, item));
            }
            next = page.next;
        }
        Ok((out, first_etag))
    }

    async fn deployments(&mut self) -> Result<Vec<DeploymentRow>, HttpError> {
        let (cursor, etag) = self.list_state("deployments");
        let (fresh, new_etag) = self
            .new_items(
                &format!("/repos/{}/deployments?per_page=100", self.repo),
                etag.as_deref(),
                cursor.max_id,
                |items: Vec<api::Deployment>| items.into_iter().map(|d| (d.id, d)).collect(),
            )
            .await?;
        let max_id = newest_id(&fresh, cursor.max_id);
        let mut candidates: Vec<api::Deployment> = fresh.into_iter().map(|(_, d)| d).collect();
        for id in &cursor.pending {
            let url = self
                .client
                .url(&format!("/repos/{}/deployments/{id}", self.repo));
            if let Fetched::Fresh { value, .. } =
                self.client.get::<api::Deployment>(&url, None).await?
            {
                candidates.push(value.items);
            }
        }
        let mut rows = Vec::new();
        let mut pending = Vec::new();
        for deployment in candidates {
            let url = self.client.url(&format!(
                "/repos/{}/deployments/{}/statuses?per_page=100",
                self.repo, deployment.id
            ));
            let statuses: Vec<api::DeploymentStatus> = self.client.get_all(&url).await?;
            match map::deployment_outcome(&statuses) {
                Some(outcome) => rows.push(map::deployment_row(
                    self.repo,
                    &deployment,
                    outcome,
                    &statuses,
                    self.default_service.as_deref(),
                )),
                None => pending.push(deployment.id),
            }
        }
        self.finish_list("deployments", max_id, pending, new_etag.or(etag));
        Ok(rows)
    }

    /// A list's cursor (none yet: from the start) and ETag.
    fn list_state(&self, scope: &str) -> (ListCursor, Option<String>) {
        let (cursor, etag) = self.state(scope);
        let cursor = cursor
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        (cursor, etag)
    }

    fn finish_list(
        &mut self,
        scope: &str,
        max_id: u64,
        mut pending: Vec<u64>,
        etag: Option<String>,
    ) {
        pending.sort_unstable();
        self.report.pending += pending.len() as u64;
        let cursor = ListCursor { max_id, pending };
        let text = serde_json::to_string(&cursor).ok();
        if max_id > 0 {
            self.save_state(scope, text, etag);
        }
    }

    async fn runs(
        &mut self,
        workflows: &BTreeMap<String, String>,
    ) -> Result<Vec<DeploymentRow>, HttpError> {
        let (cursor, etag) = self.list_state("runs");
        let (fresh, new_etag) = self
            .new_items(
                &format!("/repos/{}/actions/runs?per_page=100", self.repo),
                etag.as_deref(),
                cursor.max_id,
                |page: api::WorkflowRuns| {
                    page.workflow_runs.into_iter().map(|r| (r.id, r)).collect()
                },
            )
            .await?;
        let max_id = newest_id(&fresh, cursor.max_id);
        let mut candidates: Vec<api::WorkflowRun> = fresh.into_iter().map(|(_, r)| r).collect();
        for id in &cursor.pending {
            let url = self
                .client
                .url(&format!("/repos/{}/actions/runs/{id}", self.repo));
            if let Fetched::Fresh { value, .. } =
                self.client.get::<api::WorkflowRun>(&url, None).await?
            {
                candidates.push(value.items);
            }
        }
        let mut rows = Vec::new();
        let mut pending = Vec::new();
        for run in &candidates {
            let Some(environment) = run.name.as_ref().and_then(|n| workflows.get(n)) else {
                continue;
            };
            match map::run_row(self.repo, run, environment, self.default_service.as_deref()) {
                Some(row) => rows.push(row),
                None if run.status.as_deref() != Some("completed") => pending.push(run.id),
                None => {}
            }
        }
        self.finish_list("runs", max_id, pending, new_etag.or(etag));
        Ok(rows)
    }

    async fn releases(&mut self, environment: &str) -> Result<Vec<DeploymentRow>, HttpError> {
        let (cursor, etag) = self.list_state("releases");
        let (fresh, new_etag) = self
            .new_items(
                &format!("/repos/{}/releases?per_page=100", self.repo),
                etag.as_deref(),
                cursor.max_id,
                |items: Vec<api::Release>| items.into_iter().map(|r| (r.id, r)).collect(),
            )
            .await?;
        let max_id = newest_id(&fresh, cursor.max_id);
        let mut rows = Vec::new();
        for (_, release) in fresh {
            let sha = match release.target_commitish.as_deref() {
                Some(t) if t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()) => {
                    t.to_owned()
                }
                _ => {
                    let url = self.client.url(&format!(
                        "/repos/{}/commits/{}",
                        self.repo,
                        encode(&release.tag_name)
                    ));
                    match self.client.get::<api::Commit>(&url, None).await? {
                        Fetched::Fresh { value, .. } => {
                            self.remember(&value.items);
                            value.items.sha
                        }
                        Fetched::NotModified => continue,
                    }
                }
            };
            rows.extend(map::release_row(
                self.repo,
                &release,
                &sha,
                environment,
                self.default_service.as_deref(),
            ));
        }
        self.finish_list("releases", max_id, Vec::new(), new_etag.or(etag));
        Ok(rows)
    }

    fn remember(&mut self, commit: &api::Commit) {
        let entry = self.commits.entry(commit.sha.clone()).or_default();
        let author = commit
            .commit
            .author
            .as_ref()
            .and_then(|a| a.date.as_deref())
            .and_then(map::micros);
        let committer = commit
            .commit
            .committer
            .as_ref()
            .and_then(|a| a.date.as_deref())
            .and_then(map::micros);
        entry.0 = entry.0.or(author);
        entry.1 = entry.1.or(committer);
        if let Some(files) = &commit.files {
            let mut paths: Vec<String> = files.iter().map(|f| f.filename.clone()).collect();
            paths.extend(files.iter().filter_map(|f| f.previous_filename.clone()));
            paths.sort();
            paths.dedup();
            entry.2 = Some(paths);
        }
    }

    /// The paths `sha` touched: known, read this run, or read now.
    async fn paths(&mut self, sha: &str) -> Result<Vec<String>, HttpError> {
        if let Some(paths) = self.known.paths.get(sha) {
            return Ok(paths.clone());
        }
        if let Some((_, _, Some(paths))) = self.commits.get(sha) {
            return Ok(paths.clone());
        }
        let url = self
            .client
            .url(&format!("/repos/{}/commits/{sha}", self.repo));
        if let Fetched::Fresh { value, .. } = self.client.get::<api::Commit>(&url, None).await? {
            self.remember(&value.items);
        }
        Ok(self
            .commits
            .get(sha)
            .and_then(|c| c.2.clone())
            .unwrap_or_default())
    }

    /// Each new deployment's shipped commits: those between the previous successful deployment
    /// of its service and environment and its head (the compare API, paged past 250 commits),
    /// or every commit up to its head for the first one; a path-mapped service keeps its own.
    async fn ship(
        &mut self,
        mut rows: Vec<DeploymentRow>,
    ) -> Result<Vec<DeploymentRow>, HttpError> {
        struct Entry {
            id: String,
            service: Option<String>,
            environment: String,
            head: Option<String>,
            at: Option<i64>,
            success: bool,
            new: Option<usize>,
        }
        let mut all: Vec<Entry> = self
            .known
            .deployments
            .iter()
            .filter(|(id, _)| !rows.iter().any(|r| &r.deployment_id == *id))
            .map(|(id, k)| Entry {
                id: id.clone(),
                service: k.service.clone(),
                environment: k.environment.clone(),
                head: k.head.clone(),
                at: k.at,
                success: k.success,
                new: None,
            })
            .collect();
        for (i, row) in rows.iter().enumerate() {
            all.push(Entry {
                id: row.deployment_id.clone(),
                service: row.service.clone(),
                environment: row.environment.to_lowercase(),
                head: row.commit_sha.clone(),
                at: row.started_at.or(row.finished_at),
                success: row.status == Status::Success,
                new: Some(i),
            });
        }
        all.sort_by(|a, b| {
            (&a.service, &a.environment, a.at, &a.id).cmp(&(
                &b.service,
                &b.environment,
                b.at,
                &b.id,
            ))
        });
        let mut previous: Option<String> = None;
        let mut group: Option<(Option<String>, String)> = None;
        for entry in &all {
            let this = (entry.service.clone(), entry.environment.clone());
            if group.as_ref() != Some(&this) {
                group = Some(this);
                previous = None;
            }
            if let (Some(i), Some(head)) = (entry.new, entry.head.clone()) {
                let commits = self.range(previous.as_deref(), &head).await?;
                let mut shipped = Vec::new();
                for sha in commits {
                    let paths = self.paths(&sha).await?;
                    if !self.attribution.keeps(entry.service.as_deref(), &paths) {
                        continue;
                    }
                    let (authored, committed, _) =
                        self.commits.get(&sha).cloned().unwrap_or_default();
                    let index = self.collector.change(ChangeRow {
                        change_id: change_id(self.repo, &sha),
                        source: map::SOURCE.to_owned(),
                        repo: self.repo.to_owned(),
                        sha: sha.clone(),
                        authored_at: authored,
                        committed_at: committed,
                        paths: Some(paths),
                        ..ChangeRow::default()
                    });
                    shipped.push(index);
                }
                rows[i].shipped = shipped;
                rows[i].commits_listed = true;
            }
            if entry.success && entry.head.is_some() {
                previous = entry.head.clone();
            }
        }
        Ok(rows)
    }

    /// The commits in `base..head`, oldest first.
    async fn range(&mut self, base: Option<&str>, head: &str) -> Result<Vec<String>, HttpError> {
        let commits: Vec<api::Commit> = match base {
            Some(base) if base == head => Vec::new(),
            Some(base) => {
                let mut next = Some(self.client.url(&format!(
                    "/repos/{}/compare/{base}...{head}?per_page=100",
                    self.repo
                )));
                let mut out = Vec::new();
                while let Some(url) = next.take() {
                    if let Fetched::Fresh { value, .. } =
                        self.client.get::<api::Comparison>(&url, None).await?
                    {
                        if value.items.status.as_deref() == Some("behind") {
                            break;
                        }
                        out.extend(value.items.commits);
                        next = value.next;
                    }
                }
                out
            }
            None => {
                let url = self.client.url(&format!(
                    "/repos/{}/commits?sha={head}&per_page=100",
                    self.repo
                ));
                let mut list: Vec<api::Commit> = self.client.get_all(&url).await?;
                list.reverse();
                list
            }
        };
        let mut shas = Vec::with_capacity(commits.len());
        for commit in &commits {
            self.remember(commit);
            shas.push(commit.sha.clone());
        }
        Ok(shas)
    }

    /// Pull request data of the changes written this run whose PR was not looked up before:
    /// merged PRs listed (recently updated first) are matched by merge commit; a change left
    /// unmatched asks `commits/{sha}/pulls` (a squash or rebase merge's commit). Merged revert
    /// PRs become failure signals.
    async fn pull_requests(&mut self) -> Result<(), HttpError> {
        let wanted: HashSet<String> = self
            .collector
            .change_shas()
            .into_iter()
            .filter(|sha| !self.known.pr_done.contains(sha))
            .collect();
        let mut by_sha: HashMap<String, api::PullRequest> = HashMap::new();
        let (cursor, etag) = self.state("pulls");
        let mut next = Some(self.client.url(&format!(
            "/repos/{}/pulls?state=closed&sort=updated&direction=desc&per_page=100",
            self.repo
        )));
        let (mut first, mut newest, mut first_etag) = (true, cursor.clone(), None);
        let mut unmatched = wanted.len();
        while let Some(url) = next.take() {
            let conditional = if first { etag.as_deref() } else { None };
            let page = match self
                .client
                .get::<Vec<api::PullRequest>>(&url, conditional)
                .await?
            {
                Fetched::NotModified => break,
                Fetched::Fresh { value, .. } => value,
            };
            if first {
                first_etag = page.etag.clone();
            }
            first = false;
            let mut older = false;
            for pr in page.items {
                let updated = pr.updated_at.clone().unwrap_or_default();
                if newest.as_deref().is_none_or(|n| updated.as_str() > n) {
                    newest = Some(updated.clone());
                }
                let before_cursor = cursor.as_deref().is_some_and(|c| updated.as_str() <= c);
                if pr.merged_at.is_none() {
                    older |= before_cursor;
                    continue;
                }
                if self.source.revert_prs_as_failures && map::is_revert(&pr) && !before_cursor {
                    self.revert_incident(&pr, &by_sha);
                }
                if let Some(sha) = pr.merge_commit_sha.clone()
                    && wanted.contains(&sha)
                    && !by_sha.contains_key(&sha)
                {
                    unmatched -= 1;
                    by_sha.insert(sha, pr);
                }
                older |= before_cursor;
            }
            // Older pages hold PRs seen before; read on only while changes are unmatched.
            next = if older && unmatched == 0 {
                None
            } else {
                page.next
            };
        }
        if first_etag.is_some() {
            self.save_state("pulls", newest, first_etag);
        }
        let mut details: HashMap<u64, (Option<i64>, Option<i64>)> = HashMap::new();
        let mut shas: Vec<String> = wanted.into_iter().collect();
        shas.sort();
        for sha in shas {
            let pr = match by_sha.get(&sha) {
                Some(pr) => Some(pr.clone()),
                None => {
                    let url = self
                        .client
                        .url(&format!("/repos/{}/commits/{sha}/pulls", self.repo));
                    let prs: Vec<api::PullRequest> = self.client.get_all(&url).await?;
                    let merged: Vec<api::PullRequest> =
                        prs.into_iter().filter(|p| p.merged_at.is_some()).collect();
                    merged
                        .iter()
                        .find(|p| p.merge_commit_sha.as_deref() == Some(sha.as_str()))
                        .or(merged.first())
                        .cloned()
                }
            };
            let Some(pr) = pr else {
                // Pushed without a pull request: recorded as looked up.
                self.collector.change(ChangeRow {
                    committed_at: self.commits.get(&sha).and_then(|c| c.1),
                    ..ChangeRow::minimal(map::SOURCE, self.repo, &sha)
                });
                continue;
            };
            if !details.contains_key(&pr.number) {
                let found = self.pr_details(&pr).await?;
                details.insert(pr.number, found);
                self.report.pull_requests += 1;
            }
            let (first_commit, first_review) = details.get(&pr.number).copied().unwrap_or_default();
            let mut labels: Vec<String> = pr.labels.iter().map(|l| l.name.clone()).collect();
            labels.sort();
            self.collector.change(ChangeRow {
                pr_number: i64::try_from(pr.number).ok(),
                pr_first_commit_at: first_commit,
                pr_opened_at: map::micros(&pr.created_at),
                pr_first_review_at: first_review,
                pr_merged_at: pr.merged_at.as_deref().and_then(map::micros),
                pr_head_branch: pr.head.git_ref.clone(),
                labels: Some(labels),
                incident_refs: Some(map::incident_refs(&pr, &self.incident_issues)),
                ..ChangeRow::minimal(map::SOURCE, self.repo, &sha)
            });
        }
        self.report.changes = self.collector.change_shas().len() as u64;
        Ok(())
    }

    /// A PR's first commit (its commits' earliest author time) and first review by someone other
    /// than its author, bots and excluded reviewers left out.
    async fn pr_details(
        &mut self,
        pr: &api::PullRequest,
    ) -> Result<(Option<i64>, Option<i64>), HttpError> {
        let url = self.client.url(&format!(
            "/repos/{}/pulls/{}/commits?per_page=100",
            self.repo, pr.number
        ));
        let commits: Vec<api::Commit> = self.client.get_all(&url).await?;
        let first_commit = commits
            .iter()
            .filter_map(|c| {
                c.commit
                    .author
                    .as_ref()
                    .and_then(|a| a.date.as_deref())
                    .and_then(map::micros)
            })
            .min();
        let url = self.client.url(&format!(
            "/repos/{}/pulls/{}/reviews?per_page=100",
            self.repo, pr.number
        ));
        let reviews: Vec<api::Review> = self.client.get_all(&url).await?;
        let author = pr
            .user
            .as_ref()
            .map(|u| u.login.as_str())
            .unwrap_or_default();
        let first_review = reviews
            .iter()
            .filter(|r| r.state.as_deref() != Some("PENDING"))
            .filter(|r| {
                r.user.as_ref().is_some_and(|u| {
                    u.login != author
                        && u.kind.as_deref() != Some("Bot")
                        && !u.login.ends_with("[bot]")
                        && !self
                            .source
                            .exclude_reviewers
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(&u.login))
                })
            })
            .filter_map(|r| r.submitted_at.as_deref().and_then(map::micros))
            .min();
        Ok((first_commit, first_review))
    }

    /// A merged revert PR as an incident: from its opening to its merge, caused by the commit it
    /// reverts (named in its body, else the reverted PR's merge commit).
    fn revert_incident(
        &mut self,
        pr: &api::PullRequest,
        by_sha: &HashMap<String, api::PullRequest>,
    ) {
        let sha = map::reverted_sha(pr).or_else(|| {
            let number = map::reverted_number(pr)?;
            by_sha
                .values()
                .find(|p| p.number == number)
                .and_then(|p| p.merge_commit_sha.clone())
        });
        let Some(started_at) = map::micros(&pr.created_at) else {
            return;
        };
        self.collector.incident(IncidentRow {
            incident_id: key(self.repo, "revert", pr.number),
            source: map::SOURCE.to_owned(),
            service: self.default_service.clone(),
            title: pr.title.clone(),
            severity: None,
            started_at,
            resolved_at: pr.merged_at.as_deref().and_then(map::micros),
            caused_by_deployment_id: None,
            caused_by_sha: sha,
            url: None,
        });
        self.report.incidents += 1;
    }
}

/// Percent-encodes a query or path value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The newest id among `fresh` items and the cursor's.
fn newest_id<I>(fresh: &[(u64, I)], max_id: u64) -> u64 {
    fresh
        .iter()
        .map(|(id, _)| *id)
        .max()
        .unwrap_or(0)
        .max(max_id)
}
