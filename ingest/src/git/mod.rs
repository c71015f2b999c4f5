//! `doracost ingest git --repo PATH…`: commit history from local clones, free of API limits.
//!
//! For each repository it writes
//! - a `changes` row per commit not yet in the lake with its times and paths (`authored_at`,
//!   `committed_at`, `paths`; PR fields are left null, and the lake's merge of `changes` never
//!   lets a null erase what another source wrote, so GitHub's PR data stays);
//! - for each deployment of the repository whose source named only its head commit
//!   (`commits_listed = false`: CI webhooks, DevLake payloads), the changes it shipped:
//!   the commits reachable from its head and not from the head of the previous successful
//!   deployment of the same service and environment (all commits reachable from its head for the
//!   first one), as `deployment_changes` rows, and the deployment is marked `commits_listed`.
//!   For a service mapped to path prefixes (a monorepo), only commits touching its paths, or no
//!   mapped path at all, are its changes (DESIGN §4 "Service attribution");
//! - its cursor in `ingest_state` (source `git`, scope the repo's name): the references' tips.
//!
//! Repositories are read, then written in groups of about [`GROUP_COMMITS`] commits, each group
//! one unit of the lake: a killed run leaves whole repositories or none, and the next run writes
//! only what is missing. A run over an unchanged repository writes nothing.

pub mod history;
pub(crate) mod ranges;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field};
use chrono::Utc;
use model::config::ServiceConfig;
use model::{Lake, LakeError, LakeState, Table, TableWrite, WriteOutcome};

use crate::IngestError;
use crate::events::rows::{ChangeRow, Collector, change_id};
use crate::pipeline::PipelineError;

/// Commits read before a group of repositories is written (bounds memory; one unit each).
pub const GROUP_COMMITS: usize = 500_000;

/// The source name written in `source` and `ingest_state`.
pub const SOURCE: &str = "git";

/// A repository to read: where, and its name in the lake (`owner/name`, as deployments name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRepo {
    /// The clone's folder, its `.git`, or a bare repository.
    pub path: PathBuf,
    /// `owner/name`.
    pub name: String,
}

impl GitRepo {
    /// `PATH` or `PATH=OWNER/NAME`. Without a name: the `origin` remote's URL's last two
    /// segments, else the path's (a trailing `.git` dropped), e.g. `git/acme/shop.git` →
    /// `acme/shop`.
    pub fn parse(text: &str) -> Result<GitRepo, IngestError> {
        if let Some((path, name)) = text.rsplit_once('=')
            && name.split('/').count() == 2
            && !name.starts_with('/')
        {
            return Ok(GitRepo {
                path: PathBuf::from(path),
                name: name.to_owned(),
            });
        }
        let path = PathBuf::from(text);
        let repo = history::open(&path)?;
        let origin = repo
            .config_snapshot()
            .string("remote.origin.url")
            .map(|url| url.to_string());
        let from_origin = origin.as_deref().and_then(|url| last_two(url, &['/', ':']));
        let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let from_path = last_two(&absolute.to_string_lossy(), &['/']);
        let name = from_origin.or(from_path).ok_or_else(|| {
            IngestError::invalid(
                &path,
                None,
                None,
                "cannot tell the repository's name: give it as PATH=OWNER/NAME",
            )
        })?;
        Ok(GitRepo { path, name })
    }
}

/// `owner/name` from the last two segments of a URL or path, `.git` (a suffix or a last
/// segment of its own) dropped.
fn last_two(text: &str, separators: &[char]) -> Option<String> {
    let trimmed = text.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/.git").unwrap_or(trimmed);
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    let mut parts = trimmed
        .rsplit(|c| separators.contains(&c))
        .filter(|p| !p.is_empty());
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(format!("{owner}/{name}"))
}

