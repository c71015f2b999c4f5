//! One repo's files: main's commits, pull requests with their commits and reviews, issues
//! (incidents, ordinary issues, and PRs as the issues list shows them), the deploy signal, and
//! the repo's webhook deliveries.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::GenerateError;
use crate::calendar::{DAY, HOUR, PERIOD_END, months};
use crate::commits::{CommitIdentity, Developer, commit_identity, team_developers};
use crate::delivery::{Cause, Incident, RepoHistory};
use crate::org::Org;
use crate::writers::OutFile;
use crate::writers::github::deploys::{self, Deploy, RunParts, run_object, workflow_ids};
use crate::writers::github::objects::{
    self, CommitParts, IssueParts, PullParts, account_id, hash, hex40, user,
};
use crate::writers::github::webhooks::{
    Deliveries, issue_payload, pull_request_payload, push_payload, workflow_run_payload,
};
use crate::writers::github::{LINT_ACCOUNT, REVIEW_BOT, RepoSummary, Signal, signal};

/// What one repo's writing produced.
pub struct Written {
    /// Files written.
    pub files: u64,
    /// Counts of what they hold.
    pub summary: RepoSummary,
}

/// The body of an incident issue: `Key: value` lines, then the cause when the truth links one.
///
/// ```text
/// Service: billing
/// Severity: SEV2
/// Incident: INC-12
///
/// Caused by deployment 4711
/// ```
/// The cause line is `Caused by deployment <id>` (the id of the deployment, deploy workflow run
/// or release that records it on GitHub) or `Caused by commit <40-hex sha>`; an issue without
/// such a line links no deployment.
pub fn incident_body(service: &str, incident: &Incident, caused_by_sha: Option<&str>) -> String {
    let mut body = format!(
        "Service: {service}\nSeverity: {}\nIncident: INC-{}\n",
        incident.severity, incident.id
    );
    match (incident.cause, caused_by_sha) {
        (Cause::Deployment(id), _) => body.push_str(&format!("\nCaused by deployment {id}\n")),
        (Cause::Sha(_), Some(sha)) => body.push_str(&format!("\nCaused by commit {sha}\n")),
        _ => {}
    }
    body
}

/// An issue or PR numbered after the ground truth's PRs.
enum Extra<'a> {
    Incident(&'a Incident, &'a str),
    Ordinary {
        service: usize,
        created_at: i64,
        closed_at: Option<i64>,
        kind: usize,
    },
    Postmortem(&'a Incident, &'a str, i64, i64),
}

impl Extra<'_> {
    fn created_at(&self) -> i64 {
        match self {
            Extra::Incident(i, _) => i.started_at,
            Extra::Ordinary { created_at, .. } => *created_at,
            Extra::Postmortem(_, _, at, _) => *at,
        }
    }
}

const ORDINARY: [(&str, &str); 4] = [
    ("Flaky integration test in {}", "bug"),
    ("Document the {} runbook", "documentation"),
    ("Upgrade {} dependencies", "enhancement"),
    ("Slow report query in {}", "bug"),
];

struct Files<'a> {
    dir: &'a Path,
    count: u64,
}

