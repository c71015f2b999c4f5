//! Apache DevLake webhook payloads (the `webhook` plugin), so pipelines already posting to DevLake
//! can post the same JSON here.
//!
//! Shapes, from DevLake's own source and docs (<https://devlake.apache.org/docs/Plugins/webhook/>,
//! `backend/plugins/webhook/api/{deployments,issues}.go` in apache/incubator-devlake):
//! - deployments, v0.14–v0.x: snake_case `commit_sha`, `repo_url`, `ref_name`, `start_time`,
//!   `end_time`, `environment`, `result`, optional `pipeline_id`, and `deployment_commits` (each
//!   `repo_url`, `commit_sha`, `ref_name`) for one deployment across several repos;
//! - deployments, v1.0+: `id`, `displayTitle`, `result`, `environment`, `createdDate`,
//!   `startedDate`, `finishedDate`, `deploymentCommits` (each `repoUrl`, `commitSha`, `refName`,
//!   `result`, `startedDate`, `finishedDate`);
//! - issues: `issueKey`, `title`, `type` (an incident when `INCIDENT`), `status` (`TODO`,
//!   `IN_PROGRESS`, `DONE`), `createdDate`, `resolutionDate`, `updatedDate`, `url`, `severity`,
//!   `priority`, `component` (older docs spell them snake_case: `issue_key`, `created_date`, …).
//!
//! Every deployed commit is a `deployments` row of its repo that names only its head commit, so
//! `commits_listed` is false (docs/events.md). A payload listing several repos' commits is one
//! deployment: its rows share `deployment_group`, and the views count them once per service.

use std::borrow::Cow;

use super::json::Json;
use chrono::{DateTime, SecondsFormat};

use super::fields::{Fields, describe};
use super::rows::{
    ChangeRow, Collector, DeploymentRow, IncidentRow, Status, deployment_id, incident_id,
};
use crate::error::IngestError;

/// The source that qualifies DevLake keys unless the payload names one.
const DEVLAKE_SOURCE: &str = "devlake";

const COMMITS: &[&str] = &["deploymentCommits", "deployment_commits"];
const ISSUE_KEY: &[&str] = &["issueKey", "issue_key"];

/// Which DevLake payload a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Deployment,
    Issue,
}

/// The DevLake shape of a record, if it has one. An issue is told by its key (its `type` is the
/// issue type, not ours); a deployment by its commits, and only when no generic `type` says
/// otherwise (`typed_by_context`: the surrounding array or CSV header already named the kind).
pub(super) fn shape_of(fields: &Fields<'_, '_>, typed_by_context: bool) -> Option<Shape> {
    if ISSUE_KEY.iter().any(|k| fields.has(k)) {
        return Some(Shape::Issue);
    }
    let untyped = typed_by_context || !fields.has("type");
    let deployment = COMMITS.iter().any(|k| fields.has(k))
        || (fields.has("repo_url") && fields.has("commit_sha"))
        || (fields.has("repoUrl") && fields.has("commitSha"));
    (untyped && deployment).then_some(Shape::Deployment)
}

/// Reads a DevLake payload of `shape`.
pub(super) fn read(
    fields: &Fields<'_, '_>,
    shape: Shape,
    out: &mut Collector,
    ingested_at: i64,
) -> Result<(), IngestError> {
    match shape {
        Shape::Deployment => read_deployment(
            &Fields {
                kind: "DevLake deployment",
                ..*fields
            },
            out,
            ingested_at,
        ),
        Shape::Issue => read_issue(
            &Fields {
                kind: "DevLake issue",
                ..*fields
            },
            out,
        ),
    }
}