/// What `ingest git` did to one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepoReport {
    /// `owner/name`.
    pub repo: String,
    /// Commits reachable from its references.
    pub commits: u64,
    /// Commits whose paths were read now (not in the lake with times and paths before).
    pub commits_read: u64,
    /// Deployments whose shipped changes were filled from the history.
    pub deployments_filled: u64,
    /// (deployment, change) links written for them.
    pub changes_linked: u64,
    /// Deployments naming only a head commit the repository does not have (left as they were).
    pub heads_missing: u64,
}

/// What one `ingest git` did.
#[derive(Debug, Clone, Default)]
pub struct GitSummary {
    /// Per repository, in the order given.
    pub repos: Vec<RepoReport>,
    /// What each table received (all groups).
    pub outcomes: Vec<WriteOutcome>,
    /// Seconds spent reading the repositories (graph and paths), for the commits/s figure.
    pub read_seconds: f64,
}

/// One repository read, waiting to be written.
struct ReadRepo {
    name: String,
    history: history::History,
    /// Paths of every commit: read now, or as the lake had them.
    paths: Vec<Option<Vec<String>>>,
    /// Commits to write to `changes` (indexes into the history).
    fresh: Vec<u32>,
    report: RepoReport,
}

/// Reads `repos` and writes what they add (see the module's documentation). `services` are the
/// config's, for path attribution in monorepos; `threads` diff commits in parallel.
pub async fn ingest_git(
    lake: &Lake,
    repos: &[GitRepo],
    services: &[ServiceConfig],
    threads: usize,
    mut progress: impl FnMut(&RepoReport) + Send,
) -> Result<GitSummary, PipelineError> {
    let mut summary = GitSummary::default();
    let mut group: Vec<ReadRepo> = Vec::new();
    let mut group_commits = 0;
    for repo in repos {
        let state = current_state(lake).await?;
        let known = known_changes(lake, &state, &repo.name).await?;
        let started = std::time::Instant::now();
        let (path, name) = (repo.path.clone(), repo.name.clone());
        let read = tokio::task::spawn_blocking(move || read_repo(&path, name, &known, threads))
            .await
            .map_err(|e| {
                IngestError::invalid(&repo.path, None, None, format!("the reader stopped: {e}"))
            })??;
        summary.read_seconds += started.elapsed().as_secs_f64();
        group_commits += read.history.commits.len();
        group.push(read);
        if group_commits >= GROUP_COMMITS {
            write_group(
                lake,
                std::mem::take(&mut group),
                services,
                &mut summary,
                &mut progress,
            )
            .await?;
            group_commits = 0;
        }
    }
    if !group.is_empty() {
        write_group(lake, group, services, &mut summary, &mut progress).await?;
    }
    Ok(summary)
}

async fn current_state(lake: &Lake) -> Result<LakeState, LakeError> {
    match lake.state().await {
        Ok(state) => Ok(state),
        Err(LakeError::NoLake { .. }) => Ok(LakeState {
            tables: Default::default(),
            log_version: None,
        }),
        Err(error) => Err(error),
    }
}

/// The repo's commits the lake already has with their commit time and paths (sha → paths).
async fn known_changes(
    lake: &Lake,
    state: &LakeState,
    repo: &str,
) -> Result<HashMap<String, Vec<String>>, LakeError> {
    let batches = lake
        .read_table_where(
            state,
            Table::Changes,
            &["sha", "committed_at", "paths"],
            "repo",
            &[repo.to_owned()],
        )
        .await?;
    let mut known = HashMap::new();
    for batch in &batches {
        let text = |name: &str| utf8_column(batch, name);
        let (sha, at) = (text("sha")?, batch.column_by_name("committed_at"));
        let paths = batch
            .column_by_name("paths")
            .map(|c| {
                arrow::compute::cast(
                    c,
                    &DataType::List(std::sync::Arc::new(Field::new_list_field(
                        DataType::Utf8,
                        true,
                    ))),
                )
            })
            .transpose()
            .map_err(|e| schema_error(Table::Changes, e))?;
        let (Some(at), Some(paths)) = (at, paths) else {
            continue;
        };
        let paths = paths.as_list::<i32>();
        for row in 0..batch.num_rows() {
            if sha.is_null(row) || at.is_null(row) || paths.is_null(row) {
                continue;
            }
            let list = paths.value(row);
            let list = list.as_string::<i32>();
            let paths = (0..list.len())
                .filter(|&i| !list.is_null(i))
                .map(|i| list.value(i).to_owned())
                .collect();
            known.insert(sha.value(row).to_owned(), paths);
        }
    }
    Ok(known)
}

