//! A repo's deploy signal: deployments with their statuses, or GitHub Actions runs, or releases
//! (module docs of `writers::github` say which repo records what).

use serde_json::{Value, json};

use crate::delivery::{Deployment, Environment, Status};
use crate::writers::github::objects::{API, WEB, actions_bot, time};
use crate::writers::github::webhooks::{
    Deliveries, deployment_payload, deployment_status_payload, release_payload,
    workflow_run_payload,
};
use crate::writers::github::{DEPLOY_PRODUCTION, DEPLOY_STAGING, RepoSummary};

/// A ground-truth deployment with what GitHub objects need beside it.
pub struct Deploy<'a> {
    /// The deployment.
    pub deployment: &'a Deployment,
    /// Its service's name (`payload.service`).
    pub service: &'a str,
    /// The deployed head commit.
    pub sha: &'a str,
    /// The head commit's message (a run's `head_commit`).
    pub message: &'a str,
    /// The head commit's commit time.
    pub committed_at: i64,
}

fn environment(d: &Deployment) -> &'static str {
    match d.environment {
        Environment::Production => "production",
        Environment::Staging => "staging",
    }
}

/// The documented deployment object.
fn deployment_object(full_name: &str, deploy: &Deploy<'_>, updated_at: i64) -> Value {
    let d = deploy.deployment;
    let env = environment(d);
    let api = format!("{API}/repos/{full_name}");
    json!({
        "url": format!("{api}/deployments/{}", d.id),
        "id": d.id,
        "node_id": format!("DE_{}", d.id),
        "sha": deploy.sha,
        "ref": if d.is_rollback { deploy.sha } else { "main" },
        "task": "deploy",
        "payload": { "service": deploy.service, "rollback": d.is_rollback },
        "original_environment": env,
        "environment": env,
        "description": if d.is_rollback { format!("Roll back {}", deploy.service) } else { format!("Deploy {}", deploy.service) },
        "creator": actions_bot(),
        "created_at": time(d.started_at),
        "updated_at": time(updated_at),
        "statuses_url": format!("{api}/deployments/{}/statuses", d.id),
        "repository_url": api,
        "transient_environment": false,
        "production_environment": d.environment == Environment::Production,
    })
}

/// The statuses of one deployment, oldest first: `(state, at, description)`.
fn status_timeline(
    d: &Deployment,
    superseded_at: Option<i64>,
) -> Vec<(&'static str, i64, &'static str)> {
    let running = d.started_at + ((d.finished_at - d.started_at) / 2).min(30);
    let mut states = vec![
        ("queued", d.started_at, "Deployment queued"),
        ("in_progress", running, "Deployment started"),
    ];
    states.push(match d.status {
        Status::Success => ("success", d.finished_at, "Deployment finished successfully"),
        Status::Failure => ("failure", d.finished_at, "Deployment failed"),
        Status::Cancelled => ("inactive", d.finished_at, "Deployment cancelled"),
    });
    if let Some(at) = superseded_at {
        states.push(("inactive", at, "Superseded by a newer deployment"));
    }
    states
}

