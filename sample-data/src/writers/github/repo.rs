//! One repo's files: main's commits, then pull requests ([`pulls`]) and issues ([`issues`]), the
//! deploy signal, and the repo's webhook deliveries.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::GenerateError;
use crate::commits::{CommitIdentity, commit_identity};
use crate::delivery::RepoHistory;
use crate::org::Org;
use crate::writers::OutFile;
use crate::writers::github::deploys::{self, Deploy, RunParts, run_object, workflow_ids};
use crate::writers::github::objects::{self, CommitParts, hash};
use crate::writers::github::webhooks::{Deliveries, push_payload, workflow_run_payload};
use crate::writers::github::{RepoSummary, Signal, issues, pulls, signal};

/// What one repo's writing produced.
pub struct Written {
    /// Files written.
    pub files: u64,
    /// Counts of what they hold.
    pub summary: RepoSummary,
}

/// A list element with what orders it: (created, number or id, object); lists are newest first.
pub(super) type Listed = (i64, u64, Value);

/// What every part of a repo's files is built from.
pub(super) struct Context<'a> {
    pub org: &'a Org,
    pub history: &'a RepoHistory,
    pub full_name: &'a str,
    pub repo_id: u64,
    /// Main's history, oldest first: indices into the truth's changes, by commit time, ties by
    /// position in the truth (as the git writer orders them).
    pub main: Vec<usize>,
    /// Commit times of `main`.
    pub times: Vec<i64>,
    /// Each change's author, message and PR people.
    pub identities: Vec<CommitIdentity>,
}

impl Context<'_> {
    /// Main's tip at `at` (its first commit before any).
    pub fn tip_at(&self, at: i64) -> &str {
        let upto = self.times.partition_point(|&t| t <= at).max(1);
        self.main
            .get(upto - 1)
            .map_or("", |&c| self.history.changes[c].sha.as_str())
    }
}

/// Where a repo's parts go.
pub(super) struct Out<'a> {
    pub files: Files<'a>,
    pub hooks: Deliveries,
    pub summary: RepoSummary,
}

/// Files under the repo's folder, counted.
pub(super) struct Files<'a> {
    dir: &'a Path,
    count: u64,
}

impl Files<'_> {
    pub fn json(&mut self, relative: &str, value: &Value) -> Result<(), GenerateError> {
        let mut out = OutFile::create(&self.dir.join(relative))?;
        out.write_json(value)?;
        out.write(b"\n")?;
        out.finish()?;
        self.count += 1;
        Ok(())
    }
}

/// Writes the repo's files under `dir` and its deliveries into `webhooks`.
pub fn write(
    dir: &Path,
    org: &Org,
    history: &RepoHistory,
    webhooks: &mut OutFile,
) -> Result<Written, GenerateError> {
    let full_name = org.repos[history.repo].name.as_str();
    let repo_id = 100_000_000 + history.repo as u64;
    let changes = &history.changes;
    let mut main: Vec<usize> = (0..changes.len()).collect();
    main.sort_by_key(|&c| (changes[c].committed_at, c));
    let ctx = Context {
        org,
        history,
        full_name,
        repo_id,
        times: main.iter().map(|&c| changes[c].committed_at).collect(),
        main,
        identities: (0..changes.len())
            .map(|c| commit_identity(org, history, c))
            .collect(),
    };
    let mut out = Out {
        files: Files { dir, count: 0 },
        hooks: Deliveries::new(full_name, repo_id),
        summary: RepoSummary {
            signal: Some(signal(full_name)),
            ..RepoSummary::default()
        },
    };
    commits(&ctx, &mut out)?;
    let (mut pulls, mut issues, last_number) = pulls::merged(&ctx, &mut out)?;
    issues::extras(&ctx, &mut out, last_number, &mut pulls, &mut issues)?;
    for list in [&mut pulls, &mut issues] {
        list.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    }
    out.files.json(
        "pulls.json",
        &Value::Array(pulls.into_iter().map(|(_, _, v)| v).collect()),
    )?;
    out.files.json(
        "issues.json",
        &Value::Array(issues.into_iter().map(|(_, _, v)| v).collect()),
    )?;
    deploy_signal(&ctx, &mut out)?;
    out.summary.webhook_deliveries = out.hooks.write(webhooks)?;
    Ok(Written {
        files: out.files.count,
        summary: out.summary,
    })
}

