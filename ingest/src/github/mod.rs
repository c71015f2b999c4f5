//! `doracost ingest github`: deployments, the changes they shipped, pull requests and incidents
//! from GitHub's REST API (GitHub.com or Enterprise), through octocrab.
//!
//! Per repository (`[sources.github]`): its deploy signal (the deployments API, a deploy
//! workflow's runs, or releases), each new finished deployment's shipped commits (the compare
//! API between the previous successful deployment of its service and environment and its head,
//! paged past 250 commits; every commit up to its head for the first), each commit's times and
//! files (monorepo attribution), the pull request behind each new commit (by merge commit in the
//! closed-PR list, else `commits/{sha}/pulls` for squash and rebase merges) with its first commit
//! and first review by someone other than its author, and incident issues. Everything is
//! incremental: each list's ETag and cursor are kept in `ingest_state` (source `github`, scope
//! `{repo}:{list}`), so an unchanged repository costs only 304s (which GitHub does not count
//! against the rate limit) and writes nothing. Each repository lands as one unit with its
//! cursors: a killed run resumes at the first repository not written.

pub mod api;
pub mod client;
pub mod map;
pub mod repo;
pub mod webhook;

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::Utc;
use model::config::ServiceConfig;
use model::config::github::GithubSource;
use model::{Lake, LakeError, LakeState, Table, WriteOutcome};

use crate::git::utf8_column;
use crate::http::{HttpError, RequestStats};
pub use client::Client;
pub use repo::RepoReport;

/// Why `ingest github` stopped.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// A request failed for good (the error names the route and what to do).
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The client could not be set up.
    #[error("{0}")]
    Client(#[from] client::ClientError),
    /// The lake refused the write (that repository's tables were restored).
    #[error("{0}")]
    Lake(#[from] LakeError),
}

/// What one `ingest github` did.
#[derive(Debug, Clone, Default)]
pub struct GithubSummary {
    /// Per repository, in order.
    pub repos: Vec<RepoReport>,
    /// Requests, 304s, retries and waits.
    pub requests: RequestStats,
    /// What each table received.
    pub outcomes: Vec<WriteOutcome>,
}

/// Reads `repos` from GitHub with `client` and writes each to the lake as one unit.
pub async fn ingest_github(
    lake: &Lake,
    client: &mut Client,
    source: &GithubSource,
    services: &[ServiceConfig],
    repos: &[String],
    mut progress: impl FnMut(&RepoReport, &RequestStats) + Send,
) -> Result<GithubSummary, GithubError> {
    let mut summary = GithubSummary::default();
    for name in repos {
        let state = match lake.state().await {
            Ok(state) => state,
            Err(LakeError::NoLake { .. }) => LakeState {
                tables: Default::default(),
                log_version: None,
            },
            Err(error) => return Err(error.into()),
        };
        let known = known(lake, &state, name).await?;
        let run = repo::RepoRun::new(client, source, services, name, known);
        let output = match run.run().await {
            Ok(output) => output,
            Err(error) => {
                summary.requests = client.stats();
                return Err(error.into());
            }
        };
        let at = Utc::now();
        let batches = output
            .collector
            .finish(at.timestamp_micros())
            .map_err(|e| LakeError::Input {
                message: e.to_string(),
            })?;
        let (mut writes, _) = crate::pipeline::nonempty_event_writes(batches);
        if !output.states.is_empty() {
            writes.push(crate::state::upsert(
                map::SOURCE,
                output.states.iter().map(|(scope, cursor, etag)| {
                    (scope.as_str(), cursor.as_deref(), etag.as_deref())
                }),
                at,
            )?);
        }
        if !writes.is_empty() {
            let outcomes = lake.apply("ingest github", writes).await?;
            crate::git::merge_outcomes(&mut summary.outcomes, outcomes);
        }
        summary.requests = client.stats();
        progress(&output.report, &summary.requests);
        summary.repos.push(output.report);
    }
    summary.requests = client.stats();
    Ok(summary)
}

/// What the lake holds of `repo` for this source.
async fn known(lake: &Lake, state: &LakeState, repo: &str) -> Result<repo::Known, LakeError> {
    let mut known = repo::Known::default();
    let names = [repo.to_owned()];
    let prefix = format!("{}:{repo}:", map::SOURCE);
    for batch in lake
        .read_table_where(state, Table::Deployments, &[], "repo", &names)
        .await?
    {
        let (id, service, environment, head, status) = (
            utf8_column(&batch, "deployment_id")?,
            utf8_column(&batch, "service")?,
            utf8_column(&batch, "environment")?,
            utf8_column(&batch, "commit_sha")?,
            utf8_column(&batch, "status")?,
        );
        let time = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>().cloned())
        };
        let (started, finished) = (time("started_at"), time("finished_at"));
        let at = |row: usize| {
            [&started, &finished]
                .into_iter()
                .flatten()
                .find(|t| !t.is_null(row))
                .map(|t| t.value(row))
        };
        for row in 0..batch.num_rows() {
            if !id.value(row).starts_with(&prefix) {
                continue;
            }
            let text =
                |a: &arrow::array::StringArray| (!a.is_null(row)).then(|| a.value(row).to_owned());
            known.deployments.insert(
                id.value(row).to_owned(),
                repo::KnownDeployment {
                    service: text(&service),
                    environment: text(&environment).unwrap_or_default().to_lowercase(),
                    head: text(&head),
                    at: at(row),
                    success: text(&status).as_deref() == Some("success"),
                },
            );
        }
    }
    for batch in lake
        .read_table_where(
            state,
            Table::Changes,
            &["sha", "source", "committed_at", "paths", "pr_number"],
            "repo",
            &names,
        )
        .await?
    {
        changes_known(&batch, &mut known)?;
    }
    for batch in lake
        .read_table_where(
            state,
            Table::IngestState,
            &[],
            "source",
            &[map::SOURCE.to_owned()],
        )
        .await?
    {
        let (scope, cursor, etag) = (
            utf8_column(&batch, "scope")?,
            utf8_column(&batch, "cursor")?,
            utf8_column(&batch, "etag")?,
        );
        for row in 0..batch.num_rows() {
            let text =
                |a: &arrow::array::StringArray| (!a.is_null(row)).then(|| a.value(row).to_owned());
            known
                .state
                .insert(scope.value(row).to_owned(), (text(&cursor), text(&etag)));
        }
    }
    Ok(known)
}