impl Files<'_> {
    fn json(&mut self, relative: &str, value: &Value) -> Result<(), GenerateError> {
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
    let signal = signal(full_name);
    let mut summary = RepoSummary {
        signal: Some(signal),
        ..RepoSummary::default()
    };
    let mut files = Files { dir, count: 0 };
    let mut hooks = Deliveries::new(full_name, repo_id);
    let changes = &history.changes;

    // Main's history: by commit time, ties by position in the truth (as the git writer orders it).
    let mut main: Vec<usize> = (0..changes.len()).collect();
    main.sort_by_key(|&c| (changes[c].committed_at, c));
    let identities: Vec<CommitIdentity> = (0..changes.len())
        .map(|c| commit_identity(org, history, c))
        .collect();
    let times: Vec<i64> = main.iter().map(|&c| changes[c].committed_at).collect();

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

    // Pull requests of the ground truth: squash-merged into main as the change's commit.
    let tip_at = |at: i64| -> &str {
        let upto = times.partition_point(|&t| t <= at).max(1);
        main.get(upto - 1).map_or("", |&c| changes[c].sha.as_str())
    };
    let mut pulls = Vec::new();
    let mut issues = Vec::new();
    let mut max_number = 0;
    for (c, change) in changes.iter().enumerate() {
        let (Some(pr), Some(people)) = (&change.pr, &identities[c].pull_request) else {
            continue;
        };
        max_number = max_number.max(pr.number);
        let branch: Vec<(String, i64)> =
            branch_commits(full_name, pr.number, pr.first_commit_at, pr.opened_at);
        let head_sha = branch
            .last()
            .map_or(change.sha.as_str(), |(s, _)| s.as_str());
        let base_sha = tip_at(pr.opened_at);
        let body = match change.incident_refs.first() {
            Some(key) => format!("Fixes {key}."),
            None => format!("{}.", people.title),
        };
        let pull = objects::pull(PullParts {
            full_name,
            repo_id,
            number: pr.number,
            title: &people.title,
            body: &body,
            author: &people.author,
            labels: &change.labels,
            created_at: pr.opened_at,
            closed_at: pr.merged_at,
            merge_commit_sha: Some(&change.sha),
            head: (&pr.head_branch, head_sha),
            base_sha,
            commits: branch.len(),
            changed_files: change.paths.len(),
        });
        let title = &people.title;
        files.json(
            &format!("pulls/{}/commits.json", pr.number),
            &branch_commit_objects(full_name, &branch, base_sha, &people.author, title),
        )?;
        files.json(
            &format!("pulls/{}/reviews.json", pr.number),
            &reviews(
                full_name,
                pr.number,
                (pr.opened_at, pr.first_review_at, pr.merged_at),
                &people.author,
                &people.reviewer,
                head_sha,
            ),
        )?;
        hooks.push(
            pr.opened_at,
            "pull_request",
            pull_request_payload("opened", &opened(&pull, pr.opened_at)),
        );
        hooks.push(
            pr.merged_at,
            "pull_request",
            pull_request_payload("closed", &pull),
        );
        issues.push((
            pr.opened_at,
            pr.number,
            pr_as_issue(
                full_name,
                repo_id,
                &pull,
                &people.author,
                &change.labels,
                pr.opened_at,
                pr.merged_at,
                Some(pr.merged_at),
            ),
        ));
        pulls.push((pr.opened_at, pr.number, pull));
        summary.pulls_merged += 1;
    }

    // Incidents, ordinary issues and postmortem PRs, numbered after the truth's PRs.
    let services: Vec<usize> = org.repos[history.repo].services.clone();
    let mut extras: Vec<Extra<'_>> = Vec::new();
    for service in &history.services {
        let name = org.services[service.service].name.as_str();
        for incident in &service.incidents {
            extras.push(Extra::Incident(incident, name));
            if let Some(resolved) = incident.resolved_at
                && incident.id % 3 == 0
                && resolved + 3 * DAY < PERIOD_END
            {
                let opened = resolved + DAY;
                extras.push(Extra::Postmortem(incident, name, opened, opened + 2 * DAY));
            }
        }
    }
    for month in months() {
        let h = hash(&[full_name.as_bytes(), &month.first_day.to_le_bytes()]);
        let created_at =
            (month.first_day + (h % 20) as i64) * DAY + 9 * HOUR + (h >> 20) as i64 % (8 * HOUR);
        let closed_at = created_at + DAY + (h >> 40) as i64 % (9 * DAY);
        let service = services[(h >> 8) as usize % services.len()];
        extras.push(Extra::Ordinary {
            service,
            created_at,
            closed_at: (closed_at < PERIOD_END).then_some(closed_at),
            kind: (h >> 12) as usize % ORDINARY.len(),
        });
    }
    extras.sort_by_key(|e| e.created_at());
    for (k, extra) in extras.iter().enumerate() {
        let number = max_number + 1 + k as u64;
        match *extra {
            Extra::Incident(incident, service) => {
                let on_call = on_call(org, incident);
                let sha = match incident.cause {
                    Cause::Sha(c) => Some(changes[c].sha.as_str()),
                    _ => None,
                };
                let body = incident_body(service, incident, sha);
                let labels = vec!["incident".to_string(), incident.severity.to_string()];
                let issue = objects::issue(IssueParts {
                    full_name,
                    repo_id,
                    number,
                    title: &incident.title,
                    body: &body,
                    author: &on_call,
                    labels: &labels,
                    created_at: incident.started_at,
                    closed_at: incident.resolved_at,
                    pull_request: None,
                });
                push_issue_hooks(
                    &mut hooks,
                    &issue,
                    incident.started_at,
                    incident.resolved_at,
                );
                summary.incident_issues += 1;
                summary.incidents_naming_a_deployment +=
                    u64::from(matches!(incident.cause, Cause::Deployment(_)));
                summary.incidents_naming_a_commit += u64::from(sha.is_some());
                issues.push((incident.started_at, number, issue));
            }
            Extra::Ordinary {
                service,
                created_at,
                closed_at,
                kind,
            } => {
                let (template, label) = ORDINARY[kind];
                let title = template.replace("{}", &org.services[service].name);
                let team = team_developers(org.services[service].team);
                let author = &team[(number as usize) % team.len()];
                let labels = vec![label.to_string()];
                let issue = objects::issue(IssueParts {
                    full_name,
                    repo_id,
                    number,
                    title: &title,
                    body: "Seen on main; not urgent.",
                    author,
                    labels: &labels,
                    created_at,
                    closed_at,
                    pull_request: None,
                });
                push_issue_hooks(&mut hooks, &issue, created_at, closed_at);
                summary.other_issues += 1;
                issues.push((created_at, number, issue));
            }
            Extra::Postmortem(incident, service, opened_at, closed_at) => {
                let author = on_call(org, incident);
                let title = format!("Postmortem for INC-{}: {}", incident.id, incident.title);
                let body = format!(
                    "Service: {service}\nIncident: INC-{}\n\nThe write-up, for review.",
                    incident.id
                );
                let labels = vec!["incident".to_string(), "documentation".to_string()];
                let branch_name = format!("docs/postmortem-inc-{}", incident.id);
                let branch = branch_commits(full_name, number, opened_at - HOUR, opened_at);
                let head_sha = branch.last().map_or("", |(s, _)| s.as_str()).to_string();
                let base_sha = tip_at(opened_at);
                let pull = objects::pull(PullParts {
                    full_name,
                    repo_id,
                    number,
                    title: &title,
                    body: &body,
                    author: &author,
                    labels: &labels,
                    created_at: opened_at,
                    closed_at,
                    merge_commit_sha: None,
                    head: (&branch_name, &head_sha),
                    base_sha,
                    commits: branch.len(),
                    changed_files: 1,
                });
                files.json(
                    &format!("pulls/{number}/commits.json"),
                    &branch_commit_objects(full_name, &branch, base_sha, &author, &title),
                )?;
                files.json(
                    &format!("pulls/{number}/reviews.json"),
                    &Value::Array(Vec::new()),
                )?;
                hooks.push(
                    opened_at,
                    "pull_request",
                    pull_request_payload("opened", &opened(&pull, opened_at)),
                );
                hooks.push(
                    closed_at,
                    "pull_request",
                    pull_request_payload("closed", &pull),
                );
                issues.push((
                    opened_at,
                    number,
                    pr_as_issue(
                        full_name, repo_id, &pull, &author, &labels, opened_at, closed_at, None,
                    ),
                ));
                pulls.push((opened_at, number, pull));
                summary.pulls_unmerged += 1;
            }
        }
    }
    for list in [&mut pulls, &mut issues] {
        list.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    }
    files.json(
        "pulls.json",
        &Value::Array(pulls.into_iter().map(|(_, _, v)| v).collect()),
    )?;
    files.json(
        "issues.json",
        &Value::Array(issues.into_iter().map(|(_, _, v)| v).collect()),
    )?;

    // The deploy signal.
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
                deploys::deployments(full_name, &deploys, auto_inactive, &mut hooks, &mut summary)
            {
                files.json(&path, &body)?;
            }
        }
        Signal::WorkflowRuns => {
            files.json("deployments.json", &Value::Array(Vec::new()))?;
            runs = deploys::deploy_runs(full_name, repo_id, &deploys, &mut hooks, &mut summary);
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
            releases = deploys::releases(full_name, &deploys, &mut hooks, &mut summary);
        }
    }
    runs.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    let runs: Vec<Value> = runs.into_iter().map(|(_, _, r)| r).collect();
    files.json(
        "actions/runs.json",
        &json!({ "total_count": runs.len(), "workflow_runs": runs }),
    )?;
    files.json("releases.json", &releases)?;

    summary.webhook_deliveries = hooks.write(webhooks)?;
    Ok(Written {
        files: files.count,
        summary,
    })
}