/// `commits.json`: main's history, newest first, with files; a `push` per commit.
fn commits(ctx: &Context<'_>, out: &mut Out<'_>) -> Result<(), GenerateError> {
    let Context {
        history,
        full_name,
        ref main,
        ref identities,
        ..
    } = *ctx;
    let changes = &history.changes;
    let Out {
        files,
        hooks,
        summary,
    } = out;
    let mut commits = Vec::with_capacity(main.len());
    let mut last_touch: HashMap<&str, usize> = HashMap::new();
    for (position, &c) in main.iter().enumerate() {
        let change = &changes[c];
        let identity = &identities[c];
        let parent = position
            .checked_sub(1)
            .map(|p| changes[main[p]].sha.as_str());
        let parents: Vec<&str> = parent.into_iter().collect();
        let mut added = Vec::new();
        let mut modified = Vec::new();
        let mut file_objects = Vec::new();
        for path in &change.paths {
            let previous = last_touch.insert(path.as_str(), position);
            if previous.is_some() {
                modified.push(path.as_str());
            } else {
                added.push(path.as_str());
            }
            file_objects.push(objects::commit_file(
                full_name,
                &change.sha,
                path,
                position,
                previous,
            ));
        }
        let message = identity.message();
        let commit = objects::commit(CommitParts {
            full_name,
            sha: &change.sha,
            parents: &parents,
            author: &identity.author,
            authored_at: change.authored_at,
            committed_at: change.committed_at,
            message: &message,
            files: Some(file_objects),
        });
        let before = parent.map_or_else(|| "0".repeat(40), str::to_string);
        hooks.push(
            change.committed_at,
            "push",
            push_payload(&commit, &before, &added, &modified),
        );
        commits.push(commit);
    }
    summary.commits = commits.len() as u64;
    commits.reverse();
    files.json("commits.json", &Value::Array(commits))?;

    Ok(())
}

/// The deploy signal's files: deployments and statuses, or runs, or releases.
fn deploy_signal(ctx: &Context<'_>, out: &mut Out<'_>) -> Result<(), GenerateError> {
    let Context {
        org,
        history,
        full_name,
        repo_id,
        ref main,
        ref identities,
        ..
    } = *ctx;
    let changes = &history.changes;
    let Out {
        files,
        hooks,
        summary,
    } = out;
    let signal = summary.signal.unwrap_or(Signal::Deployments);
    let messages: Vec<String> = identities.iter().map(CommitIdentity::message).collect();
    let mut deploys: Vec<Deploy<'_>> = history
        .services
        .iter()
        .flat_map(|s| {
            let service = org.services[s.service].name.as_str();
            s.deployments.iter().map(move |d| (service, d))
        })
        .map(|(service, d)| Deploy {
            deployment: d,
            service,
            sha: &changes[d.head].sha,
            message: &messages[d.head],
            committed_at: changes[d.head].committed_at,
        })
        .collect();
    deploys.sort_by_key(|d| (d.deployment.started_at, d.deployment.id));
    let mut runs = Vec::new();
    let mut releases = Value::Array(Vec::new());
    match signal {
        Signal::Deployments => {
            let auto_inactive = history.repo % 2 == 0;
            for (path, body) in
                deploys::deployments(full_name, &deploys, auto_inactive, hooks, summary)
            {
                files.json(&path, &body)?;
            }
        }
        Signal::WorkflowRuns => {
            files.json("deployments.json", &Value::Array(Vec::new()))?;
            runs = deploys::deploy_runs(full_name, repo_id, &deploys, hooks, summary);
            let (_, _, ci) = workflow_ids(repo_id);
            for (position, &c) in main.iter().enumerate() {
                let change = &changes[c];
                let id = 6_000_000_000 + repo_id % 10_000 * 1_000_000 + position as u64;
                let started = change.committed_at + 3;
                let finished = started + 240 + (hash(&[change.sha.as_bytes()]) % 360) as i64;
                let run = run_object(RunParts {
                    full_name,
                    id,
                    name: "CI",
                    path: ".github/workflows/ci.yml",
                    workflow_id: ci,
                    run_number: position as u64 + 1,
                    display_title: identities[c].title.clone(),
                    event: "push",
                    conclusion: if position % 29 == 28 {
                        "failure"
                    } else {
                        "success"
                    },
                    head: (&change.sha, &messages[c]),
                    times: (started, started, finished),
                });
                hooks.push(
                    finished,
                    "workflow_run",
                    workflow_run_payload("completed", &run, finished),
                );
                summary.other_runs += 1;
                runs.push((started, id, run));
            }
        }
        Signal::Releases => {
            files.json("deployments.json", &Value::Array(Vec::new()))?;
            releases = deploys::releases(full_name, &deploys, hooks, summary);
        }
    }
    runs.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    let runs: Vec<Value> = runs.into_iter().map(|(_, _, r)| r).collect();
    files.json(
        "actions/runs.json",
        &json!({ "total_count": runs.len(), "workflow_runs": runs }),
    )?;
    files.json("releases.json", &releases)?;

    Ok(())
}