/// `owner/name` from a repo URL: `https://github.com/acme/shop(.git)` and
/// `git@github.com:acme/shop.git` give `acme/shop`; other hosts keep their whole path (GitLab
/// groups nest); text that is not a URL is kept as it is.
pub(super) fn repo_from_url(url: &str) -> String {
    let url = url.trim();
    let (host, path) = if let Some((_, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        (authority.rsplit('@').next().unwrap_or(authority), path)
    } else if let Some((user_host, path)) = url
        .split_once(':')
        .filter(|(h, _)| h.contains('@') && !h.contains('/'))
    {
        (user_host.rsplit('@').next().unwrap_or(user_host), path)
    } else {
        return url.trim_matches('/').trim_end_matches(".git").to_owned();
    };
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let host = host.split(':').next().unwrap_or(host);
    let repo =
        if host.eq_ignore_ascii_case("github.com") || host.eq_ignore_ascii_case("www.github.com") {
            // `…/acme/shop/tree/main` is still the repo `acme/shop`.
            let mut parts = path.splitn(3, '/');
            match (parts.next(), parts.next()) {
                (Some(owner), Some(name)) => {
                    format!("{owner}/{}", name.strip_suffix(".git").unwrap_or(name))
                }
                _ => path.to_owned(),
            }
        } else {
            path.to_owned()
        };
    if repo.is_empty() {
        url.to_owned()
    } else {
        repo
    }
}

fn result(fields: &Fields<'_, '_>, key: &str, text: &str) -> Result<Status, IngestError> {
    match text.to_ascii_uppercase().as_str() {
        "SUCCESS" => Ok(Status::Success),
        "FAILURE" => Ok(Status::Failure),
        "ABORT" | "ABORTED" => Ok(Status::Cancelled),
        "MANUAL" => Err(fields.error(
            key,
            "expected SUCCESS, FAILURE or ABORT, found \"MANUAL\" (a deployment waiting on a manual \
             step has not finished; post it again once it has a result)",
        )),
        _ => Status::parse(text).ok_or_else(|| {
            fields.error(key, format!("expected SUCCESS, FAILURE or ABORT, found {text:?}"))
        }),
    }
}

fn opt_result(fields: &Fields<'_, '_>) -> Result<Option<Status>, IngestError> {
    fields
        .opt_str("result")?
        .map(|text| result(fields, "result", text))
        .transpose()
}

/// One deployed commit of a DevLake deployment.
struct DeployedCommit<'a> {
    repo: String,
    sha: &'a str,
    git_ref: Option<&'a str>,
    status: Option<Status>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

fn deployed_commit<'a>(fields: &Fields<'a, '_>) -> Result<DeployedCommit<'a>, IngestError> {
    const SHA: &[&str] = &["commitSha", "commit_sha"];
    const REPO: &[&str] = &["repoUrl", "repo_url"];
    let sha = fields
        .opt_str_any(SHA)?
        .ok_or_else(|| fields.missing(SHA))?;
    let repo_url = fields
        .opt_str_any(REPO)?
        .ok_or_else(|| fields.missing(REPO))?;
    Ok(DeployedCommit {
        repo: repo_from_url(repo_url),
        sha,
        git_ref: fields.opt_str_any(&["refName", "ref_name"])?,
        status: opt_result(fields)?,
        started_at: fields.opt_ts_any(&["startedDate", "start_time"])?,
        finished_at: fields.opt_ts_any(&["finishedDate", "end_time"])?,
    })
}

fn read_deployment(
    fields: &Fields<'_, '_>,
    out: &mut Collector,
    ingested_at: i64,
) -> Result<(), IngestError> {
    let source = fields.opt_str("source")?.unwrap_or(DEVLAKE_SOURCE);
    let id = fields.opt_id_any(&["id", "pipeline_id", "pipelineId"])?;
    // DevLake's defaults: PRODUCTION, SUCCESS, and the time it received the POST as end time.
    let environment = fields
        .opt_str("environment")?
        .map_or_else(|| "production".to_owned(), str::to_lowercase);
    let status = opt_result(fields)?;
    let started_at = fields.opt_ts_any(&["startedDate", "start_time"])?;
    let finished_at = fields.opt_ts_any(&["finishedDate", "end_time"])?;
    let service = fields.opt_str("service")?;
    let url = fields.opt_str("url")?;

    let mut commits = Vec::new();
    let listed = fields.get_any(COMMITS);
    if let Some((key, value)) = listed {
        let Json::Array(items) = value else {
            return Err(fields.error(
                key,
                format!(
                    "expected an array of deployment commits, found {}",
                    describe(value)
                ),
            ));
        };
        let list_place = fields.place.key(key);
        for (i, item) in items.iter().enumerate() {
            let item_place = list_place.index(i);
            let commit = Fields::new(item, &item_place, "DevLake deployment commit")?;
            commits.push(deployed_commit(&commit)?);
        }
    }
    if commits.is_empty() {
        if let Some((key, _)) =
            listed.filter(|_| !fields.has("commit_sha") && !fields.has("commitSha"))
        {
            return Err(fields.error(
                key,
                "expected at least one deployment commit, found an empty array",
            ));
        }
        commits.push(deployed_commit(fields)?);
    }

    let several = commits.len() > 1;
    let mut group = None;
    for commit in commits {
        let finished = commit.finished_at.or(finished_at);
        let local_id = match &id {
            // One deployment across repos: a row per repo (its head commit, its times), grouped
            // below as the one deployment they are.
            Some(id) if several => Cow::Owned(format!("{id}:{}", commit.repo)),
            Some(id) => Cow::Borrowed(id.as_ref()),
            // No id: derive a stable one, so re-posting the same payload changes nothing.
            None => {
                let when = finished
                    .or(commit.started_at)
                    .or(started_at)
                    .and_then(DateTime::from_timestamp_micros);
                match when {
                    Some(when) => Cow::Owned(format!(
                        "{}:{}:{}",
                        commit.repo,
                        commit.sha,
                        when.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                    )),
                    None => Cow::Owned(format!("{}:{}", commit.repo, commit.sha)),
                }
            }
        };
        // DevLake counts a deployment once however many repos it lists (its DORA dashboards
        // count distinct `cicd_deployment_id`s): the rows of one payload share its id (without
        // one, the first row's), and the views count them as one deployment of each service.
        if several && group.is_none() {
            group = Some(deployment_id(
                source,
                id.as_deref().unwrap_or(local_id.as_ref()),
            ));
        }
        let head = out.change(ChangeRow::minimal(source, &commit.repo, commit.sha));
        out.deployment(DeploymentRow {
            deployment_id: deployment_id(source, &local_id),
            source: source.to_owned(),
            service: service.map(str::to_owned),
            environment: environment.clone(),
            git_ref: commit.git_ref.map(str::to_owned),
            commit_sha: Some(commit.sha.to_owned()),
            started_at: commit.started_at.or(started_at),
            finished_at: Some(finished.unwrap_or(ingested_at)),
            status: commit.status.or(status).unwrap_or(Status::Success),
            is_rollback: false,
            url: url.map(str::to_owned),
            commits_listed: false,
            deployment_group: group.clone(),
            shipped: vec![head],
            repo: Some(commit.repo),
        });
    }
    Ok(())
}

fn read_issue(fields: &Fields<'_, '_>, out: &mut Collector) -> Result<(), IngestError> {
    let source = fields.opt_str("source")?.unwrap_or(DEVLAKE_SOURCE);
    let key = fields
        .opt_id_any(ISSUE_KEY)?
        .ok_or_else(|| fields.missing(ISSUE_KEY))?;
    let is_incident = fields
        .opt_str("type")?
        .is_some_and(|t| t.eq_ignore_ascii_case("INCIDENT"));
    if !is_incident {
        out.skipped_issues += 1;
        return Ok(());
    }
    let started_at = fields
        .opt_ts_any(&["createdDate", "created_date"])?
        .ok_or_else(|| fields.missing(&["createdDate", "created_date"]))?;
    let resolution = fields.opt_ts_any(&["resolutionDate", "resolution_date"])?;
    let resolved_at = match fields.opt_str("status")? {
        None => resolution,
        Some(status) => match status.to_ascii_uppercase().as_str() {
            "DONE" => match resolution {
                Some(at) => Some(at),
                None => fields.opt_ts_any(&["updatedDate", "updated_date"])?,
            },
            "TODO" | "IN_PROGRESS" => None,
            _ => {
                return Err(fields.error(
                    "status",
                    format!("expected TODO, IN_PROGRESS or DONE, found {status:?}"),
                ));
            }
        },
    };
    let severity = match fields.opt_id_any(&["severity"])? {
        Some(severity) => Some(severity),
        None => fields.opt_id_any(&["priority"])?,
    };
    out.incident(IncidentRow {
        incident_id: incident_id(source, &key),
        source: source.to_owned(),
        service: issue_service(fields)?,
        title: fields.opt_str("title")?.map(str::to_owned),
        severity: severity.map(Cow::into_owned),
        started_at,
        resolved_at,
        caused_by_deployment_id: None,
        caused_by_sha: None,
        url: fields.opt_str("url")?.map(str::to_owned),
    });
    Ok(())
}

/// `service`, else the issue's component (`components` list or `component`), else none.
fn issue_service(fields: &Fields<'_, '_>) -> Result<Option<String>, IngestError> {
    if let Some(service) = fields.opt_str("service")? {
        return Ok(Some(service.to_owned()));
    }
    let components = fields.opt_list("components")?.unwrap_or_default();
    if let Some(first) = components.into_iter().find(|c| !c.is_empty()) {
        return Ok(Some(first));
    }
    Ok(fields.opt_str("component")?.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_from_urls() {
        assert_eq!(repo_from_url("https://github.com/acme/shop"), "acme/shop");
        assert_eq!(repo_from_url("https://github.com/acme/shop/"), "acme/shop");
        assert_eq!(
            repo_from_url("https://github.com/acme/shop.git"),
            "acme/shop"
        );
        assert_eq!(
            repo_from_url("https://github.com/acme/shop/tree/main"),
            "acme/shop"
        );
        assert_eq!(repo_from_url("git@github.com:acme/shop.git"), "acme/shop");
        assert_eq!(
            repo_from_url("https://token@github.com/acme/shop"),
            "acme/shop"
        );
        assert_eq!(
            repo_from_url("https://gitlab.example.com/group/sub/proj.git"),
            "group/sub/proj"
        );
        assert_eq!(
            repo_from_url("ssh://git@gitlab.example.com:2222/group/proj"),
            "group/proj"
        );
        assert_eq!(repo_from_url("acme/shop"), "acme/shop");
        assert_eq!(repo_from_url("devlake"), "devlake");
    }
}