fn changes_known(batch: &RecordBatch, known: &mut repo::Known) -> Result<(), LakeError> {
    let (sha, source) = (utf8_column(batch, "sha")?, utf8_column(batch, "source")?);
    let at = batch.column_by_name("committed_at").cloned();
    let pr = batch.column_by_name("pr_number").cloned();
    let paths = batch
        .column_by_name("paths")
        .map(|c| {
            arrow::compute::cast(
                c,
                &arrow::datatypes::DataType::List(std::sync::Arc::new(
                    arrow::datatypes::Field::new_list_field(arrow::datatypes::DataType::Utf8, true),
                )),
            )
        })
        .transpose()
        .map_err(|e| LakeError::Schema {
            table: "changes",
            message: e.to_string(),
        })?;
    let mut by_sha: HashMap<String, Vec<String>> = HashMap::new();
    for row in 0..batch.num_rows() {
        let sha_value = sha.value(row).to_owned();
        let timed = at.as_ref().is_some_and(|a| !a.is_null(row));
        if let Some(paths) = &paths
            && timed
            && !paths.is_null(row)
        {
            let list = paths.as_list::<i32>().value(row);
            let list = list.as_string::<i32>();
            by_sha.insert(
                sha_value.clone(),
                (0..list.len()).map(|i| list.value(i).to_owned()).collect(),
            );
        }
        let has_pr = pr.as_ref().is_some_and(|p| !p.is_null(row));
        if has_pr || (timed && !source.is_null(row) && source.value(row) == map::SOURCE) {
            known.pr_done.insert(sha_value);
        }
    }
    known.paths.extend(by_sha);
    Ok(())
}