fn read_repo(
    path: &Path,
    name: String,
    known: &HashMap<String, Vec<String>>,
    threads: usize,
) -> Result<ReadRepo, IngestError> {
    let history = history::read(path)?;
    let mut paths: Vec<Option<Vec<String>>> = vec![None; history.commits.len()];
    let mut fresh = Vec::new();
    for (at, commit) in history.commits.iter().enumerate() {
        match known.get(&commit.id.to_string()) {
            Some(listed) => paths[at] = Some(listed.clone()),
            None => fresh.push(at as u32),
        }
    }
    // Diffed in commit order: a commit's parent's trees are then the ones just read.
    let mut order = fresh.clone();
    order.sort_by_key(|&at| std::cmp::Reverse(at));
    let touched = history::touched_paths(path, &history, &order, threads)?;
    for (at, list) in order.iter().zip(touched) {
        paths[*at as usize] = Some(list);
    }
    let report = RepoReport {
        repo: name.clone(),
        commits: history.commits.len() as u64,
        commits_read: fresh.len() as u64,
        ..RepoReport::default()
    };
    Ok(ReadRepo {
        name,
        history,
        paths,
        fresh,
        report,
    })
}

/// Writes a group of repositories as one unit: under the lake's lock, their deployments are read
/// and completed, and everything lands together.
async fn write_group(
    lake: &Lake,
    group: Vec<ReadRepo>,
    services: &[ServiceConfig],
    summary: &mut GitSummary,
    progress: &mut (impl FnMut(&RepoReport) + Send),
) -> Result<(), PipelineError> {
    let names: Vec<String> = group.iter().map(|r| r.name.clone()).collect();
    let at = Utc::now();
    let ingested_at = at.timestamp_micros();
    let (reports, outcomes) = lake
        .transact("ingest git", |state| async move {
            let deployments = lake
                .read_table_where(&state, Table::Deployments, &[], "repo", &names)
                .await?;
            let mut collector = Collector::default();
            let mut filled_ids: HashSet<String> = HashSet::new();
            let mut reports = Vec::new();
            let mut states = Vec::new();
            for mut read in group {
                for &at in &read.fresh {
                    let commit = &read.history.commits[at as usize];
                    collector.change(ChangeRow {
                        change_id: change_id(&read.name, &commit.id.to_string()),
                        source: SOURCE.to_owned(),
                        repo: read.name.clone(),
                        sha: commit.id.to_string(),
                        authored_at: Some(commit.authored_at * 1_000_000),
                        committed_at: Some(commit.committed_at * 1_000_000),
                        paths: read.paths[at as usize].clone(),
                        ..ChangeRow::default()
                    });
                }
                let filled = ranges::fill(&read, &deployments, services)
                    .map_err(|message| LakeError::Input { message })?;
                read.report.deployments_filled = filled.deployments.len() as u64;
                read.report.heads_missing = filled.heads_missing;
                for (deployment, commits) in filled.deployments {
                    for at in commits {
                        let sha = read.history.commits[at as usize].id.to_string();
                        let index = collector.change(ChangeRow::minimal(SOURCE, &read.name, &sha));
                        collector.link(deployment.clone(), index, SOURCE.to_owned());
                        read.report.changes_linked += 1;
                    }
                    filled_ids.insert(deployment);
                }
                states.push((read.name.clone(), read.history.tips.join("\n")));
                reports.push(read.report);
            }
            let batches = collector
                .finish(ingested_at)
                .map_err(|e| LakeError::Input {
                    message: e.to_string(),
                })?;
            let (mut writes, _) = crate::pipeline::nonempty_event_writes(batches);
            let listed = mark_listed(&deployments, &filled_ids, ingested_at)
                .map_err(|message| LakeError::Input { message })?;
            if !listed.is_empty() {
                writes.push(TableWrite::Upsert {
                    table: Table::Deployments,
                    batches: listed,
                });
            }
            // The cursor changes only when something else does, so a run over unchanged
            // repositories writes nothing at all.
            if !writes.is_empty() {
                writes.push(crate::state::upsert(
                    SOURCE,
                    states
                        .iter()
                        .map(|(scope, cursor)| (scope.as_str(), Some(cursor.as_str()), None)),
                    at,
                )?);
            }
            Ok((reports, writes))
        })
        .await?;
    for report in &reports {
        progress(report);
    }
    summary.repos.extend(reports);
    merge_outcomes(&mut summary.outcomes, outcomes);
    Ok(())
}