/// Who opened an incident's issue: a developer of its service's team, by incident number.
fn on_call(org: &Org, incident: &Incident) -> Developer {
    let team = team_developers(org.services[incident.service].team);
    team[incident.id as usize % team.len()].clone()
}

/// The commits of a PR branch (`1 + number % 3`), oldest first, the first at `first_commit_at`
/// (where lead time starts), the rest before `opened_at`.
fn branch_commits(
    full_name: &str,
    number: u64,
    first_commit_at: i64,
    opened_at: i64,
) -> Vec<(String, i64)> {
    let count = 1 + (number % 3) as i64;
    let span = (opened_at - first_commit_at).max(0);
    (0..count)
        .map(|k| {
            let sha = hex40(&[
                b"pr-commit",
                full_name.as_bytes(),
                &number.to_le_bytes(),
                &k.to_le_bytes(),
            ]);
            (sha, first_commit_at + k * span / count)
        })
        .collect()
}

/// The branch's commits as `GET /pulls/{n}/commits` lists them (no files).
fn branch_commit_objects(
    full_name: &str,
    branch: &[(String, i64)],
    base_sha: &str,
    author: &Developer,
    title: &str,
) -> Value {
    let mut parent = base_sha;
    let mut out = Vec::new();
    for (k, (sha, at)) in branch.iter().enumerate() {
        let parents = [parent];
        let message = if k == 0 {
            title.to_string()
        } else {
            format!("Address review comments ({k})")
        };
        out.push(objects::commit(CommitParts {
            full_name,
            sha,
            parents: &parents,
            author,
            authored_at: *at,
            committed_at: *at,
            message: &message,
            files: None,
        }));
        parent = sha;
    }
    Value::Array(out)
}