/// For each deployment (by position in `deploys`), when GitHub's `auto_inactive` marks it
/// `inactive`: the finish of the next successful deployment of the same environment in the repo.
///
/// docs.github.com/en/rest/deployments/statuses#create-a-deployment-status, `auto_inactive`:
/// "Adds a new inactive status to all prior non-transient, non-production environment
/// deployments with the same repository and environment name as the created status's
/// deployment. An inactive status is only added to deployments that had a success state.
/// Default: true"; production environments too since the 2018-10-16 deployments API update
/// (github.blog/changelog). A monorepo's services share the repo's environments, so one
/// service's deployment marks another's inactive: it stays a past success.
fn superseded(deploys: &[Deploy<'_>]) -> Vec<Option<i64>> {
    let mut out = vec![None; deploys.len()];
    for env in [Environment::Production, Environment::Staging] {
        let mut successes: Vec<usize> = (0..deploys.len())
            .filter(|&i| {
                let d = deploys[i].deployment;
                d.environment == env && d.status == Status::Success
            })
            .collect();
        successes.sort_by_key(|&i| (deploys[i].deployment.finished_at, deploys[i].deployment.id));
        for pair in successes.windows(2) {
            out[pair[0]] = Some(deploys[pair[1]].deployment.finished_at);
        }
    }
    out
}

/// Files of the deployments API: `deployments.json` (newest first) and each deployment's
/// `statuses.json` (newest first), as `(relative path, body)`.
pub fn deployments(
    full_name: &str,
    deploys: &[Deploy<'_>],
    auto_inactive: bool,
    hooks: &mut Deliveries,
    summary: &mut RepoSummary,
) -> Vec<(String, Value)> {
    let superseded_at = if auto_inactive {
        superseded(deploys)
    } else {
        vec![None; deploys.len()]
    };
    let mut files = Vec::new();
    let mut listed = Vec::new();
    for (deploy, superseded_at) in deploys.iter().zip(superseded_at) {
        let d = deploy.deployment;
        let timeline = status_timeline(d, superseded_at);
        let updated_at = timeline.last().map_or(d.started_at, |s| s.1);
        let object = deployment_object(full_name, deploy, updated_at);
        let api = format!("{API}/repos/{full_name}");
        let log_url = format!("{WEB}/{full_name}/actions/runs/{}", d.id);
        let mut statuses = Vec::new();
        for (k, (state, at, description)) in timeline.iter().enumerate() {
            let id = d.id * 10 + k as u64 + 1;
            let status = json!({
                "url": format!("{api}/deployments/{}/statuses/{id}", d.id),
                "id": id,
                "node_id": format!("DES_{id}"),
                "state": state,
                "creator": actions_bot(),
                "description": description,
                "environment": environment(d),
                "target_url": log_url,
                "created_at": time(*at),
                "updated_at": time(*at),
                "deployment_url": format!("{api}/deployments/{}", d.id),
                "repository_url": api,
                "environment_url": if *state == "success" { format!("https://{}.{}.acme.example", deploy.service, environment(d)) } else { String::new() },
                "log_url": log_url,
                "performed_via_github_app": null,
            });
            hooks.push(
                *at,
                "deployment_status",
                deployment_status_payload(&status, &object),
            );
            statuses.push(status);
        }
        let mut created = object.clone();
        created["updated_at"] = created["created_at"].clone();
        hooks.push(d.started_at, "deployment", deployment_payload(&created));
        summary.deployments += 1;
        summary.deployment_statuses += statuses.len() as u64;
        summary.superseded += u64::from(superseded_at.is_some());
        statuses.reverse();
        files.push((
            format!("deployments/{}/statuses.json", d.id),
            Value::Array(statuses),
        ));
        listed.push((d.started_at, d.id, object));
    }
    listed.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    files.push((
        "deployments.json".into(),
        Value::Array(listed.into_iter().map(|(_, _, o)| o).collect()),
    ));
    files
}

/// Workflow ids of a repo: `(Deploy production, Deploy staging, CI)`.
pub fn workflow_ids(repo_id: u64) -> (u64, u64, u64) {
    let base = 70_000_000 + (repo_id % 100_000) * 10;
    (base + 1, base + 2, base + 3)
}

/// What a workflow run is built from.
pub struct RunParts<'a> {
    /// `owner/name`.
    pub full_name: &'a str,
    /// Run id.
    pub id: u64,
    /// Workflow name.
    pub name: &'a str,
    /// Workflow file.
    pub path: &'a str,
    /// Workflow id.
    pub workflow_id: u64,
    /// Run number within the workflow.
    pub run_number: u64,
    /// Title shown in the UI.
    pub display_title: String,
    /// Triggering event.
    pub event: &'a str,
    /// `success`, `failure` or `cancelled`.
    pub conclusion: &'a str,
    /// The commit it ran on, and that commit's message.
    pub head: (&'a str, &'a str),
    /// Created, started, last updated (finished).
    pub times: (i64, i64, i64),
}

/// The documented workflow run object (completed).
pub fn run_object(p: RunParts<'_>) -> Value {
    let api = format!("{API}/repos/{}", p.full_name);
    json!({
        "id": p.id,
        "name": p.name,
        "node_id": format!("WFR_{}", p.id),
        "head_branch": "main",
        "head_sha": p.head.0,
        "path": p.path,
        "display_title": p.display_title,
        "run_number": p.run_number,
        "event": p.event,
        "status": "completed",
        "conclusion": p.conclusion,
        "workflow_id": p.workflow_id,
        "check_suite_id": p.id + 900_000_000_000,
        "url": format!("{api}/actions/runs/{}", p.id),
        "html_url": format!("{WEB}/{}/actions/runs/{}", p.full_name, p.id),
        "pull_requests": [],
        "created_at": time(p.times.0),
        "updated_at": time(p.times.2),
        "actor": actions_bot(),
        "triggering_actor": actions_bot(),
        "run_attempt": 1,
        "run_started_at": time(p.times.1),
        "jobs_url": format!("{api}/actions/runs/{}/jobs", p.id),
        "logs_url": format!("{api}/actions/runs/{}/logs", p.id),
        "workflow_url": format!("{api}/actions/workflows/{}", p.workflow_id),
        "head_commit": {
            "id": p.head.0,
            "message": p.head.1.trim_end_matches('\n'),
            "timestamp": time(p.times.0),
        },
    })
}

/// Deploy runs of `Deploy production` / `Deploy staging`, one per deployment (run id = the
/// deployment's id); with `webhooks` `requested`, `in_progress` and `completed` each.
pub fn deploy_runs(
    full_name: &str,
    repo_id: u64,
    deploys: &[Deploy<'_>],
    hooks: &mut Deliveries,
    summary: &mut RepoSummary,
) -> Vec<(i64, u64, Value)> {
    let (production, staging, _) = workflow_ids(repo_id);
    let mut numbers = [0_u64; 2];
    let mut runs = Vec::new();
    for deploy in deploys {
        let d = deploy.deployment;
        let prod = d.environment == Environment::Production;
        let slot = usize::from(!prod);
        numbers[slot] += 1;
        let sha7 = &deploy.sha[..7.min(deploy.sha.len())];
        let run = run_object(RunParts {
            full_name,
            id: d.id,
            name: if prod {
                DEPLOY_PRODUCTION
            } else {
                DEPLOY_STAGING
            },
            path: if prod {
                ".github/workflows/deploy-production.yml"
            } else {
                ".github/workflows/deploy-staging.yml"
            },
            workflow_id: if prod { production } else { staging },
            run_number: numbers[slot],
            display_title: if d.is_rollback {
                format!("Roll back {} to {sha7}", deploy.service)
            } else {
                format!("Deploy {} {sha7}", deploy.service)
            },
            event: "workflow_dispatch",
            conclusion: match d.status {
                Status::Success => "success",
                Status::Failure => "failure",
                Status::Cancelled => "cancelled",
            },
            head: (deploy.sha, deploy.message),
            times: (d.started_at, d.started_at, d.finished_at),
        });
        hooks.push(
            d.started_at,
            "workflow_run",
            workflow_run_payload("requested", &run, d.started_at),
        );
        hooks.push(
            d.started_at,
            "workflow_run",
            workflow_run_payload("in_progress", &run, d.started_at),
        );
        hooks.push(
            d.finished_at,
            "workflow_run",
            workflow_run_payload("completed", &run, d.finished_at),
        );
        summary.deploy_runs += 1;
        runs.push((d.started_at, d.id, run));
    }
    runs
}

/// Releases, one per successful production deployment, newest first (release id = deployment id,
/// `published_at` = its `finished_at`).
pub fn releases(
    full_name: &str,
    deploys: &[Deploy<'_>],
    hooks: &mut Deliveries,
    summary: &mut RepoSummary,
) -> Value {
    let api = format!("{API}/repos/{full_name}");
    let mut out = Vec::new();
    let mut minor = 0;
    for deploy in deploys {
        let d = deploy.deployment;
        if d.environment != Environment::Production || d.status != Status::Success {
            summary.deployments_not_visible += 1;
            continue;
        }
        minor += 1;
        let tag = format!("v1.{minor}.0");
        let sha7 = &deploy.sha[..7.min(deploy.sha.len())];
        let release = json!({
            "url": format!("{api}/releases/{}", d.id),
            "html_url": format!("{WEB}/{full_name}/releases/tag/{tag}"),
            "assets_url": format!("{api}/releases/{}/assets", d.id),
            "upload_url": format!("https://uploads.github.com/repos/{full_name}/releases/{}/assets{{?name,label}}", d.id),
            "tarball_url": format!("{api}/tarball/{tag}"),
            "zipball_url": format!("{api}/zipball/{tag}"),
            "id": d.id,
            "node_id": format!("RE_{}", d.id),
            "tag_name": tag,
            "target_commitish": deploy.sha,
            "name": tag,
            "draft": false,
            "prerelease": false,
            "immutable": false,
            // "created_at is the date of the commit used for the release, and not the date when
            // the release was drafted or published" (releases/releases#list-releases): a release
            // shows when the deployment finished, never when it started.
            "created_at": time(deploy.committed_at),
            "published_at": time(d.finished_at),
            "author": actions_bot(),
            "assets": [],
            "body": if d.is_rollback { format!("Roll back {} to {sha7}", deploy.service) } else { format!("Release {} {sha7}", deploy.service) },
        });
        hooks.push(d.finished_at, "release", release_payload(&release));
        summary.releases += 1;
        out.push((d.finished_at, d.id, release));
    }
    out.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    Value::Array(out.into_iter().map(|(_, _, r)| r).collect())
}