/// The rows of the deployments in `ids`, `commits_listed` now true and `ingested_at` now.
fn mark_listed(
    batches: &[RecordBatch],
    ids: &HashSet<String>,
    ingested_at: i64,
) -> Result<Vec<RecordBatch>, String> {
    let mut out = Vec::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for batch in batches {
        let id = utf8_column(batch, "deployment_id").map_err(|e| e.to_string())?;
        let keep = BooleanArray::from(
            (0..batch.num_rows())
                .map(|row| ids.contains(id.value(row)))
                .collect::<Vec<_>>(),
        );
        let picked =
            arrow::compute::filter_record_batch(batch, &keep).map_err(|e| e.to_string())?;
        if picked.num_rows() == 0 {
            continue;
        }
        // In the table's own schema (the reader may hand `Utf8View`; an older table may lack a
        // column, read as null).
        let schema = model::schema::deployments();
        let rows = picked.num_rows();
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let column: arrow::array::ArrayRef = match field.name().as_str() {
                "commits_listed" => std::sync::Arc::new(BooleanArray::from(vec![true; rows])),
                "ingested_at" => std::sync::Arc::new(
                    arrow::array::TimestampMicrosecondArray::from(vec![ingested_at; rows])
                        .with_timezone("UTC"),
                ),
                name => match picked.column_by_name(name) {
                    Some(column) => arrow::compute::cast(column, field.data_type())
                        .map_err(|e| format!("deployments.{name}: {e}"))?,
                    None => arrow::array::new_null_array(field.data_type(), rows),
                },
            };
            columns.push(column);
        }
        out.push(RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn schema_error(table: Table, error: impl std::fmt::Display) -> LakeError {
    LakeError::Schema {
        table: table.name(),
        message: error.to_string(),
    }
}

/// A text column as plain `Utf8` (the lake's reader may hand `Utf8View`).
pub fn utf8_column(batch: &RecordBatch, name: &str) -> Result<StringArray, LakeError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| LakeError::Schema {
            table: "read",
            message: format!("column {name} is missing"),
        })?;
    let cast = arrow::compute::cast(column, &DataType::Utf8).map_err(|e| LakeError::Schema {
        table: "read",
        message: format!("column {name}: {e}"),
    })?;
    Ok(cast.as_string::<i32>().clone())
}

pub(crate) fn merge_outcomes(into: &mut Vec<WriteOutcome>, more: Vec<WriteOutcome>) {
    for outcome in more {
        match into.iter_mut().find(|o| o.table == outcome.table) {
            Some(existing) => {
                existing.rows_in += outcome.rows_in;
                existing.inserted += outcome.inserted;
                existing.updated += outcome.updated;
                existing.version = outcome.version;
            }
            None => into.push(outcome),
        }
    }
}