/// A PR's reviews, oldest first: on some PRs a bot, a bot account of type `User` and the author
/// comment before the first review by a teammate (at `first_review_at`, which the ingest must
/// find); some first reviews request changes and are followed by an approval.
fn reviews(
    full_name: &str,
    number: u64,
    (opened_at, first_review_at, merged_at): (i64, i64, i64),
    author: &Developer,
    reviewer: &Developer,
    head_sha: &str,
) -> Value {
    let id = |k: u64| {
        1_000_000_000_000
            + hash(&[
                full_name.as_bytes(),
                &number.to_le_bytes(),
                &k.to_le_bytes(),
            ]) % 1_000_000_000_000
    };
    let gap = first_review_at - opened_at;
    let mut out = Vec::new();
    if gap >= 8 {
        if number % 5 == 0 {
            out.push(objects::review(
                full_name,
                number,
                id(1),
                &user(REVIEW_BOT, "Bot"),
                "COMMENTED",
                opened_at + gap / 4,
                head_sha,
            ));
        }
        if number % 7 == 0 {
            out.push(objects::review(
                full_name,
                number,
                id(2),
                &user(LINT_ACCOUNT, "User"),
                "COMMENTED",
                opened_at + gap / 2,
                head_sha,
            ));
        }
        if number % 4 == 0 {
            out.push(objects::review(
                full_name,
                number,
                id(3),
                &objects::developer(author),
                "COMMENTED",
                opened_at + 3 * gap / 4,
                head_sha,
            ));
        }
    }
    let person = objects::developer(reviewer);
    if number % 6 == 0 && merged_at - first_review_at >= 2 {
        out.push(objects::review(
            full_name,
            number,
            id(4),
            &person,
            "CHANGES_REQUESTED",
            first_review_at,
            head_sha,
        ));
        out.push(objects::review(
            full_name,
            number,
            id(5),
            &person,
            "APPROVED",
            (first_review_at + merged_at) / 2,
            head_sha,
        ));
    } else {
        out.push(objects::review(
            full_name,
            number,
            id(4),
            &person,
            "APPROVED",
            first_review_at,
            head_sha,
        ));
    }
    debug_assert!(account_id(REVIEW_BOT) != account_id(LINT_ACCOUNT));
    Value::Array(out)
}

/// A pull request as it was when opened.
fn opened(pull: &Value, at: i64) -> Value {
    let mut pull = pull.clone();
    pull["state"] = json!("open");
    for key in ["closed_at", "merged_at", "merge_commit_sha"] {
        pull[key] = Value::Null;
    }
    pull["merged"] = json!(false);
    pull["updated_at"] = json!(objects::time(at));
    pull
}

/// A pull request as `GET /issues` lists it.
#[allow(clippy::too_many_arguments)]
fn pr_as_issue(
    full_name: &str,
    repo_id: u64,
    pull: &Value,
    author: &Developer,
    labels: &[String],
    created_at: i64,
    closed_at: i64,
    merged_at: Option<i64>,
) -> Value {
    objects::issue(IssueParts {
        full_name,
        repo_id,
        number: pull["number"].as_u64().unwrap_or_default(),
        title: pull["title"].as_str().unwrap_or_default(),
        body: pull["body"].as_str().unwrap_or_default(),
        author,
        labels,
        created_at,
        closed_at: Some(closed_at),
        pull_request: Some(merged_at),
    })
}

/// `issues` deliveries: `opened`, and `closed` once closed.
fn push_issue_hooks(
    hooks: &mut Deliveries,
    issue: &Value,
    created_at: i64,
    closed_at: Option<i64>,
) {
    let mut open = issue.clone();
    open["state"] = json!("open");
    open["closed_at"] = Value::Null;
    open["state_reason"] = Value::Null;
    open["updated_at"] = open["created_at"].clone();
    hooks.push(created_at, "issues", issue_payload("opened", &open));
    if let Some(at) = closed_at {
        hooks.push(at, "issues", issue_payload("closed", issue));
    }
}
